"""The error hierarchy of the Octogen SDKs (SPEC §8).

``OctogenError`` ⊃ ``MissingAPIKeyError``, ``OctogenConnectionError`` and
``OctogenAPIError`` ⊃ ``OctogenAuthenticationError`` (401),
``OctogenForbiddenError`` (403), ``OctogenNotFoundError`` (404),
``OctogenValidationError`` (422/400), ``OctogenRateLimitError`` (429) and
``OctogenServerError`` (5xx). No error ever carries the API key.
"""

from __future__ import annotations

import json
from typing import Any, Optional

import httpx

__all__ = [
    "OctogenError",
    "MissingAPIKeyError",
    "OctogenConnectionError",
    "OctogenAPIError",
    "OctogenAuthenticationError",
    "OctogenForbiddenError",
    "OctogenNotFoundError",
    "OctogenValidationError",
    "OctogenRateLimitError",
    "OctogenServerError",
]


class OctogenError(Exception):
    """Base class of every error the SDK raises."""


class MissingAPIKeyError(OctogenError):
    """No key was given and neither OCTO_API_KEY nor OCTOGEN_PLATFORM_API_KEY is set."""

    def __init__(self, message: str = "no API key: pass api_key=... or set OCTO_API_KEY") -> None:
        super().__init__(message)


class OctogenConnectionError(OctogenError):
    """The server could not be reached, or the connection failed or timed out (after retries)."""


class OctogenAPIError(OctogenError):
    """The server answered with an error status.

    ``status_code`` is the HTTP status, ``detail`` the body's ``detail`` (a string,
    or for 422 a list of ``{loc, msg, type, ...}``), ``body`` the raw response
    text and ``response`` the ``httpx.Response``.
    """

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.status_code = response.status_code
        self.body = response.text
        self.request_id: Optional[str] = response.headers.get("x-request-id")
        self.detail: Any = None
        try:
            parsed = json.loads(self.body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and "detail" in parsed:
            self.detail = parsed["detail"]
        super().__init__(f"the Octogen API answered {self.status_code}: {_describe(self.detail)}")

    @property
    def raw_response(self) -> httpx.Response:
        return self.response


class OctogenAuthenticationError(OctogenAPIError):
    """401: the key is missing, malformed, unknown or revoked."""


class OctogenForbiddenError(OctogenAPIError):
    """403: the key is valid but its organization may not use the API."""


class OctogenNotFoundError(OctogenAPIError):
    """404: an unknown or ungranted catalog, or no product at that URL."""


class OctogenValidationError(OctogenAPIError):
    """422 (or 400): the request must change; ``detail`` names every problem."""


class OctogenRateLimitError(OctogenAPIError):
    """429: the organization's rate budget is spent; ``retry_after`` is in seconds."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response)
        self.retry_after: Optional[float] = parse_retry_after(response.headers.get("retry-after"))


class OctogenServerError(OctogenAPIError):
    """5xx: retried; raised when the retries are spent."""


def parse_retry_after(value: Optional[str]) -> Optional[float]:
    """``Retry-After`` as seconds (HTTP dates are not used by this API)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def _describe(detail: Any) -> str:
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for issue in detail:
            if isinstance(issue, dict):
                loc = ".".join(str(part) for part in issue.get("loc", []))
                parts.append(f"{loc}: {issue.get('msg', '')}")
        return "; ".join(parts) or "(no detail)"
    return "(no detail)" if detail is None else json.dumps(detail)


def error_for(response: httpx.Response) -> OctogenAPIError:
    status = response.status_code
    cls: type[OctogenAPIError]
    if status == 401:
        cls = OctogenAuthenticationError
    elif status == 403:
        cls = OctogenForbiddenError
    elif status == 404:
        cls = OctogenNotFoundError
    elif status in (400, 422):
        cls = OctogenValidationError
    elif status == 429:
        cls = OctogenRateLimitError
    elif status >= 500:
        cls = OctogenServerError
    else:
        cls = OctogenAPIError
    return cls(response)

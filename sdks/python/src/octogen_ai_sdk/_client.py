"""The async client."""

from __future__ import annotations

import asyncio
import os
import random
from typing import Any, AsyncIterator, Dict, List, Mapping, Optional, Sequence, Union
from urllib.parse import urlsplit

import httpx

from ._errors import (
    MissingAPIKeyError,
    OctogenAPIError,
    OctogenConnectionError,
    OctogenRateLimitError,
    OctogenServerError,
    error_for,
    parse_retry_after,
)
from .models import CatalogSummary, Facet, FacetName, LookupResult, ProductListItem, SearchPage

__all__ = ["OctogenClient", "DEFAULT_BASE_URL", "API_VERSION", "API_KEY_ENV", "FALLBACK_API_KEY_ENV", "BASE_URL_ENV"]

__version__ = "0.1.0"

#: The environment variable the key is read from (SPEC §2).
API_KEY_ENV = "OCTO_API_KEY"
#: Read when OCTO_API_KEY is unset: the name today's public SDKs prefer.
FALLBACK_API_KEY_ENV = "OCTOGEN_PLATFORM_API_KEY"
#: The environment variable for the server's base URL.
BASE_URL_ENV = "OCTO_BASE_URL"
#: A local server, as ``octogen serve`` and ``octogen demo`` start it.
DEFAULT_BASE_URL = "http://127.0.0.1:8080"
#: The response shapes these models parse, sent as ``Octogen-Version``.
API_VERSION = "2026-05-28"

FacetsArg = Union[
    Mapping[Union[str, FacetName], Union[str, Sequence[str]]],
    Sequence[Union[Facet, Mapping[str, Any]]],
]


def _env(name: str) -> Optional[str]:
    value = os.environ.get(name, "").strip()
    return value or None


def normalize_base_url(url: str) -> str:
    """``http(s)://host[:port][/prefix]`` without a trailing slash or ``/v1``."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"the base URL {url!r} must be an http(s) URL")
    if parts.query or parts.fragment:
        raise ValueError(f"the base URL {url!r} must not have a query or fragment")
    text = url.strip().rstrip("/")
    if text.endswith("/v1"):
        text = text[: -len("/v1")]
    return text


def _facets(facets: Optional[FacetsArg]) -> List[Dict[str, Any]]:
    if not facets:
        return []
    merged: Dict[str, List[str]] = {}
    if isinstance(facets, Mapping):
        pairs = [(name, values) for name, values in facets.items()]
    else:
        pairs = []
        for facet in facets:
            if isinstance(facet, Facet):
                pairs.append((facet.name, facet.values))
            else:
                pairs.append((facet["name"], facet["values"]))
    for name, values in pairs:
        key = name.value if isinstance(name, FacetName) else str(name)
        merged.setdefault(key, []).extend([values] if isinstance(values, str) else list(values))
    return [{"name": name, "values": values} for name, values in merged.items()]


class OctogenClient:
    """An async client for the Octogen Platform Catalog API.

    ``api_key`` defaults to ``OCTO_API_KEY`` (then ``OCTOGEN_PLATFORM_API_KEY``);
    ``base_url`` to ``OCTO_BASE_URL`` (then ``http://127.0.0.1:8080``; a trailing
    ``/v1`` is accepted). ``timeout`` is per attempt, in seconds. Connection
    failures, 5xx and 429 are retried up to ``max_retries`` times with jittered
    exponential backoff, honouring ``Retry-After`` up to ``max_retry_after``
    seconds (a longer 429 is raised at once as ``OctogenRateLimitError``).

    Use it as ``async with OctogenClient() as client: ...`` or call ``aclose()``.
    """

    def __init__(
        self,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        timeout: float = 30,
        *,
        max_retries: int = 2,
        max_retry_after: float = 60,
        api_version: Optional[str] = API_VERSION,
        http_client: Optional[httpx.AsyncClient] = None,
    ) -> None:
        key = (api_key or "").strip() or _env(API_KEY_ENV) or _env(FALLBACK_API_KEY_ENV)
        if api_key is not None and not api_key.strip():
            key = None
        if not key:
            raise MissingAPIKeyError()
        self._api_key = key
        self.base_url = normalize_base_url(base_url or _env(BASE_URL_ENV) or DEFAULT_BASE_URL)
        self.timeout = timeout
        self.max_retries = max(0, max_retries)
        self.max_retry_after = max_retry_after
        headers = {
            "Authorization": f"Bearer {key}",
            "Accept": "application/json",
            "User-Agent": f"octogen-ai-sdk-python/{__version__} (self-hosted)",
        }
        if api_version:
            headers["Octogen-Version"] = api_version
        self._headers = headers
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout)

    def __repr__(self) -> str:
        return f"OctogenClient(base_url={self.base_url!r}, api_key='[redacted]')"

    async def __aenter__(self) -> "OctogenClient":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def list_catalogs(self) -> List[CatalogSummary]:
        """``GET /v1/catalogs``: the catalogs granted to the key's organization."""
        data = await self._request("GET", "/v1/catalogs")
        return [CatalogSummary.model_validate(item) for item in data]

    async def search_products(
        self,
        q: Optional[str] = None,
        *,
        catalog: Optional[str] = None,
        catalogs: Optional[Sequence[str]] = None,
        facets: Optional[FacetsArg] = None,
        price_min: Optional[float] = None,
        price_max: Optional[float] = None,
        cursor: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> SearchPage:
        """``POST /v1/products/search``: one page of results.

        ``facets`` is ``{"color_family": ["Black"], "gender": "male"}`` or a list of
        ``{"name": ..., "values": [...]}`` / ``Facet``; values of one facet are ORed,
        facets are ANDed. Price bounds are inclusive; ``limit`` is 1..100.
        """
        body: Dict[str, Any] = {}
        for name, value in (
            ("q", q),
            ("catalog", catalog),
            ("catalogs", list(catalogs) if catalogs is not None else None),
            ("price_min", price_min),
            ("price_max", price_max),
            ("cursor", cursor),
            ("limit", limit),
        ):
            if value is not None:
                body[name] = value
        facet_list = _facets(facets)
        if facet_list:
            body["facets"] = facet_list
        data = await self._request("POST", "/v1/products/search", body)
        return SearchPage.model_validate(data)

    async def iter_pages(self, q: Optional[str] = None, **filters: Any) -> AsyncIterator[SearchPage]:
        """Every page from the first (or ``cursor=``) to the last, following ``next_cursor``."""
        cursor = filters.pop("cursor", None)
        while True:
            page = await self.search_products(q, cursor=cursor, **filters)
            yield page
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def iter_products(self, q: Optional[str] = None, **filters: Any) -> AsyncIterator[ProductListItem]:
        """Every matching product, page after page, to the last one."""
        async for page in self.iter_pages(q, **filters):
            for item in page.items:
                yield item

    async def lookup_product(self, url: str) -> LookupResult:
        """``POST /v1/products/lookup``: a product page URL to the full product."""
        data = await self._request("POST", "/v1/products/lookup", {"url": url})
        return LookupResult.model_validate(data)

    async def _request(self, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Any:
        url = f"{self.base_url}{path}"
        attempt = 0
        while True:
            attempt += 1
            error: Exception
            try:
                response = await self._http.request(method, url, headers=self._headers, json=body)
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "connection failed"
                error = OctogenConnectionError(f"cannot reach the Octogen API at {url}: {kind} ({type(exc).__name__})")
                error.__cause__ = exc
                wait = self._backoff(attempt)
            else:
                if response.is_success:
                    try:
                        return response.json()
                    except ValueError as exc:
                        raise OctogenAPIError(response) from exc
                error = error_for(response)
                if not isinstance(error, (OctogenRateLimitError, OctogenServerError)):
                    raise error
                asked = parse_retry_after(response.headers.get("retry-after"))
                if asked is not None and asked > self.max_retry_after:
                    raise error
                wait = asked + random.uniform(0, 0.25) if asked is not None else self._backoff(attempt)
            if attempt > self.max_retries:
                raise error
            await asyncio.sleep(wait)

    @staticmethod
    def _backoff(attempt: int) -> float:
        """Full jitter over 0.25 s × 2^(attempt−1), capped at 8 s."""
        return random.uniform(0, min(8.0, 0.25 * 2 ** (attempt - 1)))

// The error hierarchy of the Octogen SDKs (SPEC §8). No error carries the API key.

import type { ValidationIssue } from "./models.js";

/** Base class of every error the SDK throws. */
export class OctogenError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** No key was given and neither OCTO_API_KEY nor OCTOGEN_PLATFORM_API_KEY is set. */
export class MissingAPIKeyError extends OctogenError {
  constructor() {
    super("no API key: pass { apiKey } or set OCTO_API_KEY");
  }
}

/** The server could not be reached, or the connection failed or timed out (after retries). */
export class OctogenConnectionError extends OctogenError {}

/** The server answered with an error status. */
export class OctogenAPIError extends OctogenError {
  /** The HTTP status. */
  readonly status: number;
  /** The body's `detail`: a string, or for 422 a list of issues. */
  readonly detail: string | ValidationIssue[] | unknown;
  /** The raw response body. */
  readonly body: string;
  /** The response (its body already read). */
  readonly response: Response;
  /** The server's X-Request-Id. */
  readonly requestId: string | null;

  constructor(response: Response, body: string) {
    let detail: unknown = null;
    try {
      const parsed: unknown = JSON.parse(body);
      if (parsed !== null && typeof parsed === "object" && "detail" in parsed) {
        detail = (parsed as { detail: unknown }).detail;
      }
    } catch {
      // not JSON: detail stays null, body keeps the text
    }
    super(`the Octogen API answered ${response.status}: ${describe(detail)}`);
    this.status = response.status;
    this.detail = detail;
    this.body = body;
    this.response = response;
    this.requestId = response.headers.get("x-request-id");
  }

  /** Alias of `status`, as the Python SDK names it. */
  get statusCode(): number {
    return this.status;
  }
}

/** 401: the key is missing, malformed, unknown or revoked. */
export class OctogenAuthenticationError extends OctogenAPIError {}
/** 403: the key is valid but its organization may not use the API. */
export class OctogenForbiddenError extends OctogenAPIError {}
/** 404: an unknown or ungranted catalog, or no product at that URL. */
export class OctogenNotFoundError extends OctogenAPIError {}
/** 422 (or 400): the request must change; `detail` names every problem. */
export class OctogenValidationError extends OctogenAPIError {}
/** 5xx, after retries. */
export class OctogenServerError extends OctogenAPIError {}

/** 429: the organization's rate budget is spent. */
export class OctogenRateLimitError extends OctogenAPIError {
  /** `Retry-After`, in seconds, when the server sent one. */
  readonly retryAfter: number | null;

  constructor(response: Response, body: string) {
    super(response, body);
    this.retryAfter = parseRetryAfter(response.headers.get("retry-after"));
  }
}

export function parseRetryAfter(value: string | null): number | null {
  if (value === null || value.trim() === "") return null;
  const seconds = Number(value.trim());
  return Number.isFinite(seconds) && seconds >= 0 ? seconds : null;
}

export function errorFor(response: Response, body: string): OctogenAPIError {
  const status = response.status;
  if (status === 401) return new OctogenAuthenticationError(response, body);
  if (status === 403) return new OctogenForbiddenError(response, body);
  if (status === 404) return new OctogenNotFoundError(response, body);
  if (status === 400 || status === 422) return new OctogenValidationError(response, body);
  if (status === 429) return new OctogenRateLimitError(response, body);
  if (status >= 500) return new OctogenServerError(response, body);
  return new OctogenAPIError(response, body);
}

function describe(detail: unknown): string {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    const parts = detail.map((issue: unknown) => {
      const { loc, msg } = (issue ?? {}) as { loc?: unknown[]; msg?: string };
      return `${(loc ?? []).join(".")}: ${msg ?? ""}`;
    });
    return parts.join("; ") || "(no detail)";
  }
  return detail === null || detail === undefined ? "(no detail)" : JSON.stringify(detail);
}

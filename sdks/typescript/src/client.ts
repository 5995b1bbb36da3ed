// The client: configuration, authentication, one request with bounded retries.

import {
  MissingAPIKeyError,
  OctogenAPIError,
  OctogenConnectionError,
  OctogenRateLimitError,
  OctogenServerError,
  errorFor,
  parseRetryAfter,
} from "./errors.js";
import type {
  Facet,
  LookupResult,
  MerchantCatalogSummary,
  MerchantProductListItem,
  SearchPage,
  SearchParams,
} from "./models.js";

export const SDK_VERSION = "0.1.0";
/** The environment variable the key is read from (SPEC §2). */
export const API_KEY_ENV = "OCTO_API_KEY";
/** Read when OCTO_API_KEY is unset: the name today's public SDKs prefer. */
export const FALLBACK_API_KEY_ENV = "OCTOGEN_PLATFORM_API_KEY";
/** The environment variable for the server's base URL. */
export const BASE_URL_ENV = "OCTO_BASE_URL";
/** A local server, as `octogen serve` and `octogen demo` start it. */
export const DEFAULT_BASE_URL = "http://127.0.0.1:8080";
/** The response shapes these types describe, sent as `Octogen-Version`. */
export const API_VERSION = "2026-05-28";
export const DEFAULT_TIMEOUT_MS = 30_000;

export interface ClientOptions {
  /** `octo_live_…`; default OCTO_API_KEY, then OCTOGEN_PLATFORM_API_KEY. */
  apiKey?: string;
  /** Default OCTO_BASE_URL, then http://127.0.0.1:8080. A trailing `/v1` is accepted. */
  baseUrl?: string;
  /** Per attempt (default 30 000). */
  timeoutMs?: number;
  /** Retries of connection failures, 5xx and 429 (default 2). */
  maxRetries?: number;
  /** The longest Retry-After waited out; a longer 429 is thrown at once (default 60 000). */
  maxRetryAfterMs?: number;
  /** The Octogen-Version header; null sends none (default "2026-05-28"). */
  apiVersion?: string | null;
  /** A fetch implementation (default: the platform's). */
  fetch?: typeof fetch;
}

function env(name: string): string | undefined {
  const proc = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  const value = proc?.env?.[name]?.trim();
  return value ? value : undefined;
}

/** `http(s)://host[:port][/prefix]` without a trailing slash or `/v1`. */
export function normalizeBaseUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url.trim());
  } catch {
    throw new TypeError(`the base URL ${JSON.stringify(url)} is not a URL`);
  }
  if ((parsed.protocol !== "http:" && parsed.protocol !== "https:") || !parsed.host) {
    throw new TypeError(`the base URL ${JSON.stringify(url)} must be an http(s) URL`);
  }
  if (parsed.search || parsed.hash) {
    throw new TypeError(`the base URL ${JSON.stringify(url)} must not have a query or fragment`);
  }
  let text = url.trim().replace(/\/+$/, "");
  if (text.endsWith("/v1")) text = text.slice(0, -3);
  return text;
}

function facetList(facets: SearchParams["facets"]): Facet[] {
  if (!facets) return [];
  const merged = new Map<string, string[]>();
  const pairs: [string, string | string[]][] = Array.isArray(facets)
    ? facets.map((facet): [string, string[]] => [facet.name, facet.values])
    : Object.entries(facets).filter((entry): entry is [string, string | string[]] => entry[1] !== undefined);
  for (const [name, values] of pairs) {
    const list = merged.get(name) ?? [];
    list.push(...(typeof values === "string" ? [values] : values));
    merged.set(name, list);
  }
  return [...merged].map(([name, values]) => ({ name, values }));
}

/** The wire body of a search: `priceMin`/`priceMax` become `price_min`/`price_max`. */
export function searchBody(params: SearchParams): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (params.q !== undefined) body.q = params.q;
  if (params.catalog !== undefined) body.catalog = params.catalog;
  if (params.catalogs !== undefined) body.catalogs = params.catalogs;
  const facets = facetList(params.facets);
  if (facets.length > 0) body.facets = facets;
  if (params.priceMin !== undefined) body.price_min = params.priceMin;
  if (params.priceMax !== undefined) body.price_max = params.priceMax;
  if (params.cursor !== undefined) body.cursor = params.cursor;
  if (params.limit !== undefined) body.limit = params.limit;
  return body;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Full jitter over 250 ms × 2^(attempt−1), capped at 8 s. */
function backoffMs(attempt: number): number {
  return Math.random() * Math.min(8_000, 250 * 2 ** (attempt - 1));
}

/**
 * An async client for the Octogen Platform Catalog API.
 *
 * ```ts
 * const client = new OctogenClient(); // OCTO_API_KEY, OCTO_BASE_URL
 * const catalogs = await client.listCatalogs();
 * const page = await client.searchProducts({ q: "black hoodie", facets: { color_family: ["Black"] }, priceMax: 100 });
 * const found = await client.lookupProduct("https://northwind.example/products/trail-hoodie");
 * ```
 */
export class OctogenClient {
  readonly baseUrl: string;
  readonly timeoutMs: number;
  readonly maxRetries: number;
  readonly maxRetryAfterMs: number;
  readonly #apiKey: string;
  readonly #apiVersion: string | null;
  readonly #fetch: typeof fetch;

  constructor(options: ClientOptions = {}) {
    const key =
      options.apiKey !== undefined ? options.apiKey.trim() : (env(API_KEY_ENV) ?? env(FALLBACK_API_KEY_ENV) ?? "");
    if (!key) throw new MissingAPIKeyError();
    this.#apiKey = key;
    this.baseUrl = normalizeBaseUrl(options.baseUrl ?? env(BASE_URL_ENV) ?? DEFAULT_BASE_URL);
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxRetries = Math.max(0, options.maxRetries ?? 2);
    this.maxRetryAfterMs = options.maxRetryAfterMs ?? 60_000;
    this.#apiVersion = options.apiVersion === undefined ? API_VERSION : options.apiVersion;
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /** `GET /v1/catalogs`: the catalogs granted to the key's organization. */
  listCatalogs(): Promise<MerchantCatalogSummary[]> {
    return this.#request<MerchantCatalogSummary[]>("GET", "/v1/catalogs");
  }

  /** `POST /v1/products/search`: one page of results. */
  searchProducts(params: SearchParams = {}): Promise<SearchPage> {
    return this.#request<SearchPage>("POST", "/v1/products/search", searchBody(params));
  }

  /** Every page from the first (or `cursor`) to the last, following `nextCursor`. */
  async *pages(params: SearchParams = {}): AsyncGenerator<SearchPage, void, undefined> {
    let cursor = params.cursor;
    for (;;) {
      const page = await this.searchProducts(cursor === undefined ? params : { ...params, cursor });
      yield page;
      if (!page.nextCursor) return;
      cursor = page.nextCursor;
    }
  }

  /** Every matching product, page after page, to the last one. */
  async *products(params: SearchParams = {}): AsyncGenerator<MerchantProductListItem, void, undefined> {
    for await (const page of this.pages(params)) yield* page.items;
  }

  /** `POST /v1/products/lookup`: a product page URL to the full product. */
  lookupProduct(url: string): Promise<LookupResult> {
    return this.#request<LookupResult>("POST", "/v1/products/lookup", { url });
  }

  toString(): string {
    return `OctogenClient(${this.baseUrl}, apiKey: [redacted])`;
  }

  toJSON(): Record<string, unknown> {
    return { baseUrl: this.baseUrl, apiKey: "[redacted]" };
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }

  async #request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const url = `${this.baseUrl}${path}`;
    const headers: Record<string, string> = {
      Authorization: `Bearer ${this.#apiKey}`,
      Accept: "application/json",
      "User-Agent": `octogen-ai-sdk-typescript/${SDK_VERSION} (self-hosted)`,
    };
    if (this.#apiVersion) headers["Octogen-Version"] = this.#apiVersion;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    for (let attempt = 1; ; attempt++) {
      let error: Error;
      let waitMs: number;
      let response: Response | undefined;
      let text = "";
      try {
        response = await this.#fetch(url, {
          method,
          headers,
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          signal: AbortSignal.timeout(this.timeoutMs),
        });
        text = await response.text();
      } catch (cause) {
        response = undefined;
        const timedOut = cause instanceof Error && (cause.name === "TimeoutError" || cause.name === "AbortError");
        error = new OctogenConnectionError(
          `cannot reach the Octogen API at ${url}: ${timedOut ? "timed out" : "connection failed"}`,
          { cause },
        );
        waitMs = backoffMs(attempt);
      }
      if (response !== undefined) {
        if (response.ok) {
          try {
            return JSON.parse(text) as T;
          } catch {
            throw new OctogenAPIError(response, text);
          }
        }
        const apiError = errorFor(response, text);
        if (!(apiError instanceof OctogenRateLimitError || apiError instanceof OctogenServerError)) throw apiError;
        const asked = parseRetryAfter(response.headers.get("retry-after"));
        if (asked !== null && asked * 1000 > this.maxRetryAfterMs) throw apiError;
        error = apiError;
        waitMs = asked !== null ? asked * 1000 + Math.random() * 250 : backoffMs(attempt);
      }
      if (attempt > this.maxRetries) throw error!;
      await sleep(waitMs!);
    }
  }
}

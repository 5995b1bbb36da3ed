// @octogen-ai/sdk: a TypeScript client for the Octogen Platform Catalog API.

export {
  OctogenClient,
  normalizeBaseUrl,
  searchBody,
  API_KEY_ENV,
  API_VERSION,
  BASE_URL_ENV,
  DEFAULT_BASE_URL,
  DEFAULT_TIMEOUT_MS,
  FALLBACK_API_KEY_ENV,
  SDK_VERSION,
} from "./client.js";
export type { ClientOptions } from "./client.js";
export {
  OctogenError,
  MissingAPIKeyError,
  OctogenConnectionError,
  OctogenAPIError,
  OctogenAuthenticationError,
  OctogenForbiddenError,
  OctogenNotFoundError,
  OctogenValidationError,
  OctogenRateLimitError,
  OctogenServerError,
} from "./errors.js";
export { FacetName } from "./models.js";
export type {
  Audience,
  Brand,
  CanonicalBrand,
  Color,
  Details,
  Enrichment,
  Facet,
  Identifiers,
  Link,
  LookupResult,
  MerchantCatalogSummary,
  MerchantProductListItem,
  MerchantProductView,
  Promotion,
  Rating,
  Review,
  SearchPage,
  SearchParams,
  Variant,
  ValidationIssue,
  Video,
} from "./models.js";

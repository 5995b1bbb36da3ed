//! `POST /v1/products/lookup` (SPEC §4): a product page URL → the full product.

use axum::extract::{Request, State};
use axum::{Extension, Json};
use octogen_core::wire::MerchantProductView;
use octogen_core::{loc, ErrorCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::body::ObjectBody;
use crate::app::RequestId;
use crate::auth::Partner;
use crate::error::{ApiError, ApiResult};
use crate::extract::json_value;
use crate::service::products::{LookupFailure, LookupOutcome};
use crate::state::AppState;
use crate::versions::{ApiVersion, RenderContext};

/// Resolution controls that later clients send. This server resolves from its
/// index only (there is no on-demand fetching), so every mode behaves like
/// `index_only` and the cache policy has no effect; both are accepted so such
/// clients work unchanged. `matchMode` is accepted too: `strict` and `loose`
/// both try the same rules (the normalized URL, then its aliases; see the
/// README on lookups).
/// What the server takes for an http(s) product URL, as a JSON Schema pattern
/// (anything else is refused with `invalid_product_url`).
pub const URL_PATTERN: &str = r"^https?://([A-Za-z0-9-]+\.)*[A-Za-z][A-Za-z0-9-]*(:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/[A-Za-z0-9._~%!$&'()*+,;=:@/-]*)?(\?[A-Za-z0-9._~%!$&'()*+,;=:@/?-]*)?$";

/// The schema of a product URL: a string matching `URL_PATTERN`.
pub struct ProductUrl;

impl utoipa::PartialSchema for ProductUrl {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(1))
            .pattern(Some(URL_PATTERN))
            .examples(["https://northwind.example/products/trail-hoodie"])
            .into()
    }
}

impl ToSchema for ProductUrl {}

pub const RESOLUTION_MODES: &[&str] = &["auto", "index_only", "on_demand_only"];
pub const CACHE_POLICIES: &[&str] = &["prefer_cache", "refresh"];
pub const MATCH_MODES: &[&str] = &["strict", "loose"];

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LookupRequest {
    /// A product page URL (http or https). Anything else is refused with 422 `invalid_product_url`.
    #[schema(value_type = ProductUrl)]
    pub url: String,
    /// Accepted for compatibility; lookups are always served from the index.
    #[schema(value_type = Option<ResolutionMode>)]
    pub resolution_mode: Option<String>,
    /// Accepted for compatibility; has no effect.
    #[schema(value_type = Option<CachePolicy>)]
    pub on_demand_cache_policy: Option<String>,
    /// Accepted for compatibility; both modes try the normalized URL, then its aliases.
    #[schema(value_type = Option<MatchMode>)]
    pub match_mode: Option<String>,
}

#[derive(ToSchema)]
#[allow(non_camel_case_types, dead_code)]
pub enum ResolutionMode {
    auto,
    index_only,
    on_demand_only,
}

#[derive(ToSchema)]
#[allow(non_camel_case_types, dead_code)]
pub enum CachePolicy {
    prefer_cache,
    refresh,
}

#[derive(ToSchema)]
#[allow(non_camel_case_types, dead_code)]
pub enum MatchMode {
    strict,
    loose,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LookupResponse {
    pub catalog_key: String,
    pub catalog_display_name: String,
    pub source_base_url: Option<String>,
    pub product: MerchantProductView,
    /// Matches the `X-Request-Id` header.
    pub request_id: String,
    /// Always `indexed`: the product came from this server's index.
    pub source: String,
    /// The URL as sent.
    pub requested_url: String,
    /// The normalized URL the product is stored under; reuse it for follow-up lookups.
    pub normalized_url: String,
}

#[utoipa::path(
    post,
    path = "/v1/products/lookup",
    operation_id = "lookupProduct",
    tag = "products",
    request_body = LookupRequest,
    responses(
        (status = 200, description = "The product", body = LookupResponse),
        (status = 401, description = "Missing or invalid API key", body = super::openapi::ErrorDetail, example = json!({"detail": "Invalid API key"})),
        (status = 403, description = "The key's organization may not use the API", body = super::openapi::ErrorDetail, example = json!({"detail": "api_key_forbidden"})),
        (status = 404, description = "No active product in the granted catalogs has this URL", body = super::openapi::ErrorDetail, example = json!({"detail": "product_not_found"})),
        (status = 422, description = "Not an http(s) URL (`invalid_product_url`), or an invalid body", body = super::openapi::UnprocessableBody, example = json!({"detail": "invalid_product_url"})),
        (status = 429, description = "The organization's rate budget is spent", body = super::openapi::ErrorDetail, example = json!({"detail": "rate_limit_exceeded"})),
        (status = 413, description = "The request body is larger than the server accepts", body = super::openapi::ErrorDetail, example = json!({"detail": "Request body too large"})),
    ),
    security(("bearer" = []))
)]
pub async fn lookup_product(
    partner: Partner,
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    Extension(version): Extension<ApiVersion>,
    request: Request,
) -> ApiResult<Json<Value>> {
    let body = json_value(request, &state).await?;
    let url = version.shape().parse_lookup(&body).map_err(ApiError::Validation)?;
    let outcome = state.services.lookup_product(partner.scope(), &url, None).await.map_err(lookup_error)?;
    let context = RenderContext { request_id: &request_id.0, catalogs: partner.catalogs() };
    Ok(Json(version.shape().render_lookup(&outcome, &url, &context)))
}

/// The May 2026 lookup response (SPEC §4, plus `requestId`, `source`, `requestedUrl`, `normalizedUrl`).
pub fn render_may2026(outcome: &LookupOutcome, requested_url: &str, request_id: &str) -> LookupResponse {
    LookupResponse {
        catalog_key: outcome.catalog.key.clone(),
        catalog_display_name: outcome.catalog.display_name.clone(),
        source_base_url: outcome.catalog.source_base_url.clone(),
        product: MerchantProductView::from_record(&outcome.record),
        request_id: request_id.to_string(),
        source: "indexed".into(),
        requested_url: requested_url.to_string(),
        normalized_url: outcome.record.normalized_url.clone(),
    }
}

pub fn lookup_error(failure: LookupFailure) -> ApiError {
    match failure {
        LookupFailure::InvalidUrl => ErrorCode::InvalidProductUrl.into(),
        LookupFailure::ProductNotFound => ErrorCode::ProductNotFound.into(),
        LookupFailure::CatalogNotFound => ErrorCode::CatalogNotFound.into(),
        LookupFailure::Internal(error) => ApiError::Internal(error),
    }
}

/// Validates a lookup body; returns the URL.
pub fn parse_lookup(value: &Value) -> Result<String, Vec<octogen_core::ValidationIssue>> {
    let mut body =
        ObjectBody::new(value, loc!["body"], &["url", "resolutionMode", "onDemandCachePolicy", "matchMode"])?;
    let url = body.required_string("url", 1);
    body.optional_choice("resolutionMode", RESOLUTION_MODES);
    body.optional_choice("onDemandCachePolicy", CACHE_POLICIES);
    body.optional_choice("matchMode", MATCH_MODES);
    body.finish()?;
    Ok(url.unwrap_or_default())
}

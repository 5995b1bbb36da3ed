use axum::http::header;
use axum::response::{IntoResponse, Response};
use octogen_core::wire::MerchantCatalogSummary;
use octogen_store::GrantedCatalog;
use serde::Serialize;

use crate::auth::Partner;

/// `GET /v1/catalogs`: the active catalogs granted to the caller's organization
/// (an empty array when there are none).
#[utoipa::path(
    get,
    path = "/v1/catalogs",
    operation_id = "listCatalogs",
    tag = "catalogs",
    responses(
        (status = 200, description = "Catalogs granted to the key's organization", body = Vec<MerchantCatalogSummary>),
        (status = 401, description = "Missing or invalid API key", body = super::openapi::ErrorDetail, example = json!({"detail": "Authorization Bearer token required"})),
        (status = 403, description = "The key's organization may not use the API", body = super::openapi::ErrorDetail, example = json!({"detail": "api_key_org_type_forbidden"})),
        (status = 404, description = "Not used by this operation; listed for uniformity", body = super::openapi::ErrorDetail, example = json!({"detail": "Not Found"})),
        (status = 422, description = "Not used by this operation; listed for uniformity", body = super::openapi::ValidationErrorBody),
        (status = 429, description = "The organization's rate budget is spent", body = super::openapi::ErrorDetail, example = json!({"detail": "rate_limit_exceeded"})),
    ),
    security(("bearer" = []))
)]
pub async fn list_catalogs(partner: Partner) -> Response {
    // Serialized straight from the caller's shared catalog list: this is the
    // hottest authenticated route, and copying every string first doubles its allocations.
    let summaries: Vec<SummaryOf<'_>> = partner.catalogs().iter().map(SummaryOf).collect();
    match serde_json::to_vec(&summaries) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(error) => crate::error::ApiError::Internal(error.into()).into_response(),
    }
}

/// A granted catalog in the shape of `MerchantCatalogSummary`, borrowed.
struct SummaryOf<'a>(&'a GrantedCatalog);

impl Serialize for SummaryOf<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let catalog = self.0;
        let mut summary = serializer.serialize_struct("MerchantCatalogSummary", 5)?;
        summary.serialize_field("catalog", &catalog.key)?;
        summary.serialize_field("displayName", &catalog.display_name)?;
        summary.serialize_field("sourceBaseUrl", &catalog.source_base_url)?;
        summary.serialize_field("productCount", &catalog.product_count)?;
        summary.serialize_field("lastIndexedAt", &catalog.last_indexed_at)?;
        summary.end()
    }
}

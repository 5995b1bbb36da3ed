use axum::Json;
use octogen_core::wire::MerchantCatalogSummary;

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
pub async fn list_catalogs(partner: Partner) -> Json<Vec<MerchantCatalogSummary>> {
    Json(
        partner
            .catalogs()
            .iter()
            .map(|catalog| MerchantCatalogSummary {
                catalog: catalog.key.clone(),
                display_name: catalog.display_name.clone(),
                source_base_url: catalog.source_base_url.clone(),
                product_count: catalog.product_count,
                last_indexed_at: catalog.last_indexed_at,
            })
            .collect(),
    )
}

use axum::http::header;
use axum::response::{IntoResponse, Response};
use octogen_core::wire::MerchantCatalogSummary;
use octogen_store::GrantedCatalog;

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
    ([(header::CONTENT_TYPE, "application/json")], summaries_json(partner.catalogs())).into_response()
}

/// A JSON array of the catalogs' summaries, joined from the JSON each granted
/// catalog carries (see `GrantedCatalog::summary_json`).
fn summaries_json(catalogs: &[GrantedCatalog]) -> Vec<u8> {
    let length = catalogs.iter().map(|catalog| catalog.summary_json().len() + 1).sum::<usize>() + 2;
    let mut body = Vec::with_capacity(length);
    body.push(b'[');
    for (position, catalog) in catalogs.iter().enumerate() {
        if position > 0 {
            body.push(b',');
        }
        body.extend_from_slice(catalog.summary_json().as_bytes());
    }
    body.push(b']');
    body
}

#[cfg(test)]
mod tests {
    use octogen_core::wire::MerchantCatalogSummary;
    use octogen_core::Timestamp;

    use super::*;

    #[test]
    fn the_joined_list_is_the_summaries_as_serde_renders_them() {
        let catalogs = [
            GrantedCatalog::new("c1".into(), "north".into(), "North \"Wind\"".into(), None, 0, None),
            GrantedCatalog::new(
                "c2".into(),
                "south".into(),
                "Süd".into(),
                Some("https://south.example".into()),
                12,
                Some(Timestamp::from_millis(1_764_000_000_000)),
            ),
        ];
        let parsed: Vec<MerchantCatalogSummary> = serde_json::from_slice(&summaries_json(&catalogs)).unwrap();
        let expected: Vec<MerchantCatalogSummary> = catalogs.iter().map(GrantedCatalog::summary).collect();
        assert_eq!(parsed, expected);
        assert_eq!(summaries_json(&[]), b"[]");
        let unrendered = GrantedCatalog::new("c1".into(), "north".into(), "North \"Wind\"".into(), None, 0, None);
        assert_eq!(catalogs[0], unrendered, "the rendered JSON is a cache, not part of the catalog");
    }
}

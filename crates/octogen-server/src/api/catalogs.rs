use axum::Json;
use octogen_core::wire::MerchantCatalogSummary;

use crate::auth::Partner;

/// `GET /v1/catalogs`: the active catalogs granted to the caller's organization
/// (an empty array when there are none).
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

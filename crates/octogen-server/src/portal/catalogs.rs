//! The Catalogs page: what the organization's API keys can reach. The same
//! data as `GET /v1/catalogs` (active granted catalogs), read for the
//! organization the user is looking at.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::context;
use serde::Serialize;

use super::render::{page, time, PortalError};
use super::session::PortalUser;
use crate::state::AppState;

#[derive(Serialize)]
struct CatalogRow {
    key: String,
    display_name: String,
    source_base_url: Option<String>,
    product_count: u64,
    last_indexed_at: Option<String>,
}

/// `GET /catalogs`.
pub async fn list(State(state): State<AppState>, user: PortalUser) -> Result<Response, PortalError> {
    let catalogs: Vec<CatalogRow> = match &user.current {
        Some(membership) => state
            .store
            .granted_catalogs(&membership.org.id)
            .await?
            .into_iter()
            .filter(|catalog| catalog.is_active)
            .map(|catalog| CatalogRow {
                key: catalog.key,
                display_name: catalog.display_name,
                source_base_url: catalog.source_base_url,
                product_count: catalog.product_count,
                last_indexed_at: catalog.last_indexed_at.map(time),
            })
            .collect(),
        None => Vec::new(),
    };
    Ok(page(StatusCode::OK, "portal/catalogs.html", context! { layout => user.layout("catalogs"), catalogs }))
}

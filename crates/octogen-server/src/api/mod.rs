//! The partner API, `/v1` (SPEC §4). Every handler takes a `Partner`.

mod body;
mod catalogs;
mod lookup;
pub mod openapi;
mod search;

use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/catalogs", get(catalogs::list_catalogs))
        .route("/products/search", post(search::search_products))
        .route("/products/lookup", post(lookup::lookup_product))
        .route("/openapi.json", get(openapi::openapi_json))
}

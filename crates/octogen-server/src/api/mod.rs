//! The partner API, `/v1` (SPEC §4). Every handler takes a `Partner`.

pub(crate) mod body;
pub(crate) mod catalogs;
pub mod gate;
pub(crate) mod lookup;
mod me;
pub mod openapi;
pub(crate) mod search;

use axum::routing::{get, post};
use axum::{middleware, Router};

use crate::state::AppState;

/// The partner routes sit behind the gate (authentication and rate limits);
/// the OpenAPI document is public.
pub fn router(state: AppState) -> Router<AppState> {
    let partner = Router::new()
        .route("/catalogs", get(catalogs::list_catalogs))
        .route("/products/search", post(search::search_products))
        .route("/products/lookup", post(lookup::lookup_product))
        .route("/me", get(me::me))
        .route_layer(middleware::from_fn_with_state(state, gate::gate));
    Router::new().merge(partner).route("/openapi.json", get(openapi::openapi_json))
}

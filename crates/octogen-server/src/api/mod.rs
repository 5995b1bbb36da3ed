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
///
/// Paths are written out in full and merged rather than `nest`ed under
/// `/v1`: a nested route rewrites every request's URI to strip the prefix,
/// an allocation on the hottest authenticated path for nothing we use.
pub fn router(state: AppState) -> Router<AppState> {
    let partner = Router::new()
        .route("/v1/catalogs", get(catalogs::list_catalogs))
        .route("/v1/products/search", post(search::search_products))
        .route("/v1/products/lookup", post(lookup::lookup_product))
        .route("/v1/me", get(me::me))
        .route_layer(middleware::from_fn_with_state(state, gate::gate));
    Router::new().merge(partner).route("/v1/openapi.json", get(openapi::openapi_json))
}

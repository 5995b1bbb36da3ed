//! The partner API, `/v1` (SPEC §4). Every handler takes a `Partner`.

mod catalogs;

use axum::routing::get;
use axum::Router;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/catalogs", get(catalogs::list_catalogs))
}

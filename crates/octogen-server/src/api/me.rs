//! `GET /v1/me` (API version 2026-10-01 and later): the calling key, its
//! organization and its rate-limit posture. Never any key material.

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use octogen_core::ErrorCode;

use crate::auth::Partner;
use crate::error::code_response;
use crate::ratelimit::Budget;
use crate::versions::{ApiVersion, Caller};

pub async fn me(partner: Partner, Extension(version): Extension<ApiVersion>, request: Request) -> Response {
    let caller = Caller {
        key_id: partner.principal.key_id.to_string(),
        org: partner.org(),
        budget: request.extensions().get::<Budget>().copied(),
    };
    match version.shape().render_me(&caller) {
        Some(body) => Json(body).into_response(),
        // Versions without the route answer as if it did not exist.
        None => code_response(ErrorCode::RouteNotFound),
    }
}

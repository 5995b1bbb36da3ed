//! The partner portal ("Octogen Platform"): server-rendered pages for people.
//!
//! Partners sign in, manage their organization's API keys, see their catalogs
//! and audit log; operators administer organizations, catalogs, grants and
//! users. Every state change goes through the same service layer as the
//! admin API, so the portal adds no second implementation of any rule.
//!
//! Security rules, each enforced in one place:
//! - sessions: `session.rs` (server-side, cookie holds a random token, store keeps its HMAC);
//! - CSRF: `csrf.rs` (a token on every POST form plus `Origin`/`Sec-Fetch-Site`);
//!   only POST routes change state;
//! - headers: `security_headers` below, on every portal response;
//! - output: minijinja templates with auto-escaping (`render.rs`), no HTML in Rust strings.

mod assets;
mod audit;
mod catalogs;
pub(crate) mod csrf;
mod keys;
mod operator;
mod password_reset;
mod render;
mod session;
mod sign_in;

use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

pub use password_reset::password_reset_path;
pub use render::PortalError;
pub use session::PortalUser;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    // The dummy hash that unknown emails are checked against is computed now, in the
    // background, so that even the first such sign-in costs one hash, not two.
    std::thread::spawn(crate::service::password::warm_up);
    Router::new()
        .route("/", get(home))
        .route("/login", get(sign_in::form_page).post(sign_in::submit))
        .route("/logout", post(sign_in::sign_out))
        .route("/reset-password", get(password_reset::form_page).post(password_reset::submit))
        .route("/session/org", post(sign_in::switch_org))
        .route("/keys", get(keys::list).post(keys::create))
        .route("/keys/{key_id}/deactivate", get(keys::confirm_deactivate).post(keys::deactivate))
        .route("/keys/{key_id}/rotate", get(keys::confirm_rotate).post(keys::rotate))
        .route("/catalogs", get(catalogs::list))
        .route("/audit", get(audit::list))
        .merge(operator::router())
        .route("/static/{file}", get(assets::serve))
        // Unknown pages under the operator prefix get the portal's 404 page
        // (an unknown key or organization id gets it from its handler).
        .route("/operator/{*rest}", get(not_found))
        .layer(middleware::from_fn(security_headers))
}

async fn home(user: Option<PortalUser>) -> Redirect {
    match user {
        Some(user) if user.current.is_none() && user.user.is_operator => Redirect::to("/operator/orgs"),
        Some(_) => Redirect::to("/keys"),
        None => Redirect::to("/login"),
    }
}

async fn not_found() -> PortalError {
    PortalError::NotFound
}

/// The policy every portal page ships with: nothing framed, nothing loaded
/// from elsewhere, no inline script or style, forms only to this origin.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn security_headers(request: Request, next: Next) -> Response {
    let is_asset = request.uri().path().starts_with("/static/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let fixed: [(HeaderName, &'static str); 6] = [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (HeaderName::from_static("cross-origin-opener-policy"), "same-origin"),
        (HeaderName::from_static("permissions-policy"), "camera=(), microphone=(), geolocation=()"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    // Pages show account data (and, once, new keys): never kept by a cache or the back button.
    if !is_asset {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response.into_response()
}

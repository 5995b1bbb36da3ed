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
mod flash;
mod keys;
mod operator;
mod password_reset;
mod render;
mod session;
mod sign_in;

use axum::extract::{OptionalFromRequestParts, Request};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

pub use password_reset::password_reset_path;
use render::ErrorPage;
pub use render::PortalError;
use session::LayoutSlot;
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
        .route("/keys/issued/{flash_id}", get(keys::issued))
        .route("/keys/{key_id}/deactivate", get(keys::confirm_deactivate).post(keys::deactivate))
        .route("/keys/{key_id}/rotate", get(keys::confirm_rotate).post(keys::rotate))
        .route("/catalogs", get(catalogs::list))
        .route("/audit", get(audit::list))
        .merge(operator::router())
        .route("/static/{file}", get(assets::serve))
        .layer(middleware::from_fn(portal_layer))
}

async fn home(user: Option<PortalUser>) -> Redirect {
    match user {
        Some(user) if user.current.is_none() && user.user.is_operator => Redirect::to("/operator/orgs"),
        Some(_) => Redirect::to("/keys"),
        None => Redirect::to("/login"),
    }
}

/// Paths of the machine interfaces: unknown ones always answer JSON, as SPEC §3 says.
const API_PREFIXES: [&str; 9] =
    ["/v1", "/admin/v1", "/oauth2", "/mcp", "/.well-known", "/healthz", "/readyz", "/metrics", "/_test"];
/// Paths the portal owns: unknown ones always answer with the portal's HTML page.
const PORTAL_PREFIXES: [&str; 8] =
    ["/keys", "/catalogs", "/audit", "/operator", "/static", "/login", "/logout", "/session"];

fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Whether a request the router has no route (or no method) for gets the
/// portal's HTML page instead of the API's JSON `{"detail": …}`: never under an
/// API prefix; always under a portal prefix; elsewhere (`/nope`, `/admin/x`)
/// when the client asks for HTML, as browsers do (`Accept: text/html`), so
/// scripts and the SPEC's clients still get JSON.
pub fn answers_in_html(path: &str, headers: &HeaderMap) -> bool {
    if API_PREFIXES.iter().any(|prefix| under(path, prefix)) {
        return false;
    }
    PORTAL_PREFIXES.iter().any(|prefix| under(path, prefix))
        || headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .any(|accept| accept.to_ascii_lowercase().contains("text/html"))
}

/// The router's fallback for portal paths (see `answers_in_html`): the 404
/// page, with the navigation when someone is signed in.
pub async fn not_found_page(state: AppState, request: Request) -> Response {
    error_page_for(state, request, StatusCode::NOT_FOUND, ErrorPage::not_found()).await
}

/// `GET /logout` and the like: the portal only changes state through its own forms.
pub async fn method_not_allowed_page(state: AppState, request: Request) -> Response {
    let page = ErrorPage::new(
        "That did not work",
        "This address only takes the portal's own forms. Go back and use the button on the page instead.",
    );
    error_page_for(state, request, StatusCode::METHOD_NOT_ALLOWED, page).await
}

async fn error_page_for(state: AppState, request: Request, status: StatusCode, page: ErrorPage) -> Response {
    let (mut parts, _) = request.into_parts();
    let user =
        <PortalUser as OptionalFromRequestParts<AppState>>::from_request_parts(&mut parts, &state).await.ok().flatten();
    let mut response = page.render(status, user.map(|user| user.layout("")).as_ref());
    set_security_headers(response.headers_mut(), false);
    response
}

/// The policy every portal page ships with: nothing framed, nothing loaded
/// from elsewhere, no inline script or style, forms only to this origin.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Around every portal route: the security headers, and error pages that keep
/// the signed-in user's navigation (the `PortalUser` extractor leaves its
/// layout in the request's `LayoutSlot`; an error page is rendered again with it).
async fn portal_layer(mut request: Request, next: Next) -> Response {
    let is_asset = request.uri().path().starts_with("/static/");
    let slot = LayoutSlot::default();
    request.extensions_mut().insert(slot.clone());
    let mut response = next.run(request).await;
    if let Some(page) = response.extensions().get::<ErrorPage>().cloned() {
        if let Some(layout) = slot.take() {
            // The same status and headers, the page now with the navigation.
            let (parts, _) = response.into_parts();
            let body = page.render(parts.status, Some(&layout)).into_body();
            response = Response::from_parts(parts, body);
        }
    }
    set_security_headers(response.headers_mut(), is_asset);
    response
}

fn set_security_headers(headers: &mut HeaderMap, is_asset: bool) {
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
}

//! The OAuth 2.1 authorization server that MCP clients (agents) use to reach
//! `/mcp` on a person's behalf, in the same binary as the resource it protects.
//!
//! - `metadata`: RFC 9728 protected-resource metadata and RFC 8414
//!   authorization-server metadata;
//! - `clients`: RFC 7591 registration, client ID metadata documents, redirect URI rules;
//! - `authorize`: the authorization endpoint, sign-in through the portal
//!   session, the organization picker and consent screen;
//! - `token`: codes (PKCE S256) and rotating refresh tokens for access tokens;
//! - `resource`: what `/mcp` accepts — a live access token for this resource,
//!   in the `Authorization` header, of a catalog partner's member;
//! - `clock`: the time every expiry is judged by (movable in tests).
//!
//! Codes and tokens are random 256-bit values; the store keeps only their
//! HMAC under the server pepper, compared by lookup of that hash. None of
//! them is ever logged or put in an error message.

// Handlers return `Result<_, Response>` so a refusal is built where it is decided; a
// refused request is not a hot path, so the large `Err` variant costs nothing that matters.
#![allow(clippy::result_large_err)]

mod authorize;
pub mod clients;
pub mod clock;
mod metadata;
pub mod resource;
mod token;

use std::sync::Arc;

use axum::http::header::HOST;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::config::Config;
use crate::state::AppState;

pub use clock::Clock;
pub use resource::McpCaller;

/// Access tokens live this long (the client refreshes them).
pub const ACCESS_TOKEN_SECONDS: i64 = 300;
/// Authorization codes live this long (OAuth 2.1: at most 10 minutes).
pub const CODE_SECONDS: i64 = 300;
/// A pending authorization request waits this long for sign-in and consent.
pub const REQUEST_SECONDS: i64 = 15 * 60;
/// The one scope: read the catalogs granted to the chosen organization.
pub const SCOPE: &str = "catalog";
/// The path of the protected resource.
pub const MCP_PATH: &str = "/mcp";

const CODE_DOMAIN: &str = "octogen-oauth-code";
const ACCESS_DOMAIN: &str = "octogen-oauth-access-token";
const REFRESH_DOMAIN: &str = "octogen-oauth-refresh-token";
const CLIENT_SECRET_DOMAIN: &str = "octogen-oauth-client-secret";

/// Runtime state of the authorization server, shared by every handler.
pub struct OAuthState {
    pub clock: Clock,
    /// Fetches client ID metadata documents (timeouts, size cap, public addresses unless listed).
    pub fetcher: clients::MetadataFetcher,
}

impl OAuthState {
    pub fn new(config: &Config) -> anyhow::Result<Arc<OAuthState>> {
        if config.insecure_test_hooks {
            tracing::warn!(
                "insecure_test_hooks is on: the OAuth clock can be moved; never use this setting in production"
            );
        }
        Ok(Arc::new(OAuthState {
            clock: Clock::default(),
            fetcher: clients::MetadataFetcher::new(config.fetch_allow_private.clone())?,
        }))
    }
}

pub fn router() -> Router<AppState> {
    let pages = Router::new()
        .route("/oauth2/authorize", get(authorize::authorize))
        .route("/oauth2/consent", get(authorize::consent_page).post(authorize::consent))
        .layer(middleware::from_fn(authorize::page_headers));
    Router::new()
        .merge(pages)
        .route("/.well-known/oauth-protected-resource", get(metadata::protected_resource))
        .route("/.well-known/oauth-protected-resource/mcp", get(metadata::protected_resource))
        .route("/.well-known/oauth-authorization-server", get(metadata::authorization_server))
        .route("/oauth2/register", post(clients::register))
        .route("/oauth2/token", post(token::token))
        .route("/_test/clock", post(clock::advance))
}

/// Where this server is, as clients see it: from `public_url`, or else from the
/// request's `Host` (plain http: set `public_url` behind TLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Urls {
    /// The issuer identifier and base of every endpoint: `scheme://host[:port]`.
    pub issuer: String,
}

impl Urls {
    pub fn of(config: &Config, headers: &HeaderMap) -> Option<Urls> {
        if let Some(origin) = config.public_origin() {
            return Some(Urls { issuer: origin });
        }
        let host = headers.get(HOST)?.to_str().ok()?;
        let authority: http::uri::Authority = host.parse().ok()?;
        if authority.as_str().contains('@') {
            return None;
        }
        Some(Urls { issuer: format!("http://{}", authority.as_str().to_ascii_lowercase()) })
    }

    /// The protected resource (the audience of every access token): the MCP endpoint.
    pub fn resource(&self) -> String {
        format!("{}{MCP_PATH}", self.issuer)
    }

    /// RFC 9728 metadata of the resource, at its path-suffixed well-known URL.
    pub fn resource_metadata(&self) -> String {
        format!("{}/.well-known/oauth-protected-resource{MCP_PATH}", self.issuer)
    }

    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}

/// Hex HMAC of a code, token or client secret, under its own domain.
fn hash(state: &AppState, domain: &str, secret: &str) -> String {
    state.secrets.pepper.hash_token(domain, secret.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect()
}

pub(crate) fn access_token_hash(state: &AppState, token: &str) -> String {
    hash(state, ACCESS_DOMAIN, token)
}

/// An OAuth error response (RFC 6749 §5.2): `{"error", "error_description"}`, never cached.
pub(crate) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut response = (status, Json(json!({"error": error, "error_description": description}))).into_response();
    no_store(response.headers_mut());
    response
}

pub(crate) fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// Takes a token from the rate bucket `key`; a limiter failure is a 503.
pub(crate) async fn charge(state: &AppState, key: &str, per_minute: u32) -> Result<crate::ratelimit::Budget, Response> {
    state.limiter.take(key, per_minute).await.map_err(|error| {
        tracing::error!(error = format!("{error:#}"), "the rate limiter is unavailable");
        oauth_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", "try again later")
    })
}

/// 400 for a request whose `Host` cannot name this server (and no `public_url`).
pub(crate) fn bad_host() -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "the Host header does not name this server")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_come_from_public_url_or_the_host() {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("Octo.Local:8080"));
        let urls = Urls::of(&Config::default(), &headers).unwrap();
        assert_eq!(urls.issuer, "http://octo.local:8080");
        assert_eq!(urls.resource(), "http://octo.local:8080/mcp");
        assert_eq!(urls.resource_metadata(), "http://octo.local:8080/.well-known/oauth-protected-resource/mcp");
        let config = Config { public_url: Some("https://octo.example/".into()), ..Config::default() };
        assert_eq!(Urls::of(&config, &headers).unwrap().issuer, "https://octo.example");
        headers.insert(HOST, HeaderValue::from_static("user@evil"));
        assert!(Urls::of(&Config::default(), &headers).is_none());
        assert!(Urls::of(&Config::default(), &HeaderMap::new()).is_none());
    }
}

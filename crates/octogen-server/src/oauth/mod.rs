//! The OAuth 2.1 authorization server that MCP clients (agents) use to reach
//! `/mcp` on a person's behalf, in the same binary as the resource it protects.
//!
//! - `metadata`: RFC 9728 protected-resource metadata and RFC 8414
//!   authorization-server metadata;
//! - `clients`: RFC 7591 registration, client ID metadata documents, redirect URI rules;
//! - `authorize`: the authorization endpoint, sign-in through the portal
//!   session, the organization picker and consent screen;
//! - `pending`: authorization requests travel sealed (HMAC) in the consent URL,
//!   so nothing is stored for them before a signed-in person answers;
//! - `token`: codes (PKCE S256) and rotating refresh tokens for access tokens;
//! - `resource`: what `/mcp` accepts — a live access token for this resource,
//!   in the `Authorization` header, of a catalog partner's member;
//! - `clock`: the time every expiry is judged by (movable in tests).
//!
//! Codes and tokens are random 256-bit values; the store keeps only their
//! HMAC under the server pepper, compared by lookup of that hash. None of
//! them is ever logged or put in an error message.
//!
//! Anonymous clients can reach authorize and register: both draw from a budget
//! per client address (`oauth_limit_per_minute`) and neither stores anything
//! unbounded. Failed tokens at the token endpoint and at `/mcp` draw from the
//! same per-address failure budget as failed API keys at `/v1`.

// Handlers return `Result<_, Response>` so a refusal is built where it is decided; a
// refused request is not a hot path, so the large `Err` variant costs nothing that matters.
#![allow(clippy::result_large_err)]

mod authorize;
pub mod clients;
pub mod clock;
mod metadata;
mod pending;
pub mod resource;
mod token;

use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use axum::http::header::HOST;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::config::Config;
use crate::net::ClientAddr;
use crate::ratelimit::Budget;
use crate::state::AppState;

pub use clock::Clock;
pub(crate) use pending::SEALED_MAX_BYTES as SEALED_REQUEST_MAX_BYTES;
pub use resource::McpCaller;

/// Access tokens live this long (the client refreshes them).
pub const ACCESS_TOKEN_SECONDS: i64 = 300;
/// Authorization codes live this long (OAuth 2.1: at most 10 minutes).
pub const CODE_SECONDS: i64 = 300;
/// A pending authorization request waits this long for sign-in and consent.
pub const REQUEST_SECONDS: i64 = 15 * 60;
/// A client no person approved and no token was issued to for this long is forgotten.
pub const CLIENT_UNUSED_SECONDS: i64 = 30 * 24 * 3600;
/// Expired OAuth state is pruned at most this often (per node).
const PRUNE_EVERY_MILLIS: i64 = 60 * 1000;
/// The longest redirect URI accepted, at registration and in an authorization request.
pub const REDIRECT_URI_MAX_BYTES: usize = 2048;
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
    /// When this node last pruned expired OAuth state (OAuth clock, Unix millis).
    last_pruned_millis: AtomicI64,
}

impl OAuthState {
    pub fn new(config: &Config) -> anyhow::Result<Arc<OAuthState>> {
        check_exposure(config)?;
        if config.insecure_test_hooks {
            tracing::warn!(
                "insecure_test_hooks is on: the OAuth clock can be moved; never use this setting in production"
            );
        }
        Ok(Arc::new(OAuthState {
            clock: Clock::default(),
            fetcher: clients::MetadataFetcher::new(config.fetch_allow_private.clone())?,
            last_pruned_millis: AtomicI64::new(i64::MIN),
        }))
    }
}

/// Without `public_url`, the issuer, the resource and every URL the portal and
/// the OAuth server hand out come from the request's `Host`, which only a
/// loopback listener can trust (nobody else can reach it). On any other
/// address the server refuses to start rather than serve under whatever name a
/// client sends.
fn check_exposure(config: &Config) -> anyhow::Result<()> {
    if config.public_url.is_none() && !config.listen.ip().is_loopback() {
        anyhow::bail!(
            "listen = {} is not a loopback address, so public_url must be set (e.g. public_url = \
             \"https://octogen.example.com\"): without it the OAuth issuer and the portal would follow the Host \
             header any client sends. Listen on 127.0.0.1 for a local server.",
            config.listen
        );
    }
    Ok(())
}

/// Prunes expired OAuth state, and clients unused for `CLIENT_UNUSED_SECONDS`, at
/// most once a minute: called from the paths that add state (registration,
/// consent), so no background task is needed and an idle server does nothing.
pub(crate) async fn housekeeping(state: &AppState) {
    let now = state.oauth.clock.now();
    let last = state.oauth.last_pruned_millis.load(Ordering::Relaxed);
    let due = now.millis().saturating_sub(last) >= PRUNE_EVERY_MILLIS;
    // One caller per minute wins the exchange; the others go on without waiting.
    if !due
        || state
            .oauth
            .last_pruned_millis
            .compare_exchange(last, now.millis(), Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    if let Err(error) = state.store.prune_oauth(now, now.plus_millis(-CLIENT_UNUSED_SECONDS * 1000)).await {
        tracing::warn!(error = %error, "cannot prune expired OAuth state");
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
/// request's `Host` when it names a loopback host (plain http; a server on any
/// other address must have `public_url`, see `check_exposure`).
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
        // A loopback listener may still be reached under another name (DNS rebinding, a
        // local proxy passing the client's Host on): only loopback names are believed.
        if authority.as_str().contains('@') || !is_loopback_name(authority.host()) {
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

/// `localhost`, or a loopback IP address (IPv6 in brackets or not).
fn is_loopback_name(host: &str) -> bool {
    let bare = host.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')).unwrap_or(host);
    bare.eq_ignore_ascii_case("localhost") || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
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
    oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "the Host header does not name this server (without public_url only loopback names are accepted)",
    )
}

/// Takes a token from the client address's budget for anonymous OAuth requests
/// (authorization requests and registrations): a client may start this many
/// connections a minute, enough for people and their retrying agents.
pub(crate) async fn anonymous_budget(state: &AppState, client: &ClientAddr) -> Result<Budget, Response> {
    let budget =
        charge(state, &format!("oauth-anonymous:{}", client.bucket()), state.config.oauth_limit_per_minute).await?;
    if !budget.allowed() {
        state.metrics.rate_limited("oauth_anonymous");
    }
    Ok(budget)
}

/// A failed credential (access token, refresh token, code, client secret) from
/// `client`: counted, and charged to the address's failure budget, the one failed
/// API keys at `/v1` draw from. `refusal` is returned with the budget's headers,
/// or a 429 once the budget is spent. Valid credentials are never charged, so
/// they keep working from a throttled address.
pub(crate) async fn failed_attempt(state: &AppState, client: &ClientAddr, reason: &str, refusal: Response) -> Response {
    state.metrics.auth_failure(reason);
    let key = crate::api::gate::auth_failures_budget(client);
    let budget = match charge(state, &key, state.config.auth_failure_limit_per_minute).await {
        Ok(budget) => budget,
        Err(unavailable) => return unavailable,
    };
    let mut response = if budget.allowed() {
        refusal
    } else {
        state.metrics.rate_limited("auth_failures");
        too_many_requests("too many failed attempts from this address; try again later")
    };
    budget.apply_headers(response.headers_mut());
    response
}

/// 429 in the OAuth error shape (the budget's headers, `Retry-After` included, are the caller's to add).
pub(crate) fn too_many_requests(description: &str) -> Response {
    oauth_error(StatusCode::TOO_MANY_REQUESTS, "temporarily_unavailable", description)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_come_from_public_url_or_the_host() {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("Octo.Local:8080"));
        assert!(Urls::of(&Config::default(), &headers).is_none(), "not a loopback name");
        headers.insert(HOST, HeaderValue::from_static("LocalHost:8080"));
        let urls = Urls::of(&Config::default(), &headers).unwrap();
        assert_eq!(urls.issuer, "http://localhost:8080");
        assert_eq!(urls.resource(), "http://localhost:8080/mcp");
        assert_eq!(urls.resource_metadata(), "http://localhost:8080/.well-known/oauth-protected-resource/mcp");
        let config = Config { public_url: Some("https://octo.example/".into()), ..Config::default() };
        assert_eq!(Urls::of(&config, &headers).unwrap().issuer, "https://octo.example");
        headers.insert(HOST, HeaderValue::from_static("user@evil"));
        assert!(Urls::of(&Config::default(), &headers).is_none());
        assert!(Urls::of(&Config::default(), &HeaderMap::new()).is_none());
    }

    #[test]
    fn without_public_url_only_loopback_hosts_are_believed() {
        let issuer = |host: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(HOST, HeaderValue::from_static(host));
            Urls::of(&Config::default(), &headers).map(|urls| urls.issuer)
        };
        assert_eq!(issuer("localhost:8080").as_deref(), Some("http://localhost:8080"));
        assert_eq!(issuer("127.0.0.2").as_deref(), Some("http://127.0.0.2"));
        assert_eq!(issuer("[::1]:9").as_deref(), Some("http://[::1]:9"));
        for foreign in ["evil.example", "octo.local:8080", "10.0.0.1", "[2001:db8::1]", "localhost.evil.example"] {
            assert_eq!(issuer(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn a_public_listen_address_needs_public_url() {
        let public = Config { listen: "0.0.0.0:8080".parse().unwrap(), ..Config::default() };
        let error = check_exposure(&public).unwrap_err().to_string();
        assert!(error.contains("public_url") && error.contains("0.0.0.0:8080"), "{error}");
        assert!(check_exposure(&Config { public_url: Some("https://octo.example".into()), ..public }).is_ok());
        assert!(check_exposure(&Config { listen: "[::1]:8080".parse().unwrap(), ..Config::default() }).is_ok());
    }
}

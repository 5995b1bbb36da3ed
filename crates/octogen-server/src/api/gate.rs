//! The `/v1` gate: every partner request is authenticated here once, charged
//! to its organization's budget, and answered with the `X-RateLimit-*`
//! headers — errors included. Failed authentications are charged to the
//! client address instead, so guessing keys is throttled too.

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use octogen_core::ErrorCode;

use crate::auth::{authenticate_request, Partner};
use crate::error::code_response;
use crate::net::{client_ip, ClientAddr};
use crate::ratelimit::Budget;
use crate::state::AppState;
use crate::versions::{self, ApiVersion};

pub async fn gate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let requested = match versions::requested(request.headers()) {
        Ok(requested) => requested,
        Err(unknown) => return unknown.into_response(),
    };
    let (version, mut response) = authenticate_and_run(&state, requested, request, next).await;
    response.headers_mut().insert(versions::VERSION_HEADER.clone(), version.header_value());
    response
}

/// Authenticates, charges the budget and runs the handler; returns the API
/// version that served the request (the header's, else the organization's).
async fn authenticate_and_run(
    state: &AppState,
    requested: Option<ApiVersion>,
    mut request: Request,
    next: Next,
) -> (ApiVersion, Response) {
    let default = ApiVersion::named(&state.config.default_api_version).unwrap_or(ApiVersion::ORIGINAL);
    match authenticate_request(state, request.headers()).await {
        Ok(principal) => {
            let version = requested.unwrap_or_else(|| versions::of_org(&principal.org));
            let per_minute = principal.org.rate_limit_per_minute.unwrap_or(state.config.default_rate_limit_per_minute);
            let budget = match charge(state, &organization_budget(&principal.org.id), per_minute).await {
                Ok(budget) => budget,
                Err(response) => return (version, response),
            };
            if !budget.allowed() {
                state.metrics.rate_limited("organization");
                return (version, refused(budget));
            }
            state.usage.touch(principal.key_id);
            request.extensions_mut().insert(Partner { principal });
            request.extensions_mut().insert(version);
            request.extensions_mut().insert(budget);
            let mut response = next.run(request).await;
            budget.apply_headers(response.headers_mut());
            (version, response)
        }
        Err(failure) => {
            let version = requested.unwrap_or(default);
            state.metrics.auth_failure(failure.reason);
            let peer = request.extensions().get::<ConnectInfo<std::net::SocketAddr>>().map(|info| info.0.ip());
            let client = ClientAddr(client_ip(peer, request.headers(), &state.config.trusted_proxies));
            let budget = match charge_auth_failure(state, client).await {
                Ok(budget) => budget,
                Err(response) => return (version, response),
            };
            let mut response = code_response(failure.code);
            budget.apply_headers(response.headers_mut());
            (version, response)
        }
    }
}

/// Charges a failed authentication (any credential: API key, operator token)
/// to the client address's bucket, so guessing is throttled wherever it
/// happens. `Err` is the answer to send instead: 429 once the bucket is
/// empty (503 if the limiter is down).
pub async fn charge_auth_failure(state: &AppState, client: ClientAddr) -> Result<Budget, Response> {
    let budget = charge(state, &auth_failures_budget(&client), state.config.auth_failure_limit_per_minute).await?;
    if !budget.allowed() {
        state.metrics.rate_limited("auth_failures");
        return Err(refused(budget));
    }
    Ok(budget)
}

/// The bucket every request of an organization draws from, on every surface (REST and MCP).
pub fn organization_budget(org_id: &str) -> String {
    format!("org:{org_id}")
}

/// The bucket failed credentials from a client address draw from, on every surface
/// (API keys at `/v1`, access tokens at `/mcp`, the OAuth token endpoint).
pub fn auth_failures_budget(client: &ClientAddr) -> String {
    format!("auth-failures:{}", client.bucket())
}

async fn charge(state: &AppState, key: &str, per_minute: u32) -> Result<Budget, Response> {
    state.limiter.take(key, per_minute).await.map_err(|error| {
        tracing::error!(error = format!("{error:#}"), "the rate limiter is unavailable");
        code_response(ErrorCode::ServiceUnavailable)
    })
}

fn refused(budget: Budget) -> Response {
    let mut response = code_response(ErrorCode::RateLimitExceeded);
    budget.apply_headers(response.headers_mut());
    response
}

//! What `/mcp` accepts: an access token in the `Authorization` header (never
//! the query string), live (not expired; its grant not revoked; its sign-in
//! session not ended; its user still a member of its organization), issued by
//! this issuer for this resource, acting in an organization that is a catalog
//! partner and not suspended.
//!
//! Refusals follow RFC 6750 and RFC 9728: 401 with `WWW-Authenticate: Bearer
//! resource_metadata="…", scope="catalog"` (plus `error="invalid_token"` when a
//! token was sent) so a client can discover how to get a token and what to ask
//! for; 403 when the token is fine but its organization may not use the
//! catalog tools. A refused token draws from the client address's failure
//! budget (shared with `/v1`): 429 once it is spent.

use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use octogen_store::{GrantedCatalog, OrgAccess, OrgType, TokenKind};
use serde_json::json;

use super::{access_token_hash, failed_attempt, no_store, Urls, SCOPE};
use crate::auth::bearer_token;
use crate::net::ClientAddr;
use crate::service::products::Scope;
use crate::state::AppState;

/// The caller of an MCP request, decided once per HTTP request from its token.
#[derive(Debug, Clone)]
pub struct McpCaller {
    pub user_id: String,
    pub client_id: String,
    pub grant_id: String,
    pub org: Arc<OrgAccess>,
    /// Active catalogs granted to the organization, as of this request.
    pub catalogs: Arc<[GrantedCatalog]>,
}

impl McpCaller {
    pub fn scope(&self) -> Scope<'_> {
        Scope { org_id: &self.org.id, catalogs: &self.catalogs }
    }
}

/// Authenticates an MCP request from `client`, or says how it is refused.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    client: &ClientAddr,
) -> Result<McpCaller, Response> {
    let query_token = uri
        .query()
        .is_some_and(|query| url::form_urlencoded::parse(query.as_bytes()).any(|(name, _)| name == "access_token"));
    let presented = query_token || bearer_token(headers).is_some();
    match check(state, headers, query_token).await {
        // Asking without a token is how a client discovers the authorization server: not a failure.
        Err(refusal) if presented && matches!(refusal.status(), StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED) => {
            Err(failed_attempt(state, client, "oauth_access_token", refusal).await)
        }
        outcome => outcome,
    }
}

async fn check(state: &AppState, headers: &HeaderMap, query_token: bool) -> Result<McpCaller, Response> {
    let Some(urls) = Urls::of(&state.config, headers) else { return Err(super::bad_host()) };
    let Some(token) = bearer_token(headers) else {
        if query_token {
            return Err(challenge(
                &urls,
                Some(("invalid_request", "access tokens are accepted only in the Authorization header")),
            ));
        }
        return Err(challenge(&urls, None));
    };
    if query_token {
        return Err(refusal(
            StatusCode::BAD_REQUEST,
            &urls,
            Some(("invalid_request", "send the access token once, in the Authorization header")),
        ));
    }
    let invalid = |description| Err(challenge(&urls, Some(("invalid_token", description))));
    let Ok(token) = std::str::from_utf8(token) else { return invalid("the access token is not valid") };
    let found = match state.store.find_oauth_token(&access_token_hash(state, token), TokenKind::Access).await {
        Ok(found) => found,
        Err(error) => {
            tracing::error!(error = %error, "cannot check an access token");
            let mut response =
                (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"error": "temporarily_unavailable"}))).into_response();
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return Err(response);
        }
    };
    let Some(found) = found else { return invalid("the access token is not valid") };
    let now = state.oauth.clock.now();
    if found.expires_at <= now {
        return invalid("the access token has expired");
    }
    if found.session_expires_at <= now {
        return invalid("the sign-in session behind this token has ended");
    }
    if found.grant.issuer != urls.issuer || found.grant.resource != urls.resource() {
        return invalid("the access token was issued for another resource");
    }
    let principal = match state.store.org_principal(&found.grant.org_id).await {
        Ok(Some(principal)) => principal,
        Ok(None) => return invalid("the access token is not valid"),
        Err(error) => {
            tracing::error!(error = %error, "cannot read an organization");
            return Err(
                (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"error": "temporarily_unavailable"}))).into_response()
            );
        }
    };
    if principal.org.org_type != OrgType::CatalogPartner {
        return Err(forbidden("org_type_forbidden", "the organization is not a catalog partner"));
    }
    if principal.org.suspended {
        return Err(forbidden("org_suspended", "the organization is suspended"));
    }
    Ok(McpCaller {
        user_id: found.grant.user_id,
        client_id: found.grant.client_id,
        grant_id: found.grant.id,
        org: principal.org,
        catalogs: principal.catalogs,
    })
}

/// 401 naming the resource metadata (and the error, when a token was sent).
pub fn challenge(urls: &Urls, error: Option<(&str, &str)>) -> Response {
    refusal(StatusCode::UNAUTHORIZED, urls, error)
}

fn refusal(status: StatusCode, urls: &Urls, error: Option<(&str, &str)>) -> Response {
    let mut value = format!("Bearer resource_metadata=\"{}\", scope=\"{SCOPE}\"", urls.resource_metadata());
    let body = match error {
        Some((code, description)) => {
            value.push_str(&format!(", error=\"{code}\", error_description=\"{description}\""));
            json!({"error": code, "error_description": description})
        }
        None => json!({"error": "unauthorized", "error_description": "an OAuth access token is required"}),
    };
    let mut response = (status, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    no_store(response.headers_mut());
    response
}

fn forbidden(code: &str, description: &str) -> Response {
    let mut response =
        (StatusCode::FORBIDDEN, Json(json!({"error": code, "error_description": description}))).into_response();
    no_store(response.headers_mut());
    response
}

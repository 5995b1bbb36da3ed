//! Discovery documents: RFC 9728 protected-resource metadata (served at the
//! root and path-suffixed well-known URLs) and RFC 8414 authorization-server
//! metadata. Both are public and may be read by browser-based clients. They are
//! never cached: without `public_url` they depend on the request's `Host`, and a
//! changed `public_url` must apply at once.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::{bad_host, no_store, Urls, SCOPE};
use crate::state::AppState;

/// `GET /.well-known/oauth-protected-resource[/mcp]`: `resource` is the MCP URL.
pub async fn protected_resource(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(urls) = Urls::of(&state.config, &headers) else { return bad_host() };
    public(Json(json!({
        "resource": urls.resource(),
        "authorization_servers": [urls.issuer],
        "bearer_methods_supported": ["header"],
        "scopes_supported": [SCOPE],
        "resource_name": "Octogen catalog tools (MCP)",
        "resource_documentation": urls.endpoint("/v1/openapi.json"),
    })))
}

/// `GET /.well-known/oauth-authorization-server`.
pub async fn authorization_server(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(urls) = Urls::of(&state.config, &headers) else { return bad_host() };
    public(Json(json!({
        "issuer": urls.issuer,
        "authorization_endpoint": urls.endpoint("/oauth2/authorize"),
        "token_endpoint": urls.endpoint("/oauth2/token"),
        "registration_endpoint": urls.endpoint("/oauth2/register"),
        "scopes_supported": [SCOPE],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": true,
    })))
}

fn public(body: Json<serde_json::Value>) -> Response {
    let mut response = body.into_response();
    response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    no_store(response.headers_mut());
    response
}

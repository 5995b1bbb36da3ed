//! The MCP endpoint, `/mcp` (SPEC §7): rmcp's streamable HTTP transport in
//! stateless mode (every POST stands alone, so any node of a deployment can
//! answer any request), behind a gate that checks `Origin` and the OAuth
//! access token of every request. The three tools (`tools.rs`) are thin calls
//! into the same services as the REST API, with the caller's granted catalogs
//! as their scope and the organization's rate budget (shared with REST) charged
//! per tool call.

mod tools;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{HOST, ORIGIN};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ErrorData, Implementation, ListToolsResult, PaginatedRequestParams,
    ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{RoleServer, ServerHandler};
use serde_json::json;

use crate::net::ClientAddr;
use crate::oauth::{resource, McpCaller, MCP_PATH};
use crate::state::AppState;

pub fn router(state: AppState) -> Router<AppState> {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        // `Origin` is checked by the gate; `Host` is whatever name the deployment is reached by.
        .disable_allowed_hosts()
        .with_max_request_body_bytes(state.config.max_body_bytes);
    let handler_state = state.clone();
    let service = StreamableHttpService::new(
        move || Ok(OctogenMcp { state: handler_state.clone() }),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    Router::new().route_service(MCP_PATH, service).layer(middleware::from_fn_with_state(state, gate))
}

/// Every request to `/mcp`: a foreign `Origin` is refused (403) before
/// anything else, then the access token decides (401/403, and 429 for an
/// address whose failures are over budget; see `oauth::resource`).
async fn gate(State(state): State<AppState>, client: ClientAddr, mut request: Request, next: Next) -> Response {
    if !origin_allowed(request.headers(), &state) {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({"error": "forbidden_origin", "error_description": "requests from other origins are refused"})),
        )
            .into_response();
    }
    match resource::authenticate(&state, request.headers(), request.uri(), &client).await {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(refusal) => refusal,
    }
}

/// No `Origin` (not a browser) is fine; otherwise it must be this server's own:
/// the `public_url` origin, or the origin the request's `Host` names.
fn origin_allowed(headers: &HeaderMap, state: &AppState) -> bool {
    let Some(origin) = headers.get(ORIGIN) else { return true };
    let Ok(origin) = origin.to_str() else { return false };
    match state.config.public_origin() {
        Some(public) => origin.eq_ignore_ascii_case(&public),
        None => {
            let host = headers.get(HOST).and_then(|host| host.to_str().ok()).unwrap_or("");
            !host.is_empty()
                && (origin.eq_ignore_ascii_case(&format!("http://{host}"))
                    || origin.eq_ignore_ascii_case(&format!("https://{host}")))
        }
    }
}

/// One per request (stateless): the application state and nothing else.
#[derive(Clone)]
pub struct OctogenMcp {
    state: AppState,
}

const INSTRUCTIONS: &str = "Product catalogs of the merchants granted to your organization. Call list_catalogs \
first to learn the catalog keys; search_products searches one catalog (page with nextCursor); lookup_product \
resolves a product page URL to the full product record. Errors come back as results with an `error` field.";

impl ServerHandler for OctogenMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("octogen", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools::definitions()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools::definitions().into_iter().find(|tool| tool.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let parts = context.extensions.get::<http::request::Parts>();
        let Some(caller) = parts.and_then(|parts| parts.extensions.get::<McpCaller>()) else {
            return Err(ErrorData::internal_error("the request was not authenticated", None));
        };
        let request_id = parts
            .and_then(|parts| parts.extensions.get::<crate::app::RequestId>())
            .map(|id| id.0.clone())
            .unwrap_or_default();
        tools::call(&self.state, caller, &request_id, request).await.map(CallToolResponse::from)
    }
}

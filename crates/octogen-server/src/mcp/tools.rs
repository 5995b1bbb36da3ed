//! The three tools of SPEC §7, each a thin call into the service layer that
//! REST uses, returning the REST shapes (camelCase JSON):
//!
//! - `list_catalogs()` → the array of `GET /v1/catalogs` (structured content
//!   wraps it as `{"catalogs": […]}`, since MCP structured content is an object);
//! - `lookup_product(canonical_url, catalogs?)` → the body of `POST /v1/products/lookup`;
//! - `search_products(catalog, query?, limit?, cursor?)` → the body of `POST /v1/products/search`.
//!
//! The text content of a result is that JSON; problems the agent can act on
//! are results too (`isError: true`) carrying `{"error": code, "message"}`:
//! `product_not_found`, `catalog_not_granted`, `invalid_limit`,
//! `invalid_product_url`, `invalid_arguments`, `query_too_long` (over
//! 1,000 characters, like REST's 422). A malformed cursor (or one of
//! another query) silently restarts at page 1. Only tool calls are charged to
//! the organization's rate budget; when it is spent the call fails with
//! JSON-RPC error -32029 `rate_limited`.

use std::sync::Arc;

use octogen_core::wire::{MerchantCatalogSummary, MerchantProductListItem, MerchantProductView};
use octogen_search::MAX_QUERY_CHARS;
use octogen_store::GrantedCatalog;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ContentBlock, ErrorCode, ErrorData, JsonObject, Tool, ToolAnnotations,
};
use serde_json::{json, Map, Value};

use crate::api::gate::organization_budget;
use crate::oauth::McpCaller;
use crate::service::products::{LookupFailure, ProductSearch, SearchFailure};
use crate::state::AppState;

/// JSON-RPC error code of a spent rate budget (SPEC §7).
pub const RATE_LIMITED: i32 = -32029;
const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 100;

pub fn definitions() -> Vec<Tool> {
    let read_only = ToolAnnotations::new().read_only(true).destructive(false).idempotent(true).open_world(false);
    vec![
        Tool::new(
            "list_catalogs",
            "List the merchant catalogs your organization may search. Returns an array of \
             {catalog, displayName, sourceBaseUrl, productCount, lastIndexedAt}; `catalog` is the key the other \
             tools take. An empty array means no catalog is granted yet. Call this first.",
            schema(json!({"type": "object", "properties": {}, "additionalProperties": false})),
        )
        .with_title("List catalogs")
        .with_annotations(read_only.clone()),
        Tool::new(
            "search_products",
            "Search the products of one granted catalog. Free-text `query` matches titles, brands, product types, \
             tags and descriptions (typos and plurals are tolerated); without a query it browses the catalog by \
             title. Returns {items, nextCursor, requestId}: each item has uuid, title, productUrl, brand, \
             currentPrice, originalPrice, currency, imageUrl, rating and more. To get the next page, call again \
             with the same catalog and query and `cursor` = nextCursor; nextCursor is null on the last page. Use \
             lookup_product with an item's productUrl for its full record (description, sizes, colors, variants).",
            schema(json!({
                "type": "object",
                "properties": {
                    "catalog": {
                        "type": "string", "minLength": 1,
                        "description": "Key of a granted catalog, as returned by list_catalogs (e.g. \"northwind\")."
                    },
                    "query": {
                        "type": "string", "maxLength": MAX_QUERY_CHARS,
                        "description": "Free text, e.g. \"black hoodie\" or \"waterproof hiking boots\". Omit to browse."
                    },
                    "limit": {
                        "type": "integer", "minimum": 1, "maximum": 100, "default": 50,
                        "description": "Products per page, 1 to 100 (default 50)."
                    },
                    "cursor": {
                        "type": "string",
                        "description": "nextCursor of the previous page of the same search; omit for the first page."
                    }
                },
                "required": ["catalog"],
                "additionalProperties": false
            })),
        )
        .with_title("Search products")
        .with_annotations(read_only.clone()),
        Tool::new(
            "lookup_product",
            "Resolve a product page URL to the full product record: description, price, availability (inStock), \
             sizes, colors, variants, materials, images, reviews and more. The URL is normalized first (scheme, \
             www., tracking parameters such as utm_* and trailing slash do not matter). Returns {catalogKey, \
             catalogDisplayName, sourceBaseUrl, product, normalizedUrl, …}, or the error product_not_found when no \
             active product of the granted catalogs has that URL.",
            schema(json!({
                "type": "object",
                "properties": {
                    "canonical_url": {
                        "type": "string", "minLength": 1, "format": "uri",
                        "description": "The product page URL, e.g. https://northwind.example/products/trail-hoodie."
                    },
                    "catalogs": {
                        "type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1},
                        "description": "Optional: look only in these granted catalogs (keys from list_catalogs)."
                    }
                },
                "required": ["canonical_url"],
                "additionalProperties": false
            })),
        )
        .with_title("Look up a product")
        .with_annotations(read_only),
    ]
}

fn schema(value: Value) -> Arc<JsonObject> {
    match value {
        Value::Object(map) => Arc::new(map),
        _ => unreachable!("tool schemas are objects"),
    }
}

/// Runs one tool call for `caller`, charged to its organization's budget.
pub async fn call(
    state: &AppState,
    caller: &McpCaller,
    request_id: &str,
    request: CallToolRequestParams,
) -> Result<CallToolResult, ErrorData> {
    let name = request.name.as_ref();
    if !matches!(name, "list_catalogs" | "search_products" | "lookup_product") {
        return Err(ErrorData::invalid_params(format!("unknown tool {name:?}"), None));
    }
    charge(state, caller).await?;
    let arguments = request.arguments.unwrap_or_default();
    match name {
        "list_catalogs" => Ok(list_catalogs(caller)),
        "search_products" => search_products(state, caller, request_id, &arguments).await,
        _ => lookup_product(state, caller, request_id, &arguments).await,
    }
}

/// One token from the organization's bucket, the one its REST traffic uses.
async fn charge(state: &AppState, caller: &McpCaller) -> Result<(), ErrorData> {
    let per_minute = caller.org.rate_limit_per_minute.unwrap_or(state.config.default_rate_limit_per_minute);
    let budget = state.limiter.take(&organization_budget(&caller.org.id), per_minute).await.map_err(|error| {
        tracing::error!(error = format!("{error:#}"), "the rate limiter is unavailable");
        ErrorData::internal_error("temporarily unavailable", None)
    })?;
    match budget.retry_after {
        None => Ok(()),
        Some(retry_after) => {
            state.metrics.rate_limited("organization");
            Err(ErrorData::new(
                ErrorCode(RATE_LIMITED),
                "rate_limited",
                Some(json!({"error": "rate_limited", "retry_after": retry_after})),
            ))
        }
    }
}

fn list_catalogs(caller: &McpCaller) -> CallToolResult {
    let catalogs: Vec<MerchantCatalogSummary> = caller.catalogs.iter().map(GrantedCatalog::summary).collect();
    let array = json!(catalogs);
    let mut result = CallToolResult::success(vec![ContentBlock::text(array.to_string())]);
    result.structured_content = Some(json!({"catalogs": array}));
    result
}

async fn search_products(
    state: &AppState,
    caller: &McpCaller,
    request_id: &str,
    arguments: &Map<String, Value>,
) -> Result<CallToolResult, ErrorData> {
    let Some(catalog) = arguments.get("catalog").and_then(Value::as_str).filter(|key| !key.is_empty()) else {
        return Ok(tool_error("invalid_arguments", "catalog is required: a catalog key from list_catalogs"));
    };
    let limit = match arguments.get("limit") {
        None | Some(Value::Null) => DEFAULT_LIMIT,
        Some(value) => match value.as_i64().or_else(|| value.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)) {
            Some(limit) if (1..=MAX_LIMIT).contains(&limit) => limit,
            _ => return Ok(tool_error("invalid_limit", "limit must be an integer from 1 to 100")),
        },
    };
    let query = match arguments.get("query") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text.chars().count() <= MAX_QUERY_CHARS => Some(text.clone()),
        Some(Value::String(_)) => {
            let message = format!("query must be at most {MAX_QUERY_CHARS} characters");
            return Ok(tool_error("query_too_long", &message));
        }
        Some(_) => return Ok(tool_error("invalid_arguments", "query must be a string")),
    };
    let cursor = arguments.get("cursor").and_then(Value::as_str).filter(|cursor| !cursor.is_empty());
    let search = |cursor: Option<&str>| ProductSearch {
        catalog: Some(catalog.to_string()),
        text: query.clone(),
        limit: limit as usize,
        cursor: cursor.map(str::to_string),
        ..ProductSearch::default()
    };
    let mut outcome = state.services.search_products(caller.scope(), search(cursor)).await;
    if let Err(SearchFailure::Cursor(_)) = outcome {
        // A malformed cursor, or one of another search, starts again at page 1.
        outcome = state.services.search_products(caller.scope(), search(None)).await;
    }
    match outcome {
        Ok(outcome) => Ok(structured(json!({
            "items": outcome.hits.iter().map(MerchantProductListItem::from_summary).collect::<Vec<_>>(),
            "nextCursor": outcome.next_cursor,
            "requestId": request_id,
        }))),
        Err(SearchFailure::CatalogNotFound) => Ok(not_granted(catalog)),
        Err(SearchFailure::Cursor(_)) => Err(ErrorData::internal_error("the search failed", None)),
        Err(SearchFailure::Internal(error)) => Err(internal(error)),
    }
}

async fn lookup_product(
    state: &AppState,
    caller: &McpCaller,
    request_id: &str,
    arguments: &Map<String, Value>,
) -> Result<CallToolResult, ErrorData> {
    let Some(url) = arguments.get("canonical_url").and_then(Value::as_str).filter(|url| !url.trim().is_empty()) else {
        return Ok(tool_error("invalid_arguments", "canonical_url is required: a product page URL"));
    };
    let only: Option<Vec<String>> = match arguments.get("catalogs") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) if !items.is_empty() => {
            match items.iter().map(|item| item.as_str().map(str::to_string)).collect::<Option<Vec<_>>>() {
                Some(keys) => Some(keys),
                None => return Ok(tool_error("invalid_arguments", "catalogs must be a list of catalog keys")),
            }
        }
        Some(_) => return Ok(tool_error("invalid_arguments", "catalogs must be a non-empty list of catalog keys")),
    };
    match state.services.lookup_product(caller.scope(), url, only.as_deref()).await {
        Ok(outcome) => Ok(structured(json!({
            "catalogKey": outcome.catalog.key,
            "catalogDisplayName": outcome.catalog.display_name,
            "sourceBaseUrl": outcome.catalog.source_base_url,
            "product": MerchantProductView::from_record(&outcome.record),
            "requestId": request_id,
            "source": "indexed",
            "requestedUrl": url,
            "normalizedUrl": outcome.record.normalized_url,
        }))),
        Err(LookupFailure::InvalidUrl) => Ok(tool_error("invalid_product_url", "canonical_url is not an http(s) URL")),
        Err(LookupFailure::ProductNotFound) => Ok(tool_error(
            "product_not_found",
            "no active product of the granted catalogs has this URL; search_products can find it by name",
        )),
        Err(LookupFailure::CatalogNotFound) => {
            let named = only.unwrap_or_default();
            let missing = named.iter().find(|key| !caller.catalogs.iter().any(|c| &c.key == *key));
            Ok(not_granted(missing.map(String::as_str).unwrap_or("")))
        }
        Err(LookupFailure::Internal(error)) => Err(internal(error)),
    }
}

fn structured(value: Value) -> CallToolResult {
    CallToolResult::structured(value)
}

fn not_granted(catalog: &str) -> CallToolResult {
    tool_error(
        "catalog_not_granted",
        &format!("catalog {catalog:?} is not granted to your organization; list_catalogs shows the ones that are"),
    )
}

/// A problem the agent can act on: a normal result, flagged as an error, carrying `error`.
fn tool_error(code: &str, message: &str) -> CallToolResult {
    CallToolResult::structured_error(json!({"error": code, "message": message}))
}

fn internal(error: anyhow::Error) -> ErrorData {
    tracing::error!(error = format!("{error:#}"), "an MCP tool call failed");
    ErrorData::internal_error("internal error", None)
}

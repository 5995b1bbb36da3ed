//! `POST /v1/products/search` (SPEC §4).

use axum::extract::{Request, State};
use axum::{Extension, Json};
use octogen_core::error::ValidationIssue;
use octogen_core::wire::MerchantProductListItem;
use octogen_core::{loc, ErrorCode};
use octogen_search::FacetFilter;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::body::{string_list, ObjectBody};
use crate::app::RequestId;
use crate::auth::Partner;
use crate::error::{ApiError, ApiResult};
use crate::extract::json_value;
use crate::service::cursor::CursorError;
use crate::service::products::{facet_key, ProductSearch, SearchFailure, SearchOutcome};
use crate::state::AppState;
use crate::versions::{ApiVersion, RenderContext};

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 100;
/// The most catalogs one request may name.
pub const MAX_CATALOGS: usize = 500;

/// The search request. Every field is optional; `price_min`, `price_max` and
/// `text_search_query` are snake_case on the wire.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// Restrict to one granted catalog (404 `catalog_not_found` otherwise).
    #[schema(min_length = 1, example = "northwind")]
    pub catalog: Option<String>,
    /// Restrict to these granted catalogs (1–500 keys; every one must be granted).
    #[schema(min_items = 1, max_items = 500, value_type = Option<Vec<super::openapi::NonEmptyString>>)]
    pub catalogs: Option<Vec<String>>,
    /// Free text; absent, null or blank browses.
    #[schema(example = "black hoodie")]
    pub q: Option<String>,
    /// ANDed across facets, ORed within a facet's values; case-insensitive.
    pub facets: Option<Vec<Facet>>,
    /// Inclusive lower bound on `currentPrice`.
    pub price_min: Option<f64>,
    /// Inclusive upper bound on `currentPrice`.
    pub price_max: Option<f64>,
    /// `nextCursor` of the previous page, sent with the same filters.
    pub cursor: Option<String>,
    #[schema(minimum = 1, maximum = 100, default = 50)]
    pub limit: Option<i64>,
    /// An advanced pre-built query object; when `q` is absent, its `text`,
    /// `query` or `q` string is used as `q`. Prefer `q`.
    #[schema(value_type = Option<Object>)]
    pub text_search_query: Option<Value>,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Facet {
    /// A facet name of SPEC §4 (`color_family`, `category_path.depth_0`, …) or any
    /// product attribute, bare (`fit`) or qualified (`attribute_facets.fit`).
    #[schema(min_length = 1, example = "color_family")]
    pub name: String,
    /// Matched case-insensitively; a product matches when it has any of them.
    #[schema(min_items = 1, example = json!(["Black"]), value_type = Vec<super::openapi::NonEmptyString>)]
    pub values: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchResponse {
    pub items: Vec<MerchantProductListItem>,
    /// Opaque; null on the last page.
    pub next_cursor: Option<String>,
    /// Matches the `X-Request-Id` header.
    pub request_id: String,
}

const FIELDS: &[&str] =
    &["catalog", "catalogs", "q", "facets", "price_min", "price_max", "cursor", "limit", "text_search_query"];

#[utoipa::path(
    post,
    path = "/v1/products/search",
    operation_id = "searchProducts",
    tag = "products",
    request_body = SearchRequest,
    responses(
        (status = 200, description = "One page of results", body = SearchResponse),
        (status = 401, description = "Missing or invalid API key", body = super::openapi::ErrorDetail, example = json!({"detail": "Invalid API key"})),
        (status = 403, description = "The key's organization may not use the API", body = super::openapi::ErrorDetail, example = json!({"detail": "api_key_org_type_forbidden"})),
        (status = 404, description = "A requested catalog is unknown, inactive or not granted", body = super::openapi::ErrorDetail, example = json!({"detail": "catalog_not_found"})),
        (status = 422, description = "Invalid request body or cursor", body = super::openapi::ValidationErrorBody, example = json!({"detail": [{"loc": ["body", "limit"], "msg": "Input should be less than or equal to 100", "type": "less_than_equal", "input": 500, "ctx": {"le": 100}}]})),
        (status = 429, description = "The organization's rate budget is spent", body = super::openapi::ErrorDetail, example = json!({"detail": "rate_limit_exceeded"})),
        (status = 413, description = "The request body is larger than the server accepts", body = super::openapi::ErrorDetail, example = json!({"detail": "Request body too large"})),
    ),
    security(("bearer" = []))
)]
pub async fn search_products(
    partner: Partner,
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    Extension(version): Extension<ApiVersion>,
    request: Request,
) -> ApiResult<Json<Value>> {
    let body = json_value(request, &state).await?;
    let search = version.shape().parse_search(&body).map_err(ApiError::Validation)?;
    let outcome = state.services.search_products(partner.scope(), search).await.map_err(search_error)?;
    let context = RenderContext { request_id: &request_id.0, catalogs: partner.catalogs() };
    Ok(Json(version.shape().render_search(&outcome, &context)))
}

/// The May 2026 page (SPEC §4).
pub fn render_may2026(outcome: &SearchOutcome, request_id: &str) -> SearchResponse {
    SearchResponse {
        items: outcome.hits.iter().map(MerchantProductListItem::from_summary).collect(),
        next_cursor: outcome.next_cursor.clone(),
        request_id: request_id.to_string(),
    }
}

pub fn search_error(failure: SearchFailure) -> ApiError {
    match failure {
        SearchFailure::CatalogNotFound => ErrorCode::CatalogNotFound.into(),
        SearchFailure::Cursor(problem) => {
            let msg = match problem {
                CursorError::Malformed => "Value error, the cursor is not valid; start again without a cursor",
                CursorError::OtherQuery => {
                    "Value error, the cursor belongs to a query with other filters; send it with the same filters or start again without a cursor"
                }
            };
            ApiError::validation(ValidationIssue::new(loc!["body", "cursor"], "value_error", msg))
        }
        SearchFailure::Internal(error) => ApiError::Internal(error),
    }
}

/// Validates a May 2026 search body into a `ProductSearch`, naming every problem.
pub fn parse_search(value: &Value) -> Result<ProductSearch, Vec<octogen_core::ValidationIssue>> {
    let mut body = ObjectBody::new(value, loc!["body"], FIELDS)?;
    let mut search = read_search_fields(&mut body);
    if let Some(advanced) = body.optional_object("text_search_query") {
        if search.text.is_none() {
            search.text =
                ["text", "query", "q"].iter().find_map(|field| advanced.get(*field)?.as_str().map(str::to_string));
        }
    }
    body.finish()?;
    Ok(search)
}

/// The fields every version's search body shares: scope, text, facets (and
/// `exclude_facets` when the body may carry it), price bounds, cursor and limit.
pub fn read_search_fields(body: &mut ObjectBody<'_>) -> ProductSearch {
    let catalog = body.optional_string("catalog", 1);
    let catalogs = body.optional_string_list("catalogs", 1, MAX_CATALOGS);
    let text = body.optional_string("q", 0);
    let price_min = body.optional_number("price_min");
    let price_max = body.optional_number("price_max");
    let cursor = body.optional_string("cursor", 0).filter(|cursor| !cursor.is_empty());
    let limit = body.optional_int("limit", 1, MAX_LIMIT).unwrap_or(DEFAULT_LIMIT);
    let facets = read_facets(body, "facets");
    let exclude_facets = read_facets(body, "exclude_facets");
    if let (Some(min), Some(max)) = (price_min, price_max) {
        if min > max {
            body.issue(
                ValidationIssue::new(
                    loc!["body"],
                    "value_error",
                    "Value error, price_min must be less than or equal to price_max",
                )
                .with_input(json!({"price_min": min, "price_max": max})),
            );
        }
    }
    ProductSearch {
        catalog,
        catalogs,
        text,
        facets,
        exclude_facets,
        price_min,
        price_max,
        limit: limit as usize,
        cursor,
    }
}

fn read_facets(body: &mut ObjectBody<'_>, field: &str) -> Vec<FacetFilter> {
    let Some(items) = body.optional_array(field) else { return Vec::new() };
    let mut issues = Vec::new();
    let facets = parse_facets(field, items, &mut issues);
    for issue in issues {
        body.issue(issue);
    }
    facets
}

fn parse_facets(field: &str, items: &[Value], issues: &mut Vec<ValidationIssue>) -> Vec<FacetFilter> {
    let mut facets = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let path = loc!["body", field, index];
        let mut facet = match ObjectBody::new(item, path.clone(), &["name", "values"]) {
            Ok(facet) => facet,
            Err(mut problems) => {
                issues.append(&mut problems);
                continue;
            }
        };
        let name = facet.required_string("name", 1);
        let values = match facet.present("values") {
            Some(values) => string_list(values, facet.loc("values"), 1, 1000, issues),
            None => {
                facet.issue(
                    ValidationIssue::new(facet.loc("values"), "missing", "Field required").with_input(item.clone()),
                );
                None
            }
        };
        issues.append(&mut facet.take_issues());
        let (Some(name), Some(values)) = (name, values) else { continue };
        match facet_key(&name) {
            Ok(key) => facets.push(FacetFilter { key, values }),
            Err(error) => issues.push(
                ValidationIssue::new([path, loc!["name"]].concat(), "value_error", format!("Value error, {error}"))
                    .with_input(json!(name)),
            ),
        }
    }
    facets
}

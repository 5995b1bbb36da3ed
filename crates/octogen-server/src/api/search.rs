//! `POST /v1/products/search` (SPEC §4).

use axum::extract::{Request, State};
use axum::{Extension, Json};
use octogen_core::error::{LocPart, ValidationIssue};
use octogen_core::wire::MerchantProductListItem;
use octogen_core::{loc, ErrorCode};
use octogen_search::{FacetFilter, MAX_QUERY_CHARS};
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
    /// Free text; absent, null or blank browses. At most 1,000 characters.
    #[schema(example = "black hoodie", max_length = 1000)]
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
    /// An advanced pre-built query object. Prefer `q` and the top-level filters.
    pub text_search_query: Option<TextSearchQuery>,
}

/// The `text_search_query` object of the May 2026 request. Its filters apply
/// together with the top-level ones (a product must match both; of two price
/// bounds the tighter holds); its text is used when `q` is absent. Other
/// fields are refused (422 `extra_forbidden`).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TextSearchQuery {
    /// The query text, used when `q` is absent; `query` and `q` are accepted as aliases.
    #[schema(max_length = 1000)]
    pub text: Option<String>,
    #[schema(max_length = 1000)]
    pub query: Option<String>,
    #[schema(max_length = 1000)]
    pub q: Option<String>,
    pub facets: Option<Vec<Facet>>,
    /// Products with any listed value of any of these facets are left out.
    pub exclusion_facets: Option<Vec<Facet>>,
    pub price_min: Option<f64>,
    pub price_max: Option<f64>,
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
const TEXT_SEARCH_QUERY_FIELDS: &[&str] =
    &["text", "query", "q", "facets", "exclusion_facets", "price_min", "price_max"];

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
    let mut search = read_search_filters(&mut body);
    merge_text_search_query(&mut body, &mut search);
    check_price_order(&mut body, &search);
    body.finish()?;
    Ok(search)
}

/// The fields every version's search body shares: scope, text, facets (and
/// `exclude_facets` when the body may carry it), price bounds, cursor and limit.
pub fn read_search_fields(body: &mut ObjectBody<'_>) -> ProductSearch {
    let search = read_search_filters(body);
    check_price_order(body, &search);
    search
}

fn read_search_filters(body: &mut ObjectBody<'_>) -> ProductSearch {
    let catalog = body.optional_string("catalog", 1);
    let catalogs = body.optional_string_list("catalogs", 1, MAX_CATALOGS);
    let text = body.optional_string_at_most("q", MAX_QUERY_CHARS);
    let price_min = body.optional_number("price_min");
    let price_max = body.optional_number("price_max");
    let cursor = body.optional_string("cursor", 0).filter(|cursor| !cursor.is_empty());
    let limit = body.optional_int("limit", 1, MAX_LIMIT).unwrap_or(DEFAULT_LIMIT);
    let facets = read_facets(body, "facets");
    let exclude_facets = read_facets(body, "exclude_facets");
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

fn check_price_order(body: &mut ObjectBody<'_>, search: &ProductSearch) {
    if let (Some(min), Some(max)) = (search.price_min, search.price_max) {
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
}

/// Applies the May 2026 `text_search_query` object (see `TextSearchQuery`):
/// its filters join the top-level ones, its text stands in for an absent `q`.
fn merge_text_search_query(body: &mut ObjectBody<'_>, search: &mut ProductSearch) {
    let Some(value) = body.present("text_search_query") else { return };
    if !value.is_object() {
        let issue =
            ValidationIssue::new(body.loc("text_search_query"), "dict_type", "Input should be a valid dictionary")
                .with_input(value.clone());
        return body.issue(issue);
    }
    let mut advanced = match ObjectBody::new(value, body.loc("text_search_query"), TEXT_SEARCH_QUERY_FIELDS) {
        Ok(advanced) => advanced,
        Err(issues) => {
            for issue in issues {
                body.issue(issue);
            }
            return;
        }
    };
    // Every alias is validated; the first one given is the text.
    let texts = ["text", "query", "q"].map(|field| advanced.optional_string_at_most(field, MAX_QUERY_CHARS));
    if search.text.is_none() {
        search.text = texts.into_iter().flatten().next();
    }
    search.facets.extend(read_facets(&mut advanced, "facets"));
    search.exclude_facets.extend(read_facets(&mut advanced, "exclusion_facets"));
    search.price_min = tighter(search.price_min, advanced.optional_number("price_min"), f64::max);
    search.price_max = tighter(search.price_max, advanced.optional_number("price_max"), f64::min);
    for issue in advanced.take_issues() {
        body.issue(issue);
    }
}

/// Both bounds hold: `pick` chooses the tighter of two.
fn tighter(outer: Option<f64>, inner: Option<f64>, pick: fn(f64, f64) -> f64) -> Option<f64> {
    match (outer, inner) {
        (Some(outer), Some(inner)) => Some(pick(outer, inner)),
        (outer, inner) => outer.or(inner),
    }
}

fn read_facets(body: &mut ObjectBody<'_>, field: &str) -> Vec<FacetFilter> {
    let Some(items) = body.optional_array(field) else { return Vec::new() };
    let mut issues = Vec::new();
    let facets = parse_facets(body.loc(field), items, &mut issues);
    for issue in issues {
        body.issue(issue);
    }
    facets
}

fn parse_facets(field_loc: Vec<LocPart>, items: &[Value], issues: &mut Vec<ValidationIssue>) -> Vec<FacetFilter> {
    let mut facets = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let path = [field_loc.clone(), loc![index]].concat();
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

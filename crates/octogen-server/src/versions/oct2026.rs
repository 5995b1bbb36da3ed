//! `2026-10-01`: the shapes of today's public clients (the `octogen-ai-sdk`
//! package's generated models): image objects and `primaryImage`, card
//! fields on list items, `effectiveQuery` on search pages, the lookup
//! envelope's resolution fields, and `GET /v1/me`.
//!
//! Fields are filled only with what this server knows; the rest are null or
//! empty, never invented: there is no CDN (`cdnUrl` null), no query
//! understanding (`understood: false`), no match scores, no on-demand
//! resolution (`source: "indexed"`, resolution fields null).

use octogen_core::error::ValidationIssue;
use octogen_core::loc;
use octogen_core::product::{
    Brand, Color, Details, Enrichment, Identifiers, Image, Link, Promotion, Rating, Review, Video,
};
use octogen_core::wire::{audience_of, Audience, ProductSummary, VariantView};
use octogen_core::Timestamp;
use octogen_search::FacetFilter;
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::{OpenApi, ToSchema};

use super::{ApiShape, Caller, RenderContext};
use crate::api::body::ObjectBody;
use crate::api::lookup::{CACHE_POLICIES, MATCH_MODES, RESOLUTION_MODES};
use crate::api::openapi::{BearerAuth, ErrorDetail, UnprocessableBody, ValidationErrorBody};
use crate::api::search::read_search_fields;
use crate::service::products::{LookupOutcome, ProductSearch, SearchOutcome};

pub struct Oct2026;

const SEARCH_FIELDS: &[&str] = &[
    "q",
    "understand",
    "facets",
    "exclude_facets",
    "omit_generated_facets",
    "price_min",
    "price_max",
    "brand_quality_min",
    "brand_quality_max",
    "similar_to_brands",
    "fallback_category",
    "catalogs",
    "limit",
    "cursor",
    "relax",
    "diversity",
    "debug",
];
const LOOKUP_FIELDS: &[&str] = &["url", "format", "matchMode", "resolutionMode", "onDemandCachePolicy"];

impl ApiShape for Oct2026 {
    fn name(&self) -> &'static str {
        "2026-10-01"
    }

    fn parse_search(&self, value: &Value) -> Result<ProductSearch, Vec<ValidationIssue>> {
        let mut body = ObjectBody::new(value, loc!["body"], SEARCH_FIELDS)?;
        let search = read_search_fields(&mut body);
        // Controls of query understanding, relaxation and diversity are accepted
        // (and type-checked): this server has no query understanding, so they
        // change nothing, which `effectiveQuery` reports (`understood: false`).
        for flag in ["understand", "relax", "diversity", "debug"] {
            if let Some(value) = body.present(flag).filter(|value| !value.is_boolean()) {
                let issue = ValidationIssue::new(body.loc(flag), "bool_type", "Input should be a valid boolean")
                    .with_input(value.clone());
                body.issue(issue);
            }
        }
        for list in ["omit_generated_facets", "similar_to_brands", "fallback_category"] {
            body.optional_string_list(list, 0, 500);
        }
        for bound in ["brand_quality_min", "brand_quality_max"] {
            if body.optional_number(bound).is_some() {
                let issue = ValidationIssue::new(
                    body.loc(bound),
                    "value_error",
                    "Value error, brand quality scores are not available on this server; omit this bound",
                );
                body.issue(issue);
            }
        }
        body.finish()?;
        Ok(search)
    }

    fn render_search(&self, outcome: &SearchOutcome, context: &RenderContext<'_>) -> Value {
        let effective = &outcome.effective;
        let page = SearchPage {
            effective_query: EffectiveQuery {
                text: effective.text.clone(),
                understood: false,
                facets: effective.facets.iter().map(effective_facet).collect(),
                exclude_facets: effective.exclude_facets.iter().map(effective_facet).collect(),
                price_min: effective.price_min,
                price_max: effective.price_max,
                catalogs: effective.catalogs.clone(),
                brand_quality_min: None,
                brand_quality_max: None,
                similar_to_brands: None,
                relaxation: None,
            },
            items: outcome.hits.iter().map(|hit| ListItem::from_summary(hit, context)).collect(),
            next_cursor: outcome.next_cursor.clone(),
            request_id: context.request_id.to_string(),
        };
        serde_json::to_value(page).unwrap_or_default()
    }

    fn parse_lookup(&self, value: &Value) -> Result<String, Vec<ValidationIssue>> {
        let mut body = ObjectBody::new(value, loc!["body"], LOOKUP_FIELDS)?;
        let url = body.required_string("url", 1);
        body.optional_choice("resolutionMode", RESOLUTION_MODES);
        body.optional_choice("onDemandCachePolicy", CACHE_POLICIES);
        body.optional_choice("matchMode", MATCH_MODES);
        if let Some(format) = body.optional_choice("format", &["json", "md", "markdown"]) {
            if format != "json" {
                let issue = ValidationIssue::new(
                    body.loc("format"),
                    "value_error",
                    "Value error, this server answers lookups as JSON only; send format json or omit it",
                )
                .with_input(json!(format));
                body.issue(issue);
            }
        }
        body.finish()?;
        Ok(url.unwrap_or_default())
    }

    fn render_lookup(&self, outcome: &LookupOutcome, requested_url: &str, context: &RenderContext<'_>) -> Value {
        let response = LookupResponse {
            cache_status: None,
            canonical_url: None,
            catalog_display_name: Some(outcome.catalog.display_name.clone()),
            catalog_key: Some(outcome.catalog.key.clone()),
            matched_via: Some(outcome.matched_via.as_str().into()),
            normalized_url: Some(outcome.record.normalized_url.clone()),
            product: ProductView::from_record(&outcome.record),
            request_id: Some(context.request_id.to_string()),
            requested_url: Some(requested_url.to_string()),
            resolution: None,
            resolved_url: None,
            source: "indexed".into(),
            source_base_url: outcome.catalog.source_base_url.clone(),
            warnings: None,
        };
        serde_json::to_value(response).unwrap_or_default()
    }

    fn render_me(&self, caller: &Caller<'_>) -> Option<Value> {
        let me = MeResponse {
            principal: "api_key".into(),
            key: Some(MeKey {
                prefix: Some(format!("octo_live_{}", &caller.key_id[..caller.key_id.len().min(10)])),
                id: caller.key_id.clone(),
            }),
            organization: Some(MeOrganization {
                id: caller.org.id.clone(),
                name: caller.org.name.clone(),
                slug: caller.org.slug.clone(),
                org_type: caller.org.org_type.as_str().to_string(),
            }),
            quotas: Some(serde_json::Map::new()),
            rate_limit: caller.budget.map(|budget| MeRateLimit {
                limit: budget.limit,
                remaining: budget.remaining,
                reset_at: Timestamp::from_millis(budget.reset_at as i64 * 1000),
            }),
        };
        Some(serde_json::to_value(me).unwrap_or_default())
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        ApiDocOct2026::openapi()
    }
}

fn effective_facet(facet: &FacetFilter) -> EffectiveFacet {
    EffectiveFacet { name: facet.key.canonical_name(), values: facet.values.clone(), source: Some("caller".into()) }
}

/// An image as today's clients read it; `url` is the merchant's image.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageView {
    pub url: String,
    /// Always null: this server hosts no image copies.
    pub cdn_url: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub size_bytes: Option<u64>,
    pub mime_type: Option<String>,
}

impl From<&Image> for ImageView {
    fn from(image: &Image) -> Self {
        ImageView {
            url: image.url.clone(),
            cdn_url: None,
            width: image.width,
            height: image.height,
            size_bytes: image.size_bytes,
            mime_type: image.mime_type.clone(),
        }
    }
}

/// A search result with the card fields of `2026-10-01`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListItem {
    pub uuid: String,
    pub catalog_key: Option<String>,
    pub catalog_display_name: Option<String>,
    pub product_url: String,
    pub title: Option<String>,
    pub brand: Option<Brand>,
    pub current_price: Option<f64>,
    pub original_price: Option<f64>,
    pub currency: Option<String>,
    pub in_stock: Option<bool>,
    /// Color labels.
    pub colors: Option<Vec<String>>,
    pub sizes: Option<Vec<String>>,
    pub gender: Option<String>,
    pub category_path: Option<Vec<String>>,
    /// Deprecated in this version (read `primaryImage`); the merchant's primary image URL.
    pub image_url: Option<String>,
    pub images: Vec<ImageView>,
    pub primary_image: Option<ImageView>,
    pub rating: Option<Rating>,
    pub is_active: Option<bool>,
    pub updated_at: Option<Timestamp>,
    /// Null: this server computes no display score.
    pub display_match_score: Option<i64>,
    /// Null: this server exposes no raw engine score.
    pub raw_score: Option<f64>,
}

impl ListItem {
    fn from_summary(summary: &ProductSummary, context: &RenderContext<'_>) -> Self {
        let display_name =
            context.catalogs.iter().find(|catalog| catalog.key == summary.catalog_key).map(|c| c.display_name.clone());
        ListItem {
            uuid: summary.uuid.clone(),
            catalog_key: Some(summary.catalog_key.clone()),
            catalog_display_name: display_name,
            product_url: summary.product_url.clone(),
            title: Some(summary.title.clone()).filter(|title| !title.is_empty()),
            brand: summary.brand.clone(),
            current_price: summary.current_price,
            original_price: summary.original_price,
            currency: summary.currency.clone(),
            in_stock: summary.in_stock,
            colors: Some(summary.colors.clone()),
            sizes: Some(summary.sizes.clone()),
            gender: summary.gender.clone(),
            category_path: Some(summary.category_path.clone()),
            image_url: summary.images.first().map(|image| image.url.clone()),
            images: summary.images.iter().map(ImageView::from).collect(),
            primary_image: summary.images.first().map(ImageView::from),
            rating: summary.rating.clone(),
            is_active: Some(true),
            updated_at: Some(summary.updated_at),
            display_match_score: None,
            raw_score: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EffectiveFacet {
    pub name: String,
    pub values: Vec<String>,
    /// `caller`: every facet that ran was sent by the caller.
    pub source: Option<String>,
}

/// The search that actually ran.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EffectiveQuery {
    /// The text matched: `q` as sent (trimmed), or empty when browsing.
    pub text: String,
    /// Always false: this server matches `q` as written.
    pub understood: bool,
    pub facets: Vec<EffectiveFacet>,
    pub exclude_facets: Vec<EffectiveFacet>,
    pub price_min: Option<f64>,
    pub price_max: Option<f64>,
    /// The `catalogs` allowlist as received, deduplicated.
    pub catalogs: Option<Vec<String>>,
    pub brand_quality_min: Option<f64>,
    pub brand_quality_max: Option<f64>,
    pub similar_to_brands: Option<Vec<String>>,
    #[schema(value_type = Option<Object>)]
    pub relaxation: Option<Value>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchPage {
    pub effective_query: EffectiveQuery,
    pub items: Vec<ListItem>,
    /// Opaque; null on the last page.
    pub next_cursor: Option<String>,
    /// Matches `X-Request-Id`.
    pub request_id: String,
}

/// A full product with the shapes of `2026-10-01`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductView {
    pub uuid: Option<String>,
    pub catalog_key: Option<String>,
    pub product_url: String,
    pub title: Option<String>,
    pub brand: Option<Brand>,
    pub description: Option<String>,
    pub current_price: Option<f64>,
    pub original_price: Option<f64>,
    pub currency: Option<String>,
    pub in_stock: Option<bool>,
    pub image_url: Option<String>,
    pub images: Vec<ImageView>,
    pub primary_image: Option<ImageView>,
    pub rating: Option<Rating>,
    pub is_active: Option<bool>,
    pub updated_at: Option<Timestamp>,
    pub categories: Vec<Link>,
    pub sizes: Vec<String>,
    pub colors: Vec<Color>,
    pub tags: Vec<String>,
    pub variants: Vec<VariantView>,
    pub details: Details,
    pub audience: Option<Audience>,
    pub identifiers: Identifiers,
    pub breadcrumbs: Vec<Link>,
    pub promotions: Vec<Promotion>,
    pub reviews: Vec<Review>,
    pub videos: Vec<Video>,
    pub enrichment: Option<Enrichment>,
    pub display_match_score: Option<i64>,
    pub raw_score: Option<f64>,
}

impl ProductView {
    fn from_record(record: &octogen_core::ProductRecord) -> Self {
        let product = &record.product;
        ProductView {
            uuid: Some(record.uuid.clone()),
            catalog_key: Some(record.catalog_key.clone()),
            product_url: product.url.clone(),
            title: Some(product.title.clone()).filter(|title| !title.is_empty()),
            brand: product.brand.clone(),
            description: product.description.clone(),
            current_price: product.current_price,
            original_price: product.markdown_original_price(),
            currency: product.currency.clone(),
            in_stock: product.in_stock,
            image_url: product.primary_image_url().map(str::to_string),
            images: product.images.iter().map(ImageView::from).collect(),
            primary_image: product.images.first().map(ImageView::from),
            rating: product.rating.clone(),
            is_active: Some(record.is_active),
            updated_at: Some(record.updated_at),
            categories: product.categories.clone(),
            sizes: product.sizes.clone(),
            colors: product.colors.clone(),
            tags: product.tags.clone(),
            variants: product.variants.iter().map(VariantView::from).collect(),
            details: product.details.clone(),
            audience: audience_of(product),
            identifiers: product.identifiers.clone(),
            breadcrumbs: product.breadcrumbs.clone(),
            promotions: product.promotions.clone(),
            reviews: product.reviews.clone(),
            videos: product.videos.clone(),
            enrichment: Some(product.enrichment.clone()),
            display_match_score: None,
            raw_score: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LookupResponse {
    pub cache_status: Option<String>,
    pub canonical_url: Option<String>,
    pub catalog_display_name: Option<String>,
    pub catalog_key: Option<String>,
    /// Which rule found the product: `exact` (the URL as sent is the product's
    /// URL), `normalized_exact` (its normalized form is), or `structural_alias`
    /// (a Shopify `/collections/*/products/<handle>` or `?variant=` URL, or an
    /// alias rule of the catalog's import mapping).
    pub matched_via: Option<String>,
    pub normalized_url: Option<String>,
    pub product: ProductView,
    pub request_id: Option<String>,
    pub requested_url: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub resolution: Option<Value>,
    pub resolved_url: Option<String>,
    /// Always `indexed`.
    pub source: String,
    pub source_base_url: Option<String>,
    pub warnings: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeKey {
    /// The key id (the middle segment of the key).
    pub id: String,
    /// A non-secret display prefix of the key.
    pub prefix: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeOrganization {
    pub id: String,
    pub name: String,
    pub slug: String,
    #[serde(rename = "type")]
    pub org_type: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeRateLimit {
    pub limit: u32,
    pub remaining: u32,
    pub reset_at: Timestamp,
}

/// `GET /v1/me`: the calling key, its organization and its rate-limit posture.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeResponse {
    pub principal: String,
    pub key: Option<MeKey>,
    pub organization: Option<MeOrganization>,
    /// No quotas are enforced beyond the rate limit: an empty object.
    #[schema(value_type = Option<Object>)]
    pub quotas: Option<serde_json::Map<String, Value>>,
    pub rate_limit: Option<MeRateLimit>,
}

/// The `2026-10-01` search request (documentation of what `parse_search` accepts).
/// `brand_quality_min` and `brand_quality_max` are refused with 422: brand
/// quality scores are not available on this server.
#[derive(serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct SearchRequestOct2026 {
    /// Free text; omitted, null or blank browses. Matched as written. At most 1,000 characters.
    #[schema(max_length = 1000)]
    q: Option<String>,
    /// Accepted; this server never rewrites `q` (`effectiveQuery.understood` is false).
    understand: Option<bool>,
    facets: Option<Vec<crate::api::search::Facet>>,
    /// Products with any listed value of any listed facet are left out.
    exclude_facets: Option<Vec<crate::api::search::Facet>>,
    /// Accepted; no facets are generated here, so there is nothing to omit.
    #[schema(value_type = Option<Vec<crate::api::openapi::NonEmptyString>>)]
    omit_generated_facets: Option<Vec<String>>,
    price_min: Option<f64>,
    price_max: Option<f64>,
    /// Accepted; has no effect on ranking here.
    #[schema(value_type = Option<Vec<crate::api::openapi::NonEmptyString>>)]
    similar_to_brands: Option<Vec<String>>,
    /// Accepted; applies only to understood queries, so it has no effect here.
    #[schema(value_type = Option<Vec<crate::api::openapi::NonEmptyString>>)]
    fallback_category: Option<Vec<String>>,
    #[schema(min_items = 1, max_items = 500, value_type = Option<Vec<crate::api::openapi::NonEmptyString>>)]
    catalogs: Option<Vec<String>>,
    #[schema(minimum = 1, maximum = 100, default = 50)]
    limit: Option<i64>,
    cursor: Option<String>,
    /// Accepted; has no effect here.
    relax: Option<bool>,
    /// Accepted; has no effect here.
    diversity: Option<bool>,
    /// Accepted; has no effect here.
    debug: Option<bool>,
}

/// The `2026-10-01` lookup request.
#[derive(serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
pub struct LookupRequestOct2026 {
    #[schema(value_type = crate::api::lookup::ProductUrl)]
    url: String,
    /// Only `json` is served here.
    #[schema(value_type = Option<JsonFormat>)]
    format: Option<String>,
    #[schema(value_type = Option<crate::api::lookup::MatchMode>)]
    match_mode: Option<String>,
    #[schema(value_type = Option<crate::api::lookup::ResolutionMode>)]
    resolution_mode: Option<String>,
    #[schema(value_type = Option<crate::api::lookup::CachePolicy>)]
    on_demand_cache_policy: Option<String>,
}

#[derive(serde::Deserialize, ToSchema)]
#[allow(non_camel_case_types, dead_code)]
pub enum JsonFormat {
    json,
}

mod docs {
    //! Documentation of the `2026-10-01` operations (the handlers are shared across versions).
    #![allow(dead_code)]

    use super::*;

    #[utoipa::path(post, path = "/v1/products/search", operation_id = "searchProducts", tag = "products",
        request_body(content = SearchRequestOct2026, content_type = "application/json"),
        params(("Octogen-Version" = Option<String>, Header, description = "Override the organization's pinned API version")),
        responses(
            (status = 200, description = "One page of results and the search that ran", body = SearchPage),
            (status = 400, description = "Unknown API version", body = ErrorDetail),
            (status = 401, description = "Missing or invalid API key", body = ErrorDetail),
            (status = 403, description = "The key's organization may not use the API", body = ErrorDetail),
            (status = 404, description = "A requested catalog is unknown, inactive or not granted", body = ErrorDetail),
            (status = 422, description = "Invalid request body or cursor", body = ValidationErrorBody),
            (status = 429, description = "The organization's rate budget is spent", body = ErrorDetail),
            (status = 413, description = "The request body is larger than the server accepts", body = ErrorDetail, example = json!({"detail": "Request body too large"})),
        ),
        security(("bearer" = [])))]
    fn search() {}

    #[utoipa::path(post, path = "/v1/products/lookup", operation_id = "lookupProduct", tag = "products",
        request_body(content = LookupRequestOct2026, content_type = "application/json"),
        params(("Octogen-Version" = Option<String>, Header, description = "Override the organization's pinned API version")),
        responses(
            (status = 200, description = "The product", body = LookupResponse),
            (status = 400, description = "Unknown API version", body = ErrorDetail),
            (status = 401, description = "Missing or invalid API key", body = ErrorDetail),
            (status = 403, description = "The key's organization may not use the API", body = ErrorDetail),
            (status = 404, description = "No active product in the granted catalogs has this URL", body = ErrorDetail),
            (status = 422, description = "Not an http(s) URL (`invalid_product_url`), or an invalid body", body = UnprocessableBody),
            (status = 429, description = "The organization's rate budget is spent", body = ErrorDetail),
            (status = 413, description = "The request body is larger than the server accepts", body = ErrorDetail, example = json!({"detail": "Request body too large"})),
        ),
        security(("bearer" = [])))]
    fn lookup() {}

    #[utoipa::path(get, path = "/v1/me", operation_id = "getMe", tag = "account",
        params(("Octogen-Version" = Option<String>, Header, description = "Override the organization's pinned API version")),
        responses(
            (status = 200, description = "The calling key, its organization and its rate-limit posture", body = MeResponse),
            (status = 400, description = "Unknown API version", body = ErrorDetail),
            (status = 401, description = "Missing or invalid API key", body = ErrorDetail),
            (status = 403, description = "The key's organization may not use the API", body = ErrorDetail),
            (status = 404, description = "Not used by this operation; listed for uniformity", body = ErrorDetail),
            (status = 422, description = "Not used by this operation; listed for uniformity", body = ValidationErrorBody),
            (status = 429, description = "The organization's rate budget is spent", body = ErrorDetail),
        ),
        security(("bearer" = [])))]
    fn me() {}
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Octogen Platform Catalog API",
        description = "API version 2026-10-01: the shapes of today's public clients. Select it per request with the \\
                       `Octogen-Version` header or pin it for an organization.",
        version = "2026-10-01"
    ),
    paths(crate::api::catalogs::list_catalogs, docs::search, docs::lookup, docs::me),
    components(schemas(ErrorDetail, ValidationErrorBody, UnprocessableBody, ValidationIssue)),
    modifiers(&BearerAuth),
    tags(
        (name = "catalogs", description = "Catalogs granted to your organization"),
        (name = "products", description = "Product search and lookup"),
        (name = "account", description = "The calling key and organization")
    )
)]
pub struct ApiDocOct2026;

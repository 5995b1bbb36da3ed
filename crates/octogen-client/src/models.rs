//! Request and response shapes. Product and catalog records are the server's own
//! wire types (`octogen_core::wire`), so the client and the server cannot drift;
//! the page and lookup envelopes are declared here. Every response type ignores
//! fields it does not know, so a newer server's additions do not break the client.

use serde::{Deserialize, Serialize};

pub use octogen_core::product::{
    Brand, CanonicalBrand, Color, Details, Enrichment, Identifiers, Link, Promotion, Rating, Review, Video,
};
pub use octogen_core::time::Timestamp;
pub use octogen_core::wire::{
    Audience, MerchantCatalogSummary, MerchantProductListItem, MerchantProductView, VariantView,
};

/// The facet names of SPEC §4. Any other name filters on a product attribute
/// (bare, e.g. `fit`, or qualified, `attribute_facets.fit`).
pub mod facet {
    pub const BRAND_NAME: &str = "brand_name";
    pub const BRAND_SLUG: &str = "brand_slug";
    pub const RAW_BRAND_NAME: &str = "raw_brand_name";
    pub const PRODUCT_TYPE: &str = "product_type";
    /// `male`, `female`, `unisex`.
    pub const GENDER: &str = "gender";
    /// `infant`, `toddler`, `kids`, `adult`.
    pub const AGE_GROUPS: &str = "age_groups";
    pub const COLOR: &str = "color";
    /// One of the 11 families (`Black`, `Blue`, …).
    pub const COLOR_FAMILY: &str = "color_family";
    /// `true` / `false`.
    pub const IS_ACTIVEWEAR: &str = "is_activewear";
    pub const CATEGORY_DEPTH_0: &str = "category_path.depth_0";
    pub const CATEGORY_DEPTH_1: &str = "category_path.depth_1";
    pub const CATEGORY_DEPTH_2: &str = "category_path.depth_2";
    pub const CATEGORY_DEPTH_3: &str = "category_path.depth_3";
    pub const CATEGORY_DEPTH_4: &str = "category_path.depth_4";
    pub const CATEGORY_DEPTH_5: &str = "category_path.depth_5";
    pub const CATEGORY_DEPTH_6: &str = "category_path.depth_6";
}

/// One facet filter: a product matches when it has any of `values` (case-insensitive).
/// Several facets are ANDed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Facet {
    pub name: String,
    pub values: Vec<String>,
}

/// The body of `POST /v1/products/search`. Field names are the wire's
/// (`price_min`, `price_max` are snake_case there); unset fields are omitted.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SearchRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalog: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalogs: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub facets: Vec<Facet>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_max: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// One page of search results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchPage {
    pub items: Vec<MerchantProductListItem>,
    /// Pass it back (with the same filters) for the next page; `None` on the last page.
    #[serde(default)]
    pub next_cursor: Option<String>,
    /// The server's request id (also in `X-Request-Id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// The answer of `POST /v1/products/lookup`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LookupResult {
    pub catalog_key: String,
    pub catalog_display_name: String,
    #[serde(default)]
    pub source_base_url: Option<String>,
    pub product: MerchantProductView,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Where the record came from (`indexed` on a self-hosted server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The URL as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_url: Option<String>,
    /// The normalized URL the product is stored under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalized_url: Option<String>,
}

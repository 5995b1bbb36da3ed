//! The internal product record: what ingestion produces, the store keeps (as
//! JSON), the search index derives from, and each API version renders.
//!
//! Catalog-level facts (uuid, catalog, active flag, timestamps) live on the
//! store row, not here, so a record is exactly "what the merchant published,
//! normalized and enriched".

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Product {
    /// The product page URL as the merchant published it (absolute http(s)).
    pub url: String,
    pub title: String,
    /// Plain text; HTML from feeds is reduced to text at ingestion.
    pub description: Option<String>,
    pub brand: Option<Brand>,
    /// The merchant's own product type / category label, as published.
    pub product_type: Option<String>,
    pub current_price: Option<f64>,
    pub original_price: Option<f64>,
    /// ISO 4217 code.
    pub currency: Option<String>,
    /// The first image is the primary one.
    pub images: Vec<Image>,
    pub rating: Option<Rating>,
    /// True if any variant is purchasable; `None` when the feed does not say.
    pub in_stock: Option<bool>,
    pub categories: Vec<Link>,
    pub sizes: Vec<String>,
    pub colors: Vec<Color>,
    pub tags: Vec<String>,
    pub variants: Vec<Variant>,
    pub details: Details,
    pub identifiers: Identifiers,
    pub breadcrumbs: Vec<Link>,
    pub promotions: Vec<Promotion>,
    pub reviews: Vec<Review>,
    pub videos: Vec<Video>,
    /// Merchant attributes and options not mapped to a dedicated field
    /// (e.g. Shopify option "Weight" → ["5kg", "7kg"]). Keys as published.
    pub attributes: BTreeMap<String, Vec<String>>,
    pub enrichment: Enrichment,
}

impl Product {
    pub fn primary_image_url(&self) -> Option<&str> {
        self.images.first().map(|image| image.url.as_str())
    }

    /// `originalPrice` is only meaningful as a markdown: null unless it exceeds the current price.
    pub fn markdown_original_price(&self) -> Option<f64> {
        match (self.current_price, self.original_price) {
            (Some(current), Some(original)) if original > current => Some(original),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct Brand {
    pub name: String,
    pub slug: Option<String>,
    pub url: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Image {
    pub url: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub mime_type: Option<String>,
    pub size_bytes: Option<u64>,
}

impl Image {
    pub fn from_url(url: impl Into<String>) -> Self {
        Image { url: url.into(), ..Image::default() }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct Rating {
    pub average: f64,
    pub count: u64,
}

/// A named link: categories and breadcrumbs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct Link {
    pub name: String,
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct Color {
    pub label: String,
    pub hex_code: Option<String>,
    pub swatch_url: Option<String>,
}

impl Color {
    pub fn labelled(label: impl Into<String>) -> Self {
        Color { label: label.into(), ..Color::default() }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct Variant {
    pub sku: Option<String>,
    pub product_url: Option<String>,
    pub color: Option<Color>,
    pub size: Option<String>,
    pub in_stock: Option<bool>,
    pub image_url: Option<String>,
    /// Not on the May 2026 wire; kept for feeds whose variants differ in price.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(ignore)]
    pub price: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct Details {
    pub materials: Vec<String>,
    pub fit: Vec<String>,
    pub dimensions: Option<String>,
    pub patterns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct Identifiers {
    pub product_id: Option<String>,
    pub gtin: Option<String>,
    pub product_group_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct Promotion {
    pub description: String,
    pub code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct Review {
    pub author: Option<String>,
    pub rating: Option<f64>,
    pub body: Option<String>,
    /// ISO 8601 as published.
    pub published_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct Video {
    pub url: String,
    pub thumbnail_url: Option<String>,
    pub name: Option<String>,
}

/// Derived, deterministic facts (SPEC §5 `enrichment`, snake_case on the wire).
/// Facets filter on these values.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct Enrichment {
    /// Product type, e.g. "weighted blanket".
    #[serde(rename = "type")]
    pub product_type: Option<String>,
    pub type_synonyms: Vec<String>,
    pub tags: Vec<String>,
    pub styles: Vec<String>,
    /// `male` | `female` | `unisex`.
    pub gender: Option<String>,
    pub is_activewear: Option<bool>,
    /// Any of `infant`, `toddler`, `kids`, `adult`.
    pub age_groups: Vec<String>,
    /// Specific color names, e.g. ["Navy Blue"].
    pub color: Vec<String>,
    /// The 11 families, index-aligned with `color` where derivable.
    pub color_family: Vec<String>,
    /// Depth 0 first.
    pub category_path: Vec<String>,
    pub attributes: BTreeMap<String, Vec<String>>,
    pub attribute_handles: BTreeMap<String, Vec<String>>,
    pub canonical_brand: Option<CanonicalBrand>,
    pub summary: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct CanonicalBrand {
    pub brand_uuid: String,
    pub brand_name: String,
    pub brand_slug: Option<String>,
    pub brand_synonyms: Vec<String>,
    #[schema(value_type = Option<Object>)]
    pub brand_enrichment: Option<serde_json::Value>,
}

/// The 11 color families of SPEC §4, in their canonical spelling.
pub const COLOR_FAMILIES: [&str; 11] =
    ["Black", "Blue", "Brown", "Gray", "Green", "Orange", "Pink", "Purple", "Red", "White", "Yellow"];

pub const GENDERS: [&str; 3] = ["male", "female", "unisex"];

pub const AGE_GROUPS: [&str; 4] = ["infant", "toddler", "kids", "adult"];

/// Namespace of product uuids (UUID v5): fixed forever, or every uuid changes.
const PRODUCT_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6f63_746f_6765_6e00_7072_6f64_7563_7473);

/// A product's stable id: a UUID v5 of its catalog and normalized URL, so the
/// same page in the same catalog keeps its uuid across every index run.
pub fn product_uuid(catalog_id: &str, normalized_url: &str) -> String {
    let name = format!("{catalog_id}\n{normalized_url}");
    uuid::Uuid::new_v5(&PRODUCT_NAMESPACE, name.as_bytes()).to_string()
}

/// A fingerprint of a stored product record, to tell changed products from unchanged ones.
///
/// xxh3-128, marked `x3:`. The hash only tells one version of a product from
/// the next, so it needs no cryptographic strength: a merchant who forged a
/// collision would only keep their own product from updating. SHA-256 cost
/// ten times as much on every imported product.
pub fn content_hash(record_json: &[u8]) -> String {
    xxh3_content_hash(record_json)
}

const XXH3_PREFIX: &str = "x3:";

fn xxh3_content_hash(bytes: &[u8]) -> String {
    format!("{XXH3_PREFIX}{:032x}", xxhash_rust::xxh3::xxh3_128(bytes))
}

/// Whether `stored_hash`, written by this or an earlier version, is the
/// content hash of `record_json`. Earlier versions wrote SHA-256 (its first
/// 16 bytes in hex, unmarked): those are recomputed, so that an upgrade does
/// not make every stored product look changed.
pub fn is_content_hash_of(stored_hash: &str, record_json: &[u8]) -> bool {
    if !is_legacy_content_hash(stored_hash) {
        return xxh3_content_hash(record_json) == stored_hash;
    }
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(record_json)[..16]) == stored_hash
}

/// Whether `stored_hash` is one an earlier version wrote (SHA-256), which
/// [`is_content_hash_of`] must recompute from the record.
pub fn is_legacy_content_hash(stored_hash: &str) -> bool {
    !stored_hash.starts_with(XXH3_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_stable_and_distinct() {
        let a = product_uuid("catalog-1", "https://shop.example/products/a");
        assert_eq!(a, product_uuid("catalog-1", "https://shop.example/products/a"));
        assert_ne!(a, product_uuid("catalog-2", "https://shop.example/products/a"));
        assert_ne!(a, product_uuid("catalog-1", "https://shop.example/products/b"));
        assert_eq!(uuid::Uuid::parse_str(&a).unwrap().get_version_num(), 5);
        assert_eq!(content_hash(b"{}"), content_hash(b"{}"));
        assert_ne!(content_hash(b"{}"), content_hash(b"{ }"));
    }

    #[test]
    fn content_hashes_of_this_and_earlier_versions_are_recognized() {
        let json = r#"{"title":"Shirt"}"#;
        let hash = content_hash(json.as_bytes());
        assert!(hash.starts_with("x3:") && hash.len() == 35, "{hash}");
        assert!(!is_legacy_content_hash(&hash));
        assert!(is_content_hash_of(&hash, json.as_bytes()));
        assert!(!is_content_hash_of(&hash, br#"{"title":"Skirt"}"#));
        // What versions before xxh3 stored for the same JSON: SHA-256's first 16 bytes.
        use sha2::{Digest, Sha256};
        let expected = hex::encode(&Sha256::digest(json.as_bytes())[..16]);
        assert!(is_legacy_content_hash(&expected));
        assert!(is_content_hash_of(&expected, json.as_bytes()));
        assert!(!is_content_hash_of(&expected, br#"{"title":"Skirt"}"#));
    }
}

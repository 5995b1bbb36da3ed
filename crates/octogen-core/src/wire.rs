//! Wire shapes of the May 2026 contract (API version `2026-05-28`, SPEC §4–5).
//! JSON fields are camelCase. Later API versions render the same internal
//! records differently; see the server's `versions` module.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::product::{
    Brand, Color, Details, Enrichment, Identifiers, Link, Product, Promotion, Rating, Review, Variant, Video,
};
use crate::time::Timestamp;

/// A catalog as a partner sees it (`GET /v1/catalogs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MerchantCatalogSummary {
    /// The catalog key, e.g. `warrenlotas`.
    #[schema(example = "northwind")]
    pub catalog: String,
    #[schema(example = "Northwind Outfitters")]
    pub display_name: String,
    #[schema(example = "https://northwind.example")]
    pub source_base_url: Option<String>,
    /// Active products.
    pub product_count: u64,
    /// Completion time of the last completed index run.
    pub last_indexed_at: Option<Timestamp>,
}

/// A product as stored: the record plus the catalog-level facts the store owns.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductRecord {
    pub uuid: String,
    pub catalog_key: String,
    pub is_active: bool,
    pub updated_at: Timestamp,
    /// The normalized URL under which lookups find this product.
    pub normalized_url: String,
    pub product: Product,
}

/// A variant as the May 2026 contract shows it (`{sku, productUrl, color, size, inStock, imageUrl}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VariantView {
    pub sku: Option<String>,
    pub product_url: Option<String>,
    pub color: Option<Color>,
    pub size: Option<String>,
    pub in_stock: Option<bool>,
    pub image_url: Option<String>,
}

impl From<&Variant> for VariantView {
    fn from(variant: &Variant) -> Self {
        VariantView {
            sku: variant.sku.clone(),
            product_url: variant.product_url.clone(),
            color: variant.color.clone(),
            size: variant.size.clone(),
            in_stock: variant.in_stock,
            image_url: variant.image_url.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Audience {
    pub genders: Vec<String>,
    pub age_groups: Vec<String>,
}

/// A search result (SPEC §5 `MerchantProductListItem`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MerchantProductListItem {
    pub uuid: String,
    pub catalog_key: String,
    pub product_url: String,
    pub title: Option<String>,
    pub brand: Option<Brand>,
    pub current_price: Option<f64>,
    /// Null when there is no markdown.
    pub original_price: Option<f64>,
    pub currency: Option<String>,
    pub image_url: Option<String>,
    /// Image URLs, the primary first.
    pub images: Vec<String>,
    pub rating: Option<Rating>,
    pub is_active: bool,
    pub updated_at: Timestamp,
}

/// A full product (SPEC §5 `MerchantProductView`): every list-item field plus details.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MerchantProductView {
    #[serde(flatten)]
    pub item: MerchantProductListItem,
    pub description: Option<String>,
    pub in_stock: Option<bool>,
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
}

impl MerchantProductListItem {
    pub fn from_record(record: &ProductRecord) -> Self {
        let mut item = Self::from_summary(&ProductSummary::from_record(record));
        item.is_active = record.is_active;
        item
    }
}

impl MerchantProductView {
    pub fn from_record(record: &ProductRecord) -> Self {
        let product = &record.product;
        MerchantProductView {
            item: MerchantProductListItem::from_record(record),
            description: product.description.clone(),
            in_stock: product.in_stock,
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
        }
    }
}

/// Audience from enrichment; null when neither gender nor age is known.
pub fn audience_of(product: &Product) -> Option<Audience> {
    let genders: Vec<String> = product.enrichment.gender.iter().cloned().collect();
    let age_groups = product.enrichment.age_groups.clone();
    (!genders.is_empty() || !age_groups.is_empty()).then_some(Audience { genders, age_groups })
}

/// What a search hit needs to render a list item in every API version. The
/// search index stores one per product so results need no second lookup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductSummary {
    pub uuid: String,
    pub catalog_key: String,
    pub product_url: String,
    pub title: String,
    pub brand: Option<Brand>,
    pub current_price: Option<f64>,
    /// Only set when it is a markdown (greater than the current price).
    pub original_price: Option<f64>,
    pub currency: Option<String>,
    pub images: Vec<crate::product::Image>,
    pub rating: Option<Rating>,
    pub in_stock: Option<bool>,
    /// Color labels.
    pub colors: Vec<String>,
    pub sizes: Vec<String>,
    pub gender: Option<String>,
    pub category_path: Vec<String>,
    pub updated_at: Timestamp,
}

impl ProductSummary {
    pub fn from_record(record: &ProductRecord) -> Self {
        let product = &record.product;
        ProductSummary {
            uuid: record.uuid.clone(),
            catalog_key: record.catalog_key.clone(),
            product_url: product.url.clone(),
            title: product.title.clone(),
            brand: product.brand.clone(),
            current_price: product.current_price,
            original_price: product.markdown_original_price(),
            currency: product.currency.clone(),
            images: product.images.clone(),
            rating: product.rating.clone(),
            in_stock: product.in_stock,
            colors: product.colors.iter().map(|color| color.label.clone()).collect(),
            sizes: product.sizes.clone(),
            gender: product.enrichment.gender.clone(),
            category_path: product.enrichment.category_path.clone(),
            updated_at: record.updated_at,
        }
    }
}

impl MerchantProductListItem {
    /// Search results are only ever active products.
    pub fn from_summary(summary: &ProductSummary) -> Self {
        MerchantProductListItem {
            uuid: summary.uuid.clone(),
            catalog_key: summary.catalog_key.clone(),
            product_url: summary.product_url.clone(),
            title: Some(summary.title.clone()).filter(|title| !title.is_empty()),
            brand: summary.brand.clone(),
            current_price: summary.current_price,
            original_price: summary.original_price,
            currency: summary.currency.clone(),
            image_url: summary.images.first().map(|image| image.url.clone()),
            images: summary.images.iter().map(|image| image.url.clone()).collect(),
            rating: summary.rating.clone(),
            is_active: true,
            updated_at: summary.updated_at,
        }
    }
}

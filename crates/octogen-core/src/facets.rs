//! Facet semantics (SPEC §4), in one place: which product values each facet
//! name filters on, and how names and values are normalized. The search index
//! stores `facet_terms(product)`; a query compiles each `(name, value)` with
//! `facet_term`. Matching is therefore case-insensitive on both sides by
//! construction.

use std::fmt::Write;

use crate::product::Product;

/// Facets with a fixed meaning; every other name is a dynamic attribute facet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FacetKey {
    /// The canonical brand name (falls back to the published brand).
    BrandName,
    BrandSlug,
    /// The brand exactly as the merchant published it.
    RawBrandName,
    /// `enrichment.type`.
    ProductType,
    Gender,
    AgeGroups,
    /// Specific color names (`enrichment.color`).
    Color,
    /// One of the 11 families (`enrichment.color_family`).
    ColorFamily,
    /// `true` / `false`.
    IsActivewear,
    /// `category_path.depth_0` … `category_path.depth_6`.
    CategoryDepth(u8),
    /// `enrichment.attributes[<handle>]`, named bare (`fit`) or qualified (`attribute_facets.fit`).
    Attribute(String),
}

pub const MAX_CATEGORY_DEPTH: u8 = 6;
const ATTRIBUTE_PREFIX: &str = "attribute_facets.";
const CATEGORY_PREFIX: &str = "category_path.depth_";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FacetNameError {
    #[error("facet name must not be empty")]
    Empty,
}

impl FacetKey {
    /// Parses a facet name as clients send it. Names are case-insensitive.
    /// Every non-empty name is valid: a name that is not one of SPEC §4's
    /// (including `category_path.depth_7` and beyond) is an attribute facet,
    /// which simply matches nothing when no product has that attribute.
    pub fn parse(name: &str) -> Result<FacetKey, FacetNameError> {
        if name.is_empty() {
            return Err(FacetNameError::Empty);
        }
        let name = name.trim().to_lowercase();
        Ok(match name.as_str() {
            "brand_name" => FacetKey::BrandName,
            "brand_slug" => FacetKey::BrandSlug,
            "raw_brand_name" => FacetKey::RawBrandName,
            "product_type" => FacetKey::ProductType,
            "gender" => FacetKey::Gender,
            "age_groups" => FacetKey::AgeGroups,
            "color" => FacetKey::Color,
            "color_family" => FacetKey::ColorFamily,
            "is_activewear" => FacetKey::IsActivewear,
            _ => {
                match name.strip_prefix(CATEGORY_PREFIX).and_then(|depth| depth.parse::<u8>().ok()) {
                    Some(depth) if depth <= MAX_CATEGORY_DEPTH => FacetKey::CategoryDepth(depth),
                    _ => {
                        let raw = name.strip_prefix(ATTRIBUTE_PREFIX).unwrap_or(&name);
                        let handle = attribute_handle(raw);
                        // A name of only punctuation keeps its spelling (it matches no attribute).
                        FacetKey::Attribute(if handle.is_empty() { raw.to_string() } else { handle })
                    }
                }
            }
        })
    }

    /// The canonical spelling, as used in index terms and `effectiveQuery`.
    pub fn canonical_name(&self) -> String {
        let mut name = String::new();
        self.push_canonical_name(&mut name);
        name
    }

    /// Appends the canonical spelling: index terms are built in one buffer
    /// (a product has a dozen or more, and an import builds them for every product).
    fn push_canonical_name(&self, out: &mut String) {
        let fixed = match self {
            FacetKey::BrandName => "brand_name",
            FacetKey::BrandSlug => "brand_slug",
            FacetKey::RawBrandName => "raw_brand_name",
            FacetKey::ProductType => "product_type",
            FacetKey::Gender => "gender",
            FacetKey::AgeGroups => "age_groups",
            FacetKey::Color => "color",
            FacetKey::ColorFamily => "color_family",
            FacetKey::IsActivewear => "is_activewear",
            FacetKey::CategoryDepth(depth) => {
                let _ = write!(out, "{CATEGORY_PREFIX}{depth}");
                return;
            }
            FacetKey::Attribute(handle) => {
                out.push_str(ATTRIBUTE_PREFIX);
                out.push_str(handle);
                return;
            }
        };
        out.push_str(fixed);
    }
}

/// Attribute names become handles: lowercase, words joined by `_`
/// ("Heel Height" → `heel_height`).
pub fn attribute_handle(name: &str) -> String {
    name.split(|c: char| !c.is_alphanumeric())
        .filter(|part| !part.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join("_")
}

/// Values compare case-insensitively with inner whitespace collapsed.
pub fn normalize_value(value: &str) -> String {
    let mut normalized = String::with_capacity(value.len());
    push_normalized_value(&mut normalized, value);
    normalized
}

/// Appends `normalize_value(value)`. Word by word gives the same result as
/// lowercasing the joined words: a word's end is a word's end either way (the
/// one context-sensitive mapping, final sigma, looks only at word boundaries).
fn push_normalized_value(out: &mut String, value: &str) {
    for (index, word) in value.split_whitespace().enumerate() {
        if index > 0 {
            out.push(' ');
        }
        if word.is_ascii() {
            out.extend(word.bytes().map(|byte| char::from(byte.to_ascii_lowercase())));
        } else {
            out.push_str(&word.to_lowercase());
        }
    }
}

/// The index term for one facet value. `\u{1f}` cannot appear in a normalized name.
pub fn facet_term(key: &FacetKey, value: &str) -> String {
    let mut term = String::with_capacity(32 + value.len());
    key.push_canonical_name(&mut term);
    term.push('\u{1f}');
    push_normalized_value(&mut term, value);
    term
}

/// Every facet term a product carries.
pub fn facet_terms(product: &Product) -> Vec<String> {
    let enrichment = &product.enrichment;
    let mut terms = Vec::new();
    let mut push = |key: &FacetKey, value: &str| {
        if !value.trim().is_empty() {
            terms.push(facet_term(key, value));
        }
    };
    let canonical = enrichment.canonical_brand.as_ref();
    let brand_name =
        canonical.map(|brand| brand.brand_name.as_str()).or(product.brand.as_ref().map(|b| b.name.as_str()));
    if let Some(name) = brand_name {
        push(&FacetKey::BrandName, name);
    }
    if let Some(brand) = &product.brand {
        push(&FacetKey::RawBrandName, &brand.name);
    }
    let slug = canonical
        .and_then(|brand| brand.brand_slug.as_deref())
        .or(product.brand.as_ref().and_then(|b| b.slug.as_deref()));
    if let Some(slug) = slug {
        push(&FacetKey::BrandSlug, slug);
    }
    if let Some(product_type) = &enrichment.product_type {
        push(&FacetKey::ProductType, product_type);
    }
    if let Some(gender) = &enrichment.gender {
        push(&FacetKey::Gender, gender);
    }
    for age in &enrichment.age_groups {
        push(&FacetKey::AgeGroups, age);
    }
    for color in &enrichment.color {
        push(&FacetKey::Color, color);
    }
    for family in &enrichment.color_family {
        push(&FacetKey::ColorFamily, family);
    }
    if let Some(activewear) = enrichment.is_activewear {
        push(&FacetKey::IsActivewear, if activewear { "true" } else { "false" });
    }
    for (depth, name) in enrichment.category_path.iter().enumerate().take(usize::from(MAX_CATEGORY_DEPTH) + 1) {
        push(&FacetKey::CategoryDepth(depth as u8), name);
    }
    for (name, values) in &enrichment.attributes {
        let key = FacetKey::Attribute(attribute_handle(name));
        for value in values {
            push(&key, value);
        }
    }
    terms.sort();
    terms.dedup();
    terms
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::product::{Brand, Enrichment};

    #[test]
    fn parses_fixed_and_dynamic_names() {
        assert_eq!(FacetKey::parse("Color_Family").unwrap(), FacetKey::ColorFamily);
        assert_eq!(FacetKey::parse("category_path.depth_3").unwrap(), FacetKey::CategoryDepth(3));
        assert_eq!(
            FacetKey::parse("category_path.depth_7").unwrap(),
            FacetKey::Attribute("category_path_depth_7".into())
        );
        assert_eq!(FacetKey::parse("fit").unwrap(), FacetKey::Attribute("fit".into()));
        assert_eq!(FacetKey::parse("attribute_facets.fit").unwrap(), FacetKey::Attribute("fit".into()));
        assert_eq!(FacetKey::parse("Heel Height").unwrap(), FacetKey::Attribute("heel_height".into()));
        assert_eq!(FacetKey::parse(""), Err(FacetNameError::Empty));
        assert_eq!(FacetKey::parse(">").unwrap(), FacetKey::Attribute(">".into()));
        assert_eq!(FacetKey::parse("  ").unwrap(), FacetKey::Attribute("".into()));
    }

    /// The spellings the index was built with before terms were built in one buffer.
    fn term_as_first_written(key: &FacetKey, value: &str) -> String {
        let name = match key {
            FacetKey::CategoryDepth(depth) => format!("{CATEGORY_PREFIX}{depth}"),
            FacetKey::Attribute(handle) => format!("{ATTRIBUTE_PREFIX}{handle}"),
            _ => key.canonical_name(),
        };
        format!("{name}\u{1f}{}", value.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase())
    }

    #[test]
    fn terms_are_spelled_as_the_index_has_them() {
        let keys = [
            FacetKey::BrandName,
            FacetKey::Gender,
            FacetKey::CategoryDepth(0),
            FacetKey::CategoryDepth(6),
            FacetKey::CategoryDepth(12),
            FacetKey::CategoryDepth(255),
            FacetKey::Attribute("heel_height".into()),
        ];
        let values =
            ["Navy  Blue", " Ivory\t", "ΟΔΟΣ ΟΔΟΣ", "ΣΑΣ\u{a0}ΣΑΣ", "İstanbul Straße", "MIXED Case ÉTÉ", "", "   "];
        for key in &keys {
            for value in values {
                assert_eq!(facet_term(key, value), term_as_first_written(key, value), "{key:?} {value:?}");
            }
        }
        assert_eq!(FacetKey::CategoryDepth(12).canonical_name(), "category_path.depth_12");
        assert_eq!(normalize_value(" Light\n GRAY "), "light gray");
    }

    #[test]
    fn product_terms_match_query_terms_case_insensitively() {
        let mut product =
            Product { brand: Some(Brand { name: "Spacire".into(), ..Brand::default() }), ..Product::default() };
        product.enrichment = Enrichment {
            color: vec!["Navy  Blue".into()],
            color_family: vec!["Blue".into()],
            category_path: vec!["Home & Garden".into(), "Bedding".into()],
            is_activewear: Some(false),
            ..Enrichment::default()
        };
        product.enrichment.attributes.insert("Fill Weight".into(), vec!["7kg".into()]);
        let terms = facet_terms(&product);
        for (name, value) in [
            ("color", "navy blue"),
            ("COLOR_FAMILY", "BLUE"),
            ("brand_name", "spacire"),
            ("raw_brand_name", "SPACIRE"),
            ("category_path.depth_1", "bedding"),
            ("is_activewear", "False"),
            ("fill_weight", "7KG"),
            ("attribute_facets.fill_weight", "7kg"),
        ] {
            let term = facet_term(&FacetKey::parse(name).unwrap(), value);
            assert!(terms.contains(&term), "{name}={value} not in {terms:?}");
        }
    }
}

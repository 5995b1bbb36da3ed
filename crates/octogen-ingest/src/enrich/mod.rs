//! Deterministic enrichment: derives the `enrichment` object of SPEC §5 (and
//! the facet values it feeds) from what the merchant published. Pure: the same
//! product and hints always give the same result, with no I/O or clock.
//!
//! Feed values win over text heuristics: a feed's color field, gender column
//! or category path is used as given; titles, types and descriptions only fill
//! what the feed left open (and refine a bare "Blue" into the title's "Navy Blue").

use std::collections::BTreeMap;

use octogen_core::facets::attribute_handle;
use octogen_core::product::{CanonicalBrand, Enrichment};
use octogen_core::Product;
use uuid::Uuid;

use crate::text::{collapse_whitespace, slugify, truncate_chars};

mod audience;
mod colors;
mod details;
mod phrases;
mod types;
pub mod vocab;

use phrases::Token;

pub use audience::{audience, Audience, AudienceSources};
pub use colors::{colors_in_label, colors_in_title, family_of, ColorMatch};
pub use details::normalize_size;
pub use types::{product_type, singularize_phrase, TypeMatch};

/// Feed fields that inform enrichment but have no place of their own on a `Product`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedHints {
    /// Gender as the feed states it: "Men", "female", "Unisex Kids".
    pub gender: Option<String>,
    /// Age group as the feed states it: "adult", "kids", "newborn".
    pub age_group: Option<String>,
    /// Google product category, as a path ("Apparel & Accessories > Clothing") or a numeric id.
    pub google_category: Option<String>,
    /// The merchant's own category path (Merchant `product_type`, a CSV category column).
    pub merchant_category: Vec<String>,
}

/// Fills `product.enrichment` (replacing it), normalizes sizes, completes
/// `details` and the brand slug.
pub fn enrich(product: &mut Product, hints: &FeedHints) {
    let mut enrichment = Enrichment { canonical_brand: canonical_brand(product), ..Enrichment::default() };
    let title_core = title_without_brand(product).to_string();
    let title_tokens = phrases::tokenize(&title_core);
    // Copied out: its tokens borrow it while `complete_details` changes the product.
    let description_head = details::description_head(product.description.as_deref()).to_string();
    let description_tokens = phrases::tokenize(&description_head);

    let leaves = category_leaves(product, hints);
    let found_type = product_type(product.product_type.as_deref(), &leaves, &title_core);
    let department = found_type.as_ref().and_then(|found| found.department);
    enrichment.category_path = types::category_path(product, hints, found_type.as_ref());
    if let Some(found) = &found_type {
        enrichment.type_synonyms = types::synonyms(&found.name);
        enrichment.product_type = Some(found.name.clone());
    }

    let classification: Vec<String> =
        product.product_type.iter().chain(enrichment.category_path.iter()).cloned().collect();
    let found_audience = audience(&AudienceSources {
        feed_gender: hints.gender.as_deref(),
        feed_age_group: hints.age_group.as_deref(),
        title: &title_core,
        classification: classification.iter().map(String::as_str).collect(),
        tags: &product.tags,
    });
    enrichment.gender = found_audience.gender.map(str::to_string);
    enrichment.age_groups = found_audience.age_groups.iter().map(|age| age.to_string()).collect();

    for color in color_facets(product, &title_tokens, department) {
        enrichment.color.push(color.label);
        enrichment.color_family.push(color.family.to_string());
    }

    complete_details(product, &title_tokens, &description_tokens, department);
    let mut activewear_texts: Vec<&str> = classification.iter().map(String::as_str).collect();
    activewear_texts.extend(product.tags.iter().map(String::as_str));
    enrichment.is_activewear = Some(details::is_activewear_tokens(department, &title_tokens, &activewear_texts));
    enrichment.styles = details::styles_in_tokens(&[&title_tokens]);
    enrichment.tags = lowercase_unique(&product.tags);
    enrichment.attributes = attributes(product);
    enrichment.attribute_handles = enrichment
        .attributes
        .iter()
        .map(|(name, values)| (name.clone(), values.iter().map(|value| attribute_handle(value)).collect()))
        .collect();
    enrichment.summary = product.description.as_deref().and_then(summary);
    product.enrichment = enrichment;
}

/// Fixed namespace for brand UUIDs (UUID v5 of the brand slug), so every
/// catalog and every node derives the same id for the same brand.
pub fn brand_namespace() -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, b"https://octogen.ai/ns/brand")
}

fn canonical_brand(product: &mut Product) -> Option<CanonicalBrand> {
    let brand = product.brand.as_mut()?;
    let name = collapse_whitespace(&brand.name);
    let slug = slugify(&name);
    if slug.is_empty() {
        return None;
    }
    brand.slug.get_or_insert_with(|| slug.clone());
    let mut synonyms = Vec::new();
    if name.contains('&') {
        synonyms.push(collapse_whitespace(&name.replace('&', " and ")));
    }
    Some(CanonicalBrand {
        brand_uuid: Uuid::new_v5(&brand_namespace(), slug.as_bytes()).to_string(),
        brand_name: name,
        brand_slug: Some(slug),
        brand_synonyms: synonyms,
        brand_enrichment: None,
    })
}

/// Marketplace titles start with the brand ("Parx Men Blue Shirt"); the brand's
/// own words must not count as colors, types or audiences ("U.S. Polo Assn. Kids").
fn title_without_brand(product: &Product) -> &str {
    let title = product.title.as_str();
    let Some(brand) = product.brand.as_ref().map(|brand| brand.name.trim()).filter(|name| !name.is_empty()) else {
        return title;
    };
    match title.get(..brand.len()) {
        Some(prefix) if prefix.eq_ignore_ascii_case(brand) => title[brand.len()..].trim_start(),
        _ => title,
    }
}

fn category_leaves<'a>(product: &'a Product, hints: &'a FeedHints) -> Vec<&'a str> {
    let mut leaves = Vec::new();
    if let Some(leaf) = hints.merchant_category.last() {
        leaves.push(leaf.as_str());
    }
    if let Some(google) = hints.google_category.as_deref() {
        if let Some(leaf) = google.rsplit(['>', '›']).next() {
            leaves.push(leaf.trim());
        }
    }
    // The last breadcrumb is usually the product itself; the one before is its category.
    let crumbs = &product.breadcrumbs;
    if crumbs.len() >= 2 {
        leaves.push(crumbs[crumbs.len() - 2].name.as_str());
    }
    leaves
}

/// Specific colors with their families: the feed's color labels, refined by
/// the title; for fashion products without a color field, the title's colors.
fn color_facets(product: &Product, title_tokens: &[Token<'_>], department: Option<&str>) -> Vec<ColorMatch> {
    let mut found: Vec<ColorMatch> = Vec::new();
    let push = |color: ColorMatch, found: &mut Vec<ColorMatch>| {
        if !found.iter().any(|existing| existing.label.eq_ignore_ascii_case(&color.label)) {
            found.push(color);
        }
    };
    let variant_labels = product.variants.iter().filter_map(|variant| variant.color.as_ref()).map(|c| &c.label);
    for label in product.colors.iter().map(|color| &color.label).chain(variant_labels) {
        for color in colors_in_label(label) {
            push(color, &mut found);
        }
    }
    let title_colors = colors::colors_in_title_tokens(title_tokens);
    if found.is_empty() {
        if department.is_some_and(|department| vocab::FASHION_DEPARTMENTS.contains(&department)) {
            title_colors.into_iter().for_each(|color| push(color, &mut found));
        }
        return found;
    }
    for color in &mut found {
        if !colors::is_bare_family(&color.label) {
            continue;
        }
        let refined = title_colors
            .iter()
            .find(|candidate| candidate.family == color.family && !colors::is_bare_family(&candidate.label));
        if let Some(refined) = refined {
            color.label = refined.label.clone();
        }
    }
    let mut unique = Vec::with_capacity(found.len());
    found.into_iter().for_each(|color| push(color, &mut unique));
    unique
}

fn complete_details(product: &mut Product, title: &[Token<'_>], description: &[Token<'_>], department: Option<&str>) {
    let details = &mut product.details;
    let feed_materials = details.materials.join(" / ");
    let feed_materials = phrases::tokenize(&feed_materials);
    let mut materials = details::materials_in_tokens(&[&feed_materials, title, description]);
    // Keep feed spellings the vocabulary does not know.
    for material in &details.materials {
        if details::materials_in(&[material]).is_empty() && !materials.contains(material) {
            materials.push(material.clone());
        }
    }
    details.materials = materials;

    let apparel = matches!(department, None | Some(vocab::CLOTHING) | Some(vocab::FOOTWEAR));
    if apparel {
        let feed_fits = details.fit.join(" / ");
        let feed_fits = phrases::tokenize(&feed_fits);
        let fits = details::fits_in_tokens(&[&feed_fits, title, description]);
        details.fit = merge_unique(std::mem::take(&mut details.fit), fits);
    }
    let feed_patterns = details.patterns.join(" / ");
    let feed_patterns = phrases::tokenize(&feed_patterns);
    let patterns = details::patterns_in_tokens(&[&feed_patterns, title]);
    details.patterns =
        merge_unique(std::mem::take(&mut details.patterns).into_iter().map(|p| p.to_lowercase()).collect(), patterns);

    product.sizes = lowercase_unique(&product.sizes.iter().map(|size| normalize_size(size)).collect::<Vec<_>>());
}

/// Merchant attributes (options beyond color and size, feed extras) keyed by
/// handle, plus the derived material, fit, pattern and size facets.
fn attributes(product: &Product) -> BTreeMap<String, Vec<String>> {
    let mut attributes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut add = |name: &str, values: &[String]| {
        let handle = attribute_handle(name);
        if handle.is_empty() || values.is_empty() {
            return;
        }
        let entry = attributes.entry(handle).or_default();
        for value in values {
            if !entry.iter().any(|existing| existing.eq_ignore_ascii_case(value)) {
                entry.push(value.clone());
            }
        }
    };
    for (name, values) in &product.attributes {
        add(name, values);
    }
    add("material", &product.details.materials);
    add("fit", &product.details.fit);
    add("pattern", &product.details.patterns);
    add("size", &product.sizes);
    attributes.retain(|_, values| !values.is_empty());
    attributes
}

fn merge_unique(mut first: Vec<String>, more: Vec<String>) -> Vec<String> {
    for value in more {
        if !first.iter().any(|existing| existing.eq_ignore_ascii_case(&value)) {
            first.push(value);
        }
    }
    first
}

fn lowercase_unique(values: &[String]) -> Vec<String> {
    let mut unique: Vec<String> = Vec::with_capacity(values.len());
    for value in values {
        let value = collapse_whitespace(value).to_lowercase();
        if !value.is_empty() && !unique.contains(&value) {
            unique.push(value);
        }
    }
    unique
}

const SUMMARY_CHARS: usize = 300;

/// The description's first sentence (or first line), capped.
pub fn summary(description: &str) -> Option<String> {
    let first_line = description.lines().map(str::trim).find(|line| !line.is_empty())?;
    let sentence_end = first_line
        .match_indices(['.', '!', '?'])
        .map(|(index, mark)| index + mark.len())
        .find(|&end| first_line[end..].starts_with(' ') || end == first_line.len());
    let sentence = sentence_end.map_or(first_line, |end| &first_line[..end]);
    Some(truncate_chars(sentence.trim(), SUMMARY_CHARS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use octogen_core::product::{Brand, Color};

    fn product(title: &str, brand: &str) -> Product {
        Product {
            title: title.into(),
            url: "https://shop.example/p".into(),
            brand: Some(Brand { name: brand.into(), ..Brand::default() }),
            ..Product::default()
        }
    }

    #[test]
    fn brand_is_canonical_and_stable() {
        let mut first = product("Shirt", "Marks & Spencer");
        enrich(&mut first, &FeedHints::default());
        let brand = first.enrichment.canonical_brand.clone().unwrap();
        assert_eq!(brand.brand_slug.as_deref(), Some("marks-and-spencer"));
        assert_eq!(brand.brand_synonyms, ["Marks and Spencer"]);
        assert_eq!(first.brand.as_ref().unwrap().slug.as_deref(), Some("marks-and-spencer"));
        let mut second = product("Trousers", "Marks  &  Spencer");
        enrich(&mut second, &FeedHints::default());
        assert_eq!(second.enrichment.canonical_brand.unwrap().brand_uuid, brand.brand_uuid);
    }

    #[test]
    fn myntra_style_title_refines_bare_color() {
        let mut shirt = product("Gini and Jony Boys Navy Blue Regular Fit Solid Casual Shirt", "Gini and Jony");
        shirt.colors = vec![Color::labelled("Blue")];
        enrich(&mut shirt, &FeedHints { gender: Some("Boys".into()), ..FeedHints::default() });
        let e = &shirt.enrichment;
        assert_eq!(e.color, ["Navy Blue"]);
        assert_eq!(e.color_family, ["Blue"]);
        assert_eq!(e.gender.as_deref(), Some("male"));
        assert_eq!(e.age_groups, ["kids"]);
        assert_eq!(e.product_type.as_deref(), Some("shirt"));
        assert_eq!(e.category_path, ["Clothing", "Shirt"]);
        assert_eq!(shirt.details.fit, ["regular"]);
        assert_eq!(shirt.details.patterns, ["solid"]);
        assert_eq!(e.attributes["fit"], ["regular"]);
        assert_eq!(e.styles, ["casual"]);
        assert_eq!(e.is_activewear, Some(false));
    }

    #[test]
    fn electronics_titles_do_not_give_colors() {
        let mut speaker = product("Acousticax White Noise Speaker with Touch Lights", "Spacire");
        speaker.product_type = Some("White Noise Speaker".into());
        enrich(&mut speaker, &FeedHints::default());
        assert!(speaker.enrichment.color.is_empty());
        assert_eq!(speaker.enrichment.product_type.as_deref(), Some("white noise speaker"));
    }

    #[test]
    fn attributes_are_keyed_by_handle() {
        let mut blanket = product("Weighted Blanket", "Spacire");
        blanket.attributes.insert("Fill Weight".into(), vec!["7kg".into(), "9 KG".into()]);
        blanket.sizes = vec!["Large".into(), "150X200cm".into()];
        enrich(&mut blanket, &FeedHints::default());
        let e = &blanket.enrichment;
        assert_eq!(e.attributes["fill_weight"], ["7kg", "9 KG"]);
        assert_eq!(e.attribute_handles["fill_weight"], ["7kg", "9_kg"]);
        assert_eq!(blanket.sizes, ["l", "150x200cm"]);
        assert_eq!(e.attributes["size"], ["l", "150x200cm"]);
    }

    #[test]
    fn summaries_take_the_first_sentence() {
        assert_eq!(summary("Find your calm. It helps.").as_deref(), Some("Find your calm."));
        assert_eq!(summary("\nNo stop here\nsecond line").as_deref(), Some("No stop here"));
        assert_eq!(summary("Costs 3.50 today. Yes").as_deref(), Some("Costs 3.50 today."));
        assert!(summary("x".repeat(1000).as_str()).unwrap().chars().count() <= 300);
        assert_eq!(summary("  "), None);
    }

    #[test]
    fn enrichment_is_deterministic() {
        let mut first = product("Roadster Men Navy Blue Slim Fit Cotton Casual Shirt", "Roadster");
        first.tags = vec!["Summer".into(), "summer".into()];
        let mut second = first.clone();
        enrich(&mut first, &FeedHints::default());
        enrich(&mut second, &FeedHints::default());
        assert_eq!(first, second);
        assert_eq!(first.enrichment.tags, ["summer"]);
        assert_eq!(first.details.materials, ["cotton"]);
    }
}

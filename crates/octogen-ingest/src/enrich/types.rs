//! Product type (a lowercase singular noun phrase), its department, and the
//! category path.

use std::sync::OnceLock;

use octogen_core::Product;

use super::phrases::{tokenize, PhraseTable, Token};
use super::vocab::{PLURALIA, PRODUCT_TYPES, TYPE_SYNONYMS};
use super::FeedHints;
use crate::text::{collapse_whitespace, split_path, title_case};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeMatch {
    /// e.g. "weighted blanket", "t-shirt", "jeans".
    pub name: String,
    pub department: Option<&'static str>,
}

/// Type vocabulary keyed by singular tokens, so "Curtains" finds "curtain".
fn table() -> &'static PhraseTable<&'static str> {
    static TABLE: OnceLock<PhraseTable<&'static str>> = OnceLock::new();
    TABLE.get_or_init(|| PhraseTable::with_token_map(PRODUCT_TYPES, singularize_word))
}

/// The product type, from (in order) the merchant's own type label, a
/// vocabulary type in its category leaves, a vocabulary type in the title,
/// or the category leaf itself.
pub fn product_type(merchant_type: Option<&str>, category_leaves: &[&str], title: &str) -> Option<TypeMatch> {
    if let Some(label) = merchant_type.and_then(clean_type_label) {
        // A label outside the vocabulary ("Hypnosis Sleep Meter") still has a department in its title.
        let department = last_vocabulary_match(&label)
            .or_else(|| last_vocabulary_match(main_clause(title)))
            .and_then(|found| found.department);
        return Some(TypeMatch { name: singularize_phrase(&label), department });
    }
    category_leaves
        .iter()
        .find_map(|leaf| last_vocabulary_match(leaf))
        .or_else(|| last_vocabulary_match(main_clause(title)))
        .or_else(|| last_vocabulary_match(title))
        .or_else(|| {
            let leaf = category_leaves.iter().find_map(|leaf| clean_type_label(leaf))?;
            Some(TypeMatch { name: singularize_phrase(&leaf), department: None })
        })
}

/// Lowercase label without leading digits/punctuation ("0Sleeping Aid" → "sleeping aid");
/// `None` for labels that cannot be a type (no letters, a sentence).
fn clean_type_label(label: &str) -> Option<String> {
    let trimmed = label.trim_start_matches(|c: char| !c.is_alphabetic());
    let trimmed = trimmed.trim_end_matches(|c: char| !c.is_alphanumeric());
    let cleaned = collapse_whitespace(trimmed).to_lowercase();
    let word_count = cleaned.split(' ').count();
    (cleaned.chars().filter(|c| c.is_alphabetic()).count() >= 2 && word_count <= 6).then_some(cleaned)
}

/// The part of a title that names the product: before "with", "for", a dash, a comma...
fn main_clause(title: &str) -> &str {
    let lower = title.to_lowercase();
    let cut = [" with ", " for ", " – ", " — ", " - ", " | ", ",", "(", " in "]
        .iter()
        .filter_map(|separator| lower.find(separator))
        .min()
        .unwrap_or(title.len());
    // `lower` may differ in byte length from `title` for some scripts; fall back to the whole title.
    title.get(..cut).unwrap_or(title)
}

/// The head noun phrase: the last vocabulary type in the text.
fn last_vocabulary_match(text: &str) -> Option<TypeMatch> {
    let tokens: Vec<Token> = tokenize(text).iter().map(|token| Token::Owned(singularize_word(token))).collect();
    let found = table().find_all(&tokens).into_iter().last()?;
    Some(TypeMatch { name: singularize_phrase(found.phrase), department: Some(*found.value) })
}

pub fn synonyms(type_name: &str) -> Vec<String> {
    TYPE_SYNONYMS
        .iter()
        .find(|(name, _)| *name == type_name)
        .map(|(_, synonyms)| synonyms.iter().map(|s| s.to_string()).collect())
        .unwrap_or_default()
}

/// "Sleep Aid Patches" → "sleep aid patch"; plural-only nouns stay ("slim jeans").
pub fn singularize_phrase(phrase: &str) -> String {
    let lower = phrase.to_lowercase();
    let split_at = lower.rfind([' ', '-']).map_or(0, |index| index + 1);
    let last_word = lower.rsplit(' ').next().unwrap_or_default();
    if PLURALIA.contains(&last_word) {
        return lower;
    }
    format!("{}{}", &lower[..split_at], singularize_word(&lower[split_at..]))
}

/// Short words ending in "s" that are not plurals.
const SHORT_NON_PLURALS: [&str; 6] = ["gas", "yes", "has", "was", "its", "ps"];

/// Plurals in "-ies" of nouns ending in "-ie" (the regular rule would make "hoody").
const IE_NOUNS: [&str; 16] = [
    "hoodies",
    "beanies",
    "onesies",
    "cookies",
    "ties",
    "pies",
    "booties",
    "undies",
    "smoothies",
    "brownies",
    "selfies",
    "goalies",
    "veggies",
    "lingeries",
    "rookies",
    "movies",
];
/// Plurals in "-ves" of nouns ending in "-f" or "-fe" ("gloves" is regular).
const VES_NOUNS: [(&str, &str); 11] = [
    ("scarves", "scarf"),
    ("knives", "knife"),
    ("shelves", "shelf"),
    ("leaves", "leaf"),
    ("halves", "half"),
    ("loaves", "loaf"),
    ("wolves", "wolf"),
    ("lives", "life"),
    ("wives", "wife"),
    ("calves", "calf"),
    ("thieves", "thief"),
];

pub fn singularize_word(word: &str) -> String {
    let lower = word.to_lowercase();
    if PLURALIA.contains(&lower.as_str()) || lower.len() <= 2 || SHORT_NON_PLURALS.contains(&lower.as_str()) {
        return lower;
    }
    if IE_NOUNS.contains(&lower.as_str()) {
        return lower[..lower.len() - 1].to_string();
    }
    if let Some((_, singular)) = VES_NOUNS.iter().find(|(plural, _)| *plural == lower) {
        return singular.to_string();
    }
    if let Some(stem) = lower.strip_suffix("ies") {
        return format!("{stem}y");
    }
    for suffix in ["ches", "shes", "sses", "xes", "zes"] {
        if lower.ends_with(suffix) {
            return lower[..lower.len() - 2].to_string();
        }
    }
    if lower.ends_with("ss") || lower.ends_with("us") || lower.ends_with("is") {
        return lower;
    }
    lower.strip_suffix('s').map_or(lower.clone(), str::to_string)
}

const HOME_CRUMBS: [&str; 6] = ["home", "homepage", "home page", "shop", "all products", "products"];
const MAX_DEPTH: usize = 7;

/// Category path, depth 0 first: the page's breadcrumbs, else the merchant's
/// category path, else the Google product category, else department > type.
pub fn category_path(product: &Product, hints: &FeedHints, product_type: Option<&TypeMatch>) -> Vec<String> {
    let crumbs = breadcrumb_path(product);
    let google = hints.google_category.as_deref().filter(|category| !is_numeric_id(category)).map(split_path);
    let mut path = [Some(crumbs), Some(hints.merchant_category.clone()), google]
        .into_iter()
        .flatten()
        .find(|path| !path.is_empty())
        .unwrap_or_else(|| derived_path(product_type));
    path.truncate(MAX_DEPTH);
    path
}

fn breadcrumb_path(product: &Product) -> Vec<String> {
    let mut names: Vec<String> =
        product.breadcrumbs.iter().map(|crumb| collapse_whitespace(&crumb.name)).filter(|n| !n.is_empty()).collect();
    if names.first().is_some_and(|first| HOME_CRUMBS.contains(&first.to_lowercase().as_str())) {
        names.remove(0);
    }
    if names.last().is_some_and(|last| last.eq_ignore_ascii_case(&product.title)) {
        names.pop();
    }
    names
}

fn derived_path(product_type: Option<&TypeMatch>) -> Vec<String> {
    let Some(found) = product_type else { return Vec::new() };
    match found.department {
        Some(department) => vec![department.to_string(), title_case(&found.name)],
        None => vec![title_case(&found.name)],
    }
}

fn is_numeric_id(category: &str) -> bool {
    !category.trim().is_empty() && category.trim().chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn type_of(merchant: Option<&str>, title: &str) -> (String, Option<&'static str>) {
        let found = product_type(merchant, &[], title).unwrap();
        (found.name, found.department)
    }

    #[test]
    fn merchant_labels_become_singular_lowercase() {
        assert_eq!(type_of(Some("Weighted Blanket"), ""), ("weighted blanket".into(), Some("Bedding")));
        assert_eq!(type_of(Some("Sleep Aid Patches"), ""), ("sleep aid patch".into(), Some("Health & Wellness")));
        assert_eq!(type_of(Some("Pillows"), ""), ("pillow".into(), Some("Bedding")));
        assert_eq!(
            type_of(Some("0Sleeping Aid Instrument"), ""),
            ("sleeping aid instrument".into(), Some("Electronics"))
        );
        assert_eq!(type_of(Some("Coral Blanket –"), ""), ("coral blanket".into(), Some("Bedding")));
        assert_eq!(type_of(Some("Blackout Curtains"), ""), ("blackout curtain".into(), Some("Home Decor")));
        // A label without letters is no type: the title decides.
        assert_eq!(
            type_of(Some("0"), "Ximonth Lavender Sleep Spray"),
            ("sleep spray".into(), Some("Health & Wellness"))
        );
    }

    #[test]
    fn titles_give_their_head_noun() {
        assert_eq!(
            type_of(None, "DKNY Unisex Black & Grey Printed Medium Trolley Bag"),
            ("trolley bag".into(), Some("Bags & Luggage"))
        );
        assert_eq!(
            type_of(None, "SPYKAR Women Pink Super Skinny Fit Cropped Jeans"),
            ("jeans".into(), Some("Clothing"))
        );
        assert_eq!(
            type_of(None, "EthnoVogue Women Beige & Grey Made to Measure Kurta Set with Jacket"),
            ("kurta set".into(), Some("Clothing"))
        );
        assert_eq!(type_of(None, "Parx Men Green Printed Polo Collar T-shirt"), ("t-shirt".into(), Some("Clothing")));
        assert_eq!(type_of(None, "Puma Men Black Running Shoes"), ("running shoe".into(), Some("Footwear")));
        assert_eq!(
            type_of(None, "Vishudh Women Maroon Printed Kurta with Palazzos"),
            ("kurta".into(), Some("Clothing"))
        );
    }

    #[test]
    fn singular_forms() {
        assert_eq!(singularize_phrase("Luxury Blankets"), "luxury blanket");
        assert_eq!(singularize_phrase("slip-ons"), "slip-on");
        assert_eq!(singularize_phrase("flip-flops"), "flip-flop");
        assert_eq!(singularize_phrase("Cropped Jeans"), "cropped jeans");
        assert_eq!(singularize_phrase("dress"), "dress");
        assert_eq!(singularize_phrase("boxes"), "box");
        assert_eq!(singularize_phrase("accessories"), "accessory");
        assert_eq!(singularize_phrase("Hoodies"), "hoodie");
        assert_eq!(singularize_phrase("Bow Ties"), "bow tie");
        assert_eq!(singularize_phrase("Silk Scarves"), "silk scarf");
        assert_eq!(singularize_phrase("Gloves"), "glove");
    }

    #[test]
    fn category_path_sources_in_order() {
        let mut product = Product { title: "Oxford Shirt".into(), ..Product::default() };
        let shirt = TypeMatch { name: "shirt".into(), department: Some("Clothing") };
        assert_eq!(category_path(&product, &FeedHints::default(), Some(&shirt)), ["Clothing", "Shirt"]);
        let hints = FeedHints {
            google_category: Some("Apparel & Accessories > Clothing > Shirts & Tops".into()),
            ..FeedHints::default()
        };
        assert_eq!(
            category_path(&product, &hints, Some(&shirt)),
            ["Apparel & Accessories", "Clothing", "Shirts & Tops"]
        );
        let numeric = FeedHints { google_category: Some("212".into()), ..FeedHints::default() };
        assert_eq!(category_path(&product, &numeric, Some(&shirt)), ["Clothing", "Shirt"]);
        product.breadcrumbs = ["Home", "Men", "Shirts", "Oxford Shirt"]
            .iter()
            .map(|name| octogen_core::product::Link { name: name.to_string(), url: None })
            .collect();
        assert_eq!(category_path(&product, &hints, Some(&shirt)), ["Men", "Shirts"]);
    }
}

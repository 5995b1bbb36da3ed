//! Materials, fit, patterns and styles read from text; activewear; size spellings.

use std::sync::OnceLock;

use super::phrases::{tokenize, PhraseTable, Token};
use super::vocab::{ACTIVEWEAR, CLOTHING, FITS, FOOTWEAR, MATERIALS, PATTERNS, STYLES};

fn materials_table() -> &'static PhraseTable<&'static str> {
    static TABLE: OnceLock<PhraseTable<&'static str>> = OnceLock::new();
    TABLE.get_or_init(|| PhraseTable::new(MATERIALS))
}

fn fits_table() -> &'static PhraseTable<&'static str> {
    static TABLE: OnceLock<PhraseTable<&'static str>> = OnceLock::new();
    TABLE.get_or_init(|| PhraseTable::new(FITS))
}

fn patterns_table() -> &'static PhraseTable<&'static str> {
    static TABLE: OnceLock<PhraseTable<&'static str>> = OnceLock::new();
    TABLE.get_or_init(|| PhraseTable::new(PATTERNS))
}

fn styles_table() -> &'static PhraseTable<&'static str> {
    static TABLE: OnceLock<PhraseTable<&'static str>> = OnceLock::new();
    TABLE.get_or_init(|| PhraseTable::new(STYLES))
}

/// Descriptions can be 20,000 characters; what a product is made of is said early.
const DESCRIPTION_SCAN_CHARS: usize = 2_000;

/// The start of a description, cut at a character boundary.
pub fn description_head(description: Option<&str>) -> &str {
    let text = description.unwrap_or_default();
    match text.char_indices().nth(DESCRIPTION_SCAN_CHARS) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

fn canonical_values(table: &PhraseTable<&'static str>, token_lists: &[&[Token<'_>]]) -> Vec<String> {
    let mut values: Vec<String> = Vec::new();
    for tokens in token_lists {
        for found in table.find_all(tokens) {
            if !values.iter().any(|value| value == found.value) {
                values.push(found.value.to_string());
            }
        }
    }
    values
}

/// Texts already split by `tokenize`, so one product's title and description are tokenized once.
pub fn materials_in_tokens(token_lists: &[&[Token<'_>]]) -> Vec<String> {
    canonical_values(materials_table(), token_lists)
}

pub fn fits_in_tokens(token_lists: &[&[Token<'_>]]) -> Vec<String> {
    canonical_values(fits_table(), token_lists)
}

pub fn patterns_in_tokens(token_lists: &[&[Token<'_>]]) -> Vec<String> {
    canonical_values(patterns_table(), token_lists)
}

pub fn styles_in_tokens(token_lists: &[&[Token<'_>]]) -> Vec<String> {
    canonical_values(styles_table(), token_lists)
}

fn tokenized<'a>(texts: &[&'a str]) -> Vec<Vec<Token<'a>>> {
    texts.iter().map(|text| tokenize(text)).collect()
}

fn in_texts(find: fn(&[&[Token<'_>]]) -> Vec<String>, texts: &[&str]) -> Vec<String> {
    let lists = tokenized(texts);
    let slices: Vec<&[Token]> = lists.iter().map(Vec::as_slice).collect();
    find(&slices)
}

pub fn materials_in(texts: &[&str]) -> Vec<String> {
    in_texts(materials_in_tokens, texts)
}

#[cfg(test)]
pub fn fits_in(texts: &[&str]) -> Vec<String> {
    in_texts(fits_in_tokens, texts)
}

#[cfg(test)]
pub fn patterns_in(texts: &[&str]) -> Vec<String> {
    in_texts(patterns_in_tokens, texts)
}

#[cfg(test)]
pub fn styles_in(texts: &[&str]) -> Vec<String> {
    in_texts(styles_in_tokens, texts)
}

fn activewear_table() -> &'static PhraseTable<()> {
    static ENTRIES: OnceLock<Vec<(&'static str, ())>> = OnceLock::new();
    static TABLE: OnceLock<PhraseTable<()>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let entries = ENTRIES.get_or_init(|| ACTIVEWEAR.iter().map(|word| (*word, ())).collect());
        PhraseTable::new(entries.as_slice())
    })
}

/// Activewear is apparel or footwear named for sport; a "yoga blanket" is not.
#[cfg(test)]
pub fn is_activewear(department: Option<&str>, texts: &[&str]) -> bool {
    is_activewear_tokens(department, &[], texts)
}

/// As `is_activewear`, with the title already tokenized.
pub fn is_activewear_tokens(department: Option<&str>, title_tokens: &[Token<'_>], texts: &[&str]) -> bool {
    if !matches!(department, None | Some(CLOTHING) | Some(FOOTWEAR)) {
        return false;
    }
    let table = activewear_table();
    !table.find_all(title_tokens).is_empty() || texts.iter().any(|text| !table.find_all(&tokenize(text)).is_empty())
}

/// Size labels as the wire shows them: lowercase, letter sizes abbreviated ("Small" → "s").
pub fn normalize_size(size: &str) -> String {
    let lower = crate::text::collapse_whitespace(size).to_lowercase();
    let abbreviated = match lower.replace(['-', '_'], " ").as_str() {
        "extra small" | "x small" | "xsmall" => "xs",
        "small" => "s",
        "medium" | "med" => "m",
        "large" => "l",
        "extra large" | "x large" | "xlarge" => "xl",
        "xx large" | "xxlarge" | "2xl" | "extra extra large" => "xxl",
        "xxx large" | "xxxlarge" | "3xl" => "xxxl",
        "one size" | "onesize" | "free size" | "os" => "one size",
        _ => return lower,
    };
    abbreviated.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn materials_from_text() {
        assert_eq!(
            materials_in(&["Pure Cotton Blanket", "Soft polyester & cotton blend with a memory foam core"]),
            ["cotton", "polyester", "memory foam"]
        );
        assert_eq!(materials_in(&["Ice Silk Lumbar Pillow"]), ["ice silk"]);
        // Brand-like compounds are not materials.
        assert!(materials_in(&["SilkBreeze Sleep Pod"]).is_empty());
    }

    #[test]
    fn fits_and_patterns_from_titles() {
        let title = "SPYKAR Women Pink Alexa Super Skinny Fit High-Rise Clean Look Stretchable Cropped Jeans";
        assert_eq!(fits_in(&[title]), ["super skinny"]);
        assert_eq!(fits_in(&["Parx Men Brown Tapered Fit Solid Regular Trousers"]), ["tapered"]);
        assert_eq!(patterns_in(&["Parx Men Blue Slim Fit Checked Casual Shirt"]), ["checked"]);
        assert_eq!(patterns_in(&["Raymond Men Blue Self-Design Single-Breasted Bandhgala Suit"]), ["self design"]);
        assert_eq!(styles_in(&["Parx Men Blue Slim Fit Checked Casual Shirt"]), ["casual"]);
    }

    #[test]
    fn activewear_needs_apparel() {
        assert!(is_activewear(Some("Footwear"), &["Puma Men Black Running Shoes"]));
        assert!(is_activewear(Some("Clothing"), &["Women Solid Track Pants"]));
        assert!(!is_activewear(Some("Bedding"), &["Yoga Gift Blanket"]));
        assert!(!is_activewear(Some("Clothing"), &["Men Blue Casual Shirt"]));
    }

    #[test]
    fn sizes() {
        assert_eq!(normalize_size("Small"), "s");
        assert_eq!(normalize_size("X-Large"), "xl");
        assert_eq!(normalize_size("M"), "m");
        assert_eq!(normalize_size("150X200cm"), "150x200cm");
    }
}

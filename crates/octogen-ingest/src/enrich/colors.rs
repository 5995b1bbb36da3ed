//! Color labels → specific color names and the 11 color families.
//!
//! A merchant label may hold several colors ("Black/White", "Navy Blue &
//! Maroon") and noise ("Black 2pcs", "Set1"); each color phrase found becomes
//! one entry, spelled as the merchant wrote it (title case), with any shade
//! words before it ("Dark Grey"). Labels without a known color ("Set1",
//! "Dinosaur") give nothing: they stay in `colors` but are no facet value.

use std::sync::OnceLock;

use super::phrases::{tokenize, PhraseTable, Token};
use super::vocab::{COLORS, COLOR_MODIFIERS};
use crate::text::title_case;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColorMatch {
    pub label: String,
    pub family: &'static str,
}

fn table() -> &'static PhraseTable<&'static str> {
    static TABLE: OnceLock<PhraseTable<&'static str>> = OnceLock::new();
    TABLE.get_or_init(|| PhraseTable::new(COLORS))
}

/// Single words that are colors in a color field but usually something else in
/// a title ("Denim Jacket", "Steel Bottle", "Coffee Mug").
const AMBIGUOUS_IN_TITLES: &[&str] = &[
    "denim",
    "steel",
    "copper",
    "coffee",
    "wine",
    "honey",
    "stone",
    "sand",
    "ash",
    "jet",
    "cherry",
    "berry",
    "pearl",
    "mushroom",
    "walnut",
    "chocolate",
    "caramel",
    "lemon",
    "amber",
    "ruby",
    "jade",
    "sapphire",
    "emerald",
    "platinum",
    "bronze",
    "rust",
    "lime",
    "orchid",
    "plum",
    "slate",
    "tan",
    "cream",
    "nude",
    "melange",
    "espresso",
    "canary",
];

/// Every color named in a color label.
pub fn colors_in_label(label: &str) -> Vec<ColorMatch> {
    find_colors(label, false)
}

/// Colors named in a product title, skipping words that are rarely colors there.
pub fn colors_in_title(title: &str) -> Vec<ColorMatch> {
    find_colors(title, true)
}

/// As `colors_in_title`, with the title already tokenized.
pub fn colors_in_title_tokens(tokens: &[Token<'_>]) -> Vec<ColorMatch> {
    colors_in_tokens(tokens, true)
}

fn find_colors(text: &str, title_mode: bool) -> Vec<ColorMatch> {
    colors_in_tokens(&tokenize(text), title_mode)
}

fn colors_in_tokens(tokens: &[Token<'_>], title_mode: bool) -> Vec<ColorMatch> {
    let mut found: Vec<ColorMatch> = Vec::new();
    let mut consumed_until = 0;
    for matched in table().find_all(tokens) {
        let modifiers_start = shade_words_before(tokens, matched.start, consumed_until);
        consumed_until = matched.start + matched.len;
        let ambiguous = matched.len == 1 && AMBIGUOUS_IN_TITLES.contains(&matched.phrase);
        if title_mode && ambiguous && modifiers_start == matched.start {
            continue;
        }
        let label = title_case(&tokens[modifiers_start..consumed_until].join(" "));
        if !found.iter().any(|existing| existing.label == label) {
            found.push(ColorMatch { label, family: matched.value });
        }
    }
    found
}

/// Start of the run of shade words ("light", "dark") right before `start`.
fn shade_words_before(tokens: &[Token<'_>], start: usize, not_before: usize) -> usize {
    let mut first = start;
    while first > not_before && COLOR_MODIFIERS.contains(&&*tokens[first - 1]) {
        first -= 1;
    }
    first
}

/// The family of the first color in a label.
pub fn family_of(label: &str) -> Option<&'static str> {
    colors_in_label(label).first().map(|color| color.family)
}

/// True when the label is nothing but a family name ("Blue", "grey"), which a
/// more specific name from the title ("Navy Blue") may refine.
pub fn is_bare_family(label: &str) -> bool {
    let tokens = tokenize(label);
    tokens.len() == 1
        && table()
            .exact(&tokens[0])
            .is_some_and(|family| family.eq_ignore_ascii_case(&tokens[0]) || tokens[0] == "grey")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn families(label: &str) -> Vec<(String, &'static str)> {
        colors_in_label(label).into_iter().map(|color| (color.label, color.family)).collect()
    }

    fn pair(label: &str, family: &'static str) -> (String, &'static str) {
        (label.to_string(), family)
    }

    #[test]
    fn dictionary_names_map_to_families() {
        for (label, family) in [
            ("navy", "Blue"),
            ("Navy Blue", "Blue"),
            ("charcoal", "Gray"),
            ("ivory", "White"),
            ("burgundy", "Red"),
            ("Light gray", "Gray"),
            ("Off White", "White"),
            ("off-white", "White"),
            ("teal", "Blue"),
            ("maroon", "Red"),
            ("beige", "Brown"),
            ("khaki", "Brown"),
            ("olive", "Green"),
            ("mustard", "Yellow"),
            ("Rose Gold", "Pink"),
            ("Rose Red", "Red"),
            ("Wine red", "Red"),
            ("Sky Blue", "Blue"),
            ("Silver Gray", "Gray"),
            ("Champagne", "Yellow"),
            ("Coffee", "Brown"),
            ("Gold-Toned", "Yellow"),
            ("Lavender", "Purple"),
            ("Peach", "Orange"),
            ("Magenta", "Pink"),
        ] {
            assert_eq!(family_of(label), Some(family), "{label}");
        }
    }

    #[test]
    fn compound_labels_give_each_color() {
        assert_eq!(families("Black/White"), [pair("Black", "Black"), pair("White", "White")]);
        assert_eq!(families("Navy Blue & Maroon"), [pair("Navy Blue", "Blue"), pair("Maroon", "Red")]);
        assert_eq!(families("Dark grey"), [pair("Dark Grey", "Gray")]);
        assert_eq!(families("Black 2pcs"), [pair("Black", "Black")]);
        assert_eq!(families("Light Blue and light pink"), [pair("Light Blue", "Blue"), pair("Light Pink", "Pink")]);
    }

    #[test]
    fn labels_without_colors_give_nothing() {
        for label in ["Set1", "4style", "Dinosaur", "60ml", "Multicoloured", ""] {
            assert!(colors_in_label(label).is_empty(), "{label}");
        }
    }

    #[test]
    fn titles_skip_ambiguous_words() {
        let labels: Vec<String> =
            colors_in_title("Roadster Men Navy Blue Denim Jacket").into_iter().map(|c| c.label).collect();
        assert_eq!(labels, ["Navy Blue"]);
        assert!(colors_in_title("Steel Water Bottle").is_empty());
        assert_eq!(colors_in_title("Dark Denim Jeans")[0].family, "Blue");
    }

    #[test]
    fn bare_family_names() {
        assert!(is_bare_family("Blue"));
        assert!(is_bare_family("grey"));
        assert!(!is_bare_family("Navy"));
        assert!(!is_bare_family("Navy Blue"));
    }
}

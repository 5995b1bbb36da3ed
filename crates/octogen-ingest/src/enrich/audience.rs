//! Gender (`male` / `female` / `unisex`) and age groups (`infant`, `toddler`,
//! `kids`, `adult`).
//!
//! Sources, most trusted first: the feed's own gender / age fields, the
//! title, the product type and category path, then tags that are nothing but
//! an audience word ("Women"). Tags that merely mention one ("Father's Day
//! gifts") are ignored: stores stuff tags with marketing phrases.

use super::phrases::{tokenize, Token};
use super::vocab::{ADULT_WORDS, FEMALE_WORDS, INFANT_WORDS, KIDS_WORDS, MALE_WORDS, TODDLER_WORDS, UNISEX_WORDS};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audience {
    pub gender: Option<&'static str>,
    pub age_groups: Vec<&'static str>,
}

/// The texts an audience is read from, in order of trust.
pub struct AudienceSources<'a> {
    pub feed_gender: Option<&'a str>,
    pub feed_age_group: Option<&'a str>,
    pub title: &'a str,
    /// Product type, category path entries.
    pub classification: Vec<&'a str>,
    pub tags: &'a [String],
}

pub fn audience(sources: &AudienceSources<'_>) -> Audience {
    let feed_gender = sources.feed_gender.map(tokenize).unwrap_or_default();
    let title = tokenize(sources.title);
    let classification: Vec<Token> = sources.classification.iter().flat_map(|text| tokenize(text)).collect();
    let exact_tags: Vec<Token> =
        sources.tags.iter().map(|tag| tokenize(tag)).filter(|tokens| tokens.len() <= 2).flatten().collect();

    let gender = [&feed_gender, &title, &classification, &exact_tags].into_iter().find_map(|tokens| gender_in(tokens));

    let feed_age = sources.feed_age_group.map(feed_age_group).filter(|ages| !ages.is_empty());
    let age_groups = feed_age
        .or_else(|| {
            [&feed_gender, &title, &classification, &exact_tags]
                .into_iter()
                .map(|tokens| ages_in(tokens))
                .find(|ages| !ages.is_empty())
        })
        .unwrap_or_default();
    Audience { gender, age_groups }
}

fn gender_in(tokens: &[Token<'_>]) -> Option<&'static str> {
    let has = |words: &[&str]| tokens.iter().any(|token| words.contains(&&**token));
    if has(UNISEX_WORDS) {
        return Some("unisex");
    }
    match (has(MALE_WORDS), has(FEMALE_WORDS)) {
        (true, true) => Some("unisex"),
        (true, false) => Some("male"),
        (false, true) => Some("female"),
        (false, false) => None,
    }
}

fn ages_in(tokens: &[Token<'_>]) -> Vec<&'static str> {
    let has = |words: &[&str]| tokens.iter().any(|token| words.contains(&&**token));
    let mut ages = Vec::new();
    for (words, age) in
        [(INFANT_WORDS, "infant"), (TODDLER_WORDS, "toddler"), (KIDS_WORDS, "kids"), (ADULT_WORDS, "adult")]
    {
        if has(words) {
            ages.push(age);
        }
    }
    ages
}

/// Google's `age_group` values (newborn, infant, toddler, kids, adult) and close spellings.
fn feed_age_group(value: &str) -> Vec<&'static str> {
    let tokens = tokenize(value);
    let mut ages = ages_in(&tokens);
    if tokens.iter().any(|token| token == "newborn" || token == "infant") && !ages.contains(&"infant") {
        ages.insert(0, "infant");
    }
    ages
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_title(title: &str) -> Audience {
        audience(&AudienceSources { feed_gender: None, feed_age_group: None, title, classification: vec![], tags: &[] })
    }

    fn from_feed(gender: &str) -> Audience {
        audience(&AudienceSources {
            feed_gender: Some(gender),
            feed_age_group: None,
            title: "",
            classification: vec![],
            tags: &[],
        })
    }

    #[test]
    fn myntra_gender_column() {
        assert_eq!(from_feed("Men"), Audience { gender: Some("male"), age_groups: vec!["adult"] });
        assert_eq!(from_feed("Women"), Audience { gender: Some("female"), age_groups: vec!["adult"] });
        assert_eq!(from_feed("Boys"), Audience { gender: Some("male"), age_groups: vec!["kids"] });
        assert_eq!(from_feed("Girls"), Audience { gender: Some("female"), age_groups: vec!["kids"] });
        assert_eq!(from_feed("Unisex"), Audience { gender: Some("unisex"), age_groups: vec![] });
        assert_eq!(from_feed("Unisex Kids"), Audience { gender: Some("unisex"), age_groups: vec!["kids"] });
    }

    #[test]
    fn titles() {
        assert_eq!(from_title("Raymond Men Blue Bandhgala Suit").gender, Some("male"));
        assert_eq!(from_title("Eye Mask for Men and Women").gender, Some("unisex"));
        assert_eq!(from_title("Calmwavezx Baby White Noise Sleep Aid").age_groups, ["infant"]);
        assert_eq!(from_title("Cartoon Kids Blanket").age_groups, ["kids"]);
        assert_eq!(from_title("Weighted Blanket"), Audience::default());
    }

    #[test]
    fn marketing_tags_do_not_decide() {
        let tags = vec!["Father's Day stress relief gifts".to_string(), "Sleep gifts for new parents".to_string()];
        let found = audience(&AudienceSources {
            feed_gender: None,
            feed_age_group: None,
            title: "Blanket",
            classification: vec![],
            tags: &tags,
        });
        assert_eq!(found, Audience::default());
        let tags = vec!["Women".to_string()];
        let found = audience(&AudienceSources {
            feed_gender: None,
            feed_age_group: None,
            title: "Blanket",
            classification: vec![],
            tags: &tags,
        });
        assert_eq!(found.gender, Some("female"));
    }

    #[test]
    fn google_age_groups() {
        let found = audience(&AudienceSources {
            feed_gender: Some("female"),
            feed_age_group: Some("newborn"),
            title: "",
            classification: vec![],
            tags: &[],
        });
        assert_eq!(found, Audience { gender: Some("female"), age_groups: vec!["infant"] });
    }
}

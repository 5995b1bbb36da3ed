//! Our query type and its compilation to tantivy queries.
//!
//! # Scoring
//!
//! Every matched query word contributes a constant that depends only on the
//! field and the kind of match, never on corpus statistics, so a product's
//! score for a query is a pure function of (product, query). The *name
//! fields* are title, brand, and "kind" (product type, type synonyms, tags,
//! styles, categories, colors, materials, patterns):
//!
//! ```text
//! word points  = COVERAGE_POINTS + max over matching (field, match) of FIELD × MATCH
//!                FIELD: title 8, brand 5, kind 3
//!                MATCH: exact 4, stemmed 3, prefix 2 (last word, ≥ 3 chars), fuzzy 1 (≥ 5 chars, edit distance 1)
//!                (brand has no stemmed form)
//! score        = Σ word points over the query words found in name fields,
//!                or, for a product with no query word in any name field,
//!                the number of query words its description contains (stemmed)
//! rank         = score × 16 + (15 − min(title words, 15))
//!                (title words: the title's tokens as indexed, i.e. its field norm;
//!                words of more than 40 bytes are not indexed and not counted)
//! ```
//!
//! Consequences, in order of precedence:
//! 1. products matching more query words in name fields rank higher
//!    (`COVERAGE_POINTS` = 1000 exceeds everything the fields can add);
//! 2. then better fields and better matches (title > brand > kind; exact >
//!    stemmed > prefix > fuzzy);
//! 3. then shorter titles; then the uuid (see the collector);
//! 4. products found only through their description come after all of the
//!    above, by how many query words they contain.
//!
//! The description is a recall fallback rather than a ranking signal: it is
//! long and noisy ("pairs well with our sofa"), and keeping it out of the
//! main ranking means a page is usually answered from the short name-field
//! posting lists alone, which keeps latency flat at a million products.
//! All values are small integers, exact in `f32`, so the score does not
//! depend on the order in which tantivy adds them up.

use std::ops::Bound;

use octogen_core::facets::{facet_term, FacetKey};
use serde::{Deserialize, Serialize};
use tantivy::query::{BooleanQuery, ConstScoreQuery, Occur, Query, RangeQuery, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::{RawTokenizer, TextAnalyzer};
use tantivy::Term;

use crate::best_match::BestMatchQuery;
use crate::expansion::{Expansion, ExpansionQuery};
use crate::filtered::{any_term, CatalogFilter, FilteredQuery, Scored};
use crate::schema::{english_stop_words, exact_analyzer, word_stemmer, Fields};
use crate::words::{WordClause, WordsQuery};
use crate::IndexError;

/// Added once per matched query word; larger than any sum of field points.
pub(crate) const COVERAGE_POINTS: u32 = 1000;
/// Longer queries are cut (shoppers do not type more; it bounds query cost).
pub const MAX_QUERY_WORDS: usize = 16;
/// The longest query text, in characters. Requests refuse longer text (422),
/// so the words are cut from at most this much.
pub const MAX_QUERY_CHARS: usize = 1000;
/// The largest page a query may ask for.
pub const MAX_LIMIT: usize = 100;
/// Prefix matching needs this many characters in the last word (shorter prefixes match too much).
const MIN_PREFIX_CHARS: usize = 3;
/// Typo tolerance (edit distance 1) starts at this word length.
const MIN_FUZZY_CHARS: usize = 5;

/// One facet of the request: the product must carry at least one of `values`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FacetFilter {
    pub key: FacetKey,
    pub values: Vec<String>,
}

impl FacetFilter {
    pub fn new(key: FacetKey, values: impl IntoIterator<Item = impl Into<String>>) -> FacetFilter {
        FacetFilter { key, values: values.into_iter().map(Into::into).collect() }
    }
}

/// A search as the service layer hands it to the index.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    /// Catalog keys the caller may see (already intersected with its grants).
    /// A filter inside the index query; empty means no results.
    pub catalogs: Vec<String>,
    /// Free text; `None`, blank, or text without any word means browse.
    pub text: Option<String>,
    /// AND across facets, OR within a facet's values, case-insensitive.
    pub facets: Vec<FacetFilter>,
    /// Products with any listed value of any of these facets are left out.
    pub exclude_facets: Vec<FacetFilter>,
    /// Inclusive bounds on the current price; a bounded query never matches unpriced products.
    pub price_min: Option<f64>,
    pub price_max: Option<f64>,
    /// 1..=100.
    pub limit: usize,
    /// Continue strictly after this position (from the previous page's `next`).
    pub after: Option<SortPosition>,
}

impl Default for SearchQuery {
    fn default() -> Self {
        SearchQuery {
            catalogs: Vec::new(),
            text: None,
            facets: Vec::new(),
            exclude_facets: Vec::new(),
            price_min: None,
            price_max: None,
            limit: 50,
            after: None,
        }
    }
}

impl SearchQuery {
    pub fn browse(catalogs: impl IntoIterator<Item = impl Into<String>>) -> SearchQuery {
        SearchQuery { catalogs: catalogs.into_iter().map(Into::into).collect(), ..SearchQuery::default() }
    }

    pub fn text(catalogs: impl IntoIterator<Item = impl Into<String>>, text: &str) -> SearchQuery {
        SearchQuery { text: Some(text.to_string()), ..SearchQuery::browse(catalogs) }
    }

    pub(crate) fn validate(&self) -> Result<(), IndexError> {
        if self.limit == 0 || self.limit > MAX_LIMIT {
            return Err(IndexError::InvalidQuery(format!("limit must be 1..={MAX_LIMIT}, got {}", self.limit)));
        }
        if self.text.as_deref().is_some_and(|text| text.chars().count() > MAX_QUERY_CHARS) {
            return Err(IndexError::InvalidQuery(format!(
                "the query text is longer than {MAX_QUERY_CHARS} characters"
            )));
        }
        for bound in [self.price_min, self.price_max].into_iter().flatten() {
            if bound.is_nan() {
                return Err(IndexError::InvalidQuery("a price bound is not a number".into()));
            }
        }
        Ok(())
    }
}

/// Where a page ended: the sort key of its last hit. Serialized compactly
/// (`{"k":{"r":16032},"i":"<32 hex>"}` or `{"k":{"t":"cozy blanket"},"i":"…"}`);
/// the server signs it and wraps it into an opaque cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SortPosition {
    #[serde(rename = "k")]
    pub(crate) key: SortKey,
    #[serde(rename = "i", with = "hex_u128")]
    pub(crate) id: u128,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum SortKey {
    /// Text search: rank, descending.
    #[serde(rename = "r")]
    Rank(u32),
    /// Browse: the title sort key, ascending.
    #[serde(rename = "t")]
    Title(String),
}

mod hex_u128 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &u128, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("{value:032x}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u128, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.len() != 32 {
            return Err(serde::de::Error::custom("expected 32 hex digits"));
        }
        u128::from_str_radix(&text, 16).map_err(serde::de::Error::custom)
    }
}

/// One word of the query, prepared for matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueryWord {
    /// Lowercased, ASCII-folded.
    pub exact: String,
    /// English stem; `None` for stop words (the stemmed fields do not hold them).
    pub stem: Option<String>,
    pub prefix: bool,
    pub fuzzy: bool,
}

/// Splits text into the words we match, the same way the index analyzed titles.
/// Stop words are dropped unless the query has nothing else.
pub(crate) fn query_words(text: &str) -> Vec<QueryWord> {
    let mut analyzer = exact_analyzer();
    let mut stream = analyzer.token_stream(text);
    let tokens = std::iter::from_fn(|| stream.next().map(|token| token.text.clone()));
    let mut stop_filter = stop_word_filter();
    let (words, only_stop_words) = first_distinct_words(tokens, |word| is_stop_word(&mut stop_filter, word));
    let last = words.len().saturating_sub(1);
    let mut stemmer = word_stemmer();
    words
        .into_iter()
        .enumerate()
        .map(|(position, exact)| {
            let chars = exact.chars().count();
            QueryWord {
                stem: (!only_stop_words).then(|| stem_of(&mut stemmer, &exact)),
                prefix: position == last && chars >= MIN_PREFIX_CHARS,
                fuzzy: chars >= MIN_FUZZY_CHARS,
                exact,
            }
        })
        .collect()
}

/// The first `MAX_QUERY_WORDS` distinct content words of `tokens` in order of
/// appearance, or, when there are none, its first distinct stop words (and
/// `true`). Reading stops at the last word kept, so the cut comes before any
/// per-word work, and each distinct word is classified once. Deduplication
/// compares against the words kept so far: at most `MAX_QUERY_WORDS` content
/// words plus the stop-word list, so the whole is linear in the text.
fn first_distinct_words(
    tokens: impl Iterator<Item = String>,
    mut is_stop_word: impl FnMut(&str) -> bool,
) -> (Vec<String>, bool) {
    let (mut content, mut stop) = (Vec::new(), Vec::new());
    for token in tokens {
        if content.contains(&token) || stop.contains(&token) {
            continue;
        }
        if !is_stop_word(&token) {
            content.push(token);
            if content.len() == MAX_QUERY_WORDS {
                break;
            }
        } else {
            stop.push(token);
        }
    }
    if content.is_empty() {
        stop.truncate(MAX_QUERY_WORDS);
        (stop, true)
    } else {
        (content, false)
    }
}

/// Passes a single word through unless it is an English stop word.
fn stop_word_filter() -> TextAnalyzer {
    TextAnalyzer::builder(RawTokenizer::default()).filter(english_stop_words()).build()
}

fn is_stop_word(stop_filter: &mut TextAnalyzer, word: &str) -> bool {
    stop_filter.token_stream(word).next().is_none()
}

fn stem_of(stemmer: &mut TextAnalyzer, word: &str) -> String {
    let mut stream = stemmer.token_stream(word);
    match stream.next() {
        Some(token) => token.text.clone(),
        None => word.to_string(),
    }
}

#[derive(Clone, Copy)]
enum MatchKind {
    Exact,
    Stem,
    Prefix,
    Fuzzy,
}

impl MatchKind {
    const fn points(self) -> u32 {
        match self {
            MatchKind::Exact => 4,
            MatchKind::Stem => 3,
            MatchKind::Prefix => 2,
            MatchKind::Fuzzy => 1,
        }
    }
}

const TITLE_POINTS: u32 = 8;
const BRAND_POINTS: u32 = 5;
const KIND_POINTS: u32 = 3;

/// A search compiled to tantivy queries.
pub(crate) enum CompiledQuery {
    /// No text: the filters alone, in title order.
    Browse(BrowsePlan),
    Ranked(RankedPlan),
}

/// A browse's filter, whole and in two parts (see `browse`): walking a
/// segment in title order checks each document against the posting-list
/// part (as a bitset) and the price bounds (read from the price column).
pub(crate) struct BrowsePlan {
    /// Catalogs, facets, price and excluded facets.
    pub filter: Box<dyn Query>,
    /// Catalogs, facets and excluded facets.
    pub postings: Box<dyn Query>,
    pub price: PriceBounds,
}

/// Inclusive bounds on the current price; bounded prices never match an unpriced product.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PriceBounds {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl PriceBounds {
    pub(crate) fn is_bounded(&self) -> bool {
        self.min.is_some() || self.max.is_some()
    }

    pub(crate) fn admits(&self, price: Option<f64>) -> bool {
        match price {
            None => !self.is_bounded(),
            Some(price) => self.min.is_none_or(|min| price >= min) && self.max.is_none_or(|max| price <= max),
        }
    }
}

/// The tiers of a text query, from the highest ranks down. Each later tier is
/// only run when the earlier ones cannot fill the page (see `SearchIndex::search`).
pub(crate) struct RankedPlan {
    /// Number of distinct query words.
    pub words: usize,
    /// Products with every word in name fields (multi-word queries only). A
    /// subset of `any_name` with the same ranks, all above the rest of it;
    /// a cheap intersection that answers most first pages on its own.
    pub all_names: Option<Box<dyn Query>>,
    /// Products with any word in name fields.
    pub any_name: Box<dyn Query>,
    /// Products with a word in the description and none in name fields
    /// (ranked below every `any_name` product). `None` if no word has a stem
    /// (only stop words), as descriptions are indexed stemmed without them.
    pub description_only: Option<Box<dyn Query>>,
}

/// Ranks at or above this belong to products found through name fields.
pub(crate) const NAME_MATCH_MIN_RANK: u32 = COVERAGE_POINTS * 16;

pub(crate) fn compile(fields: &Fields, query: &SearchQuery) -> CompiledQuery {
    let filter = filters(fields, query, true);
    let words = query.text.as_deref().map(query_words).unwrap_or_default();
    if words.is_empty() {
        return CompiledQuery::Browse(BrowsePlan {
            filter: Box::new(FilteredQuery::new(Scored::Nothing, filter)),
            postings: Box::new(FilteredQuery::new(Scored::Nothing, filters(fields, query, false))),
            price: PriceBounds { min: query.price_min, max: query.price_max },
        });
    }
    let clauses: Vec<WordClause> = words.iter().map(|word| name_clause(fields, word)).collect();
    let filtered = |scored: Scored| -> Box<dyn Query> { Box::new(FilteredQuery::new(scored, filter.box_clone())) };
    let description_words: Vec<(Occur, Box<dyn Query>)> = words
        .iter()
        .filter_map(|word| word.stem.as_deref())
        .map(|stem| {
            let term = Term::from_field_text(fields.description, stem);
            let one_point = ConstScoreQuery::new(Box::new(TermQuery::new(term, IndexRecordOption::Basic)), 1.0);
            (Occur::Should, Box::new(one_point) as Box<dyn Query>)
        })
        .collect();
    let description_only = (!description_words.is_empty()).then(|| {
        filtered(Scored::Other(Box::new(BooleanQuery::new(vec![
            (Occur::Must, Box::new(BooleanQuery::new(description_words)) as Box<dyn Query>),
            (Occur::MustNot, Box::new(WordsQuery::any(clauses.clone())) as Box<dyn Query>),
        ]))))
    });
    CompiledQuery::Ranked(RankedPlan {
        words: words.len(),
        all_names: (words.len() > 1).then(|| filtered(Scored::Words(WordsQuery::all(clauses.clone())))),
        any_name: filtered(Scored::Words(WordsQuery::any(clauses))),
        description_only,
    })
}

/// The number of query words a product matched in name fields, from its rank (see the module docs).
pub(crate) fn name_coverage_of_rank(rank: u32) -> usize {
    (rank / 16 / COVERAGE_POINTS) as usize
}

/// Catalogs, facets and (with `with_price`) price, all required, and excluded
/// facets; they never contribute to the score.
fn filters(fields: &Fields, query: &SearchQuery, with_price: bool) -> Box<dyn Query> {
    let mut clauses: Vec<Box<dyn Query>> = vec![Box::new(CatalogFilter::new(fields.catalog, &query.catalogs))];
    clauses.extend(query.facets.iter().map(|facet| facet_filter(fields, facet)));
    if with_price {
        clauses.extend(price_filter(fields, query.price_min, query.price_max));
    }
    let excluded: Vec<Box<dyn Query>> = query.exclude_facets.iter().map(|facet| facet_filter(fields, facet)).collect();
    if clauses.len() == 1 && excluded.is_empty() {
        return clauses.remove(0);
    }
    let required = clauses.into_iter().map(|clause| (Occur::Must, clause));
    let forbidden = excluded.into_iter().map(|clause| (Occur::MustNot, clause));
    Box::new(BooleanQuery::new(required.chain(forbidden).collect()))
}

fn facet_filter(fields: &Fields, facet: &FacetFilter) -> Box<dyn Query> {
    any_term(
        facet.values.iter().map(|value| Term::from_field_text(fields.facet, &facet_term(&facet.key, value))).collect(),
    )
}

fn price_filter(fields: &Fields, min: Option<f64>, max: Option<f64>) -> Option<Box<dyn Query>> {
    if min.is_none() && max.is_none() {
        return None;
    }
    let bound = |value: Option<f64>| match value {
        Some(value) => Bound::Included(Term::from_field_f64(fields.price, value)),
        None => Bound::Unbounded,
    };
    Some(Box::new(RangeQuery::new(bound(min), bound(max))))
}

/// The best name-field match of one word: max over fields and match kinds.
fn name_clause(fields: &Fields, word: &QueryWord) -> WordClause {
    let (alternatives, upper_bound) = word_alternatives(fields, word);
    WordClause { query: Box::new(BestMatchQuery::new(alternatives)), upper_bound }
}

/// Every way a word can match a name field, each scoring its constant
/// points, and the most any of them scores.
pub(crate) fn word_alternatives(fields: &Fields, word: &QueryWord) -> (Vec<Box<dyn Query>>, f32) {
    let mut alternatives: Vec<Box<dyn Query>> = Vec::new();
    let mut upper_bound: u32 = 0;
    let mut add = |field: Field, field_points: u32, kind: MatchKind, text: &str| {
        let points = COVERAGE_POINTS + field_points * kind.points();
        upper_bound = upper_bound.max(points);
        let points = points as f32;
        let alternative: Box<dyn Query> = match kind {
            MatchKind::Exact | MatchKind::Stem => Box::new(ConstScoreQuery::new(
                Box::new(TermQuery::new(Term::from_field_text(field, text), IndexRecordOption::Basic)),
                points,
            )),
            // Expansions leave out the word itself: its exact alternative scores higher anyway.
            MatchKind::Prefix => Box::new(ExpansionQuery::new(field, text, Expansion::Prefix, points)),
            MatchKind::Fuzzy => Box::new(ExpansionQuery::new(field, text, Expansion::Fuzzy, points)),
        };
        alternatives.push(alternative);
    };
    for (field, field_points) in
        [(fields.title, TITLE_POINTS), (fields.brand, BRAND_POINTS), (fields.kind, KIND_POINTS)]
    {
        add(field, field_points, MatchKind::Exact, &word.exact);
        if word.prefix {
            add(field, field_points, MatchKind::Prefix, &word.exact);
        }
        if word.fuzzy {
            add(field, field_points, MatchKind::Fuzzy, &word.exact);
        }
    }
    if let Some(stem) = &word.stem {
        add(fields.title_stem, TITLE_POINTS, MatchKind::Stem, stem);
        add(fields.kind_stem, KIND_POINTS, MatchKind::Stem, stem);
    }
    (alternatives, upper_bound as f32)
}

/// The rank of a hit from its query score and title length (see the module docs).
pub(crate) fn rank(score: f32, title_words: u32) -> u32 {
    // Scores are exact small integers; `+ 0.5` and truncation round without a libm call.
    let score = if score.is_finite() && score > 0.0 { (score + 0.5) as u32 } else { 0 };
    let brevity = 15 - title_words.min(15);
    score.saturating_mul(16).saturating_add(brevity)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(words: &[QueryWord]) -> Vec<&str> {
        words.iter().map(|word| word.exact.as_str()).collect()
    }

    #[test]
    fn query_words_are_the_first_distinct_content_words() {
        assert_eq!(exact(&query_words("The black HOODIE and the black cap")), ["black", "hoodie", "cap"]);
        assert_eq!(exact(&query_words("the and the")), ["the", "and"], "only stop words: they are kept");
        let many: String = (0..5_000).map(|n| format!("w{n} ")).collect();
        let expected: Vec<String> = (0..MAX_QUERY_WORDS).map(|n| format!("w{n}")).collect();
        assert_eq!(exact(&query_words(&many)), expected);
    }

    /// The cut happens while reading: nothing after the last kept word is
    /// read or classified, and each distinct word is classified once however
    /// often it repeats.
    #[test]
    fn words_are_cut_before_any_per_word_work() {
        let kept = (0..MAX_QUERY_WORDS).map(|n| format!("w{n}"));
        let unread = std::iter::from_fn(|| -> Option<String> { panic!("read past the last kept word") });
        let mut classified = 0;
        let (words, only_stop) = first_distinct_words(kept.chain(unread), |_| {
            classified += 1;
            false
        });
        assert_eq!((words.len(), only_stop, classified), (MAX_QUERY_WORDS, false, MAX_QUERY_WORDS));

        let repeated = (0..100_000).map(|n| ["a", "b", "the"][n % 3].to_string());
        let mut classified = 0;
        let (words, _) = first_distinct_words(repeated, |word| {
            classified += 1;
            word == "the"
        });
        assert_eq!((words, classified), (vec!["a".to_string(), "b".to_string()], 3));
    }

    #[test]
    fn overlong_text_is_refused_by_the_index_too() {
        let query = SearchQuery::text(["a"], &"x".repeat(MAX_QUERY_CHARS + 1));
        assert!(matches!(query.validate(), Err(IndexError::InvalidQuery(_))));
        assert!(SearchQuery::text(["a"], &"é".repeat(MAX_QUERY_CHARS)).validate().is_ok(), "characters, not bytes");
    }
}

//! Ranking on small hand-built corpora (issue 4 point 1).

mod common;

use common::*;
use octogen_search::{SearchIndex, SearchQuery};

#[test]
fn title_beats_brand_beats_type_and_tags_beats_description() {
    let index = index_of(vec![
        product(1, "Cozy Thing", |p| p.description = Some("A warm blanket for cold nights".into())),
        product(2, "Cozy Throw", |p| p.product_type = Some("Blanket".into())),
        product(3, "Cozy Quilt", |p| p.brand = brand("Blanket Brothers")),
        titled(4, "Cozy Blanket"),
        product(5, "Soft Item", |p| p.tags = vec!["blanket".into()]),
        titled(6, "Unrelated Lamp"),
    ]);
    let titles = search_titles(&index, "blanket");
    assert_eq!(titles[..2], ["Cozy Blanket", "Cozy Quilt"]);
    // Type and tag matches are worth the same; the tie is broken by title length, then uuid.
    assert_eq!(titles[2..4], ["Cozy Throw", "Soft Item"]);
    assert_eq!(titles[4..], ["Cozy Thing"]);
}

#[test]
fn items_matching_all_words_come_before_partial_matches() {
    let index = index_of(vec![
        titled(1, "Blanket"),
        titled(2, "Weighted Vest Large"),
        titled(3, "Throw"),
        product(4, "Cozy Weighted", |p| p.tags = vec!["blanket".into()]),
        titled(5, "Weighted Blanket For Adults"),
    ]);
    let titles = search_titles(&index, "weighted blanket");
    // Both words (in any name field) first, best fields first; then one word, shorter titles first.
    assert_eq!(titles, ["Weighted Blanket For Adults", "Cozy Weighted", "Blanket", "Weighted Vest Large"]);
}

#[test]
fn description_only_matches_come_last_by_number_of_words() {
    let index = index_of(vec![
        product(1, "Throw A", |p| p.description = Some("heavy weighted blanket".into())),
        product(2, "Throw B", |p| p.description = Some("a blanket".into())),
        product(3, "Weighted Thing", |p| p.description = Some("nothing else".into())),
        titled(4, "Lamp"),
    ]);
    assert_eq!(search_titles(&index, "weighted blanket"), ["Weighted Thing", "Throw A", "Throw B"]);
    // The description is matched in stemmed form.
    assert_eq!(search_titles(&index, "blankets"), ["Throw A", "Throw B"]);
}

#[test]
fn english_stemming_finds_other_forms() {
    let index = index_of(vec![titled(1, "Cotton Blanket"), titled(2, "Running Shoe"), titled(3, "Table Lamp")]);
    assert_eq!(search_titles(&index, "blankets"), ["Cotton Blanket"]);
    assert_eq!(search_titles(&index, "runs shoes"), ["Running Shoe"]);
}

#[test]
fn exact_form_ranks_above_stemmed_form() {
    let index = index_of(vec![titled(1, "Blanket Set"), titled(2, "Blankets Set")]);
    assert_eq!(search_titles(&index, "blankets"), ["Blankets Set", "Blanket Set"]);
    assert_eq!(search_titles(&index, "blanket"), ["Blanket Set", "Blankets Set"]);
}

#[test]
fn the_last_word_matches_as_a_prefix() {
    let index = index_of(vec![titled(1, "Weighted Blanket"), titled(2, "Cotton Sheet")]);
    assert_eq!(search_titles(&index, "weigh"), ["Weighted Blanket"]);
    assert_eq!(search_titles(&index, "blanket wei"), ["Weighted Blanket"]);
    // Only the last word is a prefix: "weigh" in the middle must match whole.
    let titles = search_titles(&index, "weigh cotton");
    assert_eq!(titles, ["Cotton Sheet"]);
    // Two letters are too short to be a useful prefix.
    assert!(search_titles(&index, "we").is_empty());
}

#[test]
fn exact_beats_prefix() {
    let index = index_of(vec![titled(1, "Weighted Blanket"), titled(2, "Weight Bench Pro")]);
    assert_eq!(search_titles(&index, "weight"), ["Weight Bench Pro", "Weighted Blanket"]);
}

#[test]
fn one_typo_is_tolerated_in_words_of_five_letters_or_more() {
    let index = index_of(vec![titled(1, "Cotton Blanket"), titled(2, "Desk Lamp"), titled(3, "Lamb Plush")]);
    assert_eq!(search_titles(&index, "blankit"), ["Cotton Blanket"]);
    assert_eq!(search_titles(&index, "blnket"), ["Cotton Blanket"]);
    assert_eq!(search_titles(&index, "cottno"), ["Cotton Blanket"], "a transposition is one edit");
    assert!(search_titles(&index, "blnkit").is_empty(), "two edits are too many");
    // Four letters: no typo tolerance, so "lamb" does not find "Lamp" (only via the prefix of itself).
    assert_eq!(search_titles(&index, "lamb"), ["Lamb Plush"]);
}

#[test]
fn exact_beats_fuzzy() {
    let index = index_of(vec![titled(1, "Sheep Plush"), titled(2, "Sheet Set Queen")]);
    assert_eq!(search_titles(&index, "sheet"), ["Sheet Set Queen", "Sheep Plush"]);
}

#[test]
fn shorter_titles_win_otherwise_equal_matches() {
    let index =
        index_of(vec![titled(1, "Blanket with Extra Soft Fleece Lining and Pockets"), titled(2, "Blanket Throw")]);
    assert_eq!(
        search_titles(&index, "blanket"),
        ["Blanket Throw", "Blanket with Extra Soft Fleece Lining and Pockets"]
    );
}

#[test]
fn matching_is_case_and_accent_insensitive() {
    let index = index_of(vec![titled(1, "Wall DÉCOR Set")]);
    assert_eq!(search_titles(&index, "decor"), ["Wall DÉCOR Set"]);
    assert_eq!(search_titles(&index, "Décor"), ["Wall DÉCOR Set"]);
}

#[test]
fn stop_words_do_not_match_on_their_own_unless_nothing_else_is_asked() {
    let index = index_of(vec![
        product(1, "Blanket", |p| p.description = Some("the best for the bed".into())),
        titled(2, "The Lamp"),
    ]);
    assert_eq!(search_titles(&index, "blanket for the bed"), ["Blanket"]);
    assert_eq!(search_titles(&index, "the"), ["The Lamp"]);
}

#[test]
fn text_without_words_browses() {
    let index = index_of(vec![titled(1, "B"), titled(2, "A")]);
    assert_eq!(search_titles(&index, " ?! "), ["A", "B"]);
    assert_eq!(titles(&index, &SearchQuery { text: Some("   ".into()), ..SearchQuery::browse([CATALOG]) }), ["A", "B"]);
}

/// The sort key of a product must not depend on the rest of the corpus
/// (cursor stability across index generations and nodes).
#[test]
fn rank_does_not_depend_on_other_products() {
    let target = product(7, "Weighted Blanket", |p| p.description = Some("cozy weighted blanket".into()));
    let small = index_of(vec![target.clone(), titled(1, "Blanket Lamp")]);
    let mut crowd: Vec<_> = (100..400)
        .map(|n| product(n, "Throw", |p| p.description = Some(format!("blanket number {n} weighted"))))
        .collect();
    crowd.push(target);
    let big = index_of(crowd);
    let position = |index: &SearchIndex| {
        let page = index.search(&SearchQuery { limit: 1, ..SearchQuery::text([CATALOG], "weighted blanket") });
        let page = page.expect("search");
        assert_eq!(page.hits[0].title, "Weighted Blanket");
        serde_json::to_string(&page.next.expect("more than one hit")).expect("serializes")
    };
    assert_eq!(position(&small), position(&big));
}

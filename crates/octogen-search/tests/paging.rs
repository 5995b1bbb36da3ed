//! Search-after paging: complete, without repeats, stable across index
//! generations and nodes (issue 4 point 2).

mod common;

use std::collections::HashSet;

use common::*;
use octogen_core::wire::ProductRecord;
use octogen_search::{IndexChange, IndexError, SearchIndex, SearchQuery, SortPosition};

/// Products with many equal ranks and equal titles, so ties cross page boundaries.
fn tied_corpus() -> Vec<ProductRecord> {
    let mut records = Vec::new();
    for n in 0..10 {
        records.push(titled(100 + n, "Blanket"));
    }
    for n in 0..7 {
        records.push(titled(200 + n, &format!("Wool Blanket {}", ["A", "B", "C", "D", "E", "F", "G"][n as usize])));
    }
    for n in 0..5 {
        records.push(product(300 + n, "Throw", |p| p.description = Some("a blanket".into())));
    }
    records
}

/// Indexes one record per commit so the index has many segments.
fn index_in_many_commits(records: Vec<ProductRecord>) -> SearchIndex {
    let index = SearchIndex::in_ram();
    for record in records {
        upsert(&index, vec![record]);
    }
    index
}

fn queries() -> Vec<SearchQuery> {
    vec![
        SearchQuery { limit: 3, ..SearchQuery::text([CATALOG], "blanket") },
        // Multi-word: the first pages come from the all-words phase, later ones from the any-word phase.
        SearchQuery { limit: 3, ..SearchQuery::text([CATALOG], "wool blanket") },
        SearchQuery { limit: 3, ..SearchQuery::browse([CATALOG]) },
    ]
}

#[test]
fn paging_to_the_end_returns_everything_once_in_order() {
    let index = index_in_many_commits(tied_corpus());
    for query in queries() {
        let paged = all_pages(&index, query.clone());
        let single = index.search(&SearchQuery { limit: 100, ..query.clone() }).expect("search");
        let single: Vec<String> = single.hits.into_iter().map(|hit| hit.uuid).collect();
        assert_eq!(paged, single, "{query:?}");
        assert_eq!(paged.len(), 22);
        assert_eq!(paged.iter().collect::<HashSet<_>>().len(), paged.len(), "no repeats");
    }
}

#[test]
fn the_last_page_has_no_cursor_and_no_empty_page_follows() {
    let index = index_of((1..=9).map(|n| titled(n, &format!("Blanket {n}"))).collect());
    let mut query = SearchQuery { limit: 3, ..SearchQuery::text([CATALOG], "blanket") };
    let mut pages = Vec::new();
    loop {
        let page = index.search(&query).expect("search");
        pages.push(page.hits.len());
        match page.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, [3, 3, 3]);
}

#[test]
fn browse_order_is_case_insensitive_title_then_uuid() {
    let index = index_of(vec![titled(3, "banana"), titled(2, "Apple"), titled(1, "apple"), titled(4, "Cherry")]);
    let query = SearchQuery::browse([CATALOG]);
    assert_eq!(titles(&index, &query), ["apple", "Apple", "banana", "Cherry"]);
}

/// The core guarantee: while pages are fetched, other products are
/// re-indexed (moved across the cursor, removed, added); every product that
/// stays unchanged is returned exactly once, in order.
#[test]
fn unchanged_products_are_neither_skipped_nor_repeated_while_others_change() {
    for query in queries() {
        let records = tied_corpus();
        let index = index_in_many_commits(records.clone());
        let churned: HashSet<String> = [100, 105, 109, 200, 203, 206, 302, 999].into_iter().map(uuid).collect();
        let expected: Vec<String> =
            all_pages(&index, query.clone()).into_iter().filter(|id| !churned.contains(id)).collect();

        let mut seen = Vec::new();
        let mut page_query = query.clone();
        let mut step = 0;
        loop {
            let page = index.search(&page_query).expect("search");
            seen.extend(page.hits.iter().map(|hit| hit.uuid.clone()));
            churn(&index, step);
            step += 1;
            match page.next {
                Some(next) => page_query.after = Some(next),
                None => break,
            }
        }
        let unchanged_seen: Vec<String> = seen.into_iter().filter(|id| !churned.contains(id)).collect();
        assert_eq!(unchanged_seen, expected, "{query:?}");
    }
}

/// Between pages: move products to the front and to the back of both orders,
/// remove one, add one, re-add one unchanged except its timestamp.
fn churn(index: &SearchIndex, step: u32) {
    let changes = match step % 4 {
        0 => vec![
            IndexChange::Upsert(titled(100, "Aardvark Blanket Blanket")),
            IndexChange::Upsert(titled(206, "Zebra Throw Blanket")),
        ],
        1 => vec![
            IndexChange::Remove { uuid: uuid(105) },
            IndexChange::Upsert(product(302, "Blanket", |p| p.description = Some("moved up".into()))),
        ],
        2 => vec![IndexChange::Upsert(titled(999, "Blanket New")), IndexChange::Upsert(titled(203, "Zzz"))],
        _ => vec![IndexChange::Upsert(titled(109, "Blanket")), IndexChange::Upsert(titled(200, "Aaa Wool Blanket"))],
    };
    index.apply(changes, index.applied_seq() + 1).expect("apply");
}

/// Pages alternate between two "nodes" whose indexes hold the same products
/// but were built in a different order and commit pattern (different doc ids
/// and segments).
#[test]
fn cursors_continue_on_another_node() {
    let records = tied_corpus();
    let node_a = index_in_many_commits(records.clone());
    let mut reversed = records.clone();
    reversed.reverse();
    let node_b = index_of(reversed);
    for query in queries() {
        let expected = all_pages(&node_a, query.clone());
        let mut seen = Vec::new();
        let mut page_query = query.clone();
        for turn in 0.. {
            let node = if turn % 2 == 0 { &node_a } else { &node_b };
            let page = node.search(&page_query).expect("search");
            seen.extend(page.hits.into_iter().map(|hit| hit.uuid));
            // The cursor travels as JSON, like the server's opaque cursor.
            let Some(next) = page.next else { break };
            let wire = serde_json::to_string(&next).expect("serializes");
            page_query.after = Some(serde_json::from_str::<SortPosition>(&wire).expect("deserializes"));
        }
        assert_eq!(seen, expected, "{query:?}");
    }
}

#[test]
fn paging_survives_merges_and_a_full_rebuild() {
    let records = tied_corpus();
    let index = index_in_many_commits(records.clone());
    let query = SearchQuery { limit: 4, ..SearchQuery::text([CATALOG], "blanket") };
    let expected = all_pages(&index, query.clone());
    let first = index.search(&query).expect("search");
    // A full rebuild: new documents, new segments, new doc ids.
    let mut build = index.bulk_build().expect("bulk");
    for record in records.iter().rev() {
        build.add(record).expect("add");
    }
    build.finish(index.applied_seq() + 1).expect("finish");
    index.wait_for_merges().expect("merges");
    let mut seen: Vec<String> = first.hits.into_iter().map(|hit| hit.uuid).collect();
    seen.extend(all_pages(&index, SearchQuery { after: first.next, ..query }));
    assert_eq!(seen, expected);
}

#[test]
fn a_cursor_of_the_other_kind_is_rejected() {
    let index = index_of(vec![titled(1, "Blanket"), titled(2, "Blanket Two")]);
    let browse = index.search(&SearchQuery { limit: 1, ..SearchQuery::browse([CATALOG]) }).expect("search");
    let text = SearchQuery { after: browse.next, ..SearchQuery::text([CATALOG], "blanket") };
    assert!(matches!(index.search(&text), Err(IndexError::CursorMismatch)));
}

#[test]
fn sort_positions_are_compact_json() {
    let index = index_of(vec![titled(1, "Blanket"), titled(2, "Blanket Two")]);
    let page = index.search(&SearchQuery { limit: 1, ..SearchQuery::text([CATALOG], "blanket") }).expect("search");
    let json = serde_json::to_string(&page.next.expect("next")).expect("json");
    assert!(json.len() < 64, "{json}");
    assert!(serde_json::from_str::<SortPosition>(r#"{"k":{"r":1},"i":"zz"}"#).is_err());
}

/// The documented caveats for products that change while someone pages
/// (see the crate docs): they affect only the changed product.
#[test]
fn changed_products_behave_as_documented() {
    let names = ["b", "c", "d", "e", "f", "g"];
    let records: Vec<_> = names.iter().enumerate().map(|(n, name)| titled(n as u128 + 1, name)).collect();
    let index = index_of(records);
    let query = SearchQuery { limit: 2, ..SearchQuery::browse([CATALOG]) };
    let first = index.search(&query).expect("search");
    assert_eq!(first.hits.iter().map(|hit| hit.title.as_str()).collect::<Vec<_>>(), ["b", "c"]);
    index
        .apply(
            vec![
                // Already shown ("b"), moves behind the cursor: shown again, in its new version.
                IndexChange::Upsert(titled(1, "z")),
                // Not yet shown ("e"), moves before the cursor: never shown.
                IndexChange::Upsert(titled(4, "a")),
                // Not yet shown, removed: never shown.
                IndexChange::Remove { uuid: uuid(5) },
                // New, after the cursor: shown.
                IndexChange::Upsert(titled(7, "ee")),
            ],
            1,
        )
        .expect("apply");
    let rest: Vec<String> = {
        let remaining = all_pages(&index, SearchQuery { after: first.next, ..query });
        let titles_by_uuid = |id: &String| {
            let page = index.search(&SearchQuery { limit: 100, ..SearchQuery::browse([CATALOG]) }).expect("search");
            page.hits.into_iter().find(|hit| &hit.uuid == id).map(|hit| hit.title).unwrap_or_default()
        };
        remaining.iter().map(titles_by_uuid).collect()
    };
    assert_eq!(rest, ["d", "ee", "g", "z"]);
}

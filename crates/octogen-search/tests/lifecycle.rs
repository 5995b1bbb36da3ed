//! Opening, persistence of `applied_seq`, corruption handling, and the
//! semantics of changes and bulk builds.

mod common;

use std::fs;

use common::*;
use octogen_search::{IndexChange, IndexError, OpenOutcome, SearchIndex, SearchQuery};

fn count(index: &SearchIndex) -> usize {
    all_pages(index, SearchQuery { limit: 100, ..SearchQuery::browse([CATALOG]) }).len()
}

#[test]
fn applied_seq_is_persisted_with_the_documents() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (index, outcome) = SearchIndex::open_or_recreate(dir.path()).expect("open");
        assert_eq!(outcome, OpenOutcome::Created);
        assert_eq!(index.applied_seq(), 0);
        index.apply(vec![IndexChange::Upsert(titled(1, "Blanket"))], 41).expect("apply");
        assert_eq!(index.applied_seq(), 41);
        // The high-water mark never goes down.
        index.apply(vec![IndexChange::Upsert(titled(2, "Lamp"))], 7).expect("apply");
        assert_eq!(index.applied_seq(), 41);
    }
    let (index, outcome) = SearchIndex::open_or_recreate(dir.path()).expect("reopen");
    assert_eq!(outcome, OpenOutcome::Opened);
    assert_eq!(index.applied_seq(), 41);
    assert_eq!(index.num_docs(), 2);
    assert!(index.size_on_disk() > 0);
    assert_eq!(search_titles(&index, "blanket"), ["Blanket"]);
    // Products indexed before the reopen are still replaced, not duplicated.
    index.apply(vec![IndexChange::Upsert(titled(1, "Blanket Renamed"))], 42).expect("apply");
    assert_eq!(search_titles(&index, "blanket"), ["Blanket Renamed"]);
    index.apply(vec![IndexChange::Remove { uuid: uuid(2) }], 43).expect("apply");
    assert_eq!(index.num_docs(), 1);
}

#[test]
fn a_garbage_meta_json_is_corrupt_and_gets_recreated() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let index = SearchIndex::open(dir.path()).expect("open");
        index.apply(vec![IndexChange::Upsert(titled(1, "Blanket"))], 3).expect("apply");
    }
    fs::write(dir.path().join("meta.json"), b"{ this is not json").expect("write");
    assert!(matches!(SearchIndex::open(dir.path()), Err(IndexError::Corrupt(_))));
    let (index, outcome) = SearchIndex::open_or_recreate(dir.path()).expect("recreate");
    assert!(matches!(outcome, OpenOutcome::Recreated { .. }), "{outcome:?}");
    assert_eq!(index.applied_seq(), 0);
    assert_eq!(index.num_docs(), 0);
    index.apply(vec![IndexChange::Upsert(titled(1, "Blanket"))], 1).expect("usable after recreate");
}

#[test]
fn a_missing_segment_file_is_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let index = SearchIndex::open(dir.path()).expect("open");
        index.apply(vec![IndexChange::Upsert(titled(1, "Blanket"))], 3).expect("apply");
    }
    let segment_file = fs::read_dir(dir.path())
        .expect("list")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|ext| ext == "term"))
        .expect("a term dictionary file");
    fs::remove_file(segment_file).expect("remove");
    assert!(matches!(SearchIndex::open(dir.path()), Err(IndexError::Corrupt(_))));
    let (index, outcome) = SearchIndex::open_or_recreate(dir.path()).expect("recreate");
    assert!(matches!(outcome, OpenOutcome::Recreated { .. }));
    assert_eq!(index.num_docs(), 0);
}

#[test]
fn an_index_from_another_format_is_incompatible() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(SearchIndex::open(dir.path()).expect("open"));
    let meta_path = dir.path().join("meta.json");
    let meta = fs::read_to_string(&meta_path).expect("read");
    fs::write(&meta_path, meta.replace("\\\"format\\\":1", "\\\"format\\\":999")).expect("write");
    match SearchIndex::open(dir.path()) {
        Err(IndexError::Corrupt(reason)) => assert!(reason.contains("format"), "{reason}"),
        other => panic!("expected an incompatible index, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn a_foreign_directory_is_never_used_or_wiped() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("precious.txt"), b"keep me").expect("write");
    assert!(matches!(SearchIndex::open(dir.path()), Err(IndexError::NotAnIndex(_))));
    assert!(matches!(SearchIndex::open_or_recreate(dir.path()), Err(IndexError::NotAnIndex(_))));
    assert!(dir.path().join("precious.txt").exists());
}

#[test]
fn a_second_writer_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _first = SearchIndex::open(dir.path()).expect("open");
    assert!(matches!(SearchIndex::open(dir.path()), Err(IndexError::Locked(_))));
    assert!(matches!(SearchIndex::open_or_recreate(dir.path()), Err(IndexError::Locked(_))));
}

/// A writer lock released a moment ago can still look busy (a child process
/// forked by another thread holds a copy of its descriptor until it execs):
/// opening waits for it briefly instead of reporting a second writer.
#[test]
fn a_writer_lock_being_released_is_waited_for() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(SearchIndex::open(dir.path()).expect("create"));
    let held = std::fs::File::options().write(true).open(dir.path().join(".tantivy-writer.lock")).expect("lock file");
    held.try_lock().expect("free");
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(held);
    });
    SearchIndex::open(dir.path()).expect("opened once the lock was released");
    releaser.join().unwrap();
}

#[test]
fn upserts_replace_and_inactive_or_removed_products_disappear() {
    let index = index_of(vec![titled(1, "Blanket"), titled(2, "Lamp"), titled(3, "Chair")]);
    upsert(&index, vec![titled(1, "Weighted Blanket")]);
    assert_eq!(search_titles(&index, "blanket"), ["Weighted Blanket"]);
    let mut inactive = titled(2, "Lamp");
    inactive.is_active = false;
    index.apply(vec![IndexChange::Upsert(inactive), IndexChange::Remove { uuid: uuid(3) }], 10).expect("apply");
    assert_eq!(count(&index), 1);
    // Removing what is not there is fine.
    index.apply(vec![IndexChange::Remove { uuid: uuid(42) }], 11).expect("apply");
    assert_eq!(index.num_docs(), 1);
}

#[test]
fn changes_apply_in_order_within_a_batch() {
    let index = SearchIndex::in_ram();
    index
        .apply(
            vec![
                IndexChange::Upsert(titled(1, "One")),
                IndexChange::Remove { uuid: uuid(1) },
                IndexChange::Remove { uuid: uuid(2) },
                IndexChange::Upsert(titled(2, "Two")),
                IndexChange::Upsert(titled(3, "Three")),
                IndexChange::Upsert(titled(3, "Three again")),
            ],
            1,
        )
        .expect("apply");
    assert_eq!(titles(&index, &SearchQuery::browse([CATALOG])), ["Three again", "Two"]);
}

#[test]
fn a_bulk_build_replaces_everything_at_once() {
    let index = index_of(vec![titled(1, "Old One"), titled(2, "Old Two")]);
    let mut build = index.bulk_build().expect("bulk");
    build.add(&titled(3, "New Three")).expect("add");
    build.add(&titled(4, "New Four")).expect("add");
    build.add(&titled(4, "New Four Again")).expect("add");
    let mut inactive = titled(5, "Inactive");
    inactive.is_active = false;
    build.add(&inactive).expect("add");
    // Nothing is visible before `finish`.
    assert_eq!(titles(&index, &SearchQuery::browse([CATALOG])), ["Old One", "Old Two"]);
    assert_eq!(build.finish(500).expect("finish"), 2);
    assert_eq!(titles(&index, &SearchQuery::browse([CATALOG])), ["New Four Again", "New Three"]);
    assert_eq!(index.applied_seq(), 500);
}

#[test]
fn an_abandoned_bulk_build_changes_nothing() {
    let index = index_of(vec![titled(1, "Old One")]);
    let seq = index.applied_seq();
    {
        let mut build = index.bulk_build().expect("bulk");
        build.add(&titled(3, "New Three")).expect("add");
    }
    assert_eq!(titles(&index, &SearchQuery::browse([CATALOG])), ["Old One"]);
    // The writer is usable afterwards, and the abandoned records never surface.
    upsert(&index, vec![titled(2, "Old Two")]);
    assert_eq!(titles(&index, &SearchQuery::browse([CATALOG])), ["Old One", "Old Two"]);
    assert_eq!(index.applied_seq(), seq + 1);
}

/// Searches (and paging) run while another thread applies changes: no errors,
/// and every page is internally consistent.
#[test]
fn searches_run_concurrently_with_changes() {
    let index = std::sync::Arc::new(index_of((0..200).map(|n| titled(n, &format!("Blanket {n:03}"))).collect()));
    let writer = {
        let index = index.clone();
        std::thread::spawn(move || {
            for round in 0..20u128 {
                let changes = (0..20u128)
                    .map(|i| IndexChange::Upsert(titled(1000 + round * 20 + i, &format!("Blanket New {round} {i}"))))
                    .chain(std::iter::once(IndexChange::Remove { uuid: uuid(round) }))
                    .collect();
                index.apply(changes, index.applied_seq() + 1).expect("apply");
            }
        })
    };
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let index = index.clone();
            std::thread::spawn(move || {
                for _ in 0..10 {
                    let uuids = all_pages(&index, SearchQuery { limit: 50, ..SearchQuery::text([CATALOG], "blanket") });
                    assert!(uuids.len() >= 180);
                    let distinct: std::collections::HashSet<_> = uuids.iter().collect();
                    // Unchanged products are never repeated; a product can only repeat if it moved, and none do here.
                    assert_eq!(distinct.len(), uuids.len());
                }
            })
        })
        .collect();
    writer.join().expect("writer thread");
    for reader in readers {
        reader.join().expect("reader thread");
    }
    assert_eq!(index.num_docs(), 200 - 20 + 400);
}

#[test]
fn huge_and_odd_fields_are_indexed_without_trouble() {
    let huge = product(1, &"Blanket ".repeat(5_000), |p| {
        p.description = Some("word ".repeat(50_000));
        p.enrichment.attributes.insert("Note".into(), vec!["x".repeat(70_000)]);
        p.tags = vec!["🙂 émoji 标签".into(), String::new()];
        p.current_price = Some(f64::NAN);
    });
    let odd = product(2, "", |p| p.brand = brand("  "));
    let index = index_of(vec![huge, odd]);
    assert_eq!(index.num_docs(), 2);
    assert_eq!(search_titles(&index, "blanket").len(), 1);
    assert_eq!(search_titles(&index, "标签").len(), 1);
    // A NaN price is no price: bounded queries skip it.
    let bounded = SearchQuery { price_min: Some(0.0), ..SearchQuery::browse([CATALOG]) };
    assert!(titles(&index, &bounded).is_empty());
    // The untitled product browses first (empty title sorts first).
    assert_eq!(titles(&index, &SearchQuery::browse([CATALOG]))[0], "");
}

#[test]
fn a_batch_is_invisible_until_committed_and_discarded_when_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (index, _) = SearchIndex::open_or_recreate(dir.path()).expect("open");
        index.apply(vec![IndexChange::Upsert(titled(1, "Blanket"))], 5).expect("apply");
        let mut batch = index.begin_batch().expect("batch");
        batch.add(vec![IndexChange::Upsert(titled(2, "Lamp"))]).expect("add");
        batch
            .add(vec![IndexChange::Upsert(titled(1, "Blanket Renamed")), IndexChange::Upsert(titled(3, "Rug"))])
            .expect("add");
        // Searches keep seeing the last commit while the batch is open.
        assert_eq!(index.num_docs(), 1);
        assert_eq!(search_titles(&index, "blanket"), ["Blanket"]);
        drop(batch);
        assert_eq!(index.applied_seq(), 5);
        assert_eq!(search_titles(&index, "blanket"), ["Blanket"]);
        // A dropped batch does not leak into the next commit.
        index.apply(vec![IndexChange::Upsert(titled(4, "Chair"))], 6).expect("apply");
        assert_eq!(index.num_docs(), 2);
        assert!(search_titles(&index, "lamp").is_empty());

        let mut batch = index.begin_batch().expect("batch");
        batch.add(vec![IndexChange::Upsert(titled(2, "Lamp"))]).expect("add");
        batch
            .add(vec![IndexChange::Upsert(titled(1, "Blanket Renamed")), IndexChange::Remove { uuid: uuid(4) }])
            .expect("add");
        batch.commit(9).expect("commit");
        assert_eq!(index.applied_seq(), 9);
    }
    // The documents and their sequence value were committed together.
    let (index, outcome) = SearchIndex::open_or_recreate(dir.path()).expect("reopen");
    assert_eq!(outcome, OpenOutcome::Opened);
    assert_eq!(index.applied_seq(), 9);
    assert_eq!(index.num_docs(), 2);
    assert_eq!(search_titles(&index, "blanket"), ["Blanket Renamed"]);
    assert_eq!(search_titles(&index, "lamp"), ["Lamp"]);
}

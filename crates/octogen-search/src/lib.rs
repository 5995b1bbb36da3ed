//! The per-node search index of octogen (tantivy), derived from the store and
//! rebuildable from it.
//!
//! # Use
//!
//! - At startup: [`SearchIndex::open_or_recreate`]. On [`OpenOutcome::Created`]
//!   or [`OpenOutcome::Recreated`] rebuild from the store with
//!   [`SearchIndex::bulk_build`] (records read at store sequence S, then
//!   `finish(S)`); otherwise replay the store's changes after
//!   [`SearchIndex::applied_seq`].
//! - Then follow the store's change feed with [`SearchIndex::apply`] (batches
//!   of any size; one commit each; visible to searches when it returns;
//!   `applied_seq` is persisted in the same commit as the documents).
//! - Per request: [`SearchIndex::search`] with a [`SearchQuery`]. Only active
//!   products are in the index; grants arrive as the `catalogs` of the query
//!   and are a term filter inside the tantivy query, never a post-filter.
//!
//! # Order
//!
//! - **Text queries** (`text` has at least one word): by rank, highest first,
//!   then by product uuid ascending. The rank is computed from constant
//!   per-field, per-match-kind points, so it depends only on the product and
//!   the query — never on other products, corpus statistics, segment layout,
//!   merges or the node. In order of precedence: products with more query
//!   words in their name fields (title, brand, type/tags/categories/colors/
//!   materials); then better fields (title > brand > type and tags) and better
//!   matches (exact > English stem > prefix of the last word > one typo in
//!   words of 5+ letters); then shorter titles; then uuid. Products that
//!   match only through their description come after all of those, by the
//!   number of query words their description contains. The exact formula is
//!   in the [`query`] module.
//! - **Browse** (no text): by title, case-insensitive A→Z (byte order of the
//!   lowercased, whitespace-collapsed title, first 64 bytes), then uuid ascending.
//!
//! The uuid tie-break makes both orders total: no two products share a position.
//! (The uuid compares as its 128-bit value, which equals the order of the
//! canonical lowercase string; a non-UUID id compares by a 128-bit hash of it.)
//!
//! # Cursors (search-after)
//!
//! A page ends with a [`SortPosition`]: the sort key and uuid of its last
//! product. The next page returns the products *strictly after* that position
//! in the order above, computed afresh against the index as it is then. No
//! document ids, offsets or index generations are involved, so a cursor can be
//! continued on any node and after any number of re-indexings or merges.
//!
//! **Guarantee.** A product that matches the query and does not change for the
//! whole time someone pages through the results is returned exactly once:
//! never skipped, never repeated — whatever else is added, changed or removed
//! meanwhile, and whichever nodes serve the pages (provided each node's index
//! contains the product; an index that is being rebuilt from scratch may not
//! yet).
//!
//! **What can happen to products that change while someone pages** — each of
//! these affects only the changed product itself, never the position of others:
//! - *Added, or changed into the result set* (new product, price now within
//!   bounds, facet now matching, text now matching): shown if its position is
//!   after the cursor, not shown if it is before.
//! - *Removed, deactivated, or changed out of the result set*: not shown on
//!   later pages (it may already have been shown on an earlier one).
//! - *Changed so that its position moves* (its title, or for text queries the
//!   fields that decide its rank): if it moves from before the cursor to after
//!   it, it is shown twice (once in its old and once in its new version); if it
//!   moves from after the cursor to before it, it is not shown at all; otherwise
//!   it is shown once, in the version current when its page was fetched.
//! - *Changed without moving* (e.g. a new image or price within bounds): shown
//!   once, in the version current when its page was fetched.
//! - Nodes with different `applied_seq` may serve different versions of a
//!   changed product; the rules above apply to whichever version each page saw.

//!
//! # Performance (2 cores, synthetic 1M-product catalog, `examples/bench_search.rs`)
//!
//! Bulk build ≈ 35–48k products/s (index only), `apply` in 100k batches ≈ 38k/s,
//! ≈ 320 bytes per product on disk, peak RSS ≈ 0.5–0.65 GB; 1,000 mixed
//! queries single-threaded: p50 ≈ 4–5 ms, p99 ≈ 17–23 ms. Ranking is built so
//! that a page is usually answered from the short name-field posting lists:
//! an all-words intersection first, MaxScore pruning of words that match
//! nearly everything, and the description only as a fallback tier.

mod best_match;
mod browse;
mod cancel;
mod collect;
mod error;
mod expansion;
mod filtered;
mod index;
pub mod query;
mod schema;
mod segment_cache;
mod stem_cache;
mod summary_codec;
mod words;

pub use cancel::{CancelOnDrop, Cancellation};
pub use error::IndexError;
pub use index::{BulkBuild, IndexBatch, IndexChange, OpenOutcome, SearchIndex, SearchPage, WriterConfig};
pub use octogen_core::facets::FacetKey;
pub use query::{FacetFilter, SearchQuery, SortPosition, MAX_LIMIT, MAX_QUERY_CHARS, MAX_QUERY_WORDS};
pub use schema::ProductDocument;

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn search_index_is_send_and_sync() {
        assert_send_sync::<SearchIndex>();
    }
}

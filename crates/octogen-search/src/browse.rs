//! Browsing (a search without text): pages in title order that cost what
//! the page needs, not what the filter matches.
//!
//! A browse page is the first `limit + 1` products in (title, id) order after
//! the cursor. Collecting them in document order means visiting every match
//! of the filter, and a broad browse ("under £50") matches a large part of
//! the catalog: at a million products that was 4–5 ms of CPU per page, most
//! of it reading the price column and the title ordinal of every match.
//!
//! Instead each segment keeps its documents sorted in browse order, computed
//! once when the segment first becomes searchable (see `segment_cache`, so no
//! query waits for it; 4 bytes per document). A page walks that order from the
//! cursor and stops as soon as it has enough products, checking each product
//! against the filter's posting-list part (catalogs, facets, exclusions; one
//! bitset per segment and query) and its price bounds (read per product).
//! A filter that matches few products (under 1/16 of a segment) is still
//! answered in document order, which then visits only those few.

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::query::{AllScorer, EmptyScorer, EnableScoring, Weight};
use tantivy::{BitSet, DocId, DocSet, Searcher, SegmentReader, TERMINATED};

use crate::collect::{BrowseCollector, BrowseHit};
use crate::query::{BrowsePlan, PriceBounds};
use crate::segment_cache::SegmentCaches;

/// Below this share of a segment (1/n), a filter's matches are collected in
/// document order instead of walking the title order.
const SPARSE_FILTER: u32 = 16;

/// The first `collector.keep` products of the plan's filter after `collector.after`, in browse order.
pub(crate) fn browse_hits(
    searcher: &Searcher,
    caches: &SegmentCaches,
    plan: &BrowsePlan,
    collector: &BrowseCollector,
) -> tantivy::Result<Vec<BrowseHit>> {
    let filter = plan.filter.weight(EnableScoring::disabled_from_searcher(searcher))?;
    let postings = plan.postings.weight(EnableScoring::disabled_from_searcher(searcher))?;
    let mut fruits = Vec::with_capacity(searcher.segment_readers().len());
    for (segment_ord, segment) in searcher.segment_readers().iter().enumerate() {
        let segment_ord = segment_ord as u32;
        let walked = match caches.get(segment.segment_id()) {
            Some(cache) => walk(collector, segment_ord, segment, &cache.browse_order, postings.as_ref(), plan.price)?,
            None => None,
        };
        fruits.push(match walked {
            Some(hits) => hits,
            None => collector.collect_segment(filter.as_ref(), segment_ord, segment)?,
        });
    }
    collector.merge_fruits(fruits)
}

/// Walks one segment in browse order; `None` when the filter is sparse
/// enough that collecting its matches in document order is cheaper.
fn walk(
    collector: &BrowseCollector,
    segment_ord: u32,
    segment: &SegmentReader,
    order: &[DocId],
    postings: &dyn Weight,
    price: PriceBounds,
) -> tantivy::Result<Option<Vec<BrowseHit>>> {
    let mut scorer = postings.scorer(segment, 1.0)?;
    if scorer.is::<EmptyScorer>() {
        return Ok(Some(Vec::new()));
    }
    let members = if scorer.is::<AllScorer>() {
        None
    } else if scorer.cost() < u64::from(segment.max_doc() / SPARSE_FILTER) {
        return Ok(None);
    } else {
        let mut members = BitSet::with_max_value(segment.max_doc());
        let mut doc = scorer.doc();
        while doc != TERMINATED {
            members.insert(doc);
            doc = scorer.advance();
        }
        Some(members)
    };
    let prices = if price.is_bounded() { Some(segment.fast_fields().f64("price")?) } else { None };
    let alive = segment.alive_bitset();
    let mut page = collector.for_segment(segment_ord, segment)?;
    for &doc in &order[page.first_after_cursor(order)..] {
        if page.is_full() || collector.cancellation.is_cancelled() {
            break;
        }
        let admitted = alive.is_none_or(|alive| alive.is_alive(doc))
            && members.as_ref().is_none_or(|members| members.contains(doc))
            && prices.as_ref().is_none_or(|prices| price.admits(prices.first(doc)));
        if admitted {
            page.collect(doc, 0.0);
        }
    }
    Ok(Some(page.harvest()))
}

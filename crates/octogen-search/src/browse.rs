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
//! once when the segment first becomes searchable (a tantivy `Warmer`, so no
//! query waits for it; 4 bytes per document). A page walks that order from the
//! cursor and stops as soon as it has enough products, checking each product
//! against the filter's posting-list part (catalogs, facets, exclusions; one
//! bitset per segment and query) and its price bounds (read per product).
//! A filter that matches few products (under 1/16 of a segment) is still
//! answered in document order, which then visits only those few.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::index::SegmentId;
use tantivy::query::{AllScorer, EmptyScorer, EnableScoring, Weight};
use tantivy::{BitSet, DocId, DocSet, Searcher, SearcherGeneration, SegmentReader, Warmer, TERMINATED};

use crate::collect::{BrowseCollector, BrowseHit};
use crate::query::{BrowsePlan, PriceBounds};

/// Below this share of a segment (1/n), a filter's matches are collected in
/// document order instead of walking the title order.
const SPARSE_FILTER: u32 = 16;

/// Every searchable segment's documents in browse order, kept up to date by
/// the index reader (register it with `IndexReaderBuilder::warmers`).
#[derive(Default)]
pub(crate) struct BrowseOrders {
    by_segment: RwLock<HashMap<SegmentId, Arc<[DocId]>>>,
}

impl BrowseOrders {
    pub(crate) fn get(&self, segment: SegmentId) -> Option<Arc<[DocId]>> {
        self.by_segment.read().unwrap_or_else(|poisoned| poisoned.into_inner()).get(&segment).cloned()
    }
}

impl Warmer for BrowseOrders {
    fn warm(&self, searcher: &Searcher) -> tantivy::Result<()> {
        for segment in searcher.segment_readers() {
            if self.get(segment.segment_id()).is_none() {
                let order = browse_order(segment)?;
                self.by_segment
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .insert(segment.segment_id(), order);
            }
        }
        Ok(())
    }

    fn garbage_collect(&self, live_generations: &[&SearcherGeneration]) {
        let live: HashSet<SegmentId> =
            live_generations.iter().flat_map(|generation| generation.segments().keys().copied()).collect();
        self.by_segment
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .retain(|segment, _| live.contains(segment));
    }
}

/// All of a segment's documents (deleted ones too: deletions do not change a
/// segment's id, so they are checked when walking) sorted by (title, id).
fn browse_order(segment: &SegmentReader) -> tantivy::Result<Arc<[DocId]>> {
    let keys = crate::collect::BrowseKeys::open(segment)?;
    let mut keyed: Vec<(u64, u128, DocId)> =
        (0..segment.max_doc()).map(|doc| (keys.ord(doc), keys.id(doc), doc)).collect();
    keyed.sort_unstable();
    Ok(keyed.into_iter().map(|(_, _, doc)| doc).collect())
}

/// The first `collector.keep` products of the plan's filter after `collector.after`, in browse order.
pub(crate) fn browse_hits(
    searcher: &Searcher,
    orders: &BrowseOrders,
    plan: &BrowsePlan,
    collector: &BrowseCollector,
) -> tantivy::Result<Vec<BrowseHit>> {
    let filter = plan.filter.weight(EnableScoring::disabled_from_searcher(searcher))?;
    let postings = plan.postings.weight(EnableScoring::disabled_from_searcher(searcher))?;
    let mut fruits = Vec::with_capacity(searcher.segment_readers().len());
    for (segment_ord, segment) in searcher.segment_readers().iter().enumerate() {
        let segment_ord = segment_ord as u32;
        let walked = match orders.get(segment.segment_id()) {
            Some(order) => walk(collector, segment_ord, segment, &order, postings.as_ref(), plan.price)?,
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
        if page.is_full() {
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

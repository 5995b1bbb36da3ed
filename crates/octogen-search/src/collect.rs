//! Search-after collectors: they keep the best `limit + 1` hits strictly after
//! a sort position, in a total order that depends only on each document and
//! the query (never on doc ids, segments or corpus statistics).
//!
//! - ranked (text queries): rank descending, then sort id ascending;
//! - browse (no text): title sort key ascending, then sort id ascending.
//!
//! Every page costs the same whatever its depth: one pass over the matching
//! documents with a bounded heap, no offset.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use std::sync::Arc;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::fieldnorm::FieldNormReader;
use tantivy::query::Weight;
use tantivy::schema::Field;

use tantivy::columnar::{Column, ColumnIndex, ColumnValues, StrColumn, TermOrdHit};
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader};

use crate::cancel::{Cancellation, STOP_SCORE};
use crate::query::rank;
use crate::segment_cache::{first_byte, SegmentCache, SegmentCaches};

/// Keeps the `capacity` smallest items.
struct Best<T: Ord> {
    heap: BinaryHeap<T>,
    capacity: usize,
}

impl<T: Ord> Best<T> {
    fn new(capacity: usize) -> Self {
        Best { heap: BinaryHeap::with_capacity(capacity + 1), capacity }
    }

    /// The item a newcomer has to beat, once the heap is full.
    fn bar(&self) -> Option<&T> {
        if self.heap.len() >= self.capacity {
            self.heap.peek()
        } else {
            None
        }
    }

    fn offer(&mut self, item: T) {
        if self.heap.len() < self.capacity {
            self.heap.push(item);
        } else if self.heap.peek().is_some_and(|worst| item < *worst) {
            self.heap.pop();
            self.heap.push(item);
        }
    }

    fn into_sorted_vec(self) -> Vec<T> {
        self.heap.into_sorted_vec()
    }
}

/// Direct per-doc access to a column every document has a value in (all of
/// ours), skipping the optional/multi-value indirection of `Column::first`.
fn dense(column: Column<u64>) -> Arc<dyn ColumnValues<u64>> {
    match column.index {
        ColumnIndex::Full => column.values,
        _ => column.first_or_default_col(0),
    }
}

/// Sort ids are stored as two u64 columns.
struct IdColumns {
    hi: Arc<dyn ColumnValues<u64>>,
    lo: Arc<dyn ColumnValues<u64>>,
}

impl IdColumns {
    fn open(segment: &SegmentReader) -> tantivy::Result<IdColumns> {
        let fast = segment.fast_fields();
        Ok(IdColumns { hi: dense(fast.u64("id_hi")?), lo: dense(fast.u64("id_lo")?) })
    }

    fn id(&self, doc: DocId) -> u128 {
        self.id_from_high(doc, self.high(doc))
    }

    /// The high half of a document's id: it decides almost every tie on its
    /// own, so the low half is only read for documents that get that far.
    fn high(&self, doc: DocId) -> u64 {
        self.hi.get_val(doc)
    }

    fn id_from_high(&self, doc: DocId, high: u64) -> u128 {
        (u128::from(high) << 64) | u128::from(self.lo.get_val(doc))
    }
}

fn high_half(id: u128) -> u64 {
    (id >> 64) as u64
}

/// Ranked order: smaller is better (higher rank, then lower id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct RankedKey {
    rank: Reverse<u32>,
    pub id: u128,
}

impl RankedKey {
    pub(crate) fn new(rank: u32, id: u128) -> RankedKey {
        RankedKey { rank: Reverse(rank), id }
    }

    pub(crate) fn rank(&self) -> u32 {
        self.rank.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct RankedHit {
    pub key: RankedKey,
    pub address: DocAddress,
}

pub(crate) struct RankedCollector {
    pub after: Option<RankedKey>,
    pub keep: usize,
    /// The title field: its field norm (the number of words indexed) breaks ties.
    pub title: Field,
    pub caches: Arc<SegmentCaches>,
    /// Checked for every document offered: a cancelled search ends the scan.
    pub cancellation: Cancellation,
}

pub(crate) struct RankedSegmentCollector {
    after: Option<RankedKey>,
    ids: IdColumns,
    /// The segment's cache (ids' first bytes), once the reader has warmed it.
    cache: Option<Arc<SegmentCache>>,
    /// A byte per document: far cheaper to read than a fast field, and read for every match.
    title_words: FieldNormReader,
    best: Best<RankedHit>,
    segment_ord: SegmentOrdinal,
}

impl Collector for RankedCollector {
    type Fruit = Vec<RankedHit>;
    type Child = RankedSegmentCollector;

    fn for_segment(&self, segment_ord: SegmentOrdinal, segment: &SegmentReader) -> tantivy::Result<Self::Child> {
        Ok(RankedSegmentCollector {
            after: self.after,
            ids: IdColumns::open(segment)?,
            cache: self.caches.get(segment.segment_id()),
            title_words: segment.get_fieldnorms_reader(self.title)?,
            best: Best::new(self.keep),
            segment_ord,
        })
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    /// Lets the query skip documents that cannot enter the heap any more
    /// (see `words::max_score`), instead of scoring every match.
    fn collect_segment(
        &self,
        weight: &dyn Weight,
        segment_ord: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<Vec<RankedHit>> {
        let mut segment = self.for_segment(segment_ord, reader)?;
        let alive = reader.alive_bitset();
        weight.for_each_pruning(NO_THRESHOLD, reader, &mut |doc, score| {
            if self.cancellation.is_cancelled() {
                return STOP_SCORE;
            }
            if alive.is_none_or(|alive| alive.is_alive(doc)) {
                segment.collect(doc, score);
            }
            segment.skippable_scores()
        })?;
        Ok(segment.harvest())
    }

    fn merge_fruits(&self, segment_hits: Vec<Vec<RankedHit>>) -> tantivy::Result<Vec<RankedHit>> {
        let mut hits: Vec<RankedHit> = segment_hits.into_iter().flatten().collect();
        hits.sort_unstable();
        hits.truncate(self.keep);
        Ok(hits)
    }
}

/// Every score is above it: nothing may be skipped.
const NO_THRESHOLD: Score = -1.0;

impl RankedSegmentCollector {
    /// The highest query score that can no longer make it into the heap:
    /// with the heap full and its worst rank R, a score s can only reach
    /// s × 16 + 15, which loses when it is below R.
    fn skippable_scores(&self) -> Score {
        match self.best.bar() {
            Some(bar) if bar.key.rank() >= 16 => ((bar.key.rank() - 16) / 16) as Score,
            _ => NO_THRESHOLD,
        }
    }

    fn id_first_byte(&self, doc: DocId) -> Option<u8> {
        self.cache.as_ref().map(|cache| cache.id_first_byte[doc as usize])
    }
}

impl SegmentCollector for RankedSegmentCollector {
    type Fruit = Vec<RankedHit>;

    fn collect(&mut self, doc: DocId, score: Score) {
        let rank = rank(score, self.title_words.fieldnorm(doc));
        // Cheap rejections on the rank alone, before the id columns are read.
        if self.after.is_some_and(|after| rank > after.rank()) {
            return;
        }
        if self.best.bar().is_some_and(|bar| rank < bar.key.rank()) {
            return;
        }
        // A tie on the rank goes to the smaller id: most lose on its first
        // byte (cached), most of the rest on its high half.
        if self.best.bar().is_some_and(|bar| {
            rank == bar.key.rank() && self.id_first_byte(doc).is_some_and(|byte| byte > first_byte(bar.key.id))
        }) {
            return;
        }
        if self.after.is_some_and(|after| {
            rank == after.rank() && self.id_first_byte(doc).is_some_and(|byte| byte < first_byte(after.id))
        }) {
            return;
        }
        let high = self.ids.high(doc);
        if self.best.bar().is_some_and(|bar| rank == bar.key.rank() && high > high_half(bar.key.id)) {
            return;
        }
        if self.after.is_some_and(|after| rank == after.rank() && high < high_half(after.id)) {
            return;
        }
        let key = RankedKey::new(rank, self.ids.id_from_high(doc, high));
        if self.after.is_some_and(|after| key <= after) {
            return;
        }
        self.best.offer(RankedHit { key, address: DocAddress::new(self.segment_ord, doc) });
    }

    fn harvest(self) -> Vec<RankedHit> {
        self.best.into_sorted_vec()
    }
}

/// Browse order across segments: title sort key, then id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct BrowseHit {
    pub title: String,
    pub id: u128,
    pub address: DocAddress,
}

pub(crate) struct BrowseCollector {
    /// (title sort key as stored, id)
    pub after: Option<(String, u128)>,
    pub keep: usize,
    /// Checked by the walk in browse order (see `browse`) for every document.
    pub cancellation: Cancellation,
}

/// Within a segment titles are compared by dictionary ordinal, which has the
/// same order as the strings; `after` is translated to that segment's ordinals.
#[derive(Debug, Clone, Copy)]
struct SegmentThreshold {
    ord: u64,
    /// The `after` title exists in this segment at `ord` (else `ord` is the next greater one).
    exact: bool,
    id: u128,
}

impl SegmentThreshold {
    fn passes(&self, ord: u64, id: u128) -> bool {
        ord > self.ord || (ord == self.ord && (!self.exact || id > self.id))
    }
}

/// A segment's browse sort key of each document: its title's ordinal in the
/// segment's dictionary (the same order as the titles), then its id.
pub(crate) struct BrowseKeys {
    titles: Option<StrColumn>,
    ids: IdColumns,
}

impl BrowseKeys {
    pub(crate) fn open(segment: &SegmentReader) -> tantivy::Result<BrowseKeys> {
        Ok(BrowseKeys { titles: segment.fast_fields().str("title_sort")?, ids: IdColumns::open(segment)? })
    }

    /// `None` only for a document without a title key, which we never write.
    fn title_ord(&self, doc: DocId) -> Option<u64> {
        self.titles.as_ref().and_then(|titles| titles.ords().first(doc))
    }

    /// The title's ordinal; a document without one sorts last.
    pub(crate) fn ord(&self, doc: DocId) -> u64 {
        self.title_ord(doc).unwrap_or(u64::MAX)
    }

    pub(crate) fn id(&self, doc: DocId) -> u128 {
        self.ids.id(doc)
    }
}

pub(crate) struct BrowseSegmentCollector {
    keys: BrowseKeys,
    threshold: Option<SegmentThreshold>,
    /// (title ordinal, id, doc)
    best: Best<(u64, u128, DocId)>,
    segment_ord: SegmentOrdinal,
}

impl Collector for BrowseCollector {
    type Fruit = Vec<BrowseHit>;
    type Child = BrowseSegmentCollector;

    fn for_segment(&self, segment_ord: SegmentOrdinal, segment: &SegmentReader) -> tantivy::Result<Self::Child> {
        let keys = BrowseKeys::open(segment)?;
        let threshold = match (&self.after, &keys.titles) {
            (Some((title, id)), Some(column)) => Some(segment_threshold(column, title, *id)?),
            _ => None,
        };
        Ok(BrowseSegmentCollector { keys, threshold, best: Best::new(self.keep), segment_ord })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, segment_hits: Vec<Vec<BrowseHit>>) -> tantivy::Result<Vec<BrowseHit>> {
        let mut hits: Vec<BrowseHit> = segment_hits.into_iter().flatten().collect();
        hits.sort_unstable();
        hits.truncate(self.keep);
        Ok(hits)
    }
}

fn segment_threshold(column: &StrColumn, title: &str, id: u128) -> tantivy::Result<SegmentThreshold> {
    Ok(match column.dictionary().term_ord_or_next(title.as_bytes())? {
        TermOrdHit::Exact(ord) => SegmentThreshold { ord, exact: true, id },
        TermOrdHit::Next(ord) => SegmentThreshold { ord, exact: false, id },
    })
}

impl BrowseSegmentCollector {
    /// Where `order` (this segment's documents in browse order, see
    /// `browse`) passes the cursor: everything before it is on earlier pages.
    pub(crate) fn first_after_cursor(&self, order: &[DocId]) -> usize {
        let Some(threshold) = self.threshold else { return 0 };
        order.partition_point(|&doc| !threshold.passes(self.keys.ord(doc), self.keys.id(doc)))
    }

    /// The page holds `keep` products: in a walk in browse order, nothing later can enter it.
    pub(crate) fn is_full(&self) -> bool {
        self.best.bar().is_some()
    }
}

impl SegmentCollector for BrowseSegmentCollector {
    type Fruit = Vec<BrowseHit>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        // Every document we write has a (never empty) title key; see `schema::title_sort_key`.
        let Some(ord) = self.keys.title_ord(doc) else {
            return;
        };
        if self.threshold.is_some_and(|threshold| ord < threshold.ord) {
            return;
        }
        if self.best.bar().is_some_and(|bar| ord > bar.0) {
            return;
        }
        let id = self.keys.id(doc);
        if self.threshold.is_some_and(|threshold| !threshold.passes(ord, id)) {
            return;
        }
        self.best.offer((ord, id, doc));
    }

    fn harvest(self) -> Vec<BrowseHit> {
        let best = self.best.into_sorted_vec();
        // Sorted by ordinal, so one pass over the dictionary resolves all titles
        // (each dictionary block is decompressed once, not once per hit).
        let ords: Vec<u64> = best.iter().map(|(ord, _, _)| *ord).collect();
        let mut titles = Vec::with_capacity(ords.len());
        if let Some(column) = &self.keys.titles {
            // An ordinal read from this column is always in its dictionary.
            let _ = column
                .dictionary()
                .sorted_ords_to_term_cb(&ords, |bytes| titles.push(String::from_utf8_lossy(bytes).into_owned()));
        }
        best.into_iter()
            .zip(titles)
            .map(|((_, id, doc), title)| BrowseHit { title, id, address: DocAddress::new(self.segment_ord, doc) })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_keeps_the_smallest() {
        let mut best = Best::new(3);
        for value in [5, 1, 9, 3, 7, 2] {
            best.offer(value);
        }
        assert_eq!(best.bar(), Some(&3));
        assert_eq!(best.into_sorted_vec(), [1, 2, 3]);
    }

    #[test]
    fn ranked_keys_order_by_rank_desc_then_id_asc() {
        let mut keys = vec![RankedKey::new(5, 2), RankedKey::new(9, 7), RankedKey::new(5, 1)];
        keys.sort();
        assert_eq!(keys, [RankedKey::new(9, 7), RankedKey::new(5, 1), RankedKey::new(5, 2)]);
    }

    #[test]
    fn threshold_is_strictly_after() {
        let exact = SegmentThreshold { ord: 4, exact: true, id: 10 };
        assert!(!exact.passes(3, 99));
        assert!(!exact.passes(4, 10));
        assert!(exact.passes(4, 11));
        assert!(exact.passes(5, 0));
        let next = SegmentThreshold { ord: 4, exact: false, id: 10 };
        assert!(next.passes(4, 0));
        assert!(!next.passes(3, 99));
    }
}

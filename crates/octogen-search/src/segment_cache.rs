//! Data derived once per segment, when it becomes searchable: the index
//! reader runs `SegmentCaches` as a tantivy `Warmer` before a new searcher is
//! published, so no query waits for it, and drops a segment's entry once no
//! searcher uses the segment. Segments never change (deletions only mark
//! documents), so an entry never goes stale. 5 bytes per document.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use tantivy::index::SegmentId;
use tantivy::{DocId, Searcher, SearcherGeneration, SegmentReader, Warmer};

use crate::collect::BrowseKeys;

pub(crate) struct SegmentCache {
    /// All documents (deleted ones too) sorted by (title, id); see `browse`.
    pub browse_order: Box<[DocId]>,
    /// The first byte of each document's id, by doc id. Ranked search breaks
    /// ties on the rank by id, and a broad word ties tens of thousands of
    /// products: comparing this byte (half a megabyte per million products,
    /// so it stays in the CPU's cache) settles almost all of them without
    /// reading the id column.
    pub id_first_byte: Box<[u8]>,
}

/// Every searchable segment's cache (register with `IndexReaderBuilder::warmers`).
#[derive(Default)]
pub(crate) struct SegmentCaches {
    by_segment: RwLock<HashMap<SegmentId, Arc<SegmentCache>>>,
}

impl SegmentCaches {
    pub(crate) fn get(&self, segment: SegmentId) -> Option<Arc<SegmentCache>> {
        self.by_segment.read().unwrap_or_else(|poisoned| poisoned.into_inner()).get(&segment).cloned()
    }
}

impl Warmer for SegmentCaches {
    fn warm(&self, searcher: &Searcher) -> tantivy::Result<()> {
        for segment in searcher.segment_readers() {
            if self.get(segment.segment_id()).is_none() {
                let cache = Arc::new(SegmentCache::build(segment)?);
                self.by_segment
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .insert(segment.segment_id(), cache);
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

impl SegmentCache {
    fn build(segment: &SegmentReader) -> tantivy::Result<SegmentCache> {
        let keys = BrowseKeys::open(segment)?;
        let mut keyed: Vec<(u64, u128, DocId)> =
            (0..segment.max_doc()).map(|doc| (keys.ord(doc), keys.id(doc), doc)).collect();
        let id_first_byte = keyed.iter().map(|(_, id, _)| first_byte(*id)).collect();
        keyed.sort_unstable();
        Ok(SegmentCache { browse_order: keyed.into_iter().map(|(_, _, doc)| doc).collect(), id_first_byte })
    }
}

pub(crate) fn first_byte(id: u128) -> u8 {
    (id >> 120) as u8
}

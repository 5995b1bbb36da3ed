//! `SearchIndex`: opening (with corruption detection), applying store changes
//! atomically with their sequence number, bulk rebuilds, and searching.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use octogen_core::wire::{ProductRecord, ProductSummary};
use serde::{Deserialize, Serialize};
use tantivy::schema::Value;
use tantivy::{
    DocAddress, Index, IndexReader, IndexSettings, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, TantivyError,
    Term,
};

use crate::browse::browse_hits;
use crate::cancel::Cancellation;
use crate::collect::{BrowseCollector, RankedCollector, RankedHit, RankedKey};
use crate::query::{
    compile, name_coverage_of_rank, CompiledQuery, RankedPlan, SearchQuery, SortKey, SortPosition, NAME_MATCH_MIN_RANK,
};
use crate::schema::{build_schema, register_analyzers, sort_id, Fields, ProductDocument};
use crate::segment_cache::SegmentCaches;
use crate::{summary_codec, IndexError};

/// Bump when the schema, the analyzers, the scoring or the stored encoding
/// change in a way that needs a rebuild; an index with another value is
/// reported as incompatible on open.
const FORMAT_VERSION: u32 = 1;
/// Written into a directory we create, so `open_or_recreate` only ever wipes our own directories.
const MARKER_FILE: &str = "octogen-search-index";

/// One change from the store's change feed.
// Removals are rare next to upserts, and batches are built once and consumed
// once, so boxing every record would only add an allocation per change.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum IndexChange {
    /// Insert or replace; an inactive record is removed instead (only active products are indexed).
    Upsert(ProductRecord),
    /// Insert or replace an active product whose document was prepared elsewhere.
    UpsertDocument(ProductDocument),
    Remove {
        uuid: String,
    },
}

/// One page of results.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPage {
    pub hits: Vec<ProductSummary>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<SortPosition>,
}

/// Writer resources. The budget bounds the RAM used before a segment is
/// flushed (it is an upper bound, not an allocation).
///
/// One indexing thread by default. On two cores a second one competed with the
/// store's writer during an import's publish, which is what the import waits
/// on: with one, a first import of 1M products published 1.5-2.5 s sooner
/// (BENCHMARKS.md §5). A rebuild of those 1M from the store (`octogen admin
/// reindex`) took as long with one as with two (24.5-25.5 s against 26.1 s):
/// reading and decoding the store bounds it, not tantivy.
#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    pub threads: usize,
    pub memory_budget_bytes: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig { threads: 1, memory_budget_bytes: 512 * 1024 * 1024 }
    }
}

/// How `open_or_recreate` found the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenOutcome {
    /// An existing index was opened as is.
    Opened,
    /// There was no index; an empty one was created (`applied_seq` is 0).
    Created,
    /// The index was unusable and has been wiped and recreated empty: rebuild it from the store.
    Recreated { reason: String },
}

/// What we keep in each tantivy commit's payload, so the documents and the
/// sequence they reflect are persisted by one atomic commit.
#[derive(Debug, Serialize, Deserialize)]
struct CommitPayload {
    format: u32,
    summary_shape: String,
    applied_seq: i64,
}

/// The per-node search index. `Send + Sync`; share it in an `Arc`. Searches
/// run concurrently; changes are serialized on the single writer.
pub struct SearchIndex {
    index: Index,
    fields: Fields,
    reader: IndexReader,
    writer: Mutex<WriterState>,
    writer_config: WriterConfig,
    applied_seq: AtomicI64,
    /// Per-segment data the reader derives when a segment becomes searchable.
    segment_caches: Arc<SegmentCaches>,
    dir: Option<PathBuf>,
}

/// Everything that changes the index, behind one lock.
struct WriterState {
    /// `None` only between a `wait_for_merges` and the next use, which reopens it.
    writer: Option<IndexWriter>,
    /// Sort ids that may have a document in the index: a superset (ids are
    /// not taken out on removal, nor when a batch is rolled back). An upsert
    /// of an id outside it needs no delete. That matters: tantivy applies
    /// every delete to every segment at commit, which otherwise more than
    /// halves the throughput of a first import. About 20–30 MB per million products.
    maybe_indexed: HashSet<u128>,
}

type WriterSlot<'a> = MutexGuard<'a, WriterState>;

/// The writer in a slot that `lock_writer` has filled.
fn writer_in<'s>(slot: &'s mut WriterSlot<'_>) -> Result<&'s mut IndexWriter, IndexError> {
    slot.writer.as_mut().ok_or_else(|| IndexError::Corrupt("the index writer is unavailable".into()))
}

/// The sort ids of every document in the searcher's segments, deleted ones included.
fn ids_in(searcher: &Searcher) -> Result<HashSet<u128>, IndexError> {
    let mut ids = HashSet::with_capacity(searcher.num_docs() as usize);
    for segment in searcher.segment_readers() {
        let fast = segment.fast_fields();
        let (hi, lo) = (fast.u64("id_hi")?, fast.u64("id_lo")?);
        for doc in 0..segment.max_doc() {
            if let (Some(hi), Some(lo)) = (hi.first(doc), lo.first(doc)) {
                ids.insert((u128::from(hi) << 64) | u128::from(lo));
            }
        }
    }
    Ok(ids)
}

impl SearchIndex {
    /// Opens the index in `dir`, creating it (and the directory) if missing.
    /// Returns [`IndexError::Corrupt`] for an unreadable or incompatible
    /// index, [`IndexError::Locked`] if another writer has it open, and
    /// [`IndexError::NotAnIndex`] for a non-empty directory that is not ours.
    pub fn open(dir: &Path) -> Result<SearchIndex, IndexError> {
        Self::open_with(dir, WriterConfig::default()).map(|(index, _)| index)
    }

    pub fn open_with(dir: &Path, config: WriterConfig) -> Result<(SearchIndex, OpenOutcome), IndexError> {
        fs::create_dir_all(dir)?;
        if dir.join("meta.json").exists() {
            let index = Index::open_in_dir(dir).map_err(|error| IndexError::corrupt("cannot open", error))?;
            let search_index = Self::from_index(index, Some(dir.to_path_buf()), config)?;
            return Ok((search_index, OpenOutcome::Opened));
        }
        if !is_empty_or_ours(dir)? {
            return Err(IndexError::NotAnIndex(dir.to_path_buf()));
        }
        fs::write(dir.join(MARKER_FILE), b"octogen search index; safe to delete, rebuilt from the store\n")?;
        let index = Index::builder().schema(build_schema()).settings(IndexSettings::default()).create_in_dir(dir)?;
        let search_index = Self::create_from_index(index, Some(dir.to_path_buf()), config)?;
        Ok((search_index, OpenOutcome::Created))
    }

    /// Like [`SearchIndex::open`], but a corrupt or incompatible index is wiped
    /// and recreated empty; the outcome says so, and the caller must then
    /// rebuild from the store (its `applied_seq` is 0).
    pub fn open_or_recreate(dir: &Path) -> Result<(SearchIndex, OpenOutcome), IndexError> {
        Self::open_or_recreate_with(dir, WriterConfig::default())
    }

    pub fn open_or_recreate_with(dir: &Path, config: WriterConfig) -> Result<(SearchIndex, OpenOutcome), IndexError> {
        match Self::open_with(dir, config) {
            Err(IndexError::Corrupt(reason)) => {
                wipe(dir)?;
                let (index, _) = Self::open_with(dir, config)?;
                Ok((index, OpenOutcome::Recreated { reason }))
            }
            other => other,
        }
    }

    /// An empty index in memory (tests, benchmarks).
    pub fn in_ram() -> SearchIndex {
        Self::in_ram_with(WriterConfig { threads: 1, memory_budget_bytes: 64 * 1024 * 1024 })
            .unwrap_or_else(|error| panic!("an in-memory index cannot fail to open: {error}"))
    }

    pub fn in_ram_with(config: WriterConfig) -> Result<SearchIndex, IndexError> {
        let index = Index::builder().schema(build_schema()).settings(IndexSettings::default()).create_in_ram()?;
        Self::create_from_index(index, None, config)
    }

    /// A freshly created index gets an empty first commit that carries our
    /// payload, so any index without one is recognisably not (fully) ours.
    fn create_from_index(index: Index, dir: Option<PathBuf>, config: WriterConfig) -> Result<SearchIndex, IndexError> {
        register_analyzers(&index);
        let mut writer = open_writer(&index, dir.as_deref(), config)?;
        commit_with_seq(&mut writer, 0, || true)?;
        Self::from_index_with_writer(index, dir, config, Some(writer))
    }

    fn from_index(index: Index, dir: Option<PathBuf>, config: WriterConfig) -> Result<SearchIndex, IndexError> {
        Self::from_index_with_writer(index, dir, config, None)
    }

    /// `writer`: one already open on `index` (dropping it and opening another
    /// would race with the lock release; see `open_writer`).
    fn from_index_with_writer(
        index: Index,
        dir: Option<PathBuf>,
        config: WriterConfig,
        writer: Option<IndexWriter>,
    ) -> Result<SearchIndex, IndexError> {
        if index.schema() != build_schema() {
            return Err(IndexError::Corrupt("the index was written with another schema".into()));
        }
        let fields = Fields::resolve(&index.schema())?;
        let applied_seq = check_payload(&index)?;
        register_analyzers(&index);
        let writer = match writer {
            Some(writer) => writer,
            None => open_writer(&index, dir.as_deref(), config)?,
        };
        let segment_caches = Arc::new(SegmentCaches::default());
        let warmer: Weak<dyn tantivy::Warmer> = Arc::downgrade(&segment_caches) as Weak<dyn tantivy::Warmer>;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .warmers(vec![warmer])
            .try_into()
            .map_err(|error| IndexError::corrupt("cannot open the segments", error))?;
        let maybe_indexed =
            ids_in(&reader.searcher()).map_err(|error| IndexError::corrupt("cannot read the id columns", error))?;
        Ok(SearchIndex {
            index,
            fields,
            reader,
            writer: Mutex::new(WriterState { writer: Some(writer), maybe_indexed }),
            writer_config: config,
            applied_seq: AtomicI64::new(applied_seq),
            segment_caches,
            dir,
        })
    }

    /// The highest store sequence whose changes are reflected in the searchable index; 0 for a new index.
    pub fn applied_seq(&self) -> i64 {
        self.applied_seq.load(Ordering::Acquire)
    }

    /// Applies `changes` in order (each one replaces whatever the index had
    /// for that uuid) and records `up_to_seq` (the high-water mark never goes
    /// down) in the same commit. Visible to searches when this returns. On
    /// error nothing of the batch is applied.
    pub fn apply(&self, changes: Vec<IndexChange>, up_to_seq: i64) -> Result<(), IndexError> {
        if changes.is_empty() && up_to_seq <= self.applied_seq() {
            return Ok(());
        }
        let mut batch = self.begin_batch()?;
        batch.add(changes)?;
        batch.commit(up_to_seq)
    }

    /// Starts applying changes that become searchable together, under one
    /// commit, at [`IndexBatch::commit`]: a large catch-up (a first import, a
    /// node rebuilding from the store) then costs one commit instead of one per
    /// page. Holds the writer: other `apply` calls wait until the batch ends.
    /// Dropping the batch without committing discards everything it added
    /// (searches keep seeing the last commit, and so does a restart).
    pub fn begin_batch(&self) -> Result<IndexBatch<'_>, IndexError> {
        let mut slot = self.lock_writer()?;
        writer_in(&mut slot)?;
        Ok(IndexBatch { index: self, slot: Some(slot) })
    }

    fn write_changes(
        &self,
        writer: &IndexWriter,
        maybe_indexed: &mut HashSet<u128>,
        changes: Vec<IndexChange>,
    ) -> Result<(), IndexError> {
        // Every change first removes the product's current document, if it may
        // have one. The set only grows: a rolled-back batch must not make it forget.
        let remove = |id: u128, maybe_indexed: &HashSet<u128>| {
            if maybe_indexed.contains(&id) {
                writer.delete_term(id_term(&self.fields, id));
            }
        };
        for change in changes {
            let document = match change {
                IndexChange::Upsert(record) if record.is_active => ProductDocument::of(&record),
                IndexChange::Upsert(record) => {
                    remove(sort_id(&record.uuid), maybe_indexed);
                    continue;
                }
                IndexChange::UpsertDocument(document) => document,
                IndexChange::Remove { uuid } => {
                    remove(sort_id(&uuid), maybe_indexed);
                    continue;
                }
            };
            let id = sort_id(document.uuid());
            remove(id, maybe_indexed);
            writer.add_document(document.to_tantivy(&self.fields)?)?;
            maybe_indexed.insert(id);
        }
        Ok(())
    }

    /// Replaces the whole content of the index with the records given to the
    /// returned builder. Nothing changes for searches until
    /// [`BulkBuild::finish`]; dropping the builder without finishing discards it.
    /// Holds the writer: `apply` calls wait until the build ends.
    pub fn bulk_build(&self) -> Result<BulkBuild<'_>, IndexError> {
        let mut slot = self.lock_writer()?;
        writer_in(&mut slot)?.delete_all_documents()?;
        Ok(BulkBuild { index: self, slot: Some(slot), seen: HashSet::new(), added: 0 })
    }

    /// Like [`SearchIndex::begin_batch`], but gives up (`None`) if the
    /// writer stays busy (another batch, a rebuild) for `patience`.
    pub fn try_begin_batch(&self, patience: Duration) -> Result<Option<IndexBatch<'_>>, IndexError> {
        let deadline = Instant::now() + patience;
        let mut slot = loop {
            match self.writer.try_lock() {
                Ok(slot) => break slot,
                Err(std::sync::TryLockError::Poisoned(poisoned)) => break poisoned.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(std::sync::TryLockError::WouldBlock) => return Ok(None),
            }
        };
        self.ensure_writer(&mut slot)?;
        writer_in(&mut slot)?;
        Ok(Some(IndexBatch { index: self, slot: Some(slot) }))
    }

    fn lock_writer(&self) -> Result<WriterSlot<'_>, IndexError> {
        // A panic while holding the lock leaves nothing half-committed (the
        // next commit or rollback settles it), so a poisoned lock is usable.
        let mut slot = self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.ensure_writer(&mut slot)?;
        Ok(slot)
    }

    /// Reopens the writer if an earlier failure dropped it.
    fn ensure_writer(&self, slot: &mut WriterSlot<'_>) -> Result<(), IndexError> {
        if slot.writer.is_none() {
            slot.writer = Some(open_writer(&self.index, self.dir.as_deref(), self.writer_config)?);
        }
        Ok(())
    }

    fn publish(&self, new_seq: i64) -> Result<(), IndexError> {
        self.reader.reload()?;
        self.applied_seq.store(new_seq, Ordering::Release);
        Ok(())
    }

    /// Runs one page of a search.
    pub fn search(&self, query: &SearchQuery) -> Result<SearchPage, IndexError> {
        self.search_with_cancellation(query, &Cancellation::new())
    }

    /// Runs one page of a search, stopping early with [`IndexError::Cancelled`]
    /// once `cancellation` is cancelled (its waiter gave up).
    pub fn search_with_cancellation(
        &self,
        query: &SearchQuery,
        cancellation: &Cancellation,
    ) -> Result<SearchPage, IndexError> {
        query.validate()?;
        if query.catalogs.is_empty() {
            return Ok(SearchPage { hits: Vec::new(), next: None });
        }
        let compiled = compile(&self.fields, query);
        let searcher = self.reader.searcher();
        let keep = query.limit + 1;
        let (addresses, positions) = match &compiled {
            CompiledQuery::Ranked(plan) => {
                let after = match &query.after {
                    None => None,
                    Some(SortPosition { key: SortKey::Rank(rank), id }) => Some(RankedKey::new(*rank, *id)),
                    Some(_) => return Err(IndexError::CursorMismatch),
                };
                let collector = RankedCollector {
                    after,
                    keep,
                    title: self.fields.title,
                    caches: self.segment_caches.clone(),
                    cancellation: cancellation.clone(),
                };
                let hits = ranked_hits(&searcher, plan, &collector)?;
                hits.into_iter()
                    .map(|hit| (hit.address, SortPosition { key: SortKey::Rank(hit.key.rank()), id: hit.key.id }))
                    .unzip()
            }
            CompiledQuery::Browse(plan) => {
                let after = match &query.after {
                    None => None,
                    Some(SortPosition { key: SortKey::Title(title), id }) => Some((title.clone(), *id)),
                    Some(_) => return Err(IndexError::CursorMismatch),
                };
                let collector = BrowseCollector { after, keep, cancellation: cancellation.clone() };
                let hits = browse_hits(&searcher, &self.segment_caches, plan, &collector)?;
                hits.into_iter()
                    .map(|hit| (hit.address, SortPosition { key: SortKey::Title(hit.title), id: hit.id }))
                    .unzip()
            }
        };
        if cancellation.is_cancelled() {
            return Err(IndexError::Cancelled);
        }
        self.page(&searcher, addresses, positions, query.limit)
    }

    /// Loads the summaries of the first `limit` hits; a `limit + 1`-th hit means there is a next page.
    fn page(
        &self,
        searcher: &Searcher,
        mut addresses: Vec<DocAddress>,
        mut positions: Vec<SortPosition>,
        limit: usize,
    ) -> Result<SearchPage, IndexError> {
        let has_more = addresses.len() > limit;
        addresses.truncate(limit);
        positions.truncate(limit);
        let hits = addresses.iter().map(|address| self.summary(searcher, *address)).collect::<Result<_, _>>()?;
        let next = if has_more { positions.pop() } else { None };
        Ok(SearchPage { hits, next })
    }

    fn summary(&self, searcher: &Searcher, address: DocAddress) -> Result<ProductSummary, IndexError> {
        let doc: TantivyDocument = searcher.doc(address)?;
        let bytes = doc
            .get_first(self.fields.summary)
            .and_then(|value| value.as_bytes())
            .ok_or_else(|| IndexError::Corrupt("a document has no stored summary".into()))?;
        summary_codec::decode(bytes)
    }

    /// Searchable (committed, not deleted) products.
    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Bytes on disk (every file in the index directory), or the in-memory
    /// size of the searchable segments for an in-RAM index.
    pub fn size_on_disk(&self) -> u64 {
        match &self.dir {
            Some(dir) => directory_size(dir),
            None => self.reader.searcher().space_usage().map(|usage| usage.total().get_bytes()).unwrap_or(0),
        }
    }

    /// Waits for background segment merges to finish (benchmarks measuring
    /// the settled size, graceful shutdown); never needed for correctness.
    pub fn wait_for_merges(&self) -> Result<(), IndexError> {
        let mut slot = self.lock_writer()?;
        if let Some(writer) = slot.writer.take() {
            // Consumes the writer; `lock_writer` opens a new one on next use.
            writer.wait_merging_threads()?;
        }
        drop(slot);
        self.reader.reload()?;
        Ok(())
    }
}

/// Changes being applied under one commit; see [`SearchIndex::begin_batch`].
pub struct IndexBatch<'a> {
    index: &'a SearchIndex,
    /// `None` once committed or failed.
    slot: Option<WriterSlot<'a>>,
}

impl IndexBatch<'_> {
    /// Applies `changes` in order (each replaces whatever the index had for
    /// that uuid). Not visible to searches before `commit`. On error the whole
    /// batch is discarded and the batch cannot be used any more.
    pub fn add(&mut self, changes: Vec<IndexChange>) -> Result<(), IndexError> {
        let Some(slot) = self.slot.as_mut() else {
            return Err(IndexError::InvalidQuery("the batch has already ended".into()));
        };
        let state = &mut **slot;
        let writer =
            state.writer.as_mut().ok_or_else(|| IndexError::Corrupt("the index writer is unavailable".into()))?;
        let result = self.index.write_changes(writer, &mut state.maybe_indexed, changes);
        if result.is_err() {
            // Drop the half-written batch so a later commit cannot publish it.
            let _ = writer.rollback();
            self.slot = None;
        }
        result
    }

    /// Commits everything added with `up_to_seq` as the new high-water mark
    /// (it never goes down), in the same tantivy commit as the documents, and
    /// makes it searchable.
    pub fn commit(self, up_to_seq: i64) -> Result<(), IndexError> {
        self.flush_then_commit(up_to_seq, || true).map(|_| ())
    }

    /// Like `commit`, but writes the batch's segments first (the slow part
    /// of a large commit) and only then asks `confirm` whether to make them
    /// searchable: a caller can flush the index while something else (the
    /// store's commit) decides. Returns whether it committed; if not, the
    /// batch is discarded.
    pub fn flush_then_commit(mut self, up_to_seq: i64, confirm: impl FnOnce() -> bool) -> Result<bool, IndexError> {
        let Some(mut slot) = self.slot.take() else {
            return Err(IndexError::InvalidQuery("the batch has already ended".into()));
        };
        let writer = writer_in(&mut slot)?;
        let new_seq = up_to_seq.max(self.index.applied_seq());
        match commit_with_seq(writer, new_seq, confirm) {
            Ok(true) => {}
            Ok(false) => return Ok(false),
            Err(error) => {
                // Drop the half-written batch so a later commit cannot publish it.
                let _ = writer.rollback();
                return Err(error);
            }
        }
        // Published while the writer is still held, so the high-water mark follows commit order.
        self.index.publish(new_seq)?;
        Ok(true)
    }
}

impl Drop for IndexBatch<'_> {
    fn drop(&mut self) {
        if let Some(writer) = self.slot.as_mut().and_then(|slot| slot.writer.as_mut()) {
            let _ = writer.rollback();
        }
    }
}

/// A full rebuild in progress; see [`SearchIndex::bulk_build`].
pub struct BulkBuild<'a> {
    index: &'a SearchIndex,
    /// `None` once finished.
    slot: Option<WriterSlot<'a>>,
    /// Sort ids added so far: a duplicate uuid needs a delete first, a new one does not.
    seen: HashSet<u128>,
    added: u64,
}

impl BulkBuild<'_> {
    /// Adds one product; inactive records are skipped. A uuid given twice keeps the last record.
    pub fn add(&mut self, record: &ProductRecord) -> Result<(), IndexError> {
        let Some(slot) = self.slot.as_mut() else {
            return Err(IndexError::InvalidQuery("the bulk build has already finished".into()));
        };
        let writer = writer_in(slot)?;
        if !record.is_active {
            return Ok(());
        }
        let id = sort_id(&record.uuid);
        if !self.seen.insert(id) {
            writer.delete_term(id_term(&self.index.fields, id));
            self.added -= 1;
        }
        writer.add_document(ProductDocument::of(record).to_tantivy(&self.index.fields)?)?;
        self.added += 1;
        Ok(())
    }

    /// Commits everything at once with `applied_seq = seq` (the store sequence
    /// the records were read at) and makes it searchable. Returns the number of products indexed.
    pub fn finish(mut self, seq: i64) -> Result<u64, IndexError> {
        let Some(mut slot) = self.slot.take() else {
            return Err(IndexError::InvalidQuery("the bulk build has already finished".into()));
        };
        let writer = writer_in(&mut slot)?;
        if let Err(error) = commit_with_seq(writer, seq, || true) {
            let _ = writer.rollback();
            return Err(error);
        }
        slot.maybe_indexed = std::mem::take(&mut self.seen);
        drop(slot);
        self.index.publish(seq)?;
        Ok(self.added)
    }
}

impl Drop for BulkBuild<'_> {
    fn drop(&mut self) {
        if let Some(writer) = self.slot.as_mut().and_then(|slot| slot.writer.as_mut()) {
            let _ = writer.rollback();
        }
    }
}

/// The best `keep` hits after the cursor, running the tiers of the plan
/// (highest ranks first) only as far as needed to fill the page:
/// 1. all words in name fields — these outrank everything else, so `keep`
///    of them after the cursor are the answer;
/// 2. any word in name fields (includes tier 1 with the same ranks);
/// 3. description-only matches, which rank below every product of tier 2,
///    so they simply follow tier 2's hits.
///
/// A tier whose ranks all lie before the cursor is skipped.
/// A cancelled search stops between tiers too (its collector already stopped the tier).
fn ranked_hits(
    searcher: &Searcher,
    plan: &RankedPlan,
    collector: &RankedCollector,
) -> Result<Vec<RankedHit>, IndexError> {
    let (after, keep) = (collector.after, collector.keep);
    let cancelled = || collector.cancellation.is_cancelled();
    let cursor_coverage = after.map(|after| name_coverage_of_rank(after.rank()));
    if let Some(all_names) = &plan.all_names {
        if cursor_coverage.is_none_or(|coverage| coverage >= plan.words) {
            let hits = searcher.search(all_names, collector)?;
            if hits.len() >= keep || cancelled() {
                return Ok(hits);
            }
        }
    }
    let cursor_in_name_tier = after.is_none_or(|after| after.rank() >= NAME_MATCH_MIN_RANK);
    let (mut hits, description_after) =
        if cursor_in_name_tier { (searcher.search(&plan.any_name, collector)?, None) } else { (Vec::new(), after) };
    if hits.len() >= keep || cancelled() {
        return Ok(hits);
    }
    if let Some(description_only) = &plan.description_only {
        let rest = RankedCollector {
            after: description_after,
            keep: keep - hits.len(),
            title: collector.title,
            caches: collector.caches.clone(),
            cancellation: collector.cancellation.clone(),
        };
        hits.extend(searcher.search(description_only, &rest)?);
    }
    Ok(hits)
}

fn id_term(fields: &Fields, id: u128) -> Term {
    Term::from_field_bytes(fields.id, &id.to_be_bytes())
}

/// How long `open_writer` keeps trying a busy lock before reporting it.
const WRITER_LOCK_PATIENCE: Duration = Duration::from_secs(3);

/// Opens the index's single writer. Tantivy's writer lock is an `flock` on a
/// file, and a child process forked by any thread of this process holds a
/// copy of that descriptor until it execs; so a lock released just now can
/// still look busy for a moment. A short, bounded retry tells that apart from
/// a real second writer (another server on the same data directory).
fn open_writer(index: &Index, dir: Option<&Path>, config: WriterConfig) -> Result<IndexWriter, IndexError> {
    let deadline = Instant::now() + WRITER_LOCK_PATIENCE;
    loop {
        match index.writer_with_num_threads(config.threads.max(1), config.memory_budget_bytes) {
            Ok(writer) => return Ok(writer),
            Err(TantivyError::LockFailure(..)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(TantivyError::LockFailure(..)) => {
                return Err(IndexError::Locked(dir.map(Path::to_path_buf).unwrap_or_default()))
            }
            Err(other) => return Err(IndexError::Tantivy(other)),
        }
    }
}

/// Flushes everything added (tantivy's `prepare_commit`), then commits it with
/// `applied_seq` in the payload if `confirm` says so, or rolls it back.
fn commit_with_seq(
    writer: &mut IndexWriter,
    applied_seq: i64,
    confirm: impl FnOnce() -> bool,
) -> Result<bool, IndexError> {
    let payload =
        CommitPayload { format: FORMAT_VERSION, summary_shape: summary_codec::shape_fingerprint(), applied_seq };
    let payload = serde_json::to_string(&payload).map_err(|error| IndexError::corrupt("payload", error))?;
    let mut prepared = writer.prepare_commit()?;
    if !confirm() {
        prepared.abort()?;
        return Ok(false);
    }
    prepared.set_payload(&payload);
    prepared.commit()?;
    Ok(true)
}

/// The applied sequence from the last commit, after checking that the index
/// was written by this version of the crate.
fn check_payload(index: &Index) -> Result<i64, IndexError> {
    let metas = index.load_metas().map_err(|error| IndexError::corrupt("cannot read meta.json", error))?;
    let Some(payload) = metas.payload else {
        return Err(IndexError::Corrupt("the index has no octogen commit payload".into()));
    };
    let payload: CommitPayload =
        serde_json::from_str(&payload).map_err(|error| IndexError::corrupt("unreadable commit payload", error))?;
    if payload.format != FORMAT_VERSION {
        return Err(IndexError::Corrupt(format!(
            "index format {} but this build uses {FORMAT_VERSION}",
            payload.format
        )));
    }
    if payload.summary_shape != summary_codec::shape_fingerprint() {
        return Err(IndexError::Corrupt("the stored product summaries have an older shape".into()));
    }
    Ok(payload.applied_seq)
}

fn is_empty_or_ours(dir: &Path) -> Result<bool, IndexError> {
    let mut entries = fs::read_dir(dir)?;
    Ok(entries.next().is_none() || dir.join(MARKER_FILE).exists())
}

/// Removes an index directory's content, but only if it is recognisably an index.
fn wipe(dir: &Path) -> Result<(), IndexError> {
    if !(dir.join(MARKER_FILE).exists() || dir.join("meta.json").exists()) {
        return Err(IndexError::NotAnIndex(dir.to_path_buf()));
    }
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            fs::remove_dir_all(&path)?;
        } else {
            fs::remove_file(&path)?;
        }
    }
    Ok(())
}

fn directory_size(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.metadata().ok())
        .filter(|metadata| metadata.is_file())
        .map(|metadata| metadata.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use crate::FacetFilter;
    use octogen_core::facets::FacetKey;
    use octogen_core::product::{Brand, Product};
    use octogen_core::Timestamp;
    use tantivy::collector::Collector;
    use tantivy::{SegmentOrdinal, SegmentReader};

    use super::*;
    use crate::collect::RankedSegmentCollector;

    /// A word's `BestMatchQuery` finds the same documents with the same
    /// scores as tantivy's `DisjunctionMaxQuery` over the same alternatives,
    /// whether walked or sought.
    #[test]
    fn best_match_scores_exactly_like_disjunction_max() {
        use tantivy::query::{DisjunctionMaxQuery, EnableScoring, Query};
        use tantivy::TERMINATED;

        use crate::best_match::BestMatchQuery;
        use crate::query::{query_words, word_alternatives};

        let index = random_corpus(5);
        let searcher = index.reader.searcher();
        let scoring = EnableScoring::enabled_from_searcher(&searcher);
        for text in ["oak", "tabl", "chiar", "velvet sofa", "home", "blankets"] {
            for word in query_words(text) {
                let (alternatives, _) = word_alternatives(&index.fields, &word);
                let ours = BestMatchQuery::new(alternatives.iter().map(|query| query.box_clone()).collect());
                let reference = DisjunctionMaxQuery::new(alternatives);
                for segment in searcher.segment_readers() {
                    let walk = |query: &dyn Query| {
                        let mut scorer = query.weight(scoring).unwrap().scorer(segment, 1.0).unwrap();
                        let mut hits = Vec::new();
                        while scorer.doc() != TERMINATED {
                            hits.push((scorer.doc(), scorer.score()));
                            scorer.advance();
                        }
                        hits
                    };
                    let seek = |query: &dyn Query| {
                        let mut scorer = query.weight(scoring).unwrap().scorer(segment, 1.0).unwrap();
                        let mut hits = Vec::new();
                        for target in (1..segment.max_doc()).step_by(37) {
                            if scorer.doc() < target && scorer.seek(target) != TERMINATED {
                                hits.push((target, scorer.doc(), scorer.score()));
                            }
                        }
                        hits
                    };
                    assert_eq!(walk(&ours), walk(&reference), "{text:?} walked");
                    assert!(!walk(&ours).is_empty() || text == "chiar", "{text:?} matches something");
                    assert_eq!(seek(&ours), seek(&reference), "{text:?} sought");
                }
            }
        }
    }

    /// Each segment's cache holds its ids' first bytes and a permutation of
    /// its documents in (title, id) order.
    #[test]
    fn segment_caches_match_the_columns() {
        let index = random_corpus(3);
        let searcher = index.reader.searcher();
        for segment in searcher.segment_readers() {
            let cache = index.segment_caches.get(segment.segment_id()).expect("warmed");
            let keys = crate::collect::BrowseKeys::open(segment).expect("keys");
            let first_bytes: Vec<u8> = (0..segment.max_doc()).map(|doc| (keys.id(doc) >> 120) as u8).collect();
            assert_eq!(&*cache.id_first_byte, &first_bytes[..]);
            let mut order = cache.browse_order.to_vec();
            let walked: Vec<(u64, u128)> = order.iter().map(|&doc| (keys.ord(doc), keys.id(doc))).collect();
            assert!(walked.windows(2).all(|pair| pair[0] < pair[1]), "strictly increasing (title, id)");
            order.sort_unstable();
            assert_eq!(order, (0..segment.max_doc()).collect::<Vec<_>>());
        }
    }

    /// Walking segments in browse order (`browse`) must give exactly what
    /// collecting every match in document order gives, for every kind of
    /// filter (dense, sparse, price bounds on either side, exclusions),
    /// page after page, with deleted products skipped.
    #[test]
    fn browse_walks_return_exactly_the_collected_hits() {
        let index = random_corpus(11);
        let deleted = (0..1600u64).step_by(13).map(|n| IndexChange::Remove { uuid: corpus_uuid(n) });
        index.apply(deleted.collect(), 5).expect("delete");
        let searcher = index.reader.searcher();
        assert!(searcher
            .segment_readers()
            .iter()
            .all(|segment| index.segment_caches.get(segment.segment_id()).is_some()));
        let all = SearchQuery::browse(["a", "b", "c"]);
        let brand = |names: &[&str]| vec![FacetFilter::new(FacetKey::RawBrandName, names.iter().copied())];
        let queries = [
            all.clone(),
            SearchQuery::browse(["b"]),
            SearchQuery { price_min: Some(20.0), ..all.clone() },
            SearchQuery { price_max: Some(35.5), ..all.clone() },
            SearchQuery { price_min: Some(10.0), price_max: Some(10.0), ..all.clone() },
            SearchQuery {
                price_min: Some(40.0),
                price_max: Some(60.0),
                facets: brand(&["acme", "zen"]),
                ..all.clone()
            },
            SearchQuery { facets: brand(&["rare"]), ..all.clone() },
            SearchQuery { exclude_facets: brand(&["nord"]), catalogs: vec!["a".into(), "c".into()], ..all.clone() },
        ];
        for query in queries {
            let CompiledQuery::Browse(plan) = compile(&index.fields, &query) else { panic!("browse") };
            for keep in [1, 5, 21] {
                let mut after = None;
                for _page in 0..4 {
                    let collector = BrowseCollector { after: after.clone(), keep, cancellation: Cancellation::new() };
                    let walked = browse_hits(&searcher, &index.segment_caches, &plan, &collector).expect("walk");
                    let collected = searcher.search(&plan.filter, &collector).expect("collect");
                    assert_eq!(walked, collected, "{query:?} keep={keep} after={after:?}");
                    after = walked.last().map(|hit| (hit.title.clone(), hit.id));
                }
            }
        }
    }

    /// The ranked collector without pruning: every match is scored and offered.
    struct Unpruned(RankedCollector);

    impl Collector for Unpruned {
        type Fruit = Vec<RankedHit>;
        type Child = RankedSegmentCollector;

        fn for_segment(&self, ord: SegmentOrdinal, segment: &SegmentReader) -> tantivy::Result<Self::Child> {
            self.0.for_segment(ord, segment)
        }

        fn requires_scoring(&self) -> bool {
            true
        }

        fn merge_fruits(&self, fruits: Vec<Vec<RankedHit>>) -> tantivy::Result<Vec<RankedHit>> {
            self.0.merge_fruits(fruits)
        }
    }

    const VOCABULARY: [&str; 12] =
        ["oak", "table", "chair", "blanket", "wool", "lamp", "soft", "round", "velvet", "sofa", "desk", "home"];

    /// Product `n`'s uuid, spread over the whole id space (ties are broken by id).
    fn corpus_uuid(n: u64) -> String {
        uuid::Uuid::from_u128((u128::from(n) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)).to_string()
    }

    fn random_corpus(seed: u64) -> SearchIndex {
        let index = SearchIndex::in_ram();
        let mut state = seed;
        let mut next = move |n: u64| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) % n
        };
        for batch in 0..4u64 {
            let mut changes = Vec::new();
            for i in 0..400u64 {
                let n = batch * 400 + i;
                let words = |next: &mut dyn FnMut(u64) -> u64, count: u64| {
                    (0..count).map(|_| VOCABULARY[next(12) as usize]).collect::<Vec<_>>().join(" ")
                };
                let (title_words, tag_words, description_words) = (1 + next(4), next(3), next(6));
                let mut product = Product { title: words(&mut next, title_words), ..Product::default() };
                product.tags = vec![words(&mut next, tag_words)];
                product.description = Some(words(&mut next, description_words));
                // Every product says "home" somewhere in its name fields: a word matching everything.
                product.product_type = Some("home".into());
                // Brands for facets ("rare" on ~1 % of products) and prices, some missing, for browse filters.
                let brand = if n % 97 == 0 { "rare" } else { ["acme", "zen", "nord"][next(3) as usize] };
                product.brand = Some(Brand { name: brand.into(), slug: None, url: None, description: None });
                product.current_price = (n % 7 != 0).then(|| (next(10_000) as f64) / 100.0);
                changes.push(IndexChange::Upsert(ProductRecord {
                    uuid: corpus_uuid(n),
                    catalog_key: ["a", "b", "c"][next(3) as usize].into(),
                    is_active: true,
                    updated_at: Timestamp::from_millis(0),
                    normalized_url: format!("https://x.example/{n}"),
                    product,
                }));
            }
            index.apply(changes, batch as i64 + 1).expect("apply");
        }
        index
    }

    /// A cancelled search stops its collectors — a cancelled collector takes
    /// nothing from a tier that matches every product — and reports `Cancelled`.
    #[test]
    fn a_cancelled_search_stops_collecting() {
        let index = random_corpus(11);
        let cancelled = Cancellation::new();
        cancelled.cancel();
        for text in [Some("home oak"), None] {
            let query = SearchQuery { text: text.map(str::to_string), ..SearchQuery::browse(["a", "b", "c"]) };
            assert!(matches!(index.search_with_cancellation(&query, &cancelled), Err(IndexError::Cancelled)));
            assert_eq!(index.search(&query).expect("search").hits.len(), 50, "{text:?}");
        }
        let CompiledQuery::Ranked(plan) = compile(&index.fields, &SearchQuery::text(["a", "b", "c"], "home")) else {
            panic!("a text query is ranked")
        };
        let collector = |cancellation| RankedCollector {
            after: None,
            keep: 10,
            title: index.fields.title,
            caches: index.segment_caches.clone(),
            cancellation,
        };
        let searcher = index.reader.searcher();
        assert_eq!(searcher.search(&plan.any_name, &collector(Cancellation::new())).expect("search").len(), 10);
        assert!(searcher.search(&plan.any_name, &collector(cancelled)).expect("search").is_empty());
    }

    /// Products that tie on the rank and share their ids' first byte (the
    /// cached byte cannot decide) page exactly as the plain collector does.
    #[test]
    fn rank_ties_sharing_the_ids_first_byte_are_ordered_by_the_whole_id() {
        let index = SearchIndex::in_ram();
        let changes = (0..300u128)
            .map(|n| {
                let id = ((n % 3) << 120) | n.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835) >> 8;
                IndexChange::Upsert(ProductRecord {
                    uuid: uuid::Uuid::from_u128(id).to_string(),
                    catalog_key: "a".into(),
                    is_active: true,
                    updated_at: Timestamp::from_millis(0),
                    normalized_url: format!("https://x.example/{n}"),
                    product: Product { title: "oak table".into(), ..Product::default() },
                })
            })
            .collect();
        index.apply(changes, 1).expect("apply");
        let searcher = index.reader.searcher();
        let CompiledQuery::Ranked(plan) = compile(&index.fields, &SearchQuery::text(["a"], "oak")) else {
            panic!("ranked")
        };
        for keep in [1, 7, 40] {
            let mut after = None;
            for _page in 0..4 {
                let collector = |caches| RankedCollector {
                    after,
                    keep,
                    title: index.fields.title,
                    caches,
                    cancellation: Cancellation::new(),
                };
                let hits = searcher.search(&plan.any_name, &collector(index.segment_caches.clone())).expect("search");
                let plain = Unpruned(collector(Arc::new(SegmentCaches::default())));
                assert_eq!(hits, searcher.search(&plan.any_name, &plain).expect("search"), "keep={keep}");
                after = hits.last().map(|hit| hit.key);
            }
        }
    }

    /// Pruning must never change the hits: compare against the unpruned collector
    /// for every tier, with and without filters and cursors.
    #[test]
    fn max_score_pruning_returns_exactly_the_unpruned_hits() {
        let index = random_corpus(7);
        let searcher = index.reader.searcher();
        let texts =
            ["home oak table", "home", "wool blanket home soft", "oak", "velvet sofa chair desk lamp", "home round"];
        for text in texts {
            for catalogs in [vec!["a", "b", "c"], vec!["b"]] {
                for keep in [1, 5, 21, 101] {
                    let query = SearchQuery::text(catalogs.clone(), text);
                    let CompiledQuery::Ranked(plan) = compile(&index.fields, &query) else { panic!("ranked") };
                    let tiers = [Some(&plan.any_name), plan.all_names.as_ref(), plan.description_only.as_ref()];
                    for tier in tiers.into_iter().flatten() {
                        let mut after = None;
                        for _page in 0..3 {
                            let collector = |caches| RankedCollector {
                                after,
                                keep,
                                title: index.fields.title,
                                caches,
                                cancellation: Cancellation::new(),
                            };
                            let pruned =
                                searcher.search(tier, &collector(index.segment_caches.clone())).expect("search");
                            // No pruning and no cached id bytes: every match is scored and compared in full.
                            let plain = Unpruned(collector(Arc::new(SegmentCaches::default())));
                            let reference = searcher.search(tier, &plain).expect("search");
                            assert_eq!(pruned, reference, "{text:?} {catalogs:?} keep={keep} after={after:?}");
                            after = pruned.last().map(|hit| hit.key);
                        }
                    }
                }
            }
        }
    }
}

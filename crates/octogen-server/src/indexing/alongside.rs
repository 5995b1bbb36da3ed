//! The publishing node indexes a run while the publish writes it.
//!
//! Otherwise every node, this one included, learns of a run from the change
//! feed once it has committed, and reads it all back from the store: at 1M
//! products that catch-up took longer than the publish (BENCHMARKS.md §5),
//! and it had to wait for it. The publish is one SQLite writer on one core;
//! indexing its products on the other core as they are written costs the
//! run almost nothing.
//!
//! It must leave the index exactly as the follower would have. The publish
//! holds change sequence value `seq` from its start, and every smaller value
//! has committed by then, so the index batch first takes the changes this
//! index has not applied yet (the follower may lag), then the products the
//! publish wrote and the ones it deactivated, in that order, and commits at
//! `seq` only once the store has committed. Anything else (the writer busy
//! with a rebuild, a failed publish, an index error) drops the batch
//! unapplied, and the follower indexes the run from the change feed as before.
//! Other nodes always do.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use octogen_core::Timestamp;
use octogen_search::{IndexChange, ProductDocument, SearchIndex};
use octogen_store::{ChangeCursor, StagedProduct, StagedProducts, Store};
use tokio::sync::{mpsc, oneshot};

use super::follower::PAGE;
use super::staging::StagingReader;

/// How long the publish waits for the index writer before leaving the run to the follower.
const WRITER_PATIENCE: Duration = Duration::from_secs(1);

/// Closed while a publish indexes its run alongside. Between the store's
/// commit and the index batch's, the follower would otherwise read the run
/// back from the change feed (pages of 20,000 products, decoded) only to drop
/// it once the batch commits: 3 s of both cores at the end of a 1M-product
/// import. It can apply nothing meanwhile anyway: the applier holds the writer.
#[derive(Debug, Default, Clone)]
pub(super) struct Gate(Arc<tokio::sync::Mutex<()>>);

impl Gate {
    /// Returns once no publish is indexing alongside.
    pub async fn wait_open(&self) {
        drop(self.0.lock().await);
    }

    async fn close(&self) -> tokio::sync::OwnedMutexGuard<()> {
        self.0.clone().lock_owned().await
    }
}

/// A run's staged products on their way into a publish, indexed as it writes them.
pub(super) struct PublishFeed {
    staged: StagingReader,
    /// The search documents of the batch the publish is writing, by uuid.
    documents: HashMap<String, Vec<u8>>,
    index: Arc<SearchIndex>,
    store: Arc<dyn Store>,
    applier: Option<Applier>,
    gate: Gate,
    /// Held from the applier's start to its end.
    closed: Option<tokio::sync::OwnedMutexGuard<()>>,
    /// How long the publish waited for the applier to take products (debug log).
    waited: Duration,
}

/// The blocking thread that holds the index batch.
struct Applier {
    messages: mpsc::Sender<Message>,
    outcome: tokio::task::JoinHandle<anyhow::Result<bool>>,
}

enum Message {
    Changes(Vec<IndexChange>),
    /// The encoded search documents of products the publish wrote.
    Wrote(Vec<Vec<u8>>),
    /// The publish wrote everything and is committing: flush the batch's
    /// segments meanwhile (at 1M products, seconds of the index commit).
    Flush,
    /// The store committed the publish: make the flushed batch searchable.
    Commit,
}

impl PublishFeed {
    pub fn new(staged: StagingReader, index: Arc<SearchIndex>, store: Arc<dyn Store>, gate: Gate) -> Self {
        PublishFeed {
            staged,
            documents: HashMap::new(),
            index,
            store,
            applier: None,
            gate,
            closed: None,
            waited: Duration::ZERO,
        }
    }

    /// After the store committed the publish: makes the index batch
    /// searchable (at the publish's seq). Returns whether the run was indexed
    /// this way (if not, the follower indexes it from the change feed).
    pub async fn commit(mut self) -> bool {
        let Some(applier) = self.applier.take() else { return false };
        tracing::debug!(
            waited_for_the_index_ms = self.waited.as_millis() as u64,
            "the publish is committed; committing its index batch"
        );
        // If the applier already ended, its outcome says why.
        let _ = applier.messages.send(Message::Commit).await;
        match applier.outcome.await {
            Ok(Ok(committed)) => committed,
            Ok(Err(error)) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "indexing a run alongside its publish failed; the follower will index it"
                );
                false
            }
            Err(error) => {
                tracing::warn!(%error, "the index applier crashed; the follower will index the run");
                false
            }
        }
    }

    /// Sends to the applier; on failure stops indexing alongside (the follower takes over).
    async fn send(&mut self, message: Message) {
        let Some(applier) = &self.applier else { return };
        let sending = std::time::Instant::now();
        let sent = applier.messages.send(message).await;
        self.waited += sending.elapsed();
        if sent.is_err() {
            // The applier ended early; `commit` reports why.
            tracing::debug!("the index applier stopped during the publish");
        }
    }

    /// Starts the applier and gives it this index's backlog (changes before the publish).
    async fn start(&mut self, seq: i64, updated_at: Timestamp) -> anyhow::Result<()> {
        let (started, applied) = oneshot::channel();
        let (messages, received) = mpsc::channel(4);
        let index = self.index.clone();
        let outcome = tokio::task::spawn_blocking(move || apply(&index, seq, updated_at, started, received));
        let applied = match applied.await {
            Ok(Some(applied)) => applied,
            Ok(None) => {
                tracing::info!("the index writer is busy; the follower will index this run after its publish");
                return Ok(());
            }
            // The applier failed before it could start (opening the writer).
            Err(_) => return Err(outcome.await?.err().unwrap_or_else(|| anyhow::anyhow!("the index applier stopped"))),
        };
        self.applier = Some(Applier { messages, outcome });
        self.closed = Some(self.gate.close().await);
        let mut cursor = ChangeCursor::after_seq(applied);
        loop {
            let page = self.store.product_changes(&cursor, PAGE).await?;
            let Some(last) = page.last() else { break };
            debug_assert!(last.seq < seq, "a change after the publishing one");
            cursor = last.cursor();
            let changes = page.into_iter().map(|change| IndexChange::Upsert(change.record)).collect();
            self.send(Message::Changes(changes)).await;
        }
        Ok(())
    }
}

#[async_trait]
impl StagedProducts for PublishFeed {
    async fn next_batch(&mut self) -> Result<Option<Vec<StagedProduct>>, String> {
        let Some(batch) = self.staged.next_batch().await? else { return Ok(None) };
        self.documents.clear();
        let mut products = Vec::with_capacity(batch.len());
        for staged in batch {
            // A product staged twice is written as first staged (the publish skips repeats).
            if self.applier.is_some() {
                self.documents.entry(staged.product.uuid.clone()).or_insert(staged.document);
            }
            products.push(staged.product);
        }
        Ok(Some(products))
    }

    async fn began(&mut self, seq: i64, updated_at: Timestamp) {
        if let Err(error) = self.start(seq, updated_at).await {
            tracing::warn!(
                error = format!("{error:#}"),
                "cannot index the run alongside its publish; the follower will"
            );
            self.applier = None;
        }
    }

    async fn wrote(&mut self, uuids: Vec<String>) {
        if self.applier.is_none() {
            return;
        }
        let documents: Vec<Vec<u8>> = uuids.iter().filter_map(|uuid| self.documents.remove(uuid)).collect();
        if documents.len() < uuids.len() {
            // Cannot happen (the publish writes from the batch it was given); if it
            // did, the index must not miss a product: the follower takes the run.
            tracing::warn!("a written product has no staged search document; the follower will index the run");
            self.applier = None;
            return;
        }
        self.send(Message::Wrote(documents)).await;
    }

    async fn deactivated(&mut self, uuids: Vec<String>) {
        let removals = uuids.into_iter().map(|uuid| IndexChange::Remove { uuid }).collect();
        self.send(Message::Changes(removals)).await;
    }

    async fn committing(&mut self) {
        self.send(Message::Flush).await;
    }
}

/// The applier thread: holds an index batch from the publish's start to its
/// end; returns whether it committed. Its first word, through `started`, is
/// the sequence value the index had applied (`None`: the writer stayed busy).
fn apply(
    index: &SearchIndex,
    seq: i64,
    updated_at: Timestamp,
    started: oneshot::Sender<Option<i64>>,
    mut messages: mpsc::Receiver<Message>,
) -> anyhow::Result<bool> {
    let Some(mut batch) = index.try_begin_batch(WRITER_PATIENCE)? else {
        let _ = started.send(None);
        return Ok(false);
    };
    // Read while holding the writer: nothing else moves it before the commit.
    if started.send(Some(index.applied_seq())).is_err() {
        return Ok(false);
    }
    while let Some(message) = messages.blocking_recv() {
        match message {
            Message::Changes(changes) => batch.add(changes)?,
            Message::Wrote(documents) => {
                let mut changes = Vec::with_capacity(documents.len());
                for encoded in documents {
                    let mut document = ProductDocument::decode(&encoded)?;
                    document.set_updated_at(updated_at);
                    changes.push(IndexChange::UpsertDocument(document));
                }
                batch.add(changes)?;
            }
            Message::Flush => {
                // Searchable only if the store's commit succeeds; if the publish
                // fails, the feed is dropped, the channel closes, and the flushed
                // segments are rolled back.
                let store_committed = || matches!(messages.blocking_recv(), Some(Message::Commit));
                return Ok(batch.flush_then_commit(seq, store_committed)?);
            }
            Message::Commit => {
                batch.commit(seq)?;
                return Ok(true);
            }
        }
    }
    // The publish failed or gave up: dropping the batch discards it.
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use octogen_core::Product;
    use octogen_search::SearchQuery;
    use octogen_store::{
        AccessStore, IndexRun, NewCatalog, NewIndexRun, RunProgress, RunTrigger, SqlStore, StagedInMemory,
    };
    use serde_json::json;

    use crate::indexing::staging::{Staged, StagingWriter};

    fn staged(i: usize, title: &str) -> StagedProduct {
        let url = format!("https://shop.example/products/lamp-{i}");
        let product = Product { url: url.clone(), title: format!("{title} {i}"), ..Product::default() };
        // Any catalog id derives stable uuids; nothing here looks products up by URL.
        StagedProduct::new("catalog-id", url, &serde_json::to_vec(&product).unwrap())
    }

    /// A store with the catalog "shop", an empty index, and a directory for staging files.
    struct Fixture {
        dir: tempfile::TempDir,
        store: Arc<dyn Store>,
        index: Arc<SearchIndex>,
    }

    impl Fixture {
        async fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let store = SqlStore::open_sqlite(&dir.path().join("octogen.db")).await.unwrap();
            store
                .create_catalog(
                    NewCatalog { key: "shop".into(), display_name: "Shop".into(), source_base_url: None },
                    &[],
                )
                .await
                .unwrap();
            Fixture { dir, store: Arc::new(store), index: Arc::new(SearchIndex::in_ram()) }
        }

        /// A started run of "shop".
        async fn running(&self) -> String {
            let new = NewIndexRun {
                catalog_key: "shop".into(),
                trigger: RunTrigger::Operator,
                format: "shopify".into(),
                source: "feed.json".into(),
            };
            let run = self.store.create_index_run(new).await.unwrap();
            assert!(self.store.start_index_run(&run.id).await.unwrap());
            run.id
        }

        /// The products staged as a run stages them: each with its search document.
        fn staging_file(&self, products: &[StagedProduct]) -> std::path::PathBuf {
            let path = self.dir.path().join(format!("{}.staged", uuid::Uuid::new_v4()));
            let mut writer = StagingWriter::create(&path).unwrap();
            for product in products {
                let record = product.to_record("shop", Timestamp::from_millis(0)).unwrap();
                let document = ProductDocument::of(&record).encode().unwrap();
                writer.append(&Staged { product: product.clone(), document }).unwrap();
            }
            writer.finish().unwrap()
        }

        fn feed(&self, staging_file: std::path::PathBuf) -> PublishFeed {
            PublishFeed::new(StagingReader::open(staging_file), self.index.clone(), self.store.clone(), Gate::default())
        }

        async fn publish(&self, run: &str, staged: &mut dyn StagedProducts) -> octogen_store::StoreResult<IndexRun> {
            self.store.publish_index_run(run, staged, RunProgress::default(), json!({})).await
        }
    }

    fn everything(index: &SearchIndex) -> Vec<octogen_core::wire::ProductSummary> {
        let query = SearchQuery { catalogs: vec!["shop".into()], limit: 100, ..SearchQuery::default() };
        index.search(&query).unwrap().hits
    }

    /// The index the follower would build: every change of the feed, in order.
    async fn from_the_change_feed(store: &dyn Store) -> SearchIndex {
        let index = SearchIndex::in_ram();
        let changes = store.product_changes(&ChangeCursor::default(), 1_000).await.unwrap();
        let seq = store.latest_change_seq().await.unwrap();
        index.apply(changes.into_iter().map(|change| IndexChange::Upsert(change.record)).collect(), seq).unwrap();
        index
    }

    #[tokio::test]
    async fn the_index_takes_the_backlog_then_the_run_and_ends_as_the_follower_would_have_it() {
        let fixture = Fixture::new().await;
        // A first run the index has not applied yet (the follower lags): the backlog.
        let first: Vec<StagedProduct> = (0..6).map(|i| staged(i, "Lamp")).collect();
        let run = fixture.running().await;
        fixture.publish(&run, &mut StagedInMemory::new(first)).await.unwrap();
        assert_eq!(fixture.index.applied_seq(), 0);

        // The second run keeps 0-1, changes 2-3, drops 4-5 and adds 6-7.
        let second: Vec<StagedProduct> = (0..8)
            .filter(|i| !matches!(i, 4 | 5))
            .map(|i| staged(i, if (2..4).contains(&i) { "Desk lamp" } else { "Lamp" }))
            .collect();
        let run = fixture.running().await;
        let mut publishing = fixture.feed(fixture.staging_file(&second));
        let published = fixture.publish(&run, &mut publishing).await.unwrap();
        assert_eq!((published.counts.added, published.counts.updated, published.counts.deactivated), (2, 2, 2));
        assert_eq!(fixture.index.applied_seq(), 0, "nothing is searchable before the batch commits");
        assert_eq!(published.published_seq, Some(2));
        assert!(publishing.commit().await, "indexed alongside");
        assert_eq!(fixture.index.applied_seq(), 2);

        let indexed = everything(&fixture.index);
        let titles: Vec<&str> = indexed.iter().map(|hit| hit.title.as_str()).collect();
        assert_eq!(titles.len(), 6, "{titles:?}");
        assert!(titles.contains(&"Desk lamp 2") && !titles.contains(&"Lamp 4"), "{titles:?}");
        assert_eq!(indexed, everything(&from_the_change_feed(fixture.store.as_ref()).await));
    }

    #[tokio::test]
    async fn the_follower_is_held_from_the_writer_taken_to_the_batch_committed() {
        let fixture = Fixture::new().await;
        let run = fixture.running().await;
        let gate = Gate::default();
        let staged = StagingReader::open(fixture.staging_file(&[staged(1, "Lamp")]));
        let mut publishing = PublishFeed::new(staged, fixture.index.clone(), fixture.store.clone(), gate.clone());
        fixture.publish(&run, &mut publishing).await.unwrap();
        let held = tokio::time::timeout(Duration::from_millis(50), gate.wait_open()).await;
        assert!(held.is_err(), "closed between the store's commit and the index's");
        assert!(publishing.commit().await);
        tokio::time::timeout(Duration::from_secs(10), gate.wait_open()).await.expect("open once committed");
    }

    /// The applier flushes the batch while the store commits; if that commit
    /// fails, the publish drops its feed and the flushed batch is rolled back.
    #[tokio::test]
    async fn a_batch_flushed_during_a_failed_store_commit_is_discarded() {
        let fixture = Fixture::new().await;
        let mut feed = fixture.feed(fixture.staging_file(&[staged(1, "Lamp"), staged(2, "Lamp")]));
        feed.began(1, Timestamp::from_millis(1)).await;
        let batch = feed.next_batch().await.unwrap().unwrap();
        feed.wrote(batch.into_iter().map(|product| product.uuid).collect()).await;
        feed.committing().await;
        drop(feed);
        // Waits for the writer, which the applier holds until it has rolled back.
        fixture.index.apply(Vec::new(), 1).unwrap();
        assert_eq!(fixture.index.num_docs(), 0);
        assert!(everything(&fixture.index).is_empty());
    }

    #[tokio::test]
    async fn a_failed_publish_leaves_the_index_as_it_was() {
        let fixture = Fixture::new().await;
        let run = fixture.running().await;
        // A staging file cut short: the publish fails after writing (and indexing) a first batch.
        let products: Vec<StagedProduct> =
            (0..=crate::indexing::staging::READ_BATCH).map(|i| staged(i, "Lamp")).collect();
        let path = fixture.staging_file(&products);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 2]).unwrap();
        let mut publishing = fixture.feed(path);
        assert!(fixture.publish(&run, &mut publishing).await.is_err());
        drop(publishing);
        // The applier discards its batch when the feed is dropped; the next commit shows nothing of it.
        fixture.index.apply(Vec::new(), 1).unwrap();
        assert_eq!(fixture.index.num_docs(), 0);
        assert!(everything(&fixture.index).is_empty());
    }

    // Holding the writer across the publish is the point of this test.
    #[allow(clippy::await_holding_lock)]
    #[tokio::test]
    async fn a_busy_index_writer_leaves_the_run_to_the_follower() {
        let fixture = Fixture::new().await;
        let run = fixture.running().await;
        let mut publishing = fixture.feed(fixture.staging_file(&[staged(1, "Lamp")]));
        let busy = fixture.index.begin_batch().unwrap();
        let published = fixture.publish(&run, &mut publishing).await.unwrap();
        assert!(published.published_seq.is_some());
        assert!(!publishing.commit().await, "left to the follower");
        drop(busy);
        assert_eq!((fixture.index.applied_seq(), fixture.index.num_docs()), (0, 0));
    }
}

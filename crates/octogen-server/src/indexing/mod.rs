//! The data plane: index runs that turn merchant feeds into products in the
//! store, the follower that keeps this node's search index in step with the
//! store's change feed, scheduled re-imports, and rebuilds.
//!
//! The store is the source of truth. An import publishes products in one
//! store transaction, and each node's follower applies the resulting changes
//! from the store's change feed: one path for a single node and many alike.
//! The publishing node takes a shortcut that ends in the same index: it
//! indexes the products as the publish writes them, and commits once the
//! store has (`alongside`).

mod alongside;
mod follower;
mod reindex;
mod runs;
mod scheduler;
mod staging;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use octogen_fetch::Fetcher;
use octogen_ingest::fetch::FetchOptions;
use octogen_search::{OpenOutcome, SearchIndex};
use octogen_store::Store;
use tokio::sync::Notify;

pub use reindex::{ReindexJob, ReindexJobs};
pub use runs::{RunInput, RunRequest};

pub struct Indexing {
    store: Arc<dyn Store>,
    pub index: Arc<SearchIndex>,
    /// Wakes the follower after a publish on this node.
    changed: Notify,
    /// Held by a publish that indexes its run alongside, from taking the index
    /// writer until its index batch is committed (see `alongside`).
    alongside: alongside::Gate,
    uploads_dir: PathBuf,
    /// Fetches feed URLs (imports by URL and scheduled sources).
    fetcher: Fetcher,
    fetch_options: FetchOptions,
    pub reindex_jobs: ReindexJobs,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Indexing {
    /// Opens this node's index under `data_dir/index`, wiping and recreating
    /// it when it is corrupt (the follower then rebuilds it from the store).
    /// Feeds given by URL are fetched through `fetcher`.
    pub async fn open(
        store: Arc<dyn Store>,
        data_dir: PathBuf,
        fetcher: Fetcher,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> anyhow::Result<Arc<Indexing>> {
        let index_dir = data_dir.join("index");
        let (index, outcome) = tokio::task::spawn_blocking(move || SearchIndex::open_or_recreate(&index_dir))
            .await?
            .context("search index")?;
        match outcome {
            OpenOutcome::Recreated { reason } => {
                tracing::warn!(%reason, "the search index was unusable and has been recreated; rebuilding it from the store")
            }
            OpenOutcome::Created => tracing::info!("created a new search index; filling it from the store"),
            OpenOutcome::Opened => tracing::info!(applied_seq = index.applied_seq(), "opened the search index"),
        }
        let uploads_dir = data_dir.join("uploads");
        std::fs::create_dir_all(&uploads_dir).with_context(|| format!("cannot create {}", uploads_dir.display()))?;
        staging::sweep(&uploads_dir);
        let interrupted = store.interrupt_unfinished_runs().await?;
        if !interrupted.is_empty() {
            tracing::warn!(runs = ?interrupted, "index runs interrupted by the last shutdown were marked interrupted; their catalogs are unchanged");
        }
        Ok(Arc::new(Indexing {
            store,
            index: Arc::new(index),
            changed: Notify::new(),
            alongside: alongside::Gate::default(),
            uploads_dir,
            fetcher,
            fetch_options: FetchOptions::default(),
            reindex_jobs: ReindexJobs::default(),
            metrics,
        }))
    }

    /// Starts the follower and the scheduler; both stop when `shutdown` fires.
    pub fn start_background(
        self: &Arc<Self>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        vec![
            tokio::spawn(follower::follow(self.clone(), shutdown.clone())),
            tokio::spawn(scheduler::schedule(self.clone(), shutdown)),
        ]
    }

    /// Runs of one catalog never interleave, on this node or any other: each
    /// holds its catalog's lock from the store (an advisory lock on PostgreSQL).
    async fn lock_catalog(&self, catalog_key: &str) -> anyhow::Result<Box<dyn octogen_store::CatalogLock>> {
        Ok(self.store.lock_catalog(catalog_key).await?)
    }

    /// Whether search reflects everything published up to `seq`.
    pub fn is_searchable(&self, seq: i64) -> bool {
        self.index.applied_seq() >= seq
    }

    pub fn uploads_dir(&self) -> &std::path::Path {
        &self.uploads_dir
    }
}

//! Rebuilding this node's search index from the store (`octogen admin reindex`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use octogen_core::Timestamp;
use octogen_search::IndexChange;
use octogen_store::ChangeCursor;
use serde::Serialize;

use super::Indexing;
use crate::error::ApiResult;

const PAGE: u32 = 5_000;

#[derive(Default)]
pub struct ReindexJobs {
    jobs: Mutex<HashMap<String, Arc<ReindexJob>>>,
}

impl ReindexJobs {
    pub fn get(&self, id: &str) -> Option<Arc<ReindexJob>> {
        self.jobs.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(id).cloned()
    }

    fn add(&self, job: Arc<ReindexJob>) {
        self.jobs.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(job.id.clone(), job);
    }
}

/// A rebuild in progress or done, as the operator API reports it.
pub struct ReindexJob {
    pub id: String,
    pub catalog: Option<String>,
    /// Products to index (an estimate taken at the start).
    pub total: u64,
    pub done: AtomicU64,
    pub started_at: Timestamp,
    outcome: Mutex<Option<Result<(), String>>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReindexView {
    id: String,
    catalog: Option<String>,
    status: &'static str,
    total: u64,
    done: u64,
    started_at: Timestamp,
    error: Option<String>,
}

impl ReindexJob {
    pub fn view(&self) -> ReindexView {
        let outcome = self.outcome.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let (status, error) = match outcome {
            None => ("running", None),
            Some(Ok(())) => ("succeeded", None),
            Some(Err(error)) => ("failed", Some(error)),
        };
        ReindexView {
            id: self.id.clone(),
            catalog: self.catalog.clone(),
            status,
            total: self.total,
            done: self.done.load(Ordering::Relaxed),
            started_at: self.started_at,
            error,
        }
    }

    fn finish(&self, outcome: Result<(), String>) {
        *self.outcome.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(outcome);
    }
}

impl Indexing {
    /// Starts rebuilding the whole index, or one catalog's part of it, from the store.
    pub async fn start_reindex(self: &Arc<Self>, catalog: Option<String>) -> ApiResult<Arc<ReindexJob>> {
        let total = match &catalog {
            Some(key) => self.store.get_catalog(key).await?.product_count,
            None => self.store.list_catalogs().await?.iter().map(|catalog| catalog.product_count).sum(),
        };
        let job = Arc::new(ReindexJob {
            id: uuid::Uuid::new_v4().to_string(),
            catalog,
            total,
            done: AtomicU64::new(0),
            started_at: Timestamp::now(),
            outcome: Mutex::new(None),
        });
        self.reindex_jobs.add(job.clone());
        let indexing = self.clone();
        let running = job.clone();
        tokio::spawn(async move {
            let outcome = match &running.catalog {
                Some(key) => indexing.reindex_catalog(key, &running).await,
                None => indexing.rebuild_everything(&running).await,
            };
            if let Err(error) = &outcome {
                tracing::warn!(error = format!("{error:#}"), "reindex failed");
            }
            running.finish(outcome.map_err(|error| format!("{error:#}")));
            indexing.changed.notify_one();
        });
        Ok(job)
    }

    /// Replaces the index's whole content with the store's active products.
    /// Searches see the old index until the rebuild commits.
    async fn rebuild_everything(&self, job: &ReindexJob) -> anyhow::Result<()> {
        let latest = self.store.latest_change_seq().await?;
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<Vec<octogen_core::ProductRecord>>(2);
        let index = self.index.clone();
        let builder = tokio::task::spawn_blocking(move || -> anyhow::Result<u64> {
            let mut build = index.bulk_build()?;
            while let Some(records) = receiver.blocking_recv() {
                for record in &records {
                    build.add(record)?;
                }
            }
            // Changes published while we read are re-applied by the follower from `latest` on.
            Ok(build.finish(latest)?)
        });
        let mut cursor = ChangeCursor::default();
        loop {
            let page = self.store.product_changes(&cursor, PAGE).await?;
            let Some(last) = page.last() else { break };
            cursor = last.cursor();
            let records: Vec<_> =
                page.into_iter().map(|change| change.record).filter(|record| record.is_active).collect();
            job.done.fetch_add(records.len() as u64, Ordering::Relaxed);
            if sender.send(records).await.is_err() {
                break;
            }
        }
        drop(sender);
        builder.await??;
        Ok(())
    }

    /// Re-applies every product row of one catalog. Holds the catalog's run
    /// lock so no import of it publishes meanwhile (an older read applied
    /// after a newer change would otherwise win).
    async fn reindex_catalog(&self, catalog_key: &str, job: &ReindexJob) -> anyhow::Result<()> {
        let _no_import_meanwhile = self.lock_catalog(catalog_key).await?;
        let mut after = String::new();
        loop {
            let rows = self.store.catalog_products(catalog_key, &after, PAGE).await?;
            let Some(last) = rows.last() else { return Ok(()) };
            after = last.uuid.clone();
            let active = rows.iter().filter(|record| record.is_active).count() as u64;
            let changes: Vec<IndexChange> = rows.into_iter().map(IndexChange::Upsert).collect();
            let index = self.index.clone();
            let seq = index.applied_seq();
            tokio::task::spawn_blocking(move || index.apply(changes, seq)).await??;
            job.done.fetch_add(active, Ordering::Relaxed);
        }
    }
}

//! Keeps this node's search index in step with the store's change feed.

use std::sync::Arc;
use std::time::Duration;

use octogen_search::IndexChange;
use octogen_store::{Backend, ChangeCursor};
use tokio::sync::watch;

use super::Indexing;

/// Changes read and applied per step (one tantivy commit each).
const PAGE: u32 = 20_000;
/// A uuid greater than every real one: `(seq, AFTER_ALL)` means "all of seq".
const AFTER_ALL: &str = "~";

pub(super) async fn follow(indexing: Arc<Indexing>, mut shutdown: watch::Receiver<bool>) {
    // Local publishes wake the follower at once; polling catches changes made
    // by other nodes (PostgreSQL) and is a safety net on SQLite.
    let poll = match indexing.store.backend() {
        Backend::Postgres => Duration::from_millis(250),
        Backend::Sqlite => Duration::from_secs(2),
    };
    let mut cursor = ChangeCursor { seq: indexing.index.applied_seq(), uuid: AFTER_ALL.into() };
    loop {
        if *shutdown.borrow() {
            return;
        }
        match indexing.apply_next_changes(&mut cursor).await {
            Ok(0) => {
                tokio::select! {
                    _ = indexing.changed.notified() => {}
                    _ = tokio::time::sleep(poll) => {}
                    _ = shutdown.changed() => return,
                }
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), "could not update the search index; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

impl Indexing {
    /// Applies the next page of store changes to the index; returns how many it applied.
    pub(crate) async fn apply_next_changes(&self, cursor: &mut ChangeCursor) -> anyhow::Result<usize> {
        let applied = self.index.applied_seq();
        if applied > cursor.seq {
            // A rebuild moved the index past us: continue from where it ended.
            *cursor = ChangeCursor { seq: applied, uuid: AFTER_ALL.into() };
        }
        // Read the latest sequence value first: every publish up to it has
        // committed, so once the changes after our cursor are read, the index
        // reflects everything up to it (even publishes that changed no product).
        let latest = self.store.latest_change_seq().await?;
        let page = self.store.product_changes(cursor, PAGE).await?;
        let Some(last) = page.last() else {
            if latest > applied {
                self.apply_blocking(Vec::new(), latest).await?;
            }
            return Ok(0);
        };
        let next_cursor = ChangeCursor { seq: last.seq, uuid: last.record.uuid.clone() };
        // A full page may stop in the middle of a sequence value; only the values before it are complete.
        let complete_up_to = if page.len() == PAGE as usize { last.seq - 1 } else { latest.max(last.seq) };
        let count = page.len();
        let changes: Vec<IndexChange> = page.into_iter().map(|change| IndexChange::Upsert(change.record)).collect();
        self.apply_blocking(changes, complete_up_to).await?;
        *cursor = next_cursor;
        Ok(count)
    }

    async fn apply_blocking(&self, changes: Vec<IndexChange>, up_to_seq: i64) -> anyhow::Result<()> {
        let index = self.index.clone();
        tokio::task::spawn_blocking(move || index.apply(changes, up_to_seq)).await??;
        Ok(())
    }

    /// Waits until search reflects every change published so far (tests, benchmarks, readiness).
    pub async fn wait_until_searchable(&self, seq: i64, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.is_searchable(seq) {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }
}

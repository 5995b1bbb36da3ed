//! Keeps this node's search index in step with the store's change feed.

use std::sync::Arc;
use std::time::Duration;

use octogen_search::IndexChange;
use octogen_store::{Backend, ChangeCursor, ProductChange};
use tokio::sync::watch;

use super::Indexing;

/// Changes read per store query; a backlog smaller than a page is applied as one commit.
pub(super) const PAGE: u32 = 20_000;
/// A backlog of at least a page (an import, a node catching up) is applied
/// as a *catch-up*: the next page is read while the previous one is indexed,
/// and everything is committed together, at the end of the backlog or after
/// this many changes (so a crash or an error never redoes more than that).
const CATCH_UP_COMMIT_EVERY: usize = 1_000_000;

/// Where a catch-up's applier spent its time (its debug line; BENCHMARKS.md §5).
#[derive(Default)]
struct ApplierTimes {
    waiting: Duration,
    adding: Duration,
    committing: Duration,
}

pub(super) async fn follow(indexing: Arc<Indexing>, mut shutdown: watch::Receiver<bool>) {
    // Local publishes wake the follower at once; polling catches changes made
    // by other nodes (PostgreSQL) and is a safety net on SQLite.
    let poll = match indexing.store.backend() {
        Backend::Postgres => Duration::from_millis(250),
        Backend::Sqlite => Duration::from_secs(2),
    };
    let mut cursor = ChangeCursor::after_seq(indexing.index.applied_seq());
    loop {
        if *shutdown.borrow() {
            return;
        }
        match indexing.apply_next_changes(&mut cursor, &shutdown).await {
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
    /// Applies the next store changes to the index; returns how many it applied.
    /// A large backlog is applied as one catch-up (see `CATCH_UP_COMMIT_EVERY`),
    /// cut short (committing what it has) when `shutdown` fires.
    pub(crate) async fn apply_next_changes(
        &self,
        cursor: &mut ChangeCursor,
        shutdown: &watch::Receiver<bool>,
    ) -> anyhow::Result<usize> {
        self.alongside.wait_open().await;
        let applied = self.index.applied_seq();
        if applied > cursor.seq {
            // A rebuild moved the index past us: continue from where it ended.
            *cursor = ChangeCursor::after_seq(applied);
        }
        let (page, latest) = self.read_page(cursor).await?;
        let Some(last) = page.last() else {
            if latest > applied {
                self.apply_page_blocking(Vec::new(), latest).await?;
            }
            return Ok(0);
        };
        if page.len() == PAGE as usize {
            return self.catch_up(cursor, page, shutdown).await;
        }
        let next_cursor = last.cursor();
        // Not a full page: every change up to `latest` has been read.
        let complete_up_to = latest.max(last.seq);
        let count = page.len();
        self.apply_page_blocking(page, complete_up_to).await?;
        *cursor = next_cursor;
        Ok(count)
    }

    /// One page of changes after `cursor`, and the latest sequence value read
    /// *before* them: every publish up to it has committed, so once the changes
    /// after the cursor are read, the index reflects everything up to it (even
    /// publishes that changed no product) if the page was not full.
    async fn read_page(&self, cursor: &ChangeCursor) -> anyhow::Result<(Vec<ProductChange>, i64)> {
        let latest = self.store.latest_change_seq().await?;
        let page = self.store.product_changes(cursor, PAGE).await?;
        Ok((page, latest))
    }

    /// Applies a backlog that starts with the full page `first`: a blocking
    /// thread adds each page to one index batch while this task reads the next
    /// page, and the batch is committed once, with the highest sequence value
    /// whose changes it holds completely. Nothing is searchable, and the
    /// cursor does not move, before that commit; on any error the batch is
    /// discarded and the follower retries from the same cursor.
    async fn catch_up(
        &self,
        cursor: &mut ChangeCursor,
        first: Vec<ProductChange>,
        shutdown: &watch::Receiver<bool>,
    ) -> anyhow::Result<usize> {
        let started = std::time::Instant::now();
        let (pages, mut to_apply) = tokio::sync::mpsc::channel::<Vec<ProductChange>>(1);
        let (commit_at, commit_seq) = tokio::sync::oneshot::channel::<i64>();
        let index = self.index.clone();
        let applier = tokio::task::spawn_blocking(move || -> anyhow::Result<ApplierTimes> {
            let mut times = ApplierTimes::default();
            let mut batch = index.begin_batch()?;
            // Read while holding the writer: no rebuild can move it before the commit.
            let applied = index.applied_seq();
            loop {
                let waiting = std::time::Instant::now();
                let Some(page) = to_apply.blocking_recv() else { break };
                times.waiting += waiting.elapsed();
                let adding = std::time::Instant::now();
                batch.add(changes_after(page, applied))?;
                times.adding += adding.elapsed();
            }
            // The reader closes the page channel, then names the sequence value
            // to commit at; without one (an error) the batch is dropped, discarding it.
            let Ok(seq) = commit_seq.blocking_recv() else { return Ok(times) };
            let committing = std::time::Instant::now();
            batch.commit(seq)?;
            times.committing = committing.elapsed();
            Ok(times)
        });
        let read = self.read_backlog(first, &pages, shutdown).await;
        drop(pages);
        let outcome = match read {
            Ok(Some((end, up_to_seq, count))) => {
                let _ = commit_at.send(up_to_seq);
                Ok((end, up_to_seq, count))
            }
            // Dropping `commit_at` unsent makes the applier discard the batch (and end).
            Ok(None) => {
                drop(commit_at);
                Err(anyhow::anyhow!("indexing stopped while catching up"))
            }
            Err(error) => {
                drop(commit_at);
                Err(error)
            }
        };
        let times = applier.await??;
        let (end, up_to_seq, count) = outcome?;
        tracing::debug!(
            changes = count,
            up_to_seq,
            ms = started.elapsed().as_millis() as u64,
            waiting_for_pages_ms = times.waiting.as_millis() as u64,
            adding_ms = times.adding.as_millis() as u64,
            commit_ms = times.committing.as_millis() as u64,
            "caught up with store changes in one index commit"
        );
        *cursor = end;
        Ok(count)
    }

    /// Sends `first` and the pages after it to the applier until the backlog
    /// ends, `CATCH_UP_COMMIT_EVERY` is reached or shutdown fires; returns
    /// the cursor after the last change sent, the highest sequence value
    /// whose changes were all sent, and how many were sent; `None` if the
    /// applier stopped (its error is the one to report).
    async fn read_backlog(
        &self,
        first: Vec<ProductChange>,
        pages: &tokio::sync::mpsc::Sender<Vec<ProductChange>>,
        shutdown: &watch::Receiver<bool>,
    ) -> anyhow::Result<Option<(ChangeCursor, i64, usize)>> {
        let mut page = first;
        let mut count = 0;
        loop {
            let last = page.last().expect("catch-up pages are not empty");
            let (end, last_seq) = (last.cursor(), last.seq);
            count += page.len();
            if pages.send(page).await.is_err() {
                return Ok(None);
            }
            // A full page may stop in the middle of a sequence value; only the values before it are complete.
            if count >= CATCH_UP_COMMIT_EVERY || *shutdown.borrow() {
                return Ok(Some((end, last_seq - 1, count)));
            }
            // The publishing node indexed these changes itself (see `alongside`):
            // the applier will drop what was sent, and the rest need not be read.
            let applied = self.index.applied_seq();
            if applied >= last_seq {
                return Ok(Some((ChangeCursor::after_seq(applied), applied, count)));
            }
            let (next, latest) = self.read_page(&end).await?;
            if next.len() < PAGE as usize {
                let Some(next_last) = next.last() else {
                    // Every change up to `latest` has been read.
                    return Ok(Some((end, latest.max(last_seq), count)));
                };
                let next_end = next_last.cursor();
                let up_to_seq = latest.max(next_last.seq);
                count += next.len();
                if pages.send(next).await.is_err() {
                    return Ok(None);
                }
                return Ok(Some((next_end, up_to_seq, count)));
            }
            page = next;
        }
    }

    /// Applies a page of the change feed (possibly empty: only `up_to_seq` moves); see `changes_after`.
    async fn apply_page_blocking(&self, page: Vec<ProductChange>, up_to_seq: i64) -> anyhow::Result<()> {
        let index = self.index.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let mut batch = index.begin_batch()?;
            let applied = index.applied_seq();
            batch.add(changes_after(page, applied))?;
            Ok(batch.commit(up_to_seq)?)
        })
        .await??;
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

/// The changes of `page` the index does not reflect yet: those after
/// `applied`, the index's sequence value read while holding its writer. The
/// rest are redundant, and may be stale: a page read before a full rebuild
/// (which waited for the writer) would otherwise overwrite newer rows the
/// rebuild indexed, and the follower's cursor, moved past the rebuild, would
/// never bring them back. Without a rebuild nothing is dropped: the cursor
/// only ever reads changes after `applied`.
fn changes_after(page: Vec<ProductChange>, applied: i64) -> Vec<IndexChange> {
    page.into_iter().filter(|change| change.seq > applied).map(|change| IndexChange::Upsert(change.record)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use octogen_core::ProductRecord;

    fn change(seq: i64, uuid: &str) -> ProductChange {
        let record = ProductRecord {
            uuid: uuid.into(),
            catalog_key: "shop".into(),
            is_active: true,
            updated_at: octogen_core::Timestamp::now(),
            normalized_url: format!("https://shop.example/{uuid}"),
            product: octogen_core::Product::default(),
        };
        ProductChange { seq, order: 0, record }
    }

    #[test]
    fn changes_the_index_already_reflects_are_dropped() {
        let page = vec![change(3, "a"), change(4, "b"), change(4, "c"), change(5, "d")];
        let kept: Vec<String> = changes_after(page, 4)
            .into_iter()
            .map(|change| match change {
                IndexChange::Upsert(record) => record.uuid,
                IndexChange::UpsertDocument(document) => document.uuid().to_string(),
                IndexChange::Remove { uuid } => uuid,
            })
            .collect();
        assert_eq!(kept, ["d"]);
    }
}

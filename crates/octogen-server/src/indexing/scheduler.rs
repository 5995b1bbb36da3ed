//! Scheduled re-imports of catalogs that have a configured source.

use std::sync::Arc;
use std::time::Duration;

use octogen_core::Timestamp;
use octogen_store::RunTrigger;
use tokio::sync::watch;

use super::{Indexing, RunInput, RunRequest};

const TICK: Duration = Duration::from_secs(2);

pub(super) async fn schedule(indexing: Arc<Indexing>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = shutdown.changed() => return,
        }
        if let Err(error) = start_due_runs(&indexing).await {
            tracing::warn!(error = format!("{error:#}"), "could not check scheduled imports");
        }
    }
}

async fn start_due_runs(indexing: &Arc<Indexing>) -> anyhow::Result<()> {
    let now = Timestamp::now();
    for (catalog_key, source) in indexing.store.due_catalog_sources(now).await? {
        let next = now.plus_millis(source.interval_secs as i64 * 1000);
        // Only the node whose claim moves the schedule starts the run.
        if !indexing.store.claim_catalog_source(&catalog_key, source.next_run_at, next).await? {
            continue;
        }
        let Ok(format) = source.format.parse() else {
            tracing::warn!(%catalog_key, format = %source.format, "the catalog source has an unknown format");
            continue;
        };
        let request = RunRequest {
            catalog_key: catalog_key.clone(),
            format,
            mapping: source.mapping,
            currency: source.currency,
            base_url: None,
            input: RunInput::Url(source.url),
            trigger: RunTrigger::Schedule,
        };
        match indexing.start_run(request).await {
            Ok(run) => tracing::info!(%catalog_key, run_id = %run.id, "started a scheduled import"),
            Err(error) => tracing::warn!(%catalog_key, error = ?error, "could not start a scheduled import"),
        }
    }
    Ok(())
}

//! One index run: read a feed (uploaded or fetched), stage every valid
//! product in a file on this node (`staging`), then publish the run in one
//! store transaction. A run that fails at any point before the publish
//! commits leaves its catalog untouched.

use std::io::{BufReader, Read};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use octogen_core::{ProductRecord, Timestamp};
use octogen_ingest::{CsvMapping, Enriched, FeedFormat, FeedOptions, FeedSummary, RecordError, UnenrichedRecord};
use octogen_search::ProductDocument;
use octogen_store::{IndexRun, NewIndexRun, RunProgress, RunTrigger, StagedProduct};
use serde_json::{json, Value};

use super::alongside::PublishFeed;
use super::staging::{Staged, StagingReader, StagingWriter};
use super::Indexing;
use crate::error::{ApiError, ApiResult};
/// Skipped records listed by name in a run's report (the count is always complete).
const REPORTED_SKIPS: usize = 100;
const PROGRESS_INTERVAL: Duration = Duration::from_millis(500);

pub struct RunRequest {
    pub catalog_key: String,
    pub format: FeedFormat,
    /// CSV column mapping (TOML text).
    pub mapping: Option<String>,
    /// ISO 4217 code for feeds whose prices carry none.
    pub currency: Option<String>,
    /// The store's URL for this import (Shopify product URLs, relative links);
    /// `None`: the catalog's source URL, else a fetched Shopify store's origin.
    pub base_url: Option<String>,
    pub input: RunInput,
    pub trigger: RunTrigger,
}

pub enum RunInput {
    /// A file uploaded to this node (see `save_upload`).
    Upload { id: String, name: String },
    /// A feed the server fetches itself (Shopify store URLs are paged).
    Url(String),
}

impl RunInput {
    /// The run's source as shown in reports, the portal and the CLI: a URL
    /// without its credentials (`redact_url`).
    fn describe(&self) -> String {
        match self {
            RunInput::Upload { name, .. } => name.clone(),
            RunInput::Url(url) => octogen_fetch::redact_url(url),
        }
    }
}

/// A run request, validated: everything that can be refused up front is.
struct PreparedRun {
    catalog_key: String,
    format: FeedFormat,
    mapping: Option<CsvMapping>,
    currency: Option<String>,
    base_url: Option<String>,
    input: RunInput,
    trigger: RunTrigger,
}

impl PreparedRun {
    /// The URL product URLs are built from: the import's own, else the
    /// catalog's source URL, else (for a Shopify store it fetches) the store's origin.
    fn base_url(&self, catalog_source: Option<&str>) -> Option<String> {
        let fetched_store = match (&self.input, self.format) {
            (RunInput::Url(url), FeedFormat::Shopify) => {
                url::Url::parse(url).ok().map(|url| url.origin().ascii_serialization())
            }
            _ => None,
        };
        self.base_url.clone().or_else(|| catalog_source.map(str::to_string)).or(fetched_store)
    }
}

/// Live counters of a running import, read by the progress writer.
#[derive(Default)]
struct LiveProgress {
    bytes_read: AtomicU64,
    bytes_total: AtomicU64,
    seen: AtomicU64,
    skipped: AtomicU64,
    staged: AtomicU64,
    /// Staged products with a price but no currency (the feed names none and the import gave none).
    priced_without_currency: AtomicU64,
}

impl LiveProgress {
    fn snapshot(&self) -> RunProgress {
        let total = self.bytes_total.load(Ordering::Relaxed);
        RunProgress {
            bytes_read: self.bytes_read.load(Ordering::Relaxed),
            bytes_total: (total > 0).then_some(total),
            seen: self.seen.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
        }
    }
}

/// Why a run failed, in a sentence for the operator.
struct RunFailure {
    message: String,
    report: Value,
}

impl RunFailure {
    fn new(message: impl Into<String>) -> Self {
        RunFailure { message: message.into(), report: json!({}) }
    }
}

impl Indexing {
    /// Validates the request, records a queued run and starts it in the
    /// background. Runs of the same catalog wait for each other.
    pub async fn start_run(self: &Arc<Self>, request: RunRequest) -> ApiResult<IndexRun> {
        let prepared = self.prepare(request)?;
        let catalog = self.store.get_catalog(&prepared.catalog_key).await?;
        if prepared.format == FeedFormat::Shopify && prepared.base_url(catalog.source_base_url.as_deref()).is_none() {
            return Err(ApiError::Message(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "catalog {} has no source URL to build Shopify product URLs from: give the import the store's \
                     URL (--base-url https://shop.example with `octogen catalog import`, baseUrl in the operator API)",
                    prepared.catalog_key
                ),
            ));
        }
        let run = self
            .store
            .create_index_run(NewIndexRun {
                catalog_key: prepared.catalog_key.clone(),
                trigger: prepared.trigger,
                format: prepared.format.as_str().to_string(),
                source: prepared.input.describe(),
            })
            .await?;
        let indexing = self.clone();
        let run_id = run.id.clone();
        tokio::spawn(async move { indexing.execute(run_id, prepared).await });
        Ok(run)
    }

    fn prepare(&self, request: RunRequest) -> ApiResult<PreparedRun> {
        let mapping = match (&request.mapping, request.format) {
            (Some(text), _) => Some(CsvMapping::from_toml(text).map_err(|error| {
                ApiError::Message(axum::http::StatusCode::UNPROCESSABLE_ENTITY, format!("invalid CSV mapping: {error}"))
            })?),
            (None, FeedFormat::Csv) => {
                return Err(ApiError::Message(
                    axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                    "the csv format needs a column mapping file (--mapping FILE)".into(),
                ))
            }
            (None, _) => None,
        };
        if let RunInput::Upload { id, .. } = &request.input {
            if !self.upload_path(id).is_some_and(|path| path.exists()) {
                return Err(ApiError::not_found(format!("upload {id} not found (uploads are used once)")));
            }
        }
        let base_url = request.base_url.as_deref().map(str::trim).filter(|url| !url.is_empty());
        if let Some(url) = base_url {
            if !crate::service::sources::is_http_url(url) {
                return Err(ApiError::Message(
                    axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                    format!("baseUrl {url:?} is not an http(s) URL such as https://shop.example"),
                ));
            }
        }
        let base_url = base_url.map(|url| url.trim_end_matches('/').to_string());
        if let Some(currency) = &request.currency {
            if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(ApiError::Message(
                    axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                    format!("currency {currency:?} is not an ISO 4217 code such as GBP"),
                ));
            }
        }
        Ok(PreparedRun {
            catalog_key: request.catalog_key,
            format: request.format,
            mapping,
            currency: request.currency,
            base_url,
            input: request.input,
            trigger: request.trigger,
        })
    }

    /// Stores bytes as an upload (what `POST /admin/v1/uploads` does with a request body).
    pub fn save_upload_bytes(&self, bytes: &[u8]) -> std::io::Result<String> {
        let id = uuid::Uuid::new_v4().to_string();
        let path = self.upload_path(&id).expect("a fresh uuid is a valid upload id");
        std::fs::write(path, bytes)?;
        Ok(id)
    }

    /// Deletes an upload no run will read (a refused import's).
    pub async fn discard_upload(&self, id: &str) {
        remove_files(self.upload_path(id).into_iter().collect()).await;
    }

    /// The path of an upload, if `id` is a well-formed upload id.
    pub fn upload_path(&self, id: &str) -> Option<PathBuf> {
        uuid::Uuid::parse_str(id).ok().map(|id| self.uploads_dir.join(format!("{id}.upload")))
    }

    async fn execute(self: Arc<Self>, run_id: String, prepared: PreparedRun) {
        let live = Arc::new(LiveProgress::default());
        // The heartbeat runs while the run waits for its turn too, so another
        // node never mistakes a queued run for an orphan.
        let reporter = tokio::spawn(report_progress(self.clone(), run_id.clone(), live.clone()));
        let finished = self.run_in_turn(&run_id, &prepared, &live).await;
        reporter.abort();
        remove_files(self.input_paths(&run_id, &prepared.input)).await;
        match finished {
            Ok(run) => {
                tracing::info!(%run_id, counts = ?run.counts, "index run published");
                self.changed.notify_one();
            }
            Err(message) => tracing::warn!(%run_id, error = %message, "index run failed; the catalog is unchanged"),
        }
    }

    /// Waits for the catalog's lock, then imports and publishes (or fails) the run.
    async fn run_in_turn(
        &self,
        run_id: &str,
        prepared: &PreparedRun,
        live: &Arc<LiveProgress>,
    ) -> Result<IndexRun, String> {
        let _one_run_per_catalog = match self.lock_catalog(&prepared.catalog_key).await {
            Ok(lock) => lock,
            Err(error) => {
                let message = format!("could not take the catalog's run lock: {error:#}");
                return Err(self.fail(run_id, &message, live, json!({})).await);
            }
        };
        match self.store.start_index_run(run_id).await {
            Ok(true) => {}
            Ok(false) => return Err("the run was no longer queued (marked interrupted by a restart)".into()),
            Err(error) => return Err(format!("could not start the run: {error}")),
        }
        tracing::info!(%run_id, catalog = %prepared.catalog_key, "index run started");
        let started = std::time::Instant::now();
        let finished = match self.import(run_id, prepared, live).await {
            Ok(report) => {
                let stage_ms = started.elapsed().as_millis() as u64;
                tracing::info!(%run_id, stage_ms, staged = live.staged.load(Ordering::Relaxed), "index run staged; publishing");
                match self.publish(run_id, live, report.clone()).await {
                    Ok(run) => {
                        self.keep_url_aliases(prepared).await;
                        Ok(run)
                    }
                    Err(error) => Err(self.fail(run_id, &format!("publishing failed: {error}"), live, report).await),
                }
            }
            Err(failure) => Err(self.fail(run_id, &failure.message, live, failure.report).await),
        };
        let status = if finished.is_ok() { "succeeded" } else { "failed" };
        self.metrics.index_run_finished(status, started.elapsed().as_secs_f64());
        finished
    }

    /// Publishes what the run staged, indexing it alongside (see `alongside`).
    async fn publish(
        &self,
        run_id: &str,
        live: &LiveProgress,
        report: Value,
    ) -> Result<IndexRun, octogen_store::StoreError> {
        let publishing = std::time::Instant::now();
        let staged = StagingReader::open(self.staging_path(run_id));
        let mut feed = PublishFeed::new(staged, self.index.clone(), self.store.clone(), self.alongside.clone());
        let run = self.store.publish_index_run(run_id, &mut feed, live.snapshot(), report).await?;
        let publish_ms = publishing.elapsed().as_millis() as u64;
        let indexed = match run.published_seq {
            Some(_) => feed.commit().await,
            None => false,
        };
        if indexed {
            self.metrics.index_run_indexed_alongside();
        }
        tracing::info!(%run_id, publish_ms, indexed_alongside = indexed, "index run committed");
        Ok(run)
    }

    /// A published run's mapping declares the catalog's URL alias rules (a CSV
    /// mapping's `url` aliases; none for other formats), which lookups read.
    /// Written after the publish, so a failed run leaves the old rules; if this
    /// write fails, the products are still published and the old rules stay.
    async fn keep_url_aliases(&self, prepared: &PreparedRun) {
        let rules = prepared.mapping.as_ref().map(|mapping| mapping.url_aliases.as_slice()).unwrap_or_default();
        if let Err(error) = self.store.set_catalog_url_aliases(&prepared.catalog_key, rules).await {
            tracing::warn!(catalog = %prepared.catalog_key, %error, "could not record the catalog's URL alias rules");
        }
    }

    async fn fail(&self, run_id: &str, message: &str, live: &LiveProgress, report: Value) -> String {
        if let Err(error) = self.store.fail_index_run(run_id, message, live.snapshot(), report).await {
            tracing::error!(%run_id, error = %error, "could not record the failure of an index run");
        }
        message.to_string()
    }

    /// Reads and stages the whole feed; returns the run's report.
    async fn import(
        &self,
        run_id: &str,
        prepared: &PreparedRun,
        live: &Arc<LiveProgress>,
    ) -> Result<Value, RunFailure> {
        let catalog =
            self.store.get_catalog(&prepared.catalog_key).await.map_err(|e| RunFailure::new(e.to_string()))?;
        let (path, download) = self.input_file(run_id, prepared).await?;
        let total = std::fs::metadata(&path).map(|meta| meta.len()).unwrap_or(0);
        live.bytes_total.store(total, Ordering::Relaxed);

        let options = FeedOptions {
            base_url: prepared.base_url(catalog.source_base_url.as_deref()),
            mapping: prepared.mapping.clone(),
            default_currency: prepared.currency.clone(),
            ..FeedOptions::default()
        };
        let staging = StagingWriter::create(&self.staging_path(run_id))
            .map_err(|error| RunFailure::new(format!("cannot create the run's staging file: {error}")))?;
        let parser = {
            let (format, live) = (prepared.format, live.clone());
            let catalog = RunCatalog { id: catalog.id.clone(), key: catalog.key.clone() };
            tokio::task::spawn_blocking(move || parse_file(&path, format, &options, &catalog, staging, &live))
        };
        let parsed = parser.await.map_err(|error| RunFailure::new(format!("the feed parser crashed: {error}")))?;
        let (summary, mut report) = parsed.map_err(|(message, report)| RunFailure { message, report })?;
        if let Some(download) = download {
            report["download"] = download;
        }
        report["feedRecords"] = json!(summary.records);
        let staged = live.staged.load(Ordering::Relaxed);
        let without_currency = live.priced_without_currency.load(Ordering::Relaxed);
        if without_currency > 0 {
            report["warnings"] = json!([missing_currency_warning(without_currency, staged)]);
        }
        if staged == 0 {
            return Err(RunFailure {
                message: format!(
                    "the feed has no valid product ({} record(s) skipped); the catalog was not changed",
                    summary.skipped
                ),
                report,
            });
        }
        Ok(report)
    }

    /// The local file to parse: the upload, or a fresh download of the URL.
    async fn input_file(&self, run_id: &str, prepared: &PreparedRun) -> Result<(PathBuf, Option<Value>), RunFailure> {
        match &prepared.input {
            RunInput::Upload { id, .. } => {
                let path = self.upload_path(id).ok_or_else(|| RunFailure::new(format!("upload {id} not found")))?;
                Ok((path, None))
            }
            RunInput::Url(url) => {
                let path = self.uploads_dir.join(format!("{run_id}.download"));
                let mut file = tokio::fs::File::create(&path)
                    .await
                    .map_err(|error| RunFailure::new(format!("cannot create {}: {error}", path.display())))?;
                let fetched = octogen_ingest::fetch::fetch_feed(
                    &self.fetcher,
                    url,
                    prepared.format,
                    &self.fetch_options,
                    &mut file,
                )
                .await
                .map_err(|error| RunFailure::new(format!("cannot fetch the feed: {error}")))?;
                let shown = prepared.input.describe();
                Ok((path, Some(json!({"url": shown, "bytes": fetched.bytes, "pages": fetched.pages}))))
            }
        }
    }

    /// Where a run stages its products until it publishes.
    fn staging_path(&self, run_id: &str) -> PathBuf {
        self.uploads_dir.join(format!("{run_id}.{}", super::staging::EXTENSION))
    }

    /// The files a run leaves behind, both used once: its input (upload or
    /// download) and its staging file.
    fn input_paths(&self, run_id: &str, input: &RunInput) -> Vec<PathBuf> {
        let path = match input {
            RunInput::Upload { id, .. } => self.upload_path(id),
            RunInput::Url(_) => Some(self.uploads_dir.join(format!("{run_id}.download"))),
        };
        path.into_iter().chain([self.staging_path(run_id)]).collect()
    }
}

/// Prices without a currency are stored as they are (null), but the operator
/// is told: partners cannot compare or show such prices.
fn missing_currency_warning(without_currency: u64, staged: u64) -> String {
    format!(
        "{without_currency} of {staged} products have a price but no currency: the feed names none; \
         import again with a currency (--currency with `octogen catalog import`, e.g. --currency USD)"
    )
}

/// Writes the run's progress to the store periodically, so any node (and the
/// CLI polling it) can show it; also serves as the run's heartbeat.
async fn report_progress(indexing: Arc<Indexing>, run_id: String, live: Arc<LiveProgress>) {
    loop {
        tokio::time::sleep(PROGRESS_INTERVAL).await;
        if let Err(error) = indexing.store.record_run_progress(&run_id, live.snapshot()).await {
            tracing::debug!(%run_id, error = %error, "could not record run progress");
        }
    }
}

/// Deletes files a run is done with (or will never read). A feed and a staging
/// file of a few GB take about a second to delete: not on a runtime worker,
/// which would stall the requests it serves. Files already gone are fine.
async fn remove_files(paths: Vec<PathBuf>) {
    let removed = tokio::task::spawn_blocking(move || {
        for path in paths {
            if let Err(error) = std::fs::remove_file(&path) {
                if error.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), %error, "could not delete a feed or staging file");
                }
            }
        }
    });
    let _ = removed.await;
}

/// Records handed from one thread of the parse to the next at a time.
const RECORD_BATCH: usize = 256;

/// The catalog a run stages products for: its id keys the products' uuids,
/// its key goes into their search documents.
struct RunCatalog {
    id: String,
    key: String,
}

/// Parses the feed file into the run's staging file, on three threads: this
/// one reads, converts and validates records, a second enriches them, a third
/// serializes, hashes, compresses and writes them with their search documents. Measured shares of the
/// work: about 40 %, 20 % and 40 %. On two threads (enrichment with either
/// side) one of them was the limit with the other a third idle; three keep
/// both cores busy. Returns the parse summary and the report, or a failure
/// message with the report.
fn parse_file(
    path: &Path,
    format: FeedFormat,
    options: &FeedOptions,
    catalog: &RunCatalog,
    staging: StagingWriter,
    live: &LiveProgress,
) -> Result<(FeedSummary, Value), (String, Value)> {
    let file = std::fs::File::open(path).map_err(|error| (format!("cannot read the feed: {error}"), json!({})))?;
    let reader = BufReader::with_capacity(256 * 1024, CountingReader { inner: file, count: &live.bytes_read });
    let (records, to_enrich) = std::sync::mpsc::sync_channel::<Vec<UnenrichedRecord>>(8);
    let (enriched, to_stage) = std::sync::mpsc::sync_channel::<Vec<EnrichedRecord>>(8);
    let (result, staged) = std::thread::scope(|scope| {
        scope.spawn(|| enrich_records(to_enrich, enriched));
        let stager = scope.spawn(|| stage_records(to_stage, catalog, staging, live));
        let mut batch = Vec::with_capacity(RECORD_BATCH);
        let result = octogen_ingest::parse_feed_unenriched(format, reader, options, |record| {
            live.seen.fetch_add(1, Ordering::Relaxed);
            batch.push(record);
            if batch.len() == RECORD_BATCH
                && records.send(std::mem::replace(&mut batch, Vec::with_capacity(RECORD_BATCH))).is_err()
            {
                // The stager stopped (a write failed), and so the enricher; the stager reports why.
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        });
        if !batch.is_empty() {
            let _ = records.send(batch);
        }
        drop(records);
        (result, stager.join())
    });
    let skips = match staged {
        Ok(Ok(skips)) => skips,
        Ok(Err(error)) => return Err((format!("could not write the run's staging file: {error}"), json!({}))),
        Err(_) => return Err(("the staging thread crashed".into(), json!({}))),
    };
    let skipped = live.skipped.load(Ordering::Relaxed);
    let report = json!({
        "skipped": skips,
        "skippedNotListed": skipped.saturating_sub(REPORTED_SKIPS as u64),
    });
    match result {
        Ok(summary) => Ok((summary, report)),
        Err(error) => Err((format!("the feed cannot be read: {error}"), report)),
    }
}

/// A parsed record on its way to the stager: the product and its normalized URL, or why it was skipped.
type EnrichedRecord = Result<Enriched, RecordError>;

/// Enriches batches of records in order until either side hangs up.
fn enrich_records(
    records: std::sync::mpsc::Receiver<Vec<UnenrichedRecord>>,
    enriched: std::sync::mpsc::SyncSender<Vec<EnrichedRecord>>,
) {
    for batch in records {
        let batch = batch.into_iter().map(|record| record.map(octogen_ingest::Unenriched::into_enriched)).collect();
        if enriched.send(batch).is_err() {
            return;
        }
    }
}

/// Stages parsed records in order, counting and listing the skipped ones;
/// returns the listed skips.
fn stage_records(
    records: std::sync::mpsc::Receiver<Vec<EnrichedRecord>>,
    catalog: &RunCatalog,
    mut staging: StagingWriter,
    live: &LiveProgress,
) -> std::io::Result<Vec<Value>> {
    let mut skips = Vec::new();
    // One buffer for every product's JSON: growing a fresh one to a few KB per product was measurable.
    let mut json = Vec::with_capacity(64 * 1024);
    for record in records.into_iter().flatten() {
        match record
            .map_err(|error| (error.location.to_string(), error.reason))
            .and_then(|enriched| stage(enriched, catalog, &mut json))
        {
            Ok((staged, priced_without_currency)) => {
                staging.append(&staged)?;
                live.staged.fetch_add(1, Ordering::Relaxed);
                if priced_without_currency {
                    live.priced_without_currency.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err((record, reason)) => {
                live.skipped.fetch_add(1, Ordering::Relaxed);
                if skips.len() < REPORTED_SKIPS {
                    skips.push(json!({"record": record, "reason": reason}));
                }
            }
        }
    }
    staging.finish()?;
    Ok(skips)
}

/// A product ready for the store and the search index (and whether it has a
/// price without a currency), or why it cannot be stored. `json` is scratch
/// space for the product's JSON.
fn stage(
    enriched: octogen_ingest::Enriched,
    catalog: &RunCatalog,
    json: &mut Vec<u8>,
) -> Result<(Staged, bool), (String, String)> {
    let Enriched { product, normalized_url } = enriched;
    let priced_without_currency = product.current_price.is_some() && product.currency.is_none();
    json.clear();
    serde_json::to_writer(&mut *json, &product).map_err(|error| (product.url.clone(), error.to_string()))?;
    let staged = StagedProduct::new(&catalog.id, normalized_url, json);
    // The publish sets the time (`ProductDocument::set_updated_at`).
    let record = ProductRecord {
        uuid: staged.uuid.clone(),
        catalog_key: catalog.key.clone(),
        is_active: true,
        updated_at: Timestamp::from_millis(0),
        normalized_url: staged.url_key.clone(),
        product,
    };
    let document = ProductDocument::of(&record).encode().map_err(|error| (record.product.url, error.to_string()))?;
    Ok((Staged { product: staged, document }, priced_without_currency))
}

/// Counts bytes as the parser consumes them (the run's progress).
struct CountingReader<'a, R> {
    inner: R,
    count: &'a AtomicU64,
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.count.fetch_add(read as u64, Ordering::Relaxed);
        Ok(read)
    }
}

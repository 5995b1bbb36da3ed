//! A deterministic synthetic catalog (`octogen_ingest::synth`), written to a
//! feed file and imported through the server's operator API exactly as
//! `octogen catalog import` does it: upload → `POST /catalogs/{key}/imports`
//! → poll `GET /runs/{id}` until the run succeeded and is searchable.
//!
//! Shared by the benchmarks that need products: `import` measures this path,
//! `search`, `load` and `backends` use it to fill a server (or reuse a kept
//! data directory that already has the catalog).

use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use octogen_ingest::synth::{write_catalog, SynthFormat, SynthOptions, SYNTH_BASE_URL};
use serde::Serialize;
use serde_json::{json, Value};

use crate::cpu::{process_cpu_time, process_peak_rss_bytes, process_rss_bytes};
use crate::server::BenchServer;

/// The column mapping the CSV output is read with (the Myntra export's, shipped with the project).
pub const MYNTRA_MAPPING: &str = include_str!("../../../../mappings/myntra.toml");

/// How often the import's run is polled (also the resolution of the "searchable" time).
const POLL: Duration = Duration::from_millis(25);
/// The longest an import may take before the benchmark gives up.
const IMPORT_TIMEOUT: Duration = Duration::from_secs(3_600);

/// Which synthetic catalog: same products, seed and format give byte-identical feeds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SynthCatalog {
    pub products: u64,
    pub seed: u64,
    #[serde(serialize_with = "serialize_format")]
    pub format: SynthFormat,
}

fn serialize_format<S: serde::Serializer>(format: &SynthFormat, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(format_name(*format))
}

pub fn format_name(format: SynthFormat) -> &'static str {
    match format {
        SynthFormat::Shopify => "shopify",
        SynthFormat::Csv => "csv",
    }
}

impl SynthCatalog {
    pub fn new(products: u64, seed: u64, format: SynthFormat) -> Self {
        SynthCatalog { products, seed, format }
    }

    /// The catalog key it is imported under, e.g. `synth-shopify-1000000-s42`.
    pub fn key(&self) -> String {
        format!("synth-{}-{}-s{}", format_name(self.format), self.products, self.seed)
    }

    fn file_name(&self) -> String {
        let extension = match self.format {
            SynthFormat::Shopify => "json",
            SynthFormat::Csv => "csv",
        };
        format!("{}.{extension}", self.key())
    }

    /// The URL of the product at `index`, as the store has it after import.
    pub fn product_url(&self, index: u64) -> String {
        octogen_ingest::synth::product_url(self.format, self.seed, index)
    }

    /// Writes the feed into `dir`; returns its path, size and how long writing took.
    pub fn write_feed(&self, dir: &Path) -> anyhow::Result<Feed> {
        let path = dir.join(self.file_name());
        let started = Instant::now();
        let file = std::fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let options = SynthOptions { products: self.products, seed: self.seed, format: self.format };
        write_catalog(&options, &mut out).with_context(|| format!("cannot write {}", path.display()))?;
        // On disk before any clock starts: a merchant's feed exists before its
        // import, and writing back 1.7 GB of this benchmark's own dirty pages
        // during the upload throttled it (4.2 s instead of ~0.6 s at 1M).
        out.into_inner().map_err(|error| error.into_error())?.sync_all()?;
        let bytes = std::fs::metadata(&path)?.len();
        Ok(Feed { path, bytes, write_s: started.elapsed().as_secs_f64() })
    }

    /// The body of `POST /catalogs/{key}/imports` for an upload of this feed.
    fn import_request(&self, upload: &str) -> Value {
        match self.format {
            SynthFormat::Shopify => {
                json!({"format": "shopify", "upload": upload, "name": self.file_name(), "currency": "GBP"})
            }
            SynthFormat::Csv => {
                json!({"format": "csv", "upload": upload, "name": self.file_name(), "mapping": MYNTRA_MAPPING})
            }
        }
    }
}

/// A generated feed file.
#[derive(Debug, Clone, Serialize)]
pub struct Feed {
    pub path: PathBuf,
    pub bytes: u64,
    /// Generating and writing it (not part of any measurement).
    pub write_s: f64,
}

/// What one import through the server took.
#[derive(Debug, Clone, Serialize)]
pub struct ImportTimeline {
    pub catalog: String,
    pub products: u64,
    pub feed_bytes: u64,
    /// Streaming the file to `POST /admin/v1/uploads`.
    pub upload_s: f64,
    /// From the import request to the server reporting the feed parsed, enriched and staged
    /// (the run's own `timings.parseAndStageMs` when the server reports it).
    pub parse_and_stage_s: Option<f64>,
    /// The publish transaction (upsert, deactivate, counts), from the server's log.
    pub publish_s: Option<f64>,
    /// From the run's success being observed to the run being searchable on this node.
    pub index_catch_up_s: f64,
    /// Import request to searchable, as the client saw it.
    pub run_s: f64,
    /// Upload start to searchable: the benchmark's figure.
    pub total_s: f64,
    pub products_per_s: f64,
    /// The run as `GET /runs/{id}` last returned it (counts, report).
    pub run: Value,
    /// Server CPU seconds from upload start to searchable (child server only).
    pub server_cpu_s: Option<f64>,
    /// Highest VmRSS seen while polling, and the process's VmHWM at the end (child server only).
    pub max_sampled_rss_bytes: Option<u64>,
    pub peak_rss_bytes: Option<u64>,
    /// The follower's batches, from the server's debug log: how long reading the change feed
    /// from the store and applying it to the index took, summed.
    pub follower_batches: u64,
    pub follower_read_s: f64,
    pub follower_apply_s: f64,
}

/// Creates the catalog (if missing), uploads `feed` and imports it, polling until searchable.
pub async fn import_feed(server: &BenchServer, catalog: &SynthCatalog, feed: &Feed) -> anyhow::Result<ImportTimeline> {
    let admin = server.admin();
    let key = catalog.key();
    let exists = admin.catalogs().await?.iter().any(|existing| existing["key"] == key.as_str());
    if !exists {
        let source = match catalog.format {
            SynthFormat::Shopify => Some(SYNTH_BASE_URL),
            SynthFormat::Csv => None,
        };
        admin.create_catalog(&key, &format!("Synthetic {} products", catalog.products), source).await?;
    }
    let pid = server.pid();
    let cpu_before = pid.and_then(process_cpu_time);
    let log_start = server.log_path().map(crate::access_log::log_len);
    let started = Instant::now();
    let upload = admin.upload(&feed.path).await?;
    let upload_s = started.elapsed().as_secs_f64();
    let requested = Instant::now();
    let run = admin.start_import(&key, catalog.import_request(&upload)).await?;
    let run_id = run["id"].as_str().context("the run has no id")?.to_string();
    let mut max_rss = None;
    let mut succeeded_at = None;
    let run = loop {
        if let Some(rss) = pid.and_then(process_rss_bytes) {
            max_rss = max_rss.max(Some(rss));
        }
        let run = admin.run(&run_id).await?;
        match run["status"].as_str() {
            Some("succeeded") => {
                let now = Instant::now();
                succeeded_at.get_or_insert(now);
                if run["searchable"] == true {
                    break run;
                }
            }
            Some("queued" | "running") => {}
            other => bail!("the import ended {other:?}: {}", run["error"]),
        }
        ensure!(requested.elapsed() < IMPORT_TIMEOUT, "the import took longer than {IMPORT_TIMEOUT:?}");
        tokio::time::sleep(POLL).await;
    };
    let searchable_at = Instant::now();
    let total_s = searchable_at.duration_since(started).as_secs_f64();
    let server_cpu_s =
        pid.and_then(process_cpu_time).zip(cpu_before).map(|(after, before)| (after - before).as_secs_f64());
    let log = match (server.log_path(), log_start) {
        (Some(path), Some(start)) => read_log(path, start, &run_id)?,
        _ => LogFacts::default(),
    };
    let parse_and_stage_s = run["report"]["timings"]["parseAndStageMs"].as_f64().map(|ms| ms / 1_000.0).or(log.stage_s);
    let seen = run["counts"]["seen"].as_u64().unwrap_or(0);
    ensure!(
        seen == catalog.products && run["counts"]["skipped"] == 0,
        "the run read {seen} records and skipped {}; expected {} clean records",
        run["counts"]["skipped"],
        catalog.products
    );
    Ok(ImportTimeline {
        catalog: key,
        products: catalog.products,
        feed_bytes: feed.bytes,
        upload_s,
        parse_and_stage_s,
        publish_s: log.publish_s,
        index_catch_up_s: searchable_at.duration_since(succeeded_at.unwrap_or(searchable_at)).as_secs_f64(),
        run_s: searchable_at.duration_since(requested).as_secs_f64(),
        total_s,
        products_per_s: catalog.products as f64 / total_s,
        run,
        server_cpu_s,
        max_sampled_rss_bytes: max_rss,
        peak_rss_bytes: pid.and_then(process_peak_rss_bytes),
        follower_batches: log.follower_batches,
        follower_read_s: log.follower_read_s,
        follower_apply_s: log.follower_apply_s,
    })
}

/// What the server's log says about a run and the follower.
#[derive(Debug, Default)]
struct LogFacts {
    stage_s: Option<f64>,
    publish_s: Option<f64>,
    follower_batches: u64,
    follower_read_s: f64,
    follower_apply_s: f64,
}

fn read_log(path: &Path, from: u64, run_id: &str) -> anyhow::Result<LogFacts> {
    use std::io::{BufRead, BufReader, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(from))?;
    let mut facts = LogFacts::default();
    for line in BufReader::new(file).lines() {
        let Ok(event) = serde_json::from_str::<Value>(&line?) else { continue };
        let ms = |field: &str| event[field].as_f64().map(|ms| ms / 1_000.0);
        match event["message"].as_str() {
            Some("index run staged; publishing") if event["run_id"] == run_id => facts.stage_s = ms("stage_ms"),
            Some("index run committed") if event["run_id"] == run_id => facts.publish_s = ms("publish_ms"),
            Some("applied store changes to the search index") => {
                facts.follower_batches += 1;
                facts.follower_read_s += ms("read_ms").unwrap_or(0.0);
                facts.follower_apply_s += ms("apply_ms").unwrap_or(0.0);
            }
            _ => {}
        }
    }
    Ok(facts)
}

/// Whether the server already has `catalog` fully imported (a kept data directory).
pub async fn has_catalog(server: &BenchServer, catalog: &SynthCatalog) -> anyhow::Result<bool> {
    let key = catalog.key();
    let catalogs = server.admin().catalogs().await?;
    Ok(catalogs.iter().any(|existing| existing["key"] == key.as_str() && existing["productCount"] == catalog.products))
}

/// Waits until `/readyz` says the index has caught up with the store (after a restart).
pub async fn wait_until_ready(server: &BenchServer, timeout: Duration) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + timeout;
    loop {
        let response = client.get(format!("{}/readyz", server.base_url())).send().await?;
        if response.status() == 200 {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "the server was not ready within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Makes sure the server has `catalog`: imports it (feed written into `work_dir`, then
/// removed) unless a kept data directory already holds it. Returns the import's timeline if it ran.
pub async fn ensure_catalog(
    server: &BenchServer,
    catalog: &SynthCatalog,
    work_dir: &Path,
) -> anyhow::Result<Option<ImportTimeline>> {
    wait_until_ready(server, Duration::from_secs(600)).await?;
    if has_catalog(server, catalog).await? {
        eprintln!("catalog {} is already imported", catalog.key());
        return Ok(None);
    }
    eprintln!("writing the {} feed ({} products)…", format_name(catalog.format), catalog.products);
    let feed = {
        let (catalog, dir) = (*catalog, work_dir.to_path_buf());
        tokio::task::spawn_blocking(move || catalog.write_feed(&dir)).await??
    };
    eprintln!("importing {} ({:.0} MB)…", catalog.key(), feed.bytes as f64 / 1e6);
    let timeline = import_feed(server, catalog, &feed).await;
    let _ = std::fs::remove_file(&feed.path);
    let timeline = timeline?;
    eprintln!("imported in {:.1} s ({:.0} products/s)", timeline.total_s, timeline.products_per_s);
    Ok(Some(timeline))
}

/// Total size of the files under `path` (recursively), in bytes.
pub fn disk_usage(path: &Path) -> u64 {
    let Ok(metadata) = std::fs::symlink_metadata(path) else { return 0 };
    if metadata.is_file() {
        return metadata.len();
    }
    if !metadata.is_dir() {
        return 0;
    }
    std::fs::read_dir(path)
        .map(|entries| entries.filter_map(Result::ok).map(|entry| disk_usage(&entry.path())).sum())
        .unwrap_or(0)
}

/// The SQLite store's files (`octogen.db` and its WAL) in a data directory, in bytes.
pub fn sqlite_bytes(data_dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(data_dir) else { return 0 };
    entries
        .filter_map(Result::ok)
        .filter(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.ends_with(".db") || name.ends_with(".db-wal") || name.ends_with(".db-shm")
        })
        .map(|entry| disk_usage(&entry.path()))
        .sum()
}

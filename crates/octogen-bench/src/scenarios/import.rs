//! Issue 3, point 7: end-to-end import of a generated catalog, from the feed
//! file to searchable, through a real server.
//!
//! For each size and format: a fresh server (child process, temporary data
//! directory), the feed written beforehand (not timed), then timed from the
//! start of the upload to the moment `GET /runs/{id}` reports the run
//! `succeeded` and `searchable`. Reported: products/s, the phases (upload,
//! parse + enrich + stage, publish, index catch-up), the server's CPU time and
//! peak RSS (`VmHWM`), and the on-disk size of the search index and the
//! SQLite store, right when searchable and after a graceful stop.
//! Targets on 2 cores: ≥ 25k products/s, peak RSS ≤ 2 GiB, index ≤ 1.5 KB/product.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use octogen_ingest::synth::SynthFormat;
use serde::Serialize;

use crate::cpu::wait_until_quiet;
use crate::machine::Machine;
use crate::report::align;
use crate::scenarios::catalog::{disk_usage, format_name, import_feed, sqlite_bytes, ImportTimeline, SynthCatalog};
use crate::server::{BenchServer, ServerOptions};

pub const PRODUCTS_PER_S_TARGET: f64 = 25_000.0;
pub const PEAK_RSS_TARGET_BYTES: u64 = 2 * 1024 * 1024 * 1024;
pub const INDEX_BYTES_PER_PRODUCT_TARGET: f64 = 1_500.0;

#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub server: ServerOptions,
    pub sizes: Vec<u64>,
    pub formats: Vec<SynthFormat>,
    pub seed: u64,
    /// Where feeds are written (default: a temporary directory).
    pub work_dir: Option<PathBuf>,
    pub quiet_cores: Option<f64>,
    pub quiet_timeout: Duration,
}

#[derive(Debug, Serialize)]
pub struct ImportReport {
    pub benchmark: &'static str,
    pub machine: Machine,
    pub runs: Vec<ImportMeasurement>,
}

#[derive(Debug, Serialize)]
pub struct ImportMeasurement {
    pub format: &'static str,
    pub products: u64,
    pub seed: u64,
    /// Writing the feed file beforehand (not part of the import time).
    pub feed_write_s: f64,
    /// Whether the machine was quiet when the import started (when asked to wait for it).
    pub started_quiet: Option<bool>,
    pub timeline: ImportTimeline,
    /// Right when the run became searchable.
    pub index_bytes_searchable: u64,
    pub sqlite_bytes_searchable: u64,
    /// After a graceful stop (merges finished, WAL checkpointed).
    pub index_bytes_settled: Option<u64>,
    pub sqlite_bytes_settled: Option<u64>,
    pub index_bytes_per_product: f64,
    pub sqlite_bytes_per_product: f64,
    pub products_per_s_target: f64,
    pub peak_rss_target_bytes: u64,
    pub index_bytes_per_product_target: f64,
    pub throughput_met: bool,
    pub rss_met: Option<bool>,
    pub index_size_met: bool,
}

pub async fn run(options: &ImportOptions) -> anyhow::Result<ImportReport> {
    let machine = Machine::describe();
    let temporary = tempfile::tempdir_in(options.work_dir.as_deref().unwrap_or(&std::env::temp_dir()))
        .context("cannot create a directory for the feeds")?;
    let mut runs = Vec::new();
    for &products in &options.sizes {
        for &format in &options.formats {
            let catalog = SynthCatalog::new(products, options.seed, format);
            runs.push(measure(options, &catalog, temporary.path()).await?);
        }
    }
    Ok(ImportReport { benchmark: "import", machine, runs })
}

async fn measure(
    options: &ImportOptions,
    catalog: &SynthCatalog,
    feed_dir: &std::path::Path,
) -> anyhow::Result<ImportMeasurement> {
    eprintln!("writing the {} feed of {} products…", format_name(catalog.format), catalog.products);
    let feed = {
        let (catalog, dir) = (*catalog, feed_dir.to_path_buf());
        tokio::task::spawn_blocking(move || catalog.write_feed(&dir)).await??
    };
    eprintln!("  {:.0} MB in {:.1} s", feed.bytes as f64 / 1e6, feed.write_s);
    let server = BenchServer::start(&options.server).await?;
    let started_quiet = match options.quiet_cores {
        Some(cores) => Some(wait_until_quiet(cores, options.quiet_timeout).await),
        None => None,
    };
    eprintln!("importing {} into {} at {}…", catalog.key(), server.mode(), server.base_url());
    let result = import_feed(&server, catalog, &feed).await;
    let sizes_now = server.data_dir().map(|dir| (disk_usage(&dir.join("index")), sqlite_bytes(dir)));
    let settled = server.stop_with(|dir| dir.map(|dir| (disk_usage(&dir.join("index")), sqlite_bytes(dir)))).await?;
    let _ = std::fs::remove_file(&feed.path);
    let timeline = result?;
    let (index_now, sqlite_now) = sizes_now.unwrap_or((0, 0));
    let index_settled = settled.map(|(index, _)| index);
    let sqlite_settled = settled.map(|(_, sqlite)| sqlite);
    // The larger of the two: a fair upper bound whichever moment one cares about.
    let index_bytes = index_now.max(index_settled.unwrap_or(0));
    let sqlite_bytes = sqlite_now.max(sqlite_settled.unwrap_or(0));
    let per_product = |bytes: u64| bytes as f64 / catalog.products as f64;
    eprintln!(
        "  {:.1} s, {:.0} products/s, peak RSS {}, index {:.0} B/product",
        timeline.total_s,
        timeline.products_per_s,
        timeline.peak_rss_bytes.map_or("?".into(), gib),
        per_product(index_bytes)
    );
    Ok(ImportMeasurement {
        format: format_name(catalog.format),
        products: catalog.products,
        seed: catalog.seed,
        feed_write_s: feed.write_s,
        started_quiet,
        throughput_met: timeline.products_per_s >= PRODUCTS_PER_S_TARGET,
        rss_met: timeline.peak_rss_bytes.map(|peak| peak <= PEAK_RSS_TARGET_BYTES),
        index_size_met: per_product(index_bytes) <= INDEX_BYTES_PER_PRODUCT_TARGET,
        timeline,
        index_bytes_searchable: index_now,
        sqlite_bytes_searchable: sqlite_now,
        index_bytes_settled: index_settled,
        sqlite_bytes_settled: sqlite_settled,
        index_bytes_per_product: per_product(index_bytes),
        sqlite_bytes_per_product: per_product(sqlite_bytes),
        products_per_s_target: PRODUCTS_PER_S_TARGET,
        peak_rss_target_bytes: PEAK_RSS_TARGET_BYTES,
        index_bytes_per_product_target: INDEX_BYTES_PER_PRODUCT_TARGET,
    })
}

fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / (1024.0 * 1024.0 * 1024.0))
}

fn mb(bytes: u64) -> String {
    format!("{:.0} MB", bytes as f64 / 1e6)
}

fn seconds(value: Option<f64>) -> String {
    value.map_or("-".into(), |s| format!("{s:.1} s"))
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "NOT met"
    }
}

pub fn render(report: &ImportReport) -> String {
    let mut out = format!("octogen-bench import — {}\n\n", report.machine.summary());
    let mut rows = vec![[
        "feed",
        "products",
        "feed size",
        "upload",
        "parse+stage",
        "publish",
        "index catch-up",
        "total",
        "products/s",
        "server CPU",
        "peak RSS",
        "index",
        "index/product",
        "SQLite",
    ]
    .map(String::from)
    .to_vec()];
    for run in &report.runs {
        let timeline = &run.timeline;
        rows.push(vec![
            run.format.to_string(),
            run.products.to_string(),
            mb(timeline.feed_bytes),
            seconds(Some(timeline.upload_s)),
            seconds(timeline.parse_and_stage_s),
            seconds(timeline.publish_s),
            seconds(Some(timeline.index_catch_up_s)),
            seconds(Some(timeline.total_s)),
            format!("{:.0}", timeline.products_per_s),
            timeline.server_cpu_s.map_or("-".into(), |cpu| format!("{cpu:.0} s")),
            timeline.peak_rss_bytes.map_or("-".into(), gib),
            mb(run.index_bytes_searchable.max(run.index_bytes_settled.unwrap_or(0))),
            format!("{:.0} B", run.index_bytes_per_product),
            mb(run.sqlite_bytes_searchable.max(run.sqlite_bytes_settled.unwrap_or(0))),
        ]);
    }
    out.push_str(&align(&rows));
    out.push('\n');
    for run in &report.runs {
        let timeline = &run.timeline;
        let _ = writeln!(
            out,
            "{} × {}: {:.0} products/s (target ≥ {:.0}): {}; peak RSS {} (target ≤ {}): {}; index {:.0} B/product \
             (target ≤ {:.0}): {}",
            run.format,
            run.products,
            timeline.products_per_s,
            run.products_per_s_target,
            verdict(run.throughput_met),
            timeline.peak_rss_bytes.map_or("?".into(), gib),
            gib(run.peak_rss_target_bytes),
            run.rss_met.map_or("unknown", verdict),
            run.index_bytes_per_product,
            run.index_bytes_per_product_target,
            verdict(run.index_size_met),
        );
        let _ = writeln!(
            out,
            "  follower: {} batches, reading the change feed {:.1} s, applying to the index {:.1} s; index {} when \
             searchable, {} after stop; SQLite {} / {}",
            timeline.follower_batches,
            timeline.follower_read_s,
            timeline.follower_apply_s,
            mb(run.index_bytes_searchable),
            run.index_bytes_settled.map_or("-".into(), mb),
            mb(run.sqlite_bytes_searchable),
            run.sqlite_bytes_settled.map_or("-".into(), mb),
        );
    }
    out
}

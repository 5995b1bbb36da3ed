//! Issue 4, point 7: search and lookup on the generated catalog, against an
//! SQLite FTS5 baseline in the same run, on the same data and queries.
//!
//! 1. A server (child process by default) gets the generated catalog (1M
//!    products, seed 42, Shopify feed), imported unless a kept `--data-dir`
//!    already has it; the FTS5 baseline database is built from the same feed
//!    (see `fts5_baseline`) unless `--baseline-db` names a file that has it.
//! 2. A catalog partner is granted that catalog and its rate limit raised to
//!    the server's maximum, so the run measures serving, not 429s.
//! 3. Preparation, on each side: every query of the committed mix
//!    (`search_mix`, 1,000 queries) is sent once; deep-pagination queries are
//!    walked page by page through `nextCursor` to their page, and the request
//!    for that page (with its real cursor) is what the mix replays. Statuses and
//!    empty first pages are counted (all must be 200).
//! 4. Rounds: each round measures, after a warm-up, octogen's search mix and
//!    the baseline's (order alternating between rounds), then octogen's
//!    lookups (`POST /v1/products/lookup`, 1,000 URLs of existing products, 10 %
//!    with tracking parameters). A closed loop of `-c` keep-alive connections;
//!    every query of the mix is drawn with equal weight. Reports merge the rounds.
//!
//! Targets on 2 cores: search p50 ≤ 5 ms, p99 ≤ 30 ms, lookup p99 ≤ 1 ms,
//! search throughput ≥ 5× the baseline's.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use octogen_ingest::synth::Rng;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::cpu::wait_until_quiet;
use crate::machine::Machine;
use crate::mix::{RequestMix, RequestTemplate};
use crate::report::{align, format_statuses, render_table, LoadReport};
use crate::scenarios::catalog::{
    format_name, has_catalog, import_feed, wait_until_ready, Feed, ImportTimeline, SynthCatalog,
};
use crate::scenarios::fts5_baseline::{self, BaselineBuild, BaselineServer};
use crate::scenarios::search_mix::{load_mix, MixQuery, DEEP_PAGINATION, KINDS};
use crate::server::{BenchServer, ServerOptions};
use crate::stats::format_us;
use crate::{run_load, LoadConfig};

pub const SEARCH_P50_TARGET_US: f64 = 5_000.0;
pub const SEARCH_P99_TARGET_US: f64 = 30_000.0;
pub const LOOKUP_P99_TARGET_US: f64 = 1_000.0;
pub const QPS_RATIO_TARGET: f64 = 5.0;
/// A round during which the rest of the machine used more than this many cores is *disturbed*.
pub const DISTURBED_CORES: f64 = 0.25;
/// Lookup URLs in the lookup mix.
const LOOKUPS: u64 = 1_000;
/// Requests in flight during preparation.
const PREPARE_CONCURRENCY: usize = 4;
const SEARCH_PATH: &str = "/v1/products/search";
const LOOKUP_PATH: &str = "/v1/products/lookup";

#[derive(Debug, Clone)]
pub struct SearchOptions {
    pub server: ServerOptions,
    pub catalog: SynthCatalog,
    /// Where the feed is written (default: a temporary directory).
    pub work_dir: Option<PathBuf>,
    /// A mix file instead of the committed one.
    pub mix: Option<PathBuf>,
    /// Closed-loop connections; one full set of rounds per value.
    pub connections: Vec<usize>,
    pub rounds: usize,
    pub warmup: Duration,
    /// Measured time of each search run (per side, per round).
    pub duration: Duration,
    /// Measured time of each lookup run (per round).
    pub lookup_duration: Duration,
    /// Keep (and reuse) the baseline's SQLite file here instead of a temporary one.
    pub baseline_db: Option<PathBuf>,
    /// SQLite connections in the baseline's pool.
    pub baseline_connections: u32,
    pub skip_baseline: bool,
    pub quiet_cores: Option<f64>,
    pub quiet_timeout: Duration,
}

#[derive(Debug, Serialize)]
pub struct SearchReport {
    pub benchmark: &'static str,
    pub machine: Machine,
    pub catalog: SynthCatalog,
    pub catalog_key: String,
    pub server_mode: &'static str,
    /// The import, when this run made it (absent: reused from a kept data directory).
    pub import: Option<ImportTimeline>,
    pub baseline: Option<BaselineSummary>,
    pub mix: MixSummary,
    pub octogen_check: SideCheck,
    pub baseline_check: Option<SideCheck>,
    pub lookup_check: SideCheck,
    pub levels: Vec<LevelReport>,
    /// Anything that makes the numbers suspect: non-200 responses, transport errors.
    pub problems: Vec<String>,
    /// Worth knowing but expected, e.g. deep pages beyond the end of a small catalog's results.
    pub notes: Vec<String>,
    pub targets: Targets,
}

#[derive(Debug, Serialize)]
pub struct Targets {
    pub search_p50_us: f64,
    pub search_p99_us: f64,
    pub lookup_p99_us: f64,
    pub qps_ratio: f64,
}

#[derive(Debug, Serialize)]
pub struct BaselineSummary {
    pub build: BaselineBuild,
    pub pool_connections: u32,
    pub method: &'static str,
}

#[derive(Debug, Serialize)]
pub struct MixSummary {
    /// `committed` or the file given.
    pub source: String,
    pub queries: usize,
    pub per_kind: BTreeMap<String, usize>,
    pub deep_pages_min: Option<u32>,
    pub deep_pages_max: Option<u32>,
}

/// What the preparation pass saw on one side.
#[derive(Debug, Default, Serialize)]
pub struct SideCheck {
    /// Requests sent (deep-pagination walks included).
    pub requests: u64,
    pub statuses: BTreeMap<u16, u64>,
    pub transport_errors: u64,
    /// Per kind: queries whose measured page came back with no items.
    pub empty_pages: BTreeMap<String, u64>,
    /// Per kind: items on the measured pages, in total.
    pub items: BTreeMap<String, u64>,
    /// Up to 10 bodies whose measured page was empty.
    pub empty_examples: Vec<String>,
    /// Deep-pagination queries whose results ended before their page (the last page is replayed instead).
    pub short_walks: u64,
    /// Pages actually reached by deep-pagination queries, summed (vs. requested).
    pub deep_pages_reached: u64,
    pub deep_pages_requested: u64,
    pub seconds: f64,
}

impl SideCheck {
    fn non_200(&self) -> u64 {
        self.statuses.iter().filter(|(status, _)| **status != 200).map(|(_, count)| count).sum::<u64>()
            + self.transport_errors
    }
}

#[derive(Debug, Serialize)]
pub struct LevelReport {
    pub connections: usize,
    pub rounds: Vec<RoundReport>,
    pub undisturbed_rounds: usize,
    /// All rounds merged.
    pub octogen_search: LoadReport,
    pub baseline_search: Option<LoadReport>,
    pub octogen_lookup: LoadReport,
    /// Median over undisturbed rounds (all rounds if none was undisturbed).
    pub qps_ratio_median: Option<f64>,
    /// Merged octogen req/s over merged baseline req/s.
    pub qps_ratio_merged: Option<f64>,
    pub search_p50_met: bool,
    pub search_p99_met: bool,
    pub lookup_p99_met: bool,
    pub qps_ratio_met: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct RoundReport {
    pub octogen_first: bool,
    pub octogen_rps: f64,
    pub baseline_rps: Option<f64>,
    pub ratio: Option<f64>,
    pub lookup_rps: f64,
    /// The most other work seen in any run of the round, in cores.
    pub other_cores: Option<f64>,
    pub disturbed: bool,
}

/// The method, as the report states it (details in `fts5_baseline`).
const BASELINE_METHOD: &str = "SQLite FTS5 (sqlx's bundled SQLite), loaded from the same generated feed parsed and \
    enriched by octogen_ingest; contentless fts5(title, brand, product_type, tags, description) with tokenizer \
    'porter unicode61', ranked by bm25 weights 10/5/4/3/1, all words ANDed (OR fallback when nothing has them all); \
    facets as EXISTS on a (term_id, product_id) table of octogen's facet terms, price as WHERE on an indexed column; \
    browse ORDER BY (title_key, id) with keyset paging, text paged by OFFSET; optimize + ANALYZE after loading; \
    WAL, mmap, read-only pooled connections with cached prepared statements; served by axum in the benchmark process";

pub async fn run(options: &SearchOptions) -> anyhow::Result<SearchReport> {
    anyhow::ensure!(!options.connections.is_empty(), "at least one --connections value is needed");
    anyhow::ensure!(options.rounds > 0, "at least one round is needed");
    let machine = Machine::describe();
    let mix = load_mix(options.mix.as_deref())?;
    let work = tempfile::tempdir_in(options.work_dir.as_deref().unwrap_or(&std::env::temp_dir()))
        .context("cannot create a working directory")?;
    let server = BenchServer::start(&options.server).await?;
    eprintln!("server: {} at {}", server.mode(), server.base_url());
    let result = run_on(options, &server, &mix, work.path(), machine).await;
    server.stop().await?;
    result
}

async fn run_on(
    options: &SearchOptions,
    server: &BenchServer,
    mix: &[MixQuery],
    work: &std::path::Path,
    machine: Machine,
) -> anyhow::Result<SearchReport> {
    let catalog = &options.catalog;
    wait_until_ready(server, Duration::from_secs(600)).await?;
    let imported = has_catalog(server, catalog).await?;
    let baseline_path = options.baseline_db.clone().unwrap_or_else(|| work.join("fts5-baseline.db"));
    let baseline_built = options.skip_baseline || fts5_baseline::is_built(&baseline_path, catalog).await;
    let mut feed: Option<Feed> = None;
    if !imported || !baseline_built {
        eprintln!("writing the {} feed ({} products)…", format_name(catalog.format), catalog.products);
        let (catalog, dir) = (*catalog, work.to_path_buf());
        feed = Some(tokio::task::spawn_blocking(move || catalog.write_feed(&dir)).await??);
    }
    let import = if imported {
        eprintln!("catalog {} is already imported", catalog.key());
        None
    } else {
        let feed = feed.as_ref().expect("written above");
        eprintln!("importing {} ({:.0} MB)…", catalog.key(), feed.bytes as f64 / 1e6);
        let timeline = import_feed(server, catalog, feed).await?;
        eprintln!("  imported in {:.1} s ({:.0} products/s)", timeline.total_s, timeline.products_per_s);
        Some(timeline)
    };
    let baseline = if options.skip_baseline {
        None
    } else if baseline_built {
        eprintln!("baseline database {} already holds {}", baseline_path.display(), catalog.key());
        Some(fts5_baseline::describe(&baseline_path, true, 0.0).await?)
    } else {
        let feed = feed.as_ref().expect("written above");
        eprintln!("building the FTS5 baseline at {}…", baseline_path.display());
        let build = fts5_baseline::build(&baseline_path, catalog, &feed.path).await?;
        eprintln!("  built in {:.1} s, {:.0} MB", build.build_s, build.db_bytes as f64 / 1e6);
        Some(build)
    };
    if let Some(feed) = feed {
        let _ = std::fs::remove_file(&feed.path);
    }

    let key = catalog.key();
    let partner = server.admin().partner_for("Search benchmark partner", &[key.as_str()]).await?;
    server.admin().set_rate_limit(&partner.org_id, Some(10_000_000)).await?;
    let bearer = format!("Bearer {}", partner.key.key);

    let baseline_server = match &baseline {
        Some(_) => Some(BaselineServer::start(&baseline_path, options.baseline_connections).await?),
        None => None,
    };
    let result = measure(options, server, baseline_server.as_ref(), mix, &bearer).await;
    if let Some(baseline_server) = baseline_server {
        baseline_server.stop().await?;
    }
    let measured = result?;

    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let mut check_side = |name: &str, check: &SideCheck| {
        if check.non_200() > 0 {
            problems.push(format!(
                "{name}: {} of {} preparation requests were not 200 ({}; transport errors {})",
                check.non_200(),
                check.requests,
                format_statuses(&check.statuses),
                check.transport_errors
            ));
        }
        if check.short_walks > 0 {
            notes.push(format!(
                "{name}: {} deep-pagination queries ran out of results before their page and replay their last page \
                 instead (pages reached {} of {}; expected on small catalogs)",
                check.short_walks, check.deep_pages_reached, check.deep_pages_requested
            ));
        }
    };
    check_side("octogen search", &measured.octogen_check);
    if let Some(check) = &measured.baseline_check {
        check_side("baseline search", check);
    }
    check_side("octogen lookup", &measured.lookup_check);
    for level in &measured.levels {
        let runs =
            [("octogen search", Some(&level.octogen_search)), ("baseline search", level.baseline_search.as_ref())]
                .into_iter()
                .chain([("octogen lookup", Some(&level.octogen_lookup))]);
        for (name, report) in runs {
            let Some(report) = report else { continue };
            let wrong = report.unexpected(&[200]);
            if wrong > 0 {
                problems.push(format!(
                    "{name} at -c {}: {wrong} of {} measured requests were not 200 ({}; transport errors {})",
                    level.connections,
                    report.requests + report.transport_errors,
                    format_statuses(&report.statuses),
                    report.transport_errors
                ));
            }
        }
    }
    for problem in &problems {
        eprintln!("WARNING: {problem}");
    }
    for note in &notes {
        eprintln!("note: {note}");
    }
    let pages: Vec<u32> = mix.iter().filter_map(|query| query.page).collect();
    let mut per_kind = BTreeMap::new();
    for query in mix {
        *per_kind.entry(query.kind.clone()).or_default() += 1;
    }
    Ok(SearchReport {
        benchmark: "search",
        machine,
        catalog: *catalog,
        catalog_key: key,
        server_mode: server.mode(),
        import,
        baseline: baseline.map(|build| BaselineSummary {
            build,
            pool_connections: options.baseline_connections,
            method: BASELINE_METHOD,
        }),
        mix: MixSummary {
            source: options.mix.as_ref().map_or_else(|| "committed".into(), |path| path.display().to_string()),
            queries: mix.len(),
            per_kind,
            deep_pages_min: pages.iter().copied().min(),
            deep_pages_max: pages.iter().copied().max(),
        },
        octogen_check: measured.octogen_check,
        baseline_check: measured.baseline_check,
        lookup_check: measured.lookup_check,
        levels: measured.levels,
        problems,
        notes,
        targets: Targets {
            search_p50_us: SEARCH_P50_TARGET_US,
            search_p99_us: SEARCH_P99_TARGET_US,
            lookup_p99_us: LOOKUP_P99_TARGET_US,
            qps_ratio: QPS_RATIO_TARGET,
        },
    })
}

struct Measured {
    octogen_check: SideCheck,
    baseline_check: Option<SideCheck>,
    lookup_check: SideCheck,
    levels: Vec<LevelReport>,
}

async fn measure(
    options: &SearchOptions,
    server: &BenchServer,
    baseline: Option<&BaselineServer>,
    mix: &[MixQuery],
    bearer: &str,
) -> anyhow::Result<Measured> {
    eprintln!("preparing the mix on octogen (walking deep pages)…");
    let octogen_url = format!("{}{SEARCH_PATH}", server.base_url());
    let (octogen_bodies, octogen_check) = prepare(&octogen_url, Some(bearer), mix).await?;
    eprintln!("  {:.1} s, {}", octogen_check.seconds, check_line(&octogen_check));
    let octogen_mix = search_mix_of(mix, &octogen_bodies, Some(bearer))?;
    let (baseline_mix, baseline_check) = match baseline {
        Some(baseline) => {
            eprintln!("preparing the mix on the baseline…");
            let url = format!("http://{}{SEARCH_PATH}", baseline.addr());
            let (bodies, check) = prepare(&url, None, mix).await?;
            eprintln!("  {:.1} s, {}", check.seconds, check_line(&check));
            (Some(search_mix_of(mix, &bodies, None)?), Some(check))
        }
        None => (None, None),
    };
    let lookup_bodies = lookup_bodies(&options.catalog);
    let lookup_check = check_lookups(&format!("{}{LOOKUP_PATH}", server.base_url()), bearer, &lookup_bodies).await?;
    let lookup_templates = lookup_bodies
        .iter()
        .map(|body| RequestTemplate::post_json("lookup", LOOKUP_PATH, body).header("authorization", bearer))
        .collect();
    let lookup_mix = RequestMix::new(lookup_templates)?;

    let mut levels = Vec::new();
    for &connections in &options.connections {
        let mut octogen_search: Option<LoadReport> = None;
        let mut baseline_search: Option<LoadReport> = None;
        let mut octogen_lookup: Option<LoadReport> = None;
        let mut rounds = Vec::new();
        for round in 0..options.rounds {
            if let Some(cores) = options.quiet_cores {
                if !wait_until_quiet(cores, options.quiet_timeout).await {
                    eprintln!("  the machine did not get quiet within {:?}; measuring anyway", options.quiet_timeout);
                }
            }
            let octogen_first = round % 2 == 0;
            let mut config = LoadConfig::timed(connections, options.warmup, options.duration);
            config.server_pid = server.pid();
            let octogen_run = |config: LoadConfig| {
                let mix = octogen_mix.clone();
                async move { run_load(server.addr(), &mix, &config).await }
            };
            let baseline_run = |config: LoadConfig| {
                let mix = baseline_mix.clone();
                async move {
                    match (baseline, mix) {
                        (Some(baseline), Some(mix)) => {
                            let mut config = config;
                            config.server_pid = None;
                            run_load(baseline.addr(), &mix, &config).await.map(Some)
                        }
                        _ => Ok(None),
                    }
                }
            };
            let (ours, theirs) = if octogen_first {
                let ours = octogen_run(config.clone()).await?;
                (ours, baseline_run(config.clone()).await?)
            } else {
                let theirs = baseline_run(config.clone()).await?;
                (octogen_run(config.clone()).await?, theirs)
            };
            let mut lookup_config =
                LoadConfig::timed(connections, options.warmup.min(Duration::from_secs(1)), options.lookup_duration);
            lookup_config.server_pid = server.pid();
            let lookups = run_load(server.addr(), &lookup_mix, &lookup_config).await?;
            let other_cores = [Some(&ours), theirs.as_ref(), Some(&lookups)]
                .into_iter()
                .flatten()
                .filter_map(|report| report.cpu.other_cores)
                .reduce(f64::max);
            let round_report = RoundReport {
                octogen_first,
                octogen_rps: ours.requests_per_s,
                baseline_rps: theirs.as_ref().map(|report| report.requests_per_s),
                ratio: theirs.as_ref().map(|report| ours.requests_per_s / report.requests_per_s.max(f64::EPSILON)),
                lookup_rps: lookups.requests_per_s,
                other_cores,
                disturbed: other_cores.is_some_and(|cores| cores > DISTURBED_CORES),
            };
            eprintln!(
                "  -c {connections} round {}/{}: octogen {:.0} req/s (p50 {}, p99 {}), baseline {}, lookups {:.0} req/s \
                 (p99 {}){}",
                round + 1,
                options.rounds,
                ours.requests_per_s,
                format_us(ours.latency.p50_us),
                format_us(ours.latency.p99_us),
                theirs.as_ref().map_or("-".into(), |report| format!(
                    "{:.0} req/s (p50 {}, p99 {})",
                    report.requests_per_s,
                    format_us(report.latency.p50_us),
                    format_us(report.latency.p99_us)
                )),
                lookups.requests_per_s,
                format_us(lookups.latency.p99_us),
                if round_report.disturbed { ", disturbed" } else { "" }
            );
            rounds.push(round_report);
            merge_into(&mut octogen_search, ours);
            if let Some(theirs) = theirs {
                merge_into(&mut baseline_search, theirs);
            }
            merge_into(&mut octogen_lookup, lookups);
        }
        let octogen_search = octogen_search.expect("at least one round");
        let octogen_lookup = octogen_lookup.expect("at least one round");
        let undisturbed: Vec<f64> =
            rounds.iter().filter(|round| !round.disturbed).filter_map(|round| round.ratio).collect();
        let all: Vec<f64> = rounds.iter().filter_map(|round| round.ratio).collect();
        let qps_ratio_median = median(if undisturbed.is_empty() { all } else { undisturbed });
        let qps_ratio_merged = baseline_search
            .as_ref()
            .map(|baseline| octogen_search.requests_per_s / baseline.requests_per_s.max(f64::EPSILON));
        levels.push(LevelReport {
            connections,
            undisturbed_rounds: rounds.iter().filter(|round| !round.disturbed).count(),
            rounds,
            search_p50_met: octogen_search.latency.p50_us <= SEARCH_P50_TARGET_US,
            search_p99_met: octogen_search.latency.p99_us <= SEARCH_P99_TARGET_US,
            lookup_p99_met: octogen_lookup.latency.p99_us <= LOOKUP_P99_TARGET_US,
            qps_ratio_met: qps_ratio_median.map(|ratio| ratio >= QPS_RATIO_TARGET),
            qps_ratio_median,
            qps_ratio_merged,
            octogen_search,
            baseline_search,
            octogen_lookup,
        });
    }
    Ok(Measured { octogen_check, baseline_check, lookup_check, levels })
}

fn merge_into(total: &mut Option<LoadReport>, run: LoadReport) {
    match total {
        Some(total) => total.merge(&run),
        None => *total = Some(run),
    }
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    Some(if values.len() % 2 == 1 { values[middle] } else { (values[middle - 1] + values[middle]) / 2.0 })
}

/// The measured mix: one template per query (equal weights), labelled by kind.
fn search_mix_of(mix: &[MixQuery], bodies: &[Value], bearer: Option<&str>) -> anyhow::Result<RequestMix> {
    let templates = mix
        .iter()
        .zip(bodies)
        .map(|(query, body)| {
            let template = RequestTemplate::post_json(query.kind.clone(), SEARCH_PATH, body);
            match bearer {
                Some(bearer) => template.header("authorization", bearer),
                None => template,
            }
        })
        .collect();
    RequestMix::new(templates)
}

/// Sends every query once (walking deep-pagination queries to their page) and
/// returns the bodies to replay: the mix's, with the real cursor for deep pages.
async fn prepare(url: &str, bearer: Option<&str>, mix: &[MixQuery]) -> anyhow::Result<(Vec<Value>, SideCheck)> {
    let started = Instant::now();
    let client = reqwest::Client::new();
    let mut tasks = JoinSet::new();
    let chunk = mix.len().div_ceil(PREPARE_CONCURRENCY).max(1);
    for (part, queries) in mix.chunks(chunk).enumerate() {
        let (client, url, bearer, queries) =
            (client.clone(), url.to_string(), bearer.map(str::to_string), queries.to_vec());
        tasks.spawn(async move {
            let mut check = SideCheck::default();
            let mut bodies = Vec::with_capacity(queries.len());
            for query in &queries {
                bodies.push(prepare_one(&client, &url, bearer.as_deref(), query, &mut check).await);
            }
            (part, bodies, check)
        });
    }
    let mut parts = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        parts.push(joined.context("a preparation task panicked")?);
    }
    parts.sort_by_key(|(part, _, _)| *part);
    let mut total = SideCheck::default();
    let mut bodies = Vec::with_capacity(mix.len());
    for (_, part_bodies, check) in parts {
        bodies.extend(part_bodies);
        total.requests += check.requests;
        total.transport_errors += check.transport_errors;
        crate::report::add_counts(&mut total.statuses, &check.statuses);
        for (kind, count) in check.empty_pages {
            *total.empty_pages.entry(kind).or_default() += count;
        }
        total.empty_examples.extend(check.empty_examples);
        for (kind, count) in check.items {
            *total.items.entry(kind).or_default() += count;
        }
        total.short_walks += check.short_walks;
        total.deep_pages_reached += check.deep_pages_reached;
        total.deep_pages_requested += check.deep_pages_requested;
    }
    for kind in KINDS {
        total.empty_pages.entry(kind.to_string()).or_default();
    }
    total.empty_examples.truncate(10);
    total.seconds = started.elapsed().as_secs_f64();
    Ok((bodies, total))
}

/// One search request: its status and, on 200, the page.
async fn post(
    client: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
    body: &Value,
    check: &mut SideCheck,
) -> Option<Value> {
    check.requests += 1;
    let mut request = client.post(url).json(body);
    if let Some(bearer) = bearer {
        request = request.header("authorization", bearer);
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(_) => {
            check.transport_errors += 1;
            return None;
        }
    };
    let status = response.status().as_u16();
    *check.statuses.entry(status).or_default() += 1;
    let text = response.text().await.ok()?;
    if status != 200 {
        eprintln!("  {status} for {body}: {}", text.chars().take(300).collect::<String>());
        return None;
    }
    serde_json::from_str(&text).ok()
}

async fn prepare_one(
    client: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
    query: &MixQuery,
    check: &mut SideCheck,
) -> Value {
    let target = query.page.unwrap_or(1).max(1);
    let mut body = query.body.clone();
    let mut page_number = 1;
    let mut page = post(client, url, bearer, &body, check).await;
    while page_number < target {
        let Some(cursor) = page.as_ref().and_then(|page| page["nextCursor"].as_str()).map(str::to_string) else {
            break;
        };
        let mut next = query.body.clone();
        next["cursor"] = json!(cursor);
        let next_page = post(client, url, bearer, &next, check).await;
        if next_page.as_ref().is_some_and(|page| page["items"].as_array().is_some_and(|items| !items.is_empty())) {
            body = next;
            page = next_page;
            page_number += 1;
        } else {
            break;
        }
    }
    if query.kind == DEEP_PAGINATION {
        check.deep_pages_requested += u64::from(target);
        check.deep_pages_reached += u64::from(page_number);
        if page_number < target {
            check.short_walks += 1;
        }
    }
    let items = page.as_ref().and_then(|page| page["items"].as_array()).map_or(0, Vec::len) as u64;
    *check.items.entry(query.kind.clone()).or_default() += items;
    if items == 0 {
        *check.empty_pages.entry(query.kind.clone()).or_default() += 1;
        if check.empty_examples.len() < 10 {
            check.empty_examples.push(query.body.to_string());
        }
    }
    body
}

/// 1,000 URLs of products spread over the whole catalog; every 10th carries tracking parameters
/// (which the lookup's normalization removes).
fn lookup_bodies(catalog: &SynthCatalog) -> Vec<Value> {
    let mut rng = Rng::new(0x100c_0b5e);
    (0..LOOKUPS)
        .map(|number| {
            let url = catalog.product_url(rng.below(catalog.products));
            let url =
                if number % 10 == 9 { format!("{url}?utm_source=newsletter&utm_medium=email&gclid=abc") } else { url };
            json!({"url": url})
        })
        .collect()
}

async fn check_lookups(url: &str, bearer: &str, bodies: &[Value]) -> anyhow::Result<SideCheck> {
    let started = Instant::now();
    let client = reqwest::Client::new();
    let mut check = SideCheck::default();
    for body in bodies {
        if post(&client, url, Some(bearer), body, &mut check).await.is_none() {
            *check.empty_pages.entry("lookup".into()).or_default() += 1;
        }
    }
    check.seconds = started.elapsed().as_secs_f64();
    Ok(check)
}

fn check_line(check: &SideCheck) -> String {
    let empty: Vec<String> = check.empty_pages.iter().map(|(kind, count)| format!("{kind} {count}")).collect();
    format!(
        "{} requests: {}{}; empty measured pages: {}; deep pages reached {} of {}",
        check.requests,
        format_statuses(&check.statuses),
        if check.transport_errors > 0 {
            format!(", {} transport errors", check.transport_errors)
        } else {
            String::new()
        },
        empty.join(", "),
        check.deep_pages_reached,
        check.deep_pages_requested
    )
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "NOT met"
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.0} MB", bytes as f64 / 1e6)
}

pub fn render(report: &SearchReport) -> String {
    let mut out = format!("octogen-bench search — {}\n\n", report.machine.summary());
    if !report.problems.is_empty() {
        out.push_str("!!! PROBLEMS — the numbers below are suspect:\n");
        for problem in &report.problems {
            let _ = writeln!(out, "!!! {problem}");
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "Catalog {} ({} products, seed {}, {} feed) on a {} server: {}.",
        report.catalog_key,
        report.catalog.products,
        report.catalog.seed,
        format_name(report.catalog.format),
        report.server_mode,
        match &report.import {
            Some(import) => format!("imported in {:.1} s ({:.0} products/s)", import.total_s, import.products_per_s),
            None => "already imported (kept data directory)".into(),
        }
    );
    match &report.baseline {
        Some(baseline) => {
            let build = &baseline.build;
            let _ = writeln!(
                out,
                "Baseline: SQLite {} FTS5, {} products, {} facet rows, {} on disk, {}; pool of {} connections.",
                build.sqlite_version,
                build.products,
                build.facet_rows,
                mb(build.db_bytes),
                if build.reused { "reused".to_string() } else { format!("built in {:.1} s", build.build_s) },
                baseline.pool_connections
            );
        }
        None => out.push_str("Baseline: skipped.\n"),
    }
    let kinds: Vec<String> = report.mix.per_kind.iter().map(|(kind, count)| format!("{count} {kind}")).collect();
    let _ = writeln!(
        out,
        "Mix ({}): {} queries: {}; deep pages {}–{}.",
        report.mix.source,
        report.mix.queries,
        kinds.join(", "),
        report.mix.deep_pages_min.unwrap_or(0),
        report.mix.deep_pages_max.unwrap_or(0)
    );
    let _ = writeln!(out, "Preparation, octogen:  {}", check_line(&report.octogen_check));
    if let Some(check) = &report.baseline_check {
        let _ = writeln!(out, "Preparation, baseline: {}", check_line(check));
    }
    for note in &report.notes {
        let _ = writeln!(out, "Note: {note}");
    }
    if !report.octogen_check.empty_examples.is_empty() {
        let _ =
            writeln!(out, "Queries with an empty page on octogen: {}", report.octogen_check.empty_examples.join(" "));
    }
    let _ = writeln!(
        out,
        "Lookups: {} URLs checked: {}.",
        report.lookup_check.requests,
        format_statuses(&report.lookup_check.statuses)
    );
    for level in &report.levels {
        let _ = writeln!(
            out,
            "\n-c {}: {} rounds ({} undisturbed), each: search on both sides (order alternating), then lookups",
            level.connections,
            level.rounds.len(),
            level.undisturbed_rounds
        );
        let mut rows: Vec<(&str, &LoadReport)> = vec![("octogen search", &level.octogen_search)];
        if let Some(baseline) = &level.baseline_search {
            rows.push(("baseline (FTS5) search", baseline));
        }
        rows.push(("octogen lookup", &level.octogen_lookup));
        out.push_str(&render_table(&rows));
        out.push('\n');
        let mut table = vec![[
            "kind",
            "octogen req/s",
            "p50",
            "p90",
            "p99",
            "p99.9",
            "baseline req/s",
            "p50",
            "p90",
            "p99",
            "p99.9",
        ]
        .map(String::from)
        .to_vec()];
        for kind in KINDS {
            let Some(ours) = level.octogen_search.label(kind) else { continue };
            let mut row = vec![
                kind.to_string(),
                format!("{:.0}", ours.requests_per_s),
                format_us(ours.latency.p50_us),
                format_us(ours.latency.p90_us),
                format_us(ours.latency.p99_us),
                format_us(ours.latency.p99_9_us),
            ];
            match level.baseline_search.as_ref().and_then(|baseline| baseline.label(kind)) {
                Some(theirs) => row.extend([
                    format!("{:.0}", theirs.requests_per_s),
                    format_us(theirs.latency.p50_us),
                    format_us(theirs.latency.p90_us),
                    format_us(theirs.latency.p99_us),
                    format_us(theirs.latency.p99_9_us),
                ]),
                None => row.extend(["-"; 5].map(String::from)),
            }
            table.push(row);
        }
        out.push_str(&align(&table));
        out.push('\n');
        let mut table =
            vec![["round", "first", "octogen req/s", "baseline req/s", "ratio", "lookup req/s", "other cores"]
                .map(String::from)
                .to_vec()];
        for (index, round) in level.rounds.iter().enumerate() {
            table.push(vec![
                format!("{}{}", index + 1, if round.disturbed { " (disturbed)" } else { "" }),
                if round.octogen_first { "octogen" } else { "baseline" }.into(),
                format!("{:.0}", round.octogen_rps),
                round.baseline_rps.map_or("-".into(), |rps| format!("{rps:.0}")),
                round.ratio.map_or("-".into(), |ratio| format!("{ratio:.2}×")),
                format!("{:.0}", round.lookup_rps),
                round.other_cores.map_or("-".into(), |cores| format!("{cores:.2}")),
            ]);
        }
        out.push_str(&align(&table));
        out.push('\n');
        let search = &level.octogen_search.latency;
        let _ = writeln!(
            out,
            "search p50 {} (target ≤ {}): {}; search p99 {} (target ≤ {}): {}",
            format_us(search.p50_us),
            format_us(SEARCH_P50_TARGET_US),
            verdict(level.search_p50_met),
            format_us(search.p99_us),
            format_us(SEARCH_P99_TARGET_US),
            verdict(level.search_p99_met)
        );
        let _ = writeln!(
            out,
            "lookup p99 {} (target ≤ {}): {}",
            format_us(level.octogen_lookup.latency.p99_us),
            format_us(LOOKUP_P99_TARGET_US),
            verdict(level.lookup_p99_met)
        );
        match (level.qps_ratio_median, level.qps_ratio_met) {
            (Some(ratio), Some(met)) => {
                let _ = writeln!(
                    out,
                    "search req/s octogen ÷ baseline: {ratio:.2}× (median of {} rounds; all rounds merged {:.2}×) \
                     (target ≥ {QPS_RATIO_TARGET:.0}×): {}",
                    if level.undisturbed_rounds > 0 { "the undisturbed" } else { "all" },
                    level.qps_ratio_merged.unwrap_or(0.0),
                    verdict(met)
                );
            }
            _ => out.push_str("search req/s vs baseline: not measured (baseline skipped)\n"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn lookups_cover_the_catalog_and_carry_some_tracking_parameters() {
        let catalog = SynthCatalog::new(20_000, 42, octogen_ingest::synth::SynthFormat::Shopify);
        let bodies = lookup_bodies(&catalog);
        assert_eq!(bodies.len(), 1_000);
        assert_eq!(bodies.iter().filter(|body| body["url"].as_str().unwrap().contains("utm_source")).count(), 100);
        assert_eq!(bodies, lookup_bodies(&catalog), "deterministic");
    }
}

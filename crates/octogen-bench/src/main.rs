//! `octogen-bench`: the project's benchmarks. See BENCHMARKS.md for results
//! and `octogen-bench --help` for the options.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use octogen_bench::mix::templates_from_json;
use octogen_bench::report::{render_intervals, render_labels, render_table};
use octogen_bench::scenarios::{auth, import, loadtest, search, search_mix};
use octogen_bench::server::{serve_child, CHILD_SUBCOMMAND};
use octogen_bench::{run_load, BenchServer, LoadConfig, RequestMix, RequestTemplate, ServerMode, ServerOptions, Stop};
use octogen_ingest::synth::SynthFormat;

/// The allocator `octogen` runs with, so a child server booted from this binary behaves like `octogen serve`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "octogen-bench", about = "Loopback load generator and benchmarks for the Octogen server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Cost of API-key authentication: authenticated GET /v1/catalogs vs GET /healthz, and
    /// authenticate_key timed in-process.
    Auth(AuthArgs),
    /// End-to-end import of a generated catalog (file to searchable): products/s, phases, peak
    /// RSS, index and store size on disk.
    Import(ImportArgs),
    /// Ad-hoc load: any mix of requests against a booted or external server.
    Load(LoadCommand),
    /// Mixed load test (issue 6): 60 s of catalogs, search, lookup, bad keys and an over-limit
    /// organization at capacity; expected statuses per kind, p99 and server RSS per 10-s window.
    LoadTest(LoadTestArgs),
    /// Search and lookup on the generated catalog (issue 4): the committed 1,000-query mix per
    /// kind, lookups, and an SQLite FTS5 baseline on the same data and queries in the same run.
    Search(SearchArgs),
    /// Regenerates the committed search query mix (crates/octogen-bench/queries/search-mix.json).
    SearchMix(SearchMixArgs),
    /// (internal) Serve as the child server process.
    #[command(name = CHILD_SUBCOMMAND, hide = true)]
    ServeChild(ServeChildArgs),
}

/// Which server to measure.
#[derive(Args, Clone)]
struct ServerArgs {
    /// Benchmark a running server (http://host:port) instead of booting one; fixtures are made
    /// through its operator API with the token in OCTOGEN_ADMIN_TOKEN.
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// Boot the server as a separate process (default: client and server are scheduled as
    /// separate processes, and the server runs with its production logging) or inside this one.
    #[arg(long, value_enum, default_value = "child")]
    server_mode: ModeArg,
    /// Run `PATH serve` (e.g. target/release/octogen) as the child server instead of this program.
    #[arg(long, value_name = "PATH")]
    octogen_bin: Option<PathBuf>,
    /// Log filter of a child server; `octogen serve` defaults to info (one line per request).
    #[arg(long, default_value = "info")]
    server_log_level: String,
    /// PostgreSQL URL for the booted server's store (default: SQLite in a temporary directory).
    #[arg(long, env = "OCTOGEN_BENCH_DATABASE_URL", value_name = "URL")]
    database_url: Option<String>,
    /// The booted server's data directory, kept afterwards (default: a fresh temporary one).
    /// Benchmarks that need a catalog reuse one already imported there.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    Child,
    InProcess,
}

impl ServerArgs {
    fn options(&self) -> ServerOptions {
        ServerOptions {
            mode: match self.server_mode {
                ModeArg::Child => ServerMode::Child,
                ModeArg::InProcess => ServerMode::InProcess,
            },
            octogen_bin: self.octogen_bin.clone(),
            log_level: self.server_log_level.clone(),
            database_url: self.database_url.clone(),
            external: self.server.clone(),
            data_dir: self.data_dir.clone(),
        }
    }
}

/// How hard and how long to push.
#[derive(Args, Clone)]
struct LoadArgs {
    /// Concurrent keep-alive connections, one request in flight on each.
    #[arg(short, long, default_value_t = 32)]
    connections: usize,
    /// Measured seconds per run [default: 10; auth: 2 per run, many short rounds].
    #[arg(short, long, value_parser = parse_seconds, value_name = "SECONDS")]
    duration: Option<Duration>,
    /// Unmeasured seconds before each run [default: 2; auth: 0.5].
    #[arg(long, value_parser = parse_seconds, value_name = "SECONDS")]
    warmup: Option<Duration>,
}

#[derive(Args)]
struct AuthArgs {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    load: LoadArgs,
    /// Rounds of (baseline, authenticated) runs; the order alternates between rounds. Many short
    /// rounds, compared pairwise, resist a shared machine's noise better than a few long ones.
    #[arg(long, default_value_t = 20)]
    rounds: usize,
    /// Catalogs granted to the benchmark partner.
    #[arg(long, default_value_t = 3)]
    catalogs: usize,
    /// Calls per case in the in-process authenticate_key micro-benchmark.
    #[arg(long, default_value_t = 1_000_000)]
    micro_calls: u64,
    /// Before each round, wait until the rest of the machine uses at most this many cores
    /// (0 = do not wait); others building on a shared machine would otherwise skew a round.
    #[arg(long, default_value_t = 0.3, value_name = "CORES")]
    quiet_cores: f64,
    /// The longest wait for a quiet machine before measuring anyway.
    #[arg(long, default_value = "30", value_parser = parse_seconds, value_name = "SECONDS")]
    quiet_timeout: Duration,
    /// Only the micro-benchmark.
    #[arg(long, conflicts_with = "skip_micro")]
    skip_load: bool,
    /// Only the load comparison.
    #[arg(long)]
    skip_micro: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Also write the JSON report to this file (and print the table).
    #[arg(long, value_name = "FILE")]
    json_out: Option<PathBuf>,
}

/// Waiting for a quiet machine before measuring.
#[derive(Args, Clone)]
struct QuietArgs {
    /// Before measuring, wait until the rest of the machine uses at most this many cores
    /// (0 = do not wait); others building on a shared machine would otherwise skew the run.
    #[arg(long, default_value_t = 0.3, value_name = "CORES")]
    quiet_cores: f64,
    /// The longest wait for a quiet machine before measuring anyway.
    #[arg(long, default_value = "60", value_parser = parse_seconds, value_name = "SECONDS")]
    quiet_timeout: Duration,
}

impl QuietArgs {
    fn cores(&self) -> Option<f64> {
        (self.quiet_cores > 0.0).then_some(self.quiet_cores)
    }
}

/// Output format.
#[derive(Args, Clone)]
struct OutputArgs {
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Also write the JSON report to this file (and print the table).
    #[arg(long, value_name = "FILE")]
    json_out: Option<PathBuf>,
}

impl OutputArgs {
    fn emit<R: serde::Serialize>(&self, report: &R, render: impl Fn(&R) -> String) -> anyhow::Result<()> {
        if let Some(path) = &self.json_out {
            let json = serde_json::to_string_pretty(report)?;
            std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))?;
        }
        if self.json {
            println!("{}", serde_json::to_string_pretty(report)?);
        } else {
            print!("{}", render(report));
        }
        Ok(())
    }
}

/// The generated catalog's feed.
#[derive(Args, Clone)]
struct FeedArgs {
    /// Seed of the generator (the same seed gives byte-identical feeds).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Where to write the feed before importing it (default: the system's temporary directory).
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
}

#[derive(Args)]
struct ImportArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Catalog sizes to import, each into a fresh server (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1000000")]
    products: Vec<u64>,
    /// Feed formats of the generated catalog (comma-separated): shopify (storefront JSON with
    /// variants, options, images and tags) and/or csv (one row per product, Myntra's columns).
    #[arg(long, value_delimiter = ',', default_value = "shopify,csv")]
    format: Vec<SynthFormat>,
    #[command(flatten)]
    feed: FeedArgs,
    #[command(flatten)]
    quiet: QuietArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
struct LoadCommand {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    load: LoadArgs,
    /// Stop after this many measured requests instead of after --duration.
    #[arg(long)]
    requests: Option<u64>,
    /// Also report requests/s and latency for each slice of this many seconds.
    #[arg(long, value_parser = parse_seconds, value_name = "SECONDS")]
    interval: Option<Duration>,
    /// A GET request to send (repeatable, equal weights).
    #[arg(long = "get", value_name = "PATH")]
    gets: Vec<String>,
    /// A JSON mix file: [{"label", "method", "path", "headers": {…}, "body", "weight"}].
    #[arg(long, value_name = "FILE")]
    mix: Option<PathBuf>,
    /// Create a catalog partner with this many granted catalogs: its key signs the --get
    /// requests and replaces `{partner_key}` in the mix file.
    #[arg(long, value_name = "CATALOGS")]
    partner: Option<usize>,
    /// The partner's rate limit in requests per minute; the default is the highest the server
    /// accepts, so the run measures serving rather than 429s.
    #[arg(long, default_value_t = 10_000_000, value_name = "PER_MINUTE")]
    partner_rate_limit: u32,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct LoadTestArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Concurrent connections, one request in flight on each (a closed loop: capacity).
    #[arg(short, long, default_value_t = 32)]
    connections: usize,
    /// Measured seconds, cut into 10-s windows for the stability check.
    #[arg(short, long, default_value = "60", value_parser = parse_seconds, value_name = "SECONDS")]
    duration: Duration,
    /// Unmeasured seconds of the same mix first.
    #[arg(long, default_value = "2", value_parser = parse_seconds, value_name = "SECONDS")]
    warmup: Duration,
    /// Products in the generated catalog (imported before the test, or reused from --data-dir).
    #[arg(long, default_value_t = loadtest::DEFAULT_PRODUCTS)]
    products: u64,
    #[command(flatten)]
    feed: FeedArgs,
    #[command(flatten)]
    quiet: QuietArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
struct SearchArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Products in the generated catalog (imported unless --data-dir already has it).
    #[arg(long, default_value_t = 1_000_000)]
    products: u64,
    #[command(flatten)]
    feed: FeedArgs,
    /// Closed-loop connections (comma-separated: one set of rounds per value). 4 = two requests in
    /// flight per core of a 2-core machine: both cores busy (throughput at capacity) without a
    /// queue that would only add waiting time to every latency.
    #[arg(short, long, value_delimiter = ',', default_value = "4")]
    connections: Vec<usize>,
    /// Rounds per connection count; each runs both sides (order alternating) and the lookups.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Measured seconds of each search run (per side and round).
    #[arg(short, long, default_value = "10", value_parser = parse_seconds, value_name = "SECONDS")]
    duration: Duration,
    /// Measured seconds of each lookup run.
    #[arg(long, default_value = "5", value_parser = parse_seconds, value_name = "SECONDS")]
    lookup_duration: Duration,
    /// Unmeasured seconds before each run.
    #[arg(long, default_value = "2", value_parser = parse_seconds, value_name = "SECONDS")]
    warmup: Duration,
    /// A query mix file instead of the committed one (same format).
    #[arg(long, value_name = "FILE")]
    mix: Option<PathBuf>,
    /// Keep the FTS5 baseline's SQLite file here and reuse it when it already holds the catalog.
    #[arg(long, value_name = "FILE")]
    baseline_db: Option<PathBuf>,
    /// SQLite connections in the baseline's pool (each runs queries on its own thread).
    #[arg(long, default_value_t = 4)]
    baseline_connections: u32,
    /// Measure octogen only.
    #[arg(long)]
    skip_baseline: bool,
    #[command(flatten)]
    quiet: QuietArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
struct SearchMixArgs {
    /// Where to write the mix (the committed one: crates/octogen-bench/queries/search-mix.json).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// The WANDS query file some keyword queries are drawn from.
    #[arg(long, value_name = "FILE")]
    wands: Option<PathBuf>,
}

#[derive(Args)]
struct ServeChildArgs {
    #[arg(long)]
    listen: SocketAddr,
    #[arg(long)]
    data_dir: PathBuf,
    #[arg(long)]
    log_level: String,
    #[arg(long)]
    database_url: Option<String>,
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 =
        text.trim_end_matches('s').parse().map_err(|_| format!("{text:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(seconds).map_err(|error| error.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Auth(args) => auth_command(args).await,
        Command::Import(args) => import_command(args).await,
        Command::Load(args) => load_command(args).await,
        Command::LoadTest(args) => load_test_command(args).await,
        Command::Search(args) => search_command(args).await,
        Command::SearchMix(args) => search_mix_command(&args),
        Command::ServeChild(args) => {
            let result = serve_child(args.listen, args.data_dir, args.log_level, args.database_url).await;
            if let Err(error) = &result {
                eprintln!("error: {error:#}");
            }
            // Exit now: the parent-watching stdin read is still blocking a runtime
            // thread, and dropping the runtime would wait for it forever.
            std::process::exit(i32::from(result.is_err()));
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn auth_command(args: AuthArgs) -> anyhow::Result<()> {
    let options = auth::AuthOptions {
        server: args.server.options(),
        connections: args.load.connections,
        warmup: args.load.warmup.unwrap_or(Duration::from_millis(500)),
        duration: args.load.duration.unwrap_or(Duration::from_secs(2)),
        rounds: args.rounds,
        catalogs: args.catalogs,
        micro_calls: args.micro_calls,
        quiet_cores: (args.quiet_cores > 0.0).then_some(args.quiet_cores),
        quiet_timeout: args.quiet_timeout,
        skip_load: args.skip_load,
        skip_micro: args.skip_micro,
    };
    let report = auth::run(&options).await?;
    if let Some(path) = &args.json_out {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", auth::render(&report));
    }
    Ok(())
}

async fn import_command(args: ImportArgs) -> anyhow::Result<()> {
    let mut server = args.server.options();
    // The follower's per-batch timings (read from the store, applied to the index) are logged at debug.
    server.log_level = format!("{},octogen_server::indexing::follower=debug", server.log_level);
    let options = import::ImportOptions {
        server,
        sizes: args.products.clone(),
        formats: args.format.clone(),
        seed: args.feed.seed,
        work_dir: args.feed.work_dir.clone(),
        quiet_cores: args.quiet.cores(),
        quiet_timeout: args.quiet.quiet_timeout,
    };
    let report = import::run(&options).await?;
    args.output.emit(&report, import::render)
}

async fn load_test_command(args: LoadTestArgs) -> anyhow::Result<()> {
    let options = loadtest::LoadTestOptions {
        server: args.server.options(),
        products: args.products,
        seed: args.feed.seed,
        connections: args.connections,
        warmup: args.warmup,
        duration: args.duration,
        work_dir: args.feed.work_dir.clone(),
        quiet_cores: args.quiet.cores(),
        quiet_timeout: args.quiet.quiet_timeout,
    };
    let report = loadtest::run(&options).await?;
    args.output.emit(&report, loadtest::render)?;
    // A failed verdict fails the command (after the report), so scripts can rely on it.
    anyhow::ensure!(report.verdict.passed, "the load test failed: {}", report.verdict.failures.join("; "));
    Ok(())
}

async fn search_command(args: SearchArgs) -> anyhow::Result<()> {
    let options = search::SearchOptions {
        server: args.server.options(),
        catalog: octogen_bench::scenarios::catalog::SynthCatalog::new(
            args.products,
            args.feed.seed,
            SynthFormat::Shopify,
        ),
        work_dir: args.feed.work_dir.clone(),
        mix: args.mix.clone(),
        connections: args.connections.clone(),
        rounds: args.rounds,
        warmup: args.warmup,
        duration: args.duration,
        lookup_duration: args.lookup_duration,
        baseline_db: args.baseline_db.clone(),
        baseline_connections: args.baseline_connections,
        skip_baseline: args.skip_baseline,
        quiet_cores: args.quiet.cores(),
        quiet_timeout: args.quiet.quiet_timeout,
    };
    let report = search::run(&options).await?;
    args.output.emit(&report, search::render)
}

fn search_mix_command(args: &SearchMixArgs) -> anyhow::Result<()> {
    let wands = args.wands.clone().unwrap_or_else(search_mix::default_wands_path);
    let queries = search_mix::generate(&wands)?;
    std::fs::write(&args.out, search_mix::to_file_text(&queries))
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    eprintln!("wrote {} queries to {}", queries.len(), args.out.display());
    Ok(())
}

async fn load_command(args: LoadCommand) -> anyhow::Result<()> {
    let server = BenchServer::start(&args.server.options()).await?;
    eprintln!("server: {} at {}", server.mode(), server.base_url());
    let result = load_on(&server, &args).await;
    server.stop().await?;
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render_table(&[("all requests", &report)]));
        if report.labels.len() > 1 {
            print!("\n{}", render_labels(&report));
        }
        if !report.intervals.is_empty() {
            print!("\n{}", render_intervals(&report));
        }
    }
    Ok(())
}

async fn load_on(server: &BenchServer, args: &LoadCommand) -> anyhow::Result<octogen_bench::LoadReport> {
    let partner_key = match args.partner {
        Some(catalogs) => {
            let partner = server.admin().partner_fixture("Load partner", catalogs).await?;
            server.admin().set_rate_limit(&partner.org_id, Some(args.partner_rate_limit)).await?;
            Some(partner.key.key)
        }
        None => None,
    };
    let mut templates = Vec::new();
    for path in &args.gets {
        let template = RequestTemplate::get(format!("GET {path}"), path.clone());
        templates.push(match &partner_key {
            Some(key) => template.bearer(key),
            None => template,
        });
    }
    if let Some(file) = &args.mix {
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
        let vars: Vec<(&str, &str)> = partner_key.iter().map(|key| ("partner_key", key.as_str())).collect();
        templates.extend(templates_from_json(&text, &vars).with_context(|| format!("in {}", file.display()))?);
    }
    anyhow::ensure!(!templates.is_empty(), "nothing to send: give --get PATH or --mix FILE");
    let mix = RequestMix::new(templates)?;
    let warmup = args.load.warmup.unwrap_or(Duration::from_secs(2));
    let duration = args.load.duration.unwrap_or(Duration::from_secs(10));
    let mut config = LoadConfig::timed(args.load.connections, warmup, duration);
    if let Some(requests) = args.requests {
        config.stop = Stop::Requests(requests);
    }
    config.interval = args.interval;
    config.server_pid = server.pid();
    run_load(server.addr(), &mix, &config).await
}

//! Issue 2, point 8: what authentication and the grant lookup cost.
//!
//! 1. **Throughput**: on one server, in one run, unauthenticated `GET /healthz`
//!    (the baseline: routing, middleware, request id, access log, a tiny JSON
//!    body) against authenticated `GET /v1/catalogs` for a partner with a few
//!    granted catalogs. The relative loss of requests/s is the cost of the
//!    key check, the grant lookup and the (small) catalog list. Target < 15 %.
//! 2. **Server-side latency**: `octogen_server::auth::authenticate_key` called
//!    directly on an in-process server, ~1M times per case, each call timed.
//!    Target p99 < 50 µs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{ensure, Context};
use octogen_core::api_key::random_token;
use octogen_server::api::gate::organization_budget;
use octogen_server::auth::authenticate_key;
use octogen_server::state::AppState;
use secrecy::ExposeSecret;
use serde::Serialize;

use crate::access_log::{log_len, route_summaries};
use crate::admin::PartnerFixture;
use crate::cpu::wait_until_quiet;
use crate::load::{run_load, LoadConfig};
use crate::machine::Machine;
use crate::micro::{clock_overhead, time_calls, time_concurrently, timed_loop, MicroReport};
use crate::mix::{RequestMix, RequestTemplate};
use crate::report::{align, render_table, LoadReport};
use crate::server::{BenchServer, ServerMode, ServerOptions};
use crate::stats::{format_us, LatencySummary};

/// Authentication may cost at most this share of the baseline's requests/s.
pub const THROUGHPUT_COST_TARGET: f64 = 0.15;
/// Server-side authentication + grant lookup, p99.
pub const LATENCY_TARGET_US: f64 = 50.0;
/// Unmeasured load on each path before the first round.
const INITIAL_WARMUP: Duration = Duration::from_secs(3);

/// A round during which the rest of the machine used more than this many cores
/// does not count. On a quiet machine it stays under 0.1 (the loopback
/// networking the kernel does not charge to either process).
pub const DISTURBED_CORES: f64 = 0.25;

#[derive(Debug, Clone)]
pub struct AuthOptions {
    pub server: ServerOptions,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Each round runs both targets; their order alternates between rounds.
    pub rounds: usize,
    /// Catalogs granted to the benchmark partner.
    pub catalogs: usize,
    pub micro_calls: u64,
    /// Before each round, wait until other work on the machine uses at most this many cores…
    pub quiet_cores: Option<f64>,
    /// …but no longer than this.
    pub quiet_timeout: Duration,
    pub skip_load: bool,
    pub skip_micro: bool,
}

#[derive(Debug, Serialize)]
pub struct AuthReport {
    pub benchmark: &'static str,
    pub machine: Machine,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadComparison>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub micro: Option<MicroComparison>,
}

#[derive(Debug, Serialize)]
pub struct LoadComparison {
    pub server: &'static str,
    pub server_log_level: String,
    pub connections: usize,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub rounds: usize,
    pub granted_catalogs: usize,
    /// `GET /healthz`, every round merged.
    pub baseline: LoadReport,
    /// Authenticated `GET /v1/catalogs`, every round merged.
    pub authenticated: LoadReport,
    pub per_round: Vec<Round>,
    /// The median over undisturbed rounds (all rounds if none was) of each
    /// round's `1 - authenticated / baseline` requests/s. Pairing runs seconds
    /// apart and taking the median keeps other work on a shared machine from
    /// deciding the result.
    pub throughput_cost: f64,
    /// How many rounds the median is over.
    pub undisturbed_rounds: usize,
    /// `1 - authenticated / baseline` over all rounds merged.
    pub throughput_cost_merged: f64,
    /// `1 - baseline / authenticated` server CPU time per request (child server
    /// only): the same cost seen as CPU, insensitive to what else runs.
    pub server_cpu_cost: Option<f64>,
    pub throughput_cost_target: f64,
    pub target_met: bool,
    /// Per route, from the server's access log (child server only; includes warm-ups).
    pub server_side: BTreeMap<String, LatencySummary>,
}

/// One baseline run and one authenticated run, back to back.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Round {
    pub baseline_rps: f64,
    pub authenticated_rps: f64,
    pub cost: f64,
    /// The larger `other_cores` of the two runs: how much else was running.
    pub other_cores: Option<f64>,
    /// Whether the machine was quiet when the round started (when asked to wait for it).
    pub started_quiet: Option<bool>,
    /// Other work used more than `DISTURBED_CORES` during the round.
    pub disturbed: bool,
    /// Server CPU time per request of (baseline, authenticated), child server only.
    pub server_cpu_us_per_request: Option<(f64, f64)>,
}

#[derive(Debug, Serialize)]
pub struct MicroComparison {
    pub granted_catalogs: usize,
    pub cases: Vec<MicroReport>,
    pub latency_target_p99_us: f64,
    /// Every authentication case's p99 is under the target.
    pub target_met: bool,
}

pub async fn run(options: &AuthOptions) -> anyhow::Result<AuthReport> {
    let machine = Machine::describe();
    // On PostgreSQL both servers of the run use one database, which is bound to the key pepper of
    // the first; so they share a data directory (and its pepper file) as well.
    let shared_dir = match (&options.server.database_url, &options.server.data_dir) {
        (Some(_), None) => Some(tempfile::tempdir().context("cannot create a data directory")?),
        _ => None,
    };
    let mut options = options.clone();
    if let Some(dir) = &shared_dir {
        options.server.data_dir = Some(dir.path().to_path_buf());
    }
    let load = if options.skip_load { None } else { Some(compare_throughput(&options).await?) };
    let micro = if options.skip_micro { None } else { Some(time_authentication(&options).await?) };
    Ok(AuthReport { benchmark: "auth", machine, load, micro })
}

async fn compare_throughput(options: &AuthOptions) -> anyhow::Result<LoadComparison> {
    let server = BenchServer::start(&options.server).await?;
    eprintln!("server: {} at {}", server.mode(), server.base_url());
    let result = compare_on(&server, options).await;
    server.stop().await?;
    result
}

async fn compare_on(server: &BenchServer, options: &AuthOptions) -> anyhow::Result<LoadComparison> {
    let partner = benchmark_partner(server, "Benchmark partner", options.catalogs).await?;
    check_catalogs_answer(server, &partner).await?;
    let baseline_mix = RequestMix::single(RequestTemplate::get("healthz", "/healthz"))?;
    let authenticated_mix =
        RequestMix::single(RequestTemplate::get("catalogs", "/v1/catalogs").bearer(&partner.key.key))?;
    let mut config = LoadConfig::timed(options.connections, options.warmup, options.duration);
    config.server_pid = server.pid();
    // Once, before any round: both paths hot (allocator, caches, CPU frequency).
    for mix in [&baseline_mix, &authenticated_mix] {
        run_load(server.addr(), mix, &LoadConfig::timed(options.connections, Duration::ZERO, INITIAL_WARMUP)).await?;
    }
    let log_start = server.log_path().map(log_len);

    let mut baseline: Option<LoadReport> = None;
    let mut authenticated: Option<LoadReport> = None;
    let mut per_round = Vec::new();
    for round in 0..options.rounds {
        // Alternate the order so slow drift (a noisy neighbour, CPU boost) hits both sides alike.
        let baseline_first = round % 2 == 0;
        let quiet = wait_for_quiet(options).await;
        let mut pair: [Option<LoadReport>; 2] = [None, None];
        for run_baseline in [baseline_first, !baseline_first] {
            let (name, mix) =
                if run_baseline { ("GET /healthz", &baseline_mix) } else { ("GET /v1/catalogs", &authenticated_mix) };
            let report = run_load(server.addr(), mix, &config).await?;
            eprintln!(
                "round {}/{}: {name}: {:.0} req/s (other work: {} cores)",
                round + 1,
                options.rounds,
                report.requests_per_s,
                report.cpu.other_cores.map_or("?".into(), |cores| format!("{cores:.2}"))
            );
            pair[usize::from(!run_baseline)] = Some(report);
        }
        let [Some(round_baseline), Some(round_authenticated)] = pair else { unreachable!("both sides ran") };
        per_round.push(Round::of(&round_baseline, &round_authenticated, quiet));
        merge_into(&mut baseline, round_baseline);
        merge_into(&mut authenticated, round_authenticated);
    }
    let baseline = baseline.context("at least one round is needed")?;
    let authenticated = authenticated.context("at least one round is needed")?;
    let undisturbed: Vec<f64> = per_round.iter().filter(|round| !round.disturbed).map(|round| round.cost).collect();
    let undisturbed_rounds = undisturbed.len();
    let throughput_cost = if undisturbed.is_empty() {
        median(per_round.iter().map(|round| round.cost).collect())
    } else {
        median(undisturbed)
    };
    let throughput_cost_merged = 1.0 - authenticated.requests_per_s / baseline.requests_per_s;
    let server_cpu_cost = baseline
        .cpu
        .server_cpu_us_per_request
        .zip(authenticated.cpu.server_cpu_us_per_request)
        .map(|(baseline, authenticated)| 1.0 - baseline / authenticated);
    let server_side = match (server.log_path(), log_start) {
        (Some(path), Some(start)) => route_summaries(path, start)?,
        _ => BTreeMap::new(),
    };
    Ok(LoadComparison {
        server: server.mode(),
        server_log_level: options.server.log_level.clone(),
        connections: options.connections,
        warmup_s: options.warmup.as_secs_f64(),
        duration_s: options.duration.as_secs_f64(),
        rounds: options.rounds,
        granted_catalogs: options.catalogs,
        target_met: throughput_cost < THROUGHPUT_COST_TARGET
            && baseline.unexpected(&[200]) == 0
            && authenticated.unexpected(&[200]) == 0,
        baseline,
        authenticated,
        per_round,
        throughput_cost,
        undisturbed_rounds,
        throughput_cost_merged,
        server_cpu_cost,
        throughput_cost_target: THROUGHPUT_COST_TARGET,
        server_side,
    })
}

impl Round {
    fn of(baseline: &LoadReport, authenticated: &LoadReport, started_quiet: Option<bool>) -> Self {
        let other = baseline.cpu.other_cores.zip(authenticated.cpu.other_cores).map(|(a, b)| a.max(b));
        Round {
            baseline_rps: baseline.requests_per_s,
            authenticated_rps: authenticated.requests_per_s,
            cost: 1.0 - authenticated.requests_per_s / baseline.requests_per_s,
            other_cores: other,
            started_quiet,
            disturbed: other.is_some_and(|cores| cores > DISTURBED_CORES),
            server_cpu_us_per_request: baseline
                .cpu
                .server_cpu_us_per_request
                .zip(authenticated.cpu.server_cpu_us_per_request),
        }
    }
}

async fn wait_for_quiet(options: &AuthOptions) -> Option<bool> {
    let max_cores = options.quiet_cores?;
    let quiet = wait_until_quiet(max_cores, options.quiet_timeout).await;
    if !quiet {
        eprintln!("the machine is still busy after {:?}: measuring anyway", options.quiet_timeout);
    }
    Some(quiet)
}

fn merge_into(total: &mut Option<LoadReport>, report: LoadReport) {
    match total {
        Some(total) => total.merge(&report),
        None => *total = Some(report),
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The server's highest per-organization rate limit (10 M/min, ~167 k/s) is
/// above what 2 cores can serve, so the benchmark measures the budget check
/// without being refused by it.
const UNTHROTTLED_PER_MINUTE: u32 = 10_000_000;

async fn benchmark_partner(server: &BenchServer, name: &str, catalogs: usize) -> anyhow::Result<PartnerFixture> {
    let admin = server.admin();
    let partner = admin.partner_fixture(name, catalogs).await?;
    admin.set_rate_limit(&partner.org_id, Some(UNTHROTTLED_PER_MINUTE)).await?;
    Ok(partner)
}

/// One request before the clock starts: the key works and sees exactly its grants,
/// so the benchmark measures the real, successful path.
async fn check_catalogs_answer(server: &BenchServer, partner: &PartnerFixture) -> anyhow::Result<()> {
    let response = reqwest::Client::new()
        .get(format!("{}/v1/catalogs", server.base_url()))
        .bearer_auth(&partner.key.key)
        .send()
        .await?;
    ensure!(response.status() == 200, "GET /v1/catalogs answered {}", response.status());
    let catalogs: Vec<serde_json::Value> = response.json().await?;
    ensure!(catalogs.len() == partner.catalogs.len(), "expected {} catalogs, got {catalogs:?}", partner.catalogs.len());
    Ok(())
}

async fn time_authentication(options: &AuthOptions) -> anyhow::Result<MicroComparison> {
    // In-process whatever the load used: the function is called directly.
    let server_options = ServerOptions { mode: ServerMode::InProcess, ..options.server.clone() };
    let server = BenchServer::in_process(&server_options).await?;
    let result = time_authentication_on(&server, options).await;
    server.stop().await?;
    result
}

async fn time_authentication_on(server: &BenchServer, options: &AuthOptions) -> anyhow::Result<MicroComparison> {
    let partner = benchmark_partner(server, "Micro-benchmark partner", options.catalogs).await?;
    let state = server.state().context("an in-process server exposes its state")?.clone();
    let tokens = Tokens::for_key(&partner.key.key);
    tokens.check(&state).await?;

    let calls = options.micro_calls;
    let warmup = calls / 10;
    wait_for_quiet(options).await;
    eprintln!("timing authenticate_key: {calls} calls per case");
    let mut cases = vec![clock_overhead(calls).await];
    let granted = format!("valid key, {} granted catalogs", options.catalogs);
    cases.push(
        time_calls(&format!("authenticate_key: {granted}"), warmup, calls, || authenticate_key(&state, &tokens.valid))
            .await,
    );
    cases.push(time_calls(&format!("/v1 gate: {granted}"), warmup, calls, || v1_gate(&state, &tokens.valid)).await);
    cases.push(
        time_calls("authenticate_key: wrong secret", warmup, calls, || authenticate_key(&state, &tokens.wrong_secret))
            .await,
    );
    cases.push(
        time_calls("authenticate_key: unknown key id", warmup, calls, || authenticate_key(&state, &tokens.unknown_id))
            .await,
    );
    // The same valid-key path from every core at once: shared locks (the directory's
    // RwLock, the rate limiter's and usage recorder's Mutexes) only cost under contention.
    let tasks = std::thread::available_parallelism().map_or(2, |cores| cores.get());
    let per_task = calls / tasks as u64;
    let name = format!("/v1 gate: {granted}, {tasks} tasks at once");
    cases.push(
        time_concurrently(&name, tasks, || {
            let (state, token) = (state.clone(), tokens.valid.clone());
            async move { timed_loop(per_task / 10, per_task, || v1_gate(&state, &token)).await }
        })
        .await?,
    );
    let target_met = cases.iter().skip(1).all(|case| case.latency.p99_us < LATENCY_TARGET_US);
    Ok(MicroComparison {
        granted_catalogs: options.catalogs,
        cases,
        latency_target_p99_us: LATENCY_TARGET_US,
        target_met,
    })
}

/// What the `/v1` gate (`octogen_server::api::gate`) does for a valid bearer
/// token before the handler runs: authenticate, take one token from the
/// organization's rate budget, note the key's use.
async fn v1_gate(state: &AppState, token: &[u8]) -> bool {
    let Ok(principal) = authenticate_key(state, token).await else { return false };
    let per_minute = principal.org.rate_limit_per_minute.unwrap_or(state.config.default_rate_limit_per_minute);
    let budget = state.limiter.take(&organization_budget(&principal.org.id), per_minute).await;
    state.usage.touch(principal.key_id);
    budget.is_ok_and(|budget| budget.allowed())
}

/// The three credentials the micro-benchmark presents.
struct Tokens {
    valid: Vec<u8>,
    /// The valid key's id with another secret: found, HMAC compared, refused.
    wrong_secret: Vec<u8>,
    /// An id no key has: not found, but the same HMAC is computed anyway.
    unknown_id: Vec<u8>,
}

impl Tokens {
    fn for_key(key: &str) -> Self {
        // `octo_live_` + 32 hex id + `_`, then the 43-character secret.
        let id_part = &key[..key.len() - 43];
        let other_secret = random_token(32);
        Tokens {
            valid: key.as_bytes().to_vec(),
            wrong_secret: format!("{id_part}{}", other_secret.expose_secret()).into_bytes(),
            unknown_id: format!("octo_live_{}_{}", "0123456789abcdef".repeat(2), other_secret.expose_secret())
                .into_bytes(),
        }
    }

    /// Each case takes the path it is named for, or the numbers would mislead.
    async fn check(&self, state: &AppState) -> anyhow::Result<()> {
        ensure!(authenticate_key(state, &self.valid).await.is_ok(), "the minted key does not authenticate");
        ensure!(authenticate_key(state, &self.wrong_secret).await.is_err(), "a wrong secret authenticates");
        ensure!(authenticate_key(state, &self.unknown_id).await.is_err(), "an unknown key id authenticates");
        Ok(())
    }
}

/// The human-readable report.
pub fn render(report: &AuthReport) -> String {
    let mut out = format!("octogen-bench auth — {}\n", report.machine.summary());
    if let Some(load) = &report.load {
        out.push_str(&render_load(load));
    }
    if let Some(micro) = &report.micro {
        out.push_str(&render_micro(micro));
    }
    out
}

fn render_load(load: &LoadComparison) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nThroughput: GET /healthz vs authenticated GET /v1/catalogs ({} granted catalogs)\n\
         server: {} (log level {}); {} connections; {} rounds of {:.1} s per side, each after {:.1} s warm-up\n",
        load.granted_catalogs,
        load.server,
        load.server_log_level,
        load.connections,
        load.rounds,
        load.duration_s,
        load.warmup_s
    );
    out.push_str(&render_table(&[
        ("GET /healthz (baseline)", &load.baseline),
        ("GET /v1/catalogs (authenticated)", &load.authenticated),
    ]));
    let _ = writeln!(out);
    let mut rows =
        vec![["round", "healthz req/s", "catalogs req/s", "cost", "server CPU/req", "other cores", "disturbed"]
            .map(String::from)
            .to_vec()];
    for (index, round) in load.per_round.iter().enumerate() {
        rows.push(vec![
            (index + 1).to_string(),
            format!("{:.0}", round.baseline_rps),
            format!("{:.0}", round.authenticated_rps),
            format!("{:.1} %", round.cost * 100.0),
            round.server_cpu_us_per_request.map_or("-".into(), |(baseline, authenticated)| {
                format!("{} / {}", format_us(baseline), format_us(authenticated))
            }),
            round.other_cores.map_or("-".into(), |cores| format!("{cores:.2}")),
            if round.disturbed { "yes" } else { "no" }.into(),
        ]);
    }
    out.push_str(&align(&rows));
    let _ = writeln!(
        out,
        "\nthroughput cost of authentication + grant lookup (median of {} undisturbed rounds): {:.1} % \
         (target < {:.0} %): {}",
        load.undisturbed_rounds,
        load.throughput_cost * 100.0,
        load.throughput_cost_target * 100.0,
        verdict(load.target_met)
    );
    let _ = writeln!(out, "  over all rounds merged: {:.1} %", load.throughput_cost_merged * 100.0);
    if let Some(cost) = load.server_cpu_cost {
        let _ = writeln!(out, "  as server CPU time per request: {:.1} %", cost * 100.0);
    }
    if !load.server_side.is_empty() {
        let _ = writeln!(out, "\nServer-side latency per route (access log latency_us, warm-ups included):");
        let mut rows = vec![["route", "requests", "p50", "p99", "p99.9", "max"].map(String::from).to_vec()];
        for (route, summary) in &load.server_side {
            rows.push(vec![
                route.clone(),
                summary.count.to_string(),
                format_us(summary.p50_us),
                format_us(summary.p99_us),
                format_us(summary.p99_9_us),
                format_us(summary.max_us),
            ]);
        }
        out.push_str(&align(&rows));
    }
    out
}

fn render_micro(micro: &MicroComparison) -> String {
    let mut out = String::from("\nServer-side authentication, called directly (in-process):\n");
    let mut rows =
        vec![["case", "calls", "calls/s (all tasks)", "p50", "p90", "p99", "p99.9", "max"].map(String::from).to_vec()];
    for case in &micro.cases {
        rows.push(vec![
            case.name.clone(),
            case.calls.to_string(),
            format!("{:.0}", case.calls_per_s),
            format_us(case.latency.p50_us),
            format_us(case.latency.p90_us),
            format_us(case.latency.p99_us),
            format_us(case.latency.p99_9_us),
            format_us(case.latency.max_us),
        ]);
    }
    out.push_str(&align(&rows));
    let _ = writeln!(
        out,
        "p99 of every authentication case < {:.0} µs: {}",
        micro.latency_target_p99_us,
        verdict(micro.target_met)
    );
    out
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "NOT met"
    }
}

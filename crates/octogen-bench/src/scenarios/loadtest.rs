//! Issue 6, point 4: the mixed load test. Bounded (a fixed duration), on
//! loopback, at the machine's capacity (a closed loop: every connection sends
//! its next request as soon as the last one is answered).
//!
//! One server (a child process by default) with a generated catalog (100,000
//! products by default, so set-up takes seconds; `--products` for more), and:
//! - a catalog partner granted that catalog, with the highest rate limit the
//!   server accepts (so its traffic measures serving, not 429s);
//! - an *over-limit* partner granted the same catalog with a small limit
//!   (60/min): after its first minute's budget it gets mostly 429;
//! - bad credentials: an unknown but well-formed key, the valid key's id with a
//!   wrong secret, a malformed key, a revoked key, no `Authorization` header.
//!   Failed authentications draw from a per-client-address budget (the server's
//!   `auth_failure_limit_per_minute`, 60 by default) and every request here
//!   comes from 127.0.0.1, so after the first 60 most of them get 429 rather
//!   than 401: both are expected, and the 429 path is part of what is tested.
//!
//! The mix (weights in `mix`): catalog lists, searches (keyword, facets,
//! browse with a price range, one catalog), lookups of existing product URLs
//! (some with tracking parameters to strip) and of unknown ones (404
//! `product_not_found`), the bad credentials and the over-limit partner. Each
//! label has its set of expected statuses; the verdict counts every response
//! outside it (any 5xx, or e.g. a 422 from a search) and every transport
//! error, so "zero 5xx, no unexpected errors" is computed, not read off.
//!
//! Stability: the measured phase is cut into 10-s windows (requests placed by
//! their start time). Per window: requests/s, p50, p99, the server's CPU and its
//! resident memory (`VmRSS`) at the window's end. The rules (see
//! `P99_GROWTH_FACTOR`, `P99_SLACK_US`, `RSS_GROWTH_FRACTION`, `RSS_SLACK_BYTES`):
//! the last window's p99 is at most 1.5× the first's or at most 2 ms above it,
//! and the RSS at the end of the last window is at most 10 % or 50 MiB above the
//! RSS at the end of the first window, whichever allows more.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Context};
use http::Method;
use octogen_core::api_key::random_token;
use octogen_ingest::synth::{SynthFormat, SYNTH_BASE_URL};
use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::{json, Value};

use crate::access_log::{log_len, route_summaries};
use crate::admin::PartnerFixture;
use crate::cpu::{process_peak_rss_bytes, process_rss_bytes, wait_until_quiet};
use crate::load::{run_load, LoadConfig};
use crate::machine::Machine;
use crate::mix::{RequestMix, RequestTemplate};
use crate::report::{align, format_mib, format_statuses, render_table, LoadReport};
use crate::scenarios::auth::DISTURBED_CORES;
use crate::scenarios::catalog::{ensure_catalog, SynthCatalog};
use crate::server::{BenchServer, ServerOptions};
use crate::stats::{format_us, LatencySummary};

pub const DEFAULT_PRODUCTS: u64 = 100_000;
/// The length of a stability window.
pub const WINDOW: Duration = Duration::from_secs(10);
/// The well-behaved partner: the server's highest per-organization limit (10 M/min, ~167 k/s).
pub const PARTNER_PER_MINUTE: u32 = 10_000_000;
/// The over-limit partner: a minute's budget is gone within the warm-up.
pub const OVER_LIMIT_PER_MINUTE: u32 = 60;
/// p99 is stable if the last window's is at most this many times the first window's…
pub const P99_GROWTH_FACTOR: f64 = 1.5;
/// …or at most this much above it (µs): on a shared 2-core machine a p99 of a few
/// milliseconds moves by a millisecond or two from scheduling alone.
pub const P99_SLACK_US: f64 = 2_000.0;
/// Memory is stable if the RSS at the end of the last window is at most this fraction…
pub const RSS_GROWTH_FRACTION: f64 = 0.10;
/// …or at most this many bytes above the RSS at the end of the first window, whichever is larger.
pub const RSS_SLACK_BYTES: u64 = 50 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct LoadTestOptions {
    pub server: ServerOptions,
    pub products: u64,
    pub seed: u64,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Where the feed is written before the import (default: the system's temporary directory).
    pub work_dir: Option<std::path::PathBuf>,
    pub quiet_cores: Option<f64>,
    pub quiet_timeout: Duration,
}

#[derive(Debug, Serialize)]
pub struct LoadTestReport {
    pub benchmark: &'static str,
    pub machine: Machine,
    pub server: &'static str,
    pub server_log_level: String,
    /// `sqlite` or `postgresql`.
    pub store: &'static str,
    pub catalog: SynthCatalog,
    pub catalog_key: String,
    /// The catalog's import time, when this run imported it (not part of the test).
    pub import_s: Option<f64>,
    pub connections: usize,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub window_s: f64,
    /// Whether the machine was quiet when the measured run started (when asked to wait for it).
    pub started_quiet: Option<bool>,
    /// Per label: its share of the mix, what was expected and what came back.
    pub outcomes: Vec<LabelOutcome>,
    pub windows: Vec<Window>,
    /// The server's resident memory before the load, after set-up (child server only).
    pub server_rss_before_bytes: Option<u64>,
    /// Its resident memory right after the run.
    pub server_rss_after_bytes: Option<u64>,
    /// The highest resident memory the server process has had (`VmHWM`), import included.
    pub server_peak_rss_bytes: Option<u64>,
    /// Per route, from the server's access log (child server only; includes the warm-up).
    pub server_side: BTreeMap<String, LatencySummary>,
    /// Lines the server logged at ERROR level during the run (child server only).
    pub server_error_log_lines: Option<u64>,
    pub verdict: Verdict,
    /// Every request of the run: totals, per label, per window, CPU.
    pub load: LoadReport,
}

#[derive(Debug, Serialize)]
pub struct LabelOutcome {
    pub label: String,
    pub description: String,
    /// Its weight in the mix, and that as a share of the whole mix.
    pub weight: u32,
    pub share: f64,
    pub templates: usize,
    pub expected: Vec<u16>,
    pub requests: u64,
    pub requests_per_s: f64,
    pub statuses: BTreeMap<u16, u64>,
    /// Statuses outside `expected`, with their counts.
    pub unexpected: BTreeMap<u16, u64>,
    pub latency: LatencySummary,
}

#[derive(Debug, Serialize)]
pub struct Window {
    pub start_s: f64,
    pub duration_s: f64,
    pub requests: u64,
    pub requests_per_s: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    pub transport_errors: u64,
    pub server_cores: Option<f64>,
    /// Cores the rest of the machine used (other processes, kernel work charged to neither side).
    pub other_cores: Option<f64>,
    /// `other_cores` above `DISTURBED_CORES`: other work competed for the cores.
    pub disturbed: bool,
    /// `VmRSS` at the window's end.
    pub server_rss_bytes: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct Verdict {
    pub responses_5xx: u64,
    /// Responses with a status outside their label's expected set (5xx included).
    pub unexpected_responses: u64,
    pub transport_errors: u64,
    /// Zero 5xx, no unexpected status and no transport error.
    pub errors_ok: bool,
    /// The windows compared: the first, and the last that is at least half a window long.
    pub first_window: usize,
    pub last_window: usize,
    pub p99_first_us: f64,
    pub p99_last_us: f64,
    /// `max(first × P99_GROWTH_FACTOR, first + P99_SLACK_US)`.
    pub p99_limit_us: f64,
    pub p99_stable: bool,
    pub rss_first_bytes: Option<u64>,
    pub rss_last_bytes: Option<u64>,
    pub rss_growth_bytes: Option<i64>,
    /// `max(first × RSS_GROWTH_FRACTION, RSS_SLACK_BYTES)`.
    pub rss_growth_limit_bytes: Option<u64>,
    /// `None` when the server's memory cannot be read (in-process or external server).
    pub rss_stable: Option<bool>,
    /// The over-limit partner's successful requests in the measured phase, and the most its
    /// budget allows then (a full bucket plus the refill over the phase).
    pub over_limit_allowed: u64,
    pub over_limit_allowance: u64,
    pub rate_limit_enforced: bool,
    pub passed: bool,
    /// False when other work on the machine disturbed a compared window (see `Window::disturbed`):
    /// a failed p99 verdict may then be the neighbours', and the run should be repeated.
    pub conclusive: bool,
    /// What failed, in words (empty when passed).
    pub failures: Vec<String>,
}

/// One kind of traffic: its templates share a label and a set of expected statuses.
struct Traffic {
    label: &'static str,
    description: &'static str,
    /// Share of the mix, out of the labels' total (spread evenly over the templates).
    weight: u32,
    expected: &'static [u16],
    templates: Vec<RequestTemplate>,
}

/// The credentials the mix uses.
struct Fixtures {
    partner: PartnerFixture,
    over_limit: PartnerFixture,
    revoked_key: String,
}

pub async fn run(options: &LoadTestOptions) -> anyhow::Result<LoadTestReport> {
    let machine = Machine::describe();
    let server = BenchServer::start(&options.server).await?;
    eprintln!("server: {} at {}", server.mode(), server.base_url());
    let result = run_on(&server, options, machine).await;
    let peak = server.pid().and_then(process_peak_rss_bytes);
    server.stop().await?;
    let mut report = result?;
    report.server_peak_rss_bytes = report.server_peak_rss_bytes.or(peak);
    Ok(report)
}

async fn run_on(server: &BenchServer, options: &LoadTestOptions, machine: Machine) -> anyhow::Result<LoadTestReport> {
    let catalog = SynthCatalog::new(options.products, options.seed, SynthFormat::Shopify);
    let work_dir = tempfile::tempdir_in(options.work_dir.as_deref().unwrap_or(&std::env::temp_dir()))
        .context("cannot create a directory for the feed")?;
    let import = ensure_catalog(server, &catalog, work_dir.path()).await?;
    let fixtures = make_fixtures(server, &catalog.key()).await?;
    let traffic = mix(&catalog, &fixtures);
    preflight(server, &traffic).await?;
    let templates: Vec<RequestTemplate> = traffic.iter().flat_map(|kind| kind.templates.iter().cloned()).collect();
    let mix = RequestMix::new(templates)?;

    let started_quiet = match options.quiet_cores {
        Some(cores) => {
            let quiet = wait_until_quiet(cores, options.quiet_timeout).await;
            if !quiet {
                eprintln!("the machine is still busy after {:?}: measuring anyway", options.quiet_timeout);
            }
            Some(quiet)
        }
        None => None,
    };
    let pid = server.pid();
    let rss_before = pid.and_then(process_rss_bytes);
    let log_start = server.log_path().map(log_len);
    let mut config = LoadConfig::timed(options.connections, options.warmup, options.duration);
    config.interval = Some(WINDOW);
    config.server_pid = pid;
    eprintln!(
        "load test: {} connections, {:.0} s warm-up, {:.0} s measured, {} labels…",
        options.connections,
        options.warmup.as_secs_f64(),
        options.duration.as_secs_f64(),
        traffic.len()
    );
    let load = run_load(server.addr(), &mix, &config).await?;
    let rss_after = pid.and_then(process_rss_bytes);
    let peak = pid.and_then(process_peak_rss_bytes);
    let (server_side, server_error_log_lines) = match (server.log_path(), log_start) {
        (Some(path), Some(start)) => (route_summaries(path, start)?, Some(error_lines(path, start)?)),
        _ => (BTreeMap::new(), None),
    };

    let outcomes = outcomes(&traffic, &load);
    let windows: Vec<Window> = load.intervals.iter().map(Window::of).collect();
    let verdict = Verdict::compute(&outcomes, &windows, load.transport_errors, options.warmup + options.duration);
    Ok(LoadTestReport {
        benchmark: "load-test",
        machine,
        server: server.mode(),
        server_log_level: options.server.log_level.clone(),
        store: if options.server.database_url.is_some() { "postgresql" } else { "sqlite" },
        catalog_key: catalog.key(),
        catalog,
        import_s: import.map(|timeline| timeline.total_s),
        connections: options.connections,
        warmup_s: options.warmup.as_secs_f64(),
        duration_s: options.duration.as_secs_f64(),
        window_s: WINDOW.as_secs_f64(),
        started_quiet,
        outcomes,
        windows,
        server_rss_before_bytes: rss_before,
        server_rss_after_bytes: rss_after,
        server_peak_rss_bytes: peak,
        server_side,
        server_error_log_lines,
        verdict,
        load,
    })
}

async fn make_fixtures(server: &BenchServer, catalog_key: &str) -> anyhow::Result<Fixtures> {
    let admin = server.admin();
    let partner = admin.partner_for("Load-test partner", &[catalog_key]).await?;
    admin.set_rate_limit(&partner.org_id, Some(PARTNER_PER_MINUTE)).await?;
    let over_limit = admin.partner_for("Over-limit partner", &[catalog_key]).await?;
    admin.set_rate_limit(&over_limit.org_id, Some(OVER_LIMIT_PER_MINUTE)).await?;
    let revoked = admin.create_key(&partner.org_id, "revoked").await?;
    admin.revoke_key(&revoked.id).await?;
    Ok(Fixtures { partner, over_limit, revoked_key: revoked.key })
}

/// Product indices spread over the whole catalog (deterministic).
fn spread(products: u64, count: u64) -> impl Iterator<Item = u64> {
    let count = count.min(products).max(1);
    (0..count).map(move |n| (n * products / count + n * 7_919) % products)
}

fn mix(catalog: &SynthCatalog, fixtures: &Fixtures) -> Vec<Traffic> {
    let key = fixtures.partner.key.key.as_str();
    let catalog_key = catalog.key();
    let search = |body: Value| RequestTemplate::post_json("", "/v1/products/search", &body).bearer(key);
    let lookup = |url: &str| RequestTemplate::post_json("", "/v1/products/lookup", &json!({"url": url})).bearer(key);
    let secret = random_token(32);
    let secret = secret.expose_secret();
    // `octo_live_` + 32 hex id + `_`, then the 43-character secret.
    let id_part = &key[..key.len() - 43];
    let bad = |token: Option<&str>| {
        let template = RequestTemplate::get("", "/v1/catalogs");
        match token {
            Some(token) => template.bearer(token),
            None => template,
        }
    };
    let existing: Vec<RequestTemplate> = spread(catalog.products, 64)
        .enumerate()
        .map(|(n, index)| {
            let url = catalog.product_url(index);
            // Every fourth with tracking parameters and a trailing slash, which lookup normalizes away.
            if n % 4 == 3 {
                lookup(&format!("{url}/?utm_source=loadtest&gclid=abc{n}"))
            } else {
                lookup(&url)
            }
        })
        .collect();
    let unknown: Vec<RequestTemplate> = (0..8)
        .map(|n| lookup(&format!("{SYNTH_BASE_URL}/products/no-such-product-{}", catalog.products + n)))
        .collect();
    let kinds = vec![
        Traffic {
            label: "catalogs",
            description: "GET /v1/catalogs",
            weight: 10,
            expected: &[200],
            templates: vec![RequestTemplate::get("", "/v1/catalogs").bearer(key)],
        },
        Traffic {
            label: "search: keyword",
            description: "q: 4 queries",
            weight: 12,
            expected: &[200],
            templates: ["running shoes", "weighted blanket", "slim fit shirt", "silk pillowcase"]
                .into_iter()
                .map(|q| search(json!({"q": q, "limit": 20})))
                .collect(),
        },
        Traffic {
            label: "search: facets",
            description: "facets (brand, colour family + gender, product type), with and without q",
            weight: 12,
            expected: &[200],
            templates: vec![
                search(json!({"facets": [{"name": "brand_name", "values": ["Puma", "Levis"]}], "limit": 20})),
                search(json!({"q": "shirt", "facets": [
                    {"name": "color_family", "values": ["Blue"]},
                    {"name": "gender", "values": ["male"]}
                ]})),
                search(
                    json!({"facets": [{"name": "product_type", "values": ["sneaker", "weighted blanket"]}], "limit": 50}),
                ),
            ],
        },
        Traffic {
            label: "search: browse+price",
            description: "no q, price range; all granted catalogs or the one catalog",
            weight: 12,
            expected: &[200],
            templates: vec![
                search(json!({"price_min": 10, "price_max": 50, "limit": 50})),
                search(json!({"catalog": catalog_key, "price_min": 20, "price_max": 100})),
                search(json!({"catalog": catalog_key, "limit": 100})),
            ],
        },
        Traffic {
            label: "lookup",
            description: "64 existing product URLs (¼ with tracking parameters)",
            weight: 30,
            expected: &[200],
            templates: existing,
        },
        Traffic {
            label: "lookup: unknown",
            description: "8 URLs of no product: 404 product_not_found",
            weight: 4,
            expected: &[404],
            templates: unknown,
        },
        Traffic {
            label: "bad key: unknown",
            description: "well-formed key, unknown id",
            weight: 2,
            expected: &[401, 429],
            templates: vec![bad(Some(&format!("octo_live_{}_{secret}", "0123456789abcdef".repeat(2))))],
        },
        Traffic {
            label: "bad key: wrong secret",
            description: "the partner's key id, another secret",
            weight: 2,
            expected: &[401, 429],
            templates: vec![bad(Some(&format!("{id_part}{secret}")))],
        },
        Traffic {
            label: "bad key: malformed",
            description: "not an octo_live_ key",
            weight: 2,
            expected: &[401, 429],
            templates: vec![bad(Some("octo_live_not-a-key"))],
        },
        Traffic {
            label: "bad key: revoked",
            description: "a revoked key of the partner",
            weight: 2,
            expected: &[401, 429],
            templates: vec![bad(Some(&fixtures.revoked_key))],
        },
        Traffic {
            label: "bad key: none",
            description: "no Authorization header",
            weight: 2,
            expected: &[401, 429],
            templates: vec![bad(None)],
        },
        Traffic {
            label: "over-limit org",
            description: "a partner limited to 60/min: catalogs, search, lookup",
            weight: 10,
            expected: &[200, 429],
            templates: vec![
                RequestTemplate::get("", "/v1/catalogs").bearer(&fixtures.over_limit.key.key),
                RequestTemplate::post_json("", "/v1/products/search", &json!({"q": "blanket"}))
                    .bearer(&fixtures.over_limit.key.key),
                RequestTemplate::post_json("", "/v1/products/lookup", &json!({"url": catalog.product_url(0)}))
                    .bearer(&fixtures.over_limit.key.key),
            ],
        },
    ];
    // Of 100 requests: 10 list catalogs, 36 search, 34 look up (4 of them unknown URLs), 10 carry
    // bad credentials and 10 come from the over-limit partner.
    kinds
        .into_iter()
        .map(|mut kind| {
            // Integer weights per template, scaled so each label's total stays in proportion.
            let per_template = kind.weight * 1_000 / kind.templates.len() as u32;
            kind.templates = kind
                .templates
                .into_iter()
                .map(|mut template| {
                    template.label = kind.label.to_string();
                    template.weight(per_template)
                })
                .collect();
            kind
        })
        .collect()
}

/// Every template once before the clock starts: each gets a status its label expects, so
/// the run measures the traffic it is meant to (a search body the server refuses with 422
/// would otherwise show up as the server's failure). Searches must find something.
async fn preflight(server: &BenchServer, traffic: &[Traffic]) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    for kind in traffic {
        for template in &kind.templates {
            let method = if template.method == Method::POST { reqwest::Method::POST } else { reqwest::Method::GET };
            let mut request = client.request(method, format!("{}{}", server.base_url(), template.path));
            for (name, value) in &template.headers {
                request = request.header(name.as_str(), value.as_bytes());
            }
            let response = request.body(template.body.to_vec()).send().await?;
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            let body_text = String::from_utf8_lossy(&template.body);
            ensure!(
                kind.expected.contains(&status),
                "preflight: {} {} {body_text} ({}) answered {status}: {body}",
                template.method,
                template.path,
                kind.label
            );
            if kind.label.starts_with("search") {
                let items = serde_json::from_str::<Value>(&body)
                    .ok()
                    .and_then(|page| page["items"].as_array().map(Vec::len))
                    .unwrap_or(0);
                ensure!(items > 0, "preflight: the search {body_text} found nothing");
            }
        }
    }
    Ok(())
}

fn outcomes(traffic: &[Traffic], load: &LoadReport) -> Vec<LabelOutcome> {
    let total_weight: u32 = traffic.iter().map(|kind| kind.weight).sum();
    traffic
        .iter()
        .map(|kind| {
            let label = load.label(kind.label);
            let statuses = label.map(|label| label.statuses.clone()).unwrap_or_default();
            let unexpected =
                statuses.iter().filter(|(status, _)| !kind.expected.contains(status)).map(|(s, n)| (*s, *n)).collect();
            LabelOutcome {
                label: kind.label.to_string(),
                description: kind.description.to_string(),
                weight: kind.weight,
                share: f64::from(kind.weight) / f64::from(total_weight.max(1)),
                templates: kind.templates.len(),
                expected: kind.expected.to_vec(),
                requests: label.map_or(0, |label| label.requests),
                requests_per_s: label.map_or(0.0, |label| label.requests_per_s),
                statuses,
                unexpected,
                latency: label.map_or(LatencySummary::of(&crate::stats::latency_histogram()), |label| label.latency),
            }
        })
        .collect()
}

impl Window {
    fn of(interval: &crate::report::IntervalReport) -> Self {
        Window {
            start_s: interval.start_s,
            duration_s: interval.duration_s,
            requests: interval.requests,
            requests_per_s: interval.requests_per_s,
            p50_us: interval.latency.p50_us,
            p99_us: interval.latency.p99_us,
            max_us: interval.latency.max_us,
            transport_errors: interval.transport_errors,
            server_cores: interval.server_cores,
            other_cores: interval.other_cores,
            disturbed: interval.other_cores.is_some_and(|cores| cores > DISTURBED_CORES),
            server_rss_bytes: interval.server_rss_bytes,
        }
    }
}

impl Verdict {
    /// `phase`: warm-up and measured time (the over-limit partner's budget refills over both).
    fn compute(outcomes: &[LabelOutcome], windows: &[Window], transport_errors: u64, phase: Duration) -> Self {
        let responses_5xx: u64 = outcomes
            .iter()
            .flat_map(|outcome| &outcome.statuses)
            .filter(|(status, _)| **status >= 500)
            .map(|(_, n)| n)
            .sum();
        let unexpected_responses: u64 = outcomes.iter().flat_map(|outcome| outcome.unexpected.values()).sum();
        let errors_ok = responses_5xx == 0 && unexpected_responses == 0 && transport_errors == 0;
        let mut failures = Vec::new();
        if !errors_ok {
            failures.push(format!(
                "{responses_5xx} 5xx, {unexpected_responses} unexpected statuses, {transport_errors} transport errors"
            ));
        }

        let first_window = 0;
        // The last window is usually a full one; a stub of less than half a window is too few
        // requests for a p99, so the one before it is compared instead.
        let last_window = match windows.len() {
            0 | 1 => 0,
            n if windows[n - 1].duration_s < WINDOW.as_secs_f64() / 2.0 => n - 2,
            n => n - 1,
        };
        let p99_first_us = windows.get(first_window).map_or(0.0, |window| window.p99_us);
        let p99_last_us = windows.get(last_window).map_or(0.0, |window| window.p99_us);
        let p99_limit_us = (p99_first_us * P99_GROWTH_FACTOR).max(p99_first_us + P99_SLACK_US);
        let p99_stable = !windows.is_empty() && p99_last_us <= p99_limit_us;
        let disturbed: Vec<String> = [first_window, last_window]
            .into_iter()
            .filter_map(|index| Some((index, windows.get(index)?)))
            .filter(|(_, window)| window.disturbed)
            .map(|(index, window)| {
                format!("window {} ({:.2} other cores)", index + 1, window.other_cores.unwrap_or(0.0))
            })
            .collect();
        let conclusive = disturbed.is_empty();
        if !p99_stable {
            let note = if conclusive {
                String::new()
            } else {
                format!("; other work disturbed {}: repeat on a quiet machine", disturbed.join(" and "))
            };
            failures.push(format!(
                "p99 of the last window {} > {} (the first window's {}){note}",
                format_us(p99_last_us),
                format_us(p99_limit_us),
                format_us(p99_first_us)
            ));
        }

        let rss_first_bytes = windows.get(first_window).and_then(|window| window.server_rss_bytes);
        let rss_last_bytes = windows.get(last_window).and_then(|window| window.server_rss_bytes);
        let rss_growth_bytes = rss_first_bytes.zip(rss_last_bytes).map(|(first, last)| last as i64 - first as i64);
        let rss_growth_limit_bytes =
            rss_first_bytes.map(|first| ((first as f64 * RSS_GROWTH_FRACTION) as u64).max(RSS_SLACK_BYTES));
        let rss_stable = rss_growth_bytes.zip(rss_growth_limit_bytes).map(|(growth, limit)| growth <= limit as i64);
        if rss_stable == Some(false) {
            failures.push(format!(
                "RSS grew by {} from the first window to the last (limit {})",
                format_mib(rss_growth_bytes.unwrap_or(0).max(0) as u64),
                format_mib(rss_growth_limit_bytes.unwrap_or(0))
            ));
        }

        // The over-limit partner's bucket starts full (one minute's requests) and refills
        // continuously; the warm-up drains it, but count it as full to be safe.
        let over_limit_allowed = outcomes
            .iter()
            .find(|outcome| outcome.label == "over-limit org")
            .map_or(0, |outcome| outcome.statuses.get(&200).copied().unwrap_or(0));
        let per_s = f64::from(OVER_LIMIT_PER_MINUTE) / 60.0;
        let over_limit_allowance = u64::from(OVER_LIMIT_PER_MINUTE) + (per_s * phase.as_secs_f64()).ceil() as u64 + 1;
        let rate_limit_enforced = over_limit_allowed <= over_limit_allowance;
        if !rate_limit_enforced {
            failures.push(format!(
                "the over-limit partner got {over_limit_allowed} requests through, more than its budget's \
                 {over_limit_allowance}"
            ));
        }
        let passed = errors_ok && p99_stable && rss_stable != Some(false) && rate_limit_enforced;
        Verdict {
            responses_5xx,
            unexpected_responses,
            transport_errors,
            errors_ok,
            first_window,
            last_window,
            p99_first_us,
            p99_last_us,
            p99_limit_us,
            p99_stable,
            rss_first_bytes,
            rss_last_bytes,
            rss_growth_bytes,
            rss_growth_limit_bytes,
            rss_stable,
            over_limit_allowed,
            over_limit_allowance,
            rate_limit_enforced,
            passed,
            conclusive,
            failures,
        }
    }
}

/// Lines logged at ERROR level after byte `from` of a child server's JSON log.
fn error_lines(path: &Path, from: u64) -> anyhow::Result<u64> {
    use std::io::{BufRead, BufReader, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(from))?;
    let mut count = 0;
    for line in BufReader::new(file).lines() {
        if line?.contains(r#""level":"ERROR""#) {
            count += 1;
        }
    }
    Ok(count)
}

fn pass(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "FAIL"
    }
}

pub fn render(report: &LoadTestReport) -> String {
    let mut out = format!("octogen-bench load-test — {}\n", report.machine.summary());
    let _ = writeln!(
        out,
        "server: {} (log level {}, {}); catalog {} ({} products{}); {} connections, {:.0} s warm-up, {:.0} s \
         measured in {:.0}-s windows{}\n",
        report.server,
        report.server_log_level,
        report.store,
        report.catalog_key,
        report.catalog.products,
        report.import_s.map_or(", already imported".into(), |s| format!(", imported in {s:.1} s")),
        report.connections,
        report.warmup_s,
        report.duration_s,
        report.window_s,
        match report.started_quiet {
            Some(true) => "; started on a quiet machine",
            Some(false) => "; the machine was busy when it started",
            None => "",
        }
    );
    out.push_str(&render_table(&[("all requests", &report.load)]));

    let _ = writeln!(out, "\nPer kind of request (expected statuses; anything else is flagged):\n");
    let mut rows =
        vec![["label", "share", "req/s", "requests", "p50", "p99", "max", "expected", "statuses", "unexpected"]
            .map(String::from)
            .to_vec()];
    for outcome in &report.outcomes {
        let expected: Vec<String> = outcome.expected.iter().map(u16::to_string).collect();
        rows.push(vec![
            outcome.label.clone(),
            format!("{:.0} %", outcome.share * 100.0),
            format!("{:.0}", outcome.requests_per_s),
            outcome.requests.to_string(),
            format_us(outcome.latency.p50_us),
            format_us(outcome.latency.p99_us),
            format_us(outcome.latency.max_us),
            expected.join("/"),
            format_statuses(&outcome.statuses),
            if outcome.unexpected.is_empty() {
                "none".into()
            } else {
                format!("!! {}", format_statuses(&outcome.unexpected))
            },
        ]);
    }
    out.push_str(&align(&rows));

    let _ = writeln!(out, "\nStability, per {:.0}-s window (requests placed by their start time):\n", report.window_s);
    let mut rows =
        vec![["window", "req/s", "p50", "p99", "max", "errors", "server cores", "other cores", "server RSS at end"]
            .map(String::from)
            .to_vec()];
    for window in &report.windows {
        rows.push(vec![
            format!("{:.0}–{:.0} s", window.start_s, window.start_s + window.duration_s),
            format!("{:.0}", window.requests_per_s),
            format_us(window.p50_us),
            format_us(window.p99_us),
            format_us(window.max_us),
            window.transport_errors.to_string(),
            window.server_cores.map_or("-".into(), |cores| format!("{cores:.2}")),
            match window.other_cores {
                Some(cores) if window.disturbed => format!("{cores:.2} (disturbed)"),
                Some(cores) => format!("{cores:.2}"),
                None => "-".into(),
            },
            window.server_rss_bytes.map_or("-".into(), format_mib),
        ]);
    }
    out.push_str(&align(&rows));
    let _ = writeln!(
        out,
        "server RSS: {} before the load, {} after; peak (VmHWM, import included) {}",
        report.server_rss_before_bytes.map_or("-".into(), format_mib),
        report.server_rss_after_bytes.map_or("-".into(), format_mib),
        report.server_peak_rss_bytes.map_or("-".into(), format_mib),
    );

    if !report.server_side.is_empty() {
        let _ = writeln!(out, "\nServer-side latency per route (access log, warm-up included):\n");
        let mut rows = vec![["route", "requests", "p50", "p99", "p99.9", "max"].map(String::from).to_vec()];
        for (route, latency) in &report.server_side {
            rows.push(vec![
                route.clone(),
                latency.count.to_string(),
                format_us(latency.p50_us),
                format_us(latency.p99_us),
                format_us(latency.p99_9_us),
                format_us(latency.max_us),
            ]);
        }
        out.push_str(&align(&rows));
    }

    let verdict = &report.verdict;
    let _ = writeln!(out, "\nVerdict:");
    let _ = writeln!(
        out,
        "  errors: {} 5xx, {} unexpected statuses, {} transport errors{}: {}",
        verdict.responses_5xx,
        verdict.unexpected_responses,
        verdict.transport_errors,
        report.server_error_log_lines.map_or(String::new(), |lines| format!(" (server logged {lines} ERROR lines)")),
        pass(verdict.errors_ok)
    );
    let _ = writeln!(
        out,
        "  p99: window {} {} → window {} {} (limit: max({P99_GROWTH_FACTOR}× first, first + {}) = {}): {}",
        verdict.first_window + 1,
        format_us(verdict.p99_first_us),
        verdict.last_window + 1,
        format_us(verdict.p99_last_us),
        format_us(P99_SLACK_US),
        format_us(verdict.p99_limit_us),
        pass(verdict.p99_stable)
    );
    let _ = writeln!(
        out,
        "  memory: RSS at the end of window {} {} → window {} {}, growth {} (limit: max({:.0} % of first, {}) = {}): {}",
        verdict.first_window + 1,
        verdict.rss_first_bytes.map_or("-".into(), format_mib),
        verdict.last_window + 1,
        verdict.rss_last_bytes.map_or("-".into(), format_mib),
        verdict.rss_growth_bytes.map_or("-".into(), |growth| {
            let sign = if growth < 0 { "-" } else { "+" };
            format!("{sign}{}", format_mib(growth.unsigned_abs()))
        }),
        RSS_GROWTH_FRACTION * 100.0,
        format_mib(RSS_SLACK_BYTES),
        verdict.rss_growth_limit_bytes.map_or("-".into(), format_mib),
        verdict.rss_stable.map_or("not measured (needs a child server)", pass)
    );
    let _ = writeln!(
        out,
        "  rate limit: the over-limit partner ({OVER_LIMIT_PER_MINUTE}/min) got {} requests through in the \
         measured phase (budget allows ≤ {}): {}",
        verdict.over_limit_allowed,
        verdict.over_limit_allowance,
        pass(verdict.rate_limit_enforced)
    );
    let _ = writeln!(
        out,
        "  load test: {}{}",
        if verdict.passed { "PASSED" } else { "FAILED" },
        match (verdict.conclusive, verdict.passed) {
            (true, _) => "",
            (false, true) => " (other work disturbed a compared window, and it passed anyway)",
            (false, false) => " (not conclusive: other work disturbed a compared window; repeat on a quiet machine)",
        }
    );
    for failure in &verdict.failures {
        let _ = writeln!(out, "    - {failure}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(label: &str, expected: &[u16], statuses: &[(u16, u64)]) -> LabelOutcome {
        let statuses: BTreeMap<u16, u64> = statuses.iter().copied().collect();
        LabelOutcome {
            label: label.into(),
            description: String::new(),
            weight: 1,
            share: 0.5,
            templates: 1,
            expected: expected.to_vec(),
            requests: statuses.values().sum(),
            requests_per_s: 0.0,
            unexpected: statuses
                .iter()
                .filter(|(status, _)| !expected.contains(status))
                .map(|(s, n)| (*s, *n))
                .collect(),
            statuses,
            latency: LatencySummary::of(&crate::stats::latency_histogram()),
        }
    }

    fn window(start_s: f64, duration_s: f64, p99_ms: f64, rss_mib: u64) -> Window {
        Window {
            start_s,
            duration_s,
            requests: 1_000,
            requests_per_s: 100.0,
            p50_us: 1_000.0,
            p99_us: p99_ms * 1_000.0,
            max_us: p99_ms * 2_000.0,
            transport_errors: 0,
            server_cores: Some(1.0),
            other_cores: Some(0.05),
            disturbed: false,
            server_rss_bytes: Some(rss_mib * 1024 * 1024),
        }
    }

    const MINUTE: Duration = Duration::from_secs(62);

    #[test]
    fn a_clean_steady_run_passes() {
        let outcomes = [
            outcome("search", &[200], &[(200, 1_000)]),
            outcome("bad key: none", &[401, 429], &[(401, 60), (429, 900)]),
            outcome("over-limit org", &[200, 429], &[(200, 62), (429, 900)]),
        ];
        let windows = [window(0.0, 10.0, 10.0, 300), window(10.0, 10.0, 14.0, 340), window(20.0, 10.0, 11.0, 349)];
        let verdict = Verdict::compute(&outcomes, &windows, 0, MINUTE);
        assert!(verdict.passed, "{verdict:?}");
        assert_eq!((verdict.first_window, verdict.last_window), (0, 2));
        assert_eq!(verdict.p99_limit_us, 15_000.0, "1.5 × 10 ms beats 10 ms + 2 ms");
        assert_eq!(verdict.rss_growth_limit_bytes, Some(RSS_SLACK_BYTES), "50 MiB beats 10 % of 300 MiB");
        assert_eq!(verdict.over_limit_allowance, 60 + 62 + 1);
    }

    #[test]
    fn unexpected_statuses_5xx_and_transport_errors_fail() {
        let windows = [window(0.0, 10.0, 10.0, 300)];
        let wrong = [outcome("search", &[200], &[(200, 1_000), (422, 1)])];
        let verdict = Verdict::compute(&wrong, &windows, 0, MINUTE);
        assert_eq!((verdict.unexpected_responses, verdict.responses_5xx, verdict.passed), (1, 0, false));
        let failing = [outcome("lookup", &[200], &[(200, 1_000), (503, 2)])];
        let verdict = Verdict::compute(&failing, &windows, 0, MINUTE);
        assert_eq!((verdict.unexpected_responses, verdict.responses_5xx, verdict.passed), (2, 2, false));
        let fine = [outcome("lookup", &[200], &[(200, 1_000)])];
        assert!(!Verdict::compute(&fine, &windows, 1, MINUTE).passed, "a transport error fails the run");
    }

    #[test]
    fn drifting_p99_growing_memory_and_a_leaky_budget_fail() {
        let fine = [outcome("search", &[200], &[(200, 1_000)])];
        let slower = [window(0.0, 10.0, 2.0, 300), window(10.0, 10.0, 4.5, 300)];
        let verdict = Verdict::compute(&fine, &slower, 0, MINUTE);
        assert_eq!(verdict.p99_limit_us, 4_000.0, "2 ms + 2 ms beats 1.5 × 2 ms");
        assert!(!verdict.p99_stable && !verdict.passed && verdict.conclusive);
        let mut busy = slower;
        busy[1].disturbed = true;
        let verdict = Verdict::compute(&fine, &busy, 0, MINUTE);
        assert!(!verdict.passed && !verdict.conclusive);
        assert!(verdict.failures[0].contains("window 2"), "{:?}", verdict.failures);
        let growing = [window(0.0, 10.0, 2.0, 1_000), window(10.0, 10.0, 2.0, 1_101)];
        let verdict = Verdict::compute(&fine, &growing, 0, MINUTE);
        assert_eq!(verdict.rss_stable, Some(false), "{verdict:?}");
        let leaky = [outcome("over-limit org", &[200, 429], &[(200, 500), (429, 10)])];
        let verdict = Verdict::compute(&leaky, &[window(0.0, 10.0, 2.0, 300)], 0, MINUTE);
        assert!(!verdict.rate_limit_enforced && !verdict.passed);
    }

    #[test]
    fn a_short_last_window_is_not_compared() {
        let fine = [outcome("search", &[200], &[(200, 1_000)])];
        let windows = [window(0.0, 10.0, 2.0, 300), window(10.0, 10.0, 2.0, 300), window(20.0, 0.3, 90.0, 300)];
        let verdict = Verdict::compute(&fine, &windows, 0, MINUTE);
        assert_eq!(verdict.last_window, 1);
        assert!(verdict.passed, "{verdict:?}");
    }
}

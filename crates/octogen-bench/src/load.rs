//! The load generator: N keep-alive HTTP/1.1 connections on loopback, each
//! sending one request at a time (a closed loop) drawn from a `RequestMix`.
//!
//! It uses hyper's connection-level client rather than a pooled client so the
//! generator's own cost per request stays small: on a 2-core machine every
//! microsecond it spends is taken from the server under test.
//!
//! Being a closed loop, a slow response delays the next request on its
//! connection, so latencies are service times at the achieved rate, not at a
//! fixed offered rate (no coordinated-omission correction). That is the right
//! model for "how much can this server do"; it understates tails under
//! overload.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http::HeaderValue;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::cpu::{process_cpu_time, process_rss_bytes, MachineCpu};
use crate::mix::{RequestMix, Rng};
use crate::report::{add_counts, rate, CpuReport, CpuSeconds, IntervalReport, LabelReport, LoadReport};
use crate::stats::{coarse_histogram, latency_histogram, record, LatencySummary};

/// When the measured phase ends.
#[derive(Debug, Clone, Copy)]
pub enum Stop {
    /// After this much time (requests in flight then still count).
    After(Duration),
    /// After this many measured requests, spread over all connections.
    Requests(u64),
}

#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Concurrent connections, each with one request in flight.
    pub connections: usize,
    /// Traffic sent and discarded before measuring: fills caches, grows
    /// buffers and lets the CPU settle.
    pub warmup: Duration,
    pub stop: Stop,
    /// When set, the report also has one snapshot per interval of the measured phase
    /// (with `server_pid`, including the server's CPU use and resident memory).
    pub interval: Option<Duration>,
    /// A server in another local process, whose CPU time the report includes.
    pub server_pid: Option<u32>,
}

impl LoadConfig {
    pub fn timed(connections: usize, warmup: Duration, duration: Duration) -> Self {
        LoadConfig { connections, warmup, stop: Stop::After(duration), interval: None, server_pid: None }
    }

    pub fn counted(connections: usize, warmup: Duration, requests: u64) -> Self {
        LoadConfig { connections, warmup, stop: Stop::Requests(requests), interval: None, server_pid: None }
    }
}

/// Runs `mix` against `addr` and reports the measured phase.
pub async fn run_load(addr: SocketAddr, mix: &RequestMix, config: &LoadConfig) -> anyhow::Result<LoadReport> {
    anyhow::ensure!(config.connections > 0, "at least one connection is needed");
    let mix = Arc::new(mix.clone());
    let host = HeaderValue::from_str(&addr.to_string()).expect("a socket address is a valid Host");
    // Every connection is open before the clock starts, so connecting is not measured.
    let mut senders = Vec::with_capacity(config.connections);
    for _ in 0..config.connections {
        senders.push(connect(addr).await.with_context(|| format!("cannot connect to {addr}"))?);
    }
    let plan = Arc::new(Plan::new(config));
    let cpu_at_start = tokio::spawn(sample_cpu_at(plan.warm_until, config.server_pid));
    let boundaries = Arc::new(std::sync::Mutex::new(Vec::new()));
    let boundary_sampler = config.interval.map(|interval| {
        tokio::spawn(sample_at_boundaries(plan.warm_until, interval, config.server_pid, boundaries.clone()))
    });
    let workers: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(index, sender)| {
            let connection = Connection { addr, host: host.clone(), sender: Some(sender) };
            tokio::spawn(worker(index as u64, connection, mix.clone(), plan.clone()))
        })
        .collect();
    let mut tallies = Vec::with_capacity(workers.len());
    for worker in workers {
        tallies.push(worker.await.context("a load worker panicked")?);
    }
    let cpu_at_end = CpuSample::take(config.server_pid);
    let cpu_at_start = cpu_at_start.await.context("the CPU sampler panicked")?;
    if let Some(sampler) = boundary_sampler {
        sampler.abort();
    }
    let boundaries = std::mem::take(&mut *boundaries.lock().expect("the boundary sampler does not panic"));
    let mut report = summarize(&mix, config, &plan, tallies, cpu_at_start, cpu_at_end);
    if !report.intervals.is_empty() {
        attach_boundary_samples(&mut report.intervals, &boundaries, BoundarySample::take(config.server_pid));
    }
    Ok(report)
}

/// CPU times (this process, the server, the machine) and the server's resident memory at one instant.
#[derive(Debug, Clone, Copy)]
struct BoundarySample {
    cpu: CpuSample,
    server_rss_bytes: Option<u64>,
}

impl BoundarySample {
    fn take(server_pid: Option<u32>) -> Self {
        BoundarySample { cpu: CpuSample::take(server_pid), server_rss_bytes: server_pid.and_then(process_rss_bytes) }
    }
}

/// Samples at the start of the measured phase and at the end of every
/// interval after it (index 0 is the start), until aborted.
async fn sample_at_boundaries(
    warm_until: Instant,
    interval: Duration,
    server_pid: Option<u32>,
    samples: Arc<std::sync::Mutex<Vec<BoundarySample>>>,
) {
    for boundary in 0u32.. {
        tokio::time::sleep_until((warm_until + interval * boundary).into()).await;
        let sample = BoundarySample::take(server_pid);
        samples.lock().expect("nothing panics while holding it").push(sample);
    }
}

/// Each interval's CPU use (between its boundaries) and the server's RSS at its end; the last
/// interval, usually cut short, ends with the sample taken when the run ended.
fn attach_boundary_samples(intervals: &mut [IntervalReport], boundaries: &[BoundarySample], end: BoundarySample) {
    for (index, interval) in intervals.iter_mut().enumerate() {
        let Some(start) = boundaries.get(index) else { continue };
        let finish = boundaries.get(index + 1).unwrap_or(&end);
        let cpu = CpuReport::new(finish.cpu.seconds_since(&start.cpu), interval.duration_s, interval.requests);
        interval.server_cores = cpu.server_cores;
        interval.other_cores = cpu.other_cores;
        interval.server_rss_bytes = finish.server_rss_bytes;
    }
}

/// The run's timeline, shared by every worker.
struct Plan {
    warm_until: Instant,
    deadline: Option<Instant>,
    /// Measured requests still to send, for `Stop::Requests`.
    budget: Option<AtomicU64>,
    interval: Option<Duration>,
}

impl Plan {
    fn new(config: &LoadConfig) -> Self {
        let warm_until = Instant::now() + config.warmup;
        let (deadline, budget) = match config.stop {
            Stop::After(duration) => (Some(warm_until + duration), None),
            Stop::Requests(count) => (None, Some(AtomicU64::new(count))),
        };
        Plan { warm_until, deadline, budget, interval: config.interval }
    }

    /// Whether a request starting `now` may be sent; takes it from the budget if it is measured.
    fn admit(&self, now: Instant) -> bool {
        if self.deadline.is_some_and(|deadline| now >= deadline) {
            return false;
        }
        match &self.budget {
            Some(budget) if now >= self.warm_until => {
                budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| left.checked_sub(1)).is_ok()
            }
            _ => true,
        }
    }

    fn interval_of(&self, started: Instant) -> Option<usize> {
        let interval = self.interval?;
        let offset = started.duration_since(self.warm_until);
        Some((offset.as_nanos() / interval.as_nanos().max(1)) as usize)
    }
}

/// One keep-alive connection, re-opened when the server closes it.
struct Connection {
    addr: SocketAddr,
    host: HeaderValue,
    sender: Option<SendRequest<Full<Bytes>>>,
}

async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    // Requests are small and sent whole; Nagle would only add delay.
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // Ends when the server closes the connection or the sender is dropped.
        let _ = connection.await;
    });
    Ok(sender)
}

impl Connection {
    /// A usable sender; `Ok(true)` if it had to reconnect first.
    async fn ensure_open(&mut self) -> anyhow::Result<bool> {
        if self.sender.as_ref().is_some_and(|sender| !sender.is_closed()) {
            return Ok(false);
        }
        self.sender = None;
        self.sender = Some(connect(self.addr).await?);
        Ok(true)
    }

    /// Sends one request and reads the whole response body; returns the status.
    async fn send(&mut self, request: http::Request<Full<Bytes>>) -> anyhow::Result<u16> {
        let sender = self.sender.as_mut().expect("ensure_open ran first");
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            frame?;
        }
        Ok(status)
    }
}

/// What one connection measured.
struct Tally {
    /// Per label of the mix, created on first use (histograms are ~200 KB each).
    labels: Vec<Option<LabelTally>>,
    intervals: Vec<IntervalTally>,
    transport_errors: u64,
    reconnects: u64,
    last_done: Option<Instant>,
}

struct LabelTally {
    histogram: Histogram<u64>,
    statuses: BTreeMap<u16, u64>,
}

struct IntervalTally {
    histogram: Histogram<u64>,
    transport_errors: u64,
}

impl Tally {
    fn new(labels: usize) -> Self {
        Tally {
            labels: (0..labels).map(|_| None).collect(),
            intervals: Vec::new(),
            transport_errors: 0,
            reconnects: 0,
            last_done: None,
        }
    }

    fn interval(&mut self, index: usize) -> &mut IntervalTally {
        while self.intervals.len() <= index {
            self.intervals.push(IntervalTally { histogram: coarse_histogram(), transport_errors: 0 });
        }
        &mut self.intervals[index]
    }

    fn response(&mut self, plan: &Plan, label: usize, status: u16, started: Instant, done: Instant) {
        let tally = self.labels[label]
            .get_or_insert_with(|| LabelTally { histogram: latency_histogram(), statuses: BTreeMap::new() });
        record(&mut tally.histogram, done - started);
        *tally.statuses.entry(status).or_default() += 1;
        if let Some(index) = plan.interval_of(started) {
            record(&mut self.interval(index).histogram, done - started);
        }
        self.last_done = Some(done);
    }

    fn failure(&mut self, plan: &Plan, started: Instant) {
        self.transport_errors += 1;
        if let Some(index) = plan.interval_of(started) {
            self.interval(index).transport_errors += 1;
        }
    }
}

async fn worker(index: u64, mut connection: Connection, mix: Arc<RequestMix>, plan: Arc<Plan>) -> Tally {
    // Distinct, fixed seeds: each connection walks its own repeatable sequence.
    let mut rng = Rng::seeded(0x0c70_6e00 ^ index.wrapping_mul(0x9E37_79B9));
    let mut tally = Tally::new(mix.labels().len());
    loop {
        let reopened = connection.ensure_open().await;
        let started = Instant::now();
        let measured = started >= plan.warm_until;
        if !plan.admit(started) {
            break;
        }
        match reopened {
            Ok(true) if measured => tally.reconnects += 1,
            Ok(_) => {}
            Err(_) => {
                if measured {
                    tally.failure(&plan, started);
                }
                // The server is gone or refusing: do not spin.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        }
        let template = mix.pick(&mut rng);
        let outcome = connection.send(mix.request(template, &connection.host)).await;
        let done = Instant::now();
        match outcome {
            Ok(status) if measured => tally.response(&plan, mix.label_of(template), status, started, done),
            Ok(_) => {}
            Err(_) => {
                connection.sender = None;
                if measured {
                    tally.failure(&plan, started);
                }
            }
        }
    }
    tally
}

/// CPU time of this process, the server's (if separate) and the machine's, at one instant.
#[derive(Debug, Clone, Copy)]
struct CpuSample {
    client: Option<Duration>,
    server: Option<Duration>,
    machine: Option<MachineCpu>,
}

impl CpuSample {
    fn take(server_pid: Option<u32>) -> Self {
        CpuSample {
            client: process_cpu_time(std::process::id()),
            server: server_pid.and_then(process_cpu_time),
            machine: MachineCpu::sample(),
        }
    }

    fn seconds_since(&self, start: &CpuSample) -> CpuSeconds {
        let seconds = |start: Option<Duration>, end: Option<Duration>| Some((end? - start?).as_secs_f64());
        let machine = self.machine.zip(start.machine).map(|(end, start)| end.since(&start));
        CpuSeconds {
            client: seconds(start.client, self.client),
            server: seconds(start.server, self.server),
            machine: machine.map(|machine| machine.busy.as_secs_f64()),
            steal: machine.map(|machine| machine.steal.as_secs_f64()),
        }
    }
}

async fn sample_cpu_at(at: Instant, server_pid: Option<u32>) -> CpuSample {
    tokio::time::sleep_until(at.into()).await;
    CpuSample::take(server_pid)
}

fn summarize(
    mix: &RequestMix,
    config: &LoadConfig,
    plan: &Plan,
    tallies: Vec<Tally>,
    cpu_start: CpuSample,
    cpu_end: CpuSample,
) -> LoadReport {
    let last_done = tallies.iter().filter_map(|tally| tally.last_done).max();
    let elapsed_s = last_done.map_or(0.0, |done| done.duration_since(plan.warm_until).as_secs_f64());
    let mut histogram = latency_histogram();
    let mut statuses = BTreeMap::new();
    let mut labels = Vec::new();
    for (index, name) in mix.labels().iter().enumerate() {
        let mut label_histogram = latency_histogram();
        let mut label_statuses = BTreeMap::new();
        for tally in tallies.iter().filter_map(|tally| tally.labels[index].as_ref()) {
            label_histogram.add(&tally.histogram).expect("histograms share their bounds");
            add_counts(&mut label_statuses, &tally.statuses);
        }
        histogram.add(&label_histogram).expect("histograms share their bounds");
        add_counts(&mut statuses, &label_statuses);
        labels.push(LabelReport {
            label: name.clone(),
            requests: label_histogram.len(),
            requests_per_s: rate(label_histogram.len(), elapsed_s),
            statuses: label_statuses,
            latency: LatencySummary::of(&label_histogram),
            histogram: label_histogram,
        });
    }
    let requests = histogram.len();
    LoadReport {
        connections: config.connections,
        elapsed_s,
        requests,
        requests_per_s: rate(requests, elapsed_s),
        transport_errors: tallies.iter().map(|tally| tally.transport_errors).sum(),
        reconnects: tallies.iter().map(|tally| tally.reconnects).sum(),
        statuses,
        latency: LatencySummary::of(&histogram),
        labels,
        intervals: summarize_intervals(plan, &tallies, elapsed_s),
        cpu: CpuReport::new(cpu_end.seconds_since(&cpu_start), elapsed_s, requests),
        histogram,
    }
}

fn summarize_intervals(plan: &Plan, tallies: &[Tally], elapsed_s: f64) -> Vec<IntervalReport> {
    let Some(interval) = plan.interval else { return Vec::new() };
    let count = tallies.iter().map(|tally| tally.intervals.len()).max().unwrap_or(0);
    (0..count)
        .map(|index| {
            let mut histogram = coarse_histogram();
            let mut transport_errors = 0;
            for slice in tallies.iter().filter_map(|tally| tally.intervals.get(index)) {
                histogram.add(&slice.histogram).expect("histograms share their bounds");
                transport_errors += slice.transport_errors;
            }
            let start_s = interval.as_secs_f64() * index as f64;
            // The last slice is usually cut short by the end of the run.
            let duration_s = interval.as_secs_f64().min(elapsed_s - start_s).max(f64::EPSILON);
            IntervalReport {
                start_s,
                duration_s,
                requests: histogram.len(),
                requests_per_s: rate(histogram.len(), duration_s),
                transport_errors,
                latency: LatencySummary::of(&histogram),
                server_cores: None,
                other_cores: None,
                server_rss_bytes: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(start_s: f64, duration_s: f64) -> IntervalReport {
        IntervalReport {
            start_s,
            duration_s,
            requests: 0,
            requests_per_s: 0.0,
            transport_errors: 0,
            latency: LatencySummary::of(&coarse_histogram()),
            server_cores: None,
            other_cores: None,
            server_rss_bytes: None,
        }
    }

    fn sample(seconds: u64, rss: u64) -> BoundarySample {
        let at = |seconds: u64| Some(Duration::from_secs(seconds));
        // Client and server each use half of what the machine did; nothing else ran.
        let cpu = CpuSample {
            client: at(seconds / 2),
            server: at(seconds / 2),
            machine: Some(MachineCpu { busy: Duration::from_secs(seconds), steal: Duration::ZERO }),
        };
        BoundarySample { cpu, server_rss_bytes: Some(rss) }
    }

    #[test]
    fn intervals_get_the_samples_at_their_boundaries() {
        let mut intervals = [interval(0.0, 10.0), interval(10.0, 10.0), interval(20.0, 5.0)];
        // Start, end of the first interval, end of the second; the third (cut short) ends with the run.
        let boundaries = [sample(0, 100), sample(30, 110), sample(60, 120)];
        attach_boundary_samples(&mut intervals, &boundaries, sample(70, 125));
        let rss: Vec<_> = intervals.iter().map(|interval| interval.server_rss_bytes).collect();
        assert_eq!(rss, [Some(110), Some(120), Some(125)]);
        let cores: Vec<_> = intervals.iter().map(|interval| interval.server_cores).collect();
        assert_eq!(cores, [Some(1.5), Some(1.5), Some(1.0)]);
        assert!(intervals.iter().all(|interval| interval.other_cores == Some(0.0)));
    }
}

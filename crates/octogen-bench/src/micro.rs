//! Micro-benchmarks: time one async call many times, each call on its own,
//! into a latency histogram. For server functions that complete without
//! waiting on I/O (e.g. authentication against SQLite's in-memory directory)
//! the `.await` adds nothing measurable, so this is the function's own cost.

use std::future::Future;
use std::time::Instant;

use anyhow::Context;
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::report::rate;
use crate::stats::{latency_histogram, record, LatencySummary};

#[derive(Debug, Clone, Serialize)]
pub struct MicroReport {
    pub name: String,
    /// Tasks calling at the same time (1 = one call at a time).
    pub concurrency: usize,
    pub calls: u64,
    pub elapsed_s: f64,
    pub calls_per_s: f64,
    /// Per call, including reading the clock twice (see `clock_overhead`).
    pub latency: LatencySummary,
}

/// Calls `call` `warmup` times unmeasured, then `calls` times, timing each call.
pub async fn timed_loop<F, Fut>(warmup: u64, calls: u64, mut call: F) -> Histogram<u64>
where
    F: FnMut() -> Fut,
    Fut: Future,
{
    for _ in 0..warmup {
        std::hint::black_box(call().await);
    }
    let mut histogram = latency_histogram();
    for _ in 0..calls {
        let before = Instant::now();
        std::hint::black_box(call().await);
        record(&mut histogram, before.elapsed());
    }
    histogram
}

/// `timed_loop` on the current task, as a report.
pub async fn time_calls<F, Fut>(name: &str, warmup: u64, calls: u64, call: F) -> MicroReport
where
    F: FnMut() -> Fut,
    Fut: Future,
{
    let started = Instant::now();
    let histogram = timed_loop(warmup, calls, call).await;
    report(name, 1, &histogram, started)
}

/// Runs `tasks` spawned copies of a timed loop at once (each made by `task`,
/// typically `async move { timed_loop(…).await }`) and merges their
/// histograms: the cost when every core calls at the same time, which is what
/// shared locks and contended cache lines show up in.
pub async fn time_concurrently<F, Fut>(name: &str, tasks: usize, mut task: F) -> anyhow::Result<MicroReport>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Histogram<u64>> + Send + 'static,
{
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks).map(|_| tokio::spawn(task())).collect();
    let mut histogram = latency_histogram();
    for handle in handles {
        histogram.add(handle.await.context("a timed task panicked")?).expect("histograms share their bounds");
    }
    Ok(report(name, tasks, &histogram, started))
}

fn report(name: &str, concurrency: usize, histogram: &Histogram<u64>, started: Instant) -> MicroReport {
    let elapsed_s = started.elapsed().as_secs_f64();
    MicroReport {
        name: name.to_string(),
        concurrency,
        calls: histogram.len(),
        elapsed_s,
        calls_per_s: rate(histogram.len(), elapsed_s),
        latency: LatencySummary::of(histogram),
    }
}

/// The same loop around an empty call: what the measurement itself adds.
pub async fn clock_overhead(calls: u64) -> MicroReport {
    time_calls("(empty call: timer overhead)", calls / 10, calls, || async {}).await
}

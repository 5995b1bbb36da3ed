//! Micro-benchmarks: time one async call many times, each call on its own,
//! into a latency histogram. For server functions that complete without
//! waiting on I/O (e.g. authentication against SQLite's in-memory directory)
//! the `.await` adds nothing measurable, so this is the function's own cost.

use std::future::Future;
use std::time::Instant;

use serde::Serialize;

use crate::report::rate;
use crate::stats::{latency_histogram, record, LatencySummary};

#[derive(Debug, Clone, Serialize)]
pub struct MicroReport {
    pub name: String,
    pub calls: u64,
    pub elapsed_s: f64,
    pub calls_per_s: f64,
    /// Per call, including reading the clock twice (see `clock_overhead`).
    pub latency: LatencySummary,
}

/// Calls `call` `warmup` times unmeasured, then `calls` times, timing each call.
pub async fn time_calls<F, Fut>(name: &str, warmup: u64, calls: u64, mut call: F) -> MicroReport
where
    F: FnMut() -> Fut,
    Fut: Future,
{
    for _ in 0..warmup {
        std::hint::black_box(call().await);
    }
    let mut histogram = latency_histogram();
    let started = Instant::now();
    for _ in 0..calls {
        let before = Instant::now();
        std::hint::black_box(call().await);
        record(&mut histogram, before.elapsed());
    }
    let elapsed_s = started.elapsed().as_secs_f64();
    MicroReport {
        name: name.to_string(),
        calls,
        elapsed_s,
        calls_per_s: rate(calls, elapsed_s),
        latency: LatencySummary::of(&histogram),
    }
}

/// The same loop around an empty call: what the measurement itself adds.
pub async fn clock_overhead(calls: u64) -> MicroReport {
    time_calls("(empty call: timer overhead)", calls / 10, calls, || async {}).await
}

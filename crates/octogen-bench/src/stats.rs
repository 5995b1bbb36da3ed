//! Latency histograms (HDR, nanoseconds) and their summaries.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// The longest latency a histogram can hold; longer samples are clamped to it
/// (a request slower than this is a failure, not a latency).
const MAX_NANOS: u64 = 60_000_000_000;

/// A histogram of nanoseconds with 3 significant digits (±0.1%).
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_NANOS, 3).expect("static bounds are valid")
}

/// A coarser histogram (±1%) for per-interval snapshots, which exist many
/// times over per connection and only need to show trends.
pub(crate) fn coarse_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_NANOS, 2).expect("static bounds are valid")
}

/// Records a duration, clamped into the histogram's range.
pub fn record(histogram: &mut Histogram<u64>, elapsed: Duration) {
    let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(MAX_NANOS).clamp(1, MAX_NANOS);
    histogram.saturating_record(nanos);
}

/// Percentiles of a latency histogram, in microseconds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p99_9_us: f64,
    pub max_us: f64,
}

impl LatencySummary {
    pub fn of(histogram: &Histogram<u64>) -> Self {
        let us = |nanos: u64| nanos as f64 / 1_000.0;
        LatencySummary {
            count: histogram.len(),
            mean_us: histogram.mean() / 1_000.0,
            p50_us: us(histogram.value_at_quantile(0.50)),
            p90_us: us(histogram.value_at_quantile(0.90)),
            p99_us: us(histogram.value_at_quantile(0.99)),
            p99_9_us: us(histogram.value_at_quantile(0.999)),
            max_us: us(histogram.max()),
        }
    }
}

/// A latency for people: `812 ns`, `41.3 µs`, `2.35 ms`, `1.20 s`.
pub fn format_us(us: f64) -> String {
    if us < 1.0 {
        format!("{:.0} ns", us * 1_000.0)
    } else if us < 100.0 {
        format!("{us:.1} µs")
    } else if us < 1_000.0 {
        format!("{us:.0} µs")
    } else if us < 1_000_000.0 {
        format!("{:.2} ms", us / 1_000.0)
    } else {
        format!("{:.2} s", us / 1_000_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_reads_percentiles_in_microseconds() {
        let mut histogram = latency_histogram();
        for micros in 1..=1_000u64 {
            record(&mut histogram, Duration::from_micros(micros));
        }
        let summary = LatencySummary::of(&histogram);
        assert_eq!(summary.count, 1_000);
        assert!((summary.p50_us - 500.0).abs() < 1.0, "{summary:?}");
        assert!((summary.p99_us - 990.0).abs() < 1.0, "{summary:?}");
        assert!((summary.max_us - 1_000.0).abs() < 1.0, "{summary:?}");
    }

    #[test]
    fn out_of_range_samples_are_clamped_not_lost() {
        let mut histogram = latency_histogram();
        record(&mut histogram, Duration::ZERO);
        record(&mut histogram, Duration::from_secs(3_600));
        assert_eq!(histogram.len(), 2);
    }

    #[test]
    fn formats_pick_a_readable_unit() {
        assert_eq!(format_us(0.812), "812 ns");
        assert_eq!(format_us(41.26), "41.3 µs");
        assert_eq!(format_us(2_345.0), "2.35 ms");
    }
}

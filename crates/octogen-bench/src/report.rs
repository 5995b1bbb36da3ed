//! The result of a load run: throughput, latency percentiles, status counts,
//! CPU use, optionally per label and per time interval; as JSON or a table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::stats::{format_us, LatencySummary};

#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub connections: usize,
    /// From the end of the warm-up to the last measured response.
    pub elapsed_s: f64,
    /// Measured requests that got a response (any status).
    pub requests: u64,
    pub requests_per_s: f64,
    /// Requests that got no response (connection refused, reset, protocol error).
    pub transport_errors: u64,
    /// Connections re-opened because the server closed one.
    pub reconnects: u64,
    pub statuses: BTreeMap<u16, u64>,
    pub latency: LatencySummary,
    pub labels: Vec<LabelReport>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub intervals: Vec<IntervalReport>,
    pub cpu: CpuReport,
    #[serde(skip)]
    pub(crate) histogram: Histogram<u64>,
}

/// The requests of one label of the mix.
#[derive(Debug, Clone, Serialize)]
pub struct LabelReport {
    pub label: String,
    pub requests: u64,
    pub requests_per_s: f64,
    pub statuses: BTreeMap<u16, u64>,
    pub latency: LatencySummary,
    #[serde(skip)]
    pub(crate) histogram: Histogram<u64>,
}

/// One slice of the measured phase (requests are placed by their start time).
#[derive(Debug, Clone, Serialize)]
pub struct IntervalReport {
    pub start_s: f64,
    pub duration_s: f64,
    pub requests: u64,
    pub requests_per_s: f64,
    pub transport_errors: u64,
    pub latency: LatencySummary,
    /// Cores the server used during the interval (a child server, when sampled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cores: Option<f64>,
    /// Cores everything else on the machine used during the interval (see `CpuReport::other_cores`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_cores: Option<f64>,
    /// The server's resident set size (`VmRSS`) at the end of the interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_rss_bytes: Option<u64>,
}

/// CPU seconds spent during the measured phase.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct CpuSeconds {
    /// The load generator's process (which is also the server when it runs in-process).
    pub client: Option<f64>,
    /// A server in a separate local process.
    pub server: Option<f64>,
    /// Every process on the machine, kernel work included.
    pub machine: Option<f64>,
    /// Taken by the hypervisor for other guests.
    pub steal: Option<f64>,
}

impl CpuSeconds {
    fn add(&self, other: &CpuSeconds) -> CpuSeconds {
        let sum = |a: Option<f64>, b: Option<f64>| Some(a? + b?);
        CpuSeconds {
            client: sum(self.client, other.client),
            server: sum(self.server, other.server),
            machine: sum(self.machine, other.machine),
            steal: sum(self.steal, other.steal),
        }
    }
}

/// CPU use during the measured phase, in cores (CPU seconds per wall-clock
/// second: 2.0 is both cores of a 2-core machine).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct CpuReport {
    pub seconds: CpuSeconds,
    pub client_cores: Option<f64>,
    pub server_cores: Option<f64>,
    pub machine_cores: Option<f64>,
    /// Machine minus client and server: other processes plus kernel work not
    /// charged to either (loopback networking in softirq, mostly). Well above
    /// its quiet-machine value, it means the run competed with other work.
    pub other_cores: Option<f64>,
    pub steal_cores: Option<f64>,
    /// Server CPU time divided by measured requests: what one request costs the server.
    pub server_cpu_us_per_request: Option<f64>,
}

impl CpuReport {
    pub(crate) fn new(seconds: CpuSeconds, elapsed_s: f64, requests: u64) -> Self {
        let cores = |cpu: Option<f64>| cpu.filter(|_| elapsed_s > 0.0).map(|cpu| cpu / elapsed_s);
        let other = seconds
            .machine
            .zip(seconds.client)
            .map(|(machine, client)| (machine - client - seconds.server.unwrap_or(0.0)).max(0.0));
        CpuReport {
            seconds,
            client_cores: cores(seconds.client),
            server_cores: cores(seconds.server),
            machine_cores: cores(seconds.machine),
            other_cores: cores(other),
            steal_cores: cores(seconds.steal),
            server_cpu_us_per_request: seconds.server.filter(|_| requests > 0).map(|cpu| cpu * 1e6 / requests as f64),
        }
    }

    fn merge(&self, other: &CpuReport, elapsed_s: f64, requests: u64) -> CpuReport {
        CpuReport::new(self.seconds.add(&other.seconds), elapsed_s, requests)
    }
}

impl LoadReport {
    /// Every measured latency, in nanoseconds (for merging or custom percentiles).
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.histogram
    }

    pub fn label(&self, label: &str) -> Option<&LabelReport> {
        self.labels.iter().find(|report| report.label == label)
    }

    /// Folds another run of the same mix into this one, as if it had run back
    /// to back: counts and times add up, histograms merge. Intervals are dropped
    /// because they no longer describe one timeline.
    pub fn merge(&mut self, other: &LoadReport) {
        self.elapsed_s += other.elapsed_s;
        self.requests += other.requests;
        self.requests_per_s = rate(self.requests, self.elapsed_s);
        self.transport_errors += other.transport_errors;
        self.reconnects += other.reconnects;
        add_counts(&mut self.statuses, &other.statuses);
        self.histogram.add(&other.histogram).expect("histograms share their bounds");
        self.latency = LatencySummary::of(&self.histogram);
        for theirs in &other.labels {
            match self.labels.iter_mut().find(|ours| ours.label == theirs.label) {
                Some(ours) => ours.absorb(theirs),
                None => self.labels.push(theirs.clone()),
            }
        }
        for label in &mut self.labels {
            label.requests_per_s = rate(label.requests, self.elapsed_s);
        }
        self.intervals.clear();
        self.cpu = self.cpu.merge(&other.cpu, self.elapsed_s, self.requests);
    }

    /// Responses whose status is not in `expected`, plus transport errors.
    pub fn unexpected(&self, expected: &[u16]) -> u64 {
        let wrong: u64 = self.statuses.iter().filter(|(status, _)| !expected.contains(status)).map(|(_, n)| n).sum();
        wrong + self.transport_errors
    }
}

impl LabelReport {
    fn absorb(&mut self, other: &LabelReport) {
        self.requests += other.requests;
        add_counts(&mut self.statuses, &other.statuses);
        self.histogram.add(&other.histogram).expect("histograms share their bounds");
        self.latency = LatencySummary::of(&self.histogram);
    }
}

pub(crate) fn rate(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

pub(crate) fn add_counts(into: &mut BTreeMap<u16, u64>, from: &BTreeMap<u16, u64>) {
    for (status, count) in from {
        *into.entry(*status).or_default() += count;
    }
}

/// `200×41234 401×3`.
pub fn format_statuses(statuses: &BTreeMap<u16, u64>) -> String {
    let parts: Vec<String> = statuses.iter().map(|(status, count)| format!("{status}×{count}")).collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(" ")
    }
}

/// A plain-text table with one row per named report.
pub fn render_table(rows: &[(&str, &LoadReport)]) -> String {
    let header = [
        "run",
        "req/s",
        "requests",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "max",
        "errors",
        "statuses",
        "client cores",
        "server cores",
        "other cores",
        "server CPU/req",
    ];
    let mut table = vec![header.iter().map(|cell| cell.to_string()).collect::<Vec<_>>()];
    for (name, report) in rows {
        let optional = |value: Option<f64>, unit: &str| value.map_or("-".to_string(), |v| format!("{v:.2}{unit}"));
        table.push(vec![
            name.to_string(),
            format!("{:.0}", report.requests_per_s),
            report.requests.to_string(),
            format_us(report.latency.p50_us),
            format_us(report.latency.p90_us),
            format_us(report.latency.p99_us),
            format_us(report.latency.p99_9_us),
            format_us(report.latency.max_us),
            report.transport_errors.to_string(),
            format_statuses(&report.statuses),
            optional(report.cpu.client_cores, ""),
            optional(report.cpu.server_cores, ""),
            optional(report.cpu.other_cores, ""),
            report.cpu.server_cpu_us_per_request.map_or("-".into(), format_us),
        ]);
    }
    align(&table)
}

/// A table with one row per label of a report's mix.
pub fn render_labels(report: &LoadReport) -> String {
    let mut table = vec![["label", "req/s", "requests", "p50", "p90", "p99", "p99.9", "max", "statuses"]
        .map(String::from)
        .to_vec()];
    for label in &report.labels {
        table.push(vec![
            label.label.clone(),
            format!("{:.0}", label.requests_per_s),
            label.requests.to_string(),
            format_us(label.latency.p50_us),
            format_us(label.latency.p90_us),
            format_us(label.latency.p99_us),
            format_us(label.latency.p99_9_us),
            format_us(label.latency.max_us),
            format_statuses(&label.statuses),
        ]);
    }
    align(&table)
}

/// A table of one report's time slices, to see whether throughput and tail latency drift.
pub fn render_intervals(report: &LoadReport) -> String {
    let mut table =
        vec![["from", "req/s", "p50", "p99", "max", "errors", "server cores", "other cores", "server RSS at end"]
            .map(String::from)
            .to_vec()];
    for interval in &report.intervals {
        table.push(vec![
            format!("{:.0} s", interval.start_s),
            format!("{:.0}", interval.requests_per_s),
            format_us(interval.latency.p50_us),
            format_us(interval.latency.p99_us),
            format_us(interval.latency.max_us),
            interval.transport_errors.to_string(),
            interval.server_cores.map_or("-".into(), |cores| format!("{cores:.2}")),
            interval.other_cores.map_or("-".into(), |cores| format!("{cores:.2}")),
            interval.server_rss_bytes.map_or("-".into(), format_mib),
        ]);
    }
    align(&table)
}

/// Bytes for people, in MiB: `412.3 MiB`.
pub fn format_mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Left-aligns the first column, right-aligns the others.
pub fn align(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|column| rows.iter().filter_map(|row| row.get(column)).map(|cell| cell.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (column, cell) in row.iter().enumerate() {
            let pad = widths[column] - cell.chars().count();
            if column == 0 {
                let _ = write!(line, "{cell}{}", " ".repeat(pad));
            } else {
                let _ = write!(line, "  {}{cell}", " ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{latency_histogram, record};
    use std::time::Duration;

    fn report(requests: u64, elapsed_s: f64, micros: u64) -> LoadReport {
        let mut histogram = latency_histogram();
        for _ in 0..requests {
            record(&mut histogram, Duration::from_micros(micros));
        }
        let statuses = BTreeMap::from([(200, requests)]);
        let label = LabelReport {
            label: "a".into(),
            requests,
            requests_per_s: rate(requests, elapsed_s),
            statuses: statuses.clone(),
            latency: LatencySummary::of(&histogram),
            histogram: histogram.clone(),
        };
        LoadReport {
            connections: 1,
            elapsed_s,
            requests,
            requests_per_s: rate(requests, elapsed_s),
            transport_errors: 0,
            reconnects: 0,
            statuses,
            latency: LatencySummary::of(&histogram),
            labels: vec![label],
            intervals: Vec::new(),
            cpu: CpuReport::new(
                CpuSeconds { client: Some(1.0), server: Some(elapsed_s), machine: Some(2.5), steal: Some(0.0) },
                elapsed_s,
                requests,
            ),
            histogram,
        }
    }

    #[test]
    fn merging_adds_counts_and_times() {
        let mut first = report(100, 1.0, 10);
        first.merge(&report(300, 1.0, 30));
        assert_eq!(first.requests, 400);
        assert!((first.requests_per_s - 200.0).abs() < 1e-9);
        assert_eq!(first.statuses[&200], 400);
        assert_eq!(first.labels.len(), 1);
        assert_eq!(first.labels[0].requests, 400);
        assert!((first.latency.p50_us - 30.0).abs() < 0.1, "{:?}", first.latency);
        assert_eq!(first.cpu.server_cores, Some(1.0));
        assert_eq!(first.cpu.server_cpu_us_per_request, Some(2.0 * 1e6 / 400.0));
        assert_eq!(first.cpu.other_cores, Some(0.5), "5 machine s - 2 client s - 2 server s over 2 s");
    }

    #[test]
    fn unexpected_counts_other_statuses_and_errors() {
        let mut run = report(10, 1.0, 10);
        run.statuses.insert(500, 2);
        run.transport_errors = 1;
        assert_eq!(run.unexpected(&[200]), 3);
    }

    #[test]
    fn tables_align_columns() {
        let run = report(10, 1.0, 10);
        let table = render_table(&[("healthz", &run), ("catalogs, authenticated", &run)]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        let cells = |line: &str| line.split("  ").filter(|cell| !cell.trim().is_empty()).count();
        assert_eq!(cells(lines[0]), cells(lines[1]), "a header for every column:\n{table}");
        assert!(lines[1].starts_with("healthz "));
        assert!(table.contains("200×10"));
    }
}

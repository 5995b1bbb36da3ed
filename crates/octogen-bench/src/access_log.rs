//! Server-side latency, read back from the server's own JSON access log.
//!
//! Every request logs `latency_us`: the time from the request entering the
//! router's middleware to its response being ready — authentication, the
//! handler and JSON serialization, without HTTP parsing or socket I/O. That
//! is the server-side view the client's round-trip latency cannot give.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Deserialize;

use crate::stats::{latency_histogram, record, LatencySummary};

/// A position in a log file, to read only what a run appended.
pub fn log_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |meta| meta.len())
}

#[derive(Deserialize)]
struct AccessLine {
    message: String,
    route: Option<String>,
    status: Option<u16>,
    latency_us: Option<u64>,
}

/// Per matched route, the latencies of the access-log lines written after
/// byte `from` (µs resolution, as logged).
pub fn route_latencies(path: &Path, from: u64) -> anyhow::Result<BTreeMap<String, Histogram<u64>>> {
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(from))?;
    let mut routes: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
    for line in BufReader::new(file).lines() {
        let Ok(access) = serde_json::from_str::<AccessLine>(&line?) else { continue };
        let (Some(route), Some(_status), Some(latency)) = (access.route, access.status, access.latency_us) else {
            continue;
        };
        if access.message != "request" {
            continue;
        }
        let histogram = routes.entry(route).or_insert_with(latency_histogram);
        record(histogram, Duration::from_micros(latency));
    }
    Ok(routes)
}

/// Summaries of `route_latencies`.
pub fn route_summaries(path: &Path, from: u64) -> anyhow::Result<BTreeMap<String, LatencySummary>> {
    Ok(route_latencies(path, from)?
        .iter()
        .map(|(route, histogram)| (route.clone(), LatencySummary::of(histogram)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_access_lines_after_an_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.log");
        let mut file = std::fs::File::create(&path).unwrap();
        writeln!(file, r#"{{"message":"request","route":"/healthz","status":200,"latency_us":99}}"#).unwrap();
        let offset = log_len(&path);
        writeln!(file, r#"{{"message":"octogen is listening","address":"127.0.0.1:1"}}"#).unwrap();
        writeln!(file, "not json").unwrap();
        for latency in [3, 5, 7] {
            writeln!(file, r#"{{"message":"request","route":"/healthz","status":200,"latency_us":{latency}}}"#)
                .unwrap();
        }
        writeln!(file, r#"{{"message":"request","route":"/v1/catalogs","status":200,"latency_us":12}}"#).unwrap();
        drop(file);
        let summaries = route_summaries(&path, offset).unwrap();
        assert_eq!(summaries["/healthz"].count, 3, "the line before the offset is skipped");
        assert!((summaries["/healthz"].max_us - 7.0).abs() < 0.01);
        assert_eq!(summaries["/v1/catalogs"].count, 1);
    }
}

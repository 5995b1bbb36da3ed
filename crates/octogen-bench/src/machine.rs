//! The machine and moment a benchmark ran on, for BENCHMARKS.md.

use std::process::Command;

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// `date -u`, ISO 8601.
    pub date_utc: String,
    pub cpu_model: String,
    /// Cores available to this process.
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
    /// The checked-out commit (with `-dirty` when the tree has changes), if in a git checkout;
    /// otherwise `OCTOGEN_BENCH_COMMIT` (set it when running from a `git archive` export).
    pub git_commit: Option<String>,
}

impl Machine {
    pub fn describe() -> Self {
        Machine {
            date_utc: command_output("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]).unwrap_or_else(|| "unknown".into()),
            cpu_model: cpu_model().unwrap_or_else(|| "unknown".into()),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_gib: memory_kib().map_or(0.0, |kib| kib as f64 / (1024.0 * 1024.0)),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_or_else(|_| "unknown".into(), |release| release.trim().to_string()),
            git_commit: command_output("git", &["describe", "--always", "--dirty", "--abbrev=10"])
                .or_else(|| std::env::var("OCTOGEN_BENCH_COMMIT").ok().filter(|commit| !commit.is_empty())),
        }
    }

    /// One line: `AMD EPYC, 2 cores, 23.5 GiB RAM, Linux 6.1; 2026-11-28T10:00:00Z; commit 1900d3c`.
    pub fn summary(&self) -> String {
        let commit = self.git_commit.as_deref().map(|commit| format!("; commit {commit}")).unwrap_or_default();
        format!(
            "{}, {} cores, {:.1} GiB RAM, Linux {}; {}{commit}",
            self.cpu_model, self.cores, self.memory_gib, self.kernel, self.date_utc
        )
    }
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?.trim().to_string();
    (output.status.success() && !text.is_empty()).then_some(text)
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = info.lines().find(|line| line.starts_with("model name"))?;
    Some(line.split_once(':')?.1.trim().to_string())
}

fn memory_kib() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|line| line.starts_with("MemTotal:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

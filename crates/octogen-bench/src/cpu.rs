//! CPU time of a process, from `/proc/<pid>/stat` (Linux).
//!
//! On a 2-core machine the load generator and the server compete for the same
//! cores, so a request rate alone says little: how many cores each side used,
//! and the server's CPU time per request, say where the time went.

use std::time::Duration;

/// `sysconf(_SC_CLK_TCK)`: 100 on every Linux architecture we run on; reading
/// it properly would need libc for a constant that does not change.
const CLOCK_TICKS_PER_SECOND: u64 = 100;

/// User + system CPU time of every thread of `pid` (`None` off Linux or when the process is gone).
pub fn process_cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu_ticks(&stat).map(|ticks| Duration::from_millis(ticks * 1_000 / CLOCK_TICKS_PER_SECOND))
}

/// Fields 14 and 15 (utime, stime), counted after the command name, which is in
/// parentheses and may itself contain spaces.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

/// Machine-wide CPU time from the first line of `/proc/stat`: what every
/// process on the machine used, to spot a run disturbed by other work (a
/// concurrent build takes cores the benchmark thought it had).
#[derive(Debug, Clone, Copy, Default)]
pub struct MachineCpu {
    /// Time not idle (user, system, interrupts, steal) summed over all cores.
    pub busy: Duration,
    /// Time the hypervisor gave to other guests while we wanted the CPU.
    pub steal: Duration,
}

impl MachineCpu {
    pub fn sample() -> Option<MachineCpu> {
        parse_machine_ticks(&std::fs::read_to_string("/proc/stat").ok()?)
    }

    pub fn since(&self, earlier: &MachineCpu) -> MachineCpu {
        MachineCpu { busy: self.busy.saturating_sub(earlier.busy), steal: self.steal.saturating_sub(earlier.steal) }
    }
}

/// Waits until the whole machine has used at most `max_cores` over a one-second
/// window, for at most `max_wait`; returns whether it got quiet. On a shared
/// machine (others building in the same workspace) this keeps a run from
/// measuring someone else's compiler.
pub async fn wait_until_quiet(max_cores: f64, max_wait: Duration) -> bool {
    const WINDOW: Duration = Duration::from_secs(1);
    let deadline = std::time::Instant::now() + max_wait;
    loop {
        let Some(before) = MachineCpu::sample() else { return true };
        tokio::time::sleep(WINDOW).await;
        let Some(after) = MachineCpu::sample() else { return true };
        if after.since(&before).busy.as_secs_f64() / WINDOW.as_secs_f64() <= max_cores {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
    }
}

/// `cpu  user nice system idle iowait irq softirq steal guest guest_nice`;
/// guest time is already inside user time, so it is not added again.
fn parse_machine_ticks(stat: &str) -> Option<MachineCpu> {
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let ticks: Vec<u64> = line.split_whitespace().skip(1).map_while(|field| field.parse().ok()).collect();
    let field = |index: usize| ticks.get(index).copied().unwrap_or(0);
    let busy = field(0) + field(1) + field(2) + field(5) + field(6) + field(7);
    let to_duration = |ticks: u64| Duration::from_millis(ticks * 1_000 / CLOCK_TICKS_PER_SECOND);
    Some(MachineCpu { busy: to_duration(busy), steal: to_duration(field(7)) })
}

/// Resident set size of `pid` in bytes, from `/proc/<pid>/status`.
pub fn process_rss_bytes(pid: u32) -> Option<u64> {
    status_bytes(pid, "VmRSS:")
}

/// The highest resident set size `pid` has had (`VmHWM`, the high-water mark), in bytes.
pub fn process_peak_rss_bytes(pid: u32) -> Option<u64> {
    status_bytes(pid, "VmHWM:")
}

fn status_bytes(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utime_and_stime_after_a_name_with_spaces() {
        let stat = "42 (tokio runtime) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0";
        assert_eq!(parse_cpu_ticks(stat), Some(300));
    }

    #[test]
    fn parses_the_machine_line() {
        let stat = "cpu  100 5 20 900 7 1 2 3 0 0\ncpu0 50 0 10 450 3 0 1 1 0 0\n";
        let cpu = parse_machine_ticks(stat).unwrap();
        assert_eq!(cpu.busy, Duration::from_millis(1_310));
        assert_eq!(cpu.steal, Duration::from_millis(30));
    }

    #[test]
    fn reads_this_process() {
        if cfg!(target_os = "linux") {
            assert!(process_cpu_time(std::process::id()).is_some());
            assert!(process_rss_bytes(std::process::id()).unwrap() > 0);
            assert!(
                process_peak_rss_bytes(std::process::id()).unwrap()
                    >= process_rss_bytes(std::process::id()).unwrap() / 2
            );
        }
    }
}

//! The server under test: booted by the benchmark on 127.0.0.1:0 with a fresh
//! temporary data directory (so every run starts from the same state), or an
//! external server given by URL.
//!
//! Two ways to boot it:
//! - **child** (the default): a separate process running exactly what
//!   `octogen serve` runs — `Application::build` + `run_until`, JSON access
//!   logs at `info` written to a file. By default that process is this very
//!   executable re-run with a hidden subcommand, so `cargo run -p
//!   octogen-bench` needs no other build; `--octogen-bin target/release/octogen`
//!   runs the real binary instead. Client and server are then separate
//!   processes that the kernel schedules fairly over the cores, and the
//!   server's CPU time can be read on its own.
//! - **in-process**: the server on the load generator's own tokio runtime.
//!   Cheaper to start and needed for calling server functions directly (the
//!   micro-benchmarks), but client and server tasks share one runtime's worker
//!   threads and no access log is written (no log subscriber is installed),
//!   which flatters the server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use octogen_core::api_key::random_token;
use octogen_server::config::LogFormat;
use octogen_server::state::AppState;
use octogen_server::{Application, Config};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::oneshot;

use crate::admin::Admin;

/// The hidden subcommand under which this executable serves as a child server.
pub const CHILD_SUBCOMMAND: &str = "serve-child";

/// Where the log line announcing the address comes from, so the parent can
/// find it whatever the log filter.
const CHILD_LOG_TARGET: &str = "octogen_bench::server";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServerMode {
    Child,
    InProcess,
}

#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub mode: ServerMode,
    /// For `Child`: run this `octogen` binary's `serve` instead of this executable.
    pub octogen_bin: Option<PathBuf>,
    /// Log filter of a child server; `info` is what `octogen serve` ships with
    /// (one JSON access-log line per request).
    pub log_level: String,
    /// `postgres://…` to benchmark the PostgreSQL store; SQLite in the temp dir otherwise.
    pub database_url: Option<String>,
    /// An already-running server (`http://host:port`) instead of booting one;
    /// the operator token then comes from `OCTOGEN_ADMIN_TOKEN`.
    pub external: Option<String>,
    /// Serve from this data directory (created if missing, kept afterwards)
    /// instead of a fresh temporary one, e.g. to reuse an imported catalog.
    pub data_dir: Option<PathBuf>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            mode: ServerMode::Child,
            octogen_bin: None,
            log_level: "info".into(),
            database_url: None,
            external: None,
            data_dir: None,
        }
    }
}

/// A running server and how to reach it.
pub struct BenchServer {
    addr: SocketAddr,
    base_url: String,
    admin_token: SecretString,
    running: Running,
}

/// The server's data directory: removed with the server, or the caller's own.
enum DataDir {
    Temporary(tempfile::TempDir),
    Kept(PathBuf),
}

impl DataDir {
    fn new(kept: Option<&Path>) -> anyhow::Result<DataDir> {
        match kept {
            Some(path) => {
                std::fs::create_dir_all(path).with_context(|| format!("cannot create {}", path.display()))?;
                Ok(DataDir::Kept(path.to_path_buf()))
            }
            None => Ok(DataDir::Temporary(tempfile::tempdir().context("cannot create a temporary data directory")?)),
        }
    }

    fn path(&self) -> &Path {
        match self {
            DataDir::Temporary(dir) => dir.path(),
            DataDir::Kept(path) => path,
        }
    }
}

enum Running {
    InProcess {
        state: Box<AppState>,
        shutdown: oneshot::Sender<()>,
        task: tokio::task::JoinHandle<anyhow::Result<()>>,
        data_dir: DataDir,
    },
    Child {
        // Boxed: a `Child` is ~250 bytes, the other variants a few words.
        child: Box<tokio::process::Child>,
        /// Held open for the child's lifetime (see `parent_gone`).
        _lifeline: Option<tokio::process::ChildStdin>,
        log_path: PathBuf,
        data_dir: DataDir,
    },
    External,
}

impl BenchServer {
    pub async fn start(options: &ServerOptions) -> anyhow::Result<BenchServer> {
        if let Some(url) = &options.external {
            return Self::external(url).await;
        }
        match options.mode {
            ServerMode::InProcess => Self::in_process(options).await,
            ServerMode::Child => Self::child(options).await,
        }
    }

    /// A server on this process's runtime, for calling its functions directly.
    pub async fn in_process(options: &ServerOptions) -> anyhow::Result<BenchServer> {
        let data_dir = DataDir::new(options.data_dir.as_deref())?;
        let admin_token = fresh_admin_token();
        let config = Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.path().to_path_buf(),
            database_url: options.database_url.clone(),
            // A kept directory keeps the pepper the server generates into it on first start.
            key_pepper: options.data_dir.is_none().then(|| random_token(32)),
            admin_token: Some(admin_token.clone()),
            ..Config::default()
        };
        let app = Application::build(config).await?;
        let addr = app.local_addr();
        let state = Box::new(app.state().clone());
        let (shutdown, signal) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until(async move {
            let _ = signal.await;
        }));
        let running = Running::InProcess { state, shutdown, task, data_dir };
        Ok(BenchServer { addr, base_url: format!("http://{addr}"), admin_token, running })
    }

    async fn child(options: &ServerOptions) -> anyhow::Result<BenchServer> {
        let data_dir = DataDir::new(options.data_dir.as_deref())?;
        let log_path = data_dir.path().join("server.log");
        let log = std::fs::File::create(&log_path).context("cannot create the server log")?;
        let admin_token = fresh_admin_token();
        let mut command = child_command(options, data_dir.path())?;
        command
            .env("OCTOGEN_ADMIN_TOKEN", admin_token.expose_secret())
            // Our own child exits when this pipe closes, so it cannot outlive a killed benchmark.
            .stdin(Stdio::piped())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        let mut child = command.spawn().context("cannot start the server process")?;
        let lifeline = child.stdin.take();
        let addr = match wait_for_address(&mut child, &log_path).await {
            Ok(addr) => addr,
            Err(error) => {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                bail!("{error:#}; the server's log:\n{log}");
            }
        };
        let running = Running::Child { child: Box::new(child), _lifeline: lifeline, log_path, data_dir };
        Ok(BenchServer { addr, base_url: format!("http://{addr}"), admin_token, running })
    }

    async fn external(url: &str) -> anyhow::Result<BenchServer> {
        let authority = url
            .strip_prefix("http://")
            .context("--server must be an http:// URL (the load generator speaks plain HTTP/1.1)")?
            .trim_end_matches('/');
        let addr = tokio::net::lookup_host(authority)
            .await
            .with_context(|| format!("cannot resolve {authority}"))?
            .next()
            .with_context(|| format!("{authority} has no address"))?;
        let admin_token = std::env::var("OCTOGEN_ADMIN_TOKEN")
            .map(SecretString::from)
            .context("OCTOGEN_ADMIN_TOKEN must be set to benchmark an external server (fixtures are made through the operator API)")?;
        Ok(BenchServer {
            addr,
            base_url: url.trim_end_matches('/').to_string(),
            admin_token,
            running: Running::External,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn admin(&self) -> Admin {
        Admin::new(&self.base_url, self.admin_token.clone())
    }

    /// The server's shared state, for an in-process server.
    pub fn state(&self) -> Option<&AppState> {
        match &self.running {
            Running::InProcess { state, .. } => Some(state),
            _ => None,
        }
    }

    /// The process id of a child server (for its CPU time and memory).
    pub fn pid(&self) -> Option<u32> {
        match &self.running {
            Running::Child { child, .. } => child.id(),
            _ => None,
        }
    }

    /// The data directory of a server this benchmark started (SQLite database, search index, uploads).
    pub fn data_dir(&self) -> Option<&Path> {
        match &self.running {
            Running::InProcess { data_dir, .. } | Running::Child { data_dir, .. } => Some(data_dir.path()),
            Running::External => None,
        }
    }

    /// A child server's JSON log (one access line per request at `info`).
    pub fn log_path(&self) -> Option<&Path> {
        match &self.running {
            Running::Child { log_path, .. } => Some(log_path),
            _ => None,
        }
    }

    pub fn mode(&self) -> &'static str {
        match self.running {
            Running::InProcess { .. } => "in-process",
            Running::Child { .. } => "child process",
            Running::External => "external",
        }
    }

    /// Stops a server this benchmark started: gracefully (SIGTERM for a child), then by force.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop_with(|_| ()).await
    }

    /// Stops the server, then calls `after` with its data directory (still there; a temporary
    /// one is removed when `after` returns), e.g. to measure what the server left on disk.
    pub async fn stop_with<T>(self, after: impl FnOnce(Option<&Path>) -> T) -> anyhow::Result<T> {
        match self.running {
            Running::InProcess { state, shutdown, task, data_dir } => {
                // The server's background writers finish once every state clone is gone,
                // ours included: drop it before waiting, or the shutdown never completes.
                drop(state);
                let _ = shutdown.send(());
                task.await.context("the server task panicked")??;
                Ok(after(Some(data_dir.path())))
            }
            Running::Child { mut child, data_dir, .. } => {
                if let Some(pid) = child.id() {
                    // No libc dependency for one signal: `kill` is on every Linux machine.
                    let _ = tokio::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
                }
                // A graceful stop flushes the store and the index, which takes a while after a large import.
                if tokio::time::timeout(Duration::from_secs(60), child.wait()).await.is_err() {
                    child.kill().await?;
                }
                Ok(after(Some(data_dir.path())))
            }
            Running::External => Ok(after(None)),
        }
    }
}

fn fresh_admin_token() -> SecretString {
    SecretString::from(format!("octo_admin_{}", random_token(32).expose_secret()))
}

/// `octogen serve …` or this executable's hidden child subcommand, on an
/// ephemeral port, JSON logs, with the address line always let through the filter.
fn child_command(options: &ServerOptions, data_dir: &Path) -> anyhow::Result<tokio::process::Command> {
    let mut command = match &options.octogen_bin {
        Some(binary) => {
            let mut command = tokio::process::Command::new(binary);
            command.arg("serve").arg("--log-format").arg("json");
            command.arg("--log-level").arg(format!("{},octogen::commands::serve=info", options.log_level));
            command
        }
        None => {
            let mut command = tokio::process::Command::new(std::env::current_exe()?);
            command.arg(CHILD_SUBCOMMAND);
            command.arg("--log-level").arg(format!("{},{CHILD_LOG_TARGET}=info", options.log_level));
            command
        }
    };
    command.arg("--listen").arg("127.0.0.1:0").arg("--data-dir").arg(data_dir);
    if let Some(url) = &options.database_url {
        command.arg("--database-url").arg(url);
    }
    Ok(command)
}

/// Reads the child's log until it announces its address.
async fn wait_for_address(child: &mut tokio::process::Child, log_path: &Path) -> anyhow::Result<SocketAddr> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let log = std::fs::read_to_string(log_path).unwrap_or_default();
        if let Some(addr) = log.lines().find_map(listening_address) {
            return Ok(addr);
        }
        if let Some(status) = child.try_wait()? {
            bail!("the server exited before listening ({status})");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("the server did not announce its address within 60 s")
}

fn listening_address(line: &str) -> Option<SocketAddr> {
    let event: serde_json::Value = serde_json::from_str(line).ok()?;
    if event["message"] != "octogen is listening" {
        return None;
    }
    event["address"].as_str()?.parse().ok()
}

/// The body of the hidden child subcommand: the same server `octogen serve`
/// runs, announcing its address in the same log line, until SIGTERM.
pub async fn serve_child(
    listen: SocketAddr,
    data_dir: PathBuf,
    log_level: String,
    database_url: Option<String>,
) -> anyhow::Result<()> {
    let config = Config {
        listen,
        data_dir,
        database_url,
        admin_token: std::env::var("OCTOGEN_ADMIN_TOKEN").ok().map(SecretString::from),
        log_level,
        log_format: LogFormat::Json,
        ..Config::default()
    };
    octogen_server::telemetry::init(&config);
    let app = Application::build(config).await?;
    tracing::info!(target: CHILD_LOG_TARGET, address = %app.local_addr(), "octogen is listening");
    app.run_until(async {
        tokio::select! {
            _ = terminated() => {}
            _ = parent_gone() => {}
        }
    })
    .await
}

async fn terminated() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Resolves when stdin reaches its end: the parent holds the pipe's other end
/// until it stops the server, and the kernel closes it if the parent dies.
/// The blocking read cannot be cancelled, so the child process must exit
/// without waiting for its runtime's blocking threads (see `main`).
async fn parent_gone() {
    let _ = tokio::task::spawn_blocking(|| {
        use std::io::Read;
        let mut buffer = [0u8; 64];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut buffer), Ok(n) if n > 0) {}
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_address_line() {
        let line = r#"{"timestamp":"t","level":"INFO","message":"octogen is listening","address":"127.0.0.1:4321"}"#;
        assert_eq!(listening_address(line), Some("127.0.0.1:4321".parse().unwrap()));
        assert_eq!(listening_address(r#"{"message":"request"}"#), None);
        assert_eq!(listening_address("Generated the operator token"), None);
    }
}

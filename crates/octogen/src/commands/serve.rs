//! `octogen serve` and `octogen demo`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;
use octogen_server::config::{self, Config};
use octogen_server::{data_dir, demo, telemetry, Application};
use secrecy::ExposeSecret;

use crate::cli_error::{CliError, CliResult};
use crate::{DEFAULT_DATA_DIR, DEFAULT_SERVER};

#[derive(Args)]
pub struct ServeArgs {
    /// A TOML configuration file (settings as in the README); env `OCTOGEN_CONFIG`.
    #[arg(long, env = "OCTOGEN_CONFIG")]
    config: Option<PathBuf>,
    /// Where the SQLite database, search index and generated secrets live.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address to listen on, e.g. 0.0.0.0:8080.
    #[arg(long)]
    listen: Option<String>,
    /// PostgreSQL URL for multi-node deployments (default: SQLite in the data directory).
    #[arg(long)]
    database_url: Option<String>,
    /// Log filter: info, debug, trace, or e.g. `octogen_server=debug,info`.
    #[arg(long)]
    log_level: Option<String>,
    /// Log format: json or pretty.
    #[arg(long)]
    log_format: Option<String>,
}

/// The demo is configured like `serve` (defaults < `--config` file <
/// `OCTOGEN_*` environment < flags), so every documented way to set its
/// address or data directory works.
#[derive(Args)]
pub struct DemoArgs {
    /// A TOML configuration file (settings as in the README); env `OCTOGEN_CONFIG`.
    #[arg(long, env = "OCTOGEN_CONFIG")]
    config: Option<PathBuf>,
    /// Where the demo keeps its data (default octogen-data; env OCTOGEN_DATA_DIR).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8080; env OCTOGEN_LISTEN).
    #[arg(long)]
    listen: Option<String>,
}

pub async fn serve(args: ServeArgs) -> CliResult {
    let mut flags = BTreeMap::new();
    let mut flag = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            flags.insert(name.to_string(), toml::Value::String(value));
        }
    };
    flag("data_dir", args.data_dir.map(|dir| dir.display().to_string()));
    flag("listen", args.listen);
    flag("database_url", args.database_url);
    flag("log_level", args.log_level);
    flag("log_format", args.log_format);
    let config = load_config(args.config, flags)?;
    telemetry::init(&config);
    data_dir::set_private_umask();
    let app = build(config).await?;
    tracing::info!(address = %app.local_addr(), "octogen is listening");
    run(app).await
}

pub async fn demo(args: DemoArgs) -> CliResult {
    let mut flags = BTreeMap::new();
    if let Some(data_dir) = args.data_dir {
        flags.insert("data_dir".into(), toml::Value::String(data_dir.display().to_string()));
    }
    if let Some(listen) = args.listen {
        flags.insert("listen".into(), toml::Value::String(listen));
    }
    // A quiet console by default; placed before the real environment, so OCTOGEN_LOG_* still win.
    let quiet = [("OCTOGEN_LOG_LEVEL", "warn"), ("OCTOGEN_LOG_FORMAT", "pretty")]
        .map(|(name, value)| (name.to_string(), value.to_string()));
    let config = config::load(args.config.as_deref(), quiet.into_iter().chain(std::env::vars()), flags)
        .map_err(|error| CliError::failure(error.to_string()))?;
    telemetry::init(&config);
    data_dir::set_private_umask();
    let data_dir = config.data_dir.clone();
    let token_configured = config.admin_token.is_some();
    let app = build(config).await?;
    let info = demo::prepare(app.state())
        .await
        .map_err(|error| CliError::failure(format!("cannot prepare the demo: {error:#}")))?;
    let base = reachable_base_url(app.local_addr());
    let commands =
        DemoCommands { base: &base, key: info.key.expose_secret(), octogen: &binary_path(), data_dir: &data_dir };
    println!("Octogen demo is running at {base}");
    println!();
    println!("  API key (shown once): {}", commands.key);
    println!("  Organization:         {} ({})", demo::DEMO_ORG, info.org_id);
    println!("  Catalog:              {} ({} products)", info.catalog_key, info.product_count);
    println!();
    println!("Try it, from another terminal in this directory:");
    println!();
    for command in commands.lines() {
        println!("  {command}");
    }
    println!();
    if token_configured {
        println!("Operator commands need OCTOGEN_ADMIN_TOKEN set to the operator token you configured.");
    } else {
        println!("Operator commands read the operator token from {}.", data_dir.join("admin-token").display());
    }
    println!("After creating an operator, sign in to the portal at {base}/login");
    println!("Press Ctrl-C to stop.");
    run(app).await
}

/// The commands the demo prints, each runnable as printed in a shell opened in
/// the demo's directory: the real path of this binary (`cargo run` puts
/// nothing on PATH), and the demo's address and data directory wherever the
/// commands' defaults would miss them.
struct DemoCommands<'a> {
    base: &'a str,
    key: &'a str,
    octogen: &'a str,
    data_dir: &'a Path,
}

impl DemoCommands<'_> {
    fn lines(&self) -> Vec<String> {
        let (base, key, octogen) = (self.base, self.key, self.octogen);
        let client_env =
            if base == octogen_client::DEFAULT_BASE_URL { String::new() } else { format!("OCTO_BASE_URL={base} ") };
        let mut operator_env = String::new();
        if base != DEFAULT_SERVER {
            operator_env.push_str(&format!("OCTOGEN_SERVER={base} "));
        }
        if self.data_dir != Path::new(DEFAULT_DATA_DIR) {
            operator_env.push_str(&format!("OCTOGEN_DATA_DIR={} ", shell_word(&self.data_dir.display().to_string())));
        }
        vec![
            format!("curl -H \"Authorization: Bearer {key}\" {base}/v1/catalogs"),
            format!("curl -H \"Authorization: Bearer {key}\" -H \"Content-Type: application/json\" \\"),
            format!("     -d '{{\"q\": \"fleece hoodie\", \"limit\": 3}}' {base}/v1/products/search"),
            format!("{client_env}OCTO_API_KEY={key} {octogen} search \"fleece hoodie\""),
            format!("{operator_env}{octogen} admin org list"),
            format!("{operator_env}{octogen} admin user create --operator --email you@example.com"),
        ]
    }
}

/// A URL clients can reach the server at: a wildcard listen address
/// (0.0.0.0, [::]) is reachable on loopback.
fn reachable_base_url(address: std::net::SocketAddr) -> String {
    let mut address = address;
    if address.ip().is_unspecified() {
        let loopback: std::net::IpAddr =
            if address.is_ipv4() { std::net::Ipv4Addr::LOCALHOST.into() } else { std::net::Ipv6Addr::LOCALHOST.into() };
        address.set_ip(loopback);
    }
    format!("http://{address}")
}

/// This binary's path for a shell in the current directory: relative when it
/// lies below it (`target/release/octogen`), else absolute; quoted as needed.
fn binary_path() -> String {
    let Ok(exe) = std::env::current_exe() else { return "octogen".into() };
    let below_here = std::env::current_dir().ok().and_then(|here| exe.strip_prefix(here).ok().map(Path::to_path_buf));
    let path = match below_here {
        // A bare name would be looked up on PATH; a relative path with a slash is not.
        Some(relative) if relative.components().count() > 1 => relative,
        Some(relative) => Path::new(".").join(relative),
        None => exe,
    };
    shell_word(&path.display().to_string())
}

/// `text` as one shell word.
fn shell_word(text: &str) -> String {
    shlex::try_quote(text).map(|quoted| quoted.into_owned()).unwrap_or_else(|_| text.to_string())
}

fn load_config(file: Option<PathBuf>, flags: BTreeMap<String, toml::Value>) -> CliResult<Config> {
    config::load(file.as_deref(), std::env::vars(), flags).map_err(|error| CliError::failure(error.to_string()))
}

async fn build(config: Config) -> CliResult<Application> {
    let app = Application::build(config).await.map_err(|error| CliError::failure(describe_start_failure(&error)))?;
    if let Some(path) = &app.state().secrets.generated_admin_token_file {
        // The path, not the token: terminal output ends up in logs and scrollback.
        eprintln!(
            "Generated the operator token into {} (mode 0600). `octogen admin` finds it there \
             (--data-dir / OCTOGEN_DATA_DIR); elsewhere, set OCTOGEN_ADMIN_TOKEN to the file's content.\n",
            path.display()
        );
    }
    Ok(app)
}

/// Why the server could not start, in one line; a busy address names the ways to choose another.
fn describe_start_failure(error: &anyhow::Error) -> String {
    let address_in_use = error.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::AddrInUse)
    });
    if address_in_use {
        format!(
            "{error:#} (another server is listening there); choose another address with --listen HOST:PORT \
             or OCTOGEN_LISTEN, e.g. --listen 127.0.0.1:8081"
        )
    } else {
        format!("{error:#}")
    }
}

async fn run(app: Application) -> CliResult {
    app.run_until(shutdown_signal()).await.map_err(|error| CliError::failure(format!("{error:#}")))
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => return interrupt.await.unwrap_or(()),
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

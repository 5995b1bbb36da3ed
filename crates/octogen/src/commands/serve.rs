//! `octogen serve` and `octogen demo`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use octogen_server::config::{self, Config};
use octogen_server::{data_dir, demo, telemetry, Application};
use secrecy::ExposeSecret;

use crate::cli_error::{CliError, CliResult};

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

#[derive(Args)]
pub struct DemoArgs {
    /// Where the demo keeps its data.
    #[arg(long, default_value = "octogen-data")]
    data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
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
    flags.insert("data_dir".into(), toml::Value::String(args.data_dir.display().to_string()));
    flags.insert("listen".into(), toml::Value::String(args.listen));
    flags.insert("log_level".into(), toml::Value::String("warn".into()));
    flags.insert("log_format".into(), toml::Value::String("pretty".into()));
    let config = load_config(None, flags)?;
    telemetry::init(&config);
    data_dir::set_private_umask();
    let data_dir = config.data_dir.clone();
    let app = build(config).await?;
    let info = demo::prepare(app.state())
        .await
        .map_err(|error| CliError::failure(format!("cannot prepare the demo: {error:#}")))?;
    let base = format!("http://{}", app.local_addr());
    let key = info.key.expose_secret();
    println!("Octogen demo is running at {base}");
    println!();
    println!("  API key (shown once): {key}");
    println!("  Organization:         {} ({})", demo::DEMO_ORG, info.org_id);
    println!("  Catalog:              {} ({} products)", info.catalog_key, info.product_count);
    println!();
    println!("Try it:");
    println!("  curl -H \"Authorization: Bearer {key}\" {base}/v1/catalogs");
    println!(
        "  curl -H \"Authorization: Bearer {key}\" -H \"Content-Type: application/json\" \\\n       -d '{{\"q\": \"fleece hoodie\", \"limit\": 3}}' {base}/v1/products/search"
    );
    println!();
    // `cargo run` puts nothing on PATH: name the binary as a newcomer can run it from here.
    let octogen = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.strip_prefix(std::env::current_dir().ok()?).ok().map(|path| path.display().to_string()))
        .unwrap_or_else(|| "octogen".into());
    println!("From another terminal in this directory:");
    // The client's default base URL is the demo's default address; name any other.
    let client_base =
        if base == octogen_client::DEFAULT_BASE_URL { String::new() } else { format!("OCTO_BASE_URL={base} ") };
    println!("  {client_base}OCTO_API_KEY={key} {octogen} search \"fleece hoodie\"");
    println!(
        "  {octogen} admin org list            # operator commands find the token in {}/admin-token",
        data_dir.display()
    );
    println!("  {octogen} admin user create --operator --email you@example.com");
    println!("                                      # then sign in to the portal at {base}/login");
    println!();
    println!("Press Ctrl-C to stop.");
    run(app).await
}

fn load_config(file: Option<PathBuf>, flags: BTreeMap<String, toml::Value>) -> CliResult<Config> {
    config::load(file.as_deref(), std::env::vars(), flags).map_err(|error| CliError::failure(error.to_string()))
}

async fn build(config: Config) -> CliResult<Application> {
    let app = Application::build(config).await.map_err(|error| CliError::failure(format!("{error:#}")))?;
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

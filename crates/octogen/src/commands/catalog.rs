//! `octogen catalog import`: one index run against a running server, with
//! progress and a final report.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use crate::admin_client::AdminClient;
use crate::cli_error::{CliError, CliResult, ExitClass};
use crate::output;
use crate::Connection;

#[derive(Args)]
pub struct ImportArgs {
    /// The catalog to import into.
    #[arg(long)]
    catalog: String,
    /// shopify | merchant-xml | merchant-tsv | jsonld | csv
    #[arg(long)]
    format: String,
    /// Column mapping (TOML) for the csv format.
    #[arg(long)]
    mapping: Option<PathBuf>,
    /// ISO 4217 currency for feeds whose prices carry none (e.g. Shopify exports).
    #[arg(long)]
    currency: Option<String>,
    /// Return as soon as the run has started instead of waiting for its report.
    #[arg(long)]
    no_wait: bool,
    /// A feed file, or an http(s) URL the server fetches (a Shopify store URL is paged).
    feed: String,
}

const POLL: Duration = Duration::from_millis(200);

pub async fn import(connection: &Connection, args: ImportArgs) -> CliResult {
    let client = connection.admin_client()?;
    let mapping = match &args.mapping {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|error| {
            CliError::new(ExitClass::Invalid, format!("cannot read the mapping file {}: {error}", path.display()))
        })?),
        None => None,
    };
    let mut request = json!({"format": args.format, "mapping": mapping, "currency": args.currency});
    if args.feed.starts_with("http://") || args.feed.starts_with("https://") {
        request["url"] = json!(args.feed);
    } else {
        let path = Path::new(&args.feed);
        let upload = upload_with_progress(&client, path, connection.json).await?;
        request["upload"] = upload["upload"].clone();
        request["name"] = json!(path.file_name().map(|name| name.to_string_lossy().into_owned()));
    }
    let started = Instant::now();
    let run = client.post(&format!("/catalogs/{}/imports", args.catalog), request).await?;
    if args.no_wait {
        crate::commands::admin::report(connection.json, &run, || {
            println!("Started index run {} for catalog {}", output::text(&run, "id"), args.catalog)
        });
        return Ok(());
    }
    let run = wait_for_run(&client, &output::text(&run, "id"), connection.json).await?;
    if connection.json {
        output::json(&run);
    } else {
        print_report(&run, started.elapsed());
    }
    match run["status"].as_str() {
        Some("succeeded") => Ok(()),
        _ => Err(CliError::failure(format!("the import failed: {}", output::text(&run, "error")))),
    }
}

async fn upload_with_progress(client: &AdminClient, path: &Path, quiet: bool) -> CliResult<Value> {
    let size = std::fs::metadata(path)
        .map_err(|error| CliError::new(ExitClass::Invalid, format!("cannot read {}: {error}", path.display())))?
        .len();
    let bar = bar(quiet, size, "uploading");
    let progress = bar.clone();
    let upload = client.upload(path, move |sent| progress.set_position(sent)).await;
    bar.finish_and_clear();
    upload
}

/// Polls the run until it has finished and, when it succeeded, until search reflects it.
async fn wait_for_run(client: &AdminClient, run_id: &str, quiet: bool) -> CliResult<Value> {
    let bar = bar(quiet, 0, "waiting");
    loop {
        let run = client.get(&format!("/runs/{run_id}")).await?;
        let status = run["status"].as_str().unwrap_or_default();
        let counts = &run["counts"];
        match status {
            "queued" => bar.set_message("waiting for the previous run of this catalog"),
            "running" => {
                if let Some(total) = run["bytesTotal"].as_u64() {
                    bar.set_length(total);
                }
                bar.set_position(run["bytesRead"].as_u64().unwrap_or(0));
                bar.set_message(format!(
                    "{} records read, {} skipped",
                    counts["seen"].as_u64().unwrap_or(0),
                    counts["skipped"].as_u64().unwrap_or(0)
                ));
            }
            "succeeded" if run["searchable"].as_bool() != Some(true) => {
                bar.set_message("making the products searchable")
            }
            _ => {
                bar.finish_and_clear();
                return Ok(run);
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

fn bar(hidden: bool, length: u64, message: &'static str) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(length);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn print_report(run: &Value, elapsed: Duration) {
    let counts = &run["counts"];
    let count = |name: &str| counts[name].as_u64().unwrap_or(0);
    let verdict = if run["status"] == "succeeded" { "Imported" } else { "Failed to import" };
    println!(
        "{verdict} catalog {} from {} ({}) in {:.1}s",
        output::text(run, "catalogKey"),
        output::text(run, "source"),
        output::text(run, "format"),
        elapsed.as_secs_f64()
    );
    println!(
        "  seen {} · added {} · updated {} · unchanged {} · deactivated {} · skipped {}",
        count("seen"),
        count("added"),
        count("updated"),
        count("unchanged"),
        count("deactivated"),
        count("skipped")
    );
    if let Some(error) = run["error"].as_str() {
        println!("  error: {error}");
    }
    let skipped = run["report"]["skipped"].as_array().cloned().unwrap_or_default();
    if !skipped.is_empty() {
        println!("  skipped records:");
        for skip in &skipped {
            println!("    {}: {}", output::text(skip, "record"), output::text(skip, "reason"));
        }
        let more = run["report"]["skippedNotListed"].as_u64().unwrap_or(0);
        if more > 0 {
            println!("    … and {more} more");
        }
    }
}

#[derive(Args)]
pub struct SourceArgs {
    /// The catalog.
    key: String,
    /// The feed URL (a Shopify store URL is paged through products.json).
    #[arg(long)]
    url: String,
    /// shopify | merchant-xml | merchant-tsv | jsonld | csv
    #[arg(long)]
    format: String,
    /// How often to re-import: e.g. 30m, 6h, 1d (at least 1m).
    #[arg(long)]
    every: String,
    /// Column mapping (TOML) for the csv format.
    #[arg(long)]
    mapping: Option<PathBuf>,
    /// ISO 4217 currency for feeds whose prices carry none.
    #[arg(long)]
    currency: Option<String>,
}

pub async fn set_source(client: &AdminClient, json_output: bool, args: SourceArgs) -> CliResult {
    let interval = crate::duration::parse_seconds(&args.every, "interval")?;
    let mapping = match &args.mapping {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|error| {
            CliError::new(ExitClass::Invalid, format!("cannot read the mapping file {}: {error}", path.display()))
        })?),
        None => None,
    };
    let body = json!({
        "url": args.url, "format": args.format, "mapping": mapping, "currency": args.currency, "intervalSecs": interval
    });
    let source = client.put_json(&format!("/catalogs/{}/source", args.key), body).await?;
    crate::commands::admin::report(json_output, &source, || {
        println!(
            "Catalog {} is re-imported from {} every {}; the first import starts now",
            args.key,
            octogen_fetch::redact_url(&args.url),
            args.every
        )
    });
    Ok(())
}

pub fn print_runs(runs: &Value) {
    let rows: Vec<Vec<String>> = runs
        .as_array()
        .into_iter()
        .flatten()
        .map(|run| {
            let counts = &run["counts"];
            vec![
                output::text(run, "id"),
                output::text(run, "status"),
                output::text(run, "trigger"),
                output::text(run, "createdAt"),
                format!(
                    "+{} ~{} -{} skipped {}",
                    counts["added"].as_u64().unwrap_or(0),
                    counts["updated"].as_u64().unwrap_or(0),
                    counts["deactivated"].as_u64().unwrap_or(0),
                    counts["skipped"].as_u64().unwrap_or(0)
                ),
                output::text(run, "source"),
            ]
        })
        .collect();
    if rows.is_empty() {
        println!(
            "No index runs yet. Import a feed with: octogen catalog import --catalog KEY --format FORMAT FILE_OR_URL"
        );
    } else {
        output::table(&["RUN", "STATUS", "TRIGGER", "CREATED", "CHANGES", "SOURCE"], &rows);
    }
}

/// Starts a rebuild and follows it with a progress bar.
pub async fn reindex(client: &AdminClient, json_output: bool, catalog: Option<String>) -> CliResult {
    let job = client.post("/reindex", json!({"catalog": catalog})).await?;
    let id = output::text(&job, "id");
    let bar = if json_output { ProgressBar::hidden() } else { ProgressBar::new(job["total"].as_u64().unwrap_or(0)) };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} products")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    loop {
        let job = client.get(&format!("/reindex/{id}")).await?;
        bar.set_position(job["done"].as_u64().unwrap_or(0));
        match job["status"].as_str() {
            Some("running") => tokio::time::sleep(POLL).await,
            Some("succeeded") => {
                bar.finish_and_clear();
                crate::commands::admin::report(json_output, &job, || {
                    println!("Rebuilt the search index from the store: {} products", output::text(&job, "done"))
                });
                return Ok(());
            }
            _ => {
                bar.finish_and_clear();
                return Err(CliError::failure(format!("the reindex failed: {}", output::text(&job, "error"))));
            }
        }
    }
}

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

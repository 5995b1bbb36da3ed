//! `octogen catalog import`: one index run against a running server, with
//! progress and a final report.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use crate::admin_client::AdminClient;
use crate::cli_error::{CliError, CliResult, ExitClass};
use crate::output;
use crate::Connection;

/// The feed formats (an unknown one is a usage error, before anything is sent).
#[derive(Clone, Copy, ValueEnum)]
pub enum FeedFormatArg {
    /// Shopify products.json (storefront) or an Admin API export.
    Shopify,
    /// Google Merchant Center RSS/Atom with the g: namespace.
    MerchantXml,
    /// Google Merchant Center tab-separated.
    MerchantTsv,
    /// schema.org Product JSON-LD in HTML pages.
    Jsonld,
    /// CSV with a TOML column mapping (--mapping).
    Csv,
}

impl FeedFormatArg {
    fn as_str(self) -> &'static str {
        match self {
            FeedFormatArg::Shopify => "shopify",
            FeedFormatArg::MerchantXml => "merchant-xml",
            FeedFormatArg::MerchantTsv => "merchant-tsv",
            FeedFormatArg::Jsonld => "jsonld",
            FeedFormatArg::Csv => "csv",
        }
    }
}

#[derive(Args)]
pub struct ImportArgs {
    /// The catalog to import into.
    #[arg(long)]
    catalog: String,
    #[arg(long, value_enum)]
    format: FeedFormatArg,
    /// Column mapping (TOML) for the csv format.
    #[arg(long)]
    mapping: Option<PathBuf>,
    /// ISO 4217 currency for feeds whose prices carry none (e.g. Shopify exports).
    #[arg(long)]
    currency: Option<String>,
    /// The store's URL, e.g. https://shop.example: Shopify product URLs are built from it
    /// (default: the catalog's source URL, else the feed URL's origin).
    #[arg(long)]
    base_url: Option<String>,
    /// Return as soon as the run has started instead of waiting for its report.
    #[arg(long)]
    no_wait: bool,
    /// A feed file, or an http(s) URL the server fetches (a Shopify store URL is paged).
    feed: String,
}

const POLL: Duration = Duration::from_millis(200);

pub async fn import(connection: &Connection, args: ImportArgs) -> CliResult {
    let client = connection.admin_client()?;
    let mapping = read_mapping(args.mapping.as_deref())?;
    let from_url = args.feed.starts_with("http://") || args.feed.starts_with("https://");
    // Refused before a possibly large upload: a missing catalog, or a Shopify
    // file with no URL to build its product URLs from.
    let catalog = existing_catalog(&client, &args.catalog).await?;
    let needs_base_url = matches!(args.format, FeedFormatArg::Shopify) && !from_url;
    if needs_base_url && args.base_url.is_none() && catalog["sourceBaseUrl"].is_null() {
        return Err(CliError::new(
            ExitClass::Invalid,
            format!(
                "catalog {} has no source URL to build Shopify product URLs from: add --base-url with the store's URL \
                 (e.g. --base-url https://shop.example)",
                args.catalog
            ),
        ));
    }
    let mut request = json!({
        "format": args.format.as_str(), "mapping": mapping, "currency": args.currency, "baseUrl": args.base_url
    });
    if from_url {
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
    // Warnings go to stderr in both modes: a script reading --json still shows them to its operator.
    for warning in run["report"]["warnings"].as_array().into_iter().flatten() {
        eprintln!("warning: {}", warning.as_str().unwrap_or_default());
    }
    match run["status"].as_str() {
        Some("succeeded") => Ok(()),
        // The reason is printed once, as the command's error line.
        _ => Err(CliError::failure(format!("the import failed: {}", output::text(&run, "error")))),
    }
}

fn read_mapping(path: Option<&Path>) -> CliResult<Option<String>> {
    let Some(path) = path else { return Ok(None) };
    std::fs::read_to_string(path).map(Some).map_err(|error| {
        CliError::new(ExitClass::Invalid, format!("cannot read the mapping file {}: {error}", path.display()))
    })
}

/// The catalog as the operator API lists it, or a not-found error that says how to create it.
async fn existing_catalog(client: &AdminClient, key: &str) -> CliResult<Value> {
    let catalogs = client.get("/catalogs").await?;
    catalogs.as_array().into_iter().flatten().find(|catalog| catalog["key"] == key).cloned().ok_or_else(|| {
        CliError::new(
            ExitClass::NotFound,
            format!(
                "catalog {key} not found; create it first: octogen admin catalog create --key {key} --name NAME \
                 --source-url https://shop.example"
            ),
        )
    })
}

async fn upload_with_progress(client: &AdminClient, path: &Path, quiet: bool) -> CliResult<Value> {
    let size = std::fs::metadata(path)
        .map_err(|error| CliError::new(ExitClass::Invalid, format!("cannot read {}: {error}", path.display())))?
        .len();
    let bar = bar(quiet, Some(size), "uploading");
    let progress = bar.clone();
    let upload = client.upload(path, move |sent| progress.set_position(sent)).await;
    bar.finish_and_clear();
    upload
}

/// Polls the run until it has finished and, when it succeeded, until search reflects it.
/// The bar counts bytes only while the feed is read and its size is known; the
/// phases around that show a spinner and what is happening (never "0 B/0 B").
async fn wait_for_run(client: &AdminClient, run_id: &str, quiet: bool) -> CliResult<Value> {
    let bar = bar(quiet, None, "waiting");
    loop {
        let run = client.get(&format!("/runs/{run_id}")).await?;
        let status = run["status"].as_str().unwrap_or_default();
        let counts = &run["counts"];
        let total = run["bytesTotal"].as_u64().filter(|total| *total > 0);
        bar.set_style(style(if status == "running" { total } else { None }));
        match status {
            "queued" => bar.set_message("waiting for the previous run of this catalog"),
            "running" => {
                if let Some(total) = total {
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

/// A progress bar of `length` bytes, or a spinner when the length is not known.
fn bar(hidden: bool, length: Option<u64>, message: &'static str) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(length.unwrap_or(0));
    bar.set_style(style(length.filter(|length| *length > 0)));
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Bytes against a known, non-zero total; else only a spinner and the message.
fn progress_template(total: Option<u64>) -> &'static str {
    match total {
        Some(_) => "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}",
        None => "{spinner} [{elapsed_precise}] {msg}",
    }
}

fn style(total: Option<u64>) -> ProgressStyle {
    ProgressStyle::with_template(progress_template(total)).unwrap_or_else(|_| ProgressStyle::default_spinner())
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
    #[arg(long, value_enum)]
    format: FeedFormatArg,
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
    let mapping = read_mapping(args.mapping.as_deref())?;
    let body = json!({
        "url": args.url, "format": args.format.as_str(), "mapping": mapping, "currency": args.currency,
        "intervalSecs": interval
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_shown_only_against_a_known_total() {
        // Between phases (queued, making searchable) and for an empty or unsized
        // feed there is no total: "0 B/0 B" would be noise.
        assert!(!progress_template(None).contains("bytes"));
        assert!(progress_template(Some(1024)).contains("{bytes}/{total_bytes}"));
    }
}

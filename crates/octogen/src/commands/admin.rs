//! `octogen admin …`: organizations, catalogs and grants.

use clap::{Subcommand, ValueEnum};
use serde_json::{json, Value};

use crate::cli_error::CliResult;
use crate::output;
use crate::Connection;

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Organizations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Catalogs.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Grant a catalog to an organization (effective on its next request).
    Grant {
        #[arg(long)]
        org: String,
        #[arg(long)]
        catalog: String,
    },
    /// Remove a catalog grant (effective on the organization's next request).
    Ungrant {
        #[arg(long)]
        org: String,
        #[arg(long)]
        catalog: String,
    },
    /// Portal users: operators and members of organizations.
    #[command(subcommand)]
    User(super::users::UserCommand),
    /// Rebuild this server's search index from the store (all catalogs, or one).
    Reindex {
        #[arg(long)]
        catalog: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum OrgCommand {
    /// Create an organization.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long = "type", value_enum)]
        org_type: OrgTypeArg,
    },
    /// List organizations.
    List,
    /// Suspend an organization: its keys get 403 from the next request on.
    Suspend { id: String },
    /// Lift a suspension.
    Unsuspend { id: String },
    /// Pin the organization to an API version (2026-05-28 or 2026-10-01), effective on its next request.
    SetApiVersion { id: String, version: String },
    /// Set the organization's request budget (shared by all its keys), effective on its next request.
    SetRateLimit {
        id: String,
        /// Requests per minute.
        #[arg(long, conflicts_with = "default", required_unless_present = "default")]
        per_minute: Option<u32>,
        /// Return to the server's default budget.
        #[arg(long)]
        default: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum OrgTypeArg {
    #[value(name = "catalog_partner")]
    CatalogPartner,
    #[value(name = "merchant")]
    Merchant,
}

#[derive(Subcommand)]
pub enum CatalogCommand {
    /// Create a catalog.
    Create {
        /// Short slug, e.g. `northwind`.
        #[arg(long)]
        key: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// The merchant's site, e.g. https://northwind.example
        #[arg(long)]
        source_url: Option<String>,
    },
    /// List catalogs.
    List,
    /// Hide a catalog from every partner (effective on the next request).
    Deactivate { key: String },
    /// Show a deactivated catalog to its grantees again.
    Activate { key: String },
    /// Re-import a catalog from a feed URL on a schedule (the first import starts right away).
    SetSource(crate::commands::catalog::SourceArgs),
    /// Stop scheduled re-imports of a catalog.
    ClearSource { key: String },
    /// A catalog's recent index runs.
    Runs { key: String },
}

pub async fn run(connection: &Connection, command: AdminCommand) -> CliResult {
    let client = connection.admin_client()?;
    let json_output = connection.json;
    match command {
        AdminCommand::Org(OrgCommand::Create { name, org_type }) => {
            let org_type = match org_type {
                OrgTypeArg::CatalogPartner => "catalog_partner",
                OrgTypeArg::Merchant => "merchant",
            };
            let org = client.post("/orgs", json!({"name": name, "type": org_type})).await?;
            report(json_output, &org, || {
                println!(
                    "Created organization {} ({}) with id {}",
                    output::text(&org, "name"),
                    org_type,
                    output::text(&org, "id")
                )
            });
        }
        AdminCommand::Org(OrgCommand::List) => {
            let orgs = client.get("/orgs").await?;
            report(json_output, &orgs, || print_orgs(&orgs));
        }
        AdminCommand::Org(OrgCommand::Suspend { id }) => {
            let org = client.post(&format!("/orgs/{id}/suspend"), json!({})).await?;
            report(json_output, &org, || {
                println!("Suspended organization {id}: its keys are refused from the next request on")
            });
        }
        AdminCommand::Org(OrgCommand::Unsuspend { id }) => {
            let org = client.post(&format!("/orgs/{id}/unsuspend"), json!({})).await?;
            report(json_output, &org, || println!("Organization {id} is active again"));
        }
        AdminCommand::Org(OrgCommand::SetApiVersion { id, version }) => {
            let org = client.put_json(&format!("/orgs/{id}/api-version"), json!({"version": version})).await?;
            report(json_output, &org, || println!("Organization {id} now gets API version {version}"));
        }
        AdminCommand::Org(OrgCommand::SetRateLimit { id, per_minute, .. }) => {
            let org = client.put_json(&format!("/orgs/{id}/rate-limit"), json!({"perMinute": per_minute})).await?;
            report(json_output, &org, || match per_minute {
                Some(limit) => println!("Organization {id} may now make {limit} requests per minute"),
                None => println!("Organization {id} now has the server's default request budget"),
            });
        }
        AdminCommand::Catalog(CatalogCommand::Create { key, name, source_url }) => {
            let catalog = client.post("/catalogs", json!({"key": key, "name": name, "sourceUrl": source_url})).await?;
            report(json_output, &catalog, || println!("Created catalog {key} ({name})"));
        }
        AdminCommand::Catalog(CatalogCommand::List) => {
            let catalogs = client.get("/catalogs").await?;
            report(json_output, &catalogs, || print_catalogs(&catalogs));
        }
        AdminCommand::Catalog(CatalogCommand::Deactivate { key }) => {
            let catalog = client.post(&format!("/catalogs/{key}/deactivate"), json!({})).await?;
            report(json_output, &catalog, || println!("Deactivated catalog {key}: partners no longer see it"));
        }
        AdminCommand::Catalog(CatalogCommand::Activate { key }) => {
            let catalog = client.post(&format!("/catalogs/{key}/activate"), json!({})).await?;
            report(json_output, &catalog, || println!("Activated catalog {key}"));
        }
        AdminCommand::Catalog(CatalogCommand::SetSource(args)) => {
            crate::commands::catalog::set_source(&client, json_output, args).await?
        }
        AdminCommand::Catalog(CatalogCommand::ClearSource { key }) => {
            let result = client.delete(&format!("/catalogs/{key}/source")).await?;
            report(json_output, &result, || println!("Catalog {key} is no longer re-imported on a schedule"));
        }
        AdminCommand::Catalog(CatalogCommand::Runs { key }) => {
            let runs = client.get(&format!("/catalogs/{key}/runs")).await?;
            report(json_output, &runs, || crate::commands::catalog::print_runs(&runs));
        }
        AdminCommand::Reindex { catalog } => crate::commands::catalog::reindex(&client, json_output, catalog).await?,
        AdminCommand::Grant { org, catalog } => {
            let result = client.put(&format!("/orgs/{org}/grants/{catalog}")).await?;
            report(json_output, &result, || println!("Granted catalog {catalog} to organization {org}"));
        }
        AdminCommand::User(command) => super::users::run(&client, json_output, command).await?,
        AdminCommand::Ungrant { org, catalog } => {
            let result = client.delete(&format!("/orgs/{org}/grants/{catalog}")).await?;
            report(json_output, &result, || println!("Removed catalog {catalog} from organization {org}"));
        }
    }
    Ok(())
}

/// JSON for scripts, or the human rendering.
pub fn report(json_output: bool, value: &Value, human: impl FnOnce()) {
    if json_output {
        output::json(value);
    } else {
        human();
    }
}

fn print_orgs(orgs: &Value) {
    let rows: Vec<Vec<String>> = orgs
        .as_array()
        .into_iter()
        .flatten()
        .map(|org| {
            let status = if org["suspended"].as_bool() == Some(true) { "suspended" } else { "active" };
            let rate_limit = match org["rateLimitPerMinute"].as_u64() {
                Some(limit) => format!("{limit}/min"),
                None => "default".into(),
            };
            vec![
                output::text(org, "id"),
                output::text(org, "name"),
                output::text(org, "type"),
                status.into(),
                rate_limit,
                output::text(org, "apiVersion"),
            ]
        })
        .collect();
    if rows.is_empty() {
        println!("No organizations yet. Create one with: octogen admin org create --name NAME --type catalog_partner");
    } else {
        output::table(&["ID", "NAME", "TYPE", "STATUS", "RATE LIMIT", "API VERSION"], &rows);
    }
}

fn print_catalogs(catalogs: &Value) {
    let rows: Vec<Vec<String>> = catalogs
        .as_array()
        .into_iter()
        .flatten()
        .map(|catalog| {
            let status = if catalog["isActive"].as_bool() == Some(false) { "inactive" } else { "active" };
            vec![
                output::text(catalog, "key"),
                output::text(catalog, "displayName"),
                status.into(),
                output::text(catalog, "productCount"),
                last_run(&catalog["lastRun"]),
                output::text(catalog, "sourceBaseUrl"),
            ]
        })
        .collect();
    if rows.is_empty() {
        println!("No catalogs yet. Create one with: octogen admin catalog create --key KEY --name NAME");
    } else {
        output::table(&["KEY", "NAME", "STATUS", "PRODUCTS", "LAST RUN", "SOURCE"], &rows);
    }
}

/// A catalog's latest index run: its outcome and when (finished, else created); "never" without one.
fn last_run(run: &Value) -> String {
    if run.is_null() {
        return "never".into();
    }
    let at = if run["finishedAt"].is_null() { output::text(run, "createdAt") } else { output::text(run, "finishedAt") };
    format!("{} {at}", output::text(run, "status"))
}

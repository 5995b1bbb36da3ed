//! `octogen keys …`: API keys of an organization.

use clap::Subcommand;
use serde_json::{json, Value};

use crate::cli_error::{CliError, CliResult, ExitClass};
use crate::commands::admin::report;
use crate::output;
use crate::Connection;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a key; the full key is printed once and never again.
    Create {
        #[arg(long)]
        org: String,
        #[arg(long)]
        name: String,
    },
    /// List an organization's keys (never their secrets).
    List {
        #[arg(long)]
        org: String,
    },
    /// Revoke a key: the next request with it gets 401.
    Revoke { key_id: String },
    /// Issue a replacement key for the same organization. The old key stays
    /// active until revoked (so deploy the new one first), or ends as the flags say.
    Rotate {
        key_id: String,
        /// Revoke the old key right away.
        #[arg(long, conflicts_with = "expire_old_in")]
        revoke_old: bool,
        /// Keep the old key working for this long (e.g. 30m, 24h, 7d; at most 30d), then refuse it like a revoked key.
        #[arg(long, value_name = "DURATION")]
        expire_old_in: Option<String>,
    },
}

pub async fn run(connection: &Connection, command: KeysCommand) -> CliResult {
    let client = connection.admin_client()?;
    let json_output = connection.json;
    match command {
        KeysCommand::Create { org, name } => {
            let key = client.post(&format!("/orgs/{org}/keys"), json!({"name": name})).await?;
            report(json_output, &key, || print_new_key(&key, "Created"));
        }
        KeysCommand::List { org } => {
            let keys = client.get(&format!("/orgs/{org}/keys")).await?;
            report(json_output, &keys, || print_keys(&keys));
        }
        KeysCommand::Revoke { key_id } => {
            let key = client.post(&format!("/keys/{key_id}/revoke"), json!({})).await?;
            report(json_output, &key, || println!("Revoked API key {key_id}: the next request with it gets 401"));
        }
        KeysCommand::Rotate { key_id, revoke_old, expire_old_in } => {
            let mut body = json!({"revokeOld": revoke_old});
            if let Some(lifetime) = &expire_old_in {
                body["expireOldInSeconds"] = json!(old_key_lifetime(lifetime)?);
            }
            let key = client.post(&format!("/keys/{key_id}/rotate"), body).await?;
            report(json_output, &key, || {
                print_new_key(&key, "Issued replacement");
                let previous = &key["previous"];
                if revoke_old {
                    println!("The old key {key_id} is revoked.");
                } else if previous["expiresAt"].is_string() {
                    println!(
                        "The old key {key_id} keeps working until {}: deploy the new key before then.",
                        output::text(previous, "expiresAt")
                    );
                } else {
                    println!("The old key {key_id} stays active: deploy the new key, then run `octogen keys revoke {key_id}`.");
                }
            });
        }
    }
    Ok(())
}

/// `--expire-old-in`: 1 second to 30 days (the server checks too; this names the flag).
fn old_key_lifetime(text: &str) -> CliResult<u64> {
    let seconds = crate::duration::parse_seconds(text, "--expire-old-in")?;
    let max = octogen_server::service::MAX_OLD_KEY_LIFETIME_SECS;
    if seconds == 0 || seconds > max {
        return Err(CliError::new(
            ExitClass::Invalid,
            format!(
                "--expire-old-in {text:?} is out of range: the old key can keep working for 1s to {}d",
                max / 86_400
            ),
        ));
    }
    Ok(seconds)
}

fn print_new_key(key: &Value, verb: &str) {
    println!(
        "{verb} API key {} ({}) for organization {}:",
        output::text(key, "id"),
        output::text(key, "name"),
        output::text(key, "orgId")
    );
    println!();
    println!("    {}", output::text(key, "key"));
    println!();
    println!("Copy it now: the key is shown only once and cannot be recovered.");
}

fn print_keys(keys: &Value) {
    let rows: Vec<Vec<String>> = keys
        .as_array()
        .into_iter()
        .flatten()
        .map(|key| {
            vec![
                output::text(key, "id"),
                output::text(key, "name"),
                output::text(key, "status"),
                output::text(key, "createdAt"),
                output::text(key, "lastUsedAt"),
                output::text(key, "expiresAt"),
            ]
        })
        .collect();
    if rows.is_empty() {
        println!("No API keys. Create one with: octogen keys create --org ORG_ID --name NAME");
    } else {
        output::table(&["KEY ID", "NAME", "STATUS", "CREATED", "LAST USED", "EXPIRES"], &rows);
    }
}

//! `octogen admin user …`: people who sign in to the portal, and containing
//! a compromised account (disable, operator flag, sessions, password reset).
//!
//! The password comes from `--password` (visible to other local users in the
//! process list: for throwaway scripts only), else from a hidden prompt asked
//! twice when standard input is a terminal, else from the first line of
//! standard input (`printf '%s\n' "$PW" | octogen admin user create …`).

use std::io::{BufRead, IsTerminal};

use clap::{Subcommand, ValueEnum};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use super::admin::report;
use crate::admin_client::AdminClient;
use crate::cli_error::{CliError, CliResult, ExitClass};
use crate::output;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user: an operator (--operator) and/or a member of an organization (--org, --role).
    Create {
        #[arg(long)]
        email: String,
        /// May use the portal's operator area (organizations, catalogs, grants, users).
        #[arg(long)]
        operator: bool,
        /// Organization id to add the user to.
        #[arg(long, required_unless_present = "operator")]
        org: Option<String>,
        /// Role in --org: owners and admins manage API keys, members view them.
        #[arg(long, value_enum, default_value = "member", requires = "org")]
        role: RoleArg,
        /// The password (15 to 128 characters). Prompted for, or read from standard input, when absent.
        #[arg(long)]
        password: Option<SecretString>,
    },
    /// List users with their organizations and roles.
    List,
    /// Add a user to an organization, or change their role there.
    SetRole {
        #[arg(long)]
        user: String,
        #[arg(long)]
        org: String,
        #[arg(long, value_enum)]
        role: RoleArg,
    },
    /// Remove a user from an organization.
    RemoveMembership {
        #[arg(long)]
        user: String,
        #[arg(long)]
        org: String,
    },
    /// Disable a user: they cannot sign in, and their sessions and connected agents end at once.
    Disable { id: String },
    /// Let a disabled user sign in again.
    Enable { id: String },
    /// Grant (--on) or take away (--off) the operator flag.
    SetOperator {
        id: String,
        #[arg(long, conflicts_with = "off", required_unless_present = "off")]
        on: bool,
        #[arg(long)]
        off: bool,
    },
    /// Print a one-time link (valid 1 hour) for the user to set a new password.
    ResetPassword { id: String },
    /// A user's portal sessions.
    #[command(subcommand)]
    Sessions(SessionsCommand),
}

#[derive(Subcommand)]
pub enum SessionsCommand {
    /// Sign the user out everywhere (their connected agents lose access too).
    Revoke { id: String },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Owner,
    Admin,
    Member,
}

impl RoleArg {
    fn as_str(self) -> &'static str {
        match self {
            RoleArg::Owner => "owner",
            RoleArg::Admin => "admin",
            RoleArg::Member => "member",
        }
    }
}

pub async fn run(client: &AdminClient, json_output: bool, command: UserCommand) -> CliResult {
    match command {
        UserCommand::Create { email, operator, org, role, password } => {
            let password = match password {
                Some(password) => password,
                None => read_password(&email)?,
            };
            let mut body = json!({"email": email, "password": password.expose_secret(), "operator": operator});
            if let Some(org) = &org {
                body["org"] = json!(org);
                body["role"] = json!(role.as_str());
            }
            let user = client.post("/users", body).await?;
            report(json_output, &user, || {
                let what = match (&org, operator) {
                    (Some(org), true) => format!("operator and {} of organization {org}", role.as_str()),
                    (Some(org), false) => format!("{} of organization {org}", role.as_str()),
                    (None, _) => "operator".to_string(),
                };
                println!(
                    "Created user {} ({what}) with id {}",
                    output::text(&user, "email"),
                    output::text(&user, "id")
                );
            });
        }
        UserCommand::List => {
            let users = client.get("/users").await?;
            report(json_output, &users, || print_users(&users));
        }
        UserCommand::SetRole { user, org, role } => {
            let path = format!("/users/{user}/memberships/{org}");
            let result = client.put_json(&path, json!({"role": role.as_str()})).await?;
            report(json_output, &result, || println!("User {user} is now {} of organization {org}", role.as_str()));
        }
        UserCommand::RemoveMembership { user, org } => {
            let result = client.delete(&format!("/users/{user}/memberships/{org}")).await?;
            report(json_output, &result, || println!("Removed user {user} from organization {org}"));
        }
        UserCommand::Disable { id } => set_disabled(client, json_output, &id, true).await?,
        UserCommand::Enable { id } => set_disabled(client, json_output, &id, false).await?,
        UserCommand::SetOperator { id, on, .. } => set_operator(client, json_output, &id, on).await?,
        UserCommand::ResetPassword { id } => reset_password(client, json_output, &id).await?,
        UserCommand::Sessions(SessionsCommand::Revoke { id }) => revoke_sessions(client, json_output, &id).await?,
    }
    Ok(())
}

/// `disable` / `enable`.
async fn set_disabled(client: &AdminClient, json_output: bool, id: &str, disabled: bool) -> CliResult {
    let action = if disabled { "disable" } else { "enable" };
    let user = client.post(&format!("/users/{id}/{action}"), json!({})).await?;
    report(json_output, &user, || {
        let email = output::text(&user, "email");
        match disabled {
            true => println!("Disabled user {email}: they cannot sign in, and their sessions have ended"),
            false => println!("Enabled user {email}: they can sign in again"),
        }
    });
    Ok(())
}

async fn set_operator(client: &AdminClient, json_output: bool, id: &str, operator: bool) -> CliResult {
    let user = client.put_json(&format!("/users/{id}/operator"), json!({"operator": operator})).await?;
    report(json_output, &user, || {
        let email = output::text(&user, "email");
        match operator {
            true => println!("{email} is an operator"),
            false => println!("{email} is no longer an operator"),
        }
    });
    Ok(())
}

async fn reset_password(client: &AdminClient, json_output: bool, id: &str) -> CliResult {
    let reset = client.post(&format!("/users/{id}/password-reset"), json!({})).await?;
    report(json_output, &reset, || print_reset_link(client, &reset));
    Ok(())
}

async fn revoke_sessions(client: &AdminClient, json_output: bool, id: &str) -> CliResult {
    let result = client.post(&format!("/users/{id}/sessions/revoke"), json!({})).await?;
    report(json_output, &result, || {
        println!("Signed user {id} out everywhere: {} sessions ended", output::text(&result, "sessionsEnded"))
    });
    Ok(())
}

/// The link is built on the server's `public_url` when it has one, else on the address this command used.
fn print_reset_link(client: &AdminClient, reset: &Value) {
    let link = match reset["url"].as_str() {
        Some(url) => url.to_string(),
        None => format!("{}{}", client.server(), output::text(reset, "path")),
    };
    println!(
        "Password reset link for {} (works once, until {}):",
        output::text(reset, "email"),
        output::text(reset, "expiresAt")
    );
    println!();
    println!("    {link}");
    println!();
    println!("Give it to them over a channel you trust. Their current password works until the link is used.");
}

fn read_password(email: &str) -> CliResult<SecretString> {
    let unreadable = |error: std::io::Error| CliError::failure(format!("cannot read the password: {error}"));
    if std::io::stdin().is_terminal() {
        let first =
            rpassword::prompt_password(format!("Password for {email} (15-128 characters): ")).map_err(unreadable)?;
        let second = rpassword::prompt_password("Repeat the password: ").map_err(unreadable)?;
        if first != second {
            return Err(CliError::new(ExitClass::Invalid, "the passwords do not match"));
        }
        return Ok(SecretString::from(first));
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(unreadable)?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        return Err(CliError::new(
            ExitClass::Invalid,
            "no password: give --password, type it at the prompt, or pipe it on standard input",
        ));
    }
    Ok(SecretString::from(password))
}

fn print_users(users: &Value) {
    let rows: Vec<Vec<String>> = users
        .as_array()
        .into_iter()
        .flatten()
        .map(|user| {
            let memberships: Vec<String> = user["memberships"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| format!("{} ({})", output::text(m, "orgName"), output::text(m, "role")))
                .collect();
            let operator = if user["operator"].as_bool() == Some(true) { "yes" } else { "" };
            vec![output::text(user, "id"), output::text(user, "email"), operator.into(), memberships.join(", ")]
        })
        .collect();
    if rows.is_empty() {
        println!("No users yet. Create the first operator with: octogen admin user create --operator --email EMAIL");
    } else {
        output::table(&["ID", "EMAIL", "OPERATOR", "ORGANIZATIONS"], &rows);
    }
}

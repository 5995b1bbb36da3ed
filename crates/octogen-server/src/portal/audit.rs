//! The audit log page: the organization's key, sign-in, grant and membership
//! events (who, what, when, from where). Events never hold secrets: services
//! record ids and names only. What the platform's operators did shows as
//! "Octogen operator", without the person or their address: partners see
//! what changed, not who runs the platform or from where.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::context;
use octogen_store::AuditEvent;
use serde::Serialize;

use super::render::{page, time, PortalError};
use super::session::PortalUser;
use crate::service::Actor;
use crate::state::AppState;

/// How the audit log names an operator's action to a partner.
const OPERATOR_ACTOR: &str = "Octogen operator";

/// The page shows the most recent events; older ones stay in the store.
const SHOWN_EVENTS: u32 = 200;

#[derive(Serialize)]
struct EventRow {
    at: String,
    actor: String,
    action: &'static str,
    code: String,
    target: Option<String>,
    client_addr: Option<String>,
    detail: Option<String>,
}

/// `GET /audit` (owners and admins).
pub async fn list(State(state): State<AppState>, user: PortalUser) -> Result<Response, PortalError> {
    let org = user
        .org_managing_keys()
        .map_err(|_| PortalError::forbidden("Only owners and admins of an organization can read its audit log."))?;
    let events: Vec<EventRow> =
        state.store.list_audit(Some(&org.org.id), SHOWN_EVENTS).await?.into_iter().map(row).collect();
    let context = context! { layout => user.layout("audit"), events, limit => SHOWN_EVENTS };
    Ok(page(StatusCode::OK, "portal/audit.html", context))
}

fn row(event: AuditEvent) -> EventRow {
    let by_operator = Actor::is_operator_label(&event.actor);
    EventRow {
        at: time(event.occurred_at),
        actor: match by_operator {
            true => OPERATOR_ACTOR.to_string(),
            false => event.actor.strip_prefix("user:").unwrap_or(&event.actor).to_string(),
        },
        action: describe(&event.action),
        code: event.action,
        target: event.target,
        client_addr: if by_operator { None } else { event.client_addr },
        detail: event.detail.map(|detail| summarize(&detail)),
    }
}

fn describe(action: &str) -> &'static str {
    match action {
        "api_key.created" => "Created an API key",
        "api_key.revoked" => "Deactivated an API key",
        "api_key.rotated" => "Rotated an API key",
        "user.signed_in" => "Signed in",
        "user.signed_out" => "Signed out",
        "user.sign_in_failed" => "Failed sign-in",
        "user.disabled" => "User disabled",
        "user.enabled" => "User enabled",
        "user.sessions_revoked" => "Signed out everywhere",
        "user.password_reset_issued" => "Password reset link created",
        "user.password_reset" => "Password set with a reset link",
        "grant.added" => "Catalog granted",
        "grant.removed" => "Catalog grant removed",
        "membership.set" => "Membership or role changed",
        "membership.removed" => "Member removed",
        "organization.created" => "Organization created",
        "organization.suspended" => "Organization suspended",
        "organization.unsuspended" => "Organization reactivated",
        _ => "Other change",
    }
}

/// `{"name": "prod", "role": "admin"}` → `name: prod, role: admin`.
fn summarize(detail: &serde_json::Value) -> String {
    match detail.as_object() {
        Some(fields) => fields
            .iter()
            .map(|(key, value)| format!("{key}: {}", value.as_str().map(str::to_string).unwrap_or(value.to_string())))
            .collect::<Vec<_>>()
            .join(", "),
        None => detail.to_string(),
    }
}

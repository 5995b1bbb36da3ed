//! The audit log page: the organization's key, sign-in, grant and membership
//! events (who, what, when, from where), filtered by event type, actor and
//! date, in pages. Events never hold secrets: services record ids and names only.
//!
//! Pages are cut by event id (`before`/`after` in the query), not by offset,
//! so events recorded while someone reads the log do not shift the page they
//! are on or the next one. Dates are whole days in UTC, like every time the
//! portal shows.
//!
//! What the platform's operators did shows as "Octogen operator", without the
//! person or their address: partners see what changed, not who runs the
//! platform or from where.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::context;
use octogen_core::Timestamp;
use octogen_store::{AuditEntry, AuditPage, AuditQuery};
use serde::{Deserialize, Serialize};

use super::keys::actor_label;
use super::render::{page, time, PortalError};
use super::session::PortalUser;
use crate::service::Actor;
use crate::state::AppState;

/// Events per page.
const PAGE_SIZE: u32 = 50;
const DAY_MILLIS: i64 = 24 * 60 * 60 * 1000;

/// The event types a person can filter by, with how the page describes them.
const EVENT_TYPES: [(&str, &str); 20] = [
    ("api_key.created", "Created an API key"),
    ("api_key.rotated", "Rotated an API key"),
    ("api_key.revoked", "Deactivated an API key"),
    ("user.signed_in", "Signed in"),
    ("user.signed_out", "Signed out"),
    ("user.sign_in_failed", "Failed sign-in"),
    ("user.disabled", "User disabled"),
    ("user.enabled", "User enabled"),
    ("user.sessions_revoked", "Signed out everywhere"),
    ("user.password_reset_issued", "Password reset link created"),
    ("user.password_reset", "Password set with a reset link"),
    ("grant.added", "Catalog granted"),
    ("grant.removed", "Catalog grant removed"),
    ("membership.set", "Membership or role changed"),
    ("membership.removed", "Member removed"),
    ("organization.created", "Organization created"),
    ("organization.suspended", "Organization suspended"),
    ("organization.unsuspended", "Organization reactivated"),
    ("organization.rate_limit_set", "Rate limit changed"),
    ("organization.api_version_set", "API version pinned"),
];

/// How the audit log names an operator's action to a partner.
const OPERATOR_ACTOR: &str = "Octogen operator";

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

/// The page's query: the filters as typed, and the page cursor.
#[derive(Deserialize, Serialize, Default, Clone)]
pub struct AuditFilters {
    #[serde(default)]
    action: String,
    #[serde(default)]
    actor: String,
    /// `YYYY-MM-DD`, UTC, inclusive.
    #[serde(default)]
    from: String,
    /// `YYYY-MM-DD`, UTC, inclusive.
    #[serde(default)]
    to: String,
    #[serde(default, skip_serializing)]
    before: Option<i64>,
    #[serde(default, skip_serializing)]
    after: Option<i64>,
}

/// `GET /audit` (owners and admins).
pub async fn list(
    State(state): State<AppState>,
    user: PortalUser,
    Query(filters): Query<AuditFilters>,
) -> Result<Response, PortalError> {
    let org = user
        .org_managing_keys()
        .map_err(|_| PortalError::forbidden("Only owners and admins of an organization can read its audit log."))?;
    let (query, error) = match store_query(&org.org.id, &filters) {
        Ok(query) => (query, None),
        // Unreadable dates: say so, keep what was typed, and show the log without them.
        Err(message) => {
            let undated = AuditFilters { from: String::new(), to: String::new(), ..filters.clone() };
            (store_query(&org.org.id, &undated).map_err(PortalError::BadRequest)?, Some(message))
        }
    };
    let mut entries = state.store.query_audit(&query).await?;
    let more = entries.len() > PAGE_SIZE as usize;
    if more {
        // One more than a page was read to learn whether another page exists.
        match query.page {
            AuditPage::NewerThan(_) => entries.remove(0),
            _ => entries.pop().expect("more than a page"),
        };
    }
    let paging = Paging::of(&entries, query.page, more, &filters);
    let events: Vec<EventRow> = entries.into_iter().map(row).collect();
    let filtered =
        !(filters.action.is_empty() && filters.actor.is_empty() && filters.from.is_empty() && filters.to.is_empty());
    let event_types: Vec<_> = EVENT_TYPES.iter().map(|(code, label)| context! { code, label }).collect();
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let context = context! {
        layout => user.layout("audit"), events, event_types, paging, filtered, filters, error, page_size => PAGE_SIZE,
    };
    Ok(page(status, "portal/audit.html", context))
}

/// The store query for the filters, or a sentence saying which date is unreadable.
fn store_query(org_id: &str, filters: &AuditFilters) -> Result<AuditQuery, String> {
    let from = day_start(&filters.from, "From")?;
    // "To" is inclusive: events before the start of the next day.
    let until = day_start(&filters.to, "To")?.map(|day| day.plus_millis(DAY_MILLIS));
    let page = match (filters.before, filters.after) {
        (Some(id), _) => AuditPage::OlderThan(id),
        (None, Some(id)) => AuditPage::NewerThan(id),
        (None, None) => AuditPage::Newest,
    };
    Ok(AuditQuery {
        org_id: Some(org_id.to_string()),
        actions: Some(filters.action.trim())
            .filter(|action| !action.is_empty())
            .map(str::to_string)
            .into_iter()
            .collect(),
        actor_contains: Some(filters.actor.trim().to_string()).filter(|actor| !actor.is_empty()),
        from,
        until,
        page,
        limit: PAGE_SIZE + 1,
        ..AuditQuery::default()
    })
}

/// `2026-12-08` → midnight UTC that day; empty → no bound.
fn day_start(text: &str, field: &str) -> Result<Option<Timestamp>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let shaped = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
    match shaped.then(|| Timestamp::parse_rfc3339(&format!("{text}T00:00:00Z"))).flatten() {
        Some(day) => Ok(Some(day)),
        None => Err(format!("“{field}” is not a date. Enter it as YYYY-MM-DD, for example 2026-12-08.")),
    }
}

/// Links to the neighbouring pages: the filters plus a cursor.
#[derive(Serialize)]
struct Paging {
    newer: Option<String>,
    older: Option<String>,
    newest: Option<String>,
}

impl Paging {
    fn of(entries: &[AuditEntry], page: AuditPage, more: bool, filters: &AuditFilters) -> Paging {
        let link = |cursor: Option<(&str, i64)>| {
            let mut pairs: Vec<(&str, String)> =
                [("action", &filters.action), ("actor", &filters.actor), ("from", &filters.from), ("to", &filters.to)]
                    .into_iter()
                    .filter(|(_, value)| !value.is_empty())
                    .map(|(name, value)| (name, value.clone()))
                    .collect();
            if let Some((name, id)) = cursor {
                pairs.push((name, id.to_string()));
            }
            let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
            if query.is_empty() {
                "/audit".to_string()
            } else {
                format!("/audit?{query}")
            }
        };
        let (first, last) = (entries.first().map(|entry| entry.id), entries.last().map(|entry| entry.id));
        // Newer pages exist when this is not the newest page (or a newer read found more).
        let has_newer = match page {
            AuditPage::Newest => false,
            AuditPage::OlderThan(_) => true,
            AuditPage::NewerThan(_) => more,
        };
        let has_older = match page {
            AuditPage::NewerThan(_) => true,
            _ => more,
        };
        Paging {
            newer: first.filter(|_| has_newer).map(|id| link(Some(("after", id)))),
            older: last.filter(|_| has_older).map(|id| link(Some(("before", id)))),
            newest: has_newer.then(|| link(None)),
        }
    }
}

fn row(entry: AuditEntry) -> EventRow {
    let event = entry.event;
    let by_operator = Actor::is_operator_label(&event.actor);
    EventRow {
        at: time(event.occurred_at),
        actor: match by_operator {
            true => OPERATOR_ACTOR.to_string(),
            false => actor_label(&event.actor),
        },
        action: describe(&event.action),
        code: event.action,
        target: event.target,
        client_addr: if by_operator { None } else { event.client_addr },
        detail: event.detail.map(|detail| summarize(&detail)),
    }
}

fn describe(action: &str) -> &'static str {
    EVENT_TYPES.iter().find(|(code, _)| *code == action).map(|(_, label)| *label).unwrap_or("Other change")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_whole_utc_days() {
        assert_eq!(day_start("2026-12-08", "From").unwrap().unwrap().to_rfc3339(), "2026-12-08T00:00:00.000Z");
        assert_eq!(day_start(" ", "From").unwrap(), None);
        for bad in ["08/12/2026", "2026-13-01", "2026-12-8", "tomorrow"] {
            assert!(day_start(bad, "To").unwrap_err().contains("“To” is not a date"), "{bad}");
        }
        let filters = AuditFilters { to: "2026-12-08".into(), ..AuditFilters::default() };
        let until = store_query("o", &filters).unwrap().until.unwrap();
        assert_eq!(until.to_rfc3339(), "2026-12-09T00:00:00.000Z", "the To day is included");
    }
}

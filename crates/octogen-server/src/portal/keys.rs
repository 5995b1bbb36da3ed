//! The API Keys page: owners and admins create, rotate and deactivate their
//! organization's keys; members see the list.
//!
//! A new key is shown exactly once. The form's POST creates it, keeps it
//! sealed for this session (`flash.rs`) and redirects (303) to
//! `GET /keys/issued/{id}`, which shows it and forgets it: reloading that page,
//! going back to it or opening it in another tab never creates a second key
//! and never shows the first one again.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use octogen_core::api_key::KEY_PREFIX;
use octogen_core::Timestamp;
use octogen_store::{ApiKeyInfo, AuditQuery, KeyStatus};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::csrf::CsrfForm;
use super::flash;
use super::render::{page, time, user_message, Feedback, PortalError};
use super::session::PortalUser;
use crate::error::ApiError;
use crate::service::OldKey;
use crate::state::AppState;

#[derive(Serialize)]
struct KeyRow {
    id: String,
    /// `octo_live_…a1b2`: what a person compares with the key in their configuration.
    short_id: String,
    name: String,
    created_at: String,
    /// Who created it, from the audit log (`None` for keys older than their audit record).
    created_by: Option<String>,
    last_used_at: Option<String>,
    revoked_at: Option<String>,
    expires_at: Option<String>,
    /// `active`, `revoked` or `expired`.
    status: &'static str,
    active: bool,
}

impl From<ApiKeyInfo> for KeyRow {
    fn from(key: ApiKeyInfo) -> Self {
        let status = key.status_at(Timestamp::now());
        KeyRow {
            active: status == KeyStatus::Active,
            status: status.as_str(),
            short_id: short_id(&key.id),
            id: key.id,
            name: key.name,
            created_at: time(key.created_at),
            created_by: None,
            last_used_at: key.last_used_at.map(time),
            revoked_at: key.revoked_at.map(time),
            expires_at: key.expires_at.map(time),
        }
    }
}

/// The key's prefix and the last four characters of its id: enough to tell
/// keys apart at a glance without a 76-character column.
fn short_id(id: &str) -> String {
    let tail = id.get(id.len().saturating_sub(4)..).unwrap_or(id);
    format!("{KEY_PREFIX}…{tail}")
}

/// Who an audit actor is, for people: `user:ada@example.com` → `ada@example.com`.
pub fn actor_label(actor: &str) -> String {
    match actor.strip_prefix("user:") {
        Some(email) => email.to_string(),
        None if actor == "operator" => "Operator (admin API)".to_string(),
        None => actor.to_string(),
    }
}

/// The rotate form's choices for how long the old key keeps working, in seconds (0: not at all).
const KEEP_OLD_CHOICES: [(u64, &str); 4] = [(0, "now"), (3_600, "1 hour"), (86_400, "24 hours"), (604_800, "7 days")];
/// Selected unless the person chooses otherwise: a day is enough to deploy a replacement.
const DEFAULT_KEEP_OLD_SECS: u64 = 86_400;

#[derive(Deserialize)]
pub struct KeysQuery {
    #[serde(default)]
    notice: Option<String>,
    /// `hide` hides deactivated keys.
    #[serde(default)]
    deactivated: Option<String>,
}

/// Fixed sentences for the banner after a redirect (the query never carries free text).
fn notice_text(code: Option<&str>) -> Option<&'static str> {
    match code? {
        "deactivated" => Some("The key was deactivated. The next request that uses it gets 401 Unauthorized."),
        _ => None,
    }
}

/// `GET /keys`.
pub async fn list(
    State(state): State<AppState>,
    user: PortalUser,
    Query(query): Query<KeysQuery>,
) -> Result<Response, PortalError> {
    let hide_deactivated = query.deactivated.as_deref() == Some("hide");
    keys_page(&state, &user, Feedback::notice(notice_text(query.notice.as_deref())), hide_deactivated).await
}

async fn keys_page(
    state: &AppState,
    user: &PortalUser,
    feedback: Feedback,
    hide_deactivated: bool,
) -> Result<Response, PortalError> {
    let keys: Vec<KeyRow> = match &user.current {
        Some(membership) => {
            with_creators(state, &membership.org.id, state.store.list_api_keys(&membership.org.id).await?).await?
        }
        None => Vec::new(),
    };
    let active = keys.iter().filter(|key| key.active).count();
    let deactivated = keys.len() - active;
    let keys: Vec<KeyRow> = keys.into_iter().filter(|key| key.active || !hide_deactivated).collect();
    let status = feedback.status();
    let context = context! {
        layout => user.layout("keys"), keys, active, deactivated, hide_deactivated,
        notice => feedback.notice, error => feedback.error, typed => feedback.typed,
    };
    Ok(page(status, "portal/keys.html", context))
}

/// The rows, each with who created it: the actor of its `api_key.created` event.
async fn with_creators(state: &AppState, org_id: &str, keys: Vec<ApiKeyInfo>) -> Result<Vec<KeyRow>, PortalError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let query = AuditQuery {
        org_id: Some(org_id.to_string()),
        actions: vec!["api_key.created".into()],
        targets: keys.iter().map(|key| key.id.clone()).collect(),
        limit: u32::try_from(keys.len()).unwrap_or(u32::MAX),
        ..AuditQuery::default()
    };
    let creators: HashMap<String, String> = state
        .store
        .query_audit(&query)
        .await?
        .into_iter()
        .filter_map(|entry| Some((entry.event.target?, actor_label(&entry.event.actor))))
        .collect();
    Ok(keys
        .into_iter()
        .map(|key| {
            let created_by = creators.get(&key.id).cloned();
            KeyRow { created_by, ..KeyRow::from(key) }
        })
        .collect())
}

#[derive(Deserialize, Serialize)]
pub struct CreateKey {
    #[serde(default)]
    name: String,
}

/// `POST /keys`: creates the key, then redirects to the page that shows it once.
pub async fn create(
    State(state): State<AppState>,
    user: PortalUser,
    CsrfForm(form): CsrfForm<CreateKey>,
) -> Result<Response, PortalError> {
    let org = user.org_managing_keys()?;
    match state.services.create_key(&user.actor(), &org.org.id, &form.name).await {
        Ok(issued) => show_once(&state, &user, Issued::created(&issued.info), &issued.key).await,
        Err(error @ (ApiError::Validation(_) | ApiError::Message(..))) => {
            keys_page(&state, &user, Feedback::refused(user_message(&error), &form), false).await
        }
        Err(other) => Err(other.into()),
    }
}

/// What the "key created" page needs besides the secret (stored in clear with the flash).
#[derive(Serialize, Deserialize)]
struct Issued {
    key: String,
    /// The key a rotation replaced.
    previous: Option<String>,
}

impl Issued {
    const CREATED: &'static str = "api_key.created";
    const ROTATED: &'static str = "api_key.rotated";

    fn created(key: &ApiKeyInfo) -> Self {
        Issued { key: key.id.clone(), previous: None }
    }

    fn kind(&self) -> &'static str {
        if self.previous.is_some() {
            Issued::ROTATED
        } else {
            Issued::CREATED
        }
    }
}

/// Post/redirect/get: the secret waits, sealed, for the page the browser is sent to.
async fn show_once(
    state: &AppState,
    user: &PortalUser,
    issued: Issued,
    key: &SecretString,
) -> Result<Response, PortalError> {
    let id = flash::put(state, user, issued.kind(), &issued, key).await?;
    Ok(Redirect::to(&format!("/keys/issued/{id}")).into_response())
}

/// `GET /keys/issued/{id}`: the new key, the first time; afterwards (reload,
/// back button, another tab, or after ten minutes) 410 Gone with what to do
/// instead. The page is `no-store`, like every portal page.
pub async fn issued(
    State(state): State<AppState>,
    user: PortalUser,
    Path(flash_id): Path<String>,
) -> Result<Response, PortalError> {
    let taken = flash::take::<Issued>(&state, &user, &flash_id).await?;
    let Some(taken) = taken.filter(|taken| [Issued::CREATED, Issued::ROTATED].contains(&taken.kind.as_str())) else {
        return Ok(issued_page(&user, None, None, None));
    };
    let key = state.store.get_api_key(&taken.detail.key).await?;
    let previous = match &taken.detail.previous {
        Some(id) => Some(KeyRow::from(state.store.get_api_key(id).await?)),
        None => None,
    };
    Ok(issued_page(&user, Some(KeyRow::from(key)), previous, taken.secret))
}

/// The one page that ever shows a full key (200), or says it was already shown (410).
fn issued_page(
    user: &PortalUser,
    key: Option<KeyRow>,
    previous: Option<KeyRow>,
    secret: Option<SecretString>,
) -> Response {
    let status = if secret.is_some() { StatusCode::OK } else { StatusCode::GONE };
    let context = context! {
        layout => user.layout("keys"),
        key,
        secret => secret.as_ref().map(|secret| secret.expose_secret()),
        previous,
    };
    page(status, "portal/key_issued.html", context)
}

/// A key of the current organization, for a user who may manage keys. Keys of
/// other organizations are "not found", exactly like keys that do not exist.
async fn managed_key(state: &AppState, user: &PortalUser, key_id: &str) -> Result<ApiKeyInfo, PortalError> {
    let org = user.org_managing_keys()?;
    let key = state.store.get_api_key(key_id).await?;
    if key.org_id != org.org.id {
        return Err(PortalError::NotFound);
    }
    Ok(key)
}

/// `GET /keys/{id}/deactivate`: the confirmation (changes nothing).
pub async fn confirm_deactivate(
    State(state): State<AppState>,
    user: PortalUser,
    Path(key_id): Path<String>,
) -> Result<Response, PortalError> {
    let key = managed_key(&state, &user, &key_id).await?;
    confirm_page(&user, key, "deactivate")
}

/// `GET /keys/{id}/rotate`: the confirmation (changes nothing).
pub async fn confirm_rotate(
    State(state): State<AppState>,
    user: PortalUser,
    Path(key_id): Path<String>,
) -> Result<Response, PortalError> {
    let key = managed_key(&state, &user, &key_id).await?;
    confirm_page(&user, key, "rotate")
}

fn confirm_page(user: &PortalUser, key: ApiKeyInfo, action: &str) -> Result<Response, PortalError> {
    match key.status_at(Timestamp::now()) {
        KeyStatus::Active => {}
        KeyStatus::Revoked => return Err(PortalError::BadRequest("This key is already deactivated.".into())),
        KeyStatus::Expired => return Err(PortalError::BadRequest("This key has expired: it no longer works.".into())),
    }
    let keep_old = KEEP_OLD_CHOICES.map(|(seconds, label)| context! { seconds, label });
    let context = context! {
        layout => user.layout("keys"), key => KeyRow::from(key), action, keep_old, default_keep_old => DEFAULT_KEEP_OLD_SECS,
    };
    Ok(page(StatusCode::OK, "portal/key_confirm.html", context))
}

/// `POST /keys/{id}/deactivate`: immediate; the next request with the key gets 401.
pub async fn deactivate(
    State(state): State<AppState>,
    user: PortalUser,
    Path(key_id): Path<String>,
    CsrfForm(_): CsrfForm<serde::de::IgnoredAny>,
) -> Result<Redirect, PortalError> {
    let key = managed_key(&state, &user, &key_id).await?;
    state.services.revoke_key(&user.actor(), &key.id).await?;
    Ok(Redirect::to("/keys?notice=deactivated"))
}

#[derive(Deserialize)]
pub struct RotateKey {
    /// Seconds the old key keeps working: one of `KEEP_OLD_CHOICES`.
    #[serde(default)]
    keep_old: String,
}

/// `POST /keys/{id}/rotate`: a replacement, shown once; the old key stops
/// now or after the chosen time (at most 7 days here; operators can give up to 30).
pub async fn rotate(
    State(state): State<AppState>,
    user: PortalUser,
    Path(key_id): Path<String>,
    CsrfForm(form): CsrfForm<RotateKey>,
) -> Result<Response, PortalError> {
    let key = managed_key(&state, &user, &key_id).await?;
    let old = match form.keep_old.trim().parse::<u64>() {
        Ok(0) => OldKey::RevokedNow,
        Ok(seconds) if KEEP_OLD_CHOICES.iter().any(|(choice, _)| *choice == seconds) => {
            OldKey::ExpiresIn(std::time::Duration::from_secs(seconds))
        }
        _ => return Err(PortalError::BadRequest("Choose how long the old key keeps working.".into())),
    };
    let rotation = state.services.rotate_key(&user.actor(), &key.id, old).await?;
    let issued = Issued { key: rotation.replacement.info.id.clone(), previous: Some(rotation.previous.id.clone()) };
    show_once(&state, &user, issued, &rotation.replacement.key).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids_keep_the_prefix_and_the_last_four_characters() {
        assert_eq!(short_id("0123456789abcdef0123456789aba1b2"), "octo_live_…a1b2");
        assert_eq!(short_id("ab"), "octo_live_…ab");
    }
}

//! The API Keys page: owners and admins create, rotate and deactivate their
//! organization's keys; members see the list. A new key is shown exactly once,
//! in the response to the POST that made it (never stored, never redirected to).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Redirect, Response};
use minijinja::context;
use octogen_core::Timestamp;
use octogen_store::{ApiKeyInfo, KeyStatus};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use super::csrf::CsrfForm;
use super::render::{page, time, user_message, PortalError};
use super::session::PortalUser;
use crate::error::ApiError;
use crate::service::{IssuedKey, OldKey};
use crate::state::AppState;

#[derive(Serialize)]
struct KeyRow {
    id: String,
    name: String,
    created_at: String,
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
            id: key.id,
            name: key.name,
            created_at: time(key.created_at),
            last_used_at: key.last_used_at.map(time),
            revoked_at: key.revoked_at.map(time),
            expires_at: key.expires_at.map(time),
        }
    }
}

/// The rotate form's choices for how long the old key keeps working, in seconds (0: not at all).
const KEEP_OLD_CHOICES: [(u64, &str); 4] = [(0, "now"), (3_600, "1 hour"), (86_400, "24 hours"), (604_800, "7 days")];
/// Selected unless the person chooses otherwise: a day is enough to deploy a replacement.
const DEFAULT_KEEP_OLD_SECS: u64 = 86_400;

#[derive(Deserialize)]
pub struct Notice {
    #[serde(default)]
    notice: Option<String>,
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
    Query(query): Query<Notice>,
) -> Result<Response, PortalError> {
    keys_page(&state, &user, notice_text(query.notice.as_deref()), None, StatusCode::OK).await
}

async fn keys_page(
    state: &AppState,
    user: &PortalUser,
    notice: Option<&str>,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, PortalError> {
    let keys: Vec<KeyRow> = match &user.current {
        Some(membership) => {
            state.store.list_api_keys(&membership.org.id).await?.into_iter().map(KeyRow::from).collect()
        }
        None => Vec::new(),
    };
    let active = keys.iter().filter(|key| key.active).count();
    let context = context! { layout => user.layout("keys"), keys, active, notice, error };
    Ok(page(status, "portal/keys.html", context))
}

#[derive(Deserialize)]
pub struct CreateKey {
    #[serde(default)]
    name: String,
}

/// `POST /keys`: the new key, shown once.
pub async fn create(
    State(state): State<AppState>,
    user: PortalUser,
    CsrfForm(form): CsrfForm<CreateKey>,
) -> Result<Response, PortalError> {
    let org = user.org_managing_keys()?;
    match state.services.create_key(&user.actor(), &org.org.id, &form.name).await {
        Ok(issued) => Ok(issued_page(&user, &issued, None)),
        Err(error @ (ApiError::Validation(_) | ApiError::Message(..))) => {
            keys_page(&state, &user, None, Some(user_message(&error)), StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(other) => Err(other.into()),
    }
}

/// The one page that ever shows a full key. `Cache-Control: no-store` is set
/// on every portal page; this page relies on it.
fn issued_page(user: &PortalUser, issued: &IssuedKey, previous: Option<KeyRow>) -> Response {
    let context = context! {
        layout => user.layout("keys"),
        key => KeyRow::from(issued.info.clone()),
        secret => issued.key.expose_secret(),
        previous,
    };
    page(StatusCode::CREATED, "portal/key_issued.html", context)
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
    Ok(issued_page(&user, &rotation.replacement, Some(rotation.previous.into())))
}

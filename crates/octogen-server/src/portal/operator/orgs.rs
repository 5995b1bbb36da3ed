//! Operator pages for organizations: create, suspend, grants and members.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Redirect, Response};
use minijinja::context;
use octogen_store::{OrgType, Role};
use serde::{Deserialize, Serialize};

use super::confirm::{confirm_page, Confirmation};
use super::OperatorUser;
use crate::error::ApiError;
use crate::portal::csrf::CsrfForm;
use crate::portal::render::{page, time, user_message, Feedback, PortalError};
use crate::state::AppState;

#[derive(Serialize)]
struct OrgRow {
    id: String,
    name: String,
    org_type: OrgType,
    suspended: bool,
    created_at: String,
    rate_limit_per_minute: Option<u32>,
    api_version: String,
}

impl From<octogen_store::Org> for OrgRow {
    fn from(org: octogen_store::Org) -> Self {
        OrgRow {
            api_version: org.api_version.unwrap_or_else(|| crate::versions::ApiVersion::ORIGINAL.name().to_string()),
            id: org.id,
            name: org.name,
            org_type: org.org_type,
            suspended: org.suspended,
            created_at: time(org.created_at),
            rate_limit_per_minute: org.rate_limit_per_minute,
        }
    }
}

#[derive(Deserialize)]
pub struct Notice {
    #[serde(default)]
    notice: Option<String>,
}

fn notice_text(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "created" => "Organization created.",
        "suspended" => "Organization suspended: its API keys get 403 from the next request on.",
        "unsuspended" => "Organization reactivated: its API keys work again.",
        "granted" => "Catalog granted: the organization's keys see it from the next request on.",
        "revoked" => "Grant removed: the organization's keys no longer see the catalog.",
        "member" => "Membership saved.",
        "rate-limit" => "Rate limit saved: it applies from the organization's next request.",
        "api-version" => "API version pinned: it applies from the organization's next request.",
        _ => return None,
    })
}

/// `GET /operator/orgs`.
pub async fn list(
    State(state): State<AppState>,
    OperatorUser(user): OperatorUser,
    Query(query): Query<Notice>,
) -> Result<Response, PortalError> {
    orgs_page(&state, &user, Feedback::notice(notice_text(query.notice.as_deref()))).await
}

async fn orgs_page(
    state: &AppState,
    user: &crate::portal::PortalUser,
    feedback: Feedback,
) -> Result<Response, PortalError> {
    let orgs: Vec<OrgRow> = state.store.list_orgs().await?.into_iter().map(OrgRow::from).collect();
    let status = feedback.status();
    let context = context! {
        layout => user.layout("operator-orgs"), orgs,
        notice => feedback.notice, error => feedback.error, typed => feedback.typed,
    };
    Ok(page(status, "portal/operator/orgs.html", context))
}

#[derive(Deserialize, Serialize)]
pub struct CreateOrg {
    #[serde(default)]
    name: String,
    #[serde(default)]
    org_type: String,
}

/// `POST /operator/orgs`.
pub async fn create(
    State(state): State<AppState>,
    OperatorUser(user): OperatorUser,
    CsrfForm(form): CsrfForm<CreateOrg>,
) -> Result<Response, PortalError> {
    let fail = |message: String| orgs_page(&state, &user, Feedback::refused(message, &form));
    let org_type: OrgType = match form.org_type.parse() {
        Ok(org_type) => org_type,
        Err(_) => return fail("Choose the organization's type: catalog partner or merchant.".into()).await,
    };
    match state.services.create_org(&user.actor(), &form.name, org_type).await {
        Ok(org) => Ok(redirect(&format!("/operator/orgs/{}?notice=created", org.id))),
        Err(error) => form_error(error, fail).await,
    }
}

#[derive(Serialize)]
struct MemberRow {
    user_id: String,
    email: String,
    role: Role,
}

/// `GET /operator/orgs/{id}`.
pub async fn show(
    State(state): State<AppState>,
    OperatorUser(user): OperatorUser,
    Path(org_id): Path<String>,
    Query(query): Query<Notice>,
) -> Result<Response, PortalError> {
    org_page(&state, &user, &org_id, Feedback::notice(notice_text(query.notice.as_deref()))).await
}

async fn org_page(
    state: &AppState,
    user: &crate::portal::PortalUser,
    org_id: &str,
    feedback: Feedback,
) -> Result<Response, PortalError> {
    let org = state.store.get_org(org_id).await?;
    let granted = state.store.granted_catalogs(org_id).await?;
    let grantable: Vec<_> = state
        .store
        .list_catalogs()
        .await?
        .into_iter()
        .filter(|catalog| !granted.iter().any(|g| g.key == catalog.key))
        .map(|catalog| context! { key => catalog.key, name => catalog.display_name })
        .collect();
    let granted: Vec<_> = granted
        .into_iter()
        .map(|c| context! { key => c.key, name => c.display_name, active => c.is_active, products => c.product_count })
        .collect();
    let members: Vec<MemberRow> = state
        .store
        .org_members(org_id)
        .await?
        .into_iter()
        .map(|m| MemberRow { user_id: m.user.id, email: m.user.email, role: m.role })
        .collect();
    let feedback_status = feedback.status();
    let keys = state.store.list_api_keys(org_id).await?;
    let active_keys = keys.iter().filter(|key| key.revoked_at.is_none()).count();
    let context = context! {
        layout => user.layout("operator-orgs"),
        org => OrgRow::from(org),
        granted, grantable, members, active_keys, total_keys => keys.len(),
        roles => Role::ALL.map(Role::as_str),
        default_rate_limit => state.config.default_rate_limit_per_minute,
        api_versions => crate::versions::ApiVersion::known_names(),
        notice => feedback.notice, error => feedback.error, typed => feedback.typed,
    };
    Ok(page(feedback_status, "portal/operator/org.html", context))
}

/// `GET /operator/orgs/{id}/suspend`: the confirmation (changes nothing).
pub async fn confirm_suspend(
    State(state): State<AppState>,
    OperatorUser(user): OperatorUser,
    Path(org_id): Path<String>,
) -> Result<Response, PortalError> {
    let org = state.store.get_org(&org_id).await?;
    if org.suspended {
        return Err(PortalError::BadRequest(format!("{} is already suspended.", org.name)));
    }
    let active_keys = state.store.list_api_keys(&org_id).await?.iter().filter(|key| key.revoked_at.is_none()).count();
    let confirmation = Confirmation {
        title: format!("Suspend {}?", org.name),
        consequence: format!(
            "From the next request on, all {active_keys} active API keys of {} get 403 Forbidden, and so do its \
             MCP agents. Its people can still sign in to the portal.",
            org.name
        ),
        undo: Some("Reactivate the organization on its page to let its keys work again; nothing else changes.".into()),
        action: format!("/operator/orgs/{org_id}/suspend"),
        button: "Suspend organization".into(),
        cancel: format!("/operator/orgs/{org_id}"),
    };
    Ok(confirm_page(&user, "operator-orgs", confirmation))
}

/// `POST /operator/orgs/{id}/suspend`.
pub async fn suspend(
    state: State<AppState>,
    user: OperatorUser,
    path: Path<String>,
    form: CsrfForm<serde::de::IgnoredAny>,
) -> Result<Response, PortalError> {
    set_suspended(state, user, path, form, true).await
}

/// `POST /operator/orgs/{id}/unsuspend`.
pub async fn unsuspend(
    state: State<AppState>,
    user: OperatorUser,
    path: Path<String>,
    form: CsrfForm<serde::de::IgnoredAny>,
) -> Result<Response, PortalError> {
    set_suspended(state, user, path, form, false).await
}

async fn set_suspended(
    State(state): State<AppState>,
    OperatorUser(user): OperatorUser,
    Path(org_id): Path<String>,
    _: CsrfForm<serde::de::IgnoredAny>,
    suspended: bool,
) -> Result<Response, PortalError> {
    state.services.set_org_suspended(&user.actor(), &org_id, suspended).await?;
    let notice = if suspended { "suspended" } else { "unsuspended" };
    Ok(redirect(&format!("/operator/orgs/{org_id}?notice={notice}")))
}

#[derive(Deserialize, Serialize)]
pub struct GrantForm {
    #[serde(default)]
    catalog: String,
}

/// `POST /operator/orgs/{id}/grants`: effective on the organization's next API request.
pub async fn grant(
    State(state): State<AppState>,
    OperatorUser(user): OperatorUser,
    Path(org_id): Path<String>,
    CsrfForm(form): CsrfForm<GrantForm>,
) -> Result<Response, PortalError> {
    match state.services.grant(&user.actor(), &org_id, &form.catalog).await {
        Ok(_) => Ok(redirect(&format!("/operator/orgs/{org_id}?notice=granted"))),
        Err(ApiError::Message(StatusCode::NOT_FOUND, message)) if state.store.get_org(&org_id).await.is_ok() => {
            org_page(&state, &user, &org_id, Feedback::refused(crate::portal::render::sentence(&message), &form)).await
        }
        Err(error) => Err(error.into()),
    }
}

/// `GET /operator/orgs/{id}/grants/{catalog}/revoke`: the confirmation (changes nothing).
pub async fn confirm_revoke_grant(
    State(state): State<AppState>,
    OperatorUser(user): OperatorUser,
    Path((org_id, catalog_key)): Path<(String, String)>,
) -> Result<Response, PortalError> {
    let org = state.store.get_org(&org_id).await?;
    let Some(catalog) = state.store.granted_catalogs(&org_id).await?.into_iter().find(|c| c.key == catalog_key) else {
        return Err(PortalError::NotFound);
    };
    let confirmation = Confirmation {
        title: format!("Remove {} from {}?", catalog.display_name, org.name),
        consequence: format!(
            "From the next request on, {}'s API keys and agents no longer see the catalog {} ({} products): \
             it leaves their catalog list and their search results.",
            org.name, catalog.key, catalog.product_count
        ),
        undo: Some("Granting the catalog again restores access at once; no new key is needed.".into()),
        action: format!("/operator/orgs/{org_id}/grants/{catalog_key}/revoke"),
        button: "Remove grant".into(),
        cancel: format!("/operator/orgs/{org_id}"),
    };
    Ok(confirm_page(&user, "operator-orgs", confirmation))
}

/// `POST /operator/orgs/{id}/grants/{catalog}/revoke`.
pub async fn revoke_grant(
    State(state): State<AppState>,
    OperatorUser(user): OperatorUser,
    Path((org_id, catalog)): Path<(String, String)>,
    _: CsrfForm<serde::de::IgnoredAny>,
) -> Result<Response, PortalError> {
    state.services.ungrant(&user.actor(), &org_id, &catalog).await?;
    Ok(redirect(&format!("/operator/orgs/{org_id}?notice=revoked")))
}

#[derive(Deserialize, Serialize)]
pub struct RateLimitForm {
    #[serde(default)]
    per_minute: String,
}

/// `POST /operator/orgs/{id}/rate-limit`: an empty value returns to the server default.
pub async fn set_rate_limit(
    State(state): State<AppState>,
    OperatorUser(user): OperatorUser,
    Path(org_id): Path<String>,
    CsrfForm(form): CsrfForm<RateLimitForm>,
) -> Result<Response, PortalError> {
    let text = form.per_minute.trim();
    let per_minute = match text {
        "" => None,
        text => match text.parse::<u32>() {
            Ok(limit) => Some(limit),
            Err(_) => {
                let message = format!("“{text}” is not a number of requests per minute. Enter a whole number, or leave the field empty for the server default.");
                return org_page(&state, &user, &org_id, Feedback::refused(message, &form)).await;
            }
        },
    };
    let saved = state.services.set_org_rate_limit(&user.actor(), &org_id, per_minute).await;
    after_save(&state, &user, &org_id, saved, "rate-limit", &form).await
}

#[derive(Deserialize, Serialize)]
pub struct ApiVersionForm {
    #[serde(default)]
    version: String,
}

/// `POST /operator/orgs/{id}/api-version`.
pub async fn set_api_version(
    State(state): State<AppState>,
    OperatorUser(user): OperatorUser,
    Path(org_id): Path<String>,
    CsrfForm(form): CsrfForm<ApiVersionForm>,
) -> Result<Response, PortalError> {
    let saved = state.services.set_org_api_version(&user.actor(), &org_id, &form.version).await;
    after_save(&state, &user, &org_id, saved, "api-version", &form).await
}

/// Back to the organization's page: with a notice when the change was saved,
/// with the refusal shown on the form when it was not.
async fn after_save(
    state: &AppState,
    user: &crate::portal::PortalUser,
    org_id: &str,
    saved: Result<octogen_store::Org, ApiError>,
    notice: &str,
    typed: &impl Serialize,
) -> Result<Response, PortalError> {
    match saved {
        Ok(_) => Ok(redirect(&format!("/operator/orgs/{org_id}?notice={notice}"))),
        Err(error) => {
            form_error(error, |message| org_page(state, user, org_id, Feedback::refused(message, typed))).await
        }
    }
}

#[derive(Deserialize, Serialize)]
pub struct AddMember {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

/// `POST /operator/orgs/{id}/members`: adds an existing user (by email) or changes their role.
pub async fn add_member(
    State(state): State<AppState>,
    OperatorUser(user): OperatorUser,
    Path(org_id): Path<String>,
    CsrfForm(form): CsrfForm<AddMember>,
) -> Result<Response, PortalError> {
    state.store.get_org(&org_id).await?;
    let fail = |message: String| org_page(&state, &user, &org_id, Feedback::refused(message, &form));
    let Ok(role) = form.role.parse::<Role>() else { return fail("Choose a role.".into()).await };
    let email = form.email.trim().to_lowercase();
    let Some(member) = state.store.find_user_credentials(&email).await?.map(|c| c.user) else {
        return fail(format!("There is no user with email {email}. Create the user first (Users page).")).await;
    };
    state.services.set_membership(&user.actor(), &member.id, &org_id, role).await?;
    Ok(redirect(&format!("/operator/orgs/{org_id}?notice=member")))
}

/// 303 See Other: the browser follows with a GET (post/redirect/get).
pub fn redirect(to: &str) -> Response {
    axum::response::IntoResponse::into_response(Redirect::to(to))
}

/// Renders a service refusal on the form's page; anything else is an error page.
pub async fn form_error<F>(error: ApiError, render: impl FnOnce(String) -> F) -> Result<Response, PortalError>
where
    F: std::future::Future<Output = Result<Response, PortalError>>,
{
    match error {
        ApiError::Validation(_) | ApiError::Message(..) | ApiError::Code(_) => render(user_message(&error)).await,
        other => Err(other.into()),
    }
}

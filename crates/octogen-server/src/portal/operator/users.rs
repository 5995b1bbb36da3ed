//! Operator pages for users: create (operator and/or member), memberships and roles.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::context;
use octogen_store::Role;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::confirm::{confirm_page, Confirmation};
use super::orgs::{form_error, redirect};
use super::OperatorUser;
use crate::portal::csrf::CsrfForm;
use crate::portal::render::{page, time, Feedback, PortalError};
use crate::portal::PortalUser;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct Notice {
    #[serde(default)]
    notice: Option<String>,
}

fn notice_text(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "created" => "User created. Give them their email and password over a channel you trust.",
        "member" => "Membership saved.",
        "removed" => "Membership removed.",
        _ => return None,
    })
}

#[derive(Serialize)]
struct UserRow {
    id: String,
    email: String,
    is_operator: bool,
    created_at: String,
    orgs: Vec<String>,
}

/// `GET /operator/users`.
pub async fn list(
    State(state): State<AppState>,
    OperatorUser(user): OperatorUser,
    Query(query): Query<Notice>,
) -> Result<Response, PortalError> {
    users_page(&state, &user, Feedback::notice(notice_text(query.notice.as_deref()))).await
}

async fn users_page(state: &AppState, user: &PortalUser, feedback: Feedback) -> Result<Response, PortalError> {
    let mut users = Vec::new();
    for listed in state.store.list_users().await? {
        let orgs = state.store.user_memberships(&listed.id).await?;
        users.push(UserRow {
            orgs: orgs.into_iter().map(|m| format!("{} ({})", m.org.name, m.role)).collect(),
            id: listed.id,
            email: listed.email,
            is_operator: listed.is_operator,
            created_at: time(listed.created_at),
        });
    }
    let orgs: Vec<_> =
        state.store.list_orgs().await?.into_iter().map(|org| context! { id => org.id, name => org.name }).collect();
    let status = feedback.status();
    let context = context! {
        layout => user.layout("operator-users"), users, orgs, roles => Role::ALL.map(Role::as_str),
        min_password => crate::service::password::MIN_PASSWORD_CHARS,
        max_password => crate::service::password::MAX_PASSWORD_CHARS,
        notice => feedback.notice, error => feedback.error, typed => feedback.typed,
    };
    Ok(page(status, "portal/operator/users.html", context))
}

#[derive(Deserialize)]
pub struct CreateUser {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: Option<SecretString>,
    /// A checkbox: present (any value) when ticked.
    #[serde(default)]
    operator: Option<String>,
    #[serde(default)]
    org: String,
    #[serde(default)]
    role: String,
}

/// `POST /operator/users`.
pub async fn create(
    State(state): State<AppState>,
    OperatorUser(user): OperatorUser,
    CsrfForm(form): CsrfForm<CreateUser>,
) -> Result<Response, PortalError> {
    let is_operator = form.operator.is_some();
    // Shown again after a refusal, all but the password.
    let typed = context! { email => &form.email, org => &form.org, role => &form.role, operator => is_operator };
    let fail = |message: String| users_page(&state, &user, Feedback::refused(message, &typed));
    let membership = match (form.org.trim(), form.role.parse::<Role>()) {
        ("", _) if is_operator => None,
        ("", _) => return fail("Choose an organization, or make the user an operator.".into()).await,
        (org, Ok(role)) => Some((org.to_string(), role)),
        (_, Err(_)) => return fail("Choose a role in the organization.".into()).await,
    };
    if let Some((org, _)) = &membership {
        state.store.get_org(org).await?;
    }
    let password = form.password.unwrap_or_else(|| SecretString::from(String::new()));
    let actor = user.actor();
    let created = match state.services.create_user(&actor, &form.email, &password, is_operator).await {
        Ok(created) => created,
        Err(error) => return form_error(error, fail).await,
    };
    if let Some((org, role)) = membership {
        state.services.set_membership(&actor, &created.id, &org, role).await?;
    }
    Ok(redirect(&format!("/operator/users/{}?notice=created", created.id)))
}

/// `GET /operator/users/{id}`.
pub async fn show(
    State(state): State<AppState>,
    OperatorUser(user): OperatorUser,
    Path(user_id): Path<String>,
    Query(query): Query<Notice>,
) -> Result<Response, PortalError> {
    let shown = state.store.get_user(&user_id).await?;
    let memberships: Vec<_> = state
        .store
        .user_memberships(&user_id)
        .await?
        .into_iter()
        .map(|m| context! { org_id => m.org.id, org_name => m.org.name, role => m.role })
        .collect();
    let orgs: Vec<_> =
        state.store.list_orgs().await?.into_iter().map(|org| context! { id => org.id, name => org.name }).collect();
    let context = context! {
        layout => user.layout("operator-users"),
        shown => context! { id => shown.id, email => shown.email, is_operator => shown.is_operator, created_at => time(shown.created_at) },
        memberships, orgs, roles => Role::ALL.map(Role::as_str),
        notice => notice_text(query.notice.as_deref()),
    };
    Ok(page(StatusCode::OK, "portal/operator/user.html", context))
}

#[derive(Deserialize)]
pub struct MembershipForm {
    #[serde(default)]
    org: String,
    #[serde(default)]
    role: String,
}

/// `POST /operator/users/{id}/memberships`: adds the user to an organization or changes their role.
pub async fn set_membership(
    State(state): State<AppState>,
    OperatorUser(user): OperatorUser,
    Path(user_id): Path<String>,
    CsrfForm(form): CsrfForm<MembershipForm>,
) -> Result<Response, PortalError> {
    let role = form.role.parse::<Role>().map_err(PortalError::BadRequest)?;
    state.services.set_membership(&user.actor(), &user_id, &form.org, role).await?;
    Ok(redirect(&format!("/operator/users/{user_id}?notice=member")))
}

/// `GET /operator/users/{id}/memberships/{org}/remove`: the confirmation (changes nothing).
pub async fn confirm_remove_membership(
    State(state): State<AppState>,
    OperatorUser(user): OperatorUser,
    Path((user_id, org_id)): Path<(String, String)>,
) -> Result<Response, PortalError> {
    let shown = state.store.get_user(&user_id).await?;
    let Some(membership) = state.store.user_memberships(&user_id).await?.into_iter().find(|m| m.org.id == org_id)
    else {
        return Err(PortalError::NotFound);
    };
    let confirmation = Confirmation {
        title: format!("Remove {} from {}?", shown.email, membership.org.name),
        consequence: format!(
            "{} ({}) loses access to {} at once: its keys, catalogs and audit log leave their portal, and agents \
             they approved for it stop working. API keys they created keep working.",
            shown.email, membership.role, membership.org.name
        ),
        undo: Some("Adding them again restores the portal access, not the agents' approvals.".into()),
        action: format!("/operator/users/{user_id}/memberships/{org_id}/remove"),
        button: "Remove from organization".into(),
        cancel: format!("/operator/users/{user_id}"),
    };
    Ok(confirm_page(&user, "operator-users", confirmation))
}

/// `POST /operator/users/{id}/memberships/{org}/remove`.
pub async fn remove_membership(
    State(state): State<AppState>,
    OperatorUser(user): OperatorUser,
    Path((user_id, org_id)): Path<(String, String)>,
    _: CsrfForm<serde::de::IgnoredAny>,
) -> Result<Response, PortalError> {
    state.services.remove_membership(&user.actor(), &user_id, &org_id).await?;
    Ok(redirect(&format!("/operator/users/{user_id}?notice=removed")))
}

//! Operator pages for users: create (operator and/or member), memberships and
//! roles, and containing a compromised account: disable/enable, the operator
//! flag, signing out everywhere, a password reset link. Destructive changes
//! ask for confirmation first (a GET that changes nothing, then the POST).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
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
        "disabled" => "User disabled: they cannot sign in, and their sessions and connected agents have ended.",
        "enabled" => "User enabled: they can sign in again.",
        "operator-granted" => "The user is now an operator.",
        "operator-revoked" => {
            "The user is no longer an operator; the operator area is closed to them from their next page."
        }
        "signed-out" => {
            "Signed out everywhere: every session of the user, and every agent connected through one, has ended."
        }
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
        shown => context! {
            id => shown.id, email => shown.email, is_operator => shown.is_operator, created_at => time(shown.created_at),
            disabled_at => shown.disabled_at.map(time), is_self => shown.id == user.user.id,
        },
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

/// The confirmation page for an account-control action on `user_id`, whose
/// wording `confirmation` builds from the user's email.
async fn confirm_account_action(
    state: &AppState,
    user: &PortalUser,
    user_id: &str,
    confirmation: impl FnOnce(&str) -> AccountAction,
) -> Result<Response, PortalError> {
    let shown = state.store.get_user(user_id).await?;
    let action = confirmation(&shown.email);
    let confirmation = Confirmation {
        title: action.title,
        consequence: action.consequence.into(),
        undo: action.undo.map(str::to_string),
        action: action.action,
        button: action.button.into(),
        cancel: format!("/operator/users/{user_id}"),
    };
    Ok(confirm_page(user, "operator-users", confirmation))
}

/// What an account-control confirmation says.
struct AccountAction {
    title: String,
    consequence: &'static str,
    undo: Option<&'static str>,
    action: String,
    button: &'static str,
}

/// An operator cannot lock themselves out from the browser (another operator, or the CLI, can).
fn refuse_self(user: &PortalUser, user_id: &str, what: &str) -> Result<(), PortalError> {
    if user.user.id == user_id {
        return Err(PortalError::BadRequest(format!(
            "You cannot {what} your own account here. Another operator can, or `octogen admin user` on the server."
        )));
    }
    Ok(())
}

/// `GET /operator/users/{id}/disable`: the confirmation (changes nothing).
pub async fn confirm_disable(
    State(state): State<AppState>,
    OperatorUser(user): OperatorUser,
    Path(user_id): Path<String>,
) -> Result<Response, PortalError> {
    refuse_self(&user, &user_id, "disable")?;
    confirm_account_action(&state, &user, &user_id, |email| AccountAction {
        title: format!("Disable {email}?"),
        consequence: "They cannot sign in, and every session they have ends now, together with the AI agents they \
                      connected through it. Their memberships stay.",
        undo: Some("An operator can enable them again; their agents must then be connected anew."),
        action: format!("/operator/users/{user_id}/disable"),
        button: "Disable user",
    })
    .await
}

/// `POST /operator/users/{id}/disable`.
pub async fn disable(
    State(state): State<AppState>,
    OperatorUser(user): OperatorUser,
    Path(user_id): Path<String>,
    _: CsrfForm<serde::de::IgnoredAny>,
) -> Result<Response, PortalError> {
    refuse_self(&user, &user_id, "disable")?;
    state.services.set_user_disabled(&user.actor(), &user_id, true).await?;
    Ok(redirect(&format!("/operator/users/{user_id}?notice=disabled")))
}

/// `POST /operator/users/{id}/enable` (gives nothing away that the operator could not give anyway).
pub async fn enable(
    State(state): State<AppState>,
    OperatorUser(user): OperatorUser,
    Path(user_id): Path<String>,
    _: CsrfForm<serde::de::IgnoredAny>,
) -> Result<Response, PortalError> {
    state.services.set_user_disabled(&user.actor(), &user_id, false).await?;
    Ok(redirect(&format!("/operator/users/{user_id}?notice=enabled")))
}

/// `grant` or `revoke`, from the path.
fn operator_change(change: &str) -> Result<bool, PortalError> {
    match change {
        "grant" => Ok(true),
        "revoke" => Ok(false),
        _ => Err(PortalError::NotFound),
    }
}

/// `GET /operator/users/{id}/operator/{grant|revoke}`: the confirmation (changes nothing).
pub async fn confirm_operator(
    State(state): State<AppState>,
    OperatorUser(user): OperatorUser,
    Path((user_id, change)): Path<(String, String)>,
) -> Result<Response, PortalError> {
    let grant = operator_change(&change)?;
    if !grant {
        refuse_self(&user, &user_id, "remove the operator flag of")?;
    }
    confirm_account_action(&state, &user, &user_id, |email| match grant {
        true => AccountAction {
            title: format!("Make {email} an operator?"),
            consequence: "Operators administer the whole platform: every organization, catalog, grant and user.",
            undo: Some("You can remove the operator access again from this page."),
            action: format!("/operator/users/{user_id}/operator/grant"),
            button: "Make operator",
        },
        false => AccountAction {
            title: format!("Remove operator access of {email}?"),
            consequence: "The operator area closes to them from their next page. Their memberships in \
                          organizations stay.",
            undo: None,
            action: format!("/operator/users/{user_id}/operator/revoke"),
            button: "Remove operator access",
        },
    })
    .await
}

/// `POST /operator/users/{id}/operator/{grant|revoke}`.
pub async fn set_operator(
    State(state): State<AppState>,
    OperatorUser(user): OperatorUser,
    Path((user_id, change)): Path<(String, String)>,
    _: CsrfForm<serde::de::IgnoredAny>,
) -> Result<Response, PortalError> {
    let grant = operator_change(&change)?;
    if !grant {
        refuse_self(&user, &user_id, "remove the operator flag of")?;
    }
    state.services.set_user_operator(&user.actor(), &user_id, grant).await?;
    let notice = if grant { "operator-granted" } else { "operator-revoked" };
    Ok(redirect(&format!("/operator/users/{user_id}?notice={notice}")))
}

/// `GET /operator/users/{id}/sessions/revoke`: the confirmation (changes nothing).
pub async fn confirm_revoke_sessions(
    State(state): State<AppState>,
    OperatorUser(user): OperatorUser,
    Path(user_id): Path<String>,
) -> Result<Response, PortalError> {
    confirm_account_action(&state, &user, &user_id, |email| AccountAction {
        title: format!("Sign {email} out everywhere?"),
        consequence: "Every session of the user ends now, in every browser, together with the AI agents they \
                      connected through one.",
        undo: Some("They can sign in again with their password."),
        action: format!("/operator/users/{user_id}/sessions/revoke"),
        button: "Sign out everywhere",
    })
    .await
}

/// `POST /operator/users/{id}/sessions/revoke`.
pub async fn revoke_sessions(
    State(state): State<AppState>,
    OperatorUser(user): OperatorUser,
    Path(user_id): Path<String>,
    _: CsrfForm<serde::de::IgnoredAny>,
) -> Result<Response, PortalError> {
    state.services.revoke_user_sessions(&user.actor(), &user_id).await?;
    Ok(redirect(&format!("/operator/users/{user_id}?notice=signed-out")))
}

/// `POST /operator/users/{id}/password-reset`: a one-time link, shown on this
/// page only (portal pages are never cached). It replaces any earlier link;
/// the current password keeps working until the link is used.
pub async fn password_reset(
    State(state): State<AppState>,
    OperatorUser(user): OperatorUser,
    Path(user_id): Path<String>,
    headers: HeaderMap,
    _: CsrfForm<serde::de::IgnoredAny>,
) -> Result<Response, PortalError> {
    let issued = state.services.issue_password_reset(&user.actor(), &user_id).await?;
    let link = format!("{}{}", site_origin(&state, &headers), crate::portal::password_reset_path(&issued.token));
    let context = context! {
        layout => user.layout("operator-users"),
        shown => context! { id => issued.user.id, email => issued.user.email, disabled => issued.user.is_disabled() },
        link, expires_at => time(issued.expires_at),
    };
    Ok(page(StatusCode::CREATED, "portal/operator/password_reset_issued.html", context))
}

/// Where people reach this portal: `public_url`, else the host this page was asked for.
fn site_origin(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(origin) = state.config.public_origin() {
        return origin;
    }
    let host = headers.get(axum::http::header::HOST).and_then(|value| value.to_str().ok()).unwrap_or("localhost");
    format!("http://{host}")
}

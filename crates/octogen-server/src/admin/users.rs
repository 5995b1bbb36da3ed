//! Operator API for portal users: `/admin/v1/users`. Used by
//! `octogen admin user …`; every route requires the operator token.
//! Besides creating users and memberships, it contains a compromised
//! account: disable/enable, the operator flag, ending every session, and a
//! one-time password reset link.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use octogen_core::error::ValidationIssue;
use octogen_core::{loc, Timestamp};
use octogen_store::{Membership, Role, User};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::Operator;
use crate::error::{ApiError, ApiResult};
use crate::extract::JsonBody;
use crate::net::ClientAddr;
use crate::service::Actor;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(list_users).post(create_user))
        .route("/users/{user_id}", get(get_user))
        .route("/users/{user_id}/memberships/{org_id}", put(set_membership).delete(remove_membership))
        .route("/users/{user_id}/disable", post(disable_user))
        .route("/users/{user_id}/enable", post(enable_user))
        .route("/users/{user_id}/operator", put(set_operator))
        .route("/users/{user_id}/sessions/revoke", post(revoke_sessions))
        .route("/users/{user_id}/password-reset", post(password_reset))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserView {
    id: String,
    email: String,
    operator: bool,
    /// A disabled user cannot sign in; null while enabled.
    disabled_at: Option<Timestamp>,
    created_at: Timestamp,
    memberships: Vec<MembershipView>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MembershipView {
    org_id: String,
    org_name: String,
    role: Role,
}

impl UserView {
    fn new(user: User, memberships: Vec<Membership>) -> Self {
        UserView {
            id: user.id,
            email: user.email,
            operator: user.is_operator,
            disabled_at: user.disabled_at,
            created_at: user.created_at,
            memberships: memberships
                .into_iter()
                .map(|m| MembershipView { org_id: m.org.id, org_name: m.org.name, role: m.role })
                .collect(),
        }
    }
}

async fn user_view(state: &AppState, user: User) -> ApiResult<UserView> {
    let memberships = state.store.user_memberships(&user.id).await?;
    Ok(UserView::new(user, memberships))
}

/// Fields are optional here and checked below, so that a 422 for a missing
/// field never echoes the request body (which holds the password).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateUser {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    password: Option<SecretString>,
    #[serde(default)]
    operator: bool,
    /// An organization to add the user to, with `role` (default `member`).
    #[serde(default)]
    org: Option<String>,
    #[serde(default)]
    role: Option<Role>,
}

async fn create_user(
    _: Operator,
    State(state): State<AppState>,
    client: ClientAddr,
    JsonBody(body): JsonBody<CreateUser>,
) -> ApiResult<Response> {
    let email = body.email.ok_or_else(|| missing("email"))?;
    let password = body.password.ok_or_else(|| missing("password"))?;
    if body.role.is_some() && body.org.is_none() {
        return Err(ApiError::Message(StatusCode::UNPROCESSABLE_ENTITY, "role needs org".into()));
    }
    if !body.operator && body.org.is_none() {
        return Err(ApiError::Message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "a user needs an organization (org and role) or the operator flag".into(),
        ));
    }
    if let Some(org_id) = &body.org {
        state.store.get_org(org_id).await?;
    }
    let actor = Actor::operator(client.label());
    let user = state.services.create_user(&actor, &email, &password, body.operator).await?;
    if let Some(org_id) = &body.org {
        state.services.set_membership(&actor, &user.id, org_id, body.role.unwrap_or(Role::Member)).await?;
    }
    Ok((StatusCode::CREATED, Json(user_view(&state, user).await?)).into_response())
}

async fn list_users(_: Operator, State(state): State<AppState>) -> ApiResult<Json<Vec<UserView>>> {
    let mut views = Vec::new();
    for user in state.store.list_users().await? {
        views.push(user_view(&state, user).await?);
    }
    Ok(Json(views))
}

async fn get_user(
    _: Operator,
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> ApiResult<Json<UserView>> {
    let user = state.store.get_user(&user_id).await?;
    Ok(Json(user_view(&state, user).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetMembership {
    role: Role,
}

async fn set_membership(
    _: Operator,
    State(state): State<AppState>,
    client: ClientAddr,
    Path((user_id, org_id)): Path<(String, String)>,
    JsonBody(body): JsonBody<SetMembership>,
) -> ApiResult<Json<serde_json::Value>> {
    let actor = Actor::operator(client.label());
    let changed = state.services.set_membership(&actor, &user_id, &org_id, body.role).await?;
    Ok(Json(json!({"user": user_id, "org": org_id, "role": body.role, "changed": changed})))
}

async fn remove_membership(
    _: Operator,
    State(state): State<AppState>,
    client: ClientAddr,
    Path((user_id, org_id)): Path<(String, String)>,
) -> ApiResult<Json<serde_json::Value>> {
    let actor = Actor::operator(client.label());
    let changed = state.services.remove_membership(&actor, &user_id, &org_id).await?;
    Ok(Json(json!({"user": user_id, "org": org_id, "role": null, "changed": changed})))
}

async fn disable_user(
    _: Operator,
    State(state): State<AppState>,
    client: ClientAddr,
    Path(user_id): Path<String>,
) -> ApiResult<Json<UserView>> {
    let user = state.services.set_user_disabled(&Actor::operator(client.label()), &user_id, true).await?;
    Ok(Json(user_view(&state, user).await?))
}

async fn enable_user(
    _: Operator,
    State(state): State<AppState>,
    client: ClientAddr,
    Path(user_id): Path<String>,
) -> ApiResult<Json<UserView>> {
    let user = state.services.set_user_disabled(&Actor::operator(client.label()), &user_id, false).await?;
    Ok(Json(user_view(&state, user).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetOperator {
    operator: bool,
}

async fn set_operator(
    _: Operator,
    State(state): State<AppState>,
    client: ClientAddr,
    Path(user_id): Path<String>,
    JsonBody(body): JsonBody<SetOperator>,
) -> ApiResult<Json<UserView>> {
    let actor = Actor::operator(client.label());
    let user = state.services.set_user_operator(&actor, &user_id, body.operator).await?;
    Ok(Json(user_view(&state, user).await?))
}

async fn revoke_sessions(
    _: Operator,
    State(state): State<AppState>,
    client: ClientAddr,
    Path(user_id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let ended = state.services.revoke_user_sessions(&Actor::operator(client.label()), &user_id).await?;
    Ok(Json(json!({"user": user_id, "sessionsEnded": ended})))
}

/// A one-time link to set a new password, shown in this answer only. It is
/// built on `public_url` when set; otherwise `url` is null and the caller
/// puts `path` after the address it reached the server at.
async fn password_reset(
    _: Operator,
    State(state): State<AppState>,
    client: ClientAddr,
    Path(user_id): Path<String>,
) -> ApiResult<Response> {
    let issued = state.services.issue_password_reset(&Actor::operator(client.label()), &user_id).await?;
    let path = crate::portal::password_reset_path(&issued.token);
    let url = state.config.public_origin().map(|origin| format!("{origin}{path}"));
    let body = json!({
        "user": issued.user.id, "email": issued.user.email, "path": path, "url": url, "expiresAt": issued.expires_at,
    });
    Ok(super::secret_response(StatusCode::CREATED, body))
}

fn missing(field: &str) -> ApiError {
    ApiError::validation(ValidationIssue::new(loc!["body", field.to_string()], "missing", "Field required"))
}

//! Operator API for portal users: `/admin/v1/users`. Used by
//! `octogen admin user …`; every route requires the operator token.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
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
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserView {
    id: String,
    email: String,
    operator: bool,
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

fn missing(field: &str) -> ApiError {
    ApiError::validation(ValidationIssue::new(loc!["body", field.to_string()], "missing", "Field required"))
}

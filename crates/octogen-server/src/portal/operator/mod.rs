//! The operator area (`/operator/…`), for users with the operator flag: the
//! same operations as the admin API (`/admin/v1`), in the browser, through the
//! same service functions. Later settings of an organization (its rate limit,
//! its pinned API version) belong on its page, `orgs.rs`.

mod catalogs;
mod confirm;
mod orgs;
mod users;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::Redirect;
use axum::routing::{get, post};
use axum::Router;

use super::render::PortalError;
use super::session::PortalUser;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/operator", get(|| async { Redirect::to("/operator/orgs") }))
        .route("/operator/orgs", get(orgs::list).post(orgs::create))
        .route("/operator/orgs/{org_id}", get(orgs::show))
        .route("/operator/orgs/{org_id}/suspend", get(orgs::confirm_suspend).post(orgs::suspend))
        .route("/operator/orgs/{org_id}/unsuspend", post(orgs::unsuspend))
        .route("/operator/orgs/{org_id}/grants", post(orgs::grant))
        .route(
            "/operator/orgs/{org_id}/grants/{catalog}/revoke",
            get(orgs::confirm_revoke_grant).post(orgs::revoke_grant),
        )
        .route("/operator/orgs/{org_id}/members", post(orgs::add_member))
        .route("/operator/orgs/{org_id}/rate-limit", post(orgs::set_rate_limit))
        .route("/operator/orgs/{org_id}/api-version", post(orgs::set_api_version))
        .route("/operator/catalogs", get(catalogs::list).post(catalogs::create))
        .route("/operator/catalogs/{key}", get(catalogs::show))
        .route("/operator/catalogs/{key}/activate", post(catalogs::activate))
        .route("/operator/catalogs/{key}/deactivate", get(catalogs::confirm_deactivate).post(catalogs::deactivate))
        .route("/operator/catalogs/{key}/source", post(catalogs::set_source))
        .route("/operator/catalogs/{key}/source/clear", post(catalogs::clear_source))
        .route("/operator/catalogs/{key}/imports", post(catalogs::import))
        .route("/operator/runs/{run_id}", get(catalogs::run))
        .route("/operator/users", get(users::list).post(users::create))
        .route("/operator/users/{user_id}", get(users::show))
        .route("/operator/users/{user_id}/memberships", post(users::set_membership))
        .route(
            "/operator/users/{user_id}/memberships/{org_id}/remove",
            get(users::confirm_remove_membership).post(users::remove_membership),
        )
        .route("/operator/users/{user_id}/disable", get(users::confirm_disable).post(users::disable))
        .route("/operator/users/{user_id}/enable", post(users::enable))
        .route("/operator/users/{user_id}/operator/{change}", get(users::confirm_operator).post(users::set_operator))
        .route(
            "/operator/users/{user_id}/sessions/revoke",
            get(users::confirm_revoke_sessions).post(users::revoke_sessions),
        )
        .route("/operator/users/{user_id}/password-reset", post(users::password_reset))
}

/// A signed-in operator. Handlers that take it cannot run for anyone else.
pub struct OperatorUser(pub PortalUser);

impl FromRequestParts<AppState> for OperatorUser {
    type Rejection = PortalError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PortalError> {
        let mut user = PortalUser::from_request_parts(parts, state).await?;
        user.require_operator()?;
        user.acting_as_operator = true;
        Ok(OperatorUser(user))
    }
}

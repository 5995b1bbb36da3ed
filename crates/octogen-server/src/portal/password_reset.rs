//! `/reset-password`: where a one-time link from an operator lets a person
//! set a new password. The link's token is checked (never spent) when the page
//! is shown, and spent by the form that sets the password; the form is bound
//! to the pre-session cookie like the sign-in form, since there is no session.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use minijinja::context;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::csrf::{self, SignInForm};
use super::render::{page, user_message, PortalError};
use crate::error::ApiError;
use crate::net::ClientAddr;
use crate::state::AppState;

/// The path of a reset link (the caller puts the site's origin in front).
pub fn password_reset_path(token: &SecretString) -> String {
    format!("/reset-password?token={}", token.expose_secret())
}

#[derive(Deserialize)]
pub struct LinkQuery {
    #[serde(default)]
    token: String,
}

/// `GET /reset-password?token=…`: the form, or why the link cannot be used.
pub async fn form_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LinkQuery>,
) -> Result<Response, PortalError> {
    match state.services.password_reset_user(&query.token).await? {
        Some(user) => Ok(reset_form(&state, &headers, &query.token, &user.email, None, StatusCode::OK)),
        None => Ok(link_refused_page()),
    }
}

#[derive(Deserialize)]
pub struct ResetFields {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: Option<SecretString>,
    #[serde(default)]
    confirm: Option<SecretString>,
}

/// `POST /reset-password`: sets the password, spends the link and ends the
/// user's sessions; then they sign in with the new password.
pub async fn submit(
    State(state): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    SignInForm(form): SignInForm<ResetFields>,
) -> Result<Response, PortalError> {
    let Some(user) = state.services.password_reset_user(&form.token).await? else {
        return Ok(link_refused_page());
    };
    let empty = || SecretString::from(String::new());
    let (password, confirm) = (form.password.unwrap_or_else(empty), form.confirm.unwrap_or_else(empty));
    if password.expose_secret() != confirm.expose_secret() {
        let message = "The two passwords differ. Type the same new password twice.";
        return Ok(reset_form(
            &state,
            &headers,
            &form.token,
            &user.email,
            Some(message),
            StatusCode::UNPROCESSABLE_ENTITY,
        ));
    }
    match state.services.complete_password_reset(&form.token, &password, client.label()).await {
        Ok(user) => {
            Ok(page(StatusCode::OK, "portal/password_reset.html", context! { done => true, email => user.email }))
        }
        Err(error @ ApiError::Validation(_)) => {
            let message = user_message(&error);
            Ok(reset_form(&state, &headers, &form.token, &user.email, Some(&message), StatusCode::UNPROCESSABLE_ENTITY))
        }
        Err(ApiError::Message(StatusCode::GONE, _)) => Ok(link_refused_page()),
        Err(other) => Err(other.into()),
    }
}

fn reset_form(
    state: &AppState,
    headers: &HeaderMap,
    token: &str,
    email: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let presession = csrf::Presession::of(state, headers);
    let context = context! {
        csrf => presession.csrf(state), token, email, error,
        min_password => crate::service::password::MIN_PASSWORD_CHARS,
        max_password => crate::service::password::MAX_PASSWORD_CHARS,
    };
    presession.keep(state, page(status, "portal/password_reset.html", context))
}

/// One page for every link that cannot be used (unknown, used, replaced, expired): 410 Gone.
fn link_refused_page() -> Response {
    page(StatusCode::GONE, "portal/password_reset.html", context! { refused => true })
}

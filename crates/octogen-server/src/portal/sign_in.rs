//! Signing in and out, and switching organizations.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::csrf::{self, CsrfForm, SignInForm};
use super::render::{page, PortalError};
use super::session::{read_cookie, set_cookie, with_cookie, PortalUser, PRESESSION_COOKIE, SESSION_COOKIE};
use crate::net::ClientAddr;
use crate::service::SignInError;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: Option<String>,
}

/// `GET /login`. Signed-in users go straight on; others get the form, bound
/// to a pre-session cookie (created here when the browser has none).
pub async fn form_page(
    State(state): State<AppState>,
    user: Option<PortalUser>,
    headers: HeaderMap,
    Query(query): Query<NextQuery>,
) -> Response {
    let next = safe_next(query.next.as_deref());
    if user.is_some() {
        return Redirect::to(&next).into_response();
    }
    login_form(&state, &headers, &next, "", None, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct SignInFields {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: Option<SecretString>,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /login`: one generic answer for every failed sign-in; a new session
/// (and cookie token) on success, and any session the browser had is ended.
pub async fn submit(
    State(state): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    SignInForm(form): SignInForm<SignInFields>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let password = form.password.unwrap_or_else(|| SecretString::from(String::new()));
    match state.services.sign_in(&form.email, &password, client.0).await {
        Ok(signed_in) => {
            if let Some(old) = read_cookie(&headers, &state.config, SESSION_COOKIE) {
                if let Ok(Some((session, _))) = state.services.session(&old).await {
                    let _ = state.store.delete_session(&session.id).await;
                }
            }
            let response = Redirect::to(&next).into_response();
            let response =
                with_cookie(response, set_cookie(&state.config, SESSION_COOKIE, Some(signed_in.token.expose_secret())));
            with_cookie(response, set_cookie(&state.config, PRESESSION_COOKIE, None))
        }
        Err(SignInError::Invalid) => {
            let message = "Incorrect email or password.";
            login_form(&state, &headers, &next, &form.email, Some(message), StatusCode::UNAUTHORIZED)
        }
        Err(SignInError::Throttled { retry_after_secs }) => {
            let message = format!("Too many failed sign-ins. Try again in {}.", wait_text(retry_after_secs));
            let mut response =
                login_form(&state, &headers, &next, &form.email, Some(&message), StatusCode::TOO_MANY_REQUESTS);
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            response
        }
        Err(SignInError::Internal(error)) => PortalError::Internal(error).into_response(),
    }
}

fn login_form(
    state: &AppState,
    headers: &HeaderMap,
    next: &str,
    email: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let presession = csrf::Presession::of(state, headers);
    let context = context! {
        csrf => presession.csrf(state),
        next => next,
        email => email,
        error => error,
    };
    let response = presession.keep(state, page(status, "portal/login.html", context));
    // A stale session cookie is dropped so the browser does not keep sending it.
    match read_cookie(headers, &state.config, SESSION_COOKIE) {
        Some(_) => with_cookie(response, set_cookie(&state.config, SESSION_COOKIE, None)),
        None => response,
    }
}

/// `POST /logout`: the session ends on the server, then the cookie goes.
pub async fn sign_out(
    State(state): State<AppState>,
    user: PortalUser,
    CsrfForm(_): CsrfForm<serde::de::IgnoredAny>,
) -> Result<Response, PortalError> {
    state.services.sign_out(&user.actor(), &user.session, &user.user).await?;
    let response = Redirect::to("/login").into_response();
    Ok(with_cookie(response, set_cookie(&state.config, SESSION_COOKIE, None)))
}

#[derive(Deserialize)]
pub struct SwitchOrg {
    org: String,
}

/// `POST /session/org`: look at another of the user's organizations.
pub async fn switch_org(
    State(state): State<AppState>,
    user: PortalUser,
    CsrfForm(form): CsrfForm<SwitchOrg>,
) -> Result<Redirect, PortalError> {
    if !user.memberships.iter().any(|m| m.org.id == form.org) {
        return Err(PortalError::NotFound);
    }
    state.store.set_session_org(&user.session.id, Some(&form.org)).await?;
    Ok(Redirect::to("/keys"))
}

/// The longest `next` kept: an OAuth consent URL carries its whole authorization
/// request, sealed (see `oauth::pending`).
const NEXT_MAX_BYTES: usize = crate::oauth::SEALED_REQUEST_MAX_BYTES + 64;

/// `1 second`, `42 seconds`, `3 minutes` (rounded up).
fn wait_text(seconds: u64) -> String {
    match seconds {
        1 => "1 second".into(),
        0..120 => format!("{seconds} seconds"),
        _ => format!("{} minutes", seconds.div_ceil(60)),
    }
}

/// Only a local path may follow sign-in (no `//host` or `/\host`: open redirects).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && path.len() <= NEXT_MAX_BYTES
                && !path.chars().any(char::is_control)
                && !path.starts_with("/login") =>
        {
            path.to_string()
        }
        _ => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_follow_sign_in() {
        assert_eq!(safe_next(Some("/keys?x=1")), "/keys?x=1");
        for bad in ["https://evil.test", "//evil.test", "/\\evil.test", "keys", "/login", "/a\nb"] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/");
    }
}

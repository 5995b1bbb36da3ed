//! Templates and error pages. Templates are compiled into the binary and
//! rendered by minijinja with HTML auto-escaping, so every value from a user
//! or the database is escaped unless a template says otherwise (none do).

use std::sync::LazyLock;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use minijinja::{Environment, Value};
use octogen_core::Timestamp;

use crate::error::ApiError;

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../templates/", $name)))),*]
    };
}

const TEMPLATES: &[(&str, &str)] = templates![
    "portal/base.html",
    "portal/macros.html",
    "portal/login.html",
    "portal/error.html",
    "portal/keys.html",
    "portal/key_issued.html",
    "portal/key_confirm.html",
    "portal/catalogs.html",
    "portal/audit.html",
    "portal/operator/orgs.html",
    "portal/operator/org.html",
    "portal/operator/catalogs.html",
    "portal/operator/catalog.html",
    "portal/operator/run.html",
    "portal/operator/users.html",
    "portal/operator/user.html",
    "portal/operator/user_confirm.html",
    "portal/operator/password_reset_issued.html",
    "portal/password_reset.html",
];

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in TEMPLATES {
        env.add_template(name, source).unwrap_or_else(|error| panic!("template {name}: {error:#}"));
    }
    env.add_filter("datetime", datetime);
    env
});

/// Renders a template into an HTML response with `status`.
pub fn page(status: StatusCode, template: &str, context: Value) -> Response {
    match ENV.get_template(template).and_then(|template| template.render(context)) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => PortalError::Internal(anyhow::anyhow!("rendering {template}: {error:#}")).into_response(),
    }
}

/// `2026-05-28T09:30:00.000Z` → `2026-05-28 09:30 UTC` (plain text: works without JavaScript and in every locale).
fn datetime(value: Value) -> String {
    let text = value.as_str().map(str::to_string).unwrap_or_else(|| value.to_string());
    match (text.get(..10), text.get(11..16)) {
        (Some(date), Some(time)) if text.len() >= 16 => format!("{date} {time} UTC"),
        _ => text,
    }
}

/// Why a portal request did not produce its page. Each becomes an HTML page
/// (or, for a missing session, a redirect to sign-in).
#[derive(Debug)]
pub enum PortalError {
    /// No live session: sign in, then come back to `next`.
    SignInRequired {
        next: String,
    },
    /// Signed in but not allowed (role, operator area, CSRF).
    Forbidden(String),
    NotFound,
    /// A request the portal's own forms never send.
    BadRequest(String),
    Internal(anyhow::Error),
}

impl PortalError {
    pub fn forbidden(message: impl Into<String>) -> Self {
        PortalError::Forbidden(message.into())
    }
}

impl From<ApiError> for PortalError {
    fn from(error: ApiError) -> Self {
        match error {
            ApiError::Message(StatusCode::NOT_FOUND, _) => PortalError::NotFound,
            ApiError::Internal(error) => PortalError::Internal(error),
            other => PortalError::BadRequest(user_message(&other)),
        }
    }
}

impl From<anyhow::Error> for PortalError {
    fn from(error: anyhow::Error) -> Self {
        PortalError::Internal(error)
    }
}

impl From<octogen_store::StoreError> for PortalError {
    fn from(error: octogen_store::StoreError) -> Self {
        ApiError::from(error).into()
    }
}

/// A sentence for a form's error banner, from a service-layer refusal.
pub fn user_message(error: &ApiError) -> String {
    match error {
        ApiError::Code(code) => code.detail().to_string(),
        ApiError::Validation(issues) => issues.iter().map(|issue| issue.msg.clone()).collect::<Vec<_>>().join("; "),
        ApiError::Message(_, message) => message.clone(),
        ApiError::Internal(_) => "Something went wrong on our side.".into(),
    }
}

impl IntoResponse for PortalError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            PortalError::SignInRequired { next } => {
                let target = if next == "/" { "/login".to_string() } else { format!("/login?next={}", encode(&next)) };
                return Redirect::to(&target).into_response();
            }
            PortalError::Forbidden(message) => (StatusCode::FORBIDDEN, "Not allowed", message),
            PortalError::NotFound => (
                StatusCode::NOT_FOUND,
                "Page not found",
                "There is nothing here. It may have been removed, or belong to another organization.".into(),
            ),
            PortalError::BadRequest(message) => (StatusCode::BAD_REQUEST, "That did not work", message),
            PortalError::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "portal: internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The server could not complete this request. Please try again in a moment.".into(),
                )
            }
        };
        let context = minijinja::context! { title, message, status => status.as_u16() };
        // Rendered directly (not via `page`) so a broken template cannot recurse into itself.
        let html = ENV
            .get_template("portal/error.html")
            .and_then(|template| template.render(context))
            .unwrap_or_else(|_| "<!doctype html><title>Error</title><p>Something went wrong.</p>".into());
        let mut response = (status, Html(html)).into_response();
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// Percent-encodes a path for the `next` query parameter.
fn encode(path: &str) -> String {
    serde_urlencoded::to_string([("", path)]).map(|text| text[1..].to_string()).unwrap_or_default()
}

/// A timestamp for templates (RFC 3339; the `datetime` filter shortens it).
pub fn time(at: Timestamp) -> String {
    at.to_rfc3339()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        for (name, _) in TEMPLATES {
            ENV.get_template(name).unwrap_or_else(|error| panic!("{name}: {error:#}"));
        }
    }

    #[test]
    fn values_are_escaped() {
        let template = ENV.get_template("portal/error.html").unwrap();
        let html = template
            .render(minijinja::context! { title => "t", message => "<script>alert(1)</script>", status => 400 })
            .unwrap();
        assert!(html.contains("&lt;script&gt;") && !html.contains("<script>alert"), "{html}");
    }

    #[test]
    fn dates_are_shortened() {
        assert_eq!(datetime(Value::from("2026-05-28T09:30:12.000Z")), "2026-05-28 09:30 UTC");
        assert_eq!(datetime(Value::from("soon")), "soon");
    }
}

//! Templates and error pages. Templates are compiled into the binary and
//! rendered by minijinja with HTML auto-escaping, so every value from a user
//! or the database is escaped unless a template says otherwise (none do).

use std::sync::LazyLock;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use minijinja::{Environment, Value};
use octogen_core::{LocPart, Timestamp, ValidationIssue};

use super::session::LayoutContext;
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
    "portal/confirm.html",
    "portal/operator/password_reset_issued.html",
    "portal/password_reset.html",
];

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in TEMPLATES {
        env.add_template(name, source).unwrap_or_else(|error| panic!("template {name}: {error:#}"));
    }
    env.add_filter("datetime", datetime);
    env.add_filter("day", |value: Value| {
        datetime(value).split_once(' ').map(|(day, _)| day.to_string()).unwrap_or_default()
    });
    env.add_filter("clock", |value: Value| {
        datetime(value).split_once(' ').map(|(_, clock)| clock.to_string()).unwrap_or_default()
    });
    env
});

/// Renders a template into an HTML response with `status`.
pub fn page(status: StatusCode, template: &str, context: Value) -> Response {
    match ENV.get_template(template).and_then(|template| template.render(context)) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => PortalError::Internal(anyhow::anyhow!("rendering {template}: {error:#}")).into_response(),
    }
}

/// `2026-05-28T09:30:07.000Z` → `2026-05-28 09:30:07 UTC`: to the second, with
/// the time zone named (plain text: works without JavaScript and in every locale).
fn datetime(value: Value) -> String {
    let text = value.as_str().map(str::to_string).unwrap_or_else(|| value.to_string());
    match (text.get(..10), text.get(11..19)) {
        (Some(date), Some(time)) if text.len() >= 19 => format!("{date} {time} UTC"),
        _ => text,
    }
}

/// What a page says about the request before it: a notice after a redirect
/// (post/redirect/get), or a refused form with the reason and what was typed,
/// so nobody has to type it again.
pub struct Feedback {
    pub notice: Option<&'static str>,
    pub error: Option<String>,
    /// The refused form's fields by name (never a password), as the template's `typed`.
    pub typed: Value,
}

impl Feedback {
    pub fn notice(notice: Option<&'static str>) -> Self {
        Feedback { notice, error: None, typed: Value::from(std::collections::BTreeMap::<String, Value>::new()) }
    }

    /// A refused form: `typed` is serialized field by field (a struct or a map).
    pub fn refused(message: String, typed: &impl serde::Serialize) -> Self {
        Feedback { error: Some(message), typed: Value::from_serialize(typed), ..Feedback::notice(None) }
    }

    /// 422 for a refused form, else 200.
    pub fn status(&self) -> StatusCode {
        if self.error.is_some() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        }
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
        ApiError::Code(code) => sentence(code.detail()),
        ApiError::Validation(issues) => issues.iter().map(human_issue).collect::<Vec<_>>().join(" "),
        ApiError::Message(_, message) => sentence(message),
        ApiError::Internal(_) => "Something went wrong on our side.".into(),
    }
}

/// A validation issue as a person would say it: the API's wording
/// ("String should have at least 1 character") names no field and reads like
/// a type checker, so the portal words the common cases itself.
fn human_issue(issue: &ValidationIssue) -> String {
    let field = match issue.loc.last() {
        Some(LocPart::Field(field)) => field.as_str(),
        _ => "",
    };
    let (article, noun) = field_noun(field);
    let limit = |name: &str| issue.ctx.as_ref().and_then(|ctx| ctx.get(name)).and_then(|value| value.as_u64());
    match (issue.kind.as_str(), field) {
        // The password policy's own messages already say what to do.
        (_, "password") => sentence(&issue.msg),
        ("string_too_short", _) if limit("min_length") == Some(1) => format!("Enter {article} {noun}."),
        ("string_too_long", _) => match limit("max_length") {
            Some(max) => format!("The {noun} can have at most {max} characters, on one line."),
            None => sentence(&issue.msg),
        },
        _ => match issue.msg.strip_prefix("Input should be") {
            Some(rest) => sentence(&format!("The {noun} should be{rest}")),
            None => sentence(&issue.msg),
        },
    }
}

/// How a form field is named in a sentence.
fn field_noun(field: &str) -> (&'static str, &'static str) {
    match field {
        "name" => ("a", "name"),
        "key" => ("a", "catalog key"),
        "email" => ("an", "email address"),
        "source_url" | "sourceUrl" => ("the", "merchant site's URL"),
        "url" => ("the", "feed URL"),
        "version" => ("an", "API version"),
        "perMinute" => ("a", "rate limit"),
        _ => ("a", "value"),
    }
}

/// Starts with a capital letter and ends with a full stop.
pub(crate) fn sentence(text: &str) -> String {
    let text = text.trim();
    let mut chars = text.chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => return String::new(),
    };
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// What an error page says. It travels with the response as an extension so
/// that the portal's layer can render it again with the signed-in user's
/// navigation (`portal::portal_layer`).
#[derive(Clone, Debug)]
pub struct ErrorPage {
    title: &'static str,
    message: String,
}

impl ErrorPage {
    pub fn new(title: &'static str, message: impl Into<String>) -> Self {
        ErrorPage { title, message: message.into() }
    }

    /// The page for an address nothing is served at.
    pub fn not_found() -> Self {
        ErrorPage::new(
            "Page not found",
            "There is nothing here. It may have been removed, or belong to another organization.",
        )
    }

    /// The HTML page, with the navigation when someone is signed in.
    pub fn render(&self, status: StatusCode, layout: Option<&LayoutContext>) -> Response {
        let context = minijinja::context! {
            title => self.title, message => &self.message, status => status.as_u16(), layout,
        };
        // Rendered directly (not via `page`) so a broken template cannot recurse into itself.
        let html = ENV
            .get_template("portal/error.html")
            .and_then(|template| template.render(context))
            .unwrap_or_else(|_| "<!doctype html><title>Error</title><p>Something went wrong.</p>".into());
        let mut response = (status, Html(html)).into_response();
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response.extensions_mut().insert(self.clone());
        response
    }
}

impl IntoResponse for PortalError {
    fn into_response(self) -> Response {
        let (status, page) = match self {
            PortalError::SignInRequired { next } => {
                let target = if next == "/" { "/login".to_string() } else { format!("/login?next={}", encode(&next)) };
                return Redirect::to(&target).into_response();
            }
            PortalError::Forbidden(message) => (StatusCode::FORBIDDEN, ErrorPage::new("Not allowed", message)),
            PortalError::NotFound => (StatusCode::NOT_FOUND, ErrorPage::not_found()),
            PortalError::BadRequest(message) => (StatusCode::BAD_REQUEST, ErrorPage::new("That did not work", message)),
            PortalError::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "portal: internal error");
                let message = "The server could not complete this request. Please try again in a moment.";
                (StatusCode::INTERNAL_SERVER_ERROR, ErrorPage::new("Something went wrong", message))
            }
        };
        page.render(status, None)
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
    fn dates_show_seconds_and_the_time_zone() {
        assert_eq!(datetime(Value::from("2026-05-28T09:30:12.000Z")), "2026-05-28 09:30:12 UTC");
        assert_eq!(datetime(Value::from("soon")), "soon");
    }

    #[test]
    fn validation_issues_become_sentences_naming_the_field() {
        let issue = |field: &str, kind: &str, msg: &str, ctx: serde_json::Value| {
            ValidationIssue::new(octogen_core::loc!["body", field], kind, msg).with_ctx(ctx)
        };
        let message = |issue| user_message(&ApiError::Validation(vec![issue]));
        let short = "String should have at least 1 character";
        assert_eq!(
            message(issue("name", "string_too_short", short, serde_json::json!({"min_length": 1}))),
            "Enter a name."
        );
        assert_eq!(
            message(issue("email", "string_too_short", short, serde_json::json!({"min_length": 1}))),
            "Enter an email address."
        );
        let long = "String should have at most 100 printable characters";
        assert_eq!(
            message(issue("name", "string_too_long", long, serde_json::json!({"max_length": 100}))),
            "The name can have at most 100 characters, on one line."
        );
        let url = "Input should be an absolute http(s) URL";
        assert_eq!(
            message(issue("source_url", "url_parsing", url, serde_json::json!({}))),
            "The merchant site's URL should be an absolute http(s) URL."
        );
        let password = "The password needs at least 15 characters";
        assert_eq!(
            message(issue("password", "string_too_short", password, serde_json::json!({"min_length": 15}))),
            "The password needs at least 15 characters."
        );
    }
}

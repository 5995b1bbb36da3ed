//! "Are you sure?" pages for the operator's destructive actions, the way key
//! deactivation works for partners: the action's button is a link to a GET
//! page that changes nothing, says what will happen, and holds the one POST
//! form that does it (with Cancel next to it). Without JavaScript, and no
//! `confirm()` dialog that a stray Enter key dismisses.

use axum::http::StatusCode;
use axum::response::Response;
use minijinja::context;
use serde::Serialize;

use crate::portal::render::page;
use crate::portal::PortalUser;

/// What a confirmation page says and where its form posts.
#[derive(Serialize)]
pub struct Confirmation {
    /// The question, e.g. "Suspend Acme?".
    pub title: String,
    /// What the action does, said plainly.
    pub consequence: String,
    /// How to undo it, if it can be undone.
    pub undo: Option<String>,
    /// Where the form posts.
    pub action: String,
    /// The button's words, e.g. "Suspend organization".
    pub button: String,
    /// Where Cancel goes (the page the action was started from).
    pub cancel: String,
}

/// The page (`portal/confirm.html`), under the operator navigation `section`.
pub fn confirm_page(user: &PortalUser, section: &str, confirmation: Confirmation) -> Response {
    page(StatusCode::OK, "portal/confirm.html", context! { layout => user.layout(section), confirmation })
}

//! Cross-site request forgery defences for every state-changing form.
//!
//! 1. Only POST changes state; every POST form carries a `csrf` field.
//! 2. The token is an HMAC (under the server pepper) of a secret the browser
//!    holds in an HttpOnly cookie: the session token once signed in, or a
//!    pre-session cookie for the sign-in form. Another site can make the
//!    browser send the cookie but can neither read it nor compute the token.
//! 3. Independently, a request whose `Sec-Fetch-Site` says it came from
//!    another site, or whose `Origin` is not this server's, is refused before
//!    its form is read. (Clients that send neither header, such as scripts,
//!    still need the token.)

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::{HOST, ORIGIN};
use axum::http::HeaderMap;
use axum::response::Response;
use octogen_core::api_key::random_token;
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::render::PortalError;
use super::session::{read_cookie, set_cookie, with_cookie, PRESESSION_COOKIE, SESSION_COOKIE};
use crate::config::Config;
use crate::state::AppState;

const CSRF_DOMAIN: &str = "octogen-portal-csrf";

/// The CSRF token for forms bound to the cookie secret `binding`.
pub fn token_for(state: &AppState, binding: &str) -> String {
    state.secrets.pepper.hash_token(CSRF_DOMAIN, binding.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The secret a form shown before sign-in (sign-in, password reset) is bound
/// to: the browser's pre-session cookie, or a new one that the page sets.
pub struct Presession {
    binding: String,
    is_new: bool,
}

impl Presession {
    pub fn of(state: &AppState, headers: &HeaderMap) -> Self {
        match read_cookie(headers, &state.config, PRESESSION_COOKIE) {
            Some(binding) => Presession { binding, is_new: false },
            None => Presession { binding: random_token(32).expose_secret().to_string(), is_new: true },
        }
    }

    /// The token the page's form carries.
    pub fn csrf(&self, state: &AppState) -> String {
        token_for(state, &self.binding)
    }

    /// The page, setting the cookie when the browser had none.
    pub fn keep(self, state: &AppState, response: Response) -> Response {
        if !self.is_new {
            return response;
        }
        with_cookie(response, set_cookie(&state.config, PRESESSION_COOKIE, Some(&self.binding)))
    }
}

/// A form posted by a signed-in user from one of this portal's own pages.
pub struct CsrfForm<T>(pub T);

/// The sign-in form, bound to the pre-session cookie.
pub struct SignInForm<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = PortalError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, PortalError> {
        verified_form(request, state, SESSION_COOKIE).await.map(CsrfForm)
    }
}

impl<T: DeserializeOwned> FromRequest<AppState> for SignInForm<T> {
    type Rejection = PortalError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, PortalError> {
        verified_form(request, state, PRESESSION_COOKIE).await.map(SignInForm)
    }
}

#[derive(Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

async fn verified_form<T: DeserializeOwned>(
    request: Request,
    state: &AppState,
    cookie: &str,
) -> Result<T, PortalError> {
    check_origin(request.headers(), &state.config)?;
    let binding = read_cookie(request.headers(), &state.config, cookie);
    let body = Bytes::from_request(request, state)
        .await
        .map_err(|_| PortalError::BadRequest("The form could not be read.".into()))?;
    let presented: CsrfField = serde_urlencoded::from_bytes(&body).unwrap_or(CsrfField { csrf: String::new() });
    let expected = match &binding {
        Some(binding) => token_for(state, binding),
        None if cookie == SESSION_COOKIE => return Err(PortalError::SignInRequired { next: "/".into() }),
        None => return Err(expired()),
    };
    if !bool::from(expected.as_bytes().ct_eq(presented.csrf.as_bytes())) {
        return Err(expired());
    }
    serde_urlencoded::from_bytes(&body).map_err(|_| PortalError::BadRequest("The form was incomplete.".into()))
}

fn expired() -> PortalError {
    PortalError::forbidden(
        "This form has expired or did not come from this site. Go back, reload the page and try again.",
    )
}

/// Refuses requests that a browser marks as coming from another site.
pub fn check_origin(headers: &HeaderMap, config: &Config) -> Result<(), PortalError> {
    let cross_site = || PortalError::forbidden("Forms can only be sent from this site's own pages.");
    if let Some(site) = headers.get("sec-fetch-site") {
        if !matches!(site.as_bytes(), b"same-origin" | b"none") {
            return Err(cross_site());
        }
    }
    let Some(origin) = headers.get(ORIGIN).and_then(|value| value.to_str().ok()) else {
        return Ok(());
    };
    let allowed = match config.public_origin() {
        Some(public) => origin == public,
        // Without a configured URL, this server is whatever host the browser
        // asked for (an attacker's page cannot choose the victim's Host header).
        None => {
            let host = headers.get(HOST).and_then(|value| value.to_str().ok()).unwrap_or("");
            !host.is_empty() && (origin == format!("http://{host}") || origin == format!("https://{host}"))
        }
    };
    if allowed {
        Ok(())
    } else {
        Err(cross_site())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn origin_must_be_this_server() {
        let config = Config::default();
        let ok = |pairs: &[(&'static str, &str)]| check_origin(&headers(pairs), &config).is_ok();
        assert!(ok(&[("host", "portal.test:8080"), ("origin", "http://portal.test:8080")]));
        assert!(ok(&[("host", "portal.test"), ("origin", "https://portal.test")]));
        assert!(ok(&[("host", "portal.test")]), "no browser headers: the token decides");
        assert!(ok(&[("host", "portal.test"), ("sec-fetch-site", "same-origin")]));
        assert!(!ok(&[("host", "portal.test"), ("origin", "https://evil.test")]));
        assert!(!ok(&[("host", "portal.test"), ("origin", "null")]));
        assert!(!ok(&[("host", "portal.test"), ("sec-fetch-site", "cross-site")]));
        assert!(!ok(&[("host", "portal.test"), ("sec-fetch-site", "same-site")]));
    }

    #[test]
    fn a_public_url_fixes_the_origin() {
        let config = Config { public_url: Some("https://octo.example".into()), ..Config::default() };
        assert!(check_origin(&headers(&[("host", "x"), ("origin", "https://octo.example")]), &config).is_ok());
        assert!(check_origin(&headers(&[("host", "x"), ("origin", "http://x")]), &config).is_err());
    }
}

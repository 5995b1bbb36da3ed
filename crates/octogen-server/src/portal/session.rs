//! Session cookies and the signed-in user.
//!
//! The cookie carries a random 256-bit token; the store keeps only its HMAC
//! (see `service::sessions`). Over https (a `public_url` with the https
//! scheme) cookies are `__Host-` prefixed and `Secure`, so no subdomain or
//! plain-http page can set or read them; they are always `HttpOnly` and
//! `SameSite=Lax`, and carry no `Max-Age`, so they end with the browser too.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method};
use octogen_store::{Membership, Role, Session, User};
use secrecy::SecretString;
use serde::Serialize;

use super::csrf;
use super::render::PortalError;
use crate::config::Config;
use crate::net::ClientAddr;
use crate::service::Actor;
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "octogen_session";
/// Holds the secret the sign-in form's CSRF token is bound to, before there is a session.
pub const PRESESSION_COOKIE: &str = "octogen_presession";

/// The cookie's name: `__Host-` prefixed when the portal is served over https.
pub fn cookie_name(config: &Config, base: &str) -> String {
    if config.serves_https() {
        format!("__Host-{base}")
    } else {
        base.to_string()
    }
}

/// A `Set-Cookie` value; `None` as the value deletes the cookie.
pub fn set_cookie(config: &Config, base: &str, value: Option<&str>) -> HeaderValue {
    let name = cookie_name(config, base);
    let secure = if config.serves_https() { "; Secure" } else { "" };
    let text = match value {
        Some(value) => format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax{secure}"),
        None => format!("{name}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{secure}"),
    };
    HeaderValue::from_str(&text).expect("cookie values are base64url")
}

/// The value of a cookie sent by the browser.
pub fn read_cookie(headers: &HeaderMap, config: &Config, base: &str) -> Option<String> {
    let name = cookie_name(config, base);
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, value)| *key == name && !value.is_empty())
        .map(|(_, value)| value.to_string())
}

/// A signed-in person, with the organization they are looking at.
pub struct PortalUser {
    pub session: Session,
    pub user: User,
    /// Every organization the user belongs to (for the switcher).
    pub memberships: Vec<Membership>,
    /// The organization being viewed: the session's choice while the user is
    /// still a member there, else their first organization.
    pub current: Option<Membership>,
    /// The CSRF token this session's forms carry.
    pub csrf: String,
    pub client: ClientAddr,
    /// The session's cookie token: one-time secrets for this session are sealed under it (`flash.rs`).
    pub token: SecretString,
    /// Set by the operator area's extractor: this request acts as the
    /// platform's operator, not as a member of an organization.
    pub acting_as_operator: bool,
}

impl PortalUser {
    /// Who acts, for the audit log: an operator in the operator area is
    /// recorded as one (partners see "Octogen operator", not the person).
    pub fn actor(&self) -> Actor {
        if self.acting_as_operator {
            Actor::operator_user(&self.user.email, self.client.label())
        } else {
            Actor::user(&self.user.email, self.client.label())
        }
    }

    /// The organization being viewed, or a page saying there is none.
    pub fn org(&self) -> Result<&Membership, PortalError> {
        self.current.as_ref().ok_or_else(|| {
            PortalError::forbidden("You are not a member of any organization yet. Ask an operator to add you to one.")
        })
    }

    /// The current organization, if the user's role there manages API keys.
    pub fn org_managing_keys(&self) -> Result<&Membership, PortalError> {
        let org = self.org()?;
        if !org.role.manages_keys() {
            return Err(PortalError::forbidden(format!(
                "Only owners and admins of {} can create, rotate or deactivate API keys. Your role is {}.",
                org.org.name, org.role
            )));
        }
        Ok(org)
    }

    pub fn require_operator(&self) -> Result<(), PortalError> {
        if self.user.is_operator {
            Ok(())
        } else {
            Err(PortalError::forbidden("This area is for platform operators."))
        }
    }

    /// What every page's layout needs: who is signed in, the organization switcher, the CSRF token.
    pub fn layout(&self, section: &str) -> LayoutContext {
        LayoutContext {
            email: self.user.email.clone(),
            is_operator: self.user.is_operator,
            csrf: self.csrf.clone(),
            section: section.to_string(),
            orgs: self
                .memberships
                .iter()
                .map(|m| OrgChoice { id: m.org.id.clone(), name: m.org.name.clone(), role: m.role })
                .collect(),
            current: self.current.as_ref().map(|m| CurrentOrg {
                id: m.org.id.clone(),
                name: m.org.name.clone(),
                role: m.role,
                manages_keys: m.role.manages_keys(),
                suspended: m.org.suspended,
                is_partner: m.org.org_type == octogen_store::OrgType::CatalogPartner,
            }),
        }
    }
}

#[derive(Serialize, Clone)]
pub struct LayoutContext {
    email: String,
    is_operator: bool,
    csrf: String,
    section: String,
    orgs: Vec<OrgChoice>,
    current: Option<CurrentOrg>,
}

#[derive(Serialize, Clone)]
struct OrgChoice {
    id: String,
    name: String,
    role: Role,
}

#[derive(Serialize, Clone)]
struct CurrentOrg {
    id: String,
    name: String,
    role: Role,
    manages_keys: bool,
    suspended: bool,
    is_partner: bool,
}

impl FromRequestParts<AppState> for PortalUser {
    type Rejection = PortalError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PortalError> {
        let next = if parts.method == Method::GET {
            parts.uri.path_and_query().map(|pq| pq.as_str().to_string()).unwrap_or_else(|| "/".into())
        } else {
            "/".into()
        };
        let sign_in = || PortalError::SignInRequired { next: next.clone() };
        let token = read_cookie(&parts.headers, &state.config, SESSION_COOKIE).ok_or_else(sign_in)?;
        let (session, user) = state.services.session(&token).await?.ok_or_else(sign_in)?;
        let memberships = state.store.user_memberships(&user.id).await?;
        let current = session
            .org_id
            .as_deref()
            .and_then(|id| memberships.iter().find(|m| m.org.id == id))
            .or(memberships.first())
            .cloned();
        let client = ClientAddr::from_request_parts(parts, state).await.unwrap_or(ClientAddr(None));
        let csrf = csrf::token_for(state, &token);
        let user = PortalUser {
            session,
            user,
            memberships,
            current,
            csrf,
            client,
            token: SecretString::from(token),
            acting_as_operator: false,
        };
        // An error page for this request shows the navigation of whoever is signed in.
        if let Some(slot) = parts.extensions.get::<LayoutSlot>() {
            slot.fill(user.layout(""));
        }
        Ok(user)
    }
}

impl OptionalFromRequestParts<AppState> for PortalUser {
    type Rejection = PortalError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Option<Self>, PortalError> {
        match <PortalUser as FromRequestParts<AppState>>::from_request_parts(parts, state).await {
            Ok(user) => Ok(Some(user)),
            Err(PortalError::SignInRequired { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }
}

/// Where the request's `PortalUser` leaves its layout, so that an error page
/// produced later in the request (a refused form, an unknown id) can still
/// show the navigation (see `portal::portal_layer`).
#[derive(Clone, Default)]
pub struct LayoutSlot(std::sync::Arc<std::sync::Mutex<Option<LayoutContext>>>);

impl LayoutSlot {
    fn fill(&self, layout: LayoutContext) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(layout);
        }
    }

    pub fn take(&self) -> Option<LayoutContext> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

/// Adds a `Set-Cookie` header to a response.
pub fn with_cookie(mut response: axum::response::Response, cookie: HeaderValue) -> axum::response::Response {
    response.headers_mut().append(SET_COOKIE, cookie);
    response
}

//! The authorization endpoint and the consent screen.
//!
//! `GET /oauth2/authorize` is anonymous: it is throttled per client address,
//! its parameters are capped, and it stores nothing. Until the client and its
//! redirect URI are known, and a person has approved that client before,
//! problems are shown here and never redirected anywhere (RFC 9700 §4.11.2:
//! anyone may register a client with any https redirect URI); after that they
//! go back to the client (`error`, `state`, `iss`). A valid request is sealed
//! (`pending`) into the browser's next stop, `GET /oauth2/consent?request=…`,
//! which needs a portal session (sign-in comes back here), lets a user in
//! several organizations pick one, and asks for consent. The form
//! (CSRF-protected, on a page that cannot be framed) posts to
//! `POST /oauth2/consent`, which records the answer (each request is answered
//! once) and issues the code.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::extract::{Query, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use minijinja::{context, Environment};
use octogen_core::api_key::random_token;
use octogen_store::{AuditEvent, NewAuthorizationCode, NewOAuthGrant, OrgType};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;

use super::clients::{
    redirect_matches, remember_document_client, resolve_client, throttled, valid_redirect_uri, ClientProblem,
};
use super::pending::{self, PendingRequest};
use super::{
    anonymous_budget, hash, housekeeping, Urls, CODE_DOMAIN, CODE_SECONDS, REDIRECT_URI_MAX_BYTES, REQUEST_SECONDS,
    SCOPE,
};
use crate::net::ClientAddr;
use crate::portal::csrf::CsrfForm;
use crate::portal::{PortalError, PortalUser};
use crate::state::AppState;

/// The longest authorization request (its query string, percent-encoded) read.
const QUERY_MAX_BYTES: usize = 16 * 1024;
/// The longest value of each parameter this server reads (in bytes, decoded).
const PARAMETER_MAX_BYTES: [(&str, usize); 8] = [
    ("client_id", 512),
    ("redirect_uri", REDIRECT_URI_MAX_BYTES),
    ("state", 1024),
    ("scope", 512),
    ("resource", 2048),
    ("response_type", 64),
    ("code_challenge", 128),
    ("code_challenge_method", 64),
];

/// `GET /oauth2/authorize`.
pub async fn authorize(
    State(state): State<AppState>,
    client_addr: ClientAddr,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match anonymous_budget(&state, &client_addr).await {
        Ok(budget) if !budget.allowed() => {
            let mut response = refuse_here(
                "Too many requests to connect applications came from your network. Wait a minute and try again.".into(),
            );
            *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            budget.apply_headers(response.headers_mut());
            return response;
        }
        Ok(_) => {}
        Err(response) => return response,
    }
    let Some(urls) = Urls::of(&state.config, &headers) else {
        return refuse_here("The Host header does not name this server.".into());
    };
    let query = query.unwrap_or_default();
    if query.len() > QUERY_MAX_BYTES {
        return refuse_here(format!("The request is longer than {QUERY_MAX_BYTES} bytes."));
    }
    let params = match single_valued(&query) {
        Ok(params) => params,
        Err(name) => return refuse_here(format!("The parameter {name} was sent more than once.")),
    };
    if let Err(problem) = check_sizes(&params) {
        return refuse_here(problem);
    }
    let Some(client_id) = params.get("client_id").filter(|id| !id.is_empty()) else {
        return refuse_here("The request does not say which application it is for (client_id is missing).".into());
    };
    let client = match resolve_client(&state, client_id, &client_addr).await {
        Ok(client) => client,
        Err(ClientProblem::Unknown) => {
            return refuse_here("This application is not registered with this server. Connect it again.".into())
        }
        Err(ClientProblem::Document(reason)) => {
            return refuse_here(format!("The application's client metadata document cannot be used: {reason}."))
        }
        Err(ClientProblem::Throttled(budget)) => return throttled(budget),
        Err(ClientProblem::Internal(error)) => return PortalError::Internal(error).into_response(),
    };
    let redirect_uri = match params.get("redirect_uri") {
        Some(uri) if redirect_matches(&client.redirect_uris, uri) => uri.clone(),
        Some(_) => {
            return refuse_here(
                "The application asked to be sent back to an address it did not register (redirect_uri).".into(),
            )
        }
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => return refuse_here("The request does not say where to send you back (redirect_uri).".into()),
    };
    // Registered under older rules, perhaps: every redirect is checked against today's.
    if let Err(problem) = valid_redirect_uri(&redirect_uri) {
        return refuse_here(format!("The application's redirect URI cannot be used: {problem}."));
    }
    // From here on, problems are the client's to handle: they go back to it, once a person
    // has approved it (until then it may be anyone's redirector, and they are shown here).
    let client_state = params.get("state").cloned();
    let back = |error: &str, description: &str| {
        if client.approved {
            redirect_to_client(
                &redirect_uri,
                &[("error", error), ("error_description", description)],
                &client_state,
                &urls,
            )
        } else {
            refuse_here(format!("The application's request cannot be served: {description} ({error})."))
        }
    };
    if params.get("response_type").map(String::as_str) != Some("code") {
        return back("unsupported_response_type", "response_type must be code");
    }
    let Some(challenge) = params.get("code_challenge") else {
        return back("invalid_request", "PKCE is required: send code_challenge with code_challenge_method=S256");
    };
    if params.get("code_challenge_method").map(String::as_str) != Some("S256") {
        return back("invalid_request", "code_challenge_method must be S256 (plain is not supported)");
    }
    if challenge.len() != 43 || !challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return back("invalid_request", "code_challenge must be the base64url SHA-256 of the code verifier");
    }
    if params.get("resource").is_some_and(|requested| requested != &urls.resource()) {
        return back("invalid_target", "this server issues tokens only for its MCP endpoint");
    }
    let request = PendingRequest {
        id: random_token(16).expose_secret().to_string(),
        client_id: client.id.clone(),
        client_name: client.name.clone(),
        document_client: client.document,
        redirect_uri: redirect_uri.clone(),
        state: client_state.clone(),
        code_challenge: challenge.clone(),
        issuer: urls.issuer.clone(),
        expires_at: state.oauth.clock.now().plus_millis(REQUEST_SECONDS * 1000).millis(),
    };
    match pending::seal(&state.secrets.pepper, &request) {
        Ok(sealed) => see_other(&format!("/oauth2/consent?request={sealed}")),
        Err(error) => PortalError::Internal(error).into_response(),
    }
}

/// Every parameter within its size, and `state` in the characters RFC 6749 allows
/// (printable ASCII): this server hands it back, in a URL, and in the consent URL.
fn check_sizes(params: &HashMap<String, String>) -> Result<(), String> {
    for (name, max) in PARAMETER_MAX_BYTES {
        if params.get(name).is_some_and(|value| value.len() > max) {
            return Err(format!("The parameter {name} is longer than {max} bytes."));
        }
    }
    if params.get("state").is_some_and(|state| !state.bytes().all(|b| (0x20..=0x7e).contains(&b))) {
        return Err("The parameter state may contain only printable ASCII characters.".into());
    }
    Ok(())
}

#[derive(Deserialize)]
pub struct ConsentQuery {
    #[serde(default)]
    request: String,
}

/// `GET /oauth2/consent?request=…`: the organization picker and consent screen.
pub async fn consent_page(
    State(state): State<AppState>,
    user: PortalUser,
    Query(query): Query<ConsentQuery>,
) -> Result<Response, PortalError> {
    let request = pending(&state, &query.request)?;
    if user.memberships.is_empty() {
        return Err(PortalError::forbidden(
            "You are not a member of any organization, so there is nothing to connect. Ask an operator to add you to one.",
        ));
    }
    let preferred = user.current.as_ref().map(|m| m.org.id.clone());
    let orgs: Vec<_> = user
        .memberships
        .iter()
        .map(|m| {
            json!({
                "id": m.org.id,
                "name": m.org.name,
                "role": m.role,
                "is_partner": m.org.org_type == OrgType::CatalogPartner,
                "suspended": m.org.suspended,
                "checked": Some(&m.org.id) == preferred.as_ref(),
            })
        })
        .collect();
    let redirect = url::Url::parse(&request.redirect_uri).ok();
    let client_host = url::Url::parse(&request.client_id).ok().and_then(|url| url.host_str().map(str::to_string));
    let context = context! {
        layout => user.layout("oauth"),
        csrf => user.csrf.clone(),
        request_id => query.request,
        client_name => request.client_name.clone().unwrap_or_else(|| "An application".into()),
        client_id => request.client_id,
        client_host => client_host,
        redirect_host => redirect.as_ref().and_then(|url| url.host_str().map(str::to_string)).unwrap_or_else(|| request.redirect_uri.clone()),
        orgs => orgs,
    };
    let html = TEMPLATES
        .get_template("oauth/consent.html")
        .and_then(|template| template.render(context))
        .map_err(|error| PortalError::Internal(anyhow::anyhow!("rendering the consent page: {error:#}")))?;
    let mut response = Html(html).into_response();
    // The form's answer redirects to the client, which `form-action` must allow.
    let target = redirect.map(|url| match url.scheme() {
        "http" | "https" => url.origin().ascii_serialization(),
        scheme => format!("{scheme}:"),
    });
    let csp = format!("{CSP_BASE}; form-action 'self' {}", target.unwrap_or_default());
    if let Ok(value) = HeaderValue::from_str(csp.trim()) {
        response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, value);
    }
    Ok(response)
}

#[derive(Deserialize)]
pub struct ConsentForm {
    #[serde(default)]
    request: String,
    #[serde(default)]
    org: Option<String>,
    #[serde(default)]
    decision: String,
}

/// `POST /oauth2/consent`: the user's answer; a code (or `access_denied`) goes back to the client.
pub async fn consent(
    State(state): State<AppState>,
    user: PortalUser,
    CsrfForm(form): CsrfForm<ConsentForm>,
) -> Result<Response, PortalError> {
    let request = pending(&state, &form.request)?;
    let urls = Urls { issuer: request.issuer.clone() };
    housekeeping(&state).await;
    if form.decision != "allow" {
        answer(&state, &request).await?;
        let denied = [("error", "access_denied"), ("error_description", "the user did not allow access")];
        return Ok(redirect_to_client(&request.redirect_uri, &denied, &request.state, &urls));
    }
    let org_id = form.org.clone().or_else(|| (user.memberships.len() == 1).then(|| user.memberships[0].org.id.clone()));
    let Some(membership) = org_id.and_then(|id| user.memberships.iter().find(|m| m.org.id == id)) else {
        return Err(PortalError::BadRequest("Choose one of your organizations.".into()));
    };
    answer(&state, &request).await?;
    if request.document_client {
        remember_document_client(&state, &request.client_id, request.client_name.clone(), &request.redirect_uri)
            .await
            .map_err(PortalError::Internal)?;
    } else if state.store.get_oauth_client(&request.client_id).await?.is_none() {
        return Err(PortalError::BadRequest(
            "This application is no longer registered with this server. Go back to the application and connect it \
             again."
                .into(),
        ));
    }
    let now = state.oauth.clock.now();
    let code = format!("octo_ac_{}", random_token(32).expose_secret());
    let grant_id = uuid::Uuid::new_v4().to_string();
    let audit = AuditEvent {
        occurred_at: octogen_core::Timestamp::now(),
        org_id: Some(membership.org.id.clone()),
        actor: user.actor().label,
        action: "oauth.authorized".into(),
        target: Some(request.client_id.clone()),
        client_addr: user.client.label(),
        detail: Some(json!({"client_name": request.client_name, "grant": grant_id, "resource": urls.resource()})),
    };
    state
        .store
        .create_oauth_grant(
            NewOAuthGrant {
                id: grant_id,
                client_id: request.client_id.clone(),
                user_id: user.user.id.clone(),
                org_id: membership.org.id.clone(),
                session_id: user.session.id.clone(),
                issuer: request.issuer.clone(),
                resource: urls.resource(),
                scope: SCOPE.into(),
                created_at: now,
            },
            NewAuthorizationCode {
                code_hash: hash(&state, CODE_DOMAIN, &code),
                redirect_uri: request.redirect_uri.clone(),
                code_challenge: request.code_challenge.clone(),
                created_at: now,
                expires_at: now.plus_millis(CODE_SECONDS * 1000),
            },
            audit,
        )
        .await?;
    Ok(redirect_to_client(&request.redirect_uri, &[("code", &code)], &request.state, &urls))
}

/// The sealed request behind a consent page or answer, if it is this server's and still open.
fn pending(state: &AppState, sealed: &str) -> Result<PendingRequest, PortalError> {
    pending::open(&state.secrets.pepper, sealed, state.oauth.clock.now()).ok_or_else(answered)
}

/// Records the answer to `request`; refused when it was answered already.
async fn answer(state: &AppState, request: &PendingRequest) -> Result<(), PortalError> {
    if state.store.answer_oauth_request(&request.id, request.expires_at()).await? {
        Ok(())
    } else {
        Err(answered())
    }
}

fn answered() -> PortalError {
    PortalError::BadRequest(
        "This request to connect an application has expired or was already answered. Go back to the application \
         and connect again."
            .into(),
    )
}

/// A problem shown to the person, never redirected (the client or its redirect URI is not trusted yet).
fn refuse_here(message: String) -> Response {
    PortalError::BadRequest(message).into_response()
}

/// Back to the client's redirect URI with `params`, its `state` and our `iss` (RFC 9207).
fn redirect_to_client(
    redirect_uri: &str,
    params: &[(&str, &str)],
    client_state: &Option<String>,
    urls: &Urls,
) -> Response {
    let Ok(mut target) = url::Url::parse(redirect_uri) else {
        return refuse_here("The application's redirect URI is not valid.".into());
    };
    {
        let mut query = target.query_pairs_mut();
        for (name, value) in params {
            query.append_pair(name, value);
        }
        if let Some(client_state) = client_state {
            query.append_pair("state", client_state);
        }
        query.append_pair("iss", &urls.issuer);
    }
    see_other(target.as_str())
}

fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => (StatusCode::SEE_OTHER, [(header::LOCATION, value)]).into_response(),
        Err(_) => refuse_here("The application's redirect URI is not valid.".into()),
    }
}

/// The query's parameters; a repeated one is an error (RFC 6749 §3.1), named in `Err`.
fn single_valued(query: &str) -> Result<HashMap<String, String>, String> {
    let mut params = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if params.insert(name.to_string(), value.into_owned()).is_some() {
            return Err(name.into_owned());
        }
    }
    Ok(params)
}

const CSP_BASE: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'";

/// The headers of every authorization page: never framed, never cached, no referrer (the URLs carry request ids).
pub async fn page_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        let csp = format!("{CSP_BASE}; form-action 'self'");
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_str(&csp).expect("a valid header"));
    }
    let fixed: [(HeaderName, &'static str); 5] = [
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (HeaderName::from_static("cross-origin-opener-policy"), "same-origin"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in [
        ("portal/base.html", include_str!("../../templates/portal/base.html")),
        ("oauth/consent.html", include_str!("../../templates/oauth/consent.html")),
    ] {
        env.add_template(name, source).unwrap_or_else(|error| panic!("template {name}: {error:#}"));
    }
    env
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused() {
        assert_eq!(single_valued("a=1&b=2").unwrap().len(), 2);
        assert_eq!(single_valued("a=1&a=2").unwrap_err(), "a");
    }

    #[test]
    fn the_consent_template_parses_and_escapes() {
        let html = TEMPLATES
            .get_template("oauth/consent.html")
            .unwrap()
            .render(context! {
                csrf => "t", request_id => "r", client_name => "<b>Evil</b>", client_id => "c",
                redirect_host => "localhost", orgs => vec![json!({"id": "o", "name": "Acme", "role": "owner",
                "is_partner": true, "suspended": false, "checked": true})],
            })
            .unwrap();
        assert!(html.contains("&lt;b&gt;Evil") && !html.contains("<b>Evil"), "{html}");
    }
}

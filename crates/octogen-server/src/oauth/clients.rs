//! Who may ask for tokens: clients registered by RFC 7591, and clients whose
//! id is the https URL of a client ID metadata document (fetched when they
//! authorize, stored once a person approves one); redirect URI rules; client
//! authentication at the token endpoint.
//!
//! Redirect URIs: `https` anywhere; `http` only on a loopback host
//! (`127.0.0.1`, `[::1]`, `localhost`); a native app's private-use scheme only
//! in reverse-domain form (`com.example.app:/callback`, RFC 8252 §7.1), so
//! `javascript:`, `data:`, `ms-appinstaller:` and every other handler a browser
//! might hand a URI to are out; never a fragment; at most 2 KB. A presented URI
//! must equal a registered one exactly, except that a loopback registration
//! matches any port (RFC 8252 §7.3).
//!
//! Registration is anonymous, so it keeps only what the server uses (redirect
//! URIs, name, authentication method, grant types), each capped, and drops the
//! rest of the metadata. A client nobody has used for 30 days is forgotten.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use octogen_core::api_key::random_token;
use octogen_fetch::{AllowPrivate, FetchError, Fetcher, Limits};
use octogen_store::{AuditEvent, ClientAuthMethod, ClientKind, NewOAuthClient, OAuthClient};
use secrecy::ExposeSecret;
use serde_json::{json, Map, Value};
use subtle::ConstantTimeEq;

use super::{
    anonymous_budget, hash, housekeeping, no_store, oauth_error, too_many_requests, CLIENT_SECRET_DOMAIN,
    REDIRECT_URI_MAX_BYTES,
};
use crate::net::ClientAddr;
use crate::ratelimit::Budget;
use crate::state::AppState;

/// The largest client ID metadata document we read.
pub const METADATA_MAX_BYTES: usize = 16 * 1024;
/// Real clients register one to three redirect URIs.
const MAX_REDIRECT_URIS: usize = 10;
/// All redirect URIs of a client together: what one anonymous registration may store.
const REDIRECT_URIS_MAX_TOTAL_BYTES: usize = 2048;
const CLIENT_NAME_MAX_CHARS: usize = 200;

/// Checks one redirect URI against the rules above.
pub fn valid_redirect_uri(uri: &str) -> Result<(), String> {
    if uri.len() > REDIRECT_URI_MAX_BYTES {
        return Err(format!("a redirect URI is longer than {REDIRECT_URI_MAX_BYTES} bytes"));
    }
    let parsed = url::Url::parse(uri).map_err(|_| format!("{uri:?} is not an absolute URI"))?;
    if parsed.fragment().is_some() {
        return Err(format!("{uri:?} has a fragment"));
    }
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if is_loopback_host(&parsed) => Ok(()),
        "http" => Err(format!("{uri:?}: http redirect URIs must be on a loopback host (127.0.0.1, [::1], localhost)")),
        scheme if is_reverse_domain(scheme) => Ok(()),
        scheme => Err(format!(
            "{uri:?}: the {scheme} scheme is not allowed (use https, http on a loopback host, or a native app's \
             private-use scheme named by a reverse domain such as com.example.app, RFC 8252 §7.1)"
        )),
    }
}

/// A scheme in reverse-domain form: two or more dot-separated labels of letters,
/// digits and hyphens, the first (a top-level domain) starting with a letter.
fn is_reverse_domain(scheme: &str) -> bool {
    let labels: Vec<&str> = scheme.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
        })
        && labels[0].starts_with(|c: char| c.is_ascii_alphabetic())
}

fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Whether `presented` is one of `registered`: exactly, or on any port for a loopback registration.
pub fn redirect_matches(registered: &[String], presented: &str) -> bool {
    registered.iter().any(|candidate| {
        if candidate == presented {
            return true;
        }
        let (Ok(candidate), Ok(presented)) = (url::Url::parse(candidate), url::Url::parse(presented)) else {
            return false;
        };
        candidate.scheme() == "http"
            && is_loopback_host(&candidate)
            && presented.scheme() == "http"
            && candidate.host_str() == presented.host_str()
            && candidate.path() == presented.path()
            && candidate.query() == presented.query()
            && presented.fragment().is_none()
            && presented.username().is_empty()
            && presented.password().is_none()
    })
}

/// `POST /oauth2/register` (RFC 7591): anonymous, so throttled per client address,
/// and only the metadata the server uses is kept (and answered back).
pub async fn register(State(state): State<AppState>, client: ClientAddr, body: Bytes) -> Response {
    match anonymous_budget(&state, &client).await {
        Ok(budget) if !budget.allowed() => {
            let mut response = too_many_requests("too many requests from this address; try again later");
            budget.apply_headers(response.headers_mut());
            return response;
        }
        Ok(_) => {}
        Err(response) => return response,
    }
    let metadata: Map<String, Value> = match serde_json::from_slice(&body) {
        Ok(Value::Object(map)) => map,
        _ => return invalid_metadata("the body must be a JSON object of client metadata"),
    };
    let registration = match Registration::parse(&metadata) {
        Ok(registration) => registration,
        Err(response) => return response,
    };
    let now = state.oauth.clock.now();
    let client_id = uuid::Uuid::new_v4().simple().to_string();
    let secret = (registration.auth_method != ClientAuthMethod::None)
        .then(|| format!("octo_cs_{}", random_token(32).expose_secret()));
    let audit = AuditEvent {
        occurred_at: octogen_core::Timestamp::now(),
        org_id: None,
        actor: "anonymous".into(),
        action: "oauth.client_registered".into(),
        target: Some(client_id.clone()),
        client_addr: client.label(),
        detail: Some(json!({
            "client_name": registration.name,
            "token_endpoint_auth_method": registration.auth_method.as_str(),
            "redirect_uris": registration.redirect_uris.len(),
        })),
    };
    let stored = state
        .store
        .create_oauth_client(
            NewOAuthClient {
                id: client_id.clone(),
                kind: ClientKind::Registered,
                name: registration.name.clone(),
                redirect_uris: registration.redirect_uris.clone(),
                auth_method: registration.auth_method,
                secret_hash: secret.as_deref().map(|secret| hash(&state, CLIENT_SECRET_DOMAIN, secret)),
                metadata: json!({"grant_types": registration.grant_types}),
                now,
            },
            audit,
        )
        .await;
    if let Err(error) = stored {
        tracing::error!(error = %error, "cannot store an OAuth client");
        return oauth_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", "try again later");
    }
    housekeeping(&state).await;
    let mut body = registration.metadata();
    body.insert("client_id".into(), json!(client_id));
    body.insert("client_id_issued_at".into(), json!(now.millis() / 1000));
    if let Some(secret) = secret {
        body.insert("client_secret".into(), json!(secret));
        body.insert("client_secret_expires_at".into(), json!(0));
    }
    let mut response = (StatusCode::CREATED, Json(Value::Object(body))).into_response();
    no_store(response.headers_mut());
    response
}

/// The client metadata this server uses; everything else a client sends is dropped.
struct Registration {
    redirect_uris: Vec<String>,
    auth_method: ClientAuthMethod,
    grant_types: Vec<String>,
    name: Option<String>,
}

impl Registration {
    /// The rules every client's metadata meets, registered or from a document.
    fn parse(metadata: &Map<String, Value>) -> Result<Registration, Response> {
        let redirect_uris = redirect_uris(metadata.get("redirect_uris"))?;
        let auth_method = match metadata.get("token_endpoint_auth_method") {
            None => ClientAuthMethod::ClientSecretBasic,
            Some(Value::String(method)) => ClientAuthMethod::parse(method).ok_or_else(|| {
                invalid_metadata("token_endpoint_auth_method must be none, client_secret_post or client_secret_basic")
            })?,
            Some(_) => return Err(invalid_metadata("token_endpoint_auth_method must be a string")),
        };
        let grant_types = match metadata.get("grant_types") {
            None => vec!["authorization_code".to_string()],
            Some(Value::Array(items)) => {
                let grants: Vec<String> = items.iter().filter_map(|item| item.as_str().map(str::to_string)).collect();
                if grants.len() != items.len()
                    || grants.is_empty()
                    || grants.iter().any(|grant| grant != "authorization_code" && grant != "refresh_token")
                {
                    return Err(invalid_metadata("grant_types may list only authorization_code and refresh_token"));
                }
                // Each kind once, in the client's order: a long list of repeats is not stored.
                let mut unique: Vec<String> = Vec::new();
                for grant in grants {
                    if !unique.contains(&grant) {
                        unique.push(grant);
                    }
                }
                unique
            }
            Some(_) => return Err(invalid_metadata("grant_types must be a list")),
        };
        if !grant_types.iter().any(|grant| grant == "authorization_code") {
            return Err(invalid_metadata("grant_types must include authorization_code"));
        }
        match metadata.get("response_types") {
            None => {}
            Some(Value::Array(items)) if items.iter().all(|item| item == "code") && !items.is_empty() => {}
            Some(_) => return Err(invalid_metadata("response_types may list only code")),
        }
        let name = match metadata.get("client_name") {
            None | Some(Value::Null) => None,
            Some(Value::String(name))
                if name.chars().count() <= CLIENT_NAME_MAX_CHARS && !name.chars().any(char::is_control) =>
            {
                Some(name.trim().to_string()).filter(|name| !name.is_empty())
            }
            Some(_) => return Err(invalid_metadata("client_name must be a string of at most 200 characters")),
        };
        Ok(Registration { redirect_uris, auth_method, grant_types, name })
    }

    /// The registered metadata (RFC 7591 §3.2.1), as answered to the client.
    fn metadata(&self) -> Map<String, Value> {
        let mut metadata = Map::new();
        if let Some(name) = &self.name {
            metadata.insert("client_name".into(), json!(name));
        }
        metadata.insert("redirect_uris".into(), json!(self.redirect_uris));
        metadata.insert("token_endpoint_auth_method".into(), json!(self.auth_method.as_str()));
        metadata.insert("grant_types".into(), json!(self.grant_types));
        metadata.insert("response_types".into(), json!(["code"]));
        metadata
    }
}

/// `redirect_uris`: 1 to 10 URIs that follow the rules, at most 2 KB together.
fn redirect_uris(value: Option<&Value>) -> Result<Vec<String>, Response> {
    let uris: Vec<String> = match value {
        Some(Value::Array(items)) if !items.is_empty() && items.len() <= MAX_REDIRECT_URIS => items
            .iter()
            .map(|item| item.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| invalid_redirect("redirect_uris must be strings"))?,
        _ => return Err(invalid_redirect("redirect_uris must be a list of 1 to 10 URIs")),
    };
    if uris.iter().map(String::len).sum::<usize>() > REDIRECT_URIS_MAX_TOTAL_BYTES {
        return Err(invalid_redirect("redirect_uris may take at most 2048 bytes together"));
    }
    for uri in &uris {
        valid_redirect_uri(uri).map_err(|message| invalid_redirect(&message))?;
    }
    Ok(uris)
}

fn invalid_redirect(message: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_redirect_uri", message)
}

fn invalid_metadata(message: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_client_metadata", message)
}

/// Why a client id did not resolve to a client.
#[derive(Debug)]
pub enum ClientProblem {
    Unknown,
    /// A metadata document that could not be fetched or is not acceptable (the reason is for people).
    Document(String),
    /// The requester's address has had too many metadata documents fetched this minute.
    Throttled(Budget),
    Internal(anyhow::Error),
}

/// A client as an authorization request sees it.
#[derive(Debug)]
pub struct ResolvedClient {
    pub id: String,
    pub name: Option<String>,
    pub redirect_uris: Vec<String>,
    /// Known by its metadata document (not stored until a person approves it).
    pub document: bool,
    /// A person has approved it before. Until then anyone could have registered it,
    /// with any redirect URI: errors are shown on this server, not sent there.
    pub approved: bool,
}

/// Metadata documents fetched per minute for one client address. Anyone may
/// send an authorization request, and each one naming a document URL makes
/// this server fetch it: unthrottled, that is a way to make it send requests
/// (and wait on slow hosts) at the sender's pace.
const METADATA_FETCHES_PER_MINUTE: u32 = 10;

/// The client behind a `client_id`: a registered one, or (for an https URL) the
/// one its metadata document describes, fetched now (the fetch is charged to
/// `requester`'s address). Nothing is stored here: an authorization request is
/// anonymous.
pub async fn resolve_client(
    state: &AppState,
    client_id: &str,
    requester: &ClientAddr,
) -> Result<ResolvedClient, ClientProblem> {
    let stored =
        state.store.get_oauth_client(client_id).await.map_err(|error| ClientProblem::Internal(error.into()))?;
    let approved = stored.as_ref().is_some_and(|client| client.last_used_at.is_some());
    if state.oauth.fetcher.is_metadata_url(client_id) {
        let key = format!("oauth-metadata-fetch:{}", requester.bucket());
        let budget = state.limiter.take(&key, METADATA_FETCHES_PER_MINUTE).await.map_err(ClientProblem::Internal)?;
        if !budget.allowed() {
            return Err(ClientProblem::Throttled(budget));
        }
        let document = state.oauth.fetcher.fetch(client_id).await.map_err(ClientProblem::Document)?;
        let registration = Registration::parse(&document).map_err(|_| {
            ClientProblem::Document("its redirect_uris, grant_types or client_name break this server's rules".into())
        })?;
        if registration.auth_method != ClientAuthMethod::None || document.contains_key("client_secret") {
            return Err(ClientProblem::Document("token_endpoint_auth_method must be none".into()));
        }
        return Ok(ResolvedClient {
            id: client_id.to_string(),
            name: registration.name,
            redirect_uris: registration.redirect_uris,
            document: true,
            approved,
        });
    }
    match stored {
        Some(client) if client.kind == ClientKind::Registered => Ok(ResolvedClient {
            id: client.id,
            name: client.name,
            redirect_uris: client.redirect_uris,
            document: false,
            approved,
        }),
        _ => Err(ClientProblem::Unknown),
    }
}

/// Stores (or refreshes) a client known by its metadata document, once a person
/// approved it: grants and tokens refer to it from then on. Only what the
/// approval needs is kept: its name and the redirect URI it was approved for.
pub async fn remember_document_client(
    state: &AppState,
    client_id: &str,
    name: Option<String>,
    redirect_uri: &str,
) -> anyhow::Result<()> {
    state
        .store
        .put_oauth_client(NewOAuthClient {
            id: client_id.to_string(),
            kind: ClientKind::MetadataDocument,
            name,
            redirect_uris: vec![redirect_uri.to_string()],
            auth_method: ClientAuthMethod::None,
            secret_hash: None,
            metadata: json!({}),
            now: state.oauth.clock.now(),
        })
        .await?;
    Ok(())
}

/// The page for a requester whose metadata document fetches are throttled: 429 with the budget's headers.
pub fn throttled(budget: Budget) -> Response {
    let message = "Too many applications were looked up from your address; try again in a minute.";
    let mut response = crate::portal::PortalError::BadRequest(message.into()).into_response();
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    budget.apply_headers(response.headers_mut());
    response
}

/// Client authentication at the token endpoint (RFC 6749 §2.3): HTTP Basic or
/// form fields, as the client registered; public clients send only their id.
/// A failure is 401 `invalid_client`.
pub async fn authenticate_client(
    state: &AppState,
    headers: &HeaderMap,
    form_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<OAuthClient, Response> {
    let basic = basic_credentials(headers);
    if basic.is_some() && form_secret.is_some() {
        return Err(invalid_client("use one client authentication method"));
    }
    let (client_id, secret, method) = match &basic {
        Some((id, secret)) => {
            if form_id.is_some_and(|form_id| form_id != id) {
                return Err(invalid_client("client_id differs from the Authorization header"));
            }
            (id.as_str(), Some(secret.as_str()), ClientAuthMethod::ClientSecretBasic)
        }
        None => {
            let Some(id) = form_id else { return Err(invalid_client("client_id is required")) };
            let method =
                if form_secret.is_some() { ClientAuthMethod::ClientSecretPost } else { ClientAuthMethod::None };
            (id, form_secret, method)
        }
    };
    let client = match state.store.get_oauth_client(client_id).await {
        Ok(Some(client)) => client,
        Ok(None) => return Err(invalid_client("unknown client")),
        Err(error) => {
            tracing::error!(error = %error, "cannot read an OAuth client");
            return Err(oauth_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", "try again later"));
        }
    };
    let verified = match (client.auth_method, method, secret, &client.secret_hash) {
        (ClientAuthMethod::None, ClientAuthMethod::None, None, _) => true,
        (registered, used, Some(secret), Some(stored)) if registered == used => {
            let presented = hash(state, CLIENT_SECRET_DOMAIN, secret);
            presented.as_bytes().ct_eq(stored.as_bytes()).into()
        }
        _ => false,
    };
    if !verified {
        return Err(invalid_client("client authentication failed"));
    }
    Ok(client)
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |text: &str| {
        url::form_urlencoded::parse(format!("v={text}").as_bytes()).next().map(|(_, value)| value.into_owned())
    };
    Some((unescape(id)?, unescape(secret)?))
}

fn invalid_client(message: &str) -> Response {
    let mut response = oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", message);
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"octogen\""));
    response
}

/// Fetches client ID metadata documents through the safe fetcher
/// (`octogen-fetch`: public addresses only, every IP form and tunnel checked,
/// no proxies): https only — or http to a `host:port` listed in
/// `fetch_allow_private`, such as a test's loopback server — with no
/// redirects, short timeouts and a size cap, so a client id cannot make the
/// server probe its own network.
pub struct MetadataFetcher {
    fetcher: Fetcher,
}

impl MetadataFetcher {
    pub fn new(allow: AllowPrivate) -> anyhow::Result<MetadataFetcher> {
        let limits = Limits {
            connect_timeout: Duration::from_secs(3),
            read_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(5),
            max_body_bytes: METADATA_MAX_BYTES as u64,
            max_redirects: 0,
        };
        let user_agent = concat!("octogen/", env!("CARGO_PKG_VERSION"), " (OAuth client metadata)");
        Ok(MetadataFetcher { fetcher: Fetcher::new(user_agent, limits, allow)? })
    }

    /// Whether a client id names a metadata document (rather than a registered client).
    pub fn is_metadata_url(&self, client_id: &str) -> bool {
        client_id.starts_with("https://")
            || (client_id.starts_with("http://")
                && url::Url::parse(client_id).is_ok_and(|url| self.fetcher.allows_private(&url)))
    }

    pub async fn fetch(&self, client_id: &str) -> Result<Map<String, Value>, String> {
        let url = url::Url::parse(client_id).map_err(|_| "the client id is not a URL".to_string())?;
        if url.scheme() != "https" && !(url.scheme() == "http" && self.fetcher.allows_private(&url)) {
            return Err("the client id must be an https URL".into());
        }
        if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
            return Err("the client id URL may not have a fragment or credentials".into());
        }
        if matches!(url.path(), "" | "/") || url.path().split('/').any(|segment| segment == "." || segment == "..") {
            return Err("the client id URL must have a path (and no dot segments)".into());
        }
        let accept = HeaderValue::from_static("application/json");
        let response =
            self.fetcher.get(client_id).header(header::ACCEPT, accept).send().await.map_err(fetch_problem)?;
        if response.status() != StatusCode::OK {
            return Err(format!("fetching the metadata document gave HTTP {}", response.status().as_u16()));
        }
        let body = response.bytes().await.map_err(fetch_problem)?;
        let document: Map<String, Value> = match serde_json::from_slice(&body) {
            Ok(Value::Object(map)) => map,
            _ => return Err("the metadata document is not a JSON object".into()),
        };
        if document.get("client_id").and_then(Value::as_str) != Some(client_id) {
            return Err("the metadata document's client_id is not its own URL".into());
        }
        Ok(document)
    }
}

/// A failed fetch, for the person at the authorization page: the kind of
/// failure, not the addresses or causes behind it.
fn fetch_problem(error: FetchError) -> String {
    match error {
        FetchError::Refused { .. } => "the client id URL points at a private address".into(),
        FetchError::TooLarge { .. } => format!("the metadata document is larger than {METADATA_MAX_BYTES} bytes"),
        FetchError::Timeout { .. } => "the metadata document could not be fetched (timed out)".into(),
        FetchError::Transport { .. } => "the metadata document could not be fetched (connection failed)".into(),
        _ => "the metadata document could not be fetched (request failed)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_follow_the_rules() {
        for good in [
            "https://client.example/callback",
            "http://127.0.0.1/callback",
            "http://localhost:3030/cb",
            "http://[::1]:9/cb",
            "com.example.agent:/oauth",
            "io.github.octo-agent://cb",
        ] {
            assert!(valid_redirect_uri(good).is_ok(), "{good}");
        }
        let long = format!("https://client.example/{}", "a".repeat(REDIRECT_URI_MAX_BYTES));
        for bad in [
            "http://client.example/callback",
            "https://client.example/cb#frag",
            "javascript:alert(1)",
            "data:text/html,x",
            "/relative",
            "file:///etc/passwd",
            "ms-appinstaller:?source=https://evil.example/x.appinstaller",
            "ms-settings:privacy",
            "myapp:/callback",
            "com:/callback",
            "com..app:/callback",
            "1com.example:/callback",
            long.as_str(),
        ] {
            assert!(valid_redirect_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn redirects_match_exactly_or_on_any_loopback_port() {
        let registered = vec!["http://127.0.0.1/callback".to_string(), "https://client.example/cb".to_string()];
        assert!(redirect_matches(&registered, "http://127.0.0.1/callback"));
        assert!(redirect_matches(&registered, "http://127.0.0.1:53211/callback"));
        assert!(redirect_matches(&registered, "https://client.example/cb"));
        for bad in [
            "http://127.0.0.1:53211/other",
            "http://localhost:53211/callback",
            "https://client.example/cb/",
            "https://client.example:444/cb",
            "https://client.example/cb?x=1",
            "http://127.0.0.1:1/callback#x",
        ] {
            assert!(!redirect_matches(&registered, bad), "{bad}");
        }
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let mut headers = HeaderMap::new();
        let value = format!("Basic {}", STANDARD.encode("my%20client:s%3Acret"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&value).unwrap());
        assert_eq!(basic_credentials(&headers), Some(("my client".into(), "s:cret".into())));
    }
}

//! The OAuth 2.1 authorization server behind `/mcp`: discovery, registration,
//! client ID metadata documents, authorize → consent → code → token, PKCE,
//! redirect rules, single-use codes, rotating refresh tokens, and how tokens
//! end. Every rule of issue 9's point 2 has a negative test here or in `mcp.rs`.

use std::collections::{BTreeMap, HashMap};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{test_config, TestApp};

pub const PASSWORD: &str = "correct horse battery staple";
pub const VERIFIER: &str = "a-verifier-of-at-least-forty-three-characters-0123456789";
pub const REDIRECT: &str = "http://127.0.0.1/callback";

pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn location(&self) -> String {
        self.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> String {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
    }

    /// The query parameters of the `Location` header.
    pub fn redirect_params(&self) -> HashMap<String, String> {
        let location = url::Url::parse(&self.location()).unwrap_or_else(|_| panic!("not a URL: {}", self.location()));
        location.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    }
}

/// A person in a browser: cookies kept, redirects not followed, same-origin form posts.
pub struct Person {
    pub base: String,
    http: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

impl Person {
    pub async fn signed_in(app: &TestApp, email: &str) -> Person {
        Self::signed_in_at(&app.base, email).await
    }

    pub async fn signed_in_at(base: &str, email: &str) -> Person {
        let mut person = Person { base: base.to_string(), http: no_redirects(), cookies: BTreeMap::new() };
        let form = person.get("/login").await;
        let csrf = csrf_of(&form.body);
        let reply = person.post("/login", &[("csrf", &csrf), ("email", email), ("password", PASSWORD)]).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "sign-in: {}", reply.body);
        person
    }

    pub async fn send(&mut self, request: reqwest::RequestBuilder) -> Reply {
        let mut request = request;
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            request = request.header("cookie", jar.join("; "));
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let headers = response.headers().clone();
        for cookie in headers.get_all("set-cookie") {
            let cookie = cookie.to_str().unwrap();
            let (name, value) = cookie.split(';').next().unwrap().split_once('=').unwrap();
            if value.is_empty() || cookie.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.into(), value.into());
            }
        }
        Reply { status, headers, body: response.text().await.unwrap_or_default() }
    }

    pub async fn get(&mut self, path_or_url: &str) -> Reply {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_string()
        } else {
            format!("{}{path_or_url}", self.base)
        };
        let request = self.http.get(url);
        self.send(request).await
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("origin", &self.base)
            .header("sec-fetch-site", "same-origin")
            .form(fields);
        self.send(request).await
    }

    pub async fn sign_out(&mut self) {
        let page = self.get("/keys").await;
        let csrf = csrf_of(&page.body);
        let reply = self.post("/logout", &[("csrf", &csrf)]).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
    }
}

pub fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).unwrap_or_else(|| panic!("no CSRF field in:\n{html}")) + marker.len();
    html[start..start + 64].to_string()
}

/// An OAuth client (an MCP client such as Claude Code) registered with the server.
pub struct Agent {
    pub base: String,
    pub http: reqwest::Client,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub redirect_uri: String,
}

#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

impl Agent {
    /// A public client (PKCE only) registered by RFC 7591 with `REDIRECT`.
    pub async fn register(base: &str) -> Agent {
        Self::register_with(
            base,
            json!({"client_name": "Test Agent", "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "refresh_token"]}),
        )
        .await
    }

    pub async fn register_with(base: &str, metadata: Value) -> Agent {
        let http = no_redirects();
        let response = http.post(format!("{base}/oauth2/register")).json(&metadata).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        Agent {
            base: base.to_string(),
            http,
            client_id: body["client_id"].as_str().unwrap().to_string(),
            client_secret: body["client_secret"].as_str().map(str::to_string),
            redirect_uri: metadata["redirect_uris"][0].as_str().unwrap().to_string(),
        }
    }

    /// The authorization request's query parameters, before `extra` overrides (a `None` value removes one).
    pub fn authorize_path(&self, extra: &[(&str, Option<&str>)]) -> String {
        let challenge = challenge(VERIFIER);
        let resource = format!("{}/mcp", self.base);
        let mut params: Vec<(String, String)> = [
            ("response_type", "code"),
            ("client_id", self.client_id.as_str()),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("state", "state-123"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("resource", resource.as_str()),
            ("scope", "catalog"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (name, value) in extra {
            params.retain(|(k, _)| k != name);
            if let Some(value) = value {
                params.push((name.to_string(), value.to_string()));
            }
        }
        let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
        format!("/oauth2/authorize?{query}")
    }

    /// Authorize as `person` (choosing `org` when given) and approve: the redirect back to the client.
    pub async fn approve(&self, person: &mut Person, extra: &[(&str, Option<&str>)], org: Option<&str>) -> Reply {
        let started = person.get(&self.authorize_path(extra)).await;
        assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
        let consent_url = started.location();
        assert!(consent_url.starts_with("/oauth2/consent?request="), "{consent_url}");
        let page = person.get(&consent_url).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let request = consent_url.trim_start_matches("/oauth2/consent?request=").to_string();
        let csrf = csrf_of(&page.body);
        let mut fields = vec![("csrf", csrf.as_str()), ("request", request.as_str()), ("decision", "allow")];
        if let Some(org) = org {
            fields.push(("org", org));
        }
        person.post("/oauth2/consent", &fields).await
    }

    /// The code of an approved authorization (checking `state` and `iss`).
    pub async fn code(&self, person: &mut Person) -> String {
        let back = self.approve(person, &[], None).await;
        assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.body);
        assert!(back.location().starts_with(&self.redirect_uri), "{}", back.location());
        let params = back.redirect_params();
        assert_eq!(params["state"], "state-123");
        assert_eq!(params["iss"], self.base);
        params["code"].clone()
    }

    pub async fn token(&self, fields: &[(&str, &str)]) -> Reply {
        let mut form: Vec<(&str, &str)> = vec![("client_id", self.client_id.as_str())];
        if let Some(secret) = &self.client_secret {
            form.push(("client_secret", secret));
        }
        form.extend_from_slice(fields);
        let response = self.http.post(format!("{}/oauth2/token", self.base)).form(&form).send().await.unwrap();
        Reply { status: response.status(), headers: response.headers().clone(), body: response.text().await.unwrap() }
    }

    pub async fn exchange(&self, code: &str) -> Reply {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &self.redirect_uri),
            ("code_verifier", VERIFIER),
        ])
        .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Reply {
        self.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token)]).await
    }

    /// The whole flow for a signed-in person: tokens.
    pub async fn connect(&self, person: &mut Person) -> Tokens {
        let code = self.code(person).await;
        tokens(&self.exchange(&code).await)
    }
}

pub fn tokens(reply: &Reply) -> Tokens {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let body = reply.json();
    Tokens {
        access: body["access_token"].as_str().unwrap().to_string(),
        refresh: body["refresh_token"].as_str().unwrap().to_string(),
    }
}

/// A member (`role`) of `org` who can sign in with `PASSWORD`; returns the user id.
pub async fn member(app: &TestApp, email: &str, org: &str) -> String {
    let body = json!({"email": email, "password": PASSWORD, "org": org, "role": "member"});
    let (status, user) = app.admin(Method::POST, "/users", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    user["id"].as_str().unwrap().to_string()
}

/// A server with test hooks, a partner with the sample catalog, and one of its members signed in.
pub async fn partner_app() -> (TestApp, String, Person) {
    partner_app_fetching_from("").await
}

/// Like `partner_app`, with `fetch_allow_private` listing `targets` (a test's loopback servers).
pub async fn partner_app_fetching_from(targets: &str) -> (TestApp, String, Person) {
    let data_dir = tempfile::tempdir().unwrap();
    let config = octogen_server::Config {
        insecure_test_hooks: true,
        fetch_allow_private: targets.parse().unwrap(),
        ..test_config(data_dir.path())
    };
    let app = TestApp::spawn_with(config, data_dir).await;
    let (org, _) = app.partner_with_northwind("northwind").await;
    member(&app, "agent-owner@acme.test", &org).await;
    let person = Person::signed_in(&app, "agent-owner@acme.test").await;
    (app, org, person)
}

/// A JSON-RPC request to `/mcp` with `authorization` (a raw header value) and extra headers.
pub async fn mcp_raw(app: &TestApp, authorization: Option<&str>, headers: &[(&str, &str)], body: Value) -> Reply {
    let mut request = no_redirects()
        .post(app.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .json(&body);
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    Reply { status: response.status(), headers: response.headers().clone(), body: response.text().await.unwrap() }
}

pub async fn tools_list(app: &TestApp, token: &str) -> Reply {
    mcp_raw(app, Some(&format!("Bearer {token}")), &[], json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .await
}

async fn advance_clock(app: &TestApp, seconds: i64) {
    let response = app
        .http
        .post(app.url("/_test/clock"))
        .bearer_auth(&app.admin_token)
        .json(&json!({"seconds": seconds}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

fn assert_challenge(reply: &Reply, base: &str, error: Option<&str>) {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    let header = reply.header("www-authenticate");
    let metadata = format!("{base}/.well-known/oauth-protected-resource/mcp");
    assert!(header.starts_with(&format!("Bearer resource_metadata=\"{metadata}\", scope=\"catalog\"")), "{header}");
    match error {
        Some(error) => assert!(header.contains(&format!("error=\"{error}\"")), "{header}"),
        None => assert!(!header.contains("error="), "{header}"),
    }
}

fn oauth_error(reply: &Reply) -> String {
    reply.json()["error"].as_str().unwrap_or_default().to_string()
}

// --- Discovery and registration ----------------------------------------------------------------

#[tokio::test]
async fn metadata_names_the_mcp_resource_and_s256_only() {
    let app = TestApp::spawn().await;
    for path in ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"] {
        let prm: Value = app.http.get(app.url(path)).send().await.unwrap().json().await.unwrap();
        assert_eq!(prm["resource"], app.url("/mcp"), "{path}");
        assert_eq!(prm["authorization_servers"], json!([app.base]));
        assert_eq!(prm["bearer_methods_supported"], json!(["header"]));
    }
    let asm: Value =
        app.http.get(app.url("/.well-known/oauth-authorization-server")).send().await.unwrap().json().await.unwrap();
    assert_eq!(asm["issuer"], app.base);
    assert_eq!(asm["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(asm["response_types_supported"], json!(["code"]));
    assert_eq!(asm["grant_types_supported"], json!(["authorization_code", "refresh_token"]));
    assert_eq!(asm["authorization_response_iss_parameter_supported"], true);
    assert_eq!(asm["client_id_metadata_document_supported"], true);
    for endpoint in ["authorization_endpoint", "token_endpoint", "registration_endpoint"] {
        assert!(asm[endpoint].as_str().unwrap().starts_with(&app.base), "{endpoint}");
    }
}

#[tokio::test]
async fn a_public_url_decides_issuer_and_resource() {
    let data_dir = tempfile::tempdir().unwrap();
    let config =
        octogen_server::Config { public_url: Some("https://octo.example".into()), ..test_config(data_dir.path()) };
    let app = TestApp::spawn_with(config, data_dir).await;
    let prm: Value =
        app.http.get(app.url("/.well-known/oauth-protected-resource")).send().await.unwrap().json().await.unwrap();
    assert_eq!(prm["resource"], "https://octo.example/mcp");
    assert_eq!(prm["authorization_servers"], json!(["https://octo.example"]));
    let reply = mcp_raw(&app, None, &[], json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})).await;
    assert_challenge(&reply, "https://octo.example", None);
}

#[tokio::test]
async fn registration_follows_rfc_7591_and_the_redirect_rules() {
    let app = TestApp::spawn().await;
    let register = |body: Value| {
        let http = app.http.clone();
        let url = app.url("/oauth2/register");
        async move {
            let response = http.post(url).json(&body).send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    let (status, confidential) =
        register(json!({"client_name": "Desk", "redirect_uris": ["https://desk.example/cb"]})).await;
    assert_eq!(status, StatusCode::CREATED, "{confidential}");
    assert_eq!(confidential["token_endpoint_auth_method"], "client_secret_basic", "RFC 7591's default");
    assert!(confidential["client_secret"].as_str().unwrap().starts_with("octo_cs_"));
    assert_eq!(confidential["client_secret_expires_at"], 0);
    assert_eq!(confidential["grant_types"], json!(["authorization_code"]));
    let (_, public) =
        register(json!({"redirect_uris": ["http://localhost:9999/cb"], "token_endpoint_auth_method": "none"})).await;
    assert!(public.get("client_secret").is_none(), "{public}");
    for (body, error) in [
        (json!({}), "invalid_redirect_uri"),
        (json!({"redirect_uris": []}), "invalid_redirect_uri"),
        (json!({"redirect_uris": ["http://evil.example/cb"]}), "invalid_redirect_uri"),
        (json!({"redirect_uris": ["https://a.example/cb#x"]}), "invalid_redirect_uri"),
        (json!({"redirect_uris": ["javascript:alert(1)"]}), "invalid_redirect_uri"),
        (json!({"redirect_uris": [REDIRECT], "grant_types": ["implicit"]}), "invalid_client_metadata"),
        (json!({"redirect_uris": [REDIRECT], "grant_types": ["client_credentials"]}), "invalid_client_metadata"),
        (json!({"redirect_uris": [REDIRECT], "response_types": ["token"]}), "invalid_client_metadata"),
        (
            json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
        ),
        (json!([1, 2]), "invalid_client_metadata"),
    ] {
        let (status, reply) = register(body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {reply}");
        assert_eq!(reply["error"], error, "{body}: {reply}");
    }
}

// --- The authorization code flow ----------------------------------------------------------------

#[tokio::test]
async fn the_full_flow_issues_short_lived_tokens_for_the_mcp_resource() {
    let (app, _org, mut person) = partner_app().await;
    let agent = Agent::register(&app.base).await;
    let code = agent.code(&mut person).await;
    assert!(code.starts_with("octo_ac_"));
    let reply = agent.exchange(&code).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.header("cache-control"), "no-store");
    let body = reply.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300, "about five minutes");
    assert_eq!(body["scope"], "catalog");
    let tokens = tokens(&reply);
    assert!(tokens.access.starts_with("octo_at_") && tokens.refresh.starts_with("octo_rt_"));
    assert_eq!(tools_list(&app, &tokens.access).await.status, StatusCode::OK);
    // Access tokens are for /mcp only: the REST API takes API keys.
    assert_eq!(app.catalogs(&tokens.access).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn sign_in_comes_first_and_returns_to_consent() {
    let (app, _org, _) = partner_app().await;
    let agent = Agent::register(&app.base).await;
    let mut stranger = Person { base: app.base.clone(), http: no_redirects(), cookies: BTreeMap::new() };
    let started = stranger.get(&agent.authorize_path(&[])).await;
    let consent = started.location();
    let page = stranger.get(&consent).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let login = page.location();
    assert!(login.starts_with("/login?next="), "{login}");
    let form = stranger.get(&login).await;
    let csrf = csrf_of(&form.body);
    let next = url::Url::parse(&format!("{}{login}", app.base)).unwrap().query_pairs().next().unwrap().1.into_owned();
    let signed_in = stranger
        .post("/login", &[("csrf", &csrf), ("email", "agent-owner@acme.test"), ("password", PASSWORD), ("next", &next)])
        .await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    assert_eq!(signed_in.location(), consent, "back to the consent screen after signing in");
    assert_eq!(stranger.get(&consent).await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_consent_screen_is_csrf_protected_and_not_frameable() {
    let (app, _org, mut person) = partner_app().await;
    let agent = Agent::register(&app.base).await;
    let consent = person.get(&agent.authorize_path(&[])).await.location();
    let page = person.get(&consent).await;
    assert_eq!(page.header("x-frame-options"), "DENY");
    let csp = page.header("content-security-policy");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(
        csp.contains("form-action 'self' http://127.0.0.1"),
        "the form may send the browser back to the client: {csp}"
    );
    assert_eq!(page.header("cache-control"), "no-store");
    assert_eq!(page.header("referrer-policy"), "no-referrer");
    assert!(page.body.contains("Test Agent") && page.body.contains("Partner of northwind"), "{}", page.body);
    let request = consent.trim_start_matches("/oauth2/consent?request=");
    // No token, a wrong token, or another site's post: refused, and nothing is issued.
    for fields in [
        vec![("request", request), ("decision", "allow")],
        vec![("csrf", &"0".repeat(64)), ("request", request), ("decision", "allow")],
    ] {
        let reply = person.post("/oauth2/consent", &fields).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    }
    let csrf = csrf_of(&page.body);
    let cross_site = person
        .send(no_redirects().post(app.url("/oauth2/consent")).header("origin", "https://evil.example").form(&[
            ("csrf", csrf.as_str()),
            ("request", request),
            ("decision", "allow"),
        ]))
        .await;
    assert_eq!(cross_site.status, StatusCode::FORBIDDEN);
    // The request is still open: the real answer works once, and only once.
    let allowed = person.post("/oauth2/consent", &[("csrf", &csrf), ("request", request), ("decision", "allow")]).await;
    assert_eq!(allowed.status, StatusCode::SEE_OTHER, "{}", allowed.body);
    assert!(allowed.redirect_params().contains_key("code"));
    let again = person.post("/oauth2/consent", &[("csrf", &csrf), ("request", request), ("decision", "allow")]).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn denying_sends_access_denied_with_state_and_iss() {
    let (app, _org, mut person) = partner_app().await;
    let agent = Agent::register(&app.base).await;
    let consent = person.get(&agent.authorize_path(&[])).await.location();
    let page = person.get(&consent).await;
    let request = consent.trim_start_matches("/oauth2/consent?request=");
    let denied = person
        .post("/oauth2/consent", &[("csrf", &csrf_of(&page.body)), ("request", request), ("decision", "deny")])
        .await;
    let params = denied.redirect_params();
    assert_eq!((params["error"].as_str(), params["state"].as_str()), ("access_denied", "state-123"));
    assert_eq!(params["iss"], app.base);
    assert!(!params.contains_key("code"));
}

#[tokio::test]
async fn users_in_several_organizations_pick_one() {
    let (app, org, mut person) = partner_app().await;
    let other = app.partner("Second Partner").await;
    let (_, user) = app.admin(Method::GET, "/users", None).await;
    let user_id = user.as_array().unwrap().iter().find(|u| u["email"] == "agent-owner@acme.test").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) =
        app.admin(Method::PUT, &format!("/users/{user_id}/memberships/{other}"), Some(json!({"role": "member"}))).await;
    assert_eq!(status, StatusCode::OK);
    let agent = Agent::register(&app.base).await;
    let consent = person.get(&agent.authorize_path(&[])).await.location();
    let page = person.get(&consent).await;
    assert!(page.body.contains("id=\"org-picker\"") && page.body.contains("Second Partner"), "{}", page.body);
    // Choosing an organization the user is not in is refused.
    let stranger_org = app.partner("Not Mine").await;
    let request = consent.trim_start_matches("/oauth2/consent?request=");
    let csrf = csrf_of(&page.body);
    let refused = person
        .post(
            "/oauth2/consent",
            &[("csrf", &csrf), ("request", request), ("decision", "allow"), ("org", &stranger_org)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    // The second partner has no catalogs: its token lists none; the first sees northwind.
    let back = agent.approve(&mut person, &[], Some(&other)).await;
    let second = tokens(&agent.exchange(&back.redirect_params()["code"]).await);
    let back = agent.approve(&mut person, &[], Some(&org)).await;
    let first = tokens(&agent.exchange(&back.redirect_params()["code"]).await);
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "list_catalogs", "arguments": {}}});
    let second = mcp_raw(&app, Some(&format!("Bearer {}", second.access)), &[], list.clone()).await.json();
    assert_eq!(second["result"]["structuredContent"], json!({"catalogs": []}), "{second}");
    let first = mcp_raw(&app, Some(&format!("Bearer {}", first.access)), &[], list).await.json();
    assert_eq!(first["result"]["structuredContent"]["catalogs"][0]["catalog"], "northwind", "{first}");
}

// --- Negative tests of every rule ---------------------------------------------------------------

#[tokio::test]
async fn pkce_is_required_and_s256_only() {
    let (app, _org, mut person) = partner_app().await;
    let agent = Agent::register(&app.base).await;
    // Errors go back to a client once someone has approved it (see the open-redirect test).
    agent.connect(&mut person).await;
    for (extra, description) in [
        (vec![("code_challenge", None), ("code_challenge_method", None)], "PKCE is required"),
        (vec![("code_challenge_method", None)], "code_challenge_method must be S256"),
        (
            vec![("code_challenge_method", Some("plain")), ("code_challenge", Some(VERIFIER))],
            "code_challenge_method must be S256",
        ),
        (vec![("code_challenge", Some("short"))], "code_challenge must be"),
    ] {
        let reply = person.get(&agent.authorize_path(&extra)).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        let params = reply.redirect_params();
        assert_eq!(params["error"], "invalid_request", "{extra:?}");
        assert!(params["error_description"].starts_with(description), "{params:?}");
        assert_eq!((params["state"].as_str(), params["iss"].as_str()), ("state-123", app.base.as_str()));
    }
    // A wrong verifier fails, and burns the code: the right one no longer works either.
    let code = agent.code(&mut person).await;
    let wrong = agent
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", "another-verifier-that-is-long-enough-to-be-well-formed-000"),
        ])
        .await;
    assert_eq!((wrong.status, oauth_error(&wrong)), (StatusCode::BAD_REQUEST, "invalid_grant".into()));
    let right = agent.exchange(&code).await;
    assert_eq!((right.status, oauth_error(&right)), (StatusCode::BAD_REQUEST, "invalid_grant".into()), "burnt");
    // A missing verifier, and the challenge itself sent as a (plain) verifier, fail too.
    let code = agent.code(&mut person).await;
    let missing =
        agent.token(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)]).await;
    assert_eq!(oauth_error(&missing), "invalid_grant");
    let code = agent.code(&mut person).await;
    let plain = agent
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &challenge(VERIFIER)),
        ])
        .await;
    assert_eq!(oauth_error(&plain), "invalid_grant");
}

#[tokio::test]
async fn redirect_uris_match_exactly_with_loopback_on_any_port() {
    let (app, _org, mut person) = partner_app().await;
    let agent = Agent::register(&app.base).await;
    // Any port on the registered loopback URI.
    let back = agent.approve(&mut person, &[("redirect_uri", Some("http://127.0.0.1:53124/callback"))], None).await;
    assert!(back.location().starts_with("http://127.0.0.1:53124/callback?code="), "{}", back.location());
    let code = back.redirect_params()["code"].clone();
    // The token request must name the same redirect URI as the authorization request.
    let mismatch = agent
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .await;
    assert_eq!(oauth_error(&mismatch), "invalid_grant");
    // Anything else is refused on the server's own page, never redirected to.
    for uri in [
        "http://127.0.0.1:53124/other",
        "http://localhost/callback",
        "http://127.0.0.1/callback/",
        "https://evil.example/callback",
        "http://127.0.0.1/callback?x=1",
    ] {
        let reply = person.get(&agent.authorize_path(&[("redirect_uri", Some(uri))])).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(reply.location().is_empty(), "{uri}: never redirected");
        assert!(reply.body.contains("did not register"), "{}", reply.body);
    }
    // An https registration matches exactly, port included.
    let web = Agent::register_with(
        &app.base,
        json!({"redirect_uris": ["https://agent.example/cb"], "token_endpoint_auth_method": "none"}),
    )
    .await;
    let reply = person.get(&web.authorize_path(&[("redirect_uri", Some("https://agent.example:8443/cb"))])).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    // Unknown clients and repeated parameters are refused here too.
    let unknown = person.get(&agent.authorize_path(&[("client_id", Some("nope"))])).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    let repeated = person.get(&format!("{}&state=again", agent.authorize_path(&[]))).await;
    assert_eq!(repeated.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn codes_are_single_use_and_a_replay_revokes_what_they_issued() {
    let (app, _org, mut person) = partner_app().await;
    let agent = Agent::register(&app.base).await;
    let code = agent.code(&mut person).await;
    let first = tokens(&agent.exchange(&code).await);
    assert_eq!(tools_list(&app, &first.access).await.status, StatusCode::OK);
    let replay = agent.exchange(&code).await;
    assert_eq!((replay.status, oauth_error(&replay)), (StatusCode::BAD_REQUEST, "invalid_grant".into()));
    assert_challenge(&tools_list(&app, &first.access).await, &app.base, Some("invalid_token"));
    assert_eq!(oauth_error(&agent.refresh(&first.refresh).await), "invalid_grant", "the family is revoked");
    // Codes belong to their client: another client cannot redeem one (and burns it trying).
    let thief = Agent::register(&app.base).await;
    let code = agent.code(&mut person).await;
    assert_eq!(oauth_error(&thief.exchange(&code).await), "invalid_grant");
    assert_eq!(oauth_error(&agent.exchange(&code).await), "invalid_grant");
}

#[tokio::test]
async fn codes_expire() {
    let (app, _org, mut person) = partner_app().await;
    let agent = Agent::register(&app.base).await;
    let code = agent.code(&mut person).await;
    advance_clock(&app, 301).await;
    assert_eq!(oauth_error(&agent.exchange(&code).await), "invalid_grant");
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let (app, _org, mut person) = partner_app().await;
    let agent = Agent::register(&app.base).await;
    let first = agent.connect(&mut person).await;
    let second = tokens(&agent.refresh(&first.refresh).await);
    assert_ne!(second.refresh, first.refresh, "rotated");
    assert_eq!(tools_list(&app, &second.access).await.status, StatusCode::OK);
    let third = tokens(&agent.refresh(&second.refresh).await);
    // The spent refresh token comes back (a thief, or a replay): the whole family ends.
    let reuse = agent.refresh(&first.refresh).await;
    assert_eq!((reuse.status, oauth_error(&reuse)), (StatusCode::BAD_REQUEST, "invalid_grant".into()));
    assert_challenge(&tools_list(&app, &third.access).await, &app.base, Some("invalid_token"));
    assert_eq!(oauth_error(&agent.refresh(&third.refresh).await), "invalid_grant");
    // Another client cannot use someone's refresh token.
    let fresh = agent.connect(&mut person).await;
    let thief = Agent::register(&app.base).await;
    assert_eq!(oauth_error(&thief.refresh(&fresh.refresh).await), "invalid_grant");
    assert_eq!(agent.refresh(&fresh.refresh).await.status, StatusCode::OK, "the owner's token still works");
}

#[tokio::test]
async fn access_tokens_expire_after_about_five_minutes_and_refresh_brings_them_back() {
    let (app, _org, mut person) = partner_app().await;
    let agent = Agent::register(&app.base).await;
    let tokens_now = agent.connect(&mut person).await;
    advance_clock(&app, 240).await;
    assert_eq!(tools_list(&app, &tokens_now.access).await.status, StatusCode::OK, "four minutes in");
    advance_clock(&app, 61).await;
    let expired = tools_list(&app, &tokens_now.access).await;
    assert_challenge(&expired, &app.base, Some("invalid_token"));
    assert!(expired.header("www-authenticate").contains("expired"));
    let renewed = tokens(&agent.refresh(&tokens_now.refresh).await);
    assert_eq!(tools_list(&app, &renewed.access).await.status, StatusCode::OK);
}

#[tokio::test]
async fn tokens_end_with_sign_out_and_with_leaving_the_organization() {
    let (app, org, mut person) = partner_app().await;
    let agent = Agent::register(&app.base).await;
    let tokens_now = agent.connect(&mut person).await;
    person.sign_out().await;
    assert_challenge(&tools_list(&app, &tokens_now.access).await, &app.base, Some("invalid_token"));
    assert_eq!(oauth_error(&agent.refresh(&tokens_now.refresh).await), "invalid_grant");

    let user = member(&app, "leaver@acme.test", &org).await;
    let mut leaver = Person::signed_in(&app, "leaver@acme.test").await;
    let tokens_now = agent.connect(&mut leaver).await;
    assert_eq!(tools_list(&app, &tokens_now.access).await.status, StatusCode::OK);
    app.admin(Method::DELETE, &format!("/users/{user}/memberships/{org}"), None).await;
    assert_challenge(&tools_list(&app, &tokens_now.access).await, &app.base, Some("invalid_token"));
    assert_eq!(oauth_error(&agent.refresh(&tokens_now.refresh).await), "invalid_grant");
}

#[tokio::test]
async fn client_authentication_is_checked_for_confidential_clients() {
    let (app, _org, mut person) = partner_app().await;
    let post = Agent::register_with(
        &app.base,
        json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_post"}),
    )
    .await;
    let code = post.code(&mut person).await;
    let mut wrong = Agent { client_secret: Some("octo_cs_wrong".into()), ..Agent::register(&app.base).await };
    wrong.client_id = post.client_id.clone();
    let refused = wrong.exchange(&code).await;
    assert_eq!((refused.status, oauth_error(&refused)), (StatusCode::UNAUTHORIZED, "invalid_client".into()));
    let basic = Agent::register_with(&app.base, json!({"redirect_uris": [REDIRECT]})).await;
    let code = basic.code(&mut person).await;
    let secret = basic.client_secret.clone().unwrap();
    let response = basic
        .http
        .post(app.url("/oauth2/token"))
        .basic_auth(&basic.client_id, Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let unsupported = basic.token(&[("grant_type", "password")]).await;
    assert_eq!(oauth_error(&unsupported), "invalid_client", "a basic client must authenticate with Basic");
}

#[tokio::test]
async fn the_resource_parameter_must_be_the_mcp_endpoint() {
    let (app, _org, mut person) = partner_app().await;
    let agent = Agent::register(&app.base).await;
    agent.connect(&mut person).await;
    let reply = person.get(&agent.authorize_path(&[("resource", Some("https://other.example/mcp"))])).await;
    assert_eq!(reply.redirect_params()["error"], "invalid_target");
    let code = agent.code(&mut person).await;
    let other = agent
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("resource", "https://other.example/mcp"),
        ])
        .await;
    assert_eq!(oauth_error(&other), "invalid_target");
    // Without `resource` the token is for this server's MCP endpoint anyway.
    let back = agent.approve(&mut person, &[("resource", None)], None).await;
    let tokens_now = tokens(&agent.exchange(&back.redirect_params()["code"]).await);
    assert_eq!(tools_list(&app, &tokens_now.access).await.status, StatusCode::OK);
}

#[tokio::test]
async fn client_id_metadata_documents_are_fetched_and_checked() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (app, _org, mut person) = partner_app_fetching_from(&listener.local_addr().unwrap().to_string()).await;
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let client_id = format!("{base}/client.json");
    let documents = axum::Router::new()
        .route(
            "/client.json",
            axum::routing::get({
                let client_id = client_id.clone();
                move || async move {
                    axum::Json(json!({"client_id": client_id, "client_name": "Document Agent",
                        "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}))
                }
            }),
        )
        .route(
            "/wrong-id.json",
            axum::routing::get(|| async {
                axum::Json(json!({"client_id": "https://x.example/c", "redirect_uris": [REDIRECT]}))
            }),
        )
        .route("/huge.json", axum::routing::get(|| async { "x".repeat(100_000) }))
        .route(
            "/secret.json",
            axum::routing::get(|| async {
                axum::Json(json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_basic"}))
            }),
        );
    tokio::spawn(async move { axum::serve(listener, documents).await.unwrap() });
    let agent = Agent {
        base: app.base.clone(),
        http: no_redirects(),
        client_id: client_id.clone(),
        client_secret: None,
        redirect_uri: REDIRECT.into(),
    };
    let consent = person.get(&agent.authorize_path(&[])).await.location();
    let page = person.get(&consent).await;
    assert!(page.body.contains("Document Agent") && page.body.contains("127.0.0.1"), "{}", page.body);
    let tokens_now = agent.connect(&mut person).await;
    assert_eq!(tools_list(&app, &tokens_now.access).await.status, StatusCode::OK);
    for path in ["/wrong-id.json", "/huge.json", "/secret.json", "/missing.json"] {
        let reply = person.get(&agent.authorize_path(&[("client_id", Some(&format!("{base}{path}")))])).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}: {}", reply.body);
        assert!(reply.body.contains("metadata document"), "{path}: {}", reply.body);
    }
}

/// Client metadata documents on non-public addresses, in forms the old
/// fetcher let through (NAT64, 6to4, site-local, IPv4-compatible) or not.
#[tokio::test]
async fn metadata_documents_on_private_addresses_are_refused() {
    let (app, _org, mut person) = partner_app().await;
    // Without a listing a loopback http URL is not a metadata document at all (the test hooks do not change that).
    let agent = |client_id: &str| Agent {
        base: app.base.clone(),
        http: no_redirects(),
        client_id: client_id.into(),
        client_secret: None,
        redirect_uri: REDIRECT.into(),
    };
    let reply = person.get(&agent("http://127.0.0.1:9/client.json").authorize_path(&[])).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body.contains("not registered"), "{}", reply.body);
    for client_id in [
        "https://127.0.0.1:9/client.json",
        "https://2130706433:9/client.json",
        "https://[::ffff:127.0.0.1]:9/client.json",
        "https://[64:ff9b::7f00:1]:9/client.json",
        "https://[2002:7f00:1::]:9/client.json",
        "https://[fec0::1]:9/client.json",
        "https://[::127.0.0.1]:9/client.json",
        "https://[2001:0:7f00:1::]:9/client.json",
    ] {
        let reply = person.get(&agent(client_id).authorize_path(&[])).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{client_id}");
        assert!(reply.body.contains("points at a private address"), "{client_id}: {}", reply.body);
    }
}

#[tokio::test]
async fn anonymous_metadata_document_fetches_are_throttled_per_address() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (app, _org, _person) = partner_app_fetching_from(&address.to_string()).await;
    let client_id = format!("http://{address}/client.json");
    let fetches = std::sync::Arc::new(AtomicUsize::new(0));
    let documents = axum::Router::new().route(
        "/client.json",
        axum::routing::get({
            let (client_id, fetches) = (client_id.clone(), fetches.clone());
            move || async move {
                fetches.fetch_add(1, Ordering::SeqCst);
                axum::Json(
                    json!({"client_id": client_id, "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}),
                )
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, documents).await.unwrap() });
    let agent = Agent {
        base: app.base.clone(),
        http: no_redirects(),
        client_id,
        client_secret: None,
        redirect_uri: REDIRECT.into(),
    };
    // Nobody signed in: anyone may send these.
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let response = no_redirects().get(app.url(&agent.authorize_path(&[]))).send().await.unwrap();
        statuses.push((response.status().as_u16(), response.headers().contains_key("retry-after")));
    }
    assert_eq!(statuses[..10], [(303, false); 10], "{statuses:?}");
    assert_eq!(statuses[10..], [(429, true); 2], "{statuses:?}");
    assert_eq!(fetches.load(Ordering::SeqCst), 10, "a throttled request fetches nothing");
}

#[tokio::test]
async fn the_test_clock_needs_insecure_test_hooks() {
    let app = TestApp::spawn().await;
    let org = app.partner("Plain").await;
    member(&app, "plain@acme.test", &org).await;
    let mut person = Person::signed_in(&app, "plain@acme.test").await;
    let agent = Agent {
        base: app.base.clone(),
        http: no_redirects(),
        client_id: "http://127.0.0.1:9/client.json".into(),
        client_secret: None,
        redirect_uri: REDIRECT.into(),
    };
    let reply = person.get(&agent.authorize_path(&[])).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body.contains("not registered"), "{}", reply.body);
    // And the test clock does not exist.
    let clock = app
        .http
        .post(app.url("/_test/clock"))
        .bearer_auth(&app.admin_token)
        .json(&json!({"seconds": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(clock.status(), StatusCode::NOT_FOUND);
}

// --- Secrets ------------------------------------------------------------------------------------

#[tokio::test]
async fn no_code_token_verifier_or_client_secret_reaches_a_log_line_or_the_database() {
    let server = tokio::task::spawn_blocking(|| {
        let server = crate::helpers::ServerProcess::start_with_env(&[("OCTOGEN_LOG_LEVEL", "trace")]);
        server.partner_key();
        let org = server.cli(&["admin", "org", "list", "--json"]);
        let orgs: Value = serde_json::from_slice(&org.stdout).unwrap();
        let org = orgs.as_array().unwrap()[0]["id"].as_str().unwrap().to_string();
        let user = server.cli(&[
            "admin",
            "user",
            "create",
            "--email",
            "canary@acme.test",
            "--org",
            &org,
            "--password",
            PASSWORD,
        ]);
        assert!(user.status.success(), "{}", String::from_utf8_lossy(&user.stderr));
        server
    })
    .await
    .unwrap();
    let mut person = Person::signed_in_at(&server.base, "canary@acme.test").await;
    let agent = Agent::register_with(
        &server.base,
        json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_post"}),
    )
    .await;
    let code = agent.code(&mut person).await;
    let first = tokens(&agent.exchange(&code).await);
    let second = tokens(&agent.refresh(&first.refresh).await);
    let reuse = agent.refresh(&first.refresh).await;
    assert_eq!(reuse.status, StatusCode::BAD_REQUEST);
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "list_catalogs", "arguments": {}}});
    let response = no_redirects()
        .post(format!("{}/mcp", server.base))
        .bearer_auth(&second.access)
        .header("accept", "application/json, text/event-stream")
        .json(&list)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "the reuse revoked the family");
    let logs = server.logs();
    assert!(logs.contains("/oauth2/token"), "the log is verbose (sanity check)");
    let database = std::fs::read(server.data_dir().join("octogen.db")).unwrap_or_default();
    let wal = std::fs::read(server.data_dir().join("octogen.db-wal")).unwrap_or_default();
    let stored = format!("{}{}", String::from_utf8_lossy(&database), String::from_utf8_lossy(&wal));
    let secrets = [
        code.clone(),
        first.access.clone(),
        first.refresh.clone(),
        second.access.clone(),
        second.refresh.clone(),
        agent.client_secret.clone().unwrap(),
        VERIFIER.to_string(),
    ];
    for secret in &secrets {
        let random = &secret[secret.len() - 43..];
        assert!(!logs.contains(random), "a secret is in the log: {}…", &secret[..8]);
        assert!(!stored.contains(random), "a secret is in the database: {}…", &secret[..8]);
    }
}

// --- Hardening against anonymous clients (issue 16) ---------------------------------------------

const DAY: i64 = 24 * 3600;

/// A server with test hooks that believes `X-Forwarded-For` from loopback (the test), so one
/// test can speak as many client addresses.
fn behind_proxy(data_dir: &std::path::Path) -> octogen_server::Config {
    octogen_server::Config {
        trusted_proxies: "127.0.0.1".parse().unwrap(),
        insecure_test_hooks: true,
        ..test_config(data_dir)
    }
}

/// Sends `request` as the client at `address` (a trusted proxy's `X-Forwarded-For`).
async fn from_address(request: reqwest::RequestBuilder, address: &str) -> Reply {
    let response = request.header("x-forwarded-for", address).send().await.unwrap();
    Reply {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap_or_default(),
    }
}

/// Sends every request (with its client address), 32 at a time; their statuses, in order.
async fn statuses(requests: Vec<(reqwest::RequestBuilder, String)>) -> Vec<StatusCode> {
    let mut statuses = Vec::new();
    let mut requests = requests.into_iter().peekable();
    while requests.peek().is_some() {
        let mut batch = tokio::task::JoinSet::new();
        for (n, (request, address)) in requests.by_ref().take(32).enumerate() {
            batch.spawn(async move { (n, from_address(request, &address).await.status) });
        }
        let mut done = batch.join_all().await;
        done.sort_by_key(|(n, _)| *n);
        statuses.extend(done.into_iter().map(|(_, status)| status));
    }
    statuses
}

/// What the SQLite database of a stopped server takes on disk (the file, its WAL and shared
/// memory), once the WAL is checkpointed into the file. Between checkpoints the WAL is SQLite's
/// reusable log, as large as `wal_autocheckpoint` lets it grow whatever was stored; the server
/// checkpoints it by itself, and usually on close, but not always (a connection still closing).
async fn stored_bytes(dir: &std::path::Path) -> u64 {
    let url = format!("sqlite://{}", dir.join("octogen.db").display());
    let database = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&database).await.unwrap();
    database.close().await;
    ["octogen.db", "octogen.db-wal", "octogen.db-shm"]
        .iter()
        .map(|name| std::fs::metadata(dir.join(name)).map(|meta| meta.len()).unwrap_or(0))
        .sum()
}

/// Serves one client ID metadata document on a loopback port; returns its URL (the client id).
async fn serve_document(document: impl Fn(&str) -> Value + Send + Sync + 'static) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client_id = format!("http://127.0.0.1:{}/client.json", listener.local_addr().unwrap().port());
    let body = axum::Json(document(&client_id));
    let documents = axum::Router::new().route("/client.json", axum::routing::get(move || async move { body }));
    tokio::spawn(async move { axum::serve(listener, documents).await.unwrap() });
    client_id
}

#[tokio::test]
async fn anonymous_authorize_and_register_floods_leave_the_database_small() {
    let data_dir = tempfile::tempdir().unwrap();
    let config = behind_proxy(data_dir.path());
    let app = TestApp::spawn_with(config.clone(), data_dir).await;
    let agent = Agent::register(&app.base).await;
    let data_dir = app.stop().await;
    let before = stored_bytes(data_dir.path()).await;
    let app = TestApp::spawn_with(config, data_dir).await;
    let agent = Agent { base: app.base.clone(), ..agent };
    let http = no_redirects();
    // 200 registrations keeping the most a registration may keep (the longest name, redirect URIs
    // at their cap), each with 64 KB of metadata nobody uses; 20 from each of 10 addresses.
    let registration = json!({
        "client_name": "N".repeat(200),
        "redirect_uris": [format!("https://agent.example/{}", "a".repeat(1000)),
                          format!("https://agent.example/{}", "b".repeat(1000))],
        "token_endpoint_auth_method": "none",
        "x_unused_padding": "p".repeat(64 * 1024),
    });
    let registrations = (0..200)
        .map(|n| (http.post(app.url("/oauth2/register")).json(&registration), format!("198.51.100.{}", n / 20)))
        .collect();
    let registered = statuses(registrations).await;
    assert!(registered.iter().all(|status| *status == StatusCode::CREATED), "{registered:?}");
    // 2,000 authorization requests with the longest `state` allowed; 20 from each of 100 addresses.
    let path = agent.authorize_path(&[("state", Some(&"s".repeat(1024)))]);
    let requests = (0..2000).map(|n| (http.get(app.url(&path)), format!("203.0.113.{}", n / 20))).collect();
    let authorized = statuses(requests).await;
    assert!(authorized.iter().all(|status| *status == StatusCode::SEE_OTHER), "{authorized:?}");
    let data_dir = app.stop().await;
    let grown = stored_bytes(data_dir.path()).await.saturating_sub(before);
    assert!(grown < 1_000_000, "the database grew by {grown} bytes");
}

#[tokio::test]
async fn authorize_and_register_are_throttled_per_client_address() {
    let data_dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_with(behind_proxy(data_dir.path()), data_dir).await;
    let agent = Agent::register(&app.base).await;
    let http = no_redirects();
    let mut accepted = 0;
    let refused = loop {
        let reply = from_address(http.get(app.url(&agent.authorize_path(&[]))), "203.0.113.5").await;
        if reply.status != StatusCode::SEE_OTHER {
            break reply;
        }
        accepted += 1;
        assert!(accepted < 60, "authorization requests are never throttled");
    };
    assert!(accepted >= 30, "the default allows 30 a minute, not {accepted}");
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{}", refused.body);
    assert!(refused.header("retry-after").parse::<u64>().is_ok_and(|seconds| seconds >= 1));
    assert!(refused.location().is_empty(), "shown here, not redirected");
    assert!(refused.body.contains("Too many requests"), "{}", refused.body);
    // Registration draws from the same budget of the address.
    let register = http.post(app.url("/oauth2/register")).json(&json!({"redirect_uris": [REDIRECT]}));
    let reply = from_address(register, "203.0.113.5").await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "{}", reply.body);
    assert!(reply.header("retry-after").parse::<u64>().is_ok());
    // Other addresses are not affected.
    let other = from_address(http.get(app.url(&agent.authorize_path(&[]))), "203.0.113.6").await;
    assert_eq!(other.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn oversized_or_malformed_authorization_parameters_are_refused_on_a_page() {
    let (app, _org, mut person) = partner_app().await;
    let agent = Agent::register(&app.base).await;
    for (name, value) in [
        ("state", "s".repeat(1025)),
        ("state", "line\nbreak".to_string()),
        ("scope", "c".repeat(513)),
        ("redirect_uri", format!("http://127.0.0.1/{}", "r".repeat(2048))),
        ("client_id", "i".repeat(513)),
        ("resource", format!("{}/mcp?{}", app.base, "x".repeat(2048))),
    ] {
        let reply = person.get(&agent.authorize_path(&[(name, Some(&value))])).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{name}: {}", reply.location());
        assert!(reply.location().is_empty(), "{name}: shown here, never redirected");
        assert!(reply.body.contains(name), "{name}: {}", reply.body);
    }
    let longest = "s".repeat(1024);
    let reply = person.get(&agent.authorize_path(&[("state", Some(&longest))])).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
}

#[tokio::test]
async fn a_long_authorization_request_survives_sign_in() {
    let (app, _org, _) = partner_app().await;
    let long_redirect = format!("http://127.0.0.1/{}", "r".repeat(1900));
    let agent = Agent::register_with(
        &app.base,
        json!({"client_name": "L".repeat(200), "redirect_uris": [long_redirect], "token_endpoint_auth_method": "none"}),
    )
    .await;
    let mut stranger = Person { base: app.base.clone(), http: no_redirects(), cookies: BTreeMap::new() };
    let longest_state = "~".repeat(1024);
    let consent = stranger.get(&agent.authorize_path(&[("state", Some(&longest_state))])).await.location();
    let login = stranger.get(&consent).await.location();
    let form = stranger.get(&login).await;
    let next = url::Url::parse(&format!("{}{login}", app.base)).unwrap().query_pairs().next().unwrap().1.into_owned();
    assert_eq!(next, consent, "the whole request rides along through sign-in");
    let fields =
        [("csrf", csrf_of(&form.body)), ("email", "agent-owner@acme.test".into()), ("password", PASSWORD.into())];
    let mut fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    fields.push(("next", &next));
    let signed_in = stranger.post("/login", &fields).await;
    assert_eq!(signed_in.location(), consent);
    let page = stranger.get(&consent).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let request = consent.trim_start_matches("/oauth2/consent?request=");
    let back = stranger
        .post("/oauth2/consent", &[("csrf", &csrf_of(&page.body)), ("request", request), ("decision", "allow")])
        .await;
    assert_eq!(back.redirect_params()["state"], longest_state);
    assert!(back.location().starts_with(&agent.redirect_uri), "{}", back.location());
}

#[tokio::test]
async fn registration_keeps_only_the_metadata_it_uses() {
    let app = TestApp::spawn().await;
    let http = no_redirects();
    let body = json!({"client_name": "Kept", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none",
        "logo_uri": "https://agent.example/logo.png", "client_uri": "https://agent.example",
        "contacts": ["ops@agent.example"], "jwks": {"keys": []}, "software_id": "agent",
        "scope": "catalog everything", "x_padding": "p".repeat(10_000)});
    let response = http.post(app.url("/oauth2/register")).json(&body).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let registered: Value = response.json().await.unwrap();
    let mut names: Vec<&str> = registered.as_object().unwrap().keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "client_id",
            "client_id_issued_at",
            "client_name",
            "grant_types",
            "redirect_uris",
            "response_types",
            "token_endpoint_auth_method"
        ]
    );
    let db = crate::portal::sqlite(&app).await;
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT COALESCE(name, '') || redirect_uris || metadata FROM oauth_clients")
            .fetch_all(&db)
            .await
            .unwrap();
    assert!(stored.iter().all(|row| row.len() < 200 && !row.contains("ppp") && !row.contains("logo")), "{stored:?}");
    // Every kept field has a cap.
    let many: Vec<String> = (0..11).map(|n| format!("http://127.0.0.1/cb{n}")).collect();
    let long = |fill: &str, n: usize| format!("https://agent.example/{}", fill.repeat(n));
    for (body, error) in [
        (json!({"redirect_uris": many}), "invalid_redirect_uri"),
        (json!({"redirect_uris": [long("a", 2048)]}), "invalid_redirect_uri"),
        (json!({"redirect_uris": [long("a", 1100), long("b", 1100)]}), "invalid_redirect_uri"),
        (json!({"redirect_uris": [REDIRECT], "client_name": "n".repeat(201)}), "invalid_client_metadata"),
    ] {
        let response = http.post(app.url("/oauth2/register")).json(&body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let reply: Value = response.json().await.unwrap();
        assert_eq!(reply["error"], error, "{reply}");
    }
}

#[tokio::test]
async fn registrations_unused_for_30_days_are_forgotten() {
    let (app, _org, mut person) = partner_app().await;
    let unused = Agent::register(&app.base).await;
    let used = Agent::register(&app.base).await;
    advance_clock(&app, 20 * DAY).await;
    tokens(&used.exchange(&used.code(&mut person).await).await);
    advance_clock(&app, 15 * DAY).await;
    // Pruning runs on the (anonymous, throttled) registration path, among others.
    Agent::register(&app.base).await;
    let gone = person.get(&unused.authorize_path(&[])).await;
    assert_eq!(gone.status, StatusCode::BAD_REQUEST, "35 days without a token");
    assert!(gone.body.contains("not registered"), "{}", gone.body);
    let kept = person.get(&used.authorize_path(&[])).await;
    assert_eq!(kept.status, StatusCode::SEE_OTHER, "a token 15 days ago keeps it: {}", kept.body);
}

#[tokio::test]
async fn private_use_redirect_schemes_must_be_reverse_domain_names() {
    let (app, _org, mut person) = partner_app().await;
    let http = no_redirects();
    let register = |uri: &str| http.post(app.url("/oauth2/register")).json(&json!({"redirect_uris": [uri]})).send();
    for refused in [
        "ms-appinstaller:?source=https://evil.example/app.appinstaller",
        "ms-settings:privacy",
        "myapp:/callback",
        "vscode://callback",
        "com:/callback",
    ] {
        let response = register(refused).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{refused}");
        let reply: Value = response.json().await.unwrap();
        assert_eq!(reply["error"], "invalid_redirect_uri", "{refused}: {reply}");
    }
    for accepted in ["com.example.agent:/oauth", "io.github.octo-agent:/cb"] {
        assert_eq!(register(accepted).await.unwrap().status(), StatusCode::CREATED, "{accepted}");
    }
    // A client metadata document cannot bring a refused scheme in either: never redirected to.
    let appinstaller = "ms-appinstaller:?source=https://evil.example/app.appinstaller";
    let client_id = serve_document(
        move |id| json!({"client_id": id, "redirect_uris": [appinstaller], "token_endpoint_auth_method": "none"}),
    )
    .await;
    let agent = Agent {
        base: app.base.clone(),
        http: no_redirects(),
        client_id,
        client_secret: None,
        redirect_uri: appinstaller.into(),
    };
    let reply = person.get(&agent.authorize_path(&[("response_type", Some("x"))])).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.location());
    assert!(reply.location().is_empty());
}

#[tokio::test]
async fn errors_go_back_only_to_a_client_someone_has_approved() {
    let (app, _org, mut person) = partner_app().await;
    let agent = Agent::register(&app.base).await;
    let unsupported = [("response_type", Some("token"))];
    // Anyone may register a client with any https redirect URI: until a person has approved it,
    // sending the browser there would make this server an open redirector.
    let reply = person.get(&agent.authorize_path(&unsupported)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.location());
    assert!(reply.location().is_empty());
    assert!(reply.body.contains("response_type"), "{}", reply.body);
    agent.connect(&mut person).await;
    let reply = person.get(&agent.authorize_path(&unsupported)).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(reply.redirect_params()["error"], "unsupported_response_type");
    assert_eq!(app.base, reply.redirect_params()["iss"]);
    // A redirect URI stored under older rules is held to today's on every request.
    let appinstaller = "ms-appinstaller:?source=https://evil.example/app.appinstaller";
    let db = crate::portal::sqlite(&app).await;
    sqlx::query("UPDATE oauth_clients SET redirect_uris = $1 WHERE id = $2")
        .bind(json!([appinstaller]).to_string())
        .bind(&agent.client_id)
        .execute(&db)
        .await
        .unwrap();
    let legacy = Agent { redirect_uri: appinstaller.into(), ..agent };
    let reply = person.get(&legacy.authorize_path(&unsupported)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.location());
    assert!(reply.body.contains("redirect URI cannot be used"), "{}", reply.body);
}

#[tokio::test]
async fn failed_tokens_at_mcp_and_the_token_endpoint_draw_from_the_failure_budget() {
    let data_dir = tempfile::tempdir().unwrap();
    let config = octogen_server::Config { auth_failure_limit_per_minute: 5, ..behind_proxy(data_dir.path()) };
    let app = TestApp::spawn_with(config, data_dir).await;
    let (org, _) = app.partner_with_northwind("northwind").await;
    member(&app, "agent-owner@acme.test", &org).await;
    let mut person = Person::signed_in(&app, "agent-owner@acme.test").await;
    let agent = Agent::register(&app.base).await;
    let good = agent.connect(&mut person).await;
    let refresh = |token: &str| {
        agent.http.post(app.url("/oauth2/token")).form(&[
            ("client_id", agent.client_id.as_str()),
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
        ])
    };
    for _ in 0..5 {
        assert_eq!(from_address(refresh("octo_rt_guess"), "203.0.113.10").await.status, StatusCode::BAD_REQUEST);
    }
    let refused = from_address(refresh("octo_rt_guess"), "203.0.113.10").await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{}", refused.body);
    assert!(refused.header("retry-after").parse::<u64>().is_ok_and(|seconds| seconds >= 1));
    assert_eq!(refused.header("cache-control"), "no-store");

    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let forwarded = [("x-forwarded-for", "203.0.113.11")];
    for _ in 0..5 {
        let reply = mcp_raw(&app, Some("Bearer octo_at_guess"), &forwarded, list.clone()).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    let refused = mcp_raw(&app, Some("Bearer octo_at_guess"), &forwarded, list.clone()).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{}", refused.body);
    assert!(refused.header("retry-after").parse::<u64>().is_ok());
    // The bucket is the one failed API keys draw from at /v1.
    let v1 = app.http.get(app.url("/v1/catalogs")).bearer_auth("octo_live_guess");
    assert_eq!(from_address(v1, "203.0.113.11").await.status, StatusCode::TOO_MANY_REQUESTS);
    // Asking without a token (discovery) is not a failure; valid credentials keep working.
    let discovery = mcp_raw(&app, None, &forwarded, list.clone()).await;
    assert_eq!(discovery.status, StatusCode::UNAUTHORIZED);
    let bearer = format!("Bearer {}", good.access);
    assert_eq!(mcp_raw(&app, Some(&bearer), &forwarded, list).await.status, StatusCode::OK);
    assert_eq!(from_address(refresh(&good.refresh), "203.0.113.10").await.status, StatusCode::OK);
}

/// action, org_id, target, actor, detail
type AuditRow = (String, Option<String>, Option<String>, String, Option<String>);

#[tokio::test]
async fn registration_token_issuance_and_replays_are_audited() {
    let (app, org, mut person) = partner_app().await;
    let agent = Agent::register(&app.base).await;
    let first = agent.connect(&mut person).await;
    let second = tokens(&agent.refresh(&first.refresh).await);
    assert_eq!(agent.refresh(&first.refresh).await.status, StatusCode::BAD_REQUEST, "reuse");
    let code = agent.code(&mut person).await;
    let third = tokens(&agent.exchange(&code).await);
    assert_eq!(agent.exchange(&code).await.status, StatusCode::BAD_REQUEST, "replay");
    let db = crate::portal::sqlite(&app).await;
    let rows: Vec<AuditRow> = sqlx::query_as(
        "SELECT action, org_id, target, actor, detail FROM audit_events WHERE action LIKE 'oauth.%' ORDER BY id",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    let actions: Vec<&str> = rows.iter().map(|row| row.0.as_str()).collect();
    assert_eq!(
        actions,
        [
            "oauth.client_registered",
            "oauth.authorized",
            "oauth.tokens_issued",
            "oauth.grant_revoked",
            "oauth.authorized",
            "oauth.tokens_issued",
            "oauth.grant_revoked"
        ]
    );
    let client = Some(agent.client_id.clone());
    assert_eq!((&rows[0].1, &rows[0].2), (&None, &client), "a registration belongs to no organization");
    assert_eq!((&rows[2].1, &rows[2].2), (&Some(org.clone()), &client));
    assert_eq!(rows[2].3, format!("oauth_client:{}", agent.client_id));
    assert!(rows[3].4.as_deref().unwrap_or_default().contains("refresh_token_reuse"), "{:?}", rows[3]);
    assert_eq!(rows[3].1, Some(org.clone()));
    assert!(rows[6].4.as_deref().unwrap_or_default().contains("authorization_code_replay"), "{:?}", rows[6]);
    let everything = format!("{rows:?}");
    for secret in [&first.access, &first.refresh, &second.refresh, &third.access, &code] {
        assert!(!everything.contains(&secret[secret.len() - 43..]), "a secret is in the audit log");
    }
}

#[tokio::test]
async fn without_public_url_only_loopback_host_names_name_the_issuer() {
    let app = TestApp::spawn().await;
    let port = app.base.rsplit(':').next().unwrap().to_string();
    let with_host = |path: &str, host: &str| app.http.get(app.url(path)).header("host", host).send();
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/oauth-protected-resource/mcp",
        "/oauth2/authorize?client_id=x",
    ] {
        let response = with_host(path, "evil.example").await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        assert!(!response.text().await.unwrap().contains("evil.example"), "{path}");
    }
    let challenge = app
        .http
        .post(app.url("/mcp"))
        .header("host", "evil.example")
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(challenge.status(), StatusCode::BAD_REQUEST);
    assert!(challenge.headers().get("www-authenticate").is_none());
    // Loopback names are fine (a developer's machine).
    let local = format!("localhost:{port}");
    let metadata: Value =
        with_host("/.well-known/oauth-authorization-server", &local).await.unwrap().json().await.unwrap();
    assert_eq!(metadata["issuer"], format!("http://{local}"));
}

#[tokio::test]
async fn metadata_documents_are_not_cached_and_https_deployments_send_hsts() {
    let data_dir = tempfile::tempdir().unwrap();
    let config =
        octogen_server::Config { public_url: Some("https://octo.example".into()), ..test_config(data_dir.path()) };
    let https = TestApp::spawn_with(config, data_dir).await;
    let plain = TestApp::spawn().await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        for app in [&https, &plain] {
            let response = app.http.get(app.url(path)).send().await.unwrap();
            assert_eq!(response.headers()["cache-control"], "no-store", "{path}");
        }
    }
    for path in ["/.well-known/oauth-authorization-server", "/login", "/healthz", "/oauth2/authorize"] {
        let response = https.http.get(https.url(path)).send().await.unwrap();
        let hsts = response.headers().get("strict-transport-security").map(|v| v.to_str().unwrap().to_string());
        assert!(hsts.as_deref().is_some_and(|value| value.starts_with("max-age=31536000")), "{path}: {hsts:?}");
        let response = plain.http.get(plain.url(path)).send().await.unwrap();
        assert!(response.headers().get("strict-transport-security").is_none(), "{path}: not over plain http");
    }
}

#[tokio::test]
async fn a_non_loopback_listen_address_needs_public_url() {
    let data_dir = tempfile::tempdir().unwrap();
    let config = octogen_server::Config { listen: "0.0.0.0:0".parse().unwrap(), ..test_config(data_dir.path()) };
    let error = match octogen_server::Application::build(config).await {
        Ok(_) => panic!("the server started on every interface without public_url"),
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains("public_url") && error.contains("0.0.0.0"), "{error}");
}

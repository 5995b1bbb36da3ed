//! The partner portal over HTTP: every CSRF, cookie, session, throttling and
//! header rule, key management by role, catalogs, the audit log, the operator
//! area, and `octogen admin user create`. (The flows in a real browser are in
//! `tests/browser/`.)

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{stderr, test_config, TestApp};

const PASSWORD: &str = "correct horse battery staple";

/// A minimal browser: keeps cookies, follows nothing, and sends the headers a
/// same-origin form post carries (`Origin`, `Sec-Fetch-Site`).
pub(crate) struct Browser {
    base: String,
    http: reqwest::Client,
    cookies: BTreeMap<String, String>,
    /// Extra headers on every request (e.g. `X-Forwarded-For`).
    extra: Vec<(&'static str, String)>,
}

pub(crate) struct Page {
    pub(crate) status: StatusCode,
    headers: HeaderMap,
    pub(crate) body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// The first CSRF token on the page.
    pub(crate) fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker).unwrap_or_else(|| panic!("no CSRF field in:\n{}", self.body)) + marker.len();
        self.body[start..start + 64].to_string()
    }

    fn set_cookies(&self) -> Vec<String> {
        self.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect()
    }

    fn set_cookie(&self, name: &str) -> String {
        let prefix = format!("{name}=");
        self.set_cookies()
            .into_iter()
            .find(|cookie| cookie.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no Set-Cookie {name}: {:?}", self.set_cookies()))
    }

    /// The text of the page's error banner.
    fn error_banner(&self) -> String {
        let start = self.body.find("role=\"alert\"").expect("an error banner");
        let rest = &self.body[start..];
        rest[rest.find('>').unwrap() + 1..rest.find("</div>").unwrap()].trim().to_string()
    }
}

impl Browser {
    fn new(app: &TestApp) -> Browser {
        Browser::at(&app.base)
    }

    pub(crate) fn at(base: &str) -> Browser {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Browser { base: base.to_string(), http, cookies: BTreeMap::new(), extra: Vec::new() }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let mut request = request;
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            request = request.header("cookie", jar.join("; "));
        }
        for (name, value) in &self.extra {
            request = request.header(*name, value);
        }
        let response = request.send().await.expect("request");
        let page = Page { status: response.status(), headers: response.headers().clone(), body: String::new() };
        let body = response.text().await.unwrap_or_default();
        let page = Page { body, ..page };
        for cookie in page.set_cookies() {
            let pair = cookie.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || cookie.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        page
    }

    pub(crate) async fn get(&mut self, path: &str) -> Page {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    /// A form post as a browser sends it from one of the portal's pages.
    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let origin = self.base.clone();
        self.post_with(path, fields, &[("origin", &origin), ("sec-fetch-site", "same-origin")]).await
    }

    async fn post_with(&mut self, path: &str, fields: &[(&str, &str)], headers: &[(&str, &str)]) -> Page {
        let mut request = self.http.post(format!("{}{path}", self.base)).form(fields);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request).await
    }

    /// Loads `page_path`, then posts `fields` (plus its CSRF token) to `action`.
    pub(crate) async fn submit(&mut self, page_path: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let token = self.get(page_path).await.csrf();
        let mut all = vec![("csrf", token.as_str())];
        all.extend_from_slice(fields);
        self.post(action, &all).await
    }

    pub(crate) async fn sign_in(&mut self, email: &str, password: &str) -> Page {
        self.submit("/login", "/login", &[("email", email), ("password", password)]).await
    }

    async fn signed_in(app: &TestApp, email: &str) -> Browser {
        let mut browser = Browser::new(app);
        let page = browser.sign_in(email, PASSWORD).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        browser
    }

    pub(crate) fn session_cookie(&self) -> String {
        self.cookies.get("octogen_session").cloned().expect("a session cookie")
    }
}

async fn create_user(app: &TestApp, body: Value) -> Value {
    let (status, user) = app.admin(Method::POST, "/users", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    user
}

async fn member(app: &TestApp, email: &str, org: &str, role: &str) -> String {
    let user = create_user(app, json!({"email": email, "password": PASSWORD, "org": org, "role": role})).await;
    user["id"].as_str().unwrap().to_string()
}

async fn operator(app: &TestApp, email: &str) {
    create_user(app, json!({"email": email, "password": PASSWORD, "operator": true})).await;
}

/// The full key shown on a "key created" page.
fn shown_key(page: &Page) -> String {
    let start = page.body.find("octo_live_").unwrap_or_else(|| panic!("no key on the page:\n{}", page.body));
    page.body[start..start + octogen_core::api_key::KEY_LEN].to_string()
}

fn key_id_of(key: &str) -> &str {
    &key[10..42]
}

async fn sqlite(app: &TestApp) -> sqlx::SqlitePool {
    let url = format!("sqlite://{}", app.data_dir.path().join("octogen.db").display());
    sqlx::SqlitePool::connect(&url).await.unwrap()
}

fn as_refs<'a>(pairs: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn now_millis() -> i64 {
    octogen_core::Timestamp::now().millis()
}

// --- Accounts and sign-in -------------------------------------------------------------------

#[tokio::test]
async fn sign_in_opens_a_session_with_safe_cookie_attributes() {
    let app = TestApp::spawn().await;
    let org = app.partner("Acme").await;
    member(&app, "owner@acme.test", &org, "owner").await;
    let mut browser = Browser::new(&app);

    let login = browser.get("/login").await;
    assert_eq!(login.status, StatusCode::OK);
    let presession = login.set_cookie("octogen_presession");
    for attribute in ["Path=/", "HttpOnly", "SameSite=Lax"] {
        assert!(presession.contains(attribute), "{presession}");
    }
    assert!(!presession.contains("Secure"), "plain http: no Secure flag ({presession})");

    let signed_in = browser.sign_in("Owner@Acme.test ", PASSWORD).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER, "{}", signed_in.body);
    assert_eq!(signed_in.location(), "/");
    let cookie = signed_in.set_cookie("octogen_session");
    for attribute in ["Path=/", "HttpOnly", "SameSite=Lax"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure") && !cookie.contains("Max-Age") && !cookie.contains("Expires"), "{cookie}");
    assert!(signed_in.set_cookie("octogen_presession").contains("Max-Age=0"), "the pre-session cookie is dropped");

    let keys = browser.get("/keys").await;
    assert_eq!(keys.status, StatusCode::OK);
    assert!(keys.body.contains("owner@acme.test") && keys.body.contains("Acme"));
    assert_eq!(browser.get("/").await.location(), "/keys");
    assert_eq!(browser.get("/login").await.location(), "/", "signed in: no second sign-in form");

    // The store keeps an HMAC of the token, never the token.
    let token = browser.session_cookie();
    let db = sqlite(&app).await;
    let hashes: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM sessions").fetch_all(&db).await.unwrap();
    assert_eq!(hashes.len(), 1);
    assert!(!hashes[0].contains(&token) && hashes[0].len() == 64);
}

#[tokio::test]
async fn https_public_url_makes_cookies_host_prefixed_and_secure() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.public_url = Some("https://portal.example".into());
    let app = TestApp::spawn_with(config, dir).await;
    let org = app.partner("Acme").await;
    member(&app, "owner@acme.test", &org, "owner").await;
    let mut browser = Browser::new(&app);
    let login = browser.get("/login").await;
    let presession = login.set_cookie("__Host-octogen_presession");
    assert!(presession.contains("Secure") && presession.contains("Path=/") && !presession.contains("Domain"));
    let token = login.csrf();
    let fields = [("csrf", token.as_str()), ("email", "owner@acme.test"), ("password", PASSWORD)];
    // The configured URL is the only accepted origin.
    let refused = browser.post_with("/login", &fields, &[("origin", &app.base)]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let page = browser.post_with("/login", &fields, &[("origin", "https://portal.example")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let cookie = page.set_cookie("__Host-octogen_session");
    for attribute in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert_eq!(browser.get("/keys").await.status, StatusCode::OK);
}

#[tokio::test]
async fn every_sign_in_gets_a_new_session_and_sign_out_ends_it_on_the_server() {
    let app = TestApp::spawn().await;
    let org = app.partner("Acme").await;
    member(&app, "owner@acme.test", &org, "owner").await;

    // A session id planted before sign-in (fixation) is never adopted.
    let mut browser = Browser::new(&app);
    browser.cookies.insert("octogen_session".into(), "planted-by-an-attacker".into());
    assert_eq!(browser.sign_in("owner@acme.test", PASSWORD).await.status, StatusCode::SEE_OTHER);
    let first = browser.session_cookie();
    assert_ne!(first, "planted-by-an-attacker");
    let second = Browser::signed_in(&app, "owner@acme.test").await.session_cookie();
    assert_ne!(first, second, "a fresh token per sign-in");

    // A sign-in form posted by a browser that still has a session (another tab) ends that session.
    let mut tab = Browser::new(&app);
    let token = tab.get("/login").await.csrf();
    tab.cookies.insert("octogen_session".into(), first.clone());
    let fields = [("csrf", token.as_str()), ("email", "owner@acme.test"), ("password", PASSWORD)];
    assert_eq!(tab.post("/login", &fields).await.status, StatusCode::SEE_OTHER);
    let third = tab.session_cookie();
    assert_ne!(third, first);
    let mut replay = Browser::new(&app);
    replay.cookies.insert("octogen_session".into(), first.clone());
    assert_eq!(replay.get("/keys").await.status, StatusCode::SEE_OTHER, "the replaced session is gone");

    let signed_out = tab.submit("/keys", "/logout", &[]).await;
    assert_eq!(signed_out.status, StatusCode::SEE_OTHER);
    assert_eq!(signed_out.location(), "/login");
    assert!(signed_out.set_cookie("octogen_session").contains("Max-Age=0"));
    // Replaying the old cookie (say, from a copy taken before sign-out) fails: it ended on the server.
    let mut replay = Browser::new(&app);
    replay.cookies.insert("octogen_session".into(), third);
    let page = replay.get("/keys").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/login?next=%2Fkeys");
}

#[tokio::test]
async fn failed_sign_ins_get_one_generic_answer() {
    let app = TestApp::spawn().await;
    let org = app.partner("Acme").await;
    member(&app, "owner@acme.test", &org, "owner").await;
    let mut answers = Vec::new();
    for (email, password) in [
        ("owner@acme.test", "wrong password, long enough"),
        ("nobody@acme.test", "wrong password, long enough"),
        ("owner@acme.test", "short"),
        ("owner@acme.test", &"x".repeat(129)),
        ("not an email", PASSWORD),
    ] {
        let page = Browser::new(&app).sign_in(email, password).await;
        assert!(!page.body.contains(password) || password == PASSWORD, "the password is never echoed");
        answers.push((page.status, page.error_banner()));
    }
    assert!(answers.iter().all(|answer| answer == &answers[0]), "{answers:?}");
    assert_eq!(answers[0], (StatusCode::UNAUTHORIZED, "Incorrect email or password.".to_string()));
}

#[tokio::test]
async fn unknown_emails_cost_a_password_hash() {
    let app = TestApp::spawn().await;
    let org = app.partner("Acme").await;
    for n in 0..3 {
        member(&app, &format!("user{n}@acme.test"), &org, "member").await;
    }
    async fn timed(app: &TestApp, email: &str) -> Duration {
        let mut browser = Browser::new(app);
        let token = browser.get("/login").await.csrf();
        let started = Instant::now();
        let fields = [("csrf", token.as_str()), ("email", email), ("password", "wrong password, long enough")];
        let page = browser.post("/login", &fields).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        started.elapsed()
    }
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for n in 0..3 {
        known.push(timed(&app, &format!("user{n}@acme.test")).await);
        unknown.push(timed(&app, &format!("ghost{n}@acme.test")).await);
    }
    known.sort();
    unknown.sort();
    // Both verify one argon2id hash; without the dummy hash an unknown email would answer far faster.
    assert!(unknown[1] * 3 >= known[1], "unknown {unknown:?} vs known {known:?}");
}

#[tokio::test]
async fn sign_in_is_throttled_per_account() {
    let app = TestApp::spawn().await;
    let org = app.partner("Acme").await;
    member(&app, "owner@acme.test", &org, "owner").await;
    member(&app, "other@acme.test", &org, "member").await;
    for _ in 0..5 {
        let page = Browser::new(&app).sign_in("owner@acme.test", "wrong password, long enough").await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    // Now even the right password is refused, without checking it.
    let page = Browser::new(&app).sign_in("owner@acme.test", PASSWORD).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(page.headers["retry-after"], "900");
    assert!(page.error_banner().contains("Too many failed sign-ins"));
    assert!(page.body.contains("name=\"csrf\""), "the form is still there");
    // Other accounts from the same address are unaffected.
    assert_eq!(Browser::new(&app).sign_in("other@acme.test", PASSWORD).await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn sign_in_is_throttled_per_client_address_behind_a_trusted_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.trusted_proxies = "127.0.0.1".parse().unwrap();
    let app = TestApp::spawn_with(config, dir).await;
    let org = app.partner("Acme").await;
    member(&app, "owner@acme.test", &org, "owner").await;
    let from = |address: &str| {
        let mut browser = Browser::new(&app);
        browser.extra.push(("x-forwarded-for", address.to_string()));
        browser
    };
    for n in 0..20 {
        let page = from("203.0.113.7").sign_in(&format!("guess{n}@acme.test"), "wrong password, long enough").await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(from("203.0.113.7").sign_in("owner@acme.test", PASSWORD).await.status, StatusCode::TOO_MANY_REQUESTS);
    let page = from("203.0.113.8").sign_in("owner@acme.test", PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "another client behind the same proxy is not blocked");
    // The audit log records the forwarded address.
    let (_, events) = app.admin(Method::GET, "/orgs", None).await;
    assert!(events.is_array());
    let db = sqlite(&app).await;
    let addresses: Vec<Option<String>> =
        sqlx::query_scalar("SELECT client_addr FROM audit_events WHERE action = 'user.signed_in'")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(addresses, [Some("203.0.113.8".to_string())]);
}

#[tokio::test]
async fn forwarded_for_is_ignored_without_a_trusted_proxy() {
    let app = TestApp::spawn().await;
    let org = app.partner("Acme").await;
    member(&app, "owner@acme.test", &org, "owner").await;
    for n in 0..20 {
        let mut browser = Browser::new(&app);
        browser.extra.push(("x-forwarded-for", format!("198.51.100.{n}")));
        let page = browser.sign_in(&format!("guess{n}@acme.test"), "wrong password, long enough").await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    // Every attempt counted against the real peer (127.0.0.1), whatever the header claimed.
    let mut browser = Browser::new(&app);
    browser.extra.push(("x-forwarded-for", "198.51.100.200".into()));
    assert_eq!(browser.sign_in("owner@acme.test", PASSWORD).await.status, StatusCode::TOO_MANY_REQUESTS);
}

// --- Sessions ---------------------------------------------------------------------------------

#[tokio::test]
async fn sessions_end_after_the_idle_and_the_absolute_timeout() {
    let app = TestApp::spawn().await;
    let org = app.partner("Acme").await;
    member(&app, "owner@acme.test", &org, "owner").await;
    let db = sqlite(&app).await;
    let minutes = |n: i64| n * 60 * 1000;

    // Active 10 minutes ago: still signed in (and the activity is recorded).
    let mut browser = Browser::signed_in(&app, "owner@acme.test").await;
    sqlx::query("UPDATE sessions SET last_seen_at = $1").bind(now_millis() - minutes(10)).execute(&db).await.unwrap();
    assert_eq!(browser.get("/keys").await.status, StatusCode::OK);
    let seen: i64 = sqlx::query_scalar("SELECT last_seen_at FROM sessions").fetch_one(&db).await.unwrap();
    assert!(seen > now_millis() - minutes(1), "touched on use");

    // Idle for 31 minutes: gone, and deleted on the server.
    sqlx::query("UPDATE sessions SET last_seen_at = $1").bind(now_millis() - minutes(31)).execute(&db).await.unwrap();
    assert_eq!(browser.get("/keys").await.status, StatusCode::SEE_OTHER);
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions").fetch_one(&db).await.unwrap();
    assert_eq!(count, 0);

    // Past its absolute end, even while active: gone.
    let mut browser = Browser::signed_in(&app, "owner@acme.test").await;
    sqlx::query("UPDATE sessions SET expires_at = $1").bind(now_millis() - 1).execute(&db).await.unwrap();
    assert_eq!(browser.get("/keys").await.status, StatusCode::SEE_OTHER);
    let lifetime: Vec<i64> = {
        let mut browser = Browser::signed_in(&app, "owner@acme.test").await;
        browser.get("/keys").await;
        sqlx::query_scalar("SELECT expires_at - created_at FROM sessions").fetch_all(&db).await.unwrap()
    };
    assert_eq!(lifetime, [12 * 60 * 60 * 1000], "an absolute lifetime of 12 hours");
}

// --- CSRF and methods -------------------------------------------------------------------------

#[tokio::test]
async fn state_changing_forms_need_the_csrf_token_and_this_origin() {
    let app = TestApp::spawn().await;
    let org = app.partner("Acme").await;
    member(&app, "owner@acme.test", &org, "owner").await;
    let mut browser = Browser::signed_in(&app, "owner@acme.test").await;
    let mut other = Browser::signed_in(&app, "owner@acme.test").await;
    let token = browser.get("/keys").await.csrf();
    let foreign_token = other.get("/keys").await.csrf();
    let create = |token: &str| vec![("csrf", token.to_string()), ("name", "ci".to_string())];

    type Case<'a> = (&'a str, Vec<(&'static str, String)>, Vec<(&'a str, &'a str)>);
    let cases: Vec<Case> = vec![
        ("no token", vec![("name", "ci".into())], vec![]),
        ("an empty token", create(""), vec![]),
        ("a wrong token", create(&"0".repeat(64)), vec![]),
        ("another session's token", create(&foreign_token), vec![]),
        ("a foreign Origin", create(&token), vec![("origin", "https://evil.test")]),
        ("Origin null", create(&token), vec![("origin", "null")]),
        ("Sec-Fetch-Site cross-site", create(&token), vec![("sec-fetch-site", "cross-site")]),
        ("Sec-Fetch-Site same-site", create(&token), vec![("sec-fetch-site", "same-site")]),
    ];
    for (case, form, headers) in cases {
        let page = browser.post_with("/keys", &as_refs(&form), &headers).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{case}");
        assert!(page.body.contains("<html"), "{case}: an HTML error page");
    }
    let keys = app.admin(Method::GET, &format!("/orgs/{org}/keys"), None).await.1;
    assert_eq!(keys, json!([]), "no refused form created a key");

    // The right token from this origin works; so does a client that sends no browser headers.
    assert_eq!(browser.post("/keys", &as_refs(&create(&token))).await.status, StatusCode::CREATED);
    assert_eq!(browser.post_with("/keys", &as_refs(&create(&token)), &[]).await.status, StatusCode::CREATED);

    // Sign-out needs the token too: a forged sign-out changes nothing.
    assert_eq!(browser.post("/logout", &[]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(browser.get("/keys").await.status, StatusCode::OK);

    // The sign-in form is protected as well (login CSRF).
    let mut fresh = Browser::new(&app);
    let sign_in = [("email", "owner@acme.test"), ("password", PASSWORD)];
    assert_eq!(fresh.post("/login", &sign_in).await.status, StatusCode::FORBIDDEN, "no pre-session cookie");
    let login_token = fresh.get("/login").await.csrf();
    let mut with_wrong = vec![("csrf", foreign_token.as_str())];
    with_wrong.extend_from_slice(&sign_in);
    assert_eq!(fresh.post("/login", &with_wrong).await.status, StatusCode::FORBIDDEN, "a session's token");
    let mut with_right = vec![("csrf", login_token.as_str())];
    with_right.extend_from_slice(&sign_in);
    let foreign = fresh.post_with("/login", &with_right, &[("origin", "https://evil.test")]).await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN, "a foreign origin");
    assert_eq!(fresh.post("/login", &with_right).await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn nothing_changes_state_on_get() {
    let app = TestApp::spawn().await;
    let org = app.partner("Acme").await;
    member(&app, "owner@acme.test", &org, "owner").await;
    let key = app.mint_key(&org).await;
    let mut browser = Browser::signed_in(&app, "owner@acme.test").await;

    let confirm = browser.get(&format!("/keys/{}/deactivate", key.id)).await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.body.contains("the next request that uses this key fails with 401"));
    let rotate = browser.get(&format!("/keys/{}/rotate", key.id)).await;
    assert_eq!(rotate.status, StatusCode::OK);
    assert!(rotate.body.contains("stays active"));
    assert_eq!(app.catalogs(&key.key).await.status(), 200, "the confirmation page did not deactivate");
    let keys = app.admin(Method::GET, &format!("/orgs/{org}/keys"), None).await.1;
    assert_eq!(keys.as_array().unwrap().len(), 1, "the confirmation page did not rotate");

    for path in ["/logout", "/session/org"] {
        assert_eq!(browser.get(path).await.status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
    }
    assert_eq!(browser.get("/keys").await.status, StatusCode::OK, "still signed in");
}

// --- Headers and error pages ------------------------------------------------------------------

fn assert_security_headers(path: &str, page: &Page) {
    let header = |name: &str| page.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let csp = header("content-security-policy");
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"), "{path}: {csp}");
    assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
    assert_eq!(header("x-frame-options"), "DENY", "{path}");
    assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
    assert_eq!(header("referrer-policy"), "same-origin", "{path}");
    assert_eq!(header("cache-control"), "no-store", "{path}");
}

#[tokio::test]
async fn every_portal_page_sends_the_security_headers() {
    let app = TestApp::spawn().await;
    let org = app.partner("Acme").await;
    app.create_catalog("northwind").await;
    member(&app, "owner@acme.test", &org, "owner").await;
    member(&app, "viewer@acme.test", &org, "member").await;
    operator(&app, "op@octogen.test").await;
    let key = app.mint_key(&org).await;

    let mut anonymous = Browser::new(&app);
    for path in ["/login", "/", "/keys", "/keys/nope/deactivate", "/operator/orgs"] {
        assert_security_headers(path, &anonymous.get(path).await);
    }
    let mut owner = Browser::signed_in(&app, "owner@acme.test").await;
    for path in [
        "/keys".to_string(),
        "/catalogs".into(),
        "/audit".into(),
        format!("/keys/{}/deactivate", key.id),
        format!("/keys/{}/rotate", key.id),
        "/keys/no-such-key/deactivate".into(),
        "/operator/orgs".into(),
    ] {
        let page = owner.get(&path).await;
        assert_security_headers(&path, &page);
        assert!(page.headers["content-type"].to_str().unwrap().starts_with("text/html"), "{path}");
    }
    assert_eq!(owner.get("/keys/no-such-key/deactivate").await.status, StatusCode::NOT_FOUND);
    assert_eq!(owner.get("/operator/orgs").await.status, StatusCode::FORBIDDEN);
    let created = owner.submit("/keys", "/keys", &[("name", "headers")]).await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_security_headers("POST /keys", &created);

    let mut viewer = Browser::signed_in(&app, "viewer@acme.test").await;
    assert_security_headers("/audit as member", &viewer.get("/audit").await);

    let mut op = Browser::signed_in(&app, "op@octogen.test").await;
    for path in [
        "/operator/orgs".to_string(),
        format!("/operator/orgs/{org}"),
        "/operator/catalogs".into(),
        "/operator/catalogs/northwind".into(),
        "/operator/users".into(),
        "/operator/orgs/nope".into(),
        "/operator/nothing/here".into(),
    ] {
        assert_security_headers(&path, &op.get(&path).await);
    }
    assert_eq!(op.get("/operator/nothing/here").await.status, StatusCode::NOT_FOUND);
    let css = op.get("/static/portal.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.headers["content-type"].to_str().unwrap().starts_with("text/css"));
}

// --- API keys ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_new_key_is_shown_once_and_works_until_deactivated() {
    let app = TestApp::spawn().await;
    let org = app.partner("Acme").await;
    member(&app, "owner@acme.test", &org, "owner").await;
    let mut browser = Browser::signed_in(&app, "owner@acme.test").await;
    assert!(browser.get("/keys").await.body.contains("No keys yet"), "empty state");

    let created = browser.submit("/keys", "/keys", &[("name", "production <backend>")]).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.headers["cache-control"], "no-store");
    assert!(created.body.contains("will not be shown again"));
    assert!(created.body.contains("production &lt;backend&gt;"), "names are escaped");
    let key = shown_key(&created);
    assert_eq!(app.catalogs(&key).await.status(), 200);

    let list = browser.get("/keys").await;
    assert!(list.body.contains(key_id_of(&key)) && list.body.contains("production &lt;backend&gt;"));
    assert!(!list.body.contains(&key), "the list never shows the secret");

    // Rotation: a replacement shown once, the old key still active, with guidance.
    let rotated = browser
        .submit(&format!("/keys/{}/rotate", key_id_of(&key)), &format!("/keys/{}/rotate", key_id_of(&key)), &[])
        .await;
    assert_eq!(rotated.status, StatusCode::CREATED);
    let replacement = shown_key(&rotated);
    assert_ne!(replacement, key);
    assert!(rotated.body.contains("is still active"));
    assert_eq!(app.catalogs(&key).await.status(), 200, "the old key works until deactivated");
    assert_eq!(app.catalogs(&replacement).await.status(), 200);

    let path = format!("/keys/{}/deactivate", key_id_of(&key));
    let done = browser.submit(&path, &path, &[]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(app.catalogs(&key).await.status(), 401, "the very next request fails");
    assert_eq!(app.catalogs(&replacement).await.status(), 200);
    let list = browser.get(&format!("/{}", done.location().trim_start_matches('/'))).await;
    assert!(list.body.contains("The key was deactivated"));
    assert!(list.body.contains("Deactivated"));
    assert_eq!(browser.get(&path).await.status, StatusCode::BAD_REQUEST, "no second deactivation form");

    let invalid = browser.submit("/keys", "/keys", &[("name", "   ")]).await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(invalid.error_banner().contains("at least 1 character"));
}

#[tokio::test]
async fn members_see_keys_but_cannot_manage_them() {
    let app = TestApp::spawn().await;
    let org = app.partner("Acme").await;
    member(&app, "viewer@acme.test", &org, "member").await;
    member(&app, "admin@acme.test", &org, "admin").await;
    let key = app.mint_key(&org).await;
    let mut viewer = Browser::signed_in(&app, "viewer@acme.test").await;
    let list = viewer.get("/keys").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains(&key.id), "members see the list");
    assert!(!list.body.contains("action=\"/keys\""), "but no create form");
    assert!(!list.body.contains("/deactivate"), "and no deactivate links");
    let token = list.csrf();
    let create = viewer.post("/keys", &[("csrf", &token), ("name", "sneaky")]).await;
    assert_eq!(create.status, StatusCode::FORBIDDEN);
    assert!(create.body.contains("Only owners and admins"));
    let deactivate = viewer.post(&format!("/keys/{}/deactivate", key.id), &[("csrf", &token)]).await;
    assert_eq!(deactivate.status, StatusCode::FORBIDDEN);
    assert_eq!(
        viewer.post(&format!("/keys/{}/rotate", key.id), &[("csrf", &token)]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(viewer.get("/audit").await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.catalogs(&key.key).await.status(), 200);

    let mut admin = Browser::signed_in(&app, "admin@acme.test").await;
    assert_eq!(admin.submit("/keys", "/keys", &[("name", "by admin")]).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn keys_of_another_organization_are_not_found() {
    let app = TestApp::spawn().await;
    let acme = app.partner("Acme").await;
    let rival = app.partner("Rival").await;
    member(&app, "owner@acme.test", &acme, "owner").await;
    let rival_key = app.mint_key(&rival).await;
    let mut browser = Browser::signed_in(&app, "owner@acme.test").await;
    let token = browser.get("/keys").await.csrf();
    for action in ["deactivate", "rotate"] {
        let path = format!("/keys/{}/{action}", rival_key.id);
        assert_eq!(browser.get(&path).await.status, StatusCode::NOT_FOUND, "{action}");
        assert_eq!(browser.post(&path, &[("csrf", &token)]).await.status, StatusCode::NOT_FOUND, "{action}");
    }
    assert_eq!(app.catalogs(&rival_key.key).await.status(), 200);
    assert!(!browser.get("/keys").await.body.contains(&rival_key.id));
}

// --- Catalogs, organizations, audit ---------------------------------------------------------

#[tokio::test]
async fn catalogs_page_shows_grants_and_says_how_to_get_access() {
    let app = TestApp::spawn().await;
    let org = app.partner("Acme").await;
    app.create_catalog("northwind").await;
    app.create_catalog("hidden").await;
    member(&app, "viewer@acme.test", &org, "member").await;
    let mut browser = Browser::signed_in(&app, "viewer@acme.test").await;
    let empty = browser.get("/catalogs").await;
    assert!(empty.body.contains("No catalogs yet") && empty.body.contains("platform operator"));
    app.grant(&org, "northwind").await;
    let page = browser.get("/catalogs").await;
    assert!(page.body.contains("data-catalog=\"northwind\"") && page.body.contains("northwind store"));
    assert!(page.body.contains("Not indexed yet"));
    assert!(!page.body.contains("data-catalog=\"hidden\""));
    let (_, deactivated) = app.admin(Method::POST, "/catalogs/northwind/deactivate", Some(json!({}))).await;
    assert_eq!(deactivated["isActive"], false);
    assert!(!browser.get("/catalogs").await.body.contains("data-catalog=\"northwind\""), "as GET /v1/catalogs");
}

#[tokio::test]
async fn users_in_several_organizations_switch_between_them() {
    let app = TestApp::spawn().await;
    let acme = app.partner("Acme").await;
    let beta = app.partner("Beta Corp").await;
    let other = app.partner("Other").await;
    let user = member(&app, "both@acme.test", &acme, "owner").await;
    let (status, _) =
        app.admin(Method::PUT, &format!("/users/{user}/memberships/{beta}"), Some(json!({"role": "member"}))).await;
    assert_eq!(status, StatusCode::OK);
    let beta_key = app.mint_key(&beta).await;
    let mut browser = Browser::signed_in(&app, "both@acme.test").await;
    let keys = browser.get("/keys").await;
    assert!(keys.body.contains("id=\"org-switch\"") && keys.body.contains("Beta Corp"));
    assert!(keys.body.contains("Keys of <strong>Acme</strong>"));

    let switched = browser.submit("/keys", "/session/org", &[("org", &beta)]).await;
    assert_eq!(switched.status, StatusCode::SEE_OTHER);
    let keys = browser.get("/keys").await;
    assert!(keys.body.contains("Keys of <strong>Beta Corp</strong>") && keys.body.contains(&beta_key.id));
    assert!(!keys.body.contains("action=\"/keys\""), "a member in Beta Corp");
    let refused = browser.submit("/keys", "/session/org", &[("org", &other)]).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "not a member there");

    // Leaving an organization takes effect on the next page.
    app.admin(Method::DELETE, &format!("/users/{user}/memberships/{beta}"), None).await;
    assert!(browser.get("/keys").await.body.contains("Keys of <strong>Acme</strong>"));
}

#[tokio::test]
async fn audit_log_lists_sign_in_and_key_events_without_secrets() {
    let app = TestApp::spawn().await;
    let org = app.partner("Acme").await;
    member(&app, "owner@acme.test", &org, "owner").await;
    Browser::new(&app).sign_in("owner@acme.test", "wrong password, long enough").await;
    let mut browser = Browser::signed_in(&app, "owner@acme.test").await;
    let key = shown_key(&browser.submit("/keys", "/keys", &[("name", "audited")]).await);
    let path = format!("/keys/{}/deactivate", key_id_of(&key));
    browser.submit(&path, &path, &[]).await;
    let audit = browser.get("/audit").await;
    assert_eq!(audit.status, StatusCode::OK);
    for action in ["user.sign_in_failed", "user.signed_in", "api_key.created", "api_key.revoked"] {
        assert!(audit.body.contains(&format!("data-action=\"{action}\"")), "{action}:\n{}", audit.body);
    }
    assert!(audit.body.contains("owner@acme.test") && audit.body.contains("127.0.0.1"), "who and from where");
    assert!(audit.body.contains(key_id_of(&key)));
    assert!(!audit.body.contains(&key) && !audit.body.contains(PASSWORD) && !audit.body.contains("wrong password"));
}

// --- Operator area ----------------------------------------------------------------------------

#[tokio::test]
async fn operator_area_is_for_operators_and_acts_through_the_service_layer() {
    let app = TestApp::spawn().await;
    let org = app.partner("Acme").await;
    member(&app, "owner@acme.test", &org, "owner").await;
    operator(&app, "op@octogen.test").await;
    let key = app.mint_key(&org).await;

    let mut partner = Browser::signed_in(&app, "owner@acme.test").await;
    assert_eq!(partner.get("/operator/orgs").await.status, StatusCode::FORBIDDEN);
    let token = partner.get("/keys").await.csrf();
    let forged = partner.post("/operator/catalogs", &[("csrf", &token), ("key", "x"), ("name", "X")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    let mut op = Browser::signed_in(&app, "op@octogen.test").await;
    assert_eq!(op.get("/").await.location(), "/operator/orgs", "an operator without organizations");
    let created = op
        .submit(
            "/operator/catalogs",
            "/operator/catalogs",
            &[("key", "northwind"), ("name", "Northwind"), ("source_url", "")],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let bad = op.submit("/operator/catalogs", "/operator/catalogs", &[("key", "Bad Key"), ("name", "x")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.error_banner().contains("catalog key"));

    let org_page = format!("/operator/orgs/{org}");
    let granted = op.submit(&org_page, &format!("/operator/orgs/{org}/grants"), &[("catalog", "northwind")]).await;
    assert_eq!(granted.status, StatusCode::SEE_OTHER);
    let body: Value = app.catalogs(&key.key).await.json().await.unwrap();
    assert_eq!(body[0]["catalog"], "northwind", "the grant is immediate on the API");
    assert!(partner.get("/catalogs").await.body.contains("data-catalog=\"northwind\""));

    let suspended = op.submit(&org_page, &format!("/operator/orgs/{org}/suspend"), &[]).await;
    assert_eq!(suspended.status, StatusCode::SEE_OTHER);
    assert_eq!(app.catalogs(&key.key).await.status(), 403);
    assert!(partner.get("/keys").await.body.contains("is suspended"));
    op.submit(&org_page, &format!("/operator/orgs/{org}/unsuspend"), &[]).await;
    let revoke = format!("/operator/orgs/{org}/grants/northwind/revoke");
    assert_eq!(op.submit(&org_page, &revoke, &[]).await.status, StatusCode::SEE_OTHER);
    assert_eq!(app.catalogs(&key.key).await.json::<Value>().await.unwrap(), json!([]));

    // Users: create a member of the organization from the browser; they can sign in.
    let made = op
        .submit(
            "/operator/users",
            "/operator/users",
            &[("email", "new@acme.test"), ("password", PASSWORD), ("org", &org), ("role", "admin")],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    let short = op
        .submit(
            "/operator/users",
            "/operator/users",
            &[("email", "x@acme.test"), ("password", "too short"), ("org", &org), ("role", "member")],
        )
        .await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(short.error_banner().contains("at least 15 characters") && !short.body.contains("too short"));
    let mut newcomer = Browser::signed_in(&app, "new@acme.test").await;
    assert!(newcomer.get("/keys").await.body.contains("action=\"/keys\""), "an admin manages keys");

    // Organizations: created with their type; the audit log names the operator.
    let made = op.submit("/operator/orgs", "/operator/orgs", &[("name", "Shop Inc"), ("org_type", "merchant")]).await;
    assert_eq!(made.status, StatusCode::SEE_OTHER);
    let (_, orgs) = app.admin(Method::GET, "/orgs", None).await;
    assert!(orgs.as_array().unwrap().iter().any(|o| o["name"] == "Shop Inc" && o["type"] == "merchant"));
    let (_, events) = app.admin(Method::GET, "/orgs", None).await;
    assert!(events.is_array());
    let db = sqlite(&app).await;
    let actors: Vec<String> =
        sqlx::query_scalar("SELECT actor FROM audit_events WHERE action = 'grant.added'").fetch_all(&db).await.unwrap();
    assert_eq!(actors, ["user:op@octogen.test"]);
}

#[tokio::test]
async fn operators_configure_sources_and_see_index_runs() {
    let app = TestApp::spawn().await;
    app.create_catalog("northwind").await;
    operator(&app, "op@octogen.test").await;
    let mut op = Browser::signed_in(&app, "op@octogen.test").await;
    let page = "/operator/catalogs/northwind";
    let bad = op
        .submit(
            page,
            &format!("{page}/source"),
            &[("url", "ftp://x"), ("format", "shopify"), ("interval_minutes", "60")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    // A feed on a private address that is not listed in fetch_allow_private: the run is
    // recorded and fails, refused (nothing leaves loopback). Its credentials are never shown.
    let feed = "http://feeduser:hunter2@127.0.0.1:9/products.json?access_token=abc123";
    let shown_feed = "http://***@127.0.0.1:9/products.json?access_token=***";
    let leaks = |text: &str| text.contains("hunter2") || text.contains("abc123");
    let started = op.submit(page, &format!("{page}/imports"), &[("url", feed), ("format", "shopify")]).await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let saved = op
        .submit(page, &format!("{page}/source"), &[("url", feed), ("format", "shopify"), ("interval_minutes", "1440")])
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let (_, source) = app.admin(Method::GET, "/catalogs/northwind/source", None).await;
    assert_eq!((&source["intervalSecs"], &source["url"]), (&json!(86_400), &json!(shown_feed)));
    let (_, runs) = app.admin(Method::GET, "/catalogs/northwind/runs", None).await;
    let portal_run = runs.as_array().unwrap().iter().find(|run| run["trigger"] == "portal").unwrap();
    let run_id = portal_run["id"].as_str().unwrap().to_string();
    let run = app.wait_for_run(&run_id).await;
    assert_eq!(run["trigger"], "portal");
    assert_eq!(run["source"], shown_feed);
    let error = run["error"].as_str().unwrap();
    let first_page = "http://***@127.0.0.1:9/products.json?page=1&limit=250";
    assert!(error.contains(&format!("refused {first_page}: 127.0.0.1 is a loopback address")), "{error}");
    assert!(!leaks(error), "{error}");
    let shown = op.get(page).await;
    assert!(shown.body.contains("every 1440 minutes") && shown.body.contains("id=\"runs-table\""), "{}", shown.body);
    assert!(shown.body.contains("***@127.0.0.1:9") && shown.body.contains("access_token=***"), "{}", shown.body);
    assert!(!leaks(&shown.body), "{}", shown.body);
    assert!(shown.body.contains("placeholder=\"the saved URL has credentials: enter it again\""), "{}", shown.body);
    let run_page = op.get(&format!("/operator/runs/{run_id}")).await;
    assert_eq!(run_page.status, StatusCode::OK);
    assert!(!leaks(&run_page.body), "{}", run_page.body);
    let details: Vec<String> =
        sqlx::query_scalar("SELECT detail FROM audit_events WHERE action = 'catalog.source_set'")
            .fetch_all(&sqlite(&app).await)
            .await
            .unwrap();
    assert!(details.len() == 1 && details[0].contains(shown_feed) && !leaks(&details[0]), "{details:?}");
    assert_eq!(op.submit(page, &format!("{page}/source/clear"), &[]).await.status, StatusCode::SEE_OTHER);
    assert_eq!(app.admin(Method::GET, "/catalogs/northwind/source", None).await.1, Value::Null);
}

// --- Users through the admin API and the CLI -------------------------------------------------

#[tokio::test]
async fn passwords_follow_the_length_policy_and_never_come_back() {
    let app = TestApp::spawn().await;
    for (password, kind) in [("a".repeat(14), "string_too_short"), ("a".repeat(129), "string_too_long")] {
        let body = json!({"email": "op@octogen.test", "password": password, "operator": true});
        let (status, error) = app.admin(Method::POST, "/users", Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(error["detail"][0]["type"], kind);
        assert!(!error.to_string().contains(&password), "{error}");
    }
    let (status, error) = app.admin(Method::POST, "/users", Some(json!({"password": "x".repeat(20)}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!error.to_string().contains(&"x".repeat(20)), "a missing field does not echo the body: {error}");
    for password in ["a".repeat(15), "é".repeat(128)] {
        let email = format!("len{}@octogen.test", password.chars().count());
        create_user(&app, json!({"email": email, "password": password, "operator": true})).await;
        let page = Browser::new(&app).sign_in(&email, &password).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
    }
    let (status, _) = app
        .admin(
            Method::POST,
            "/users",
            Some(json!({"email": "LEN15@octogen.test", "password": PASSWORD, "operator": true})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "emails are unique, case-insensitively");
}

#[tokio::test]
async fn admin_user_create_makes_operators_and_partner_users() {
    let app = TestApp::spawn().await;
    let org = app.partner("Acme").await;
    let output =
        app.cli(&["admin", "user", "create", "--operator", "--email", "op@octogen.test", "--password", PASSWORD]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(Browser::new(&app).sign_in("op@octogen.test", PASSWORD).await.status, StatusCode::SEE_OTHER);

    // Without --password and without a terminal, the password is read from standard input.
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_octogen"))
        .args(["admin", "user", "create", "--email", "owner@acme.test", "--org", &org, "--role", "owner", "--json"])
        .env("OCTOGEN_SERVER", &app.base)
        .env("OCTOGEN_ADMIN_TOKEN", &app.admin_token)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use tokio::io::AsyncWriteExt;
    child.stdin.take().unwrap().write_all(format!("{PASSWORD}\n").as_bytes()).await.unwrap();
    let output = child.wait_with_output().await.unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let user: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(user["memberships"][0]["role"], "owner");
    let mut owner = Browser::signed_in(&app, "owner@acme.test").await;
    assert!(owner.get("/keys").await.body.contains("action=\"/keys\""));

    let output =
        app.cli(&["admin", "user", "create", "--email", "x@acme.test", "--org", &org, "--password", "short one"]).await;
    assert_eq!(output.status.code(), Some(6), "invalid request");
    assert!(stderr(&output).contains("at least 15 characters") && !stderr(&output).contains("short one"));
    let output = app.cli(&["admin", "user", "create", "--email", "x@acme.test", "--password", PASSWORD]).await;
    assert_eq!(output.status.code(), Some(2), "an organization or --operator is required");
    let output = app.cli(&["admin", "user", "list"]).await;
    assert!(crate::helpers::stdout(&output).contains("owner@acme.test"));
}

#[tokio::test]
async fn operators_set_rate_limits_and_api_versions() {
    let app = TestApp::spawn().await;
    let (org, key) = app.partner_with_northwind("northwind").await;
    operator(&app, "op@octogen.test").await;
    let mut op = Browser::signed_in(&app, "op@octogen.test").await;
    let org_page = format!("/operator/orgs/{org}");
    let page = op.get(&org_page).await;
    assert!(page.body.contains("Requests per minute") && page.body.contains("2026-10-01"), "{}", page.body);

    let saved = op.submit(&org_page, &format!("{org_page}/rate-limit"), &[("per_minute", "2")]).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let statuses: Vec<u16> = {
        let mut statuses = Vec::new();
        for _ in 0..3 {
            statuses.push(app.catalogs(&key).await.status().as_u16());
        }
        statuses
    };
    assert_eq!(statuses, [200, 200, 429], "the new budget applies on the next request");
    let bad = op.submit(&org_page, &format!("{org_page}/rate-limit"), &[("per_minute", "lots")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.error_banner().contains("not a number"));
    let zero = op.submit(&org_page, &format!("{org_page}/rate-limit"), &[("per_minute", "0")]).await;
    assert_eq!(zero.status, StatusCode::UNPROCESSABLE_ENTITY);
    let reset = op.submit(&org_page, &format!("{org_page}/rate-limit"), &[("per_minute", "")]).await;
    assert_eq!(reset.status, StatusCode::SEE_OTHER);

    let pinned = op.submit(&org_page, &format!("{org_page}/api-version"), &[("version", "2026-10-01")]).await;
    assert_eq!(pinned.status, StatusCode::SEE_OTHER, "{}", pinned.body);
    let response = app
        .http
        .post(app.url("/v1/products/search"))
        .bearer_auth(&key)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["octogen-version"], "2026-10-01");
    let unknown = op.submit(&org_page, &format!("{org_page}/api-version"), &[("version", "1999-01-01")]).await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
}

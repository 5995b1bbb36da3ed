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

    /// The body with the slashes minijinja escapes in values (`&#x2f;`) put back, to find URLs in it.
    fn with_slashes(&self) -> String {
        self.body.replace("&#x2f;", "/")
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

    /// A GET as a browser's address bar sends it (`Accept: text/html…`).
    async fn navigate(&mut self, path: &str) -> Page {
        let request = self
            .http
            .get(format!("{}{path}", self.base))
            .header("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8");
        self.send(request).await
    }

    /// Follows a 303 with a GET, as a browser does after a form post.
    pub(crate) async fn follow(&mut self, page: &Page) -> Page {
        assert_eq!(page.status, StatusCode::SEE_OTHER, "a redirect, not:\n{}", page.body);
        let location = page.location().to_string();
        self.get(&location).await
    }

    /// Creates a key with the portal's form; returns the page the browser lands on (which shows it once).
    pub(crate) async fn create_key(&mut self, name: &str) -> Page {
        let posted = self.submit("/keys", "/keys", &[("name", name)]).await;
        self.follow(&posted).await
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

pub async fn sqlite(app: &TestApp) -> sqlx::SqlitePool {
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

/// Signs in with a wrong password; returns the page.
async fn wrong_password(app: &TestApp, email: &str) -> Page {
    Browser::new(app).sign_in(email, "wrong password, long enough").await
}

#[tokio::test]
async fn sign_in_is_slowed_down_per_account_never_locked() {
    let app = TestApp::spawn().await;
    let org = app.partner("Acme").await;
    member(&app, "owner@acme.test", &org, "owner").await;
    member(&app, "other@acme.test", &org, "member").await;
    for _ in 0..5 {
        assert_eq!(wrong_password(&app, "owner@acme.test").await.status, StatusCode::UNAUTHORIZED);
    }
    // Five failures: the next attempt must wait a second; until then even the right password is not checked.
    let page = Browser::new(&app).sign_in("owner@acme.test", PASSWORD).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(page.headers["retry-after"], "1");
    assert_eq!(page.error_banner(), "Too many failed sign-ins. Try again in 1 second.");
    assert!(page.body.contains("name=\"csrf\""), "the form is still there");
    // Other accounts from the same address are unaffected.
    assert_eq!(Browser::new(&app).sign_in("other@acme.test", PASSWORD).await.status, StatusCode::SEE_OTHER);

    // After the wait the right password works (no lockout), and the account's failures are forgotten.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(Browser::new(&app).sign_in("owner@acme.test", PASSWORD).await.status, StatusCode::SEE_OTHER);
    assert_eq!(wrong_password(&app, "owner@acme.test").await.status, StatusCode::UNAUTHORIZED, "free again");
}

#[tokio::test]
async fn parallel_wrong_passwords_are_checked_only_as_often_as_allowed() {
    let app = TestApp::spawn().await;
    let org = app.partner("Acme").await;
    member(&app, "owner@acme.test", &org, "owner").await;
    // One form (pre-session cookie and token), posted 200 times at once.
    let mut browser = Browser::new(&app);
    let token = browser.get("/login").await.csrf();
    let cookie = browser.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
    let started = Instant::now();
    let attempts: Vec<_> = (0..200)
        .map(|_| {
            let request =
                browser.http.post(app.url("/login")).header("cookie", &cookie).header("origin", &app.base).form(&[
                    ("csrf", token.as_str()),
                    ("email", "owner@acme.test"),
                    ("password", "wrong password, long enough"),
                ]);
            tokio::spawn(async move {
                let response = request.send().await.unwrap();
                (response.status(), response.headers().get("retry-after").is_some())
            })
        })
        .collect();
    let mut answers = BTreeMap::new();
    for attempt in attempts {
        let (status, retry_after) = attempt.await.unwrap();
        assert!(status != StatusCode::TOO_MANY_REQUESTS || retry_after, "429 says when to come back");
        *answers.entry(status.as_u16()).or_insert(0) += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    // Every checked password leaves one audit row (the user has one organization).
    let db = sqlite(&app).await;
    let checked: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'user.sign_in_failed'")
        .fetch_one(&db)
        .await
        .unwrap();
    // 5 free attempts, then one more each time a wait (1 s, 2 s, 4 s …) has passed while the burst lasted.
    let allowed = 5 + (seconds + 1.0).log2().floor() as i64;
    assert!(checked >= 5 && checked <= allowed, "{checked} passwords checked in {seconds:.1} s (allowed {allowed})");
    assert_eq!(answers.get(&401).copied().unwrap_or(0), checked, "{answers:?}");
    assert_eq!(answers.get(&429).copied().unwrap_or(0), 200 - checked, "{answers:?}");
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

    // An IPv6 client counts by its /64: fresh addresses in the same /64 share one budget.
    for n in 0..20 {
        let address = format!("2001:db8:7:7::{:x}", n + 1);
        let page = from(&address).sign_in(&format!("guess{n}@acme.test"), "wrong password, long enough").await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    let same_64 = from("2001:db8:7:7:ffff::1").sign_in("owner@acme.test", PASSWORD).await;
    assert_eq!(same_64.status, StatusCode::TOO_MANY_REQUESTS, "another address of the same /64");
    let next_64 = from("2001:db8:7:8::1").sign_in("owner@acme.test", PASSWORD).await;
    assert_eq!(next_64.status, StatusCode::SEE_OTHER, "the neighbouring /64 is another client");
    // The audit log records the forwarded address.
    let (_, events) = app.admin(Method::GET, "/orgs", None).await;
    assert!(events.is_array());
    let db = sqlite(&app).await;
    let addresses: Vec<Option<String>> =
        sqlx::query_scalar("SELECT client_addr FROM audit_events WHERE action = 'user.signed_in'")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(addresses, [Some("203.0.113.8".to_string()), Some("2001:db8:7:8::1".to_string())]);
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
    assert_eq!(browser.post("/keys", &as_refs(&create(&token))).await.status, StatusCode::SEE_OTHER);
    assert_eq!(browser.post_with("/keys", &as_refs(&create(&token)), &[]).await.status, StatusCode::SEE_OTHER);

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
    assert!(rotate.body.contains("Keep the old key working for"));
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
    assert_eq!(created.status, StatusCode::SEE_OTHER);
    assert_security_headers("POST /keys", &created);
    let shown = owner.follow(&created).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_security_headers("the new key's page", &shown);
    for path in
        ["/keys/issued/nope".to_string(), "/keys/nope".into(), "/audit?action=api_key.created&from=2020-01-01".into()]
    {
        assert_security_headers(&path, &owner.get(&path).await);
    }

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
        format!("/operator/orgs/{org}/suspend"),
        "/operator/catalogs/northwind/deactivate".into(),
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

    let created = browser.create_key("production <backend>").await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    assert_eq!(created.headers["cache-control"], "no-store");
    assert!(created.body.contains("will not be shown again"));
    assert!(created.body.contains("production &lt;backend&gt;"), "names are escaped");
    let key = shown_key(&created);
    assert_eq!(app.catalogs(&key).await.status(), 200);

    let list = browser.get("/keys").await;
    assert!(list.body.contains(key_id_of(&key)) && list.body.contains("production &lt;backend&gt;"));
    assert!(!list.body.contains(&key), "the list never shows the secret");

    // Rotation: a replacement shown once, the old key working for the chosen time, with guidance.
    let rotate = format!("/keys/{}/rotate", key_id_of(&key));
    let posted = browser.submit(&rotate, &rotate, &[("keep_old", "86400")]).await;
    let rotated = browser.follow(&posted).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let replacement = shown_key(&rotated);
    assert_ne!(replacement, key);
    assert!(rotated.body.contains("keeps working until"), "{}", rotated.body);
    assert_eq!(app.catalogs(&key).await.status(), 200, "the old key works until it expires or is deactivated");
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
    assert_eq!(invalid.error_banner(), "Enter a name.");
}

/// Issue 17.1: the key is created by the POST and shown by the GET it redirects to, once.
#[tokio::test]
async fn reloading_the_new_key_page_creates_no_key_and_shows_the_secret_once() {
    let app = TestApp::spawn().await;
    let org = app.partner("Acme").await;
    member(&app, "owner@acme.test", &org, "owner").await;
    let mut browser = Browser::signed_in(&app, "owner@acme.test").await;
    let db = sqlite(&app).await;
    let key_count =
        || async { app.admin(Method::GET, &format!("/orgs/{org}/keys"), None).await.1.as_array().unwrap().len() };

    let posted = browser.submit("/keys", "/keys", &[("name", "reloaded")]).await;
    assert_eq!(posted.status, StatusCode::SEE_OTHER, "post/redirect/get: {}", posted.body);
    let page = posted.location().to_string();
    assert!(page.starts_with("/keys/issued/"), "{page}");
    assert!(!page.contains("octo_live_") && !posted.body.contains("octo_live_"), "never in a URL or the redirect");
    // Until shown, the store holds the key sealed: neither the key nor its secret part in clear.
    let sealed: Vec<String> =
        sqlx::query_scalar("SELECT sealed FROM portal_flash WHERE sealed IS NOT NULL").fetch_all(&db).await.unwrap();
    assert_eq!(sealed.len(), 1);

    let shown = browser.get(&page).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    assert_eq!(shown.headers["cache-control"], "no-store");
    let key = shown_key(&shown);
    assert!(!sealed[0].contains(&key[43..]) && !sealed[0].contains(key_id_of(&key)), "sealed, not stored in clear");
    assert_eq!(app.catalogs(&key).await.status(), 200);

    // Reload, then the back button (the same GET again): no new key, no secret.
    for attempt in ["reload", "back button"] {
        let again = browser.get(&page).await;
        assert_eq!(again.status, StatusCode::GONE, "{attempt}");
        assert!(!again.body.contains(&key) && !again.body.contains("id=\"new-key\""), "{attempt}: shown once");
        assert!(again.body.contains("already shown") && again.body.contains("No key was created"), "{attempt}");
    }
    assert_eq!(key_count().await, 1, "one click, one key");
    let created: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'api_key.created'")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(created, 1);
    let left: Vec<Option<String>> = sqlx::query_scalar("SELECT sealed FROM portal_flash").fetch_all(&db).await.unwrap();
    assert_eq!(left, [None], "the sealed secret is gone once shown");

    // Only the session that made the key can open its page; trying does not use it up.
    let posted = browser.submit("/keys", "/keys", &[("name", "second")]).await;
    let page = posted.location().to_string();
    let mut other = Browser::signed_in(&app, "owner@acme.test").await;
    let stolen = other.get(&page).await;
    assert_eq!(stolen.status, StatusCode::GONE);
    assert!(!stolen.body.contains("id=\"new-key\""));
    assert_eq!(browser.get(&page).await.status, StatusCode::OK, "still there for its own session");

    // After ten minutes the page is gone (the row is deleted by the next write).
    let posted = browser.submit("/keys", "/keys", &[("name", "late")]).await;
    let page = posted.location().to_string();
    sqlx::query("UPDATE portal_flash SET expires_at = $1").bind(now_millis() - 1).execute(&db).await.unwrap();
    let late = browser.get(&page).await;
    assert_eq!(late.status, StatusCode::GONE);
    assert!(!late.body.contains("id=\"new-key\""));
    let lifetime: i64 = {
        browser.submit("/keys", "/keys", &[("name", "fresh")]).await;
        sqlx::query_scalar("SELECT MAX(expires_at - created_at) FROM portal_flash").fetch_one(&db).await.unwrap()
    };
    assert_eq!(lifetime, 10 * 60 * 1000);
    let expired: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM portal_flash WHERE expires_at <= $1")
        .bind(now_millis())
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(expired, 0, "expired rows are deleted, not kept");

    // Rotation works the same way: one replacement however often its page is loaded.
    let rotate = format!("/keys/{}/rotate", key_id_of(&key));
    let posted = browser.submit(&rotate, &rotate, &[("keep_old", "86400")]).await;
    assert_eq!(posted.status, StatusCode::SEE_OTHER);
    let before = key_count().await;
    let page = posted.location().to_string();
    let rotated = browser.get(&page).await;
    assert!(rotated.body.contains("Replacement key created") && rotated.body.contains("keeps working until"));
    let replacement = shown_key(&rotated);
    assert_eq!(app.catalogs(&replacement).await.status(), 200);
    assert_eq!(browser.get(&page).await.status, StatusCode::GONE);
    assert_eq!(key_count().await, before, "reloading the rotation's page rotates nothing");

    // Signing out ends the session's unseen secrets with it ("fresh", never opened, and this one).
    browser.submit("/keys", "/keys", &[("name", "pending")]).await;
    let unseen = || async {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM portal_flash WHERE sealed IS NOT NULL")
            .fetch_one(&db)
            .await
            .unwrap();
        count
    };
    assert_eq!(unseen().await, 2);
    browser.submit("/keys", "/logout", &[]).await;
    assert_eq!(unseen().await, 0);
}

/// Issue 17.15: which key is which, who made it, and deactivated keys out of the way.
#[tokio::test]
async fn the_keys_page_shows_short_ids_creators_and_hides_deactivated_keys() {
    let app = TestApp::spawn().await;
    let org = app.partner("Acme").await;
    member(&app, "owner@acme.test", &org, "owner").await;
    let minted = app.mint_key(&org).await;
    let mut browser = Browser::signed_in(&app, "owner@acme.test").await;
    browser.submit("/keys", "/keys", &[("name", "made in the portal")]).await;
    let (_, keys) = app.admin(Method::GET, &format!("/orgs/{org}/keys"), None).await;
    let made = keys.as_array().unwrap().iter().find(|key| key["name"] == "made in the portal").expect("the key");
    let id = made["id"].as_str().unwrap();

    let page = browser.get("/keys").await;
    let row = |page: &Page, id: &str| {
        let start = page.body.find(&format!("data-key-id=\"{id}\"")).unwrap_or_else(|| panic!("{id}:\n{}", page.body));
        page.body[start..start + page.body[start..].find("</tr>").unwrap()].to_string()
    };
    let mine = row(&page, id);
    assert!(mine.contains(&format!("octo_live_…{}", &id[28..])), "prefix and last four: {mine}");
    assert!(mine.contains("by owner@acme.test"), "{mine}");
    assert!(mine.contains("Expires"), "{mine}");
    assert!(row(&page, &minted.id).contains("by Operator (admin API)"));

    app.revoke(&minted.id).await;
    let all = browser.get("/keys").await;
    assert!(all.body.contains(&format!("data-key-id=\"{}\"", minted.id)), "deactivated keys are listed by default");
    assert!(all.body.contains("1 active, 1 deactivated") && all.body.contains("href=\"/keys?deactivated=hide\""));
    let active_only = browser.get("/keys?deactivated=hide").await;
    assert!(!active_only.body.contains(&format!("data-key-id=\"{}\"", minted.id)));
    assert!(active_only.body.contains(&format!("data-key-id=\"{id}\"")));
    assert!(active_only.body.contains("Show deactivated keys (1)"));
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
    assert_eq!(admin.submit("/keys", "/keys", &[("name", "by admin")]).await.status, StatusCode::SEE_OTHER);
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
    let key = shown_key(&browser.create_key("audited").await);
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

/// Issue 17.14: seconds and the time zone, filters, and pages that neither skip nor repeat.
#[tokio::test]
async fn the_audit_log_filters_and_pages() {
    let app = TestApp::spawn().await;
    let org = app.partner("Acme").await;
    member(&app, "owner@acme.test", &org, "owner").await;
    for _ in 0..55 {
        app.mint_key(&org).await;
    }
    let mut browser = Browser::signed_in(&app, "owner@acme.test").await;
    let rows = |page: &Page| page.body.matches("<tr data-action=").count();
    // Each event's row, whole (no two events of this test have the same one).
    let targets = |page: &Page| -> Vec<String> {
        page.body
            .split("<tr data-action=")
            .skip(1)
            .map(|rest| rest[..rest.find("</tr>").unwrap()].to_string())
            .collect()
    };
    let link = |page: &Page, rel: &str| -> Option<String> {
        let marker = format!("rel=\"{rel}\"");
        let end = page.body.find(&marker)?;
        let start = page.body[..end].rfind("href=\"")? + 6;
        Some(page.body[start..end].trim_end().trim_end_matches('"').replace("&amp;", "&").replace("&#x2f;", "/"))
    };

    let first = browser.get("/audit").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(rows(&first), 50, "a page of 50 events");
    let stamp = first.body.split("<time datetime=").nth(1).unwrap();
    let inner = &stamp[stamp.find('>').unwrap() + 1..stamp.find("</time>").unwrap()];
    let shown: String = inner.split('<').map(|part| part.split_once('>').map_or(part, |(_, text)| text)).collect();
    assert!(
        shown.len() == 23 && shown.ends_with(" UTC") && shown.as_bytes()[16] == b':',
        "to the second, with the time zone: {shown:?}"
    );
    assert!(link(&first, "prev").is_none(), "the newest page has no newer page");
    let older = link(&first, "next").expect("an older page");
    // Events recorded meanwhile do not shift the next page.
    browser.submit("/keys", "/keys", &[("name", "meanwhile")]).await;
    let second = browser.get(&older).await;
    // 58 events before the page was read: the organization, the membership, 55 keys, the sign-in.
    assert_eq!(rows(&second), 8, "the rest, nothing repeated: {}", second.body);
    let (first_targets, second_targets) = (targets(&first), targets(&second));
    assert!(first_targets.iter().all(|target| !second_targets.contains(target)), "no event on two pages");
    assert!(link(&second, "next").is_none());
    let back = browser.get(&link(&second, "prev").expect("a newer page")).await;
    assert_eq!(targets(&back), first_targets, "back to the same first page");

    // Filters: event type, actor, dates (UTC days, inclusive); they stay set on every page link.
    let signed_in = browser.get("/audit?action=user.signed_in").await;
    assert_eq!(rows(&signed_in), 1, "{}", signed_in.body);
    assert!(signed_in.body.contains("<option value=\"user.signed_in\" selected>"));
    let by_owner = browser.get("/audit?actor=OWNER%40acme").await;
    assert_eq!(rows(&by_owner), 2, "the sign-in and the key made meanwhile");
    let by_operator = browser.get("/audit?actor=operator&action=api_key.created").await;
    assert_eq!(rows(&by_operator), 50);
    let next = link(&by_operator, "next").expect("a second page");
    assert!(next.contains("action=api_key.created") && next.contains("actor=operator"), "filters kept: {next}");
    let today = &octogen_core::Timestamp::now().to_rfc3339()[..10];
    assert_eq!(rows(&browser.get(&format!("/audit?from={today}&to={today}")).await), 50);
    assert_eq!(rows(&browser.get("/audit?to=2020-01-01").await), 0);
    assert!(browser.get("/audit?to=2020-01-01").await.body.contains("No events match"));
    let bad = browser.get("/audit?from=12%2F08%2F2026&actor=owner").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.error_banner().contains("“From” is not a date"), "{}", bad.error_banner());
    assert!(bad.with_slashes().contains("value=\"12/08/2026\"") && bad.body.contains("value=\"owner\""), "as typed");
}

// --- Error pages ------------------------------------------------------------------------------

/// Issue 17.12: people get HTML pages with the navigation; API clients keep JSON.
#[tokio::test]
async fn unknown_portal_urls_get_a_page_with_the_navigation_and_api_urls_keep_json() {
    let app = TestApp::spawn().await;
    let org = app.partner("Acme").await;
    member(&app, "owner@acme.test", &org, "owner").await;
    member(&app, "viewer@acme.test", &org, "member").await;
    let mut owner = Browser::signed_in(&app, "owner@acme.test").await;
    let with_navigation = |page: &Page| page.body.contains("class=\"mainnav\"") && page.body.contains("Sign out");

    for path in ["/keys/nope", "/keys/nope/further", "/operator/whatever", "/catalogs/x", "/audit/2026"] {
        let page = owner.get(path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        assert!(page.headers["content-type"].to_str().unwrap().starts_with("text/html"), "{path}");
        assert!(page.body.contains("Page not found") && with_navigation(&page), "{path}:\n{}", page.body);
        assert_security_headers(path, &page);
    }
    // Elsewhere, a browser (Accept: text/html) gets the page; other clients get the API's JSON.
    for path in ["/admin/whatever", "/anything.html", "/nope"] {
        let page = owner.navigate(path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        assert!(with_navigation(&page), "{path}");
        let json = owner.get(path).await;
        assert_eq!(json.body, r#"{"detail":"Not Found"}"#, "{path}");
    }
    for path in ["/v1/nope", "/admin/v1/nope", "/oauth2/nope", "/mcp/nope"] {
        let page = owner.navigate(path).await;
        assert_eq!((page.status, page.body.as_str()), (StatusCode::NOT_FOUND, r#"{"detail":"Not Found"}"#), "{path}");
    }
    // Handlers' error pages keep the navigation too; signed out, the page has none.
    let key_page = owner.get("/keys/0123456789abcdef0123456789abcdef/deactivate").await;
    assert!(key_page.status == StatusCode::NOT_FOUND && with_navigation(&key_page));
    let mut viewer = Browser::signed_in(&app, "viewer@acme.test").await;
    let refused = viewer.get("/audit").await;
    assert!(refused.status == StatusCode::FORBIDDEN && with_navigation(&refused), "{}", refused.body);
    let wrong_method = owner.get("/logout").await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(with_navigation(&wrong_method) && wrong_method.body.contains("use the button"));
    let anonymous = Browser::new(&app).get("/keys/nope").await;
    assert_eq!(anonymous.status, StatusCode::NOT_FOUND);
    assert!(anonymous.body.contains("Page not found") && !with_navigation(&anonymous));
}

/// Issue 17.12: a refused form says what to do in words and keeps what was typed (but never a password).
#[tokio::test]
async fn refused_forms_say_what_to_fix_and_keep_what_was_typed() {
    let app = TestApp::spawn().await;
    let org = app.partner("Acme").await;
    member(&app, "owner@acme.test", &org, "owner").await;
    operator(&app, "op@octogen.test").await;
    let mut owner = Browser::signed_in(&app, "owner@acme.test").await;
    let long = "n".repeat(101);
    let refused = owner.submit("/keys", "/keys", &[("name", &long)]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused.error_banner(), "The name can have at most 100 characters, on one line.");
    assert!(refused.body.contains(&format!("value=\"{long}\"")), "the name is still in the field");

    let mut op = Browser::signed_in(&app, "op@octogen.test").await;
    let fields = [("key", "Bad Key"), ("name", "Northwind <Outfitters>"), ("source_url", "https://northwind.example")];
    let refused = op.submit("/operator/catalogs", "/operator/catalogs", &fields).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.error_banner().starts_with("A catalog key is"), "{}", refused.error_banner());
    for typed in ["value=\"Bad Key\"", "value=\"Northwind &lt;Outfitters&gt;\"", "value=\"https://northwind.example\""]
    {
        assert!(refused.with_slashes().contains(typed), "{typed}");
    }
    let no_name = op.submit("/operator/orgs", "/operator/orgs", &[("name", " "), ("org_type", "merchant")]).await;
    assert_eq!(no_name.error_banner(), "Enter a name.");
    assert!(no_name.body.contains("<option value=\"merchant\" selected>"), "the type is kept");
    let user = [("email", "new@acme.test"), ("password", "too short"), ("org", org.as_str()), ("role", "admin")];
    let short = op.submit("/operator/users", "/operator/users", &user).await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(short.body.contains("value=\"new@acme.test\"") && !short.body.contains("too short"));
    assert!(short.body.contains("<option value=\"admin\" selected>"));
    let org_page = format!("/operator/orgs/{org}");
    let lots = op.submit(&org_page, &format!("{org_page}/rate-limit"), &[("per_minute", "lots")]).await;
    assert_eq!(lots.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(lots.body.contains("value=\"lots\""), "{}", lots.body);
    let nobody =
        op.submit(&org_page, &format!("{org_page}/members"), &[("email", "ghost@acme.test"), ("role", "owner")]).await;
    assert!(
        nobody.body.contains("value=\"ghost@acme.test\"") && nobody.body.contains("<option value=\"owner\" selected>")
    );
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
    assert_eq!(actors, ["operator:op@octogen.test"], "recorded as an operator's action, not a member's");
}

/// Issue 17.13: suspending, deactivating a catalog, removing a grant or a membership asks first.
#[tokio::test]
async fn destructive_operator_actions_ask_for_confirmation_first() {
    let app = TestApp::spawn().await;
    let (org, key) = app.partner_with_northwind("northwind").await;
    let user = member(&app, "owner@acme.test", &org, "owner").await;
    operator(&app, "op@octogen.test").await;
    let mut op = Browser::signed_in(&app, "op@octogen.test").await;
    let cases = [
        (
            format!("/operator/orgs/{org}"),
            format!("/operator/orgs/{org}/suspend"),
            "Suspend organization",
            "403 Forbidden",
        ),
        (
            "/operator/catalogs/northwind".into(),
            "/operator/catalogs/northwind/deactivate".into(),
            "Deactivate catalog",
            "disappear",
        ),
        (
            format!("/operator/orgs/{org}"),
            format!("/operator/orgs/{org}/grants/northwind/revoke"),
            "Remove grant",
            "no longer see",
        ),
        (
            format!("/operator/users/{user}"),
            format!("/operator/users/{user}/memberships/{org}/remove"),
            "Remove from organization",
            "loses access",
        ),
    ];
    for (from, action, button, consequence) in &cases {
        let start = op.get(from).await;
        assert!(start.body.contains(&format!("href=\"{action}\"")), "{from} links to the confirmation");
        assert!(!start.body.contains(&format!("action=\"{action}\"")), "{from} has no form that acts at once");
        let confirm = op.get(action).await;
        assert_eq!(confirm.status, StatusCode::OK, "{action}");
        let body = confirm.with_slashes();
        assert!(body.contains(&format!("action=\"{action}\"")) && body.contains(button), "{action}:\n{body}");
        assert!(body.contains(consequence) && body.contains(&format!("href=\"{from}\"")), "{action}:\n{body}");
    }
    // Nothing changed by looking at the confirmations.
    let body: Value = app.catalogs(&key).await.json().await.unwrap();
    assert_eq!(body[0]["catalog"], "northwind");
    let memberships: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE user_id = $1")
        .bind(&user)
        .fetch_one(&sqlite(&app).await)
        .await
        .unwrap();
    assert_eq!(memberships, 1);

    // Confirming does it.
    let (from, action, _, _) = &cases[0];
    assert_eq!(op.submit(action, action, &[]).await.status, StatusCode::SEE_OTHER);
    assert_eq!(app.catalogs(&key).await.status(), 403);
    assert_eq!(op.get(action).await.status, StatusCode::BAD_REQUEST, "already suspended");
    assert!(op.get(from).await.body.contains("Reactivate"));
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

// --- Account controls and the audit log -------------------------------------------------------

/// One row of `audit_events`, as stored.
#[derive(Debug)]
struct AuditRow {
    actor: String,
    org: Option<String>,
    target: Option<String>,
    client_addr: Option<String>,
    detail: Value,
}

/// The audit rows of one action, oldest first.
async fn audit_rows(app: &TestApp, action: &str) -> Vec<AuditRow> {
    let rows = sqlx::query(
        "SELECT actor, org_id, target, client_addr, detail FROM audit_events WHERE action = $1 ORDER BY id",
    )
    .bind(action)
    .fetch_all(&sqlite(app).await)
    .await
    .unwrap();
    use sqlx::Row;
    rows.iter()
        .map(|row| AuditRow {
            actor: row.get("actor"),
            org: row.get("org_id"),
            target: row.get("target"),
            client_addr: row.get("client_addr"),
            detail: row
                .get::<Option<String>, _>("detail")
                .map(|detail| serde_json::from_str(&detail).unwrap())
                .unwrap_or(Value::Null),
        })
        .collect()
}

#[tokio::test]
async fn unknown_email_sign_in_failures_are_audited_without_the_email() {
    let app = TestApp::spawn().await;
    for email in ["Ghost.Writer@Elsewhere.test", "my-password-typed-in-the-wrong-field", "ghost.writer@elsewhere.test"]
    {
        assert_eq!(wrong_password(&app, email).await.status, StatusCode::UNAUTHORIZED);
    }
    let rows = audit_rows(&app, "user.sign_in_failed").await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    for row in &rows {
        let who = (row.actor.as_str(), &row.org, &row.target, row.client_addr.as_deref());
        assert_eq!(who, ("anonymous", &None, &None, Some("127.0.0.1")));
        assert_eq!(row.detail["reason"], "unknown_email");
        let fingerprint = row.detail["emailFingerprint"].as_str().unwrap();
        assert!(fingerprint.len() == 16 && fingerprint.chars().all(|c| c.is_ascii_hexdigit()), "{fingerprint}");
    }
    assert_eq!(rows[0].detail["emailDomain"], "elsewhere.test");
    assert_eq!(rows[1].detail["emailDomain"], Value::Null, "not an email: no part of it is kept");
    assert_eq!(
        rows[0].detail["emailFingerprint"], rows[2].detail["emailFingerprint"],
        "repeated attempts at one name show"
    );
    assert_ne!(rows[0].detail["emailFingerprint"], rows[1].detail["emailFingerprint"]);
    let everything: Vec<String> =
        sqlx::query_scalar("SELECT actor || COALESCE(target, '') || COALESCE(detail, '') FROM audit_events")
            .fetch_all(&sqlite(&app).await)
            .await
            .unwrap();
    let text = everything.join(" ").to_lowercase();
    assert!(!text.contains("ghost") && !text.contains("my-password"), "the typed text is never stored: {text}");
}

#[tokio::test]
async fn partners_see_what_operators_did_but_not_who_or_from_where() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.trusted_proxies = "127.0.0.1".parse().unwrap();
    let app = TestApp::spawn_with(config, dir).await;
    let org = app.partner("Acme").await;
    member(&app, "owner@acme.test", &org, "owner").await;
    operator(&app, "op@octogen.test").await;
    app.create_catalog("northwind").await;
    // The operator token, from the operator's workstation.
    let granted = app
        .http
        .put(app.url(&format!("/admin/v1/orgs/{org}/grants/northwind")))
        .bearer_auth(&app.admin_token)
        .header("x-forwarded-for", "198.51.100.77")
        .send()
        .await
        .unwrap();
    assert_eq!(granted.status(), StatusCode::OK);
    // An operator in the portal's operator area, from another address.
    let mut op = Browser::new(&app);
    op.extra.push(("x-forwarded-for", "198.51.100.78".into()));
    assert_eq!(op.sign_in("op@octogen.test", PASSWORD).await.status, StatusCode::SEE_OTHER);
    let org_page = format!("/operator/orgs/{org}");
    assert_eq!(op.submit(&org_page, &format!("{org_page}/suspend"), &[]).await.status, StatusCode::SEE_OTHER);
    op.submit(&org_page, &format!("{org_page}/unsuspend"), &[]).await;

    let mut owner = Browser::new(&app);
    owner.extra.push(("x-forwarded-for", "203.0.113.5".into()));
    assert_eq!(owner.sign_in("owner@acme.test", PASSWORD).await.status, StatusCode::SEE_OTHER);
    let audit = owner.get("/audit").await;
    for action in ["grant.added", "organization.suspended", "organization.unsuspended"] {
        let row = audit_row(&audit.body, action);
        assert!(row.contains("Octogen operator"), "{action}: {row}");
    }
    for hidden in ["198.51.100.77", "198.51.100.78", "op@octogen.test"] {
        assert!(!audit.body.contains(hidden), "{hidden} shown to a partner:\n{}", audit.body);
    }
    assert!(audit_row(&audit.body, "user.signed_in").contains("203.0.113.5"), "members' own addresses stay");
    // The store keeps who and where, for operators.
    let rows = audit_rows(&app, "organization.suspended").await;
    assert_eq!(
        (rows[0].actor.as_str(), rows[0].client_addr.as_deref()),
        ("operator:op@octogen.test", Some("198.51.100.78"))
    );
}

/// The `<tr>` of the first audit row with `action`.
fn audit_row<'a>(html: &'a str, action: &str) -> &'a str {
    let start = html.find(&format!("data-action=\"{action}\"")).unwrap_or_else(|| panic!("no {action} row:\n{html}"));
    &html[start..start + html[start..].find("</tr>").unwrap()]
}

#[tokio::test]
async fn operators_contain_an_account_from_the_operator_area() {
    let app = TestApp::spawn().await;
    let org = app.partner("Acme").await;
    let victim = member(&app, "owner@acme.test", &org, "owner").await;
    operator(&app, "op@octogen.test").await;
    let mut victim_browser = Browser::signed_in(&app, "owner@acme.test").await;
    let mut op = Browser::signed_in(&app, "op@octogen.test").await;
    let user_page = format!("/operator/users/{victim}");
    assert!(op.get(&user_page).await.body.contains("Disable user"));

    // Disabling asks first; the question changes nothing.
    let disable = format!("{user_page}/disable");
    let confirm = op.get(&disable).await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.body.contains("Disable owner@acme.test?"), "{}", confirm.body);
    assert_eq!(victim_browser.get("/keys").await.status, StatusCode::OK, "the confirmation disabled nothing");
    let done = op.submit(&disable, &disable, &[]).await;
    assert_eq!(
        (done.status, done.location()),
        (StatusCode::SEE_OTHER, format!("{user_page}?notice=disabled").as_str())
    );
    assert_eq!(victim_browser.get("/keys").await.location(), "/login?next=%2Fkeys", "signed out at once");
    let refused = Browser::new(&app).sign_in("owner@acme.test", PASSWORD).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.error_banner(), "Incorrect email or password.", "the answer a wrong password gets");
    assert!(op.get(&user_page).await.body.contains("Disabled"));
    let enabled = op.submit(&user_page, &format!("{user_page}/enable"), &[]).await;
    assert_eq!(enabled.status, StatusCode::SEE_OTHER);
    let mut victim_browser = Browser::signed_in(&app, "owner@acme.test").await;

    // The operator flag: granted and taken away after a confirmation; effective on the next page.
    let grant = format!("{user_page}/operator/grant");
    assert!(op.get(&grant).await.body.contains("Make owner@acme.test an operator?"));
    assert_eq!(op.submit(&grant, &grant, &[]).await.status, StatusCode::SEE_OTHER);
    assert_eq!(victim_browser.get("/operator/orgs").await.status, StatusCode::OK);
    let revoke = format!("{user_page}/operator/revoke");
    assert_eq!(op.submit(&revoke, &revoke, &[]).await.status, StatusCode::SEE_OTHER);
    assert_eq!(victim_browser.get("/operator/orgs").await.status, StatusCode::FORBIDDEN);
    assert_eq!(op.get(&format!("{user_page}/operator/bogus")).await.status, StatusCode::NOT_FOUND);

    // Signing out everywhere.
    let sign_out = format!("{user_page}/sessions/revoke");
    assert!(op.get(&sign_out).await.body.contains("Sign owner@acme.test out everywhere?"));
    assert_eq!(victim_browser.get("/keys").await.status, StatusCode::OK);
    assert_eq!(op.submit(&sign_out, &sign_out, &[]).await.status, StatusCode::SEE_OTHER);
    assert_eq!(victim_browser.get("/keys").await.status, StatusCode::SEE_OTHER, "the session ended");

    // A password reset link, shown once.
    let reset = op.submit(&user_page, &format!("{user_page}/password-reset"), &[]).await;
    assert_eq!(reset.status, StatusCode::CREATED, "{}", reset.body);
    let shown = reset.body.replace("&#x2f;", "/");
    assert!(shown.contains(&format!("value=\"{}/reset-password?token=", app.base)), "{}", reset.body);

    // An operator cannot lock themselves out from the browser.
    let (_, users) = app.admin(Method::GET, "/users", None).await;
    let me = users.as_array().unwrap().iter().find(|u| u["email"] == "op@octogen.test").unwrap()["id"].clone();
    let own = format!("/operator/users/{}", me.as_str().unwrap());
    assert!(!op.get(&own).await.body.contains("Disable user"));
    assert_eq!(op.get(&format!("{own}/disable")).await.status, StatusCode::BAD_REQUEST);
    let token = op.get(&own).await.csrf();
    assert_eq!(op.post(&format!("{own}/disable"), &[("csrf", &token)]).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(op.post(&format!("{own}/operator/revoke"), &[("csrf", &token)]).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(op.get("/operator/orgs").await.status, StatusCode::OK, "still an operator, still signed in");

    // Each change is in the audit log, as the operator's, in the victim's organization.
    for action in [
        "user.disabled",
        "user.enabled",
        "user.operator_granted",
        "user.operator_revoked",
        "user.sessions_revoked",
        "user.password_reset_issued",
    ] {
        let rows = audit_rows(&app, action).await;
        assert_eq!(rows.len(), 1, "{action}: {rows:?}");
        assert_eq!(
            (rows[0].actor.as_str(), rows[0].target.as_deref()),
            ("operator:op@octogen.test", Some(victim.as_str()))
        );
    }
    assert_eq!(
        audit_rows(&app, "user.disabled").await[0].org.as_deref(),
        Some(org.as_str()),
        "the owner's admins see it"
    );
}

/// Issues a reset link through the operator API; returns its path.
async fn reset_link(app: &TestApp, user: &str) -> String {
    let response = app
        .http
        .post(app.url(&format!("/admin/v1/users/{user}/password-reset")))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["cache-control"], "no-store", "the link is a secret");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["url"], Value::Null, "no public_url: the caller adds the address it used");
    let expires = octogen_core::Timestamp::parse_rfc3339(body["expiresAt"].as_str().unwrap()).unwrap();
    let in_an_hour = now_millis() + 3_600_000;
    assert!((expires.millis() - in_an_hour).abs() < 60_000, "valid for an hour: {body}");
    body["path"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn password_reset_links_set_a_new_password_once() {
    let app = TestApp::spawn().await;
    let org = app.partner("Acme").await;
    let user = member(&app, "owner@acme.test", &org, "owner").await;
    let mut signed_in = Browser::signed_in(&app, "owner@acme.test").await;
    let path = reset_link(&app, &user).await;
    let token = path.strip_prefix("/reset-password?token=").unwrap().to_string();
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT token_hash FROM password_resets").fetch_all(&sqlite(&app).await).await.unwrap();
    assert!(stored.len() == 1 && stored[0].len() == 64 && !stored[0].contains(&token), "only an HMAC is kept");
    assert_eq!(
        Browser::new(&app).sign_in("owner@acme.test", PASSWORD).await.status,
        StatusCode::SEE_OTHER,
        "the old password works until the link is used"
    );

    let new_password = "a brand new passphrase for acme";
    let mut person = Browser::new(&app);
    let form = person.get(&path).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("owner@acme.test") && form.body.contains("name=\"token\""));
    let set = |password: &'static str, confirm: &'static str| {
        [("token", token.clone()), ("password", password.into()), ("confirm", confirm.into())]
    };
    let differ = person.submit(&path, "/reset-password", &as_refs(&set(new_password, "something else entirely"))).await;
    assert_eq!(differ.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(differ.error_banner().contains("differ"));
    let short = person.submit(&path, "/reset-password", &as_refs(&set("too short", "too short"))).await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(short.error_banner().contains("at least 15 characters") && !short.body.contains("too short"));
    let done = person.submit(&path, "/reset-password", &as_refs(&set(new_password, new_password))).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("Password set"));

    assert_eq!(signed_in.get("/keys").await.status, StatusCode::SEE_OTHER, "every earlier session ended");
    assert_eq!(Browser::new(&app).sign_in("owner@acme.test", PASSWORD).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(Browser::new(&app).sign_in("owner@acme.test", new_password).await.status, StatusCode::SEE_OTHER);
    // Used once.
    assert_eq!(Browser::new(&app).get(&path).await.status, StatusCode::GONE);
    let again = person.submit("/login", "/reset-password", &as_refs(&set(new_password, new_password))).await;
    assert_eq!(again.status, StatusCode::GONE);

    // A newer link replaces an older one; an expired or unknown link is refused alike.
    let older = reset_link(&app, &user).await;
    let newer = reset_link(&app, &user).await;
    assert_eq!(Browser::new(&app).get(&older).await.status, StatusCode::GONE);
    assert_eq!(Browser::new(&app).get(&newer).await.status, StatusCode::OK);
    sqlx::query("UPDATE password_resets SET expires_at = $1")
        .bind(now_millis() - 1)
        .execute(&sqlite(&app).await)
        .await
        .unwrap();
    let expired = Browser::new(&app).get(&newer).await;
    assert_eq!(expired.status, StatusCode::GONE);
    assert!(expired.body.contains("cannot be used"));
    assert_eq!(Browser::new(&app).get("/reset-password?token=nonsense").await.status, StatusCode::GONE);

    let completed = audit_rows(&app, "user.password_reset").await;
    assert_eq!(completed.len(), 1);
    assert_eq!(
        (completed[0].actor.as_str(), completed[0].org.as_deref()),
        ("user:owner@acme.test", Some(org.as_str()))
    );
    assert_eq!(audit_rows(&app, "user.password_reset_issued").await.len(), 3);
}

#[tokio::test]
async fn rotating_in_the_portal_keeps_the_old_key_for_the_chosen_time() {
    let app = TestApp::spawn().await;
    let org = app.partner("Acme").await;
    member(&app, "owner@acme.test", &org, "owner").await;
    let mut browser = Browser::signed_in(&app, "owner@acme.test").await;
    let first = app.mint_key(&org).await;
    let rotate = format!("/keys/{}/rotate", first.id);
    let form = browser.get(&rotate).await;
    for choice in ["now", "1 hour", "24 hours", "7 days"] {
        assert!(form.body.contains(&format!(">{choice}</option>")), "{choice}");
    }

    let posted = browser.submit(&rotate, &rotate, &[("keep_old", "0")]).await;
    assert_eq!(posted.status, StatusCode::SEE_OTHER);
    let now = browser.follow(&posted).await;
    assert!(now.body.contains("no longer works"), "{}", now.body);
    assert_eq!(app.catalogs(&first.key).await.status(), 401, "stopped with the rotation");

    let second = shown_key(&now);
    let rotate = format!("/keys/{}/rotate", key_id_of(&second));
    let refused = browser.submit(&rotate, &rotate, &[("keep_old", "99")]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "only the offered choices");
    let hour = browser.submit(&rotate, &rotate, &[("keep_old", "3600")]).await;
    assert_eq!(hour.status, StatusCode::SEE_OTHER);
    assert_eq!(app.catalogs(&second).await.status(), 200, "works for the hour");
    let (_, keys) = app.admin(Method::GET, &format!("/orgs/{org}/keys"), None).await;
    let old = keys.as_array().unwrap().iter().find(|k| k["id"] == key_id_of(&second)).unwrap();
    let expires = octogen_core::Timestamp::parse_rfc3339(old["expiresAt"].as_str().unwrap()).unwrap();
    assert!((expires.millis() - now_millis() - 3_600_000).abs() < 60_000, "{old}");
    assert_eq!(keys.as_array().unwrap().len(), 3, "the refused rotation created nothing");
    let list = browser.get("/keys").await;
    let row_start = list.body.find(&format!("data-key-id=\"{}\"", key_id_of(&second))).unwrap();
    let row = &list.body[row_start..row_start + list.body[row_start..].find("</tr>").unwrap()];
    assert!(row.contains(&old["expiresAt"].as_str().unwrap()[..10]), "the expiry is shown: {row}");
}

//! SPEC §2: every authentication row, the route × credential matrix, immediate
//! revocation, and malformed credentials.

use std::sync::Arc;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_detail, TestApp};

const AUTH_REQUIRED: &str = "Authorization Bearer token required";
const INVALID_KEY: &str = "Invalid API key";

/// Every `/v1` route, each aimed at a catalog (`{catalog}`) of the organization under test.
pub fn v1_routes() -> Vec<(Method, &'static str, Option<Value>)> {
    vec![
        (Method::GET, "/v1/catalogs", None),
        (Method::POST, "/v1/products/search", Some(json!({"catalog": "owned"}))),
        (Method::POST, "/v1/products/search", Some(json!({"q": "anything"}))),
        (Method::POST, "/v1/products/lookup", Some(json!({"url": "https://owned.example/products/a"}))),
        (Method::GET, "/v1/me", None),
    ]
}

/// Sends `route` with an optional Authorization value; returns status, headers and body.
async fn call(
    app: &TestApp,
    route: &(Method, &str, Option<Value>),
    authorization: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let (method, path, body) = route;
    let mut request = app.http.request(method.clone(), app.url(path));
    if let Some(body) = body {
        request = request.json(body);
    }
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_row_of_the_spec_table() {
    let app = TestApp::spawn().await;
    let partner = app.partner("Partner").await;
    let merchant = app.create_org("Merchant", "merchant").await;
    let suspended = app.partner("Suspended").await;
    let good = app.mint_key(&partner).await;
    let revoked = app.mint_key(&partner).await;
    app.revoke(&revoked.id).await;
    let merchant_key = app.mint_key(&merchant).await;
    let suspended_key = app.mint_key(&suspended).await;
    app.suspend(&suspended).await;
    // Change one character of the secret (never to itself).
    let position = good.key.len() - 2;
    let replacement = if &good.key[position..position + 1] == "A" { "B" } else { "A" };
    let wrong_secret = format!("{}{replacement}{}", &good.key[..position], &good.key[position + 1..]);
    let unknown_id = format!("octo_live_{}_{}", "0".repeat(32), &good.key[good.key.len() - 43..]);

    assert_eq!(app.catalogs(&good.key).await.status(), 200);

    for authorization in [None, Some("Basic dXNlcjpwYXNz"), Some("Bearer"), Some("Bearer "), Some(good.key.as_str())] {
        let response = app.catalogs_with(authorization).await;
        assert_eq!(response.headers()["www-authenticate"], "Bearer", "{authorization:?}");
        assert_detail(response, 401, AUTH_REQUIRED).await;
    }

    let mut bodies = Vec::new();
    for key in ["octo_live_nope", wrong_secret.as_str(), unknown_id.as_str(), revoked.key.as_str()] {
        let response = app.catalogs(key).await;
        assert_eq!(response.status(), 401, "{key}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        bodies.push(response.bytes().await.unwrap());
    }
    assert!(bodies.iter().all(|body| body == &bodies[0]), "all invalid-key causes are indistinguishable");
    assert_eq!(serde_json::from_slice::<Value>(&bodies[0]).unwrap(), json!({"detail": INVALID_KEY}));

    assert_detail(app.catalogs(&merchant_key.key).await, 403, "api_key_org_type_forbidden").await;
    assert_detail(app.catalogs(&suspended_key.key).await, 403, "api_key_forbidden").await;

    // Lifting the suspension restores access on the next request.
    app.admin(Method::POST, &format!("/orgs/{suspended}/unsuspend"), Some(json!({}))).await;
    assert_eq!(app.catalogs(&suspended_key.key).await.status(), 200);
}

#[tokio::test]
async fn route_by_credential_matrix() {
    let app = TestApp::spawn().await;
    let org = app.partner("Owner").await;
    let other = app.partner("Other").await;
    let merchant = app.create_org("Shop", "merchant").await;
    let suspended = app.partner("Frozen").await;
    app.create_catalog("owned").await;
    app.create_catalog("elsewhere").await;
    app.grant(&org, "owned").await;
    app.grant(&other, "elsewhere").await;
    let revoked = app.mint_key(&org).await;
    app.revoke(&revoked.id).await;
    let other_key = app.mint_key(&other).await;
    let merchant_key = app.mint_key(&merchant).await;
    let suspended_key = app.mint_key(&suspended).await;
    app.suspend(&suspended).await;

    let cases: Vec<(&str, Option<String>, u16, Option<&str>)> = vec![
        ("no key", None, 401, Some(AUTH_REQUIRED)),
        ("bad key", Some("Bearer octo_live_bad".into()), 401, Some(INVALID_KEY)),
        ("revoked key", Some(format!("Bearer {}", revoked.key)), 401, Some(INVALID_KEY)),
        ("merchant key", Some(format!("Bearer {}", merchant_key.key)), 403, Some("api_key_org_type_forbidden")),
        ("suspended org", Some(format!("Bearer {}", suspended_key.key)), 403, Some("api_key_forbidden")),
    ];
    for route in v1_routes() {
        for (label, authorization, status, detail) in &cases {
            let (got, headers, body) = call(&app, &route, authorization.as_deref()).await;
            assert_eq!(got, *status, "{} {} with {label}: {body}", route.0, route.1);
            assert_eq!(body, json!({"detail": detail.unwrap()}), "{} {} with {label}", route.0, route.1);
            assert!(headers.contains_key("x-request-id"));
        }
        // Another organization's valid key never sees this organization's data.
        let (status, _, body) = call(&app, &route, Some(&format!("Bearer {}", other_key.key))).await;
        assert!(status == 200 || status == 404, "{} {}: {status}", route.0, route.1);
        assert!(
            !body.to_string().contains("\"owned\""),
            "{} {} leaked another org's catalog: {body}",
            route.0,
            route.1
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revocation_applies_to_every_request_that_starts_after_it() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let app = Arc::new(TestApp::spawn().await);
    let org = app.partner("Busy").await;
    let key = Arc::new(app.mint_key(&org).await);
    let revoked = Arc::new(AtomicBool::new(false));

    // 32 clients keep requests in flight; each notes whether a request started
    // after the revoke call had returned, and keeps going until it has sent a few of those.
    let mut clients = Vec::new();
    for _ in 0..32 {
        let (app, key, revoked) = (app.clone(), key.clone(), revoked.clone());
        clients.push(tokio::spawn(async move {
            let (mut before, mut after, mut after_successes) = (0, 0, 0);
            while after < 5 {
                let started_after_revoke = revoked.load(Ordering::SeqCst);
                let status = app.catalogs(&key.key).await.status().as_u16();
                if started_after_revoke {
                    after += 1;
                    after_successes += u32::from(status == 200);
                } else {
                    before += 1;
                    assert!(status == 200 || status == 401, "{status}");
                }
            }
            (before, after_successes)
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    app.revoke(&key.id).await;
    revoked.store(true, Ordering::SeqCst);

    let (mut before, mut after_successes) = (0, 0);
    for client in clients {
        let (b, s) = client.await.unwrap();
        before += b;
        after_successes += s;
    }
    assert!(before >= 32, "requests were in flight when the key was revoked");
    assert_eq!(after_successes, 0, "no request that started after the revoke call returned may succeed");
    assert_detail(app.catalogs(&key.key).await, 401, INVALID_KEY).await;
}

#[tokio::test]
async fn grant_changes_apply_on_the_next_request() {
    let app = TestApp::spawn().await;
    let org = app.partner("Granted").await;
    app.create_catalog("alpha").await;
    app.create_catalog("beta").await;
    let key = app.mint_key(&org).await;
    let keys = |body: Value| {
        body.as_array().unwrap().iter().map(|c| c["catalog"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };

    assert_eq!(app.catalogs(&key.key).await.json::<Value>().await.unwrap(), json!([]), "no grants: an empty list");
    app.grant(&org, "beta").await;
    app.grant(&org, "alpha").await;
    assert_eq!(keys(app.catalogs(&key.key).await.json().await.unwrap()), ["alpha", "beta"]);
    app.ungrant(&org, "alpha").await;
    assert_eq!(keys(app.catalogs(&key.key).await.json().await.unwrap()), ["beta"]);
}

#[tokio::test]
async fn malformed_credentials_are_401_never_5xx() {
    let app = TestApp::spawn().await;
    let org = app.partner("Fuzzed").await;
    let key = app.mint_key(&org).await.key;
    let huge = "A".repeat(64 * 1024);
    let mut variants: Vec<String> = vec![
        key[..key.len() - 1].to_string(),
        key[..20].to_string(),
        // (Trailing whitespace is not part of an HTTP field value, so only inner whitespace is a different key.)
        format!(" {key}"),
        format!("{} {}", &key[..20], &key[20..]),
        format!("{}\t{}", &key[..50], &key[50..]),
        key.replace("octo_live_", "octo_test_"),
        key.replace("octo_live_", "OCTO_LIVE_"),
        key.to_uppercase(),
        format!("octo_live_{}{}", key[10..42].to_uppercase(), &key[42..]),
        format!("{key}{key}"),
        key.replacen('_', "-", 1),
        huge.clone(),
        format!("octo_live_{huge}"),
    ];
    // Deterministic pseudo-random byte flips over the whole key.
    let mut seed = 0x9e3779b97f4a7c15u64;
    for _ in 0..200 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut bytes = key.clone().into_bytes();
        let index = (seed as usize) % bytes.len();
        let replacements = b"!#$%&'*+-.^_`|~0123456789abcdefABCDEF";
        bytes[index] = replacements[(seed >> 32) as usize % replacements.len()];
        if let Ok(text) = String::from_utf8(bytes) {
            if text != key {
                variants.push(text);
            }
        }
    }
    for variant in &variants {
        let response =
            app.http.get(app.url("/v1/catalogs")).header("authorization", format!("Bearer {variant}")).send().await;
        let status = response.expect("the server answers").status().as_u16();
        assert_eq!(status, 401, "Bearer {:.60}…", variant);
    }
    // Non-ASCII and raw bytes in the header value.
    for raw in [b"Bearer octo_live_\xc3\xa9".as_slice(), b"Bearer \xff\xfe", "Bearer cl\u{e9}".as_bytes()] {
        let value = reqwest::header::HeaderValue::from_bytes(raw).unwrap();
        let status =
            app.http.get(app.url("/v1/catalogs")).header("authorization", value).send().await.unwrap().status();
        assert_eq!(status, 401, "{raw:?}");
    }
    // Other schemes and shapes of the header.
    for value in ["bearer", "Token abc", "Bearer\tabc", &huge] {
        let status = app.catalogs_with(Some(value)).await.status().as_u16();
        assert!(status == 401, "{value:.40}: {status}");
    }
    // A lower-case scheme with a valid key is accepted (RFC 7235: schemes are case-insensitive).
    assert_eq!(app.catalogs_with(Some(&format!("bearer {key}"))).await.status(), 200);
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json() {
    let app = TestApp::spawn().await;
    for path in ["/nope", "/v1/nope", "/v1", "/admin/v1/nope"] {
        assert_detail(app.http.get(app.url(path)).send().await.unwrap(), 404, "Not Found").await;
    }
    let response = app.http.delete(app.url("/v1/catalogs")).send().await.unwrap();
    assert_detail(response, 405, "Method Not Allowed").await;
    let response = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let first = response.headers()["x-request-id"].to_str().unwrap().to_string();
    let second = app.http.get(app.url("/healthz")).header("x-request-id", &first).send().await.unwrap();
    assert_ne!(second.headers()["x-request-id"].to_str().unwrap(), first, "ids are generated per request");
    assert_eq!(uuid::Uuid::parse_str(&first).map(|_| ()), Ok(()));
}

/// Waits until the wall clock is past `at` (an RFC 3339 time a second or two ahead).
async fn wait_until_past(at: &str) {
    let at = octogen_core::Timestamp::parse_rfc3339(at).expect("an RFC 3339 time");
    while octogen_core::Timestamp::now() <= at {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_expired_key_is_refused_exactly_like_a_revoked_one() {
    let app = TestApp::spawn().await;
    let org = app.partner("Rotating").await;
    let old = app.mint_key(&org).await;
    let revoked = app.mint_key(&org).await;
    app.revoke(&revoked.id).await;

    let (status, rotated) =
        app.admin(Method::POST, &format!("/keys/{}/rotate", old.id), Some(json!({"expireOldInSeconds": 1}))).await;
    assert_eq!(status, 201, "{rotated}");
    let expires_at = rotated["previous"]["expiresAt"].as_str().expect("the old key's expiry").to_string();
    assert_eq!(rotated["previous"]["status"], "active");
    assert_eq!(app.catalogs(&old.key).await.status(), 200, "works until then");
    assert_eq!(app.catalogs(rotated["key"].as_str().unwrap()).await.status(), 200);

    wait_until_past(&expires_at).await;
    // The very next request after the moment: 401, byte for byte what a revoked key gets.
    let expired = app.catalogs(&old.key).await;
    assert_eq!(expired.status(), 401);
    assert_eq!(expired.headers()["www-authenticate"], "Bearer");
    let revoked_body = app.catalogs(&revoked.key).await.bytes().await.unwrap();
    assert_eq!(expired.bytes().await.unwrap(), revoked_body);
    for route in v1_routes() {
        let (got, _, body) = call(&app, &route, Some(&format!("Bearer {}", old.key))).await;
        assert_eq!((got, body), (401, json!({"detail": INVALID_KEY})), "{} {}", route.0, route.1);
    }
    let (_, keys) = app.admin(Method::GET, &format!("/orgs/{org}/keys"), None).await;
    let listed = keys.as_array().unwrap().iter().find(|key| key["id"] == old.id.as_str()).unwrap().clone();
    assert_eq!((listed["status"].as_str(), listed["expiresAt"].as_str()), (Some("expired"), Some(expires_at.as_str())));
    let (status, body) = app.admin(Method::POST, &format!("/keys/{}/rotate", old.id), Some(json!({}))).await;
    assert_eq!(status, 409, "an expired key is not rotated: {body}");
    assert!(body["detail"].as_str().unwrap().contains("expired"), "{body}");
}

#[tokio::test]
async fn rotation_options_are_checked() {
    let app = TestApp::spawn().await;
    let org = app.partner("Rotating").await;
    let key = app.mint_key(&org).await;
    let path = format!("/keys/{}/rotate", key.id);
    for (body, input) in [
        (json!({"expireOldInSeconds": 30 * 86_400 + 1}), json!(30 * 86_400 + 1)),
        (json!({"expireOldInSeconds": 0}), json!(0)),
    ] {
        let (status, error) = app.admin(Method::POST, &path, Some(body)).await;
        assert_eq!(status, 422, "{error}");
        assert_eq!(error["detail"][0]["loc"], json!(["body", "expireOldInSeconds"]));
        assert_eq!(error["detail"][0]["input"], input);
        assert!(error["detail"][0]["msg"].as_str().unwrap().contains("30 days"), "{error}");
    }
    let (status, error) =
        app.admin(Method::POST, &path, Some(json!({"revokeOld": true, "expireOldInSeconds": 60}))).await;
    assert_eq!((status.as_u16(), &error["detail"][0]["loc"]), (422, &json!(["body", "expireOldInSeconds"])));
    let (_, keys) = app.admin(Method::GET, &format!("/orgs/{org}/keys"), None).await;
    assert_eq!(keys.as_array().unwrap().len(), 1, "refused rotations create nothing");
    let (status, rotated) = app.admin(Method::POST, &path, Some(json!({"expireOldInSeconds": 30 * 86_400}))).await;
    assert_eq!(status, 201, "30 days is the longest: {rotated}");
}

#[tokio::test]
async fn a_change_whose_audit_event_cannot_be_written_does_not_happen() {
    let app = TestApp::spawn().await;
    let org = app.partner("Audited").await;
    app.create_catalog("northwind").await;
    let key = app.mint_key(&org).await;
    let (_, user) = app
        .admin(
            Method::POST,
            "/users",
            Some(json!({"email": "member@audited.test", "password": "correct horse battery staple", "org": org})),
        )
        .await;
    let user = user["id"].as_str().unwrap().to_string();
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", app.data_dir.path().join("octogen.db").display()))
        .await
        .unwrap();
    sqlx::query("CREATE TRIGGER audit_unavailable BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'audit log unavailable'); END")
        .execute(&db)
        .await
        .unwrap();

    let refused: Vec<(Method, String, Option<Value>)> = vec![
        (Method::POST, format!("/keys/{}/revoke", key.id), Some(json!({}))),
        (Method::POST, format!("/keys/{}/rotate", key.id), Some(json!({"revokeOld": true}))),
        (Method::POST, format!("/orgs/{org}/keys"), Some(json!({"name": "unrecorded"}))),
        (Method::PUT, format!("/orgs/{org}/grants/northwind"), None),
        (Method::POST, format!("/orgs/{org}/suspend"), Some(json!({}))),
        (Method::POST, format!("/users/{user}/disable"), Some(json!({}))),
        (Method::PUT, format!("/users/{user}/operator"), Some(json!({"operator": true}))),
        (Method::DELETE, format!("/users/{user}/memberships/{org}"), None),
        (Method::POST, "/orgs".into(), Some(json!({"name": "Unrecorded", "type": "catalog_partner"}))),
        (Method::POST, "/catalogs".into(), Some(json!({"key": "unrecorded", "name": "Unrecorded"}))),
        (
            Method::POST,
            "/users".into(),
            Some(json!({"email": "x@audited.test", "password": "x".repeat(20), "operator": true})),
        ),
    ];
    for (method, path, body) in &refused {
        let (status, _) = app.admin(method.clone(), path, body.clone()).await;
        assert_eq!(status, 500, "{method} {path}");
    }
    // None of it happened.
    assert_eq!(app.catalogs(&key.key).await.json::<Value>().await.unwrap(), json!([]), "still active, no grant");
    let (_, keys) = app.admin(Method::GET, &format!("/orgs/{org}/keys"), None).await;
    assert_eq!(keys.as_array().unwrap().len(), 1);
    let (_, shown) = app.admin(Method::GET, &format!("/users/{user}"), None).await;
    assert_eq!((&shown["disabledAt"], &shown["operator"]), (&Value::Null, &json!(false)));
    assert_eq!(shown["memberships"].as_array().unwrap().len(), 1);
    let (_, orgs) = app.admin(Method::GET, "/orgs", None).await;
    let (_, catalogs) = app.admin(Method::GET, "/catalogs", None).await;
    let (_, users) = app.admin(Method::GET, "/users", None).await;
    assert_eq!((orgs.as_array().unwrap().len(), catalogs.as_array().unwrap().len()), (1, 1));
    assert_eq!(users.as_array().unwrap().len(), 1);

    sqlx::query("DROP TRIGGER audit_unavailable").execute(&db).await.unwrap();
    app.revoke(&key.id).await;
    assert_eq!(app.catalogs(&key.key).await.status(), 401);
    let recorded: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'api_key.revoked'")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(recorded, 1);
}

//! Retries, against a scripted peer on loopback (the real server cannot be made
//! to fail on cue): 429 with Retry-After, 5xx, connection resets, and what is
//! never retried. Everything else in this crate's tests uses the real server.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use octogen_client::{ApiErrorKind, Client, Error, RetryPolicy};

/// One scripted answer per request, the last repeated.
#[derive(Clone)]
struct Script {
    answers: Arc<Vec<(u16, Option<&'static str>)>>,
    calls: Arc<AtomicUsize>,
    headers: Arc<Mutex<Vec<HeaderMap>>>,
}

const CATALOGS: &str = r#"[{"catalog":"northwind","displayName":"Northwind","sourceBaseUrl":null,"productCount":1,"lastIndexedAt":null,"addedLater":true}]"#;

async fn answer(axum::extract::State(script): axum::extract::State<Script>, headers: HeaderMap) -> Response {
    let call = script.calls.fetch_add(1, Ordering::SeqCst);
    script.headers.lock().unwrap().push(headers);
    let (status, retry_after) = script.answers[call.min(script.answers.len() - 1)];
    let status = StatusCode::from_u16(status).unwrap();
    let body = match status.as_u16() {
        200 => CATALOGS.to_string(),
        429 => r#"{"detail":"rate_limit_exceeded"}"#.to_string(),
        _ => r#"{"detail":"Service unavailable"}"#.to_string(),
    };
    let mut response = (status, [("content-type", "application/json")], body).into_response();
    if let Some(seconds) = retry_after {
        response.headers_mut().insert("retry-after", seconds.parse().unwrap());
    }
    response
}

async fn peer(answers: Vec<(u16, Option<&'static str>)>) -> (String, Script) {
    let script = Script {
        answers: Arc::new(answers),
        calls: Arc::new(AtomicUsize::new(0)),
        headers: Arc::new(Mutex::new(Vec::new())),
    };
    let app = Router::new().route("/v1/catalogs", get(answer)).with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, script)
}

fn client(base: &str, attempts: u32) -> Client {
    Client::builder()
        .api_key(format!(
            "octo_live_{}_{}",
            "00000000000000000000000000000000", "retry-test-key-not-a-secret-000000000000"
        ))
        .base_url(base)
        .retry_policy(RetryPolicy {
            max_attempts: attempts,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(100),
            max_retry_after: Duration::from_secs(5),
        })
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_429_is_retried_after_retry_after() {
    let (base, script) = peer(vec![(429, Some("1")), (200, None)]).await;
    let started = Instant::now();
    let catalogs = client(&base, 3).list_catalogs().await.unwrap();
    assert_eq!(catalogs[0].catalog, "northwind", "unknown fields are ignored");
    assert_eq!(script.calls.load(Ordering::SeqCst), 2);
    assert!(started.elapsed() >= Duration::from_secs(1), "waited out Retry-After: {:?}", started.elapsed());
}

#[tokio::test]
async fn a_retry_after_beyond_the_bound_is_returned_at_once() {
    let (base, script) = peer(vec![(429, Some("120"))]).await;
    let started = Instant::now();
    let error = client(&base, 3).list_catalogs().await.unwrap_err();
    let api = error.api().unwrap();
    assert_eq!(api.kind, ApiErrorKind::RateLimited);
    assert_eq!(api.retry_after, Some(Duration::from_secs(120)));
    assert_eq!(api.detail.message(), Some("rate_limit_exceeded"));
    assert_eq!(script.calls.load(Ordering::SeqCst), 1);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn server_errors_are_retried_up_to_max_attempts() {
    let (base, script) = peer(vec![(503, None), (502, None), (200, None)]).await;
    assert!(client(&base, 3).list_catalogs().await.is_ok());
    assert_eq!(script.calls.load(Ordering::SeqCst), 3);

    let (base, script) = peer(vec![(500, None)]).await;
    let error = client(&base, 4).list_catalogs().await.unwrap_err();
    assert_eq!(error.api().unwrap().kind, ApiErrorKind::Server);
    assert_eq!(script.calls.load(Ordering::SeqCst), 4, "bounded by max_attempts");

    let (base, script) = peer(vec![(503, None)]).await;
    assert!(client(&base, 1).list_catalogs().await.is_err());
    assert_eq!(script.calls.load(Ordering::SeqCst), 1, "one attempt: no retry");
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    for status in [400, 401, 403, 404, 422] {
        let (base, script) = peer(vec![(status, None), (200, None)]).await;
        let error = client(&base, 3).list_catalogs().await.unwrap_err();
        assert_eq!(error.status(), Some(status));
        assert_eq!(script.calls.load(Ordering::SeqCst), 1, "{status}");
    }
}

#[tokio::test]
async fn requests_carry_the_key_the_version_and_a_user_agent() {
    let (base, script) = peer(vec![(200, None)]).await;
    client(&base, 1).list_catalogs().await.unwrap();
    let headers = script.headers.lock().unwrap()[0].clone();
    assert!(headers["authorization"].to_str().unwrap().starts_with("Bearer octo_live_0000"));
    assert_eq!(headers["octogen-version"], octogen_client::API_VERSION);
    assert!(headers["user-agent"].to_str().unwrap().starts_with("octogen-client-rust/"));
}

#[tokio::test]
async fn a_timeout_is_a_retried_connection_error() {
    // A peer that accepts and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    let client = Client::builder()
        .api_key(format!(
            "octo_live_{}_{}",
            "00000000000000000000000000000000", "timeout-test-key-not-a-secret-0000000000"
        ))
        .base_url(&base)
        .timeout(Duration::from_millis(200))
        .retry_policy(RetryPolicy {
            max_attempts: 2,
            initial_backoff: Duration::from_millis(10),
            ..RetryPolicy::default()
        })
        .build()
        .unwrap();
    let error = client.list_catalogs().await.unwrap_err();
    assert!(matches!(&error, Error::Connection { message, .. } if message.contains("timed out")), "{error:?}");
    assert_eq!(accepted.load(Ordering::SeqCst), 2, "retried once");
}

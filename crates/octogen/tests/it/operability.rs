//! Issue 6: per-organization budgets, throttled authentication failures,
//! health and metrics, limits on bodies, heads, time and concurrency,
//! graceful shutdown, and configuration errors.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{stderr, test_config, ServerProcess, TestApp};

fn header(response: &reqwest::Response, name: &str) -> u64 {
    response.headers()[name].to_str().unwrap().parse().unwrap_or_else(|_| panic!("{name} is not a number"))
}

async fn set_limit(app: &TestApp, org: &str, per_minute: Option<u32>) {
    let (status, body) = app
        .admin(reqwest::Method::PUT, &format!("/orgs/{org}/rate-limit"), Some(json!({"perMinute": per_minute})))
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn every_v1_response_carries_the_budget_and_429_comes_with_retry_after() {
    let app = TestApp::spawn().await;
    let (org, key) = app.partner_with_northwind("northwind").await;
    let second_key = app.mint_key(&org).await.key;
    set_limit(&app, &org, Some(5)).await;

    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let mut remaining = Vec::new();
    // Successes and errors alike carry the headers; both keys draw from one budget.
    for (index, body) in [json!({"limit": 1}), json!({"catalog": "nope"}), json!({"limit": 500}), json!({}), json!({})]
        .iter()
        .enumerate()
    {
        let key = if index % 2 == 0 { &key } else { &second_key };
        let response = app.http.post(app.url("/v1/products/search")).bearer_auth(key).json(body).send().await.unwrap();
        assert_eq!(header(&response, "x-ratelimit-limit"), 5);
        assert!(header(&response, "x-ratelimit-reset") >= now);
        remaining.push(header(&response, "x-ratelimit-remaining"));
    }
    assert_eq!(remaining, [4, 3, 2, 1, 0], "the budget is shared by the organization's keys");

    let refused = app.catalogs(&second_key).await;
    assert_eq!(refused.status(), 429);
    assert!(header(&refused, "retry-after") >= 1);
    assert_eq!(header(&refused, "x-ratelimit-remaining"), 0);
    assert_eq!(refused.json::<Value>().await.unwrap(), json!({"detail": "rate_limit_exceeded"}));

    // Raising the limit applies to the next request; so does returning to the default.
    let cli = app.cli(&["admin", "org", "set-rate-limit", &org, "--per-minute", "1200"]).await;
    assert!(cli.status.success(), "{}", stderr(&cli));
    let allowed = app.catalogs(&key).await;
    assert_eq!(allowed.status(), 200);
    assert_eq!(header(&allowed, "x-ratelimit-limit"), 1200);
    let cli = app.cli(&["admin", "org", "set-rate-limit", &org, "--default", "--json"]).await;
    assert_eq!(serde_json::from_slice::<Value>(&cli.stdout).unwrap()["rateLimitPerMinute"], Value::Null);
    assert_eq!(
        header(&app.catalogs(&key).await, "x-ratelimit-limit"),
        1_000_000,
        "the server default (tests set it high)"
    );

    let invalid = app.cli(&["admin", "org", "set-rate-limit", &org, "--per-minute", "0"]).await;
    assert_eq!(invalid.status.code(), Some(6), "{}", stderr(&invalid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_clients_over_four_keys_get_exactly_the_bucket_arithmetic() {
    let app = Arc::new(TestApp::spawn().await);
    let (org, first) = app.partner_with_northwind("northwind").await;
    let mut keys = vec![first];
    for _ in 0..3 {
        keys.push(app.mint_key(&org).await.key);
    }
    // 60 per minute: a full bucket of 60 and one more token per second.
    set_limit(&app, &org, Some(60)).await;
    let accepted = Arc::new(AtomicU32::new(0));
    let started = Instant::now();
    let mut clients = Vec::new();
    for client in 0..16 {
        let (app, key, accepted) = (app.clone(), keys[client % 4].clone(), accepted.clone());
        clients.push(tokio::spawn(async move {
            for _ in 0..25 {
                match app.catalogs(&key).await.status().as_u16() {
                    200 => {
                        accepted.fetch_add(1, Ordering::SeqCst);
                    }
                    429 => {}
                    other => panic!("unexpected {other}"),
                }
            }
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let accepted = f64::from(accepted.load(Ordering::SeqCst));
    // Bucket arithmetic: the capacity plus what refilled while the clients ran.
    let most = 60.0 + elapsed + 1.0;
    assert!(
        accepted >= 60.0 && accepted <= most,
        "accepted {accepted} of 400 in {elapsed:.2}s (expected 60..={most:.0})"
    );
}

#[tokio::test]
async fn failed_authentication_is_throttled_per_client_address() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.auth_failure_limit_per_minute = 10;
    let app = TestApp::spawn_with(config, dir).await;
    let (_, key) = app.partner_with_northwind("northwind").await;

    let mut statuses = Vec::new();
    for attempt in 0..14 {
        // A forged X-Forwarded-For changes nothing: no proxy is trusted.
        let response = app
            .http
            .get(app.url("/v1/catalogs"))
            .bearer_auth(format!("octo_live_guess{attempt}"))
            .header("x-forwarded-for", format!("10.0.0.{attempt}"))
            .send()
            .await
            .unwrap();
        assert!(response.headers().contains_key("x-ratelimit-remaining"));
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses[..10], [401; 10]);
    assert_eq!(statuses[10..], [429; 4], "guessing is throttled");
    assert_eq!(app.catalogs(&key).await.status(), 200, "a valid key from the same address still works");
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = TestApp::spawn().await;
    let (_, key) = app.partner_with_northwind("northwind").await;
    app.catalogs(&key).await;
    app.catalogs("octo_live_bad").await;
    app.search(&key, json!({"q": "hoodie"})).await;

    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<Value>().await.unwrap(), json!({"status": "ready", "store": "ok", "index": "ok"}));

    let metrics = app.metrics().await;
    for expected in [
        r#"octogen_http_requests_total{method="GET",route="/v1/catalogs",status="200"}"#,
        r#"octogen_http_request_duration_seconds_count{method="POST",route="/v1/products/search",status="200"} 1"#,
        r#"octogen_auth_failures_total{reason="malformed_key"} 1"#,
        r#"octogen_index_runs_total{status="succeeded"} 1"#,
        "octogen_index_run_duration_seconds_count 1",
        // The import was indexed by this node while it published (indexing::alongside).
        "octogen_index_runs_indexed_alongside_total 1",
        "octogen_search_index_documents 24",
        "octogen_search_index_size_bytes",
    ] {
        assert!(metrics.contains(expected), "missing {expected}");
    }
    assert!(!metrics.contains(&key[key.len() - 43..]));
}

#[tokio::test]
async fn oversized_bodies_and_heads_are_refused_clearly() {
    let app = TestApp::spawn().await;
    let (_, key) = app.partner_with_northwind("northwind").await;
    let huge = json!({"q": "x".repeat(2 * 1024 * 1024)});
    let response = app.http.post(app.url("/v1/products/search")).bearer_auth(&key).json(&huge).send().await.unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"detail": "Request body too large"}));

    let response = app
        .http
        .get(app.url("/v1/catalogs"))
        .bearer_auth(&key)
        .header("x-padding", "a".repeat(200 * 1024))
        .send()
        .await;
    assert_eq!(response.map(|r| r.status().as_u16()).unwrap_or(431), 431, "a request head over the limit");
    assert_eq!(app.catalogs(&key).await.status(), 200, "the server is unharmed");
}

/// Sends a request head promising a body, writes part of it, and returns the stream.
fn stalled_request(base: &str, key: &str) -> std::net::TcpStream {
    let address = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let head = format!(
        "POST /v1/products/search HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: 11\r\n\r\n{{\"limit\""
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream
}

fn read_response(stream: &mut std::net::TcpStream) -> String {
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(read) => {
                buffer.extend_from_slice(&chunk[..read]);
                if String::from_utf8_lossy(&buffer).contains("\r\n\r\n{") && buffer.ends_with(b"}") {
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&buffer).into_owned()
}

#[test]
fn slow_requests_time_out_and_excess_concurrency_is_shed() {
    let server = ServerProcess::start_with_env(&[
        ("OCTOGEN_REQUEST_TIMEOUT_SECS", "1"),
        ("OCTOGEN_MAX_CONCURRENT_REQUESTS", "2"),
    ]);
    let key = server.partner_key();

    let mut first = stalled_request(&server.base, &key);
    let mut second = stalled_request(&server.base, &key);
    std::thread::sleep(Duration::from_millis(200));
    let http = reqwest::blocking::Client::new();
    let shed = http.get(format!("{}/v1/catalogs", server.base)).bearer_auth(&key).send().unwrap();
    assert_eq!(shed.status(), 503, "a third request beyond max_concurrent_requests is refused, not queued");
    assert!(shed.headers().contains_key("retry-after"));

    let timed_out = read_response(&mut first);
    assert!(timed_out.starts_with("HTTP/1.1 503"), "{timed_out}");
    assert!(timed_out.contains(r#"{"detail":"Request timed out"}"#), "{timed_out}");
    let _ = read_response(&mut second);
    assert_eq!(http.get(format!("{}/v1/catalogs", server.base)).bearer_auth(&key).send().unwrap().status(), 200);
}

/// The request timeout covers every route but uploads, which stream feeds of any size.
#[test]
fn uploads_are_exempt_from_the_request_timeout() {
    let server = ServerProcess::start_with_env(&[("OCTOGEN_REQUEST_TIMEOUT_SECS", "1")]);
    let address = server.base.trim_start_matches("http://").to_string();
    let mut upload = std::net::TcpStream::connect(&address).unwrap();
    let head = format!(
        "POST /admin/v1/uploads?name=feed HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: 4\r\n\r\n[]",
        server.admin_token
    );
    upload.write_all(head.as_bytes()).unwrap();
    // Twice the timeout passes before the last bytes of the body arrive.
    std::thread::sleep(Duration::from_millis(2000));
    upload.write_all(b"  ").unwrap();
    let response = read_response(&mut upload);
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
}

#[test]
fn sigterm_lets_in_flight_requests_finish_and_keeps_the_data() {
    let mut server = ServerProcess::start(&[]);
    let key = server.partner_key();
    let mut in_flight = stalled_request(&server.base, &key);
    std::thread::sleep(Duration::from_millis(200));
    let pid = server.child.id();
    std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // The request in flight completes after the signal…
    in_flight.write_all(b":2}").unwrap();
    let response = read_response(&mut in_flight);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    // …new connections are refused, and the process exits cleanly.
    assert!(reqwest::blocking::get(format!("{}/healthz", server.base)).is_err());
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(server.logs().contains("all connections closed"));

    let server = server.restart();
    let catalogs: Value = reqwest::blocking::Client::new()
        .get(format!("{}/v1/catalogs", server.base))
        .bearer_auth(&key)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(catalogs[0]["productCount"], 24, "the store was flushed and reopens intact");
}

#[test]
fn bad_configuration_is_refused_with_the_setting_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("octogen.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\nrequest_timeout = 5\n").unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_octogen"));
        command.args(args).arg("--data-dir").arg(dir.path().join("data"));
        for (name, value) in env {
            command.env(name, value);
        }
        command.output().unwrap()
    };
    // (arguments, environment, expected message)
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (vec!["serve", "--config", file.to_str().unwrap()], vec![], "unknown setting `request_timeout`"),
        (vec!["serve"], vec![("OCTOGEN_LISTN", "127.0.0.1:0")], "OCTOGEN_LISTN is not an octogen setting"),
        (vec!["serve"], vec![("OCTOGEN_MAX_BODY_BYTES", "12")], "max_body_bytes must be between"),
        (vec!["serve", "--listen", "nowhere"], vec![], "invalid configuration"),
        (vec!["serve", "--database-url", "mysql://x"], vec![], "database_url"),
        (vec!["serve"], vec![("OCTOGEN_KEY_PEPPER", "short")], "key_pepper"),
        (vec!["serve"], vec![("OCTOGEN_ADMIN_TOKEN", "octo_admin_tooshort")], "admin_token must hold"),
        (vec!["serve"], vec![("OCTOGEN_IDLE_TIMEOUT_SECS", "0")], "idle_timeout_secs must be between"),
    ];
    for (args, env, expected) in cases {
        let output = run(&args, &env);
        assert!(!output.status.success(), "{args:?} {env:?} started");
        let err = stderr(&output);
        assert!(err.contains(expected), "{args:?} {env:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
}

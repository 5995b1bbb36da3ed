//! Issue 16: what hostile clients found at the HTTP edge — metrics label
//! explosion, idle and uncapped connections, oversized heads and bodies,
//! ambiguous credentials, expensive searches, operator-token guessing, weak
//! operator tokens, and a readable data directory.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{test_config, titles, TestApp, NORTHWIND};
use crate::oauth::{mcp_raw, partner_app, Agent};

/// Generous: these bounds only tell "closed by the server" from "never closed".
const CLOSED_WITHIN: Duration = Duration::from_secs(15);

async fn spawn_with(change: impl FnOnce(&mut octogen_server::Config)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    change(&mut config);
    TestApp::spawn_with(config, dir).await
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base.trim_start_matches("http://")).await.expect("connect")
}

/// Everything the server sends until it closes the connection (a reset counts
/// as closing), or `None` if it is still open after `CLOSED_WITHIN`.
async fn until_closed(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    let read_all = async {
        let mut chunk = [0u8; 8192];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(read) => received.extend_from_slice(&chunk[..read]),
            }
        }
    };
    tokio::time::timeout(CLOSED_WITHIN, read_all).await.ok()?;
    Some(received)
}

/// One HTTP/1.1 response: its head and a body of `Content-Length` bytes.
async fn response(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut chunk = [0u8; 8192];
    let read_one = async {
        loop {
            let text = String::from_utf8_lossy(&received).into_owned();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length:").map(str::to_string))
                    .and_then(|value| value.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if received.len() >= end + 4 + length {
                    return text;
                }
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return text,
                Ok(read) => received.extend_from_slice(&chunk[..read]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read_one).await.expect("a response")
}

async fn exchange(app: &TestApp, request: &str) -> String {
    let mut stream = connect(app).await;
    stream.write_all(request.as_bytes()).await.unwrap();
    response(&mut stream).await
}

fn healthz(app: &TestApp) -> String {
    format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", app.base.trim_start_matches("http://"))
}

/// 16.2: label values come from fixed sets, and only the metrics listener serves them.
#[tokio::test]
async fn metrics_stay_small_whatever_methods_and_paths_clients_send() {
    let app = TestApp::spawn().await;
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move |below: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % below
    };
    for index in 0..1_000 {
        let length = 1 + next(2_000);
        let method: String = (0..length).map(|_| char::from(b'A' + next(26) as u8)).collect();
        let path = match index % 4 {
            0 => "/v1/catalogs".to_string(),
            1 => "/healthz".to_string(),
            _ => format!("/{}/{}", next(1 << 40), next(1 << 40)),
        };
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        app.http.request(method, app.url(&path)).send().await.expect("answered");
    }
    let public = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(public.status(), 404, "metrics are not served on the public listener");
    let metrics = app.metrics().await;
    assert!(metrics.len() < 64 * 1024, "the metrics page grew to {} bytes", metrics.len());
    assert!(metrics.contains(r#"octogen_http_requests_total{method="other",route="unmatched",status="404"}"#));
    assert!(metrics.contains(r#"octogen_http_requests_total{method="other",route="/v1/catalogs",status="405"}"#));
}

/// 16.3: idle connections of both protocols, and connections that never finish a head, are closed.
#[tokio::test]
async fn idle_and_stalled_connections_are_closed() {
    let app = spawn_with(|config| config.idle_timeout_secs = 1).await;

    // HTTP/2 with prior knowledge: preface and an empty SETTINGS frame, then nothing.
    let mut h2 = connect(&app).await;
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    h2.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
    let frames = until_closed(&mut h2).await.expect("an idle HTTP/2 connection is closed");
    assert!(frame_types(&frames).contains(&7), "closed with a GOAWAY frame");

    // HTTP/1.1 keep-alive after one answered request.
    let mut h1 = connect(&app).await;
    h1.write_all(healthz(&app).as_bytes()).await.unwrap();
    assert!(response(&mut h1).await.starts_with("HTTP/1.1 200"));
    assert!(until_closed(&mut h1).await.is_some(), "an idle HTTP/1.1 connection is closed");

    // A head that never ends, and a preface that never ends.
    for partial in ["GET /healthz HTTP/1.1\r\nHost: x\r\n", "PRI * HTTP/2.0\r\n"] {
        let mut stalled = connect(&app).await;
        stalled.write_all(partial.as_bytes()).await.unwrap();
        assert!(until_closed(&mut stalled).await.is_some(), "a stalled head is closed: {partial:?}");
    }
}

/// The frame types of a server's HTTP/2 byte stream (9-byte frame headers).
fn frame_types(mut bytes: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    while bytes.len() >= 9 {
        let length = (usize::from(bytes[0]) << 16) | (usize::from(bytes[1]) << 8) | usize::from(bytes[2]);
        types.push(bytes[3]);
        bytes = &bytes[(9 + length).min(bytes.len())..];
    }
    types
}

/// 16.3: beyond `max_connections` a new connection is closed unread; open ones go on being served.
#[tokio::test]
async fn connections_beyond_the_cap_are_refused_while_open_ones_are_served() {
    let app = spawn_with(|config| config.max_connections = 3).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut stream = connect(&app).await;
        stream.write_all(healthz(&app).as_bytes()).await.unwrap();
        assert!(response(&mut stream).await.starts_with("HTTP/1.1 200"));
        open.push(stream);
    }
    let mut refused = connect(&app).await;
    let _ = refused.write_all(healthz(&app).as_bytes()).await;
    let answer = until_closed(&mut refused).await.expect("closed at once");
    assert!(answer.is_empty(), "nothing is served beyond the cap: {}", String::from_utf8_lossy(&answer));

    for stream in &mut open {
        stream.write_all(healthz(&app).as_bytes()).await.unwrap();
        assert!(response(stream).await.starts_with("HTTP/1.1 200"), "open connections are still served");
    }
    drop(open.pop());
    let mut served = false;
    for _ in 0..100 {
        let mut stream = connect(&app).await;
        if stream.write_all(healthz(&app).as_bytes()).await.is_ok() && response(&mut stream).await.contains(" 200 ") {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served, "a closed connection frees its place");
}

/// 16.19: the request head limit is exactly `max_header_bytes` (request line, headers, final CRLF).
#[tokio::test]
async fn request_heads_are_limited_to_exactly_max_header_bytes() {
    let app = TestApp::spawn().await;
    let limit = octogen_server::Config::default().max_header_bytes;
    let head = |size: usize| {
        let host = app.base.trim_start_matches("http://");
        let bare = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nX-Pad: \r\n\r\n");
        let head = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nX-Pad: {}\r\n\r\n", "a".repeat(size - bare.len()));
        assert_eq!(head.len(), size);
        head
    };
    assert!(exchange(&app, &head(limit)).await.starts_with("HTTP/1.1 200"), "a head of exactly the limit");
    for over in [limit + 1, limit + 20 * 1024] {
        let answer = exchange(&app, &head(over)).await;
        assert!(answer.starts_with("HTTP/1.1 431"), "{over} bytes: {answer}");
    }
}

/// 16.19: a body announced larger than `max_body_bytes` is refused at once, on every route, unread.
#[tokio::test]
async fn oversized_bodies_are_refused_before_they_are_read() {
    // A short request timeout: on failure this test ends with 503s rather than hanging.
    let app = spawn_with(|config| config.request_timeout_secs = 5).await;
    let (_, key) = app.partner_with_northwind("northwind").await;
    let too_large = octogen_server::Config::default().max_body_bytes + 1;
    let host = app.base.trim_start_matches("http://").to_string();
    let admin = format!("Bearer {}", app.admin_token);
    let partner = format!("Bearer {key}");
    let routes = [
        ("/v1/products/search", Some(partner.as_str()), "application/json"),
        ("/v1/products/lookup", Some(partner.as_str()), "application/json"),
        ("/admin/v1/orgs", Some(admin.as_str()), "application/json"),
        ("/mcp", None, "application/json"),
        ("/oauth2/register", None, "application/json"),
        ("/oauth2/token", None, "application/x-www-form-urlencoded"),
        ("/login", None, "application/x-www-form-urlencoded"),
    ];
    for expect in [false, true] {
        for (path, authorization, content_type) in routes {
            let mut head = format!(
                "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\nContent-Length: {too_large}\r\n"
            );
            if let Some(value) = authorization {
                head.push_str(&format!("Authorization: {value}\r\n"));
            }
            if expect {
                head.push_str("Expect: 100-continue\r\n");
            }
            // The head alone: the body never comes.
            let answer = exchange(&app, &format!("{head}\r\n")).await;
            assert!(answer.starts_with("HTTP/1.1 413"), "{path} (expect {expect}): {answer}");
            assert!(answer.ends_with(r#"{"detail":"Request body too large"}"#), "{path}: {answer}");
        }
    }
    let (status, _) = app.search(&key, json!({"q": "hoodie"})).await;
    assert_eq!(status, 200, "the server is unharmed");
}

/// 16.19: two `Authorization` headers are ambiguous: 400 on every surface, whichever comes first.
#[tokio::test]
async fn two_authorization_headers_are_refused() {
    let app = TestApp::spawn().await;
    let (_, key) = app.partner_with_northwind("northwind").await;
    let admin = format!("Bearer {}", app.admin_token);
    let partner = format!("Bearer {key}");
    for (path, first, second) in
        [("/v1/catalogs", &partner, "Bearer octo_live_other"), ("/admin/v1/orgs", &admin, admin.as_str())]
    {
        let response =
            app.http.get(app.url(path)).header("authorization", first).header("authorization", second).send().await;
        let response = response.unwrap();
        assert_eq!(response.status(), 400, "{path}");
        assert_eq!(response.json::<Value>().await.unwrap(), json!({"detail": "Send exactly one Authorization header"}));
    }
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let reply = mcp_raw(&app, Some("Bearer a"), &[("authorization", "Bearer b")], list).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert_eq!(app.catalogs(&key).await.status(), 200, "one header still works");
}

/// The schema of `searchProducts`' request body in a version's OpenAPI document.
async fn search_request_schema(app: &TestApp, version: &str) -> Value {
    let document: Value = app
        .http
        .get(app.url(&format!("/v1/openapi.json?version={version}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let schema =
        &document["paths"]["/v1/products/search"]["post"]["requestBody"]["content"]["application/json"]["schema"];
    let name = schema["$ref"].as_str().expect("a named schema").rsplit('/').next().unwrap();
    document["components"]["schemas"][name].clone()
}

/// 16.6: `q` holds at most 1,000 characters, in both API versions and in `text_search_query`.
#[tokio::test]
async fn overlong_queries_are_refused_with_the_spec_shape() {
    let app = TestApp::spawn().await;
    let (_, key) = app.partner_with_northwind("northwind").await;
    let at_limit = "hoodie ".repeat(143)[..1000].to_string();
    let (status, _) = app.search(&key, json!({"q": at_limit})).await;
    assert_eq!(status, 200, "1,000 characters are fine");

    let over = "é".repeat(1001);
    let expected = |loc: Value| {
        json!({"detail": [{
            "loc": loc, "msg": "String should have at most 1000 characters", "type": "string_too_long",
            "input": over, "ctx": {"max_length": 1000}
        }]})
    };
    let (status, body) = app.search(&key, json!({"q": over})).await;
    assert_eq!((status, body), (422, expected(json!(["body", "q"]))));
    let (status, body) = app.search(&key, json!({"text_search_query": {"text": over}})).await;
    assert_eq!((status, body), (422, expected(json!(["body", "text_search_query", "text"]))));
    let response = app
        .http
        .post(app.url("/v1/products/search"))
        .bearer_auth(&key)
        .header("octogen-version", "2026-10-01")
        .json(&json!({"q": over}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    assert_eq!(response.json::<Value>().await.unwrap(), expected(json!(["body", "q"])));

    for version in ["2026-05-28", "2026-10-01"] {
        let schema = search_request_schema(&app, version).await;
        assert_eq!(schema["properties"]["q"]["maxLength"], 1000, "{version}: {schema}");
    }
}

/// 16.6: the MCP tool has the same cap, as a tool-level error.
#[tokio::test]
async fn an_overlong_mcp_query_is_a_tool_error() {
    let (app, _org, mut person) = partner_app().await;
    let token = Agent::register(&app.base).await.connect(&mut person).await.access;
    let call = |query: String| {
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
               "params": {"name": "search_products", "arguments": {"catalog": "northwind", "query": query}}})
    };
    let reply = mcp_raw(&app, Some(&format!("Bearer {token}")), &[], call("x".repeat(1001))).await;
    let result = &reply.json()["result"];
    assert_eq!(result["isError"], true, "{}", reply.body);
    assert_eq!(result["structuredContent"]["error"], "query_too_long");
    let reply = mcp_raw(&app, Some(&format!("Bearer {token}")), &[], call("x".repeat(1000))).await;
    assert_eq!(reply.json()["result"]["isError"], false, "{}", reply.body);
}

/// 16.19: the May 2026 `text_search_query` object's filters apply like the top-level ones.
#[tokio::test]
async fn text_search_query_filters_apply_like_top_level_ones() {
    let app = TestApp::spawn().await;
    let (_, key) = app.partner_with_northwind("northwind").await;
    let search = |body: Value| {
        let app = &app;
        let key = key.clone();
        async move {
            let (status, page) = app.search(&key, body).await;
            assert_eq!(status, 200, "{page}");
            let mut found = titles(&page);
            found.sort();
            found
        }
    };
    let black = json!([{"name": "color_family", "values": ["Black"]}]);
    let everything = search(json!({"limit": 100})).await;
    let cheap = search(json!({"price_max": 60, "limit": 100})).await;
    let black_ones = search(json!({"facets": black, "limit": 100})).await;
    assert!(!cheap.is_empty() && cheap.len() < everything.len(), "the sample splits at 60");
    assert!(!black_ones.is_empty() && black_ones.len() < everything.len());

    assert_eq!(search(json!({"text_search_query": {"price_max": 60}, "limit": 100})).await, cheap);
    assert_eq!(search(json!({"text_search_query": {"facets": black}, "limit": 100})).await, black_ones);
    let not_black: Vec<String> = everything.iter().filter(|title| !black_ones.contains(title)).cloned().collect();
    assert_eq!(search(json!({"text_search_query": {"exclusion_facets": black}, "limit": 100})).await, not_black);
    // Both levels hold: the tighter bound wins, facets from both must match.
    let both = search(json!({"price_max": 500, "text_search_query": {"price_max": 60}, "limit": 100})).await;
    assert_eq!(both, cheap);
    let cheap_black: HashSet<&String> = cheap.iter().filter(|title| black_ones.contains(title)).collect();
    let combined = search(json!({"price_max": 60, "text_search_query": {"facets": black}, "limit": 100})).await;
    assert_eq!(combined.iter().collect::<HashSet<_>>(), cheap_black);

    let (status, body) = app.search(&key, json!({"text_search_query": {"text": "hoodie", "semantic": [0.1]}})).await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "text_search_query", "semantic"]));
    assert_eq!(body["detail"][0]["type"], "extra_forbidden");
    let (status, body) = app.search(&key, json!({"text_search_query": {"price_min": 90, "price_max": 10}})).await;
    assert_eq!((status, body["detail"][0]["type"].clone()), (422, json!("value_error")));
}

/// 16.11: wrong operator tokens are charged to the client address's failure bucket.
#[tokio::test]
async fn operator_token_guessing_is_throttled_per_address() {
    let app = spawn_with(|config| config.auth_failure_limit_per_minute = 5).await;
    let guess = |token: String| app.http.get(app.url("/admin/v1/orgs")).bearer_auth(token).send();
    for attempt in 0..5 {
        let response = guess(format!("octo_admin_guess{attempt}")).await.unwrap();
        assert_eq!(response.status(), 401);
        assert!(response.headers().contains_key("x-ratelimit-remaining"));
    }
    let refused = guess("octo_admin_guess5".into()).await.unwrap();
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(refused.json::<Value>().await.unwrap(), json!({"detail": "rate_limit_exceeded"}));
    let (status, _) = app.admin(reqwest::Method::GET, "/orgs", None).await;
    assert_eq!(status, 200, "the right token from the same address still works");
}

/// 16.11: a configured operator token must carry 32 random bytes; start-up names the setting.
#[tokio::test]
async fn a_weak_operator_token_is_refused_at_start() {
    for weak in ["octo_admin_tooshorttooshorttooshort", "passwordpasswordpasswordpasswordpasswordpassword"] {
        let dir = tempfile::tempdir().unwrap();
        let config = octogen_server::Config { admin_token: Some(SecretString::from(weak)), ..test_config(dir.path()) };
        let error = match octogen_server::Application::build(config).await {
            Ok(_) => panic!("{weak} was accepted"),
            Err(error) => format!("{error:#}"),
        };
        assert!(error.contains("admin_token must hold at least 32 random bytes"), "{error}");
        assert!(!error.contains(weak));
    }
}

/// 16.12: everything octogen writes is private (umask and chmod on open); a
/// shared data directory is reported; a generated operator token is named by its file.
#[cfg(unix)]
#[test]
fn the_data_directory_is_private_and_a_generated_token_is_not_printed() {
    use std::os::unix::fs::PermissionsExt;

    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    std::fs::set_permissions(data.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let start = |name: &str| {
        let log_path = logs.path().join(name);
        let log = std::fs::File::create(&log_path).unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_octogen"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data.path())
            .env_remove("OCTOGEN_TEST_DATABASE_URL")
            .env_remove("OCTOGEN_ADMIN_TOKEN")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let base = crate::helpers::wait_for_address(&log_path);
        (ChildGuard(child), base, log_path)
    };
    let (server, base, log_path) = start("first.log");
    let token_file = data.path().join("admin-token");
    let token = std::fs::read_to_string(&token_file).unwrap().trim().to_string();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains(&token_file.display().to_string()), "the token's file is named: {log}");
    assert!(!log.contains(&token), "the token is not printed");
    assert!(log.contains("the data directory is accessible to other users"), "{log}");

    let cli = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_octogen"))
            .args(args)
            .env("OCTOGEN_SERVER", &base)
            .env("OCTOGEN_DATA_DIR", data.path())
            .env_remove("OCTOGEN_ADMIN_TOKEN")
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    };
    cli(&[
        "admin",
        "catalog",
        "create",
        "--key",
        "northwind",
        "--name",
        "Northwind",
        "--source-url",
        "https://northwind.example",
    ]);
    let feed = logs.path().join("feed.json");
    std::fs::write(&feed, NORTHWIND).unwrap();
    cli(&["catalog", "import", "--catalog", "northwind", "--format", "shopify", feed.to_str().unwrap()]);
    assert_private(data.path());
    drop(server);

    // Files left readable (an older version, a restore) are made private on the next start.
    for (name, mode) in [("octogen.db", 0o644), ("index", 0o755), ("uploads", 0o777), ("key-pepper", 0o640)] {
        std::fs::set_permissions(data.path().join(name), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let (server, _, _) = start("second.log");
    assert_private(data.path());
    drop(server);
}

/// No file or directory below `dir` (the directory itself aside) is open to group or others.
#[cfg(unix)]
fn assert_private(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let mode = std::fs::symlink_metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} has mode {mode:o}", path.display());
        if path.is_dir() {
            assert_private(&path);
        }
    }
}

struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

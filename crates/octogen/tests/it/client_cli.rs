//! `octogen catalogs`, `octogen search`, `octogen lookup` (issue 8): the real
//! binary against a real server — tables, `--json`, cursors, the key from the
//! environment, and exit codes by error class. Only the 429/5xx exit codes use
//! a scripted peer, since the real server cannot be made to fail on cue.

use std::process::Output;

use serde_json::Value;

use crate::helpers::{stderr, stdout, TestApp};

/// Runs `octogen ARGS` with `OCTO_BASE_URL` set to `base` and only the given
/// key variables in the environment.
async fn octogen(base: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_octogen"));
    command.args(args).env("OCTO_BASE_URL", base).env_remove("OCTO_API_KEY").env_remove("OCTOGEN_PLATFORM_API_KEY");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().await.expect("octogen runs")
}

async fn with_key(app: &TestApp, key: &str, args: &[&str]) -> Output {
    octogen(&app.base, &[("OCTO_API_KEY", key)], args).await
}

fn json_out(output: &Output) -> Value {
    assert!(output.status.success(), "stdout: {}\nstderr: {}", stdout(output), stderr(output));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| panic!("{error}: {}", stdout(output)))
}

/// Asserts a failure: the exit code, and one `error:` line on stderr containing
/// `needle`, after the notices of any retries.
fn assert_failure(output: &Output, code: i32, needle: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(code), "stdout: {}\nstderr: {err}", stdout(output));
    let (last, notices) =
        err.trim_end().lines().collect::<Vec<_>>().split_last().map(|(l, n)| (*l, n.to_vec())).unwrap();
    assert!(notices.iter().all(|line| line.contains(", retrying in ")), "one error line after retry notices: {err}");
    assert!(last.starts_with("error: ") && last.contains(needle), "{err}");
}

#[tokio::test]
async fn catalogs_prints_a_table_or_json() {
    let app = TestApp::spawn().await;
    let (_, key) = app.partner_with_northwind("northwind").await;

    let table = with_key(&app, &key, &["catalogs"]).await;
    assert!(table.status.success(), "{}", stderr(&table));
    let text = stdout(&table);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("CATALOG") && lines[0].contains("PRODUCTS"), "{text}");
    assert!(lines[1].starts_with("northwind") && lines[1].contains("24"), "{text}");
    assert!(lines[1].contains("https://northwind.example"), "{text}");

    let catalogs = json_out(&with_key(&app, &key, &["catalogs", "--json"]).await);
    assert_eq!(catalogs[0]["catalog"], "northwind");
    assert_eq!(catalogs[0]["productCount"], 24);
    assert!(catalogs[0]["lastIndexedAt"].is_string());

    let org = app.partner("No grants").await;
    let empty = app.mint_key(&org).await;
    let output = with_key(&app, &empty.key, &["catalogs"]).await;
    assert!(output.status.success());
    assert_eq!(stdout(&output).trim(), "No catalogs are granted to this key's organization.");
    assert_eq!(json_out(&with_key(&app, &empty.key, &["catalogs", "--json"]).await), Value::Array(vec![]));
}

#[tokio::test]
async fn search_runs_the_issues_example() {
    let app = TestApp::spawn().await;
    let (_, key) = app.partner_with_northwind("northwind").await;
    let example = [
        "search",
        "black hoodie",
        "--facet",
        "color_family=Black",
        "--facet",
        "gender=male",
        "--price-min",
        "50",
        "--price-max",
        "300",
        "--limit",
        "10",
    ];
    let output = with_key(&app, &key, &example).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("TITLE") && lines[0].contains("PRICE") && lines[0].contains("URL"), "{text}");
    assert!(lines[1].starts_with("Trail Fleece Hoodie"), "{text}");
    assert!(lines[1].contains("64.00 USD (was 80.00)"), "{text}");
    assert!(lines[1].contains("https://northwind.example/products/trail-hoodie"), "{text}");
    assert!(text.trim_end().ends_with("products") || text.trim_end().ends_with("product"), "{text}");

    let page = json_out(&with_key(&app, &key, &[&example[..], &["--json"]].concat()).await);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items[0]["title"], "Trail Fleece Hoodie");
    for item in items {
        let price = item["currentPrice"].as_f64().unwrap();
        assert!((50.0..=300.0).contains(&price), "{item}");
    }
    assert_eq!(page["nextCursor"], Value::Null);
    assert!(page["requestId"].is_string());

    // Values of one facet are ORed; without a query it browses.
    let page = json_out(
        &with_key(
            &app,
            &key,
            &["search", "--facet", "color_family=black", "--facet", "color_family=BLUE", "--limit", "100", "--json"],
        )
        .await,
    );
    assert_eq!(page["items"].as_array().unwrap().len(), 16);
    let output = with_key(&app, &key, &["search", "no such thing at all zzzz"]).await;
    assert!(output.status.success());
    assert_eq!(stdout(&output).trim(), "No products match.");
}

#[tokio::test]
async fn search_pages_with_cursors_and_all() {
    let app = TestApp::spawn().await;
    let (_, key) = app.partner_with_northwind("northwind").await;

    let output = with_key(&app, &key, &["search", "--limit", "5"]).await;
    let text = stdout(&output);
    assert_eq!(text.lines().filter(|line| line.contains("https://northwind.example/")).count(), 5, "{text}");
    assert!(text.contains("5 products on this page. Next page: add --cursor "), "{text}");

    let first = json_out(&with_key(&app, &key, &["search", "--limit", "5", "--json"]).await);
    let cursor = first["nextCursor"].as_str().unwrap();
    let second = json_out(&with_key(&app, &key, &["search", "--limit", "5", "--cursor", cursor, "--json"]).await);
    assert_ne!(first["items"][0]["uuid"], second["items"][0]["uuid"]);

    let all = json_out(&with_key(&app, &key, &["search", "--limit", "5", "--all", "--json"]).await);
    let items = all["items"].as_array().unwrap();
    assert_eq!(items.len(), 24);
    let mut uuids: Vec<&str> = items.iter().map(|item| item["uuid"].as_str().unwrap()).collect();
    uuids.sort();
    uuids.dedup();
    assert_eq!(uuids.len(), 24, "every product once");
    assert_eq!(all["nextCursor"], Value::Null);

    let output = with_key(&app, &key, &["search", "--limit", "7", "--all"]).await;
    let text = stdout(&output);
    assert!(text.trim_end().ends_with("24 products"), "{text}");

    // One --catalog restricts; several are sent as `catalogs`; unknown ones are 404.
    let page = json_out(&with_key(&app, &key, &["search", "jacket", "--catalog", "northwind", "--json"]).await);
    assert!(page["items"].as_array().unwrap().iter().all(|item| item["catalogKey"] == "northwind"));
    let output = with_key(&app, &key, &["search", "--catalog", "northwind", "--catalog", "elsewhere"]).await;
    assert_failure(&output, 5, "catalog_not_found");
}

#[tokio::test]
async fn lookup_prints_the_product() {
    let app = TestApp::spawn().await;
    let (_, key) = app.partner_with_northwind("northwind").await;

    let output =
        with_key(&app, &key, &["lookup", "https://www.northwind.example/products/trail-hoodie?utm_source=x"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.starts_with("Trail Fleece Hoodie\n"), "{text}");
    for expected in ["price", "64.00 USD (was 80.00)", "northwind store (northwind)", "in stock", "variants"] {
        assert!(text.contains(expected), "{expected}: {text}");
    }

    let found =
        json_out(&with_key(&app, &key, &["lookup", "https://northwind.example/products/trail-hoodie", "--json"]).await);
    assert_eq!(found["catalogKey"], "northwind");
    assert_eq!(found["product"]["title"], "Trail Fleece Hoodie");
    assert!(found["product"]["variants"].is_array());
    assert_eq!(found["normalizedUrl"], "https://northwind.example/products/trail-hoodie");

    let output = with_key(&app, &key, &["lookup", "https://northwind.example/products/nope"]).await;
    assert_failure(&output, 5, "product_not_found");
    let output = with_key(&app, &key, &["lookup", "not a url"]).await;
    assert_failure(&output, 6, "invalid_product_url");
}

#[tokio::test]
async fn the_key_comes_from_the_environment_and_never_shows() {
    let app = TestApp::spawn().await;
    let (org, key) = app.partner_with_northwind("northwind").await;

    // No key: one line naming OCTO_API_KEY, the auth exit code, no request needed.
    for args in
        [&["catalogs"][..], &["search", "hoodie"], &["lookup", "https://northwind.example/products/trail-hoodie"]]
    {
        let output = octogen(&app.base, &[], args).await;
        assert_failure(&output, 4, "OCTO_API_KEY");
        assert!(stdout(&output).is_empty());
    }
    let output = octogen(&app.base, &[("OCTO_API_KEY", "")], &["catalogs"]).await;
    assert_failure(&output, 4, "OCTO_API_KEY");

    // OCTOGEN_PLATFORM_API_KEY (the public SDKs' name) is the fallback…
    let output = octogen(&app.base, &[("OCTOGEN_PLATFORM_API_KEY", &key)], &["catalogs", "--json"]).await;
    assert_eq!(json_out(&output)[0]["catalog"], "northwind");
    // …and OCTO_API_KEY wins when both are set.
    let wrong = format!("{}x", &key[..key.len() - 1]);
    let output =
        octogen(&app.base, &[("OCTO_API_KEY", &key), ("OCTOGEN_PLATFORM_API_KEY", &wrong)], &["catalogs"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let output =
        octogen(&app.base, &[("OCTO_API_KEY", &wrong), ("OCTOGEN_PLATFORM_API_KEY", &key)], &["catalogs"]).await;
    assert_failure(&output, 4, "Invalid API key");
    assert!(stderr(&output).contains("check OCTO_API_KEY"));
    let secret = wrong.rsplit('_').next().unwrap();
    assert!(!stderr(&output).contains(secret) && !stdout(&output).contains(secret), "the key is never printed");

    // A revoked key is refused on the next command; a merchant's key is forbidden.
    let keys: Value = app.admin(reqwest::Method::GET, &format!("/orgs/{org}/keys"), None).await.1;
    app.revoke(keys[0]["id"].as_str().unwrap()).await;
    assert_failure(&with_key(&app, &key, &["catalogs"]).await, 4, "Invalid API key");
    let merchant = app.create_org("A merchant", "merchant").await;
    let merchant_key = app.mint_key(&merchant).await;
    assert_failure(&with_key(&app, &merchant_key.key, &["catalogs"]).await, 4, "api_key_org_type_forbidden");

    // --base-url beats OCTO_BASE_URL, and a trailing /v1 is fine.
    let org = app.partner("Second").await;
    let second = app.mint_key(&org).await;
    let base_v1 = format!("{}/v1", app.base);
    let output =
        octogen("http://127.0.0.1:9", &[("OCTO_API_KEY", &second.key)], &["catalogs", "--base-url", &base_v1]).await;
    assert!(output.status.success(), "{}", stderr(&output));
}

#[tokio::test]
async fn usage_and_connection_errors_have_their_exit_codes() {
    let app = TestApp::spawn().await;
    let (_, key) = app.partner_with_northwind("northwind").await;
    for args in [&["search", "--limit", "500"][..], &["search", "--facet", "no-equals-sign"], &["lookup"]] {
        let output = with_key(&app, &key, args).await;
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", stderr(&output));
    }
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let output = octogen(&format!("http://127.0.0.1:{closed}"), &[("OCTO_API_KEY", &key)], &["catalogs"]).await;
    assert_failure(&output, 3, &format!("127.0.0.1:{closed}"));
    let output = octogen("ftp://example.com", &[("OCTO_API_KEY", &key)], &["catalogs"]).await;
    assert_failure(&output, 6, "base URL");
    // Facet values with spaces and '=' reach the server intact.
    let output = with_key(&app, &key, &["search", "--facet", "category_path.depth_0=Home & Garden", "--json"]).await;
    assert_eq!(json_out(&output)["items"], Value::Array(vec![]));
}

/// A scripted peer: every request gets `status` with `Retry-After: retry_after`.
async fn failing_peer(status: u16, retry_after: &'static str) -> String {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let app = axum::Router::new().fallback(move || async move {
        let body =
            if status == 429 { r#"{"detail":"rate_limit_exceeded"}"# } else { r#"{"detail":"Service unavailable"}"# };
        (
            StatusCode::from_u16(status).unwrap(),
            [("content-type", "application/json"), ("retry-after", retry_after)],
            body,
        )
            .into_response()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

#[tokio::test]
async fn rate_limits_and_server_errors_have_their_exit_codes() {
    let key =
        format!("octo_live_{}_{}", "00000000000000000000000000000000", "exit-code-test-key-not-a-secret-000000000");
    // A wait longer than the client waits out is reported at once, with the wait.
    let base = failing_peer(429, "120").await;
    let output = octogen(&base, &[("OCTO_API_KEY", &key)], &["search", "hoodie"]).await;
    assert_failure(&output, 7, "rate_limit_exceeded");
    assert!(stderr(&output).contains("retry in 120s"), "{}", stderr(&output));

    let base = failing_peer(503, "0").await;
    let output = octogen(&base, &[("OCTO_API_KEY", &key)], &["catalogs"]).await;
    assert_failure(&output, 8, "503");
}

/// Issue 17.7: the wait for a rate limit is announced on stderr (never 30 s of
/// silence), and `--no-retry` exits 7 at once.
#[tokio::test]
async fn waiting_out_a_rate_limit_is_announced_and_no_retry_fails_at_once() {
    let key =
        format!("octo_live_{}_{}", "00000000000000000000000000000000", "exit-code-test-key-not-a-secret-000000000");
    let base = failing_peer(429, "1").await;
    let output = octogen(&base, &[("OCTO_API_KEY", &key)], &["catalogs"]).await;
    assert_failure(&output, 7, "rate_limit_exceeded");
    let err = stderr(&output);
    let notices = err.lines().filter(|line| *line == "rate limited, retrying in 1 s (--no-retry to fail at once)");
    assert_eq!(notices.count(), 2, "one notice before each retry: {err}");

    let output = octogen(&base, &[("OCTO_API_KEY", &key)], &["search", "hoodie", "--no-retry"]).await;
    assert_failure(&output, 7, "rate_limit_exceeded");
    assert_eq!(stderr(&output).lines().count(), 1, "no retries: {}", stderr(&output));

    let base = failing_peer(503, "0").await;
    let output = octogen(&base, &[("OCTO_API_KEY", &key)], &["catalogs"]).await;
    assert_failure(&output, 8, "503");
    assert!(stderr(&output).contains("the server answered HTTP 503, retrying in 1 s"), "{}", stderr(&output));
}

/// Issue 17.9: when the reader of the output goes away (`octogen … | head -1`), the
/// command ends quietly with status 0 instead of panicking (exit 101).
#[tokio::test]
async fn a_closed_output_pipe_ends_the_command_quietly() {
    let app = TestApp::spawn().await;
    let (_, key) = app.partner_with_northwind("northwind").await;
    let commands: [&[&str]; 4] = [
        &["search", "--limit", "100"],
        &["catalogs", "--json"],
        &["admin", "org", "list"],
        &["admin", "catalog", "list"],
    ];
    for args in commands {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_octogen"))
            .args(args)
            .env("OCTO_BASE_URL", &app.base)
            .env("OCTO_API_KEY", &key)
            .env("OCTOGEN_SERVER", &app.base)
            .env("OCTOGEN_ADMIN_TOKEN", &app.admin_token)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader is gone before the command writes anything.
        drop(child.stdout.take());
        let output = child.wait_with_output().await.unwrap();
        assert_eq!(output.status.code(), Some(0), "{args:?}: {}", stderr(&output));
        assert_eq!(stderr(&output), "", "{args:?}");
    }
    // Through a shell, as in the issue: the first line arrives and nothing else is said.
    let piped = tokio::process::Command::new("sh")
        .args(["-c", &format!("{} search --limit 100 | head -1", env!("CARGO_BIN_EXE_octogen"))])
        .env("OCTO_BASE_URL", &app.base)
        .env("OCTO_API_KEY", &key)
        .output()
        .await
        .unwrap();
    assert_eq!(stdout(&piped).lines().collect::<Vec<_>>().len(), 1);
    assert!(stdout(&piped).starts_with("TITLE"), "{}", stdout(&piped));
    assert!(!stderr(&piped).contains("panicked"), "{}", stderr(&piped));
}

/// Issue 17.9: tables fit the width (`COLUMNS`, else a terminal's, else 120 columns),
/// cutting text with "…"; `--json` keeps every value whole.
#[tokio::test]
async fn tables_fit_the_width_and_json_keeps_everything() {
    let app = TestApp::spawn().await;
    let (_, key) = app.partner_with_northwind("northwind").await;
    let search = |columns: Option<&'static str>, extra: &'static [&'static str]| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_octogen"));
        command.args(["search", "hoodie"]).args(extra).env("OCTO_BASE_URL", &app.base).env("OCTO_API_KEY", &key);
        match columns {
            Some(columns) => command.env("COLUMNS", columns),
            None => command.env_remove("COLUMNS"),
        };
        async move { command.output().await.unwrap() }
    };
    for (columns, width) in [(Some("60"), 60), (Some("90"), 90), (None, 120)] {
        let output = search(columns, &[]).await;
        let text = stdout(&output);
        for line in text.lines() {
            assert!(line.chars().count() <= width, "{columns:?}: {line:?} is wider than {width}");
        }
        if width < 120 {
            assert!(text.contains('…'), "cut cells end in an ellipsis: {text}");
        }
    }
    let page = json_out(&search(Some("60"), &["--json"]).await);
    let url = page["items"][0]["productUrl"].as_str().unwrap();
    assert!(url.starts_with("https://northwind.example/products/") && url.len() > 40, "{url}");
}

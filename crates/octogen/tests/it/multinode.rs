//! Issue 7: several stateless nodes over one PostgreSQL database. Runs when
//! `OCTOGEN_TEST_DATABASE_URL` points at a PostgreSQL server (CI starts one);
//! mandatory when `CI=true`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{test_config, TestApp, NORTHWIND};

/// A fresh, empty database on the test server, or `None` (with a message) outside CI.
async fn fresh_database() -> Option<String> {
    use sqlx::Executor;
    let Ok(url) = std::env::var("OCTOGEN_TEST_DATABASE_URL") else {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "OCTOGEN_TEST_DATABASE_URL is required in CI");
        eprintln!("skipping: OCTOGEN_TEST_DATABASE_URL is not set");
        return None;
    };
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&url).await.expect("the test PostgreSQL answers");
    let name = format!("octogen_it_{}", uuid::Uuid::new_v4().simple());
    admin.execute(format!("CREATE DATABASE {name}").as_str()).await.unwrap();
    admin.close().await;
    let (base, _) = url.rsplit_once('/').unwrap();
    Some(format!("{base}/{name}"))
}

/// Two nodes on one database: same pepper and operator token, separate data directories (indexes).
async fn two_nodes() -> Option<(TestApp, TestApp)> {
    two_nodes_fetching_from("").await
}

/// Like `two_nodes`, with `fetch_allow_private` listing `targets` (a test's feed server).
async fn two_nodes_fetching_from(targets: &str) -> Option<(TestApp, TestApp)> {
    let url = fresh_database().await?;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut config_a = test_config(dir_a.path());
    config_a.database_url = Some(url.clone());
    config_a.fetch_allow_private = targets.parse().unwrap();
    let mut config_b = config_a.clone();
    config_b.data_dir = dir_b.path().to_path_buf();
    let a = TestApp::spawn_with(config_a, dir_a).await;
    let b = TestApp::spawn_with(config_b, dir_b).await;
    Some((a, b))
}

async fn until<F: std::future::Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) -> Duration {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < Duration::from_secs(30), "{what} did not happen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn imports_and_access_changes_reach_every_node() {
    let Some((a, b)) = two_nodes().await else { return };
    let (org, key) = a.partner_with_northwind("northwind").await;

    // Imported through A, searchable on B (its own index follows the store's change feed).
    let visible = until("the import reaching node B", || async {
        b.search(&key, json!({"q": "hoodie"})).await.1["items"].as_array().is_some_and(|items| !items.is_empty())
    })
    .await;
    eprintln!("node B served the import {} ms after it finished on node A", visible.as_millis());
    assert_eq!(b.lookup(&key, json!({"url": "https://northwind.example/products/trail-hoodie"})).await.0, 200);

    // Every access change made through A is refused by B on the very next request.
    a.ungrant(&org, "northwind").await;
    assert_eq!(b.search(&key, json!({"catalog": "northwind"})).await.0, 404);
    a.grant(&org, "northwind").await;
    assert_eq!(b.search(&key, json!({"catalog": "northwind"})).await.0, 200);
    a.suspend(&org).await;
    assert_eq!(b.catalogs(&key).await.status(), 403);
    a.admin(reqwest::Method::POST, &format!("/orgs/{org}/unsuspend"), Some(json!({}))).await;
    let (_, keys) = b.admin(reqwest::Method::GET, &format!("/orgs/{org}/keys"), None).await;
    let key_id = keys[0]["id"].as_str().unwrap().to_string();
    assert_eq!(b.catalogs(&key).await.status(), 200);
    a.revoke(&key_id).await;
    assert_eq!(b.catalogs(&key).await.status(), 401, "revoked on A, refused by B on the next request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_rate_budget_per_organization_across_nodes() {
    let Some((a, b)) = two_nodes().await else { return };
    let (org, key) = a.partner_with_northwind("northwind").await;
    let (status, _) =
        a.admin(reqwest::Method::PUT, &format!("/orgs/{org}/rate-limit"), Some(json!({"perMinute": 10}))).await;
    assert_eq!(status, 200);
    let mut statuses = Vec::new();
    for request in 0..14 {
        let node = if request % 2 == 0 { &a } else { &b };
        let response = node.catalogs(&key).await;
        statuses.push((
            response.status().as_u16(),
            response.headers()["x-ratelimit-remaining"].to_str().unwrap().to_string(),
        ));
    }
    let accepted = statuses.iter().filter(|(status, _)| *status == 200).count();
    assert!((10..=11).contains(&accepted), "the two nodes admitted {accepted} of a 10-request budget: {statuses:?}");
    assert_eq!(statuses[..10].iter().map(|(s, _)| *s).collect::<Vec<_>>(), [200; 10]);
    assert_eq!(statuses.last().unwrap().0, 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn imports_and_scheduled_runs_happen_once_per_catalog_across_nodes() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shop = format!("http://{}", listener.local_addr().unwrap());
    let Some((a, b)) = two_nodes_fetching_from(&listener.local_addr().unwrap().to_string()).await else { return };
    let (_, _key) = a.partner_with_northwind("northwind").await;

    // The same catalog imported through both nodes at once: the runs take turns.
    let (run_a, run_b) = tokio::join!(
        a.import("northwind", "shopify", NORTHWIND, json!({})),
        b.import("northwind", "shopify", NORTHWIND, json!({}))
    );
    let mut spans = [&run_a, &run_b]
        .map(|run| (run["startedAt"].as_str().unwrap().to_string(), run["finishedAt"].as_str().unwrap().to_string()));
    spans.sort();
    assert!(spans[1].0 >= spans[0].1, "runs of one catalog overlapped across nodes: {spans:?}");

    // A scheduled source is claimed by exactly one node per due time.
    let feed: Value = serde_json::from_slice(NORTHWIND).unwrap();
    let router = axum::Router::new().route(
        "/feed.json",
        axum::routing::get(move || {
            let feed = feed.clone();
            async move { axum::Json(feed) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    let (status, body) = a
        .admin(
            reqwest::Method::PUT,
            "/catalogs/northwind/source",
            Some(json!({"url": format!("{shop}/feed.json"), "format": "shopify", "intervalSecs": 3600})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    until("the scheduled run", || async {
        let (_, runs) = a.admin(reqwest::Method::GET, "/catalogs/northwind/runs", None).await;
        runs.as_array().unwrap().iter().any(|run| run["trigger"] == "schedule" && run["status"] == "succeeded")
    })
    .await;
    // Give the other node's scheduler several ticks to (wrongly) start a second one.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (_, runs) = b.admin(reqwest::Method::GET, "/catalogs/northwind/runs", None).await;
    let scheduled = runs.as_array().unwrap().iter().filter(|run| run["trigger"] == "schedule").count();
    assert_eq!(scheduled, 1, "{runs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_expiring_on_one_node_is_refused_by_every_node() {
    let Some((a, b)) = two_nodes().await else { return };
    let org = a.partner("Expiring").await;
    let old = a.mint_key(&org).await;
    let path = format!("/keys/{}/rotate", old.id);
    let (status, rotated) = a.admin(reqwest::Method::POST, &path, Some(json!({"expireOldInSeconds": 1}))).await;
    assert_eq!(status, 201, "{rotated}");
    assert_eq!(b.catalogs(&old.key).await.status(), 200, "B reads the expiry with the key, still ahead");
    let at = octogen_core::Timestamp::parse_rfc3339(rotated["previous"]["expiresAt"].as_str().unwrap()).unwrap();
    while octogen_core::Timestamp::now() <= at {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(b.catalogs(&old.key).await.status(), 401, "the next request after the moment, on B");
    assert_eq!(a.catalogs(&old.key).await.status(), 401);
    assert_eq!(b.catalogs(rotated["key"].as_str().unwrap()).await.status(), 200);
}

//! Index runs end to end (issue 3): real feeds through the CLI, change
//! accounting, failed runs that change nothing, crash safety, one run per
//! catalog at a time, scheduled imports and rebuilds.

use serde_json::{json, Value};

use crate::helpers::{shared_data, stderr, stdout, test_config, titles, ServerProcess, TestApp, NORTHWIND};

/// A server whose fetches may reach the address of `listener` (a test's feed server on loopback).
async fn app_allowing(listener: &tokio::net::TcpListener) -> TestApp {
    let data_dir = tempfile::tempdir().unwrap();
    let allowed = listener.local_addr().unwrap().to_string().parse().unwrap();
    let config = octogen_server::Config { fetch_allow_private: allowed, ..test_config(data_dir.path()) };
    TestApp::spawn_with(config, data_dir).await
}

fn run_json(output: &std::process::Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("not JSON: {}\n{}", stdout(output), stderr(output)))
}

#[tokio::test]
async fn the_real_shopify_store_imports_with_enrichment() {
    let Some(feed) = shared_data("shopify-spacire-products.json") else { return };
    let app = TestApp::spawn().await;
    let org = app.partner("Sleep Partner").await;
    app.cli(&[
        "admin",
        "catalog",
        "create",
        "--key",
        "spacire",
        "--name",
        "Spacire",
        "--source-url",
        "https://spacire.com",
    ])
    .await;
    app.grant(&org, "spacire").await;
    let key = app.mint_key(&org).await.key;

    let output = app
        .cli(&[
            "catalog",
            "import",
            "--catalog",
            "spacire",
            "--format",
            "shopify",
            "--currency",
            "GBP",
            feed.to_str().unwrap(),
        ])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let report = stdout(&output);
    assert!(report.contains("seen 507 · added 507 · updated 0 · unchanged 0 · deactivated 0 · skipped 0"), "{report}");

    let catalogs: Value = app.catalogs(&key).await.json().await.unwrap();
    assert_eq!(catalogs[0]["productCount"], 507);
    assert!(catalogs[0]["lastIndexedAt"].is_string());

    let (_, page) = app.search(&key, json!({"q": "BlissLoom weighted blanket", "limit": 3})).await;
    assert!(titles(&page)[0].starts_with("BlissLoom Weighted Blanket"), "{:?}", titles(&page));
    let url = page["items"][0]["productUrl"].as_str().unwrap().to_string();
    assert!(url.starts_with("https://spacire.com/products/"));
    let (status, found) = app.lookup(&key, json!({"url": url})).await;
    assert_eq!(status, 200);
    let product = &found["product"];
    assert_eq!(product["brand"]["name"], "Spacire");
    assert_eq!(product["currency"], "GBP");
    let families = product["enrichment"]["color_family"].as_array().unwrap();
    assert!(families.contains(&json!("Gray")) && families.contains(&json!("Blue")), "{families:?}");

    // The same feed again changes nothing.
    let again = run_json(
        &app.cli(&[
            "catalog",
            "import",
            "--catalog",
            "spacire",
            "--format",
            "shopify",
            "--currency",
            "GBP",
            "--json",
            feed.to_str().unwrap(),
        ])
        .await,
    );
    assert_eq!(
        again["counts"],
        json!({"seen": 507, "added": 0, "updated": 0, "unchanged": 507, "deactivated": 0, "skipped": 0})
    );
}

#[tokio::test]
async fn the_real_fashion_catalog_imports_through_its_mapping() {
    let Some(feed) = shared_data("myntra-products.csv") else { return };
    let mapping = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../mappings/myntra.toml");
    let app = TestApp::spawn().await;
    let org = app.partner("Fashion Partner").await;
    app.create_catalog("myntra").await;
    app.grant(&org, "myntra").await;
    let key = app.mint_key(&org).await.key;
    let run = run_json(
        &app.cli(&[
            "catalog",
            "import",
            "--catalog",
            "myntra",
            "--format",
            "csv",
            "--mapping",
            mapping.to_str().unwrap(),
            "--json",
            feed.to_str().unwrap(),
        ])
        .await,
    );
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["counts"]["added"], 11_596);
    let (_, page) = app
        .search(&key, json!({"q": "navy blue shirt", "facets": [{"name": "gender", "values": ["male"]}, {"name": "color_family", "values": ["Blue"]}], "limit": 5}))
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 5, "{page}");
    assert!(page["items"][0]["currency"] == "INR");
}

#[tokio::test]
async fn runs_add_update_keep_and_deactivate() {
    let app = TestApp::spawn().await;
    let (_, key) = app.partner_with_northwind("northwind").await;
    let before: Value = app.catalogs(&key).await.json().await.unwrap();

    let mut feed: Value = serde_json::from_slice(NORTHWIND).unwrap();
    let products = feed["products"].as_array_mut().unwrap();
    products.truncate(20); // four products leave the feed
    products[0]["variants"][0]["price"] = json!("59.00"); // one changes
    let mut new = products[1].clone();
    new["handle"] = json!("brand-new-fleece");
    new["title"] = json!("Brand New Fleece");
    products.push(new); // one is new
    let run = app.import("northwind", "shopify", &serde_json::to_vec(&feed).unwrap(), json!({"currency": "USD"})).await;
    assert_eq!(
        run["counts"],
        json!({"seen": 21, "added": 1, "updated": 1, "unchanged": 19, "deactivated": 4, "skipped": 0})
    );

    let after: Value = app.catalogs(&key).await.json().await.unwrap();
    assert_eq!(after[0]["productCount"], 21, "productCount counts active products");
    assert!(
        after[0]["lastIndexedAt"].as_str() > before[0]["lastIndexedAt"].as_str(),
        "lastIndexedAt is the run's completion"
    );
    let (_, page) = app.search(&key, json!({"limit": 100})).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 21);
    assert!(titles(&page).contains(&"Brand New Fleece".to_string()));

    // The products come back (same uuid) when they reappear.
    let (_, gone) = app.search(&key, json!({"q": "printed silk scarf"})).await;
    assert!(gone["items"].as_array().unwrap().is_empty());
    let back = app.import("northwind", "shopify", NORTHWIND, json!({"currency": "USD"})).await;
    assert_eq!(back["counts"]["updated"], 5, "4 reactivated + 1 price restored: {back}");
    assert_eq!(back["counts"]["deactivated"], 1);

    // Finished runs leave neither their uploads nor their staging files behind
    // (removed just after the run is recorded, off the request-serving threads).
    let uploads = app.data_dir.path().join("uploads");
    let leftovers = || std::fs::read_dir(&uploads).unwrap().map(|entry| entry.unwrap().file_name()).collect::<Vec<_>>();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !leftovers().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(leftovers(), Vec::<std::ffi::OsString>::new());

    // This node indexed each run while publishing it (indexing::alongside);
    // the index must be the one the store's change feed would have built.
    let metrics = app.metrics().await;
    assert!(metrics.contains("octogen_index_runs_indexed_alongside_total 3"), "{metrics}");
    let queries = [json!({"limit": 100}), json!({"q": "jacket", "limit": 100}), json!({"q": "fleece", "limit": 100})];
    let mut published = Vec::new();
    for query in &queries {
        published.push(app.search(&key, query.clone()).await.1);
    }
    let reindex = app.cli(&["admin", "reindex"]).await;
    assert!(reindex.status.success(), "{}", stderr(&reindex));
    for (query, before) in queries.iter().zip(published) {
        let rebuilt = app.search(&key, query.clone()).await.1;
        assert_eq!(rebuilt["items"], before["items"], "{query}");
        assert_eq!(rebuilt["facets"], before["facets"], "{query}");
    }
}

#[tokio::test]
async fn a_failed_run_changes_nothing_visible() {
    let app = TestApp::spawn().await;
    let (_, key) = app.partner_with_northwind("northwind").await;
    let before_catalogs: Value = app.catalogs(&key).await.json().await.unwrap();
    let (_, before_search) = app.search(&key, json!({"limit": 100})).await;

    let truncated = &NORTHWIND[..NORTHWIND.len() / 2];
    let bad_records = serde_json::to_vec(&json!({"products": [
        {"title": "No handle", "variants": [{"price": "1.00"}]},
        {"title": "", "handle": "no-title", "variants": [{"price": "1.00"}]},
        {"title": "Negative", "handle": "negative", "variants": [{"price": "-3.00"}]},
    ]}))
    .unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("shopify", truncated.to_vec(), "truncated"),
        ("shopify", b"<!doctype html><html><body>Shop</body></html>".to_vec(), "HTML"),
        ("merchant-xml", NORTHWIND.to_vec(), "found"),
        ("shopify", vec![0xff, 0xfe, 0x00, 0x7b], "UTF-8"),
        ("shopify", Vec::new(), "empty"),
        ("shopify", bad_records, "no valid product (3 record(s) skipped)"),
    ];
    for (format, feed, expected) in cases {
        let run = app.import("northwind", format, &feed, json!({"currency": "USD"})).await;
        assert_eq!(run["status"], "failed", "{expected}: {run}");
        let error = run["error"].as_str().unwrap();
        assert!(error.contains(expected), "{expected:?} not in {error:?}");
    }
    let after_catalogs: Value = app.catalogs(&key).await.json().await.unwrap();
    assert_eq!(after_catalogs, before_catalogs, "count and lastIndexedAt unchanged");
    assert_eq!(app.search(&key, json!({"limit": 100})).await.1["items"], before_search["items"]);

    // Skipped records are named in the report of a run that succeeds.
    let mut feed: Value = serde_json::from_slice(NORTHWIND).unwrap();
    feed["products"][3]["variants"] = json!([{"price": "abc", "available": true}]);
    feed["products"][5]["handle"] = feed["products"][4]["handle"].clone();
    let run = app.import("northwind", "shopify", &serde_json::to_vec(&feed).unwrap(), json!({"currency": "USD"})).await;
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["counts"]["skipped"], 2, "{run}");
    let reasons: Vec<String> = run["report"]["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|skip| format!("{}: {}", skip["record"], skip["reason"]))
        .collect();
    assert!(reasons.iter().any(|r| r.contains("record 4") && r.contains("price")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("record 6") && r.contains("duplicate")), "{reasons:?}");

    // Bad requests are refused before a run is created.
    for (body, message) in [
        (json!({"format": "xml", "url": "https://x.example/feed"}), "unknown feed format"),
        (json!({"format": "csv", "url": "https://x.example/feed"}), "mapping"),
        (json!({"format": "shopify"}), "exactly one of upload"),
        (json!({"format": "shopify", "upload": "00000000-0000-0000-0000-000000000000"}), "upload"),
        (json!({"format": "shopify", "url": "https://x.example", "currency": "pounds"}), "ISO 4217"),
        (json!({"format": "csv", "url": "https://x.example", "mapping": "not toml ["}), "invalid CSV mapping"),
    ] {
        let (status, error) = app.admin(reqwest::Method::POST, "/catalogs/northwind/imports", Some(body.clone())).await;
        assert!(status == 422 || status == 404, "{body}: {status}");
        assert!(error["detail"].as_str().unwrap().contains(message), "{body}: {error}");
    }
    let (_, runs) = app.admin(reqwest::Method::GET, "/catalogs/northwind/runs", None).await;
    assert_eq!(runs.as_array().unwrap().len(), 8, "1 + 6 failed + 1 with skips; refused requests made no run");
}

/// A refused import discards the upload it named; nothing is left on disk.
#[tokio::test]
async fn a_refused_import_discards_its_upload() {
    let app = TestApp::spawn().await;
    let (_, _key) = app.partner_with_northwind("northwind").await;
    let uploads = app.data_dir.path().join("uploads");
    let leftovers = || std::fs::read_dir(&uploads).unwrap().count();
    for (catalog, body) in [
        ("nowhere", json!({"format": "shopify"})),
        ("northwind", json!({"format": "yaml"})),
        ("northwind", json!({"format": "shopify", "currency": "pounds"})),
    ] {
        let upload = app.upload(NORTHWIND).await;
        assert_eq!(leftovers(), 1, "the upload is on disk");
        let mut request = body.clone();
        request["upload"] = upload["upload"].clone();
        let (status, error) =
            app.admin(reqwest::Method::POST, &format!("/catalogs/{catalog}/imports"), Some(request)).await;
        assert!(status == 404 || status == 422, "{body}: {status} {error}");
        assert_eq!(leftovers(), 0, "{body}: the refused import's upload is gone");
        let retry = json!({"format": "shopify", "upload": upload["upload"]});
        let (status, error) = app.admin(reqwest::Method::POST, "/catalogs/northwind/imports", Some(retry)).await;
        assert_eq!(status, 404, "{error}");
        assert!(error["detail"].as_str().unwrap().contains("not found"), "{error}");
    }
}

#[tokio::test]
async fn runs_of_one_catalog_never_interleave() {
    let app = TestApp::spawn().await;
    let (_, _key) = app.partner_with_northwind("northwind").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let upload = app.upload(NORTHWIND).await;
        let (_, run) = app
            .admin(
                reqwest::Method::POST,
                "/catalogs/northwind/imports",
                Some(json!({"format": "shopify", "upload": upload["upload"]})),
            )
            .await;
        ids.push(run["id"].as_str().unwrap().to_string());
    }
    let mut runs = Vec::new();
    for id in &ids {
        runs.push(app.wait_for_run(id).await);
    }
    let mut spans: Vec<(String, String)> = runs
        .iter()
        .map(|run| (run["startedAt"].as_str().unwrap().to_string(), run["finishedAt"].as_str().unwrap().to_string()))
        .collect();
    spans.sort();
    for pair in spans.windows(2) {
        assert!(pair[1].0 >= pair[0].1, "a run started before the previous one finished: {pair:?}");
    }
}

#[tokio::test]
async fn scheduled_imports_fetch_the_configured_source() {
    // A merchant's storefront serving /products.json (pages of up to 250; page 2 is empty),
    // on loopback: the operator lists it in fetch_allow_private.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shop = format!("http://{}", listener.local_addr().unwrap());
    let app = app_allowing(&listener).await;
    let org = app.partner("Scheduled").await;
    app.create_catalog("feedshop").await;
    app.grant(&org, "feedshop").await;
    let key = app.mint_key(&org).await.key;

    let feed: Value = serde_json::from_slice(NORTHWIND).unwrap();
    let router = axum::Router::new().route(
        "/products.json",
        axum::routing::get(
            move |axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>| {
                let feed = feed.clone();
                async move {
                    match query.get("page").map(String::as_str) {
                        Some("1") => axum::Json(feed),
                        _ => axum::Json(json!({"products": []})),
                    }
                }
            },
        ),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });

    let output = app
        .cli(&[
            "admin",
            "catalog",
            "set-source",
            "feedshop",
            "--url",
            &shop,
            "--format",
            "shopify",
            "--every",
            "6h",
            "--currency",
            "EUR",
        ])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let catalogs: Value = app.catalogs(&key).await.json().await.unwrap();
        if catalogs[0]["productCount"] == 24 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the scheduled import did not run: {catalogs}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let runs = app.cli(&["admin", "catalog", "runs", "feedshop", "--json"]).await;
    let runs = run_json(&runs);
    assert_eq!(runs.as_array().unwrap().len(), 1, "claimed once: {runs}");
    assert_eq!(runs[0]["trigger"], "schedule");
    assert_eq!(runs[0]["report"]["download"]["pages"], 2);

    // A source that answers 404 fails the run with the URL and status, and changes nothing.
    let (_, _) = app
        .admin(
            reqwest::Method::POST,
            "/catalogs/feedshop/imports",
            Some(json!({"format": "shopify", "url": format!("{shop}/missing.json")})),
        )
        .await;
    let (_, runs) = app.admin(reqwest::Method::GET, "/catalogs/feedshop/runs", None).await;
    let failed = app.wait_for_run(runs[0]["id"].as_str().unwrap()).await;
    assert_eq!(failed["status"], "failed");
    assert!(failed["error"].as_str().unwrap().contains("404"), "{failed}");
    let output = app.cli(&["admin", "catalog", "clear-source", "feedshop"]).await;
    assert!(output.status.success());
}

#[tokio::test]
async fn reindex_rebuilds_search_from_the_store() {
    let app = TestApp::spawn().await;
    let (_, key) = app.partner_with_northwind("northwind").await;
    let (_, before) = app.search(&key, json!({"q": "jacket"})).await;
    for args in [vec!["admin", "reindex"], vec!["admin", "reindex", "--catalog", "northwind"]] {
        let output = app.cli(&args).await;
        assert!(output.status.success(), "{}", stderr(&output));
        assert!(stdout(&output).contains("24 products"), "{}", stdout(&output));
        assert_eq!(app.search(&key, json!({"q": "jacket"})).await.1["items"], before["items"]);
    }
    let missing = app.cli(&["admin", "reindex", "--catalog", "nope"]).await;
    assert_eq!(missing.status.code(), Some(5));
}

#[test]
fn a_crash_mid_run_loses_nothing_and_a_lost_index_is_rebuilt() {
    // A big generated feed so the run is still going when the server is killed.
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.json");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
    octogen_ingest::synth::write_catalog(
        &octogen_ingest::synth::SynthOptions {
            products: 150_000,
            seed: 7,
            format: octogen_ingest::synth::SynthFormat::Shopify,
        },
        &mut file,
    )
    .unwrap();
    drop(file);
    let small = dir.path().join("northwind.json");
    std::fs::write(&small, NORTHWIND).unwrap();

    let mut server = ServerProcess::start(&[]);
    let org =
        run_json(&server.cli(&["admin", "org", "create", "--name", "Crash", "--type", "catalog_partner", "--json"]));
    let org = org["id"].as_str().unwrap().to_string();
    server.cli(&[
        "admin",
        "catalog",
        "create",
        "--key",
        "crashy",
        "--name",
        "Crashy",
        "--source-url",
        "https://synthetic.octogen.test",
    ]);
    server.cli(&["admin", "grant", "--org", &org, "--catalog", "crashy"]);
    let key = run_json(&server.cli(&["keys", "create", "--org", &org, "--name", "k", "--json"]))["key"]
        .as_str()
        .unwrap()
        .to_string();
    let first = run_json(&server.cli(&[
        "catalog",
        "import",
        "--catalog",
        "crashy",
        "--format",
        "shopify",
        "--json",
        small.to_str().unwrap(),
    ]));
    assert_eq!(first["status"], "succeeded");

    let started = run_json(&server.cli(&[
        "catalog",
        "import",
        "--catalog",
        "crashy",
        "--format",
        "shopify",
        "--no-wait",
        "--json",
        big.to_str().unwrap(),
    ]));
    let run_id = started["id"].as_str().unwrap().to_string();
    let http = reqwest::blocking::Client::new();
    // Wait until the run is well under way, then kill -9.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let run: Value = http
            .get(format!("{}/admin/v1/runs/{run_id}", server.base))
            .bearer_auth(&server.admin_token)
            .send()
            .unwrap()
            .json()
            .unwrap();
        if run["counts"]["seen"].as_u64().unwrap_or(0) > 5_000 {
            assert_eq!(run["status"], "running");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{run}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    server.kill();

    // Restart on the same data, after also wiping the search index.
    std::fs::remove_dir_all(server.data_dir().join("index")).unwrap();
    let server = server.restart();
    let run: Value = http
        .get(format!("{}/admin/v1/runs/{run_id}", server.base))
        .bearer_auth(&server.admin_token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(run["status"], "interrupted", "{run}");
    let catalogs: Value =
        http.get(format!("{}/v1/catalogs", server.base)).bearer_auth(&key).send().unwrap().json().unwrap();
    assert_eq!(catalogs[0]["productCount"], 24, "the catalog is as the last completed run left it");
    // The index was rebuilt from the store by the follower.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let page: Value = http
            .post(format!("{}/v1/products/search", server.base))
            .bearer_auth(&key)
            .json(&json!({"limit": 100}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        if page["items"].as_array().map(Vec::len) == Some(24) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{page}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A metric's value from `/metrics`.
async fn metric(app: &TestApp, name: &str) -> f64 {
    let text = app.metrics().await;
    let line = text.lines().find(|line| line.split(' ').next() == Some(name)).unwrap_or_else(|| panic!("{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_backlog_of_several_pages_is_indexed_completely_and_persisted() {
    // More than two of the follower's pages (20,000 changes): the catch-up path,
    // whose single commit must hold every change and the sequence value.
    const PRODUCTS: u64 = 42_000;
    let mut feed = Vec::new();
    octogen_ingest::synth::write_catalog(
        &octogen_ingest::synth::SynthOptions {
            products: PRODUCTS,
            seed: 11,
            format: octogen_ingest::synth::SynthFormat::Shopify,
        },
        &mut feed,
    )
    .unwrap();
    let data_dir = tempfile::tempdir().unwrap();
    let config = crate::helpers::test_config(data_dir.path());
    let app = TestApp::spawn_with(config.clone(), data_dir).await;
    let org = app.partner("Bulk partner").await;
    app.create_catalog("bulk").await;
    app.grant(&org, "bulk").await;
    let key = app.mint_key(&org).await.key;
    let run = app.import("bulk", "shopify", &feed, json!({"currency": "USD"})).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let added = run["counts"]["added"].as_f64().unwrap();
    assert!(added > 40_000.0, "{run}");
    assert_eq!(metric(&app, "octogen_search_index_documents").await, added);
    let seq = metric(&app, "octogen_search_index_applied_seq").await;

    // The commit persisted the documents with their sequence value.
    let data_dir = app.stop().await;
    let app = TestApp::spawn_with(config, data_dir).await;
    assert_eq!(metric(&app, "octogen_search_index_applied_seq").await, seq);
    assert_eq!(metric(&app, "octogen_search_index_documents").await, added);

    // A run deactivating them all is another backlog of several pages.
    let run = app.import("bulk", "shopify", NORTHWIND, json!({"currency": "USD"})).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["counts"]["deactivated"].as_f64().unwrap(), added, "{run}");
    assert_eq!(metric(&app, "octogen_search_index_documents").await, 24.0);
    let (_, page) = app.search(&key, json!({"limit": 100})).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 24);
}

/// A feed server on loopback: `/feed.json` is the sample catalog, `/moved` redirects to
/// `redirect_to`. Counts the requests it gets.
async fn feed_server(
    listener: tokio::net::TcpListener,
    redirect_to: String,
) -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let router = axum::Router::new()
        .route("/feed.json", axum::routing::get(|| async { NORTHWIND }))
        .route(
            "/moved",
            axum::routing::get(move || {
                let target = redirect_to.clone();
                async move { (axum::http::StatusCode::FOUND, [(axum::http::header::LOCATION, target)]) }
            }),
        )
        .layer(axum::middleware::from_fn(move |request, next: axum::middleware::Next| {
            counted.fetch_add(1, Ordering::SeqCst);
            next.run(request)
        }));
    tokio::spawn(async move { axum::serve(listener, router).await });
    hits
}

async fn import_url(app: &TestApp, catalog: &str, url: &str) -> Value {
    let body = json!({"format": "shopify", "url": url, "currency": "USD"});
    let (status, run) = app.admin(reqwest::Method::POST, &format!("/catalogs/{catalog}/imports"), Some(body)).await;
    assert_eq!(status, 202, "{run}");
    app.wait_for_run(run["id"].as_str().unwrap()).await
}

#[tokio::test]
async fn feeds_are_fetched_from_public_or_listed_addresses_only() {
    use std::sync::atomic::Ordering;
    let internal_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let internal = internal_listener.local_addr().unwrap();
    let internal_hits = feed_server(internal_listener, String::new()).await;
    let shop_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shop = shop_listener.local_addr().unwrap();
    let app = app_allowing(&shop_listener).await;
    let shop_hits = feed_server(shop_listener, format!("http://{internal}/feed.json")).await;
    app.create_catalog("intranet").await;

    // The listed feed server is reached.
    let run = import_url(&app, "intranet", &format!("http://{shop}/feed.json")).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    // Any other private target is refused before a request is sent, in every spelling,
    // and so is a redirect from the listed server to one.
    let refused = |url: String| {
        format!("cannot fetch the feed: refused {url}: 127.0.0.1 is a loopback address (set fetch_allow_private to allow it)")
    };
    let port = internal.port();
    for (asked, shown) in [
        (format!("http://{internal}/feed.json"), format!("http://{internal}/feed.json")),
        (format!("http://2130706433:{port}/feed.json"), format!("http://{internal}/feed.json")),
        (format!("http://0177.0.0.1:{port}/feed.json"), format!("http://{internal}/feed.json")),
        (format!("http://{shop}/moved"), format!("http://{internal}/feed.json")),
    ] {
        let run = import_url(&app, "intranet", &asked).await;
        assert_eq!(run["status"], "failed", "{asked}: {run}");
        assert_eq!(run["error"], refused(shown), "{asked}");
    }
    let metadata = import_url(&app, "intranet", "http://169.254.169.254/latest/meta-data/").await;
    let error = metadata["error"].as_str().unwrap();
    assert!(
        error.ends_with("169.254.169.254 is a link-local address (set fetch_allow_private to allow it)"),
        "{error}"
    );
    assert_eq!(internal_hits.load(Ordering::SeqCst), 0, "nothing reached the unlisted server");
    assert_eq!(shop_hits.load(Ordering::SeqCst), 2, "the import and the redirect");
    let (_, catalogs) = app.admin(reqwest::Method::GET, "/catalogs", None).await;
    assert_eq!(catalogs[0]["productCount"], 24, "refused imports changed nothing: {catalogs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_url_credentials_never_show_in_reports_responses_or_logs() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shop = listener.local_addr().unwrap();
    feed_server(listener, String::new()).await;
    let server = ServerProcess::start_with_env(&[
        ("OCTOGEN_LOG_LEVEL", "trace"),
        ("OCTOGEN_FETCH_ALLOW_PRIVATE", &shop.to_string()),
    ]);
    let secret = format!("http://feeduser:hunter2@{shop}/feed.json?token=abc123&page=1");
    let shown = format!("http://***@{shop}/feed.json?token=***&page=1");
    let missing = format!("http://feeduser:hunter2@{shop}/missing.json?api_key=abc123");
    let leaks = |text: &str| text.contains("hunter2") || text.contains("abc123");
    let mut outputs = Vec::new();
    let mut run = |args: &[&str]| {
        let output = server.cli(args);
        let text = format!("{}{}", stdout(&output), stderr(&output));
        outputs.push(text.clone());
        (output, text)
    };
    run(&["admin", "catalog", "create", "--key", "shop", "--name", "Shop", "--source-url", "https://shop.example"]);
    let (output, _) = run(&["catalog", "import", "--catalog", "shop", "--format", "shopify", "--json", &secret]);
    let imported = run_json(&output);
    assert_eq!(imported["status"], "succeeded", "{imported}");
    assert_eq!((&imported["source"], &imported["report"]["download"]["url"]), (&json!(shown), &json!(shown)));
    let (_, text) = run(&["catalog", "import", "--catalog", "shop", "--format", "shopify", &secret]);
    assert!(text.contains(&format!("from {shown} (shopify)")), "{text}");
    let (output, text) = run(&["catalog", "import", "--catalog", "shop", "--format", "shopify", &missing]);
    assert!(!output.status.success());
    assert!(text.contains(&format!("GET http://***@{shop}/missing.json?api_key=***: HTTP 404 Not Found")), "{text}");
    let (_, text) =
        run(&["admin", "catalog", "set-source", "shop", "--url", &secret, "--format", "shopify", "--every", "1h"]);
    assert!(text.contains(&format!("re-imported from {shown} every 1h")), "{text}");
    run(&["admin", "catalog", "runs", "shop"]);
    run(&["admin", "catalog", "runs", "shop", "--json"]);
    let source: Value = reqwest::Client::new()
        .get(format!("{}/admin/v1/catalogs/shop/source", server.base))
        .bearer_auth(&server.admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(source["url"], json!(shown), "{source}");
    for output in &outputs {
        assert!(!leaks(output), "a CLI output repeats a credential: {output}");
    }
    let logs = server.logs();
    assert!(logs.contains("index run"), "the runs are logged");
    assert!(!leaks(&logs), "the log repeats a credential");
}

/// Writes the sample feed into the app's directory; returns its path.
fn northwind_file(app: &TestApp) -> String {
    let path = app.data_dir.path().join("northwind-products.json");
    std::fs::write(&path, NORTHWIND).unwrap();
    path.to_str().unwrap().to_string()
}

/// Issue 17.6: an import into a missing catalog says how to create it, before uploading anything.
#[tokio::test]
async fn importing_into_a_missing_catalog_says_how_to_create_it() {
    let app = TestApp::spawn().await;
    let feed = northwind_file(&app);
    let output =
        app.cli(&["catalog", "import", "--catalog", "nope", "--format", "shopify", "--currency", "USD", &feed]).await;
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
    let err = stderr(&output);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: catalog nope not found; create it first: octogen admin catalog create --key nope"),
        "{err}"
    );
    let uploads = std::fs::read_dir(app.data_dir.path().join("uploads")).map(|dir| dir.count()).unwrap_or(0);
    assert_eq!(uploads, 0, "nothing was uploaded");
}

/// Issue 17.6: a Shopify file needs the store's URL for its product URLs; a catalog
/// without a source URL gets it from `--base-url`, and the error says so.
#[tokio::test]
async fn a_shopify_import_takes_the_store_url_from_base_url() {
    let app = TestApp::spawn().await;
    let created = app.cli(&["admin", "catalog", "create", "--key", "bare", "--name", "No Source"]).await;
    assert!(created.status.success(), "{}", stderr(&created));
    let feed = northwind_file(&app);
    let import = ["catalog", "import", "--catalog", "bare", "--format", "shopify", "--currency", "USD"];

    let refused = app.cli(&[&import[..], &[&feed]].concat()).await;
    assert_eq!(refused.status.code(), Some(6), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("has no source URL") && stderr(&refused).contains("--base-url"),
        "{}",
        stderr(&refused)
    );
    // The operator API refuses it up front too (and says what to send).
    let upload = app.upload(NORTHWIND).await;
    let (status, body) = app
        .admin(
            reqwest::Method::POST,
            "/catalogs/bare/imports",
            Some(json!({"format": "shopify", "upload": upload["upload"], "currency": "USD"})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("baseUrl"), "{body}");
    let (status, body) = app
        .admin(
            reqwest::Method::POST,
            "/catalogs/bare/imports",
            Some(json!({"format": "shopify", "upload": app.upload(NORTHWIND).await["upload"], "baseUrl": "ftp://x"})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("not an http(s) URL"), "{body}");

    let run = run_json(
        &app.cli(&[&import[..], &["--base-url", "https://northwind.example/", "--json", &feed]].concat()).await,
    );
    assert_eq!(run["status"], "succeeded", "{run}");
    let org = app.partner("Bare partner").await;
    app.grant(&org, "bare").await;
    let key = app.mint_key(&org).await.key;
    let (status, found) = app.lookup(&key, json!({"url": "https://northwind.example/products/trail-hoodie"})).await;
    assert_eq!(status, 200, "product URLs are built from --base-url: {found}");
}

/// Issue 17.6: prices without a currency are not stored silently: the run's report
/// and the CLI (stderr) warn, and `--currency` fixes it.
#[tokio::test]
async fn an_import_without_any_currency_warns() {
    let app = TestApp::spawn().await;
    app.create_catalog("northwind").await;
    let feed = northwind_file(&app);
    let import = ["catalog", "import", "--catalog", "northwind", "--format", "shopify"];
    for json_flag in [&[][..], &["--json"]] {
        let output = app.cli(&[&import[..], json_flag, &[&feed]].concat()).await;
        assert!(output.status.success(), "{}", stderr(&output));
        let err = stderr(&output);
        assert!(
            err.contains("warning: 24 of 24 products have a price but no currency") && err.contains("--currency"),
            "{err}"
        );
        if !json_flag.is_empty() {
            let run = run_json(&output);
            assert!(run["report"]["warnings"][0].as_str().unwrap().contains("no currency"), "{run}");
        }
    }
    let output = app.cli(&[&import[..], &["--currency", "USD", &feed]].concat()).await;
    assert!(output.status.success());
    assert!(!stderr(&output).contains("warning"), "{}", stderr(&output));
}

/// Issue 17.9: an unknown `--format` is a usage error (exit 2) naming the formats, and a
/// failed import states its reason once.
#[tokio::test]
async fn import_usage_errors_and_failures_are_reported_once() {
    let app = TestApp::spawn().await;
    app.create_catalog("northwind").await;
    let feed = northwind_file(&app);
    let xml = app.cli(&["catalog", "import", "--catalog", "northwind", "--format", "xml", &feed]).await;
    assert_eq!(xml.status.code(), Some(2), "{}", stderr(&xml));
    assert!(stderr(&xml).contains("xml") && stderr(&xml).contains("merchant-xml"), "{}", stderr(&xml));
    let source = app
        .cli(&[
            "admin",
            "catalog",
            "set-source",
            "northwind",
            "--url",
            "https://x.example",
            "--format",
            "xml",
            "--every",
            "1h",
        ])
        .await;
    assert_eq!(source.status.code(), Some(2), "{}", stderr(&source));

    let empty = app.data_dir.path().join("empty.json");
    std::fs::write(&empty, r#"{"products": []}"#).unwrap();
    let failed = app
        .cli(&[
            "catalog",
            "import",
            "--catalog",
            "northwind",
            "--format",
            "shopify",
            "--currency",
            "USD",
            empty.to_str().unwrap(),
        ])
        .await;
    assert_eq!(failed.status.code(), Some(1));
    let everything = format!("{}{}", stdout(&failed), stderr(&failed));
    assert_eq!(everything.matches("the feed has no valid product").count(), 1, "{everything}");
    assert!(stdout(&failed).starts_with("Failed to import catalog northwind"), "{everything}");
    assert!(stderr(&failed).starts_with("error: the import failed: the feed has no valid product"), "{everything}");
}

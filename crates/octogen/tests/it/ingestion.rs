//! Index runs end to end (issue 3): real feeds through the CLI, change
//! accounting, failed runs that change nothing, crash safety, one run per
//! catalog at a time, scheduled imports and rebuilds.

use serde_json::{json, Value};

use crate::helpers::{shared_data, stderr, stdout, titles, ServerProcess, TestApp, NORTHWIND};

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
    let app = TestApp::spawn().await;
    let org = app.partner("Scheduled").await;
    app.create_catalog("feedshop").await;
    app.grant(&org, "feedshop").await;
    let key = app.mint_key(&org).await.key;

    // A merchant's storefront serving /products.json (pages of up to 250; page 2 is empty).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shop = format!("http://{}", listener.local_addr().unwrap());
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

//! Issue 10: API versions side by side, pinned per organization, overridable
//! per request, rendered from one internal model.

use serde_json::{json, Value};

use crate::helpers::{test_config, TestApp};

async fn pin(app: &TestApp, org: &str, version: &str) {
    let (status, body) =
        app.admin(reqwest::Method::PUT, &format!("/orgs/{org}/api-version"), Some(json!({"version": version}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["apiVersion"], version);
}

async fn call(
    app: &TestApp,
    key: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    version: Option<&str>,
) -> (u16, String, Value) {
    let mut request = app.http.request(method, app.url(path)).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    if let Some(version) = version {
        request = request.header("octogen-version", version);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let served = response.headers().get("octogen-version").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, served, response.json().await.unwrap_or(Value::Null))
}

fn assert_may_shape(page: &Value) {
    for item in page["items"].as_array().unwrap() {
        assert!(
            item["images"].as_array().unwrap().iter().all(Value::is_string),
            "May 2026 images are URL strings: {item}"
        );
        assert!(item.get("primaryImage").is_none() && item.get("inStock").is_none());
    }
    assert!(page.get("effectiveQuery").is_none());
}

#[tokio::test]
async fn organizations_are_pinned_and_requests_may_override() {
    let app = TestApp::spawn().await;
    let (org, key) = app.partner_with_northwind("northwind").await;
    let (_, orgs) = app.admin(reqwest::Method::GET, "/orgs", None).await;
    assert_eq!(orgs[0]["apiVersion"], "2026-05-28", "new organizations are pinned to the default version");

    let (status, served, page) =
        call(&app, &key, reqwest::Method::POST, "/v1/products/search", Some(json!({"q": "hoodie"})), None).await;
    assert_eq!((status, served.as_str()), (200, "2026-05-28"));
    assert_may_shape(&page);

    let cli = app.cli(&["admin", "org", "set-api-version", &org, "2026-10-01"]).await;
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    let (_, served, page) =
        call(&app, &key, reqwest::Method::POST, "/v1/products/search", Some(json!({"q": "hoodie", "limit": 2})), None)
            .await;
    assert_eq!(served, "2026-10-01", "the pin applies on the next request");
    let item = &page["items"][0];
    assert_eq!(
        item["images"][0],
        json!({"url": item["imageUrl"], "cdnUrl": null, "width": 1200, "height": 1500, "sizeBytes": null, "mimeType": null})
    );
    assert_eq!(item["primaryImage"], item["images"][0]);
    assert_eq!(item["catalogDisplayName"], "northwind store");
    for card in ["inStock", "colors", "sizes", "gender", "categoryPath", "currency", "displayMatchScore", "rawScore"] {
        assert!(item.get(card).is_some(), "missing {card}");
    }
    assert_eq!(page["effectiveQuery"]["text"], "hoodie");
    assert_eq!(page["effectiveQuery"]["understood"], false);
    assert!(page["requestId"].is_string());

    // The same organization, one request on the old contract.
    let (_, served, page) = call(
        &app,
        &key,
        reqwest::Method::POST,
        "/v1/products/search",
        Some(json!({"q": "hoodie"})),
        Some("2026-05-28"),
    )
    .await;
    assert_eq!(served, "2026-05-28");
    assert_may_shape(&page);

    let (status, _, lookup) = call(
        &app, &key, reqwest::Method::POST, "/v1/products/lookup",
        Some(json!({"url": "https://northwind.example/products/trail-hoodie", "format": "json", "resolutionMode": "auto"})), None,
    )
    .await;
    assert_eq!(status, 200, "{lookup}");
    assert_eq!(lookup["source"], "indexed");
    assert_eq!(lookup["matchedVia"], "exact", "the URL as sent is the product's own (lookup::matched_via_…)");
    assert_eq!(lookup["product"]["images"][0]["url"], "https://cdn.northwind.example/images/trail-hoodie-1.jpg");
    assert_eq!(lookup["product"]["primaryImage"]["width"], 1200);
    for absent in ["canonicalUrl", "resolvedUrl", "resolution", "cacheStatus", "warnings"] {
        assert_eq!(lookup[absent], Value::Null, "{absent}: nothing invented");
    }
}

#[tokio::test]
async fn unknown_versions_are_refused_with_the_known_ones() {
    let app = TestApp::spawn().await;
    let (org, key) = app.partner_with_northwind("northwind").await;
    for (method, path, body) in [
        (reqwest::Method::GET, "/v1/catalogs", None),
        (reqwest::Method::POST, "/v1/products/search", Some(json!({}))),
        (reqwest::Method::GET, "/v1/me", None),
    ] {
        let (status, _, error) = call(&app, &key, method, path, body, Some("2025-01-01")).await;
        assert_eq!(status, 400, "{path}");
        let detail = error["detail"].as_str().unwrap();
        assert!(
            detail.contains("2026-05-28") && detail.contains("2026-10-01") && detail.contains("2025-01-01"),
            "{detail}"
        );
    }
    let (status, _) =
        app.admin(reqwest::Method::PUT, &format!("/orgs/{org}/api-version"), Some(json!({"version": "latest"}))).await;
    assert_eq!(status, 422);
    let response = app.http.get(app.url("/v1/openapi.json?version=1999-01-01")).send().await.unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn me_exists_from_2026_10_01() {
    let app = TestApp::spawn().await;
    let (org, key) = app.partner_with_northwind("northwind").await;
    assert_eq!(
        call(&app, &key, reqwest::Method::GET, "/v1/me", None, None).await.0,
        404,
        "not in the May 2026 contract"
    );
    let (status, served, me) = call(&app, &key, reqwest::Method::GET, "/v1/me", None, Some("2026-10-01")).await;
    assert_eq!((status, served.as_str()), (200, "2026-10-01"));
    assert_eq!(me["principal"], "api_key");
    assert_eq!(me["key"]["id"].as_str().unwrap(), &key[10..42]);
    assert!(!me.to_string().contains(&key[43..]), "never key material");
    assert_eq!(me["organization"]["id"], org.as_str());
    assert_eq!(me["organization"]["type"], "catalog_partner");
    assert_eq!(me["quotas"], json!({}));
    assert_eq!(me["rateLimit"]["limit"], 1_000_000);
    assert!(me["rateLimit"]["resetAt"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn the_2026_10_01_request_fields() {
    let app = TestApp::spawn().await;
    let (org, key) = app.partner_with_northwind("northwind").await;
    pin(&app, &org, "2026-10-01").await;
    let search = |body: Value| {
        let (app, key) = (&app, key.clone());
        async move { call(app, &key, reqwest::Method::POST, "/v1/products/search", Some(body), None).await }
    };
    let (status, _, page) = search(json!({
        "q": "hoodie", "understand": true, "relax": false, "diversity": false, "debug": false, "limit": 50,
        "exclude_facets": [{"name": "age_groups", "values": ["kids"]}], "catalogs": ["northwind"],
        "similar_to_brands": ["Trailhead"], "omit_generated_facets": [], "fallback_category": ["clothing"]
    }))
    .await;
    assert_eq!(status, 200, "{page}");
    let titles: Vec<&str> = page["items"].as_array().unwrap().iter().map(|i| i["title"].as_str().unwrap()).collect();
    assert!(titles.contains(&"Trail Fleece Hoodie") && !titles.contains(&"Kids Zip Hoodie"), "{titles:?}");
    assert_eq!(
        page["effectiveQuery"]["excludeFacets"],
        json!([{"name": "age_groups", "values": ["kids"], "source": "caller"}])
    );
    assert_eq!(page["effectiveQuery"]["catalogs"], json!(["northwind"]));
    assert_eq!(page["effectiveQuery"]["similarToBrands"], Value::Null, "not applied, so not reported");

    for (body, loc) in [
        (json!({"brand_quality_min": 3}), json!(["body", "brand_quality_min"])),
        (json!({"catalog": "northwind"}), json!(["body", "catalog"])),
        (json!({"relax": "yes"}), json!(["body", "relax"])),
    ] {
        let (status, _, error) = search(body.clone()).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(error["detail"][0]["loc"], loc, "{body}: {error}");
    }
    let (status, _, error) = call(
        &app,
        &key,
        reqwest::Method::POST,
        "/v1/products/lookup",
        Some(json!({"url": "https://northwind.example/products/trail-hoodie", "format": "markdown"})),
        None,
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(error["detail"][0]["loc"], json!(["body", "format"]));
}

#[tokio::test]
async fn the_2026_05_28_contract_never_carries_image_objects() {
    let app = TestApp::spawn().await;
    let (_, key) = app.partner_with_northwind("northwind").await;
    for body in [
        json!({"limit": 100}),
        json!({"q": "jacket"}),
        json!({"facets": [{"name": "color_family", "values": ["Black"]}]}),
    ] {
        let (_, _, page) =
            call(&app, &key, reqwest::Method::POST, "/v1/products/search", Some(body), Some("2026-05-28")).await;
        assert_may_shape(&page);
    }
    let (_, _, lookup) = call(
        &app,
        &key,
        reqwest::Method::POST,
        "/v1/products/lookup",
        Some(json!({"url": "https://northwind.example/products/rain-shell-jacket"})),
        Some("2026-05-28"),
    )
    .await;
    assert!(lookup["product"]["images"].as_array().unwrap().iter().all(Value::is_string));
}

#[tokio::test]
async fn openapi_documents_each_version() {
    let app = TestApp::spawn().await;
    let default: Value = app.http.get(app.url("/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(default["info"]["version"], "2026-05-28");
    assert!(default["paths"].get("/v1/me").is_none());
    let october = app.http.get(app.url("/v1/openapi.json?version=2026-10-01")).send().await.unwrap();
    assert_eq!(october.headers()["octogen-version"], "2026-10-01");
    let october: Value = october.json().await.unwrap();
    assert_eq!(october["info"]["version"], "2026-10-01");
    assert_eq!(october["paths"]["/v1/me"]["get"]["operationId"], "getMe");
    assert!(october["components"]["schemas"]["ListItem"]["properties"]["primaryImage"].is_object());
}

#[tokio::test]
async fn the_default_version_for_new_organizations_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.default_api_version = "2026-10-01".into();
    let app = TestApp::spawn_with(config, dir).await;
    let (_, key) = app.partner_with_northwind("northwind").await;
    let (_, served, page) = call(&app, &key, reqwest::Method::POST, "/v1/products/search", Some(json!({})), None).await;
    assert_eq!(served, "2026-10-01");
    assert!(page["effectiveQuery"].is_object());
    let default: Value = app.http.get(app.url("/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(default["info"]["version"], "2026-10-01", "the document of the server's default version");
}

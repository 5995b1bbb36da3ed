//! `POST /v1/products/lookup` (SPEC §4, issue 4).

use serde_json::{json, Value};

use crate::helpers::{TestApp, NORTHWIND};

const HOODIE: &str = "https://northwind.example/products/trail-hoodie";

#[tokio::test]
async fn finds_a_product_by_any_spelling_of_its_url() {
    let app = TestApp::spawn().await;
    let (_, key) = app.partner_with_northwind("northwind").await;
    for url in [
        HOODIE,
        "http://northwind.example/products/trail-hoodie",
        "https://www.northwind.example/products/trail-hoodie/",
        "https://NORTHWIND.example/products/trail-hoodie#reviews",
        "https://northwind.example/products/trail-hoodie?utm_source=newsletter&gclid=x&fbclid=y",
        "  https://northwind.example:443/products/trail-hoodie  ",
    ] {
        let (status, found) = app.lookup(&key, json!({"url": url})).await;
        assert_eq!(status, 200, "{url}: {found}");
        assert_eq!(found["product"]["title"], "Trail Fleece Hoodie", "{url}");
        assert_eq!(found["requestedUrl"], url);
        assert_eq!(found["normalizedUrl"], HOODIE);
    }
    // Path case and meaningful query parameters are part of the identity.
    for url in
        ["https://northwind.example/products/TRAIL-HOODIE", "https://northwind.example/products/trail-hoodie?color=red"]
    {
        assert_eq!(app.lookup(&key, json!({"url": url})).await, (404, json!({"detail": "product_not_found"})), "{url}");
    }
}

#[tokio::test]
async fn returns_the_full_product_view() {
    let app = TestApp::spawn().await;
    let (_, key) = app.partner_with_northwind("northwind").await;
    let (status, found, headers) = app
        .post_v1(&key, "/v1/products/lookup", json!({"url": HOODIE, "resolutionMode": "index_only", "matchMode": "strict", "onDemandCachePolicy": "refresh"}))
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["requestId"], headers["x-request-id"].to_str().unwrap());
    assert_eq!(found["catalogKey"], "northwind");
    assert_eq!(found["catalogDisplayName"], "northwind store");
    assert_eq!(found["sourceBaseUrl"], "https://northwind.example");
    assert_eq!(found["source"], "indexed");
    let product = &found["product"];
    for field in [
        "uuid",
        "catalogKey",
        "productUrl",
        "title",
        "brand",
        "currentPrice",
        "originalPrice",
        "currency",
        "imageUrl",
        "images",
        "rating",
        "isActive",
        "updatedAt",
        "description",
        "inStock",
        "categories",
        "sizes",
        "colors",
        "tags",
        "variants",
        "details",
        "audience",
        "identifiers",
        "breadcrumbs",
        "promotions",
        "reviews",
        "videos",
        "enrichment",
    ] {
        assert!(product.get(field).is_some(), "missing {field}");
    }
    assert_eq!(product["originalPrice"], 80.0, "a markdown keeps the original price");
    assert_eq!(product["inStock"], true);
    assert_eq!(product["sizes"], json!(["s", "m", "l", "xl"]));
    assert_eq!(product["colors"][0], json!({"label": "Black", "hexCode": null, "swatchUrl": null}));
    assert_eq!(product["audience"], json!({"genders": ["male"], "ageGroups": ["adult"]}));
    let variant = product["variants"][0].as_object().unwrap();
    let mut variant_fields: Vec<&str> = variant.keys().map(String::as_str).collect();
    variant_fields.sort();
    assert_eq!(variant_fields, ["color", "imageUrl", "inStock", "productUrl", "size", "sku"]);
    assert!(product["description"].as_str().unwrap().starts_with("A midweight fleece hoodie"), "HTML reduced to text");
    let enrichment = &product["enrichment"];
    assert_eq!(enrichment["gender"], "male");
    assert_eq!(enrichment["color_family"], json!(["Black", "Blue", "Gray"]));
    assert_eq!(enrichment["canonical_brand"]["brand_slug"], "northwind");
}

#[tokio::test]
async fn not_found_and_invalid_urls() {
    let app = TestApp::spawn().await;
    let (_, key) = app.partner_with_northwind("northwind").await;
    let other = app.partner("Stranger").await;
    let stranger = app.mint_key(&other).await.key;
    let not_found = (404, json!({"detail": "product_not_found"}));
    assert_eq!(app.lookup(&key, json!({"url": "https://northwind.example/products/nope"})).await, not_found);
    assert_eq!(app.lookup(&stranger, json!({"url": HOODIE})).await, not_found, "another org's catalog is invisible");

    for url in ["not a url", "ftp://northwind.example/x", "/products/trail-hoodie", "mailto:a@b.c"] {
        assert_eq!(
            app.lookup(&key, json!({"url": url})).await,
            (422, json!({"detail": "invalid_product_url"})),
            "{url}"
        );
    }
    for (body, loc, kind) in [
        (json!({}), json!(["body", "url"]), "missing"),
        (json!({"url": ""}), json!(["body", "url"]), "string_too_short"),
        (json!({"url": 7}), json!(["body", "url"]), "string_type"),
        (json!({"url": HOODIE, "resolutionMode": "psychic"}), json!(["body", "resolutionMode"]), "literal_error"),
        (json!({"url": HOODIE, "extra": 1}), json!(["body", "extra"]), "extra_forbidden"),
    ] {
        let (status, error): (u16, Value) = app.lookup(&key, body.clone()).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!((&error["detail"][0]["loc"], &error["detail"][0]["type"]), (&loc, &json!(kind)), "{body}");
    }

    // A product that leaves the feed is gone from lookup after the next run.
    let mut feed: Value = serde_json::from_slice(NORTHWIND).unwrap();
    feed["products"].as_array_mut().unwrap().retain(|product| product["handle"] != "trail-hoodie");
    app.import("northwind", "shopify", &serde_json::to_vec(&feed).unwrap(), json!({"currency": "USD"})).await;
    assert_eq!(app.lookup(&key, json!({"url": HOODIE})).await, not_found);
}

/// A lookup in one API version: (status, body).
async fn lookup_in(app: &TestApp, key: &str, version: &str, url: &str) -> (u16, Value) {
    let response = app
        .http
        .post(app.url("/v1/products/lookup"))
        .bearer_auth(key)
        .header("octogen-version", version)
        .json(&json!({"url": url}))
        .send()
        .await
        .expect("lookup");
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

const VERSIONS: [&str; 2] = ["2026-05-28", "2026-10-01"];

/// Issue 17.2: every URL the API itself returns for a product resolves to it — its
/// `productUrl`, its `normalizedUrl` and each variant's `productUrl` (`…?variant=ID`),
/// as both API versions render them — and so do Shopify's collection paths.
#[tokio::test]
async fn every_url_the_api_returns_and_shopify_aliases_find_the_product() {
    let app = TestApp::spawn().await;
    let (_, key) = app.partner_with_northwind("northwind").await;
    for version in VERSIONS {
        let (status, hoodie) = lookup_in(&app, &key, version, HOODIE).await;
        assert_eq!(status, 200, "{version}: {hoodie}");
        let product = &hoodie["product"];
        let uuid = product["uuid"].clone();
        let mut returned: Vec<String> =
            vec![product["productUrl"].as_str().unwrap().into(), hoodie["normalizedUrl"].as_str().unwrap().into()];
        let variants = product["variants"].as_array().unwrap();
        assert!(variants.len() > 1, "the hoodie has variants");
        returned.extend(variants.iter().map(|variant| variant["productUrl"].as_str().unwrap().to_string()));
        assert!(returned[2].contains("?variant="), "{returned:?}");
        let shopify_aliases = [
            "https://northwind.example/collections/hoodies/products/trail-hoodie",
            "https://www.northwind.example/collections/all/products/trail-hoodie/?variant=1&utm_source=x",
        ];
        for url in returned.iter().map(String::as_str).chain(shopify_aliases) {
            let (status, found) = lookup_in(&app, &key, version, url).await;
            assert_eq!(status, 200, "{version} {url}: {found}");
            assert_eq!(found["product"]["uuid"], uuid, "{version} {url}");
            assert_eq!(found["normalizedUrl"], HOODIE, "the product's own key, to reuse: {version} {url}");
            assert_eq!(found["requestedUrl"], url, "the URL as sent, variant and all");
        }
    }
    // Aliases of products that do not exist stay unknown.
    for url in [
        "https://northwind.example/collections/all/products/nope",
        "https://northwind.example/products/nope?variant=1",
        "https://northwind.example/collections/hoodies",
    ] {
        assert_eq!(app.lookup(&key, json!({"url": url})).await, (404, json!({"detail": "product_not_found"})), "{url}");
    }
}

/// `matchedVia` (2026-10-01) names the rule that matched, tried in order:
/// exact, then normalized, then structural aliases.
#[tokio::test]
async fn matched_via_names_the_rule_that_found_the_product() {
    let app = TestApp::spawn().await;
    let (_, key) = app.partner_with_northwind("northwind").await;
    for (url, rule) in [
        (HOODIE, "exact"),
        ("http://www.northwind.example/products/trail-hoodie/?utm_source=mail", "normalized_exact"),
        ("https://northwind.example/products/trail-hoodie?variant=42", "structural_alias"),
        ("https://northwind.example/collections/sale/products/trail-hoodie", "structural_alias"),
    ] {
        let (status, found) = lookup_in(&app, &key, "2026-10-01", url).await;
        assert_eq!(status, 200, "{url}: {found}");
        assert_eq!(found["matchedVia"], rule, "{url}");
    }
    let (_, may) = lookup_in(&app, &key, "2026-05-28", HOODIE).await;
    assert!(may.get("matchedVia").is_none(), "2026-05-28 has no matchedVia: {may}");
}

/// The real Shopify export: each product's variant URLs (the API's own `variants[].productUrl`)
/// and collection paths resolve to it.
#[tokio::test]
async fn real_shopify_variant_urls_resolve_to_their_product() {
    let Some(feed) = crate::helpers::shared_data("shopify-spacire-products.json") else { return };
    let app = TestApp::spawn().await;
    let org = app.partner("Sleep Partner").await;
    let (status, body) = app
        .admin(
            reqwest::Method::POST,
            "/catalogs",
            Some(json!({"key": "spacire", "name": "Spacire", "sourceUrl": "https://spacire.com"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let run = app.import("spacire", "shopify", &std::fs::read(feed).unwrap(), json!({"currency": "GBP"})).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    app.grant(&org, "spacire").await;
    let key = app.mint_key(&org).await.key;
    let (_, page) = app.search(&key, json!({"q": "weighted blanket", "limit": 3})).await;
    for item in page["items"].as_array().unwrap() {
        let url = item["productUrl"].as_str().unwrap();
        let (status, found) = app.lookup(&key, json!({"url": url})).await;
        assert_eq!(status, 200, "{url}: {found}");
        let variants = found["product"]["variants"].as_array().unwrap();
        assert!(!variants.is_empty(), "{url} has variants");
        let handle = url.rsplit('/').next().unwrap();
        let collection = format!("https://spacire.com/collections/weighted-blankets/products/{handle}");
        for variant_url in
            variants.iter().map(|variant| variant["productUrl"].as_str().unwrap().to_string()).chain([collection])
        {
            for version in VERSIONS {
                let (status, by_variant) = lookup_in(&app, &key, version, &variant_url).await;
                assert_eq!(status, 200, "{version} {variant_url}: {by_variant}");
                assert_eq!(by_variant["product"]["uuid"], item["uuid"], "{version} {variant_url}");
            }
        }
    }
}

/// A CSV mapping's `url` rule declares the merchant's other URLs (Myntra's
/// `/<category>/<brand>/<slug>/<id>/buy`); lookups of them find the product, in
/// the catalog imported with that mapping only.
#[tokio::test]
async fn myntra_buy_urls_resolve_through_the_mapping_url_rule() {
    let Some(feed) = crate::helpers::shared_data("myntra-products.csv") else { return };
    let mapping = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../mappings/myntra.toml")).unwrap();
    // The header and the first 30 products, read in place.
    let rows: Vec<u8> =
        std::fs::read(feed).unwrap().split_inclusive(|byte| *byte == b'\n').take(31).flatten().copied().collect();
    let app = TestApp::spawn().await;
    let org = app.partner("Fashion Partner").await;
    app.create_catalog("myntra").await;
    let run = app.import("myntra", "csv", &rows, json!({"mapping": mapping})).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    app.grant(&org, "myntra").await;
    let key = app.mint_key(&org).await.key;

    let buy_url =
        "https://www.myntra.com/trolley-bag/dkny/dkny-unisex-black--grey-printed-medium-trolley-bag/10017413/buy";
    for url in [
        buy_url,
        "https://www.myntra.com/trolley-bag/dkny/x/10017413/buy?src=search",
        "https://www.myntra.com/10017413",
    ] {
        let (status, found) = lookup_in(&app, &key, "2026-10-01", url).await;
        assert_eq!(status, 200, "{url}: {found}");
        assert_eq!(found["product"]["title"], "DKNY Unisex Black & Grey Printed Medium Trolley Bag", "{url}");
        assert_eq!(found["normalizedUrl"], "https://myntra.com/10017413");
    }
    assert_eq!(lookup_in(&app, &key, "2026-10-01", buy_url).await.1["matchedVia"], "structural_alias");
    for url in [
        "https://www.myntra.com/trolley-bag/dkny/x/99999999/buy",
        "https://www.myntra.com/dkny/x/10017413/buy",
        "https://www.myntra.com/trolley-bag/dkny/x/10017413/view",
    ] {
        assert_eq!(app.lookup(&key, json!({"url": url})).await.0, 404, "{url}");
    }

    // The rules belong to the catalog's latest successful import: a feed imported without them drops them.
    let without_aliases = mapping.replace(", aliases = [\"https://www.myntra.com/{*}/{*}/{*}/{ProductID}/buy\"]", "");
    assert_ne!(without_aliases, mapping);
    let run = app.import("myntra", "csv", &rows, json!({"mapping": without_aliases})).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(app.lookup(&key, json!({"url": buy_url})).await.0, 404);
}

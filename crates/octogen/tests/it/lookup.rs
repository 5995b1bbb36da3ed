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

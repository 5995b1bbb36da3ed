//! `POST /v1/products/search` (SPEC §4, issue 4): scope, relevance, facets,
//! prices, limits, cursors and validation.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::helpers::{titles, TestApp, NORTHWIND};

fn uuids(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|item| item["uuid"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn results_have_the_contract_shape_and_the_request_id() {
    let app = TestApp::spawn().await;
    let (_, key) = app.partner_with_northwind("northwind").await;
    let (status, page, headers) =
        app.post_v1(&key, "/v1/products/search", json!({"q": "rain shell jacket", "limit": 1})).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["requestId"], headers["x-request-id"].to_str().unwrap());
    assert!(page["nextCursor"].is_string());
    let item = &page["items"][0];
    let mut fields: Vec<&str> = item.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "brand",
            "catalogKey",
            "currency",
            "currentPrice",
            "imageUrl",
            "images",
            "isActive",
            "originalPrice",
            "productUrl",
            "rating",
            "title",
            "updatedAt",
            "uuid"
        ]
    );
    assert_eq!(item["title"], "Rain Shell Jacket");
    assert_eq!(item["productUrl"], "https://northwind.example/products/rain-shell-jacket");
    assert_eq!(item["brand"]["name"], "Trailhead");
    assert_eq!(item["currentPrice"], 149.0);
    assert_eq!(item["originalPrice"], Value::Null, "no markdown: null");
    assert_eq!(item["currency"], "USD");
    assert_eq!(item["images"][0], item["imageUrl"], "images include the primary");
    assert_eq!(item["isActive"], true);
    assert!(item["updatedAt"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn only_granted_active_catalogs_and_one_404_for_every_cause() {
    let app = TestApp::spawn().await;
    let (org, key) = app.partner_with_northwind("northwind").await;
    // A second catalog with the same products, not granted to this organization.
    let other = app.partner("Elsewhere").await;
    app.create_catalog("hidden").await;
    app.import("hidden", "shopify", NORTHWIND, json!({"currency": "USD"})).await;
    app.grant(&other, "hidden").await;

    let (_, page) = app.search(&key, json!({"q": "hoodie", "limit": 100})).await;
    assert!(page["items"].as_array().unwrap().iter().all(|item| item["catalogKey"] == "northwind"));

    let not_found = json!({"detail": "catalog_not_found"});
    for body in [
        json!({"catalog": "hidden"}),
        json!({"catalog": "no-such-catalog"}),
        json!({"catalogs": ["northwind", "hidden"]}),
        json!({"catalogs": ["nope"]}),
    ] {
        assert_eq!(app.search(&key, body.clone()).await, (404, not_found.clone()), "{body}");
    }
    assert_eq!(app.search(&key, json!({"catalogs": ["northwind"], "limit": 1})).await.0, 200);
    assert_eq!(app.search(&key, json!({"catalog": "northwind", "limit": 1})).await.0, 200);

    // Deactivating the catalog hides it at once; ungranting too.
    app.admin(reqwest::Method::POST, "/catalogs/northwind/deactivate", Some(json!({}))).await;
    assert_eq!(app.search(&key, json!({"catalog": "northwind"})).await, (404, not_found.clone()));
    let (_, page) = app.search(&key, json!({"q": "hoodie"})).await;
    assert_eq!(page["items"], json!([]));
    app.admin(reqwest::Method::POST, "/catalogs/northwind/activate", Some(json!({}))).await;
    app.ungrant(&org, "northwind").await;
    assert_eq!(app.search(&key, json!({"catalog": "northwind"})).await, (404, not_found));
}

#[tokio::test]
async fn relevance_a_shopper_would_call_right() {
    let app = TestApp::spawn().await;
    let (_, key) = app.partner_with_northwind("northwind").await;
    let top = |q: &'static str| {
        let (app, key) = (&app, key.clone());
        async move { titles(&app.search(&key, json!({"q": q, "limit": 5})).await.1) }
    };
    assert_eq!(top("fleece hoodie").await[0], "Trail Fleece Hoodie", "all words beat some words");
    let hoodies = top("hoodie").await;
    assert!(hoodies[..3].iter().all(|title| title.contains("Hoodie")), "{hoodies:?}");
    assert_eq!(top("jackets").await.len(), 3, "stemming: jackets finds each jacket");
    assert!(top("backp").await.iter().all(|title| title.contains("Backpack") || title.contains("Daypack")), "prefix");
    assert!(top("hoodei").await.iter().any(|title| title.contains("Hoodie")), "a typo in a 6-letter word");
    assert!(
        top("trailhead").await.iter().all(|t| [
            "Rain Shell Jacket",
            "Down Puffer Jacket",
            "Trail Running Shoe",
            "Women's Hiking Boot",
            "Kids Rain Boots",
            "Trail Sun Cap",
            "Toddler Puffer Vest"
        ]
        .contains(&t.as_str())
            || t.contains("Trail")),
        "brand matches"
    );
    let waterproof = top("waterproof").await;
    assert!(!waterproof.is_empty(), "tags and descriptions are searched");
    assert!(top("zzzyx").await.is_empty());
}

#[tokio::test]
async fn browsing_is_stable_and_documented() {
    let app = TestApp::spawn().await;
    let (_, key) = app.partner_with_northwind("northwind").await;
    let (_, first) = app.search(&key, json!({"limit": 100})).await;
    let (_, again) = app.search(&key, json!({"q": null, "limit": 100})).await;
    assert_eq!(uuids(&first), uuids(&again));
    let names = titles(&first);
    assert_eq!(names.len(), 24);
    let mut sorted = names.clone();
    sorted.sort_by_key(|title| title.to_lowercase());
    assert_eq!(names, sorted, "browse order: title A→Z");
}

#[tokio::test]
async fn facets_and_prices_filter_inside_the_query() {
    let app = TestApp::spawn().await;
    let (_, key) = app.partner_with_northwind("northwind").await;
    let count = |body: Value| {
        let (app, key) = (&app, key.clone());
        async move {
            let (status, page) = app.search(&key, body.clone()).await;
            assert_eq!(status, 200, "{body}: {page}");
            titles(&page)
        }
    };
    let black = count(json!({"facets": [{"name": "color_family", "values": ["Black"]}], "limit": 100})).await;
    assert!(black.contains(&"Trail Fleece Hoodie".to_string()) && !black.contains(&"Kids Zip Hoodie".to_string()));
    assert_eq!(
        count(json!({"facets": [{"name": "color_family", "values": ["bLaCk"]}], "limit": 100})).await,
        black,
        "case-insensitive"
    );
    let black_or_red =
        count(json!({"facets": [{"name": "color_family", "values": ["Black", "Red"]}], "limit": 100})).await;
    assert!(black_or_red.len() > black.len(), "OR within a facet");
    let black_women = count(json!({"facets": [
        {"name": "color_family", "values": ["Black"]}, {"name": "gender", "values": ["female"]}], "limit": 100}))
    .await;
    assert!(black_women.len() < black.len() && !black_women.is_empty(), "AND across facets");
    assert!(black_women.contains(&"Women's Running Tights".to_string()));

    for (name, value, expected) in [
        ("brand_name", "Summit & Co", "Merino Base Layer Crew"),
        ("brand_slug", "trailhead", "Rain Shell Jacket"),
        ("raw_brand_name", "northwind", "Organic Cotton Tee"),
        ("product_type", "backpack", "Rolltop Backpack 30L"),
        ("age_groups", "toddler", "Toddler Puffer Vest"),
        ("age_groups", "infant", "Baby Fleece Romper"),
        ("color", "navy", "Trail Fleece Hoodie"),
        ("is_activewear", "true", "Women's Running Tights"),
        ("category_path.depth_0", "clothing", "Flannel Overshirt"),
        ("category_path.depth_1", "Backpack", "Daypack 24L"),
        ("material", "wool", "Wool Hiking Socks (2 Pack)"),
        ("attribute_facets.material", "MERINO WOOL", "Merino Base Layer Crew"),
        ("pattern", "striped", "Striped Breton Shirt"),
        ("fit", "relaxed", "Canvas Work Jacket"),
    ] {
        let found = count(json!({"facets": [{"name": name, "values": [value]}], "limit": 100})).await;
        assert!(found.contains(&expected.to_string()), "{name}={value}: {found:?}");
    }
    assert!(count(json!({"facets": [{"name": "material", "values": ["unobtainium"]}]})).await.is_empty());
    // Any other name is an attribute facet: one that no product has matches nothing.
    for name in ["category_path.depth_9", "no_such_attribute", ">"] {
        assert!(count(json!({"facets": [{"name": name, "values": ["x"]}]})).await.is_empty(), "{name}");
    }

    assert_eq!(count(json!({"price_min": 64, "price_max": 64})).await, ["Trail Fleece Hoodie"], "bounds are inclusive");
    let cheap = count(json!({"price_max": 25, "limit": 100})).await;
    assert_eq!(cheap, ["Organic Cotton Tee", "Wool Hiking Socks (2 Pack)"]);
    let hoodies_over_50 = count(json!({"q": "hoodie", "price_min": 50})).await;
    assert!(hoodies_over_50.iter().all(|t| t != "Kids Zip Hoodie") && hoodies_over_50.len() == 2);
}

#[tokio::test]
async fn limits_and_paging_never_skip_or_repeat() {
    let app = TestApp::spawn().await;
    let (_, key) = app.partner_with_northwind("northwind").await;
    let (_, page) = app.search(&key, json!({})).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 24, "default limit 50 holds all 24");
    assert_eq!(page["nextCursor"], Value::Null, "the last page has no cursor");

    for request in [json!({"limit": 5}), json!({"q": "jacket hoodie boot shirt", "limit": 2})] {
        let mut seen = Vec::new();
        let mut body = request.clone();
        loop {
            let (status, page) = app.search(&key, body.clone()).await;
            assert_eq!(status, 200, "{page}");
            seen.extend(uuids(&page));
            match page["nextCursor"].as_str() {
                Some(cursor) => body["cursor"] = json!(cursor),
                None => break,
            }
        }
        let unique: HashSet<_> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "{request}: no repeats");
        let mut everything = request.clone();
        everything["limit"] = json!(100);
        let (_, all) = app.search(&key, everything).await;
        assert_eq!(seen, uuids(&all), "{request}: pages concatenate to the full result, in order");
    }
}

#[tokio::test]
async fn cursors_are_bound_to_their_query_and_tamper_evident() {
    let app = TestApp::spawn().await;
    let (_, key) = app.partner_with_northwind("northwind").await;
    let query = json!({"q": "jacket", "facets": [{"name": "gender", "values": ["male", "female"]}], "limit": 1});
    let (_, first) = app.search(&key, query.clone()).await;
    let cursor = first["nextCursor"].as_str().unwrap().to_string();

    let mut same = query.clone();
    same["cursor"] = json!(cursor);
    same["limit"] = json!(10);
    same["facets"][0]["values"] = json!(["FEMALE", "male"]);
    assert_eq!(app.search(&key, same).await.0, 200, "the same filters (any order or case) and another page size");

    for changed in
        [json!({"q": "jackets"}), json!({"facets": []}), json!({"price_max": 500}), json!({"catalog": "northwind"})]
    {
        let mut body = query.clone();
        body["cursor"] = json!(cursor);
        for (field, value) in changed.as_object().unwrap() {
            body[field] = value.clone();
        }
        let (status, error) = app.search(&key, body).await;
        assert_eq!(status, 422, "{changed}");
        assert_eq!(error["detail"][0]["loc"], json!(["body", "cursor"]));
        assert!(error["detail"][0]["msg"].as_str().unwrap().contains("other filters"));
    }
    let mut flipped = cursor.clone().into_bytes();
    let middle = flipped.len() / 2;
    flipped[middle] = if flipped[middle] == b'A' { b'B' } else { b'A' };
    for bad in [String::from_utf8(flipped).unwrap(), "not-a-cursor".into(), format!("{cursor}x"), "A".repeat(2000)] {
        let mut body = query.clone();
        body["cursor"] = json!(bad);
        let (status, error) = app.search(&key, body).await;
        assert_eq!(status, 422, "{bad:.20}");
        assert_eq!(error["detail"][0]["type"], "value_error");
    }
    // Another organization cannot replay the cursor, even for the same query.
    let (other, _) = app.partner_with_northwind("northwind-two").await;
    app.grant(&other, "northwind").await;
    let other_key = app.mint_key(&other).await.key;
    let mut replay = query.clone();
    replay["cursor"] = json!(cursor);
    assert_eq!(app.search(&other_key, replay).await.0, 422);
}

#[tokio::test]
async fn paging_while_the_catalog_is_reindexed() {
    let app = TestApp::spawn().await;
    let (_, key) = app.partner_with_northwind("northwind").await;
    let mut body = json!({"limit": 6});
    let (_, first) = app.search(&key, body.clone()).await;
    let mut seen = uuids(&first);
    body["cursor"] = first["nextCursor"].clone();

    // Between pages: one product changes title so that it sorts first (before the
    // cursor), one is removed, one is added; the other 21 stay as they were.
    let mut feed: Value = serde_json::from_slice(NORTHWIND).unwrap();
    let products = feed["products"].as_array_mut().unwrap();
    let removed = products.remove(20)["title"].as_str().unwrap().to_string();
    products[22]["title"] = json!("AAA Renamed Scarf");
    let renamed_handle = products[22]["handle"].as_str().unwrap().to_string();
    let mut added = products[0].clone();
    added["handle"] = json!("zz-new-parka");
    added["title"] = json!("Zz New Parka");
    products.push(added);
    let run = app.import("northwind", "shopify", &serde_json::to_vec(&feed).unwrap(), json!({"currency": "USD"})).await;
    assert_eq!(run["counts"]["updated"], 1, "{run}");
    assert_eq!(run["counts"]["deactivated"], 1);
    assert_eq!(run["counts"]["added"], 1);

    loop {
        let (status, page) = app.search(&key, body.clone()).await;
        assert_eq!(status, 200, "cursors survive a re-index: {page}");
        seen.extend(uuids(&page));
        match page["nextCursor"].as_str() {
            Some(cursor) => body["cursor"] = json!(cursor),
            None => break,
        }
    }
    let (_, now) = app.search(&key, json!({"limit": 100})).await;
    let titles_now = titles(&now);
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "nothing repeated");
    // Every product that did not change was seen exactly once.
    for item in now["items"].as_array().unwrap() {
        let title = item["title"].as_str().unwrap();
        if title != "AAA Renamed Scarf" {
            assert!(seen.contains(&item["uuid"].as_str().unwrap().to_string()), "{title} was skipped");
        }
    }
    assert!(!titles_now.contains(&removed));
    assert!(titles_now.contains(&"Zz New Parka".to_string()), "an addition after the cursor is seen");
    // The renamed product moved before the cursor: documented as possibly unseen.
    let renamed = now["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["productUrl"].as_str().unwrap().ends_with(&renamed_handle));
    assert_eq!(renamed.unwrap()["title"], "AAA Renamed Scarf");
}

#[tokio::test]
async fn every_bad_body_is_a_422_in_the_spec_shape() {
    let app = TestApp::spawn().await;
    let (_, key) = app.partner_with_northwind("northwind").await;
    let cases: Vec<(Value, Value, &str)> = vec![
        (json!({"query": "x"}), json!(["body", "query"]), "extra_forbidden"),
        (json!({"limit": 500}), json!(["body", "limit"]), "less_than_equal"),
        (json!({"limit": 0}), json!(["body", "limit"]), "greater_than_equal"),
        (json!({"limit": "ten"}), json!(["body", "limit"]), "int_type"),
        (json!({"limit": 2.5}), json!(["body", "limit"]), "int_from_float"),
        (json!({"q": 5}), json!(["body", "q"]), "string_type"),
        (json!({"catalog": ""}), json!(["body", "catalog"]), "string_too_short"),
        (json!({"catalogs": []}), json!(["body", "catalogs"]), "too_short"),
        (json!({"price_min": "cheap"}), json!(["body", "price_min"]), "float_type"),
        (json!({"price_min": 10, "price_max": 5}), json!(["body"]), "value_error"),
        (json!({"facets": {"name": "x"}}), json!(["body", "facets"]), "list_type"),
        (json!({"facets": [{"name": "color", "values": []}]}), json!(["body", "facets", 0, "values"]), "too_short"),
        (
            json!({"facets": [{"name": "color", "values": [""]}]}),
            json!(["body", "facets", 0, "values", 0]),
            "string_too_short",
        ),
        (json!({"facets": [{"name": "", "values": ["x"]}]}), json!(["body", "facets", 0, "name"]), "string_too_short"),
        (json!({"facets": [{"values": ["x"]}]}), json!(["body", "facets", 0, "name"]), "missing"),
        (
            json!({"facets": [{"name": "color", "values": ["x"], "op": "or"}]}),
            json!(["body", "facets", 0, "op"]),
            "extra_forbidden",
        ),
        (json!(["q"]), json!(["body"]), "model_attributes_type"),
        (json!({"text_search_query": "x"}), json!(["body", "text_search_query"]), "dict_type"),
    ];
    for (body, loc, kind) in cases {
        let (status, error) = app.search(&key, body.clone()).await;
        assert_eq!(status, 422, "{body}");
        let issue = &error["detail"][0];
        assert_eq!((&issue["loc"], issue["type"].as_str().unwrap()), (&loc, kind), "{body}: {error}");
        assert!(issue["msg"].as_str().is_some_and(|msg| !msg.is_empty()));
    }
    let (_, limit) = app.search(&key, json!({"limit": 500})).await;
    assert_eq!(
        limit,
        json!({"detail": [{"loc": ["body", "limit"], "msg": "Input should be less than or equal to 100", "type": "less_than_equal", "input": 500, "ctx": {"le": 100}}]})
    );
    let (_, several) = app.search(&key, json!({"limit": 0, "q": 1, "bogus": true})).await;
    assert_eq!(several["detail"].as_array().unwrap().len(), 3, "every problem is reported at once");

    let raw = |body: &'static str, content_type: &'static str| {
        let (app, key) = (&app, key.clone());
        async move {
            let response = app
                .http
                .post(app.url("/v1/products/search"))
                .bearer_auth(key)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }
    };
    let (status, malformed) = raw("{\"q\": ", "application/json").await;
    assert_eq!(status, 422);
    assert_eq!(malformed["detail"][0]["type"], "json_invalid");
    let (status, not_json) = raw("q=hoodie", "application/x-www-form-urlencoded").await;
    assert_eq!(status, 422);
    assert_eq!(not_json["detail"][0]["loc"], json!(["body"]));
    assert_eq!(raw("", "application/json").await.0, 422);
}

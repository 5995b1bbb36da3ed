//! The client against a real server: every call, the paging stream, errors by
//! class, and what never leaks (the key).

mod common;

use common::Server;
use futures_util::{StreamExt, TryStreamExt};
use octogen_client::{facet, ApiErrorKind, Client, Detail, Error, RetryPolicy};

#[tokio::test]
async fn lists_searches_and_looks_up_with_typed_results() {
    let server = Server::start().await;
    let keys = server.contract_fixture().await;
    let client = server.client(&keys.partner);

    let catalogs = client.list_catalogs().await.unwrap();
    assert_eq!(catalogs.len(), 1);
    assert_eq!(catalogs[0].catalog, "northwind");
    assert_eq!(catalogs[0].display_name, "Northwind Outfitters");
    assert_eq!(catalogs[0].source_base_url.as_deref(), Some("https://northwind.example"));
    assert_eq!(catalogs[0].product_count, 24);
    assert!(catalogs[0].last_indexed_at.is_some());

    let search = client
        .search_products()
        .q("black hoodie")
        .facet(facet::COLOR_FAMILY, ["Black"])
        .facet(facet::GENDER, ["male"])
        .price_range(50.0, 300.0)
        .limit(10);
    let body = serde_json::to_value(search.request()).unwrap();
    assert_eq!(body["price_min"], 50.0, "snake_case on the wire");
    assert_eq!(body["facets"][0], serde_json::json!({"name": "color_family", "values": ["Black"]}));
    let page = search.send().await.unwrap();
    assert_eq!(page.items[0].title.as_deref(), Some("Trail Fleece Hoodie"));
    assert!(page.items.iter().all(|item| item.current_price.is_some_and(|p| (50.0..=300.0).contains(&p))));
    assert!(page.next_cursor.is_none());
    assert!(page.request_id.is_some());

    let found =
        client.lookup_product("https://www.northwind.example/products/trail-hoodie/?utm_source=x").await.unwrap();
    assert_eq!(found.catalog_key, "northwind");
    assert_eq!(found.product.item.title.as_deref(), Some("Trail Fleece Hoodie"));
    assert_eq!(found.product.item.uuid, page.items[0].uuid, "the same product in search and lookup");
    assert_eq!(found.normalized_url.as_deref(), Some("https://northwind.example/products/trail-hoodie"));
    assert!(!found.product.variants.is_empty());
    assert_eq!(found.product.enrichment.as_ref().and_then(|e| e.gender.as_deref()), Some("male"));
}

#[tokio::test]
async fn the_stream_follows_cursors_to_the_end() {
    let server = Server::start().await;
    let keys = server.contract_fixture().await;
    let client = server.client(&keys.partner);

    let items: Vec<_> = client.search_products().limit(5).into_stream().try_collect().await.unwrap();
    assert_eq!(items.len(), 24);
    let mut uuids: Vec<_> = items.iter().map(|item| item.uuid.clone()).collect();
    uuids.sort();
    uuids.dedup();
    assert_eq!(uuids.len(), 24, "no item twice");

    let pages: Vec<_> = client.search_products().limit(5).into_pages().try_collect().await.unwrap();
    assert_eq!(pages.iter().map(|page| page.items.len()).collect::<Vec<_>>(), [5, 5, 5, 5, 4]);
    assert!(pages[..4].iter().all(|page| page.next_cursor.is_some()) && pages[4].next_cursor.is_none());

    // The stream is lazy: taking three items fetches one page.
    let first: Vec<_> = client.search_products().limit(2).into_stream().take(3).collect().await;
    assert_eq!(first.len(), 3);

    // A query with fewer results than a page is one page.
    let hoodies: Vec<_> = client.search_products().q("hoodie").into_stream().try_collect().await.unwrap();
    assert_eq!(hoodies.len(), 3);

    // An error ends the stream after yielding it once.
    let outcome: Vec<_> = client.search_products().catalog("nope").into_stream().collect().await;
    assert_eq!(outcome.len(), 1);
    assert_eq!(outcome[0].as_ref().unwrap_err().status(), Some(404));
}

#[tokio::test]
async fn errors_carry_status_kind_detail_and_raw_body() {
    let server = Server::start().await;
    let keys = server.contract_fixture().await;
    let client = server.client(&keys.partner);

    let error = client.lookup_product("https://northwind.example/products/nope").await.unwrap_err();
    let api = error.api().expect("an API error");
    assert_eq!((api.status, api.kind), (404, ApiErrorKind::NotFound));
    assert_eq!(api.detail, Detail::Message("product_not_found".into()));
    assert_eq!(api.raw, r#"{"detail":"product_not_found"}"#);
    assert!(api.request_id.is_some());
    assert!(!error.is_retryable());

    let error = client.search_products().limit(500).send().await.unwrap_err();
    let api = error.api().unwrap();
    assert_eq!(api.kind, ApiErrorKind::Validation);
    let Detail::Validation(issues) = &api.detail else { panic!("{:?}", api.detail) };
    assert_eq!(issues[0].kind, "less_than_equal");
    assert!(error.to_string().contains("body.limit"), "{error}");

    let error = client.lookup_product("not a url").await.unwrap_err();
    assert_eq!(error.api().unwrap().kind, ApiErrorKind::Validation);
    assert_eq!(error.api().unwrap().detail.message(), Some("invalid_product_url"));

    let merchant = server.client(&keys.merchant).list_catalogs().await.unwrap_err();
    assert_eq!(merchant.api().unwrap().kind, ApiErrorKind::Forbidden);

    let wrong = server.client(&keys.wrong_secret()).list_catalogs().await.unwrap_err();
    assert_eq!(wrong.api().unwrap().kind, ApiErrorKind::Authentication);
    assert_eq!(wrong.api().unwrap().detail.message(), Some("Invalid API key"));
    // Neither the error nor its Debug form carries the key or its secret.
    let secret = keys.wrong_secret().rsplit('_').next().unwrap().to_string();
    for text in [wrong.to_string(), format!("{wrong:?}")] {
        assert!(!text.contains(&secret), "{text}");
    }
}

#[tokio::test]
async fn a_revoked_key_is_refused_on_the_next_call() {
    let server = Server::start().await;
    let keys = server.contract_fixture().await;
    let client = server.client(&keys.partner);
    assert!(client.list_catalogs().await.is_ok());
    let listed = server.admin(reqwest::Method::GET, &format!("/orgs/{}/keys", keys.partner_id), None).await;
    let key_id = listed[0]["id"].as_str().unwrap().to_string();
    server.admin(reqwest::Method::POST, &format!("/keys/{key_id}/revoke"), Some(serde_json::json!({}))).await;
    let error = client.list_catalogs().await.unwrap_err();
    assert_eq!(error.status(), Some(401), "{error}");
}

#[tokio::test]
async fn a_base_url_with_v1_works_like_the_public_sdks() {
    let server = Server::start().await;
    let keys = server.contract_fixture().await;
    let client = Client::builder().api_key(&keys.partner).base_url(format!("{}/v1/", server.base)).build().unwrap();
    assert_eq!(client.base_url(), server.base);
    assert_eq!(client.list_catalogs().await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_unreachable_server_is_a_connection_error_without_the_key() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let key =
        format!("octo_live_{}_{}", "00000000000000000000000000000000", "unreachable-test-key-not-a-secret-0000000");
    let client = Client::builder()
        .api_key(key)
        .base_url(format!("http://127.0.0.1:{port}"))
        .retry_policy(RetryPolicy { initial_backoff: std::time::Duration::from_millis(10), ..RetryPolicy::default() })
        .build()
        .unwrap();
    let error = client.list_catalogs().await.unwrap_err();
    assert!(matches!(error, Error::Connection { .. }), "{error:?}");
    assert!(error.is_retryable());
    assert!(error.to_string().contains(&format!("127.0.0.1:{port}")), "{error}");
    for text in [error.to_string(), format!("{error:?}")] {
        assert!(!text.contains("unreachable-test-key"), "{text}");
    }
}

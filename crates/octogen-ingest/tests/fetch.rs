//! Fetching feeds from a local HTTP server started by each test (no external network).

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::Query;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use octogen_ingest::fetch::{download, fetch_feed, FetchError, FetchOptions};
use octogen_ingest::{parse_feed_to_vec, FeedFormat, FeedOptions};

#[derive(serde::Deserialize)]
struct PageQuery {
    page: Option<u32>,
    limit: Option<u32>,
}

async fn products_page(Query(query): Query<PageQuery>) -> (StatusCode, String) {
    assert_eq!(query.limit, Some(250), "pages are requested 250 at a time");
    let page = query.page.unwrap_or(1);
    let products: Vec<serde_json::Value> = match page {
        1 | 2 => (0..3)
            .map(|index| {
                let handle = format!("p{page}-{index}");
                serde_json::json!({"id": page * 10 + index, "title": format!("Product {handle}"), "handle": handle,
                    "vendor": "Local", "variants": [{"id": 1, "price": "9.99", "available": true}]})
            })
            .collect(),
        _ => Vec::new(),
    };
    (StatusCode::OK, serde_json::json!({ "products": products }).to_string())
}

async fn start_server() -> SocketAddr {
    let app = Router::new()
        .route("/feed.xml", get(|| async { "<rss><channel></channel></rss>" }))
        .route("/missing", get(|| async { (StatusCode::NOT_FOUND, "no such feed") }))
        .route("/broken", get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "oops") }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route("/big", get(|| async { "x".repeat(10_000) }))
        .route("/products.json", get(products_page))
        .route("/login/products.json", get(|| async { "<html><body>Password required</body></html>" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    address
}

fn quick_options() -> FetchOptions {
    FetchOptions {
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_millis(300),
        total_timeout: Duration::from_millis(800),
        ..FetchOptions::default()
    }
}

#[tokio::test]
async fn downloads_a_feed() {
    let address = start_server().await;
    let mut body = Vec::new();
    let fetched = download(&format!("http://{address}/feed.xml"), &quick_options(), &mut body).await.unwrap();
    assert_eq!(body, b"<rss><channel></channel></rss>");
    assert_eq!(fetched.bytes, body.len() as u64);
}

#[tokio::test]
async fn failures_name_the_url_and_the_cause() {
    let address = start_server().await;
    let options = quick_options();
    let missing = format!("http://{address}/missing");
    let error = download(&missing, &options, &mut Vec::new()).await.unwrap_err();
    assert_eq!(error.to_string(), format!("GET {missing}: HTTP 404 Not Found"));

    let broken = format!("http://{address}/broken");
    let error = download(&broken, &options, &mut Vec::new()).await.unwrap_err();
    assert!(matches!(error, FetchError::Status { status: 500, .. }), "{error}");

    let slow = format!("http://{address}/slow");
    let error = download(&slow, &options, &mut Vec::new()).await.unwrap_err();
    assert!(matches!(error, FetchError::Timeout { .. }), "{error:?}");
    assert!(error.to_string().starts_with(&format!("GET {slow}: timed out")), "{error}");

    let big = format!("http://{address}/big");
    let small = FetchOptions { max_bytes: 1_000, ..quick_options() };
    let error = download(&big, &small, &mut Vec::new()).await.unwrap_err();
    assert_eq!(error.to_string(), format!("GET {big}: the response is larger than the 1000-byte limit"));

    // Nothing listens on a port that was just released.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let refused = format!("http://{closed}/feed.xml");
    let error = download(&refused, &options, &mut Vec::new()).await.unwrap_err();
    assert!(matches!(error, FetchError::Transport { .. }), "{error:?}");
    assert!(error.to_string().starts_with(&format!("GET {refused}: ")), "{error}");

    let error = download("file:///etc/passwd", &options, &mut Vec::new()).await.unwrap_err();
    assert_eq!(error.to_string(), "file:///etc/passwd is not an http(s) URL");
}

#[tokio::test]
async fn pages_through_a_shopify_store_until_an_empty_page() {
    let address = start_server().await;
    let store = format!("http://{address}");
    let mut body = Vec::new();
    let fetched = fetch_feed(&store, FeedFormat::Shopify, &quick_options(), &mut body).await.unwrap();
    assert_eq!(fetched.pages, 3, "two full pages and the empty one that ends the listing");
    assert_eq!(fetched.products, Some(6));
    let options = FeedOptions { base_url: Some(store.clone()), ..FeedOptions::default() };
    let (records, summary) = parse_feed_to_vec(FeedFormat::Shopify, &body[..], &options).unwrap();
    assert_eq!(summary.accepted, 6);
    let first = records[0].as_ref().unwrap();
    assert_eq!(first.url, format!("{store}/products/p1-0"));
    assert_eq!(first.current_price, Some(9.99));
}

#[tokio::test]
async fn a_store_page_that_is_not_json_is_named() {
    let address = start_server().await;
    let store = format!("http://{address}/login/products.json");
    let error = fetch_feed(&store, FeedFormat::Shopify, &quick_options(), &mut Vec::new()).await.unwrap_err();
    assert!(
        error.to_string().starts_with(&format!("GET {store}?page=1&limit=250: not Shopify products JSON")),
        "{error}"
    );
}

//! Fetching feeds from a local HTTP server started by each test (no external
//! network): the server's address is listed in `fetch_allow_private`, as an
//! operator would list an intranet feed server.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use octogen_fetch::{AllowPrivate, Fetcher, Limits};
use octogen_ingest::fetch::{download, fetch_feed, FetchError, FetchOptions};
use octogen_ingest::{parse_feed_to_vec, FeedFormat, FeedOptions};

#[derive(serde::Deserialize)]
struct PageQuery {
    page: Option<u32>,
    limit: Option<u32>,
}

fn product(handle: &str, id: u32) -> serde_json::Value {
    serde_json::json!({"id": id, "title": format!("Product {handle}"), "handle": handle,
        "vendor": "Local", "variants": [{"id": 1, "price": "9.99", "available": true}]})
}

async fn products_page(Query(query): Query<PageQuery>) -> (StatusCode, String) {
    assert_eq!(query.limit, Some(250), "pages are requested 250 at a time");
    let page = query.page.unwrap_or(1);
    let products: Vec<serde_json::Value> = match page {
        1 | 2 => (0..3).map(|index| product(&format!("p{page}-{index}"), page * 10 + index)).collect(),
        _ => Vec::new(),
    };
    (StatusCode::OK, serde_json::json!({ "products": products }).to_string())
}

/// Products in a page this big.
const BIG_PAGE_PRODUCTS: u32 = 8_000;

/// One page of `BIG_PAGE_PRODUCTS` products (about 1.2 MB), sent in 64 KiB pieces.
fn big_page() -> Body {
    static PAGE: std::sync::LazyLock<bytes::Bytes> = std::sync::LazyLock::new(|| {
        let products: Vec<serde_json::Value> =
            (1..=BIG_PAGE_PRODUCTS).map(|index| product(&format!("big-{index}"), index)).collect();
        serde_json::json!({"products": products, "meta": {}}).to_string().into()
    });
    let pieces: Vec<Result<bytes::Bytes, std::io::Error>> =
        PAGE.chunks(64 * 1024).map(|piece| Ok(PAGE.slice_ref(piece))).collect();
    Body::from_stream(futures_util::stream::iter(pieces))
}

/// A page whose second product is one long description.
fn page_with_a_huge_product() -> String {
    let huge = serde_json::json!({"id": 2, "title": "Huge", "handle": "huge", "body_html": "x".repeat(200_000),
        "variants": [{"id": 1, "price": "1.00", "available": true}]});
    serde_json::json!({"products": [product("small", 1), huge]}).to_string()
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
        .route("/login/products.json", get(|| async { "<html><body>Password required</body></html>" }))
        .route(
            "/big-page/products.json",
            get(|query: Query<PageQuery>| async move {
                if query.page == Some(1) {
                    big_page()
                } else {
                    Body::from("{\"products\": []}")
                }
            }),
        )
        .route("/huge-product/products.json", get(|| async { page_with_a_huge_product() }))
        .route("/not-json-object/products.json", get(|| async { "[1, 2, 3]" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    address
}

/// A fetcher for the test server, quick to give up on its slow page.
fn fetcher_for(address: SocketAddr) -> Fetcher {
    let limits = Limits {
        read_timeout: Duration::from_millis(300),
        total_timeout: Duration::from_millis(800),
        ..Limits::default()
    };
    patient_fetcher_for(address, limits)
}

fn patient_fetcher_for(address: SocketAddr, limits: Limits) -> Fetcher {
    let allow: AllowPrivate = address.to_string().parse().unwrap();
    Fetcher::new("octogen-ingest-test", limits, allow).unwrap()
}

#[tokio::test]
async fn downloads_a_feed() {
    let address = start_server().await;
    let mut body = Vec::new();
    let fetcher = fetcher_for(address);
    let fetched =
        download(&fetcher, &format!("http://{address}/feed.xml"), &FetchOptions::default(), &mut body).await.unwrap();
    assert_eq!(body, b"<rss><channel></channel></rss>");
    assert_eq!(fetched.bytes, body.len() as u64);
}

#[tokio::test]
async fn a_feed_on_an_unlisted_private_address_is_refused() {
    let address = start_server().await;
    let fetcher = Fetcher::new("t", Limits::default(), AllowPrivate::default()).unwrap();
    let url = format!("http://{address}/feed.xml");
    let error = download(&fetcher, &url, &FetchOptions::default(), &mut Vec::new()).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("refused {url}: 127.0.0.1 is a loopback address (set fetch_allow_private to allow it)")
    );
}

#[tokio::test]
async fn failures_name_the_url_and_the_cause() {
    let address = start_server().await;
    let fetcher = fetcher_for(address);
    let options = FetchOptions::default();
    let missing = format!("http://{address}/missing");
    let error = download(&fetcher, &missing, &options, &mut Vec::new()).await.unwrap_err();
    assert_eq!(error.to_string(), format!("GET {missing}: HTTP 404 Not Found"));

    let broken = format!("http://{address}/broken");
    let error = download(&fetcher, &broken, &options, &mut Vec::new()).await.unwrap_err();
    assert!(matches!(error, FetchError::Transfer(octogen_fetch::FetchError::Status { status: 500, .. })), "{error}");

    let slow = format!("http://{address}/slow");
    let error = download(&fetcher, &slow, &options, &mut Vec::new()).await.unwrap_err();
    assert!(matches!(error, FetchError::Transfer(octogen_fetch::FetchError::Timeout { .. })), "{error:?}");
    assert!(error.to_string().starts_with(&format!("GET {slow}: timed out")), "{error}");

    let big = format!("http://{address}/big");
    let small = FetchOptions { max_bytes: 1_000, ..options.clone() };
    let error = download(&fetcher, &big, &small, &mut Vec::new()).await.unwrap_err();
    assert_eq!(error.to_string(), format!("GET {big}: the response is larger than the 1000-byte limit"));

    // Nothing listens on a port that was just released.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let refused = format!("http://{closed}/feed.xml");
    let error = download(&fetcher_for(closed), &refused, &options, &mut Vec::new()).await.unwrap_err();
    assert!(matches!(error, FetchError::Transfer(octogen_fetch::FetchError::Transport { .. })), "{error:?}");
    assert!(error.to_string().starts_with(&format!("GET {refused}: ")), "{error}");

    let error = download(&fetcher, "file:///etc/passwd", &options, &mut Vec::new()).await.unwrap_err();
    assert_eq!(error.to_string(), "file:///etc/passwd is not an http(s) URL");
}

#[tokio::test]
async fn pages_through_a_shopify_store_until_an_empty_page() {
    let address = start_server().await;
    let store = format!("http://{address}");
    let mut body = Vec::new();
    let fetched = fetch_feed(&fetcher_for(address), &store, FeedFormat::Shopify, &FetchOptions::default(), &mut body)
        .await
        .unwrap();
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
async fn a_store_page_that_is_not_json_is_named_without_its_content() {
    let address = start_server().await;
    let fetcher = fetcher_for(address);
    let store = format!("http://{address}/login/products.json");
    let error =
        fetch_feed(&fetcher, &store, FeedFormat::Shopify, &FetchOptions::default(), &mut Vec::new()).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("GET {store}?page=1&limit=250: not Shopify products JSON (not a JSON object)"),
        "the page's bytes are not repeated"
    );
    let store = format!("http://{address}/not-json-object/products.json");
    let error =
        fetch_feed(&fetcher, &store, FeedFormat::Shopify, &FetchOptions::default(), &mut Vec::new()).await.unwrap_err();
    assert!(error.to_string().ends_with("not Shopify products JSON (not a JSON object)"), "{error}");
}

#[tokio::test]
async fn a_big_store_page_is_streamed_and_one_page_and_one_product_are_capped() {
    let address = start_server().await;
    let fetcher = patient_fetcher_for(address, Limits::default());
    let store = format!("http://{address}/big-page/products.json");
    // The whole page streams through a product cap far below the page's size.
    let options = FetchOptions { max_product_bytes: 4_096, ..FetchOptions::default() };
    let mut body = Vec::new();
    let fetched = fetch_feed(&fetcher, &store, FeedFormat::Shopify, &options, &mut body).await.unwrap();
    assert_eq!((fetched.pages, fetched.products), (2, Some(u64::from(BIG_PAGE_PRODUCTS))));
    assert!(fetched.bytes > 1_000_000, "{fetched:?}");
    let written: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let products = written["products"].as_array().unwrap();
    assert_eq!(products.len(), BIG_PAGE_PRODUCTS as usize);
    assert_eq!(products.last().unwrap(), &product(&format!("big-{BIG_PAGE_PRODUCTS}"), BIG_PAGE_PRODUCTS));

    let capped = FetchOptions { max_page_bytes: 500_000, ..options.clone() };
    let error = fetch_feed(&fetcher, &store, FeedFormat::Shopify, &capped, &mut Vec::new()).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("GET {store}?page=1&limit=250: the response is larger than the 500000-byte limit")
    );

    let store = format!("http://{address}/huge-product/products.json");
    let options = FetchOptions { max_product_bytes: 100_000, ..FetchOptions::default() };
    let error = fetch_feed(&fetcher, &store, FeedFormat::Shopify, &options, &mut Vec::new()).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "GET {store}?page=1&limit=250: the product at line 1 is larger than the 100000-byte limit for one product"
        )
    );
}

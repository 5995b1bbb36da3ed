//! The fetcher against loopback servers each test starts (nothing leaves 127.0.0.1).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use octogen_fetch::{AllowPrivate, FetchError, Fetcher, Limits};

/// A loopback server that counts the requests it gets.
struct Server {
    address: SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl Server {
    async fn start(extra: Router) -> Server {
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        let app = Router::new()
            .route("/feed", get(|| async { "the feed" }))
            .route("/missing", get(|| async { (StatusCode::NOT_FOUND, "secret internal page") }))
            .route("/big", get(|| async { "x".repeat(10_000) }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "late"
                }),
            )
            .route(
                "/hop/{n}",
                get(|axum::extract::Path(n): axum::extract::Path<u32>| async move {
                    let next = if n == 0 { "/feed".to_string() } else { format!("/hop/{}", n - 1) };
                    (StatusCode::FOUND, [(header::LOCATION, next)])
                }),
            )
            .route("/loop", get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/loop")]) }))
            .route("/not-modified", get(|| async { StatusCode::NOT_MODIFIED }))
            .merge(extra)
            .layer(axum::middleware::from_fn(move |request, next: axum::middleware::Next| {
                let counted = counted.clone();
                async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    next.run(request).await
                }
            }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        Server { address, hits }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn listed(&self) -> AllowPrivate {
        self.address.to_string().parse().unwrap()
    }
}

fn quick() -> Limits {
    Limits { total_timeout: Duration::from_millis(800), ..Limits::default() }
}

fn fetcher(allow: AllowPrivate) -> Fetcher {
    Fetcher::new("octogen-fetch-test", quick(), allow).unwrap()
}

async fn body(fetcher: &Fetcher, url: &str) -> Result<Vec<u8>, FetchError> {
    fetcher.get(url).send().await?.error_for_status()?.bytes().await
}

#[tokio::test]
async fn loopback_is_refused_by_default_with_the_rule_named() {
    let server = Server::start(Router::new()).await;
    let fetcher = fetcher(AllowPrivate::default());
    let port = server.address.port();
    let error = body(&fetcher, &server.url("/feed")).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("refused http://127.0.0.1:{port}/feed: 127.0.0.1 is a loopback address (set fetch_allow_private to allow it)")
    );
    assert!(error.refusal().is_some());
    // Every spelling of a loopback address is the same address to the URL parser, and refused.
    for (spelled, shown) in [
        (format!("http://2130706433:{port}/feed"), "127.0.0.1"),
        (format!("http://2130706434:{port}/feed"), "127.0.0.2"),
        (format!("http://0177.0.0.2:{port}/feed"), "127.0.0.2"),
        (format!("http://0x7f.0.0.1:{port}/feed"), "127.0.0.1"),
        (format!("http://0x7f000001:{port}/feed"), "127.0.0.1"),
        (format!("http://127.1:{port}/feed"), "127.0.0.1"),
        (format!("http://[::1]:{port}/feed"), "::1"),
        (format!("http://[::ffff:127.0.0.1]:{port}/feed"), "::ffff:127.0.0.1"),
        (format!("http://[::ffff:7f00:1]:{port}/feed"), "::ffff:127.0.0.1"),
        (format!("http://0.0.0.0:{port}/feed"), "0.0.0.0"),
        (format!("http://0:{port}/feed"), "0.0.0.0"),
    ] {
        let error = body(&fetcher, &spelled).await.unwrap_err();
        assert!(
            matches!(error, FetchError::Refused { .. }) && error.to_string().contains(&format!(": {shown} is ")),
            "{spelled}: {error}"
        );
    }
    // A name that resolves only to loopback addresses is refused by the resolver.
    let error = body(&fetcher, &format!("http://localhost:{port}/feed")).await.unwrap_err();
    assert!(
        error.to_string().starts_with(&format!(
            "refused http://localhost:{port}/feed: localhost resolves only to non-public addresses ("
        )),
        "{error}"
    );
    assert_eq!(server.hits(), 0, "no request reached the server");
}

#[tokio::test]
async fn a_listed_target_is_fetched_and_only_that_target() {
    let server = Server::start(Router::new()).await;
    let fetcher = fetcher(server.listed());
    assert_eq!(body(&fetcher, &server.url("/feed")).await.unwrap(), b"the feed");
    assert_eq!(body(&fetcher, &server.url("/hop/2")).await.unwrap(), b"the feed", "redirects are followed");
    assert_eq!(server.hits(), 5);
    let other = Server::start(Router::new()).await;
    let error = body(&fetcher, &other.url("/feed")).await.unwrap_err();
    assert!(matches!(error, FetchError::Refused { .. }), "another port of a listed host: {error}");
    assert_eq!(other.hits(), 0);
}

#[tokio::test]
async fn a_redirect_from_a_listed_host_to_a_refused_address_is_refused() {
    let internal = Server::start(Router::new()).await;
    let internal_feed = internal.url("/feed");
    let shop = Server::start(
        Router::new()
            .route("/to-internal", get(move || async move { (StatusCode::FOUND, [(header::LOCATION, internal_feed)]) }))
            .route(
                "/to-metadata",
                get(|| async {
                    (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, "http://169.254.169.254/latest/meta-data/")])
                }),
            )
            .route(
                "/to-decimal",
                get(|| async { (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, "http://2852039166/latest")]) }),
            )
            .route("/to-file", get(|| async { (StatusCode::FOUND, [(header::LOCATION, "file:///etc/passwd")]) })),
    )
    .await;
    let fetcher = fetcher(shop.listed());
    let error = body(&fetcher, &shop.url("/to-internal")).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "refused {}: 127.0.0.1 is a loopback address (set fetch_allow_private to allow it)",
            internal.url("/feed")
        )
    );
    assert_eq!(internal.hits(), 0);
    for path in ["/to-metadata", "/to-decimal"] {
        let error = body(&fetcher, &shop.url(path)).await.unwrap_err();
        assert!(
            error
                .to_string()
                .ends_with("169.254.169.254 is a link-local address (set fetch_allow_private to allow it)"),
            "{error}"
        );
    }
    let error = body(&fetcher, &shop.url("/to-file")).await.unwrap_err();
    assert!(matches!(error, FetchError::BadRedirect { .. }), "{error}");
}

#[tokio::test]
async fn redirects_are_capped_and_optional() {
    let server = Server::start(Router::new()).await;
    let fetcher = fetcher(server.listed());
    let error = body(&fetcher, &server.url("/loop")).await.unwrap_err();
    assert_eq!(error.to_string(), format!("GET {}: more than 5 redirects", server.url("/loop")));
    assert_eq!(server.hits(), 6);
    assert_eq!(body(&fetcher, &server.url("/hop/4")).await.unwrap(), b"the feed", "five redirects are fine");
    let error = body(&fetcher, &server.url("/hop/5")).await.unwrap_err();
    assert!(matches!(error, FetchError::TooManyRedirects { max: 5, .. }), "{error}");

    let no_redirects = Fetcher::new("t", Limits { max_redirects: 0, ..quick() }, server.listed()).unwrap();
    let response = no_redirects.get(&server.url("/hop/0")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let response = fetcher.get(&server.url("/not-modified")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "304 is an answer, not a redirect");
}

#[tokio::test]
async fn size_and_time_are_capped_and_errors_never_carry_the_body_or_secrets() {
    let server = Server::start(Router::new()).await;
    let fetcher = fetcher(server.listed());
    let error = fetcher.get(&server.url("/big")).max_body_bytes(1_000).send().await.unwrap().bytes().await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("GET {}: the response is larger than the 1000-byte limit", server.url("/big"))
    );
    let error = body(&fetcher, &server.url("/slow")).await.unwrap_err();
    assert!(matches!(error, FetchError::Timeout { .. }), "{error}");

    let secret = format!("http://user:hunter2@{}/missing?token=abc123&page=1", server.address);
    let error = body(&fetcher, &secret).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("GET http://***@{}/missing?token=***&page=1: HTTP 404 Not Found", server.address)
    );
    let debug = format!("{error:?}");
    for leaked in ["hunter2", "abc123", "secret internal page"] {
        assert!(!debug.contains(leaked), "{debug}");
    }
    let error = body(&fetcher, "ftp://user:pw@x.example/feed").await.unwrap_err();
    assert_eq!(error.to_string(), "ftp://***@x.example/feed is not an http(s) URL");
}

#[tokio::test]
async fn system_proxies_are_ignored() {
    let proxy = Server::start(Router::new().fallback(|| async { "proxied".into_response() })).await;
    let server = Server::start(Router::new()).await;
    for variable in ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
        // Only this test's process sees it; the fetchers of other tests ignore proxies as well.
        std::env::set_var(variable, proxy.url(""));
    }
    let fetcher = fetcher(server.listed());
    assert_eq!(body(&fetcher, &server.url("/feed")).await.unwrap(), b"the feed");
    assert_eq!((server.hits(), proxy.hits()), (1, 0));
}

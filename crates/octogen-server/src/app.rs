//! Assembling and running the server: used by `octogen serve`, `octogen demo`
//! and the integration tests alike, so tests exercise exactly what ships.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{BoxError, Json, Router};
use octogen_core::ErrorCode;
use octogen_store::{Backend, SqlStore, Store};
use serde_json::json;
use tokio::net::TcpListener;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::ServiceBuilder;
use tracing::Instrument;

use crate::config::Config;
use crate::error::{code_response, ApiError};
use crate::indexing::Indexing;
use crate::metrics::Metrics;
use crate::ratelimit::{LocalLimiter, RateLimiter, StoreLimiter};
use crate::secrets::ServerSecrets;
use crate::server::{serve, ServeOptions};
use crate::service::Services;
use crate::state::{AppInner, AppState};
use crate::usage::UsageRecorder;
use crate::versions::ApiVersion;

pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub struct Application {
    listener: TcpListener,
    /// `/metrics`, when `metrics_listen` is set.
    metrics_listener: Option<TcpListener>,
    router: Router,
    state: AppState,
    background: Vec<tokio::task::JoinHandle<()>>,
    stop_background: tokio::sync::watch::Sender<bool>,
}

impl Application {
    /// Opens the store, loads secrets, binds the listener. Nothing is served until `run`.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let secrets = Arc::new(ServerSecrets::load(&config)?);
        let store: Arc<dyn Store> = Arc::new(open_store(&config).await?);
        secrets.check_pepper_matches(store.as_ref()).await?;
        let (usage, usage_writer) = UsageRecorder::start(store.clone());
        let metrics = Arc::new(Metrics::default());
        if !config.fetch_allow_private.is_empty() {
            tracing::info!(targets = %config.fetch_allow_private, "fetch_allow_private: fetches may reach these non-public targets");
        }
        let feeds = octogen_fetch::Fetcher::new(
            octogen_ingest::fetch::USER_AGENT,
            octogen_ingest::fetch::feed_limits(),
            config.fetch_allow_private.clone(),
        )?;
        let indexing = Indexing::open(store.clone(), config.data_dir.clone(), feeds, metrics.clone()).await?;
        crate::data_dir::restrict(&config)?;
        let ready_at_seq = store.latest_change_seq().await?;
        let limiter: Arc<dyn RateLimiter> = match store.backend() {
            Backend::Sqlite => {
                let limiter = Arc::new(LocalLimiter::default());
                LocalLimiter::start_sweeper(&limiter);
                limiter
            }
            Backend::Postgres => StoreLimiter::new(store.clone()),
        };
        let (stop_background, stopped) = tokio::sync::watch::channel(false);
        let mut background = indexing.start_background(stopped);
        background.push(usage_writer);
        let oauth = crate::oauth::OAuthState::new(&config)?;
        let state = AppState::new(AppInner {
            services: Services::new(
                store.clone(),
                secrets.clone(),
                indexing.index.clone(),
                ApiVersion::named(&config.default_api_version).unwrap_or(ApiVersion::ORIGINAL),
            ),
            config: Arc::new(config),
            store,
            secrets,
            usage,
            indexing,
            limiter,
            metrics,
            oauth,
            ready_at_seq,
        });
        let listener = bind(state.config.listen).await?;
        let metrics_listener = match state.config.metrics_listen {
            Some(address) => Some(bind(address).await.context("metrics_listen")?),
            None => None,
        };
        Ok(Application {
            listener,
            metrics_listener,
            router: router(state.clone()),
            state,
            background,
            stop_background,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// Where `/metrics` is served, when `metrics_listen` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().map(|listener| listener.local_addr().expect("a bound listener has an address"))
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish,
    /// stops the follower and scheduler, flushes pending key-usage writes and
    /// closes the store.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Application { listener, metrics_listener, router, state, background, stop_background } = self;
        // One signal stops both listeners.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
        });
        let signal = move || {
            let mut stopped = stopped.clone();
            async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            }
        };
        let options = |max_connections, metrics| ServeOptions {
            max_header_bytes: state.config.max_header_bytes,
            idle_timeout: Duration::from_secs(state.config.idle_timeout_secs),
            max_connections,
            shutdown_grace: Duration::from_secs(state.config.shutdown_grace_secs),
            metrics,
        };
        let metrics_server = metrics_listener.map(|listener| {
            let options = options(METRICS_MAX_CONNECTIONS, None);
            tokio::spawn(serve(listener, metrics_router(state.clone()), options, signal()))
        });
        let options = options(state.config.max_connections, Some(state.metrics.clone()));
        serve(listener, router, options, signal()).await?;
        if let Some(metrics_server) = metrics_server {
            metrics_server.await.context("the metrics listener failed")??;
        }
        let store = state.store.clone();
        // The usage writer ends when the last recorder (held by the state) is dropped.
        drop(state);
        let _ = stop_background.send(true);
        for task in background {
            let _ = task.await;
        }
        store.close().await;
        Ok(())
    }
}

/// Scrapers are few: a small cap keeps a mistakenly exposed metrics port from holding many connections.
const METRICS_MAX_CONNECTIONS: usize = 16;

async fn bind(address: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address).await.with_context(|| format!("cannot listen on {address}"))
}

async fn open_store(config: &Config) -> anyhow::Result<SqlStore> {
    Ok(match &config.database_url {
        Some(url) => SqlStore::connect_postgres(url).await.context("cannot open the PostgreSQL store")?,
        None => SqlStore::open_sqlite(&config.sqlite_path()).await.context("cannot open the SQLite store")?,
    })
}

pub fn router(state: AppState) -> Router {
    let config = &state.config;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .nest("/admin/v1", crate::admin::upload_router())
        .merge(crate::api::router(state.clone()))
        .nest("/admin/v1", crate::admin::router())
        .merge(crate::portal::router())
        .merge(crate::oauth::router())
        .merge(crate::mcp::router(state.clone()))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        // `Router::layer` wraps each route separately, so the limit must share one semaphore.
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overloaded))
                .load_shed()
                .layer(GlobalConcurrencyLimitLayer::new(config.max_concurrent_requests)),
        )
        .layer(middleware::from_fn_with_state(state.clone(), request_context))
        .with_state(state)
}

/// The metrics listener's routes: `/metrics` only.
pub fn metrics_router(state: AppState) -> Router {
    Router::new().route("/metrics", get(metrics)).fallback(not_found).with_state(state)
}

/// Requests refused because the server is saturated.
async fn overloaded(_: BoxError) -> Response {
    retry_soon(code_response(ErrorCode::ServiceUnavailable))
}

/// Requests not answered within `request_timeout_secs`.
fn timed_out() -> Response {
    retry_soon(code_response(ErrorCode::RequestTimeout))
}

fn retry_soon(mut response: Response) -> Response {
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when the store answers and the search index has caught up with
/// everything the store held when this node started.
async fn readyz(State(state): State<AppState>) -> Response {
    let store = state.store.ping().await.is_ok();
    let index = state.indexing.is_searchable(state.ready_at_seq);
    let body = Json(json!({
        "status": if store && index { "ready" } else { "not_ready" },
        "store": if store { "ok" } else { "unavailable" },
        "index": if index { "ok" } else { "catching_up" },
    }));
    let status = if store && index { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, body).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    let text = state.metrics.render(&state.indexing.index);
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response()
}

/// JSON for the API's clients; the portal's HTML page for people (`portal::answers_in_html`).
async fn not_found(State(state): State<AppState>, request: Request) -> Response {
    if crate::portal::answers_in_html(request.uri().path(), request.headers()) {
        return crate::portal::not_found_page(state, request).await;
    }
    code_response(ErrorCode::RouteNotFound)
}

async fn method_not_allowed(State(state): State<AppState>, request: Request) -> Response {
    if crate::portal::answers_in_html(request.uri().path(), request.headers()) {
        return crate::portal::method_not_allowed_page(state, request).await;
    }
    code_response(ErrorCode::MethodNotAllowed)
}

/// The one route without a request timeout (see `request_context`).
const UPLOAD_ROUTE: &str = "/admin/v1/uploads";

/// Per request: a fresh id (a client-sent `X-Request-Id` is not reused: ids
/// must be unique per execution) on the response and in the request's span,
/// the request timeout, HSTS when served over https, metrics and one access
/// log line.
async fn request_context(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = RequestId::new();
    request.extensions_mut().insert(request_id.clone());
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().map(|path| path.as_str().to_owned());
    let span = tracing::info_span!("request", request_id = %request_id.0);
    let mut response = match refuse_early(&request, route.as_deref(), state.config.max_body_bytes) {
        Some(refused) => refused,
        None => {
            let handled = next.run(request).instrument(span.clone());
            // Uploads stream feeds of any size and are exempt from the request timeout.
            if route.as_deref() == Some(UPLOAD_ROUTE) {
                handled.await
            } else {
                let limit = Duration::from_secs(state.config.request_timeout_secs);
                tokio::time::timeout(limit, handled).await.unwrap_or_else(|_| timed_out())
            }
        }
    };
    if let Ok(value) = HeaderValue::from_str(&request_id.0) {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    // Behind TLS (an https `public_url`) browsers are told to never use plain http here.
    if state.config.serves_https() {
        response.headers_mut().insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    state.metrics.observe_request(&method, route.as_deref(), status, elapsed.as_secs_f64());
    let route = route.as_deref().unwrap_or("<unmatched>");
    span.in_scope(|| {
        tracing::info!(method = %method, route, status, latency_us = elapsed.as_micros() as u64, "request");
    });
    response
}

/// Requests answered before any handler runs, on every route:
/// - two `Authorization` headers (400): which one counts is ambiguous — a
///   proxy and this server could each read another — so neither is used;
/// - a body announced (`Content-Length`) larger than `max_body_bytes` (413
///   at once): nothing of it is read, so an `Expect: 100-continue` client is
///   never asked to send it, and a client that never sends it cannot hold
///   the request open until the timeout. Uploads have their own cap.
fn refuse_early(request: &Request, route: Option<&str>, max_body_bytes: usize) -> Option<Response> {
    let headers = request.headers();
    if headers.get_all(header::AUTHORIZATION).iter().nth(1).is_some() {
        return Some(ApiError::bad_request("Send exactly one Authorization header").into_response());
    }
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if route != Some(UPLOAD_ROUTE) && declared.is_some_and(|length| length > max_body_bytes as u64) {
        return Some(code_response(ErrorCode::PayloadTooLarge));
    }
    None
}

/// The id of the current request, available to handlers as an extension.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl RequestId {
    fn new() -> Self {
        RequestId(uuid::Uuid::new_v4().to_string())
    }
}

impl IntoResponse for RequestId {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

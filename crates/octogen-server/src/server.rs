//! The HTTP accept loop. axum's `serve` has no knobs for request heads, idle
//! connections, a connection cap or a shutdown deadline, so connections are
//! served with hyper directly:
//!
//! - HTTP/1.1, and HTTP/2 with prior knowledge (told apart by the connection
//!   preface, which must arrive within the head timeout);
//! - request heads of at most `max_header_bytes`: HTTP/1 counts the raw bytes
//!   of the request line and headers exactly and answers 431 beyond;
//!   HTTP/2 uses the header-list size of RFC 9113 (name + value + 32 per field);
//! - a head timeout (slow-loris): an HTTP/1 head must be complete within
//!   `HEADER_READ_TIMEOUT` (or the idle timeout, if shorter) — hyper runs that
//!   timer while a kept-alive connection waits for its next request too, so
//!   idle HTTP/1 connections close after it; an HTTP/2 connection that
//!   completes no request is idle and closed by the idle timeout;
//! - idle connections — no request in flight for `idle_timeout` — are closed
//!   gracefully (HTTP/2: GOAWAY), or dropped if the peer does not let them
//!   close within `CLOSE_GRACE`; HTTP/2 pings find dead peers;
//! - at most `max_connections` connections: beyond it a new connection is
//!   accepted and closed at once, before anything is read from it (the
//!   cheapest answer, and a client or balancer retries it like any refused
//!   connection), while open connections go on being served;
//! - a graceful shutdown that lets in-flight requests finish within a grace period.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulConnection;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tower::ServiceExt;

use crate::metrics::Metrics;

/// The longest a request head (HTTP/1) or the connection preface may take to arrive.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// HTTP/2 pings this often on a quiet connection, and closes it when one is
/// not answered within `KEEP_ALIVE_TIMEOUT` (the peer is gone).
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(20);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// How long a connection asked to close may take to do so once its requests are answered.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

pub struct ServeOptions {
    pub max_header_bytes: usize,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
    /// Where open and refused connections are counted (the public listener's only).
    pub metrics: Option<Arc<Metrics>>,
}

impl ServeOptions {
    fn header_read_timeout(&self) -> Duration {
        HEADER_READ_TIMEOUT.min(self.idle_timeout)
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops
/// accepting, asks every connection to close once its requests are answered,
/// and waits for that up to the grace period.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let protocols = Arc::new(Protocols::new(router, &options));
    let connections = Arc::new(Connections::default());
    let (stop_connections, stopping) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Some(slot) = connections.try_open(options.max_connections, options.metrics.clone()) else {
                    // Dropping the stream closes it unread.
                    tracing::debug!(%peer, "connection refused: max_connections are open");
                    if let Some(metrics) = &options.metrics {
                        metrics.connection_refused();
                    }
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let (protocols, stopping) = (protocols.clone(), stopping.clone());
                tokio::spawn(serve_connection(stream, peer, slot, protocols, stopping));
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = stop_connections.send(true);
    tokio::select! {
        _ = connections.all_closed() => tracing::info!("all connections closed"),
        _ = tokio::time::sleep(options.shutdown_grace) => {
            tracing::warn!(grace_secs = options.shutdown_grace.as_secs(), "requests still open after the grace period; closing them")
        }
    }
    Ok(())
}

/// The per-connection machinery, configured once.
struct Protocols {
    router: Router,
    http1: http1::Builder,
    http2: http2::Builder<TokioExecutor>,
    header_read_timeout: Duration,
    idle_timeout: Duration,
}

impl Protocols {
    fn new(router: Router, options: &ServeOptions) -> Protocols {
        let mut http1 = http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(options.header_read_timeout())
            // `max_buf_size` alone is no head limit (a read may overshoot it);
            // `max_header_size` counts the parsed head exactly.
            .max_buf_size(options.max_header_bytes)
            .max_header_size(options.max_header_bytes);
        let mut http2 = http2::Builder::new(TokioExecutor::new());
        http2
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(options.max_header_bytes).unwrap_or(u32::MAX))
            .keep_alive_interval(KEEP_ALIVE_INTERVAL)
            .keep_alive_timeout(KEEP_ALIVE_TIMEOUT);
        Protocols {
            router,
            http1,
            http2,
            header_read_timeout: options.header_read_timeout(),
            idle_timeout: options.idle_timeout,
        }
    }
}

async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    _slot: ConnectionSlot,
    protocols: Arc<Protocols>,
    stopping: watch::Receiver<bool>,
) {
    let preface = match tokio::time::timeout(protocols.header_read_timeout, read_preface(&mut stream)).await {
        Ok(Ok(preface)) if !preface.is_empty() => preface,
        _ => return,
    };
    let is_http2 = preface == H2_PREFACE;
    let (reader, writer) = stream.into_split();
    // The bytes read to tell the protocols apart are read again by hyper.
    let io = TokioIo::new(tokio::io::join(std::io::Cursor::new(preface).chain(reader), writer));
    let activity = Arc::new(Activity::new());
    let service = ConnectionService { router: protocols.router.clone(), peer, activity: activity.clone() };
    let idle_timeout = protocols.idle_timeout;
    if is_http2 {
        let connection = protocols.http2.serve_connection(io, service);
        drive(connection, &activity, idle_timeout, stopping).await;
    } else {
        let connection = protocols.http1.serve_connection(io, service);
        drive(connection, &activity, idle_timeout, stopping).await;
    }
}

/// Reads until the bytes read are the HTTP/2 preface or cannot become it
/// (at most its 24 bytes); empty when the peer closed without sending any.
async fn read_preface(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut read = [0u8; 24];
    let mut filled = 0;
    while filled < H2_PREFACE.len() {
        let count = stream.read(&mut read[filled..]).await?;
        if count == 0 {
            break;
        }
        filled += count;
        if read[..filled] != H2_PREFACE[..filled] {
            break;
        }
    }
    Ok(read[..filled].to_vec())
}

/// Runs a connection until it ends; when it has been idle for `idle_timeout`
/// or the server stops, asks it to close (after the requests in flight).
async fn drive<C>(connection: C, activity: &Activity, idle_timeout: Duration, mut stopping: watch::Receiver<bool>)
where
    C: GracefulConnection,
    C::Error: std::fmt::Display,
{
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => return log_end(result),
        _ = activity.idle_for(idle_timeout) => tracing::debug!("closing an idle connection"),
        _ = stopping.wait_for(|stop| *stop) => {}
    }
    connection.as_mut().graceful_shutdown();
    // A peer may never acknowledge the close (HTTP/2 waits for the answer to
    // a ping before its final GOAWAY): once no request has been in flight for
    // `CLOSE_GRACE`, the connection is dropped.
    activity.touch();
    tokio::select! {
        result = connection.as_mut() => log_end(result),
        _ = activity.idle_for(CLOSE_GRACE.min(idle_timeout)) => tracing::debug!("dropping a connection that did not close"),
    }
}

fn log_end<E: std::fmt::Display>(result: Result<(), E>) {
    if let Err(error) = result {
        tracing::debug!(error = %error, "connection ended with an error");
    }
}

/// Hands each request of a connection to the router, with the peer's address,
/// and counts it as in flight until its response body is done.
struct ConnectionService {
    router: Router,
    peer: SocketAddr,
    activity: Arc<Activity>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for ConnectionService {
    type Response = hyper::Response<TrackedBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, mut request: hyper::Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let in_flight = Activity::begin(&self.activity);
        let response = self.router.clone().oneshot(request.map(Body::new));
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| TrackedBody { body, _in_flight: in_flight }))
        })
    }
}

/// A response body that keeps its request counted as in flight until hyper
/// has sent it (or dropped it).
struct TrackedBody {
    body: Body,
    _in_flight: InFlight,
}

impl hyper::body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A connection's requests in flight, and since when it has had none.
struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds after `opened` when the last request ended.
    idle_since_ms: AtomicU64,
    became_idle: Notify,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            became_idle: Notify::new(),
        }
    }

    fn begin(activity: &Arc<Activity>) -> InFlight {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(activity.clone())
    }

    /// Restarts the idle clock (as if a request had just ended).
    fn touch(&self) {
        let now = self.opened.elapsed().as_millis() as u64;
        self.idle_since_ms.fetch_max(now, Ordering::AcqRel);
    }

    fn end(&self) {
        self.touch();
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Stores a permit if the idle timer is not waiting right now.
            self.became_idle.notify_one();
        }
    }

    /// Resolves once no request has been in flight for `timeout`.
    async fn idle_for(&self, timeout: Duration) {
        loop {
            if self.in_flight.load(Ordering::Acquire) > 0 {
                self.became_idle.notified().await;
                continue;
            }
            let deadline = self.opened + Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire)) + timeout;
            if deadline <= Instant::now() {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// Open connections, capped.
#[derive(Default)]
struct Connections {
    open: AtomicUsize,
    closed: Notify,
}

impl Connections {
    fn try_open(self: &Arc<Self>, max: usize, metrics: Option<Arc<Metrics>>) -> Option<ConnectionSlot> {
        self.open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| (open < max).then_some(open + 1)).ok()?;
        if let Some(metrics) = &metrics {
            metrics.connection_opened();
        }
        Some(ConnectionSlot { connections: self.clone(), metrics })
    }

    async fn all_closed(&self) {
        loop {
            let closed = self.closed.notified();
            tokio::pin!(closed);
            closed.as_mut().enable();
            if self.open.load(Ordering::Acquire) == 0 {
                return;
            }
            closed.await;
        }
    }
}

/// One open connection; dropping it frees the place.
struct ConnectionSlot {
    connections: Arc<Connections>,
    metrics: Option<Arc<Metrics>>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if let Some(metrics) = &self.metrics {
            metrics.connection_closed();
        }
        if self.connections.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.connections.closed.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request in flight for longer than the timeout keeps a connection
    /// busy; once it ends, the connection becomes idle after the timeout.
    #[tokio::test]
    async fn a_connection_is_idle_once_no_request_has_been_in_flight_for_the_timeout() {
        let activity = Arc::new(Activity::new());
        let request = Activity::begin(&activity);
        let timeout = Duration::from_millis(20);
        let busy = tokio::time::timeout(timeout * 20, activity.idle_for(timeout)).await;
        assert!(busy.is_err(), "not idle while a request is in flight");
        drop(request);
        let idle = tokio::time::timeout(Duration::from_secs(10), activity.idle_for(timeout)).await;
        assert!(idle.is_ok(), "idle after the request ended");
    }

    #[tokio::test]
    async fn connections_beyond_the_cap_get_no_slot() {
        let connections = Arc::new(Connections::default());
        let first = connections.try_open(2, None).expect("room for one");
        let _second = connections.try_open(2, None).expect("room for two");
        assert!(connections.try_open(2, None).is_none());
        drop(first);
        assert!(connections.try_open(2, None).is_some(), "a closed connection frees its place");
    }
}

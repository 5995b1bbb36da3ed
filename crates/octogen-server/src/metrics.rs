//! Prometheus metrics, served at `/metrics` on the `metrics_listen` address
//! (never on the public one): requests and latency by route and status,
//! open and refused connections, authentication failures by reason,
//! rate-limited requests, index runs and their durations, and the search
//! index's size.
//!
//! Every label value comes from a fixed set — known methods else `other`,
//! route templates else `unmatched` — so no request can add series: method
//! names and paths are chosen by the client.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use axum::http::Method;

/// The `method` label: the standard methods by name, anything else `other`.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    KNOWN.iter().find(|known| *known == method).map_or("other", |known| known.as_str())
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// A standard method, else `other`.
    pub method: &'static str,
    /// The matched route's template (`/v1/products/search`), else `unmatched`.
    pub route: String,
    pub status: u16,
}

/// The `route` label of a request that matched no route.
const UNMATCHED_ROUTE: &str = "unmatched";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BudgetLabel {
    /// `organization` or `auth_failures`.
    pub budget: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: String,
}

pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_latency: Family<HttpLabels, Histogram>,
    connections_open: Gauge,
    connections_refused: Counter,
    auth_failures: Family<ReasonLabel, Counter>,
    rate_limited: Family<BudgetLabel, Counter>,
    index_runs: Family<StatusLabel, Counter>,
    index_run_seconds: Histogram,
    index_runs_indexed_alongside: Counter,
    index_documents: Gauge,
    index_size_bytes: Gauge,
    index_applied_seq: Gauge,
}

fn latency_histogram() -> Histogram {
    // 50 µs … ~3.3 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 17))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("octogen");
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_latency =
            Family::<HttpLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        let (connections_open, connections_refused) = (Gauge::default(), Counter::default());
        let auth_failures = Family::<ReasonLabel, Counter>::default();
        let rate_limited = Family::<BudgetLabel, Counter>::default();
        let index_runs = Family::<StatusLabel, Counter>::default();
        let index_run_seconds = Histogram::new(exponential_buckets(0.01, 2.0, 20));
        let index_runs_indexed_alongside = Counter::default();
        let (index_documents, index_size_bytes, index_applied_seq) =
            (Gauge::default(), Gauge::default(), Gauge::default());
        registry.register("http_requests", "HTTP requests by route, method and status", http_requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency", http_latency.clone());
        registry.register("http_connections_open", "Open client connections", connections_open.clone());
        registry.register(
            "http_connections_refused",
            "Connections closed unserved because max_connections were open",
            connections_refused.clone(),
        );
        registry.register("auth_failures", "Refused credentials by reason", auth_failures.clone());
        registry.register("rate_limited_requests", "Requests refused with 429, by budget", rate_limited.clone());
        registry.register("index_runs", "Finished index runs by status", index_runs.clone());
        registry.register("index_run_duration_seconds", "Duration of finished index runs", index_run_seconds.clone());
        registry.register(
            "index_runs_indexed_alongside",
            "Runs this node indexed while publishing them (others wait for its follower)",
            index_runs_indexed_alongside.clone(),
        );
        registry.register("search_index_documents", "Products in this node's search index", index_documents.clone());
        registry.register(
            "search_index_size_bytes",
            "Size of this node's search index on disk",
            index_size_bytes.clone(),
        );
        registry.register(
            "search_index_applied_seq",
            "Store change sequence applied to the index",
            index_applied_seq.clone(),
        );
        Metrics {
            registry,
            http_requests,
            http_latency,
            connections_open,
            connections_refused,
            auth_failures,
            rate_limited,
            index_runs,
            index_run_seconds,
            index_runs_indexed_alongside,
            index_documents,
            index_size_bytes,
            index_applied_seq,
        }
    }
}

impl Metrics {
    /// `route` is the matched route's template, `None` when no route matched.
    pub fn observe_request(&self, method: &Method, route: Option<&str>, status: u16, seconds: f64) {
        let route = route.unwrap_or(UNMATCHED_ROUTE).to_string();
        let labels = HttpLabels { method: method_label(method), route, status };
        self.http_requests.get_or_create(&labels).inc();
        self.http_latency.get_or_create(&labels).observe(seconds);
    }

    pub fn connection_opened(&self) {
        self.connections_open.inc();
    }

    pub fn connection_closed(&self) {
        self.connections_open.dec();
    }

    pub fn connection_refused(&self) {
        self.connections_refused.inc();
    }

    pub fn auth_failure(&self, reason: &str) {
        self.auth_failures.get_or_create(&ReasonLabel { reason: reason.to_string() }).inc();
    }

    pub fn rate_limited(&self, budget: &str) {
        self.rate_limited.get_or_create(&BudgetLabel { budget: budget.to_string() }).inc();
    }

    pub fn index_run_finished(&self, status: &str, seconds: f64) {
        self.index_runs.get_or_create(&StatusLabel { status: status.to_string() }).inc();
        self.index_run_seconds.observe(seconds);
    }

    pub fn index_run_indexed_alongside(&self) {
        self.index_runs_indexed_alongside.inc();
    }

    /// The text exposition, with the index gauges refreshed first.
    pub fn render(&self, index: &octogen_search::SearchIndex) -> String {
        self.index_documents.set(index.num_docs() as i64);
        self.index_size_bytes.set(index.size_on_disk() as i64);
        self.index_applied_seq.set(index.applied_seq());
        let mut text = String::new();
        if let Err(error) = encode(&mut text, &self.registry) {
            tracing::error!(error = %error, "cannot encode metrics");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_fixed_sets() {
        let metrics = Metrics::default();
        for method in ["GET", "FROBNICATE", "get", &"X".repeat(1000)] {
            let method = Method::from_bytes(method.as_bytes()).expect("a token");
            metrics.observe_request(&method, None, 404, 0.001);
        }
        metrics.observe_request(&Method::POST, Some("/v1/products/search"), 200, 0.001);
        let mut text = String::new();
        encode(&mut text, &metrics.registry).expect("encodes");
        assert!(
            text.contains(r#"octogen_http_requests_total{method="GET",route="unmatched",status="404"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"octogen_http_requests_total{method="other",route="unmatched",status="404"} 3"#),
            "{text}"
        );
        assert!(text.contains(r#"method="POST",route="/v1/products/search",status="200""#), "{text}");
        assert!(!text.contains("FROBNICATE") && !text.contains("XXXX"));
    }
}

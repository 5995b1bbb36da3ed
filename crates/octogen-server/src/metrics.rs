//! Prometheus metrics, served at `/metrics`: requests and latency by route
//! and status, authentication failures by reason, rate-limited requests,
//! index runs and their durations, and the search index's size.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

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
        let auth_failures = Family::<ReasonLabel, Counter>::default();
        let rate_limited = Family::<BudgetLabel, Counter>::default();
        let index_runs = Family::<StatusLabel, Counter>::default();
        let index_run_seconds = Histogram::new(exponential_buckets(0.01, 2.0, 20));
        let index_runs_indexed_alongside = Counter::default();
        let (index_documents, index_size_bytes, index_applied_seq) =
            (Gauge::default(), Gauge::default(), Gauge::default());
        registry.register("http_requests", "HTTP requests by route, method and status", http_requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency", http_latency.clone());
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
    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let labels = HttpLabels { method: method.to_string(), route: route.to_string(), status };
        self.http_requests.get_or_create(&labels).inc();
        self.http_latency.get_or_create(&labels).observe(seconds);
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

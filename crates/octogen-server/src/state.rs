use std::sync::Arc;

use octogen_store::Store;

use crate::config::Config;
use crate::indexing::Indexing;
use crate::metrics::Metrics;
use crate::oauth::OAuthState;
use crate::ratelimit::RateLimiter;
use crate::secrets::ServerSecrets;
use crate::service::Services;
use crate::usage::UsageRecorder;

/// Shared by every handler: one pointer, so the copies axum makes for each
/// request's middleware, handler and extractors cost one reference count
/// rather than one per field.
#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

impl AppState {
    pub fn new(inner: AppInner) -> Self {
        AppState(Arc::new(inner))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppInner;

    fn deref(&self) -> &AppInner {
        &self.0
    }
}

/// What the server shares between requests.
pub struct AppInner {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub secrets: Arc<ServerSecrets>,
    pub services: Services,
    pub usage: UsageRecorder,
    pub indexing: Arc<Indexing>,
    pub limiter: Arc<dyn RateLimiter>,
    pub metrics: Arc<Metrics>,
    /// The OAuth authorization server's clock and metadata fetcher.
    pub oauth: Arc<OAuthState>,
    /// The store's change sequence when this node started: ready once search has caught up with it.
    pub ready_at_seq: i64,
}

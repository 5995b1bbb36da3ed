//! What the nodes of a deployment coordinate through the database: shared
//! request budgets, and one index run per catalog at a time.

use async_trait::async_trait;
use octogen_core::Timestamp;

use crate::StoreResult;

/// The outcome of taking a token from a shared bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenTake {
    pub allowed: bool,
    /// Tokens left after the take.
    pub tokens: f64,
}

/// Held while a catalog's index run (or rebuild) is in progress; dropping it
/// lets the next one start, on this node or another.
pub trait CatalogLock: Send {}

#[async_trait]
pub trait CoordinationStore: Send + Sync + 'static {
    /// Takes one token from the shared bucket `key` holding `per_minute`
    /// tokens, refilled continuously; atomic across nodes.
    async fn take_rate_token(&self, key: &str, per_minute: u32, now: Timestamp) -> StoreResult<TokenTake>;
    /// Forgets buckets untouched since `before` (they have refilled completely).
    async fn prune_rate_buckets(&self, before: Timestamp) -> StoreResult<u64>;
    /// Waits until no other run of `catalog_key` holds the lock, on any node.
    async fn lock_catalog(&self, catalog_key: &str) -> StoreResult<Box<dyn CatalogLock>>;
}

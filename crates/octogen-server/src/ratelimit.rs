//! Request budgets (SPEC §6): a token bucket per organization holding one
//! minute of requests and refilled continuously, shared by all of the
//! organization's keys (and its MCP sessions); plus a bucket per client
//! address for failed authentications.
//!
//! `RateLimiter` is a trait: `LocalLimiter` keeps buckets in this process
//! (single node, SQLite); `StoreLimiter` shares them through PostgreSQL, so
//! every node of a deployment draws from the same budget.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use std::sync::Arc;

use async_trait::async_trait;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use octogen_store::Store;

pub static LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
pub static REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
pub static RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// The state of a bucket after taking (or trying to take) a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Requests per minute.
    pub limit: u32,
    /// Whole tokens left.
    pub remaining: u32,
    /// Unix seconds when the bucket is full again.
    pub reset_at: u64,
    /// Set when the request was refused: whole seconds until a token is available.
    pub retry_after: Option<u64>,
}

impl Budget {
    /// The budget of a bucket of `capacity` tokens that holds `tokens` after a take
    /// (or a refused attempt).
    fn of_bucket(capacity: f64, tokens: f64, allowed: bool) -> Budget {
        let rate = capacity / 60.0;
        let retry_after = (!allowed).then(|| ((1.0 - tokens) / rate).ceil().max(1.0) as u64);
        Budget {
            limit: capacity as u32,
            remaining: tokens.max(0.0).floor() as u32,
            reset_at: unix_now() + ((capacity - tokens) / rate).ceil().max(0.0) as u64,
            retry_after,
        }
    }

    pub fn allowed(&self) -> bool {
        self.retry_after.is_none()
    }

    /// The `X-RateLimit-*` headers (and `Retry-After` when refused).
    pub fn apply_headers(&self, headers: &mut HeaderMap) {
        headers.insert(LIMIT.clone(), HeaderValue::from(self.limit));
        headers.insert(REMAINING.clone(), HeaderValue::from(self.remaining));
        headers.insert(RESET.clone(), HeaderValue::from(self.reset_at));
        if let Some(seconds) = self.retry_after {
            headers.insert(axum::http::header::RETRY_AFTER, HeaderValue::from(seconds));
        }
    }
}

#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Takes one token from the bucket `key`, which holds `per_minute` tokens.
    async fn take(&self, key: &str, per_minute: u32) -> anyhow::Result<Budget>;
}

/// Buckets in this process's memory (single node).
pub struct LocalLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// Full buckets carry no information; they are dropped this often so an
/// attacker cycling addresses cannot grow the map without bound.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

struct Bucket {
    tokens: f64,
    updated: Instant,
    capacity: f64,
}

impl Default for LocalLimiter {
    fn default() -> Self {
        LocalLimiter { buckets: Mutex::new(HashMap::new()) }
    }
}

impl LocalLimiter {
    /// Starts the periodic sweep of full buckets; stops when the limiter is dropped.
    pub fn start_sweeper(limiter: &Arc<LocalLimiter>) {
        let weak = Arc::downgrade(limiter);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(SWEEP_EVERY).await;
                let Some(limiter) = weak.upgrade() else { return };
                limiter.sweep(Instant::now());
            }
        });
    }

    fn sweep(&self, now: Instant) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        buckets.retain(|_, bucket| bucket.level(now) < bucket.capacity);
    }

    fn take_at(&self, key: &str, per_minute: u32, now: Instant) -> Budget {
        let capacity = f64::from(per_minute.max(1));
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Look up before inserting: the key is only copied for a new bucket, not on every request.
        if let Some(bucket) = buckets.get_mut(key) {
            return bucket.take(now, capacity);
        }
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket { tokens: capacity, updated: now, capacity });
        bucket.take(now, capacity)
    }
}

impl Bucket {
    fn refill_rate(capacity: f64) -> f64 {
        capacity / 60.0
    }

    fn level(&self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        (self.tokens + elapsed * Self::refill_rate(self.capacity)).min(self.capacity)
    }

    /// Refills for the time elapsed, then takes a token if there is one. A
    /// changed limit takes effect at once: a lower one clamps the level, a
    /// higher one adds the extra capacity (an operator raising a throttled
    /// partner's limit gives relief on the next request).
    fn take(&mut self, now: Instant, capacity: f64) -> Budget {
        let raised_by = (capacity - self.capacity).max(0.0);
        self.tokens = (self.level(now) + raised_by).min(capacity);
        self.capacity = capacity;
        self.updated = now;
        let allowed = self.tokens >= 1.0;
        if allowed {
            self.tokens -= 1.0;
        }
        Budget::of_bucket(capacity, self.tokens, allowed)
    }
}

#[async_trait]
impl RateLimiter for LocalLimiter {
    async fn take(&self, key: &str, per_minute: u32) -> anyhow::Result<Budget> {
        Ok(self.take_at(key, per_minute, Instant::now()))
    }
}

/// Buckets shared by every node through the store (PostgreSQL): each take is
/// one atomic upsert, so nodes together admit exactly what one bucket would.
pub struct StoreLimiter {
    store: Arc<dyn Store>,
}

impl StoreLimiter {
    pub fn new(store: Arc<dyn Store>) -> Arc<StoreLimiter> {
        let limiter = Arc::new(StoreLimiter { store });
        let weak = Arc::downgrade(&limiter);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(SWEEP_EVERY).await;
                let Some(limiter) = weak.upgrade() else { return };
                // A bucket untouched for two minutes has refilled: forget it (any node may do this).
                let before = octogen_core::Timestamp::now().plus_millis(-120_000);
                if let Err(error) = limiter.store.prune_rate_buckets(before).await {
                    tracing::debug!(error = %error, "could not prune rate buckets");
                }
            }
        });
        limiter
    }
}

#[async_trait]
impl RateLimiter for StoreLimiter {
    async fn take(&self, key: &str, per_minute: u32) -> anyhow::Result<Budget> {
        let take = self.store.take_rate_token(key, per_minute, octogen_core::Timestamp::now()).await?;
        Ok(Budget::of_bucket(f64::from(per_minute.max(1)), take.tokens, take.allowed))
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_holds_a_minute_and_refills_continuously() {
        let limiter = LocalLimiter::default();
        let start = Instant::now();
        for expected_remaining in (0..60).rev() {
            let budget = limiter.take_at("org", 60, start);
            assert!(budget.allowed());
            assert_eq!(budget.remaining, expected_remaining);
            assert_eq!(budget.limit, 60);
        }
        let refused = limiter.take_at("org", 60, start);
        assert_eq!(refused.retry_after, Some(1), "one token per second at 60/min");
        assert_eq!(refused.remaining, 0);
        assert!(refused.reset_at >= unix_now() + 59);
        // Half a second later there is still no whole token; a second later there is one.
        assert!(!limiter.take_at("org", 60, start + Duration::from_millis(500)).allowed());
        assert!(limiter.take_at("org", 60, start + Duration::from_millis(1_000)).allowed());
        assert!(!limiter.take_at("org", 60, start + Duration::from_millis(1_100)).allowed());
        // Other keys have their own buckets.
        assert!(limiter.take_at("other", 60, start).allowed());
    }

    #[test]
    fn a_changed_limit_applies_at_once() {
        let limiter = LocalLimiter::default();
        let start = Instant::now();
        assert_eq!(limiter.take_at("org", 600, start).remaining, 599);
        assert_eq!(limiter.take_at("org", 10, start).remaining, 9, "clamped to the lower capacity");
        for _ in 0..9 {
            limiter.take_at("org", 10, start);
        }
        assert!(!limiter.take_at("org", 10, start).allowed(), "empty");
        let budget = limiter.take_at("org", 1200, start);
        assert_eq!(budget.limit, 1200);
        assert!(budget.allowed(), "raising the limit adds the extra capacity");
        assert_eq!(budget.remaining, 1189, "0 + 1190 added - 1 taken");
    }

    #[test]
    fn full_buckets_are_swept() {
        let limiter = LocalLimiter::default();
        let start = Instant::now();
        limiter.take_at("a", 60, start);
        limiter.take_at("b", 60, start);
        limiter.sweep(start + Duration::from_secs(61));
        assert!(limiter.buckets.lock().unwrap().is_empty());
    }
}

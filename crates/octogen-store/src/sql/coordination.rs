//! Shared token buckets and per-catalog run locks.
//!
//! Buckets: one row per key, updated by a single upsert that refills the
//! bucket for the elapsed time, takes a token when there is one, and reads
//! the result back — the row lock serializes concurrent takes, so nodes share
//! a budget exactly (no over-admission), at the cost of one round trip.
//!
//! Run locks: PostgreSQL session advisory locks, held on a dedicated
//! connection for the run's duration (released at once if the node dies with
//! it); SQLite, with a single node, uses an in-process lock per catalog.

use std::sync::Arc;

use async_trait::async_trait;
use octogen_core::Timestamp;
use sqlx::pool::PoolConnection;
use sqlx::{Any, Row};

use super::{Backend, SqlStore};
use crate::coordination::{CatalogLock, CoordinationStore, TokenTake};
use crate::StoreResult;

/// The level of a bucket now: what it held, plus the refill since its last
/// update, plus any capacity added by a raised limit, capped at the capacity.
/// ($2 = capacity, $3 = now in milliseconds.) Written with CASE because
/// SQLite has no LEAST/GREATEST and PostgreSQL has no two-argument MIN/MAX.
const LEVEL: &str = "(CASE WHEN rate_buckets.tokens + ($3 - rate_buckets.updated_at) * $2 / 60000.0 \
         + (CASE WHEN $2 > rate_buckets.capacity THEN $2 - rate_buckets.capacity ELSE 0 END) > $2 THEN $2 \
     ELSE rate_buckets.tokens + ($3 - rate_buckets.updated_at) * $2 / 60000.0 \
         + (CASE WHEN $2 > rate_buckets.capacity THEN $2 - rate_buckets.capacity ELSE 0 END) END)";

#[async_trait]
impl CoordinationStore for SqlStore {
    async fn take_rate_token(&self, key: &str, per_minute: u32, now: Timestamp) -> StoreResult<TokenTake> {
        let capacity = f64::from(per_minute.max(1));
        let sql = format!(
            "INSERT INTO rate_buckets (bucket_key, tokens, capacity, updated_at, last_allowed) \
             VALUES ($1, $2 - 1, $2, $3, 1) \
             ON CONFLICT (bucket_key) DO UPDATE SET \
                 tokens = CASE WHEN {LEVEL} >= 1 THEN {LEVEL} - 1 ELSE {LEVEL} END, \
                 last_allowed = CASE WHEN {LEVEL} >= 1 THEN 1 ELSE 0 END, \
                 capacity = $2, \
                 updated_at = $3 \
             RETURNING tokens, last_allowed"
        );
        let row = sqlx::query(&sql).bind(key).bind(capacity).bind(now.millis()).fetch_one(&self.pool).await?;
        Ok(TokenTake { allowed: row.try_get::<i64, _>("last_allowed")? != 0, tokens: row.try_get("tokens")? })
    }

    async fn prune_rate_buckets(&self, before: Timestamp) -> StoreResult<u64> {
        let result = sqlx::query("DELETE FROM rate_buckets WHERE updated_at < $1")
            .bind(before.millis())
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }

    async fn lock_catalog(&self, catalog_key: &str) -> StoreResult<Box<dyn CatalogLock>> {
        match self.backend {
            Backend::Sqlite => {
                let lock = {
                    let mut locks = self.catalog_locks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    locks.entry(catalog_key.to_string()).or_default().clone()
                };
                Ok(Box::new(LocalCatalogLock(lock.lock_owned().await)))
            }
            Backend::Postgres => {
                let mut connection = self.pool.acquire().await?;
                sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(advisory_key(catalog_key))
                    .execute(&mut *connection)
                    .await?;
                Ok(Box::new(AdvisoryLock { connection: Some(connection), key: advisory_key(catalog_key) }))
            }
        }
    }
}

/// A stable 64-bit lock id per catalog key (FNV-1a; PostgreSQL's own hash
/// functions are not guaranteed stable across versions).
fn advisory_key(catalog_key: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in "octogen-catalog-run:".bytes().chain(catalog_key.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash as i64
}

struct LocalCatalogLock(#[allow(dead_code)] tokio::sync::OwnedMutexGuard<()>);

impl CatalogLock for LocalCatalogLock {}

struct AdvisoryLock {
    connection: Option<PoolConnection<Any>>,
    key: i64,
}

impl CatalogLock for AdvisoryLock {}

impl Drop for AdvisoryLock {
    fn drop(&mut self) {
        let Some(mut connection) = self.connection.take() else { return };
        let key = self.key;
        // Unlock before the connection goes back to the pool. If that fails,
        // close the connection instead: PostgreSQL releases a session's locks with it.
        tokio::spawn(async move {
            let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)").bind(key).execute(&mut *connection).await;
            if unlocked.is_err() {
                let _ = connection.detach();
            }
        });
    }
}

pub(super) type CatalogLocks = std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>;

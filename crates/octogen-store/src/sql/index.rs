//! Products, index runs, the change feed and catalog sources.

use async_trait::async_trait;
use octogen_core::product::product_uuid;
use octogen_core::url_alias::UrlAliasRule;
use octogen_core::{Product, ProductRecord, Timestamp};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::*;
use crate::error::{Entity, StoreError, StoreResult};
use crate::model::*;
use crate::{packing, IndexStore, StagedProducts};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// Staged products looked up and inserted per statement (9 parameters a row
/// when inserting; well under SQLite's and PostgreSQL's parameter limits).
const PUBLISH_BATCH: usize = 500;
/// How a SQLite connection is set up for a publish, and back afterwards.
///
/// A publish inserts into four B-trees (the table and its indexes) at random
/// places; with the default 2 MiB page cache it re-read and spilled pages all
/// the time (a 300k-product publish: 11 s, mostly kernel time and WAL
/// lookups), so its connection gets 512 MiB while it runs. And the commit
/// would checkpoint the whole transaction's WAL before returning (a quarter
/// of the publish); `checkpoint_in_background` does that instead. (Keeping
/// the statement journal in memory, `temp_store = MEMORY`, was measured too:
/// no faster.)
const PUBLISH_PRAGMAS: [&str; 2] = ["PRAGMA cache_size = -524288", "PRAGMA wal_autocheckpoint = 0"];
/// SQLite's defaults.
const DEFAULT_PRAGMAS: [&str; 2] = ["PRAGMA cache_size = -2000", "PRAGMA wal_autocheckpoint = 1000"];
/// A queued or running run whose heartbeat is older than this lost its node.
const RUN_LEASE_MILLIS: i64 = 120_000;

const RUN_COLUMNS: &str = "r.id, c.catalog_key, r.status, r.trigger_kind, r.format, r.source, r.created_at, \
     r.started_at, r.finished_at, r.bytes_read, r.bytes_total, r.seen, r.added, r.updated, r.unchanged, \
     r.deactivated, r.skipped, r.published_seq, r.error, r.report";
const PRODUCT_COLUMNS: &str =
    "p.uuid, c.catalog_key, p.url_key, p.data, p.packed, p.is_active, p.seq, p.change_order, p.updated_at";

#[async_trait]
impl IndexStore for SqlStore {
    async fn create_index_run(&self, new: NewIndexRun) -> StoreResult<IndexRun> {
        let catalog_id = self.catalog_id(&new.catalog_key).await?;
        let id = uuid::Uuid::new_v4().to_string();
        let now = Timestamp::now().millis();
        sqlx::query(
            "INSERT INTO index_runs (id, catalog_id, status, trigger_kind, format, source, created_at, heartbeat_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind(&id)
        .bind(&catalog_id)
        .bind(RunStatus::Queued.as_str())
        .bind(new.trigger.as_str())
        .bind(&new.format)
        .bind(&new.source)
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.get_index_run(&id).await
    }

    async fn start_index_run(&self, run_id: &str) -> StoreResult<bool> {
        let now = Timestamp::now().millis();
        let result = sqlx::query(
            "UPDATE index_runs SET status = $1, started_at = $2, heartbeat_at = $2 WHERE id = $3 AND status = $4",
        )
        .bind(RunStatus::Running.as_str())
        .bind(now)
        .bind(run_id)
        .bind(RunStatus::Queued.as_str())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn record_run_progress(&self, run_id: &str, progress: RunProgress) -> StoreResult<()> {
        sqlx::query(
            "UPDATE index_runs SET bytes_read = $1, bytes_total = $2, seen = $3, skipped = $4, heartbeat_at = $5 \
             WHERE id = $6",
        )
        .bind(progress.bytes_read as i64)
        .bind(progress.bytes_total.map(|total| total as i64))
        .bind(progress.seen as i64)
        .bind(progress.skipped as i64)
        .bind(Timestamp::now().millis())
        .bind(run_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn publish_index_run(
        &self,
        run_id: &str,
        staged: &mut dyn StagedProducts,
        progress: RunProgress,
        report: serde_json::Value,
    ) -> StoreResult<IndexRun> {
        // Serialized with other mutations so the access directory sees catalog
        // stats in commit order (SQLite); harmless on PostgreSQL.
        let _writer = self.write_lock.lock().await;
        let mut connection = self.pool.acquire().await?;
        let sqlite = self.backend == Backend::Sqlite;
        if sqlite {
            if let Err(error) = run_pragmas(&mut connection, &PUBLISH_PRAGMAS).await {
                // Half set up: the pool must not get it back.
                drop(connection.detach());
                return Err(error.into());
            }
        }
        let published = self.publish_on(&mut connection, run_id, staged, progress, report).await;
        if sqlite {
            if let Err(error) = run_pragmas(&mut connection, &DEFAULT_PRAGMAS).await {
                tracing::warn!(%error, "could not reset a connection after a publish; closing it");
                drop(connection.detach());
            }
            self.checkpoint_in_background();
        }
        let catalog_id = published?;

        let catalog = self.catalog_by_id(&catalog_id).await?;
        self.update_directory(|data| data.put_catalog(&catalog));
        self.get_index_run(run_id).await
    }

    async fn fail_index_run(
        &self,
        run_id: &str,
        error: &str,
        progress: RunProgress,
        report: serde_json::Value,
    ) -> StoreResult<IndexRun> {
        let mut tx = self.begin_write().await?;
        let counts = RunCounts { seen: progress.seen, skipped: progress.skipped, ..RunCounts::default() };
        let now = Timestamp::now().millis();
        finish_run(&mut tx, run_id, RunStatus::Failed, Some(error), &counts, progress, &report, now).await?;
        tx.commit().await?;
        self.get_index_run(run_id).await
    }

    async fn interrupt_unfinished_runs(&self) -> StoreResult<Vec<String>> {
        let now = Timestamp::now().millis();
        // With SQLite this process is the only one that runs imports, so every
        // unfinished run belongs to a previous life of it. With PostgreSQL,
        // only runs whose node stopped refreshing their heartbeat are orphans.
        let stale_before = match self.backend {
            Backend::Sqlite => now + 1,
            Backend::Postgres => now - RUN_LEASE_MILLIS,
        };
        let rows = sqlx::query(
            "SELECT id FROM index_runs WHERE status IN ('queued', 'running') AND COALESCE(heartbeat_at, 0) < $1",
        )
        .bind(stale_before)
        .fetch_all(&self.pool)
        .await?;
        let mut interrupted = Vec::new();
        for row in rows {
            let id: String = row.try_get("id")?;
            sqlx::query("UPDATE index_runs SET status = $1, finished_at = $2, error = $3 WHERE id = $4")
                .bind(RunStatus::Interrupted.as_str())
                .bind(now)
                .bind("the server stopped during the run; the catalog was left as it was before it")
                .bind(&id)
                .execute(&self.pool)
                .await?;
            interrupted.push(id);
        }
        Ok(interrupted)
    }

    async fn get_index_run(&self, run_id: &str) -> StoreResult<IndexRun> {
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM index_runs r JOIN catalogs c ON c.id = r.catalog_id WHERE r.id = $1"
        ))
        .bind(run_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(run_from_row).transpose()?.ok_or_else(|| StoreError::NotFound(Entity::IndexRun(run_id.into())))
    }

    async fn list_index_runs(&self, catalog_key: Option<&str>, limit: u32) -> StoreResult<Vec<IndexRun>> {
        let rows = match catalog_key {
            Some(key) => {
                sqlx::query(&format!(
                    "SELECT {RUN_COLUMNS} FROM index_runs r JOIN catalogs c ON c.id = r.catalog_id \
                     WHERE c.catalog_key = $1 ORDER BY r.created_at DESC, r.id LIMIT $2"
                ))
                .bind(key)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {RUN_COLUMNS} FROM index_runs r JOIN catalogs c ON c.id = r.catalog_id \
                     ORDER BY r.created_at DESC, r.id LIMIT $1"
                ))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(run_from_row).collect()
    }

    async fn product_changes(&self, after: &ChangeCursor, limit: u32) -> StoreResult<Vec<ProductChange>> {
        let sql = format!(
            "SELECT {PRODUCT_COLUMNS} FROM products p JOIN catalogs c ON c.id = p.catalog_id \
             WHERE (p.seq, p.change_order) > ($1, $2) ORDER BY p.seq, p.change_order LIMIT $3"
        );
        let rows = sqlx::query(&sql).bind(after.seq).bind(after.order).bind(i64::from(limit)).fetch(&self.pool);
        decode_while_fetching(rows, |row| {
            Ok(ProductChange {
                seq: row.try_get("seq")?,
                order: row.try_get("change_order")?,
                record: product_from_row(row)?,
            })
        })
        .await
    }

    async fn latest_change_seq(&self) -> StoreResult<i64> {
        Ok(sqlx::query("SELECT value FROM change_seq WHERE id = 1").fetch_one(&self.pool).await?.try_get("value")?)
    }

    async fn catalog_products(
        &self,
        catalog_key: &str,
        after_uuid: &str,
        limit: u32,
    ) -> StoreResult<Vec<ProductRecord>> {
        let sql = format!(
            "SELECT {PRODUCT_COLUMNS} FROM products p JOIN catalogs c ON c.id = p.catalog_id \
             WHERE c.catalog_key = $1 AND p.uuid > $2 ORDER BY p.uuid LIMIT $3"
        );
        let rows = sqlx::query(&sql).bind(catalog_key).bind(after_uuid).bind(i64::from(limit)).fetch(&self.pool);
        decode_while_fetching(rows, product_from_row).await
    }

    async fn find_product(&self, catalog_ids: &[String], url_key: &str) -> StoreResult<Option<ProductRecord>> {
        if catalog_ids.is_empty() {
            return Ok(None);
        }
        // Its uuid in each catalog (see `StagedProduct::new`).
        let sql = format!(
            "SELECT {PRODUCT_COLUMNS} FROM products p JOIN catalogs c ON c.id = p.catalog_id \
             WHERE p.uuid IN ({}) AND p.is_active = 1 ORDER BY c.catalog_key LIMIT 1",
            placeholders(self.backend, 1, catalog_ids.len())
        );
        let mut query = sqlx::query(&sql);
        for id in catalog_ids {
            query = query.bind(product_uuid(id, url_key));
        }
        let row = query.fetch_optional(&self.pool).await?;
        row.as_ref().map(product_from_row).transpose()
    }

    async fn set_catalog_url_aliases(&self, catalog_key: &str, rules: &[UrlAliasRule]) -> StoreResult<()> {
        let catalog_id = self.catalog_id(catalog_key).await?;
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM catalog_url_aliases WHERE catalog_id = $1")
            .bind(&catalog_id)
            .execute(&mut *tx)
            .await?;
        if !rules.is_empty() {
            let json = serde_json::to_string(rules).map_err(|error| StoreError::Corrupt(error.to_string()))?;
            sqlx::query("INSERT INTO catalog_url_aliases (catalog_id, rules) VALUES ($1, $2)")
                .bind(&catalog_id)
                .bind(json)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn catalog_url_aliases(&self, catalog_ids: &[String]) -> StoreResult<Vec<(String, Vec<UrlAliasRule>)>> {
        if catalog_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT catalog_id, rules FROM catalog_url_aliases WHERE catalog_id IN ({}) ORDER BY catalog_id",
            placeholders(self.backend, 1, catalog_ids.len())
        );
        let mut query = sqlx::query(&sql);
        for id in catalog_ids {
            query = query.bind(id);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                let rules: String = row.try_get("rules")?;
                let rules = serde_json::from_str(&rules).map_err(|error| StoreError::Corrupt(error.to_string()))?;
                Ok((row.try_get("catalog_id")?, rules))
            })
            .collect()
    }

    async fn set_catalog_source(&self, catalog_key: &str, source: Option<CatalogSource>) -> StoreResult<()> {
        let catalog_id = self.catalog_id(catalog_key).await?;
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM catalog_sources WHERE catalog_id = $1").bind(&catalog_id).execute(&mut *tx).await?;
        if let Some(source) = source {
            sqlx::query(
                "INSERT INTO catalog_sources (catalog_id, url, format, mapping, currency, interval_secs, next_run_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&catalog_id)
            .bind(&source.url)
            .bind(&source.format)
            .bind(&source.mapping)
            .bind(&source.currency)
            .bind(source.interval_secs as i64)
            .bind(source.next_run_at.millis())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn get_catalog_source(&self, catalog_key: &str) -> StoreResult<Option<CatalogSource>> {
        let row = sqlx::query(
            "SELECT s.url, s.format, s.mapping, s.currency, s.interval_secs, s.next_run_at FROM catalog_sources s \
             JOIN catalogs c ON c.id = s.catalog_id WHERE c.catalog_key = $1",
        )
        .bind(catalog_key)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(source_from_row).transpose()
    }

    async fn due_catalog_sources(&self, now: Timestamp) -> StoreResult<Vec<(String, CatalogSource)>> {
        let rows = sqlx::query(
            "SELECT c.catalog_key, s.url, s.format, s.mapping, s.currency, s.interval_secs, s.next_run_at FROM catalog_sources s \
             JOIN catalogs c ON c.id = s.catalog_id WHERE s.next_run_at <= $1 AND c.is_active = 1 ORDER BY s.next_run_at",
        )
        .bind(now.millis())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| Ok((row.try_get("catalog_key")?, source_from_row(row)?))).collect()
    }

    async fn claim_catalog_source(
        &self,
        catalog_key: &str,
        expected: Timestamp,
        next_run_at: Timestamp,
    ) -> StoreResult<bool> {
        let catalog_id = self.catalog_id(catalog_key).await?;
        let result =
            sqlx::query("UPDATE catalog_sources SET next_run_at = $1 WHERE catalog_id = $2 AND next_run_at = $3")
                .bind(next_run_at.millis())
                .bind(&catalog_id)
                .bind(expected.millis())
                .execute(&self.pool)
                .await?;
        Ok(result.rows_affected() == 1)
    }
}

impl SqlStore {
    /// Copies the WAL into the database off the publish's path. Other
    /// connections' commits would also checkpoint, but whichever request
    /// happened to commit next would wait for it.
    fn checkpoint_in_background(&self) {
        let pool = self.pool.clone();
        tokio::spawn(async move {
            if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
                tracing::warn!(%error, "could not checkpoint the WAL after a publish");
            }
        });
    }

    /// The publish itself, in one transaction on `connection`; returns the run's catalog id.
    async fn publish_on(
        &self,
        connection: &mut sqlx::pool::PoolConnection<Any>,
        run_id: &str,
        staged: &mut dyn StagedProducts,
        progress: RunProgress,
        report: serde_json::Value,
    ) -> StoreResult<String> {
        let mut tx = match self.backend {
            Backend::Sqlite => sqlx::Connection::begin_with(&mut **connection, "BEGIN IMMEDIATE").await?,
            Backend::Postgres => sqlx::Connection::begin(&mut **connection).await?,
        };
        let catalog_id = running_run_catalog(&mut tx, run_id).await?;
        let seq: i64 = sqlx::query("UPDATE change_seq SET value = value + 1 WHERE id = 1 RETURNING value")
            .fetch_one(&mut *tx)
            .await?
            .try_get("value")?;
        let mut publish = Publish {
            backend: self.backend,
            catalog_id: &catalog_id,
            seq,
            now: Timestamp::now().millis(),
            next_order: 0,
            seen: HashSet::new(),
            first_import: !catalog_has_products(&mut tx, &catalog_id).await?,
            counts: RunCounts { seen: progress.seen, skipped: progress.skipped, ..RunCounts::default() },
            looked_up: Duration::ZERO,
        };
        staged.began(seq, Timestamp::from_millis(publish.now)).await;
        let (mut waited, mut wrote) = (Duration::ZERO, Duration::ZERO);
        loop {
            let started = Instant::now();
            let Some(batch) = staged.next_batch().await.map_err(StoreError::Staging)? else { break };
            waited += started.elapsed();
            let started = Instant::now();
            for chunk in batch.chunks(PUBLISH_BATCH) {
                let written = publish.write(&mut tx, chunk).await?;
                if !written.is_empty() {
                    staged.wrote(written).await;
                }
            }
            wrote += started.elapsed();
        }
        let deactivating = Instant::now();
        let deactivated = publish.deactivate_unseen(&mut tx).await?;
        if !deactivated.is_empty() {
            staged.deactivated(deactivated).await;
        }
        let deactivated_in = deactivating.elapsed();
        staged.committing().await;
        let (counts, now) = (publish.counts, publish.now);
        sqlx::query(
            "UPDATE catalogs SET last_indexed_at = $2, \
                 product_count = (SELECT COUNT(*) FROM products WHERE catalog_id = $1 AND is_active = 1) \
             WHERE id = $1",
        )
        .bind(&catalog_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        finish_run(&mut tx, run_id, RunStatus::Succeeded, None, &counts, progress, &report, now).await?;
        sqlx::query("UPDATE index_runs SET published_seq = $1 WHERE id = $2")
            .bind(seq)
            .bind(run_id)
            .execute(&mut *tx)
            .await?;
        let committing = Instant::now();
        tx.commit().await?;
        tracing::debug!(
            run_id,
            waiting_for_staged_ms = waited.as_millis() as u64,
            writing_ms = wrote.as_millis() as u64,
            of_which_looking_up_ms = publish.looked_up.as_millis() as u64,
            deactivating_ms = deactivated_in.as_millis() as u64,
            commit_ms = committing.elapsed().as_millis() as u64,
            "publish transaction committed"
        );

        if counts.added + counts.updated + counts.deactivated > 0 {
            self.refresh_product_statistics().await;
        }
        Ok(catalog_id)
    }

    /// After a publish changed many products, PostgreSQL's planner must not
    /// wait for autovacuum (a minute or more) to learn of them. Measured
    /// (BENCHMARKS.md §4): right after a 100k-product import, lookups ran at
    /// 120/s with PostgreSQL busy on ~14 ms of CPU each, as if each scanned
    /// the catalog (`products_active` instead of the unique index on the URL,
    /// which lookups used then, is what stale statistics allow); with this
    /// ANALYZE, 3,200/s. Lookups now go by primary key (migration 0009), but
    /// the change feed and the deactivation scan still choose among indexes.
    /// SQLite's planner needs no statistics for these queries.
    async fn refresh_product_statistics(&self) {
        if self.backend != Backend::Postgres {
            return;
        }
        if let Err(error) = sqlx::query("ANALYZE products").execute(&self.pool).await {
            tracing::warn!(error = %error, "could not refresh the products table's statistics");
        }
    }

    async fn catalog_by_id(&self, catalog_id: &str) -> StoreResult<Catalog> {
        let row = sqlx::query(&format!("SELECT {CATALOG_COLUMNS} FROM catalogs WHERE id = $1"))
            .bind(catalog_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref()
            .map(catalog_from_row)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(Entity::Catalog(catalog_id.into())))
    }
}

async fn run_pragmas(connection: &mut sqlx::pool::PoolConnection<Any>, pragmas: &[&str]) -> Result<(), sqlx::Error> {
    for pragma in pragmas {
        sqlx::query(pragma).execute(&mut **connection).await?;
    }
    Ok(())
}

async fn catalog_has_products(tx: &mut Transaction<'_, Any>, catalog_id: &str) -> StoreResult<bool> {
    // COUNT rather than EXISTS: a number on both backends (EXISTS is a boolean on PostgreSQL).
    let row = sqlx::query("SELECT COUNT(*) AS n FROM (SELECT 1 FROM products WHERE catalog_id = $1 LIMIT 1) AS one")
        .bind(catalog_id)
        .fetch_one(&mut **tx)
        .await?;
    flag(&row, "n")
}

/// The catalog of a run that may be published (it must be running).
async fn running_run_catalog(tx: &mut Transaction<'_, Any>, run_id: &str) -> StoreResult<String> {
    let row = sqlx::query("SELECT catalog_id, status FROM index_runs WHERE id = $1")
        .bind(run_id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(Entity::IndexRun(run_id.into())))?;
    let status: String = row.try_get("status")?;
    if status != RunStatus::Running.as_str() {
        return Err(StoreError::Conflict(format!("index run {run_id} is {status}, not running")));
    }
    Ok(row.try_get("catalog_id")?)
}

#[allow(clippy::too_many_arguments)]
async fn finish_run(
    tx: &mut Transaction<'_, Any>,
    run_id: &str,
    status: RunStatus,
    error: Option<&str>,
    counts: &RunCounts,
    progress: RunProgress,
    report: &serde_json::Value,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE index_runs SET status = $1, finished_at = $2, heartbeat_at = $2, error = $3, bytes_read = $4, \
             bytes_total = $5, seen = $6, added = $7, updated = $8, unchanged = $9, deactivated = $10, skipped = $11, \
             report = $12 \
         WHERE id = $13",
    )
    .bind(status.as_str())
    .bind(now)
    .bind(error)
    .bind(progress.bytes_read as i64)
    .bind(progress.bytes_total.map(|total| total as i64))
    .bind(counts.seen as i64)
    .bind(counts.added as i64)
    .bind(counts.updated as i64)
    .bind(counts.unchanged as i64)
    .bind(counts.deactivated as i64)
    .bind(counts.skipped as i64)
    .bind(report.to_string())
    .bind(run_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn count_of(row: &AnyRow, column: &str) -> StoreResult<u64> {
    Ok(row.try_get::<i64, _>(column)?.max(0) as u64)
}

fn run_from_row(row: &AnyRow) -> StoreResult<IndexRun> {
    let report: Option<String> = row.try_get("report")?;
    let status: String = row.try_get("status")?;
    let trigger: String = row.try_get("trigger_kind")?;
    Ok(IndexRun {
        id: row.try_get("id")?,
        catalog_key: row.try_get("catalog_key")?,
        status: status.parse().map_err(StoreError::Corrupt)?,
        trigger: trigger.parse().map_err(StoreError::Corrupt)?,
        format: row.try_get("format")?,
        source: row.try_get("source")?,
        created_at: Timestamp::from_millis(row.try_get("created_at")?),
        started_at: row.try_get::<Option<i64>, _>("started_at")?.map(Timestamp::from_millis),
        finished_at: row.try_get::<Option<i64>, _>("finished_at")?.map(Timestamp::from_millis),
        bytes_read: count_of(row, "bytes_read")?,
        bytes_total: row.try_get::<Option<i64>, _>("bytes_total")?.map(|total| total.max(0) as u64),
        counts: RunCounts {
            seen: count_of(row, "seen")?,
            added: count_of(row, "added")?,
            updated: count_of(row, "updated")?,
            unchanged: count_of(row, "unchanged")?,
            deactivated: count_of(row, "deactivated")?,
            skipped: count_of(row, "skipped")?,
        },
        published_seq: row.try_get("published_seq")?,
        error: row.try_get("error")?,
        report: report.and_then(|text| serde_json::from_str(&text).ok()),
    })
}

/// Decodes rows as they arrive: SQLite steps the query on its worker thread
/// while this task unpacks the rows already read (collecting them first left
/// one of the two idle; the follower's catch-up waited on it).
async fn decode_while_fetching<T>(
    mut rows: futures_util::stream::BoxStream<'_, Result<AnyRow, sqlx::Error>>,
    decode: impl Fn(&AnyRow) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    use futures_util::TryStreamExt;
    let mut decoded = Vec::new();
    while let Some(row) = rows.try_next().await? {
        decoded.push(decode(&row)?);
    }
    Ok(decoded)
}

fn product_from_row(row: &AnyRow) -> StoreResult<ProductRecord> {
    let uuid: String = row.try_get("uuid")?;
    let corrupt = |error: String| StoreError::Corrupt(format!("product {uuid}: {error}"));
    // Rows written before migration 0008 hold plain JSON in `data`.
    let product: Product = match row.try_get::<Option<Vec<u8>>, _>("packed")? {
        Some(packed) => serde_json::from_slice(&packing::unpack(&packed).map_err(corrupt)?),
        None => serde_json::from_str(&row.try_get::<String, _>("data")?),
    }
    .map_err(|error| corrupt(error.to_string()))?;
    Ok(ProductRecord {
        uuid,
        catalog_key: row.try_get("catalog_key")?,
        is_active: flag(row, "is_active")?,
        updated_at: Timestamp::from_millis(row.try_get("updated_at")?),
        normalized_url: row.try_get("url_key")?,
        product,
    })
}

fn source_from_row(row: &AnyRow) -> StoreResult<CatalogSource> {
    Ok(CatalogSource {
        url: row.try_get("url")?,
        format: row.try_get("format")?,
        mapping: row.try_get("mapping")?,
        currency: row.try_get("currency")?,
        interval_secs: count_of(row, "interval_secs")?,
        next_run_at: Timestamp::from_millis(row.try_get("next_run_at")?),
    })
}

/// One publish in progress: what it has written so far, inside its transaction.
struct Publish<'a> {
    backend: Backend,
    catalog_id: &'a str,
    seq: i64,
    now: i64,
    /// The `change_order` of the next row written (unique within `seq`).
    next_order: i64,
    /// Every uuid the run staged: what is not in here is deactivated.
    seen: HashSet<String>,
    /// The catalog had no product row at all: every staged product is new,
    /// and a first import of a big catalog skips looking each one up.
    first_import: bool,
    counts: RunCounts,
    /// Time spent reading the stored versions of staged products (debug log).
    looked_up: Duration,
}

impl Publish<'_> {
    /// Inserts the new products of `batch` and rewrites the changed ones (a
    /// different content hash, or inactive); unchanged products are not
    /// written at all. Returns the uuids of those it wrote.
    async fn write(&mut self, tx: &mut Transaction<'_, Any>, batch: &[StagedProduct]) -> StoreResult<Vec<String>> {
        let fresh: Vec<&StagedProduct> =
            batch.iter().filter(|product| self.seen.insert(product.uuid.clone())).collect();
        if fresh.is_empty() {
            return Ok(Vec::new());
        }
        let looking_up = Instant::now();
        let stored = match self.first_import {
            true => HashMap::new(),
            false => self.stored_versions(tx, &fresh).await?,
        };
        self.looked_up += looking_up.elapsed();
        let (mut added, mut rewritten) = (Vec::new(), Vec::new());
        for product in fresh {
            match stored.get(product.uuid.as_str()) {
                None => added.push(product),
                Some((hash, true)) if product.has_content_hash(hash) => self.counts.unchanged += 1,
                Some(_) => {
                    self.rewrite(tx, product).await?;
                    rewritten.push(product);
                }
            }
        }
        self.insert(tx, &added).await?;
        self.counts.added += added.len() as u64;
        self.counts.updated += rewritten.len() as u64;
        Ok(added.into_iter().chain(rewritten).map(|product| product.uuid.clone()).collect())
    }

    /// The content hash and active flag of those products already stored.
    async fn stored_versions(
        &self,
        tx: &mut Transaction<'_, Any>,
        products: &[&StagedProduct],
    ) -> StoreResult<HashMap<String, (String, bool)>> {
        let sql = format!(
            "SELECT uuid, content_hash, is_active FROM products WHERE uuid IN ({})",
            placeholders(self.backend, 1, products.len())
        );
        let mut query = sqlx::query(&sql);
        for product in products {
            query = query.bind(&product.uuid);
        }
        let rows = query.fetch_all(&mut **tx).await?;
        rows.iter()
            .map(|row| Ok((row.try_get("uuid")?, (row.try_get("content_hash")?, flag(row, "is_active")?))))
            .collect()
    }

    /// The next `change_order` value of this publish.
    fn take_order(&mut self) -> i64 {
        self.next_order += 1;
        self.next_order - 1
    }

    async fn insert(&mut self, tx: &mut Transaction<'_, Any>, products: &[&StagedProduct]) -> StoreResult<()> {
        if products.is_empty() {
            return Ok(());
        }
        let rows: Vec<String> = (0..products.len())
            .map(|row| {
                let p = |column: usize| placeholder(self.backend, row * 9 + column + 1);
                let [uuid, catalog, url, packed, hash, seq, order, created, updated] = std::array::from_fn(p);
                format!("({uuid}, {catalog}, {url}, '', {packed}, {hash}, 1, {seq}, {order}, {created}, {updated})")
            })
            .collect();
        let sql = format!(
            "INSERT INTO products (uuid, catalog_id, url_key, data, packed, content_hash, is_active, seq, change_order, \
                 created_at, updated_at) VALUES {}",
            rows.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for product in products {
            query = query
                .bind(&product.uuid)
                .bind(self.catalog_id)
                .bind(&product.url_key)
                .bind(&product.packed)
                .bind(&product.content_hash)
                .bind(self.seq)
                .bind(self.take_order())
                .bind(self.now)
                .bind(self.now);
        }
        query.execute(&mut **tx).await?;
        Ok(())
    }

    async fn rewrite(&mut self, tx: &mut Transaction<'_, Any>, product: &StagedProduct) -> StoreResult<()> {
        sqlx::query(
            "UPDATE products SET url_key = $1, data = '', packed = $2, content_hash = $3, is_active = 1, seq = $4, \
                 change_order = $5, updated_at = $6 WHERE uuid = $7",
        )
        .bind(&product.url_key)
        .bind(&product.packed)
        .bind(&product.content_hash)
        .bind(self.seq)
        .bind(self.take_order())
        .bind(self.now)
        .bind(&product.uuid)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Deactivates the catalog's active products the run did not stage, and
    /// returns their uuids. Those it inserted or rewrote carry this publish's
    /// seq, so only older rows are read.
    async fn deactivate_unseen(&mut self, tx: &mut Transaction<'_, Any>) -> StoreResult<Vec<String>> {
        if self.first_import {
            // Every row of the catalog is one this publish wrote (0.7 s to confirm at 1M).
            return Ok(Vec::new());
        }
        let rows = sqlx::query("SELECT uuid FROM products WHERE catalog_id = $1 AND is_active = 1 AND seq < $2")
            .bind(self.catalog_id)
            .bind(self.seq)
            .fetch_all(&mut **tx)
            .await?;
        let mut unseen = Vec::new();
        for row in &rows {
            let uuid: String = row.try_get("uuid")?;
            if !self.seen.contains(&uuid) {
                unseen.push(uuid);
            }
        }
        for chunk in unseen.chunks(PUBLISH_BATCH) {
            // Each row its own change_order: `CASE uuid WHEN <uuid> THEN <order> ...`.
            let p = |n: usize| placeholder(self.backend, n);
            let cases: String =
                (0..chunk.len()).map(|row| format!(" WHEN {} THEN {}", p(3 + 2 * row), p(4 + 2 * row))).collect();
            let sql = format!(
                "UPDATE products SET is_active = 0, seq = {}, updated_at = {}, change_order = CASE uuid{cases} END \
                 WHERE uuid IN ({})",
                p(1),
                p(2),
                placeholders(self.backend, 3 + 2 * chunk.len(), chunk.len())
            );
            let mut query = sqlx::query(&sql).bind(self.seq).bind(self.now);
            for uuid in chunk {
                query = query.bind(uuid).bind(self.take_order());
            }
            for uuid in chunk {
                query = query.bind(uuid);
            }
            query.execute(&mut **tx).await?;
        }
        self.counts.deactivated = unseen.len() as u64;
        Ok(unseen)
    }
}

/// The `n`th (1-based) parameter of a statement. On SQLite parameters are
/// anonymous (`?`, numbered by position): sqlx binds each argument after
/// asking SQLite for the parameter's name, a linear scan over the statement's
/// named parameters, so `$N` made binding a 4,000-parameter insert quadratic
/// (11 % of the server's CPU during a 300k-product import).
fn placeholder(backend: Backend, n: usize) -> String {
    match backend {
        Backend::Sqlite => "?".into(),
        Backend::Postgres => format!("${n}"),
    }
}

/// `count` parameters from the `first`th on, comma-separated.
fn placeholders(backend: Backend, first: usize, count: usize) -> String {
    (first..first + count).map(|n| placeholder(backend, n)).collect::<Vec<_>>().join(", ")
}

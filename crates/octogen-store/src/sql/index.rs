//! Products, index runs, the change feed and catalog sources.

use async_trait::async_trait;
use octogen_core::{Product, ProductRecord, Timestamp};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::*;
use crate::error::{Entity, StoreError, StoreResult};
use crate::model::*;
use crate::IndexStore;

/// Rows per multi-row INSERT when staging (5 parameters each; well under
/// SQLite's and PostgreSQL's parameter limits).
const STAGE_BATCH: usize = 400;
/// A queued or running run whose heartbeat is older than this lost its node.
const RUN_LEASE_MILLIS: i64 = 120_000;

const RUN_COLUMNS: &str = "r.id, c.catalog_key, r.status, r.trigger_kind, r.format, r.source, r.created_at, \
     r.started_at, r.finished_at, r.bytes_read, r.bytes_total, r.seen, r.added, r.updated, r.unchanged, \
     r.deactivated, r.skipped, r.published_seq, r.error, r.report";
const PRODUCT_COLUMNS: &str = "p.uuid, c.catalog_key, p.url_key, p.data, p.is_active, p.seq, p.updated_at";

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

    async fn stage_products(&self, run_id: &str, products: &[StagedProduct]) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        for chunk in products.chunks(STAGE_BATCH) {
            let sql = staging_insert(chunk.len(), self.backend);
            let mut query = sqlx::query(&sql);
            for product in chunk {
                query = query
                    .bind(run_id)
                    .bind(&product.uuid)
                    .bind(&product.url_key)
                    .bind(&product.data)
                    .bind(&product.content_hash);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn publish_index_run(
        &self,
        run_id: &str,
        progress: RunProgress,
        report: serde_json::Value,
    ) -> StoreResult<IndexRun> {
        // Serialized with other mutations so the access directory sees catalog
        // stats in commit order (SQLite); harmless on PostgreSQL.
        let _writer = self.write_lock.lock().await;
        let mut tx = self.begin_write().await?;
        let catalog_id = running_run_catalog(&mut tx, run_id).await?;
        let counts = publish_counts(&mut tx, run_id, &catalog_id, progress).await?;
        let seq: i64 = sqlx::query("UPDATE change_seq SET value = value + 1 WHERE id = 1 RETURNING value")
            .fetch_one(&mut *tx)
            .await?
            .try_get("value")?;
        let now = Timestamp::now().millis();
        // `WHERE true` keeps SQLite from reading ON CONFLICT as part of the SELECT's join.
        sqlx::query(
            "INSERT INTO products (uuid, catalog_id, url_key, data, content_hash, is_active, seq, created_at, updated_at) \
             SELECT s.uuid, $2, s.url_key, s.data, s.content_hash, 1, $3, $4, $4 FROM staged_products s \
             WHERE s.run_id = $1 \
             ON CONFLICT (uuid) DO UPDATE SET url_key = excluded.url_key, data = excluded.data, \
                 content_hash = excluded.content_hash, is_active = 1, seq = excluded.seq, updated_at = excluded.updated_at \
             WHERE products.content_hash <> excluded.content_hash OR products.is_active = 0",
        )
        .bind(run_id)
        .bind(&catalog_id)
        .bind(seq)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE products SET is_active = 0, seq = $3, updated_at = $4 \
             WHERE catalog_id = $2 AND is_active = 1 \
               AND NOT EXISTS (SELECT 1 FROM staged_products s WHERE s.run_id = $1 AND s.uuid = products.uuid)",
        )
        .bind(run_id)
        .bind(&catalog_id)
        .bind(seq)
        .bind(now)
        .execute(&mut *tx)
        .await?;
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
        tx.commit().await?;

        self.discard_staging(run_id).await;
        if counts.added + counts.updated + counts.deactivated > 0 {
            self.refresh_product_statistics().await;
        }
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
        self.discard_staging(run_id).await;
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
            self.discard_staging(&id).await;
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
        let rows = sqlx::query(&format!(
            "SELECT {PRODUCT_COLUMNS} FROM products p JOIN catalogs c ON c.id = p.catalog_id \
             WHERE (p.seq, p.uuid) > ($1, $2) ORDER BY p.seq, p.uuid LIMIT $3"
        ))
        .bind(after.seq)
        .bind(&after.uuid)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| Ok(ProductChange { seq: row.try_get("seq")?, record: product_from_row(row)? })).collect()
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
        let rows = sqlx::query(&format!(
            "SELECT {PRODUCT_COLUMNS} FROM products p JOIN catalogs c ON c.id = p.catalog_id \
             WHERE c.catalog_key = $1 AND p.uuid > $2 ORDER BY p.uuid LIMIT $3"
        ))
        .bind(catalog_key)
        .bind(after_uuid)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(product_from_row).collect()
    }

    async fn find_product(&self, catalog_ids: &[String], url_key: &str) -> StoreResult<Option<ProductRecord>> {
        if catalog_ids.is_empty() {
            return Ok(None);
        }
        let placeholders: Vec<String> = (2..catalog_ids.len() + 2).map(|n| format!("${n}")).collect();
        let sql = format!(
            "SELECT {PRODUCT_COLUMNS} FROM products p JOIN catalogs c ON c.id = p.catalog_id \
             WHERE p.url_key = $1 AND p.is_active = 1 AND p.catalog_id IN ({}) ORDER BY c.catalog_key LIMIT 1",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql).bind(url_key);
        for id in catalog_ids {
            query = query.bind(id);
        }
        let row = query.fetch_optional(&self.pool).await?;
        row.as_ref().map(product_from_row).transpose()
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
    /// Staged rows of a finished run are garbage; failing to delete them only costs space.
    async fn discard_staging(&self, run_id: &str) {
        if let Err(error) =
            sqlx::query("DELETE FROM staged_products WHERE run_id = $1").bind(run_id).execute(&self.pool).await
        {
            tracing::warn!(run_id, error = %error, "could not discard staged products");
        }
    }

    /// After a publish changed many products, PostgreSQL's planner must not
    /// wait for autovacuum (a minute or more) to learn of them. Measured
    /// (BENCHMARKS.md §4): right after a 100k-product import, lookups ran at
    /// 120/s with PostgreSQL busy on ~14 ms of CPU each, as if each scanned
    /// the catalog (`products_active` instead of the unique `products_by_url`
    /// is what stale statistics allow); with this ANALYZE, 3,200/s. SQLite's
    /// planner needs no statistics for these queries.
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

/// A multi-row insert of `rows` staged products. On SQLite the placeholders
/// are anonymous (`?`): sqlx binds each argument after asking SQLite for the
/// parameter's name, a linear scan over the statement's named parameters, so
/// `$N` made binding a 2,000-parameter insert quadratic (11 % of the server's
/// CPU during a 300k-product import).
fn staging_insert(rows: usize, backend: Backend) -> String {
    let mut sql = String::from("INSERT INTO staged_products (run_id, uuid, url_key, data, content_hash) VALUES ");
    for row in 0..rows {
        let base = row * 5;
        if row > 0 {
            sql.push_str(", ");
        }
        match backend {
            Backend::Sqlite => sql.push_str("(?, ?, ?, ?, ?)"),
            Backend::Postgres => {
                sql.push_str(&format!("(${}, ${}, ${}, ${}, ${})", base + 1, base + 2, base + 3, base + 4, base + 5))
            }
        }
    }
    // A feed may repeat a product; the last occurrence wins.
    sql.push_str(
        " ON CONFLICT (run_id, uuid) DO UPDATE SET url_key = excluded.url_key, data = excluded.data, \
         content_hash = excluded.content_hash",
    );
    sql
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

/// What publishing will do, counted before it is done.
async fn publish_counts(
    tx: &mut Transaction<'_, Any>,
    run_id: &str,
    catalog_id: &str,
    progress: RunProgress,
) -> StoreResult<RunCounts> {
    let staged = scalar(tx, "SELECT COUNT(*) AS n FROM staged_products WHERE run_id = $1", run_id, None).await?;
    let added = scalar(
        tx,
        "SELECT COUNT(*) AS n FROM staged_products s WHERE s.run_id = $1 \
         AND NOT EXISTS (SELECT 1 FROM products p WHERE p.uuid = s.uuid)",
        run_id,
        None,
    )
    .await?;
    let updated = scalar(
        tx,
        "SELECT COUNT(*) AS n FROM staged_products s JOIN products p ON p.uuid = s.uuid \
         WHERE s.run_id = $1 AND (p.content_hash <> s.content_hash OR p.is_active = 0)",
        run_id,
        None,
    )
    .await?;
    let deactivated = scalar(
        tx,
        "SELECT COUNT(*) AS n FROM products p WHERE p.catalog_id = $2 AND p.is_active = 1 \
         AND NOT EXISTS (SELECT 1 FROM staged_products s WHERE s.run_id = $1 AND s.uuid = p.uuid)",
        run_id,
        Some(catalog_id),
    )
    .await?;
    Ok(RunCounts {
        seen: progress.seen,
        added,
        updated,
        unchanged: staged.saturating_sub(added + updated),
        deactivated,
        skipped: progress.skipped,
    })
}

async fn scalar(tx: &mut Transaction<'_, Any>, sql: &str, run_id: &str, catalog_id: Option<&str>) -> StoreResult<u64> {
    let mut query = sqlx::query(sql).bind(run_id);
    if let Some(catalog_id) = catalog_id {
        query = query.bind(catalog_id);
    }
    let n: i64 = query.fetch_one(&mut **tx).await?.try_get("n")?;
    Ok(n.max(0) as u64)
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

fn product_from_row(row: &AnyRow) -> StoreResult<ProductRecord> {
    let data: String = row.try_get("data")?;
    let uuid: String = row.try_get("uuid")?;
    let product: Product =
        serde_json::from_str(&data).map_err(|error| StoreError::Corrupt(format!("product {uuid}: {error}")))?;
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

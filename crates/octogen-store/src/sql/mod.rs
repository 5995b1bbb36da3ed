//! `SqlStore`: one implementation of `Store` for SQLite and PostgreSQL.
//!
//! All SQL is portable (numbered `$N` placeholders, which SQLite also
//! accepts; BIGINT milliseconds; TEXT ids), run through sqlx's `Any` driver.
//! Each backend has its own versioned migrations. What differs between the
//! backends is confined to this file: SQLite pragmas and the single-writer
//! access directory; PostgreSQL reading access facts on every request.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use octogen_core::{KeyHash, KeyId, Timestamp};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

mod access;
mod coordination;
mod index;
mod oauth;
mod portal;

use crate::directory::{Directory, DirectoryData, KeyEntry};
use crate::error::{StoreError, StoreResult};
use crate::model::*;
use crate::AccessStore;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
    /// Present only for SQLite, where this process is the only writer.
    directory: Option<Directory>,
    /// Serializes mutations so the directory applies them in commit order.
    write_lock: tokio::sync::Mutex<()>,
    /// In-process run locks per catalog (SQLite: one node); PostgreSQL uses advisory locks.
    catalog_locks: coordination::CatalogLocks,
    /// Held for the store's lifetime: a second server on the same SQLite file
    /// would invalidate the directory, so it is refused at startup instead.
    _exclusive: Option<File>,
}

impl SqlStore {
    /// Opens (creating if needed) the SQLite database at `path`, in WAL mode,
    /// and applies migrations.
    pub async fn open_sqlite(path: &Path) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let lock_path = path.with_extension("lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|error| StoreError::Config(format!("cannot open {}: {error}", lock_path.display())))?;
        lock_exclusively(&lock).await.map_err(|_| {
            StoreError::Config(format!(
                "the database {} is in use by another octogen process (lock {})",
                path.display(),
                lock_path.display()
            ))
        })?;
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .min_connections(1)
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    // Only takes effect on a new, empty database (an existing one
                    // keeps its size). Product rows are ~1 KB compressed: 16 KB
                    // pages mean shallower B-trees; a 300k-product publish
                    // committed in half the time (614 → 340 ms) and left a 10 %
                    // smaller file (BENCHMARKS.md §5).
                    conn.execute("PRAGMA page_size = 16384").await?;
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        SQLITE_MIGRATIONS.run(&pool).await?;
        let store = SqlStore {
            pool,
            backend: Backend::Sqlite,
            directory: Some(Directory::default()),
            write_lock: tokio::sync::Mutex::new(()),
            catalog_locks: Default::default(),
            _exclusive: Some(lock),
        };
        store.load_directory().await?;
        Ok(store)
    }

    /// Connects to PostgreSQL and applies migrations.
    pub async fn connect_postgres(url: &str) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let pool =
            AnyPoolOptions::new().max_connections(16).acquire_timeout(Duration::from_secs(10)).connect(url).await?;
        POSTGRES_MIGRATIONS.run(&pool).await?;
        Ok(SqlStore {
            pool,
            backend: Backend::Postgres,
            directory: None,
            write_lock: tokio::sync::Mutex::new(()),
            catalog_locks: Default::default(),
            _exclusive: None,
        })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Begins a transaction that will write. On SQLite it takes the write lock
    /// up front (`BEGIN IMMEDIATE`), waiting for it under `busy_timeout`: a
    /// deferred transaction that reads first and writes later fails at once
    /// with SQLITE_BUSY_SNAPSHOT if anyone else wrote in between (seen when a
    /// 1M-product publish counted its staged rows while the run's progress
    /// heartbeat wrote).
    pub(crate) async fn begin_write(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// What a `SELECT` appends to lock the rows it reads until the transaction
    /// ends. PostgreSQL needs a row lock; a SQLite write transaction
    /// (`begin_write`) already holds the database's write lock.
    pub(crate) fn lock_row(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }

    async fn load_directory(&self) -> StoreResult<()> {
        let Some(directory) = &self.directory else { return Ok(()) };
        let mut data = DirectoryData::default();
        for org in self.list_orgs().await? {
            data.put_org(&org);
        }
        for catalog in self.list_catalogs().await? {
            data.put_catalog(&catalog);
        }
        for row in sqlx::query("SELECT org_id, catalog_id FROM grants").fetch_all(&self.pool).await? {
            data.grants.entry(row.try_get("org_id")?).or_default().insert(row.try_get("catalog_id")?);
        }
        for row in sqlx::query("SELECT id, org_id, secret_hash, revoked_at, expires_at FROM api_keys")
            .fetch_all(&self.pool)
            .await?
        {
            let id: String = row.try_get("id")?;
            let key_id = KeyId::parse(&id).ok_or_else(|| StoreError::Corrupt(format!("API key id {id:?}")))?;
            data.keys.insert(key_id, key_entry(&row)?);
        }
        directory.replace(data);
        Ok(())
    }

    fn update_directory(&self, change: impl FnOnce(&mut DirectoryData)) {
        if let Some(directory) = &self.directory {
            directory.update(change);
        }
    }

    async fn org_by_slug(&self, slug: &str) -> StoreResult<Option<Org>> {
        let row = sqlx::query(&format!("SELECT {ORG_COLUMNS} FROM organizations WHERE slug = $1"))
            .bind(slug)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(org_from_row).transpose()
    }

    /// Runs an `UPDATE organizations SET <column> = $1 WHERE id = $2` with
    /// its audit events in one transaction, and refreshes the directory.
    async fn update_org_setting<V>(
        &self,
        id: &str,
        sql: &'static str,
        value: V,
        audit: &[AuditEvent],
    ) -> StoreResult<Org>
    where
        V: for<'q> sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any> + Send + 'static,
    {
        let _writer = self.write_lock.lock().await;
        let mut tx = self.begin_write().await?;
        let result = sqlx::query(sql).bind(value).bind(id).execute(&mut *tx).await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound(crate::error::Entity::Organization(id.into())));
        }
        write_audit(&mut tx, audit).await?;
        tx.commit().await?;
        let org = self.get_org(id).await?;
        self.update_directory(|data| data.put_org(&org));
        Ok(org)
    }

    async fn catalog_id(&self, key: &str) -> StoreResult<String> {
        Ok(self.get_catalog(key).await?.id)
    }

    async fn resolve_from_database(&self, id: &KeyId) -> StoreResult<Option<KeyPrincipal>> {
        // One round trip: the key, its organization and every active granted catalog.
        let rows = sqlx::query(
            "SELECT k.id AS key_id, k.org_id, k.secret_hash, k.revoked_at, k.expires_at, \
                    o.name AS org_name, o.slug AS org_slug, o.org_type, o.suspended, \
                    o.rate_limit_per_minute, o.api_version, \
                    c.id AS catalog_id, c.catalog_key, c.display_name, c.source_base_url, \
                    c.product_count, c.last_indexed_at \
             FROM api_keys k \
             JOIN organizations o ON o.id = k.org_id \
             LEFT JOIN grants g ON g.org_id = o.id \
             LEFT JOIN catalogs c ON c.id = g.catalog_id AND c.is_active = 1 \
             WHERE k.id = $1 \
             ORDER BY c.catalog_key",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?;
        let Some(first) = rows.first() else { return Ok(None) };
        let entry = key_entry(first)?;
        Ok(Some(KeyPrincipal {
            key_id: *id,
            secret_hash: entry.secret_hash,
            revoked: entry.revoked,
            expires_at: entry.expires_at,
            org: org_access_of(first)?,
            catalogs: granted_catalogs_of(&rows)?,
        }))
    }
}

pub(super) const ORG_COLUMNS: &str =
    "id, name, slug, org_type, suspended, created_at, rate_limit_per_minute, api_version";
pub(super) const CATALOG_COLUMNS: &str =
    "id, catalog_key, display_name, source_base_url, is_active, product_count, last_indexed_at, created_at";
pub(super) const KEY_COLUMNS: &str = "id, org_id, name, created_at, last_used_at, revoked_at, expires_at";

/// A unique-constraint violation (another node won a race) is a conflict, not a backend failure.
pub(super) fn conflict_on_unique(error: sqlx::Error, message: String) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(message),
        _ => StoreError::Backend(error),
    }
}

/// The access facts of an organization from a row with its columns aliased
/// `org_id`, `org_name`, `org_slug`, `org_type`, `suspended`, `rate_limit_per_minute`, `api_version`.
pub(super) fn org_access_of(row: &AnyRow) -> StoreResult<Arc<OrgAccess>> {
    Ok(Arc::new(OrgAccess {
        id: row.try_get("org_id")?,
        name: row.try_get("org_name")?,
        slug: row.try_get("org_slug")?,
        org_type: parse_org_type(row.try_get("org_type")?)?,
        suspended: flag(row, "suspended")?,
        rate_limit_per_minute: rate_limit_of(row)?,
        api_version: row.try_get("api_version")?,
    }))
}

/// The granted catalogs of rows from a `LEFT JOIN grants … catalogs` (rows without one are skipped).
pub(super) fn granted_catalogs_of(rows: &[AnyRow]) -> StoreResult<Arc<[GrantedCatalog]>> {
    let mut catalogs = Vec::new();
    for row in rows {
        let Some(catalog_id) = row.try_get::<Option<String>, _>("catalog_id")? else { continue };
        catalogs.push(GrantedCatalog::new(
            catalog_id,
            row.try_get("catalog_key")?,
            row.try_get("display_name")?,
            row.try_get("source_base_url")?,
            row.try_get::<i64, _>("product_count")?.max(0) as u64,
            row.try_get::<Option<i64>, _>("last_indexed_at")?.map(Timestamp::from_millis),
        ));
    }
    Ok(Arc::from(catalogs))
}

fn rate_limit_of(row: &AnyRow) -> StoreResult<Option<u32>> {
    Ok(row.try_get::<Option<i64>, _>("rate_limit_per_minute")?.map(|limit| limit.clamp(0, i64::from(u32::MAX)) as u32))
}

/// Flags are stored as 0/1 integers on both backends.
pub(super) fn flag(row: &AnyRow, column: &str) -> StoreResult<bool> {
    Ok(row.try_get::<i64, _>(column)? != 0)
}

pub(super) fn parse_org_type(text: String) -> StoreResult<OrgType> {
    text.parse().map_err(StoreError::Corrupt)
}

pub(super) fn org_from_row(row: &AnyRow) -> StoreResult<Org> {
    Ok(Org {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        slug: row.try_get("slug")?,
        org_type: parse_org_type(row.try_get("org_type")?)?,
        suspended: flag(row, "suspended")?,
        created_at: Timestamp::from_millis(row.try_get("created_at")?),
        rate_limit_per_minute: row
            .try_get::<Option<i64>, _>("rate_limit_per_minute")?
            .map(|limit| limit.clamp(0, i64::from(u32::MAX)) as u32),
        api_version: row.try_get("api_version")?,
    })
}

pub(super) fn catalog_from_row(row: &AnyRow) -> StoreResult<Catalog> {
    Ok(Catalog {
        id: row.try_get("id")?,
        key: row.try_get("catalog_key")?,
        display_name: row.try_get("display_name")?,
        source_base_url: row.try_get("source_base_url")?,
        is_active: flag(row, "is_active")?,
        product_count: row.try_get::<i64, _>("product_count")?.max(0) as u64,
        last_indexed_at: row.try_get::<Option<i64>, _>("last_indexed_at")?.map(Timestamp::from_millis),
        created_at: Timestamp::from_millis(row.try_get("created_at")?),
    })
}

pub(super) fn key_info_from_row(row: &AnyRow) -> StoreResult<ApiKeyInfo> {
    Ok(ApiKeyInfo {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        name: row.try_get("name")?,
        created_at: Timestamp::from_millis(row.try_get("created_at")?),
        last_used_at: row.try_get::<Option<i64>, _>("last_used_at")?.map(Timestamp::from_millis),
        revoked_at: row.try_get::<Option<i64>, _>("revoked_at")?.map(Timestamp::from_millis),
        expires_at: optional_time(row, "expires_at")?,
    })
}

/// A nullable millisecond column.
pub(super) fn optional_time(row: &AnyRow, column: &str) -> StoreResult<Option<Timestamp>> {
    Ok(row.try_get::<Option<i64>, _>(column)?.map(Timestamp::from_millis))
}

pub(super) fn key_entry(row: &AnyRow) -> StoreResult<KeyEntry> {
    let hash: Vec<u8> = row.try_get("secret_hash")?;
    Ok(KeyEntry {
        org_id: row.try_get("org_id")?,
        secret_hash: KeyHash::from_slice(&hash).ok_or_else(|| StoreError::Corrupt("API key hash length".into()))?,
        revoked: row.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
        expires_at: optional_time(row, "expires_at")?,
    })
}

/// Writes audit events inside the transaction of the change they record.
pub(super) async fn write_audit(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    events: &[AuditEvent],
) -> StoreResult<()> {
    for event in events {
        sqlx::query(
            "INSERT INTO audit_events (occurred_at, org_id, actor, action, target, client_addr, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(event.occurred_at.millis())
        .bind(event.org_id.clone())
        .bind(event.actor.clone())
        .bind(event.action.clone())
        .bind(event.target.clone())
        .bind(event.client_addr.clone())
        .bind(event.detail.as_ref().map(|detail| detail.to_string()))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

pub(super) fn audit_from_row(row: &AnyRow) -> StoreResult<AuditEvent> {
    let detail: Option<String> = row.try_get("detail")?;
    Ok(AuditEvent {
        occurred_at: Timestamp::from_millis(row.try_get("occurred_at")?),
        org_id: row.try_get("org_id")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        client_addr: row.try_get("client_addr")?,
        detail: detail.and_then(|text| serde_json::from_str(&text).ok()),
    })
}

/// How long opening a database waits for a busy lock before reporting another process.
const LOCK_PATIENCE: Duration = Duration::from_secs(3);

/// Takes the exclusive `flock` on the database's lock file. A child process
/// forked by any thread of this process holds a copy of the descriptor until
/// it execs, so a lock released a moment ago (a server stopped and reopened
/// on the same directory) can still look busy; a short, bounded retry tells
/// that apart from a real second process (the same race the search index's
/// writer lock handles in `octogen_search`).
async fn lock_exclusively(lock: &File) -> Result<(), std::fs::TryLockError> {
    let deadline = tokio::time::Instant::now() + LOCK_PATIENCE;
    loop {
        match lock.try_lock() {
            Err(std::fs::TryLockError::WouldBlock) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            result => return result,
        }
    }
}

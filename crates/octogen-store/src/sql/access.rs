//! Organizations, catalogs, grants, API keys, audit events and settings.

use async_trait::async_trait;
use octogen_core::{KeyId, Timestamp};
use sqlx::Row;

use super::*;
use crate::error::{Entity, StoreError, StoreResult};
use crate::model::*;
use crate::AccessStore;

#[async_trait]
impl AccessStore for SqlStore {
    fn backend(&self) -> Backend {
        self.backend
    }

    async fn create_org(&self, new: NewOrg, audit: &[AuditEvent]) -> StoreResult<Org> {
        let _writer = self.write_lock.lock().await;
        let slug = org_slug(&new.name);
        if let Some(existing) = self.org_by_slug(&slug).await? {
            return Err(StoreError::Conflict(format!(
                "an organization named {:?} already exists (id {})",
                existing.name, existing.id
            )));
        }
        let org = Org {
            id: new.id,
            name: new.name,
            slug,
            org_type: new.org_type,
            suspended: false,
            created_at: Timestamp::now(),
            rate_limit_per_minute: None,
            api_version: new.api_version,
        };
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO organizations (id, name, slug, org_type, suspended, created_at, api_version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&org.id)
        .bind(&org.name)
        .bind(&org.slug)
        .bind(org.org_type.as_str())
        .bind(0_i64)
        .bind(org.created_at.millis())
        .bind(&org.api_version)
        .execute(&mut *tx)
        .await
        .map_err(|error| conflict_on_unique(error, format!("an organization named {:?} already exists", org.name)))?;
        write_audit(&mut tx, audit).await?;
        tx.commit().await?;
        self.update_directory(|data| data.put_org(&org));
        Ok(org)
    }

    async fn list_orgs(&self) -> StoreResult<Vec<Org>> {
        let rows = sqlx::query(&format!("SELECT {ORG_COLUMNS} FROM organizations ORDER BY created_at, id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(org_from_row).collect()
    }

    async fn get_org(&self, id: &str) -> StoreResult<Org> {
        let row = sqlx::query(&format!("SELECT {ORG_COLUMNS} FROM organizations WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(org_from_row).transpose()?.ok_or_else(|| StoreError::NotFound(Entity::Organization(id.into())))
    }

    async fn set_org_suspended(&self, id: &str, suspended: bool, audit: &[AuditEvent]) -> StoreResult<Org> {
        let sql = "UPDATE organizations SET suspended = $1 WHERE id = $2";
        self.update_org_setting(id, sql, i64::from(suspended), audit).await
    }

    async fn set_org_rate_limit(&self, id: &str, per_minute: Option<u32>, audit: &[AuditEvent]) -> StoreResult<Org> {
        let sql = "UPDATE organizations SET rate_limit_per_minute = $1 WHERE id = $2";
        self.update_org_setting(id, sql, per_minute.map(i64::from), audit).await
    }

    async fn set_org_api_version(&self, id: &str, version: Option<&str>, audit: &[AuditEvent]) -> StoreResult<Org> {
        let sql = "UPDATE organizations SET api_version = $1 WHERE id = $2";
        self.update_org_setting(id, sql, version.map(str::to_string), audit).await
    }

    async fn create_catalog(&self, new: NewCatalog, audit: &[AuditEvent]) -> StoreResult<Catalog> {
        let _writer = self.write_lock.lock().await;
        if self.get_catalog(&new.key).await.is_ok() {
            return Err(StoreError::Conflict(format!("a catalog with key {:?} already exists", new.key)));
        }
        let catalog = Catalog {
            id: uuid::Uuid::new_v4().to_string(),
            key: new.key,
            display_name: new.display_name,
            source_base_url: new.source_base_url,
            is_active: true,
            product_count: 0,
            last_indexed_at: None,
            created_at: Timestamp::now(),
        };
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO catalogs (id, catalog_key, display_name, source_base_url, is_active, product_count, created_at) \
             VALUES ($1, $2, $3, $4, $5, 0, $6)",
        )
        .bind(&catalog.id)
        .bind(&catalog.key)
        .bind(&catalog.display_name)
        .bind(&catalog.source_base_url)
        .bind(1_i64)
        .bind(catalog.created_at.millis())
        .execute(&mut *tx)
        .await
        .map_err(|error| conflict_on_unique(error, format!("a catalog with key {:?} already exists", catalog.key)))?;
        write_audit(&mut tx, audit).await?;
        tx.commit().await?;
        self.update_directory(|data| data.put_catalog(&catalog));
        Ok(catalog)
    }

    async fn list_catalogs(&self) -> StoreResult<Vec<Catalog>> {
        let rows = sqlx::query(&format!("SELECT {CATALOG_COLUMNS} FROM catalogs ORDER BY catalog_key"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(catalog_from_row).collect()
    }

    async fn get_catalog(&self, key: &str) -> StoreResult<Catalog> {
        let row = sqlx::query(&format!("SELECT {CATALOG_COLUMNS} FROM catalogs WHERE catalog_key = $1"))
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(catalog_from_row).transpose()?.ok_or_else(|| StoreError::NotFound(Entity::Catalog(key.into())))
    }

    async fn set_catalog_active(&self, key: &str, active: bool, audit: &[AuditEvent]) -> StoreResult<Catalog> {
        let _writer = self.write_lock.lock().await;
        let mut tx = self.begin_write().await?;
        let result = sqlx::query("UPDATE catalogs SET is_active = $1 WHERE catalog_key = $2")
            .bind(i64::from(active))
            .bind(key)
            .execute(&mut *tx)
            .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound(Entity::Catalog(key.into())));
        }
        write_audit(&mut tx, audit).await?;
        tx.commit().await?;
        let catalog = self.get_catalog(key).await?;
        self.update_directory(|data| data.put_catalog(&catalog));
        Ok(catalog)
    }

    async fn grant(&self, org_id: &str, catalog_key: &str, audit: &[AuditEvent]) -> StoreResult<bool> {
        let _writer = self.write_lock.lock().await;
        self.get_org(org_id).await?;
        let catalog_id = self.catalog_id(catalog_key).await?;
        let mut tx = self.begin_write().await?;
        let result = sqlx::query(
            "INSERT INTO grants (org_id, catalog_id, created_at) VALUES ($1, $2, $3) ON CONFLICT (org_id, catalog_id) DO NOTHING",
        )
        .bind(org_id)
        .bind(&catalog_id)
        .bind(Timestamp::now().millis())
        .execute(&mut *tx)
        .await?;
        let changed = result.rows_affected() > 0;
        if changed {
            write_audit(&mut tx, audit).await?;
        }
        tx.commit().await?;
        self.update_directory(|data| {
            data.grants.entry(org_id.to_string()).or_default().insert(catalog_id);
        });
        Ok(changed)
    }

    async fn ungrant(&self, org_id: &str, catalog_key: &str, audit: &[AuditEvent]) -> StoreResult<bool> {
        let _writer = self.write_lock.lock().await;
        self.get_org(org_id).await?;
        let catalog_id = self.catalog_id(catalog_key).await?;
        let mut tx = self.begin_write().await?;
        let result = sqlx::query("DELETE FROM grants WHERE org_id = $1 AND catalog_id = $2")
            .bind(org_id)
            .bind(&catalog_id)
            .execute(&mut *tx)
            .await?;
        let changed = result.rows_affected() > 0;
        if changed {
            write_audit(&mut tx, audit).await?;
        }
        tx.commit().await?;
        self.update_directory(|data| {
            if let Some(granted) = data.grants.get_mut(org_id) {
                granted.remove(&catalog_id);
            }
        });
        Ok(changed)
    }

    async fn granted_catalogs(&self, org_id: &str) -> StoreResult<Vec<Catalog>> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM catalogs c JOIN grants g ON g.catalog_id = c.id WHERE g.org_id = $1 ORDER BY c.catalog_key",
            CATALOG_COLUMNS.split(", ").map(|column| format!("c.{column}")).collect::<Vec<_>>().join(", ")
        ))
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(catalog_from_row).collect()
    }

    async fn create_api_key(&self, new: NewApiKey, audit: &[AuditEvent]) -> StoreResult<ApiKeyInfo> {
        let _writer = self.write_lock.lock().await;
        self.get_org(&new.org_id).await?;
        let mut tx = self.begin_write().await?;
        let info = insert_api_key(&mut tx, &new).await?;
        write_audit(&mut tx, audit).await?;
        tx.commit().await?;
        self.update_directory(|data| {
            data.keys.insert(new.id, new_key_entry(new));
        });
        Ok(info)
    }

    async fn list_api_keys(&self, org_id: &str) -> StoreResult<Vec<ApiKeyInfo>> {
        self.get_org(org_id).await?;
        let rows =
            sqlx::query(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE org_id = $1 ORDER BY created_at, id"))
                .bind(org_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(key_info_from_row).collect()
    }

    async fn get_api_key(&self, id: &str) -> StoreResult<ApiKeyInfo> {
        let row = sqlx::query(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(key_info_from_row).transpose()?.ok_or_else(|| StoreError::NotFound(Entity::ApiKey(id.into())))
    }

    async fn revoke_api_key(&self, id: &str, audit: &[AuditEvent]) -> StoreResult<ApiKeyInfo> {
        let _writer = self.write_lock.lock().await;
        let mut tx = self.begin_write().await?;
        if revoke_key(&mut tx, id, Timestamp::now()).await? {
            write_audit(&mut tx, audit).await?;
        }
        tx.commit().await?;
        let info = self.get_api_key(id).await?;
        self.refresh_key_entry(&info);
        Ok(info)
    }

    async fn rotate_api_key(
        &self,
        old_id: &str,
        replacement: NewApiKey,
        old_end: OldKeyEnd,
        now: Timestamp,
        audit: &[AuditEvent],
    ) -> StoreResult<(ApiKeyInfo, ApiKeyInfo)> {
        let _writer = self.write_lock.lock().await;
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1{}", self.lock_row()))
            .bind(old_id)
            .fetch_optional(&mut *tx)
            .await?;
        let old = row.as_ref().map(key_info_from_row).transpose()?;
        let old = old.ok_or_else(|| StoreError::NotFound(Entity::ApiKey(old_id.into())))?;
        if old.status_at(now) != KeyStatus::Active {
            return Err(StoreError::Conflict(format!(
                "API key {old_id} is {}; create a new key instead of rotating it",
                old.status_at(now).as_str()
            )));
        }
        if replacement.org_id != old.org_id {
            return Err(StoreError::Conflict("a replacement key belongs to the old key's organization".into()));
        }
        let new_info = insert_api_key(&mut tx, &replacement).await?;
        match old_end {
            OldKeyEnd::StaysActive => {}
            OldKeyEnd::Revoked => {
                revoke_key(&mut tx, old_id, now).await?;
            }
            OldKeyEnd::ExpiresAt(at) => {
                // Never later than an expiry the key already had.
                sqlx::query(
                    "UPDATE api_keys SET expires_at = $1 WHERE id = $2 AND (expires_at IS NULL OR expires_at > $1)",
                )
                .bind(at.millis())
                .bind(old_id)
                .execute(&mut *tx)
                .await?;
            }
        }
        write_audit(&mut tx, audit).await?;
        tx.commit().await?;
        self.update_directory(|data| {
            data.keys.insert(replacement.id, new_key_entry(replacement));
        });
        let old = self.get_api_key(old_id).await?;
        self.refresh_key_entry(&old);
        Ok((new_info, old))
    }

    async fn record_key_usage(&self, uses: &[(KeyId, Timestamp)]) -> StoreResult<()> {
        if uses.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for (id, at) in uses {
            // Never move last_used_at backwards when batches arrive out of order.
            sqlx::query(
                "UPDATE api_keys SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
            )
            .bind(at.millis())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn resolve_api_key(&self, id: &KeyId) -> StoreResult<Option<KeyPrincipal>> {
        match &self.directory {
            Some(directory) => Ok(directory.resolve(id)),
            None => self.resolve_from_database(id).await,
        }
    }

    async fn append_audit(&self, event: AuditEvent) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        write_audit(&mut tx, std::slice::from_ref(&event)).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_audit(&self, org_id: Option<&str>, limit: u32) -> StoreResult<Vec<AuditEvent>> {
        const BY_ORG: &str = "SELECT occurred_at, org_id, actor, action, target, client_addr, detail \
                              FROM audit_events WHERE org_id = $1 ORDER BY id DESC LIMIT $2";
        const ALL: &str = "SELECT occurred_at, org_id, actor, action, target, client_addr, detail \
                           FROM audit_events ORDER BY id DESC LIMIT $1";
        let query = match org_id {
            Some(org_id) => sqlx::query(BY_ORG).bind(org_id.to_string()),
            None => sqlx::query(ALL),
        };
        let rows = query.bind(i64::from(limit)).fetch_all(&self.pool).await?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn query_audit(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEntry>> {
        let (sql, binds) = audit_query_sql(query);
        let mut statement = sqlx::query(&sql);
        for bind in binds {
            statement = match bind {
                Bind::Text(text) => statement.bind(text),
                Bind::Int(number) => statement.bind(number),
            };
        }
        let rows = statement.fetch_all(&self.pool).await?;
        let mut entries = rows
            .iter()
            .map(|row| Ok(AuditEntry { id: row.try_get("id")?, event: audit_from_row(row)? }))
            .collect::<StoreResult<Vec<_>>>()?;
        if matches!(query.page, AuditPage::NewerThan(_)) {
            // Read oldest first to take the events right after the cursor; shown newest first.
            entries.reverse();
        }
        Ok(entries)
    }

    async fn get_setting(&self, name: &str) -> StoreResult<Option<String>> {
        let row =
            sqlx::query("SELECT value FROM settings WHERE name = $1").bind(name).fetch_optional(&self.pool).await?;
        Ok(row.map(|row| row.try_get("value")).transpose()?)
    }

    async fn put_setting(&self, name: &str, value: &str) -> StoreResult<()> {
        sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
            .bind(name)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

impl SqlStore {
    /// The directory's entry for a key, after a change to its revocation or expiry.
    fn refresh_key_entry(&self, info: &ApiKeyInfo) {
        let Some(key_id) = KeyId::parse(&info.id) else { return };
        self.update_directory(|data| {
            if let Some(entry) = data.keys.get_mut(&key_id) {
                entry.revoked = info.revoked_at.is_some();
                entry.expires_at = info.expires_at;
            }
        });
    }
}

async fn insert_api_key(tx: &mut sqlx::Transaction<'static, sqlx::Any>, new: &NewApiKey) -> StoreResult<ApiKeyInfo> {
    let info = ApiKeyInfo {
        id: new.id.to_string(),
        org_id: new.org_id.clone(),
        name: new.name.clone(),
        created_at: Timestamp::now(),
        last_used_at: None,
        revoked_at: None,
        expires_at: new.expires_at,
    };
    sqlx::query(
        "INSERT INTO api_keys (id, org_id, name, secret_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&info.id)
    .bind(&info.org_id)
    .bind(&info.name)
    .bind(new.secret_hash.as_bytes().to_vec())
    .bind(info.created_at.millis())
    .bind(info.expires_at.map(Timestamp::millis))
    .execute(&mut **tx)
    .await?;
    Ok(info)
}

fn new_key_entry(new: NewApiKey) -> KeyEntry {
    KeyEntry { org_id: new.org_id, secret_hash: new.secret_hash, revoked: false, expires_at: new.expires_at }
}

/// Revokes a key that is not revoked yet; returns whether it did.
async fn revoke_key(tx: &mut sqlx::Transaction<'static, sqlx::Any>, id: &str, at: Timestamp) -> StoreResult<bool> {
    let result = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(at.millis())
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(result.rows_affected() > 0)
}

/// A value bound to a numbered placeholder of a query built at run time.
enum Bind {
    Text(String),
    Int(i64),
}

/// The SQL of `query_audit`: only the filters that are set become conditions
/// (a NULL-tolerant `$n IS NULL OR …` form would need typed NULLs on PostgreSQL).
fn audit_query_sql(query: &AuditQuery) -> (String, Vec<Bind>) {
    let mut conditions: Vec<String> = Vec::new();
    let mut binds: Vec<Bind> = Vec::new();
    if let Some(org_id) = &query.org_id {
        conditions.push(format!("org_id = {}", placeholder(&mut binds, Bind::Text(org_id.clone()))));
    }
    for (column, values) in [("action", &query.actions), ("target", &query.targets)] {
        if !values.is_empty() {
            let list: Vec<String> =
                values.iter().map(|value| placeholder(&mut binds, Bind::Text(value.clone()))).collect();
            conditions.push(format!("{column} IN ({})", list.join(", ")));
        }
    }
    if let Some(text) = query.actor_contains.as_deref().filter(|text| !text.is_empty()) {
        let pattern = format!("%{}%", escape_like(&text.to_lowercase()));
        conditions.push(format!("LOWER(actor) LIKE {} ESCAPE '\\'", placeholder(&mut binds, Bind::Text(pattern))));
    }
    if let Some(from) = query.from {
        conditions.push(format!("occurred_at >= {}", placeholder(&mut binds, Bind::Int(from.millis()))));
    }
    if let Some(until) = query.until {
        conditions.push(format!("occurred_at < {}", placeholder(&mut binds, Bind::Int(until.millis()))));
    }
    let order = match query.page {
        AuditPage::Newest => "DESC",
        AuditPage::OlderThan(id) => {
            conditions.push(format!("id < {}", placeholder(&mut binds, Bind::Int(id))));
            "DESC"
        }
        AuditPage::NewerThan(id) => {
            conditions.push(format!("id > {}", placeholder(&mut binds, Bind::Int(id))));
            "ASC"
        }
    };
    let filter = if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) };
    let limit = placeholder(&mut binds, Bind::Int(i64::from(query.limit)));
    let sql = format!(
        "SELECT id, occurred_at, org_id, actor, action, target, client_addr, detail \
         FROM audit_events {filter} ORDER BY id {order} LIMIT {limit}"
    );
    (sql, binds)
}

/// Binds a value and returns its placeholder (`$1`, `$2`, …).
fn placeholder(binds: &mut Vec<Bind>, bind: Bind) -> String {
    binds.push(bind);
    format!("${}", binds.len())
}

/// `LIKE` treats `%` and `_` as wildcards; searched text matches them literally.
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_queries_bind_only_the_filters_that_are_set() {
        let (sql, binds) = audit_query_sql(&AuditQuery { limit: 5, ..AuditQuery::default() });
        assert!(sql.ends_with("FROM audit_events  ORDER BY id DESC LIMIT $1"), "{sql}");
        assert_eq!(binds.len(), 1);
        let query = AuditQuery {
            org_id: Some("o".into()),
            actions: vec!["a".into(), "b".into()],
            actor_contains: Some("50%_off".into()),
            page: AuditPage::NewerThan(7),
            limit: 5,
            ..AuditQuery::default()
        };
        let (sql, binds) = audit_query_sql(&query);
        assert!(sql.contains("org_id = $1 AND action IN ($2, $3) AND LOWER(actor) LIKE $4"), "{sql}");
        assert!(sql.contains("id > $5 ORDER BY id ASC LIMIT $6"), "{sql}");
        assert!(matches!(&binds[3], Bind::Text(pattern) if pattern == "%50\\%\\_off%"));
    }
}

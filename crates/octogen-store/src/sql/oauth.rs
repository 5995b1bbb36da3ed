//! OAuth 2.1 state (migrations 0005 and 0010) and the organization lookup of OAuth callers.
//!
//! Single-use rules are single statements: a code is redeemed and a refresh
//! token spent by an `UPDATE … WHERE used_at IS NULL`, so of two concurrent
//! exchanges (on one node or several) exactly one wins and the other sees a
//! replay. Grants reference the portal session they were approved in with
//! `ON DELETE CASCADE`, and every token lookup joins the session and the
//! membership, so sign-out and leaving the organization end them at once.
//! Audit events of OAuth changes are written in the change's transaction.

use async_trait::async_trait;
use octogen_core::Timestamp;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::write_audit;
use super::*;
use crate::error::{StoreError, StoreResult};
use crate::oauth::*;

const CLIENT_COLUMNS: &str =
    "id, kind, name, redirect_uris, auth_method, secret_hash, metadata, created_at, updated_at";
/// Refreshes cost a write each; their use of the client is recorded at most this often.
const CLIENT_USE_RESOLUTION_MILLIS: i64 = 24 * 3600 * 1000;
const GRANT_COLUMNS: &str = "g.id, g.client_id, g.user_id, g.org_id, g.session_id, g.issuer, g.resource, g.scope, \
                             g.created_at, g.revoked_at, g.revoked_reason";

#[async_trait]
impl OAuthStore for SqlStore {
    async fn org_principal(&self, org_id: &str) -> StoreResult<Option<OrgPrincipal>> {
        if let Some(directory) = &self.directory {
            return Ok(directory.org_principal(org_id));
        }
        // One round trip: the organization and every active granted catalog.
        let rows = sqlx::query(
            "SELECT o.id AS org_id, o.name AS org_name, o.slug AS org_slug, o.org_type, o.suspended, \
                    o.rate_limit_per_minute, o.api_version, \
                    c.id AS catalog_id, c.catalog_key, c.display_name, c.source_base_url, \
                    c.product_count, c.last_indexed_at \
             FROM organizations o \
             LEFT JOIN grants g ON g.org_id = o.id \
             LEFT JOIN catalogs c ON c.id = g.catalog_id AND c.is_active = 1 \
             WHERE o.id = $1 \
             ORDER BY c.catalog_key",
        )
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?;
        let Some(first) = rows.first() else { return Ok(None) };
        Ok(Some(OrgPrincipal { org: org_access_of(first)?, catalogs: granted_catalogs_of(&rows)? }))
    }

    async fn create_oauth_client(&self, client: NewOAuthClient, audit: AuditEvent) -> StoreResult<OAuthClient> {
        let id = client.id.clone();
        let _writer = self.oauth_writer().await;
        let mut tx = self.begin_write().await?;
        insert_client(&insert_client_sql(""), &client)
            .execute(&mut *tx)
            .await
            .map_err(|error| conflict_on_unique(error, format!("an OAuth client with id {id} already exists")))?;
        write_audit(&mut tx, std::slice::from_ref(&audit)).await?;
        tx.commit().await?;
        self.get_oauth_client(&id).await?.ok_or_else(|| StoreError::Corrupt("an inserted OAuth client is gone".into()))
    }

    async fn put_oauth_client(&self, client: NewOAuthClient) -> StoreResult<OAuthClient> {
        let id = client.id.clone();
        let sql = insert_client_sql(
            " ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, name = excluded.name, \
               redirect_uris = excluded.redirect_uris, auth_method = excluded.auth_method, \
               secret_hash = excluded.secret_hash, metadata = excluded.metadata, updated_at = excluded.updated_at",
        );
        insert_client(&sql, &client).execute(&self.pool).await?;
        self.get_oauth_client(&id).await?.ok_or_else(|| StoreError::Corrupt("an upserted OAuth client is gone".into()))
    }

    async fn get_oauth_client(&self, id: &str) -> StoreResult<Option<OAuthClient>> {
        let row = sqlx::query(&format!("SELECT {CLIENT_COLUMNS}, last_used_at FROM oauth_clients WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(client_from_row).transpose()
    }

    async fn answer_oauth_request(&self, id: &str, expires_at: Timestamp) -> StoreResult<bool> {
        // One statement: of two concurrent answers exactly one inserts.
        let result = sqlx::query(
            "INSERT INTO oauth_answered_requests (id, expires_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(expires_at.millis())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn create_oauth_grant(
        &self,
        grant: NewOAuthGrant,
        code: NewAuthorizationCode,
        audit: AuditEvent,
    ) -> StoreResult<OAuthGrant> {
        let _writer = self.oauth_writer().await;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO oauth_grants (id, client_id, user_id, org_id, session_id, issuer, resource, scope, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&grant.id)
        .bind(&grant.client_id)
        .bind(&grant.user_id)
        .bind(&grant.org_id)
        .bind(&grant.session_id)
        .bind(&grant.issuer)
        .bind(&grant.resource)
        .bind(&grant.scope)
        .bind(grant.created_at.millis())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO oauth_codes (code_hash, grant_id, redirect_uri, code_challenge, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&code.code_hash)
        .bind(&grant.id)
        .bind(&code.redirect_uri)
        .bind(&code.code_challenge)
        .bind(code.created_at.millis())
        .bind(code.expires_at.millis())
        .execute(&mut *tx)
        .await?;
        mark_client_used(&mut tx, &grant.client_id, grant.created_at, 0).await?;
        write_audit(&mut tx, std::slice::from_ref(&audit)).await?;
        tx.commit().await?;
        Ok(OAuthGrant {
            id: grant.id,
            client_id: grant.client_id,
            user_id: grant.user_id,
            org_id: grant.org_id,
            session_id: grant.session_id,
            issuer: grant.issuer,
            resource: grant.resource,
            scope: grant.scope,
            created_at: grant.created_at,
            revoked_at: None,
            revoked_reason: None,
        })
    }

    async fn redeem_authorization_code(&self, code_hash: &str, now: Timestamp) -> StoreResult<CodeRedemption> {
        let redeemed = sqlx::query(
            "UPDATE oauth_codes SET used_at = $2 WHERE code_hash = $1 AND used_at IS NULL \
             RETURNING grant_id, redirect_uri, code_challenge, expires_at",
        )
        .bind(code_hash)
        .bind(now.millis())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = redeemed else {
            let used = sqlx::query("SELECT grant_id FROM oauth_codes WHERE code_hash = $1")
                .bind(code_hash)
                .fetch_optional(&self.pool)
                .await?;
            return Ok(match used {
                Some(row) => CodeRedemption::Replayed { grant_id: row.try_get("grant_id")? },
                None => CodeRedemption::Unknown,
            });
        };
        let grant_id: String = row.try_get("grant_id")?;
        let Some(grant) = self.get_oauth_grant(&grant_id).await? else { return Ok(CodeRedemption::Unknown) };
        Ok(CodeRedemption::Redeemed(Box::new(RedeemedCode {
            grant,
            redirect_uri: row.try_get("redirect_uri")?,
            code_challenge: row.try_get("code_challenge")?,
            expires_at: Timestamp::from_millis(row.try_get("expires_at")?),
        })))
    }

    async fn issue_oauth_tokens(
        &self,
        grant_id: &str,
        tokens: Vec<NewOAuthToken>,
        audit: AuditEvent,
    ) -> StoreResult<()> {
        let _writer = self.oauth_writer().await;
        let mut tx = self.begin_write().await?;
        insert_tokens(&mut tx, grant_id, &tokens).await?;
        if let Some(issued_at) = tokens.iter().map(|token| token.created_at).max() {
            mark_grant_client_used(&mut tx, grant_id, issued_at, 0).await?;
        }
        write_audit(&mut tx, std::slice::from_ref(&audit)).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn find_oauth_token(&self, token_hash: &str, kind: TokenKind) -> StoreResult<Option<TokenGrant>> {
        // A live grant only: not revoked, its session still exists, and the user has been a
        // member of the organization since before the grant (leaving and re-joining does not
        // bring old tokens back).
        let row = sqlx::query(&format!(
            "SELECT {GRANT_COLUMNS}, t.expires_at AS token_expires_at, t.used_at AS token_used_at, \
                    s.expires_at AS session_expires_at, s.last_seen_at AS session_last_seen_at \
             FROM oauth_tokens t \
             JOIN oauth_grants g ON g.id = t.grant_id \
             JOIN sessions s ON s.id = g.session_id \
             JOIN memberships m ON m.user_id = g.user_id AND m.org_id = g.org_id \
             WHERE t.token_hash = $1 AND t.kind = $2 AND g.revoked_at IS NULL AND m.created_at <= g.created_at"
        ))
        .bind(token_hash)
        .bind(kind.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(TokenGrant {
                grant: grant_from_row(&row)?,
                kind,
                expires_at: Timestamp::from_millis(row.try_get("token_expires_at")?),
                used_at: row.try_get::<Option<i64>, _>("token_used_at")?.map(Timestamp::from_millis),
                session_expires_at: Timestamp::from_millis(row.try_get("session_expires_at")?),
                session_last_seen_at: Timestamp::from_millis(row.try_get("session_last_seen_at")?),
            })
        })
        .transpose()
    }

    async fn rotate_refresh_token(
        &self,
        token_hash: &str,
        now: Timestamp,
        successors: Vec<NewOAuthToken>,
    ) -> StoreResult<RefreshRotation> {
        let _writer = self.oauth_writer().await;
        let mut tx = self.begin_write().await?;
        let spent = sqlx::query(
            "UPDATE oauth_tokens SET used_at = $2 WHERE token_hash = $1 AND kind = 'refresh' AND used_at IS NULL \
             RETURNING grant_id",
        )
        .bind(token_hash)
        .bind(now.millis())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(spent) = spent else {
            let existing = sqlx::query("SELECT grant_id FROM oauth_tokens WHERE token_hash = $1 AND kind = 'refresh'")
                .bind(token_hash)
                .fetch_optional(&mut *tx)
                .await?;
            tx.rollback().await?;
            return Ok(match existing {
                Some(row) => RefreshRotation::Replayed { grant_id: row.try_get("grant_id")? },
                None => RefreshRotation::Unknown,
            });
        };
        let grant_id: String = spent.try_get("grant_id")?;
        insert_tokens(&mut tx, &grant_id, &successors).await?;
        mark_grant_client_used(&mut tx, &grant_id, now, CLIENT_USE_RESOLUTION_MILLIS).await?;
        tx.commit().await?;
        Ok(RefreshRotation::Rotated)
    }

    async fn revoke_oauth_grant(
        &self,
        grant_id: &str,
        now: Timestamp,
        reason: &str,
        audit: AuditEvent,
    ) -> StoreResult<bool> {
        let _writer = self.oauth_writer().await;
        let mut tx = self.begin_write().await?;
        let result = sqlx::query(
            "UPDATE oauth_grants SET revoked_at = $2, revoked_reason = $3 WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(grant_id)
        .bind(now.millis())
        .bind(reason)
        .execute(&mut *tx)
        .await?;
        let revoked = result.rows_affected() == 1;
        if revoked {
            write_audit(&mut tx, std::slice::from_ref(&audit)).await?;
        }
        tx.commit().await?;
        Ok(revoked)
    }

    async fn get_oauth_grant(&self, grant_id: &str) -> StoreResult<Option<OAuthGrant>> {
        let row = sqlx::query(&format!("SELECT {GRANT_COLUMNS} FROM oauth_grants g WHERE g.id = $1"))
            .bind(grant_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(grant_from_row).transpose()
    }

    async fn prune_oauth(&self, now: Timestamp, clients_unused_since: Timestamp) -> StoreResult<u64> {
        let _writer = self.oauth_writer().await;
        // Clients first: their grants, codes and tokens go with them (ON DELETE CASCADE).
        let mut pruned = sqlx::query("DELETE FROM oauth_clients WHERE COALESCE(last_used_at, created_at) <= $1")
            .bind(clients_unused_since.millis())
            .execute(&self.pool)
            .await?
            .rows_affected();
        for sql in [
            "DELETE FROM oauth_answered_requests WHERE expires_at <= $1",
            "DELETE FROM oauth_codes WHERE expires_at <= $1",
            "DELETE FROM oauth_tokens WHERE expires_at <= $1",
            // Revoked grants (their tokens go with them: a replay of one is then simply unknown).
            "DELETE FROM oauth_grants WHERE revoked_at IS NOT NULL AND revoked_at <= $1",
            // Grants with nothing left: a code never exchanged, or every token expired.
            "DELETE FROM oauth_grants WHERE created_at <= $1 \
               AND NOT EXISTS (SELECT 1 FROM oauth_tokens t WHERE t.grant_id = oauth_grants.id) \
               AND NOT EXISTS (SELECT 1 FROM oauth_codes c WHERE c.grant_id = oauth_grants.id)",
        ] {
            pruned += sqlx::query(sql).bind(now.millis()).execute(&self.pool).await?.rows_affected();
        }
        Ok(pruned)
    }
}

impl SqlStore {
    /// SQLite has one writer: multi-statement OAuth transactions queue behind the
    /// store's write lock rather than racing for the database lock.
    async fn oauth_writer(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite => Some(self.write_lock.lock().await),
            Backend::Postgres => None,
        }
    }
}

/// `INSERT INTO oauth_clients …`, followed by `conflict` (empty, or an `ON CONFLICT` clause).
fn insert_client_sql(conflict: &str) -> String {
    format!("INSERT INTO oauth_clients ({CLIENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8){conflict}")
}

/// `sql` (from `insert_client_sql`) with the client's values bound.
fn insert_client<'q>(
    sql: &'q str,
    client: &NewOAuthClient,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    sqlx::query(sql)
        .bind(client.id.clone())
        .bind(client.kind.as_str())
        .bind(client.name.clone())
        .bind(serde_json::to_string(&client.redirect_uris).unwrap_or_default())
        .bind(client.auth_method.as_str())
        .bind(client.secret_hash.clone())
        .bind(client.metadata.to_string())
        .bind(client.now.millis())
}

/// Records use of a client at `at`, unless it was recorded less than `resolution_millis` before.
async fn mark_client_used(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    client_id: &str,
    at: Timestamp,
    resolution_millis: i64,
) -> StoreResult<()> {
    sqlx::query("UPDATE oauth_clients SET last_used_at = $2 WHERE id = $1 AND COALESCE(last_used_at, 0) <= $3")
        .bind(client_id)
        .bind(at.millis())
        .bind(at.millis() - resolution_millis)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// `mark_client_used` for the client of a grant.
async fn mark_grant_client_used(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    grant_id: &str,
    at: Timestamp,
    resolution_millis: i64,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE oauth_clients SET last_used_at = $2 \
         WHERE id = (SELECT client_id FROM oauth_grants WHERE id = $1) AND COALESCE(last_used_at, 0) <= $3",
    )
    .bind(grant_id)
    .bind(at.millis())
    .bind(at.millis() - resolution_millis)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_tokens(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    grant_id: &str,
    tokens: &[NewOAuthToken],
) -> StoreResult<()> {
    for token in tokens {
        sqlx::query(
            "INSERT INTO oauth_tokens (token_hash, grant_id, kind, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&token.token_hash)
        .bind(grant_id)
        .bind(token.kind.as_str())
        .bind(token.created_at.millis())
        .bind(token.expires_at.millis())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

fn client_from_row(row: &AnyRow) -> StoreResult<OAuthClient> {
    let kind = match row.try_get::<String, _>("kind")?.as_str() {
        "registered" => ClientKind::Registered,
        "metadata_document" => ClientKind::MetadataDocument,
        other => return Err(StoreError::Corrupt(format!("OAuth client kind {other:?}"))),
    };
    let auth_method: String = row.try_get("auth_method")?;
    let redirect_uris: String = row.try_get("redirect_uris")?;
    let metadata: String = row.try_get("metadata")?;
    Ok(OAuthClient {
        id: row.try_get("id")?,
        kind,
        name: row.try_get("name")?,
        redirect_uris: serde_json::from_str(&redirect_uris)
            .map_err(|_| StoreError::Corrupt("OAuth client redirect URIs".into()))?,
        auth_method: ClientAuthMethod::parse(&auth_method)
            .ok_or_else(|| StoreError::Corrupt(format!("OAuth client auth method {auth_method:?}")))?,
        secret_hash: row.try_get("secret_hash")?,
        metadata: serde_json::from_str(&metadata).map_err(|_| StoreError::Corrupt("OAuth client metadata".into()))?,
        created_at: Timestamp::from_millis(row.try_get("created_at")?),
        updated_at: Timestamp::from_millis(row.try_get("updated_at")?),
        last_used_at: row.try_get::<Option<i64>, _>("last_used_at")?.map(Timestamp::from_millis),
    })
}

fn grant_from_row(row: &AnyRow) -> StoreResult<OAuthGrant> {
    Ok(OAuthGrant {
        id: row.try_get("id")?,
        client_id: row.try_get("client_id")?,
        user_id: row.try_get("user_id")?,
        org_id: row.try_get("org_id")?,
        session_id: row.try_get("session_id")?,
        issuer: row.try_get("issuer")?,
        resource: row.try_get("resource")?,
        scope: row.try_get("scope")?,
        created_at: Timestamp::from_millis(row.try_get("created_at")?),
        revoked_at: row.try_get::<Option<i64>, _>("revoked_at")?.map(Timestamp::from_millis),
        revoked_reason: row.try_get("revoked_reason")?,
    })
}

//! Users, memberships, sessions, password resets and sign-in throttling (the portal).
//!
//! None of this is in the single-node access directory: the portal is not on
//! the API's hot path, and reading the database keeps every node in agreement.

use async_trait::async_trait;
use octogen_core::Timestamp;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::*;
use crate::error::{Entity, StoreError, StoreResult};
use crate::model::{AuditEvent, Changed};
use crate::portal::*;
use crate::PortalStore;

const USER_COLUMNS: &str = "u.id, u.email, u.is_operator, u.created_at, u.disabled_at";
const SESSION_COLUMNS: &str = "s.id, s.user_id, s.org_id, s.created_at, s.last_seen_at, s.expires_at, s.client_addr";

#[async_trait]
impl PortalStore for SqlStore {
    async fn create_user(&self, new: NewUser, audit: &[AuditEvent]) -> StoreResult<User> {
        let user = User {
            id: new.id,
            email: new.email,
            is_operator: new.is_operator,
            created_at: Timestamp::now(),
            disabled_at: None,
        };
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO users (id, email, password_hash, is_operator, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&user.id)
        .bind(&user.email)
        .bind(&new.password_hash)
        .bind(i64::from(user.is_operator))
        .bind(user.created_at.millis())
        .execute(&mut *tx)
        .await
        .map_err(|error| conflict_on_unique(error, format!("a user with email {} already exists", user.email)))?;
        write_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(user)
    }

    async fn get_user(&self, id: &str) -> StoreResult<User> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()?.ok_or_else(|| StoreError::NotFound(Entity::User(id.into())))
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        let rows =
            sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users u ORDER BY u.email")).fetch_all(&self.pool).await?;
        rows.iter().map(user_from_row).collect()
    }

    async fn find_user_credentials(&self, email: &str) -> StoreResult<Option<UserCredentials>> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.email = $1"))
            .bind(email)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| Ok(UserCredentials { user: user_from_row(&row)?, password_hash: row.try_get("password_hash")? }))
            .transpose()
    }

    async fn set_user_operator(&self, id: &str, is_operator: bool, audit: &[AuditEvent]) -> StoreResult<Changed<User>> {
        let mut tx = self.begin_write().await?;
        let result = sqlx::query("UPDATE users SET is_operator = $1 WHERE id = $2 AND is_operator <> $1")
            .bind(i64::from(is_operator))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let changed = result.rows_affected() > 0;
        if changed {
            write_audit(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(Changed { record: self.get_user(id).await?, changed })
    }

    async fn set_user_disabled(
        &self,
        id: &str,
        disabled_at: Option<Timestamp>,
        audit: &[AuditEvent],
    ) -> StoreResult<Changed<User>> {
        let mut tx = self.begin_write().await?;
        let result = match disabled_at {
            Some(at) => {
                sqlx::query("UPDATE users SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL")
                    .bind(at.millis())
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
            }
            None => {
                sqlx::query("UPDATE users SET disabled_at = NULL WHERE id = $1 AND disabled_at IS NOT NULL")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
            }
        };
        let changed = result.rows_affected() > 0;
        if disabled_at.is_some() {
            // Even when already disabled: a sign-in that raced the first disable may have left a session.
            delete_sessions_of(&mut tx, id).await?;
        }
        if changed {
            write_audit(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(Changed { record: self.get_user(id).await?, changed })
    }

    async fn create_password_reset(&self, new: NewPasswordReset, audit: &[AuditEvent]) -> StoreResult<()> {
        self.get_user(&new.user_id).await?;
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM password_resets WHERE user_id = $1 OR expires_at <= $2")
            .bind(&new.user_id)
            .bind(new.created_at.millis())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO password_resets (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&new.token_hash)
        .bind(&new.user_id)
        .bind(new.created_at.millis())
        .bind(new.expires_at.millis())
        .execute(&mut *tx)
        .await?;
        write_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn find_password_reset(&self, token_hash: &str, now: Timestamp) -> StoreResult<Option<User>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM password_resets r JOIN users u ON u.id = r.user_id \
             WHERE r.token_hash = $1 AND r.used_at IS NULL AND r.expires_at > $2"
        ))
        .bind(token_hash)
        .bind(now.millis())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn use_password_reset(
        &self,
        token_hash: &str,
        user_id: &str,
        now: Timestamp,
        password_hash: &str,
        audit: &[AuditEvent],
    ) -> StoreResult<Option<User>> {
        let mut tx = self.begin_write().await?;
        // Single use in one statement: of two racing uses, one finds `used_at` set.
        let spent = sqlx::query(
            "UPDATE password_resets SET used_at = $1 \
             WHERE token_hash = $2 AND user_id = $3 AND used_at IS NULL AND expires_at > $1",
        )
        .bind(now.millis())
        .bind(token_hash)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        if spent.rows_affected() == 0 {
            return Ok(None);
        }
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        delete_sessions_of(&mut tx, user_id).await?;
        write_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(Some(self.get_user(user_id).await?))
    }

    async fn put_membership(&self, user_id: &str, org_id: &str, role: Role, audit: &[AuditEvent]) -> StoreResult<bool> {
        self.get_user(user_id).await?;
        self.get_org(org_id).await?;
        // Only a new membership or a different role counts as a change.
        let mut tx = self.begin_write().await?;
        let result = sqlx::query(
            "INSERT INTO memberships (user_id, org_id, role, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id, org_id) DO UPDATE SET role = excluded.role \
             WHERE memberships.role <> excluded.role",
        )
        .bind(user_id)
        .bind(org_id)
        .bind(role.as_str())
        .bind(Timestamp::now().millis())
        .execute(&mut *tx)
        .await?;
        let changed = result.rows_affected() > 0;
        if changed {
            write_audit(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    async fn remove_membership(&self, user_id: &str, org_id: &str, audit: &[AuditEvent]) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let result = sqlx::query("DELETE FROM memberships WHERE user_id = $1 AND org_id = $2")
            .bind(user_id)
            .bind(org_id)
            .execute(&mut *tx)
            .await?;
        let changed = result.rows_affected() > 0;
        if changed {
            write_audit(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    async fn user_memberships(&self, user_id: &str) -> StoreResult<Vec<Membership>> {
        let org_columns = ORG_COLUMNS.split(", ").map(|column| format!("o.{column}")).collect::<Vec<_>>().join(", ");
        let rows = sqlx::query(&format!(
            "SELECT {org_columns}, m.role, m.created_at AS member_since FROM memberships m \
             JOIN organizations o ON o.id = m.org_id WHERE m.user_id = $1 ORDER BY o.name, o.id"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Membership {
                    org: org_from_row(row)?,
                    role: parse_role(row.try_get("role")?)?,
                    created_at: Timestamp::from_millis(row.try_get("member_since")?),
                })
            })
            .collect()
    }

    async fn org_members(&self, org_id: &str) -> StoreResult<Vec<Member>> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, m.role, m.created_at AS member_since FROM memberships m \
             JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 ORDER BY u.email"
        ))
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Member {
                    user: user_from_row(row)?,
                    role: parse_role(row.try_get("role")?)?,
                    created_at: Timestamp::from_millis(row.try_get("member_since")?),
                })
            })
            .collect()
    }

    async fn create_session(&self, new: NewSession) -> StoreResult<Session> {
        let session = Session {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: new.user_id,
            org_id: new.org_id,
            created_at: new.created_at,
            last_seen_at: new.created_at,
            expires_at: new.expires_at,
            client_addr: new.client_addr,
        };
        sqlx::query(
            "INSERT INTO sessions (id, token_hash, user_id, org_id, created_at, last_seen_at, expires_at, client_addr) \
             VALUES ($1, $2, $3, $4, $5, $5, $6, $7)",
        )
        .bind(&session.id)
        .bind(&new.token_hash)
        .bind(&session.user_id)
        .bind(&session.org_id)
        .bind(session.created_at.millis())
        .bind(session.expires_at.millis())
        .bind(&session.client_addr)
        .execute(&self.pool)
        .await?;
        Ok(session)
    }

    async fn find_session(&self, token_hash: &str) -> StoreResult<Option<(Session, User)>> {
        let row = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS}, u.email, u.is_operator, u.created_at AS user_created_at \
             FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND u.disabled_at IS NULL"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let session = session_from_row(&row)?;
        let user = User {
            id: session.user_id.clone(),
            email: row.try_get("email")?,
            is_operator: flag(&row, "is_operator")?,
            created_at: Timestamp::from_millis(row.try_get("user_created_at")?),
            disabled_at: None,
        };
        Ok(Some((session, user)))
    }

    async fn touch_session(&self, id: &str, at: Timestamp) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2 AND last_seen_at < $1")
            .bind(at.millis())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_session_org(&self, id: &str, org_id: Option<&str>) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET org_id = $1 WHERE id = $2").bind(org_id).bind(id).execute(&self.pool).await?;
        Ok(())
    }

    async fn delete_session(&self, id: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE id = $1").bind(id).execute(&self.pool).await?;
        Ok(())
    }

    async fn delete_user_sessions(&self, user_id: &str, audit: &[AuditEvent]) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let ended = delete_sessions_of(&mut tx, user_id).await?;
        write_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(ended)
    }

    async fn prune_sessions(&self, now: Timestamp, idle_before: Timestamp) -> StoreResult<u64> {
        let result = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at < $2")
            .bind(now.millis())
            .bind(idle_before.millis())
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }

    async fn create_flash(&self, new: NewFlash) -> StoreResult<()> {
        // Housekeeping here keeps expired secrets (sealed or not) from lingering past their time.
        sqlx::query("DELETE FROM portal_flash WHERE expires_at <= $1")
            .bind(new.created_at.millis())
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO portal_flash (id, session_id, kind, detail, sealed, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&new.id)
        .bind(&new.session_id)
        .bind(&new.kind)
        .bind(&new.detail)
        .bind(&new.sealed)
        .bind(new.created_at.millis())
        .bind(new.expires_at.millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn take_flash(&self, id: &str, session_id: &str, now: Timestamp) -> StoreResult<Option<Flash>> {
        let row = sqlx::query(
            "SELECT id, session_id, kind, detail, sealed, created_at, expires_at FROM portal_flash \
             WHERE id = $1 AND session_id = $2 AND expires_at > $3",
        )
        .bind(id)
        .bind(session_id)
        .bind(now.millis())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let sealed: Option<String> = row.try_get("sealed")?;
        // Only the request whose UPDATE clears the sealed part may show it.
        let taken = match sealed {
            Some(sealed) => {
                let cleared = sqlx::query("UPDATE portal_flash SET sealed = NULL WHERE id = $1 AND sealed IS NOT NULL")
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                (cleared.rows_affected() == 1).then_some(sealed)
            }
            None => None,
        };
        Ok(Some(Flash {
            id: row.try_get("id")?,
            session_id: row.try_get("session_id")?,
            kind: row.try_get("kind")?,
            detail: row.try_get("detail")?,
            sealed: taken,
            created_at: Timestamp::from_millis(row.try_get("created_at")?),
            expires_at: Timestamp::from_millis(row.try_get("expires_at")?),
        }))
    }

    async fn admit_sign_in(&self, scopes: &[ThrottleScope<'_>], now: Timestamp) -> StoreResult<SignInAdmission> {
        // Locked in key order, so two attempts sharing scopes never wait for each other in a cycle.
        let mut scopes = scopes.to_vec();
        scopes.sort_by(|a, b| a.key.cmp(b.key));
        scopes.dedup_by(|a, b| a.key == b.key);
        let mut tx = self.begin_write().await?;
        let mut admitted = Vec::with_capacity(scopes.len());
        let mut retry_at: Option<Timestamp> = None;
        for scope in &scopes {
            let state = self.locked_throttle_state(&mut tx, scope.key, now).await?;
            let failures = if state.last_attempt_at.plus_millis(scope.policy.forget_after_millis) <= now {
                0
            } else if state.next_attempt_at > now {
                retry_at = retry_at.max(Some(state.next_attempt_at));
                continue;
            } else {
                state.failures
            };
            admitted.push((scope, failures.saturating_add(1)));
        }
        if let Some(retry_at) = retry_at {
            tx.rollback().await?;
            return Ok(SignInAdmission::Throttled { retry_at });
        }
        for (scope, failures) in admitted {
            sqlx::query(
                "UPDATE sign_in_throttle SET failures = $1, last_attempt_at = $2, next_attempt_at = $3 WHERE scope = $4",
            )
            .bind(i64::from(failures))
            .bind(now.millis())
            .bind(now.plus_millis(scope.policy.delay_after(failures)).millis())
            .bind(scope.key)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(SignInAdmission::Admitted)
    }

    async fn sign_in_succeeded(&self, account_scope: &str, address_scope: Option<&str>) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM sign_in_throttle WHERE scope = $1").bind(account_scope).execute(&mut *tx).await?;
        if let Some(address) = address_scope {
            // The wait the remaining failures imposed had passed when this attempt was admitted.
            sqlx::query(
                "UPDATE sign_in_throttle SET failures = failures - 1, next_attempt_at = last_attempt_at \
                 WHERE scope = $1 AND failures > 0",
            )
            .bind(address)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn prune_sign_in_throttle(&self, idle_before: Timestamp) -> StoreResult<u64> {
        let result = sqlx::query("DELETE FROM sign_in_throttle WHERE last_attempt_at < $1")
            .bind(idle_before.millis())
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }
}

/// A throttling scope's row as it stands.
struct ThrottleState {
    failures: u32,
    last_attempt_at: Timestamp,
    next_attempt_at: Timestamp,
}

impl SqlStore {
    /// The scope's row, created if missing, locked until the transaction ends.
    async fn locked_throttle_state(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        scope: &str,
        now: Timestamp,
    ) -> StoreResult<ThrottleState> {
        sqlx::query(
            "INSERT INTO sign_in_throttle (scope, failures, last_attempt_at, next_attempt_at) VALUES ($1, 0, $2, $2) \
             ON CONFLICT (scope) DO NOTHING",
        )
        .bind(scope)
        .bind(now.millis())
        .execute(&mut **tx)
        .await?;
        let row = sqlx::query(&format!(
            "SELECT failures, last_attempt_at, next_attempt_at FROM sign_in_throttle WHERE scope = $1{}",
            self.lock_row()
        ))
        .bind(scope)
        .fetch_one(&mut **tx)
        .await?;
        Ok(ThrottleState {
            failures: row.try_get::<i64, _>("failures")?.clamp(0, i64::from(u32::MAX)) as u32,
            last_attempt_at: Timestamp::from_millis(row.try_get("last_attempt_at")?),
            next_attempt_at: Timestamp::from_millis(row.try_get("next_attempt_at")?),
        })
    }
}

/// Deletes a user's sessions (their OAuth grants go with them: ON DELETE CASCADE).
async fn delete_sessions_of(tx: &mut sqlx::Transaction<'static, sqlx::Any>, user_id: &str) -> StoreResult<u64> {
    let result = sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user_id).execute(&mut **tx).await?;
    Ok(result.rows_affected())
}

fn user_from_row(row: &AnyRow) -> StoreResult<User> {
    Ok(User {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        is_operator: flag(row, "is_operator")?,
        created_at: Timestamp::from_millis(row.try_get("created_at")?),
        disabled_at: optional_time(row, "disabled_at")?,
    })
}

fn session_from_row(row: &AnyRow) -> StoreResult<Session> {
    Ok(Session {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        org_id: row.try_get("org_id")?,
        created_at: Timestamp::from_millis(row.try_get("created_at")?),
        last_seen_at: Timestamp::from_millis(row.try_get("last_seen_at")?),
        expires_at: Timestamp::from_millis(row.try_get("expires_at")?),
        client_addr: row.try_get("client_addr")?,
    })
}

fn parse_role(text: String) -> StoreResult<Role> {
    text.parse().map_err(StoreError::Corrupt)
}

//! Users, memberships, sessions and sign-in throttling (the portal).
//!
//! None of this is in the single-node access directory: the portal is not on
//! the API's hot path, and reading the database keeps every node in agreement.

use async_trait::async_trait;
use octogen_core::Timestamp;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::*;
use crate::error::{Entity, StoreError, StoreResult};
use crate::portal::*;
use crate::PortalStore;

const USER_COLUMNS: &str = "u.id, u.email, u.is_operator, u.created_at";
const SESSION_COLUMNS: &str = "s.id, s.user_id, s.org_id, s.created_at, s.last_seen_at, s.expires_at, s.client_addr";

#[async_trait]
impl PortalStore for SqlStore {
    async fn create_user(&self, new: NewUser) -> StoreResult<User> {
        let user = User {
            id: uuid::Uuid::new_v4().to_string(),
            email: new.email,
            is_operator: new.is_operator,
            created_at: Timestamp::now(),
        };
        sqlx::query(
            "INSERT INTO users (id, email, password_hash, is_operator, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&user.id)
        .bind(&user.email)
        .bind(&new.password_hash)
        .bind(i64::from(user.is_operator))
        .bind(user.created_at.millis())
        .execute(&self.pool)
        .await
        .map_err(|error| conflict_on_unique(error, format!("a user with email {} already exists", user.email)))?;
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

    async fn set_user_operator(&self, id: &str, is_operator: bool) -> StoreResult<User> {
        let result = sqlx::query("UPDATE users SET is_operator = $1 WHERE id = $2")
            .bind(i64::from(is_operator))
            .bind(id)
            .execute(&self.pool)
            .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound(Entity::User(id.into())));
        }
        self.get_user(id).await
    }

    async fn put_membership(&self, user_id: &str, org_id: &str, role: Role) -> StoreResult<bool> {
        self.get_user(user_id).await?;
        self.get_org(org_id).await?;
        // Only a new membership or a different role counts as a change.
        let result = sqlx::query(
            "INSERT INTO memberships (user_id, org_id, role, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id, org_id) DO UPDATE SET role = excluded.role \
             WHERE memberships.role <> excluded.role",
        )
        .bind(user_id)
        .bind(org_id)
        .bind(role.as_str())
        .bind(Timestamp::now().millis())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() > 0)
    }

    async fn remove_membership(&self, user_id: &str, org_id: &str) -> StoreResult<bool> {
        let result = sqlx::query("DELETE FROM memberships WHERE user_id = $1 AND org_id = $2")
            .bind(user_id)
            .bind(org_id)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() > 0)
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
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1"
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

    async fn delete_user_sessions(&self, user_id: &str) -> StoreResult<u64> {
        let result = sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user_id).execute(&self.pool).await?;
        Ok(result.rows_affected())
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

    async fn sign_in_failures(&self, scope: &str, window_start: Timestamp) -> StoreResult<u32> {
        let row = sqlx::query("SELECT failures FROM sign_in_failures WHERE scope = $1 AND window_started_at > $2")
            .bind(scope)
            .bind(window_start.millis())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| row.try_get::<i64, _>("failures")).transpose()?.unwrap_or(0).clamp(0, u32::MAX as i64) as u32)
    }

    async fn record_sign_in_failure(&self, scope: &str, now: Timestamp, window_start: Timestamp) -> StoreResult<u32> {
        // One statement, so concurrent failures on several nodes all count.
        let row = sqlx::query(
            "INSERT INTO sign_in_failures (scope, failures, window_started_at) VALUES ($1, 1, $2) \
             ON CONFLICT (scope) DO UPDATE SET \
               failures = CASE WHEN sign_in_failures.window_started_at <= $3 THEN 1 \
                          ELSE sign_in_failures.failures + 1 END, \
               window_started_at = CASE WHEN sign_in_failures.window_started_at <= $3 THEN $2 \
                                   ELSE sign_in_failures.window_started_at END \
             RETURNING failures",
        )
        .bind(scope)
        .bind(now.millis())
        .bind(window_start.millis())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>("failures")?.clamp(0, u32::MAX as i64) as u32)
    }

    async fn clear_sign_in_failures(&self, scope: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM sign_in_failures WHERE scope = $1").bind(scope).execute(&self.pool).await?;
        Ok(())
    }

    async fn prune_sign_in_failures(&self, window_start: Timestamp) -> StoreResult<u64> {
        let result = sqlx::query("DELETE FROM sign_in_failures WHERE window_started_at <= $1")
            .bind(window_start.millis())
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }
}

fn user_from_row(row: &AnyRow) -> StoreResult<User> {
    Ok(User {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        is_operator: flag(row, "is_operator")?,
        created_at: Timestamp::from_millis(row.try_get("created_at")?),
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

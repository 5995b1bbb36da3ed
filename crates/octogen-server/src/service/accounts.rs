//! Containing a compromised account: disabling it, taking away the operator
//! flag, ending its sessions, and one-time links to set a new password. Each
//! change and its audit events are one store transaction.

use axum::http::StatusCode;
use octogen_core::api_key::random_token;
use octogen_core::Timestamp;
use octogen_store::{NewPasswordReset, User};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::password;
use super::users::password_issue;
use super::{Actor, Services};
use crate::error::{ApiError, ApiResult};

/// How long a password reset link works.
pub const PASSWORD_RESET_LIFETIME_MILLIS: i64 = 60 * 60 * 1000;
const PASSWORD_RESET_DOMAIN: &str = "octogen-password-reset";

/// A reset link's token exists only here and in the one answer that shows it.
pub struct IssuedPasswordReset {
    pub token: SecretString,
    pub user: User,
    pub expires_at: Timestamp,
}

impl Services {
    /// Disables a user: they cannot sign in (they get the answer a wrong
    /// password gets), and their sessions end at once, with the OAuth grants
    /// their agents hold. `disabled = false` lets them sign in again.
    pub async fn set_user_disabled(&self, actor: &Actor, user_id: &str, disabled: bool) -> ApiResult<User> {
        let user = self.store.get_user(user_id).await?;
        let action = if disabled { "user.disabled" } else { "user.enabled" };
        let events = self.user_events(actor, &user, action, None).await?;
        let disabled_at = disabled.then(Timestamp::now);
        Ok(self.store.set_user_disabled(user_id, disabled_at, &events).await?.record)
    }

    /// Grants or takes away the operator flag. It is read on every request, so
    /// a removed operator loses the operator area on their next page.
    pub async fn set_user_operator(&self, actor: &Actor, user_id: &str, is_operator: bool) -> ApiResult<User> {
        let user = self.store.get_user(user_id).await?;
        let action = if is_operator { "user.operator_granted" } else { "user.operator_revoked" };
        let event = actor.event(None, action, Some(user_id), Some(json!({"email": user.email})));
        Ok(self.store.set_user_operator(user_id, is_operator, &[event]).await?.record)
    }

    /// Signs the user out everywhere (their agents' OAuth grants end too). Returns how many sessions ended.
    pub async fn revoke_user_sessions(&self, actor: &Actor, user_id: &str) -> ApiResult<u64> {
        let user = self.store.get_user(user_id).await?;
        let events = self.user_events(actor, &user, "user.sessions_revoked", None).await?;
        Ok(self.store.delete_user_sessions(user_id, &events).await?)
    }

    /// A one-time link for the user to set a new password, replacing any
    /// earlier link. The current password keeps working until the link is used.
    pub async fn issue_password_reset(&self, actor: &Actor, user_id: &str) -> ApiResult<IssuedPasswordReset> {
        let user = self.store.get_user(user_id).await?;
        let token = random_token(32);
        let now = Timestamp::now();
        let expires_at = now.plus_millis(PASSWORD_RESET_LIFETIME_MILLIS);
        let extra = json!({"expiresAt": expires_at.to_rfc3339()});
        let events = self.user_events(actor, &user, "user.password_reset_issued", Some(extra)).await?;
        let new = NewPasswordReset {
            token_hash: self.token_hash(PASSWORD_RESET_DOMAIN, token.expose_secret()),
            user_id: user.id.clone(),
            created_at: now,
            expires_at,
        };
        self.store.create_password_reset(new, &events).await?;
        Ok(IssuedPasswordReset { token, user, expires_at })
    }

    /// The user a reset link is for, while it is unused and unexpired.
    pub async fn password_reset_user(&self, token: &str) -> anyhow::Result<Option<User>> {
        let hash = self.token_hash(PASSWORD_RESET_DOMAIN, token);
        Ok(self.store.find_password_reset(&hash, Timestamp::now()).await?)
    }

    /// Sets the password of a reset link's user and spends the link, in one
    /// transaction that also ends the user's sessions; the account's sign-in
    /// throttle starts over. An invalid, used or expired link changes nothing,
    /// and is refused before any hashing.
    pub async fn complete_password_reset(
        &self,
        token: &str,
        password: &SecretString,
        client_addr: Option<String>,
    ) -> ApiResult<User> {
        password::check_policy(password).map_err(password_issue)?;
        let user = self.password_reset_user(token).await?.ok_or_else(link_refused)?;
        let password_hash = password::hash(password).await?;
        let actor = Actor::user(&user.email, client_addr);
        let events = self.user_events(&actor, &user, "user.password_reset", None).await?;
        let hash = self.token_hash(PASSWORD_RESET_DOMAIN, token);
        let now = Timestamp::now();
        let user = self
            .store
            .use_password_reset(&hash, &user.id, now, &password_hash, &events)
            .await?
            .ok_or_else(link_refused)?;
        let scopes = self.throttle_scopes(&user.email, None);
        self.store.sign_in_succeeded(&scopes.account, None).await?;
        Ok(user)
    }
}

/// One answer for every link that cannot be used: unknown, used, expired or replaced.
fn link_refused() -> ApiError {
    ApiError::Message(
        StatusCode::GONE,
        "This password reset link is not valid any more: it was used, replaced or has expired. \
         Ask an operator for a new one."
            .into(),
    )
}

//! The partner portal's records: users, their memberships in organizations,
//! server-side sessions, password reset links and sign-in throttling.
//!
//! Secrets stay out of this module's `Debug` output: a password hash appears
//! only inside `UserCredentials` (redacted), and sessions are found by the
//! HMAC of their cookie token, never by the token itself.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use octogen_core::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::StoreResult;
use crate::model::{AuditEvent, Changed, Org};

/// What a member may do in an organization. Owners and admins manage API
/// keys and see the audit log; members see keys and catalogs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Member,
    Admin,
    Owner,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Owner, Role::Admin, Role::Member];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    /// Whether this role may create, rotate and deactivate keys.
    pub fn manages_keys(self) -> bool {
        self >= Role::Admin
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| format!("unknown role {text:?} (expected owner, admin or member)"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    /// Lowercased; the sign-in name.
    pub email: String,
    pub is_operator: bool,
    pub created_at: Timestamp,
    /// Set while an operator has disabled the account: it cannot sign in.
    pub disabled_at: Option<Timestamp>,
}

impl User {
    pub fn is_disabled(&self) -> bool {
        self.disabled_at.is_some()
    }
}

pub struct NewUser {
    /// Chosen by the caller (`NewUser::new` makes a random one), so that the
    /// audit event written with the user can name it.
    pub id: String,
    /// Lowercased by the caller.
    pub email: String,
    /// An argon2id PHC string.
    pub password_hash: String,
    pub is_operator: bool,
}

impl NewUser {
    /// A user with a fresh random id.
    pub fn new(email: impl Into<String>, password_hash: impl Into<String>, is_operator: bool) -> Self {
        NewUser {
            id: uuid::Uuid::new_v4().to_string(),
            email: email.into(),
            password_hash: password_hash.into(),
            is_operator,
        }
    }
}

/// A user with the hash to verify a sign-in against.
pub struct UserCredentials {
    pub user: User,
    pub password_hash: String,
}

impl fmt::Debug for UserCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserCredentials").field("user", &self.user).field("password_hash", &"[REDACTED]").finish()
    }
}

/// One of a user's organizations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Membership {
    pub org: Org,
    pub role: Role,
    pub created_at: Timestamp,
}

/// One member of an organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    pub user: User,
    pub role: Role,
    pub created_at: Timestamp,
}

pub struct NewSession {
    /// Hex HMAC of the cookie token (the token itself is never stored).
    pub token_hash: String,
    pub user_id: String,
    pub org_id: Option<String>,
    pub created_at: Timestamp,
    /// The absolute end of the session, whatever its activity.
    pub expires_at: Timestamp,
    pub client_addr: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// A public handle for the session (not the cookie token).
    pub id: String,
    pub user_id: String,
    /// The organization the user is looking at.
    pub org_id: Option<String>,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub expires_at: Timestamp,
    pub client_addr: Option<String>,
}

/// A one-time message of a portal session: a new API key to show once on the
/// page a form post redirects to. `sealed` is opaque to the store (the portal
/// encrypts it with a key the store never sees); `detail` is non-secret JSON.
pub struct NewFlash {
    /// Random, unguessable; it appears in the page's URL.
    pub id: String,
    pub session_id: String,
    pub kind: String,
    pub detail: String,
    pub sealed: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A one-time link to set a new password: the store keeps only an HMAC of its token.
pub struct NewPasswordReset {
    pub token_hash: String,
    pub user_id: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A stored one-time message, as `take_flash` hands it out.
pub struct Flash {
    pub id: String,
    pub session_id: String,
    pub kind: String,
    pub detail: String,
    /// The sealed secret, for the one caller that took it; `None` once shown.
    pub sealed: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

impl fmt::Debug for Flash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Flash")
            .field("id", &self.id)
            .field("session_id", &self.session_id)
            .field("kind", &self.kind)
            .field("detail", &self.detail)
            .field("sealed", &self.sealed.as_ref().map(|_| "[REDACTED]"))
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// How sign-in attempts of one scope (an account or a client address) are
/// spaced out. The first `free_failures` failures cost nothing; after that,
/// each failure makes the next attempt wait twice as long as the last one did,
/// from `first_delay_millis` up to `max_delay_millis`. An attacker can slow an
/// account down, never lock it: an attempt after the wait is checked, and a
/// right password then signs in. A scope without attempts for
/// `forget_after_millis` starts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    pub free_failures: u32,
    pub first_delay_millis: i64,
    pub max_delay_millis: i64,
    pub forget_after_millis: i64,
}

impl ThrottlePolicy {
    /// How long the next attempt waits after `failures` failures.
    pub fn delay_after(&self, failures: u32) -> i64 {
        let Some(doublings) = failures.checked_sub(self.free_failures) else { return 0 };
        // 2^62 ms is already far past any cap; beyond it the shift would overflow.
        let factor = 1_i64 << doublings.min(62);
        self.first_delay_millis.saturating_mul(factor).min(self.max_delay_millis)
    }
}

/// One scope an attempt must be admitted by, with its policy.
#[derive(Debug, Clone, Copy)]
pub struct ThrottleScope<'a> {
    pub key: &'a str,
    pub policy: ThrottlePolicy,
}

/// The answer to a sign-in attempt before its password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInAdmission {
    /// Check the password; the attempt already counts as a failure in every scope.
    Admitted,
    /// Too soon: no scope changed; the earliest time every scope admits an attempt again.
    Throttled { retry_at: Timestamp },
}

/// Users, memberships, sessions, password resets and sign-in throttling.
///
/// Changes take the audit events that record them and write them in the same
/// transaction, only when the change happened (`Changed::changed`, or `true`
/// from the methods that return a flag), so the log never shows a change that
/// was rolled back, nor misses one that committed.
#[async_trait]
pub trait PortalStore: Send + Sync + 'static {
    // Users. An email that is taken gives `Conflict`.
    async fn create_user(&self, new: NewUser, audit: &[AuditEvent]) -> StoreResult<User>;
    async fn get_user(&self, id: &str) -> StoreResult<User>;
    /// Sorted by email.
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    /// The user with this (lowercased) email and their password hash, for signing in (disabled or not).
    async fn find_user_credentials(&self, email: &str) -> StoreResult<Option<UserCredentials>>;
    async fn set_user_operator(&self, id: &str, is_operator: bool, audit: &[AuditEvent]) -> StoreResult<Changed<User>>;
    /// Disables (`Some(at)`) or re-enables (`None`) a user. Disabling also
    /// deletes all of the user's sessions, and with them their OAuth grants,
    /// in the same transaction.
    async fn set_user_disabled(
        &self,
        id: &str,
        disabled_at: Option<Timestamp>,
        audit: &[AuditEvent],
    ) -> StoreResult<Changed<User>>;

    // Password reset links.
    /// Stores a reset link, replacing the user's earlier ones (and forgetting expired links of everyone).
    async fn create_password_reset(&self, new: NewPasswordReset, audit: &[AuditEvent]) -> StoreResult<()>;
    /// The user of an unused link that has not expired at `now`.
    async fn find_password_reset(&self, token_hash: &str, now: Timestamp) -> StoreResult<Option<User>>;
    /// In one transaction: spends the link (if it is unused, unexpired and
    /// belongs to `user_id`), sets the password hash, ends the user's sessions
    /// and writes `audit`. `None` when the link could not be spent.
    async fn use_password_reset(
        &self,
        token_hash: &str,
        user_id: &str,
        now: Timestamp,
        password_hash: &str,
        audit: &[AuditEvent],
    ) -> StoreResult<Option<User>>;

    // Memberships.
    /// Adds the user to the organization with `role`, or changes their role. Returns whether anything changed.
    async fn put_membership(&self, user_id: &str, org_id: &str, role: Role, audit: &[AuditEvent]) -> StoreResult<bool>;
    /// Returns whether the user was a member.
    async fn remove_membership(&self, user_id: &str, org_id: &str, audit: &[AuditEvent]) -> StoreResult<bool>;
    /// The user's organizations, sorted by name.
    async fn user_memberships(&self, user_id: &str) -> StoreResult<Vec<Membership>>;
    /// The organization's members, sorted by email.
    async fn org_members(&self, org_id: &str) -> StoreResult<Vec<Member>>;

    // Sessions.
    async fn create_session(&self, new: NewSession) -> StoreResult<Session>;
    /// The session whose cookie token hashes to `token_hash`, with its user
    /// (expired or not: the caller decides). Never a session of a disabled user.
    async fn find_session(&self, token_hash: &str) -> StoreResult<Option<(Session, User)>>;
    async fn touch_session(&self, id: &str, at: Timestamp) -> StoreResult<()>;
    async fn set_session_org(&self, id: &str, org_id: Option<&str>) -> StoreResult<()>;
    async fn delete_session(&self, id: &str) -> StoreResult<()>;
    /// Signs a user out everywhere (their OAuth grants end with the sessions)
    /// and writes `audit`, even when there was no session to end: the request
    /// itself is worth recording. Returns how many sessions ended.
    async fn delete_user_sessions(&self, user_id: &str, audit: &[AuditEvent]) -> StoreResult<u64>;
    /// Deletes sessions past their absolute end (`expires_at <= now`) or idle since before `idle_before`.
    async fn prune_sessions(&self, now: Timestamp, idle_before: Timestamp) -> StoreResult<u64>;

    // One-time messages of a session (migration 0012).
    /// Stores a message, and deletes every message that has expired by `new.created_at`.
    async fn create_flash(&self, new: NewFlash) -> StoreResult<()>;
    /// The session's message `id`, unless it has expired by `now` (another
    /// session's message is `None` too). Its sealed part comes with it once:
    /// the call that returns it clears it, so any other call, concurrent or
    /// later, on any node, gets `sealed: None`.
    async fn take_flash(&self, id: &str, session_id: &str, now: Timestamp) -> StoreResult<Option<Flash>>;

    // Sign-in throttling.
    /// Admits an attempt in every scope or in none, in one locked
    /// read-and-write per attempt, so parallel attempts are counted one by
    /// one: an admitted attempt counts as a failure in each scope and sets
    /// when the next may start; a refused one changes nothing.
    async fn admit_sign_in(&self, scopes: &[ThrottleScope<'_>], now: Timestamp) -> StoreResult<SignInAdmission>;
    /// After a right password: forgets the account scope's failures and takes
    /// back the one the attempt counted in the address scope.
    async fn sign_in_succeeded(&self, account_scope: &str, address_scope: Option<&str>) -> StoreResult<()>;
    /// Forgets scopes without an attempt since `idle_before`.
    async fn prune_sign_in_throttle(&self, idle_before: Timestamp) -> StoreResult<u64>;
}

#[cfg(test)]
mod tests {
    use super::ThrottlePolicy;

    #[test]
    fn delays_double_after_the_free_failures_up_to_the_cap() {
        let policy = ThrottlePolicy {
            free_failures: 5,
            first_delay_millis: 1_000,
            max_delay_millis: 300_000,
            forget_after_millis: 0,
        };
        let delays: Vec<i64> = (0..=14).map(|failures| policy.delay_after(failures)).collect();
        let seconds = [0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 300].map(|s| s * 1_000);
        assert_eq!(delays, seconds);
        assert_eq!(policy.delay_after(u32::MAX), 300_000, "no overflow");
    }
}

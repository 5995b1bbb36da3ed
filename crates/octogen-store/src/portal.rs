//! The partner portal's records: users, their memberships in organizations,
//! server-side sessions and sign-in throttling counters.
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
use crate::model::Org;

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
}

pub struct NewUser {
    /// Lowercased by the caller.
    pub email: String,
    /// An argon2id PHC string.
    pub password_hash: String,
    pub is_operator: bool,
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

/// Users, memberships, sessions and sign-in throttling.
#[async_trait]
pub trait PortalStore: Send + Sync + 'static {
    // Users. An email that is taken gives `Conflict`.
    async fn create_user(&self, new: NewUser) -> StoreResult<User>;
    async fn get_user(&self, id: &str) -> StoreResult<User>;
    /// Sorted by email.
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    /// The user with this (lowercased) email and their password hash, for signing in.
    async fn find_user_credentials(&self, email: &str) -> StoreResult<Option<UserCredentials>>;
    async fn set_user_operator(&self, id: &str, is_operator: bool) -> StoreResult<User>;

    // Memberships.
    /// Adds the user to the organization with `role`, or changes their role. Returns whether anything changed.
    async fn put_membership(&self, user_id: &str, org_id: &str, role: Role) -> StoreResult<bool>;
    /// Returns whether the user was a member.
    async fn remove_membership(&self, user_id: &str, org_id: &str) -> StoreResult<bool>;
    /// The user's organizations, sorted by name.
    async fn user_memberships(&self, user_id: &str) -> StoreResult<Vec<Membership>>;
    /// The organization's members, sorted by email.
    async fn org_members(&self, org_id: &str) -> StoreResult<Vec<Member>>;

    // Sessions.
    async fn create_session(&self, new: NewSession) -> StoreResult<Session>;
    /// The session whose cookie token hashes to `token_hash`, with its user (expired or not: the caller decides).
    async fn find_session(&self, token_hash: &str) -> StoreResult<Option<(Session, User)>>;
    async fn touch_session(&self, id: &str, at: Timestamp) -> StoreResult<()>;
    async fn set_session_org(&self, id: &str, org_id: Option<&str>) -> StoreResult<()>;
    async fn delete_session(&self, id: &str) -> StoreResult<()>;
    /// Signs a user out everywhere. Returns how many sessions ended.
    async fn delete_user_sessions(&self, user_id: &str) -> StoreResult<u64>;
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

    // Sign-in throttling, per scope (an account or a client address).
    /// Failures counted in the scope's window if it started after `window_start`, else 0.
    async fn sign_in_failures(&self, scope: &str, window_start: Timestamp) -> StoreResult<u32>;
    /// Counts one failure at `now`; a window that started at or before `window_start` restarts at `now`.
    /// Returns the failures in the (possibly new) window, this one included.
    async fn record_sign_in_failure(&self, scope: &str, now: Timestamp, window_start: Timestamp) -> StoreResult<u32>;
    async fn clear_sign_in_failures(&self, scope: &str) -> StoreResult<()>;
    /// Forgets windows that started at or before `window_start`.
    async fn prune_sign_in_failures(&self, window_start: Timestamp) -> StoreResult<u64>;
}

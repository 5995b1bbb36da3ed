//! Signing in and out of the portal: throttled password checks and
//! server-side sessions of which the store keeps only an HMAC of the token.

use std::net::IpAddr;

use octogen_core::api_key::random_token;
use octogen_core::Timestamp;
use octogen_store::{NewSession, Session, User};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::password::{self, PasswordProblem};
use super::users::normalize_email;
use super::{Actor, Services};

/// A session ends after this long without a request…
pub const SESSION_IDLE_MILLIS: i64 = 30 * 60 * 1000;
/// …and this long after sign-in, whatever its activity.
pub const SESSION_LIFETIME_MILLIS: i64 = 12 * 60 * 60 * 1000;
/// `last_seen_at` is written at most this often (idle precision vs. one write per page view).
const TOUCH_EVERY_MILLIS: i64 = 60 * 1000;

/// Failed sign-ins are counted in windows of this length…
pub const THROTTLE_WINDOW_MILLIS: i64 = 15 * 60 * 1000;
/// …and sign-in is refused, without checking the password, once an account…
pub const ACCOUNT_FAILURE_LIMIT: u32 = 5;
/// …or a client address has failed this often in the window.
pub const ADDRESS_FAILURE_LIMIT: u32 = 20;

const SESSION_DOMAIN: &str = "octogen-portal-session";
const THROTTLE_DOMAIN: &str = "octogen-sign-in-throttle";

/// A successful sign-in: the cookie token exists only here and in the response that sets it.
pub struct SignedIn {
    pub token: SecretString,
    pub session: Session,
    pub user: User,
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Wrong password, unknown email, or an impossible password: one answer for all.
    #[error("invalid email or password")]
    Invalid,
    #[error("too many failed sign-ins")]
    Throttled,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<octogen_store::StoreError> for SignInError {
    fn from(error: octogen_store::StoreError) -> Self {
        SignInError::Internal(error.into())
    }
}

impl Services {
    /// Checks a sign-in and opens a new session (a fresh token every time, so a
    /// token planted before sign-in is never promoted).
    pub async fn sign_in(
        &self,
        email: &str,
        password: &SecretString,
        client: Option<IpAddr>,
    ) -> Result<SignedIn, SignInError> {
        let now = Timestamp::now();
        let email = normalize_email(email).unwrap_or_else(|_| email.trim().to_lowercase());
        let scopes = self.throttle_scopes(&email, client);
        if self.is_throttled(&scopes, now).await? {
            tracing::warn!(client = ?client, "sign-in refused: too many failures");
            return Err(SignInError::Throttled);
        }
        let credentials = self.store.find_user_credentials(&email).await?;
        // An over-long password can match nothing, so it is refused before any hashing.
        let verified = match password::check_policy(password) {
            Err(PasswordProblem::TooLong) => false,
            _ => password::verify(credentials.as_ref().map(|c| c.password_hash.clone()), password).await?,
        };
        let actor = Actor { label: format!("user:{email}"), client_addr: client.map(|ip| ip.to_string()) };
        let user = match (credentials.map(|credentials| credentials.user), verified) {
            (Some(user), true) => user,
            (known, _) => {
                self.record_failure(&scopes, now).await?;
                if let Some(user) = known {
                    self.audit_user_event(&actor, &user, "user.sign_in_failed").await?;
                }
                return Err(SignInError::Invalid);
            }
        };
        self.store.clear_sign_in_failures(&scopes.account).await?;
        let signed_in = self.open_session(&user, client, now).await?;
        self.audit_user_event(&actor, &user, "user.signed_in").await?;
        Ok(signed_in)
    }

    /// The live session for a cookie token, if any. Expired sessions are deleted on sight.
    pub async fn session(&self, token: &str) -> anyhow::Result<Option<(Session, User)>> {
        let Some((session, user)) = self.store.find_session(&self.session_hash(token)).await? else {
            return Ok(None);
        };
        let now = Timestamp::now();
        if session.expires_at <= now || session.last_seen_at.plus_millis(SESSION_IDLE_MILLIS) <= now {
            self.store.delete_session(&session.id).await?;
            return Ok(None);
        }
        if session.last_seen_at.plus_millis(TOUCH_EVERY_MILLIS) <= now {
            self.store.touch_session(&session.id, now).await?;
        }
        Ok(Some((session, user)))
    }

    /// Ends the session on the server: its cookie token stops working everywhere.
    pub async fn sign_out(&self, actor: &Actor, session: &Session, user: &User) -> anyhow::Result<()> {
        self.store.delete_session(&session.id).await?;
        self.audit_user_event(actor, user, "user.signed_out").await?;
        Ok(())
    }

    async fn open_session(&self, user: &User, client: Option<IpAddr>, now: Timestamp) -> anyhow::Result<SignedIn> {
        // Housekeeping on the (rare) sign-in path keeps the tables small without a background task.
        self.store.prune_sessions(now, now.plus_millis(-SESSION_IDLE_MILLIS)).await?;
        self.store.prune_sign_in_failures(now.plus_millis(-THROTTLE_WINDOW_MILLIS)).await?;
        let first_org = self.store.user_memberships(&user.id).await?.into_iter().next().map(|m| m.org.id);
        let token = random_token(32);
        let session = self
            .store
            .create_session(NewSession {
                token_hash: self.session_hash(token.expose_secret()),
                user_id: user.id.clone(),
                org_id: first_org,
                created_at: now,
                expires_at: now.plus_millis(SESSION_LIFETIME_MILLIS),
                client_addr: client.map(|ip| ip.to_string()),
            })
            .await?;
        Ok(SignedIn { token, session, user: user.clone() })
    }

    fn session_hash(&self, token: &str) -> String {
        hex(&self.secrets.pepper.hash_token(SESSION_DOMAIN, token.as_bytes()))
    }

    /// Throttling keys. The account's is an HMAC of the email, so the table
    /// never holds the addresses people mistyped (or typed passwords into).
    fn throttle_scopes(&self, email: &str, client: Option<IpAddr>) -> ThrottleScopes {
        ThrottleScopes {
            account: format!("account:{}", hex(&self.secrets.pepper.hash_token(THROTTLE_DOMAIN, email.as_bytes()))),
            address: client.map(|ip| format!("address:{ip}")),
        }
    }

    async fn is_throttled(&self, scopes: &ThrottleScopes, now: Timestamp) -> anyhow::Result<bool> {
        let window_start = now.plus_millis(-THROTTLE_WINDOW_MILLIS);
        if self.store.sign_in_failures(&scopes.account, window_start).await? >= ACCOUNT_FAILURE_LIMIT {
            return Ok(true);
        }
        match &scopes.address {
            Some(address) => Ok(self.store.sign_in_failures(address, window_start).await? >= ADDRESS_FAILURE_LIMIT),
            None => Ok(false),
        }
    }

    async fn record_failure(&self, scopes: &ThrottleScopes, now: Timestamp) -> anyhow::Result<()> {
        let window_start = now.plus_millis(-THROTTLE_WINDOW_MILLIS);
        self.store.record_sign_in_failure(&scopes.account, now, window_start).await?;
        if let Some(address) = &scopes.address {
            self.store.record_sign_in_failure(address, now, window_start).await?;
        }
        Ok(())
    }

    /// A sign-in event belongs to every organization of the user (their admins
    /// see it); an operator without organizations gets a server-wide event.
    async fn audit_user_event(&self, actor: &Actor, user: &User, action: &str) -> anyhow::Result<()> {
        let memberships = self.store.user_memberships(&user.id).await?;
        let detail = Some(json!({"email": user.email}));
        if memberships.is_empty() {
            self.audit(actor, None, action, Some(&user.id), detail.clone()).await?;
        }
        for membership in memberships {
            self.audit(actor, Some(&membership.org.id), action, Some(&user.id), detail.clone()).await?;
        }
        Ok(())
    }
}

struct ThrottleScopes {
    account: String,
    address: Option<String>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

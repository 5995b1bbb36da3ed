//! Signing in and out of the portal: throttled password checks and
//! server-side sessions of which the store keeps only an HMAC of the token.

use std::net::IpAddr;

use octogen_core::api_key::random_token;
use octogen_core::Timestamp;
use octogen_store::{NewSession, Session, SignInAdmission, ThrottlePolicy, ThrottleScope, User, UserCredentials};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::password::{self, PasswordProblem};
use super::users::normalize_email;
use super::{Actor, Services};
use crate::net::address_bucket;

/// A session ends after this long without a request…
pub const SESSION_IDLE_MILLIS: i64 = 30 * 60 * 1000;
/// …and this long after sign-in, whatever its activity.
pub const SESSION_LIFETIME_MILLIS: i64 = 12 * 60 * 60 * 1000;
/// `last_seen_at` is written at most this often (idle precision vs. one write per page view).
const TOUCH_EVERY_MILLIS: i64 = 60 * 1000;

/// Failed sign-ins of one account (whatever the address): 5 free, then the
/// next attempt waits 1 s, 2 s, 4 s … up to 5 minutes. The cap keeps an
/// attacker from locking the owner out for long; the doubling keeps guessing
/// to about one password every 5 minutes.
pub const ACCOUNT_THROTTLE: ThrottlePolicy = ThrottlePolicy {
    free_failures: 5,
    first_delay_millis: 1_000,
    max_delay_millis: 5 * 60 * 1000,
    forget_after_millis: THROTTLE_MEMORY_MILLIS,
};
/// Failed sign-ins from one client address (an IPv6 /64), whatever the
/// account: 20 free (several people behind one address mistype too), then
/// 1 s, 2 s … up to 15 minutes, against one client guessing many accounts.
pub const ADDRESS_THROTTLE: ThrottlePolicy = ThrottlePolicy {
    free_failures: 20,
    first_delay_millis: 1_000,
    max_delay_millis: 15 * 60 * 1000,
    forget_after_millis: THROTTLE_MEMORY_MILLIS,
};
/// A scope without an attempt for this long starts over (longer than any wait).
const THROTTLE_MEMORY_MILLIS: i64 = 60 * 60 * 1000;

const SESSION_DOMAIN: &str = "octogen-portal-session";
const THROTTLE_DOMAIN: &str = "octogen-sign-in-throttle";
/// Keys the audit log's fingerprint of an unknown email (see `unknown_email_detail`).
const AUDIT_EMAIL_DOMAIN: &str = "octogen-audit-email";

/// A successful sign-in: the cookie token exists only here and in the response that sets it.
pub struct SignedIn {
    pub token: SecretString,
    pub session: Session,
    pub user: User,
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Wrong password, unknown email, a disabled account or an impossible password: one answer for all.
    #[error("invalid email or password")]
    Invalid,
    /// Too many failures lately: this attempt was not checked. Try again after this many seconds.
    #[error("too many failed sign-ins")]
    Throttled { retry_after_secs: u64 },
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
    ///
    /// The attempt is admitted by the account's and the address's throttles
    /// before the password is checked, in one locked store operation, so
    /// however many attempts run at once, only the admitted ones cost a hash.
    pub async fn sign_in(
        &self,
        email: &str,
        password: &SecretString,
        client: Option<IpAddr>,
    ) -> Result<SignedIn, SignInError> {
        let now = Timestamp::now();
        let email = normalize_email(email).unwrap_or_else(|_| email.trim().to_lowercase());
        let scopes = self.throttle_scopes(&email, client);
        if let SignInAdmission::Throttled { retry_at } = self.store.admit_sign_in(&scopes.list(), now).await? {
            tracing::warn!(client = ?client, "sign-in refused: too many failures");
            let retry_after_secs = ((retry_at.millis() - now.millis()).max(1) as u64).div_ceil(1000);
            return Err(SignInError::Throttled { retry_after_secs });
        }
        let credentials = self.store.find_user_credentials(&email).await?;
        // An over-long password can match nothing, so it is refused before any hashing.
        let verified = match password::check_policy(password) {
            Err(PasswordProblem::TooLong) => false,
            _ => password::verify(credentials.as_ref().map(|c| c.password_hash.clone()), password).await?,
        };
        let client_addr = client.map(|ip| ip.to_string());
        let user = match credentials {
            Some(UserCredentials { user, .. }) if verified && !user.is_disabled() => user,
            other => {
                let known = other.map(|credentials| credentials.user);
                self.audit_failed_sign_in(&email, known, verified, client_addr).await?;
                return Err(SignInError::Invalid);
            }
        };
        self.store.sign_in_succeeded(&scopes.account, scopes.address.as_deref()).await?;
        let signed_in = self.open_session(&user, client, now).await?;
        let actor = Actor::user(&user.email, client_addr);
        self.audit_user_event(&actor, &user, "user.signed_in", None).await?;
        Ok(signed_in)
    }

    /// A failure of a known user goes to their organizations' logs; one of an
    /// unknown email is server-wide and keeps no part of the typed text but
    /// its domain (`unknown_email_detail`).
    async fn audit_failed_sign_in(
        &self,
        email: &str,
        known: Option<User>,
        verified: bool,
        client_addr: Option<String>,
    ) -> anyhow::Result<()> {
        let Some(user) = known else {
            let detail = self.unknown_email_detail(email);
            return self.audit(&Actor::anonymous(client_addr), None, "user.sign_in_failed", None, Some(detail)).await;
        };
        // A right password for a disabled account is worth knowing: someone still has it.
        let reason = if verified { "disabled" } else { "wrong_password" };
        let actor = Actor::user(&user.email, client_addr);
        self.audit_user_event(&actor, &user, "user.sign_in_failed", Some(json!({"reason": reason}))).await
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
        self.audit_user_event(actor, user, "user.signed_out", None).await?;
        Ok(())
    }

    async fn open_session(&self, user: &User, client: Option<IpAddr>, now: Timestamp) -> anyhow::Result<SignedIn> {
        // Housekeeping on the (rare) sign-in path keeps the tables small without a background task.
        self.store.prune_sessions(now, now.plus_millis(-SESSION_IDLE_MILLIS)).await?;
        self.store.prune_sign_in_throttle(now.plus_millis(-THROTTLE_MEMORY_MILLIS)).await?;
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
        self.token_hash(SESSION_DOMAIN, token)
    }

    /// Throttling keys. The account's is an HMAC of the email, so the table
    /// never holds the addresses people mistyped (or typed passwords into);
    /// the address's is its bucket (an IPv6 client counts by its /64).
    pub(super) fn throttle_scopes(&self, email: &str, client: Option<IpAddr>) -> ThrottleScopes {
        ThrottleScopes {
            account: format!("account:{}", self.token_hash(THROTTLE_DOMAIN, email)),
            address: client.map(|ip| format!("address:{}", address_bucket(Some(ip)))),
        }
    }

    /// What the audit log keeps of an email that matches no user: never the
    /// text itself (it may be a mistyped address of someone else, or a
    /// password typed into the wrong field), but its domain when it looks like
    /// an email address, and a keyed fingerprint (`HMAC(pepper, email)`, 64
    /// bits) that shows repeated attempts at the same name.
    fn unknown_email_detail(&self, email: &str) -> serde_json::Value {
        let fingerprint = &self.token_hash(AUDIT_EMAIL_DOMAIN, email)[..16];
        let domain = normalize_email(email).ok().and_then(|valid| valid.split_once('@').map(|(_, d)| d.to_string()));
        json!({"reason": "unknown_email", "emailDomain": domain, "emailFingerprint": fingerprint})
    }

    /// A sign-in event belongs to every organization of the user (their admins
    /// see it); an operator without organizations gets a server-wide event.
    async fn audit_user_event(
        &self,
        actor: &Actor,
        user: &User,
        action: &str,
        extra: Option<serde_json::Value>,
    ) -> anyhow::Result<()> {
        for event in self.user_events(actor, user, action, extra).await? {
            self.store.append_audit(event).await?;
        }
        Ok(())
    }
}

pub(super) struct ThrottleScopes {
    pub(super) account: String,
    pub(super) address: Option<String>,
}

impl ThrottleScopes {
    fn list(&self) -> Vec<ThrottleScope<'_>> {
        let account = ThrottleScope { key: &self.account, policy: ACCOUNT_THROTTLE };
        let address = self.address.as_deref().map(|key| ThrottleScope { key, policy: ADDRESS_THROTTLE });
        std::iter::once(account).chain(address).collect()
    }
}

//! The service layer: every state change of the product, with its validation
//! and audit event, used alike by the admin API, the portal and the CLI (via
//! the admin API). Handlers translate HTTP to calls here and nothing more.

mod access;
mod accounts;
pub mod cursor;
pub mod password;
pub mod products;
pub mod sessions;
pub mod sources;
mod users;

use std::sync::Arc;

use octogen_core::Timestamp;
use octogen_search::SearchIndex;
use octogen_store::{AuditEvent, Store, User};

use crate::secrets::ServerSecrets;

pub use access::{IssuedKey, KeyRotation, OldKey, MAX_OLD_KEY_LIFETIME_SECS};
pub use accounts::IssuedPasswordReset;
pub use sessions::{SignInError, SignedIn};
pub use users::normalize_email;

#[derive(Clone)]
pub struct Services {
    store: Arc<dyn Store>,
    secrets: Arc<ServerSecrets>,
    index: Arc<SearchIndex>,
    /// The API version new organizations are pinned to.
    default_api_version: crate::versions::ApiVersion,
}

/// Who is acting, for the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    /// `operator`, `operator:<email>`, `user:<email>`, `anonymous`, `system`.
    pub label: String,
    pub client_addr: Option<String>,
}

impl Actor {
    /// The operator token (the admin API and the CLI).
    pub fn operator(client_addr: Option<String>) -> Self {
        Actor { label: "operator".into(), client_addr }
    }

    /// A signed-in operator acting in the portal's operator area.
    pub fn operator_user(email: &str, client_addr: Option<String>) -> Self {
        Actor { label: format!("operator:{email}"), client_addr }
    }

    /// A signed-in portal user.
    pub fn user(email: &str, client_addr: Option<String>) -> Self {
        Actor { label: format!("user:{email}"), client_addr }
    }

    /// Someone who is not (or not yet) a user: a sign-in with an unknown email.
    pub fn anonymous(client_addr: Option<String>) -> Self {
        Actor { label: "anonymous".into(), client_addr }
    }

    pub fn system() -> Self {
        Actor { label: "system".into(), client_addr: None }
    }

    /// Whether an event's actor label names the platform's operators (the
    /// token or the operator area). Partners see such events as "Octogen
    /// operator", without a person or an address.
    pub fn is_operator_label(label: &str) -> bool {
        label == "operator" || label.starts_with("operator:")
    }

    /// An audit event by this actor, happening now.
    pub fn event(
        &self,
        org_id: Option<&str>,
        action: &str,
        target: Option<&str>,
        detail: Option<serde_json::Value>,
    ) -> AuditEvent {
        AuditEvent {
            occurred_at: Timestamp::now(),
            org_id: org_id.map(str::to_string),
            actor: self.label.clone(),
            action: action.to_string(),
            target: target.map(str::to_string),
            client_addr: self.client_addr.clone(),
            detail,
        }
    }
}

impl Services {
    pub fn new(
        store: Arc<dyn Store>,
        secrets: Arc<ServerSecrets>,
        index: Arc<SearchIndex>,
        default_api_version: crate::versions::ApiVersion,
    ) -> Self {
        Services { store, secrets, index, default_api_version }
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// Records an event that goes with no store change of its own (a sign-in,
    /// a source setting); changes pass their events to the store instead,
    /// which writes them in the change's transaction.
    async fn audit(
        &self,
        actor: &Actor,
        org_id: Option<&str>,
        action: &str,
        target: Option<&str>,
        detail: Option<serde_json::Value>,
    ) -> anyhow::Result<()> {
        self.store.append_audit(actor.event(org_id, action, target, detail)).await?;
        Ok(())
    }

    /// An event about a user, once for each of their organizations (whose
    /// owners and admins see it in their audit log), or once server-wide for
    /// a user without any (an operator).
    /// The detail names the user's email, plus the fields of `extra`.
    async fn user_events(
        &self,
        actor: &Actor,
        user: &User,
        action: &str,
        extra: Option<serde_json::Value>,
    ) -> anyhow::Result<Vec<AuditEvent>> {
        let mut detail = serde_json::json!({"email": user.email});
        if let (Some(fields), Some(Some(more))) = (detail.as_object_mut(), extra.as_ref().map(|e| e.as_object())) {
            fields.extend(more.clone());
        }
        let detail = Some(detail);
        let memberships = self.store.user_memberships(&user.id).await?;
        if memberships.is_empty() {
            return Ok(vec![actor.event(None, action, Some(&user.id), detail)]);
        }
        Ok(memberships
            .iter()
            .map(|membership| actor.event(Some(&membership.org.id), action, Some(&user.id), detail.clone()))
            .collect())
    }

    /// `HMAC(pepper, domain, value)` in hex: how tokens handed to people are kept.
    fn token_hash(&self, domain: &str, value: &str) -> String {
        hex::encode(self.secrets.pepper.hash_token(domain, value.as_bytes()))
    }
}

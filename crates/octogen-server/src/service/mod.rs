//! The service layer: every state change of the product, with its validation
//! and audit event, used alike by the admin API, the portal and the CLI (via
//! the admin API). Handlers translate HTTP to calls here and nothing more.

mod access;
pub mod cursor;
pub mod password;
pub mod products;
pub mod sessions;
pub mod sources;
mod users;

use std::sync::Arc;

use octogen_core::Timestamp;
use octogen_search::SearchIndex;
use octogen_store::{AuditEvent, Store};

use crate::secrets::ServerSecrets;

pub use access::{IssuedKey, KeyRotation};
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
    /// `operator`, `user:<email>`, `system`.
    pub label: String,
    pub client_addr: Option<String>,
}

impl Actor {
    pub fn operator(client_addr: Option<String>) -> Self {
        Actor { label: "operator".into(), client_addr }
    }

    /// A signed-in portal user.
    pub fn user(email: &str, client_addr: Option<String>) -> Self {
        Actor { label: format!("user:{email}"), client_addr }
    }

    pub fn system() -> Self {
        Actor { label: "system".into(), client_addr: None }
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

    async fn audit(
        &self,
        actor: &Actor,
        org_id: Option<&str>,
        action: &str,
        target: Option<&str>,
        detail: Option<serde_json::Value>,
    ) -> anyhow::Result<()> {
        self.store
            .append_audit(AuditEvent {
                occurred_at: Timestamp::now(),
                org_id: org_id.map(str::to_string),
                actor: actor.label.clone(),
                action: action.to_string(),
                target: target.map(str::to_string),
                client_addr: actor.client_addr.clone(),
                detail,
            })
            .await?;
        Ok(())
    }
}

//! The store: the source of truth for organizations, catalogs, grants, keys,
//! audit events and (later) products. Handlers and services talk to
//! `dyn Store` only; `SqlStore` implements it on SQLite (embedded default,
//! single node) and PostgreSQL (many nodes) with the same portable SQL.

mod directory;
mod error;
mod model;
mod sql;

use async_trait::async_trait;
use octogen_core::{KeyId, Timestamp};

pub use error::{Entity, StoreError, StoreResult};
pub use model::*;
pub use sql::{Backend, SqlStore};

#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> Backend;

    // Organizations.
    async fn create_org(&self, new: NewOrg) -> StoreResult<Org>;
    async fn list_orgs(&self) -> StoreResult<Vec<Org>>;
    async fn get_org(&self, id: &str) -> StoreResult<Org>;
    async fn set_org_suspended(&self, id: &str, suspended: bool) -> StoreResult<Org>;

    // Catalogs.
    async fn create_catalog(&self, new: NewCatalog) -> StoreResult<Catalog>;
    async fn list_catalogs(&self) -> StoreResult<Vec<Catalog>>;
    async fn get_catalog(&self, key: &str) -> StoreResult<Catalog>;
    /// Inactive catalogs disappear from every partner surface on the next request.
    async fn set_catalog_active(&self, key: &str, active: bool) -> StoreResult<Catalog>;

    // Grants. Both return whether anything changed.
    async fn grant(&self, org_id: &str, catalog_key: &str) -> StoreResult<bool>;
    async fn ungrant(&self, org_id: &str, catalog_key: &str) -> StoreResult<bool>;
    /// Catalogs granted to an organization (active or not), sorted by key.
    async fn granted_catalogs(&self, org_id: &str) -> StoreResult<Vec<Catalog>>;

    // API keys.
    async fn create_api_key(&self, new: NewApiKey) -> StoreResult<ApiKeyInfo>;
    async fn list_api_keys(&self, org_id: &str) -> StoreResult<Vec<ApiKeyInfo>>;
    async fn get_api_key(&self, id: &str) -> StoreResult<ApiKeyInfo>;
    /// Revokes a key; revoking a revoked key keeps the first revocation time.
    async fn revoke_api_key(&self, id: &str) -> StoreResult<ApiKeyInfo>;
    /// Batched last-used times (written off the request path).
    async fn record_key_usage(&self, uses: &[(KeyId, Timestamp)]) -> StoreResult<()>;

    /// The hot path: everything authentication needs for one key id, reflecting
    /// every committed change (no cache may outlive a revocation or grant change).
    async fn resolve_api_key(&self, id: &KeyId) -> StoreResult<Option<KeyPrincipal>>;

    // Audit.
    async fn append_audit(&self, event: AuditEvent) -> StoreResult<()>;
    /// Newest first.
    async fn list_audit(&self, org_id: Option<&str>, limit: u32) -> StoreResult<Vec<AuditEvent>>;

    // Server-wide settings.
    async fn get_setting(&self, name: &str) -> StoreResult<Option<String>>;
    async fn put_setting(&self, name: &str, value: &str) -> StoreResult<()>;

    /// Whether the database answers (for readiness checks).
    async fn ping(&self) -> StoreResult<()>;

    /// Waits for in-flight queries and closes connections (SQLite checkpoints its WAL).
    async fn close(&self);
}

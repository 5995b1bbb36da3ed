//! The store: the source of truth for organizations, catalogs, grants, keys,
//! audit events and (later) products. Handlers and services talk to
//! `dyn Store` only; `SqlStore` implements it on SQLite (embedded default,
//! single node) and PostgreSQL (many nodes) with the same portable SQL.

mod coordination;
mod directory;
mod error;
mod model;
mod oauth;
mod packing;
mod portal;
mod sql;

use async_trait::async_trait;
use octogen_core::url_alias::UrlAliasRule;
use octogen_core::{KeyId, ProductRecord, Timestamp};

pub use coordination::{CatalogLock, CoordinationStore, TokenTake};
pub use error::{Entity, StoreError, StoreResult};
pub use model::*;
pub use oauth::*;
pub use portal::*;
pub use sql::{Backend, SqlStore};

/// Everything the server needs from its database.
pub trait Store: AccessStore + IndexStore + PortalStore + CoordinationStore + OAuthStore {}

impl<T: AccessStore + IndexStore + PortalStore + CoordinationStore + OAuthStore> Store for T {}

/// Identity and access: organizations, catalogs, grants, keys, audit, settings.
///
/// Changes take the audit events that record them and write them in the same
/// transaction, only when the change happened (a `true` result, or a key that
/// was not revoked before), so the log never shows a change that was rolled
/// back, nor misses one that committed.
#[async_trait]
pub trait AccessStore: Send + Sync + 'static {
    fn backend(&self) -> Backend;

    // Organizations.
    async fn create_org(&self, new: NewOrg, audit: &[AuditEvent]) -> StoreResult<Org>;
    async fn list_orgs(&self) -> StoreResult<Vec<Org>>;
    async fn get_org(&self, id: &str) -> StoreResult<Org>;
    async fn set_org_suspended(&self, id: &str, suspended: bool, audit: &[AuditEvent]) -> StoreResult<Org>;
    /// `None` returns the organization to the server's default budget.
    async fn set_org_rate_limit(&self, id: &str, per_minute: Option<u32>, audit: &[AuditEvent]) -> StoreResult<Org>;
    /// `None` returns the organization to the server's default API version.
    async fn set_org_api_version(&self, id: &str, version: Option<&str>, audit: &[AuditEvent]) -> StoreResult<Org>;

    // Catalogs.
    async fn create_catalog(&self, new: NewCatalog, audit: &[AuditEvent]) -> StoreResult<Catalog>;
    async fn list_catalogs(&self) -> StoreResult<Vec<Catalog>>;
    async fn get_catalog(&self, key: &str) -> StoreResult<Catalog>;
    /// Inactive catalogs disappear from every partner surface on the next request.
    async fn set_catalog_active(&self, key: &str, active: bool, audit: &[AuditEvent]) -> StoreResult<Catalog>;

    // Grants. Both return whether anything changed.
    async fn grant(&self, org_id: &str, catalog_key: &str, audit: &[AuditEvent]) -> StoreResult<bool>;
    async fn ungrant(&self, org_id: &str, catalog_key: &str, audit: &[AuditEvent]) -> StoreResult<bool>;
    /// Catalogs granted to an organization (active or not), sorted by key.
    async fn granted_catalogs(&self, org_id: &str) -> StoreResult<Vec<Catalog>>;

    // API keys.
    async fn create_api_key(&self, new: NewApiKey, audit: &[AuditEvent]) -> StoreResult<ApiKeyInfo>;
    async fn list_api_keys(&self, org_id: &str) -> StoreResult<Vec<ApiKeyInfo>>;
    async fn get_api_key(&self, id: &str) -> StoreResult<ApiKeyInfo>;
    /// Revokes a key; revoking a revoked key keeps the first revocation time
    /// (and writes no audit event).
    async fn revoke_api_key(&self, id: &str, audit: &[AuditEvent]) -> StoreResult<ApiKeyInfo>;
    /// In one transaction: checks that key `old_id` is still usable at `now`
    /// (else `Conflict`), creates `replacement` for the same organization,
    /// ends the old key as `old_end` says and writes `audit`. Returns the
    /// replacement and the old key as they are afterwards.
    async fn rotate_api_key(
        &self,
        old_id: &str,
        replacement: NewApiKey,
        old_end: OldKeyEnd,
        now: Timestamp,
        audit: &[AuditEvent],
    ) -> StoreResult<(ApiKeyInfo, ApiKeyInfo)>;
    /// Batched last-used times (written off the request path).
    async fn record_key_usage(&self, uses: &[(KeyId, Timestamp)]) -> StoreResult<()>;

    /// The hot path: everything authentication needs for one key id, reflecting
    /// every committed change (no cache may outlive a revocation or grant change).
    async fn resolve_api_key(&self, id: &KeyId) -> StoreResult<Option<KeyPrincipal>>;

    // Audit.
    /// An event that records no change of the store (a sign-in, an OAuth authorization).
    async fn append_audit(&self, event: AuditEvent) -> StoreResult<()>;
    /// Newest first.
    async fn list_audit(&self, org_id: Option<&str>, limit: u32) -> StoreResult<Vec<AuditEvent>>;
    /// One page of the events matching `query`, newest first, with their ids.
    async fn query_audit(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEntry>>;

    // Server-wide settings.
    async fn get_setting(&self, name: &str) -> StoreResult<Option<String>>;
    async fn put_setting(&self, name: &str, value: &str) -> StoreResult<()>;

    /// Whether the database answers (for readiness checks).
    async fn ping(&self) -> StoreResult<()>;

    /// Waits for in-flight queries and closes connections (SQLite checkpoints its WAL).
    async fn close(&self);
}

/// Products and the index runs that change them.
#[async_trait]
pub trait IndexStore: Send + Sync + 'static {
    /// Records a new run (status `queued`).
    async fn create_index_run(&self, new: NewIndexRun) -> StoreResult<IndexRun>;
    /// Moves a queued run to running; false when it is no longer queued.
    async fn start_index_run(&self, run_id: &str) -> StoreResult<bool>;
    async fn record_run_progress(&self, run_id: &str, progress: RunProgress) -> StoreResult<()>;
    /// In one transaction: writes the products the run staged (new ones and
    /// changed ones only; the first of several with one uuid wins), deactivates
    /// the catalog's products the run did not see, updates the catalog's count
    /// and `last_indexed_at`, bumps the change sequence, and marks the run
    /// succeeded. Either all of it is visible afterwards or none of it: an
    /// error from `staged` rolls everything back.
    async fn publish_index_run(
        &self,
        run_id: &str,
        staged: &mut dyn StagedProducts,
        progress: RunProgress,
        report: serde_json::Value,
    ) -> StoreResult<IndexRun>;
    /// Marks a run failed; the catalog is untouched.
    async fn fail_index_run(
        &self,
        run_id: &str,
        error: &str,
        progress: RunProgress,
        report: serde_json::Value,
    ) -> StoreResult<IndexRun>;
    /// After a restart: runs left queued or running are marked interrupted.
    async fn interrupt_unfinished_runs(&self) -> StoreResult<Vec<String>>;
    async fn get_index_run(&self, run_id: &str) -> StoreResult<IndexRun>;
    /// Newest first; all catalogs when `catalog_key` is `None`.
    async fn list_index_runs(&self, catalog_key: Option<&str>, limit: u32) -> StoreResult<Vec<IndexRun>>;

    /// Product changes after `after`, in (seq, uuid) order, at most `limit`.
    async fn product_changes(&self, after: &ChangeCursor, limit: u32) -> StoreResult<Vec<ProductChange>>;
    /// The latest change sequence value (0 before any publish).
    async fn latest_change_seq(&self) -> StoreResult<i64>;
    /// Every product row of one catalog (active or not) after `after_uuid`, by uuid (for re-indexing one catalog).
    async fn catalog_products(
        &self,
        catalog_key: &str,
        after_uuid: &str,
        limit: u32,
    ) -> StoreResult<Vec<ProductRecord>>;
    /// The active product with this normalized URL in one of the given catalogs (by id).
    async fn find_product(&self, catalog_ids: &[String], url_key: &str) -> StoreResult<Option<ProductRecord>>;
    /// Replaces a catalog's URL alias rules (none: removes them).
    async fn set_catalog_url_aliases(&self, catalog_key: &str, rules: &[UrlAliasRule]) -> StoreResult<()>;
    /// The URL alias rules of the given catalogs (by id), as (catalog id, rules); catalogs without any are left out.
    async fn catalog_url_aliases(&self, catalog_ids: &[String]) -> StoreResult<Vec<(String, Vec<UrlAliasRule>)>>;

    async fn set_catalog_source(&self, catalog_key: &str, source: Option<CatalogSource>) -> StoreResult<()>;
    async fn get_catalog_source(&self, catalog_key: &str) -> StoreResult<Option<CatalogSource>>;
    /// Sources whose next run is due at `now`, with their catalog keys.
    async fn due_catalog_sources(&self, now: Timestamp) -> StoreResult<Vec<(String, CatalogSource)>>;
    /// Moves a source's next run from `expected` to `next_run_at`; false when
    /// another node claimed it first (so each due run starts on one node only).
    async fn claim_catalog_source(
        &self,
        catalog_key: &str,
        expected: Timestamp,
        next_run_at: Timestamp,
    ) -> StoreResult<bool>;
}

/// What a run read, handed to `IndexStore::publish_index_run` a batch at a
/// time (the server keeps a run's products in a file on its node until then).
///
/// The publish also reports back what it writes, as it writes it, so the
/// publishing node can index the run alongside instead of reading it all
/// back afterwards (octogen-server's `indexing::alongside`). Those hooks do
/// nothing by default and cannot fail the publish.
#[async_trait]
pub trait StagedProducts: Send {
    /// The next batch; `None` once everything was handed over. An error
    /// (a message for the operator) abandons the publish.
    async fn next_batch(&mut self) -> Result<Option<Vec<StagedProduct>>, String>;

    /// The publish holds change sequence value `seq` (every smaller one has
    /// committed, and no other publish commits before it ends); the rows it
    /// writes carry `updated_at`.
    async fn began(&mut self, _seq: i64, _updated_at: Timestamp) {}

    /// The uuids of the products the publish inserts or rewrites: new ones
    /// and changed ones (the caller has the rest of each from its batch).
    async fn wrote(&mut self, _uuids: Vec<String>) {}

    /// Products (by uuid) the publish deactivates.
    async fn deactivated(&mut self, _uuids: Vec<String>) {}

    /// Every product write is done; the publish now commits (which may still fail).
    async fn committing(&mut self) {}
}

/// Staged products already in memory, handed over as one batch.
pub struct StagedInMemory(Option<Vec<StagedProduct>>);

impl StagedInMemory {
    pub fn new(products: Vec<StagedProduct>) -> Self {
        StagedInMemory(Some(products))
    }
}

#[async_trait]
impl StagedProducts for StagedInMemory {
    async fn next_batch(&mut self) -> Result<Option<Vec<StagedProduct>>, String> {
        Ok(self.0.take())
    }
}

//! Records the store reads and writes. Secrets never appear here: keys carry
//! only their HMAC, and nothing in this module implements `Display` for them.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use octogen_core::{KeyHash, KeyId, Timestamp};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgType {
    CatalogPartner,
    Merchant,
}

impl OrgType {
    pub fn as_str(self) -> &'static str {
        match self {
            OrgType::CatalogPartner => "catalog_partner",
            OrgType::Merchant => "merchant",
        }
    }
}

impl fmt::Display for OrgType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OrgType {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "catalog_partner" => Ok(OrgType::CatalogPartner),
            "merchant" => Ok(OrgType::Merchant),
            other => Err(format!("unknown organization type {other:?} (expected catalog_partner or merchant)")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Org {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub org_type: OrgType,
    pub suspended: bool,
    pub created_at: Timestamp,
    /// Requests per minute; `None` means the server's default.
    pub rate_limit_per_minute: Option<u32>,
    /// The pinned API version; `None` means the server's default.
    pub api_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrg {
    /// Chosen by the caller (`NewOrg::new` makes a random one), so that the
    /// audit event written with the organization can name it.
    pub id: String,
    pub name: String,
    pub org_type: OrgType,
    /// The API version it is pinned to from the start; `None`: the server's default.
    pub api_version: Option<String>,
}

impl NewOrg {
    /// An organization with a fresh random id and no pinned API version.
    pub fn new(name: impl Into<String>, org_type: OrgType) -> Self {
        NewOrg { id: uuid::Uuid::new_v4().to_string(), name: name.into(), org_type, api_version: None }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    pub id: String,
    pub key: String,
    pub display_name: String,
    pub source_base_url: Option<String>,
    pub is_active: bool,
    pub product_count: u64,
    pub last_indexed_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCatalog {
    pub key: String,
    pub display_name: String,
    pub source_base_url: Option<String>,
}

/// An API key's metadata. The secret's hash stays inside the store and the
/// authentication path; lists and audit views never see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyInfo {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    /// When the key stops working by itself (e.g. the old key of a rotation); `None`: never.
    pub expires_at: Option<Timestamp>,
}

/// Where a key stands at a moment: usable, revoked, or past its expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    Active,
    Revoked,
    Expired,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Revoked => "revoked",
            KeyStatus::Expired => "expired",
        }
    }
}

impl ApiKeyInfo {
    /// The key's status at `now` (a revocation wins over an expiry).
    pub fn status_at(&self, now: Timestamp) -> KeyStatus {
        if self.revoked_at.is_some() {
            KeyStatus::Revoked
        } else if self.expires_at.is_some_and(|expires_at| expires_at <= now) {
            KeyStatus::Expired
        } else {
            KeyStatus::Active
        }
    }
}

pub struct NewApiKey {
    pub id: KeyId,
    pub org_id: String,
    pub name: String,
    pub secret_hash: KeyHash,
    /// When the key stops working by itself; `None`: never.
    pub expires_at: Option<Timestamp>,
}

/// What a rotation does with the key it replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OldKeyEnd {
    /// It keeps working until someone revokes it.
    StaysActive,
    /// It is revoked in the same transaction that creates the replacement.
    Revoked,
    /// It stops working at this time (an earlier expiry it already had is kept).
    ExpiresAt(Timestamp),
}

/// The record a change returned, and whether the change did anything (an
/// audit event passed along is written only when it did).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed<T> {
    pub record: T,
    pub changed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub occurred_at: Timestamp,
    pub org_id: Option<String>,
    /// Who: `operator` (the operator token), `operator:<email>` (an operator in
    /// the portal's operator area), `user:<email>`, `anonymous` (a sign-in with
    /// an unknown email), `system`.
    pub actor: String,
    /// What, dotted: `api_key.created`, `api_key.revoked`, `grant.added`, ...
    pub action: String,
    /// The object acted on (a key id, a catalog key, ...). Never a secret.
    pub target: Option<String>,
    /// Where from: the client address as the server saw it.
    pub client_addr: Option<String>,
    /// Extra non-secret facts as JSON.
    pub detail: Option<serde_json::Value>,
}

/// An audit event with its position in the log (ids grow with time, so they
/// page the log stably while new events arrive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub event: AuditEvent,
}

/// Which audit events to list: every filter that is set must match.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub org_id: Option<String>,
    /// Any of these actions (empty: every action).
    pub actions: Vec<String>,
    /// Any of these targets (empty: every target).
    pub targets: Vec<String>,
    /// Events whose actor contains this text, ignoring case.
    pub actor_contains: Option<String>,
    /// Events at or after this time…
    pub from: Option<Timestamp>,
    /// …and strictly before this one.
    pub until: Option<Timestamp>,
    pub page: AuditPage,
    pub limit: u32,
}

/// Where a page of the audit log starts. Results are always newest first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuditPage {
    #[default]
    Newest,
    /// The events just older than the event with this id.
    OlderThan(i64),
    /// The events just newer than the event with this id.
    NewerThan(i64),
}

/// A granted, active catalog as the authentication path hands it to handlers.
#[derive(Debug, Clone)]
pub struct GrantedCatalog {
    pub id: String,
    pub key: String,
    pub display_name: String,
    pub source_base_url: Option<String>,
    pub product_count: u64,
    pub last_indexed_at: Option<Timestamp>,
    /// The fields above as `MerchantCatalogSummary` JSON, rendered on first
    /// use. On a single node the directory shares each organization's list
    /// across requests, so `GET /v1/catalogs` (the hottest authenticated
    /// route) copies bytes instead of escaping strings; a list loaded per
    /// request (PostgreSQL) renders only when it is listed.
    summary_json: OnceLock<Arc<str>>,
}

/// Equal when the catalogs are; whether the JSON was rendered yet does not matter.
impl PartialEq for GrantedCatalog {
    fn eq(&self, other: &Self) -> bool {
        (&self.id, &self.key, &self.display_name, &self.source_base_url, self.product_count, self.last_indexed_at)
            == (
                &other.id,
                &other.key,
                &other.display_name,
                &other.source_base_url,
                other.product_count,
                other.last_indexed_at,
            )
    }
}

impl GrantedCatalog {
    pub fn new(
        id: String,
        key: String,
        display_name: String,
        source_base_url: Option<String>,
        product_count: u64,
        last_indexed_at: Option<Timestamp>,
    ) -> GrantedCatalog {
        let summary_json = OnceLock::new();
        GrantedCatalog { id, key, display_name, source_base_url, product_count, last_indexed_at, summary_json }
    }

    /// This catalog as a partner sees it (SPEC §4, `GET /v1/catalogs`).
    pub fn summary(&self) -> octogen_core::wire::MerchantCatalogSummary {
        octogen_core::wire::MerchantCatalogSummary {
            catalog: self.key.clone(),
            display_name: self.display_name.clone(),
            source_base_url: self.source_base_url.clone(),
            product_count: self.product_count,
            last_indexed_at: self.last_indexed_at,
        }
    }

    /// [`GrantedCatalog::summary`] as JSON, rendered once per catalog.
    pub fn summary_json(&self) -> &str {
        self.summary_json.get_or_init(|| {
            // A struct of strings, numbers and a timestamp always serializes.
            serde_json::to_string(&self.summary()).expect("a catalog summary serializes").into()
        })
    }
}

/// Everything a request authenticated by an API key needs, from one lookup:
/// the key's hash and state, its organization, and the catalogs it may see.
#[derive(Debug, Clone)]
pub struct KeyPrincipal {
    pub key_id: KeyId,
    pub secret_hash: KeyHash,
    pub revoked: bool,
    /// The key is refused from this time on; `None`: never. Judged by the
    /// caller at request time, so an expiry needs no write to take effect.
    pub expires_at: Option<Timestamp>,
    /// Shared with the directory: authenticating a request copies no strings.
    pub org: Arc<OrgAccess>,
    /// Active catalogs granted to the organization, sorted by key.
    pub catalogs: Arc<[GrantedCatalog]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgAccess {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub org_type: OrgType,
    pub suspended: bool,
    pub rate_limit_per_minute: Option<u32>,
    pub api_version: Option<String>,
}

impl From<&Org> for OrgAccess {
    fn from(org: &Org) -> Self {
        OrgAccess {
            id: org.id.clone(),
            name: org.name.clone(),
            slug: org.slug.clone(),
            org_type: org.org_type,
            suspended: org.suspended,
            rate_limit_per_minute: org.rate_limit_per_minute,
            api_version: org.api_version.clone(),
        }
    }
}

/// The slug an organization named `name` gets: lowercase ASCII words joined by
/// `-`. Two names with the same slug are the same organization.
pub fn org_slug(name: &str) -> String {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|part| !part.is_empty())
        .map(|part| part.to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join("-")
}

/// How an index run was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunTrigger {
    /// `octogen catalog import` (operator API).
    Operator,
    /// The catalog's configured source, on its interval.
    Schedule,
    /// The portal's operator area.
    Portal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Waiting for the previous run of the same catalog to end.
    Queued,
    Running,
    Succeeded,
    /// Ended with an error; the catalog is unchanged.
    Failed,
    /// The server stopped during the run; the catalog is unchanged.
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }

    pub fn is_finished(self) -> bool {
        matches!(self, RunStatus::Succeeded | RunStatus::Failed | RunStatus::Interrupted)
    }
}

impl FromStr for RunStatus {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        [RunStatus::Queued, RunStatus::Running, RunStatus::Succeeded, RunStatus::Failed, RunStatus::Interrupted]
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| format!("unknown run status {text:?}"))
    }
}

impl RunTrigger {
    pub fn as_str(self) -> &'static str {
        match self {
            RunTrigger::Operator => "operator",
            RunTrigger::Schedule => "schedule",
            RunTrigger::Portal => "portal",
        }
    }
}

impl FromStr for RunTrigger {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        [RunTrigger::Operator, RunTrigger::Schedule, RunTrigger::Portal]
            .into_iter()
            .find(|trigger| trigger.as_str() == text)
            .ok_or_else(|| format!("unknown run trigger {text:?}"))
    }
}

pub struct NewIndexRun {
    pub catalog_key: String,
    pub trigger: RunTrigger,
    /// Feed format name, e.g. `shopify`.
    pub format: String,
    /// Where the feed came from: a URL or an uploaded file's name.
    pub source: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunCounts {
    /// Records read from the feed (accepted + skipped).
    pub seen: u64,
    pub added: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub deactivated: u64,
    pub skipped: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexRun {
    pub id: String,
    pub catalog_key: String,
    pub status: RunStatus,
    pub trigger: RunTrigger,
    pub format: String,
    pub source: String,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub bytes_read: u64,
    pub bytes_total: Option<u64>,
    pub counts: RunCounts,
    /// The change sequence value the run was published at; search has caught
    /// up with the run once the index has applied it.
    pub published_seq: Option<i64>,
    pub error: Option<String>,
    /// Skipped records with reasons and other details, as JSON.
    pub report: Option<serde_json::Value>,
}

/// Progress of a running import, written periodically so any node can report it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunProgress {
    pub bytes_read: u64,
    pub bytes_total: Option<u64>,
    pub seen: u64,
    pub skipped: u64,
}

/// A product read by a run, waiting for the run to be published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedProduct {
    pub uuid: String,
    pub url_key: String,
    /// Of the record's JSON: a publish rewrites a stored product only when it differs.
    pub content_hash: String,
    /// The record's JSON as the store keeps it (compressed; see `StagedProduct::new`).
    pub packed: Vec<u8>,
}

impl StagedProduct {
    /// Stages a product record of the catalog `catalog_id`, given as its JSON
    /// and its normalized URL. The uuid is derived from both
    /// (`octogen_core::product::product_uuid`): the store finds products by URL that way.
    pub fn new(catalog_id: &str, url_key: String, record_json: &[u8]) -> Self {
        StagedProduct {
            uuid: octogen_core::product::product_uuid(catalog_id, &url_key),
            url_key,
            content_hash: octogen_core::product::content_hash(record_json),
            packed: crate::packing::pack(record_json),
        }
    }

    /// Whether the stored version whose content hash is `stored_hash` has this
    /// product's content. A hash from before xxh3 is checked against the
    /// record itself (`octogen_core::product::is_content_hash_of`).
    pub fn has_content_hash(&self, stored_hash: &str) -> bool {
        if stored_hash == self.content_hash {
            return true;
        }
        octogen_core::product::is_legacy_content_hash(stored_hash)
            && crate::packing::unpack(&self.packed)
                .is_ok_and(|json| octogen_core::product::is_content_hash_of(stored_hash, &json))
    }

    /// The product as the change feed will carry it once a publish at `updated_at` wrote it.
    pub fn to_record(&self, catalog_key: &str, updated_at: Timestamp) -> Result<octogen_core::ProductRecord, String> {
        let json = crate::packing::unpack(&self.packed)?;
        let product = serde_json::from_slice(&json).map_err(|error| format!("product {}: {error}", self.uuid))?;
        Ok(octogen_core::ProductRecord {
            uuid: self.uuid.clone(),
            catalog_key: catalog_key.to_string(),
            is_active: true,
            updated_at,
            normalized_url: self.url_key.clone(),
            product,
        })
    }
}

/// Where the change feed stands: everything up to and including `(seq, order)`
/// has been read. The default is the start of the feed (publishes begin at seq 1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChangeCursor {
    pub seq: i64,
    /// The position within `seq`'s publish (see `ProductChange::order`).
    pub order: i64,
}

impl ChangeCursor {
    /// Past every change of `seq`.
    pub fn after_seq(seq: i64) -> Self {
        ChangeCursor { seq, order: i64::MAX }
    }
}

/// One row of the change feed: the product as it is now (inactive means "remove from search").
#[derive(Debug, Clone, PartialEq)]
pub struct ProductChange {
    pub seq: i64,
    /// Unique within `seq`: the order in which its publish wrote the product.
    pub order: i64,
    pub record: octogen_core::ProductRecord,
}

impl ProductChange {
    /// The cursor just past this change.
    pub fn cursor(&self) -> ChangeCursor {
        ChangeCursor { seq: self.seq, order: self.order }
    }
}

/// A catalog's feed, re-imported on an interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogSource {
    pub url: String,
    pub format: String,
    /// CSV column mapping (TOML), when the format needs one.
    pub mapping: Option<String>,
    /// ISO 4217 code for feeds whose prices carry none.
    pub currency: Option<String>,
    pub interval_secs: u64,
    pub next_run_at: Timestamp,
}

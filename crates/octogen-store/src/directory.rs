//! The in-memory access directory of a single-node (SQLite) store.
//!
//! With SQLite the server process is the only writer (the store holds an
//! exclusive lock on the database), so it can keep keys, organizations,
//! grants and catalog summaries in memory and answer authentication without
//! touching the database. Every mutation updates the directory after its
//! transaction commits and before the call returns, under the store's write
//! lock, so the next request always sees it: this is a write-through view,
//! not a cache with a lifetime. Multi-node (PostgreSQL) stores have no
//! directory and read the database on every request instead.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use octogen_core::{KeyHash, KeyId, Timestamp};

use crate::model::{Catalog, GrantedCatalog, KeyPrincipal, Org, OrgAccess};

#[derive(Default)]
pub(crate) struct Directory {
    data: RwLock<DirectoryData>,
}

#[derive(Default)]
pub(crate) struct DirectoryData {
    pub keys: HashMap<KeyId, KeyEntry>,
    pub orgs: HashMap<String, Arc<OrgAccess>>,
    /// org id → catalog ids.
    pub grants: HashMap<String, BTreeSet<String>>,
    /// catalog id → catalog.
    pub catalogs: HashMap<String, Catalog>,
    /// org id → its active granted catalogs, sorted by key. Derived from the
    /// maps above after every change, so authentication hands out a shared
    /// list instead of building one per request.
    granted: HashMap<String, Arc<[GrantedCatalog]>>,
}

pub(crate) struct KeyEntry {
    pub org_id: String,
    pub secret_hash: KeyHash,
    pub revoked: bool,
    /// Kept as a time, not a flag: authentication compares it with the clock
    /// on every request, so the key stops working at that moment without a write.
    pub expires_at: Option<Timestamp>,
}

impl Directory {
    pub fn replace(&self, mut data: DirectoryData) {
        data.derive_granted();
        *self.data.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = data;
    }

    pub fn update(&self, change: impl FnOnce(&mut DirectoryData)) {
        let mut data = self.data.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        change(&mut data);
        data.derive_granted();
    }

    pub fn resolve(&self, id: &KeyId) -> Option<KeyPrincipal> {
        let data = self.data.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let key = data.keys.get(id)?;
        let org = data.orgs.get(&key.org_id)?;
        Some(KeyPrincipal {
            key_id: *id,
            secret_hash: key.secret_hash.clone(),
            revoked: key.revoked,
            expires_at: key.expires_at,
            org: org.clone(),
            catalogs: data.granted_to(&org.id),
        })
    }

    /// An organization and its active granted catalogs (OAuth callers).
    pub fn org_principal(&self, org_id: &str) -> Option<crate::oauth::OrgPrincipal> {
        let data = self.data.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let org = data.orgs.get(org_id)?;
        Some(crate::oauth::OrgPrincipal { org: org.clone(), catalogs: data.granted_to(org_id) })
    }
}

impl DirectoryData {
    fn granted_to(&self, org_id: &str) -> Arc<[GrantedCatalog]> {
        self.granted.get(org_id).cloned().unwrap_or_else(|| Arc::from(Vec::new()))
    }

    /// Recomputes every organization's active granted catalogs (mutations are rare; requests are not).
    fn derive_granted(&mut self) {
        let granted = self
            .grants
            .iter()
            .map(|(org_id, catalog_ids)| {
                let mut catalogs: Vec<GrantedCatalog> = catalog_ids
                    .iter()
                    .filter_map(|catalog_id| self.catalogs.get(catalog_id))
                    .filter(|catalog| catalog.is_active)
                    .map(granted)
                    .collect();
                catalogs.sort_by(|a, b| a.key.cmp(&b.key));
                (org_id.clone(), Arc::from(catalogs))
            })
            .collect();
        self.granted = granted;
    }

    pub fn put_org(&mut self, org: &Org) {
        self.orgs.insert(org.id.clone(), Arc::new(OrgAccess::from(org)));
    }

    pub fn put_catalog(&mut self, catalog: &Catalog) {
        self.catalogs.insert(catalog.id.clone(), catalog.clone());
    }
}

pub(crate) fn granted(catalog: &Catalog) -> GrantedCatalog {
    GrantedCatalog::new(
        catalog.id.clone(),
        catalog.key.clone(),
        catalog.display_name.clone(),
        catalog.source_base_url.clone(),
        catalog.product_count,
        catalog.last_indexed_at,
    )
}

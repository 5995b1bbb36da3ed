//! Product search and lookup for a caller: the one code path behind REST,
//! MCP and every API version. The caller's granted, active catalogs are the
//! scope of every query: a filter inside it, never a check after it.

use octogen_core::facets::FacetKey;
use octogen_core::url_norm::{normalize_product_url, structural_alias};
use octogen_core::wire::ProductSummary;
use octogen_core::ProductRecord;
use octogen_search::{Cancellation, FacetFilter, IndexError, SearchQuery};
use octogen_store::GrantedCatalog;
use serde_json::json;

use super::cursor::{self, CursorError};
use super::Services;

/// Who is asking and what they may see.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    pub org_id: &'a str,
    /// Active catalogs granted to the organization.
    pub catalogs: &'a [GrantedCatalog],
}

impl<'a> Scope<'a> {
    fn granted(&self, key: &str) -> Option<&'a GrantedCatalog> {
        self.catalogs.iter().find(|catalog| catalog.key == key)
    }
}

/// A validated search request, independent of transport and API version.
#[derive(Debug, Clone, Default)]
pub struct ProductSearch {
    pub catalog: Option<String>,
    pub catalogs: Option<Vec<String>>,
    pub text: Option<String>,
    pub facets: Vec<FacetFilter>,
    /// Products with any of these values are left out (API version 2026-10-01).
    pub exclude_facets: Vec<FacetFilter>,
    pub price_min: Option<f64>,
    pub price_max: Option<f64>,
    pub limit: usize,
    pub cursor: Option<String>,
}

#[derive(Debug)]
pub enum SearchFailure {
    /// A requested catalog is unknown, inactive or not granted (never says which).
    CatalogNotFound,
    Cursor(CursorError),
    Internal(anyhow::Error),
}

pub struct SearchOutcome {
    pub hits: Vec<ProductSummary>,
    pub next_cursor: Option<String>,
    /// What actually ran (for `effectiveQuery` in later API versions).
    pub effective: EffectiveSearch,
}

#[derive(Debug, Clone)]
pub struct EffectiveSearch {
    pub text: String,
    pub facets: Vec<FacetFilter>,
    pub exclude_facets: Vec<FacetFilter>,
    pub price_min: Option<f64>,
    pub price_max: Option<f64>,
    /// The `catalogs` allowlist as received, deduplicated (None when not sent).
    pub catalogs: Option<Vec<String>>,
}

#[derive(Debug)]
pub enum LookupFailure {
    /// Not an http(s) URL.
    InvalidUrl,
    ProductNotFound,
    /// A catalog named to narrow the lookup is not granted (MCP).
    CatalogNotFound,
    Internal(anyhow::Error),
}

pub struct LookupOutcome {
    pub record: ProductRecord,
    pub catalog: GrantedCatalog,
    pub matched_via: MatchedVia,
}

/// Which rule of the lookup found the product. The rules are tried in this
/// order, and the first that finds an active product in the caller's catalogs wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchedVia {
    /// The URL as sent is the product's own URL.
    Exact,
    /// The URL, normalized, is the key the product is stored under.
    NormalizedExact,
    /// Another URL of the same product: a Shopify collection path or
    /// `?variant=` URL (`url_norm::structural_alias`), or one of a catalog's
    /// own alias rules (`url_alias`).
    StructuralAlias,
}

impl MatchedVia {
    /// The name the public API uses (`matchedVia`).
    pub fn as_str(self) -> &'static str {
        match self {
            MatchedVia::Exact => "exact",
            MatchedVia::NormalizedExact => "normalized_exact",
            MatchedVia::StructuralAlias => "structural_alias",
        }
    }
}

impl Services {
    pub async fn search_products(
        &self,
        scope: Scope<'_>,
        search: ProductSearch,
    ) -> Result<SearchOutcome, SearchFailure> {
        let catalogs = effective_catalogs(&scope, &search)?;
        let text = search.text.as_deref().map(str::trim).filter(|text| !text.is_empty()).map(str::to_string);
        let fingerprint = cursor::fingerprint(&canonical_query(scope.org_id, &search, text.as_deref()));
        let after = match &search.cursor {
            Some(cursor) => {
                Some(cursor::decode(&self.secrets.pepper, cursor, &fingerprint).map_err(SearchFailure::Cursor)?)
            }
            None => None,
        };
        let query = SearchQuery {
            catalogs,
            text: text.clone(),
            facets: search.facets.clone(),
            exclude_facets: search.exclude_facets.clone(),
            price_min: search.price_min,
            price_max: search.price_max,
            limit: search.limit,
            after,
        };
        let index = self.index.clone();
        // When this future is dropped (the request timed out, the client went
        // away), the guard cancels the search running on the blocking thread.
        let cancellation = Cancellation::new();
        let _cancel_when_abandoned = cancellation.cancel_on_drop();
        let page = tokio::task::spawn_blocking(move || index.search_with_cancellation(&query, &cancellation))
            .await
            .map_err(|error| SearchFailure::Internal(error.into()))?
            .map_err(|error| match error {
                IndexError::CursorMismatch => SearchFailure::Cursor(CursorError::OtherQuery),
                other => SearchFailure::Internal(other.into()),
            })?;
        let next_cursor =
            page.next.as_ref().map(|position| cursor::encode(&self.secrets.pepper, &fingerprint, position));
        let mut allowlist = search.catalogs.clone();
        if let Some(list) = &mut allowlist {
            list.sort();
            list.dedup();
        }
        Ok(SearchOutcome {
            hits: page.hits,
            next_cursor,
            effective: EffectiveSearch {
                text: text.unwrap_or_default(),
                facets: search.facets,
                exclude_facets: search.exclude_facets,
                price_min: search.price_min,
                price_max: search.price_max,
                catalogs: allowlist,
            },
        })
    }

    /// A product page URL in the caller's catalogs (optionally narrowed to
    /// `only`): one key lookup of its normalized form, and only when that finds
    /// nothing, the aliases it may be (see `MatchedVia`).
    pub async fn lookup_product(
        &self,
        scope: Scope<'_>,
        url: &str,
        only: Option<&[String]>,
    ) -> Result<LookupOutcome, LookupFailure> {
        let normalized = normalize_product_url(url).map_err(|_| LookupFailure::InvalidUrl)?;
        let catalogs: Vec<&GrantedCatalog> = match only {
            Some(keys) => keys
                .iter()
                .map(|key| scope.granted(key).ok_or(LookupFailure::CatalogNotFound))
                .collect::<Result<_, _>>()?,
            None => scope.catalogs.iter().collect(),
        };
        let ids: Vec<String> = catalogs.iter().map(|catalog| catalog.id.clone()).collect();
        let (record, matched_via) = match self.find_product(&ids, &normalized).await? {
            Some(record) if record.product.url == url.trim() => (record, MatchedVia::Exact),
            Some(record) => (record, MatchedVia::NormalizedExact),
            None => (
                self.find_by_alias(&ids, url, &normalized).await?.ok_or(LookupFailure::ProductNotFound)?,
                MatchedVia::StructuralAlias,
            ),
        };
        let catalog = catalogs
            .into_iter()
            .find(|catalog| catalog.key == record.catalog_key)
            .cloned()
            .ok_or(LookupFailure::ProductNotFound)?;
        Ok(LookupOutcome { record, catalog, matched_via })
    }

    /// The alias rules, in order: Shopify's structural aliases (in every
    /// catalog), then each catalog's own rules (in that catalog only). The
    /// rules are read only here, after the direct lookup missed.
    async fn find_by_alias(
        &self,
        catalog_ids: &[String],
        url: &str,
        normalized: &str,
    ) -> Result<Option<ProductRecord>, LookupFailure> {
        if let Some(alias) = structural_alias(normalized) {
            if let Some(record) = self.find_product(catalog_ids, &alias).await? {
                return Ok(Some(record));
            }
        }
        let catalog_rules = self.store.catalog_url_aliases(catalog_ids).await.map_err(internal_lookup_error)?;
        for (catalog_id, rules) in catalog_rules {
            for key in rules.iter().filter_map(|rule| rule.resolve(url)) {
                if let Some(record) = self.find_product(std::slice::from_ref(&catalog_id), &key).await? {
                    return Ok(Some(record));
                }
            }
        }
        Ok(None)
    }

    async fn find_product(&self, catalog_ids: &[String], key: &str) -> Result<Option<ProductRecord>, LookupFailure> {
        self.store.find_product(catalog_ids, key).await.map_err(internal_lookup_error)
    }
}

fn internal_lookup_error(error: octogen_store::StoreError) -> LookupFailure {
    LookupFailure::Internal(error.into())
}

/// The catalogs a search runs over: the requested ones (each must be granted),
/// or every granted catalog.
fn effective_catalogs(scope: &Scope<'_>, search: &ProductSearch) -> Result<Vec<String>, SearchFailure> {
    let mut requested: Option<Vec<&str>> = None;
    if let Some(list) = &search.catalogs {
        requested = Some(list.iter().map(String::as_str).collect());
    }
    if let Some(one) = &search.catalog {
        requested = Some(match requested {
            Some(list) => list.into_iter().filter(|key| key == one).collect(),
            None => vec![one.as_str()],
        });
        if scope.granted(one).is_none() {
            return Err(SearchFailure::CatalogNotFound);
        }
    }
    match requested {
        None => Ok(scope.catalogs.iter().map(|catalog| catalog.key.clone()).collect()),
        Some(keys) => {
            if keys.iter().any(|key| scope.granted(key).is_none()) {
                return Err(SearchFailure::CatalogNotFound);
            }
            let mut keys: Vec<String> = keys.into_iter().map(str::to_string).collect();
            keys.sort();
            keys.dedup();
            Ok(keys)
        }
    }
}

/// Everything that defines a result set (not the page size or position), in a canonical form.
fn canonical_query(org_id: &str, search: &ProductSearch, text: Option<&str>) -> serde_json::Value {
    let mut catalogs = search.catalogs.clone().unwrap_or_default();
    catalogs.sort();
    catalogs.dedup();
    json!({
        "org": org_id,
        "catalog": search.catalog,
        "catalogs": catalogs,
        "q": text,
        "facets": canonical_facets(&search.facets),
        "exclude_facets": canonical_facets(&search.exclude_facets),
        "price_min": search.price_min,
        "price_max": search.price_max,
    })
}

fn canonical_facets(facets: &[FacetFilter]) -> Vec<(String, Vec<String>)> {
    let mut canonical: Vec<(String, Vec<String>)> = facets
        .iter()
        .map(|facet| {
            let mut values: Vec<String> =
                facet.values.iter().map(|value| octogen_core::facets::normalize_value(value)).collect();
            values.sort();
            values.dedup();
            (facet.key.canonical_name(), values)
        })
        .collect();
    canonical.sort();
    canonical
}

/// Parses facet names as clients send them (see `FacetKey::parse`).
pub fn facet_key(name: &str) -> Result<FacetKey, octogen_core::facets::FacetNameError> {
    FacetKey::parse(name)
}

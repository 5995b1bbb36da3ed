//! Builders for small hand-made corpora.
#![allow(dead_code)]

use octogen_core::product::{Brand, Product};
use octogen_core::wire::ProductRecord;
use octogen_core::Timestamp;
use octogen_search::{IndexChange, SearchIndex, SearchQuery};

pub const CATALOG: &str = "shop";

/// A uuid whose order follows `n`.
pub fn uuid(n: u128) -> String {
    uuid::Uuid::from_u128(n).to_string()
}

/// An active product in `CATALOG` with uuid `uuid(n)`; `edit` fills the rest.
pub fn product(n: u128, title: &str, edit: impl FnOnce(&mut Product)) -> ProductRecord {
    let mut product =
        Product { url: format!("https://shop.example/products/{n}"), title: title.to_string(), ..Product::default() };
    edit(&mut product);
    ProductRecord {
        uuid: uuid(n),
        catalog_key: CATALOG.to_string(),
        is_active: true,
        updated_at: Timestamp::from_millis(1_700_000_000_000),
        normalized_url: format!("https://shop.example/products/{n}"),
        product,
    }
}

pub fn titled(n: u128, title: &str) -> ProductRecord {
    product(n, title, |_| {})
}

pub fn brand(name: &str) -> Option<Brand> {
    Some(Brand { name: name.to_string(), ..Brand::default() })
}

pub fn index_of(records: Vec<ProductRecord>) -> SearchIndex {
    let index = SearchIndex::in_ram();
    upsert(&index, records);
    index
}

pub fn upsert(index: &SearchIndex, records: Vec<ProductRecord>) {
    let seq = index.applied_seq() + 1;
    index.apply(records.into_iter().map(IndexChange::Upsert).collect(), seq).expect("apply");
}

/// Titles of the first page.
pub fn titles(index: &SearchIndex, query: &SearchQuery) -> Vec<String> {
    index.search(query).expect("search").hits.into_iter().map(|hit| hit.title).collect()
}

pub fn search_titles(index: &SearchIndex, text: &str) -> Vec<String> {
    titles(index, &SearchQuery::text([CATALOG], text))
}

/// Every hit of every page, following `next` until it is `None`.
pub fn all_pages(index: &SearchIndex, mut query: SearchQuery) -> Vec<String> {
    let mut uuids = Vec::new();
    loop {
        let page = index.search(&query).expect("search");
        assert!(page.hits.len() <= query.limit);
        uuids.extend(page.hits.into_iter().map(|hit| hit.uuid));
        match page.next {
            Some(next) => query.after = Some(next),
            None => return uuids,
        }
    }
}

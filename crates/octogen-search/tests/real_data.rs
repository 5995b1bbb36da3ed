//! Sanity checks on real data: the Spacire Shopify export as the corpus and
//! the 480 WANDS shopper queries. Needs `../shared/data` beside the project;
//! skipped with a message when it is absent, mandatory when `CI=true`.

mod common;

use std::collections::HashSet;
use std::path::PathBuf;

use common::{all_pages, CATALOG};
use octogen_core::product::{Brand, Image, Product};
use octogen_core::wire::ProductRecord;
use octogen_core::Timestamp;
use octogen_search::{IndexChange, SearchIndex, SearchQuery};
use serde_json::Value;

fn data_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if dir.join("shopify-spacire-products.json").exists() {
        return Some(dir);
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true but {} is missing", dir.display());
    eprintln!("skipping: {} is absent", dir.display());
    None
}

/// Just enough of the Shopify export for search: the importer proper lives in octogen-ingest.
fn spacire_records(dir: &std::path::Path) -> Vec<ProductRecord> {
    let text = std::fs::read_to_string(dir.join("shopify-spacire-products.json")).expect("readable");
    let json: Value = serde_json::from_str(&text).expect("valid JSON");
    let products = json["products"].as_array().expect("a products array");
    products.iter().map(spacire_record).collect()
}

fn spacire_record(item: &Value) -> ProductRecord {
    let text = |key: &str| item[key].as_str().unwrap_or_default().to_string();
    let url = format!("https://spacire.com/products/{}", text("handle"));
    let product = Product {
        url: url.clone(),
        title: text("title"),
        description: Some(strip_tags(&text("body_html"))),
        brand: Some(Brand { name: text("vendor"), ..Brand::default() }),
        product_type: Some(text("product_type")).filter(|kind| !kind.is_empty()),
        // The export stores variants as a Python-style string; the first price is enough here.
        current_price: first_quoted_after(&text("variants"), "'price': '").and_then(|price| price.parse().ok()),
        currency: Some("GBP".into()),
        images: item["image"]["src"].as_str().map(Image::from_url).into_iter().collect(),
        tags: text("tags").split(',').map(str::trim).filter(|tag| !tag.is_empty()).map(String::from).collect(),
        ..Product::default()
    };
    ProductRecord {
        uuid: uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, url.as_bytes()).to_string(),
        catalog_key: CATALOG.into(),
        is_active: true,
        updated_at: Timestamp::from_millis(0),
        normalized_url: url,
        product,
    }
}

fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for ch in html.chars() {
        match ch {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(ch),
            _ => {}
        }
    }
    out
}

fn first_quoted_after<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    let start = text.find(marker)? + marker.len();
    let end = text[start..].find('\'')?;
    Some(&text[start..start + end])
}

fn wands_queries(dir: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("wands-queries.tsv")).expect("readable");
    text.lines().skip(1).filter_map(|line| line.split('\t').nth(1)).map(String::from).collect()
}

fn spacire_index(dir: &std::path::Path) -> SearchIndex {
    let index = SearchIndex::in_ram();
    let changes = spacire_records(dir).into_iter().map(IndexChange::Upsert).collect();
    index.apply(changes, 1).expect("indexes");
    index
}

fn top_titles(index: &SearchIndex, text: &str, limit: usize) -> Vec<String> {
    let query = SearchQuery { limit, ..SearchQuery::text([CATALOG], text) };
    index.search(&query).expect("search").hits.into_iter().map(|hit| hit.title).collect()
}

#[test]
fn wands_queries_run_over_the_spacire_catalog() {
    let Some(dir) = data_dir() else { return };
    let index = spacire_index(&dir);
    assert_eq!(index.num_docs(), 507);
    let queries = wands_queries(&dir);
    assert_eq!(queries.len(), 480);
    let mut answered = 0;
    for query in &queries {
        let titles = top_titles(&index, query, 10);
        if !titles.is_empty() {
            answered += 1;
        }
    }
    eprintln!("{answered} of {} WANDS queries have hits in the Spacire catalog", queries.len());
    for query in ["weighted blanket", "blackout curtains", "pillow", "sleep mask", "alarm clock", "white noise"] {
        eprintln!("{query:>18} → {:?}", top_titles(&index, query, 3));
    }
    assert!(answered > 50, "only {answered} queries found anything");
}

#[test]
fn named_queries_find_the_obvious_products() {
    let Some(dir) = data_dir() else { return };
    let index = spacire_index(&dir);
    let all_contain = |text: &str, needles: &[&str], top: usize| {
        for title in top_titles(&index, text, top) {
            let lower = title.to_lowercase();
            assert!(needles.iter().all(|needle| lower.contains(needle)), "{text:?} → {title:?}");
        }
    };
    all_contain("weighted blanket", &["weighted", "blanket"], 5);
    all_contain("weighted blankets", &["weighted", "blanket"], 5);
    all_contain("blankit", &["blanket"], 5);
    all_contain("weigh", &["weigh"], 3);
    all_contain("eye mask", &["eye", "mask"], 10);
    all_contain("lavender sleep spray", &["lavender", "sleep", "spray"], 5);
    all_contain("blackout curtain", &["curtain"], 5);
}

#[test]
fn a_broad_query_pages_to_the_end_without_repeats() {
    let Some(dir) = data_dir() else { return };
    let index = spacire_index(&dir);
    for query in [SearchQuery::text([CATALOG], "sleep"), SearchQuery::browse([CATALOG])] {
        let uuids = all_pages(&index, SearchQuery { limit: 7, ..query });
        assert!(uuids.len() > 100);
        assert_eq!(uuids.iter().collect::<HashSet<_>>().len(), uuids.len());
    }
}

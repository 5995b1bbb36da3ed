//! Facets, price bounds, catalogs and limits (SPEC §4).

mod common;

use common::*;
use octogen_core::product::{CanonicalBrand, Enrichment};
use octogen_core::wire::ProductRecord;
use octogen_search::{FacetFilter, FacetKey, IndexError, SearchIndex, SearchQuery};

/// A product carrying a value for every fixed facet, plus attributes.
fn rich_product() -> ProductRecord {
    product(1, "Trail Runner", |p| {
        p.brand = Some(octogen_core::product::Brand {
            name: "ACME Outdoor Co.".into(),
            slug: Some("acme-outdoor".into()),
            ..Default::default()
        });
        p.enrichment = Enrichment {
            product_type: Some("Running Shoe".into()),
            gender: Some("female".into()),
            age_groups: vec!["adult".into(), "kids".into()],
            color: vec!["Navy Blue".into()],
            color_family: vec!["Blue".into()],
            is_activewear: Some(true),
            category_path: (0..7).map(|depth| format!("Level {depth} Name")).collect(),
            canonical_brand: Some(CanonicalBrand {
                brand_uuid: "b1".into(),
                brand_name: "Acme".into(),
                brand_slug: Some("acme".into()),
                ..Default::default()
            }),
            ..Enrichment::default()
        };
        p.enrichment.attributes.insert("Heel Height".into(), vec!["2 Inch".into()]);
        p.enrichment.attributes.insert("fit".into(), vec!["Slim".into(), "Regular".into()]);
    })
}

fn corpus() -> SearchIndex {
    index_of(vec![rich_product(), titled(2, "Plain Thing")])
}

fn with_facet(name: &str, values: &[&str]) -> SearchQuery {
    let key = FacetKey::parse(name).expect("facet name");
    SearchQuery { facets: vec![FacetFilter::new(key, values.iter().copied())], ..SearchQuery::browse([CATALOG]) }
}

#[test]
fn every_fixed_facet_name_filters_case_insensitively() {
    let index = corpus();
    let cases = [
        ("brand_name", "ACME"),
        ("brand_slug", "Acme"),
        ("raw_brand_name", "acme outdoor co."),
        ("product_type", "running SHOE"),
        ("gender", "Female"),
        ("age_groups", "KIDS"),
        ("color", "navy blue"),
        ("color_family", "BLUE"),
        ("is_activewear", "True"),
    ];
    for (name, value) in cases {
        assert_eq!(titles(&index, &with_facet(name, &[value])), ["Trail Runner"], "{name}={value}");
        assert!(titles(&index, &with_facet(name, &["nope"])).is_empty(), "{name}=nope");
    }
}

#[test]
fn every_category_depth_filters() {
    let index = corpus();
    for depth in 0..7 {
        let name = format!("category_path.depth_{depth}");
        let value = format!("LEVEL {depth} name");
        assert_eq!(titles(&index, &with_facet(&name, &[&value])), ["Trail Runner"], "{name}");
        // A value from another depth does not match.
        let other = format!("Level {} Name", (depth + 1) % 7);
        assert!(titles(&index, &with_facet(&name, &[&other])).is_empty(), "{name}={other}");
    }
}

#[test]
fn dynamic_attributes_work_bare_and_qualified_with_spaces() {
    let index = corpus();
    for name in ["heel_height", "attribute_facets.heel_height", "Heel Height", "attribute_facets.Heel Height"] {
        assert_eq!(titles(&index, &with_facet(name, &["2 inch"])), ["Trail Runner"], "{name}");
        assert_eq!(titles(&index, &with_facet(name, &["  2   INCH "])), ["Trail Runner"], "{name} spaced");
        assert!(titles(&index, &with_facet(name, &["3 inch"])).is_empty(), "{name}");
    }
    assert_eq!(titles(&index, &with_facet("fit", &["regular"])), ["Trail Runner"]);
}

#[test]
fn facets_are_anded_and_values_ored() {
    let index = index_of(vec![
        product(1, "Blue Shirt", |p| {
            p.enrichment.color_family = vec!["Blue".into()];
            p.enrichment.gender = Some("male".into());
        }),
        product(2, "Red Shirt", |p| {
            p.enrichment.color_family = vec!["Red".into()];
            p.enrichment.gender = Some("male".into());
        }),
        product(3, "Red Dress", |p| {
            p.enrichment.color_family = vec!["Red".into()];
            p.enrichment.gender = Some("female".into());
        }),
    ]);
    let color = |values: &[&str]| FacetFilter::new(FacetKey::ColorFamily, values.iter().copied());
    let gender = |values: &[&str]| FacetFilter::new(FacetKey::Gender, values.iter().copied());
    let query = |facets: Vec<FacetFilter>| SearchQuery { facets, ..SearchQuery::browse([CATALOG]) };
    assert_eq!(titles(&index, &query(vec![color(&["red", "blue"])])), ["Blue Shirt", "Red Dress", "Red Shirt"]);
    assert_eq!(titles(&index, &query(vec![color(&["red"]), gender(&["male"])])), ["Red Shirt"]);
    assert_eq!(titles(&index, &query(vec![color(&["red", "blue"]), gender(&["male"])])), ["Blue Shirt", "Red Shirt"]);
    assert!(titles(&index, &query(vec![color(&["blue"]), gender(&["female"])])).is_empty());
    // A facet without values cannot be satisfied (the server rejects it before it gets here).
    assert!(titles(&index, &query(vec![color(&[])])).is_empty());
    // Facets combine with text.
    let text = SearchQuery { facets: vec![color(&["red"])], ..SearchQuery::text([CATALOG], "shirt") };
    assert_eq!(titles(&index, &text), ["Red Shirt"]);
    // Excluded facets drop products with any listed value, in browse and text searches alike.
    let excluding =
        |exclude: Vec<FacetFilter>| SearchQuery { exclude_facets: exclude, ..SearchQuery::browse([CATALOG]) };
    assert_eq!(titles(&index, &excluding(vec![color(&["BLUE"])])), ["Red Dress", "Red Shirt"]);
    assert_eq!(titles(&index, &excluding(vec![color(&["blue"]), gender(&["female"])])), ["Red Shirt"]);
    let text = SearchQuery { exclude_facets: vec![gender(&["male"])], ..SearchQuery::text([CATALOG], "red") };
    assert_eq!(titles(&index, &text), ["Red Dress"]);
}

fn priced(n: u128, price: Option<f64>) -> ProductRecord {
    product(n, &format!("Item {n}"), |p| p.current_price = price)
}

#[test]
fn price_bounds_are_inclusive_and_skip_unpriced_products() {
    let index = index_of(vec![
        priced(1, Some(10.0)),
        priced(2, Some(19.99)),
        priced(3, Some(20.0)),
        priced(4, Some(35.5)),
        priced(5, None),
    ]);
    let query = |min: Option<f64>, max: Option<f64>| SearchQuery {
        price_min: min,
        price_max: max,
        ..SearchQuery::browse([CATALOG])
    };
    assert_eq!(titles(&index, &query(Some(10.0), Some(20.0))), ["Item 1", "Item 2", "Item 3"]);
    assert_eq!(titles(&index, &query(Some(20.0), None)), ["Item 3", "Item 4"]);
    assert_eq!(titles(&index, &query(None, Some(19.99))), ["Item 1", "Item 2"]);
    assert_eq!(titles(&index, &query(Some(20.0), Some(20.0))), ["Item 3"]);
    assert!(titles(&index, &query(Some(21.0), Some(20.0))).is_empty());
    assert_eq!(titles(&index, &query(Some(0.0), None)).len(), 4, "bounded queries never match unpriced products");
    assert_eq!(titles(&index, &query(None, None)).len(), 5);
    let nan = index.search(&query(Some(f64::NAN), None));
    assert!(matches!(nan, Err(IndexError::InvalidQuery(_))));
}

#[test]
fn catalogs_are_a_filter_and_empty_means_nothing() {
    let mut other = titled(2, "Blanket B");
    other.catalog_key = "other".into();
    let mut third = titled(3, "Blanket C");
    third.catalog_key = "third".into();
    let index = index_of(vec![titled(1, "Blanket A"), other, third]);
    let query = |catalogs: &[&str]| SearchQuery::text(catalogs.iter().copied(), "blanket");
    assert_eq!(titles(&index, &query(&[CATALOG])), ["Blanket A"]);
    assert_eq!(titles(&index, &query(&["other", "third"])), ["Blanket B", "Blanket C"]);
    assert!(titles(&index, &query(&[])).is_empty());
    assert!(titles(&index, &query(&["unknown"])).is_empty());
    assert!(titles(&index, &SearchQuery::browse(Vec::<String>::new())).is_empty());
    assert_eq!(titles(&index, &SearchQuery::browse(["other"])), ["Blanket B"]);
}

#[test]
fn limit_is_respected_and_validated() {
    let index = index_of((1..=120).map(|n| titled(n, &format!("Blanket {n:03}"))).collect());
    for limit in [1, 7, 100] {
        let page = index.search(&SearchQuery { limit, ..SearchQuery::text([CATALOG], "blanket") }).expect("search");
        assert_eq!(page.hits.len(), limit);
        assert!(page.next.is_some());
    }
    for limit in [0, 101] {
        let result = index.search(&SearchQuery { limit, ..SearchQuery::browse([CATALOG]) });
        assert!(matches!(result, Err(IndexError::InvalidQuery(_))), "limit {limit}");
    }
}

#[test]
fn hits_carry_the_summary() {
    let index = index_of(vec![product(1, "Blanket", |p| {
        p.current_price = Some(30.0);
        p.original_price = Some(40.0);
        p.currency = Some("GBP".into());
        p.images = vec![octogen_core::product::Image::from_url("https://cdn.example/1.jpg")];
        p.brand = brand("Spacire");
    })]);
    let page = index.search(&SearchQuery::text([CATALOG], "blanket")).expect("search");
    let hit = &page.hits[0];
    assert_eq!(hit.uuid, uuid(1));
    assert_eq!(hit.catalog_key, CATALOG);
    assert_eq!(hit.product_url, "https://shop.example/products/1");
    assert_eq!(hit.current_price, Some(30.0));
    assert_eq!(hit.original_price, Some(40.0));
    assert_eq!(hit.currency.as_deref(), Some("GBP"));
    assert_eq!(hit.images[0].url, "https://cdn.example/1.jpg");
    assert_eq!(hit.brand.as_ref().map(|brand| brand.name.as_str()), Some("Spacire"));
    assert!(page.next.is_none());
}

//! Imports of the real catalogs in `../shared/data`: counts and enrichment on named products.

mod common;

use std::fs::File;
use std::io::BufReader;

use octogen_ingest::{parse_feed_to_vec, CsvMapping, FeedFormat, FeedOptions, FeedRecord, Product};

fn spacire() -> Option<(Vec<FeedRecord>, octogen_ingest::FeedSummary)> {
    let path = common::shared_data("shopify-spacire-products.json")?;
    let options = FeedOptions {
        base_url: Some("https://spacire.com".into()),
        default_currency: Some("GBP".into()),
        ..FeedOptions::default()
    };
    let file = BufReader::new(File::open(&path).expect("open spacire"));
    Some(parse_feed_to_vec(FeedFormat::Shopify, file, &options).expect("spacire parses"))
}

fn myntra() -> Option<(Vec<FeedRecord>, octogen_ingest::FeedSummary)> {
    let path = common::shared_data("myntra-products.csv")?;
    let mapping = CsvMapping::load(common::workspace_file("mappings/myntra.toml")).expect("mapping loads");
    let options = FeedOptions { mapping: Some(mapping), ..FeedOptions::default() };
    let file = BufReader::new(File::open(&path).expect("open myntra"));
    Some(parse_feed_to_vec(FeedFormat::Csv, file, &options).expect("myntra parses"))
}

fn accepted(records: &[FeedRecord]) -> Vec<&Product> {
    records.iter().filter_map(|record| record.as_ref().ok()).collect()
}

fn by_title_prefix<'a>(products: &[&'a Product], prefix: &str) -> &'a Product {
    products.iter().find(|product| product.title.starts_with(prefix)).unwrap_or_else(|| panic!("no product {prefix:?}"))
}

#[test]
fn spacire_imports_every_active_product() {
    let Some((records, summary)) = spacire() else { return };
    // All 507 products are active, have a title, a unique handle and sane prices.
    let errors: Vec<String> = records.iter().filter_map(|r| r.as_ref().err()).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!((summary.records, summary.accepted, summary.skipped), (507, 507, 0));
    let products = accepted(&records);
    let variants: usize = products.iter().map(|product| product.variants.len()).sum();
    assert_eq!(variants, 4_805);
    for product in &products {
        assert!(product.url.starts_with("https://spacire.com/products/"), "{}", product.url);
        assert_eq!(product.currency.as_deref(), Some("GBP"));
        assert!(product.current_price.is_some_and(|price| price > 0.0), "{}", product.title);
        assert_eq!(product.enrichment.canonical_brand.as_ref().unwrap().brand_name, "Spacire");
        assert!(
            product.description.as_deref().is_none_or(|text| !text.contains("<p")),
            "HTML left in {}",
            product.title
        );
    }
}

#[test]
fn spacire_blissloom_weighted_blanket() {
    let Some((records, _)) = spacire() else { return };
    let products = accepted(&records);
    let blanket = by_title_prefix(&products, "BlissLoom Weighted Blanket");
    assert_eq!(blanket.url, "https://spacire.com/products/products-blissloom-weighted-blanket");
    assert_eq!(blanket.brand.as_ref().unwrap().name, "Spacire");
    assert_eq!(blanket.brand.as_ref().unwrap().slug.as_deref(), Some("spacire"));
    let e = &blanket.enrichment;
    assert_eq!(e.canonical_brand.as_ref().unwrap().brand_slug.as_deref(), Some("spacire"));
    // Color option values: "Light gray", "Navy", "Dark grey".
    assert_eq!(e.color, ["Light Gray", "Navy", "Dark Grey"]);
    assert_eq!(e.color_family, ["Gray", "Blue", "Gray"]);
    assert_eq!(e.product_type.as_deref(), Some("weighted blanket"));
    assert_eq!(e.category_path, ["Bedding", "Weighted Blanket"]);
    assert_eq!(e.type_synonyms, ["gravity blanket"]);
    // The "Dimensions" option (with Unicode ×) is a dynamic attribute.
    assert!(e.attributes["dimensions"].contains(&"104×152cm".to_string()), "{:?}", e.attributes);
    assert_eq!(e.attribute_handles["dimensions"][0], "104_152cm");
    assert_eq!(blanket.in_stock, Some(true));
    assert_eq!(blanket.current_price, Some(56.32), "cheapest in-stock variant (Navy, 152×203cm20lbs)");
    assert_eq!(blanket.original_price, Some(73.22));
    assert!(blanket.description.as_deref().unwrap().starts_with("Find your calm with the BlissLoom Weighted Blanket"));
    assert_eq!(e.summary.as_deref(), Some("Find your calm with the BlissLoom Weighted Blanket, crafted to provide gentle, even pressure that feels like a comforting embrace."));
    // Marketing tags such as "Father's Day stress relief gifts" decide no gender.
    assert_eq!(e.gender, None);
    assert!(e.tags.contains(&"weighted blanket".to_string()));
    assert_eq!(e.is_activewear, Some(false));
}

#[test]
fn spacire_enrichment_rules_on_named_products() {
    let Some((records, _)) = spacire() else { return };
    let products = accepted(&records);
    let spray = by_title_prefix(&products, "Caizilan Sleep Spray");
    assert_eq!(spray.enrichment.product_type.as_deref(), Some("sleep spray"));
    assert_eq!(spray.enrichment.category_path, ["Health & Wellness", "Sleep Spray"]);
    let speaker = by_title_prefix(&products, "Acousticax White Noise Speaker");
    assert!(
        !speaker.enrichment.color_family.contains(&"White".to_string()) || !speaker.colors.is_empty(),
        "'White Noise' in a title is no color"
    );
    let baby = by_title_prefix(&products, "Calmwavezx Baby White Noise");
    assert_eq!(baby.enrichment.age_groups, ["infant"]);
    let cotton = by_title_prefix(&products, "QuiltAura Gravity Weighted Pure Cotton Blanket");
    assert!(cotton.details.materials.contains(&"cotton".to_string()), "{:?}", cotton.details.materials);
    // Size options become lowercase sizes and a "size" attribute facet.
    let mask = by_title_prefix(&products, "Kinesiszx Sleep Eye Mask");
    assert_eq!(mask.sizes, ["s", "m", "l"]);
    assert_eq!(mask.enrichment.attributes["size"], ["s", "m", "l"]);
    let families: std::collections::BTreeSet<&str> =
        products.iter().flat_map(|p| p.enrichment.color_family.iter().map(String::as_str)).collect();
    assert_eq!(families.len(), 11, "every color family occurs in the store: {families:?}");
}

#[test]
fn myntra_imports_every_row() {
    let Some((records, summary)) = myntra() else { return };
    let errors: Vec<String> = records.iter().filter_map(|r| r.as_ref().err()).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{:#?}", &errors[..errors.len().min(20)]);
    // 11,596 rows, unique ids, valid prices: every row is a product (946 titles
    // repeat with different ids: they are different products with different URLs).
    assert_eq!((summary.records, summary.accepted, summary.skipped), (11_596, 11_596, 0));
    let products = accepted(&records);
    assert!(products
        .iter()
        .all(|p| p.currency.as_deref() == Some("INR") && p.url.starts_with("https://www.myntra.com/")));
    let with_gender = products.iter().filter(|p| p.enrichment.gender.is_some()).count();
    assert_eq!(with_gender, 11_596, "the Gender column is always filled");
    let with_family = products.iter().filter(|p| !p.enrichment.color_family.is_empty()).count();
    // PrimaryColor values without a family: "Matte" (17). Everything else maps.
    assert_eq!(with_family, 11_596 - 17);
    let with_type = products.iter().filter(|p| p.enrichment.product_type.is_some()).count();
    assert!(with_type as f64 > 0.97 * 11_596.0, "product types for {with_type} of 11596");
}

#[test]
fn myntra_enrichment_on_named_products() {
    let Some((records, _)) = myntra() else { return };
    let products = accepted(&records);
    let by_id = |id: &str| {
        products
            .iter()
            .find(|p| p.identifiers.product_id.as_deref() == Some(id))
            .unwrap_or_else(|| panic!("no product {id}"))
    };

    // "Kenneth Cole Women Navy Blue Solid Backpack", PrimaryColor "Blue".
    let backpack = by_id("10000911");
    assert_eq!(backpack.enrichment.color, ["Navy Blue"]);
    assert_eq!(backpack.enrichment.color_family, ["Blue"]);
    assert_eq!(backpack.enrichment.gender.as_deref(), Some("female"));
    assert_eq!(backpack.enrichment.product_type.as_deref(), Some("backpack"));
    assert_eq!(backpack.enrichment.category_path, ["Bags & Luggage", "Backpack"]);

    // "Raymond Men Blue Self-Design Single-Breasted Bandhgala Suit".
    let suit = by_id("10015921");
    assert_eq!(suit.enrichment.gender.as_deref(), Some("male"));
    assert_eq!(suit.enrichment.age_groups, ["adult"]);
    assert_eq!(suit.enrichment.product_type.as_deref(), Some("suit"));
    assert_eq!(suit.details.patterns, ["self design"]);

    // "Gini and Jony Boys Navy Blue Regular Fit Solid Casual Shirt".
    let shirt = by_id("10003123");
    assert_eq!(shirt.enrichment.gender.as_deref(), Some("male"));
    assert_eq!(shirt.enrichment.age_groups, ["kids"]);
    assert_eq!(shirt.details.fit, ["regular"]);

    // "SPYKAR Women Burgundy Alexa Super Skinny Fit ... Ankle Jeans": burgundy is a Red.
    let jeans = by_id("10009695");
    assert_eq!(jeans.enrichment.color_family, ["Red"]);
    assert_eq!(jeans.enrichment.product_type.as_deref(), Some("jeans"));
    assert_eq!(jeans.details.fit, ["super skinny"]);

    // Sport footwear and apparel are activewear.
    let shoes = by_id("10018287");
    assert_eq!(shoes.enrichment.product_type.as_deref(), Some("running shoe"));
    assert_eq!(shoes.enrichment.is_activewear, Some(true));
    let track_pants = by_id("10053685");
    assert_eq!(track_pants.enrichment.is_activewear, Some(true));
    assert_eq!(track_pants.enrichment.color, ["Navy Blue"]);
    assert_eq!(by_id("10015921").enrichment.is_activewear, Some(false));

    // Windows-1252 NBSP bytes (shown as "�" by UTF-8 readers) become spaces.
    let kurta = by_id("10016283");
    let description = kurta.description.as_deref().unwrap();
    assert!(description.contains("churidar and dupatta"), "{description}");
    assert!(!description.contains('\u{fffd}'));

    let brands: std::collections::BTreeSet<&str> =
        products.iter().filter_map(|p| p.enrichment.canonical_brand.as_ref()).map(|b| b.brand_uuid.as_str()).collect();
    assert!(brands.len() >= 600, "distinct brand uuids: {}", brands.len());

    let charcoal = products.iter().find(|p| p.colors.first().is_some_and(|c| c.label == "Charcoal")).unwrap();
    assert_eq!(charcoal.enrichment.color_family, ["Gray"]);
    let off_white = products.iter().find(|p| p.title.contains("Off-White") && p.colors[0].label == "White").unwrap();
    assert_eq!(off_white.enrichment.color, ["Off White"], "{}", off_white.title);
}

#[test]
fn missing_data_skips_locally_and_fails_in_ci() {
    let directory = std::env::temp_dir().join("octogen-ingest-no-such-data-dir");
    assert_eq!(common::data_file(&directory, "myntra-products.csv", false), None);
    let in_ci = std::panic::catch_unwind(|| common::data_file(&directory, "myntra-products.csv", true));
    assert!(in_ci.is_err(), "CI=true must fail, not skip");
}

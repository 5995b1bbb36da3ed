//! `parse_feed_unenriched` + `Unenriched::enrich` (how the server parses on
//! one thread and enriches on another) gives exactly what `parse_feed` gives.

use std::ops::ControlFlow;

use octogen_ingest::{parse_feed, parse_feed_unenriched, FeedFormat, FeedOptions};

#[test]
fn enriching_later_gives_the_same_records() {
    let fixtures = [
        (FeedFormat::Shopify, "shopify-storefront.json"),
        (FeedFormat::Shopify, "shopify-admin.json"),
        (FeedFormat::MerchantXml, "merchant.xml"),
        (FeedFormat::MerchantTsv, "merchant.tsv"),
    ];
    for (format, name) in fixtures {
        let bytes = std::fs::read(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let options = FeedOptions {
            base_url: Some("https://shop.example".into()),
            default_currency: Some("GBP".into()),
            ..FeedOptions::default()
        };
        let mut inline = Vec::new();
        let inline_summary = parse_feed(format, &bytes[..], &options, |record| {
            inline.push(record);
            ControlFlow::Continue(())
        })
        .unwrap();
        let mut deferred = Vec::new();
        let deferred_summary = parse_feed_unenriched(format, &bytes[..], &options, |record| {
            deferred.push(record);
            ControlFlow::Continue(())
        })
        .unwrap();
        let unenriched = deferred.iter().filter_map(|record| record.as_ref().ok()).next().expect("an accepted product");
        assert_eq!(unenriched.product().enrichment, Default::default(), "{name}: not enriched yet");
        let deferred: Vec<_> = deferred.into_iter().map(|record| record.map(|product| product.enrich())).collect();
        assert_eq!(inline_summary, deferred_summary, "{name}");
        assert_eq!(inline.len(), deferred.len(), "{name}");
        for (inline, deferred) in inline.iter().zip(&deferred) {
            match (inline, deferred) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{name}"),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{name}"),
                _ => panic!("{name}: one accepted what the other skipped"),
            }
        }
        assert!(
            inline.iter().any(|record| record.as_ref().is_ok_and(|p| p.enrichment != Default::default())),
            "{name}"
        );
    }
}

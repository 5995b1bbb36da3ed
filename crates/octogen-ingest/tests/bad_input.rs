//! Every kind of bad input, across formats: the feed never panics, and each
//! problem is named with its place (record, line, page or byte) and reason.

use octogen_ingest::{
    parse_feed_to_vec, CsvMapping, FeedError, FeedFormat, FeedOptions, FeedRecord, Limits, RecordErrorKind,
};

fn shopify_options() -> FeedOptions {
    FeedOptions { base_url: Some("https://shop.example".into()), ..FeedOptions::default() }
}

fn csv_options() -> FeedOptions {
    let mapping = CsvMapping::from_toml(
        "[fields]\nurl = \"link\"\ntitle = \"title\"\nprice = \"price\"\ndescription = \"description\"\n",
    )
    .unwrap();
    FeedOptions { mapping: Some(mapping), base_url: None, ..FeedOptions::default() }
}

fn errors(records: &[FeedRecord]) -> Vec<String> {
    records.iter().filter_map(|record| record.as_ref().err()).map(ToString::to_string).collect()
}

#[test]
fn truncated_feeds_are_feed_errors_after_the_good_records() {
    let shopify = "{\"products\": [{\"title\": \"A\", \"handle\": \"a\"}, {\"title\": \"B\", \"ha";
    let error = parse_feed_to_vec(FeedFormat::Shopify, shopify.as_bytes(), &shopify_options()).unwrap_err();
    assert!(matches!(error, FeedError::Truncated { format: FeedFormat::Shopify, line: 1, .. }), "{error}");

    let xml = "<rss><channel><item><g:title>A</g:title><g:link>https://x.example/a</g:link></item><item><g:ti";
    let error = parse_feed_to_vec(FeedFormat::MerchantXml, xml.as_bytes(), &FeedOptions::default()).unwrap_err();
    assert!(matches!(error, FeedError::Truncated { .. } | FeedError::Syntax { .. }), "{error}");

    let bundle = "{\"url\": \"https://x.example/p\", \"html\": \"<html>";
    let error = parse_feed_to_vec(FeedFormat::JsonLd, bundle.as_bytes(), &FeedOptions::default()).unwrap_err();
    assert!(matches!(error, FeedError::Truncated { format: FeedFormat::JsonLd, line: 1, .. }), "{error}");
}

#[test]
fn wrong_format_is_named_with_what_was_found() {
    let csv = "title,link,price\nShirt,https://x.example/s,10\n";
    let error = parse_feed_to_vec(FeedFormat::Shopify, csv.as_bytes(), &shopify_options()).unwrap_err();
    assert_eq!(error.to_string(), "the input is not a shopify feed: found text starting with \"title,link,price\"");
    let error = parse_feed_to_vec(FeedFormat::MerchantXml, csv.as_bytes(), &FeedOptions::default()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the input is not a merchant-xml feed: found text starting with \"title,link,price\""
    );
    let json = "{\"products\": []}";
    let error = parse_feed_to_vec(FeedFormat::Csv, json.as_bytes(), &csv_options()).unwrap_err();
    assert_eq!(error.to_string(), "the input is not a csv feed: found JSON");
    let rss = "<?xml version=\"1.0\"?><rss></rss>";
    let error = parse_feed_to_vec(FeedFormat::Shopify, rss.as_bytes(), &shopify_options()).unwrap_err();
    assert_eq!(error.to_string(), "the input is not a shopify feed: found XML with root element <rss>");
}

#[test]
fn an_html_page_instead_of_a_feed_is_named() {
    let page = "<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Password</body></html>";
    for format in [FeedFormat::Shopify, FeedFormat::MerchantXml, FeedFormat::MerchantTsv, FeedFormat::Csv] {
        let options = if format == FeedFormat::Csv { csv_options() } else { shopify_options() };
        let error = parse_feed_to_vec(format, page.as_bytes(), &options).unwrap_err();
        assert!(matches!(error, FeedError::Html { .. }), "{format}: {error}");
        assert!(error.to_string().starts_with(&format!("the input is an HTML page, not a {format} feed")), "{error}");
    }
}

#[test]
fn non_utf8_bytes_are_named_with_offset_and_line() {
    let shopify = b"{\"products\": [\n{\"title\": \"Caf\xe9\", \"handle\": \"cafe\"}]}";
    let error = parse_feed_to_vec(FeedFormat::Shopify, &shopify[..], &shopify_options()).unwrap_err();
    assert_eq!(error, FeedError::NotUtf8 { offset: 29, line: 2 });
    let csv = b"title,link,price,description\nCaf\xe9,https://x.example/c,3,d\n";
    let error = parse_feed_to_vec(FeedFormat::Csv, &csv[..], &csv_options()).unwrap_err();
    assert_eq!(error, FeedError::NotUtf8 { offset: 32, line: 2 });
}

#[test]
fn huge_fields_skip_or_truncate_and_huge_records_stop() {
    let input = format!(
        "title,link,price,description\n{},https://x.example/1,3,d\nFine,https://x.example/2,3,{}\n",
        "T".repeat(1_500),
        "word ".repeat(6_000)
    );
    let (records, summary) = parse_feed_to_vec(FeedFormat::Csv, input.as_bytes(), &csv_options()).unwrap();
    assert_eq!((summary.accepted, summary.skipped), (1, 1));
    assert_eq!(errors(&records), ["record 1 (line 2): title is 1500 characters long (limit 1000)"]);
    let description = records[1].as_ref().unwrap().description.as_deref().unwrap();
    assert!(description.chars().count() <= 20_000 && description.ends_with('…'));

    let options = FeedOptions { limits: Limits { max_record_bytes: 1_000, ..Limits::default() }, ..shopify_options() };
    let input = format!(
        "[{{\"title\": \"A\", \"handle\": \"a\"}},\n{{\"title\": \"{}\", \"handle\": \"b\"}}]",
        "x".repeat(70_000)
    );
    let error = parse_feed_to_vec(FeedFormat::Shopify, input.as_bytes(), &options).unwrap_err();
    assert_eq!(error, FeedError::RecordTooLarge { line: 2, limit: 1_000 });
    assert_eq!(error.to_string(), "the record starting at line 2 is larger than 1000 bytes");
}

#[test]
fn bad_prices_missing_fields_duplicates_and_relative_urls_are_skipped_with_reasons() {
    let input = "title,link,price,description\n\
                 Good,https://x.example/good,10,d\n\
                 Negative,https://x.example/neg,-3.00,d\n\
                 Words,https://x.example/words,ten,d\n\
                 ,https://x.example/untitled,1,d\n\
                 No link,,1,d\n\
                 Relative,/products/rel,1,d\n\
                 Good again,http://www.x.example/good/?utm_source=feed,10,d\n\
                 Mailto,mailto:shop@x.example,1,d\n";
    let (records, summary) = parse_feed_to_vec(FeedFormat::Csv, input.as_bytes(), &csv_options()).unwrap();
    assert_eq!((summary.records, summary.accepted, summary.skipped), (8, 1, 7));
    assert_eq!(
        errors(&records),
        [
            "record 2 (line 3): negative price \"-3.00\" in column \"price\"",
            "record 3 (line 4): price \"ten\" is not a number in column \"price\"",
            "record 4 (line 5): missing title",
            "record 5 (line 6): missing product URL",
            "record 6 (line 7): relative product URL \"/products/rel\" and no base URL to resolve it against",
            "record 7 (line 8): duplicate product URL https://x.example/good (first seen at record 1)",
            "record 8 (line 9): product URL \"mailto:shop@x.example\" is not http(s) (scheme \"mailto\")",
        ]
    );
    let kinds: Vec<RecordErrorKind> = records.iter().filter_map(|r| r.as_ref().err()).map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            RecordErrorKind::InvalidPrice,
            RecordErrorKind::InvalidPrice,
            RecordErrorKind::MissingTitle,
            RecordErrorKind::MissingUrl,
            RecordErrorKind::RelativeUrl,
            RecordErrorKind::DuplicateUrl,
            RecordErrorKind::InvalidUrl,
        ]
    );

    // With a base URL, the relative link resolves.
    let options = FeedOptions { base_url: Some("https://x.example".into()), ..csv_options() };
    let (records, _) = parse_feed_to_vec(FeedFormat::Csv, input.as_bytes(), &options).unwrap();
    assert!(records.iter().flatten().any(|product| product.url == "https://x.example/products/rel"));
}

#[test]
fn garbage_never_panics() {
    let inputs: [&[u8]; 8] =
        [b"", b"\xff\xfe\x00", b"{", b"[[[[[[", b"<", b"<rss><item>", b"\t\t\n\t", b"{\"url\": 1}\n"];
    for format in
        [FeedFormat::Shopify, FeedFormat::MerchantXml, FeedFormat::MerchantTsv, FeedFormat::JsonLd, FeedFormat::Csv]
    {
        for input in inputs {
            let options = if format == FeedFormat::Csv { csv_options() } else { shopify_options() };
            let _ = parse_feed_to_vec(format, input, &options);
        }
    }
}

//! Shopify product JSON: the storefront feed (`/products.json`: variants with
//! `available`) and the Admin API export (variants with `inventory_quantity`,
//! products with `status`). Accepted shapes: `{"products": [...]}`, a bare
//! array of products, or `{"product": {...}}`.
//!
//! The array is streamed: each product is read into borrowed, lenient records
//! (`loose_json`), converted, and dropped before the next one is read.

use std::io::BufRead;

use octogen_core::product::{Color, Identifiers, Image, Variant};
use octogen_core::Product;
use serde::de::{IgnoredAny, MapAccess};

use crate::error::{RecordErrorKind, RecordLocation, Skip};
use crate::json_stream::{Element, Found, JsonScanner};
use crate::loose_json::{List, LooseObject, Scalar, Shaped, TextList};
use crate::pipeline::{Draft, RecordSink};
use crate::sniff::{sniff, Sniffed};
use crate::text::{check_price_number, html_to_text, parse_price};
use crate::{FeedError, FeedFormat, FeedOptions};

const FORMAT: FeedFormat = FeedFormat::Shopify;

pub fn parse<R: BufRead>(
    reader: &mut crate::reader::TrackedReader<R>,
    options: &FeedOptions,
    sink: &mut impl RecordSink,
) -> Result<(), FeedError> {
    let sniffed = sniff(reader).map_err(|error| FeedError::Io { line: 1, message: error.to_string() })?;
    if sniffed != Sniffed::Json {
        return Err(sniffed.mismatch(FORMAT));
    }
    let base_url = options
        .base_url
        .as_deref()
        .map(|base| base.trim().trim_end_matches('/').to_string())
        .filter(|base| !base.is_empty())
        .ok_or(FeedError::MissingBaseUrl { format: FORMAT })?;
    let tracker = reader.tracker();
    let mut scanner = JsonScanner::new(reader, tracker, FORMAT);
    let top_is_object = scanner.peek()? == Some(b'{');
    let mut records = 0u64;
    let mut submit = |element: Element<'_>| {
        records += 1;
        let location = RecordLocation::new(records, Some(element.line));
        let draft = match serde_json::from_slice::<Shaped<RawProduct>>(element.bytes) {
            Ok(product) => convert(&product, &base_url),
            Err(error) => Err(Skip::malformed(format!("invalid JSON: {}", element_error(&error, &element)))),
        };
        sink.submit(location, draft).is_continue()
    };
    let finished = match scanner.find_products()? {
        Some(Found::Array) => scanner.for_each_element(&mut submit)?,
        Some(Found::Single) => scanner.single_element(&mut submit)?,
        None => {
            return Err(FeedError::WrongFormat {
                format: FORMAT,
                found: "found JSON without a \"products\" array".into(),
            })
        }
    };
    if finished {
        scanner.finish(top_is_object)?;
    }
    Ok(())
}

/// A parse error inside one element, with its position in the feed.
fn element_error(error: &serde_json::Error, element: &Element<'_>) -> String {
    let message = error.to_string();
    let message = message.split(" at line ").next().unwrap_or_default();
    let line = element.line + error.line().saturating_sub(1) as u64;
    let column = if error.line() <= 1 { element.column + error.column() as u64 - 1 } else { error.column() as u64 };
    format!("{message} at line {line}, column {column}")
}

// ---- the fields read from a product ----

/// A record type read from a JSON object: the named fields, each as leniently
/// as its type reads; other keys are skipped.
macro_rules! loose_record {
    (struct $record:ident { $($field:ident: $type:ty),* $(,)? }) => {
        #[derive(Debug, Default)]
        struct $record<'de> {
            $($field: $type),*
        }

        impl<'de> LooseObject<'de> for $record<'de> {
            fn read_field<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
                match key {
                    $(stringify!($field) => self.$field = map.next_value()?,)*
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(())
            }
        }
    };
}

loose_record!(
    struct RawProduct {
        id: Scalar<'de>,
        title: Scalar<'de>,
        handle: Scalar<'de>,
        body_html: Scalar<'de>,
        vendor: Scalar<'de>,
        product_type: Scalar<'de>,
        status: Scalar<'de>,
        tags: TextList<'de>,
        options: List<Shaped<RawOption<'de>>>,
        variants: List<Shaped<RawVariant<'de>>>,
        images: List<Shaped<RawImage<'de>>>,
        image: Shaped<RawImage<'de>>,
    }
);

loose_record!(
    struct RawOption {
        name: Scalar<'de>,
        values: TextList<'de>,
        position: Scalar<'de>,
    }
);

loose_record!(
    struct RawImage {
        id: Scalar<'de>,
        src: Scalar<'de>,
        url: Scalar<'de>,
        width: Scalar<'de>,
        height: Scalar<'de>,
    }
);

loose_record!(
    struct RawVariant {
        id: Scalar<'de>,
        sku: Scalar<'de>,
        barcode: Scalar<'de>,
        option1: Scalar<'de>,
        option2: Scalar<'de>,
        option3: Scalar<'de>,
        price: Scalar<'de>,
        compare_at_price: Scalar<'de>,
        available: Scalar<'de>,
        inventory_quantity: Scalar<'de>,
        inventory_management: Scalar<'de>,
        inventory_policy: Scalar<'de>,
        image_id: Scalar<'de>,
        featured_image: Shaped<RawImage<'de>>,
    }
);

// ---- conversion of one product ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OptionRole {
    Color,
    Size,
    /// Shopify's placeholder option ("Title" / "Default Title") of single-variant products.
    Placeholder,
    Other,
}

fn option_role(name: &str, values: &[String]) -> OptionRole {
    let lower = name.trim().to_lowercase();
    if matches!(lower.as_str(), "title" | "default" | "cj default")
        && values.iter().all(|v| v.eq_ignore_ascii_case("default title") || v.eq_ignore_ascii_case("default"))
    {
        return OptionRole::Placeholder;
    }
    if matches!(
        lower.as_str(),
        "color" | "colour" | "colors" | "colours" | "color classification" | "colour classification" | "color name"
    ) {
        return OptionRole::Color;
    }
    if lower.contains("size") {
        return OptionRole::Size;
    }
    OptionRole::Other
}

struct ShopifyOption {
    name: String,
    role: OptionRole,
    values: Vec<String>,
}

fn options_of(product: &RawProduct<'_>) -> Vec<ShopifyOption> {
    let mut parsed: Vec<(u64, ShopifyOption)> = product
        .options
        .0
        .iter()
        .enumerate()
        .filter_map(|(index, option)| {
            let option = option.object()?;
            let name = option.name.text()?;
            let values = option.values.values();
            let position = option.position.as_u64().unwrap_or(index as u64 + 1);
            let role = option_role(&name, &values);
            Some((position, ShopifyOption { name, role, values }))
        })
        .collect();
    parsed.sort_by_key(|(position, _)| *position);
    parsed.into_iter().map(|(_, option)| option).collect()
}

fn image_of(image: &Shaped<RawImage<'_>>) -> Option<(Option<u64>, Image)> {
    let image = image.object()?;
    let url = image.src.text().or_else(|| image.url.text())?;
    let dimension = |value: &Scalar<'_>| value.as_u64().and_then(|n| u32::try_from(n).ok()).filter(|n| *n > 0);
    let parsed = Image { url, width: dimension(&image.width), height: dimension(&image.height), ..Image::default() };
    Some((image.id.as_u64(), parsed))
}

fn price_of(value: &Scalar<'_>, what: &str, variant_number: usize) -> Result<Option<f64>, Skip> {
    let context = |skip: Skip| Skip::new(skip.kind, format!("variant {variant_number}: {what} {}", skip.reason));
    match value {
        Scalar::Absent | Scalar::Null => Ok(None),
        Scalar::Number(number) => {
            let amount = number.as_f64().ok_or_else(|| Skip::new(RecordErrorKind::InvalidPrice, "unreadable price"))?;
            check_price_number(amount).map(Some).map_err(|error| context(error.into()))
        }
        Scalar::Text(raw) => {
            parse_price(raw).map(|parsed| parsed.map(|p| p.amount)).map_err(|error| context(error.into()))
        }
        other => Err(Skip::new(
            RecordErrorKind::InvalidPrice,
            format!("variant {variant_number}: {what} {other} is not a number"),
        )),
    }
}

struct ParsedVariant {
    variant: Variant,
    option_values: Vec<Option<String>>,
    price: Option<f64>,
    compare_at: Option<f64>,
}

fn variant_of(
    raw: &Shaped<RawVariant<'_>>,
    number: usize,
    options: &[ShopifyOption],
    images: &[(Option<u64>, Image)],
    product_url: &str,
) -> Result<Option<ParsedVariant>, Skip> {
    let Some(raw) = raw.object() else { return Ok(None) };
    let option_values: Vec<Option<String>> = [&raw.option1, &raw.option2, &raw.option3].map(Scalar::text).into();
    let value_for = |role: OptionRole| {
        options
            .iter()
            .position(|option| option.role == role)
            .and_then(|index| option_values.get(index).cloned().flatten())
    };
    let price = price_of(&raw.price, "price", number)?;
    let compare_at = price_of(&raw.compare_at_price, "compare_at_price", number)?.filter(|p| *p > 0.0);
    let image_url = image_of(&raw.featured_image).map(|(_, image)| image.url).or_else(|| {
        let image_id = raw.image_id.as_u64()?;
        images.iter().find(|(id, _)| *id == Some(image_id)).map(|(_, image)| image.url.clone())
    });
    let variant = Variant {
        sku: raw.sku.text(),
        product_url: raw.id.text().map(|id| format!("{product_url}?variant={id}")),
        color: value_for(OptionRole::Color).map(Color::labelled),
        size: value_for(OptionRole::Size),
        in_stock: variant_in_stock(raw),
        image_url,
        price,
    };
    Ok(Some(ParsedVariant { variant, option_values, price, compare_at }))
}

/// Storefront feeds say `available`; Admin exports give inventory, which only
/// limits sales when Shopify tracks it and the policy is "deny".
fn variant_in_stock(variant: &RawVariant<'_>) -> Option<bool> {
    if let Some(available) = variant.available.as_bool() {
        return Some(available);
    }
    let quantity = variant.inventory_quantity.as_i64()?;
    let tracked = variant.inventory_management.is_given();
    let oversells = variant.inventory_policy.as_str() == Some("continue");
    Some(quantity > 0 || !tracked || oversells)
}

fn convert(product: &Shaped<RawProduct<'_>>, base_url: &str) -> Result<Draft, Skip> {
    let raw = match product {
        Shaped::Object(raw) => raw,
        Shaped::Other(kind) => return Err(Skip::malformed(format!("expected a product object, found {kind}"))),
    };
    if let Some(status) = raw.status.text() {
        if !status.eq_ignore_ascii_case("active") {
            return Err(Skip::new(
                RecordErrorKind::Inactive,
                format!("status {status:?} (only active products are imported)"),
            ));
        }
    }
    let handle = raw
        .handle
        .text()
        .ok_or_else(|| Skip::new(RecordErrorKind::MissingUrl, "missing handle (the product URL is built from it)"))?;
    let url = format!(
        "{base_url}/products/{}",
        percent_encoding::utf8_percent_encode(&handle, crate::csv_feed::PATH_SEGMENT)
    );

    let mut images: Vec<(Option<u64>, Image)> = raw.images.0.iter().filter_map(image_of).collect();
    if images.is_empty() {
        images.extend(image_of(&raw.image));
    }
    let options = options_of(raw);
    let variants: Vec<ParsedVariant> = raw
        .variants
        .0
        .iter()
        .enumerate()
        .map(|(index, item)| variant_of(item, index + 1, &options, &images, &url))
        .collect::<Result<Vec<_>, Skip>>()?
        .into_iter()
        .flatten()
        .collect();

    let mut product = Product {
        url,
        title: raw.title.text().unwrap_or_default(),
        description: raw.body_html.as_str().map(html_to_text).filter(|t| !t.is_empty()),
        brand: raw.vendor.text().map(|name| octogen_core::product::Brand { name, ..Default::default() }),
        product_type: raw.product_type.text(),
        tags: raw.tags.values(),
        identifiers: Identifiers { product_id: raw.id.text(), gtin: None, product_group_id: raw.id.text() },
        ..Product::default()
    };
    apply_options(&mut product, &options, &variants);
    apply_prices(&mut product, &variants);
    product.identifiers.gtin = first_gtin(raw);
    product.images = images.into_iter().map(|(_, image)| image).collect();
    product.variants = variants.into_iter().map(|parsed| parsed.variant).collect();
    Ok(Draft { product, ..Draft::default() })
}

/// A barcode that looks like a GTIN (8, 12, 13 or 14 digits) on the first variant that has one.
fn first_gtin(product: &RawProduct<'_>) -> Option<String> {
    product
        .variants
        .0
        .iter()
        .filter_map(Shaped::object)
        .filter_map(|variant| variant.barcode.text())
        .find(|barcode| matches!(barcode.len(), 8 | 12 | 13 | 14) && barcode.chars().all(|c| c.is_ascii_digit()))
}

/// Color and size options become `colors` / `sizes`; the rest `attributes`.
fn apply_options(product: &mut Product, options: &[ShopifyOption], variants: &[ParsedVariant]) {
    for (index, option) in options.iter().enumerate() {
        // Option lists in exports can be stale; values actually used by variants count too.
        let mut values = option.values.clone();
        for parsed in variants {
            if let Some(Some(value)) = parsed.option_values.get(index) {
                if !values.contains(value) {
                    values.push(value.clone());
                }
            }
        }
        match option.role {
            OptionRole::Color => product.colors.extend(values.into_iter().map(Color::labelled)),
            OptionRole::Size => product.sizes.extend(values),
            OptionRole::Placeholder => {}
            OptionRole::Other => {
                product.attributes.entry(option.name.clone()).or_default().extend(values);
            }
        }
    }
}

/// Current price: the cheapest purchasable variant (or the first variant when
/// none is); original price: that variant's compare-at price.
fn apply_prices(product: &mut Product, variants: &[ParsedVariant]) {
    let priced = || variants.iter().filter(|parsed| parsed.price.is_some());
    let cheapest_available = priced()
        .filter(|parsed| parsed.variant.in_stock != Some(false))
        .min_by(|a, b| a.price.partial_cmp(&b.price).unwrap_or(std::cmp::Ordering::Equal));
    let chosen = cheapest_available.or_else(|| priced().next());
    if let Some(chosen) = chosen {
        product.current_price = chosen.price;
        product.original_price = chosen.compare_at;
    }
    let stock: Vec<bool> = variants.iter().filter_map(|parsed| parsed.variant.in_stock).collect();
    product.in_stock = (!stock.is_empty()).then(|| stock.iter().any(|&in_stock| in_stock));
}

#[cfg(test)]
mod tests {
    use std::ops::ControlFlow;

    use super::*;
    use crate::{parse_feed_to_vec, FeedRecord, FeedSummary};

    fn options() -> FeedOptions {
        FeedOptions {
            base_url: Some("https://spacire.com/".into()),
            default_currency: Some("GBP".into()),
            ..FeedOptions::default()
        }
    }

    fn parse(input: &str) -> Result<(Vec<FeedRecord>, FeedSummary), FeedError> {
        parse_feed_to_vec(FeedFormat::Shopify, input.as_bytes(), &options())
    }

    fn fixture(name: &str) -> String {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
    }

    #[test]
    fn storefront_feed() {
        let (records, summary) = parse(&fixture("shopify-storefront.json")).unwrap();
        assert_eq!(summary, FeedSummary { records: 3, accepted: 2, skipped: 1, stopped_early: false });
        let tee = records[0].as_ref().unwrap();
        assert_eq!(tee.url, "https://spacire.com/products/organic-cotton-tee");
        assert_eq!(tee.title, "Organic Cotton Tee");
        assert_eq!(tee.brand.as_ref().unwrap().name, "Northwind");
        assert_eq!(tee.description.as_deref(), Some("Soft organic cotton tee.\nRelaxed fit & breathable."));
        assert_eq!(tee.current_price, Some(25.0), "cheapest available variant");
        assert_eq!(tee.original_price, Some(30.0));
        assert_eq!(tee.currency.as_deref(), Some("GBP"));
        assert_eq!(tee.in_stock, Some(true));
        assert_eq!(tee.sizes, ["s", "m", "l"]);
        let colors: Vec<&str> = tee.colors.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(colors, ["Navy", "Off White"]);
        assert_eq!(tee.enrichment.color_family, ["Blue", "White"]);
        assert_eq!(tee.tags, ["organic", "summer"]);
        assert_eq!(tee.images.len(), 2);
        assert_eq!(tee.images[0].width, Some(1200));
        assert_eq!(tee.variants.len(), 3);
        let sold_out = &tee.variants[2];
        assert_eq!(sold_out.in_stock, Some(false));
        assert_eq!(sold_out.size.as_deref(), Some("L"));
        assert_eq!(sold_out.color.as_ref().unwrap().label, "Off White");
        assert_eq!(
            sold_out.product_url.as_deref(),
            Some("https://spacire.com/products/organic-cotton-tee?variant=103")
        );
        assert_eq!(tee.variants[0].image_url.as_deref(), Some("https://cdn.example/tee-navy.jpg"));
        assert_eq!(tee.attributes["Material"], ["Organic cotton"]);
        assert_eq!(tee.enrichment.product_type.as_deref(), Some("t-shirt"));

        let sold_out_mug = records[1].as_ref().unwrap();
        assert_eq!(sold_out_mug.in_stock, Some(false));
        assert_eq!(sold_out_mug.current_price, Some(12.0), "first variant when none is available");
        assert!(sold_out_mug.attributes.is_empty(), "Default Title is a placeholder");

        let error = records[2].as_ref().unwrap_err();
        assert_eq!(error.to_string(), "record 3 (line 45): variant 1: price negative price \"-3.00\"");
        assert_eq!(error.kind, RecordErrorKind::InvalidPrice);
    }

    #[test]
    fn admin_export_with_status_and_inventory() {
        let (records, summary) = parse(&fixture("shopify-admin.json")).unwrap();
        assert_eq!((summary.accepted, summary.skipped), (1, 1));
        let blanket = records[0].as_ref().unwrap();
        assert_eq!(blanket.in_stock, Some(true));
        assert_eq!(blanket.variants[0].in_stock, Some(false), "inventory 0 and policy deny");
        assert_eq!(blanket.variants[1].in_stock, Some(true));
        assert_eq!(blanket.current_price, Some(90.74), "the only available variant");
        assert_eq!(blanket.original_price, Some(117.96));
        assert_eq!(blanket.attributes["Dimensions"], ["104×152cm", "122×183cm15lbs"]);
        assert_eq!(blanket.tags, ["calming blanket", "weighted blanket"]);
        assert_eq!(blanket.identifiers.gtin.as_deref(), Some("5012345678900"));
        let error = records[1].as_ref().unwrap_err();
        assert_eq!(error.kind, RecordErrorKind::Inactive);
        assert!(error.to_string().ends_with("status \"draft\" (only active products are imported)"), "{error}");
    }

    #[test]
    fn shopify_needs_a_base_url() {
        let error =
            parse_feed_to_vec(FeedFormat::Shopify, &b"{\"products\":[]}"[..], &FeedOptions::default()).unwrap_err();
        assert_eq!(error, FeedError::MissingBaseUrl { format: FeedFormat::Shopify });
    }

    #[test]
    fn truncated_json_is_named_with_its_line() {
        let input = "{\"products\": [\n{\"title\": \"A\", \"handle\": \"a\"},\n{\"title\": \"B\", \"han";
        let mut delivered = 0;
        let error = crate::parse_feed(FeedFormat::Shopify, input.as_bytes(), &options(), |_| {
            delivered += 1;
            ControlFlow::Continue(())
        })
        .unwrap_err();
        assert_eq!(delivered, 1, "records before the cut are delivered");
        assert!(matches!(error, FeedError::Truncated { line: 3, .. }), "{error:?}");
        assert_eq!(
            error.to_string(),
            "shopify feed ends early at line 3: the input ended inside a string (truncated download?)"
        );
    }

    #[test]
    fn a_malformed_product_is_skipped_and_the_feed_goes_on() {
        let input = "{\"products\": [{\"title\": \"A\", \"handle\": \"a\"},\n  {\"title\": \"B\" \"handle\": \"b\"},\n{\"title\": \"C\", \"handle\": \"c\"}]}";
        let (records, summary) = parse(input).unwrap();
        assert_eq!((summary.accepted, summary.skipped), (2, 1));
        assert_eq!(
            records[1].as_ref().unwrap_err().to_string(),
            "record 2 (line 2): invalid JSON: expected `,` or `}` at line 2, column 17"
        );
    }

    #[test]
    fn structure_errors_between_products_stop_the_feed() {
        let error = parse("[{\"title\": \"A\", \"handle\": \"a\"} {\"title\": \"B\"}]").unwrap_err();
        assert_eq!(
            error.to_string(),
            "shopify feed is malformed at line 1, column 32: expected ',' or ']' after a product, found '{'"
        );
    }

    #[test]
    fn wrong_shapes_are_named() {
        assert_eq!(
            parse("ProductID,ProductName\n1,x").unwrap_err().to_string(),
            "the input is not a shopify feed: found text starting with \"ProductID,ProductName\""
        );
        assert!(matches!(parse("<!doctype html><html></html>").unwrap_err(), FeedError::Html { .. }));
        assert_eq!(
            parse("{\"items\": []}").unwrap_err().to_string(),
            "the input is not a shopify feed: found JSON without a \"products\" array"
        );
        assert_eq!(
            parse("{\"products\": 5}").unwrap_err().to_string(),
            "shopify feed is malformed at line 1, column 14: \"products\" is not an array"
        );
        let (records, _) = parse("[1, {\"title\": \"x\", \"handle\": \"x\"}]").unwrap();
        assert_eq!(
            records[0].as_ref().unwrap_err().to_string(),
            "record 1 (line 1): expected a product object, found a number"
        );
        assert!(records[1].is_ok());
        let (records, _) = parse("{\"product\": {\"title\": \"Solo\", \"handle\": \"solo\"}}").unwrap();
        assert_eq!(records.len(), 1);
    }

    #[test]
    fn missing_title_and_handle_are_named() {
        let (records, _) = parse("[{\"handle\": \"a\"}, {\"title\": \"B\"}]").unwrap();
        assert_eq!(records[0].as_ref().unwrap_err().to_string(), "record 1 (line 1): missing title");
        assert_eq!(
            records[1].as_ref().unwrap_err().to_string(),
            "record 2 (line 1): missing handle (the product URL is built from it)"
        );
    }

    #[test]
    fn duplicate_handles_skip_the_later_product() {
        let (records, _) =
            parse("[{\"title\": \"A\", \"handle\": \"a\"},\n{\"title\": \"A again\", \"handle\": \"a\"}]").unwrap();
        assert_eq!(
            records[1].as_ref().unwrap_err().to_string(),
            "record 2 (line 2): duplicate product URL https://spacire.com/products/a (first seen at record 1)"
        );
    }

    #[test]
    fn the_caller_can_stop_early() {
        let input = "[{\"title\": \"A\", \"handle\": \"a\"}, {\"title\": \"B\", \"handle\": \"b\"}, {\"title\": \"C\", \"handle\": \"c\"}]";
        let mut seen = 0;
        let summary = crate::parse_feed(FeedFormat::Shopify, input.as_bytes(), &options(), |_| {
            seen += 1;
            if seen == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
        assert_eq!(summary, FeedSummary { records: 2, accepted: 2, skipped: 0, stopped_early: true });
    }

    #[test]
    fn huge_titles_skip_and_huge_descriptions_truncate() {
        let long_title = "T".repeat(1_001);
        let long_body = "<p>word </p>".repeat(5_000);
        let input = serde_json::json!({"products": [
            {"title": long_title, "handle": "a"},
            {"title": "Fine", "handle": "b", "body_html": long_body},
        ]})
        .to_string();
        let (records, _) = parse(&input).unwrap();
        assert_eq!(
            records[0].as_ref().unwrap_err().to_string(),
            "record 1 (line 1): title is 1001 characters long (limit 1000)"
        );
        let description = records[1].as_ref().unwrap().description.as_deref().unwrap();
        assert!(description.chars().count() <= 20_000);
        assert!(description.ends_with('…'));
    }

    /// Fields of unexpected types are read as a `serde_json::Value` tree would
    /// have given them to the converter (the parser used one before): numbers as
    /// text, lists and objects where text is expected as nothing, the last of a
    /// repeated key. Checked against the `Value`-based parser on these records,
    /// the Spacire feed and 30k generated products when the typed one replaced it.
    #[test]
    fn fields_of_unexpected_types_are_read_leniently() {
        let feed = r#"{"products": [
 {"id": "2", "title": 42, "handle": 17, "body_html": 5, "vendor": 9, "tags": ["x", 3, {"o": 1}, null, "  "],
  "variants": "none", "options": {"name": "x"}, "images": {"src": "x"}, "image": {"src": "https://cdn.example/one.jpg"}},
 {"title": "Dup", "title": "Dup Second", "handle": "dup", "handle": "dup-2", "variants": [7, {"price": "2", "price": "0.5"}]},
 {"title": "Admin", "handle": "admin", "options": [{"name": "Size", "values": "L, XL", "position": 2.5}],
  "variants": [{"option1": "L", "inventory_quantity": 0, "inventory_management": "shopify", "price": 5, "barcode": 1234567890123},
               {"option1": "XL", "inventory_quantity": -1, "inventory_management": null, "price": 4}]},
 {"title": "Status", "handle": "status", "status": 3},
 {"title": "Bad", "handle": "bad", "variants": [{"id": 1}, {"price": [1, {"a": true}]}]},
 ["an", "array"]
]}"#;
        let (records, summary) = parse(feed).unwrap();
        assert_eq!((summary.accepted, summary.skipped), (3, 3));
        let numbers = records[0].as_ref().unwrap();
        assert_eq!((numbers.title.as_str(), numbers.url.as_str()), ("42", "https://spacire.com/products/17"));
        assert_eq!(numbers.brand.as_ref().unwrap().name, "9");
        assert_eq!(numbers.description, None);
        assert_eq!(numbers.tags, ["x", "3"]);
        assert!(numbers.variants.is_empty() && numbers.attributes.is_empty());
        assert_eq!(numbers.images[0].url, "https://cdn.example/one.jpg");
        assert_eq!(numbers.identifiers.product_id.as_deref(), Some("2"));

        let repeated = records[1].as_ref().unwrap();
        assert_eq!(
            (repeated.title.as_str(), repeated.url.as_str()),
            ("Dup Second", "https://spacire.com/products/dup-2")
        );
        assert_eq!(repeated.current_price, Some(0.5));

        let admin = records[2].as_ref().unwrap();
        assert_eq!(admin.sizes, ["l", "xl"]);
        assert_eq!(admin.variants[0].in_stock, Some(false), "tracked, none left");
        assert_eq!(admin.variants[1].in_stock, Some(true), "not tracked");
        assert_eq!(admin.identifiers.gtin.as_deref(), Some("1234567890123"));

        let errors: Vec<String> = records[3..].iter().map(|record| record.as_ref().unwrap_err().to_string()).collect();
        assert_eq!(
            errors,
            [
                "record 4 (line 8): status \"3\" (only active products are imported)",
                "record 5 (line 9): variant 2: price [1,{\"a\":true}] is not a number",
                "record 6 (line 10): expected a product object, found an array",
            ]
        );
    }
}

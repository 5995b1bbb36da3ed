//! Google Merchant Center feeds: RSS 2.0 (or Atom) XML with the `g:`
//! namespace, and tab-separated values with a header row.
//!
//! Each `<item>` / row is one offer. Items sharing an `item_group_id` are the
//! variants of one product; a group is emitted when a different group has
//! followed it for a while, so feeds that list a group's variants together
//! (as Merchant Center exports do) are grouped exactly with bounded memory.
//! A group id that reappears after its group was emitted is a record error.

use std::collections::{HashMap, VecDeque};
use std::io::BufRead;
use std::ops::ControlFlow;

use octogen_core::product::{Brand, Color, Image, Variant};
use octogen_core::Product;
use quick_xml::events::Event;

use crate::csv_feed::{availability, csv_error};
use crate::enrich::FeedHints;
use crate::error::{RecordErrorKind, RecordLocation, Skip};
use crate::pipeline::{Draft, RecordSink};
use crate::reader::TrackedReader;
use crate::sniff::{sniff, Sniffed};
use crate::text::{collapse_whitespace, decode_entities, html_to_text, parse_price, split_list, split_path};
use crate::{FeedError, FeedFormat};

/// Groups kept open while other groups follow; older ones are emitted.
const OPEN_GROUPS: usize = 64;

/// One offer: attribute name (without `g:`, lowercase) → values in feed order.
#[derive(Debug, Clone, Default)]
struct Item {
    fields: Vec<(String, String)>,
    line: u64,
}

impl Item {
    fn push(&mut self, name: &str, value: String) {
        let value = value.trim();
        if !value.is_empty() {
            self.fields.push((name.to_string(), value.to_string()));
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(field, _)| field == name).map(|(_, value)| value.as_str())
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields.iter().filter(move |(field, _)| field == name).map(|(_, value)| value.as_str())
    }

    /// Merchant Center's `g:` attributes win over RSS's own elements of the same name.
    fn label(&self) -> String {
        self.get("id").map_or_else(|| format!("at line {}", self.line), |id| format!("{id:?}"))
    }
}

struct Group {
    id: Option<String>,
    items: Vec<Item>,
}

/// Collects items into groups and emits them as records, in order of first appearance.
struct Grouper<'s, S> {
    sink: &'s mut S,
    open: VecDeque<Group>,
    emitted_groups: HashMap<String, u64>,
    records: u64,
    max_variants: usize,
}

impl<'s, S: RecordSink> Grouper<'s, S> {
    fn new(sink: &'s mut S, max_variants: usize) -> Self {
        Grouper { sink, open: VecDeque::new(), emitted_groups: HashMap::new(), records: 0, max_variants }
    }

    fn add(&mut self, item: Item) -> ControlFlow<()> {
        let Some(group_id) = item.get("item_group_id").map(str::to_string) else {
            self.open.push_back(Group { id: None, items: vec![item] });
            return self.emit_overflow();
        };
        if let Some(group) = self.open.iter_mut().find(|group| group.id.as_deref() == Some(&group_id)) {
            if group.items.len() < self.max_variants {
                group.items.push(item);
            }
            return ControlFlow::Continue(());
        }
        if let Some(&first) = self.emitted_groups.get(&group_id) {
            self.records += 1;
            let skip = Skip::malformed(format!(
                "item {} of item_group_id {group_id:?} comes after its group was emitted as record {first}; \
                 list a group's variants together",
                item.label()
            ));
            return self.sink.submit(RecordLocation::new(self.records, Some(item.line)), Err(skip));
        }
        self.open.push_back(Group { id: Some(group_id), items: vec![item] });
        self.emit_overflow()
    }

    /// Keeps the most recent groups open; single items need no waiting but are
    /// emitted in order behind older open groups.
    fn emit_overflow(&mut self) -> ControlFlow<()> {
        while self.open.len() > OPEN_GROUPS || self.open.front().is_some_and(|group| group.id.is_none()) {
            let Some(group) = self.open.pop_front() else { break };
            self.emit(group)?;
        }
        ControlFlow::Continue(())
    }

    fn emit(&mut self, group: Group) -> ControlFlow<()> {
        self.records += 1;
        if let Some(id) = &group.id {
            self.emitted_groups.insert(id.clone(), self.records);
        }
        let line = group.items.first().map(|item| item.line);
        self.sink.submit(RecordLocation::new(self.records, line), group_to_draft(&group))
    }

    fn finish(mut self) -> ControlFlow<()> {
        while let Some(group) = self.open.pop_front() {
            self.emit(group)?;
        }
        ControlFlow::Continue(())
    }
}

// ---- XML ----

pub fn parse_xml<R: BufRead>(
    reader: &mut TrackedReader<R>,
    limits: &crate::Limits,
    sink: &mut impl RecordSink,
) -> Result<(), FeedError> {
    const FORMAT: FeedFormat = FeedFormat::MerchantXml;
    let tracker = reader.tracker();
    let sniffed = sniff(reader).map_err(|error| FeedError::Io { line: 1, message: error.to_string() })?;
    match &sniffed {
        Sniffed::Xml { root } if root == "rss" || root == "feed" => {}
        Sniffed::Xml { root } => {
            return Err(FeedError::WrongFormat {
                format: FORMAT,
                found: format!("found XML with root element <{root}>, expected <rss> or <feed>"),
            })
        }
        other => return Err(other.mismatch(FORMAT)),
    }
    let mut xml = quick_xml::Reader::from_reader(reader);
    xml.config_mut().expand_empty_elements = true;
    let mut grouper = Grouper::new(sink, limits.max_variants);
    let mut buffer = Vec::new();
    let mut depth = 0usize;
    let mut item: Option<(Item, usize)> = None;
    let mut field: Option<(String, String)> = None;
    let syntax = |line: u64, message: String| FeedError::Syntax { format: FORMAT, line, column: 0, message };
    loop {
        let event = xml.read_event_into(&mut buffer).map_err(|error| syntax(tracker.line(), error.to_string()))?;
        match event {
            Event::Start(start) => {
                depth += 1;
                let name = local_name(start.local_name().as_ref());
                match (&item, &field) {
                    (None, _) if name == "item" || name == "entry" => {
                        tracker.mark_record_start();
                        item = Some((Item { line: tracker.line(), ..Item::default() }, depth));
                    }
                    (Some((_, item_depth)), None) if depth == item_depth + 1 => {
                        let href = attribute(&start, b"href");
                        field = Some((name, href.unwrap_or_default()));
                    }
                    _ => {}
                }
            }
            Event::End(_) => {
                let item_depth = item.as_ref().map(|(_, item_depth)| *item_depth);
                if item_depth.is_some_and(|item_depth| depth == item_depth + 1) {
                    if let (Some((current, _)), Some((name, text))) = (item.as_mut(), field.take()) {
                        current.push(&name, text);
                    }
                } else if item_depth == Some(depth) {
                    if let Some((finished, _)) = item.take() {
                        if grouper.add(finished).is_break() {
                            return Ok(());
                        }
                    }
                }
                depth = depth.saturating_sub(1);
            }
            Event::Text(text) => {
                if let Some((_, value)) = field.as_mut() {
                    value.push_str(&text.xml10_content().map_err(|error| syntax(tracker.line(), error.to_string()))?);
                }
            }
            Event::CData(data) => {
                if let Some((_, value)) = field.as_mut() {
                    value.push_str(&data.decode().map_err(|error| syntax(tracker.line(), error.to_string()))?);
                }
            }
            Event::GeneralRef(reference) => {
                if let Some((_, value)) = field.as_mut() {
                    let resolved = match reference.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        _ => {
                            let name = String::from_utf8_lossy(&reference);
                            decode_entities(&format!("&{name};"))
                        }
                    };
                    value.push_str(&resolved);
                }
            }
            Event::Eof => {
                if depth > 0 {
                    let open = if item.is_some() { "an <item>" } else { "the document" };
                    return Err(FeedError::Truncated {
                        format: FORMAT,
                        line: tracker.line(),
                        message: format!("the input ended inside {open}"),
                    });
                }
                break;
            }
            _ => {}
        }
        buffer.clear();
    }
    let _ = grouper.finish();
    Ok(())
}

fn local_name(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).to_ascii_lowercase()
}

fn attribute(start: &quick_xml::events::BytesStart<'_>, name: &[u8]) -> Option<String> {
    start
        .attributes()
        .flatten()
        .find(|attribute| attribute.key.local_name().as_ref() == name)
        .map(|attribute| String::from_utf8_lossy(&attribute.value).into_owned())
}

// ---- TSV ----

pub fn parse_tsv<R: BufRead>(
    reader: &mut TrackedReader<R>,
    limits: &crate::Limits,
    sink: &mut impl RecordSink,
) -> Result<(), FeedError> {
    const FORMAT: FeedFormat = FeedFormat::MerchantTsv;
    let tracker = reader.tracker();
    let sniffed = sniff(reader).map_err(|error| FeedError::Io { line: 1, message: error.to_string() })?;
    if !matches!(sniffed, Sniffed::Text { .. }) {
        return Err(sniffed.mismatch(FORMAT));
    }
    // Google's TSV has no quoting: values never contain tabs or newlines.
    let mut tsv = csv::ReaderBuilder::new().delimiter(b'\t').quoting(false).flexible(true).from_reader(reader);
    let headers: Vec<String> = tsv
        .headers()
        .map_err(|error| csv_error(&error))?
        .iter()
        .map(|header| header.trim().trim_start_matches("g:").to_ascii_lowercase())
        .collect();
    if headers.len() < 2 {
        return Err(FeedError::WrongFormat {
            format: FORMAT,
            found: format!("the header has no tabs: {:?}", headers.first().map(String::as_str).unwrap_or_default()),
        });
    }
    let missing: Vec<String> = ["title", "link"]
        .iter()
        .filter(|name| !headers.iter().any(|h| h == *name))
        .map(|name| name.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(FeedError::MissingColumns { format: FORMAT, columns: missing });
    }
    let mut grouper = Grouper::new(sink, limits.max_variants);
    let mut record = csv::StringRecord::new();
    while tsv.read_record(&mut record).map_err(|error| csv_error(&error))? {
        tracker.mark_record_start();
        let line = record.position().map_or(0, |position| position.line());
        let mut item = Item { line, ..Item::default() };
        for (name, value) in headers.iter().zip(record.iter()) {
            if name == "additional_image_link" {
                split_list(value, ',').into_iter().for_each(|link| item.push(name, link));
            } else {
                item.push(name, value.to_string());
            }
        }
        if item.fields.is_empty() {
            continue;
        }
        if grouper.add(item).is_break() {
            return Ok(());
        }
    }
    let _ = grouper.finish();
    Ok(())
}

// ---- items to products ----

struct Offer {
    current: Option<f64>,
    original: Option<f64>,
    currency: Option<String>,
    in_stock: Option<bool>,
}

fn offer_of(item: &Item) -> Result<Offer, Skip> {
    let parse = |field: &str| -> Result<Option<(f64, Option<String>)>, Skip> {
        let Some(raw) = item.get(field) else { return Ok(None) };
        let parsed = parse_price(raw).map_err(|error| {
            Skip::new(RecordErrorKind::InvalidPrice, format!("item {}: {field}: {error}", item.label()))
        })?;
        Ok(parsed.map(|price| (price.amount, price.currency)))
    };
    let price = parse("price")?;
    let sale = parse("sale_price")?;
    let (current, original) = match (sale, price) {
        (Some(sale), Some(regular)) => (Some(sale), Some(regular)),
        (sale, regular) => (sale.or(regular), None),
    };
    Ok(Offer {
        currency: current.as_ref().and_then(|(_, currency)| currency.clone()),
        current: current.map(|(amount, _)| amount),
        original: original.map(|(amount, _)| amount),
        in_stock: item.get("availability").and_then(availability),
    })
}

fn group_to_draft(group: &Group) -> Result<Draft, Skip> {
    let Some(first) = group.items.first() else { return Err(Skip::malformed("empty item group")) };
    let offers: Vec<Offer> = group.items.iter().map(offer_of).collect::<Result<_, _>>()?;
    let mut product = Product {
        url: first.get("link").unwrap_or_default().to_string(),
        title: first.get("title").map(decode_entities).unwrap_or_default(),
        description: first.get("description").map(html_to_text),
        brand: first.get("brand").map(|name| Brand { name: decode_entities(name), ..Brand::default() }),
        product_type: first.get("product_type").and_then(|path| split_path(&decode_entities(path)).pop()),
        ..Product::default()
    };
    product.identifiers.product_id = group.id.clone().or_else(|| first.get("id").map(str::to_string));
    product.identifiers.gtin = first.get("gtin").map(str::to_string);
    product.identifiers.product_group_id = group.id.clone();

    for item in &group.items {
        let image = item.get("image_link").map(str::to_string);
        let images = image.iter().map(String::as_str).chain(item.all("additional_image_link"));
        for url in images {
            if !product.images.iter().any(|known| known.url == url) {
                product.images.push(Image::from_url(url));
            }
        }
        push_unique(&mut product.sizes, item.get("size"));
        if let Some(color) = item.get("color") {
            if !product.colors.iter().any(|known| known.label == color) {
                product.colors.push(Color::labelled(color));
            }
        }
        for material in item.get("material").map(|m| split_list(m, '/')).unwrap_or_default() {
            push_unique(&mut product.details.materials, Some(&material));
        }
        for pattern in item.get("pattern").map(|p| split_list(p, '/')).unwrap_or_default() {
            push_unique(&mut product.details.patterns, Some(&pattern));
        }
        push_attribute(&mut product, "condition", item.get("condition"));
    }
    if group.id.is_some() {
        product.variants = group.items.iter().zip(&offers).map(|(item, offer)| variant_of(item, offer)).collect();
    }
    apply_offers(&mut product, &offers);
    let hints = FeedHints {
        gender: first.get("gender").map(str::to_string),
        age_group: first.get("age_group").map(str::to_string),
        google_category: first.get("google_product_category").map(decode_entities),
        merchant_category: first.get("product_type").map(|path| split_path(&decode_entities(path))).unwrap_or_default(),
    };
    Ok(Draft { product, hints })
}

fn variant_of(item: &Item, offer: &Offer) -> Variant {
    Variant {
        sku: item.get("id").map(str::to_string),
        product_url: item.get("link").map(str::to_string),
        color: item.get("color").map(Color::labelled),
        size: item.get("size").map(str::to_string),
        in_stock: offer.in_stock,
        image_url: item.get("image_link").map(str::to_string),
        price: offer.current,
    }
}

/// The product shows its cheapest purchasable offer.
fn apply_offers(product: &mut Product, offers: &[Offer]) {
    let priced = || offers.iter().filter(|offer| offer.current.is_some());
    let chosen = priced()
        .filter(|offer| offer.in_stock != Some(false))
        .min_by(|a, b| a.current.partial_cmp(&b.current).unwrap_or(std::cmp::Ordering::Equal))
        .or_else(|| priced().next());
    if let Some(offer) = chosen {
        product.current_price = offer.current;
        product.original_price = offer.original;
        product.currency = offer.currency.clone();
    }
    let stock: Vec<bool> = offers.iter().filter_map(|offer| offer.in_stock).collect();
    product.in_stock = (!stock.is_empty()).then(|| stock.contains(&true));
}

fn push_unique(values: &mut Vec<String>, value: Option<&str>) {
    if let Some(value) = value.map(collapse_whitespace).filter(|value| !value.is_empty()) {
        if !values.contains(&value) {
            values.push(value);
        }
    }
}

fn push_attribute(product: &mut Product, name: &str, value: Option<&str>) {
    if let Some(value) = value {
        let values = product.attributes.entry(name.to_string()).or_default();
        push_unique(values, Some(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_feed_to_vec, FeedOptions, FeedRecord, FeedSummary};

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
    }

    fn parse(format: FeedFormat, input: &[u8]) -> Result<(Vec<FeedRecord>, FeedSummary), FeedError> {
        parse_feed_to_vec(format, input, &FeedOptions::default())
    }

    fn check_merchant_fixture(format: FeedFormat, records: &[FeedRecord]) {
        let shirt = records[0].as_ref().unwrap_or_else(|error| panic!("{format}: {error}"));
        assert_eq!(shirt.title, "Oxford Shirt");
        assert_eq!(shirt.url, "https://shop.example/products/oxford-shirt");
        assert_eq!(shirt.identifiers.product_group_id.as_deref(), Some("OX-1"));
        assert_eq!(shirt.variants.len(), 3);
        assert_eq!(shirt.sizes, ["s", "m"]);
        let colors: Vec<&str> = shirt.colors.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(colors, ["Light Blue", "White"]);
        assert_eq!(shirt.enrichment.color_family, ["Blue", "White"]);
        assert_eq!(shirt.current_price, Some(39.0), "sale price of the cheapest in-stock variant");
        assert_eq!(shirt.original_price, Some(49.0));
        assert_eq!(shirt.currency.as_deref(), Some("USD"));
        assert_eq!(shirt.in_stock, Some(true));
        assert_eq!(shirt.variants[2].in_stock, Some(false));
        assert_eq!(shirt.brand.as_ref().unwrap().name, "Northwind & Co");
        assert_eq!(shirt.enrichment.gender.as_deref(), Some("male"));
        assert_eq!(shirt.enrichment.age_groups, ["adult"]);
        assert_eq!(shirt.enrichment.category_path, ["Apparel", "Men", "Shirts"]);
        assert_eq!(shirt.enrichment.product_type.as_deref(), Some("shirt"));
        assert_eq!(shirt.details.materials, ["cotton"]);
        assert_eq!(shirt.details.patterns, ["striped"]);
        assert_eq!(shirt.identifiers.gtin.as_deref(), Some("00012345678905"));
        assert_eq!(shirt.images.len(), 3);

        let mug = records[1].as_ref().unwrap();
        assert_eq!(mug.title, "Stoneware Mug");
        assert!(mug.variants.is_empty());
        assert_eq!(mug.current_price, Some(12.5));
        assert_eq!(mug.currency.as_deref(), Some("EUR"));
        assert_eq!(mug.enrichment.category_path, ["Home & Garden", "Kitchen & Dining", "Drinkware", "Mugs"]);
        assert_eq!(mug.enrichment.product_type.as_deref(), Some("mug"));

        let bad = records[2].as_ref().unwrap_err();
        assert_eq!(bad.kind, RecordErrorKind::InvalidPrice);
        assert!(bad.reason.ends_with("item \"BAD-1\": price: price \"free USD\" is not a number"), "{bad}");
        let relative = records[3].as_ref().unwrap_err();
        assert_eq!(relative.kind, RecordErrorKind::RelativeUrl);
        let duplicate = records[4].as_ref().unwrap_err();
        assert_eq!(
            duplicate.reason,
            "duplicate product URL https://shop.example/products/mug (first seen at record 2)"
        );
    }

    #[test]
    fn rss_feed() {
        let (records, summary) = parse(FeedFormat::MerchantXml, &fixture("merchant.xml")).unwrap();
        assert_eq!((summary.records, summary.accepted, summary.skipped), (5, 2, 3));
        check_merchant_fixture(FeedFormat::MerchantXml, &records);
        assert_eq!(records[3].as_ref().unwrap_err().location, RecordLocation::new(4, Some(69)));
    }

    #[test]
    fn tsv_feed() {
        let (records, summary) = parse(FeedFormat::MerchantTsv, &fixture("merchant.tsv")).unwrap();
        assert_eq!((summary.records, summary.accepted, summary.skipped), (5, 2, 3));
        check_merchant_fixture(FeedFormat::MerchantTsv, &records);
        assert_eq!(records[3].as_ref().unwrap_err().location, RecordLocation::new(4, Some(7)));
    }

    #[test]
    fn a_group_split_far_apart_is_named() {
        let mut tsv = String::from("id\ttitle\tlink\titem_group_id\tprice\n");
        tsv.push_str("A-1\tShirt A\thttps://shop.example/a\tA\t10 USD\n");
        for group in 0..OPEN_GROUPS + 1 {
            tsv.push_str(&format!("G{group}\tItem {group}\thttps://shop.example/g{group}\tG{group}\t5 USD\n"));
        }
        tsv.push_str("A-2\tShirt A\thttps://shop.example/a?variant=2\tA\t11 USD\n");
        let (records, summary) = parse(FeedFormat::MerchantTsv, tsv.as_bytes()).unwrap();
        assert_eq!(summary.accepted, OPEN_GROUPS as u64 + 2);
        let late = records.iter().find_map(|record| record.as_ref().err()).unwrap();
        assert_eq!(
            late.to_string(),
            format!(
                "record 3 (line {}): item \"A-2\" of item_group_id \"A\" comes after its group was emitted as record 1; \
                 list a group's variants together",
                OPEN_GROUPS + 4
            )
        );
    }

    #[test]
    fn truncated_xml_is_named() {
        let mut input = fixture("merchant.xml");
        input.truncate(input.len() / 2);
        let error = parse(FeedFormat::MerchantXml, &input).unwrap_err();
        assert!(matches!(error, FeedError::Truncated { .. } | FeedError::Syntax { .. }), "{error:?}");
        assert!(error.to_string().starts_with("merchant-xml feed"), "{error}");
    }

    #[test]
    fn malformed_xml_is_named() {
        let input = b"<rss><channel><item><g:title>A</g:price></item></channel></rss>";
        let error = parse(FeedFormat::MerchantXml, input).unwrap_err();
        assert!(matches!(error, FeedError::Syntax { line: 1, .. }), "{error:?}");
    }

    #[test]
    fn wrong_inputs_are_named() {
        let html = b"<!DOCTYPE html><html><head><title>Login</title></head></html>";
        assert!(matches!(parse(FeedFormat::MerchantXml, html).unwrap_err(), FeedError::Html { .. }));
        assert!(matches!(parse(FeedFormat::MerchantTsv, html).unwrap_err(), FeedError::Html { .. }));
        assert_eq!(
            parse(FeedFormat::MerchantXml, b"<catalog><product/></catalog>").unwrap_err().to_string(),
            "the input is not a merchant-xml feed: found XML with root element <catalog>, expected <rss> or <feed>"
        );
        assert_eq!(
            parse(FeedFormat::MerchantTsv, b"id,title,link\n1,a,b\n").unwrap_err().to_string(),
            "the input is not a merchant-tsv feed: the header has no tabs: \"id,title,link\""
        );
        assert_eq!(
            parse(FeedFormat::MerchantTsv, b"id\tprice\n1\t2 USD\n").unwrap_err().to_string(),
            "merchant-tsv header lacks required column(s): title, link"
        );
        assert!(matches!(
            parse(FeedFormat::MerchantXml, b"{\"products\":[]}").unwrap_err(),
            FeedError::WrongFormat { .. }
        ));
    }

    #[test]
    fn non_utf8_xml_is_named() {
        let input = b"<rss><channel><item><g:title>Caf\xe9</g:title></item></channel></rss>";
        let error = parse(FeedFormat::MerchantXml, input).unwrap_err();
        assert_eq!(error, FeedError::NotUtf8 { offset: 32, line: 1 });
    }
}

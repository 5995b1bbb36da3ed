//! schema.org Product / ProductGroup JSON-LD inside HTML pages.
//!
//! Input is either
//! - one HTML page (the stream starts with `<`): its URL is `FeedOptions::base_url`,
//!   else the page's canonical link; or
//! - an NDJSON bundle of pages (the stream starts with `{`): one JSON object per
//!   line, `{"url": "https://shop.example/p/1", "html": "<!doctype html>…"}`, as a
//!   crawler would write them. Each page is parsed on its own, so memory is
//!   bounded by the largest page.
//!
//! On each page every `<script type="application/ld+json">` block is read,
//! `@graph`s and arrays flattened, and each Product (or ProductGroup, with its
//! `hasVariant` products as variants) becomes one record; the page's
//! BreadcrumbList applies to all of them. A page without any Product is a
//! record error, so a crawl that fetched the wrong pages is visible.

use std::io::{BufRead, Read};

use octogen_core::product::{Brand, Color, Image, Link, Rating, Review, Variant, Video};
use octogen_core::url_norm::absolutize;
use octogen_core::Product;
use serde_json::{Map, Value};

use crate::csv_feed::availability;
use crate::enrich::FeedHints;
use crate::error::{RecordErrorKind, RecordLocation, Skip};
use crate::pipeline::{Draft, RecordSink};
use crate::reader::TrackedReader;
use crate::sniff::{sniff, Sniffed};
use crate::text::{
    check_price_number, collapse_whitespace, decode_entities, find_ascii_case_insensitive, html_to_text, parse_price,
    split_path,
};
use crate::{FeedError, FeedFormat, FeedOptions};

const FORMAT: FeedFormat = FeedFormat::JsonLd;

pub fn parse<R: BufRead>(
    reader: &mut TrackedReader<R>,
    options: &FeedOptions,
    sink: &mut impl RecordSink,
) -> Result<(), FeedError> {
    let tracker = reader.tracker();
    let sniffed = sniff(reader).map_err(|error| FeedError::Io { line: 1, message: error.to_string() })?;
    let mut records = RecordCounter { sink, records: 0 };
    match sniffed {
        Sniffed::Html | Sniffed::Xml { .. } => {
            let limit = options.limits.max_page_bytes;
            let mut html = String::new();
            reader
                .take(limit + 1)
                .read_to_string(&mut html)
                .map_err(|error| FeedError::Io { line: tracker.line(), message: error.to_string() })?;
            if html.len() as u64 > limit {
                return Err(FeedError::RecordTooLarge { line: 1, limit });
            }
            let page = Page { html: &html, url: page_url(options.base_url.as_deref(), &html), line: 1 };
            let _ = records.page(&page);
            Ok(())
        }
        Sniffed::Json => parse_bundle(reader, options, &mut records),
        other => Err(other.mismatch(FORMAT)),
    }
}

fn parse_bundle<R: BufRead>(
    reader: &mut TrackedReader<R>,
    options: &FeedOptions,
    records: &mut RecordCounter<'_, impl RecordSink>,
) -> Result<(), FeedError> {
    let tracker = reader.tracker();
    let mut line = String::new();
    loop {
        line.clear();
        tracker.mark_record_start();
        let line_number = tracker.line();
        let read = reader
            .read_line(&mut line)
            .map_err(|error| FeedError::Io { line: tracker.line(), message: error.to_string() })?;
        if read == 0 {
            return Ok(());
        }
        if line.trim().is_empty() {
            continue;
        }
        let flow = match serde_json::from_str::<Value>(&line) {
            Ok(Value::Object(entry)) => {
                let html = entry.get("html").and_then(Value::as_str).unwrap_or_default();
                let url = entry.get("url").and_then(Value::as_str).or(options.base_url.as_deref());
                let url = page_url(url, html);
                records.page(&Page { html, url, line: line_number })
            }
            Ok(_) => {
                records.skip(line_number, None, Skip::malformed("bundle line is not a JSON object {\"url\", \"html\"}"))
            }
            Err(error) if error.is_eof() => {
                return Err(FeedError::Truncated { format: FORMAT, line: line_number, message: error.to_string() })
            }
            Err(error) => {
                records.skip(line_number, None, Skip::malformed(format!("bundle line is not valid JSON: {error}")))
            }
        };
        if flow.is_break() {
            return Ok(());
        }
    }
}

struct RecordCounter<'s, S> {
    sink: &'s mut S,
    records: u64,
}

struct Page<'a> {
    html: &'a str,
    url: Option<String>,
    line: u64,
}

impl<S: RecordSink> RecordCounter<'_, S> {
    fn location(&mut self, line: u64, url: Option<&str>) -> RecordLocation {
        self.records += 1;
        RecordLocation { number: self.records, line: Some(line), page_url: url.map(str::to_string) }
    }

    fn skip(&mut self, line: u64, url: Option<&str>, skip: Skip) -> std::ops::ControlFlow<()> {
        let location = self.location(line, url);
        self.sink.submit(location, Err(skip))
    }

    fn page(&mut self, page: &Page<'_>) -> std::ops::ControlFlow<()> {
        let url = page.url.as_deref();
        let blocks = script_blocks(page.html);
        let mut nodes = Vec::new();
        for (index, block) in blocks.iter().enumerate() {
            let line = page.line + line_offset(page.html, block.offset);
            match serde_json::from_str::<Value>(strip_wrappers(block.content)) {
                Ok(value) => flatten(value, &mut nodes),
                Err(error) => {
                    let skip = Skip::malformed(format!("JSON-LD block {} is not valid JSON: {error}", index + 1));
                    self.skip(line, url, skip)?;
                }
            }
        }
        let found = products_on_page(&nodes, url);
        if found.is_empty() {
            let skip = Skip::malformed(match blocks.len() {
                0 => "page has no JSON-LD (<script type=\"application/ld+json\">)".to_string(),
                _ => "page has no schema.org Product or ProductGroup".to_string(),
            });
            return self.skip(page.line, url, skip);
        }
        for draft in found {
            let location = self.location(page.line, url);
            self.sink.submit(location, draft)?;
        }
        std::ops::ControlFlow::Continue(())
    }
}

fn line_offset(html: &str, offset: usize) -> u64 {
    html.as_bytes()[..offset.min(html.len())].iter().filter(|&&byte| byte == b'\n').count() as u64
}

// ---- HTML scanning ----

struct ScriptBlock<'a> {
    offset: usize,
    content: &'a str,
}

/// The contents of every `<script type="application/ld+json">` element.
fn script_blocks(html: &str) -> Vec<ScriptBlock<'_>> {
    let mut blocks = Vec::new();
    let mut position = 0;
    while let Some(found) = find_ascii_case_insensitive(&html[position..], "<script") {
        let tag_start = position + found;
        let Some((attributes, tag_end)) = tag_at(html, tag_start + "<script".len()) else { break };
        let content_end =
            find_ascii_case_insensitive(&html[tag_end..], "</script").map_or(html.len(), |end| tag_end + end);
        let is_json_ld = attributes.iter().any(|(name, value)| {
            name == "type"
                && value.split(';').next().unwrap_or_default().trim().eq_ignore_ascii_case("application/ld+json")
        });
        if is_json_ld {
            blocks.push(ScriptBlock { offset: tag_start, content: &html[tag_end..content_end] });
        }
        position = content_end.max(tag_end);
    }
    blocks
}

/// Attributes of the tag whose name ends at `start`, and the index after its `>`.
/// Quoted values may contain `>`.
fn tag_at(html: &str, start: usize) -> Option<(Vec<(String, String)>, usize)> {
    let bytes = html.as_bytes();
    let mut index = start;
    let mut attributes = Vec::new();
    loop {
        while index < bytes.len() && (bytes[index].is_ascii_whitespace() || bytes[index] == b'/') {
            index += 1;
        }
        match bytes.get(index)? {
            b'>' => return Some((attributes, index + 1)),
            _ => {
                let name_start = index;
                while index < bytes.len()
                    && !matches!(bytes[index], b'=' | b'>' | b'/')
                    && !bytes[index].is_ascii_whitespace()
                {
                    index += 1;
                }
                let name = html[name_start..index].to_ascii_lowercase();
                while index < bytes.len() && bytes[index].is_ascii_whitespace() {
                    index += 1;
                }
                let mut value = String::new();
                if bytes.get(index) == Some(&b'=') {
                    index += 1;
                    while index < bytes.len() && bytes[index].is_ascii_whitespace() {
                        index += 1;
                    }
                    let (value_start, value_end, next) = match bytes.get(index)? {
                        quote @ (b'"' | b'\'') => {
                            let end = html[index + 1..].find(char::from(*quote)).map(|end| index + 1 + end)?;
                            (index + 1, end, end + 1)
                        }
                        _ => {
                            let end = html[index..]
                                .find(|c: char| c.is_ascii_whitespace() || c == '>')
                                .map_or(html.len(), |end| index + end);
                            (index, end, end)
                        }
                    };
                    value = decode_entities(&html[value_start..value_end]);
                    index = next;
                }
                if !name.is_empty() {
                    attributes.push((name, value));
                } else {
                    index += 1;
                }
            }
        }
    }
}

/// The page's canonical URL: `<link rel="canonical">`, else `og:url`.
fn canonical_url(html: &str) -> Option<String> {
    let mut og_url = None;
    for tag in ["<link", "<meta"] {
        let mut position = 0;
        while let Some(found) = find_ascii_case_insensitive(&html[position..], tag) {
            let start = position + found + tag.len();
            let Some((attributes, end)) = tag_at(html, start) else { break };
            position = end;
            let get = |key: &str| attributes.iter().find(|(name, _)| name == key).map(|(_, value)| value.as_str());
            if tag == "<link"
                && get("rel").is_some_and(|rel| rel.split_whitespace().any(|r| r.eq_ignore_ascii_case("canonical")))
            {
                if let Some(href) = get("href").filter(|href| !href.trim().is_empty()) {
                    return Some(href.trim().to_string());
                }
            }
            if tag == "<meta" && get("property") == Some("og:url") {
                og_url = og_url.or_else(|| get("content").map(|content| content.trim().to_string()));
            }
        }
    }
    og_url
}

/// The URL products on a page resolve against: the given one, else the page's own canonical link.
fn page_url(given: Option<&str>, html: &str) -> Option<String> {
    let given = given.map(str::trim).filter(|url| !url.is_empty());
    match (given, canonical_url(html)) {
        (Some(given), _) => Some(given.to_string()),
        (None, Some(canonical)) if canonical.starts_with("http") => Some(canonical),
        _ => None,
    }
}

/// Some sites wrap JSON-LD in HTML comments or CDATA sections.
fn strip_wrappers(content: &str) -> &str {
    let mut text = content.trim();
    for (open, close) in [("<!--", "-->"), ("<![CDATA[", "]]>"), ("//<![CDATA[", "//]]>")] {
        if let Some(inner) = text.strip_prefix(open).and_then(|inner| inner.strip_suffix(close)) {
            text = inner.trim();
        }
    }
    text
}

// ---- JSON-LD nodes ----

/// Every node object: arrays and `@graph`s flattened; `mainEntity` of pages followed.
fn flatten(value: Value, nodes: &mut Vec<Map<String, Value>>) {
    match value {
        Value::Array(items) => items.into_iter().for_each(|item| flatten(item, nodes)),
        Value::Object(mut object) => {
            if let Some(graph) = object.remove("@graph") {
                flatten(graph, nodes);
            }
            if !types_of(&object).iter().any(|t| is_product_type(t)) {
                for key in ["mainEntity", "mainEntityOfPage", "about"] {
                    if let Some(inner @ (Value::Object(_) | Value::Array(_))) = object.get(key).cloned() {
                        flatten(inner, nodes);
                    }
                }
            }
            if object.contains_key("@type") {
                nodes.push(object);
            }
        }
        _ => {}
    }
}

fn types_of(object: &Map<String, Value>) -> Vec<String> {
    let names: Vec<&str> = match object.get("@type") {
        Some(Value::String(name)) => vec![name.as_str()],
        Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    names.into_iter().map(|name| name.rsplit(['/', ':']).next().unwrap_or(name).to_string()).collect()
}

fn is_product_type(name: &str) -> bool {
    matches!(name, "Product" | "ProductGroup" | "IndividualProduct" | "ProductModel" | "Vehicle" | "Car")
}

fn has_type(object: &Map<String, Value>, wanted: &str) -> bool {
    types_of(object).iter().any(|name| name == wanted)
}

fn products_on_page(nodes: &[Map<String, Value>], page_url: Option<&str>) -> Vec<Result<Draft, Skip>> {
    let breadcrumbs =
        nodes.iter().find(|node| has_type(node, "BreadcrumbList")).map(|list| breadcrumb_links(list, page_url));
    let groups: Vec<&Map<String, Value>> = nodes.iter().filter(|node| has_type(node, "ProductGroup")).collect();
    let group_ids: Vec<String> = groups
        .iter()
        .flat_map(|group| [string(group.get("@id")), string(group.get("productGroupID"))])
        .flatten()
        .collect();
    // Variants a group lists by reference (`"hasVariant": [{"@id": …}]`).
    let referenced: Vec<String> = groups
        .iter()
        .flat_map(|group| list(group.get("hasVariant")))
        .filter_map(|entry| entry.as_object().and_then(|object| string(object.get("@id"))))
        .collect();
    let mut drafts = Vec::new();
    for node in nodes {
        let types = types_of(node);
        if !types.iter().any(|name| is_product_type(name)) {
            continue;
        }
        let is_group = types.iter().any(|name| name == "ProductGroup");
        // Variants that name their group are read through the group.
        let is_referenced = string(node.get("@id")).is_some_and(|id| referenced.contains(&id));
        if !is_group && (is_referenced || variant_of_known_group(node, &group_ids)) {
            continue;
        }
        let variants = if is_group { group_variants(node, nodes, page_url) } else { Vec::new() };
        let mut draft = product_draft(node, page_url, variants);
        if let (Ok(draft), Some(crumbs)) = (draft.as_mut(), breadcrumbs.as_ref()) {
            draft.product.breadcrumbs = crumbs.clone();
        }
        drafts.push(draft);
    }
    drafts
}

fn variant_of_known_group(node: &Map<String, Value>, group_ids: &[String]) -> bool {
    let Some(parent) = node.get("isVariantOf") else { return false };
    let parent_id = match parent {
        Value::Object(object) => string(object.get("@id")).or_else(|| string(object.get("productGroupID"))),
        other => string(Some(other)),
    };
    parent_id.is_some_and(|id| group_ids.contains(&id))
}

fn group_variants<'a>(
    group: &'a Map<String, Value>,
    nodes: &'a [Map<String, Value>],
    page_url: Option<&str>,
) -> Vec<ParsedVariant> {
    let group_ids: Vec<String> =
        [string(group.get("@id")), string(group.get("productGroupID"))].into_iter().flatten().collect();
    let mut members: Vec<&Map<String, Value>> = Vec::new();
    for entry in list(group.get("hasVariant")) {
        match entry {
            Value::Object(object) if object.len() == 1 && object.contains_key("@id") => {
                let id = string(object.get("@id"));
                members.extend(nodes.iter().find(|node| string(node.get("@id")) == id));
            }
            Value::Object(object) => members.push(object),
            _ => {}
        }
    }
    let linked =
        nodes.iter().filter(|node| !has_type(node, "ProductGroup") && variant_of_known_group(node, &group_ids));
    for node in linked {
        if !members.iter().any(|member| std::ptr::eq(*member, node)) {
            members.push(node);
        }
    }
    members.into_iter().map(|member| parse_variant(member, page_url)).collect()
}

// ---- values ----

fn list(value: Option<&Value>) -> Vec<&Value> {
    match value {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(Value::Null) | None => Vec::new(),
        Some(other) => vec![other],
    }
}

/// Text of a value: a string, a number, `{"@value": …}`, `{"name": …}`, or the first of an array.
fn string(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(text) => Some(collapse_whitespace(&decode_entities(text))).filter(|text| !text.is_empty()),
        Value::Number(number) => Some(number.to_string()),
        Value::Array(items) => items.iter().find_map(|item| string(Some(item))),
        Value::Object(object) => string(object.get("@value")).or_else(|| string(object.get("name"))),
        _ => None,
    }
}

fn url_value(value: Option<&Value>, page_url: Option<&str>) -> Option<String> {
    let raw = match value? {
        Value::Object(object) => string(object.get("url")).or_else(|| string(object.get("@id")))?,
        other => string(Some(other))?,
    };
    match page_url {
        Some(base) => absolutize(base, &raw).or(Some(raw)),
        None => Some(raw),
    }
}

fn number(value: Option<&Value>) -> Option<f64> {
    match value? {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => parse_price(text).ok().flatten().map(|price| price.amount),
        _ => None,
    }
}

fn images(value: Option<&Value>, page_url: Option<&str>) -> Vec<Image> {
    list(value)
        .into_iter()
        .filter_map(|item| match item {
            Value::Object(object) => {
                let url =
                    url_value(object.get("contentUrl"), page_url).or_else(|| url_value(object.get("url"), page_url))?;
                let dimension = |key: &str| number(object.get(key)).filter(|n| *n >= 1.0 && *n < 1e6).map(|n| n as u32);
                Some(Image { url, width: dimension("width"), height: dimension("height"), ..Image::default() })
            }
            other => url_value(Some(other), page_url).map(Image::from_url),
        })
        .collect()
}

fn gtin(node: &Map<String, Value>) -> Option<String> {
    ["gtin", "gtin14", "gtin13", "gtin12", "gtin8", "isbn"].iter().find_map(|key| string(node.get(*key)))
}

// ---- offers ----

#[derive(Debug, Default)]
struct Offers {
    price: Option<f64>,
    original: Option<f64>,
    currency: Option<String>,
    in_stock: Option<bool>,
}

/// One priced offer found anywhere in an `offers` tree.
struct OfferCandidate {
    price: f64,
    currency: Option<String>,
    in_stock: Option<bool>,
    list_price: Option<f64>,
}

/// Offer, AggregateOffer (lowPrice, nested offers) or an array of them: the
/// cheapest purchasable price wins.
fn offers(value: Option<&Value>) -> Result<Offers, Skip> {
    let mut candidates: Vec<OfferCandidate> = Vec::new();
    collect_offers(value, &mut candidates, 0)?;
    let available = candidates.iter().filter(|candidate| candidate.in_stock != Some(false));
    let chosen = available
        .min_by(|a, b| a.price.partial_cmp(&b.price).unwrap_or(std::cmp::Ordering::Equal))
        .or_else(|| candidates.first());
    let stock: Vec<bool> = candidates.iter().filter_map(|candidate| candidate.in_stock).collect();
    Ok(Offers {
        price: chosen.map(|candidate| candidate.price),
        original: chosen.and_then(|candidate| candidate.list_price),
        currency: chosen.and_then(|candidate| candidate.currency.clone()),
        in_stock: (!stock.is_empty()).then(|| stock.contains(&true)),
    })
}

fn collect_offers(value: Option<&Value>, out: &mut Vec<OfferCandidate>, depth: u8) -> Result<(), Skip> {
    if depth > 3 {
        return Ok(());
    }
    for offer in list(value) {
        let Value::Object(offer) = offer else { continue };
        let specification = list(offer.get("priceSpecification"));
        let list_price = specification.iter().filter_map(|spec| spec.as_object()).find_map(|spec| {
            let kind = string(spec.get("priceType")).unwrap_or_default();
            kind.ends_with("ListPrice").then(|| number(spec.get("price"))).flatten()
        });
        let price = offer_price(offer.get("price"))?.or(offer_price(offer.get("lowPrice"))?).or_else(|| {
            specification.iter().filter_map(|spec| spec.as_object()).find_map(|spec| number(spec.get("price")))
        });
        match price {
            Some(price) => out.push(OfferCandidate {
                price,
                currency: string(offer.get("priceCurrency")),
                in_stock: string(offer.get("availability")).and_then(|text| availability(&text)),
                list_price,
            }),
            None => collect_offers(offer.get("offers"), out, depth + 1)?,
        }
    }
    Ok(())
}

fn offer_price(value: Option<&Value>) -> Result<Option<f64>, Skip> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => match number.as_f64() {
            Some(amount) => check_price_number(amount).map(Some).map_err(Skip::from),
            None => Ok(None),
        },
        Some(Value::String(text)) => parse_price(text).map(|parsed| parsed.map(|p| p.amount)).map_err(Skip::from),
        Some(other) => Err(Skip::new(RecordErrorKind::InvalidPrice, format!("price {other} is not a number"))),
    }
}

// ---- products ----

struct ParsedVariant {
    variant: Variant,
    offers: Offers,
}

fn parse_variant(node: &Map<String, Value>, page_url: Option<&str>) -> ParsedVariant {
    let offers = offers(node.get("offers")).unwrap_or_default();
    let variant = Variant {
        sku: string(node.get("sku")),
        product_url: url_value(node.get("url"), page_url),
        color: string(node.get("color")).map(Color::labelled),
        size: string(node.get("size")),
        in_stock: offers.in_stock,
        image_url: images(node.get("image"), page_url).into_iter().next().map(|image| image.url),
        price: offers.price,
    };
    ParsedVariant { variant, offers }
}

fn product_draft(
    node: &Map<String, Value>,
    page_url: Option<&str>,
    variants: Vec<ParsedVariant>,
) -> Result<Draft, Skip> {
    let own_offers = offers(node.get("offers"))?;
    let url = url_value(node.get("url"), page_url)
        .or_else(|| page_url.map(str::to_string))
        .or_else(|| string(node.get("@id")).filter(|id| id.starts_with("http")))
        .unwrap_or_default();
    let mut product = Product {
        url,
        title: string(node.get("name")).unwrap_or_default(),
        description: string(node.get("description")).map(|text| html_to_text(&text)),
        brand: string(node.get("brand"))
            .or_else(|| string(node.get("manufacturer")))
            .map(|name| Brand { name, ..Brand::default() }),
        images: images(node.get("image"), page_url),
        rating: rating(node.get("aggregateRating")),
        reviews: list(node.get("review")).into_iter().filter_map(review).collect(),
        videos: list(node.get("video")).into_iter().filter_map(|video| video_of(video, page_url)).collect(),
        ..Product::default()
    };
    product.identifiers.product_id = string(node.get("productID")).or_else(|| string(node.get("sku")));
    product.identifiers.gtin = gtin(node);
    product.identifiers.product_group_id =
        string(node.get("productGroupID")).or_else(|| string(node.get("inProductGroupWithID")));
    product.details.materials = string(node.get("material")).into_iter().collect();
    product.details.patterns = string(node.get("pattern")).into_iter().collect();
    product.colors = string(node.get("color")).map(Color::labelled).into_iter().collect();
    product.sizes = string(node.get("size")).into_iter().collect();
    for property in list(node.get("additionalProperty")) {
        if let (Some(name), Some(value)) = (string(property.get("name")), string(property.get("value"))) {
            product.attributes.entry(name).or_default().push(value);
        }
    }
    let category = string(node.get("category"));
    if let Some(category) = &category {
        product.categories.push(Link { name: category.clone(), url: None });
    }
    apply_variants(&mut product, own_offers, variants);
    let audience = node.get("audience").and_then(Value::as_object);
    let hints = FeedHints {
        gender: audience
            .and_then(|audience| string(audience.get("suggestedGender")))
            .or_else(|| string(node.get("suggestedGender")))
            .or_else(|| string(node.get("gender"))),
        age_group: audience
            .and_then(|audience| string(audience.get("suggestedAge")).or_else(|| string(audience.get("audienceType")))),
        google_category: None,
        merchant_category: category.map(|category| split_path(&category.replace('/', ">"))).unwrap_or_default(),
    };
    Ok(Draft { product, hints })
}

/// A group's price, stock, colors and sizes come from its variants when it has no offer of its own.
fn apply_variants(product: &mut Product, own: Offers, variants: Vec<ParsedVariant>) {
    let available = variants.iter().filter(|v| v.offers.price.is_some() && v.offers.in_stock != Some(false));
    let cheapest =
        available.min_by(|a, b| a.offers.price.partial_cmp(&b.offers.price).unwrap_or(std::cmp::Ordering::Equal));
    let chosen = match (own.price, cheapest) {
        (Some(_), _) | (None, None) => own,
        (None, Some(variant)) => Offers {
            price: variant.offers.price,
            original: variant.offers.original,
            currency: variant.offers.currency.clone(),
            in_stock: own.in_stock,
        },
    };
    product.current_price = chosen.price;
    product.original_price = chosen.original;
    product.currency = chosen.currency;
    let stock: Vec<bool> = variants.iter().filter_map(|v| v.variant.in_stock).chain(chosen.in_stock).collect();
    product.in_stock = (!stock.is_empty()).then(|| stock.contains(&true));
    for parsed in &variants {
        if let Some(color) = &parsed.variant.color {
            if !product.colors.iter().any(|known| known.label == color.label) {
                product.colors.push(color.clone());
            }
        }
        if let Some(size) = &parsed.variant.size {
            if !product.sizes.contains(size) {
                product.sizes.push(size.clone());
            }
        }
        if let Some(image) = &parsed.variant.image_url {
            if !product.images.iter().any(|known| &known.url == image) {
                product.images.push(Image::from_url(image.clone()));
            }
        }
    }
    product.variants = variants.into_iter().map(|parsed| parsed.variant).collect();
}

fn rating(value: Option<&Value>) -> Option<Rating> {
    let object = value?.as_object()?;
    let average = number(object.get("ratingValue")).filter(|value| value.is_finite() && *value >= 0.0)?;
    let count = number(object.get("reviewCount")).or_else(|| number(object.get("ratingCount"))).unwrap_or(0.0);
    Some(Rating { average, count: count.max(0.0) as u64 })
}

fn review(value: &Value) -> Option<Review> {
    let object = value.as_object()?;
    let rating =
        object.get("reviewRating").and_then(Value::as_object).and_then(|rating| number(rating.get("ratingValue")));
    let body = string(object.get("reviewBody")).or_else(|| string(object.get("description")));
    let review = Review {
        author: string(object.get("author")),
        rating,
        body,
        published_at: string(object.get("datePublished")),
    };
    (review.body.is_some() || review.rating.is_some()).then_some(review)
}

fn video_of(value: &Value, page_url: Option<&str>) -> Option<Video> {
    let object = value.as_object()?;
    let url = url_value(object.get("contentUrl"), page_url).or_else(|| url_value(object.get("embedUrl"), page_url))?;
    Some(Video {
        url,
        thumbnail_url: url_value(object.get("thumbnailUrl"), page_url),
        name: string(object.get("name")),
    })
}

fn breadcrumb_links(list_node: &Map<String, Value>, page_url: Option<&str>) -> Vec<Link> {
    let mut items: Vec<(f64, Link)> = list(list_node.get("itemListElement"))
        .into_iter()
        .filter_map(|element| {
            let element = element.as_object()?;
            let item = element.get("item");
            let name = string(element.get("name")).or_else(|| item.and_then(|item| string(item.get("name"))))?;
            let url = match item {
                Some(Value::Object(object)) => {
                    url_value(object.get("@id"), page_url).or_else(|| url_value(object.get("url"), page_url))
                }
                other => url_value(other, page_url),
            };
            let position = number(element.get("position")).unwrap_or(f64::MAX);
            Some((position, Link { name, url }))
        })
        .collect();
    items.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    items.into_iter().map(|(_, link)| link).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_feed_to_vec, FeedRecord, FeedSummary};

    fn fixture(name: &str) -> String {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
    }

    fn parse(input: &str, base_url: Option<&str>) -> Result<(Vec<FeedRecord>, FeedSummary), FeedError> {
        let options = FeedOptions { base_url: base_url.map(str::to_string), ..FeedOptions::default() };
        parse_feed_to_vec(FeedFormat::JsonLd, input.as_bytes(), &options)
    }

    #[test]
    fn product_page_with_graph_offers_rating_and_breadcrumbs() {
        let (records, summary) = parse(&fixture("jsonld-product.html"), None).unwrap();
        assert_eq!((summary.accepted, summary.skipped), (1, 0));
        let boot = records[0].as_ref().unwrap();
        assert_eq!(boot.url, "https://shop.example/products/trail-boot");
        assert_eq!(boot.title, "Trail Boot");
        assert_eq!(boot.brand.as_ref().unwrap().name, "Northwind");
        assert_eq!(boot.current_price, Some(119.0), "AggregateOffer lowPrice");
        assert_eq!(boot.currency.as_deref(), Some("USD"));
        assert_eq!(boot.in_stock, Some(true));
        assert_eq!(boot.rating, Some(Rating { average: 4.6, count: 89 }));
        assert_eq!(boot.reviews.len(), 1);
        assert_eq!(boot.reviews[0].author.as_deref(), Some("Ana"));
        assert_eq!(boot.identifiers.gtin.as_deref(), Some("0012345678905"));
        assert_eq!(boot.images[0].url, "https://shop.example/img/boot.jpg", "relative image resolved");
        assert_eq!(boot.images[0].width, Some(800));
        let crumbs: Vec<&str> = boot.breadcrumbs.iter().map(|crumb| crumb.name.as_str()).collect();
        assert_eq!(crumbs, ["Home", "Men", "Boots", "Trail Boot"]);
        assert_eq!(boot.enrichment.category_path, ["Men", "Boots"]);
        assert_eq!(boot.enrichment.product_type.as_deref(), Some("boot"));
        assert_eq!(boot.enrichment.gender.as_deref(), Some("male"));
        assert_eq!(boot.attributes["Waterproof"], ["Yes"]);
        assert_eq!(boot.details.materials, ["leather"]);
    }

    #[test]
    fn product_group_with_variants() {
        let (records, _) =
            parse(&fixture("jsonld-group.html"), Some("https://shop.example/products/merino-crew")).unwrap();
        assert_eq!(records.len(), 1);
        let sweater = records[0].as_ref().unwrap();
        assert_eq!(sweater.title, "Merino Crew Sweater");
        assert_eq!(sweater.identifiers.product_group_id.as_deref(), Some("MC-1"));
        assert_eq!(sweater.variants.len(), 3);
        assert_eq!(sweater.current_price, Some(80.0), "cheapest available variant");
        assert_eq!(sweater.original_price, Some(100.0));
        assert_eq!(sweater.sizes, ["s", "m"]);
        let colors: Vec<&str> = sweater.colors.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(colors, ["Charcoal", "Ivory"]);
        assert_eq!(sweater.enrichment.color_family, ["Gray", "White"]);
        assert_eq!(sweater.variants[2].in_stock, Some(false));
        assert_eq!(sweater.enrichment.gender.as_deref(), Some("female"));
    }

    #[test]
    fn bundle_of_pages() {
        let page = fixture("jsonld-product.html");
        let mut bundle = String::new();
        bundle.push_str(
            &serde_json::json!({"url": "https://shop.example/products/trail-boot", "html": page}).to_string(),
        );
        bundle.push('\n');
        bundle.push_str(
            &serde_json::json!({"url": "https://shop.example/about", "html": "<html><body>About</body></html>"})
                .to_string(),
        );
        bundle.push_str("\nnot json\n");
        let group = fixture("jsonld-group.html");
        bundle.push_str(
            &serde_json::json!({"url": "https://shop.example/products/merino-crew", "html": group}).to_string(),
        );
        bundle.push('\n');
        let (records, summary) = parse(&bundle, None).unwrap();
        assert_eq!((summary.records, summary.accepted, summary.skipped), (4, 2, 2));
        assert_eq!(
            records[1].as_ref().unwrap_err().to_string(),
            "record 2 (line 2, page https://shop.example/about): page has no JSON-LD (<script type=\"application/ld+json\">)"
        );
        assert!(records[2]
            .as_ref()
            .unwrap_err()
            .to_string()
            .starts_with("record 3 (line 3): bundle line is not valid JSON"));
        assert_eq!(records[3].as_ref().unwrap().title, "Merino Crew Sweater");
    }

    #[test]
    fn broken_json_ld_and_missing_fields_are_named() {
        let html = r#"<html><head>
            <script type="application/ld+json">{"@type": "Product", "name": "Broken",</script>
            <script type='application/ld+json'>{"@type": "Product", "url": "/p/no-name", "offers": {"price": "-5"}}</script>
            <script type="application/ld+json">{"@type": "Product", "name": "No URL"}</script>
        </head></html>"#;
        let (records, _) = parse(html, None).unwrap();
        let messages: Vec<String> = records.iter().map(|r| r.as_ref().unwrap_err().to_string()).collect();
        assert!(messages[0].starts_with("record 1 (line 2): JSON-LD block 1 is not valid JSON"), "{}", messages[0]);
        assert_eq!(messages[1], "record 2 (line 1): negative price \"-5\"");
        assert_eq!(messages[2], "record 3 (line 1): missing product URL");
    }

    #[test]
    fn wrong_inputs_are_named() {
        assert!(matches!(parse("id,title\n1,x", None).unwrap_err(), FeedError::WrongFormat { .. }));
        assert_eq!(parse("", None).unwrap_err(), FeedError::Empty);
    }

    #[test]
    fn scanner_handles_attributes_and_wrappers() {
        let html = "<SCRIPT data-x=\"a>b\" TYPE=\"application/ld+json; charset=utf-8\"><!-- {\"a\": 1} --></SCRIPT>\
                    <script>var x = 1;</script><link rel=\"alternate canonical\" href=\"https://x.example/p?a=1&amp;b=2\">";
        let blocks = script_blocks(html);
        assert_eq!(blocks.len(), 1);
        assert_eq!(strip_wrappers(blocks[0].content), "{\"a\": 1}");
        assert_eq!(canonical_url(html).as_deref(), Some("https://x.example/p?a=1&b=2"));
    }
}

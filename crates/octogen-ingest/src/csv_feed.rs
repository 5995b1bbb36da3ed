//! CSV read through a column mapping (TOML). A mapping names, for each
//! product field, where its value comes from:
//!
//! ```toml
//! [file]
//! encoding = "windows-1252"   # utf-8 (default, strict) | latin-1 | windows-1252
//! delimiter = ","             # default ","
//!
//! [fields]
//! title = "ProductName"                                   # a column
//! url = { template = "https://www.myntra.com/{ProductID}" } # columns in braces
//! # other URLs of the same product page, for lookups (`octogen_core::url_alias`):
//! # url = { template = "…/{ProductID}", aliases = ["https://www.myntra.com/{*}/{*}/{*}/{ProductID}/buy"] }
//! currency = { value = "INR" }                            # a constant
//! tags = { column = "Tags", separator = "," }             # a list column
//! images = { count = "NumImages", template = "https://img.example/{ProductID}/{n}.jpg" }
//!
//! [attributes]                                            # dynamic attribute facets
//! Fabric = "FabricColumn"
//! ```
//!
//! `title` and `url` are required; every other field is optional. Columns are
//! matched exactly, then ignoring case and surrounding spaces.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

use octogen_core::product::{Brand, Color, Image, Rating};
use octogen_core::url_alias::UrlAliasRule;
use octogen_core::Product;
use serde::Deserialize;

use crate::enrich::FeedHints;
use crate::error::{RecordErrorKind, RecordLocation, Skip};
use crate::pipeline::{Draft, RecordSink};
use crate::reader::{Encoding, TrackedReader};
use crate::sniff::{sniff, Sniffed};
use crate::text::{clean, parse_price, split_list, split_path};
use crate::{FeedError, FeedFormat, FeedOptions};

/// Characters escaped when a value is put into a URL path segment by a template.
pub use octogen_core::url_norm::PATH_SEGMENT;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("cannot read mapping {path}: {message}")]
    Read { path: String, message: String },
    #[error("invalid mapping: {0}")]
    Invalid(String),
}

/// Where one field's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldSource {
    /// A column; list fields split it on `separator`.
    Column {
        name: String,
        separator: Option<char>,
    },
    /// Text with `{Column}` placeholders.
    Template(String),
    Constant(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageTemplate {
    /// Column holding the number of images.
    pub count_column: String,
    /// URL with `{n}` (1-based image number) and `{Column}` placeholders.
    pub template: String,
}

/// A parsed mapping file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvMapping {
    pub encoding: Encoding,
    pub delimiter: u8,
    pub fields: BTreeMap<String, FieldSource>,
    pub images: Option<ImageTemplate>,
    /// Attribute name → source.
    pub attributes: BTreeMap<String, FieldSource>,
    /// Other URLs the merchant serves a product at (the `url` rule's
    /// `aliases`): kept with the catalog so lookups of them find the product.
    pub url_aliases: Vec<UrlAliasRule>,
}

/// Product fields a mapping may set.
pub const MAPPED_FIELDS: &[&str] = &[
    "id",
    "url",
    "title",
    "description",
    "brand",
    "price",
    "original_price",
    "sale_price",
    "currency",
    "availability",
    "gender",
    "age_group",
    "color",
    "size",
    "material",
    "pattern",
    "product_type",
    "category",
    "google_category",
    "tags",
    "image",
    "additional_images",
    "gtin",
    "group_id",
    "rating",
    "rating_count",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMapping {
    #[serde(default)]
    file: RawFile,
    fields: BTreeMap<String, RawSource>,
    #[serde(default)]
    attributes: BTreeMap<String, RawSource>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    encoding: Encoding,
    delimiter: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawSource {
    Column(String),
    Spec(RawSpec),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    column: Option<String>,
    separator: Option<String>,
    template: Option<String>,
    value: Option<String>,
    count: Option<String>,
    aliases: Option<Vec<String>>,
}

impl CsvMapping {
    pub fn load(path: impl AsRef<Path>) -> Result<CsvMapping, MappingError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|error| MappingError::Read { path: path.display().to_string(), message: error.to_string() })?;
        CsvMapping::from_toml(&text)
    }

    pub fn from_toml(text: &str) -> Result<CsvMapping, MappingError> {
        let raw: RawMapping =
            toml::from_str(text).map_err(|error| MappingError::Invalid(one_line(&error.to_string())))?;
        let delimiter = match raw.file.delimiter.as_deref() {
            None => b',',
            Some("\\t") | Some("\t") | Some("tab") => b'\t',
            Some(text) if text.len() == 1 => text.as_bytes()[0],
            Some(other) => {
                return Err(MappingError::Invalid(format!("delimiter {other:?} must be one ASCII character")))
            }
        };
        let mut fields = BTreeMap::new();
        let mut images = None;
        let mut url_aliases = Vec::new();
        for (name, raw_source) in raw.fields {
            if name == "images" {
                images = Some(image_template(raw_source)?);
                continue;
            }
            if !MAPPED_FIELDS.contains(&name.as_str()) {
                return Err(MappingError::Invalid(format!(
                    "unknown field {name:?} in [fields]; known fields: images, {}",
                    MAPPED_FIELDS.join(", ")
                )));
            }
            if name == "url" {
                url_aliases = url_alias_rules(&raw_source)?;
            }
            fields.insert(name.clone(), field_source(&name, raw_source)?);
        }
        for required in ["title", "url"] {
            if !fields.contains_key(required) {
                return Err(MappingError::Invalid(format!("[fields] must map {required:?}")));
            }
        }
        let attributes = raw
            .attributes
            .into_iter()
            .map(|(name, raw_source)| Ok((name.clone(), field_source(&name, raw_source)?)))
            .collect::<Result<_, MappingError>>()?;
        Ok(CsvMapping { encoding: raw.file.encoding, delimiter, fields, images, attributes, url_aliases })
    }
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn field_source(name: &str, raw: RawSource) -> Result<FieldSource, MappingError> {
    let spec = match raw {
        RawSource::Column(column) => return Ok(FieldSource::Column { name: column, separator: None }),
        RawSource::Spec(spec) => spec,
    };
    if spec.aliases.is_some() && name != "url" {
        return Err(MappingError::Invalid(format!("{name}: only the url field takes aliases")));
    }
    let separator = match spec.separator.as_deref() {
        None => None,
        Some(text) if text.chars().count() == 1 => text.chars().next(),
        Some(other) => return Err(MappingError::Invalid(format!("{name}: separator {other:?} must be one character"))),
    };
    match (spec.column, spec.template, spec.value, spec.count) {
        (Some(column), None, None, None) => Ok(FieldSource::Column { name: column, separator }),
        (None, Some(template), None, None) => Ok(FieldSource::Template(template)),
        (None, None, Some(value), None) => Ok(FieldSource::Constant(value)),
        _ => Err(MappingError::Invalid(format!("{name}: give exactly one of column, template or value"))),
    }
}

/// The `url` rule's `aliases`, each checked against its template.
fn url_alias_rules(raw: &RawSource) -> Result<Vec<UrlAliasRule>, MappingError> {
    let RawSource::Spec(RawSpec { aliases: Some(aliases), template, .. }) = raw else { return Ok(Vec::new()) };
    let Some(template) = template else {
        return Err(MappingError::Invalid(
            "url: aliases need a template (url = { template = \"https://…/{Column}\", aliases = [...] })".into(),
        ));
    };
    aliases
        .iter()
        .map(|alias| UrlAliasRule::new(alias, template).map_err(|error| MappingError::Invalid(format!("url: {error}"))))
        .collect()
}

fn image_template(raw: RawSource) -> Result<ImageTemplate, MappingError> {
    match raw {
        RawSource::Spec(RawSpec {
            count: Some(count_column),
            template: Some(template),
            column: None,
            value: None,
            ..
        }) => Ok(ImageTemplate { count_column, template }),
        _ => Err(MappingError::Invalid("images: give { count = \"Column\", template = \"https://…{n}…\" }".into())),
    }
}

// ---- binding a mapping to a header ----

#[derive(Debug, Clone)]
enum Segment {
    Literal(String),
    Column(usize),
    ImageNumber,
}

#[derive(Debug, Clone)]
enum Bound {
    Column { index: usize, separator: Option<char> },
    Template(Vec<Segment>),
    Constant(String),
}

struct BoundMapping {
    fields: BTreeMap<String, Bound>,
    images: Option<(usize, Vec<Segment>)>,
    attributes: Vec<(String, Bound)>,
    headers: Vec<String>,
}

fn find_column(headers: &[String], name: &str) -> Option<usize> {
    headers
        .iter()
        .position(|header| header == name)
        .or_else(|| headers.iter().position(|header| header.trim().eq_ignore_ascii_case(name.trim())))
}

fn parse_template(template: &str, headers: &[String], missing: &mut Vec<String>, allow_number: bool) -> Vec<Segment> {
    let mut segments = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}').map(|close| open + close) else { break };
        if open > 0 {
            segments.push(Segment::Literal(rest[..open].to_string()));
        }
        let name = &rest[open + 1..close];
        if allow_number && name == "n" {
            segments.push(Segment::ImageNumber);
        } else {
            match find_column(headers, name) {
                Some(index) => segments.push(Segment::Column(index)),
                None => missing.push(name.to_string()),
            }
        }
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        segments.push(Segment::Literal(rest.to_string()));
    }
    segments
}

fn bind_source(source: &FieldSource, headers: &[String], missing: &mut Vec<String>) -> Option<Bound> {
    match source {
        FieldSource::Column { name, separator } => match find_column(headers, name) {
            Some(index) => Some(Bound::Column { index, separator: *separator }),
            None => {
                missing.push(name.clone());
                None
            }
        },
        FieldSource::Template(template) => Some(Bound::Template(parse_template(template, headers, missing, false))),
        FieldSource::Constant(value) => Some(Bound::Constant(value.clone())),
    }
}

impl BoundMapping {
    fn bind(mapping: &CsvMapping, headers: Vec<String>) -> Result<BoundMapping, FeedError> {
        let mut missing = Vec::new();
        let mut fields = BTreeMap::new();
        for (name, source) in &mapping.fields {
            if let Some(bound) = bind_source(source, &headers, &mut missing) {
                fields.insert(name.clone(), bound);
            }
        }
        let attributes = mapping
            .attributes
            .iter()
            .filter_map(|(name, source)| Some((name.clone(), bind_source(source, &headers, &mut missing)?)))
            .collect();
        let images = mapping.images.as_ref().and_then(|images| {
            let count = find_column(&headers, &images.count_column);
            if count.is_none() {
                missing.push(images.count_column.clone());
            }
            let template = parse_template(&images.template, &headers, &mut missing, true);
            Some((count?, template))
        });
        if !missing.is_empty() {
            missing.sort();
            missing.dedup();
            return Err(FeedError::MissingColumns { format: FeedFormat::Csv, columns: missing });
        }
        Ok(BoundMapping { fields, images, attributes, headers })
    }
}

// ---- reading rows ----

struct Row<'a> {
    record: &'a csv::StringRecord,
    mapping: &'a BoundMapping,
}

impl Row<'_> {
    fn cell(&self, index: usize) -> &str {
        self.record.get(index).unwrap_or_default().trim()
    }

    fn render(&self, segments: &[Segment], image_number: Option<u32>, encode: bool) -> Option<String> {
        let mut out = String::new();
        for segment in segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Column(index) => {
                    let value = self.cell(*index);
                    if value.is_empty() {
                        return None;
                    }
                    if encode {
                        out.extend(percent_encoding::utf8_percent_encode(value, PATH_SEGMENT));
                    } else {
                        out.push_str(value);
                    }
                }
                Segment::ImageNumber => out.push_str(&image_number.unwrap_or(1).to_string()),
            }
        }
        Some(out)
    }

    fn value_of(&self, bound: &Bound, encode: bool) -> Option<String> {
        match bound {
            Bound::Column { index, .. } => clean(Some(self.cell(*index))),
            Bound::Template(segments) => self.render(segments, None, encode),
            Bound::Constant(value) => clean(Some(value)),
        }
    }

    fn get(&self, field: &str) -> Option<String> {
        self.value_of(self.mapping.fields.get(field)?, field == "url")
    }

    fn list(&self, field: &str, default_separator: char) -> Vec<String> {
        let Some(bound) = self.mapping.fields.get(field) else { return Vec::new() };
        let separator = match bound {
            Bound::Column { separator, .. } => separator.unwrap_or(default_separator),
            _ => default_separator,
        };
        self.value_of(bound, false).map(|value| split_list(&value, separator)).unwrap_or_default()
    }

    fn column_name(&self, field: &str) -> String {
        match self.mapping.fields.get(field) {
            Some(Bound::Column { index, .. }) => self.mapping.headers.get(*index).cloned().unwrap_or_default(),
            _ => field.to_string(),
        }
    }

    fn price(&self, field: &str) -> Result<Option<(f64, Option<String>)>, Skip> {
        let Some(raw) = self.get(field) else { return Ok(None) };
        let parsed = parse_price(&raw).map_err(|error| {
            Skip::new(RecordErrorKind::InvalidPrice, format!("{error} in column {:?}", self.column_name(field)))
        })?;
        Ok(parsed.map(|price| (price.amount, price.currency)))
    }

    fn images(&self, max_images: usize) -> Vec<Image> {
        let mut urls: Vec<String> = self.get("image").into_iter().collect();
        urls.extend(self.list("additional_images", ','));
        if let Some((count_index, template)) = &self.mapping.images {
            let count: u32 = self.cell(*count_index).parse().unwrap_or(0);
            let count = count.min(max_images as u32);
            urls.extend((1..=count).filter_map(|number| self.render(template, Some(number), true)));
        }
        urls.into_iter().map(Image::from_url).collect()
    }
}

pub fn parse<R: BufRead>(
    reader: &mut TrackedReader<R>,
    options: &FeedOptions,
    sink: &mut impl RecordSink,
) -> Result<(), FeedError> {
    let mapping = options.mapping.as_ref().ok_or(FeedError::MissingMapping)?;
    let tracker = reader.tracker();
    let sniffed = sniff(reader).map_err(|error| FeedError::Io { line: 1, message: error.to_string() })?;
    if !matches!(sniffed, Sniffed::Text { .. }) {
        return Err(sniffed.mismatch(FeedFormat::Csv));
    }
    let mut csv_reader =
        csv::ReaderBuilder::new().delimiter(mapping.delimiter).flexible(true).has_headers(true).from_reader(reader);
    let headers: Vec<String> =
        csv_reader.headers().map_err(|error| csv_error(&error))?.iter().map(str::to_string).collect();
    let bound = BoundMapping::bind(mapping, headers)?;
    let mut record = csv::StringRecord::new();
    let mut number = 0;
    tracker.mark_record_start();
    while csv_reader.read_record(&mut record).map_err(|error| csv_error(&error))? {
        tracker.mark_record_start();
        if record.iter().all(|cell| cell.trim().is_empty()) {
            continue;
        }
        number += 1;
        let line = record.position().map(|position| position.line());
        let draft = convert(&Row { record: &record, mapping: &bound }, options);
        if sink.submit(RecordLocation::new(number, line), draft).is_break() {
            break;
        }
    }
    Ok(())
}

pub(crate) fn csv_error(error: &csv::Error) -> FeedError {
    let line = error.position().map_or(0, |position| position.line());
    FeedError::Io { line, message: error.to_string() }
}

fn convert(row: &Row<'_>, options: &FeedOptions) -> Result<Draft, Skip> {
    let price = row.price("price")?;
    let sale_price = row.price("sale_price")?;
    let original_price = row.price("original_price")?;
    let (current, original) = match (sale_price, price, original_price) {
        (Some(sale), Some(regular), _) => (Some(sale), Some(regular)),
        (None, price, original) => (price, original),
        (sale, None, original) => (sale, original),
    };
    let currency = row.get("currency").or_else(|| current.as_ref().and_then(|(_, code)| code.clone()));
    let mut product = Product {
        url: row.get("url").unwrap_or_default(),
        title: row.get("title").unwrap_or_default(),
        description: row.get("description"),
        brand: row.get("brand").map(|name| Brand { name, ..Brand::default() }),
        product_type: row.get("product_type"),
        current_price: current.map(|(amount, _)| amount),
        original_price: original.map(|(amount, _)| amount),
        currency,
        images: row.images(options.limits.max_images),
        in_stock: row.get("availability").and_then(|value| availability(&value)),
        sizes: row.list("size", ','),
        colors: row.get("color").map(Color::labelled).into_iter().collect(),
        tags: row.list("tags", ','),
        ..Product::default()
    };
    product.identifiers.product_id = row.get("id");
    product.identifiers.gtin = row.get("gtin");
    product.identifiers.product_group_id = row.get("group_id");
    product.details.materials = row.list("material", '/');
    product.details.patterns = row.list("pattern", '/');
    product.rating = rating(row.get("rating"), row.get("rating_count"));
    for (name, bound) in &row.mapping.attributes {
        if let Some(value) = row.value_of(bound, false) {
            product.attributes.entry(name.clone()).or_default().push(value);
        }
    }
    let hints = FeedHints {
        gender: row.get("gender"),
        age_group: row.get("age_group"),
        google_category: row.get("google_category"),
        merchant_category: row.get("category").map(|path| split_path(&path)).unwrap_or_default(),
    };
    Ok(Draft { product, hints })
}

/// "in stock", "out of stock", "preorder", "true"/"false", "1"/"0", "yes"/"no".
pub(crate) fn availability(value: &str) -> Option<bool> {
    let normalized = value.trim().to_lowercase().replace(['_', '-'], " ");
    let normalized = normalized.trim_start_matches("https://schema.org/").trim_start_matches("http://schema.org/");
    match normalized {
        "in stock"
        | "instock"
        | "available"
        | "true"
        | "yes"
        | "1"
        | "preorder"
        | "pre order"
        | "backorder"
        | "limited availability"
        | "limitedavailability"
        | "in store only" => Some(true),
        "out of stock" | "outofstock" | "sold out" | "soldout" | "unavailable" | "false" | "no" | "0"
        | "discontinued" => Some(false),
        _ => None,
    }
}

fn rating(average: Option<String>, count: Option<String>) -> Option<Rating> {
    let average: f64 = average?.trim().parse().ok().filter(|value: &f64| value.is_finite() && *value >= 0.0)?;
    let count = count.and_then(|count| count.trim().parse().ok()).unwrap_or(0);
    Some(Rating { average, count })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_feed_to_vec, FeedRecord, FeedSummary};

    const MAPPING: &str = r#"
        [file]
        encoding = "windows-1252"

        [fields]
        id = "ProductID"
        url = { template = "https://www.myntra.com/{ProductID}" }
        title = "ProductName"
        brand = "ProductBrand"
        gender = "Gender"
        price = "Price (INR)"
        currency = { value = "INR" }
        description = "Description"
        color = "PrimaryColor"
        images = { count = "NumImages", template = "https://img.example/{ProductID}/{n}.jpg" }

        [attributes]
        "Image Count" = "NumImages"
    "#;

    fn parse(input: &[u8]) -> Result<(Vec<FeedRecord>, FeedSummary), FeedError> {
        let options = FeedOptions { mapping: Some(CsvMapping::from_toml(MAPPING).unwrap()), ..FeedOptions::default() };
        parse_feed_to_vec(FeedFormat::Csv, input, &options)
    }

    const HEADER: &str = "ProductID,ProductName,ProductBrand,Gender,Price (INR),NumImages,Description,PrimaryColor\n";

    #[test]
    fn rows_become_products() {
        let input = format!(
            "{HEADER}10017413,DKNY Unisex Black & Grey Printed Medium Trolley Bag,DKNY,Unisex,11745,2,\"Black and grey printed medium trolley bag, secured with a TSA lock\",Black\n"
        );
        let (records, summary) = parse(input.as_bytes()).unwrap();
        assert_eq!(summary.accepted, 1);
        let bag = records[0].as_ref().unwrap();
        assert_eq!(bag.url, "https://www.myntra.com/10017413");
        assert_eq!(bag.current_price, Some(11745.0));
        assert_eq!(bag.currency.as_deref(), Some("INR"));
        assert_eq!(bag.images.len(), 2);
        assert_eq!(bag.images[1].url, "https://img.example/10017413/2.jpg");
        assert_eq!(bag.identifiers.product_id.as_deref(), Some("10017413"));
        assert_eq!(bag.enrichment.gender.as_deref(), Some("unisex"));
        assert_eq!(bag.enrichment.product_type.as_deref(), Some("trolley bag"));
        assert_eq!(bag.attributes["Image Count"], ["2"]);
        assert_eq!(bag.enrichment.attributes["image_count"], ["2"]);
    }

    #[test]
    fn windows_1252_bytes_are_decoded() {
        let mut input = HEADER.as_bytes().to_vec();
        input.extend_from_slice(
            b"1,Kurta Set,Brand,Women,999,1,\"kurta with churidar and\xa0dupatta \x93nice\x94\",Beige\n",
        );
        let (records, _) = parse(&input).unwrap();
        let description = records[0].as_ref().unwrap().description.clone().unwrap();
        assert_eq!(description, "kurta with churidar and dupatta “nice”");
    }

    #[test]
    fn bad_rows_are_named_with_record_and_line() {
        let input = format!(
            "{HEADER}1,Good Shirt,B,Men,10,1,d,Blue\n2,Bad Price,B,Men,-3.00,1,d,Blue\n3,Text Price,B,Men,ten,1,d,Blue\n\
             4,,B,Men,10,1,d,Blue\n,No Id,B,Men,10,1,d,Blue\n1,Same Id,B,Men,10,1,d,Blue\n"
        );
        let (records, summary) = parse(input.as_bytes()).unwrap();
        assert_eq!((summary.accepted, summary.skipped), (1, 5));
        let messages: Vec<String> = records.iter().filter_map(|r| r.as_ref().err()).map(|e| e.to_string()).collect();
        assert_eq!(
            messages,
            [
                "record 2 (line 3): negative price \"-3.00\" in column \"Price (INR)\"",
                "record 3 (line 4): price \"ten\" is not a number in column \"Price (INR)\"",
                "record 4 (line 5): missing title",
                "record 5 (line 6): missing product URL",
                "record 6 (line 7): duplicate product URL https://myntra.com/1 (first seen at record 1)",
            ]
        );
    }

    #[test]
    fn mapping_problems_are_named() {
        let missing_column = "ProductID,Title\n1,x\n";
        let error = parse(missing_column.as_bytes()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "csv header lacks required column(s): Description, Gender, NumImages, Price (INR), PrimaryColor, ProductBrand, ProductName"
        );
        let error = CsvMapping::from_toml("[fields]\ntitle = \"T\"\n").unwrap_err();
        assert_eq!(error.to_string(), "invalid mapping: [fields] must map \"url\"");
        let error = CsvMapping::from_toml("[fields]\ntitle = \"T\"\nurl = \"U\"\ntitel = \"X\"\n").unwrap_err();
        assert!(error.to_string().starts_with("invalid mapping: unknown field \"titel\" in [fields]"), "{error}");
        let error = CsvMapping::from_toml("[fields\n").unwrap_err();
        assert!(error.to_string().starts_with("invalid mapping: "), "{error}");
        let none = FeedOptions::default();
        assert_eq!(parse_feed_to_vec(FeedFormat::Csv, &b"a,b\n"[..], &none).unwrap_err(), FeedError::MissingMapping);
    }

    #[test]
    fn the_url_rule_declares_aliases_for_lookups() {
        let mapping = CsvMapping::from_toml(&MAPPING.replace(
            "url = { template = \"https://www.myntra.com/{ProductID}\" }",
            "url = { template = \"https://www.myntra.com/{ProductID}\", aliases = [\"https://www.myntra.com/{*}/{*}/{*}/{ProductID}/buy\"] }",
        ))
        .unwrap();
        let [rule] = mapping.url_aliases.as_slice() else { panic!("one rule: {:?}", mapping.url_aliases) };
        assert_eq!(
            rule.resolve("https://www.myntra.com/bags/dkny/dkny-bag/10017413/buy").as_deref(),
            Some("https://myntra.com/10017413")
        );
        assert!(CsvMapping::from_toml(MAPPING).unwrap().url_aliases.is_empty());

        let cases = [
            (r#"url = { column = "U", aliases = ["https://s.example/{U}"] }"#, "url: aliases need a template"),
            (
                r#"url = { template = "https://s.example/{Id}", aliases = ["https://s.example/{*}"] }"#,
                "does not capture \"Id\"",
            ),
            (
                r#"url = "U"
                brand = { column = "B", aliases = ["https://s.example/{B}"] }"#,
                "brand: only the url field takes aliases",
            ),
        ];
        for (url_rule, message) in cases {
            let error =
                CsvMapping::from_toml(&format!("[fields]\ntitle = \"T\"\n{url_rule}\n")).unwrap_err().to_string();
            assert!(error.contains(message), "{url_rule}: {error}");
        }
    }

    #[test]
    fn wrong_inputs_are_named() {
        assert!(matches!(parse(b"{\"products\": []}").unwrap_err(), FeedError::WrongFormat { .. }));
        assert!(matches!(parse(b"<html><body>Sign in</body></html>").unwrap_err(), FeedError::Html { .. }));
        assert_eq!(parse(b"").unwrap_err(), FeedError::Empty);
    }

    #[test]
    fn strict_utf8_mapping_reports_the_byte() {
        let mapping = CsvMapping::from_toml(&MAPPING.replace("encoding = \"windows-1252\"", "")).unwrap();
        let options = FeedOptions { mapping: Some(mapping), ..FeedOptions::default() };
        let mut input = HEADER.as_bytes().to_vec();
        input.extend_from_slice(b"1,Kurta,B,Women,999,1,\"and\xa0dupatta\",Beige\n");
        let error = parse_feed_to_vec(FeedFormat::Csv, &input[..], &options).unwrap_err();
        assert_eq!(error, FeedError::NotUtf8 { offset: 115, line: 2 });
        assert!(error.to_string().starts_with("the input is not UTF-8: invalid byte at offset 115 (line 2)"));
    }

    #[test]
    fn availability_spellings() {
        assert_eq!(availability("in stock"), Some(true));
        assert_eq!(availability("https://schema.org/OutOfStock"), Some(false));
        assert_eq!(availability("out_of_stock"), Some(false));
        assert_eq!(availability("maybe"), None);
    }
}

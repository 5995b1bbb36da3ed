//! Merchant feeds into Octogen products.
//!
//! [`parse_feed`] reads one feed from a byte stream — Shopify product JSON,
//! Google Merchant Center RSS or TSV, schema.org JSON-LD in HTML pages, or a
//! CSV file with a column mapping — and hands out each record as it is read:
//! either a validated, enriched [`Product`] or a [`RecordError`] naming the
//! record and why it was skipped. Memory stays bounded by the largest record,
//! whatever the feed's size. A [`FeedError`] means the feed as a whole is
//! unusable (wrong format, HTML, truncated, not UTF-8, ...).
//!
//! [`fetch`] downloads feeds over http(s); [`enrich`] holds the deterministic
//! enrichment rules; [`synth`] generates realistic catalogs of any size.

use std::fmt;
use std::io::BufRead;
use std::ops::ControlFlow;
use std::str::FromStr;

pub use octogen_core::Product;

mod csv_feed;
pub mod enrich;
mod error;
pub mod fetch;
mod json_stream;
mod jsonld;
mod loose_json;
mod merchant;
mod pipeline;
mod reader;
mod shopify;
mod sniff;
pub mod synth;
pub mod text;

pub use csv_feed::{CsvMapping, FieldSource, MappingError};
pub use enrich::{enrich, FeedHints};
pub use error::{FeedError, RecordError, RecordErrorKind, RecordLocation};
pub use pipeline::{Enriched, Unenriched};
pub use reader::Encoding;

/// The feed formats `parse_feed` reads; spelled on the command line as
/// `shopify | merchant-xml | merchant-tsv | jsonld | csv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeedFormat {
    /// Shopify product JSON: `/products.json` (storefront) or an Admin API export.
    Shopify,
    /// Google Merchant Center RSS 2.0 with the `g:` namespace (Atom entries are read too).
    MerchantXml,
    /// Google Merchant Center tab-separated values with a header row.
    MerchantTsv,
    /// schema.org Product / ProductGroup JSON-LD inside HTML: one page, or an
    /// NDJSON bundle of `{"url": ..., "html": ...}` lines.
    JsonLd,
    /// Any CSV, read through a [`CsvMapping`].
    Csv,
}

impl FeedFormat {
    pub const ALL: [FeedFormat; 5] =
        [FeedFormat::Shopify, FeedFormat::MerchantXml, FeedFormat::MerchantTsv, FeedFormat::JsonLd, FeedFormat::Csv];

    pub fn as_str(self) -> &'static str {
        match self {
            FeedFormat::Shopify => "shopify",
            FeedFormat::MerchantXml => "merchant-xml",
            FeedFormat::MerchantTsv => "merchant-tsv",
            FeedFormat::JsonLd => "jsonld",
            FeedFormat::Csv => "csv",
        }
    }
}

impl fmt::Display for FeedFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown feed format {0:?}: expected one of shopify, merchant-xml, merchant-tsv, jsonld, csv")]
pub struct UnknownFormat(pub String);

impl FromStr for FeedFormat {
    type Err = UnknownFormat;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        FeedFormat::ALL
            .into_iter()
            .find(|format| format.as_str() == name)
            .ok_or_else(|| UnknownFormat(name.to_string()))
    }
}

/// Size caps on what one record may carry. Over a cap, a title, brand or URL
/// skips the record (such values are garbage, not products); a description is
/// truncated (long copy is common and the product is still good); lists keep
/// their first items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_title_chars: usize,
    pub max_description_chars: usize,
    pub max_brand_chars: usize,
    pub max_url_chars: usize,
    /// Longer tags, option values and attribute values are dropped.
    pub max_value_chars: usize,
    pub max_tags: usize,
    pub max_images: usize,
    pub max_variants: usize,
    /// Bytes one record may span in the input; more stops the feed (a record
    /// cannot be skipped without parsing it, and parsing it would need the memory).
    pub max_record_bytes: u64,
    /// One HTML page of a JSON-LD feed.
    pub max_page_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_title_chars: 1_000,
            max_description_chars: 20_000,
            max_brand_chars: 200,
            max_url_chars: 2_048,
            max_value_chars: 500,
            max_tags: 100,
            max_images: 50,
            max_variants: 2_000,
            max_record_bytes: 16 * 1024 * 1024,
            max_page_bytes: 16 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct FeedOptions {
    /// The catalog's source base URL: resolves relative links, and builds
    /// Shopify product URLs (`<base_url>/products/<handle>`). For a single
    /// JSON-LD page, the page's own URL.
    pub base_url: Option<String>,
    /// Required for [`FeedFormat::Csv`].
    pub mapping: Option<CsvMapping>,
    /// ISO 4217 code for feeds whose prices carry none (Shopify exports).
    pub default_currency: Option<String>,
    pub limits: Limits,
}

pub type FeedRecord = Result<Product, RecordError>;
/// A record of [`parse_feed_unenriched`]: call [`Unenriched::enrich`] for the product `parse_feed` gives.
pub type UnenrichedRecord = Result<Unenriched, RecordError>;

/// Counts of one parse. `records = accepted + skipped`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedSummary {
    pub records: u64,
    pub accepted: u64,
    pub skipped: u64,
    /// The callback asked to stop before the end of the feed.
    pub stopped_early: bool,
}

/// Reads a whole feed, handing each record to `on_record` as soon as it is
/// read (return `ControlFlow::Break(())` to stop). Accepted products are
/// validated (title, absolute http(s) URL unique within the feed, sane prices,
/// capped field sizes) and enriched.
pub fn parse_feed(
    format: FeedFormat,
    input: impl BufRead,
    options: &FeedOptions,
    mut on_record: impl FnMut(FeedRecord) -> ControlFlow<()>,
) -> Result<FeedSummary, FeedError> {
    parse_feed_unenriched(format, input, options, |record| on_record(record.map(Unenriched::enrich)))
}

/// [`parse_feed`] without the enrichment: each accepted product comes with
/// what its enrichment needs, to be enriched by the caller (an importer does
/// it on a second thread).
pub fn parse_feed_unenriched(
    format: FeedFormat,
    input: impl BufRead,
    options: &FeedOptions,
    on_record: impl FnMut(UnenrichedRecord) -> ControlFlow<()>,
) -> Result<FeedSummary, FeedError> {
    let encoding = match (format, &options.mapping) {
        (FeedFormat::Csv, Some(mapping)) => mapping.encoding,
        _ => Encoding::Utf8,
    };
    let mut reader = reader::TrackedReader::new(input, encoding, options.limits.max_record_bytes);
    let tracker = reader.tracker();
    let mut pipeline = pipeline::Pipeline::new(options, on_record);
    let result = match format {
        FeedFormat::Shopify => shopify::parse(&mut reader, options, &mut pipeline),
        FeedFormat::MerchantXml => merchant::parse_xml(&mut reader, &options.limits, &mut pipeline),
        FeedFormat::MerchantTsv => merchant::parse_tsv(&mut reader, &options.limits, &mut pipeline),
        FeedFormat::JsonLd => jsonld::parse(&mut reader, options, &mut pipeline),
        FeedFormat::Csv => csv_feed::parse(&mut reader, options, &mut pipeline),
    };
    // A fault of the reader explains whatever error the parser made of it.
    if let Some(fault) = tracker.take_fault() {
        return Err(match fault {
            reader::ReadFault::NotUtf8 { offset, line } => FeedError::NotUtf8 { offset, line },
            reader::ReadFault::RecordTooLarge { line, limit } => FeedError::RecordTooLarge { line, limit },
        });
    }
    result?;
    Ok(pipeline.finish())
}

/// Convenience for tests and small feeds: every record, in order.
pub fn parse_feed_to_vec(
    format: FeedFormat,
    input: impl BufRead,
    options: &FeedOptions,
) -> Result<(Vec<FeedRecord>, FeedSummary), FeedError> {
    let mut records = Vec::new();
    let summary = parse_feed(format, input, options, |record| {
        records.push(record);
        ControlFlow::Continue(())
    })?;
    Ok((records, summary))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_exactly_their_cli_names() {
        for format in FeedFormat::ALL {
            assert_eq!(format.as_str().parse::<FeedFormat>().unwrap(), format);
        }
        let error = "Shopify".parse::<FeedFormat>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown feed format \"Shopify\": expected one of shopify, merchant-xml, merchant-tsv, jsonld, csv"
        );
        assert!("json-ld".parse::<FeedFormat>().is_err());
    }
}

//! Errors: `RecordError` skips one record and the feed goes on; `FeedError`
//! stops the whole feed. Both render as one human line that names the place
//! (record number, line, page URL or byte offset) and the reason.

use std::fmt;

use crate::FeedFormat;

/// Where a record sits in its feed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordLocation {
    /// 1-based position among the feed's records (Shopify products, CSV rows,
    /// Merchant items or groups, JSON-LD products).
    pub number: u64,
    /// 1-based line of the input where the record starts, when known.
    pub line: Option<u64>,
    /// The page a JSON-LD product was found on.
    pub page_url: Option<String>,
}

impl RecordLocation {
    pub fn new(number: u64, line: Option<u64>) -> Self {
        RecordLocation { number, line, page_url: None }
    }
}

impl fmt::Display for RecordLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "record {}", self.number)?;
        match (self.line, &self.page_url) {
            (Some(line), Some(url)) => write!(f, " (line {line}, page {url})"),
            (Some(line), None) => write!(f, " (line {line})"),
            (None, Some(url)) => write!(f, " (page {url})"),
            (None, None) => Ok(()),
        }
    }
}

/// Why a record was skipped, for counting; the human detail is in `RecordError::reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordErrorKind {
    MissingTitle,
    MissingUrl,
    /// A relative URL and no base URL to resolve it against.
    RelativeUrl,
    InvalidUrl,
    DuplicateUrl,
    InvalidPrice,
    FieldTooLong,
    /// Not published (Shopify status draft/archived).
    Inactive,
    /// The record is not shaped like the format says (wrong JSON types, bad JSON-LD).
    Malformed,
}

impl RecordErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordErrorKind::MissingTitle => "missing_title",
            RecordErrorKind::MissingUrl => "missing_url",
            RecordErrorKind::RelativeUrl => "relative_url",
            RecordErrorKind::InvalidUrl => "invalid_url",
            RecordErrorKind::DuplicateUrl => "duplicate_url",
            RecordErrorKind::InvalidPrice => "invalid_price",
            RecordErrorKind::FieldTooLong => "field_too_long",
            RecordErrorKind::Inactive => "inactive",
            RecordErrorKind::Malformed => "malformed",
        }
    }
}

/// One skipped record: `record 17 (line 18): negative price "-3.00"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {reason}")]
pub struct RecordError {
    pub location: RecordLocation,
    pub kind: RecordErrorKind,
    pub reason: String,
}

/// A record-level problem before its location is attached (parsers build these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    pub kind: RecordErrorKind,
    pub reason: String,
}

impl Skip {
    pub fn new(kind: RecordErrorKind, reason: impl Into<String>) -> Self {
        Skip { kind, reason: reason.into() }
    }

    pub fn malformed(reason: impl Into<String>) -> Self {
        Skip::new(RecordErrorKind::Malformed, reason)
    }

    pub fn at(self, location: RecordLocation) -> RecordError {
        RecordError { location, kind: self.kind, reason: self.reason }
    }
}

impl From<crate::text::PriceError> for Skip {
    fn from(error: crate::text::PriceError) -> Self {
        Skip::new(RecordErrorKind::InvalidPrice, error.to_string())
    }
}

/// The whole feed is unusable (or stopped being readable part-way).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    #[error("the input is empty")]
    Empty,
    #[error("the input is an HTML page, not a {format} feed{hint}", hint = html_hint(*format))]
    Html { format: FeedFormat },
    #[error("the input is not a {format} feed: {found}")]
    WrongFormat { format: FeedFormat, found: String },
    #[error("{format} feed is malformed at line {line}, column {column}: {message}")]
    Syntax { format: FeedFormat, line: u64, column: u64, message: String },
    #[error("{format} feed ends early at line {line}: {message} (truncated download?)")]
    Truncated { format: FeedFormat, line: u64, message: String },
    #[error("the input is not UTF-8: invalid byte at offset {offset} (line {line}); if the file is Latin-1 or Windows-1252, say so with `encoding` in the mapping")]
    NotUtf8 { offset: u64, line: u64 },
    #[error("the record starting at line {line} is larger than {limit} bytes")]
    RecordTooLarge { line: u64, limit: u64 },
    #[error("a {format} feed has no product URLs of its own: give the import the store's base URL (e.g. https://shop.example; --base-url with `octogen catalog import`)")]
    MissingBaseUrl { format: FeedFormat },
    #[error("a csv feed needs a column mapping file (--mapping)")]
    MissingMapping,
    #[error("the mapping does not fit this file: {0}")]
    Mapping(String),
    #[error("{format} header lacks required column(s): {}", columns.join(", "))]
    MissingColumns { format: FeedFormat, columns: Vec<String> },
    #[error("reading the feed failed at line {line}: {message}")]
    Io { line: u64, message: String },
}

fn html_hint(format: FeedFormat) -> &'static str {
    match format {
        FeedFormat::Shopify => " (for a Shopify store, give its products.json URL or the store URL)",
        FeedFormat::JsonLd => "",
        _ => " (a login page or an error page instead of the feed?)",
    }
}

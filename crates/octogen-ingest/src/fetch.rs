//! Downloading feeds over http(s) into any async writer (usually a temporary
//! file that `parse_feed` then reads), through the safe fetcher
//! (`octogen-fetch`: public addresses only unless listed, vetted redirects,
//! time and size caps, redacted URLs in errors).
//!
//! A Shopify store is paged: `<store>/products.json?page=N&limit=250` until a
//! page comes back empty; the pages' products are written out as one
//! `{"products": [...]}` document, so the import sees one feed. A page is
//! never held in memory: it is scanned as it arrives (`json_stream`, on a
//! blocking thread) and each product's bytes are copied out as they are, so
//! memory stays at a few products whatever the page's size. One page and one
//! product are capped ([`FetchOptions`]).

use std::io::Read;
use std::time::Duration;

use bytes::Bytes;
use octogen_fetch::{Fetcher, Limits};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::json_stream::{Found, JsonScanner};
use crate::reader::{Encoding, ReadFault, TrackedReader};
use crate::{FeedError, FeedFormat};

/// The user agent of feed fetches.
pub const USER_AGENT: &str = concat!("octogen-ingest/", env!("CARGO_PKG_VERSION"));

/// Time caps of one feed request (one page, for a Shopify store); the size
/// caps are in [`FetchOptions`].
pub fn feed_limits() -> Limits {
    Limits {
        connect_timeout: Duration::from_secs(10),
        read_timeout: Duration::from_secs(60),
        total_timeout: Duration::from_secs(30 * 60),
        ..Limits::default()
    }
}

/// Size caps of one feed download.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Bytes one download may have (all pages together for a Shopify store).
    pub max_bytes: u64,
    /// Pages of a Shopify store (250 products each).
    pub max_pages: u32,
    /// Bytes one page of a Shopify store may have.
    pub max_page_bytes: u64,
    /// Bytes one product of a Shopify store page may have.
    pub max_product_bytes: u64,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            max_bytes: 4 * 1024 * 1024 * 1024,
            max_pages: 10_000,
            max_page_bytes: 32 * 1024 * 1024,
            max_product_bytes: 1024 * 1024,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Transfer(#[from] octogen_fetch::FetchError),
    #[error("GET {url}: not Shopify products JSON ({cause})")]
    NotShopify { url: String, cause: String },
    #[error("GET {url}: the product at line {line} is larger than the {limit}-byte limit for one product")]
    ProductTooLarge { url: String, line: u64, limit: u64 },
    #[error("writing the download failed: {0}")]
    Write(String),
}

/// What a fetch produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fetched {
    pub bytes: u64,
    /// Requests made (pages, for a Shopify store).
    pub pages: u32,
    /// Products written, for a Shopify store; `None` for a plain download.
    pub products: Option<u64>,
}

fn write_error(error: std::io::Error) -> FetchError {
    FetchError::Write(error.to_string())
}

/// Downloads one URL into `out`.
pub async fn download(
    fetcher: &Fetcher,
    url: &str,
    options: &FetchOptions,
    out: &mut (impl AsyncWrite + Unpin),
) -> Result<Fetched, FetchError> {
    let mut response = fetcher.get(url).max_body_bytes(options.max_bytes).send().await?.error_for_status()?;
    while let Some(chunk) = response.chunk().await? {
        out.write_all(&chunk).await.map_err(write_error)?;
    }
    out.flush().await.map_err(write_error)?;
    Ok(Fetched { bytes: response.bytes_read(), pages: 1, products: None })
}

/// The `products.json` endpoint of a Shopify store URL (`https://shop.example`,
/// `https://shop.example/`, `https://shop.example/products.json`), or `None`
/// for any other URL (e.g. an exported file), which is downloaded as is.
pub fn shopify_products_endpoint(url: &str) -> Option<String> {
    let mut parsed = url::Url::parse(url).ok().filter(|parsed| matches!(parsed.scheme(), "http" | "https"))?;
    let path = parsed.path().trim_end_matches('/').to_string();
    if !path.is_empty() && !path.ends_with("/products.json") {
        return None;
    }
    if path.is_empty() {
        parsed.set_path("/products.json");
    }
    parsed.set_query(None);
    parsed.set_fragment(None);
    Some(parsed.to_string())
}

/// Pages through a Shopify store's `products.json` and writes all products as
/// one `{"products": [...]}` document.
pub async fn download_shopify_store(
    fetcher: &Fetcher,
    store_url: &str,
    options: &FetchOptions,
    out: &mut (impl AsyncWrite + Unpin),
) -> Result<Fetched, FetchError> {
    let endpoint = shopify_products_endpoint(store_url)
        .ok_or_else(|| octogen_fetch::FetchError::InvalidUrl { url: octogen_fetch::redact_url(store_url) })?;
    let mut fetched = Fetched { products: Some(0), ..Fetched::default() };
    out.write_all(b"{\"products\": [").await.map_err(write_error)?;
    for page in 1..=options.max_pages {
        let url = format!("{endpoint}?page={page}&limit=250");
        let limit = options.max_page_bytes.min(options.max_bytes.saturating_sub(fetched.bytes));
        let response = fetcher.get(&url).max_body_bytes(limit).send().await?.error_for_status()?;
        let written = fetched.products.unwrap_or(0);
        let copied = copy_page_products(response, options.max_product_bytes, written, out).await?;
        fetched.bytes += copied.bytes;
        fetched.pages = page;
        fetched.products = Some(written + copied.products);
        if copied.products == 0 {
            break;
        }
    }
    out.write_all(b"\n]}\n").await.map_err(write_error)?;
    out.flush().await.map_err(write_error)?;
    Ok(fetched)
}

struct CopiedPage {
    bytes: u64,
    products: u64,
}

/// Bytes in flight between the download and the scanner, and products between
/// the scanner and the writer: what a page costs in memory.
const CHUNKS_IN_FLIGHT: usize = 4;
const PRODUCTS_IN_FLIGHT: usize = 16;

/// Streams one page: the body goes to a scanner on a blocking thread as it
/// arrives; the products it cuts out come back and are appended to `out`
/// (after `written` products already there).
async fn copy_page_products(
    mut response: octogen_fetch::Response,
    max_product_bytes: u64,
    written: u64,
    out: &mut (impl AsyncWrite + Unpin),
) -> Result<CopiedPage, FetchError> {
    let url = response.redacted_url().to_string();
    let (chunks, chunk_receiver) = mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
    let (products, mut product_receiver) = mpsc::channel::<Vec<u8>>(PRODUCTS_IN_FLIGHT);
    let scanner = tokio::task::spawn_blocking(move || {
        scan_page(ChannelReader { chunks: chunk_receiver, current: Bytes::new() }, max_product_bytes, products)
    });
    let download = async move {
        while let Some(chunk) = response.chunk().await? {
            if chunks.send(chunk).await.is_err() {
                break; // The scanner stopped; it says why.
            }
        }
        Ok::<u64, octogen_fetch::FetchError>(response.bytes_read())
    };
    // Moved in, so a failed write drops the receiver and the scanner stops instead of waiting.
    let write = async move {
        let mut count = 0u64;
        while let Some(product) = product_receiver.recv().await {
            let separator: &[u8] = if written + count == 0 { b"\n" } else { b",\n" };
            out.write_all(separator).await.map_err(write_error)?;
            out.write_all(&product).await.map_err(write_error)?;
            count += 1;
        }
        Ok::<u64, FetchError>(count)
    };
    let (downloaded, products) = tokio::join!(download, write);
    let scanned = scanner.await.map_err(|error| FetchError::Write(format!("the page scanner crashed: {error}")))?;
    // A failed download explains a truncated page better than the scanner can.
    let bytes = downloaded?;
    let products = products?;
    scanned.map_err(|problem| problem.into_error(url))?;
    Ok(CopiedPage { bytes, products })
}

/// `Read` over the chunks of a download (on the scanner's blocking thread).
struct ChannelReader {
    chunks: mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.chunks.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let length = buffer.len().min(self.current.len());
        buffer[..length].copy_from_slice(&self.current.split_to(length));
        Ok(length)
    }
}

/// Why a page could not be read as Shopify products. The causes name
/// positions, never the page's bytes (which may be anything a server sent).
enum PageProblem {
    NotShopify(String),
    ProductTooLarge { line: u64, limit: u64 },
}

impl PageProblem {
    fn into_error(self, url: String) -> FetchError {
        match self {
            PageProblem::NotShopify(cause) => FetchError::NotShopify { url, cause },
            PageProblem::ProductTooLarge { line, limit } => FetchError::ProductTooLarge { url, line, limit },
        }
    }
}

/// Cuts the products out of one page (`{"products": [...]}`) and sends each
/// one's bytes; stops early when nobody receives them any more.
fn scan_page(
    source: ChannelReader,
    max_product_bytes: u64,
    products: mpsc::Sender<Vec<u8>>,
) -> Result<(), PageProblem> {
    let mut reader = TrackedReader::new(source, Encoding::Utf8, max_product_bytes);
    let tracker = reader.tracker();
    let mut scanner = JsonScanner::new(&mut reader, tracker.clone(), FeedFormat::Shopify);
    let scanned = (|| {
        if scanner.peek()? != Some(b'{') {
            return Ok(Err(PageProblem::NotShopify("not a JSON object".into())));
        }
        match scanner.find_products()? {
            Some(Found::Array) => {}
            _ => return Ok(Err(PageProblem::NotShopify("no \"products\" array".into()))),
        }
        if scanner.for_each_element(|product| products.blocking_send(product.bytes.to_vec()).is_ok())? {
            scanner.finish(true)?;
        }
        Ok(Ok(()))
    })();
    scanned.unwrap_or_else(|error: FeedError| Err(page_problem(error, tracker.take_fault())))
}

fn page_problem(error: FeedError, fault: Option<ReadFault>) -> PageProblem {
    match (fault, error) {
        (Some(ReadFault::RecordTooLarge { line, limit }), _) => PageProblem::ProductTooLarge { line, limit },
        (Some(ReadFault::NotUtf8 { offset, .. }), _) => PageProblem::NotShopify(format!("not UTF-8 at byte {offset}")),
        (None, FeedError::Syntax { line, column, .. }) => {
            PageProblem::NotShopify(format!("malformed JSON at line {line}, column {column}"))
        }
        (None, FeedError::Truncated { line, .. }) => {
            PageProblem::NotShopify(format!("the page ends early, at line {line}"))
        }
        (None, _) => PageProblem::NotShopify("the page could not be read".into()),
    }
}

/// Fetches a feed of the given format: Shopify store URLs are paged, anything else downloaded.
pub async fn fetch_feed(
    fetcher: &Fetcher,
    url: &str,
    format: FeedFormat,
    options: &FetchOptions,
    out: &mut (impl AsyncWrite + Unpin),
) -> Result<Fetched, FetchError> {
    match (format, shopify_products_endpoint(url)) {
        (FeedFormat::Shopify, Some(_)) => download_shopify_store(fetcher, url, options, out).await,
        _ => download(fetcher, url, options, out).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shopify_endpoints() {
        assert_eq!(
            shopify_products_endpoint("https://shop.example").as_deref(),
            Some("https://shop.example/products.json")
        );
        assert_eq!(
            shopify_products_endpoint("https://shop.example/products.json?page=3").as_deref(),
            Some("https://shop.example/products.json")
        );
        assert_eq!(
            shopify_products_endpoint("http://shop.example/collections/all/products.json").as_deref(),
            Some("http://shop.example/collections/all/products.json")
        );
        assert_eq!(shopify_products_endpoint("https://files.example/export.json"), None);
        assert_eq!(shopify_products_endpoint("ftp://shop.example"), None);
    }
}

//! Downloading feeds over http(s), with timeouts and a size cap, into any
//! async writer (usually a temporary file that `parse_feed` then reads).
//!
//! A Shopify store is paged: `<store>/products.json?page=N&limit=250` until a
//! page comes back empty; the pages are written out as one
//! `{"products": [...]}` document, so the import sees one feed.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::FeedFormat;

#[derive(Debug, Clone)]
pub struct FetchOptions {
    pub connect_timeout: Duration,
    /// Longest silence while reading a response.
    pub read_timeout: Duration,
    /// Longest whole request, body included.
    pub total_timeout: Duration,
    /// Bytes one download may have (all pages together for a Shopify store).
    pub max_bytes: u64,
    /// Pages of a Shopify store (250 products each).
    pub max_pages: u32,
    pub user_agent: String,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            total_timeout: Duration::from_secs(30 * 60),
            max_bytes: 4 * 1024 * 1024 * 1024,
            max_pages: 10_000,
            user_agent: concat!("octogen-ingest/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url} is not an http(s) URL")]
    InvalidUrl { url: String },
    #[error("GET {url}: HTTP {status}{}", reason.as_deref().map(|r| format!(" {r}")).unwrap_or_default())]
    Status { url: String, status: u16, reason: Option<String> },
    #[error("GET {url}: timed out ({cause})")]
    Timeout { url: String, cause: String },
    #[error("GET {url}: {cause}")]
    Transport { url: String, cause: String },
    #[error("GET {url}: the response is larger than the {limit}-byte limit")]
    TooLarge { url: String, limit: u64 },
    #[error("GET {url}: not Shopify products JSON ({cause})")]
    NotShopify { url: String, cause: String },
    #[error("writing the download failed: {0}")]
    Write(String),
    #[error("building the HTTP client failed: {0}")]
    Client(String),
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

fn client(options: &FetchOptions) -> Result<reqwest::Client, FetchError> {
    reqwest::Client::builder()
        .connect_timeout(options.connect_timeout)
        .read_timeout(options.read_timeout)
        .timeout(options.total_timeout)
        .user_agent(options.user_agent.clone())
        .build()
        .map_err(|error| FetchError::Client(error.to_string()))
}

fn check_url(url: &str) -> Result<url::Url, FetchError> {
    url::Url::parse(url)
        .ok()
        .filter(|parsed| matches!(parsed.scheme(), "http" | "https"))
        .ok_or_else(|| FetchError::InvalidUrl { url: url.to_string() })
}

fn request_error(url: &str, error: &reqwest::Error) -> FetchError {
    let mut cause = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        cause = format!("{cause}: {inner}");
        source = inner.source();
    }
    if error.is_timeout() {
        FetchError::Timeout { url: url.to_string(), cause }
    } else {
        FetchError::Transport { url: url.to_string(), cause }
    }
}

/// Starts a GET and checks the status and announced size.
async fn get(client: &reqwest::Client, url: &str, limit: u64) -> Result<reqwest::Response, FetchError> {
    let response = client.get(url).send().await.map_err(|error| request_error(url, &error))?;
    let status = response.status();
    if !status.is_success() {
        return Err(FetchError::Status {
            url: url.to_string(),
            status: status.as_u16(),
            reason: status.canonical_reason().map(str::to_string),
        });
    }
    if response.content_length().is_some_and(|length| length > limit) {
        return Err(FetchError::TooLarge { url: url.to_string(), limit });
    }
    Ok(response)
}

/// Streams a response body into `out`, failing once it passes `limit` bytes.
async fn copy_body(
    url: &str,
    mut response: reqwest::Response,
    limit: u64,
    out: &mut (impl AsyncWrite + Unpin),
) -> Result<u64, FetchError> {
    let mut written = 0u64;
    while let Some(chunk) = response.chunk().await.map_err(|error| request_error(url, &error))? {
        written += chunk.len() as u64;
        if written > limit {
            return Err(FetchError::TooLarge { url: url.to_string(), limit });
        }
        out.write_all(&chunk).await.map_err(|error| FetchError::Write(error.to_string()))?;
    }
    Ok(written)
}

/// Downloads one URL into `out`.
pub async fn download(
    url: &str,
    options: &FetchOptions,
    out: &mut (impl AsyncWrite + Unpin),
) -> Result<Fetched, FetchError> {
    check_url(url)?;
    let client = client(options)?;
    let response = get(&client, url, options.max_bytes).await?;
    let bytes = copy_body(url, response, options.max_bytes, out).await?;
    out.flush().await.map_err(|error| FetchError::Write(error.to_string()))?;
    Ok(Fetched { bytes, pages: 1, products: None })
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
    store_url: &str,
    options: &FetchOptions,
    out: &mut (impl AsyncWrite + Unpin),
) -> Result<Fetched, FetchError> {
    let endpoint =
        shopify_products_endpoint(store_url).ok_or_else(|| FetchError::InvalidUrl { url: store_url.to_string() })?;
    let client = client(options)?;
    let write = |error: std::io::Error| FetchError::Write(error.to_string());
    let mut fetched = Fetched { products: Some(0), ..Fetched::default() };
    out.write_all(b"{\"products\": [").await.map_err(write)?;
    for page in 1..=options.max_pages {
        let url = format!("{endpoint}?page={page}&limit=250");
        let remaining = options.max_bytes.saturating_sub(fetched.bytes);
        let response = get(&client, &url, remaining).await?;
        let mut body = Vec::new();
        fetched.bytes += copy_body(&url, response, remaining, &mut body).await?;
        fetched.pages = page;
        let products = page_products(&url, &body)?;
        if products.is_empty() {
            break;
        }
        for product in products {
            let separator: &[u8] = if fetched.products == Some(0) { b"\n" } else { b",\n" };
            out.write_all(separator).await.map_err(write)?;
            let json = serde_json::to_vec(&product).map_err(|error| FetchError::Write(error.to_string()))?;
            out.write_all(&json).await.map_err(write)?;
            fetched.products = fetched.products.map(|count| count + 1);
        }
    }
    out.write_all(b"\n]}\n").await.map_err(write)?;
    out.flush().await.map_err(write)?;
    Ok(fetched)
}

fn page_products(url: &str, body: &[u8]) -> Result<Vec<Value>, FetchError> {
    let not_shopify = |cause: String| FetchError::NotShopify { url: url.to_string(), cause };
    let value: Value = serde_json::from_slice(body).map_err(|error| {
        let start = String::from_utf8_lossy(&body[..body.len().min(40)]).into_owned();
        not_shopify(format!("{error}; the body starts with {start:?}"))
    })?;
    match value {
        Value::Object(mut object) => match object.remove("products") {
            Some(Value::Array(products)) => Ok(products),
            _ => Err(not_shopify("no \"products\" array".into())),
        },
        _ => Err(not_shopify("not a JSON object".into())),
    }
}

/// Fetches a feed of the given format: Shopify store URLs are paged, anything else downloaded.
pub async fn fetch_feed(
    url: &str,
    format: FeedFormat,
    options: &FetchOptions,
    out: &mut (impl AsyncWrite + Unpin),
) -> Result<Fetched, FetchError> {
    check_url(url)?;
    match (format, shopify_products_endpoint(url)) {
        (FeedFormat::Shopify, Some(_)) => download_shopify_store(url, options, out).await,
        _ => download(url, options, out).await,
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

//! The client: configuration, authentication, one request with bounded retries.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, RETRY_AFTER, USER_AGENT};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{ApiError, Error};
use crate::models::{LookupResult, MerchantCatalogSummary};
use crate::retry::RetryPolicy;
use crate::search::SearchProducts;

/// The environment variable the SDKs read the key from (SPEC §2).
pub const API_KEY_ENV: &str = "OCTO_API_KEY";
/// Read when `OCTO_API_KEY` is unset: the name today's public SDKs prefer.
pub const FALLBACK_API_KEY_ENV: &str = "OCTOGEN_PLATFORM_API_KEY";
/// The environment variable for the server's base URL.
pub const BASE_URL_ENV: &str = "OCTO_BASE_URL";
/// A local server, as `octogen serve` and `octogen demo` start it.
pub const DEFAULT_BASE_URL: &str = "http://127.0.0.1:8080";
/// Per-attempt timeout unless configured.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The response shapes this client parses. Sent as `Octogen-Version` so a
/// server that pins an organization to a later version still answers in these.
pub const API_VERSION: &str = "2026-05-28";

/// An async client for the Octogen Platform Catalog API. Cheap to clone (the
/// connection pool and configuration are shared).
///
/// ```no_run
/// # async fn example() -> Result<(), octogen_client::Error> {
/// let client = octogen_client::Client::new()?; // OCTO_API_KEY, OCTO_BASE_URL
/// for catalog in client.list_catalogs().await? {
///     println!("{} ({} products)", catalog.catalog, catalog.product_count);
/// }
/// let page = client.search_products().q("black hoodie").facet("color_family", ["Black"]).limit(10).send().await?;
/// let product = client.lookup_product("https://northwind.example/products/trail-hoodie").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base_url: String,
    api_key: SecretString,
    api_version: Option<String>,
    retry: RetryPolicy,
    on_retry: Option<RetryObserver>,
}

/// Called before each retry with the failure and the wait (see [`ClientBuilder::on_retry`]).
type RetryObserver = Arc<dyn Fn(&Error, Duration) + Send + Sync>;

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base_url)
            .field("api_key", &"[redacted]")
            .field("api_version", &self.inner.api_version)
            .field("retry", &self.inner.retry)
            .finish()
    }
}

impl Client {
    /// A client configured from the environment: the key from `OCTO_API_KEY`
    /// (else `OCTOGEN_PLATFORM_API_KEY`), the server from `OCTO_BASE_URL`
    /// (else `http://127.0.0.1:8080`).
    pub fn new() -> Result<Client, Error> {
        Client::builder().build()
    }

    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The base URL requests go to (without a trailing `/v1`).
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// `GET /v1/catalogs`: the catalogs granted to the key's organization.
    pub async fn list_catalogs(&self) -> Result<Vec<MerchantCatalogSummary>, Error> {
        self.request(Method::GET, "/v1/catalogs", None::<&()>).await
    }

    /// `POST /v1/products/search`, built step by step; see [`SearchProducts`].
    pub fn search_products(&self) -> SearchProducts {
        SearchProducts::new(self.clone())
    }

    /// `POST /v1/products/lookup`: a product page URL → the full product.
    pub async fn lookup_product(&self, url: &str) -> Result<LookupResult, Error> {
        self.request(Method::POST, "/v1/products/lookup", Some(&serde_json::json!({ "url": url }))).await
    }

    /// Sends one API request, retrying connection failures, 5xx and 429 as the
    /// retry policy allows, and decodes a success body as `T`.
    pub(crate) async fn request<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, Error> {
        let url = format!("{}{path}", self.inner.base_url);
        let body = match body {
            Some(body) => Some(serde_json::to_vec(body).map_err(|error| Error::Config(error.to_string()))?),
            None => None,
        };
        let retry = &self.inner.retry;
        let mut attempt = 1;
        loop {
            let outcome = self.attempt(&method, &url, body.as_deref()).await;
            let failure = match outcome {
                Ok((status, raw)) => {
                    return serde_json::from_str(&raw).map_err(|error| Error::Decode {
                        url: url.clone(),
                        status: status.as_u16(),
                        message: error.to_string(),
                        raw,
                    })
                }
                Err(failure) => failure,
            };
            let Some(delay) = retry.delay_before_retry(attempt, &failure) else { return Err(failure) };
            if let Some(observer) = &self.inner.on_retry {
                observer(&failure, delay);
            }
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn attempt(&self, method: &Method, url: &str, body: Option<&[u8]>) -> Result<(StatusCode, String), Error> {
        let mut request = self.inner.http.request(method.clone(), url).headers(self.headers());
        if let Some(body) = body {
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body.to_vec());
        }
        let connection_error = |error: reqwest::Error| Error::Connection {
            url: url.to_string(),
            message: describe(&error),
            source: Some(error.without_url()),
        };
        let response = request.send().await.map_err(connection_error)?;
        let status = response.status();
        let request_id = header_text(response.headers(), "x-request-id");
        let retry_after = response.headers().get(RETRY_AFTER).and_then(parse_retry_after);
        let raw = response.text().await.map_err(connection_error)?;
        if status.is_success() {
            Ok((status, raw))
        } else {
            Err(Error::Api(ApiError::new(status.as_u16(), raw, request_id, retry_after)))
        }
    }

    fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        // The key was validated as a header value when the client was built.
        if let Ok(mut value) = HeaderValue::from_str(&format!("Bearer {}", self.inner.api_key.expose_secret())) {
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(version) = self.inner.api_version.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert("octogen-version", version);
        }
        headers
    }
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|value| value.to_str().ok()).map(str::to_string)
}

/// `Retry-After` as delta-seconds (what the server sends). HTTP dates are not
/// used by this API and are ignored (the backoff applies instead).
pub(crate) fn parse_retry_after(value: &HeaderValue) -> Option<Duration> {
    let seconds: f64 = value.to_str().ok()?.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
}

/// A connection error in words, without the URL's credentials (there are none) or the key.
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "the response body could not be read"
    } else {
        "request failed"
    };
    let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(error);
    let mut innermost = None;
    while let Some(inner) = cause {
        innermost = Some(inner.to_string());
        cause = inner.source();
    }
    match innermost {
        Some(detail) => format!("{kind} ({detail})"),
        None => kind.to_string(),
    }
}

/// Configures a [`Client`]. Unset values come from the environment, then defaults.
#[derive(Default)]
pub struct ClientBuilder {
    api_key: Option<SecretString>,
    base_url: Option<String>,
    timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    retry: Option<RetryPolicy>,
    api_version: Option<Option<String>>,
    user_agent: Option<String>,
    on_retry: Option<RetryObserver>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// The API key (`octo_live_…`). Without it, `OCTO_API_KEY`, then `OCTOGEN_PLATFORM_API_KEY`.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(SecretString::from(key.into()));
        self
    }

    /// The server, e.g. `https://catalog.example.com` (a trailing `/v1` is
    /// accepted and ignored). Without it, `OCTO_BASE_URL`, then `http://127.0.0.1:8080`.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// The time one attempt may take, connecting to reading the body (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The time a connection may take to establish (default: the timeout, at most 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// How failed attempts are retried (default [`RetryPolicy::default`]).
    pub fn retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Shorthand for a retry policy with this many attempts in all (1 = no retries).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        let retry = self.retry.take().unwrap_or_default();
        self.retry = Some(RetryPolicy { max_attempts: attempts.max(1), ..retry });
        self
    }

    /// The `Octogen-Version` header; `None` sends none, so the server answers in
    /// the organization's pinned version (which this client may not parse).
    /// Default: [`API_VERSION`].
    pub fn api_version(mut self, version: Option<String>) -> Self {
        self.api_version = Some(version);
        self
    }

    /// Called before each retry with the failure being retried and the wait
    /// before the next attempt, so a caller can say why it is waiting (a
    /// command-line tool otherwise sits silent through a rate limit's wait).
    pub fn on_retry(mut self, observer: impl Fn(&Error, Duration) + Send + Sync + 'static) -> Self {
        self.on_retry = Some(Arc::new(observer));
        self
    }

    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    pub fn build(self) -> Result<Client, Error> {
        let api_key = match self.api_key {
            Some(key) => key,
            None => key_from_env().ok_or(Error::MissingApiKey)?,
        };
        if api_key.expose_secret().trim().is_empty() {
            return Err(Error::MissingApiKey);
        }
        if HeaderValue::from_str(&format!("Bearer {}", api_key.expose_secret())).is_err() {
            // Never echo the key: it may be a secret pasted with a stray newline.
            return Err(Error::Config("the API key contains characters not allowed in an HTTP header".into()));
        }
        let base_url = match self.base_url {
            Some(url) => url,
            None => non_empty_env(BASE_URL_ENV).unwrap_or_else(|| DEFAULT_BASE_URL.to_string()),
        };
        let base_url = normalize_base_url(&base_url)?;
        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let connect_timeout = self.connect_timeout.unwrap_or(timeout.min(Duration::from_secs(10)));
        let user_agent =
            self.user_agent.unwrap_or_else(|| format!("octogen-client-rust/{}", env!("CARGO_PKG_VERSION")));
        let mut defaults = HeaderMap::new();
        defaults.insert(
            USER_AGENT,
            HeaderValue::from_str(&user_agent).map_err(|_| Error::Config("invalid user agent".into()))?,
        );
        let http = reqwest::Client::builder()
            .default_headers(defaults)
            .timeout(timeout)
            .connect_timeout(connect_timeout)
            .build()
            .map_err(|error| Error::Config(format!("cannot build the HTTP client: {error}")))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base_url,
                api_key,
                api_version: self.api_version.unwrap_or_else(|| Some(API_VERSION.to_string())),
                retry: self.retry.unwrap_or_default(),
                on_retry: self.on_retry,
            }),
        })
    }
}

/// `OCTO_API_KEY`, else `OCTOGEN_PLATFORM_API_KEY`; empty values count as unset.
pub fn key_from_env() -> Option<SecretString> {
    non_empty_env(API_KEY_ENV).or_else(|| non_empty_env(FALLBACK_API_KEY_ENV)).map(SecretString::from)
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|value| value.trim().to_string()).filter(|value| !value.is_empty())
}

/// `http(s)://host[:port][/prefix]` without a trailing slash or `/v1`.
pub(crate) fn normalize_base_url(url: &str) -> Result<String, Error> {
    let parsed = url::Url::parse(url.trim())
        .map_err(|error| Error::Config(format!("the base URL {url:?} is not a URL: {error}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(Error::Config(format!("the base URL {url:?} must be an http(s) URL")));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(Error::Config(format!("the base URL {url:?} must not have a query or fragment")));
    }
    let mut text = parsed.as_str().trim_end_matches('/').to_string();
    if let Some(stripped) = text.strip_suffix("/v1") {
        text = stripped.to_string();
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_normalized() {
        assert_eq!(normalize_base_url("http://127.0.0.1:8080").unwrap(), "http://127.0.0.1:8080");
        assert_eq!(normalize_base_url("http://127.0.0.1:8080/").unwrap(), "http://127.0.0.1:8080");
        assert_eq!(normalize_base_url("https://api.example.com/v1/").unwrap(), "https://api.example.com");
        assert_eq!(normalize_base_url("https://example.com/octogen/v1").unwrap(), "https://example.com/octogen");
        assert!(matches!(normalize_base_url("ftp://example.com"), Err(Error::Config(_))));
        assert!(matches!(normalize_base_url("example.com"), Err(Error::Config(_))));
        assert!(matches!(normalize_base_url("http://example.com/?a=b"), Err(Error::Config(_))));
    }

    #[test]
    fn the_key_never_shows_in_debug_output() {
        let key = format!(
            "octo_live_{}_{}",
            "0123456789abcdef0123456789abcdef", "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"
        );
        let builder = Client::builder().api_key(key).base_url("http://127.0.0.1:9");
        assert!(!format!("{builder:?}").contains("c2VjcmV0"));
        let client = builder.build().unwrap();
        let debug = format!("{client:?}");
        assert!(!debug.contains("c2VjcmV0") && debug.contains("[redacted]"), "{debug}");
        assert!(!format!("{:?}", client.headers()).contains("c2VjcmV0"), "the header is marked sensitive");
    }

    #[test]
    fn keys_that_cannot_be_sent_are_refused_without_echoing_them() {
        let error = Client::builder().api_key("octo_live_abc\nsecret").build().unwrap_err();
        assert!(matches!(error, Error::Config(_)));
        assert!(!error.to_string().contains("secret"));
        assert!(matches!(Client::builder().api_key("  ").build(), Err(Error::MissingApiKey)));
    }

    #[test]
    fn retry_after_is_read_as_seconds() {
        assert_eq!(parse_retry_after(&HeaderValue::from_static("3")), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(&HeaderValue::from_static(" 0 ")), Some(Duration::ZERO));
        assert_eq!(parse_retry_after(&HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(parse_retry_after(&HeaderValue::from_static("-1")), None);
    }
}

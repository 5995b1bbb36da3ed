//! The one way octogen reaches another host (feeds, scheduled sources, OAuth
//! client metadata documents, and later product pages and crawls). A fetch
//!
//! - goes only to public addresses: IP literals are checked before any
//!   request (the WHATWG parser of `url` has already turned `2130706433`,
//!   `0177.0.0.1` and `0x7f.1` into `127.0.0.1`), names through a resolver
//!   that drops non-public addresses and hands the client only what it vetted
//!   (no second lookup, so no DNS rebinding) — unless the exact `host:port` is
//!   listed in [`AllowPrivate`] (the operator's `fetch_allow_private`);
//! - ignores system proxies (a proxy would connect on our behalf, unchecked);
//! - follows redirects itself, checking every target like the first (at most
//!   [`Limits::max_redirects`]); credentials set for one origin are not sent to another;
//! - is capped in time (one deadline for the redirects and the body together,
//!   plus connect and read-silence timeouts) and in body size;
//! - fails with a [`FetchError`] that names the redacted URL and the rule or
//!   cause, never a byte of a response.
//!
//! A [`Fetcher`] holds two HTTP clients with their connection pools: one whose
//! resolver refuses non-public addresses, and one for the listed targets.
//! Build one per purpose (its [`Limits`]) and keep it.

mod address;
mod allow;
mod error;
mod redact;
mod resolve;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, COOKIE, LOCATION};
use tokio::time::Instant;
use url::Url;

pub use address::{classify, is_public, Embedding, NonPublic, Rule};
pub use allow::AllowPrivate;
pub use error::{FetchError, Refusal};
pub use redact::{carries_credentials, is_secret_parameter, redact_url};
pub use reqwest::{header, StatusCode};

use resolve::VettingResolver;

/// How long and how big one fetch may be.
#[derive(Debug, Clone)]
pub struct Limits {
    pub connect_timeout: Duration,
    /// Longest silence while waiting for or reading a response.
    pub read_timeout: Duration,
    /// Longest whole fetch: every redirect and the body.
    pub total_timeout: Duration,
    /// Largest response body, in bytes.
    pub max_body_bytes: u64,
    /// Redirects followed; `0` returns a redirect response as it is.
    pub max_redirects: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            total_timeout: Duration::from_secs(60),
            max_body_bytes: 16 * 1024 * 1024,
            max_redirects: 5,
        }
    }
}

#[derive(Clone)]
pub struct Fetcher {
    inner: Arc<Inner>,
}

struct Inner {
    /// For every target not listed: only public addresses.
    public: reqwest::Client,
    /// For the listed `host:port` targets.
    listed: reqwest::Client,
    allow: AllowPrivate,
    limits: Limits,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher").field("allow", &self.inner.allow).field("limits", &self.inner.limits).finish()
    }
}

impl Fetcher {
    pub fn new(user_agent: &str, limits: Limits, allow: AllowPrivate) -> Result<Fetcher, FetchError> {
        let client = |permit_non_public| {
            reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(limits.connect_timeout)
                .read_timeout(limits.read_timeout)
                .user_agent(user_agent)
                .dns_resolver(Arc::new(VettingResolver { permit_non_public }))
                .build()
                .map_err(|error| FetchError::Client(error.to_string()))
        };
        let (public, listed) = (client(false)?, client(true)?);
        Ok(Fetcher { inner: Arc::new(Inner { public, listed, allow, limits }) })
    }

    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Whether `url`'s `host:port` is listed in `fetch_allow_private`.
    pub fn allows_private(&self, url: &Url) -> bool {
        self.inner.allow.allows(url)
    }

    /// A GET of `url` with this fetcher's limits (adjust with the builder's methods).
    pub fn get(&self, url: &str) -> Get<'_> {
        Get {
            fetcher: self,
            url: url.to_string(),
            headers: HeaderMap::new(),
            max_body_bytes: self.inner.limits.max_body_bytes,
            timeout: self.inner.limits.total_timeout,
        }
    }

    /// The client for `url`, after checking its target: the listed client for
    /// a listed `host:port`, else the public one — after refusing a non-public
    /// IP literal (names are vetted by the public client's resolver).
    fn client_for(&self, url: &Url) -> Result<&reqwest::Client, FetchError> {
        if self.inner.allow.allows(url) {
            return Ok(&self.inner.listed);
        }
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => None,
            None => return Err(FetchError::InvalidUrl { url: redact_url(url.as_str()) }),
        };
        if let Some(address) = literal {
            if let Some(why) = classify(address) {
                let refusal = Refusal::Address { address, why };
                return Err(FetchError::Refused { url: redact_url(url.as_str()), refusal });
            }
        }
        Ok(&self.inner.public)
    }
}

/// One GET, being set up.
pub struct Get<'f> {
    fetcher: &'f Fetcher,
    url: String,
    headers: HeaderMap,
    max_body_bytes: u64,
    timeout: Duration,
}

impl Get<'_> {
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// A tighter (or looser) body cap for this fetch.
    pub fn max_body_bytes(mut self, limit: u64) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// Another deadline for this whole fetch.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends the request and follows redirects; the response may have any
    /// status (see [`Response::error_for_status`]).
    pub async fn send(self) -> Result<Response, FetchError> {
        let deadline = Instant::now() + self.timeout;
        let mut url = http_url(&self.url)?;
        let mut headers = self.headers.clone();
        let max_redirects = self.fetcher.inner.limits.max_redirects;
        let mut redirects = 0;
        loop {
            let response = self.send_once(&url, &headers, deadline).await?;
            let next = if max_redirects == 0 { None } else { redirect_target(&url, &response)? };
            let Some(next) = next else {
                let redacted = redact_url(url.as_str());
                let (limit, timeout) = (self.max_body_bytes, self.timeout);
                return Ok(Response { inner: response, url, redacted, read: 0, limit, deadline, timeout });
            };
            if redirects == max_redirects {
                return Err(FetchError::TooManyRedirects { url: redact_url(&self.url), max: max_redirects });
            }
            redirects += 1;
            if next.origin() != url.origin() {
                headers.remove(AUTHORIZATION);
                headers.remove(COOKIE);
            }
            url = next;
        }
    }

    async fn send_once(
        &self,
        url: &Url,
        headers: &HeaderMap,
        deadline: Instant,
    ) -> Result<reqwest::Response, FetchError> {
        let client = self.fetcher.client_for(url)?;
        let request = client.get(url.clone()).headers(headers.clone()).send();
        match tokio::time::timeout_at(deadline, request).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(error)) => Err(FetchError::from_request(&redact_url(url.as_str()), error)),
            Err(_) => Err(timed_out(url, self.timeout)),
        }
    }
}

fn timed_out(url: &Url, timeout: Duration) -> FetchError {
    FetchError::Timeout { url: redact_url(url.as_str()), cause: format!("the fetch took longer than {timeout:?}") }
}

fn http_url(text: &str) -> Result<Url, FetchError> {
    Url::parse(text)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
        .ok_or_else(|| FetchError::InvalidUrl { url: redact_url(text) })
}

/// Where a redirect response points, or `None` when the response is not a
/// redirect (304 Not Modified and 300 Multiple Choices are answers, not redirects).
fn redirect_target(url: &Url, response: &reqwest::Response) -> Result<Option<Url>, FetchError> {
    let status = response.status();
    if !matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
        return Ok(None);
    }
    let bad = |problem| FetchError::BadRedirect { url: redact_url(url.as_str()), status: status.as_u16(), problem };
    let location = response.headers().get(LOCATION).ok_or_else(|| bad("nowhere (no Location header)"))?;
    let location = location.to_str().map_err(|_| bad("an unreadable Location"))?;
    let next = url.join(location).map_err(|_| bad("an invalid URL"))?;
    if !matches!(next.scheme(), "http" | "https") {
        return Err(bad("a URL that is not http(s)"));
    }
    Ok(Some(next))
}

/// A response whose body is read within the fetch's deadline and size cap.
pub struct Response {
    inner: reqwest::Response,
    url: Url,
    redacted: String,
    read: u64,
    limit: u64,
    deadline: Instant,
    timeout: Duration,
}

impl Response {
    pub fn status(&self) -> StatusCode {
        self.inner.status()
    }

    pub fn headers(&self) -> &HeaderMap {
        self.inner.headers()
    }

    /// The URL that answered (after redirects). It may carry credentials: show [`Response::redacted_url`].
    pub fn url(&self) -> &Url {
        &self.url
    }

    pub fn redacted_url(&self) -> &str {
        &self.redacted
    }

    /// Bytes of the body read so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// The response, if its status is 2xx; else an error naming the status.
    pub fn error_for_status(self) -> Result<Response, FetchError> {
        let status = self.status();
        if status.is_success() {
            return Ok(self);
        }
        Err(FetchError::Status {
            url: self.redacted.clone(),
            status: status.as_u16(),
            reason: status.canonical_reason(),
        })
    }

    /// The next piece of the body, `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, FetchError> {
        if self.read == 0 && self.inner.content_length().is_some_and(|length| length > self.limit) {
            return Err(self.too_large());
        }
        let chunk = match tokio::time::timeout_at(self.deadline, self.inner.chunk()).await {
            Ok(Ok(chunk)) => chunk,
            Ok(Err(error)) => return Err(FetchError::from_request(&self.redacted, error)),
            Err(_) => return Err(timed_out(&self.url, self.timeout)),
        };
        if let Some(chunk) = &chunk {
            self.read += chunk.len() as u64;
            if self.read > self.limit {
                return Err(self.too_large());
            }
        }
        Ok(chunk)
    }

    /// The whole body (within the cap).
    pub async fn bytes(mut self) -> Result<Vec<u8>, FetchError> {
        let mut body = Vec::new();
        while let Some(chunk) = self.chunk().await? {
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn too_large(&self) -> FetchError {
        FetchError::TooLarge { url: self.redacted.clone(), limit: self.limit }
    }
}

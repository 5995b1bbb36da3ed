//! Why a fetch failed, in one line for an operator. Every URL in an error is
//! redacted (`redact_url`), and no error carries a byte of a response body:
//! an error is shown where the response is not (run reports, the portal), and
//! must not turn the fetcher into a way to read another host's pages.

use std::net::IpAddr;

use crate::address::NonPublic;

/// Why a target was refused before any request was sent to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{address} is {why} (set fetch_allow_private to allow it)")]
    Address { address: IpAddr, why: NonPublic },
    #[error("{host} resolves only to non-public addresses ({address} is {why}; set fetch_allow_private to allow it)")]
    Resolved { host: String, address: IpAddr, why: NonPublic },
}

/// A name that could not be resolved (kept apart so the message does not depend on the resolver's wording).
#[derive(Debug, thiserror::Error)]
#[error("cannot resolve {host}: {cause}")]
pub(crate) struct ResolveFailed {
    pub host: String,
    pub cause: String,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url} is not an http(s) URL")]
    InvalidUrl { url: String },
    #[error("refused {url}: {refusal}")]
    Refused { url: String, refusal: Refusal },
    #[error("GET {url}: HTTP {status}{}", reason.map(|reason| format!(" {reason}")).unwrap_or_default())]
    Status { url: String, status: u16, reason: Option<&'static str> },
    #[error("GET {url}: timed out ({cause})")]
    Timeout { url: String, cause: String },
    #[error("GET {url}: {cause}")]
    Transport { url: String, cause: String },
    #[error("GET {url}: the response is larger than the {limit}-byte limit")]
    TooLarge { url: String, limit: u64 },
    #[error("GET {url}: more than {max} redirects")]
    TooManyRedirects { url: String, max: usize },
    #[error("GET {url}: HTTP {status} redirects to {problem}")]
    BadRedirect { url: String, status: u16, problem: &'static str },
    #[error("building the HTTP client failed: {0}")]
    Client(String),
}

impl FetchError {
    /// The refusal, when the fetch was refused by the address rules.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            FetchError::Refused { refusal, .. } => Some(refusal),
            _ => None,
        }
    }

    /// What the request layer reported, without its URL: a refusal from our
    /// resolver, a timeout, or the chain of causes.
    pub(crate) fn from_request(url: &str, error: reqwest::Error) -> FetchError {
        let mut causes = Vec::new();
        let error = error.without_url();
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
        while let Some(inner) = source {
            if let Some(refusal) = inner.downcast_ref::<Refusal>() {
                return FetchError::Refused { url: url.to_string(), refusal: refusal.clone() };
            }
            if let Some(failed) = inner.downcast_ref::<ResolveFailed>() {
                return FetchError::Transport { url: url.to_string(), cause: failed.to_string() };
            }
            let text = inner.to_string();
            if !causes.iter().any(|cause: &String| cause.contains(&text)) {
                causes.push(text);
            }
            source = inner.source();
        }
        let cause = causes.join(": ");
        if error.is_timeout() {
            FetchError::Timeout { url: url.to_string(), cause }
        } else {
            FetchError::Transport { url: url.to_string(), cause }
        }
    }
}

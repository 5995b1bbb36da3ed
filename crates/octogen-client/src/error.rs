//! Errors of the client, mirroring the SDK error model (SPEC §8): a missing key,
//! an unreachable server, or an API error with its status, `detail` and raw body.

use std::fmt;
use std::time::Duration;

pub use octogen_core::error::{LocPart, ValidationIssue};
use serde_json::Value;

/// Everything a call can fail with. No variant ever carries the API key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No key was given and neither `OCTO_API_KEY` nor `OCTOGEN_PLATFORM_API_KEY` is set.
    #[error("no API key: set OCTO_API_KEY (or pass a key to the client builder)")]
    MissingApiKey,
    /// The client was configured with something unusable (e.g. a base URL that is not http(s)).
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// The server could not be reached, or the connection failed or timed out
    /// (after the configured retries).
    #[error("cannot reach the Octogen API at {url}: {message}")]
    Connection {
        url: String,
        message: String,
        #[source]
        source: Option<reqwest::Error>,
    },
    /// The server answered with an error status (after the configured retries
    /// for 429 and 5xx).
    #[error(transparent)]
    Api(#[from] ApiError),
    /// A success status whose body is not the documented shape.
    #[error("unexpected response from {url} (status {status}): {message}")]
    Decode { url: String, status: u16, message: String, raw: String },
}

impl Error {
    /// The API error, when the server answered with an error status.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(error) => Some(error),
            _ => None,
        }
    }

    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        self.api().map(|error| error.status)
    }

    /// Whether the same request may succeed later without change (SPEC §3):
    /// connection failures, 5xx and 429.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Connection { .. } => true,
            Error::Api(error) => error.is_retryable(),
            _ => false,
        }
    }
}

/// The class of an API error, by status (SPEC §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiErrorKind {
    /// 401: the key is missing, malformed, unknown or revoked.
    Authentication,
    /// 403: the key is valid but its organization may not use the API.
    Forbidden,
    /// 404: unknown/ungranted catalog, no product at that URL, or an unknown route.
    NotFound,
    /// 422 (and 400): the request must change.
    Validation,
    /// 429: the organization's rate budget is spent.
    RateLimited,
    /// 5xx.
    Server,
    /// Any other status.
    Other,
}

impl ApiErrorKind {
    pub fn from_status(status: u16) -> Self {
        match status {
            401 => ApiErrorKind::Authentication,
            403 => ApiErrorKind::Forbidden,
            404 => ApiErrorKind::NotFound,
            400 | 422 => ApiErrorKind::Validation,
            429 => ApiErrorKind::RateLimited,
            500..=599 => ApiErrorKind::Server,
            _ => ApiErrorKind::Other,
        }
    }
}

/// The body's `detail`: a string for most errors, a list of issues for 422 validation errors.
#[derive(Debug, Clone, PartialEq)]
pub enum Detail {
    Message(String),
    Validation(Vec<ValidationIssue>),
    /// Any other JSON (or none: `Null` when the body was not JSON).
    Other(Value),
}

impl Detail {
    /// The string detail, e.g. `product_not_found`.
    pub fn message(&self) -> Option<&str> {
        match self {
            Detail::Message(message) => Some(message),
            _ => None,
        }
    }

    fn from_body(raw: &str) -> Detail {
        let Ok(body) = serde_json::from_str::<Value>(raw) else { return Detail::Other(Value::Null) };
        match body.get("detail") {
            Some(Value::String(message)) => Detail::Message(message.clone()),
            Some(list @ Value::Array(_)) => match serde_json::from_value(list.clone()) {
                Ok(issues) => Detail::Validation(issues),
                Err(_) => Detail::Other(list.clone()),
            },
            Some(other) => Detail::Other(other.clone()),
            None => Detail::Other(body),
        }
    }
}

impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Detail::Message(message) => f.write_str(message),
            Detail::Validation(issues) => {
                let parts: Vec<String> = issues
                    .iter()
                    .map(|issue| {
                        let loc: Vec<String> = issue
                            .loc
                            .iter()
                            .map(|part| match part {
                                LocPart::Field(name) => name.clone(),
                                LocPart::Index(index) => index.to_string(),
                            })
                            .collect();
                        format!("{}: {}", loc.join("."), issue.msg)
                    })
                    .collect();
                f.write_str(&parts.join("; "))
            }
            Detail::Other(Value::Null) => f.write_str("(no detail)"),
            Detail::Other(value) => write!(f, "{value}"),
        }
    }
}

/// An error status from the API.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the Octogen API answered {status}: {detail}")]
pub struct ApiError {
    pub status: u16,
    pub kind: ApiErrorKind,
    pub detail: Detail,
    /// The response body exactly as received.
    pub raw: String,
    /// The server's `X-Request-Id`, to quote in a support request.
    pub request_id: Option<String>,
    /// `Retry-After` of a 429 (or 503), when the server sent one.
    pub retry_after: Option<Duration>,
}

impl ApiError {
    pub(crate) fn new(status: u16, raw: String, request_id: Option<String>, retry_after: Option<Duration>) -> Self {
        ApiError {
            status,
            kind: ApiErrorKind::from_status(status),
            detail: Detail::from_body(&raw),
            raw,
            request_id,
            retry_after,
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, ApiErrorKind::RateLimited | ApiErrorKind::Server)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_parse_as_strings_issues_or_anything_else() {
        let error = ApiError::new(404, r#"{"detail":"product_not_found"}"#.into(), None, None);
        assert_eq!(error.kind, ApiErrorKind::NotFound);
        assert_eq!(error.detail.message(), Some("product_not_found"));
        assert_eq!(error.to_string(), "the Octogen API answered 404: product_not_found");

        let raw = r#"{"detail":[{"loc":["body","limit"],"msg":"Input should be less than or equal to 100","type":"less_than_equal","input":500,"ctx":{"le":100}}]}"#;
        let error = ApiError::new(422, raw.into(), None, None);
        let Detail::Validation(issues) = &error.detail else { panic!("{:?}", error.detail) };
        assert_eq!(issues[0].kind, "less_than_equal");
        assert_eq!(issues[0].loc, vec![LocPart::Field("body".into()), LocPart::Field("limit".into())]);
        assert_eq!(error.detail.to_string(), "body.limit: Input should be less than or equal to 100");

        let error = ApiError::new(502, "<html>bad gateway</html>".into(), None, None);
        assert_eq!(error.kind, ApiErrorKind::Server);
        assert!(error.is_retryable());
        assert_eq!(error.detail, Detail::Other(Value::Null));
        assert_eq!(error.raw, "<html>bad gateway</html>");
    }
}

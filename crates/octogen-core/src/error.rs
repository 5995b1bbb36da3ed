//! The one table of API error codes: each maps to an HTTP status and the
//! `detail` clients see (SPEC §2, §3). Handlers return these; the server turns
//! them into responses in exactly one place.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Errors whose body is `{"detail": "<string>"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 401: no `Authorization` header, or not a Bearer token.
    AuthorizationRequired,
    /// 401: malformed, unknown, wrong-secret or revoked key — deliberately one answer.
    InvalidApiKey,
    /// 403: the key's organization is not a catalog partner.
    OrgTypeForbidden,
    /// 403: the key's organization is suspended.
    KeyForbidden,
    /// 404: unknown, inactive or ungranted catalog — never says which.
    CatalogNotFound,
    /// 404: no active product in the granted catalogs has this URL.
    ProductNotFound,
    /// 422: the lookup URL is not an http(s) URL.
    InvalidProductUrl,
    /// 429: the organization's rate budget is spent.
    RateLimitExceeded,
    /// 404 for unknown routes.
    RouteNotFound,
    /// 405 for known routes with another method.
    MethodNotAllowed,
    /// 413: request body over the configured limit.
    PayloadTooLarge,
    /// 503: the request took longer than the per-request timeout (retryable).
    RequestTimeout,
    /// 503: the server is shutting down or overloaded.
    ServiceUnavailable,
    /// 500: anything unexpected; the cause is logged, never sent.
    Internal,
}

impl ErrorCode {
    pub const fn status(self) -> u16 {
        match self {
            ErrorCode::AuthorizationRequired | ErrorCode::InvalidApiKey => 401,
            ErrorCode::OrgTypeForbidden | ErrorCode::KeyForbidden => 403,
            ErrorCode::CatalogNotFound | ErrorCode::ProductNotFound | ErrorCode::RouteNotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::InvalidProductUrl => 422,
            ErrorCode::RateLimitExceeded => 429,
            ErrorCode::Internal => 500,
            ErrorCode::ServiceUnavailable | ErrorCode::RequestTimeout => 503,
        }
    }

    pub const fn detail(self) -> &'static str {
        match self {
            ErrorCode::AuthorizationRequired => "Authorization Bearer token required",
            ErrorCode::InvalidApiKey => "Invalid API key",
            ErrorCode::OrgTypeForbidden => "api_key_org_type_forbidden",
            ErrorCode::KeyForbidden => "api_key_forbidden",
            ErrorCode::CatalogNotFound => "catalog_not_found",
            ErrorCode::ProductNotFound => "product_not_found",
            ErrorCode::InvalidProductUrl => "invalid_product_url",
            ErrorCode::RateLimitExceeded => "rate_limit_exceeded",
            ErrorCode::RouteNotFound => "Not Found",
            ErrorCode::MethodNotAllowed => "Method Not Allowed",
            ErrorCode::PayloadTooLarge => "Request body too large",
            ErrorCode::RequestTimeout => "Request timed out",
            ErrorCode::ServiceUnavailable => "Service unavailable",
            ErrorCode::Internal => "Internal Server Error",
        }
    }

    pub const ALL: [ErrorCode; 14] = [
        ErrorCode::AuthorizationRequired,
        ErrorCode::InvalidApiKey,
        ErrorCode::OrgTypeForbidden,
        ErrorCode::KeyForbidden,
        ErrorCode::CatalogNotFound,
        ErrorCode::ProductNotFound,
        ErrorCode::InvalidProductUrl,
        ErrorCode::RateLimitExceeded,
        ErrorCode::RouteNotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::PayloadTooLarge,
        ErrorCode::RequestTimeout,
        ErrorCode::ServiceUnavailable,
        ErrorCode::Internal,
    ];
}

/// One entry of a 422 body: `{loc, msg, type, input?, ctx?}` (SPEC §3, pydantic's shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ValidationIssue {
    #[schema(example = json!(["body", "limit"]))]
    pub loc: Vec<LocPart>,
    pub msg: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// The offending input, of whatever JSON type it had.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<utoipa::openapi::schema::Value>)]
    pub input: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub ctx: Option<Value>,
}

/// A path segment in `loc`: a field name or an array index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum LocPart {
    Field(String),
    Index(usize),
}

impl From<&str> for LocPart {
    fn from(value: &str) -> Self {
        LocPart::Field(value.to_string())
    }
}

impl From<String> for LocPart {
    fn from(value: String) -> Self {
        LocPart::Field(value)
    }
}

impl From<usize> for LocPart {
    fn from(value: usize) -> Self {
        LocPart::Index(value)
    }
}

impl ValidationIssue {
    pub fn new(loc: Vec<LocPart>, kind: &str, msg: impl Into<String>) -> Self {
        ValidationIssue { loc, msg: msg.into(), kind: kind.to_string(), input: None, ctx: None }
    }

    pub fn with_input(mut self, input: Value) -> Self {
        self.input = Some(input);
        self
    }

    pub fn with_ctx(mut self, ctx: Value) -> Self {
        self.ctx = Some(ctx);
        self
    }
}

/// Builds a `loc` from mixed parts: `loc!["body", "facets", 0, "values"]`.
#[macro_export]
macro_rules! loc {
    ($($part:expr),* $(,)?) => { vec![$($crate::error::LocPart::from($part)),*] };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_client_error_or_server_status_and_a_detail() {
        for code in ErrorCode::ALL {
            assert!((400..600).contains(&code.status()), "{code:?}");
            assert!(!code.detail().is_empty());
        }
    }

    #[test]
    fn validation_issue_serializes_in_the_spec_shape() {
        let issue =
            ValidationIssue::new(loc!["body", "limit"], "less_than_equal", "Input should be less than or equal to 100")
                .with_input(serde_json::json!(500))
                .with_ctx(serde_json::json!({"le": 100}));
        assert_eq!(
            serde_json::to_value(&issue).unwrap(),
            serde_json::json!({"loc":["body","limit"],"msg":"Input should be less than or equal to 100","type":"less_than_equal","input":500,"ctx":{"le":100}})
        );
    }
}

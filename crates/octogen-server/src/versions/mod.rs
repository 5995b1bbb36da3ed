//! API versions, side by side (issue 10). One internal model — the services'
//! `SearchOutcome`, `LookupOutcome` and the caller's facts — rendered per
//! version at the edge; search, lookup and authentication run one code path.
//!
//! A version is one `ApiShape` implementation: how it reads request bodies,
//! how it renders responses, which routes it has, and its OpenAPI document.
//! Adding a version is a new module here, an entry in `VERSIONS`, and its
//! tests; nothing else changes.
//!
//! The version serving a request is, in order: the `Octogen-Version` request
//! header, the organization's pinned version, or `2026-05-28` (organizations
//! pinned before versions existed keep the contract they were built against).
//! New organizations are pinned to the server's `default_api_version`.

mod may2026;
mod oct2026;

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use octogen_core::ValidationIssue;
use octogen_store::{GrantedCatalog, OrgAccess};
use serde_json::{json, Value};

use crate::ratelimit::Budget;
use crate::service::products::{LookupOutcome, ProductSearch, SearchOutcome};

pub static VERSION_HEADER: HeaderName = HeaderName::from_static("octogen-version");

/// What a version decides.
pub trait ApiShape: Send + Sync {
    /// The version's name, a date: `2026-05-28`.
    fn name(&self) -> &'static str;
    fn parse_search(&self, body: &Value) -> Result<ProductSearch, Vec<ValidationIssue>>;
    fn render_search(&self, outcome: &SearchOutcome, context: &RenderContext<'_>) -> Value;
    /// Returns the URL to look up.
    fn parse_lookup(&self, body: &Value) -> Result<String, Vec<ValidationIssue>>;
    fn render_lookup(&self, outcome: &LookupOutcome, requested_url: &str, context: &RenderContext<'_>) -> Value;
    /// `GET /v1/me`; `None` when the version has no such route.
    fn render_me(&self, caller: &Caller<'_>) -> Option<Value>;
    fn openapi(&self) -> utoipa::openapi::OpenApi;
}

/// Facts every renderer may use besides the outcome itself.
pub struct RenderContext<'a> {
    pub request_id: &'a str,
    /// The caller's granted catalogs (display names for results).
    pub catalogs: &'a [GrantedCatalog],
}

/// Who is calling, for `GET /v1/me`.
pub struct Caller<'a> {
    pub key_id: String,
    pub org: &'a OrgAccess,
    pub budget: Option<Budget>,
}

/// Every version this server speaks, oldest first.
static VERSIONS: [&(dyn ApiShape + 'static); 2] = [&may2026::May2026, &oct2026::Oct2026];

/// A version, resolved for one request.
#[derive(Clone, Copy)]
pub struct ApiVersion(&'static dyn ApiShape);

impl ApiVersion {
    /// The contract of SPEC §1–8, and what organizations without a pinned version get.
    pub const ORIGINAL: ApiVersion = ApiVersion(&may2026::May2026);

    pub fn named(name: &str) -> Option<ApiVersion> {
        VERSIONS.iter().find(|version| version.name() == name.trim()).map(|version| ApiVersion(*version))
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }

    pub fn shape(self) -> &'static dyn ApiShape {
        self.0
    }

    pub fn known_names() -> Vec<&'static str> {
        VERSIONS.iter().map(|version| version.name()).collect()
    }

    pub fn header_value(self) -> HeaderValue {
        HeaderValue::from_static(self.name())
    }
}

impl std::fmt::Debug for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiVersion({})", self.name())
    }
}

/// The 400 for a version this server does not know, naming the ones it does.
pub fn unknown_version(name: &str) -> Response {
    let known = ApiVersion::known_names();
    let detail = format!("unknown API version {:?}; known versions: {}", name, known.join(", "));
    (StatusCode::BAD_REQUEST, Json(json!({ "detail": detail, "knownVersions": known }))).into_response()
}

/// A version name this server does not know; its response is `unknown_version`'s 400.
#[derive(Debug)]
pub struct UnknownVersion(pub String);

impl IntoResponse for UnknownVersion {
    fn into_response(self) -> Response {
        unknown_version(&self.0)
    }
}

/// The version a request asked for in its header: `Ok(None)` when it asked for none.
pub fn requested(headers: &axum::http::HeaderMap) -> Result<Option<ApiVersion>, UnknownVersion> {
    let Some(value) = headers.get(&VERSION_HEADER) else { return Ok(None) };
    let name = value.to_str().unwrap_or("<not text>");
    ApiVersion::named(name).map(Some).ok_or_else(|| UnknownVersion(name.to_string()))
}

/// An organization's version: its pin, or the original contract when it has none.
pub fn of_org(org: &OrgAccess) -> ApiVersion {
    org.api_version.as_deref().and_then(ApiVersion::named).unwrap_or(ApiVersion::ORIGINAL)
}

//! Authentication, decided once per request from the credential and handed to
//! handlers as a typed caller. A handler that takes `Partner` cannot run
//! without a valid catalog-partner key; one that takes `Operator` cannot run
//! without the operator token.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use octogen_core::{ApiKey, ErrorCode, KeyHash, Timestamp};
use octogen_store::{GrantedCatalog, KeyPrincipal, OrgAccess, OrgType};

use crate::api::gate::charge_auth_failure;
use crate::error::ApiError;
use crate::net::ClientAddr;
use crate::state::AppState;

/// A request authenticated by an API key of an active catalog partner.
#[derive(Debug, Clone)]
pub struct Partner {
    pub principal: KeyPrincipal,
}

impl Partner {
    pub fn org(&self) -> &OrgAccess {
        &self.principal.org
    }

    /// The active catalogs granted to the caller's organization.
    pub fn catalogs(&self) -> &[GrantedCatalog] {
        &self.principal.catalogs
    }

    /// What this caller may query: its organization and granted, active catalogs.
    pub fn scope(&self) -> crate::service::products::Scope<'_> {
        crate::service::products::Scope { org_id: &self.principal.org.id, catalogs: &self.principal.catalogs }
    }

    /// A granted catalog by key, or the one 404 that never says which check failed.
    pub fn catalog(&self, key: &str) -> Result<&GrantedCatalog, ApiError> {
        self.catalogs().iter().find(|catalog| catalog.key == key).ok_or(ApiError::Code(ErrorCode::CatalogNotFound))
    }
}

/// Handlers get the `Partner` that the `/v1` gate (`api::gate`) authenticated
/// and charged to its organization's budget.
impl FromRequestParts<AppState> for Partner {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> Result<Self, ApiError> {
        parts.extensions.get::<Partner>().cloned().ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!("a partner route is not behind the /v1 authentication gate"))
        })
    }
}

/// Why a credential was refused: the contract's code, and a finer reason for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthFailure {
    pub code: ErrorCode,
    pub reason: &'static str,
}

impl AuthFailure {
    const fn new(code: ErrorCode, reason: &'static str) -> Self {
        AuthFailure { code, reason }
    }
}

/// Authenticates the request's `Authorization` header (SPEC §2).
pub async fn authenticate_request(state: &AppState, headers: &HeaderMap) -> Result<KeyPrincipal, AuthFailure> {
    let token = bearer_token(headers).ok_or(AuthFailure::new(ErrorCode::AuthorizationRequired, "missing_bearer"))?;
    authenticate_key(state, token).await
}

/// The checks of SPEC §2, in order. Every way a key can be wrong (malformed,
/// unknown, wrong secret, revoked, expired) gives the same `InvalidApiKey`,
/// and an unknown key id costs the same HMAC as a wrong secret so timing does
/// not tell them apart.
pub async fn authenticate_key(state: &AppState, token: &[u8]) -> Result<KeyPrincipal, AuthFailure> {
    let invalid = |reason| AuthFailure::new(ErrorCode::InvalidApiKey, reason);
    let key = std::str::from_utf8(token).ok().and_then(ApiKey::parse).ok_or(invalid("malformed_key"))?;
    let pepper = &state.secrets.pepper;
    let principal = match state.store.resolve_api_key(&key.id()).await {
        Ok(found) => found,
        Err(error) => {
            tracing::error!(error = %error, "cannot resolve an API key");
            return Err(AuthFailure::new(ErrorCode::ServiceUnavailable, "store_unavailable"));
        }
    };
    let Some(principal) = principal else {
        let _ = key.verify(pepper, &UNKNOWN_KEY_HASH);
        return Err(invalid("unknown_key"));
    };
    if !key.verify(pepper, &principal.secret_hash) {
        return Err(invalid("wrong_secret"));
    }
    if principal.revoked {
        return Err(invalid("revoked_key"));
    }
    // Judged now, on every request: on a single node the directory keeps the
    // time (not a flag), on PostgreSQL the query returns it; either way the
    // first request after the moment is refused, with no write needed.
    if principal.expires_at.is_some_and(|expires_at| expires_at <= Timestamp::now()) {
        return Err(invalid("expired_key"));
    }
    if principal.org.org_type != OrgType::CatalogPartner {
        return Err(AuthFailure::new(ErrorCode::OrgTypeForbidden, "org_not_catalog_partner"));
    }
    if principal.org.suspended {
        return Err(AuthFailure::new(ErrorCode::KeyForbidden, "org_suspended"));
    }
    Ok(principal)
}

static UNKNOWN_KEY_HASH: std::sync::LazyLock<KeyHash> =
    std::sync::LazyLock::new(|| KeyHash::from_slice(&[0u8; 32]).expect("32 bytes"));

/// The token of an `Authorization: Bearer <token>` header. The scheme is
/// case-insensitive (RFC 7235); the token is taken exactly as sent.
pub fn bearer_token(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(AUTHORIZATION)?.as_bytes();
    let (scheme, token) = value.split_at_checked(7)?;
    (scheme.eq_ignore_ascii_case(b"bearer ") && !token.is_empty()).then_some(token)
}

/// A request carrying the operator token (admin API). A wrong or missing
/// token is charged to the client address's failure bucket, like a wrong API
/// key: 401, and 429 once the address has failed too often.
#[derive(Debug, Clone, Copy)]
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        if bearer_token(&parts.headers).is_some_and(|token| state.secrets.is_admin_token(token)) {
            return Ok(Operator);
        }
        state.metrics.auth_failure("operator_token");
        let Ok(client) = ClientAddr::from_request_parts(parts, state).await;
        let budget = charge_auth_failure(state, client).await?;
        let mut response =
            ApiError::Message(StatusCode::UNAUTHORIZED, "Operator token required".into()).into_response();
        budget.apply_headers(response.headers_mut());
        Err(response)
    }
}

//! Authentication, decided once per request from the credential and handed to
//! handlers as a typed caller. A handler that takes `Partner` cannot run
//! without a valid catalog-partner key; one that takes `Operator` cannot run
//! without the operator token.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::StatusCode;
use octogen_core::{ApiKey, ErrorCode, KeyHash};
use octogen_store::{GrantedCatalog, KeyPrincipal, OrgAccess, OrgType};

use crate::error::ApiError;
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

impl FromRequestParts<AppState> for Partner {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts).ok_or(ErrorCode::AuthorizationRequired)?;
        let principal = authenticate_key(state, token).await?;
        state.usage.touch(principal.key_id);
        Ok(Partner { principal })
    }
}

/// The checks of SPEC §2, in order. Every way a key can be wrong gives the
/// same `InvalidApiKey`, and an unknown key id costs the same HMAC as a wrong
/// secret so timing does not tell them apart.
pub async fn authenticate_key(state: &AppState, token: &[u8]) -> Result<KeyPrincipal, ApiError> {
    let key = std::str::from_utf8(token).ok().and_then(ApiKey::parse).ok_or(ErrorCode::InvalidApiKey)?;
    let pepper = &state.secrets.pepper;
    let Some(principal) = state.store.resolve_api_key(&key.id()).await? else {
        let _ = key.verify(pepper, &UNKNOWN_KEY_HASH);
        return Err(ErrorCode::InvalidApiKey.into());
    };
    if !key.verify(pepper, &principal.secret_hash) || principal.revoked {
        return Err(ErrorCode::InvalidApiKey.into());
    }
    if principal.org.org_type != OrgType::CatalogPartner {
        return Err(ErrorCode::OrgTypeForbidden.into());
    }
    if principal.org.suspended {
        return Err(ErrorCode::KeyForbidden.into());
    }
    Ok(principal)
}

static UNKNOWN_KEY_HASH: std::sync::LazyLock<KeyHash> =
    std::sync::LazyLock::new(|| KeyHash::from_slice(&[0u8; 32]).expect("32 bytes"));

/// The token of an `Authorization: Bearer <token>` header. The scheme is
/// case-insensitive (RFC 7235); the token is taken exactly as sent.
pub fn bearer_token(parts: &Parts) -> Option<&[u8]> {
    let value = parts.headers.get(AUTHORIZATION)?.as_bytes();
    let (scheme, token) = value.split_at_checked(7)?;
    (scheme.eq_ignore_ascii_case(b"bearer ") && !token.is_empty()).then_some(token)
}

/// A request carrying the operator token (admin API).
#[derive(Debug, Clone, Copy)]
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match bearer_token(parts) {
            Some(token) if state.secrets.is_admin_token(token) => Ok(Operator),
            _ => Err(ApiError::Message(StatusCode::UNAUTHORIZED, "Operator token required".into())),
        }
    }
}

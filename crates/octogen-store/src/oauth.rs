//! OAuth 2.1 records for MCP clients: registered clients, answered
//! authorization requests, grants, authorization codes and tokens.
//!
//! Changes worth an audit event (a registration, an approval, tokens issued for
//! a code, a revoked grant) take the event and write it in the same
//! transaction, so the log and the state cannot disagree.
//!
//! Secrets stay out of this module: codes and tokens are handed to the store
//! as hashes (hex HMACs computed by the server) and looked up by them; a
//! client's secret hash is redacted from `Debug`.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use octogen_core::Timestamp;

use crate::error::StoreResult;
use crate::model::{AuditEvent, GrantedCatalog, OrgAccess};

/// How a client came to be known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// Registered by RFC 7591 dynamic client registration; the id is random.
    Registered,
    /// The client id is the https URL of a client ID metadata document.
    MetadataDocument,
}

impl ClientKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::Registered => "registered",
            ClientKind::MetadataDocument => "metadata_document",
        }
    }
}

/// How a client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthMethod {
    /// A public client (PKCE is its proof).
    None,
    ClientSecretPost,
    ClientSecretBasic,
}

impl ClientAuthMethod {
    pub const ALL: [ClientAuthMethod; 3] =
        [ClientAuthMethod::None, ClientAuthMethod::ClientSecretPost, ClientAuthMethod::ClientSecretBasic];

    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuthMethod::None => "none",
            ClientAuthMethod::ClientSecretPost => "client_secret_post",
            ClientAuthMethod::ClientSecretBasic => "client_secret_basic",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|method| method.as_str() == text)
    }
}

pub struct NewOAuthClient {
    /// The client_id.
    pub id: String,
    pub kind: ClientKind,
    pub name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub auth_method: ClientAuthMethod,
    /// Hex HMAC of the client secret (confidential clients only).
    pub secret_hash: Option<String>,
    /// Registered metadata that has no column of its own (e.g. `grant_types`), as
    /// JSON: only fields the server uses, never a client's arbitrary extras.
    pub metadata: serde_json::Value,
    pub now: Timestamp,
}

#[derive(Clone, PartialEq)]
pub struct OAuthClient {
    pub id: String,
    pub kind: ClientKind,
    pub name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub auth_method: ClientAuthMethod,
    pub secret_hash: Option<String>,
    pub metadata: serde_json::Value,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// When a person last approved the client or it last got tokens; `None`: never.
    pub last_used_at: Option<Timestamp>,
}

impl fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthClient")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("redirect_uris", &self.redirect_uris)
            .field("auth_method", &self.auth_method)
            .field("secret_hash", &self.secret_hash.as_ref().map(|_| "[REDACTED]"))
            .field("last_used_at", &self.last_used_at)
            .finish_non_exhaustive()
    }
}

/// What a user approved, and the family of every token issued from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOAuthGrant {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub org_id: String,
    /// The portal sign-in session it was approved in: the grant ends with it.
    pub session_id: String,
    pub issuer: String,
    /// The protected resource (audience) its tokens are for.
    pub resource: String,
    pub scope: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthGrant {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub org_id: String,
    pub session_id: String,
    pub issuer: String,
    pub resource: String,
    pub scope: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub revoked_reason: Option<String>,
}

pub struct NewAuthorizationCode {
    /// Hex HMAC of the code.
    pub code_hash: String,
    pub redirect_uri: String,
    /// The PKCE S256 challenge.
    pub code_challenge: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A code that this exchange (and no other) has redeemed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedeemedCode {
    pub grant: OAuthGrant,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeRedemption {
    Redeemed(Box<RedeemedCode>),
    /// The code was already used: the caller revokes its grant.
    Replayed {
        grant_id: String,
    },
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }
}

pub struct NewOAuthToken {
    /// Hex HMAC of the token.
    pub token_hash: String,
    pub kind: TokenKind,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A token whose grant is live: not revoked, its sign-in session still
/// exists, and the user is (still, and since before the grant) a member of
/// the grant's organization. Expiry is the caller's to check, by its clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    pub grant: OAuthGrant,
    pub kind: TokenKind,
    pub expires_at: Timestamp,
    /// Refresh tokens: when it was rotated (a second use is a replay).
    pub used_at: Option<Timestamp>,
    pub session_expires_at: Timestamp,
    pub session_last_seen_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshRotation {
    /// The old token is spent and the new ones are stored.
    Rotated,
    /// The old token had been used already: the caller revokes its grant.
    Replayed {
        grant_id: String,
    },
    Unknown,
}

/// An organization's access facts and its active granted catalogs: what an
/// OAuth caller acting in that organization may see, as of now.
#[derive(Debug, Clone)]
pub struct OrgPrincipal {
    pub org: Arc<OrgAccess>,
    /// Sorted by key.
    pub catalogs: Arc<[GrantedCatalog]>,
}

/// OAuth 2.1 authorization server state, and the organization lookup its callers need.
#[async_trait]
pub trait OAuthStore: Send + Sync + 'static {
    /// The organization and its active granted catalogs; every committed change
    /// is visible (SQLite: the access directory; PostgreSQL: one query).
    async fn org_principal(&self, org_id: &str) -> StoreResult<Option<OrgPrincipal>>;

    // Clients.
    /// Registers a new client, with its audit event; an id that is taken gives `Conflict`.
    async fn create_oauth_client(&self, client: NewOAuthClient, audit: AuditEvent) -> StoreResult<OAuthClient>;
    /// Creates or refreshes a client known by its metadata document (keeping when it was last used).
    async fn put_oauth_client(&self, client: NewOAuthClient) -> StoreResult<OAuthClient>;
    async fn get_oauth_client(&self, id: &str) -> StoreResult<Option<OAuthClient>>;

    // Authorization requests (they travel signed; only their answer is stored).
    /// Records that the authorization request `id` was answered; kept until
    /// `expires_at`, when the request itself would have expired. True for the one
    /// caller that recorded it: a request is answered once.
    async fn answer_oauth_request(&self, id: &str, expires_at: Timestamp) -> StoreResult<bool>;

    // Grants, codes and tokens.
    /// Records an approval with its authorization code and its audit event, and
    /// counts as use of the client.
    async fn create_oauth_grant(
        &self,
        grant: NewOAuthGrant,
        code: NewAuthorizationCode,
        audit: AuditEvent,
    ) -> StoreResult<OAuthGrant>;
    /// Marks the code used, atomically: exactly one exchange redeems it.
    async fn redeem_authorization_code(&self, code_hash: &str, now: Timestamp) -> StoreResult<CodeRedemption>;
    /// Stores the first tokens of a grant (a code exchange) with their audit event;
    /// counts as use of the client.
    async fn issue_oauth_tokens(
        &self,
        grant_id: &str,
        tokens: Vec<NewOAuthToken>,
        audit: AuditEvent,
    ) -> StoreResult<()>;
    /// A token of a live grant (see `TokenGrant`), expired or not.
    async fn find_oauth_token(&self, token_hash: &str, kind: TokenKind) -> StoreResult<Option<TokenGrant>>;
    /// Spends the refresh token `token_hash` and stores its successors, atomically;
    /// counts as use of the client (recorded at most daily: refreshes are frequent).
    async fn rotate_refresh_token(
        &self,
        token_hash: &str,
        now: Timestamp,
        successors: Vec<NewOAuthToken>,
    ) -> StoreResult<RefreshRotation>;
    /// Revokes a grant: every token of its family stops working. Returns whether it
    /// was live; only then is `audit` written (in the same transaction).
    async fn revoke_oauth_grant(
        &self,
        grant_id: &str,
        now: Timestamp,
        reason: &str,
        audit: AuditEvent,
    ) -> StoreResult<bool>;
    async fn get_oauth_grant(&self, grant_id: &str) -> StoreResult<Option<OAuthGrant>>;
    /// Deletes expired answers, codes and tokens, revoked grants, grants with
    /// nothing left, and clients last used (or, never used, registered) at or
    /// before `clients_unused_since`, with everything of theirs.
    async fn prune_oauth(&self, now: Timestamp, clients_unused_since: Timestamp) -> StoreResult<u64>;
}

-- OAuth 2.1 for MCP clients (agents): registered clients, pending
-- authorization requests, grants (one per approved authorization, the
-- "family" of its tokens), authorization codes and tokens.
--
-- Secrets are never stored: codes and tokens are kept as hex HMACs (under the
-- server pepper, like session tokens) and looked up by that hash; a client
-- secret likewise. A grant belongs to the portal sign-in session it was
-- approved in: when the session ends (sign-out, expiry, pruning) the grant,
-- its codes and its tokens go with it (ON DELETE CASCADE).

-- `id` is the client_id: a random id for clients registered by RFC 7591, or
-- the https URL of a client ID metadata document. `redirect_uris` and
-- `metadata` are JSON. `secret_hash` is set only for confidential clients.
CREATE TABLE oauth_clients (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('registered', 'metadata_document')),
    name TEXT,
    redirect_uris TEXT NOT NULL,
    auth_method TEXT NOT NULL CHECK (auth_method IN ('none', 'client_secret_post', 'client_secret_basic')),
    secret_hash TEXT,
    metadata TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- A validated authorization request waiting for the user's sign-in and
-- consent (the request itself, as JSON). Single use; short-lived.
CREATE TABLE oauth_requests (
    id TEXT PRIMARY KEY,
    request TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX oauth_requests_by_expiry ON oauth_requests (expires_at);

-- What a user approved: this client may act for them in this organization,
-- for this resource (the MCP endpoint), until the sign-in session ends or the
-- grant is revoked (refresh-token reuse, a replayed code).
CREATE TABLE oauth_grants (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id),
    org_id TEXT NOT NULL REFERENCES organizations (id),
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issuer TEXT NOT NULL,
    resource TEXT NOT NULL,
    scope TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT,
    revoked_reason TEXT
);
CREATE INDEX oauth_grants_by_session ON oauth_grants (session_id);
CREATE INDEX oauth_grants_by_member ON oauth_grants (user_id, org_id);

-- Authorization codes: single use (`used_at` is set by the one exchange that
-- wins; a second exchange finds it set and revokes the grant).
CREATE TABLE oauth_codes (
    code_hash TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL REFERENCES oauth_grants (id) ON DELETE CASCADE,
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX oauth_codes_by_grant ON oauth_codes (grant_id);

-- Access and refresh tokens. A refresh token is used once (`used_at`); using
-- it again revokes its whole grant.
CREATE TABLE oauth_tokens (
    token_hash TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL REFERENCES oauth_grants (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX oauth_tokens_by_grant ON oauth_tokens (grant_id);
CREATE INDEX oauth_tokens_by_expiry ON oauth_tokens (expires_at);

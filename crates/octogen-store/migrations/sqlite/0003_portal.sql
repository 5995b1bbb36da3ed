-- The partner portal: people who sign in, the organizations they belong to,
-- their server-side sessions, and sign-in throttling state. Kept in the store
-- (not in memory) so every node of a multi-node deployment agrees on them.

-- `email` is stored lowercased; it is the sign-in name. `password_hash` is an
-- argon2id PHC string. `is_operator` users may use the portal's operator area.
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    is_operator INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE memberships (
    user_id TEXT NOT NULL REFERENCES users (id),
    org_id TEXT NOT NULL REFERENCES organizations (id),
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, org_id)
);
CREATE INDEX memberships_by_org ON memberships (org_id);

-- A signed-in browser. `id` is a public handle (other records, such as OAuth
-- grants, refer to it); the cookie carries a random token of which only an
-- HMAC (`token_hash`, hex) is stored. `org_id` is the organization the user is
-- looking at. Idle timeout: `last_seen_at`; absolute timeout: `expires_at`.
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL REFERENCES users (id),
    org_id TEXT,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    client_addr TEXT
);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- Failed sign-ins per scope (an account or a client address, keyed by an HMAC
-- so no email address is kept for accounts that do not exist), counted in a
-- fixed window that restarts after it ends.
CREATE TABLE sign_in_failures (
    scope TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    window_started_at BIGINT NOT NULL
);

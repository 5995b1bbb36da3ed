-- Identity and access: organizations, catalogs, grants, API keys, audit events.
-- Flags are 0/1 integers: sqlx's Any driver cannot decode SQLite BOOLEAN, and one
-- representation keeps the SQL identical on both backends.
-- Timestamps are Unix milliseconds (BIGINT) so the same SQL runs on PostgreSQL.

CREATE TABLE organizations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    org_type TEXT NOT NULL CHECK (org_type IN ('catalog_partner', 'merchant')),
    suspended INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE catalogs (
    id TEXT PRIMARY KEY,
    catalog_key TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    source_base_url TEXT,
    is_active INTEGER NOT NULL DEFAULT 1,
    product_count BIGINT NOT NULL DEFAULT 0,
    last_indexed_at BIGINT,
    created_at BIGINT NOT NULL
);

CREATE TABLE grants (
    org_id TEXT NOT NULL REFERENCES organizations (id),
    catalog_id TEXT NOT NULL REFERENCES catalogs (id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, catalog_id)
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    secret_hash BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX api_keys_by_org ON api_keys (org_id);

CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    occurred_at BIGINT NOT NULL,
    org_id TEXT,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    client_addr TEXT,
    detail TEXT
);
CREATE INDEX audit_events_by_org ON audit_events (org_id, id);

-- Small server-wide facts: the pepper fingerprint, the operator token hash.
CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Token buckets shared by the nodes of a multi-node deployment (PostgreSQL);
-- a single SQLite node keeps its buckets in memory and leaves this empty.
CREATE TABLE rate_buckets (
    bucket_key TEXT PRIMARY KEY,
    tokens DOUBLE PRECISION NOT NULL,
    capacity DOUBLE PRECISION NOT NULL,
    updated_at BIGINT NOT NULL,
    -- Whether the last take found a token (read back by the same statement).
    last_allowed INTEGER NOT NULL
);
CREATE INDEX rate_buckets_by_age ON rate_buckets (updated_at);

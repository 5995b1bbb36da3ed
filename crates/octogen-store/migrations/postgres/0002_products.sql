-- Products, index runs and the change sequence the search index follows.

-- One row per product ever seen in a catalog. `uuid` is derived from the
-- catalog and the normalized URL, so it is stable across runs. `seq` is the
-- value of change_seq when the row last changed (content or active flag).
CREATE TABLE products (
    uuid TEXT PRIMARY KEY,
    catalog_id TEXT NOT NULL REFERENCES catalogs (id),
    url_key TEXT NOT NULL,
    data TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    is_active BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX products_by_url ON products (catalog_id, url_key);
CREATE INDEX products_by_seq ON products (seq, uuid);
CREATE INDEX products_active ON products (catalog_id, is_active);

-- A single counter, bumped inside each publishing transaction. Holding its row
-- lock until commit makes sequence order equal commit order, so a follower that
-- has applied everything up to N never misses a later commit with a smaller N.
CREATE TABLE change_seq (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    value BIGINT NOT NULL
);
INSERT INTO change_seq (id, value) VALUES (1, 0);

-- One import of a catalog. Counters are updated while it runs (progress) and
-- set finally when it is published.
CREATE TABLE index_runs (
    id TEXT PRIMARY KEY,
    catalog_id TEXT NOT NULL REFERENCES catalogs (id),
    status TEXT NOT NULL,
    trigger_kind TEXT NOT NULL,
    format TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    -- Refreshed while the run makes progress; a stale one on a queued or running
    -- run means its node died (multi-node) and the run can be marked interrupted.
    heartbeat_at BIGINT,
    bytes_read BIGINT NOT NULL DEFAULT 0,
    bytes_total BIGINT,
    seen BIGINT NOT NULL DEFAULT 0,
    added BIGINT NOT NULL DEFAULT 0,
    updated BIGINT NOT NULL DEFAULT 0,
    unchanged BIGINT NOT NULL DEFAULT 0,
    deactivated BIGINT NOT NULL DEFAULT 0,
    skipped BIGINT NOT NULL DEFAULT 0,
    -- The change sequence value this run was published at (search catches up to it).
    published_seq BIGINT,
    error TEXT,
    report TEXT
);
CREATE INDEX index_runs_by_catalog ON index_runs (catalog_id, created_at);

-- Products read by a run that has not been published yet. Invisible to
-- partners; a failed or interrupted run's rows are discarded.
CREATE TABLE staged_products (
    run_id TEXT NOT NULL,
    uuid TEXT NOT NULL,
    url_key TEXT NOT NULL,
    data TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    PRIMARY KEY (run_id, uuid)
);

-- Where a catalog's feed lives, for scheduled re-imports.
CREATE TABLE catalog_sources (
    catalog_id TEXT PRIMARY KEY REFERENCES catalogs (id),
    url TEXT NOT NULL,
    format TEXT NOT NULL,
    mapping TEXT,
    currency TEXT,
    interval_secs BIGINT NOT NULL,
    next_run_at BIGINT NOT NULL
);

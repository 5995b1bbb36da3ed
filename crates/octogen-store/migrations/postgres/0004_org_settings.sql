-- Per-organization settings: the request budget (NULL = the server's default,
-- `default_rate_limit_per_minute`) and the pinned API version (NULL = the
-- server's default version).
ALTER TABLE organizations ADD COLUMN rate_limit_per_minute BIGINT;
ALTER TABLE organizations ADD COLUMN api_version TEXT;

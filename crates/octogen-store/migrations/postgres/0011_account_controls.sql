-- Account controls; see the SQLite migration of the same number.
ALTER TABLE users ADD COLUMN disabled_at BIGINT;

CREATE TABLE password_resets (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX password_resets_by_user ON password_resets (user_id);

DROP TABLE sign_in_failures;
CREATE TABLE sign_in_throttle (
    scope TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    last_attempt_at BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL
);

ALTER TABLE api_keys ADD COLUMN expires_at BIGINT;

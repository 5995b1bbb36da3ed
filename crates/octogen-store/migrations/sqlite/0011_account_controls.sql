-- Account controls (issue 16): users an operator has disabled, one-time
-- password reset links, sign-in throttling by exponential delay instead of a
-- hard lockout, and API keys that stop working at a set time.

-- A disabled user cannot sign in, and every session (with the OAuth grants
-- that belong to it) was deleted when they were disabled.
ALTER TABLE users ADD COLUMN disabled_at BIGINT;

-- A link an operator hands to a user to set a new password. Only an HMAC of
-- its random token is kept (hex, like session tokens); a link is used once
-- (`used_at`), ends at `expires_at`, and a newer link for the same user
-- replaces it.
CREATE TABLE password_resets (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX password_resets_by_user ON password_resets (user_id);

-- Sign-in throttling per scope (an account, keyed by an HMAC of the email, or
-- a client address bucket). Each attempt is admitted or refused by one locked
-- read-and-write: an admitted attempt counts as a failure until it succeeds,
-- and the next one may start no earlier than `next_attempt_at`. Replaces the
-- fixed-window counters, which were read and written separately (so parallel
-- attempts all passed the check) and locked accounts out.
DROP TABLE sign_in_failures;
CREATE TABLE sign_in_throttle (
    scope TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    last_attempt_at BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL
);

-- When a key stops working (a rotation keeps the old key for a while); null: never.
ALTER TABLE api_keys ADD COLUMN expires_at BIGINT;

-- OAuth hardening (issue 16); the same as the SQLite migration of this number.
--
-- 1. Nothing is stored for an authorization request before the person signs
--    in: the request travels signed (HMAC under the server pepper, with an
--    expiry) in the consent URL. What is stored is only that a request was
--    answered, so its consent form works once: a short row written by a
--    signed-in person's answer, pruned when the request would have expired.
--    Requests pending when this migration runs are dropped; their clients
--    simply start again.
DROP TABLE oauth_requests;
CREATE TABLE oauth_answered_requests (
    id TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX oauth_answered_requests_by_expiry ON oauth_answered_requests (expires_at);

-- 2. When a person last approved the client or it last got a token. NULL: no
--    one has approved it yet, so authorization errors are not redirected to
--    it (anyone may register any https redirect URI). Clients unused for 30
--    days are pruned, counting from registration when never used. Existing
--    clients count as used when their newest token or grant was made.
ALTER TABLE oauth_clients ADD COLUMN last_used_at BIGINT;
UPDATE oauth_clients SET last_used_at = COALESCE(
    (SELECT max(t.created_at) FROM oauth_tokens t JOIN oauth_grants g ON g.id = t.grant_id
     WHERE g.client_id = oauth_clients.id),
    (SELECT max(g.created_at) FROM oauth_grants g WHERE g.client_id = oauth_clients.id)
);

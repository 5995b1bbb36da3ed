-- One-time messages of a portal session. A new API key (created or rotated in
-- the portal) is shown on the page the form's POST redirects to (POST → 303 →
-- GET), so reloading that page never posts the form again (issue 17.1).
--
-- `sealed` holds the secret encrypted (ChaCha20-Poly1305) under a key derived
-- from the server pepper and the session's cookie token, which the store never
-- holds: the row alone reveals nothing. The one request that shows the secret
-- clears `sealed`; the row (with the non-secret `detail`, JSON) stays until
-- `expires_at` (10 minutes) so a reload can say the key was already shown.
-- A row ends with its session (ON DELETE CASCADE) and is deleted once expired.
CREATE TABLE portal_flash (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    sealed TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX portal_flash_by_session ON portal_flash (session_id);
CREATE INDEX portal_flash_by_expiry ON portal_flash (expires_at);

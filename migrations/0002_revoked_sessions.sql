-- Signed-out admin sessions. Their tokens stay cryptographically valid until they expire, so every replica
-- refuses them by session id until then; rows past expires_at are deleted as new ones come.
CREATE TABLE revoked_sessions (
    sid text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX ix_revoked_sessions_expires_at ON revoked_sessions (expires_at);

-- One-time tokens for direct uploads from browsers (`POST /upload-tokens`): only the SHA-256 of
-- the token is kept. `used_at` is set by the one upload that redeems it, which also needs the key
-- that issued it (`api_key_id`) enabled and the project live; the cleanup deletes rows an hour
-- after they expired. No foreign keys: a purged project's tokens go with the cleanup.
CREATE TABLE upload_tokens (
    id            BLOB PRIMARY KEY,
    project_id    BLOB NOT NULL,
    api_key_id    BLOB NOT NULL,
    token_hash    TEXT NOT NULL UNIQUE,
    kind          TEXT NOT NULL,
    max_bytes     INTEGER NOT NULL,
    content_types TEXT,
    expires_at    TEXT NOT NULL,
    used_at       TEXT,
    created_at    TEXT NOT NULL
);
CREATE INDEX upload_tokens_expiry ON upload_tokens (expires_at);

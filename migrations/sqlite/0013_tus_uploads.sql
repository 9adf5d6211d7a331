-- Resumable uploads (TUS 1.0 at `/tus/`). The state lives here, the bytes in the blob store, so a
-- restarted host resumes every upload. Each PATCH body is one object (`tus_parts`), recorded in
-- the same transaction that moves `upload_offset` on, fenced by the offset it started from: of
-- two PATCHes racing from one offset exactly one lands. An upload authorised by a one-time upload
-- token keeps that token's hash (the token authorises this upload, and no other) and its limits.
-- `completing_until` is the lease of the request turning a finished upload into a File (one at a
-- time; a crashed one's lease runs out); `file_id` is set when it has become one. The cleanup
-- deletes the parts and rows of uploads past `expires_at`. No foreign keys, as for `upload_tokens`.
CREATE TABLE tus_uploads (
    id                BLOB PRIMARY KEY,
    project_id        BLOB NOT NULL,
    api_key_id        BLOB,
    upload_token_hash TEXT UNIQUE,
    length            INTEGER NOT NULL,
    upload_offset     INTEGER NOT NULL,
    metadata          TEXT,
    filename          TEXT,
    kind              TEXT NOT NULL,
    max_bytes         INTEGER,
    content_types     TEXT,
    completing_until  TEXT,
    file_id           BLOB,
    expires_at        TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);
CREATE INDEX tus_uploads_project ON tus_uploads (project_id);
CREATE INDEX tus_uploads_expiry ON tus_uploads (expires_at);

CREATE TABLE tus_parts (
    upload_id    BLOB NOT NULL,
    start_offset INTEGER NOT NULL,
    size         INTEGER NOT NULL,
    storage_key  TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (upload_id, start_offset)
);

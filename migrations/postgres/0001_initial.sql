-- MediaBlobKit schema, PostgreSQL. Immutable once applied: change it with a new migration.
-- Ids are UUIDv7 made by the host (they sort by creation time); timestamps come from the host too.

CREATE TABLE users (
    id            UUID PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('su', 'admin', 'user')),
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

-- Refresh tokens are stored as SHA-256 hashes only; one family per login, for reuse detection.
CREATE TABLE refresh_tokens (
    id          UUID PRIMARY KEY,
    user_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id   UUID NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);

CREATE TABLE projects (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    slug        TEXT NOT NULL,
    owner_id    UUID NOT NULL REFERENCES users (id),
    settings    JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    deleted_at  TIMESTAMPTZ
);
CREATE INDEX projects_owner ON projects (owner_id, id);

-- API keys are `mbk_<prefix>_<secret>`: looked up by prefix, the secret kept as a hash only.
CREATE TABLE api_keys (
    id           UUID PRIMARY KEY,
    project_id   UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL UNIQUE,
    key_hash     TEXT NOT NULL,
    enabled      BOOLEAN NOT NULL DEFAULT TRUE,
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ
);
CREATE INDEX api_keys_project ON api_keys (project_id, id);

CREATE TABLE plugins (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    size        BIGINT NOT NULL,
    world       TEXT NOT NULL,
    builtin     BOOLEAN NOT NULL DEFAULT FALSE,
    storage_key TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    UNIQUE (name, version)
);

CREATE TABLE files (
    id          UUID PRIMARY KEY,
    project_id  UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('file', 'image')),
    filename    TEXT NOT NULL,
    mime_type   TEXT NOT NULL,
    size        BIGINT NOT NULL,
    sha256      TEXT NOT NULL,
    storage_key TEXT NOT NULL UNIQUE,
    status      TEXT NOT NULL CHECK (status IN ('processing', 'ready', 'failed')),
    width       INTEGER,
    height      INTEGER,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX files_project ON files (project_id, kind, id);

CREATE TABLE variants (
    id            UUID PRIMARY KEY,
    file_id       UUID NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    storage_key   TEXT NOT NULL UNIQUE,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'ready', 'failed')),
    format        TEXT NOT NULL,
    width         INTEGER,
    height        INTEGER,
    size          BIGINT,
    error         TEXT,
    plugin_sha256 TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    UNIQUE (file_id, name)
);

-- The jobs API reads these rows; the queue itself belongs to the job backend.
CREATE TABLE jobs (
    id          UUID PRIMARY KEY,
    project_id  UUID REFERENCES projects (id) ON DELETE CASCADE,
    file_id     UUID REFERENCES files (id) ON DELETE SET NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('process_image', 'sync_project_variants', 'sync_file_variants', 'cleanup')),
    status      TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    error       TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX jobs_project_status ON jobs (project_id, status, id);

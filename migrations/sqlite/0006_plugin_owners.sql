-- Plugins belong to the admin who registered them (`owner_id`), or to everyone (NULL: the builtin
-- and what a su registered). Names are unique per owner: the table-wide UNIQUE (name, version)
-- gives way to one unique index per scope. SQLite cannot drop a constraint, so the table is
-- rebuilt; nothing references it. Plugins registered before this migration become global (who
-- registered them was not recorded; they were usable by every project until now).
CREATE TABLE plugins_owned (
    id          BLOB PRIMARY KEY,
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    size        INTEGER NOT NULL,
    world       TEXT NOT NULL,
    builtin     BOOLEAN NOT NULL DEFAULT FALSE,
    storage_key TEXT,
    created_at  TEXT NOT NULL,
    owner_id    BLOB REFERENCES users (id) ON DELETE CASCADE
);
INSERT INTO plugins_owned (id, name, version, sha256, size, world, builtin, storage_key, created_at, owner_id)
    SELECT id, name, version, sha256, size, world, builtin, storage_key, created_at, NULL FROM plugins;
DROP TABLE plugins;
ALTER TABLE plugins_owned RENAME TO plugins;
CREATE UNIQUE INDEX plugins_global_version ON plugins (name, version) WHERE owner_id IS NULL;
CREATE UNIQUE INDEX plugins_owned_version ON plugins (owner_id, name, version) WHERE owner_id IS NOT NULL;

-- Plugins belong to the admin who registered them (`owner_id`), or to everyone (NULL: the builtin
-- and what a su registered). Names are unique per owner: the table-wide UNIQUE (name, version)
-- gives way to one unique index per scope. Plugins registered before this migration become
-- global (who registered them was not recorded; they were usable by every project until now).
ALTER TABLE plugins ADD COLUMN owner_id UUID REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE plugins DROP CONSTRAINT plugins_name_version_key;
CREATE UNIQUE INDEX plugins_global_version ON plugins (name, version) WHERE owner_id IS NULL;
CREATE UNIQUE INDEX plugins_owned_version ON plugins (owner_id, name, version) WHERE owner_id IS NOT NULL;

-- What made each variant (the plugin's id, name, version and digest, which already had a column,
-- and a hash of the spec it was rendered to), so a sync re-renders exactly the variants whose
-- plugin or spec changed; and a job's report (JSON: a sync's counts).
ALTER TABLE variants ADD COLUMN plugin_id UUID;
ALTER TABLE variants ADD COLUMN plugin_name TEXT;
ALTER TABLE variants ADD COLUMN plugin_version TEXT;
ALTER TABLE variants ADD COLUMN spec_hash TEXT;
ALTER TABLE jobs ADD COLUMN report TEXT;

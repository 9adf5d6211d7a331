-- One row per plugin call of a render: what ran, for how many variants, how long (wall and CPU
-- milliseconds) and its peak linear memory. A job's `plugin_runs` and a project's daily render
-- budget (`max_render_seconds_per_day`) read it. Not tied to the jobs or projects tables by
-- foreign keys: a run stays counted against the day's budget after its job is gone, and the
-- cleanup purges old rows.
CREATE TABLE plugin_runs (
    id                BLOB PRIMARY KEY,
    job_id            BLOB,
    project_id        BLOB NOT NULL,
    plugin_id         BLOB,
    plugin_name       TEXT NOT NULL,
    plugin_version    TEXT NOT NULL,
    sha256            TEXT NOT NULL,
    variants          INTEGER NOT NULL,
    ms                INTEGER NOT NULL,
    cpu_ms            INTEGER,
    peak_memory_bytes INTEGER,
    created_at        TEXT NOT NULL
);
CREATE INDEX plugin_runs_job ON plugin_runs (job_id);
CREATE INDEX plugin_runs_project_day ON plugin_runs (project_id, created_at);

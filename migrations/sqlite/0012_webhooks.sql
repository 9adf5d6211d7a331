-- `deliver_webhook` jobs: the `kind` column loses its CHECK, which listed the four kinds of
-- 0001. A kind is the application's to know (a row of a kind this build does not know fails
-- for good when claimed), and a CHECK would make every new kind a table rebuild on SQLite, as
-- this one is: SQLite cannot drop a constraint, so the table is made anew with its indexes.
CREATE TABLE jobs_new (
    id          BLOB PRIMARY KEY,
    project_id  BLOB REFERENCES projects (id) ON DELETE CASCADE,
    file_id     BLOB REFERENCES files (id) ON DELETE SET NULL,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    error       TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    run_after   INTEGER NOT NULL DEFAULT 0,
    locked_by   TEXT,
    heartbeat   INTEGER,
    fair_round  INTEGER NOT NULL DEFAULT 0,
    report      TEXT
);
INSERT INTO jobs_new (id, project_id, file_id, kind, status, attempts, error, created_at, updated_at,
                      run_after, locked_by, heartbeat, fair_round, report)
    SELECT id, project_id, file_id, kind, status, attempts, error, created_at, updated_at,
           run_after, locked_by, heartbeat, fair_round, report FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;
CREATE INDEX jobs_project_status ON jobs (project_id, status, id);
CREATE INDEX jobs_queue ON jobs (status, run_after, id);
CREATE UNIQUE INDEX jobs_one_live_cleanup ON jobs (kind) WHERE kind = 'cleanup' AND status IN ('pending', 'processing');
CREATE INDEX jobs_fair_claim ON jobs (status, fair_round, id);
CREATE INDEX jobs_project_round ON jobs (project_id, status, fair_round);
CREATE UNIQUE INDEX jobs_one_pending_sync ON jobs (project_id) WHERE kind = 'sync_project_variants' AND status = 'pending' AND attempts = 0;

-- Webhooks of a project (`POST /projects/{id}/webhooks`) and their deliveries. The secret is kept
-- as issued (`whsec_…`): every delivery is signed with it (Standard Webhooks), so it cannot be a
-- hash. `events` is a JSON list of event names. A delivery is one event to one webhook, sent by
-- its `deliver_webhook` job (`job_id`), with the body it was made with (retries send the same
-- bytes, under the same `webhook-id`: the delivery's id).
CREATE TABLE webhooks (
    id          BLOB PRIMARY KEY,
    project_id  BLOB NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    url         TEXT NOT NULL,
    events      TEXT NOT NULL,
    secret      TEXT NOT NULL,
    enabled     BOOLEAN NOT NULL DEFAULT TRUE,
    created_at  TEXT NOT NULL
);
CREATE INDEX webhooks_project ON webhooks (project_id);

CREATE TABLE webhook_deliveries (
    id              BLOB PRIMARY KEY,
    webhook_id      BLOB NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    job_id          BLOB NOT NULL,
    event           TEXT NOT NULL,
    body            TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    response_status INTEGER,
    error           TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, id);
CREATE INDEX webhook_deliveries_job ON webhook_deliveries (job_id);

-- `deliver_webhook` jobs: the `kind` column loses its CHECK, which listed the four kinds of
-- 0001. A kind is the application's to know (a row of a kind this build does not know fails
-- for good when claimed); SQLite's copy of this migration rebuilds its table to drop it.
ALTER TABLE jobs DROP CONSTRAINT jobs_kind_check;

-- Webhooks of a project (`POST /projects/{id}/webhooks`) and their deliveries. The secret is kept
-- as issued (`whsec_…`): every delivery is signed with it (Standard Webhooks), so it cannot be a
-- hash. `events` is a JSON list of event names. A delivery is one event to one webhook, sent by
-- its `deliver_webhook` job (`job_id`), with the body it was made with (retries send the same
-- bytes, under the same `webhook-id`: the delivery's id).
CREATE TABLE webhooks (
    id          UUID PRIMARY KEY,
    project_id  UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    url         TEXT NOT NULL,
    events      TEXT NOT NULL,
    secret      TEXT NOT NULL,
    enabled     BOOLEAN NOT NULL DEFAULT TRUE,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhooks_project ON webhooks (project_id);

CREATE TABLE webhook_deliveries (
    id              UUID PRIMARY KEY,
    webhook_id      UUID NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    job_id          UUID NOT NULL,
    event           TEXT NOT NULL,
    body            TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    response_status INTEGER,
    error           TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, id);
CREATE INDEX webhook_deliveries_job ON webhook_deliveries (job_id);

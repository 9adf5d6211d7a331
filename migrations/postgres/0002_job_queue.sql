-- The jobs table is also the queue: a job is enqueued in the same transaction as the rows it is
-- about (an upload's file and variants), claimed with FOR UPDATE SKIP LOCKED, kept alive by its
-- worker's heartbeat and taken back when the heartbeat stops. Times are epoch milliseconds.
ALTER TABLE jobs ADD COLUMN run_after BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN locked_by TEXT;
ALTER TABLE jobs ADD COLUMN heartbeat BIGINT;
CREATE INDEX jobs_queue ON jobs (status, run_after, id);

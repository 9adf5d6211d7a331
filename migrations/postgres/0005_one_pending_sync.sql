-- At most one pending sync_project_variants job per project: a sync reads the settings when it
-- runs, so a second one waiting behind the first would redo the same work, and without a limit
-- a client could fill the queue. POST /projects/{id}/sync-variants answers the waiting job's id.
-- Only jobs never run count (attempts = 0): a sync that a worker started and that went back to
-- the queue (a retry, a stale reclaim) must be able to wait beside a new one, or the retry's or
-- the reclaim's UPDATE would fail on this index (the reclaim for every job at once).
-- Duplicates waiting now are failed (the oldest keeps its place), as 0003 did for cleanups.
-- No process of an older version may insert a duplicate between the UPDATE and the index.
LOCK TABLE jobs IN SHARE ROW EXCLUSIVE MODE;
UPDATE jobs SET status = 'failed', error = 'a duplicate of another pending sync of this project'
WHERE kind = 'sync_project_variants' AND status = 'pending' AND attempts = 0
  AND id <> (SELECT j.id FROM jobs j
             WHERE j.kind = 'sync_project_variants' AND j.status = 'pending' AND j.attempts = 0
               AND j.project_id = jobs.project_id
             ORDER BY j.id LIMIT 1);
CREATE UNIQUE INDEX jobs_one_pending_sync ON jobs (project_id) WHERE kind = 'sync_project_variants' AND status = 'pending' AND attempts = 0;

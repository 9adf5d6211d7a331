-- At most one cleanup job waiting or running: workers that start together on PostgreSQL could
-- each pass schedule_cleanup's NOT EXISTS under READ COMMITTED and enqueue one.
UPDATE jobs SET status = 'failed', error = 'a duplicate of another cleanup job'
WHERE kind = 'cleanup' AND status IN ('pending', 'processing')
  AND id <> (SELECT id FROM jobs WHERE kind = 'cleanup' AND status IN ('pending', 'processing') ORDER BY id LIMIT 1);
CREATE UNIQUE INDEX jobs_one_live_cleanup ON jobs (kind) WHERE kind = 'cleanup' AND status IN ('pending', 'processing');

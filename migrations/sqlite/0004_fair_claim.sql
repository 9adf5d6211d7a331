-- Fair claim across projects: each job gets a round when it is enqueued, the later of the
-- queue's current round (the lowest round of a runnable pending job) and one past its project's
-- last pending round; the claim takes the lowest round first. A project with a thousand waiting
-- jobs holds a thousand consecutive rounds, and another project's first job joins the current
-- one: it waits for at most one job of each other project, not for the whole backlog.
ALTER TABLE jobs ADD COLUMN fair_round INTEGER NOT NULL DEFAULT 0;
-- The claim and the current round: pending jobs in round order.
CREATE INDEX jobs_fair_claim ON jobs (status, fair_round, id);
-- A project's last pending round, at enqueue.
CREATE INDEX jobs_project_round ON jobs (project_id, status, fair_round);

//! The `jobs` table: what the jobs API shows, and the queue the workers take from.
//!
//! A job is `pending` (with `run_after`, epoch ms, for backoff) until a worker claims it: one
//! statement sets `processing`, `locked_by` (the worker's id), `heartbeat` and `attempts + 1`
//! (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so two workers never take the same row; SQLite: one
//! writer at a time). The worker refreshes `heartbeat` of each job it holds while it runs it; a
//! `processing` job whose heartbeat is older than the stale limit goes back to `pending`
//! ([`reclaim_stale`]), or to `failed` once it has used every attempt.
//! Every later write names the worker (`locked_by = $worker`), so a worker that lost its job
//! cannot overwrite what the new owner does.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::status::JobStatus;
use super::{Arg, Backend, Db, Tx};
use crate::{dispatch, dispatch_tx};

/// The `kind` column's values: one job type each in `crate::jobs` (its `BackgroundJob::KIND`).
/// Kept as text in the row, so a kind a newer build enqueued still lists and decodes here.
pub mod kinds {
    pub const PROCESS_IMAGE: &str = "process_image";
    pub const SYNC_FILE_VARIANTS: &str = "sync_file_variants";
    pub const SYNC_PROJECT_VARIANTS: &str = "sync_project_variants";
    pub const CLEANUP: &str = "cleanup";
    pub const DELIVER_WEBHOOK: &str = "deliver_webhook";
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    pub id: Uuid,
    pub project_id: Option<Uuid>,
    pub file_id: Option<Uuid>,
    pub kind: String,
    #[sqlx(try_from = "String")]
    pub status: JobStatus,
    pub attempts: i32,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// What the job reports (JSON; a sync's counts), once it has run.
    pub report: Option<String>,
}

const COLUMNS: &str = "id, project_id, file_id, kind, status, attempts, error, created_at, updated_at, report";

/// The queue's clock, in epoch milliseconds, read from the database: every node compares times
/// on one clock (a node whose own clock runs ahead must not take back live jobs).
fn db_now(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT",
        Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
    }
}

/// The round of a job enqueued now for the project in placeholder `project` (migration 0004):
/// the later of the queue's current round and one past the project's last pending round. The
/// current round is the lowest round a runnable job waits in (or any pending job, when every
/// one is backing off; 0 when none waits). So a project's backlog holds consecutive rounds and a
/// newcomer's job joins the current round: it is claimed after at most one job of each other
/// project, whatever their backlog. Each look-up is the first row of an index
/// (`jobs_fair_claim`, `jobs_project_round`).
fn fair_round(backend: Backend, project: &str) -> String {
    let now = db_now(backend);
    let greatest = match backend {
        Backend::Postgres => "GREATEST",
        Backend::Sqlite => "MAX",
    };
    format!(
        "{greatest}(
             COALESCE((SELECT fair_round FROM jobs WHERE status = 'pending' AND run_after <= {now} ORDER BY fair_round LIMIT 1),
                      (SELECT fair_round FROM jobs WHERE status = 'pending' ORDER BY fair_round LIMIT 1), 0),
             COALESCE((SELECT fair_round + 1 FROM jobs WHERE project_id = {project} AND status = 'pending'
                       ORDER BY fair_round DESC LIMIT 1), 0))"
    )
}

/// Enqueues a `pending` job in `tx`, in its fair round (see [`fair_round`]); its id. The one
/// INSERT of a job made for a project or file: [`insert`] and the upload both come here.
#[tracing::instrument(skip(tx))]
pub async fn enqueue(
    tx: &mut Tx<'_>,
    project_id: Option<Uuid>,
    file_id: Option<Uuid>,
    kind: &str,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    let sql = format!(
        "INSERT INTO jobs (id, project_id, file_id, kind, status, attempts, created_at, updated_at, fair_round)
         VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5, {})",
        fair_round(tx.kind(), "$2")
    );
    dispatch_tx!(tx, |conn| {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(project_id)
            .bind(file_id)
            .bind(kind)
            .bind(Utc::now())
            .execute(&mut *conn)
            .await
            .map(|_| ())
    })?;
    Ok(id)
}

/// [`enqueue`] on its own, committed; the job as stored.
#[tracing::instrument(skip(db))]
pub async fn insert(
    db: &Db,
    project_id: Option<Uuid>,
    file_id: Option<Uuid>,
    kind: &str,
) -> Result<JobRow, sqlx::Error> {
    let mut tx = db.begin().await?;
    let id = enqueue(&mut tx, project_id, file_id, kind).await?;
    tx.commit().await?;
    find(db, id).await?.ok_or(sqlx::Error::RowNotFound)
}

#[tracing::instrument(skip(db))]
pub async fn find(db: &Db, id: Uuid) -> Result<Option<JobRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM jobs WHERE id = $1");
    dispatch!(db, |pool| sqlx::query_as::<_, JobRow>(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(pool).await)
}

/// Sets a job's status, attempts and error outright (administrative repair and tests; workers
/// use [`finish`] and [`retry_later`], which check they still hold the job).
#[tracing::instrument(skip(db, error))]
pub async fn set_status(
    db: &Db,
    id: Uuid,
    status: JobStatus,
    attempts: i32,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query("UPDATE jobs SET status = $1, attempts = $2, error = $3, updated_at = $4 WHERE id = $5")
            .bind(status.as_str())
            .bind(attempts)
            .bind(error)
            .bind(Utc::now())
            .bind(id)
            .execute(pool)
            .await
            .map(|_| ())
    })
}

/// Takes a runnable `pending` job for `worker`, or `None` when there is none: the one of the
/// lowest round, the oldest within it (rounds make the claim fair across projects, see
/// [`fair_round`]; a retried job keeps its round, so it goes first once its backoff is over).
#[tracing::instrument(skip(db))]
pub async fn claim(db: &Db, worker: &str) -> Result<Option<JobRow>, sqlx::Error> {
    let now = db_now(db.kind());
    let lock = if matches!(db, Db::Postgres(_)) { " FOR UPDATE SKIP LOCKED" } else { "" };
    let sql = format!(
        "UPDATE jobs SET status = 'processing', locked_by = $1, heartbeat = {now}, attempts = attempts + 1, updated_at = $2
         WHERE id = (SELECT id FROM jobs WHERE status = 'pending' AND run_after <= {now} ORDER BY fair_round, id LIMIT 1{lock})
         RETURNING {COLUMNS}"
    );
    dispatch!(db, |pool| {
        sqlx::query_as::<_, JobRow>(sqlx::AssertSqlSafe(sql)).bind(worker).bind(Utc::now()).fetch_optional(pool).await
    })
}

/// Keeps alive the jobs `worker` holds now (by id: a job whose recording failed, or whose slot
/// is gone, stops being kept alive and is taken back). True when it still holds it.
#[tracing::instrument(skip(db))]
pub async fn heartbeat(db: &Db, id: Uuid, worker: &str) -> Result<bool, sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE jobs SET heartbeat = {} WHERE id = $1 AND status = 'processing' AND locked_by = $2",
            db_now(db.kind())
        )))
        .bind(id)
        .bind(worker)
        .execute(pool)
        .await
        .map(|r| r.rows_affected() == 1)
    })
}

/// The reason a job given up on by [`reclaim_stale`] carries, and its unrendered variants with it.
pub const GAVE_UP_SILENT: &str = "gave up: the worker running this job stopped answering on every attempt";

/// Puts back `processing` jobs whose heartbeat is older than `stale_ms` (their worker died):
/// they run again, with their attempt counted; a job that has used `max_attempts` (one that
/// kills its worker every time, say) is `failed` instead, and so is what it was rendering: its
/// pending variants fail with the reason and its file settles, as when a worker gives up itself
/// (nothing may stay `processing` or `pending` for ever). One transaction, so a reclaimer that
/// dies half-way leaves no failed job over a file still `processing`. Returns how many were
/// touched.
#[tracing::instrument(skip(db))]
pub async fn reclaim_stale(
    db: &Db,
    stale_ms: i64,
    (max_attempts, webhook_attempts): (i32, i32),
) -> Result<u64, sqlx::Error> {
    let now = db_now(db.kind());
    // A webhook delivery keeps its own, longer schedule.
    let limit = format!("(CASE WHEN kind = '{}' THEN $5 ELSE $3 END)", kinds::DELIVER_WEBHOOK);
    let sql = format!(
        "UPDATE jobs SET
             status = CASE WHEN attempts >= {limit} THEN 'failed' ELSE 'pending' END,
             error = CASE WHEN attempts >= {limit} THEN $4
                 ELSE 'the worker running this job stopped answering; taken back' END,
             locked_by = NULL, heartbeat = NULL, run_after = {now}, updated_at = $1
         WHERE status = 'processing' AND (heartbeat IS NULL OR heartbeat < {now} - $2)
         RETURNING status, kind, file_id, id"
    );
    let stamp = Utc::now();
    dispatch!(db, |pool| {
        let mut tx = pool.begin().await?;
        let touched: Vec<(String, String, Option<Uuid>, Uuid)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(stamp)
            .bind(stale_ms)
            .bind(max_attempts)
            .bind(GAVE_UP_SILENT)
            .bind(webhook_attempts)
            .fetch_all(&mut *tx)
            .await?;
        for (_, _, _, job) in
            touched.iter().filter(|(status, kind, ..)| status == "failed" && kind == kinds::DELIVER_WEBHOOK)
        {
            sqlx::query(super::webhooks::FAIL_BY_JOB)
                .bind(GAVE_UP_SILENT)
                .bind(stamp)
                .bind(job)
                .execute(&mut *tx)
                .await?;
        }
        for (_, _, file, _) in touched.iter().filter(|(status, kind, ..)| status == "failed" && renders_file(kind)) {
            let Some(file) = file else { continue };
            sqlx::query(super::files::GIVE_UP_VARIANTS)
                .bind(GAVE_UP_SILENT)
                .bind(stamp)
                .bind(file)
                .execute(&mut *tx)
                .await?;
            sqlx::query(super::files::GIVE_UP_FILE).bind(stamp).bind(file).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(touched.len() as u64)
    })
}

/// Whether a job of `kind` renders one file's variants (so giving up on it settles that file).
pub fn renders_file(kind: &str) -> bool {
    kind == kinds::PROCESS_IMAGE || kind == kinds::SYNC_FILE_VARIANTS
}

/// Ends `worker`'s job: `completed` (error cleared) or `failed` with `error`. False when the
/// worker no longer holds it (taken back, or its project deleted).
#[tracing::instrument(skip(db, error))]
pub async fn finish(
    db: &Db,
    id: Uuid,
    worker: &str,
    status: JobStatus,
    error: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let args = [Arg::MaybeText(Some(status.as_str())), Arg::MaybeText(error.map(super::clip))];
    let_go(db, id, worker, "status = $4, error = $5", &args).await
}

/// Hands `worker`'s job back to the queue to run again in `delay_ms`, keeping the reason.
/// False when the worker no longer holds it.
#[tracing::instrument(skip(db, error))]
pub async fn retry_later(db: &Db, id: Uuid, worker: &str, delay_ms: i64, error: &str) -> Result<bool, sqlx::Error> {
    let set = format!("status = 'pending', error = $4, run_after = {} + $5", db_now(db.kind()));
    let_go(db, id, worker, &set, &[Arg::MaybeText(Some(super::clip(error))), Arg::Int(delay_ms)]).await
}

/// Stores what `worker`'s job reports (JSON), while it still holds it (a worker that lost its
/// job writes nothing over the new owner's). Written by the job as it runs.
#[tracing::instrument(skip(db))]
pub async fn set_report(db: &Db, id: Uuid, worker: &str, report: &str) -> Result<(), sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query("UPDATE jobs SET report = $1 WHERE id = $2 AND status = 'processing' AND locked_by = $3")
            .bind(report)
            .bind(id)
            .bind(worker)
            .execute(pool)
            .await
            .map(|_| ())
    })
}

/// Hands back a job `worker` claimed but will not run (its worker is stopping): `pending` again,
/// runnable at once, its attempt not counted. False when the worker no longer holds it.
#[tracing::instrument(skip(db))]
pub async fn release(db: &Db, id: Uuid, worker: &str) -> Result<bool, sqlx::Error> {
    let_go(db, id, worker, "status = 'pending', attempts = attempts - 1", &[]).await
}

/// The one way a worker lets go of its job: `set` (binding `$4`.. to `args`), unlocked, only
/// while `worker` still holds it. True when it did.
async fn let_go(db: &Db, id: Uuid, worker: &str, set: &str, args: &[Arg<'_>]) -> Result<bool, sqlx::Error> {
    let sql = format!(
        "UPDATE jobs SET {set}, locked_by = NULL, heartbeat = NULL, updated_at = $1
         WHERE id = $2 AND status = 'processing' AND locked_by = $3"
    );
    dispatch!(db, |pool| {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(Utc::now()).bind(id).bind(worker);
        for arg in args {
            query = match *arg {
                Arg::Uuid(v) => query.bind(v),
                Arg::MaybeUuid(v) => query.bind(v),
                Arg::MaybeText(v) => query.bind(v),
                Arg::Int(v) => query.bind(v),
            };
        }
        query.execute(pool).await.map(|r| r.rows_affected() == 1)
    })
}

/// The project's waiting `sync_project_variants` job, made now unless one is already waiting
/// (then that one: at most one waits per project, by the unique index of migration 0005).
#[tracing::instrument(skip(db))]
pub async fn enqueue_project_sync(db: &Db, project_id: Uuid) -> Result<JobRow, sqlx::Error> {
    // The waiting one may be claimed between our insert's refusal and our look: then ours can go
    // in. A few rounds settle it (each lost round means a worker took a job).
    let mut rounds = 0;
    loop {
        if let Some(job) = waiting_project_sync(db, project_id).await? {
            return Ok(job);
        }
        match insert(db, Some(project_id), None, kinds::SYNC_PROJECT_VARIANTS).await {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() && rounds < 3 => rounds += 1,
            other => return other,
        }
    }
}

async fn waiting_project_sync(db: &Db, project_id: Uuid) -> Result<Option<JobRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM jobs
         WHERE project_id = $1 AND kind = 'sync_project_variants' AND status = 'pending' AND attempts = 0"
    );
    dispatch!(db, |pool| sqlx::query_as::<_, JobRow>(sqlx::AssertSqlSafe(sql))
        .bind(project_id)
        .fetch_optional(pool)
        .await)
}

/// Enqueues a `cleanup` job unless one was made after `since` (or is still waiting): the daily
/// schedule, safe to call from every worker.
#[tracing::instrument(skip(db))]
pub async fn schedule_cleanup(db: &Db, since: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    let now = Utc::now();
    let sql = format!(
        "INSERT INTO jobs (id, kind, status, attempts, created_at, updated_at, fair_round)
         SELECT $1, 'cleanup', 'pending', 0, $2, $2, {}
         WHERE NOT EXISTS (SELECT 1 FROM jobs WHERE kind = 'cleanup' AND (created_at > $3 OR status IN ('pending', 'processing')))",
        fair_round(db.kind(), "NULL")
    );
    let inserted = dispatch!(db, |pool| {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(Uuid::now_v7())
            .bind(now)
            .bind(since)
            .execute(pool)
            .await
            .map(|r| r.rows_affected() == 1)
    });
    match inserted {
        // Another worker enqueued one at the same moment (the unique index of 0003 said no).
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
        other => other,
    }
}

/// Pending jobs runnable now: the queue's depth.
#[tracing::instrument(skip(db))]
pub async fn queue_depth(db: &Db) -> Result<i64, sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM jobs WHERE status = 'pending' AND run_after <= {}",
            db_now(db.kind())
        )))
        .fetch_one(pool)
        .await
    })
}

/// Jobs per status over every project: the queue's depth and the workers' backlog.
#[tracing::instrument(skip(db))]
pub async fn count_by_status(db: &Db) -> Result<Vec<(String, i64)>, sqlx::Error> {
    super::count_by_status(db, "jobs").await
}

/// One page of a project's jobs, newest first, optionally of one status, and their number.
#[tracing::instrument(skip(db))]
pub async fn page(
    db: &Db,
    project_id: Uuid,
    status: Option<JobStatus>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<JobRow>, i64), sqlx::Error> {
    let from_where = "jobs WHERE project_id = $1 AND ($2 IS NULL OR status = $2)";
    let args = [Arg::Uuid(project_id), Arg::MaybeText(status.map(JobStatus::as_str))];
    super::page(db, COLUMNS, from_where, "id DESC", &args, limit, offset).await
}

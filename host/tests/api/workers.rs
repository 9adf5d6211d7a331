//! The apalis workers over our queue: a job that panics or runs past `job_timeout` is recorded at
//! once as a transient failure (retried with backoff, failed after the last attempt), never left
//! `processing` for the stale limit; a queue that stops answering does not end the workers. On
//! both databases, through the real stack of `jobs::record` (only the job inside is made up).

use std::time::Duration;

use apalis_core::task::Task;
use mbk_host::db::jobs;
use mbk_host::db::status::JobStatus;
use mbk_host::jobs::queue::Claimed;
use mbk_host::jobs::{Ran, Transient, Verdict, Worker, record};
use serde_json::Value;
use tower::{Service, ServiceExt};

use crate::helpers::{DbKind, StoreKind, TestApp, db_tests, fixture, renderer};

db_tests!(
    a_panicking_job_is_recorded_at_once_as_a_retry,
    a_job_past_its_timeout_is_recorded_at_once_as_a_retry,
    a_panic_on_the_last_attempt_fails_the_job,
    the_workers_outlive_a_queue_that_stops_answering
);

/// Queues a job and claims it as `holder`, as a worker's queue would.
async fn claimed(app: &TestApp, holder: &str) -> Claimed {
    jobs::insert(&app.state.db, None, None, jobs::kinds::CLEANUP).await.expect("insert");
    let row = jobs::claim(&app.state.db, holder).await.expect("claim").expect("the job");
    Claimed { row, holder: holder.into() }
}

/// Runs `claimed` through the workers' stack with `job` in place of the real one.
async fn run_through<F, Fut>(app: &TestApp, claimed: Claimed, job: F) -> Ran
where
    F: FnMut(Task<Claimed>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Verdict, Transient>> + Send + 'static,
{
    let mut stack = record::around(&app.state, tower::service_fn(job));
    stack.ready().await.expect("ready").call(Task::new(claimed)).await.expect("recorded")
}

async fn a_panicking_job_is_recorded_at_once_as_a_retry(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let job = claimed(&app, "test:1:panics/0").await;
    let id = job.row.id;
    let ran = run_through(&app, job, |_| async { panic!("secret detail {}", 42) }).await;
    assert!(matches!(&ran, Ran::Retrying(why) if why.starts_with("the job crashed; retrying in")), "{ran:?}");
    let row = jobs::find(&app.state.db, id).await.expect("find").expect("row");
    assert_eq!(row.status, JobStatus::Pending, "{row:?}");
    assert_eq!(row.attempts, 1);
    let error = row.error.expect("a reason");
    assert!(error.starts_with("the job crashed"), "{error}");
    assert!(!error.contains("secret detail"), "the panic's text is for the log only: {error}");
}

async fn a_job_past_its_timeout_is_recorded_at_once_as_a_retry(db: DbKind) {
    let app = TestApp::spawn_with(db, StoreKind::Filesystem, |c| c.jobs.job_timeout = Duration::from_millis(300)).await;
    let job = claimed(&app, "test:1:hangs/0").await;
    let id = job.row.id;
    let ran = run_through(&app, job, |_| async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(Ok(()))
    })
    .await;
    assert!(matches!(&ran, Ran::Retrying(why) if why.contains("ran past its limit of 300ms")), "{ran:?}");
    let row = jobs::find(&app.state.db, id).await.expect("find").expect("row");
    assert_eq!((row.status, row.attempts), (JobStatus::Pending, 1), "{row:?}");
}

async fn a_panic_on_the_last_attempt_fails_the_job(db: DbKind) {
    let app = TestApp::spawn_with(db, StoreKind::Filesystem, |c| c.jobs.max_attempts = 1).await;
    let job = claimed(&app, "test:1:panics/0").await;
    let id = job.row.id;
    let ran = run_through(&app, job, |_| async { panic!("again") }).await;
    assert_eq!(ran, Ran::Failed("gave up after 1 attempts: the job crashed".into()));
    let row = jobs::find(&app.state.db, id).await.expect("find").expect("row");
    assert_eq!(row.status, JobStatus::Failed, "{row:?}");
}

/// Runs `sql` on the app's database.
async fn exec(app: &TestApp, sql: &'static str) {
    mbk_host::dispatch!(&app.state.db, |pool| sqlx::query(sql).execute(pool).await.map(|_| ())).expect("sql");
}

async fn the_workers_outlive_a_queue_that_stops_answering(db: DbKind) {
    let app =
        TestApp::spawn_with(db, StoreKind::Filesystem, |c| c.jobs.poll_interval = Duration::from_millis(100)).await;
    let t = app.project_with_key(Value::Null).await;
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(Worker::new(app.state.clone(), renderer()).run(2, stop.clone()));
    // The queue's table goes away: every claim fails for a while (apalis would end a worker on
    // its backend's first error).
    exec(&app, "ALTER TABLE jobs RENAME TO jobs_away").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    exec(&app, "ALTER TABLE jobs_away RENAME TO jobs").await;
    assert!(!running.is_finished(), "the workers are still running");

    let uploaded: Value =
        app.upload("/upload/image", &t.key, "p.jpg", fixture("photo.jpg")).await.json().await.expect("json");
    let path = format!("/files/{}", uploaded["id"].as_str().expect("id"));
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let file = loop {
        let file: Value = app.get_with_key(&path, &t.key).await.json().await.expect("json");
        if file["status"] != "processing" || std::time::Instant::now() > deadline {
            break file;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(file["status"], "ready", "{file}");
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(30), running).await.expect("workers stop").expect("no panic");
}

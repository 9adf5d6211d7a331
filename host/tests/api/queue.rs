//! The queue and the workers: retries with backoff, stale jobs taken back, no job run twice at
//! once, cancellation by permanent deletion, and the cleanup. On both databases.

use std::time::Duration;

use mbk_host::db::jobs;
use mbk_host::db::status::JobStatus;
use mbk_host::jobs::{Ran, Worker};
use serde_json::{Value, json};

use crate::helpers::{DbKind, StoreKind, TestApp, db_tests, drain, fixture, renderer};

db_tests!(
    transient_failures_back_off_then_succeed_or_give_up,
    a_job_of_a_dead_worker_is_taken_back_and_its_owner_fenced_off,
    two_workers_never_run_the_same_job,
    permanent_deletion_cancels_the_projects_jobs,
    the_cleanup_is_scheduled_once_a_day_and_runs_through_the_queue,
    metrics_show_requests_jobs_queue_and_plugin_runs,
    a_missing_original_fails_at_once,
    a_job_that_kills_its_worker_every_time_fails_after_max_attempts
);

/// Runs `sql` on the app's database (tests only: moving time, reading raw rows).
async fn exec(app: &TestApp, sql: &str) {
    let sql = sql.to_owned();
    mbk_host::dispatch!(&app.state.db, |pool| sqlx::query(sqlx::AssertSqlSafe(sql)).execute(pool).await.map(|_| ()))
        .expect("sql");
}

/// Sets a project's `deleted_at` (as if it had been deleted then).
async fn exec_bound_deleted_at(app: &TestApp, project_id: &str, at: chrono::DateTime<chrono::Utc>) {
    let id = uuid::Uuid::parse_str(project_id).expect("uuid");
    mbk_host::dispatch!(&app.state.db, |pool| sqlx::query("UPDATE projects SET deleted_at = $1 WHERE id = $2")
        .bind(at)
        .bind(id)
        .execute(pool)
        .await
        .map(|_| ()))
    .expect("update");
}

pub(crate) async fn job(app: &TestApp, key: &str, id: &Value) -> Value {
    let jobs: Value = app.get_with_key("/jobs?per_page=100", key).await.json().await.expect("json");
    jobs["items"].as_array().expect("items").iter().find(|j| &j["id"] == id).cloned().expect("the job is listed")
}

pub(crate) async fn file(app: &TestApp, key: &str, id: &Value) -> Value {
    app.get_with_key(&format!("/files/{}", id.as_str().expect("id")), key).await.json().await.expect("json")
}

async fn transient_failures_back_off_then_succeed_or_give_up(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let t = app.project_with_key(Value::Null).await;
    let uploaded: Value =
        app.upload("/upload/image", &t.key, "p.jpg", fixture("photo.jpg")).await.json().await.expect("json");
    // A worker whose store fails (the project's folder is a file there: reads fail with "not a
    // directory", an I/O error rather than a missing object).
    let empty = tempfile::tempdir().expect("tempdir");
    std::fs::write(empty.path().join(t.prefix.trim_end_matches('/')), b"in the way").expect("write");
    let root = empty.path().to_owned();
    let (_, broken, _stop) = app
        .sibling(|c| {
            c.storage = mbk_host::config::StorageConfig::Filesystem { root };
            c.jobs.backoff_base = Duration::from_secs(60);
        })
        .await;
    let broken = Worker::new(broken, renderer());

    let (_, ran) = broken.run_next(0).await.expect("queue").expect("a job to run");
    assert!(matches!(&ran, Ran::Retrying(why) if why.contains("storage")), "{ran:?}");
    let j = job(&app, &t.key, &uploaded["job_id"]).await;
    assert_eq!((&j["status"], &j["attempts"]), (&json!("pending"), &json!(1)), "{j}");
    assert!(j["error"].as_str().is_some_and(|e| e.contains("retrying in 60s")), "{j}");
    assert!(broken.run_next(0).await.expect("queue").is_none(), "the backoff is honoured: not runnable yet");

    // The backoff has passed; a healthy worker takes it and succeeds on the second attempt.
    exec(&app, "UPDATE jobs SET run_after = 0").await;
    assert_eq!(drain(&app).await, 1);
    let j = job(&app, &t.key, &uploaded["job_id"]).await;
    assert_eq!((&j["status"], &j["attempts"], &j["error"]), (&json!("completed"), &json!(2), &Value::Null), "{j}");
    assert_eq!(file(&app, &t.key, &uploaded["id"]).await["status"], "ready");

    // A job that keeps failing is `failed` after max_attempts.
    let second: Value =
        app.upload("/upload/image", &t.key, "q.jpg", fixture("photo.jpg")).await.json().await.expect("json");
    let root = empty.path().to_owned();
    let (_, hopeless, _stop2) = app
        .sibling(|c| {
            c.storage = mbk_host::config::StorageConfig::Filesystem { root };
            c.jobs.backoff_base = Duration::ZERO;
            c.jobs.max_attempts = 3;
        })
        .await;
    let ran = Worker::new(hopeless, renderer()).drain().await.expect("queue");
    assert_eq!(ran, 3, "three attempts, no more");
    let j = job(&app, &t.key, &second["job_id"]).await;
    assert_eq!((&j["status"], &j["attempts"]), (&json!("failed"), &json!(3)), "{j}");
    assert!(j["error"].as_str().is_some_and(|e| e.starts_with("gave up after 3 attempts: storage")), "{j}");
    // Nothing stays `processing`: the variants fail with the reason, and so does the file.
    let f = file(&app, &t.key, &second["id"]).await;
    assert_eq!(f["status"], "failed", "{f}");
    for (name, v) in f["variants"].as_object().expect("variants") {
        assert_eq!(v["status"], "failed", "{name}");
        assert!(v["error"].as_str().is_some_and(|e| e.starts_with("gave up after 3 attempts")), "{name}: {v}");
    }
}

async fn a_missing_original_fails_at_once(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let t = app.project_with_key(Value::Null).await;
    let uploaded: Value =
        app.upload("/upload/image", &t.key, "p.jpg", fixture("photo.jpg")).await.json().await.expect("json");
    for object in app.store().list(&t.prefix).await.expect("list") {
        app.store().delete(&mbk_host::storage::BlobKey::parse(&object.key).expect("key")).await.expect("delete");
    }
    assert_eq!(drain(&app).await, 1, "no retry for an object that is gone");
    let j = job(&app, &t.key, &uploaded["job_id"]).await;
    assert_eq!((&j["status"], &j["attempts"]), (&json!("failed"), &json!(1)), "{j}");
    assert!(j["error"].as_str().is_some_and(|e| e.contains("the original is missing")), "{j}");
    assert_eq!(file(&app, &t.key, &uploaded["id"]).await["status"], "failed");
}

async fn a_job_that_kills_its_worker_every_time_fails_after_max_attempts(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let t = app.project_with_key(Value::Null).await;
    let uploaded: Value =
        app.upload("/upload/image", &t.key, "p.jpg", fixture("photo.jpg")).await.json().await.expect("json");
    let max = app.state.config.jobs.max_attempts;
    for attempt in 1..=max {
        let claimed =
            jobs::claim(&app.state.db, &format!("doomed:{attempt}:w/0")).await.expect("claim").expect("the job");
        assert_eq!(claimed.attempts, attempt);
        tokio::time::sleep(Duration::from_millis(5)).await; // its heartbeat is now in the past
        assert_eq!(jobs::reclaim_stale(&app.state.db, 0, (max, max)).await.expect("reclaim"), 1);
        let j = job(&app, &t.key, &uploaded["job_id"]).await;
        let expected = if attempt < max { "pending" } else { "failed" };
        assert_eq!(j["status"], expected, "after attempt {attempt}: {j}");
    }
    let j = job(&app, &t.key, &uploaded["job_id"]).await;
    assert!(j["error"].as_str().is_some_and(|e| e.starts_with("gave up")), "{j}");
    assert_eq!(drain(&app).await, 0, "a job given up on is not run again");
}

async fn a_job_of_a_dead_worker_is_taken_back_and_its_owner_fenced_off(db: DbKind) {
    let app = TestApp::spawn_with(db, StoreKind::Filesystem, |c| c.jobs.stale_after = Duration::from_millis(400)).await;
    let t = app.project_with_key(Value::Null).await;
    let uploaded: Value =
        app.upload("/upload/image", &t.key, "p.jpg", fixture("photo.jpg")).await.json().await.expect("json");
    // A worker claims the job, then dies (never beats, never finishes).
    let ghost = "ghost:1:dead/0";
    let claimed = jobs::claim(&app.state.db, ghost).await.expect("claim").expect("the upload's job");
    assert_eq!(claimed.id.to_string(), uploaded["job_id"].as_str().expect("id"));
    assert_eq!(job(&app, &t.key, &uploaded["job_id"]).await["status"], "processing");

    // A live worker process takes it back after the stale limit and runs it.
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(Worker::new(app.state.clone(), renderer()).run(2, stop.clone()));
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let j = loop {
        let j = job(&app, &t.key, &uploaded["job_id"]).await;
        if j["status"] == "completed" || std::time::Instant::now() > deadline {
            break j;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!((&j["status"], &j["attempts"], &j["error"]), (&json!("completed"), &json!(2), &Value::Null), "{j}");
    assert_eq!(file(&app, &t.key, &uploaded["id"]).await["status"], "ready");
    // The dead worker, had it come back, can no longer record anything over it.
    assert!(!jobs::finish(&app.state.db, claimed.id, ghost, JobStatus::Failed, Some("late")).await.expect("update"));
    assert!(!jobs::retry_later(&app.state.db, claimed.id, ghost, 0, "late").await.expect("update"));
    assert_eq!(job(&app, &t.key, &uploaded["job_id"]).await["status"], "completed");
    // Stopping lets the workers finish and return.
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(30), running).await.expect("workers stop").expect("no panic");
}

async fn two_workers_never_run_the_same_job(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let t = app.project_with_key(Value::Null).await;
    let project = uuid::Uuid::parse_str(&t.project_id).expect("uuid");
    // Cheap jobs (file jobs naming no file: nothing to do), many of them. Not project syncs: at
    // most one of those waits per project.
    for _ in 0..40 {
        jobs::insert(&app.state.db, Some(project), None, "sync_file_variants").await.expect("insert");
    }
    let (a, b) = (Worker::new(app.state.clone(), renderer()), Worker::new(app.state.clone(), renderer()));
    let (ran_a, ran_b) = tokio::join!(
        async {
            let mut n = 0;
            while a.run_next(0).await.expect("queue").is_some() {
                n += 1;
            }
            n
        },
        async {
            let mut n = 0;
            while b.run_next(0).await.expect("queue").is_some() {
                n += 1;
            }
            n
        }
    );
    assert_eq!(ran_a + ran_b, 40, "every job ran once in all ({ran_a} + {ran_b})");
    let all: Value = app.get_with_key("/jobs?per_page=100", &t.key).await.json().await.expect("json");
    let items = all["items"].as_array().expect("items");
    assert_eq!(items.len(), 40);
    assert!(items.iter().all(|j| j["status"] == "completed" && j["attempts"] == 1), "no job was claimed twice: {all}");
}

async fn permanent_deletion_cancels_the_projects_jobs(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let t = app.project_with_key(Value::Null).await;
    let first: Value =
        app.upload("/upload/image", &t.key, "a.jpg", fixture("photo.jpg")).await.json().await.expect("json");
    let second: Value =
        app.upload("/upload/image", &t.key, "b.jpg", fixture("photo.jpg")).await.json().await.expect("json");
    // One job is in a worker's hands when the project goes, the other still waits.
    let busy = "busy:1:w/0";
    let claimed = jobs::claim(&app.state.db, busy).await.expect("claim").expect("a job");
    assert_eq!(claimed.id.to_string(), first["job_id"].as_str().expect("id"));
    let response = app.delete_as(&format!("/projects/{}?permanent=true", t.project_id), Some(&t.token)).await;
    assert_eq!(response.status(), 204);
    for id in [&first["job_id"], &second["job_id"]] {
        let id = uuid::Uuid::parse_str(id.as_str().expect("id")).expect("uuid");
        assert!(jobs::find(&app.state.db, id).await.expect("query").is_none(), "the job is gone with its project");
    }
    assert_eq!(drain(&app).await, 0, "nothing left to run");
    assert!(!jobs::finish(&app.state.db, claimed.id, busy, JobStatus::Completed, None).await.expect("update"));
    assert!(app.store().list(&t.prefix).await.expect("list").is_empty(), "no blob left behind");
}

async fn the_cleanup_is_scheduled_once_a_day_and_runs_through_the_queue(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let day_ago = chrono::Utc::now() - chrono::Duration::days(1);
    // Workers starting together all try at once: exactly one cleanup is enqueued.
    let tries: Vec<bool> =
        futures_util::future::join_all((0..8).map(|_| jobs::schedule_cleanup(&app.state.db, day_ago)))
            .await
            .into_iter()
            .map(|r| r.expect("schedule"))
            .collect();
    assert_eq!(tries.iter().filter(|t| **t).count(), 1, "{tries:?}");
    assert!(!jobs::schedule_cleanup(&app.state.db, day_ago).await.expect("schedule"), "one is already waiting");
    assert_eq!(drain(&app).await, 1);
    assert!(!jobs::schedule_cleanup(&app.state.db, day_ago).await.expect("schedule"), "one ran within the day");
    let counts = jobs::count_by_status(&app.state.db).await.expect("count");
    assert_eq!(counts, [("completed".to_owned(), 1)]);
    // A day later, the next one.
    assert!(jobs::schedule_cleanup(&app.state.db, chrono::Utc::now()).await.expect("schedule"));
}

mod cleanup_matrix {
    use std::time::Duration;

    use mbk_host::jobs::cleanup;
    use serde_json::Value;

    use super::exec_bound_deleted_at;
    use crate::helpers::{DbKind, StoreKind, TestApp, drain, fixture, matrix_tests};

    matrix_tests!(cleanup_purges_old_deleted_projects_and_old_orphans_only);

    async fn cleanup_purges_old_deleted_projects_and_old_orphans_only(db: DbKind, store: StoreKind) {
        let _alone = crate::helpers::WHOLE_BUCKET.lock().await;
        let app = TestApp::spawn_with(db, store, |c| {
            if let mbk_host::config::StorageConfig::S3(s3) = &mut c.storage {
                s3.bucket =
                    std::env::var("MBK_TEST_S3_SOLO_BUCKET").expect("MBK_TEST_S3_SOLO_BUCKET (scripts/garage.sh)");
            }
        })
        .await;
        for left in app.store().list("").await.expect("list") {
            let key = mbk_host::storage::BlobKey::parse(&left.key).expect("key");
            app.store().delete(&key).await.expect("delete what an earlier run left");
        }
        let live = app.project_with_key(Value::Null).await;
        let old = app.project_with_key(Value::Null).await;
        let recent = app.project_with_key(Value::Null).await;
        for t in [&live, &old, &recent] {
            let r = app.upload("/upload/image", &t.key, "p.jpg", fixture("photo.jpg")).await;
            assert_eq!(r.status(), 201);
        }
        assert_eq!(drain(&app).await, 3);
        for t in [&old, &recent] {
            assert_eq!(app.delete_as(&format!("/projects/{}", t.project_id), Some(&t.token)).await.status(), 204);
        }
        // `old` was deleted 31 days ago, `recent` yesterday.
        exec_bound_deleted_at(&app, &old.project_id, chrono::Utc::now() - chrono::Duration::days(31)).await;
        // Objects no row names: one in a live project's folder, one in a folder of no project.
        let stray = format!("{}images/medium/{}.webp", live.prefix, uuid::Uuid::now_v7());
        let nobody = format!("gone-{}/files/{}.bin", uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        let foreign = "another-app/data.bin".to_owned();
        for key in [&stray, &nobody, &foreign] {
            let key = mbk_host::storage::BlobKey::parse(key).expect("key");
            app.store()
                .put_bytes(&key, "application/octet-stream", bytes::Bytes::from_static(b"orphan"))
                .await
                .expect("put");
        }

        let report = cleanup::run(&app.state).await.expect("cleanup");
        assert_eq!(
            (report.projects_purged, report.project_objects_deleted, report.orphans_deleted, report.orphans_too_young),
            (1, 3, 0, 2),
            "the 31-day-old project goes (original + 2 variants); the fresh orphans stay: {report:?}"
        );
        assert!(app.store().list(&old.prefix).await.expect("list").is_empty());
        assert_eq!(app.store().list(&recent.prefix).await.expect("list").len(), 3, "deleted yesterday: kept");
        let ids: Vec<String> = mbk_host::dispatch!(&app.state.db, |pool| sqlx::query_scalar::<_, uuid::Uuid>(
            "SELECT id FROM projects ORDER BY id"
        )
        .fetch_all(pool)
        .await)
        .expect("query")
        .into_iter()
        .map(|id| id.to_string())
        .collect();
        assert_eq!(ids, [live.project_id.clone(), recent.project_id.clone()], "the old project's rows are gone");

        // A registered plugin's object is named by its row, outside any project folder.
        let (_, admin) = app.user_with_token("ada", mbk_host::db::users::Role::Admin).await;
        let plugin =
            crate::registry::register(&app, &admin, Some(crate::registry::sepia()), Some("sepia"), Some("1")).await;
        assert_eq!(plugin.status(), 201);

        // Past the grace period (zero here), the orphans go; everything a row names stays.
        let (_, later, _stop) = app.sibling(|c| c.jobs.orphan_grace = Duration::ZERO).await;
        let report = cleanup::run(&later).await.expect("cleanup");
        assert_eq!(
            (report.projects_purged, report.orphans_deleted, report.orphans_too_young, report.foreign_skipped),
            (0, 2, 0, 1),
            "{report:?}"
        );
        assert_eq!(app.store().list("another-app/").await.expect("list").len(), 1, "not ours: never touched");
        let live_keys: Vec<String> =
            app.store().list(&live.prefix).await.expect("list").into_iter().map(|o| o.key).collect();
        assert_eq!(live_keys.len(), 3, "original + 2 variants: {live_keys:?}");
        assert!(!live_keys.contains(&stray));
        assert!(app.store().list("gone-").await.expect("list").is_empty());
        assert_eq!(app.store().list("plugins/").await.expect("list").len(), 1, "the plugin's object stays");
        assert_eq!(app.store().list(&recent.prefix).await.expect("list").len(), 3);
        // Still served.
        let files: Value = app.get_with_key("/files", &live.key).await.json().await.expect("json");
        assert_eq!(files["items"][0]["status"], "ready");
    }
}

async fn metrics_show_requests_jobs_queue_and_plugin_runs(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let t = app.project_with_key(Value::Null).await;
    for name in ["a.jpg", "b.jpg"] {
        assert_eq!(app.upload("/upload/image", &t.key, name, fixture("photo.jpg")).await.status(), 201);
    }
    let scrape = || async {
        let response = app.get("/metrics").await;
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"].to_str().expect("ascii").starts_with("text/plain; version=0.0.4"));
        response.text().await.expect("text")
    };
    let before = scrape().await;
    assert!(before.contains("mbk_queue_depth 2\n"), "{before}");
    assert!(before.contains("mbk_jobs{status=\"pending\"} 2\n"), "{before}");
    assert!(before.contains("mbk_variants{status=\"pending\"} 4\n"), "{before}");
    assert!(
        before.contains(
            "mbk_http_requests_total{module=\"Upload\",method=\"POST\",status=\"201\",route=\"/upload/image\"}"
        ),
        "{before}"
    );

    assert_eq!(drain(&app).await, 2);
    let after = scrape().await;
    assert!(after.contains("mbk_queue_depth 0\n"), "{after}");
    assert!(after.contains("mbk_jobs{status=\"completed\"} 2\n"), "{after}");
    assert!(after.contains("mbk_variants{status=\"ready\"} 4\n"), "{after}");
    // Counters of this process (tests share it: at least ours).
    let counter = |text: &str, prefix: &str| -> u64 {
        text.lines().filter_map(|l| l.strip_prefix(prefix)).filter_map(|n| n.trim().parse::<u64>().ok()).sum()
    };
    assert!(counter(&after, "mbk_plugin_runs_total{plugin=\"mbk-standard\",result=\"ok\"}") >= 2, "{after}");
    assert!(counter(&after, "mbk_job_runs_total{kind=\"process_image\",outcome=\"completed\"}") >= 2, "{after}");
    assert!(counter(&after, "mbk_http_request_duration_seconds_count") >= 3, "{after}");

    // A real Prometheus parser reads both scrapes, and the counters moved between them.
    let (before, after) = (prometheus_samples(&before), prometheus_samples(&after));
    assert_eq!(after.get("mbk_queue_depth{}"), Some(&0.0), "{after:?}");
    let sum = |samples: &std::collections::HashMap<String, f64>, name: &str, labels: &str| -> f64 {
        samples.iter().filter(|(k, _)| k.starts_with(&format!("{name}{{")) && k.contains(labels)).map(|(_, v)| v).sum()
    };
    let completed = "kind=\"process_image\",outcome=\"completed\"";
    assert!(sum(&after, "mbk_job_runs_total", completed) >= sum(&before, "mbk_job_runs_total", completed) + 2.0);
    let ok = "plugin=\"mbk-standard\",result=\"ok\"";
    assert!(sum(&after, "mbk_plugin_runs_total", ok) >= sum(&before, "mbk_plugin_runs_total", ok) + 2.0);
    let requests = |s| sum(s, "mbk_http_request_duration_seconds_count", "");
    assert!(requests(&after) > requests(&before), "the scrape itself is a request");
}

/// Every sample of a `/metrics` scrape, as prometheus_client's own text parser (PyPI, in the venv
/// `scripts/test` makes) reads it: `name{label="value",...}` (labels sorted) to value. A scrape
/// it refuses fails the test.
fn prometheus_samples(scrape: &str) -> std::collections::HashMap<String, f64> {
    use std::io::Write;
    let python = std::env::var("MBK_TEST_PYTHON").ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {
        panic!("MBK_TEST_PYTHON is not set: run the suite with scripts/test, which makes a venv with prometheus_client")
    });
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/metrics/parse.py");
    let mut child = std::process::Command::new(python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python runs");
    child.stdin.take().expect("stdin").write_all(scrape.as_bytes()).expect("write the scrape");
    let out = child.wait_with_output().expect("the parser ends");
    assert!(out.status.success(), "prometheus_client refuses the scrape:\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("the parser's JSON")
}

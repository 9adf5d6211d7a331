//! Jobs that end badly: what a tenant is left with. A job the stale reclaim gives up on settles
//! its file and variants like one a worker gives up on; the reasons shown to tenants name no
//! store endpoint, bucket or SQL. On both databases.

use std::time::Duration;

use mbk_host::config::StorageConfig;
use mbk_host::db::jobs;
use mbk_host::db::users::Role;
use mbk_host::jobs::Worker;
use serde_json::{Value, json};

use crate::helpers::{DbKind, StoreKind, TestApp, db_tests, fixture, renderer};
use crate::queue::{file, job};

db_tests!(
    a_job_the_stale_reclaim_gives_up_on_settles_its_file_and_variants,
    a_database_failure_is_shown_as_database_unavailable
);

mod dead_store {
    use crate::helpers::matrix_tests;
    matrix_tests!(a_dead_store_is_shown_as_storage_unavailable_without_its_address);
    use super::a_dead_store_is_shown_as_storage_unavailable_without_its_address;
}

async fn a_job_the_stale_reclaim_gives_up_on_settles_its_file_and_variants(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let t = app.project_with_key(Value::Null).await;
    let uploaded: Value =
        app.upload("/upload/image", &t.key, "p.jpg", fixture("photo.jpg")).await.json().await.expect("json");
    // Every attempt's worker dies holding the job (it never beats again).
    let max = app.state.config.jobs.max_attempts;
    for attempt in 1..=max {
        jobs::claim(&app.state.db, &format!("doomed:{attempt}:w/0")).await.expect("claim").expect("the job");
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(jobs::reclaim_stale(&app.state.db, 0, (max, max)).await.expect("reclaim"), 1);
    }
    let j = job(&app, &t.key, &uploaded["job_id"]).await;
    assert_eq!((&j["status"], &j["attempts"]), (&json!("failed"), &json!(max)), "{j}");
    // What the job was rendering is settled too, with the reason: nothing stays in flight.
    let f = file(&app, &t.key, &uploaded["id"]).await;
    assert_eq!(f["status"], "failed", "{f}");
    let variants = f["variants"].as_object().expect("variants");
    assert_eq!(variants.len(), 2, "{f}");
    for (name, v) in variants {
        assert_eq!(v["status"], "failed", "{name}: {v}");
        assert!(v["error"].as_str().is_some_and(|e| e.starts_with("gave up")), "{name}: {v}");
    }
    // And the listing agrees.
    let listed: Value = app.get_with_key("/files", &t.key).await.json().await.expect("json");
    assert_eq!(listed["items"][0]["status"], "failed", "{listed}");
}

async fn exec(app: &TestApp, sql: &'static str) {
    mbk_host::dispatch!(&app.state.db, |pool| sqlx::query(sql).execute(pool).await.map(|_| ())).expect("sql");
}

/// Every error text a tenant or an admin can read about the job `job_id` and the file `file_id`.
async fn shown_errors(app: &TestApp, key: &str, su: &str, job_id: &Value, file_id: &Value) -> Vec<String> {
    let mut shown = Vec::new();
    shown.extend(job(app, key, job_id).await["error"].as_str().map(str::to_owned));
    let admin: Value = app.get_as("/admin/jobs?per_page=100", Some(su)).await.json().await.expect("json");
    for project in admin["projects"].as_array().expect("projects") {
        for j in project["jobs"]["items"].as_array().expect("items") {
            if &j["id"] == job_id {
                shown.extend(j["error"].as_str().map(str::to_owned));
            }
        }
    }
    let f = file(app, key, file_id).await;
    for v in f["variants"].as_object().expect("variants").values() {
        shown.extend(v["error"].as_str().map(str::to_owned));
    }
    shown
}

async fn a_dead_store_is_shown_as_storage_unavailable_without_its_address(db: DbKind, store: StoreKind) {
    let app = TestApp::spawn(db, store).await;
    let (_, su) = app.user_with_token("root", Role::Su).await;
    let t = app.project_with_key(Value::Null).await;
    let uploaded: Value =
        app.upload("/upload/image", &t.key, "p.jpg", fixture("photo.jpg")).await.json().await.expect("json");
    // A worker whose store fails: on S3 an endpoint where nothing listens, on the filesystem a
    // root where the project's folder is a file (an I/O error, not a missing object).
    let blocked = tempfile::tempdir().expect("tempdir");
    std::fs::write(blocked.path().join(t.prefix.trim_end_matches('/')), b"in the way").expect("write");
    let dead_endpoint = "127.0.0.1:9";
    let (secret_place, bucket) = match &app.state.config.storage {
        StorageConfig::S3(s3) => (dead_endpoint.to_owned(), Some(s3.bucket.clone())),
        StorageConfig::Filesystem { .. } => (blocked.path().display().to_string(), None),
    };
    let root = blocked.path().to_owned();
    let (_, broken, _stop) = app
        .sibling(|c| {
            match &mut c.storage {
                StorageConfig::S3(s3) => s3.endpoint = Some(format!("http://{dead_endpoint}")),
                StorageConfig::Filesystem { root: r } => *r = root,
            }
            c.jobs.backoff_base = Duration::ZERO;
            c.jobs.max_attempts = 2;
        })
        .await;
    let worker = Worker::new(broken, renderer());
    // The first attempt is retried, the second gives up: both texts are read.
    worker.run_next(0).await.expect("queue").expect("a job");
    let retrying = shown_errors(&app, &t.key, &su, &uploaded["job_id"], &uploaded["id"]).await;
    assert!(retrying.iter().any(|e| e.starts_with("storage unavailable; retrying")), "{retrying:?}");
    worker.run_next(0).await.expect("queue").expect("the retry");
    let j = job(&app, &t.key, &uploaded["job_id"]).await;
    assert_eq!(
        (&j["status"], &j["error"]),
        (&json!("failed"), &json!("gave up after 2 attempts: storage unavailable"))
    );
    let gave_up = shown_errors(&app, &t.key, &su, &uploaded["job_id"], &uploaded["id"]).await;
    assert_eq!(gave_up.len(), 4, "the job (twice: /jobs, /admin/jobs) and both variants: {gave_up:?}");
    for shown in retrying.iter().chain(&gave_up) {
        assert!(!shown.contains(&secret_place), "{shown:?} names {secret_place}");
        assert!(!shown.contains("blob store failure") && !shown.contains("dispatch"), "{shown:?}");
        if let Some(bucket) = &bucket {
            assert!(!shown.contains(bucket.as_str()), "{shown:?} names the bucket");
        }
    }
}

async fn a_database_failure_is_shown_as_database_unavailable(db: DbKind) {
    let app = TestApp::spawn_with(db, StoreKind::Filesystem, |c| c.jobs.backoff_base = Duration::from_secs(60)).await;
    let (_, su) = app.user_with_token("root", Role::Su).await;
    let t = app.project_with_key(Value::Null).await;
    let uploaded: Value =
        app.upload("/upload/image", &t.key, "p.jpg", fixture("photo.jpg")).await.json().await.expect("json");
    // The database refuses the job's queries (a table it reads is away) while the queue works.
    exec(&app, "ALTER TABLE variants RENAME TO variants_away").await;
    let (_, ran) = Worker::new(app.state.clone(), renderer()).run_next(0).await.expect("queue").expect("a job");
    assert!(matches!(&ran, mbk_host::jobs::Ran::Retrying(_)), "{ran:?}");
    exec(&app, "ALTER TABLE variants_away RENAME TO variants").await;
    let shown = shown_errors(&app, &t.key, &su, &uploaded["job_id"], &uploaded["id"]).await;
    assert_eq!(shown, ["database unavailable; retrying in 60s", "database unavailable; retrying in 60s"]);
}

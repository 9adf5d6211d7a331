//! The queue shared by tenants: one project's backlog does not starve another's first upload,
//! and a project cannot pile up sync jobs. On both databases.

use mbk_host::db::jobs;
use mbk_host::db::status::JobStatus;
use serde_json::{Value, json};

use crate::helpers::{DbKind, StoreKind, TestApp, db_tests, drain, fixture};

db_tests!(
    another_projects_first_upload_is_claimed_before_a_backlog,
    backlogged_projects_take_turns,
    one_sync_waits_per_project,
    a_sync_taken_back_waits_beside_a_new_one
);

fn pid(id: &str) -> uuid::Uuid {
    uuid::Uuid::parse_str(id).expect("uuid")
}

/// Jobs that do nothing when run (a file job naming no file), for `project`.
async fn backlog(app: &TestApp, project: &str, n: usize) -> Vec<uuid::Uuid> {
    let mut made = Vec::new();
    for _ in 0..n {
        made.push(
            jobs::insert(&app.state.db, Some(pid(project)), None, "sync_file_variants").await.expect("insert").id,
        );
    }
    made
}

/// The project of each of the next `n` claims.
async fn claim_projects(app: &TestApp, n: usize) -> Vec<uuid::Uuid> {
    let mut order = Vec::new();
    for i in 0..n {
        let job = jobs::claim(&app.state.db, &format!("fair:{i}:w/0")).await.expect("claim").expect("a job waits");
        order.push(job.project_id.expect("a project's job"));
    }
    order
}

async fn another_projects_first_upload_is_claimed_before_a_backlog(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let (a, b) = (app.project_with_key(Value::Null).await, app.project_with_key(Value::Null).await);
    let a_jobs = backlog(&app, &a.project_id, 30).await;
    let uploaded: Value =
        app.upload("/upload/image", &b.key, "p.jpg", fixture("photo.jpg")).await.json().await.expect("json");
    let b_job = uploaded["job_id"].as_str().expect("job_id").to_owned();

    let first = jobs::claim(&app.state.db, "fair:1:w/0").await.expect("claim").expect("a job");
    let second = jobs::claim(&app.state.db, "fair:2:w/0").await.expect("claim").expect("a job");
    assert_eq!(first.id, a_jobs[0], "the oldest job of the backlog first");
    assert_eq!(second.id.to_string(), b_job, "then B's upload, not after A's 29 others");
    // Within a project the order stays first in, first out.
    for expected in &a_jobs[1..] {
        let next = jobs::claim(&app.state.db, "fair:3:w/0").await.expect("claim").expect("a job");
        assert_eq!(&next.id, expected);
    }
    // What B's user sees: the upload's job ran while A's backlog still waited.
    let listed: Value = app.get_with_key("/jobs", &b.key).await.json().await.expect("json");
    assert_eq!(listed["items"][0]["status"], "processing", "{listed}");
}

async fn backlogged_projects_take_turns(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let (a, b, c) = (
        app.project_with_key(Value::Null).await,
        app.project_with_key(Value::Null).await,
        app.project_with_key(Value::Null).await,
    );
    let (pa, pb, pc) = (pid(&a.project_id), pid(&b.project_id), pid(&c.project_id));
    backlog(&app, &a.project_id, 10).await;
    backlog(&app, &b.project_id, 10).await;
    // Two backlogs enqueued one after the other: their jobs alternate.
    let order = claim_projects(&app, 6).await;
    assert_eq!(order, [pa, pb, pa, pb, pa, pb]);
    // A third project arriving now with a backlog of its own joins the turn at once: it is not
    // put ahead of the others for all of its jobs either.
    backlog(&app, &c.project_id, 10).await;
    let order = claim_projects(&app, 9).await;
    assert_eq!(order, [pa, pb, pc, pa, pb, pc, pa, pb, pc]);
}

async fn one_sync_waits_per_project(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let (t, other) = (app.project_with_key(Value::Null).await, app.project_with_key(Value::Null).await);
    let sync = |tenant: &crate::helpers::Tenant| {
        let (path, token) = (format!("/projects/{}/sync-variants", tenant.project_id), tenant.token.clone());
        let app = &app;
        async move {
            let response = app.post_json(&path, Some(&token), &json!({})).await;
            assert_eq!(response.status(), 202);
            response.json::<Value>().await.expect("json")["job_id"].as_str().expect("job_id").to_owned()
        }
    };
    let first = sync(&t).await;
    for _ in 0..3 {
        assert_eq!(sync(&t).await, first, "while one waits, the same job");
    }
    let theirs = sync(&other).await;
    assert_ne!(theirs, first, "one per project, not one in all");
    let pending: Value = app.get_with_key("/jobs?status=pending", &t.key).await.json().await.expect("json");
    assert_eq!(pending["total"], 1, "{pending}");

    // Once it runs (claimed here and held), a request made now needs a new sync: its settings
    // may have changed after the running one read them.
    let running = jobs::claim(&app.state.db, "sync:1:w/0").await.expect("claim").expect("a job");
    assert_eq!(running.id.to_string(), first);
    let next = sync(&t).await;
    assert_ne!(next, first);
    assert_eq!(sync(&t).await, next);
    assert!(jobs::finish(&app.state.db, running.id, "sync:1:w/0", JobStatus::Completed, None).await.expect("finish"));
    assert_eq!(drain(&app).await, 2, "the waiting sync of each project");
    let after = sync(&t).await;
    assert!(![first, next].contains(&after), "nothing waits any more: a new one");
    let all: Value = app.get_with_key("/jobs", &t.key).await.json().await.expect("json");
    assert_eq!(all["total"], 3, "{all}");
}

/// A running sync whose worker died is taken back beside the one waiting since: the unique
/// index counts only syncs never run, so the reclaim (one UPDATE for every stale job) and a
/// retry do not fail on it.
async fn a_sync_taken_back_waits_beside_a_new_one(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let t = app.project_with_key(Value::Null).await;
    let path = format!("/projects/{}/sync-variants", t.project_id);
    let first = app.post_json(&path, Some(&t.token), &json!({})).await;
    assert_eq!(first.status(), 202);
    let running = jobs::claim(&app.state.db, "doomed:1:w/0").await.expect("claim").expect("a job");
    assert_eq!(app.post_json(&path, Some(&t.token), &json!({})).await.status(), 202, "a new one waits");
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert_eq!(jobs::reclaim_stale(&app.state.db, 0, (5, 8)).await.expect("the reclaim does not fail"), 1);
    let pending: Value = app.get_with_key("/jobs?status=pending", &t.key).await.json().await.expect("json");
    assert_eq!(pending["total"], 2, "{pending}");
    // And a retry of a sync that ran, beside a new one.
    let again = jobs::claim(&app.state.db, "flaky:1:w/0").await.expect("claim").expect("a job");
    assert_eq!(app.post_json(&path, Some(&t.token), &json!({})).await.status(), 202);
    assert!(jobs::retry_later(&app.state.db, again.id, "flaky:1:w/0", 0, "storage unavailable").await.expect("retry"));
    let _ = running;
    let waiting: Value = app.get_with_key("/jobs?status=pending", &t.key).await.json().await.expect("json");
    let waiting = waiting["total"].as_u64().expect("total");
    assert!(waiting >= 2, "the retried sync waits beside the new one");
    assert_eq!(drain(&app).await as u64, waiting, "every waiting sync runs");
}

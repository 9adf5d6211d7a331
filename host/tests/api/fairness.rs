//! The queue shared by tenants: one project's backlog does not starve another's first upload.
//! On both databases.

use mbk_host::db::jobs;
use serde_json::Value;

use crate::helpers::{DbKind, StoreKind, TestApp, db_tests, fixture};

db_tests!(
    another_projects_first_upload_is_claimed_before_a_backlog,
    backlogged_projects_take_turns
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

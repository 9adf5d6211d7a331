//! Jobs that end badly: what a tenant is left with. A job the stale reclaim gives up on settles
//! its file and variants like one a worker gives up on. On both databases.

use std::time::Duration;

use mbk_host::db::jobs;
use serde_json::{Value, json};

use crate::helpers::{DbKind, StoreKind, TestApp, db_tests, fixture};

db_tests!(a_job_the_stale_reclaim_gives_up_on_settles_its_file_and_variants);

pub async fn job(app: &TestApp, key: &str, id: &Value) -> Value {
    let jobs: Value = app.get_with_key("/jobs?per_page=100", key).await.json().await.expect("json");
    jobs["items"].as_array().expect("items").iter().find(|j| &j["id"] == id).cloned().expect("the job is listed")
}

pub async fn file(app: &TestApp, key: &str, id: &Value) -> Value {
    app.get_with_key(&format!("/files/{}", id.as_str().expect("id")), key).await.json().await.expect("json")
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
        assert_eq!(jobs::reclaim_stale(&app.state.db, 0, max).await.expect("reclaim"), 1);
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

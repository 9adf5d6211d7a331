//! Unfinished TUS uploads count against the project's quotas: several begun at once cannot
//! together pass `max_total_bytes` or `max_files` that each alone respects. On both databases.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{DbKind, StoreKind, TestApp, assert_error, db_tests};
use crate::tus::tus;

db_tests!(unfinished_uploads_count_against_the_quotas);

async fn begin(app: &TestApp, key: &str, length: usize) -> reqwest::Response {
    let request = tus(app, Method::POST, "/tus/").header("x-api-key", key).header("upload-length", length.to_string());
    request.send().await.expect("create")
}

async fn unfinished_uploads_count_against_the_quotas(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let quotas = json!({"quotas": {"max_total_bytes": 100, "max_files": 3}});
    let tenant = app.project_with_key(quotas).await;

    // 60 bytes begun: another 60 would pass 100 once both finish.
    let first = begin(&app, &tenant.key, 60).await;
    assert_eq!(first.status(), 201);
    let why = assert_error(begin(&app, &tenant.key, 60).await, 409, "quota_exceeded").await;
    assert!(why.contains("unfinished"), "{why}");
    // What is left still fits, and counts as a file: a fourth is over `max_files`.
    assert_eq!(begin(&app, &tenant.key, 20).await.status(), 201);
    assert_eq!(begin(&app, &tenant.key, 20).await.status(), 201);
    assert_error(begin(&app, &tenant.key, 0).await, 409, "quota_exceeded").await;

    // Terminating one gives its room back.
    let url = first.headers()["location"].to_str().expect("ascii").to_owned();
    let gone = tus(&app, Method::DELETE, &url).header("x-api-key", &tenant.key).send().await.expect("delete");
    assert_eq!(gone.status(), 204);
    let again = begin(&app, &tenant.key, 60).await;
    assert_eq!(again.status(), 201);
}

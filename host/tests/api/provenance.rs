//! What made each variant, as a user sees it, and syncs that re-render exactly what changed: a
//! variant shows `plugin: {name, version, sha256}`; `POST /projects/{id}/sync-variants` re-renders
//! the variants whose plugin (a new version its reference resolves to) or spec changed and
//! nothing else, its job reporting the counts; `rerender_on_upgrade` does it by itself when a
//! version is registered. On both databases.

use mbk_host::db::users::Role;
use mbk_host::pipeline::STANDARD_COMPONENT;
use serde_json::{Value, json};
use sha2::Digest;

use crate::helpers::{DbKind, StoreKind, Tenant, TestApp, db_tests, drain, fixture};
use crate::registry::{register, sepia};

db_tests!(syncs_re_render_exactly_what_changed_and_say_so);

fn sha(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

fn settings(plain_width: u32, rerender_on_upgrade: bool) -> Value {
    json!({"rerender_on_upgrade": rerender_on_upgrade, "variants": [
        {"name": "toned", "width": 64, "height": 48, "fit": "cover", "format": "png", "quality": 90, "plugin": "sepia@^1"},
        {"name": "plain", "width": plain_width, "height": 32, "fit": "cover", "format": "png", "quality": 90}]})
}

async fn file(app: &TestApp, t: &Tenant, id: &str) -> Value {
    app.get_with_key(&format!("/files/{id}"), &t.key).await.json().await.expect("json")
}

/// Requests a sync, runs the queue; the project job's report.
async fn sync(app: &TestApp, t: &Tenant) -> Value {
    let path = format!("/projects/{}/sync-variants", t.project_id);
    let answer: Value = app.post_json(&path, Some(&t.token), &json!({})).await.json().await.expect("json");
    drain(app).await;
    job_report(app, t, answer["job_id"].as_str().expect("job id")).await
}

async fn job_report(app: &TestApp, t: &Tenant, id: &str) -> Value {
    let jobs: Value = app.get_with_key("/jobs?per_page=100", &t.key).await.json().await.expect("json");
    let job = jobs["items"].as_array().expect("items").iter().find(|j| j["id"] == id).cloned().expect("listed");
    assert_eq!(job["status"], "completed", "{job}");
    job["report"].clone()
}

/// A job of the project by id, whatever its status.
async fn job_report_any(app: &TestApp, t: &Tenant, id: &str) -> Value {
    let jobs: Value = app.get_with_key("/jobs?per_page=100", &t.key).await.json().await.expect("json");
    jobs["items"].as_array().expect("items").iter().find(|j| j["id"] == id).cloned().expect("listed")
}

async fn file_syncs(app: &TestApp, t: &Tenant) -> usize {
    let jobs: Value = app.get_with_key("/jobs?per_page=100", &t.key).await.json().await.expect("json");
    jobs["items"].as_array().expect("items").iter().filter(|j| j["kind"] == "sync_file_variants").count()
}

fn report(rerendered: u64, added: u64, removed: u64, unchanged: u64) -> Value {
    json!({"rerendered": rerendered, "added": added, "removed": removed, "unchanged": unchanged})
}

async fn syncs_re_render_exactly_what_changed_and_say_so(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let (_, su) = app.user_with_token("root", Role::Su).await;
    assert_eq!(register(&app, &su, Some(sepia()), Some("sepia"), Some("1.0.0")).await.status(), 201);
    let t = app.project_with_key(settings(32, false)).await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let f: Value =
            app.upload("/upload/image", &t.key, "p.jpg", fixture("photo.jpg")).await.json().await.expect("json");
        ids.push(f["id"].as_str().expect("id").to_owned());
    }
    drain(&app).await;
    let first = file(&app, &t, &ids[0]).await;
    assert_eq!(
        first["variants"]["toned"]["plugin"],
        json!({"name": "sepia", "version": "1.0.0", "sha256": sha(&sepia())})
    );
    let plain_by = first["variants"]["plain"]["plugin"].clone();
    assert_eq!(plain_by["name"], "mbk-standard", "{first}");

    // Nothing changed: nothing is rendered, no file job is even made.
    assert_eq!(sync(&app, &t).await, report(0, 0, 0, 4));
    assert_eq!(file_syncs(&app, &t).await, 0);

    // A new version `sepia@^1` resolves to (other code): exactly the toned variants render again.
    assert_eq!(
        register(&app, &su, Some(STANDARD_COMPONENT.to_vec()), Some("sepia"), Some("1.1.0")).await.status(),
        201
    );
    assert_eq!(sync(&app, &t).await, report(2, 0, 0, 2));
    assert_eq!(file_syncs(&app, &t).await, 2);
    for id in &ids {
        let f = file(&app, &t, id).await;
        let toned = &f["variants"]["toned"];
        assert_eq!((&toned["status"], &toned["plugin"]["version"]), (&json!("ready"), &json!("1.1.0")), "{f}");
        assert_eq!(toned["plugin"]["sha256"], sha(STANDARD_COMPONENT));
        assert_eq!(f["variants"]["plain"]["plugin"], plain_by, "untouched");
    }
    // A version outside the pin changes nothing.
    assert_eq!(register(&app, &su, Some(sepia()), Some("sepia"), Some("2.0.0")).await.status(), 201);
    assert_eq!(sync(&app, &t).await, report(0, 0, 0, 4));

    // A spec change: exactly the plain variants, at their new size.
    let path = format!("/projects/{}", t.project_id);
    assert_eq!(app.put_json(&path, Some(&t.token), &json!({"settings": settings(40, false)})).await.status(), 200);
    assert_eq!(sync(&app, &t).await, report(2, 0, 0, 2));
    assert_eq!(file(&app, &t, &ids[1]).await["variants"]["plain"]["width"], 40);

    // A new version that cannot render: the variants it would replace stay ready and served.
    let hostile = crate::registry::hostile();
    assert_eq!(register(&app, &su, Some(hostile), Some("sepia"), Some("1.1.5")).await.status(), 201);
    let path_sync = format!("/projects/{}/sync-variants", t.project_id);
    let answer: Value = app.post_json(&path_sync, Some(&t.token), &json!({})).await.json().await.expect("json");
    drain(&app).await;
    let broken = job_report_any(&app, &t, answer["job_id"].as_str().expect("id")).await;
    assert_eq!(broken["report"], report(2, 0, 0, 2), "{broken}");
    let f = file(&app, &t, &ids[0]).await;
    let toned = &f["variants"]["toned"];
    assert_eq!((&toned["status"], &toned["plugin"]["version"]), (&json!("ready"), &json!("1.1.0")), "{f}");
    let content = app.get_with_key(&format!("/files/{}/content?variant=toned", ids[0]), &t.key).await;
    assert_eq!(content.status(), 200, "still served");
    let hostile_id = {
        let list: Value = app.get_as("/plugins", Some(&su)).await.json().await.expect("json");
        let found = list.as_array().expect("list").iter().find(|p| p["version"] == "1.1.5").cloned().expect("listed");
        found["id"].as_str().expect("id").to_owned()
    };
    assert_eq!(app.delete_as(&format!("/plugins/{hostile_id}"), Some(&su)).await.status(), 204);

    // With rerender_on_upgrade, registering what a variant resolves to syncs by itself.
    let on = app.put_json(&path, Some(&t.token), &json!({"settings": settings(40, true)})).await;
    let on: Value = on.json().await.expect("json");
    assert_eq!(on["settings"]["rerender_on_upgrade"], true, "{on}");
    assert_eq!(register(&app, &su, Some(sepia()), Some("sepia"), Some("1.2.0")).await.status(), 201);
    assert!(drain(&app).await >= 3, "the project's sync and one job per image ran");
    for id in &ids {
        let f = file(&app, &t, id).await;
        assert_eq!(f["variants"]["toned"]["plugin"]["version"], "1.2.0", "{f}");
        assert_eq!(f["variants"]["toned"]["plugin"]["sha256"], sha(&sepia()));
    }
}

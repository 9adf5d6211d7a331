//! Projects, settings, API keys, the ProjectKey extractor and GET /jobs, with the cross-tenant matrix.

use bytes::Bytes;
use mbk_host::db::jobs;
use mbk_host::db::status::JobStatus;
use mbk_host::db::users::Role;
use mbk_host::storage::BlobKey;
use serde_json::{Value, json};

use crate::helpers::{DbKind, StoreKind, TestApp, assert_error, db_tests};

db_tests!(
    a_project_gets_the_default_variants,
    settings_are_validated_field_by_field,
    projects_are_listed_per_owner,
    update_renames_and_replaces_settings,
    soft_delete_hides_the_project_and_stops_its_keys,
    permanent_delete_removes_every_blob_and_row,
    every_project_and_key_route_hides_other_tenants,
    api_key_lifecycle,
    jobs_are_listed_per_key,
);

async fn app(db: DbKind) -> TestApp {
    TestApp::spawn(db, StoreKind::Filesystem).await
}

async fn a_project_gets_the_default_variants(db: DbKind) {
    let app = app(db).await;
    let (uid, token) = app.user_with_token("uma", Role::User).await;
    let project = app.create_project(&token, "  My Shiny App! ").await;
    assert_eq!(project["name"], "My Shiny App!");
    assert_eq!(project["slug"], "my-shiny-app");
    assert_eq!(project["owner_id"], uid.to_string());
    assert!(uuid::Uuid::parse_str(project["id"].as_str().expect("id")).is_ok_and(|id| id.get_version_num() == 7));
    assert!(project["created_at"].is_string() && project["updated_at"].is_string());
    assert_eq!(
        project["settings"],
        json!({"variants": [
            {"name": "thumbnail", "width": 150, "height": 150, "fit": "cover", "format": "webp", "quality": 80, "plugin": "mbk-standard", "params": {}},
            {"name": "medium", "width": 800, "height": null, "fit": "contain", "format": "webp", "quality": 80, "plugin": "mbk-standard", "params": {}}],
         "quotas": {"max_file_bytes": 26214400, "max_total_bytes": null, "max_files": null}})
    );
    let fetched: Value = app
        .get_as(&format!("/projects/{}", project["id"].as_str().expect("id")), Some(&token))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(fetched, project);
}

async fn settings_are_validated_field_by_field(db: DbKind) {
    let app = app(db).await;
    let (_, token) = app.user_with_token("uma", Role::User).await;
    let example = json!({"name": "example", "settings": {"variants": [
        {"name": "thumbnail", "width": 150, "height": 150, "fit": "cover", "format": "webp", "quality": 80},
        {"name": "large", "width": 1600, "height": null, "fit": "contain", "format": "avif", "quality": 60, "plugin": "mbk-standard", "params": {}}],
        "quotas": {"max_file_bytes": 26214400, "max_total_bytes": null, "max_files": null}}});
    let response = app.post_json("/projects", Some(&token), &example).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["settings"]["variants"][1]["format"], "avif");
    assert_eq!(body["settings"]["variants"][0]["plugin"], "mbk-standard");

    let variant = |patch: Value| {
        let mut v = json!({"name": "v", "width": 10, "height": 10, "fit": "stretch", "format": "png", "quality": 90});
        for (k, val) in patch.as_object().expect("object") {
            v[k] = val.clone();
        }
        v
    };
    let three = |third: Value| json!({"name": "p", "settings": {"variants": [variant(json!({"name": "a"})), variant(json!({"name": "b"})), third]}});
    let cases = [
        (three(variant(json!({"quality": 0}))), "settings.variants[2].quality"),
        (three(variant(json!({"quality": 101}))), "settings.variants[2].quality"),
        (three(variant(json!({"width": 8193}))), "settings.variants[2].width"),
        (three(variant(json!({"width": null, "height": null, "fit": "contain"}))), "settings.variants[2].width"),
        (three(variant(json!({"fit": "zoom"}))), "settings.variants[2].fit"),
        (three(variant(json!({"format": "bmp"}))), "settings.variants[2].format"),
        (three(variant(json!({"name": "A"}))), "settings.variants[2].name"),
        (three(variant(json!({"name": "a"}))), "settings.variants[2].name"),
        (three(variant(json!({"plugin": "no-such-plugin"}))), "settings.variants[2].plugin"),
        (json!({"name": "p", "settings": {"quotas": {"max_total_bytes": 0}}}), "settings.quotas.max_total_bytes"),
        (json!({"name": "", "settings": null}), "name"),
        (json!({"settings": {}}), "name"),
    ];
    for (body, field) in cases {
        let message =
            assert_error(app.post_json("/projects", Some(&token), &body).await, 400, "validation_failed").await;
        assert!(message.starts_with(&format!("{field}: ")), "{body}: {message}");
    }
    let listed: Value = app.get_as("/projects", Some(&token)).await.json().await.expect("json");
    assert_eq!(listed["total"], 1, "nothing was created by the refused requests");
}

async fn projects_are_listed_per_owner(db: DbKind) {
    let app = app(db).await;
    let (_, su) = app.user_with_token("root", Role::Su).await;
    let (_, uma) = app.user_with_token("uma", Role::User).await;
    let (_, ada) = app.user_with_token("ada", Role::Admin).await;
    for i in 0..3 {
        app.create_project(&uma, &format!("uma {i}")).await;
    }
    app.create_project(&ada, "ada's").await;
    let mine: Value = app.get_as("/projects?per_page=2", Some(&uma)).await.json().await.expect("json");
    assert_eq!((mine["total"].as_i64(), mine["total_pages"].as_i64()), (Some(3), Some(2)));
    let names: Vec<&str> =
        mine["items"].as_array().expect("items").iter().map(|p| p["name"].as_str().expect("name")).collect();
    assert_eq!(names, ["uma 2", "uma 1"], "newest first");
    let all: Value = app.get_as("/projects", Some(&su)).await.json().await.expect("json");
    assert_eq!(all["total"], 4, "su sees every project");
    let admins: Value = app.get_as("/projects", Some(&ada)).await.json().await.expect("json");
    assert_eq!(admins["total"], 1, "admin sees only their own");
    assert_error(app.get_as("/projects?per_page=500", Some(&su)).await, 400, "validation_failed").await;
}

async fn update_renames_and_replaces_settings(db: DbKind) {
    let app = app(db).await;
    let (_, token) = app.user_with_token("uma", Role::User).await;
    let project = app.create_project(&token, "Old Name").await;
    let path = format!("/projects/{}", project["id"].as_str().expect("id"));

    let renamed: Value =
        app.put_json(&path, Some(&token), &json!({"name": "New Name"})).await.json().await.expect("json");
    assert_eq!(renamed["name"], "New Name");
    assert_eq!(renamed["slug"], "old-name", "the storage slug never changes");
    assert_eq!(renamed["settings"], project["settings"]);

    let settings = json!({"variants": [{"name": "square", "width": 64, "height": 64, "fit": "cover", "format": "jpeg", "quality": 70}]});
    let response = app.put_json(&path, Some(&token), &json!({"settings": settings})).await;
    assert_eq!(response.status(), 200);
    let updated: Value = response.json().await.expect("json");
    assert_eq!(updated["settings"]["variants"].as_array().map(Vec::len), Some(1));
    assert_eq!(updated["settings"]["variants"][0]["format"], "jpeg");
    assert_eq!(updated["settings"]["quotas"]["max_file_bytes"], 26214400);
    assert_eq!(updated["name"], "New Name");

    let bad = json!({"settings": {"variants": [{"name": "x", "width": 1, "height": 1, "fit": "cover", "format": "png", "quality": 500}]}});
    let message = assert_error(app.put_json(&path, Some(&token), &bad).await, 400, "validation_failed").await;
    assert!(message.starts_with("settings.variants[0].quality"), "{message}");
    let unchanged: Value = app.get_as(&path, Some(&token)).await.json().await.expect("json");
    assert_eq!(unchanged["settings"], updated["settings"], "a refused update changes nothing");
}

async fn soft_delete_hides_the_project_and_stops_its_keys(db: DbKind) {
    let app = app(db).await;
    let (_, token) = app.user_with_token("uma", Role::User).await;
    let (_, su) = app.user_with_token("root", Role::Su).await;
    let project = app.create_project(&token, "Doomed").await;
    let id = project["id"].as_str().expect("id");
    let (_, key) = app.create_key(&token, id).await;
    assert_eq!(app.get_with_key("/jobs", &key).await.status(), 200);

    assert_eq!(app.delete_as(&format!("/projects/{id}"), Some(&token)).await.status(), 204);
    assert_error(app.get_as(&format!("/projects/{id}"), Some(&token)).await, 404, "not_found").await;
    assert_error(app.get_as(&format!("/projects/{id}"), Some(&su)).await, 404, "not_found").await;
    assert_error(app.get_with_key("/jobs", &key).await, 401, "unauthorized").await;
    let listed: Value = app.get_as("/projects", Some(&su)).await.json().await.expect("json");
    assert_eq!(listed["total"], 0);
    assert_error(app.delete_as(&format!("/projects/{id}"), Some(&token)).await, 404, "not_found").await;
    assert_error(
        app.delete_as(&format!("/projects/{id}?permanent=maybe"), Some(&token)).await,
        400,
        "validation_failed",
    )
    .await;
}

async fn permanent_delete_removes_every_blob_and_row(db: DbKind) {
    for store in [StoreKind::Filesystem, StoreKind::S3] {
        let app = TestApp::spawn(db, store).await;
        let (_, token) = app.user_with_token("uma", Role::User).await;
        let doomed = app.create_project(&token, "Doomed").await;
        let kept = app.create_project(&token, "Kept").await;
        let prefix = |p: &Value| format!("{}-{}/", p["slug"].as_str().expect("slug"), p["id"].as_str().expect("id"));
        for (p, name) in [
            (&doomed, "files/a.bin"),
            (&doomed, "images/original/b.jpg"),
            (&doomed, "images/thumbnail/b.webp"),
            (&kept, "files/c.bin"),
        ] {
            let key = BlobKey::parse(&format!("{}{name}", prefix(p))).expect("key");
            app.store().put_bytes(&key, "application/octet-stream", Bytes::from_static(b"data")).await.expect("put");
        }
        let id = doomed["id"].as_str().expect("id");
        let (_, key) = app.create_key(&token, id).await;
        let job = jobs::insert(&app.state.db, Some(uuid::Uuid::parse_str(id).expect("uuid")), None, "process_image")
            .await
            .expect("job");

        assert_eq!(
            app.delete_as(&format!("/projects/{id}?permanent=true"), Some(&token)).await.status(),
            204,
            "{store:?}"
        );
        assert!(app.store().list(&prefix(&doomed)).await.expect("list").is_empty(), "{store:?}: blobs gone");
        assert_eq!(
            app.store().list(&prefix(&kept)).await.expect("list").len(),
            1,
            "{store:?}: other projects untouched"
        );
        assert!(jobs::find(&app.state.db, job.id).await.expect("query").is_none(), "rows gone");
        assert_error(app.get_with_key("/jobs", &key).await, 401, "unauthorized").await;
        assert_error(app.get_as(&format!("/projects/{id}"), Some(&token)).await, 404, "not_found").await;
    }
}

async fn every_project_and_key_route_hides_other_tenants(db: DbKind) {
    let app = app(db).await;
    let (_, owner) = app.user_with_token("owner", Role::User).await;
    let (_, other) = app.user_with_token("other", Role::User).await;
    let (_, admin) = app.user_with_token("admin", Role::Admin).await;
    let (_, su) = app.user_with_token("root", Role::Su).await;

    // (actor, expected status of a read) for each route; writes are checked to leave no trace.
    let actors: [(&str, Option<&str>, u16); 5] = [
        ("owner", Some(&owner), 200),
        ("su", Some(&su), 200),
        ("other", Some(&other), 404),
        ("admin", Some(&admin), 404),
        ("none", None, 401),
    ];
    for (who, token, expected) in actors {
        let project = app.create_project(&owner, &format!("p-{who}")).await;
        let id = project["id"].as_str().expect("id").to_owned();
        let (key_id, _) = app.create_key(&owner, &id).await;
        let ok = |status: u16, success: u16| {
            if expected == 200 { assert_eq!(status, success, "{who}") } else { assert_eq!(status, expected, "{who}") }
        };

        ok(app.get_as(&format!("/projects/{id}"), token).await.status().as_u16(), 200);
        ok(app.put_json(&format!("/projects/{id}"), token, &json!({"name": "renamed"})).await.status().as_u16(), 200);
        ok(app.get_as(&format!("/projects/{id}/keys"), token).await.status().as_u16(), 200);
        ok(app.post_json(&format!("/projects/{id}/keys"), token, &json!({"name": "k"})).await.status().as_u16(), 201);
        ok(
            app.patch_json(&format!("/projects/{id}/keys/{key_id}"), token, &json!({"enabled": false}))
                .await
                .status()
                .as_u16(),
            200,
        );
        ok(app.delete_as(&format!("/projects/{id}/keys/{key_id}"), token).await.status().as_u16(), 204);
        ok(app.delete_as(&format!("/projects/{id}"), token).await.status().as_u16(), 204);

        if expected != 200 {
            // Nothing changed: the owner still sees the project, its name, its key.
            let seen: Value = app.get_as(&format!("/projects/{id}"), Some(&owner)).await.json().await.expect("json");
            assert_eq!(seen["name"], format!("p-{who}"), "{who}");
            let keys: Value =
                app.get_as(&format!("/projects/{id}/keys"), Some(&owner)).await.json().await.expect("json");
            assert_eq!(keys["total"], 1, "{who}");
            assert_eq!(keys["items"][0]["enabled"], true, "{who}");
            let body = app.get_as(&format!("/projects/{id}"), token).await.text().await.expect("body");
            assert!(!body.contains(&format!("p-{who}")), "{who} learns nothing: {body}");
        }
    }
    // A key id of another project, under a project one owns: 404.
    let a = app.create_project(&owner, "a").await;
    let b = app.create_project(&other, "b").await;
    let (b_key, _) = app.create_key(&other, b["id"].as_str().expect("id")).await;
    let path = format!("/projects/{}/keys/{b_key}", a["id"].as_str().expect("id"));
    assert_error(app.patch_json(&path, Some(&owner), &json!({"enabled": false})).await, 404, "not_found").await;
    assert_error(app.delete_as(&path, Some(&owner)).await, 404, "not_found").await;
}

async fn api_key_lifecycle(db: DbKind) {
    let app = app(db).await;
    let (_, token) = app.user_with_token("uma", Role::User).await;
    let project = app.create_project(&token, "Keys").await;
    let id = project["id"].as_str().expect("id");

    let response = app.post_json(&format!("/projects/{id}/keys"), Some(&token), &json!({"name": "ci"})).await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.expect("json");
    let key = created["key"].as_str().expect("key shown once").to_owned();
    let key_id = created["id"].as_str().expect("id").to_owned();
    let prefix = created["prefix"].as_str().expect("prefix");
    assert!(key.starts_with(&format!("mbk_{prefix}_")) && key.len() >= 4 + 12 + 1 + 64, "{key}");
    assert_eq!((created["name"].as_str(), created["enabled"].as_bool()), (Some("ci"), Some(true)));

    let listed: Value = app.get_as(&format!("/projects/{id}/keys"), Some(&token)).await.json().await.expect("json");
    assert_eq!(listed["total"], 1);
    assert!(listed["items"][0].get("key").is_none(), "the secret is never listed");
    assert!(!listed.to_string().contains(&key[17..]), "no part of the secret is listed");
    assert!(listed["items"][0]["last_used_at"].is_null());

    let path = format!("/projects/{id}/keys/{key_id}");
    assert_eq!(app.get_with_key("/jobs", &key).await.status(), 200);
    let listed: Value = app.get_as(&format!("/projects/{id}/keys"), Some(&token)).await.json().await.expect("json");
    assert!(listed["items"][0]["last_used_at"].is_string(), "use is recorded");

    let disabled: Value =
        app.patch_json(&path, Some(&token), &json!({"enabled": false})).await.json().await.expect("json");
    assert_eq!(disabled["enabled"], false);
    assert_error(app.get_with_key("/jobs", &key).await, 401, "unauthorized").await;
    assert_eq!(app.patch_json(&path, Some(&token), &json!({"enabled": true})).await.status(), 200);
    assert_eq!(app.get_with_key("/jobs", &key).await.status(), 200, "re-enabled");
    assert_error(app.patch_json(&path, Some(&token), &json!({"enabled": "yes"})).await, 400, "validation_failed").await;

    // Forgeries: same prefix with another secret, malformed, missing.
    let forged = format!("{}{}", &key[..key.len() - 1], if key.ends_with('0') { '1' } else { '0' });
    for bad in [forged.as_str(), "mbk_nope", "", "Bearer x"] {
        assert_error(app.get_with_key("/jobs", bad).await, 401, "unauthorized").await;
    }
    assert_error(app.get("/jobs").await, 401, "unauthorized").await;

    assert_eq!(app.delete_as(&path, Some(&token)).await.status(), 204);
    assert_error(app.get_with_key("/jobs", &key).await, 401, "unauthorized").await;
    assert_error(app.delete_as(&path, Some(&token)).await, 404, "not_found").await;
    assert_error(
        app.post_json(&format!("/projects/{id}/keys"), Some(&token), &json!({"name": ""})).await,
        400,
        "validation_failed",
    )
    .await;
}

async fn jobs_are_listed_per_key(db: DbKind) {
    let app = app(db).await;
    let (_, token) = app.user_with_token("uma", Role::User).await;
    let mine = app.create_project(&token, "mine").await;
    let theirs = app.create_project(&token, "theirs").await;
    let pid = |p: &Value| uuid::Uuid::parse_str(p["id"].as_str().expect("id")).expect("uuid");
    let mut made = Vec::new();
    for kind in ["process_image", "process_image", "sync_project_variants"] {
        made.push(jobs::insert(&app.state.db, Some(pid(&mine)), None, kind).await.expect("insert"));
    }
    jobs::set_status(&app.state.db, made[0].id, JobStatus::Failed, 1, Some("undecodable image")).await.expect("update");
    jobs::insert(&app.state.db, Some(pid(&theirs)), None, "process_image").await.expect("insert");
    let (_, key) = app.create_key(&token, mine["id"].as_str().expect("id")).await;

    let page: Value = app.get_with_key("/jobs", &key).await.json().await.expect("json");
    assert_eq!(page["total"], 3, "only the key's project");
    let ids: Vec<&str> =
        page["items"].as_array().expect("items").iter().map(|j| j["id"].as_str().expect("id")).collect();
    let expected: Vec<String> = made.iter().rev().map(|j| j.id.to_string()).collect();
    assert_eq!(ids, expected, "newest first");
    let job = &page["items"][2];
    assert_eq!(
        (job["kind"].as_str(), job["status"].as_str(), job["attempts"].as_i64()),
        (Some("process_image"), Some("failed"), Some(1))
    );
    assert_eq!(job["error"], "undecodable image");
    assert_eq!(job["project_id"], mine["id"]);

    let failed: Value = app.get_with_key("/jobs?status=failed", &key).await.json().await.expect("json");
    assert_eq!(failed["total"], 1);
    let pending: Value =
        app.get_with_key("/jobs?status=pending&per_page=1&page=2", &key).await.json().await.expect("json");
    assert_eq!((pending["total"].as_i64(), pending["items"].as_array().map(Vec::len)), (Some(2), Some(1)));
    let message = assert_error(app.get_with_key("/jobs?status=done", &key).await, 400, "validation_failed").await;
    assert!(message.starts_with("status"), "{message}");
    assert_error(app.get_with_key("/jobs?per_page=0", &key).await, 400, "validation_failed").await;
}

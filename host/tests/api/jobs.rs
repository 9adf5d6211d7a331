//! Jobs end to end: an uploaded photo gets its variants through the queue and a worker, on both
//! databases and both stores. Tests drain the queue with [`drain`] (run until nothing is
//! runnable), never by sleeping.

use mbk_host::jobs::process_image::{self, Outcome};
use serde_json::{Value, json};

use crate::helpers::{DbKind, StoreKind, TestApp, drain, fixture, matrix_tests, renderer};

matrix_tests!(
    an_upload_gets_every_variant_at_its_exact_size,
    a_rerun_changes_nothing,
    an_undecodable_image_fails_its_variants,
    an_avif_upload_with_alpha_gets_its_variants
);

/// Uploads, drains the queue (exactly the upload's job runs), and returns the file id and the
/// job as `GET /jobs` shows it.
async fn upload_and_process(app: &TestApp, key: &str, name: &str, data: Vec<u8>) -> (String, Value) {
    let response = app.upload("/upload/image", key, name, data).await;
    assert_eq!(response.status(), 201);
    let file: Value = response.json().await.expect("json");
    let id = file["id"].as_str().expect("id").to_owned();
    let pending: Value = app.get_with_key("/jobs?status=pending", key).await.json().await.expect("json");
    assert!(
        pending["items"].as_array().expect("items").iter().any(|j| j["id"] == file["job_id"]),
        "the upload enqueued its job: {pending}"
    );
    assert_eq!(drain(app).await, 1, "one job ran");
    let jobs: Value = app.get_with_key("/jobs", key).await.json().await.expect("json");
    let job = jobs["items"].as_array().expect("items").iter().find(|j| j["id"] == file["job_id"]).expect("job").clone();
    assert_eq!(job["file_id"], file["id"]);
    assert_eq!(job["kind"], "process_image");
    (id, job)
}

/// Dimensions from an encoded image's header.
fn dims(bytes: &[u8]) -> (usize, usize) {
    let size = imagesize::blob_size(bytes).expect("an image");
    (size.width, size.height)
}

async fn content(app: &TestApp, store: StoreKind, key: &str, id: &str, variant: &str) -> Vec<u8> {
    let response = app.get_with_key(&format!("/files/{id}/content?variant={variant}"), key).await;
    let response = match store {
        StoreKind::Filesystem => response,
        StoreKind::S3 => {
            reqwest::get(response.headers()["location"].to_str().expect("ascii")).await.expect("presigned")
        }
    };
    assert_eq!(response.status(), 200, "{variant}");
    response.bytes().await.expect("bytes").to_vec()
}

async fn an_upload_gets_every_variant_at_its_exact_size(db: DbKind, store: StoreKind) {
    let app = TestApp::spawn(db, store).await;
    let settings = json!({"variants": [
        {"name": "thumbnail", "width": 150, "height": 150, "fit": "cover", "format": "webp", "quality": 80},
        {"name": "medium", "width": 800, "height": null, "fit": "contain", "format": "webp", "quality": 80},
        {"name": "huge", "width": 4000, "height": 4000, "fit": "contain", "format": "jpeg", "quality": 80},
        {"name": "band", "width": 300, "height": 50, "fit": "stretch", "format": "png", "quality": 80},
        {"name": "small-avif", "width": 120, "height": 90, "fit": "cover", "format": "avif", "quality": 50}]});
    let t = app.project_with_key(settings).await;
    let (id, job) = upload_and_process(&app, &t.key, "rotated.jpg", fixture("photo-rotated.jpg")).await;
    assert_eq!((&job["status"], &job["attempts"], &job["error"]), (&json!("completed"), &json!(1), &Value::Null));

    let file: Value = app.get_with_key(&format!("/files/{id}"), &t.key).await.json().await.expect("json");
    assert_eq!(file["status"], "ready");
    // The photo is 1203x1600 upright (EXIF orientation 6).
    let expected = [
        ("thumbnail", 150, 150),
        ("medium", 800, 1064),
        ("huge", 1203, 1600),
        ("band", 300, 50),
        ("small-avif", 120, 90),
    ];
    for (name, w, h) in expected {
        let v = &file["variants"][name];
        assert_eq!(v["status"], "ready", "{name}: {v}");
        assert_eq!(
            (v["width"].as_u64(), v["height"].as_u64()),
            (Some(w), Some(h)),
            "{name}: contain never upscales, cover/stretch exact"
        );
        let bytes = content(&app, store, &t.key, &id, name).await;
        assert_eq!(v["size"].as_u64(), Some(bytes.len() as u64), "{name}");
        assert_eq!(dims(&bytes), (w as usize, h as usize), "{name}: the stored bytes have the size the row says");
        let magic_ok = match v["format"].as_str().expect("format") {
            "webp" => &bytes[8..12] == b"WEBP",
            "jpeg" => bytes.starts_with(&[0xFF, 0xD8]),
            "png" => bytes.starts_with(b"\x89PNG"),
            "avif" => &bytes[4..8] == b"ftyp",
            other => panic!("{other}"),
        };
        assert!(magic_ok, "{name}: the format asked for");
        if store == StoreKind::Filesystem {
            let public = reqwest::get(v["url"].as_str().expect("url")).await.expect("public");
            assert_eq!(public.bytes().await.expect("bytes").len(), bytes.len(), "{name}: served at its public URL");
        }
    }
}

async fn a_rerun_changes_nothing(db: DbKind, store: StoreKind) {
    let app = TestApp::spawn(db, store).await;
    let t = app.project_with_key(Value::Null).await;
    let (id, job) = upload_and_process(&app, &t.key, "p.jpg", fixture("photo.jpg")).await;
    assert_eq!(job["status"], "completed");
    let before: Value = app.get_with_key(&format!("/files/{id}"), &t.key).await.json().await.expect("json");
    let objects_before = app.store().list(&t.prefix).await.expect("list");
    let again =
        process_image::run(&app.state, &renderer(), uuid::Uuid::parse_str(&id).expect("uuid")).await.expect("runs");
    assert_eq!(again, Outcome::Settled { rendered: 0, failed: 0, reason: None }, "nothing left to do");
    let after: Value = app.get_with_key(&format!("/files/{id}"), &t.key).await.json().await.expect("json");
    assert_eq!(after["variants"], before["variants"]);
    let objects_after = app.store().list(&t.prefix).await.expect("list");
    assert_eq!(objects_after.len(), 3, "the original and two variants");
    assert_eq!(
        objects_after.iter().map(|o| (&o.key, o.size)).collect::<Vec<_>>(),
        objects_before.iter().map(|o| (&o.key, o.size)).collect::<Vec<_>>()
    );
    // A job for a deleted file is simply done.
    assert_eq!(app.delete_as(&format!("/files/{id}"), Some(&t.token)).await.status(), 204);
    assert_eq!(
        process_image::run(&app.state, &renderer(), uuid::Uuid::parse_str(&id).expect("uuid")).await.expect("runs"),
        Outcome::Gone
    );
}

async fn an_undecodable_image_fails_its_variants(db: DbKind, store: StoreKind) {
    let app = TestApp::spawn(db, store).await;
    let t = app.project_with_key(Value::Null).await;
    // A real JPEG header (so the upload accepts it) with the picture cut off after 2 KiB.
    let (id, job) = upload_and_process(&app, &t.key, "cut.jpg", fixture("photo.jpg")[..2048].to_vec()).await;
    assert_eq!(job["status"], "failed", "an undecodable image fails at once: {job}");
    assert_eq!(job["attempts"], 1, "no retry for a permanent failure");
    assert!(job["error"].as_str().is_some_and(|e| e.contains("2 variant(s) failed") && e.contains("JPEG")), "{job}");
    let failed: Value = app.get_with_key("/jobs?status=failed", &t.key).await.json().await.expect("json");
    assert_eq!(failed["total"], 1);
    let file: Value = app.get_with_key(&format!("/files/{id}"), &t.key).await.json().await.expect("json");
    assert_eq!(file["status"], "failed");
    for name in ["thumbnail", "medium"] {
        assert_eq!(file["variants"][name]["status"], "failed");
        assert!(
            file["variants"][name]["error"].as_str().is_some_and(|e| e.contains("JPEG")),
            "{}",
            file["variants"][name]
        );
    }
    assert_eq!(app.store().list(&t.prefix).await.expect("list").len(), 1, "only the original is stored");
}

mod admin {
    use mbk_host::db::jobs;
    use mbk_host::db::status::JobStatus;
    use mbk_host::db::users::Role;
    use serde_json::Value;

    use crate::helpers::{DbKind, StoreKind, TestApp, assert_error, db_tests};

    db_tests!(admin_jobs_group_by_project_and_follow_the_role_matrix, owners_list_their_projects_jobs_with_a_token);

    async fn admin_jobs_group_by_project_and_follow_the_role_matrix(db: DbKind) {
        let app = TestApp::spawn(db, StoreKind::Filesystem).await;
        let (_, su) = app.user_with_token("root", Role::Su).await;
        let (_, ada) = app.user_with_token("ada", Role::Admin).await;
        let (_, uma) = app.user_with_token("uma", Role::User).await;
        let ada_project = app.create_project(&ada, "ada's").await;
        let uma_project = app.create_project(&uma, "uma's").await;
        let pid = |p: &Value| uuid::Uuid::parse_str(p["id"].as_str().expect("id")).expect("uuid");
        for _ in 0..3 {
            jobs::insert(&app.state.db, Some(pid(&ada_project)), None, "process_image").await.expect("job");
        }
        let failed =
            jobs::insert(&app.state.db, Some(pid(&ada_project)), None, "sync_project_variants").await.expect("job");
        jobs::set_status(&app.state.db, failed.id, JobStatus::Failed, 3, Some("storage unreachable"))
            .await
            .expect("update");
        jobs::insert(&app.state.db, Some(pid(&uma_project)), None, "process_image").await.expect("job");

        let all: Value = app.get_as("/admin/jobs", Some(&su)).await.json().await.expect("json");
        let groups = all["projects"].as_array().expect("projects");
        assert_eq!(groups.len(), 2, "su sees every project");
        let ada_group = groups.iter().find(|g| g["project_id"] == ada_project["id"]).expect("ada's group");
        assert_eq!(ada_group["project_name"], "ada's");
        assert_eq!(
            (ada_group["jobs"]["total"].as_i64(), ada_group["jobs"]["items"].as_array().map(Vec::len)),
            (Some(4), Some(4))
        );
        assert_eq!(ada_group["jobs"]["items"][0]["id"], failed.id.to_string(), "newest first");

        let own: Value =
            app.get_as("/admin/jobs?status=pending&per_page=2&page=2", Some(&ada)).await.json().await.expect("json");
        let groups = own["projects"].as_array().expect("projects");
        assert_eq!(groups.len(), 1, "an admin sees only their own projects");
        let jobs = &groups[0]["jobs"];
        assert_eq!(
            (jobs["total"].as_i64(), jobs["page"].as_i64(), jobs["items"].as_array().map(Vec::len)),
            (Some(3), Some(2), Some(1))
        );
        let failed_only: Value = app.get_as("/admin/jobs?status=failed", Some(&ada)).await.json().await.expect("json");
        assert_eq!(failed_only["projects"][0]["jobs"]["items"][0]["error"], "storage unreachable");

        assert_error(app.get_as("/admin/jobs", Some(&uma)).await, 403, "forbidden").await;
        assert_error(app.get_as("/admin/jobs", None).await, 401, "unauthorized").await;
        assert_error(app.get_as("/admin/jobs", Some("junk")).await, 401, "unauthorized").await;
        assert_error(app.get_as("/admin/jobs?status=stuck", Some(&su)).await, 400, "validation_failed").await;
        assert_error(app.get_as("/admin/jobs?per_page=0", Some(&su)).await, 400, "validation_failed").await;
    }

    /// `GET /jobs?project_id=` with a user token (what the console shows a `user`, who has no
    /// `/admin/jobs`): the owner and su see the project's jobs; anyone else gets the same 404
    /// as for a project that does not exist.
    async fn owners_list_their_projects_jobs_with_a_token(db: DbKind) {
        let app = TestApp::spawn(db, StoreKind::Filesystem).await;
        let (_, su) = app.user_with_token("root", Role::Su).await;
        let (_, uma) = app.user_with_token("uma", Role::User).await;
        let (_, eve) = app.user_with_token("eve", Role::User).await;
        let project = app.create_project(&uma, "uma's").await;
        let id = project["id"].as_str().expect("id").to_owned();
        let pid = uuid::Uuid::parse_str(&id).expect("uuid");
        jobs::insert(&app.state.db, Some(pid), None, "process_image").await.expect("job");
        let done = jobs::insert(&app.state.db, Some(pid), None, "sync_project_variants").await.expect("job");
        jobs::set_status(&app.state.db, done.id, JobStatus::Completed, 1, None).await.expect("update");

        for token in [&uma, &su] {
            let listed: Value =
                app.get_as(&format!("/jobs?project_id={id}"), Some(token)).await.json().await.expect("json");
            assert_eq!(listed["total"], 2, "{listed}");
            assert_eq!(listed["items"][0]["id"], done.id.to_string(), "newest first");
        }
        let completed: Value = app
            .get_as(&format!("/jobs?project_id={id}&status=completed"), Some(&uma))
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(completed["total"], 1);
        assert_error(app.get_as(&format!("/jobs?project_id={id}"), Some(&eve)).await, 404, "not_found").await;
        let nobody = uuid::Uuid::now_v7();
        assert_error(app.get_as(&format!("/jobs?project_id={nobody}"), Some(&uma)).await, 404, "not_found").await;
        assert_error(app.get_as("/jobs", Some(&uma)).await, 400, "validation_failed").await;
        assert_error(app.get_as("/jobs?project_id=nope", Some(&uma)).await, 400, "validation_failed").await;
        assert_error(app.get_as(&format!("/jobs?project_id={id}"), None).await, 401, "unauthorized").await;
    }
}

mod sync {
    use mbk_host::jobs::process_image::Outcome;
    use mbk_host::jobs::sync_file_variants;
    use serde_json::{Value, json};

    use crate::helpers::{DbKind, StoreKind, TestApp, assert_error, drain, fixture, matrix_tests, renderer};

    matrix_tests!(sync_adds_and_removes_variants);

    async fn sync_adds_and_removes_variants(db: DbKind, store: StoreKind) {
        let app = TestApp::spawn(db, store).await;
        let t = app.project_with_key(Value::Null).await;
        let (id, _) = super::upload_and_process(&app, &t.key, "p.jpg", fixture("photo.jpg")).await;
        let medium_key = format!("{}images/medium/{id}.webp", t.prefix);
        assert!(app.store().list(&t.prefix).await.expect("list").iter().any(|o| o.key == medium_key));

        // New settings: medium is gone, thumbnail becomes AVIF, square is new.
        let settings = json!({"variants": [
            {"name": "thumbnail", "width": 150, "height": 150, "fit": "cover", "format": "avif", "quality": 60},
            {"name": "square", "width": 64, "height": 64, "fit": "cover", "format": "png", "quality": 90}]});
        let path = format!("/projects/{}", t.project_id);
        assert_eq!(app.put_json(&path, Some(&t.token), &json!({"settings": settings})).await.status(), 200);
        let accepted = app.post_json(&format!("{path}/sync-variants"), Some(&t.token), &json!({})).await;
        assert_eq!(accepted.status(), 202);
        let job_id = accepted.json::<Value>().await.expect("json")["job_id"].as_str().expect("job_id").to_owned();
        let jobs: Value = app.get_with_key("/jobs?status=pending", &t.key).await.json().await.expect("json");
        assert!(
            jobs["items"]
                .as_array()
                .expect("items")
                .iter()
                .any(|j| j["id"] == job_id.as_str() && j["kind"] == "sync_project_variants")
        );

        // Drain: the project job fans out one file job per image, which the worker runs too.
        assert_eq!(drain(&app).await, 2, "the project job, then one file job");
        let jobs: Value = app.get_with_key("/jobs", &t.key).await.json().await.expect("json");
        let kinds: Vec<(&str, &str)> = jobs["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|j| (j["kind"].as_str().expect("kind"), j["status"].as_str().expect("status")))
            .collect();
        assert_eq!(
            kinds,
            [
                ("sync_file_variants", "completed"),
                ("sync_project_variants", "completed"),
                ("process_image", "completed")
            ],
            "newest first"
        );
        assert_eq!(jobs["items"][0]["file_id"], id.as_str());

        let file: Value = app.get_with_key(&format!("/files/{id}"), &t.key).await.json().await.expect("json");
        let names: Vec<&String> = file["variants"].as_object().expect("variants").keys().collect();
        assert_eq!(names, ["square", "thumbnail"]);
        assert_eq!(file["variants"]["thumbnail"]["format"], "avif");
        assert_eq!(file["variants"]["thumbnail"]["status"], "ready");
        assert_eq!(
            (file["variants"]["square"]["width"].as_u64(), file["variants"]["square"]["status"].as_str()),
            (Some(64), Some("ready"))
        );
        let keys: Vec<String> = app.store().list(&t.prefix).await.expect("list").into_iter().map(|o| o.key).collect();
        assert_eq!(keys.len(), 3, "original + two variants, nothing else: {keys:?}");
        assert!(!keys.contains(&medium_key), "the removed variant's blob is gone");
        // A second sync changes nothing.
        let again = sync_file_variants::run(&app.state, &renderer(), uuid::Uuid::parse_str(&id).expect("uuid"))
            .await
            .expect("runs")
            .expect("file");
        assert_eq!(
            (again.removed, again.added, again.render),
            (0, 0, Outcome::Settled { rendered: 0, failed: 0, reason: None })
        );
        // Other tenants cannot ask for a sync.
        let other = app.project_with_key(Value::Null).await;
        assert_error(
            app.post_json(&format!("{path}/sync-variants"), Some(&other.token), &json!({})).await,
            404,
            "not_found",
        )
        .await;
    }
}

async fn an_avif_upload_with_alpha_gets_its_variants(db: DbKind, store: StoreKind) {
    let app = TestApp::spawn(db, store).await;
    let settings = json!({"variants": [
        {"name": "thumbnail", "width": 150, "height": 150, "fit": "cover", "format": "webp", "quality": 80},
        {"name": "cut-out", "width": 400, "height": null, "fit": "contain", "format": "png", "quality": 80}]});
    let t = app.project_with_key(settings).await;
    let (id, job) = upload_and_process(&app, &t.key, "logo.avif", fixture("alpha.avif")).await;
    assert_eq!((&job["status"], &job["error"]), (&json!("completed"), &Value::Null), "{job}");
    let file: Value = app.get_with_key(&format!("/files/{id}"), &t.key).await.json().await.expect("json");
    assert_eq!((&file["status"], &file["mime_type"]), (&json!("ready"), &json!("image/avif")));
    assert_eq!(dims(&content(&app, store, &t.key, &id, "thumbnail").await), (150, 150));
    let png = content(&app, store, &t.key, &id, "cut-out").await;
    let png = image::load_from_memory(&png).expect("a PNG").to_rgba8();
    assert_eq!(png.dimensions(), (400, 224), "2140x1200 contained in 400 wide");
    // The wallpaper is translucent (alpha 0 at the corner, 80 in the middle, 122 at most): kept so.
    assert!(png.get_pixel(0, 0).0[3] < 16, "corner alpha {:?}", png.get_pixel(0, 0));
    let middle = png.get_pixel(200, 112).0[3];
    assert!((60..=100).contains(&middle), "middle alpha {middle}");
    let most = png.pixels().map(|p| p.0[3]).max().expect("pixels");
    assert!((100..=140).contains(&most), "highest alpha {most}: neither flattened nor lost");
}

mod corrupt_settings {
    use mbk_host::jobs::process_image::{self, CORRUPT_SETTINGS, Outcome};
    use serde_json::Value;

    use crate::helpers::{DbKind, StoreKind, TestApp, db_tests, fixture, renderer};

    db_tests!(corrupt_settings_fail_the_variants_instead_of_vanishing);

    /// Stored settings that no longer parse are an error the tenant sees on the variants (and
    /// the job fails), never a job that quietly completes with nothing rendered.
    async fn corrupt_settings_fail_the_variants_instead_of_vanishing(db: DbKind) {
        let app = TestApp::spawn(db, StoreKind::Filesystem).await;
        let t = app.project_with_key(Value::Null).await;
        let response = app.upload("/upload/image", &t.key, "p.jpg", fixture("photo.jpg")).await;
        assert_eq!(response.status(), 201);
        let file: Value = response.json().await.expect("json");
        let file_id = uuid::Uuid::parse_str(file["id"].as_str().expect("id")).expect("uuid");
        let project_id = uuid::Uuid::parse_str(&t.project_id).expect("uuid");
        // Valid JSON (PostgreSQL stores JSONB) of the wrong shape.
        mbk_host::dispatch!(&app.state.db, |pool| sqlx::query(
            "UPDATE projects SET settings = '{\"variants\": 7}' WHERE id = $1"
        )
        .bind(project_id)
        .execute(pool)
        .await
        .map(|_| ()))
        .expect("corrupt the settings");

        let ran = process_image::run(&app.state, &renderer(), file_id).await.expect("runs");
        let Outcome::Settled { rendered: 0, failed, reason: Some(reason) } = ran else { panic!("{ran:?}") };
        assert!(failed > 0, "the pending variants failed");
        assert_eq!(reason, CORRUPT_SETTINGS);
        let variants = mbk_host::db::files::variants_of(&app.state.db, file_id).await.expect("variants");
        assert!(!variants.is_empty());
        for v in &variants {
            assert_eq!(v.status.as_str(), "failed", "{v:?}");
            assert_eq!(v.error.as_deref(), Some(CORRUPT_SETTINGS), "{v:?}");
        }
    }
}

//! Where `cover` crops are taken, through the API and the wasm engine: `attention` keeps a
//! small, high-contrast subject off to one side where a centred crop cuts it; `focal` follows
//! the point `PATCH /files/{id}` sets, re-rendering only the variants it moves. On both
//! databases.

use serde_json::{Value, json};

use crate::helpers::{DbKind, StoreKind, TestApp, assert_error, db_tests, drain};

db_tests!(attention_and_focal_points_move_the_crop, patching_a_focal_point_is_checked);

const SUBJECT: [u8; 3] = [220, 20, 30];

/// A 1200x400 photo-like gradient with a red-and-white checked subject, 100 px square, at
/// x 80..180: far outside a centred 400x400 crop (x 400..800).
fn scene() -> Vec<u8> {
    let image = image::RgbImage::from_fn(1200, 400, |x, y| {
        let inside = (80..180).contains(&x) && (150..250).contains(&y);
        image::Rgb(match inside {
            true if (x / 10 + y / 10) % 2 == 0 => SUBJECT,
            true => [255, 255, 255],
            false => [(90 + x * 50 / 1200) as u8, (110 + y * 30 / 400) as u8, 120],
        })
    });
    let mut png = Vec::new();
    image.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).expect("encode");
    png
}

/// How many pixels of variant `name` are (nearly) the subject's red.
async fn subject_pixels(app: &TestApp, key: &str, id: &str, name: &str) -> usize {
    let content = app.get_with_key(&format!("/files/{id}/content?variant={name}"), key).await;
    assert_eq!(content.status(), 200, "{name}");
    let image = image::load_from_memory(&content.bytes().await.expect("bytes")).expect("a PNG").to_rgb8();
    assert_eq!(image.dimensions(), (200, 200), "{name}");
    image.pixels().filter(|p| p.0.iter().zip(SUBJECT).all(|(a, b)| a.abs_diff(b) < 40)).count()
}

async fn attention_and_focal_points_move_the_crop(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let variant = |name: &str, gravity: &str| json!({"name": name, "width": 200, "height": 200, "fit": "cover", "format": "png", "quality": 100, "gravity": gravity});
    let variants = json!([
        variant("centre", "centre"),
        variant("attention", "attention"),
        variant("focal", "focal"),
        {"name": "whole", "width": 300, "height": null, "fit": "contain", "format": "png", "quality": 100, "gravity": "focal"},
    ]);
    let tenant = app.project_with_key(json!({"variants": variants})).await;
    let project: Value =
        app.get_as(&format!("/projects/{}", tenant.project_id), Some(&tenant.token)).await.json().await.expect("json");
    assert_eq!(project["settings"]["variants"][1]["gravity"], json!("attention"), "{project}");
    assert!(project["settings"]["variants"][0].get("gravity").is_none(), "centre is the default, not shown");

    let made = app.upload("/upload/image", &tenant.key, "scene.png", scene()).await;
    assert_eq!(made.status(), 201);
    let id = made.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_owned();
    drain(&app).await;

    // The subject's 100x100 px are 50x50 in a 200x200 render of a 400x400 crop: about 1,250 red.
    assert_eq!(subject_pixels(&app, &tenant.key, &id, "centre").await, 0, "a centred crop cuts the subject");
    let kept = subject_pixels(&app, &tenant.key, &id, "attention").await;
    assert!(kept > 1000, "attention keeps the subject: {kept} red pixels");
    assert_eq!(subject_pixels(&app, &tenant.key, &id, "focal").await, 0, "no focal point yet: centred");

    // A focal point on the subject: the focal crop moves there, and nothing else is rendered.
    let before: Value = app.get_with_key(&format!("/files/{id}"), &tenant.key).await.json().await.expect("json");
    let patched = app
        .patch_json(&format!("/files/{id}"), Some(&tenant.token), &json!({"focal_point": {"x": 0.1, "y": 0.5}}))
        .await;
    assert_eq!(patched.status(), 200);
    let patched: Value = patched.json().await.expect("json");
    assert_eq!(patched["focal_point"], json!({"x": 0.1, "y": 0.5}), "{patched}");
    assert!(patched["job_id"].is_string(), "a re-render was queued: {patched}");
    drain(&app).await;
    let jobs: Value = app.get_with_key("/jobs?per_page=100", &tenant.key).await.json().await.expect("json");
    let job = jobs["items"].as_array().expect("items").iter().find(|j| j["id"] == patched["job_id"]).expect("listed");
    assert_eq!(job["status"], json!("completed"), "{job}");
    assert_eq!(
        (&job["report"]["rerendered"], &job["report"]["unchanged"]),
        (&json!(1), &json!(3)),
        "only the focal crop: {job}"
    );
    let after: Value = app.get_with_key(&format!("/files/{id}"), &tenant.key).await.json().await.expect("json");
    let kept = subject_pixels(&app, &tenant.key, &id, "focal").await;
    assert!(kept > 1000, "the focal crop holds the subject now: {kept} red pixels");
    for unmoved in ["centre", "attention", "whole"] {
        assert_eq!(after["variants"][unmoved], before["variants"][unmoved], "{unmoved} was not rendered again");
    }
    assert_ne!(after["variants"]["focal"]["size"], before["variants"]["focal"]["size"]);

    // Cleared: centred again.
    let cleared = app.patch_json(&format!("/files/{id}"), Some(&tenant.token), &json!({"focal_point": null})).await;
    assert_eq!(cleared.status(), 200);
    assert_eq!(cleared.json::<Value>().await.expect("json")["focal_point"], Value::Null);
    drain(&app).await;
    assert_eq!(subject_pixels(&app, &tenant.key, &id, "focal").await, 0, "back to the middle");
}

async fn patching_a_focal_point_is_checked(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let tenant = app.project_with_key(Value::Null).await;
    let made = app.upload("/upload/image", &tenant.key, "scene.png", scene()).await;
    let id = made.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_owned();
    let path = format!("/files/{id}");
    let token = Some(tenant.token.as_str());

    for (body, field) in [
        (json!({"focal_point": {"x": 1.5, "y": 0.5}}), "focal_point.x"),
        (json!({"focal_point": {"x": 0.5, "y": -0.1}}), "focal_point.y"),
        (json!({}), "focal_point"),
    ] {
        let message = assert_error(app.patch_json(&path, token, &body).await, 400, "validation_failed").await;
        assert!(message.contains(field), "{body}: {message}");
    }
    assert_error(app.patch_json(&path, token, &json!({"focal_point": {"x": 0.5}})).await, 400, "validation_failed")
        .await;
    assert_error(app.patch_json(&path, token, &json!({"focal": {"x": 0.5, "y": 0.5}})).await, 400, "validation_failed")
        .await;

    // No re-render for a project without focal variants; another tenant sees nothing.
    let fine = app.patch_json(&path, token, &json!({"focal_point": {"x": 0.25, "y": 0.75}})).await;
    assert_eq!(fine.status(), 200);
    assert!(fine.json::<Value>().await.expect("json").get("job_id").is_none());
    let other = app.project_with_key(Value::Null).await;
    let theirs = app.patch_json(&path, Some(&other.token), &json!({"focal_point": {"x": 0.5, "y": 0.5}})).await;
    assert_error(theirs, 404, "not_found").await;

    let plain = app.upload("/upload/file", &tenant.key, "notes.txt", b"hello".to_vec()).await;
    let plain = plain.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_owned();
    let refused =
        app.patch_json(&format!("/files/{plain}"), token, &json!({"focal_point": {"x": 0.5, "y": 0.5}})).await;
    assert_error(refused, 400, "validation_failed").await;
}

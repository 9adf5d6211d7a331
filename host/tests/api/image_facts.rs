//! What an image is, in its File JSON, made by the wasm engine in the call that renders its
//! variants: placeholders that decode (with BlurHash's and ThumbHash's own decoders) to the
//! photo's colours, frames, and camera metadata written by a tool nobody here wrote
//! (`exiftool`, installed by `scripts/test`), GPS only for a project that keeps it, and no
//! metadata in any variant. On both databases.

use std::process::Command;

use base64::Engine;
use serde_json::{Value, json};

use crate::helpers::{DbKind, StoreKind, TestApp, db_tests, drain, fixture};

db_tests!(placeholders_frames_and_metadata, gps_only_where_kept, a_sync_analyses_images_from_before);

/// `photo.jpg` with a camera's EXIF, written by exiftool.
fn camera_photo() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("IMG_4321.jpg");
    std::fs::write(&path, fixture("photo.jpg")).expect("write");
    let status = Command::new("exiftool")
        .args([
            "-q",
            "-overwrite_original",
            "-Make=Canon",
            "-Model=Canon EOS R5",
            "-LensModel=RF24-105mm F4 L IS USM",
            "-DateTimeOriginal=2024:05:01 13:45:10",
            "-OffsetTimeOriginal=+02:00",
            "-ExposureTime=1/250",
            "-FNumber=4",
            "-ISO=200",
            "-FocalLength=50",
            "-GPSLatitude=52.520008",
            "-GPSLatitudeRef=N",
            "-GPSLongitude=13.404954",
            "-GPSLongitudeRef=E",
        ])
        .arg(&path)
        .status()
        .unwrap_or_else(|e| panic!("exiftool is not installed ({e}): scripts/test installs libimage-exiftool-perl"));
    assert!(status.success(), "exiftool failed");
    std::fs::read(&path).expect("read")
}

/// Per-channel mean of RGBA8 pixels.
fn mean(rgba: &[u8]) -> [f64; 3] {
    let n = (rgba.len() / 4) as f64;
    let mut m = [0.0; 3];
    for p in rgba.chunks_exact(4) {
        for (c, v) in m.iter_mut().zip(p) {
            *c += f64::from(*v) / n;
        }
    }
    m
}

async fn ready_file(app: &TestApp, key: &str, name: &str, bytes: Vec<u8>) -> Value {
    let made = app.upload("/upload/image", key, name, bytes).await;
    assert_eq!(made.status(), 201);
    let made: Value = made.json().await.expect("json");
    assert_eq!(made["blurhash"], Value::Null, "not analysed before its job: {made}");
    assert_eq!(made["focal_point"], Value::Null);
    drain(app).await;
    let id = made["id"].as_str().expect("id");
    let file: Value = app.get_with_key(&format!("/files/{id}"), key).await.json().await.expect("json");
    assert_eq!(file["status"], json!("ready"), "{file}");
    file
}

async fn placeholders_frames_and_metadata(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let tenant = app.project_with_key(Value::Null).await;
    let photo = camera_photo();
    let file = ready_file(&app, &tenant.key, "IMG_4321.jpg", photo.clone()).await;

    // The placeholders paint the photo's colours.
    let original = image::load_from_memory(&photo).expect("a JPEG").to_rgba8();
    let want = mean(original.as_raw());
    let thumbhash = base64::engine::general_purpose::STANDARD
        .decode(file["thumbhash"].as_str().expect("a thumbhash"))
        .expect("base64");
    let (tw, th, thumb) = thumbhash::thumb_hash_to_rgba(&thumbhash).expect("a ThumbHash");
    let ratio = tw as f64 / th as f64;
    assert!((ratio - 1600.0 / 1203.0).abs() < 0.15, "the ThumbHash keeps the ratio: {tw}x{th}");
    let blur = blurhash::decode(file["blurhash"].as_str().expect("a blurhash"), 32, 24, 1.0).expect("a BlurHash");
    for (name, got) in [("thumbhash", mean(&thumb)), ("blurhash", mean(&blur))] {
        for c in 0..3 {
            assert!((got[c] - want[c]).abs() < 16.0, "{name}: mean {got:?}, the photo's {want:?}");
        }
    }
    let dominant = file["dominant_color"].as_str().expect("a colour");
    assert!(dominant.len() == 7 && dominant.starts_with('#'), "{dominant}");
    assert_eq!((&file["animated"], &file["frames"]), (&json!(false), &json!(1)));

    // What the camera said, but not where.
    let metadata = &file["metadata"];
    assert_eq!(metadata["camera_make"], json!("Canon"), "{metadata}");
    assert_eq!(metadata["camera_model"], json!("Canon EOS R5"));
    assert_eq!(metadata["lens"], json!("RF24-105mm F4 L IS USM"));
    assert_eq!(metadata["taken_at"], json!("2024-05-01T13:45:10+02:00"));
    assert_eq!(metadata["exposure_time"], json!("1/250"));
    assert_eq!(
        (&metadata["f_number"], &metadata["iso"], &metadata["focal_length_mm"]),
        (&json!(4.0), &json!(200), &json!(50.0))
    );
    assert!(metadata.get("gps").is_none(), "no GPS without keep_gps: {metadata}");

    // Variants carry no metadata at all.
    let id = file["id"].as_str().expect("id");
    for name in ["thumbnail", "medium"] {
        let bytes = app.get_with_key(&format!("/files/{id}/content?variant={name}"), &tenant.key).await;
        let bytes = bytes.bytes().await.expect("bytes");
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("Exif") && !text.contains("Canon"), "{name} carries metadata");
    }

    // An animated GIF says so; a plain file has none of this.
    let gif = ready_file(&app, &tenant.key, "anim.gif", fixture("photo.gif")).await;
    assert_eq!((&gif["animated"], &gif["frames"]), (&json!(true), &json!(2)), "{gif}");
    let plain = app.upload("/upload/file", &tenant.key, "notes.txt", b"hello".to_vec()).await;
    let plain: Value = plain.json().await.expect("json");
    assert!(plain.get("blurhash").is_none() && plain.get("focal_point").is_none(), "{plain}");
}

async fn gps_only_where_kept(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let variants = json!([{"name": "t", "width": 64, "height": 64, "fit": "cover", "format": "webp", "quality": 70}]);
    let tenant = app.project_with_key(json!({"variants": variants, "keep_gps": true})).await;
    let file = ready_file(&app, &tenant.key, "IMG_4321.jpg", camera_photo()).await;
    let gps = &file["metadata"]["gps"];
    let coordinate = |name: &str| gps[name].as_f64().unwrap_or_else(|| panic!("no {name}: {file}"));
    let (lat, lon) = (coordinate("latitude"), coordinate("longitude"));
    assert!((lat - 52.520008).abs() < 1e-5 && (lon - 13.404954).abs() < 1e-5, "{gps}");
    let project: Value =
        app.get_as(&format!("/projects/{}", tenant.project_id), Some(&tenant.token)).await.json().await.expect("json");
    assert_eq!(project["settings"]["keep_gps"], json!(true), "the setting is shown: {project}");

    // Turned off: positions analysed before are hidden at once.
    let off = json!({"settings": {"variants": variants}});
    let updated = app.put_json(&format!("/projects/{}", tenant.project_id), Some(&tenant.token), &off).await;
    assert_eq!(updated.status(), 200);
    let path = format!("/files/{}", file["id"].as_str().expect("id"));
    let hidden: Value = app.get_with_key(&path, &tenant.key).await.json().await.expect("json");
    assert!(hidden["metadata"].get("gps").is_none(), "{hidden}");
    assert_eq!(hidden["metadata"]["camera_make"], json!("Canon"));
}

/// An image stored before analyses existed (its `analysis` NULL, as migration 0014 left every
/// row) gets one from the project's sync, though none of its variants changed.
async fn a_sync_analyses_images_from_before(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let tenant = app.project_with_key(Value::Null).await;
    let file = ready_file(&app, &tenant.key, "IMG_4321.jpg", camera_photo()).await;
    let id = file["id"].as_str().expect("id");
    assert!(file["blurhash"].is_string(), "{file}");
    let uuid: uuid::Uuid = id.parse().expect("uuid");
    mbk_host::dispatch!(&app.state.db, |pool| {
        sqlx::query("UPDATE files SET analysis = NULL WHERE id = $1").bind(uuid).execute(pool).await.map(|_| ())
    })
    .expect("forget the analysis");
    let before: Value = app.get_with_key(&format!("/files/{id}"), &tenant.key).await.json().await.expect("json");
    assert_eq!(before["blurhash"], Value::Null, "{before}");

    let sync =
        app.post_json(&format!("/projects/{}/sync-variants", tenant.project_id), Some(&tenant.token), &json!({})).await;
    assert_eq!(sync.status(), 202);
    let sync: Value = sync.json().await.expect("json");
    drain(&app).await;
    let jobs: Value = app.get_with_key("/jobs?per_page=100", &tenant.key).await.json().await.expect("json");
    let job = jobs["items"].as_array().expect("items").iter().find(|j| j["id"] == sync["job_id"]).expect("listed");
    assert_eq!((&job["report"]["rerendered"], &job["report"]["unchanged"]), (&json!(0), &json!(2)), "{job}");
    let after: Value = app.get_with_key(&format!("/files/{id}"), &tenant.key).await.json().await.expect("json");
    // Analysed again (from a smaller decode than the variants needed, so not bit for bit alike).
    assert!(after["blurhash"].is_string() && after["thumbhash"].is_string(), "{after}");
    assert_eq!(after["metadata"]["camera_model"], json!("Canon EOS R5"));
    assert_eq!(after["variants"], before["variants"], "nothing else was rendered");
}

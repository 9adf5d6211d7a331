//! JPEG XL input: files written by libjxl's own encoder (`cjxl`, Debian `libjxl-tools`, installed
//! by `scripts/test`) are accepted at `/upload/image` as `image/jxl` with their upright size read
//! from the header, and decoded inside the sandbox (jxl-oxide, in the standard component). A lossy
//! one renders to every output format at exact dimensions; lossy, lossless, alpha and turned
//! (codestream orientation 6) ones render to PNG within rounding of libjxl's own decode (`djxl`),
//! which also proves the orientation is applied once. On both databases.

use std::path::Path;

use serde_json::{Value, json};

use crate::decoder_checks::{assert_every_format, every_format_variants, run_tool};
use crate::helpers::{DbKind, StoreKind, TestApp, db_tests, drain, fixture};

db_tests!(jxl_from_libjxl_renders_to_every_format, lossless_alpha_and_turned_jxl_match_libjxl);

/// The fixture `source` encoded by cjxl with `options`, and libjxl's own decode of that file
/// (RGBA8, upright).
fn jxl_and_reference(dir: &Path, source: &str, options: &[&str]) -> (Vec<u8>, image::RgbaImage) {
    let path = |p: &Path| p.to_str().expect("utf-8").to_owned();
    let input = dir.join(source);
    std::fs::write(&input, fixture(source)).expect("write");
    let (jxl, png) = (dir.join(format!("{source}.jxl")), dir.join(format!("{source}.reference.png")));
    // From a JPEG's pixels (not its lossless transcoding, which would keep the JPEG's DCT).
    let mut args = vec![path(&input), path(&jxl), "--lossless_jpeg=0".into()];
    args.extend(options.iter().map(|o| (*o).to_owned()));
    run_tool("cjxl", "libjxl-tools", &args.iter().map(String::as_str).collect::<Vec<_>>());
    run_tool("djxl", "libjxl-tools", &[&path(&jxl), &path(&png)]);
    let reference = image::open(&png).expect("djxl wrote a PNG").to_rgba8();
    (std::fs::read(&jxl).expect("read"), reference)
}

/// Mean absolute difference per sample of two images of one size.
fn mean_difference(a: &image::RgbaImage, b: &image::RgbaImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let diff: u64 = a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| u64::from(x.abs_diff(*y))).sum();
    diff as f64 / a.as_raw().len() as f64
}

/// Uploads `jxl` and checks it sniffs as JPEG XL of the reference's (upright) size; the file's id.
async fn upload_jxl(app: &TestApp, key: &str, jxl: Vec<u8>, reference: &image::RgbaImage) -> String {
    let (w, h) = reference.dimensions();
    let made = app.upload("/upload/image", key, "photo.jxl", jxl).await;
    assert_eq!(made.status(), 201);
    let made: Value = made.json().await.expect("json");
    assert_eq!((&made["mime_type"], &made["width"], &made["height"]), (&json!("image/jxl"), &json!(w), &json!(h)));
    made["id"].as_str().expect("id").to_owned()
}

/// The rendered bytes of `variant` of file `id`, after checking its Content-Type.
async fn variant(app: &TestApp, key: &str, id: &str, variant: &str, mime: &str) -> Vec<u8> {
    let content = app.get_with_key(&format!("/files/{id}/content?variant={variant}"), key).await;
    assert_eq!(content.status(), 200, "{variant}");
    assert_eq!(content.headers()["content-type"], mime, "{variant}");
    content.bytes().await.expect("bytes").to_vec()
}

async fn ready(app: &TestApp, key: &str, id: &str) -> Value {
    let file: Value = app.get_with_key(&format!("/files/{id}"), key).await.json().await.expect("json");
    assert_eq!(file["status"], json!("ready"), "{file}");
    file
}

async fn jxl_from_libjxl_renders_to_every_format(db: DbKind) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (jxl, reference) = jxl_and_reference(dir.path(), "photo.jpg", &["-d", "1"]);
    let (w, h) = reference.dimensions();
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let variants = every_format_variants(w);
    let tenant = app.project_with_key(json!({"variants": variants})).await;
    let id = upload_jxl(&app, &tenant.key, jxl, &reference).await;
    drain(&app).await;
    assert_every_format(&app, &tenant.key, &id, (w, h)).await;

    // Two conforming decoders of one lossy file agree within rounding.
    let full = image::load_from_memory(&variant(&app, &tenant.key, &id, "full", "image/png").await).expect("a PNG");
    let mean = mean_difference(&full.to_rgba8(), &reference);
    assert!(mean < 2.0, "mean difference from libjxl's decode: {mean:.2} per sample");
}

async fn lossless_alpha_and_turned_jxl_match_libjxl(db: DbKind) {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    // Contain never upscales: every file renders at its own (upright) size.
    let variants =
        json!([{"name": "full", "width": 4096, "height": 4096, "fit": "contain", "format": "png", "quality": 100}]);
    let tenant = app.project_with_key(json!({"variants": variants})).await;
    // photo-rotated.jpg says EXIF orientation 6; cjxl moves it into the codestream's header.
    let cases = [("photo.jpg", true), ("alpha.png", false), ("photo-rotated.jpg", true)];
    let mut uploaded = Vec::new();
    for (source, opaque) in cases {
        let (jxl, reference) = jxl_and_reference(dir.path(), source, &["-d", "0"]);
        uploaded.push((source, opaque, upload_jxl(&app, &tenant.key, jxl, &reference).await, reference));
    }
    assert_eq!(uploaded[2].3.dimensions(), (1203, 1600), "libjxl shows the turned photo upright");
    drain(&app).await;
    for (source, opaque, id, reference) in uploaded {
        ready(&app, &tenant.key, &id).await;
        let full = image::load_from_memory(&variant(&app, &tenant.key, &id, "full", "image/png").await).expect("a PNG");
        assert_eq!(full.color().has_alpha(), !opaque, "{source}: alpha kept only when some pixel is not opaque");
        let mean = mean_difference(&full.to_rgba8(), &reference);
        assert!(mean < 0.5, "{source}: mean difference from libjxl's decode of a lossless file: {mean:.2} per sample");
    }
}

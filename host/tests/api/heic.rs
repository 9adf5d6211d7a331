//! HEIC input: a HEIC written by libheif's own encoder (`heif-enc`, Debian `libheif-examples`,
//! installed by `scripts/test`) is accepted at `/upload/image` as `image/heic` with its size read
//! from the header, and decoded inside the sandbox (heifer, in the standard component) to every
//! output format at exact dimensions; the lossless PNG variant matches libheif's own decode
//! (`heif-convert`) pixel for pixel within rounding. On both databases.

use std::path::Path;

use serde_json::{Value, json};

use crate::decoder_checks::{assert_every_format, every_format_variants, run_tool};
use crate::helpers::{DbKind, StoreKind, TestApp, db_tests, drain, fixture};

db_tests!(heic_from_libheif_renders_to_every_format);

/// `photo.jpg` encoded by heif-enc, and libheif's own decode of it (RGB8).
fn heic_and_reference(dir: &Path) -> (Vec<u8>, image::RgbImage) {
    let jpeg = dir.join("photo.jpg");
    std::fs::write(&jpeg, fixture("photo.jpg")).expect("write");
    let (heic, png) = (dir.join("photo.heic"), dir.join("reference.png"));
    let path = |p: &Path| p.to_str().expect("utf-8").to_owned();
    run_tool("heif-enc", "libheif-examples", &["-q", "90", "-o", &path(&heic), &path(&jpeg)]);
    run_tool("heif-convert", "libheif-examples", &[&path(&heic), &path(&png)]);
    let reference = image::open(&png).expect("heif-convert wrote a PNG").to_rgb8();
    (std::fs::read(&heic).expect("read"), reference)
}

async fn heic_from_libheif_renders_to_every_format(db: DbKind) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (heic, reference) = heic_and_reference(dir.path());
    let (w, h) = reference.dimensions();
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let variants = every_format_variants(w);
    let tenant = app.project_with_key(json!({"variants": variants})).await;

    let made = app.upload("/upload/image", &tenant.key, "IMG_0001.HEIC", heic).await;
    assert_eq!(made.status(), 201);
    let made: Value = made.json().await.expect("json");
    assert_eq!((&made["mime_type"], &made["width"], &made["height"]), (&json!("image/heic"), &json!(w), &json!(h)));
    drain(&app).await;
    let id = made["id"].as_str().expect("id");
    assert_every_format(&app, &tenant.key, id, (w, h)).await;

    // The lossless render is libheif's decode, within YCbCr-to-RGB rounding.
    let full = app.get_with_key(&format!("/files/{id}/content?variant=full"), &tenant.key).await;
    let full = image::load_from_memory(&full.bytes().await.expect("bytes")).expect("a PNG").to_rgb8();
    let diff: u64 = full.as_raw().iter().zip(reference.as_raw()).map(|(a, b)| u64::from(a.abs_diff(*b))).sum();
    let mean = diff as f64 / full.as_raw().len() as f64;
    assert!(mean < 2.0, "mean difference from libheif's decode: {mean:.2} per sample");
}

//! What the input-format tests (`heic`, `jxl`) share: running the format's own reference tools,
//! and one variant of each output format and fit, checked at its exact size.

use serde_json::{Value, json};

use crate::helpers::TestApp;

/// Runs a reference tool of Debian package `package`. A missing tool fails the test: it must
/// not pass by skipping what it is there to check.
pub fn run_tool(tool: &str, package: &str, args: &[&str]) {
    let status = std::process::Command::new(tool).args(args).status().unwrap_or_else(|e| {
        panic!("{tool} is not installed ({e}): run the suite with scripts/test, which installs {package}")
    });
    assert!(status.success(), "{tool} {args:?} failed");
}

/// Project settings' `variants` for an original `w` wide: a full-size PNG (`full`), a cover WebP,
/// a contain AVIF and a stretched JPEG.
pub fn every_format_variants(w: u32) -> Value {
    json!([
        {"name": "full", "width": w, "height": null, "fit": "contain", "format": "png", "quality": 100},
        {"name": "thumb", "width": 150, "height": 150, "fit": "cover", "format": "webp", "quality": 80},
        {"name": "small", "width": 320, "height": null, "fit": "contain", "format": "avif", "quality": 60},
        {"name": "band", "width": 200, "height": 100, "fit": "stretch", "format": "jpeg", "quality": 85},
    ])
}

/// Checks that every variant of [`every_format_variants`] of file `id` (a `w` x `h` original) is
/// ready, served with its format's Content-Type, at its exact size.
pub async fn assert_every_format(app: &TestApp, key: &str, id: &str, (w, h): (u32, u32)) {
    let file: Value = app.get_with_key(&format!("/files/{id}"), key).await.json().await.expect("json");
    assert_eq!(file["status"], json!("ready"), "{file}");
    let expected_height = |width: u32| (f64::from(h) * f64::from(width) / f64::from(w)).round() as u32;
    for (name, mime, size) in [
        ("full", "image/png", (w, h)),
        ("thumb", "image/webp", (150, 150)),
        ("small", "image/avif", (320, expected_height(320))),
        ("band", "image/jpeg", (200, 100)),
    ] {
        assert_eq!(file["variants"][name]["status"], json!("ready"), "{name}: {file}");
        let content = app.get_with_key(&format!("/files/{id}/content?variant={name}"), key).await;
        assert_eq!(content.headers()["content-type"], mime, "{name}");
        let bytes = content.bytes().await.expect("bytes");
        let got = imagesize::blob_size(&bytes).expect("an image");
        assert_eq!((got.width as u32, got.height as u32), size, "{name}");
    }
}

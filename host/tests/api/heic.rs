//! HEIC input: a HEIC written by libheif's own encoder (`heif-enc`, Debian `libheif-examples`,
//! installed by `scripts/test`) is accepted at `/upload/image` as `image/heic` with its size read
//! from the header, and decoded inside the sandbox (heifer, in the standard component) to every
//! output format at exact dimensions; the lossless PNG variant matches libheif's own decode
//! (`heif-convert`) pixel for pixel within rounding. Photos from phones (an iPhone 13 Pro and an
//! iPhone 8 Plus: tiled grids, Display P3, one turned by `irot`; a Xiaomi grid) render upright
//! at their exact sizes, close to libvips' own decode of them (through libheif, converted to
//! sRGB), with their camera in the File JSON. On both databases.

use std::path::Path;

use serde_json::{Value, json};

use crate::decoder_checks::{assert_every_format, every_format_variants, run_tool};
use crate::helpers::{DbKind, StoreKind, TestApp, db_tests, drain, fixture};

db_tests!(heic_from_libheif_renders_to_every_format, phone_photos_render_upright);

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

/// The phone photos `scripts/test` fetches (pillow-heif's test images): file, upright size, make,
/// model.
const PHONE_PHOTOS: [(&str, (u32, u32), &str, &str); 3] = [
    ("pug.heic", (4032, 3024), "Apple", "iPhone 13 Pro"),
    ("arrow.heic", (3024, 4032), "Apple", "iPhone 8 Plus"),
    ("xiaomi.heic", (2592, 1944), "Xiaomi", "M2012K11AG"),
];

async fn phone_photos_render_upright(db: DbKind) {
    let photos = std::env::var("MBK_TEST_PHONE_HEIC").unwrap_or_else(|_| {
        panic!("MBK_TEST_PHONE_HEIC is not set: run the suite with scripts/test, which fetches them")
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let box_800 =
        json!([{"name": "view", "width": 800, "height": 800, "fit": "contain", "format": "png", "quality": 100}]);
    let tenant = app.project_with_key(json!({"variants": box_800})).await;
    let mut uploaded = Vec::new();
    for (name, size, make, model) in PHONE_PHOTOS {
        let original = Path::new(&photos).join(name);
        let bytes = std::fs::read(&original).unwrap_or_else(|e| panic!("{}: {e}", original.display()));
        let made = app.upload("/upload/image", &tenant.key, name, bytes).await;
        assert_eq!(made.status(), 201, "{name}");
        let made: Value = made.json().await.expect("json");
        assert_eq!(
            (&made["mime_type"], &made["width"], &made["height"]),
            (&json!("image/heic"), &json!(size.0), &json!(size.1))
        );
        uploaded.push((original, size, make, model, made["id"].as_str().expect("id").to_owned()));
    }
    drain(&app).await;
    for (original, (w, h), make, model, id) in uploaded {
        let name = original.file_name().and_then(|n| n.to_str()).expect("a name").to_owned();
        let file: Value = app.get_with_key(&format!("/files/{id}"), &tenant.key).await.json().await.expect("json");
        assert_eq!(file["status"], json!("ready"), "{name}: {file}");
        assert_eq!(
            (&file["metadata"]["camera_make"], &file["metadata"]["camera_model"]),
            (&json!(make), &json!(model))
        );
        let view = app.get_with_key(&format!("/files/{id}/content?variant=view"), &tenant.key).await;
        let view = image::load_from_memory(&view.bytes().await.expect("bytes")).expect("a PNG").to_rgb8();
        let scale = 800.0 / f64::from(w.max(h));
        let expected = ((f64::from(w) * scale).round() as u32, (f64::from(h) * scale).round() as u32);
        assert_eq!(view.dimensions(), expected, "{name}: upright, inside 800x800");

        // libvips decodes it through libheif and converts its ICC profile to sRGB, as we do.
        let reference = dir.path().join(format!("{name}.png"));
        let path = |p: &Path| p.to_str().expect("utf-8").to_owned();
        let args =
            ["thumbnail", &path(&original), &path(&reference), "800", "--height", "800", "--export-profile", "srgb"];
        run_tool("vips", "libvips-tools", &args);
        let reference = image::open(&reference).expect("vips wrote a PNG").to_rgb8();
        assert_eq!(reference.dimensions(), expected, "{name}: libvips agrees on the size");
        let diff: u64 = view.as_raw().iter().zip(reference.as_raw()).map(|(a, b)| u64::from(a.abs_diff(*b))).sum();
        let mean = diff as f64 / view.as_raw().len() as f64;
        assert!(mean < 4.0, "{name}: mean difference from libvips' decode: {mean:.2} per sample");
    }
}

//! Animated originals stay animated in WebP variants. The inputs are made by tools nobody here
//! wrote: an animated GIF assembled by `gifsicle` from frames of a real photo, an animated WebP
//! by libwebp's `img2webp`. libvips (which plays both through libnsgif and libwebp's own
//! animation decoder) is the reference: it decodes every frame of the original, and it reads
//! our WebP's frames, delays and loop count back, while `webpinfo` checks its container. Every
//! other format is the first frame, at its exact size. An animation over `MAX_ANIMATION_FRAMES`
//! is a still. On both databases.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::decoder_checks::{assert_every_format, every_format_variants, run_tool};
use crate::helpers::{DbKind, StoreKind, TestApp, db_tests, drain, fixture};

db_tests!(
    a_gif_from_gifsicle_stays_animated,
    an_animated_webp_from_img2webp_stays_animated,
    over_the_frame_limit_a_still
);

/// The frames: 320x240 crops of `photo.jpg` at three places (a real photo's detail, distinct
/// enough that a frame shown in the wrong place is seen).
const FRAME: (u32, u32) = (320, 240);

fn path(p: &Path) -> String {
    p.to_str().expect("utf-8").to_owned()
}

/// The crops, as PNGs made by libvips.
fn frames(dir: &Path) -> Vec<PathBuf> {
    let photo = dir.join("photo.jpg");
    std::fs::write(&photo, fixture("photo.jpg")).expect("write");
    (0..3)
        .map(|i| {
            let png = dir.join(format!("frame{i}.png"));
            let (x, y) = (i * 300, i * 200);
            let (w, h) = (FRAME.0.to_string(), FRAME.1.to_string());
            run_tool(
                "vips",
                "libvips-tools",
                &["crop", &path(&photo), &path(&png), &x.to_string(), &y.to_string(), &w, &h],
            );
            png
        })
        .collect()
}

/// An animated GIF by gifsicle: the frames, 250 ms each, repeated twice after the first play.
fn gifsicle_gif(dir: &Path) -> PathBuf {
    let mut gifs = Vec::new();
    for png in frames(dir) {
        let gif = png.with_extension("gif");
        run_tool("vips", "libvips-tools", &["copy", &path(&png), &path(&gif)]);
        gifs.push(path(&gif));
    }
    let out = dir.join("anim.gif");
    let mut args = vec!["--delay=25".to_owned(), "--loopcount=2".into(), "--colors=256".into()];
    args.extend(gifs);
    args.extend(["-o".into(), path(&out)]);
    run_tool("gifsicle", "gifsicle", &args.iter().map(String::as_str).collect::<Vec<_>>());
    out
}

/// What libvips reads of an animation: its frames (RGBA8, each `page-height` tall), the
/// delays in ms and the plays (0: forever).
struct Played {
    frames: Vec<image::RgbaImage>,
    delays: Vec<u32>,
    plays: u32,
}

fn played(file: &Path) -> Played {
    let strip = file.with_extension("strip.png");
    run_tool("vips", "libvips-tools", &["copy", &format!("{}[n=-1]", path(file)), &path(&strip)]);
    let header = std::process::Command::new("vipsheader").arg("-a").arg(file).output().expect("vipsheader runs");
    let header = String::from_utf8_lossy(&header.stdout).into_owned();
    let field = |name: &str| -> Vec<u32> {
        let line = header.lines().find(|l| l.starts_with(&format!("{name}: "))).unwrap_or("");
        line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect()
    };
    let strip = image::open(&strip).expect("vips wrote a PNG").to_rgba8();
    let pages = field("n-pages").first().copied().unwrap_or(1);
    let height = strip.height() / pages;
    let frames = (0..pages)
        .map(|i| image::imageops::crop_imm(&strip, 0, i * height, strip.width(), height).to_image())
        .collect();
    Played { frames, delays: field("delay"), plays: field("loop").first().copied().unwrap_or(0) }
}

/// Mean absolute difference per sample of `got` and `reference` scaled to `got`'s size.
fn difference(got: &image::RgbaImage, reference: &image::RgbaImage) -> f64 {
    let scaled = image::imageops::resize(reference, got.width(), got.height(), image::imageops::FilterType::Lanczos3);
    let diff: u64 = got.as_raw().iter().zip(scaled.as_raw()).map(|(a, b)| u64::from(a.abs_diff(*b))).sum();
    diff as f64 / got.as_raw().len() as f64
}

/// Settings: every format at its exact size (`thumb` is a cover WebP), and `moving`, a contain
/// WebP 160 wide.
fn variants() -> Value {
    let mut variants = every_format_variants(FRAME.0);
    variants.as_array_mut().expect("a list").push(
        json!({"name": "moving", "width": 160, "height": null, "fit": "contain", "format": "webp", "quality": 90}),
    );
    variants
}

/// Uploads `original` and renders it; its File JSON.
async fn rendered(app: &TestApp, key: &str, original: &Path) -> Value {
    let filename = original.file_name().and_then(|n| n.to_str()).expect("a name");
    let made = app.upload("/upload/image", key, filename, std::fs::read(original).expect("read")).await;
    assert_eq!(made.status(), 201);
    let made: Value = made.json().await.expect("json");
    assert_eq!((&made["width"], &made["height"]), (&json!(FRAME.0), &json!(FRAME.1)), "{made}");
    drain(app).await;
    let id = made["id"].as_str().expect("id");
    let file: Value = app.get_with_key(&format!("/files/{id}"), key).await.json().await.expect("json");
    assert_eq!(file["status"], json!("ready"), "{file}");
    file
}

/// Writes WebP variant `name` of `file` beside `original`.
async fn saved(app: &TestApp, key: &str, file: &Value, name: &str, original: &Path) -> PathBuf {
    let id = file["id"].as_str().expect("id");
    let content = app.get_with_key(&format!("/files/{id}/content?variant={name}"), key).await;
    assert_eq!(content.headers()["content-type"], "image/webp");
    let out = original.with_extension(format!("{name}.webp"));
    std::fs::write(&out, content.bytes().await.expect("bytes")).expect("write");
    out
}

/// Checks that `webp` is an animation libwebp accepts, of the reference's frames, delays and
/// plays, at 160x120.
fn assert_same_animation(webp: &Path, reference: &Played, tolerance: f64) {
    run_tool("webpinfo", "webp", &["-quiet", &path(webp)]);
    let got = played(webp);
    assert_eq!(got.frames.len(), reference.frames.len(), "frames");
    assert_eq!(got.delays, reference.delays, "delays");
    assert_eq!(got.plays, reference.plays, "plays");
    for (i, (frame, want)) in got.frames.iter().zip(&reference.frames).enumerate() {
        assert_eq!(frame.dimensions(), (160, 120), "frame {i}");
        let mean = difference(frame, want);
        assert!(mean < tolerance, "frame {i}: mean difference from libvips' decode {mean:.2} per sample");
        // Each frame is its own picture, not a neighbour's.
        for (j, other) in reference.frames.iter().enumerate().filter(|(j, _)| *j != i) {
            assert!(difference(frame, other) > mean + 5.0, "frame {i} looks like original frame {j}");
        }
    }
}

async fn a_gif_from_gifsicle_stays_animated(db: DbKind) {
    let dir = tempfile::tempdir().expect("tempdir");
    let gif = gifsicle_gif(dir.path());
    let reference = played(&gif);
    assert_eq!((reference.frames.len(), &reference.delays, reference.plays), (3, &vec![250; 3], 3), "libvips reads");

    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let mut variants = variants();
    variants
        .as_array_mut()
        .expect("a list")
        .push(json!({"name": "any", "width": 160, "height": null, "fit": "contain", "format": "auto", "quality": 80}));
    let tenant = app.project_with_key(json!({"variants": variants})).await;
    let file = rendered(&app, &tenant.key, &gif).await;
    assert_eq!(
        (&file["mime_type"], &file["animated"], &file["frames"]),
        (&json!("image/gif"), &json!(true), &json!(3))
    );

    // `format: "auto"`: the WebP moves and the AVIF would not, so Chrome's Accept gets the WebP.
    let chrome = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
    let url = file["variants"]["any"]["url"].as_str().expect("the /v/ URL");
    let any = app.client.get(url).header("accept", chrome).send().await.expect("get");
    assert_eq!(any.headers()["content-type"], "image/webp", "{file}");
    let any_webp = gif.with_extension("any.webp");
    std::fs::write(&any_webp, any.bytes().await.expect("bytes")).expect("write");
    assert_eq!(played(&any_webp).frames.len(), 3, "animated");
    assert_same_animation(&saved(&app, &tenant.key, &file, "moving", &gif).await, &reference, 6.0);

    // Every other format is the first frame at its exact size; so is the cover WebP animated.
    let id = file["id"].as_str().expect("id");
    assert_every_format(&app, &tenant.key, id, FRAME).await;
    let full = app.get_with_key(&format!("/files/{id}/content?variant=full"), &tenant.key).await;
    let full = image::load_from_memory(&full.bytes().await.expect("bytes")).expect("a PNG").to_rgba8();
    let mean = difference(&full, &reference.frames[0]);
    assert!(mean < 1.0, "the PNG is the first frame: {mean:.2} per sample from libvips' decode");
    let thumb = played(&saved(&app, &tenant.key, &file, "thumb", &gif).await);
    assert_eq!(thumb.frames.len(), 3, "the cover WebP is animated too");
}

async fn an_animated_webp_from_img2webp_stays_animated(db: DbKind) {
    let dir = tempfile::tempdir().expect("tempdir");
    let webp = dir.path().join("anim.webp");
    let mut args: Vec<String> = ["-loop", "0", "-lossy", "-q", "90", "-d", "120"].map(String::from).to_vec();
    args.extend(frames(dir.path()).iter().map(|p| path(p)));
    args.extend(["-o".into(), path(&webp)]);
    run_tool("img2webp", "webp", &args.iter().map(String::as_str).collect::<Vec<_>>());
    let reference = played(&webp);
    assert_eq!((reference.frames.len(), &reference.delays, reference.plays), (3, &vec![120; 3], 0), "libvips reads");

    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let tenant = app.project_with_key(json!({"variants": variants()})).await;
    let file = rendered(&app, &tenant.key, &webp).await;
    assert_eq!(
        (&file["mime_type"], &file["animated"], &file["frames"]),
        (&json!("image/webp"), &json!(true), &json!(3))
    );
    assert_same_animation(&saved(&app, &tenant.key, &file, "moving", &webp).await, &reference, 6.0);
}

async fn over_the_frame_limit_a_still(db: DbKind) {
    let dir = tempfile::tempdir().expect("tempdir");
    let gif = gifsicle_gif(dir.path());
    let reference = played(&gif);
    let app = TestApp::spawn_with(db, StoreKind::Filesystem, |config| config.max_animation_frames = 2).await;
    let tenant = app.project_with_key(json!({"variants": variants()})).await;
    let file = rendered(&app, &tenant.key, &gif).await;
    // The File JSON still says what the original is.
    assert_eq!((&file["animated"], &file["frames"]), (&json!(true), &json!(3)));
    let got = played(&saved(&app, &tenant.key, &file, "moving", &gif).await);
    assert_eq!(got.frames.len(), 1, "a still");
    let mean = difference(&got.frames[0], &reference.frames[0]);
    assert!(mean < 6.0, "the first frame: {mean:.2} per sample from libvips' decode");
}

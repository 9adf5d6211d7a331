//! The standard plugin, natively: every input kind, every fit, every output format.

use mbk_standard::{Fit, Format, RenderError, Spec, render};

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../host/tests/fixtures").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn spec(name: &str, width: Option<u32>, height: Option<u32>, fit: Fit, format: Format) -> Spec {
    Spec { name: name.into(), width, height, fit, format, quality: 80, params: Vec::new(), gravity: Default::default() }
}

/// Dimensions of an encoded image, read back from its header.
fn dims(bytes: &[u8]) -> (u32, u32) {
    let size = imagesize::blob_size(bytes).expect("readable output header");
    (size.width as u32, size.height as u32)
}

const MAX: u64 = 100_000_000;

#[test]
fn every_fit_gives_the_documented_size() {
    let input = fixture("photo.jpg"); // 1600x1203
    let specs = [
        spec("cover", Some(150), Some(150), Fit::Cover, Format::Webp),
        spec("contain", Some(800), None, Fit::Contain, Format::Webp),
        spec("contain-box", Some(300), Some(300), Fit::Contain, Format::Png),
        spec("no-upscale", Some(4000), None, Fit::Contain, Format::Jpeg),
        spec("stretch", Some(100), Some(300), Fit::Stretch, Format::Jpeg),
    ];
    let out = render(&input, MAX, &specs).expect("decodes");
    let sizes: Vec<(u32, u32)> = out
        .iter()
        .map(|r| {
            let r = r.as_ref().expect("rendered");
            assert_eq!(dims(&r.bytes), (r.width, r.height), "the header agrees with the reported size");
            (r.width, r.height)
        })
        .collect();
    assert_eq!(sizes, [(150, 150), (800, 602), (300, 226), (1600, 1203), (100, 300)]);
}

#[test]
fn every_output_format_has_its_magic_and_mime() {
    let input = fixture("photo.jpg");
    let specs =
        [Format::Webp, Format::Avif, Format::Jpeg, Format::Png].map(|f| spec("v", Some(64), Some(48), Fit::Cover, f));
    let out = render(&input, MAX, &specs).expect("decodes");
    type MagicCheck = fn(&[u8]) -> bool;
    let checks: [(&str, MagicCheck); 4] = [
        ("image/webp", |b| b.len() > 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP"),
        ("image/avif", |b| b.len() > 12 && &b[4..8] == b"ftyp" && b[8..].windows(4).take(8).any(|w| w == b"avif")),
        ("image/jpeg", |b| b.starts_with(&[0xFF, 0xD8, 0xFF])),
        ("image/png", |b| b.starts_with(b"\x89PNG")),
    ];
    for (result, (mime, magic)) in out.iter().zip(checks) {
        let r = result.as_ref().expect("rendered");
        assert_eq!(r.mime, mime);
        assert!(magic(&r.bytes), "{mime}");
        assert_eq!((r.width, r.height), (64, 48));
        assert_eq!(dims(&r.bytes), (64, 48), "{mime}");
    }
}

#[test]
fn every_input_kind_decodes() {
    for (name, w, h) in [
        ("photo.jpg", 1600, 1203),
        ("alpha.png", 2140, 1200),
        ("photo.webp", 1600, 1203),
        ("photo.gif", 400, 301),
        ("photo.tiff", 320, 241),
    ] {
        let out =
            render(&fixture(name), MAX, &[spec("same", Some(w), Some(h), Fit::Contain, Format::Png)]).expect(name);
        let r = out[0].as_ref().expect(name);
        assert_eq!((r.width, r.height), (w, h), "{name}: contain at its own size keeps it");
    }
}

#[test]
fn exif_orientation_is_applied() {
    let rotated = render(&fixture("photo-rotated.jpg"), MAX, &[spec("t", Some(400), None, Fit::Contain, Format::Jpeg)])
        .expect("decodes");
    let r = rotated[0].as_ref().expect("rendered");
    assert_eq!((r.width, r.height), (400, 532), "upright: portrait");
    // Same pixels as the upright photo turned 90° clockwise: compare a corner region's brightness.
    let plain =
        render(&fixture("photo.jpg"), MAX, &[spec("t", None, Some(400), Fit::Contain, Format::Png)]).expect("decodes");
    let plain = image::load_from_memory(&plain[0].as_ref().expect("rendered").bytes).expect("png").to_rgb8();
    let turned = image::imageops::rotate90(&plain);
    let ours = image::load_from_memory(&r.bytes).expect("jpeg").to_rgb8();
    assert_eq!(turned.dimensions(), (400, 532));
    let mean = |img: &image::RgbImage, x0: u32, y0: u32| {
        let mut sum = 0u64;
        for y in y0..y0 + 50 {
            for x in x0..x0 + 50 {
                sum += img.get_pixel(x, y).0.iter().map(|&c| u64::from(c)).sum::<u64>();
            }
        }
        sum / (50 * 50 * 3)
    };
    for (x, y) in [(0, 0), (350, 0), (0, 482), (350, 482), (175, 241)] {
        let (a, b) = (mean(&turned, x, y), mean(&ours, x, y));
        assert!(a.abs_diff(b) <= 12, "region ({x},{y}): {a} vs {b}");
    }
}

#[test]
fn alpha_is_kept_where_the_format_has_it_and_flattened_on_white_for_jpeg() {
    let input = fixture("alpha.png");
    let specs = [
        spec("png", Some(214), Some(120), Fit::Stretch, Format::Png),
        spec("jpg", Some(214), Some(120), Fit::Stretch, Format::Jpeg),
        spec("webp", Some(214), Some(120), Fit::Stretch, Format::Webp),
    ];
    let out = render(&input, MAX, &specs).expect("decodes");
    let png = image::load_from_memory(&out[0].as_ref().expect("png").bytes).expect("png").to_rgba8();
    let transparent = png.pixels().filter(|p| p.0[3] < 255).count();
    assert!(transparent > 0, "PNG keeps transparency");
    let source = image::load_from_memory(&input).expect("png").to_rgba8();
    let (x, y) = source
        .enumerate_pixels()
        .find(|(_, _, p)| p.0[3] == 0)
        .map(|(x, y, _)| (x * 214 / 2140, y * 120 / 1200))
        .expect("a transparent pixel");
    let jpg = image::load_from_memory(&out[1].as_ref().expect("jpg").bytes).expect("jpeg").to_rgb8();
    let p = jpg.get_pixel(x.min(213), y.min(119)).0;
    assert!(p.iter().all(|&c| c > 200), "transparent areas become white in JPEG: {p:?}");
    let webp = image::load_from_memory(&out[2].as_ref().expect("webp").bytes).expect("webp");
    assert!(webp.color().has_alpha(), "WebP keeps alpha");
}

#[test]
fn refusals_are_typed() {
    assert!(matches!(render(b"not an image", MAX, &[]), Err(RenderError::UnsupportedInput(_))));
    assert!(matches!(render(&fixture("photo.jpg")[..200], MAX, &[]), Err(RenderError::UnsupportedInput(_))));
    assert!(matches!(render(&fixture("photo.jpg"), 1000, &[]), Err(RenderError::TooLarge(_))));
    let out = render(
        &fixture("photo.gif"),
        MAX,
        &[spec("bad", None, None, Fit::Contain, Format::Png), spec("ok", Some(10), None, Fit::Contain, Format::Png)],
    )
    .expect("decodes");
    assert!(matches!(out[0], Err(RenderError::InvalidSpec(_))));
    assert!(out[1].is_ok(), "one bad spec does not spoil the others");
}

#[test]
fn jpeg_thumbnails_decode_at_a_reduced_scale_with_the_same_result_size() {
    // The thumbnail path (DCT scaling) and a large variant in one call give exact sizes.
    let out = render(&fixture("photo.jpg"), MAX, &[spec("t", Some(100), Some(100), Fit::Cover, Format::Jpeg)])
        .expect("decodes");
    assert_eq!(dims(&out[0].as_ref().expect("rendered").bytes), (100, 100));
}

fn decode_rgba(bytes: &[u8]) -> image::RgbaImage {
    image::load_from_memory(bytes).expect("decodes").to_rgba8()
}

#[test]
fn cmyk_jpeg_sixteen_bit_png_and_lossless_webp_decode() {
    // CMYK (Adobe) JPEG: the same picture as photo.jpg, within the loss of the CMYK round trip.
    let box_ = |w, h| [spec("v", Some(w), Some(h), Fit::Stretch, Format::Png)];
    let cmyk = render(&fixture("cmyk.jpg"), MAX, &box_(400, 301)).expect("decodes");
    let rgb = render(&fixture("photo.jpg"), MAX, &box_(400, 301)).expect("decodes");
    let (a, b) =
        (decode_rgba(&cmyk[0].as_ref().expect("cmyk").bytes), decode_rgba(&rgb[0].as_ref().expect("rgb").bytes));
    let diff: u64 = a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| u64::from(x.abs_diff(*y))).sum();
    let mean = diff as f64 / a.as_raw().len() as f64;
    assert!(mean < 12.0, "CMYK decoded to the right colours: mean difference {mean:.1}");

    let gray = render(&fixture("gray16.png"), MAX, &box_(320, 241)).expect("16-bit PNG decodes");
    let gray = decode_rgba(&gray[0].as_ref().expect("gray").bytes);
    assert!(gray.pixels().all(|p| p.0[0] == p.0[1] && p.0[1] == p.0[2]), "grey stays grey");
    assert!(
        gray.pixels().any(|p| p.0[0] > 200) && gray.pixels().any(|p| p.0[0] < 60),
        "the full range survives 16 -> 8 bits"
    );

    let webp = render(&fixture("lossless-alpha.webp"), MAX, &box_(214, 120)).expect("lossless WebP decodes");
    let webp = decode_rgba(&webp[0].as_ref().expect("webp").bytes);
    assert!(webp.pixels().any(|p| p.0[3] < 255), "its alpha is kept");
}

#[test]
fn a_reduced_decode_scale_never_changes_the_sizes() {
    // Alone, each spec lets the JPEG decode at 1/2, 1/4 or 1/8 scale; the sizes must be those
    // planned against the full 1600x1203 image, and the pixels close to a full-scale render.
    let input = fixture("photo.jpg");
    let cases = [
        (Some(800), None, Fit::Contain, (800, 602)),
        (Some(401), None, Fit::Contain, (401, 302)),
        (Some(150), Some(150), Fit::Contain, (150, 113)),
        (Some(120), Some(90), Fit::Cover, (120, 90)),
        (Some(64), Some(200), Fit::Stretch, (64, 200)),
        (None, Some(99), Fit::Contain, (132, 99)),
    ];
    for (w, h, fit, expected) in cases {
        let alone = render(&input, MAX, &[spec("v", w, h, fit, Format::Png)]).expect("decodes");
        let alone = alone[0].as_ref().expect("rendered");
        assert_eq!((alone.width, alone.height), expected, "{w:?}x{h:?} {fit:?}");
        assert_eq!(dims(&alone.bytes), expected);
        // With a full-size spec beside it, the decode is at full scale: same size, similar pixels.
        let full = render(
            &input,
            MAX,
            &[spec("v", w, h, fit, Format::Png), spec("big", Some(1600), None, Fit::Contain, Format::Png)],
        )
        .expect("decodes");
        let full = full[0].as_ref().expect("rendered");
        assert_eq!((full.width, full.height), expected);
        let (a, b) = (
            image::load_from_memory(&alone.bytes).expect("png").to_rgb8(),
            image::load_from_memory(&full.bytes).expect("png").to_rgb8(),
        );
        let diff: f64 = a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| f64::from(x.abs_diff(*y))).sum::<f64>()
            / a.as_raw().len() as f64;
        assert!(diff < 4.0, "{w:?}x{h:?} {fit:?}: mean difference {diff:.2}");
    }
}

//! Decoding: JPEG through `jpeg-decoder` (so it can decode at 1/2, 1/4 or 1/8 scale by DCT
//! scaling when the variants are much smaller: libvips' shrink-on-load), AVIF through `rav1d`
//! (see `avif`), HEIC and JPEG XL inside the sandbox only (see `heic`, `jxl`), everything else
//! through `image`. EXIF orientation is applied, 16-bit is reduced
//! to 8-bit, CMYK becomes RGB, pixels tagged with an RGB ICC profile other than sRGB (Adobe RGB, Display P3, ProPhoto…) are
//! converted to sRGB (moxcms; the output carries no profile, so browsers read it as sRGB), and an
//! alpha channel is kept only when some pixel is not opaque.

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, metadata::Orientation};

use crate::{RenderError, exif};

/// Decoded pixels, tightly packed: RGBA8 when `has_alpha`, RGB8 otherwise.
pub struct Decoded {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
    pub has_alpha: bool,
}

pub(crate) fn too_large(width: u32, height: u32, max_pixels: u64) -> Option<RenderError> {
    let pixels = u64::from(width) * u64::from(height);
    (pixels > max_pixels)
        .then(|| RenderError::TooLarge(format!("{width}x{height} is over the limit of {max_pixels} pixels")))
}

/// What scale of the full-resolution (upright) image the variants need, given its size: a
/// fraction (<= 1) or `None` (the full resolution).
pub type ScaleNeed<'a> = &'a dyn Fn(u32, u32) -> Option<f64>;

/// Decodes `input`. A JPEG is decoded at the smallest DCT scale (1/8, 1/4, 1/2) that still gives
/// at least the scale `need` asks for. Returns the pixels and the upright size of the
/// full-resolution image (plans are made against it, so the variants' sizes do not depend on the
/// decode scale).
pub fn decode(input: &[u8], max_pixels: u64, need: ScaleNeed<'_>) -> Result<(Decoded, (u32, u32)), RenderError> {
    decode_described(input, max_pixels, need).map(|(decoded, full, _)| (decoded, full))
}

/// What [`decode_described`] answers: the pixels, the upright full size, and the description of
/// the ICC profile the pixels came with (`Display P3`).
pub type Described = (Decoded, (u32, u32), Option<String>);

/// [`decode`], and the description of the pixels' ICC profile.
pub fn decode_described(input: &[u8], max_pixels: u64, need: ScaleNeed<'_>) -> Result<Described, RenderError> {
    let ((image, icc), full) = match Input::of(input)? {
        #[cfg(all(target_arch = "wasm32", feature = "heic"))]
        Input::Heif => at_full_size(crate::heic::decode_heic(input, max_pixels)?),
        // HEVC is decoded only in the sandbox, and only in builds with the `heic` feature.
        #[cfg(not(all(target_arch = "wasm32", feature = "heic")))]
        Input::Heif => {
            return Err(RenderError::UnsupportedInput(
                "HEIC images are decoded only inside the WebAssembly sandbox, in builds with HEIC".into(),
            ));
        }
        #[cfg(target_arch = "wasm32")]
        Input::Jxl => at_full_size(crate::jxl::decode_jxl(input, max_pixels)?),
        // A young decoder of a complex format meets untrusted files only where a fault is a trap.
        #[cfg(not(target_arch = "wasm32"))]
        Input::Jxl => {
            return Err(RenderError::UnsupportedInput(
                "JPEG XL images are decoded only inside the WebAssembly sandbox (the wasm engine)".into(),
            ));
        }
        Input::Image(format) => match format {
            ImageFormat::Jpeg => decode_jpeg(input, max_pixels, need)?,
            ImageFormat::Png | ImageFormat::WebP | ImageFormat::Gif | ImageFormat::Tiff => {
                at_full_size(decode_other(input, format, max_pixels)?)
            }
            #[cfg(target_arch = "wasm32")]
            ImageFormat::Avif => at_full_size(crate::avif::decode_avif(input, max_pixels)?),
            // rav1d meets some malformed streams with a panic, and a panic through its `extern "C"`
            // API aborts the process: only inside the sandbox is that a mere trap.
            #[cfg(not(target_arch = "wasm32"))]
            ImageFormat::Avif => {
                return Err(RenderError::UnsupportedInput(
                    "AVIF images are decoded only inside the WebAssembly sandbox (the wasm engine)".into(),
                ));
            }
            other => {
                return Err(RenderError::UnsupportedInput(format!(
                    "{other:?} images are not decoded by {}",
                    crate::NAME
                )));
            }
        },
    };
    let mut decoded = into_decoded(image);
    let described = icc.as_deref().and_then(profile_description);
    if let Some(icc) = icc {
        to_srgb(&mut decoded, &icc);
    }
    Ok((decoded, full, described))
}

/// The description an ICC profile gives of itself, if it parses and has one.
fn profile_description(icc: &[u8]) -> Option<String> {
    use moxcms::ProfileText;
    let text = match moxcms::ColorProfile::new_from_slice(icc).ok()?.description? {
        ProfileText::PlainString(text) => text,
        ProfileText::Localizable(texts) => texts.into_iter().next()?.value,
        ProfileText::Description(description) => description.ascii_string,
    };
    let text = text.trim_matches(|c: char| c.is_whitespace() || c == '\0').to_owned();
    (!text.is_empty()).then_some(text)
}

/// What decodes an input.
enum Input {
    /// HEIF (HEVC pictures): `image` knows no HEIF, told apart by its brands.
    Heif,
    /// JPEG XL: `image` knows none either.
    Jxl,
    Image(ImageFormat),
}

impl Input {
    fn of(input: &[u8]) -> Result<Self, RenderError> {
        if crate::heic::is_heif(input) {
            return Ok(Self::Heif);
        }
        if crate::jxl::is_jxl(input) {
            return Ok(Self::Jxl);
        }
        image::guess_format(input).map(Self::Image).map_err(|_| {
            RenderError::UnsupportedInput("not a JPEG, PNG, WebP, GIF, TIFF, AVIF, HEIC or JPEG XL image".into())
        })
    }
}

/// Converts RGB(A) pixels described by the ICC profile `icc` to sRGB. Profiles that do not parse,
/// are not RGB, or are sRGB already leave the pixels as they are (a bad profile must not fail a
/// render that would otherwise succeed).
pub(crate) fn to_srgb(image: &mut Decoded, icc: &[u8]) {
    use moxcms::{ColorProfile, DataColorSpace, Layout, TransformOptions};
    let Ok(source) = ColorProfile::new_from_slice(icc) else { return };
    if source.color_space != DataColorSpace::Rgb {
        return;
    }
    let srgb = ColorProfile::new_srgb();
    let close = |a: moxcms::Xyzd, b: moxcms::Xyzd| (a.x - b.x).abs() + (a.y - b.y).abs() + (a.z - b.z).abs() < 0.002;
    let colorants_are_srgb = close(source.red_colorant, srgb.red_colorant)
        && close(source.green_colorant, srgb.green_colorant)
        && close(source.blue_colorant, srgb.blue_colorant);
    if colorants_are_srgb && source.lut_a_to_b_perceptual.is_none() {
        return; // sRGB (or near enough): skip the pass
    }
    let layout = if image.has_alpha { Layout::Rgba } else { Layout::Rgb };
    let Ok(transform) = source.create_transform_8bit(layout, &srgb, layout, TransformOptions::default()) else {
        return;
    };
    let mut out = vec![0u8; image.pixels.len()];
    if transform.transform(&image.pixels, &mut out).is_ok() {
        image.pixels = out;
    }
}

/// A decoded image and its embedded ICC profile, if any.
type WithProfile = (DynamicImage, Option<Vec<u8>>);

/// A picture decoded at full resolution (no DCT scaling): its own size is the full size.
fn at_full_size(decoded: WithProfile) -> (WithProfile, (u32, u32)) {
    let full = (decoded.0.width(), decoded.0.height());
    (decoded, full)
}

fn decode_other(input: &[u8], format: ImageFormat, max_pixels: u64) -> Result<WithProfile, RenderError> {
    let bad = |e: image::ImageError| RenderError::UnsupportedInput(format!("cannot decode the {format:?} image: {e}"));
    let mut reader = ImageReader::with_format(std::io::Cursor::new(input), format);
    let mut limits = image::Limits::default();
    // RGBA16 of the largest allowed image, plus slack: refuse bombs before allocating.
    limits.max_alloc = Some(max_pixels.saturating_mul(8).saturating_add(64 << 20));
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(bad)?;
    let (width, height) = decoder.dimensions();
    if let Some(e) = too_large(width, height, max_pixels) {
        return Err(e);
    }
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let icc = decoder.icc_profile().ok().flatten();
    let mut image = DynamicImage::from_decoder(decoder).map_err(bad)?;
    image.apply_orientation(orientation);
    Ok((image, icc))
}

fn decode_jpeg(input: &[u8], max_pixels: u64, need: ScaleNeed<'_>) -> Result<(WithProfile, (u32, u32)), RenderError> {
    let bad = |e: jpeg_decoder::Error| RenderError::UnsupportedInput(format!("cannot decode the JPEG image: {e}"));
    let mut decoder = jpeg_decoder::Decoder::new(std::io::Cursor::new(input));
    decoder.read_info().map_err(bad)?;
    let info = decoder.info().ok_or_else(|| RenderError::UnsupportedInput("the JPEG has no frame header".into()))?;
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    if let Some(e) = too_large(width, height, max_pixels) {
        return Err(e);
    }
    decoder.set_max_decoding_buffer_size(usize::try_from(max_pixels.saturating_mul(4)).unwrap_or(usize::MAX));
    let orientation = exif::jpeg_orientation(input).and_then(Orientation::from_exif);
    // Orientations 5 to 8 turn the picture a quarter: the upright size is the stored one swapped.
    let quarter = matches!(
        orientation,
        Some(Orientation::Rotate90 | Orientation::Rotate270 | Orientation::Rotate90FlipH | Orientation::Rotate270FlipH)
    );
    let full = if quarter { (height, width) } else { (width, height) };
    if let Some(factor) = need(full.0, full.1).filter(|f| *f < 1.0) {
        // jpeg-decoder picks the smallest DCT scale whose size is at least the one asked for.
        let req_w = (f64::from(width) * factor).ceil().clamp(1.0, f64::from(u16::MAX)) as u16;
        let req_h = (f64::from(height) * factor).ceil().clamp(1.0, f64::from(u16::MAX)) as u16;
        decoder.scale(req_w, req_h).map_err(bad)?;
    }
    let pixels = decoder.decode().map_err(bad)?;
    let info = decoder.info().ok_or_else(|| RenderError::Failed("the JPEG lost its frame header".into()))?;
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    // A CMYK profile describes the ink, not our naive RGB: only RGB profiles are applied.
    let icc = decoder.icc_profile().filter(|_| info.pixel_format == jpeg_decoder::PixelFormat::RGB24);
    let rgb: Vec<u8> = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => pixels,
        jpeg_decoder::PixelFormat::L8 => pixels.iter().flat_map(|&l| [l, l, l]).collect(),
        jpeg_decoder::PixelFormat::L16 => pixels.chunks_exact(2).flat_map(|c| [c[0], c[0], c[0]]).collect(),
        jpeg_decoder::PixelFormat::CMYK32 => cmyk_to_rgb(&pixels),
    };
    let buffer =
        image::RgbImage::from_raw(w, h, rgb).ok_or_else(|| RenderError::Failed("JPEG buffer size mismatch".into()))?;
    let mut image = DynamicImage::ImageRgb8(buffer);
    if let Some(orientation) = orientation {
        image.apply_orientation(orientation);
    }
    Ok(((image, icc), full))
}

/// jpeg-decoder hands CMYK (Adobe's inverted convention already undone) as 4 bytes a pixel.
fn cmyk_to_rgb(cmyk: &[u8]) -> Vec<u8> {
    cmyk.chunks_exact(4)
        .flat_map(|p| {
            let k = f32::from(p[3]) / 255.0;
            let channel = |v: u8| {
                let c = f32::from(v) / 255.0;
                let c = c * (1.0 - k) + k;
                ((1.0 - c) * 255.0).round() as u8
            };
            [channel(p[0]), channel(p[1]), channel(p[2])]
        })
        .collect()
}

pub(crate) fn into_decoded(image: DynamicImage) -> Decoded {
    let (width, height) = (image.width(), image.height());
    if image.color().has_alpha() {
        let rgba = image.into_rgba8();
        if rgba.pixels().any(|p| p.0[3] != 255) {
            return Decoded { width, height, pixels: rgba.into_raw(), has_alpha: true };
        }
        let rgb: Vec<u8> = rgba.into_raw().chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
        return Decoded { width, height, pixels: rgb, has_alpha: false };
    }
    Decoded { width, height, pixels: image.into_rgb8().into_raw(), has_alpha: false }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 32x32 JPEG of one colour, with `icc` embedded as an APP2 `ICC_PROFILE` segment.
    fn tagged_jpeg(rgb: [u8; 3], icc: Option<&[u8]>) -> Vec<u8> {
        let pixels: Vec<u8> = std::iter::repeat_n(rgb, 32 * 32).flatten().collect();
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 100)
            .encode(&pixels, 32, 32, image::ExtendedColorType::Rgb8)
            .expect("encode");
        let Some(icc) = icc else { return jpeg };
        let mut segment = vec![0xFF, 0xE2];
        segment.extend_from_slice(&((2 + 12 + 2 + icc.len()) as u16).to_be_bytes());
        segment.extend_from_slice(b"ICC_PROFILE\0");
        segment.extend_from_slice(&[1, 1]);
        segment.extend_from_slice(icc);
        let mut out = jpeg[..2].to_vec(); // SOI
        out.extend_from_slice(&segment);
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    fn centre(d: &Decoded) -> [u8; 3] {
        let i = ((d.height / 2 * d.width + d.width / 2) * 3) as usize;
        [d.pixels[i], d.pixels[i + 1], d.pixels[i + 2]]
    }

    #[test]
    fn adobe_rgb_becomes_srgb_and_srgb_stays() {
        let colour = [200, 80, 60];
        let adobe = moxcms::ColorProfile::new_adobe_rgb().encode().expect("an ICC profile");
        let plain = decode(&tagged_jpeg(colour, None), 1 << 20, &|_, _| None).expect("decodes").0;
        let converted = decode(&tagged_jpeg(colour, Some(&adobe)), 1 << 20, &|_, _| None).expect("decodes").0;

        // What the colour is in sRGB, from the same profile through the same library.
        let transform = moxcms::ColorProfile::new_adobe_rgb()
            .create_transform_8bit(
                moxcms::Layout::Rgb,
                &moxcms::ColorProfile::new_srgb(),
                moxcms::Layout::Rgb,
                Default::default(),
            )
            .expect("transform");
        let mut expected = [0u8; 3];
        transform.transform(&centre(&plain), &mut expected).expect("transform");

        let got = centre(&converted);
        assert!(got.iter().zip(expected).all(|(a, b)| a.abs_diff(b) <= 2), "{got:?} vs {expected:?}");
        assert!(
            got.iter().zip(centre(&plain)).any(|(a, b)| a.abs_diff(b) >= 10),
            "Adobe RGB numbers are not read as sRGB: {got:?} vs untagged {:?}",
            centre(&plain)
        );

        let srgb = moxcms::ColorProfile::new_srgb().encode().expect("an ICC profile");
        let tagged_srgb = decode(&tagged_jpeg(colour, Some(&srgb)), 1 << 20, &|_, _| None).expect("decodes").0;
        assert_eq!(tagged_srgb.pixels, plain.pixels, "an sRGB profile changes nothing");
        let junk =
            decode(&tagged_jpeg(colour, Some(b"not a profile at all")), 1 << 20, &|_, _| None).expect("decodes").0;
        assert_eq!(junk.pixels, plain.pixels, "a broken profile is ignored, not fatal");
    }
}

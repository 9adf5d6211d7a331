//! Decoding: JPEG through `jpeg-decoder` (so it can decode at 1/2, 1/4 or 1/8 scale by DCT
//! scaling when the variants are much smaller: libvips' shrink-on-load), everything else through
//! `image`. EXIF orientation is applied, 16-bit is reduced to 8-bit, CMYK becomes RGB, and an
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

fn too_large(width: u32, height: u32, max_pixels: u64) -> Option<RenderError> {
    let pixels = u64::from(width) * u64::from(height);
    (pixels > max_pixels)
        .then(|| RenderError::TooLarge(format!("{width}x{height} is over the limit of {max_pixels} pixels")))
}

/// Decodes `input`; `wanted` is the largest side any variant needs (for JPEG DCT scaling).
pub fn decode(input: &[u8], max_pixels: u64, wanted: Option<u32>) -> Result<Decoded, RenderError> {
    let format = image::guess_format(input)
        .map_err(|_| RenderError::UnsupportedInput("not a JPEG, PNG, WebP, GIF or TIFF image".into()))?;
    let image = match format {
        ImageFormat::Jpeg => decode_jpeg(input, max_pixels, wanted)?,
        ImageFormat::Png | ImageFormat::WebP | ImageFormat::Gif | ImageFormat::Tiff => {
            decode_other(input, format, max_pixels)?
        }
        other => {
            return Err(RenderError::UnsupportedInput(format!("{other:?} images are not decoded by {}", crate::NAME)));
        }
    };
    Ok(into_decoded(image))
}

fn decode_other(input: &[u8], format: ImageFormat, max_pixels: u64) -> Result<DynamicImage, RenderError> {
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
    let mut image = DynamicImage::from_decoder(decoder).map_err(bad)?;
    image.apply_orientation(orientation);
    Ok(image)
}

fn decode_jpeg(input: &[u8], max_pixels: u64, wanted: Option<u32>) -> Result<DynamicImage, RenderError> {
    let bad = |e: jpeg_decoder::Error| RenderError::UnsupportedInput(format!("cannot decode the JPEG image: {e}"));
    let mut decoder = jpeg_decoder::Decoder::new(std::io::Cursor::new(input));
    decoder.read_info().map_err(bad)?;
    let info = decoder.info().ok_or_else(|| RenderError::UnsupportedInput("the JPEG has no frame header".into()))?;
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    if let Some(e) = too_large(width, height, max_pixels) {
        return Err(e);
    }
    decoder.set_max_decoding_buffer_size(usize::try_from(max_pixels.saturating_mul(4)).unwrap_or(usize::MAX));
    if let Some(side) = wanted {
        // Decode at the smallest DCT scale whose shorter side still covers every variant.
        let short = width.min(height).max(1) as f64;
        let factor = (f64::from(side) / short).min(1.0);
        let req_w = (f64::from(width) * factor).ceil().clamp(1.0, f64::from(u16::MAX)) as u16;
        let req_h = (f64::from(height) * factor).ceil().clamp(1.0, f64::from(u16::MAX)) as u16;
        decoder.scale(req_w, req_h).map_err(bad)?;
    }
    let pixels = decoder.decode().map_err(bad)?;
    let info = decoder.info().ok_or_else(|| RenderError::Failed("the JPEG lost its frame header".into()))?;
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    let rgb: Vec<u8> = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => pixels,
        jpeg_decoder::PixelFormat::L8 => pixels.iter().flat_map(|&l| [l, l, l]).collect(),
        jpeg_decoder::PixelFormat::L16 => pixels.chunks_exact(2).flat_map(|c| [c[0], c[0], c[0]]).collect(),
        jpeg_decoder::PixelFormat::CMYK32 => cmyk_to_rgb(&pixels),
    };
    let buffer =
        image::RgbImage::from_raw(w, h, rgb).ok_or_else(|| RenderError::Failed("JPEG buffer size mismatch".into()))?;
    let mut image = DynamicImage::ImageRgb8(buffer);
    if let Some(orientation) = exif::jpeg_orientation(input).and_then(Orientation::from_exif) {
        image.apply_orientation(orientation);
    }
    Ok(image)
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

fn into_decoded(image: DynamicImage) -> Decoded {
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

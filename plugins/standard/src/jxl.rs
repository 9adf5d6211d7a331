//! JPEG XL still images, decoded only in wasm builds (see `decode`): `jxl-oxide` (pure Rust)
//! renders the first keyframe on this thread (no rayon: no threads in the sandbox), upright (the
//! codestream's orientation is applied by the renderer, so no EXIF orientation is applied after
//! it), in the image's own colour space. That space's ICC profile goes to `decode::to_srgb` like
//! every other format's, rather than through jxl-oxide's own `moxcms` feature: one colour
//! conversion for every input.

#[cfg(target_arch = "wasm32")]
use crate::RenderError;
#[cfg(target_arch = "wasm32")]
use image::{DynamicImage, GrayAlphaImage, GrayImage, RgbImage, RgbaImage};

/// A bare JPEG XL codestream starts with this.
const CODESTREAM: &[u8] = &[0xFF, 0x0A];
/// The ISO-BMFF container's signature box (`JXL `), which JPEG XL files with metadata use.
const CONTAINER: &[u8] = &[0, 0, 0, 0x0C, b'J', b'X', b'L', b' ', 0x0D, 0x0A, 0x87, 0x0A];

/// Whether `input` is a JPEG XL file, bare codestream or container.
pub fn is_jxl(input: &[u8]) -> bool {
    input.starts_with(CODESTREAM) || input.starts_with(CONTAINER)
}

/// Decodes a JPEG XL image to 8 bits a sample (gray, gray + alpha, RGB or RGBA as stored),
/// upright, with the ICC profile of the colour space it was rendered in.
#[cfg(target_arch = "wasm32")]
pub fn decode_jxl(input: &[u8], max_pixels: u64) -> Result<(DynamicImage, Option<Vec<u8>>), RenderError> {
    use jxl_oxide::{JxlImage, JxlThreadPool, PixelFormat};

    // jxl-oxide's errors are boxed `dyn Error`s.
    let bad = |e: Box<dyn std::error::Error + Send + Sync>| {
        RenderError::UnsupportedInput(format!("cannot decode the JPEG XL image: {e}"))
    };
    let image = JxlImage::builder().pool(JxlThreadPool::none()).read(std::io::Cursor::new(input)).map_err(bad)?;
    // Already the upright size; checked before the frame is rendered (in f32 planes: 12 bytes a
    // pixel for RGB, before ours).
    let (width, height) = (image.width(), image.height());
    if let Some(e) = crate::decode::too_large(width, height, max_pixels) {
        return Err(e);
    }
    let format = image.pixel_format();
    if matches!(format, PixelFormat::Cmyk | PixelFormat::Cmyka) {
        return Err(RenderError::UnsupportedInput("CMYK JPEG XL images are not decoded".into()));
    }
    if image.num_loaded_keyframes() == 0 {
        return Err(RenderError::UnsupportedInput("the JPEG XL file has no complete frame".into()));
    }
    let render = image.render_frame(0).map_err(bad)?;
    let mut stream = render.stream();
    let (w, h, channels) = (stream.width(), stream.height(), stream.channels());
    let mut samples = vec![0u8; w as usize * h as usize * channels as usize];
    stream.write_to_buffer(&mut samples);
    let wrong = || RenderError::Failed("the JPEG XL decoder gave a wrong number of samples".into());
    let picture = match (format, channels) {
        (PixelFormat::Gray, 1) => DynamicImage::ImageLuma8(GrayImage::from_raw(w, h, samples).ok_or_else(wrong)?),
        (PixelFormat::Graya, 2) => {
            DynamicImage::ImageLumaA8(GrayAlphaImage::from_raw(w, h, samples).ok_or_else(wrong)?)
        }
        (PixelFormat::Rgb, 3) => DynamicImage::ImageRgb8(RgbImage::from_raw(w, h, samples).ok_or_else(wrong)?),
        (PixelFormat::Rgba, 4) => DynamicImage::ImageRgba8(RgbaImage::from_raw(w, h, samples).ok_or_else(wrong)?),
        _ => return Err(wrong()),
    };
    Ok((picture, Some(image.rendered_icc())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jxl_by_its_codestream_or_container_signature() {
        assert!(is_jxl(&[0xFF, 0x0A, 0xFA, 0x7F]));
        assert!(is_jxl(b"\0\0\0\x0cJXL \r\n\x87\n\0\0\0\x14ftypjxl "));
        assert!(!is_jxl(&[0xFF, 0xD8, 0xFF, 0xE0]), "a JPEG");
        assert!(!is_jxl(b"\0\0\0\x0cJXL \r\n"), "a cut signature");
    }
}

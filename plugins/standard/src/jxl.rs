//! JPEG XL still images, decoded only in wasm builds (see `decode`; jxl-rs' `unsafe` SIMD stays
//! in the sandbox): `jxl` (jxl-rs, libjxl's own Rust decoder, with its simd128 kernels) decodes
//! the first frame on this thread, upright (the codestream's orientation is the decoder's, so no
//! EXIF orientation is applied after it), to 8 bits in the image's own colour space, whose ICC
//! profile goes to `decode::to_srgb` like every other format's. Chosen over jxl-oxide by
//! measurement: a 12 MP photo decodes 2.2-2.7x faster in wasm, with a sixth of the memory
//! (README, "Measured").

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
/// upright, with the ICC profile of the colour space it was decoded to.
#[cfg(target_arch = "wasm32")]
pub fn decode_jxl(input: &[u8], max_pixels: u64) -> Result<(DynamicImage, Option<Vec<u8>>), RenderError> {
    use jxl::api::{
        Event, ExtraChannel, JxlColorType, JxlDataFormat, JxlDecoder, JxlDecoderOptions, JxlOutputBuffer,
        JxlPixelFormat,
    };

    let bad = |e: jxl::error::Error| RenderError::UnsupportedInput(format!("cannot decode the JPEG XL image: {e}"));
    let cut = || RenderError::UnsupportedInput("the JPEG XL file ends before its first frame does".into());
    let mut options = JxlDecoderOptions::default();
    // The decoder's own bomb guard (it counts samples of every frame, extra channels included).
    options.sample_limit = usize::try_from(max_pixels.saturating_mul(8)).ok();
    let mut decoder = JxlDecoder::new(options);
    let mut data = input;
    loop {
        match decoder.process(&mut data, None, None).map_err(bad)? {
            Event::BasicInfo => break,
            Event::NeedMoreInput { .. } | Event::Complete => return Err(cut()),
            _ => {}
        }
    }
    let info = decoder.basic_info().ok_or_else(cut)?;
    // Already the upright size; checked before any pixel is decoded.
    let (width, height) = info.size;
    let (w, h) = (u32::try_from(width).unwrap_or(u32::MAX), u32::try_from(height).unwrap_or(u32::MAX));
    if let Some(e) = crate::decode::too_large(w, h, max_pixels) {
        return Err(e);
    }
    if info.extra_channels.iter().any(|c| c.ec_type == ExtraChannel::Black) {
        return Err(RenderError::UnsupportedInput("CMYK JPEG XL images are not decoded".into()));
    }
    let alpha = info.extra_channels.iter().any(|c| c.ec_type == ExtraChannel::Alpha);
    let extra_channels = info.extra_channels.len();
    let gray = decoder.current_pixel_format().is_some_and(|f| f.color_type == JxlColorType::Grayscale);
    let (color_type, channels) = match (gray, alpha) {
        (true, false) => (JxlColorType::Grayscale, 1),
        (true, true) => (JxlColorType::GrayscaleAlpha, 2),
        (false, false) => (JxlColorType::Rgb, 3),
        (false, true) => (JxlColorType::Rgba, 4),
    };
    // Alpha comes interleaved with the colour; no other extra channel is wanted.
    let format = JxlPixelFormat {
        color_type,
        color_data_format: Some(JxlDataFormat::U8 { bit_depth: 8 }),
        extra_channel_format: vec![None; extra_channels],
    };
    decoder.set_pixel_format(format).map_err(bad)?;
    let mut pixels = vec![0u8; width * height * channels];
    loop {
        let mut buffers = [JxlOutputBuffer::new(&mut pixels, height, width * channels)];
        match decoder.process(&mut data, Some(&mut buffers), None).map_err(bad)? {
            Event::FrameComplete { .. } => break,
            Event::NeedMoreInput { .. } | Event::Complete => return Err(cut()),
            _ => {}
        }
    }
    let icc = decoder.output_color_profile().map(|p| p.as_icc().into_owned());
    let wrong = || RenderError::Failed("the JPEG XL decoder gave a wrong number of samples".into());
    let picture = match channels {
        1 => DynamicImage::ImageLuma8(GrayImage::from_raw(w, h, pixels).ok_or_else(wrong)?),
        2 => DynamicImage::ImageLumaA8(GrayAlphaImage::from_raw(w, h, pixels).ok_or_else(wrong)?),
        3 => DynamicImage::ImageRgb8(RgbImage::from_raw(w, h, pixels).ok_or_else(wrong)?),
        _ => DynamicImage::ImageRgba8(RgbaImage::from_raw(w, h, pixels).ok_or_else(wrong)?),
    };
    Ok((picture, icc))
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

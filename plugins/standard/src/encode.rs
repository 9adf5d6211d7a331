//! Encoding: WebP (lossy: libwebp in native builds, the pure-Rust VP8 encoder in wasm), AVIF
//! (ravif/rav1e), JPEG and PNG (image). Nothing of the source's metadata is written.

use image::ImageEncoder;

use crate::{Format, RenderError};

/// AVIF encoder speed (1 slowest/best .. 10 fastest). Measured on 1600-wide photos at q60: 9
/// takes 1.3-1.7 s where ravif's default 6 takes 3.1-4.1 s (2.4x faster), for files 1.4-6.6%
/// larger and a mean error 0.6-1.2% higher; 10 is faster still but up to 39% larger.
const AVIF_SPEED: u8 = 9;

/// An encoder other than the built-in one: `(pixels, width, height, has_alpha, format, quality)`.
pub type Encoder = fn(&[u8], u32, u32, bool, Format, u8) -> Result<Vec<u8>, String>;

static ENCODER: std::sync::OnceLock<Encoder> = std::sync::OnceLock::new();

/// Routes encoding through `encoder` from now on (the component hands it to the host's native
/// encoders: inside wasm they are about twice as slow). The first call wins.
pub fn use_encoder(encoder: Encoder) {
    let _ = ENCODER.set(encoder);
}

/// The built-in AVIF encoder (ravif).
fn encode_avif(pixels: &[u8], width: u32, height: u32, has_alpha: bool, quality: u8) -> Result<Vec<u8>, String> {
    let encoder = ravif::Encoder::new()
        .with_quality(f32::from(quality))
        .with_alpha_quality(f32::from(quality))
        .with_speed(AVIF_SPEED);
    let (w, h) = (width as usize, height as usize);
    let encoded = if has_alpha {
        let rgba: Vec<ravif::RGBA8> =
            pixels.chunks_exact(4).map(|p| ravif::RGBA8::new(p[0], p[1], p[2], p[3])).collect();
        encoder.encode_rgba(ravif::Img::new(&rgba[..], w, h))
    } else {
        let rgb: Vec<ravif::RGB8> = pixels.chunks_exact(3).map(|p| ravif::RGB8::new(p[0], p[1], p[2])).collect();
        encoder.encode_rgb(ravif::Img::new(&rgb[..], w, h))
    };
    encoded.map(|e| e.avif_file).map_err(|e| e.to_string())
}

/// Encodes tightly packed RGBA8 (`has_alpha`) or RGB8 pixels, through the encoder given to
/// [`use_encoder`] when there is one.
pub fn encode(
    pixels: &[u8],
    width: u32,
    height: u32,
    has_alpha: bool,
    format: Format,
    quality: u8,
) -> Result<Vec<u8>, RenderError> {
    match ENCODER.get() {
        Some(encoder) => encoder(pixels, width, height, has_alpha, format, quality)
            .map_err(|e| RenderError::Failed(format!("{format:?} encoding failed: {e}"))),
        None => encode_builtin(pixels, width, height, has_alpha, format, quality),
    }
}

/// The built-in encoders, whatever [`use_encoder`] says.
pub fn encode_builtin(
    pixels: &[u8],
    width: u32,
    height: u32,
    has_alpha: bool,
    format: Format,
    quality: u8,
) -> Result<Vec<u8>, RenderError> {
    let failed = |what: &str, e: &dyn std::fmt::Display| RenderError::Failed(format!("{what} encoding failed: {e}"));
    let mut out = Vec::new();
    match format {
        Format::Jpeg => {
            let rgb = if has_alpha { flatten_on_white(pixels) } else { pixels.to_vec() };
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
                .write_image(&rgb, width, height, image::ExtendedColorType::Rgb8)
                .map_err(|e| failed("JPEG", &e))?;
        }
        Format::Png => {
            let color = if has_alpha { image::ExtendedColorType::Rgba8 } else { image::ExtendedColorType::Rgb8 };
            image::codecs::png::PngEncoder::new_with_quality(
                &mut out,
                image::codecs::png::CompressionType::Default,
                image::codecs::png::FilterType::Adaptive,
            )
            .write_image(pixels, width, height, color)
            .map_err(|e| failed("PNG", &e))?;
        }
        #[cfg(not(target_arch = "wasm32"))]
        Format::Webp => {
            out = crate::libwebp::encode(pixels, width, height, has_alpha, quality).map_err(|e| failed("WebP", &e))?;
        }
        #[cfg(target_arch = "wasm32")]
        Format::Webp => {
            let mut encoder = image_webp::WebPEncoder::new(&mut out);
            let mut params = image_webp::EncoderParams::default();
            params.use_lossy = true;
            params.lossy_quality = quality;
            encoder.set_params(params);
            let color = if has_alpha { image_webp::ColorType::Rgba8 } else { image_webp::ColorType::Rgb8 };
            encoder.encode(pixels, width, height, color).map_err(|e| failed("WebP", &e))?;
        }
        Format::Avif => {
            out = encode_avif(pixels, width, height, has_alpha, quality).map_err(|e| failed("AVIF", &e))?;
        }
    }
    Ok(out)
}

/// JPEG has no alpha: composite onto white, as a browser shows a transparent image on a page.
fn flatten_on_white(rgba: &[u8]) -> Vec<u8> {
    rgba.chunks_exact(4)
        .flat_map(|p| {
            let a = u16::from(p[3]);
            let blend = |c: u8| ((u16::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
            [blend(p[0]), blend(p[1]), blend(p[2])]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transparent_becomes_white_and_opaque_stays() {
        assert_eq!(
            flatten_on_white(&[10, 20, 30, 0, 10, 20, 30, 255, 0, 0, 0, 128]),
            vec![255, 255, 255, 10, 20, 30, 127, 127, 127]
        );
    }
}

//! HEIC/HEIF still images, decoded only in wasm builds with the `heic` feature (see `decode`):
//! `heifer` (pure, safe Rust HEIF + HEVC) decodes the primary item on this thread (no threads in
//! the sandbox), tiled grids (iPhone photos) and overlays assembled, `clap`/`irot`/`imir`
//! applied, alpha from its auxiliary item. The ICC profile (iPhones: Display P3) goes to
//! `decode::to_srgb` like every other format's.

#[cfg(all(target_arch = "wasm32", feature = "heic"))]
use crate::RenderError;
#[cfg(all(target_arch = "wasm32", feature = "heic"))]
use image::{DynamicImage, RgbaImage};

/// Decodes a HEIC/HEIF image to RGBA8 (RGB8 when it has no alpha), upright, with its ICC profile.
#[cfg(all(target_arch = "wasm32", feature = "heic"))]
pub fn decode_heic(input: &[u8], max_pixels: u64) -> Result<(DynamicImage, Option<Vec<u8>>), RenderError> {
    let options = heifer::Options { max_threads: 1, max_pixels: max_pixels.max(1) };
    // heifer refuses an image over `max_pixels` as an invalid file like any other (it has no error
    // of its own for it); the host refused such uploads at their header already.
    let image = heifer::decode_rgba8(input, &options)
        .map_err(|e| RenderError::UnsupportedInput(format!("cannot decode the HEIF image: {e}")))?;
    let icc = heifer::read_metadata(input).ok().and_then(|m| m.icc_profile);
    let (width, height, has_alpha) = (image.width, image.height, image.has_alpha);
    let rgba = RgbaImage::from_raw(width, height, image.data)
        .ok_or_else(|| RenderError::Failed("the HEIF decoder gave a wrong number of samples".into()))?;
    let picture = DynamicImage::ImageRgba8(rgba);
    Ok((if has_alpha { picture } else { DynamicImage::ImageRgb8(picture.to_rgb8()) }, icc))
}

/// Whether `input` is a HEIF file of HEVC pictures (HEIC), by its `ftyp` brands: a HEVC brand, or
/// the generic `mif1`/`msf1` without an AVIF one.
pub fn is_heif(input: &[u8]) -> bool {
    let Some(brands) = ftyp_brands(input) else { return false };
    let has = |b: &[u8; 4]| brands.iter().any(|x| x == b);
    let hevc = [b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"].iter().any(|b| has(b));
    hevc || ((has(b"mif1") || has(b"msf1")) && !has(b"avif") && !has(b"avis"))
}

/// The major and compatible brands of an ISO-BMFF `ftyp` box at the start of `input`.
fn ftyp_brands(input: &[u8]) -> Option<Vec<[u8; 4]>> {
    if input.len() < 16 || &input[4..8] != b"ftyp" {
        return None;
    }
    let size = u32::from_be_bytes([input[0], input[1], input[2], input[3]]) as usize;
    let end = size.clamp(16, 512).min(input.len());
    let mut brands = vec![[input[8], input[9], input[10], input[11]]];
    brands.extend(input[16..end].chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]));
    Some(brands)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heic_by_its_brands_and_not_avif() {
        assert!(is_heif(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic"));
        assert!(is_heif(b"\0\0\0\x18ftypmif1\0\0\0\0mif1heic"));
        assert!(!is_heif(b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf"));
        assert!(!is_heif(b"\0\0\0\x1cftypmif1\0\0\0\0mif1avifmiaf"));
        assert!(!is_heif(b"\xff\xd8\xff\xe0"));
    }
}

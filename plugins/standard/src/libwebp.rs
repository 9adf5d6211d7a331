//! Lossy WebP through libwebp (C, built from its vendored source by `libwebp-sys`): the encoder
//! of native builds, the one libvips and cwebp use. About 3x faster than the pure-Rust encoder
//! wasm builds use, and smaller files at the same quality. The simple API is libwebp's default
//! preset at `quality`, method 4 (what `vips webpsave` does by default).
#![allow(unsafe_code)] // the FFI calls below, each with its reasoning

use std::ffi::c_int;

/// WebP's largest side.
const MAX_SIDE: u32 = 16383;

/// Encodes tightly packed RGBA8 (`has_alpha`) or RGB8 pixels as lossy WebP (alpha, when there
/// is one, is kept losslessly).
pub fn encode(pixels: &[u8], width: u32, height: u32, has_alpha: bool, quality: u8) -> Result<Vec<u8>, String> {
    if !(1..=MAX_SIDE).contains(&width) || !(1..=MAX_SIDE).contains(&height) {
        return Err(format!("{width}x{height} is outside WebP's 1..={MAX_SIDE} pixels a side"));
    }
    let channels: usize = if has_alpha { 4 } else { 3 };
    let expected = width as usize * height as usize * channels;
    if pixels.len() != expected {
        return Err(format!("{} bytes of pixels for {width}x{height}x{channels} ({expected} expected)", pixels.len()));
    }
    // Both fit: at most 16383 * 4.
    let (w, h, stride) = (width as c_int, height as c_int, (width as usize * channels) as c_int);
    let quality = f32::from(quality.clamp(1, 100));
    let mut out: *mut u8 = std::ptr::null_mut();
    // SAFETY: `pixels` holds exactly `height` rows of `stride` bytes (checked above), which is
    // all libwebp reads; it writes only `out`, a buffer it allocates and we free below.
    let size = unsafe {
        if has_alpha {
            libwebp_sys::WebPEncodeRGBA(pixels.as_ptr(), w, h, stride, quality, &mut out)
        } else {
            libwebp_sys::WebPEncodeRGB(pixels.as_ptr(), w, h, stride, quality, &mut out)
        }
    };
    if out.is_null() {
        return Err("libwebp could not encode the picture (out of memory?)".into());
    }
    // SAFETY: on success libwebp's buffer `out` holds `size` initialised bytes; it is ours to
    // read until we free it, just after copying it out.
    let bytes = (size > 0).then(|| unsafe { std::slice::from_raw_parts(out, size) }.to_vec());
    // SAFETY: `out` was allocated by libwebp and is freed exactly once, by libwebp.
    unsafe { libwebp_sys::WebPFree(out.cast()) };
    bytes.ok_or_else(|| "libwebp could not encode the picture".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_what_decodes_back_and_refuses_bad_calls() {
        let (w, h) = (37u32, 21u32);
        let rgb: Vec<u8> = (0..w * h).flat_map(|i| [(i % 251) as u8, 128, (i / 7 % 256) as u8]).collect();
        let webp = encode(&rgb, w, h, false, 80).expect("encodes");
        let back = image::load_from_memory_with_format(&webp, image::ImageFormat::WebP).expect("a WebP");
        assert_eq!((back.width(), back.height()), (w, h));
        assert!(!back.color().has_alpha());

        let mut rgba: Vec<u8> = rgb.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect();
        rgba[3] = 0; // one transparent pixel
        let webp = encode(&rgba, w, h, true, 80).expect("encodes");
        let back = image::load_from_memory_with_format(&webp, image::ImageFormat::WebP).expect("a WebP").into_rgba8();
        assert_eq!(back.get_pixel(0, 0).0[3], 0, "alpha is kept");
        assert_eq!(back.get_pixel(1, 0).0[3], 255);

        assert!(encode(&rgb[1..], w, h, false, 80).is_err(), "short buffer");
        assert!(encode(&rgb, 0, h, false, 80).is_err(), "empty");
        assert!(encode(&[0; 3], 16384, 1, false, 80).is_err(), "over WebP's side");
    }
}

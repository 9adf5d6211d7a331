//! What a render saw of the original, from its one decode: placeholders to show while the
//! image loads (BlurHash, ThumbHash, the dominant colour), how many frames it has, and what it
//! says of itself (see `metadata`).

pub use crate::metadata::{Gps, Metadata};

use crate::decode::Decoded;
use fast_image_resize as fr;

/// The longer side of the thumbnail placeholders are made from (ThumbHash takes at most 100).
pub const THUMBNAIL: u32 = 100;

/// The BlurHash components across and down: 4x3 suits landscape photos, the common case, and is
/// what blurha.sh suggests.
const BLURHASH_COMPONENTS: (u32, u32) = (4, 3);

#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub blurhash: String,
    pub thumbhash: Vec<u8>,
    /// `[r, g, b]`.
    pub dominant_color: [u8; 3],
    /// 1 for a still.
    pub frames: u32,
    pub metadata: Metadata,
}

/// Analyses the decoded, upright `source` of `input`. `profile` is the description of the ICC
/// profile it came with.
pub fn analyse(source: &Decoded, input: &[u8], profile: Option<String>) -> Analysis {
    let (width, height, rgba) = shrunk(source, THUMBNAIL);
    let (cx, cy) = BLURHASH_COMPONENTS;
    // Only fails for components outside 1..=9 or a buffer of the wrong size, neither of which
    // `shrunk` makes.
    let blurhash = blurhash::encode(cx, cy, width, height, &rgba).unwrap_or_default();
    let thumbhash = thumbhash::rgba_to_thumb_hash(width as usize, height as usize, &rgba);
    let mut metadata = crate::metadata::read(input);
    metadata.color_profile = profile;
    Analysis { blurhash, thumbhash, dominant_color: dominant(&rgba), frames: crate::frames::count(input), metadata }
}

/// `source` shrunk (box filter, ratio kept) so that its longer side is at most `longest`, as
/// RGBA8: the small copy placeholders and saliency look at.
pub fn shrunk(source: &Decoded, longest: u32) -> (u32, u32, Vec<u8>) {
    let scale = (f64::from(longest) / f64::from(source.width.max(source.height))).min(1.0);
    let width = ((f64::from(source.width) * scale).round() as u32).clamp(1, longest);
    let height = ((f64::from(source.height) * scale).round() as u32).clamp(1, longest);
    // Shrunk as decoded (no full-size copy: a large photo is most of the sandbox's memory),
    // then made RGBA at the small size.
    let pixel_type = if source.has_alpha { fr::PixelType::U8x4 } else { fr::PixelType::U8x3 };
    let resized =
        fr::images::ImageRef::new(source.width, source.height, &source.pixels, pixel_type).ok().and_then(|src| {
            let mut dst = fr::images::Image::new(width, height, pixel_type);
            let options = fr::ResizeOptions::new().resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Box));
            fr::Resizer::new().resize(&src, &mut dst, &options).ok().map(|()| dst.into_vec())
        });
    let rgba = |pixels: Vec<u8>| match source.has_alpha {
        true => pixels,
        false => pixels.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect(),
    };
    match resized.map(rgba) {
        Some(pixels) => (width, height, pixels),
        // A buffer that does not match its size (never from `decode`): one grey pixel.
        None => (1, 1, vec![128, 128, 128, 255]),
    }
}

/// The most common colour of `rgba` at 16 levels a channel, as the mean of the pixels of that
/// level; transparent pixels do not count (black when every pixel is transparent).
fn dominant(rgba: &[u8]) -> [u8; 3] {
    let mut bins = vec![(0u32, [0u64; 3]); 16 * 16 * 16];
    for p in rgba.chunks_exact(4).filter(|p| p[3] >= 128) {
        let bin = &mut bins[(usize::from(p[0] >> 4) << 8) | (usize::from(p[1] >> 4) << 4) | usize::from(p[2] >> 4)];
        bin.0 += 1;
        for (sum, v) in bin.1.iter_mut().zip(p) {
            *sum += u64::from(*v);
        }
    }
    let (count, sums) = bins.into_iter().max_by_key(|(count, _)| *count).unwrap_or_default();
    if count == 0 {
        return [0, 0, 0];
    }
    sums.map(|s| (s / u64::from(count)) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean(rgba: &[u8]) -> [f64; 3] {
        let n = (rgba.len() / 4) as f64;
        let mut m = [0.0; 3];
        for p in rgba.chunks_exact(4) {
            for c in 0..3 {
                m[c] += f64::from(p[c]) / n;
            }
        }
        m
    }

    #[test]
    fn placeholders_decode_to_the_pictures_colours() {
        // Warm to the right, lighter downwards: photo-like, smooth light (a placeholder keeps
        // the low frequencies; hard-edged halves of saturated colours ring, then clip).
        let (w, h) = (640u32, 480u32);
        let pixels: Vec<u8> =
            (0..w * h).flat_map(|i| [(80 + (i % w) * 120 / w) as u8, (60 + (i / w) * 100 / h) as u8, 90]).collect();
        let source = Decoded { width: w, height: h, pixels, has_alpha: false };
        let analysis = analyse(&source, b"", None);
        let original = mean(&shrunk(&source, THUMBNAIL).2);

        let (tw, th, thumb) = thumbhash::thumb_hash_to_rgba(&analysis.thumbhash).expect("a ThumbHash");
        assert!(tw > 0 && th > 0 && (tw as f64 / th as f64 - 4.0 / 3.0).abs() < 0.2, "{tw}x{th}");
        let blur = blurhash::decode(&analysis.blurhash, 32, 24, 1.0).expect("a BlurHash");
        for decoded in [mean(&thumb), mean(&blur)] {
            for c in 0..3 {
                assert!((decoded[c] - original[c]).abs() < 8.0, "{decoded:?} vs {original:?}");
            }
        }
        let [r, g, b] = analysis.dominant_color;
        assert!((80..=200).contains(&r) && (60..=160).contains(&g) && b == 90, "{r} {g} {b}");
        assert_eq!(analysis.frames, 1, "a still, whatever the bytes");
    }

    #[test]
    fn slivers_and_single_pixels_are_analysed_without_a_panic() {
        for (w, h) in [(1, 1), (1, 300), (300, 1), (10_000, 2), (2, 10_000)] {
            let source = Decoded { width: w, height: h, pixels: vec![77; (w * h * 3) as usize], has_alpha: false };
            let analysis = analyse(&source, b"", None);
            assert!(!analysis.blurhash.is_empty() && !analysis.thumbhash.is_empty(), "{w}x{h}");
            assert_eq!(analysis.dominant_color, [77, 77, 77], "{w}x{h}");
            let centre = crate::gravity::Saliency::of(&source).best_centre((0.5, 0.5));
            assert_eq!(centre, (0.5, 0.5), "{w}x{h}: nothing stands out in a flat picture");
        }
    }

    #[test]
    fn transparent_pixels_do_not_colour_the_placeholder() {
        let pixels: Vec<u8> =
            (0..100 * 100).flat_map(|i| if i < 2000 { [10, 200, 10, 255] } else { [255, 0, 0, 0] }).collect();
        let source = Decoded { width: 100, height: 100, pixels, has_alpha: true };
        assert_eq!(dominant(&shrunk(&source, THUMBNAIL).2), [10, 200, 10]);
        let none = Decoded { width: 2, height: 2, pixels: vec![0; 16], has_alpha: true };
        assert_eq!(dominant(&shrunk(&none, THUMBNAIL).2), [0, 0, 0]);
    }
}

//! How many frames an original has, read from its container without decoding any: GIF image
//! descriptors, animated WebP `ANMF` chunks; every other input is a still.

/// The frames of `input`: at least 1.
pub fn count(input: &[u8]) -> u32 {
    let frames = if input.starts_with(b"GIF8") {
        gif(input).map(|blocks| blocks.frames)
    } else if input.len() >= 12 && &input[..4] == b"RIFF" && &input[8..12] == b"WEBP" {
        webp(input)
    } else {
        None
    };
    frames.unwrap_or(0).max(1)
}

/// How many times a GIF is played, as WebP's `ANIM` says it (0: forever). A GIF's `NETSCAPE2.0`
/// loop count is of *repeats* (0 is forever), and a GIF without one plays once: what browsers
/// do, and what libwebp's `gif2webp` writes.
pub fn gif_plays(input: &[u8]) -> u16 {
    match gif(input).and_then(|blocks| blocks.repeats) {
        None => 1,
        Some(0) => 0,
        Some(repeats) => repeats.saturating_add(1),
    }
}

/// What a walk over a GIF's blocks saw.
struct GifBlocks {
    frames: u32,
    /// The `NETSCAPE2.0` application extension's loop count.
    repeats: Option<u16>,
}

/// Walks the GIF's blocks; `None` where they stop making sense (a broken file is a still).
fn gif(input: &[u8]) -> Option<GifBlocks> {
    let flags = *input.get(10)?;
    // Header (6), logical screen descriptor (7), then the global colour table if flagged.
    let mut at = 13 + if flags & 0x80 != 0 { 3 << ((flags & 7) + 1) } else { 0 };
    let skip_sub_blocks = |mut at: usize| -> Option<usize> {
        loop {
            let len = usize::from(*input.get(at)?);
            at += 1 + len;
            if len == 0 {
                return Some(at);
            }
        }
    };
    let mut blocks = GifBlocks { frames: 0, repeats: None };
    loop {
        match *input.get(at)? {
            // An image: descriptor (10), local colour table, LZW minimum code size, data.
            0x2C => {
                blocks.frames += 1;
                let flags = *input.get(at + 9)?;
                at += 10 + if flags & 0x80 != 0 { 3 << ((flags & 7) + 1) } else { 0 };
                at = skip_sub_blocks(at + 1)?;
            }
            // An application extension: `NETSCAPE2.0`, then a sub-block `01 lo hi`.
            0x21 if input.get(at + 1) == Some(&0xFF) => {
                if input.get(at + 2..at + 14) == Some(&b"\x0BNETSCAPE2.0"[..])
                    && input.get(at + 14..at + 16) == Some(&[3u8, 1][..])
                {
                    blocks.repeats = Some(u16::from_le_bytes([*input.get(at + 16)?, *input.get(at + 17)?]));
                }
                at = skip_sub_blocks(at + 2)?;
            }
            // Any other extension: label, then sub-blocks.
            0x21 => at = skip_sub_blocks(at + 2)?,
            _ => return Some(blocks), // the trailer (0x3B), or where the file stops making sense
        }
    }
}

/// Counts the `ANMF` chunks of an animated WebP (0 for a still: `VP8 `/`VP8L` alone).
fn webp(input: &[u8]) -> Option<u32> {
    let mut at = 12;
    let mut frames = 0;
    while at + 8 <= input.len() {
        let size = u32::from_le_bytes(input[at + 4..at + 8].try_into().ok()?) as usize;
        if &input[at..at + 4] == b"ANMF" {
            frames += 1;
        }
        // Chunks are padded to an even size.
        at = at.checked_add(8)?.checked_add(size)?.checked_add(size & 1)?;
    }
    Some(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gif_of(frames: usize) -> Vec<u8> {
        gif_repeating(frames, None)
    }

    fn gif_repeating(frames: usize, repeat: Option<image::codecs::gif::Repeat>) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = image::codecs::gif::GifEncoder::new(&mut out);
        if let Some(repeat) = repeat {
            encoder.set_repeat(repeat).expect("a repeat");
        }
        for i in 0..frames {
            let frame = image::RgbaImage::from_pixel(4, 3, image::Rgba([i as u8 * 40, 0, 0, 255]));
            encoder.encode_frame(image::Frame::new(frame)).expect("encodes");
        }
        drop(encoder);
        out
    }

    #[test]
    fn counts_gif_frames() {
        assert_eq!(count(&gif_of(1)), 1);
        assert_eq!(count(&gif_of(3)), 3);
        let whole = gif_of(3);
        assert!(count(&whole[..whole.len() / 2]) >= 1, "a cut file is at least a still");
    }

    #[test]
    fn gif_loops_become_webp_plays() {
        use image::codecs::gif::Repeat;
        assert_eq!(gif_plays(&gif_repeating(2, Some(Repeat::Infinite))), 0, "forever");
        assert_eq!(gif_plays(&gif_repeating(2, Some(Repeat::Finite(2)))), 3, "twice repeated");
        assert_eq!(gif_plays(&gif_repeating(2, None)), 1, "no NETSCAPE block: once");
        assert_eq!(count(&gif_repeating(3, Some(Repeat::Infinite))), 3, "the extension is not a frame");
    }

    #[test]
    fn stills_are_one_frame() {
        assert_eq!(count(b"\xFF\xD8\xFF\xE0 a jpeg"), 1);
        assert_eq!(count(b"RIFF\x0c\0\0\0WEBPVP8 \0\0\0\0"), 1);
        assert_eq!(count(b""), 1);
    }
}

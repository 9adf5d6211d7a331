//! How many frames an original has, read from its container without decoding any: GIF image
//! descriptors, animated WebP `ANMF` chunks; every other input is a still.

/// The frames of `input`: at least 1.
pub fn count(input: &[u8]) -> u32 {
    let frames = if input.starts_with(b"GIF8") {
        gif(input)
    } else if input.len() >= 12 && &input[..4] == b"RIFF" && &input[8..12] == b"WEBP" {
        webp(input)
    } else {
        None
    };
    frames.unwrap_or(0).max(1)
}

/// Walks the GIF's blocks; `None` where they stop making sense (what was counted is kept by the
/// caller's `max(1)` only: a broken file is a still).
fn gif(input: &[u8]) -> Option<u32> {
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
    let mut frames = 0;
    loop {
        match *input.get(at)? {
            // An image: descriptor (10), local colour table, LZW minimum code size, data.
            0x2C => {
                frames += 1;
                let flags = *input.get(at + 9)?;
                at += 10 + if flags & 0x80 != 0 { 3 << ((flags & 7) + 1) } else { 0 };
                at = skip_sub_blocks(at + 1)?;
            }
            // An extension: label, then sub-blocks.
            0x21 => at = skip_sub_blocks(at + 2)?,
            0x3B => return Some(frames),
            _ => return Some(frames),
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
        let mut out = Vec::new();
        let mut encoder = image::codecs::gif::GifEncoder::new(&mut out);
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
    fn stills_are_one_frame() {
        assert_eq!(count(b"\xFF\xD8\xFF\xE0 a jpeg"), 1);
        assert_eq!(count(b"RIFF\x0c\0\0\0WEBPVP8 \0\0\0\0"), 1);
        assert_eq!(count(b""), 1);
    }
}

//! Whether an original may have transparency, read from its container's headers (the host never
//! decodes untrusted pixels: that is the sandbox's work). A `format: "auto"` variant's fallback
//! sibling is a PNG when this says yes, else a JPEG, which would lose the transparency. When a
//! header cannot tell, the answer is yes: a PNG is only bigger, a JPEG would be wrong.

/// Whether `original` may have an alpha channel.
pub fn may_have_alpha(original: &[u8]) -> bool {
    match original {
        [0xFF, 0xD8, 0xFF, ..] => false,
        [0x89, b'P', b'N', b'G', ..] => png(original),
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => webp(original),
        [b'G', b'I', b'F', b'8', ..] => gif(original),
        [b'I', b'I', 42, 0, ..] | [b'M', b'M', 0, 42, ..] => tiff(original),
        [_, _, _, _, b'f', b't', b'y', b'p', ..] => isobmff(original),
        _ => true,
    }
}

/// PNG: a colour type with alpha (4 grey + alpha, 6 RGBA), or a `tRNS` chunk before the pixels.
fn png(bytes: &[u8]) -> bool {
    let Some(&colour_type) = bytes.get(25) else { return true };
    if colour_type == 4 || colour_type == 6 {
        return true;
    }
    let mut at = 8;
    while let Some(header) = bytes.get(at..at + 8) {
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        match &header[4..8] {
            b"tRNS" => return true,
            b"IDAT" | b"IEND" => return false,
            _ => at = at.saturating_add(12).saturating_add(len),
        }
    }
    true
}

/// WebP: the extended header's alpha flag, or the lossless header's `alpha_is_used` bit; a
/// simple lossy WebP has none.
fn webp(bytes: &[u8]) -> bool {
    match bytes.get(12..16) {
        Some(b"VP8 ") => false,
        Some(b"VP8X") => bytes.get(20).is_none_or(|flags| flags & 0x10 != 0),
        // Signature 0x2f, then 14 bits width - 1, 14 bits height - 1, 1 bit alpha_is_used.
        Some(b"VP8L") => match bytes.get(21..25) {
            Some(b) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) & (1 << 28) != 0,
            None => true,
        },
        _ => true,
    }
}

/// GIF: a graphic control extension (`21 F9 04`) with its transparency flag. Searched for, not
/// parsed: a match inside the pixels makes a PNG where a JPEG would do, never the reverse.
fn gif(bytes: &[u8]) -> bool {
    bytes.windows(4).any(|w| w[..3] == [0x21, 0xF9, 0x04] && w[3] & 1 != 0)
}

/// TIFF: an `ExtraSamples` tag (338) in the first directory.
fn tiff(bytes: &[u8]) -> bool {
    let little = bytes[0] == b'I';
    let u16_at = |at: usize| {
        bytes
            .get(at..at + 2)
            .map(|b| if little { u16::from_le_bytes([b[0], b[1]]) } else { u16::from_be_bytes([b[0], b[1]]) })
    };
    let Some(ifd) = bytes.get(4..8).map(|b| {
        let b = [b[0], b[1], b[2], b[3]];
        (if little { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) }) as usize
    }) else {
        return true;
    };
    let Some(entries) = u16_at(ifd) else { return true };
    (0..usize::from(entries)).any(|i| u16_at(ifd + 2 + i * 12).is_none_or(|tag| tag == 338))
}

/// AVIF and HEIF: an auxiliary image of type alpha, named in the `meta` box near the start.
fn isobmff(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(1 << 20)];
    let has = |needle: &[u8]| head.windows(needle.len()).any(|w| w == needle);
    has(b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha") || has(b"urn:mpeg:hevc:2015:auxid:1")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_of(colour_type: u8, chunks: &[&[u8; 4]]) -> Vec<u8> {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 8, colour_type, 0, 0, 0, 0, 0, 0, 0]);
        for name in chunks {
            png.extend_from_slice(&[0, 0, 0, 0]);
            png.extend_from_slice(&name[..]);
            png.extend_from_slice(&[0, 0, 0, 0]);
        }
        png
    }

    #[test]
    fn png_alpha_comes_from_the_colour_type_or_a_trns_chunk() {
        assert!(may_have_alpha(&png_of(6, &[b"IDAT"])));
        assert!(may_have_alpha(&png_of(4, &[b"IDAT"])));
        assert!(!may_have_alpha(&png_of(2, &[b"gAMA", b"IDAT"])));
        assert!(may_have_alpha(&png_of(3, &[b"PLTE", b"tRNS", b"IDAT"])));
    }

    #[test]
    fn reads_the_fixtures_right() {
        let fixture = |name: &str| {
            std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name))
                .expect("a fixture")
        };
        for name in ["alpha.png", "alpha.avif", "lossless-alpha.webp"] {
            assert!(may_have_alpha(&fixture(name)), "{name} has alpha");
        }
        for name in ["photo.jpg", "cmyk.jpg", "photo.avif", "photo-444.avif", "photo.webp", "photo.tiff", "gray16.png"]
        {
            assert!(!may_have_alpha(&fixture(name)), "{name} has no alpha");
        }
    }

    #[test]
    fn jpeg_never_and_unknown_always() {
        assert!(!may_have_alpha(&[0xFF, 0xD8, 0xFF, 0xE0]));
        assert!(may_have_alpha(b"something else"));
        assert!(!may_have_alpha(b"RIFF\0\0\0\0WEBPVP8 \0\0\0\0"));
        assert!(may_have_alpha(b"RIFF\0\0\0\0WEBPVP8X\0\0\0\0\x10\0\0\0"));
        assert!(!may_have_alpha(b"RIFF\0\0\0\0WEBPVP8X\0\0\0\0\x00\0\0\0"));
    }
}

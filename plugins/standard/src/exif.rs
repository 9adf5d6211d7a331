//! EXIF orientation of JPEGs, read from the APP1 segment without decoding anything.

/// The Orientation tag (1..=8) of a JPEG's EXIF segment, if any.
pub fn jpeg_orientation(jpeg: &[u8]) -> Option<u8> {
    if !jpeg.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut at = 2;
    while at + 4 <= jpeg.len() {
        if jpeg[at] != 0xFF {
            return None;
        }
        let marker = jpeg[at + 1];
        // A frame header or the scan: EXIF would have come before.
        let frame = (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if marker == 0xDA || frame {
            return None;
        }
        let len = u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]) as usize;
        let segment = jpeg.get(at + 4..at + 2 + len)?;
        if marker == 0xE1
            && let Some(tiff) = segment.strip_prefix(b"Exif\0\0")
        {
            return tiff_orientation(tiff);
        }
        at += 2 + len;
    }
    None
}

fn tiff_orientation(tiff: &[u8]) -> Option<u8> {
    let big = match tiff.get(..2)? {
        b"MM" => true,
        b"II" => false,
        _ => return None,
    };
    let u16_at = |i: usize| {
        tiff.get(i..i + 2)
            .map(|b| if big { u16::from_be_bytes([b[0], b[1]]) } else { u16::from_le_bytes([b[0], b[1]]) })
    };
    let u32_at = |i: usize| {
        tiff.get(i..i + 4).map(|b| {
            let b = [b[0], b[1], b[2], b[3]];
            if big { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) }
        })
    };
    let ifd = u32_at(4)? as usize;
    let count = u16_at(ifd)? as usize;
    (0..count.min(512)).find_map(|i| {
        let entry = ifd + 2 + i * 12;
        if u16_at(entry)? != 0x0112 {
            return None;
        }
        u8::try_from(u16_at(entry + 8)?).ok().filter(|v| (1..=8).contains(v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg_with_exif(tiff: &[u8]) -> Vec<u8> {
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE1];
        let payload = [&b"Exif\0\0"[..], tiff].concat();
        jpeg.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
        jpeg.extend_from_slice(&payload);
        jpeg.extend_from_slice(&[0xFF, 0xDA]);
        jpeg
    }

    #[test]
    fn reads_both_byte_orders() {
        let big = b"MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0";
        let little = b"II\x2a\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0\x08\0\0\0";
        assert_eq!(jpeg_orientation(&jpeg_with_exif(big)), Some(6));
        assert_eq!(jpeg_orientation(&jpeg_with_exif(little)), Some(8));
    }

    #[test]
    fn absent_or_broken_is_none() {
        assert_eq!(jpeg_orientation(&[0xFF, 0xD8, 0xFF, 0xDA, 0, 2]), None);
        assert_eq!(jpeg_orientation(&[0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF]), None);
        assert_eq!(jpeg_orientation(b"not a jpeg"), None);
        assert_eq!(jpeg_orientation(&jpeg_with_exif(b"MM\0\x2a\xff\xff\xff\xff")), None);
    }
}

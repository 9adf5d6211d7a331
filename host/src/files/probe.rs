//! Image dimensions from the header only (no decode on the request path), and the EXIF
//! orientation of JPEGs, so that the reported `width`/`height` are the upright size.

use super::sniff::{JPEG, Sniffed};

/// What the header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    /// Upright width (after EXIF orientation).
    pub width: u32,
    pub height: u32,
    /// EXIF orientation 1..=8 (1 when absent).
    pub orientation: u8,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Probe {
    /// The header continues past what was read.
    NeedMore,
    Done(ImageInfo),
    /// Not a readable image header.
    Invalid(String),
}

/// How far into a file the header may reach before we give up (EXIF and ICC segments of
/// JPEGs can take a few hundred KiB before the frame header).
pub const MAX_HEADER_BYTES: usize = 1024 * 1024;

/// Reads dimensions from `head`; `complete` says the whole file is in `head`.
pub fn probe(kind: Sniffed, head: &[u8], complete: bool) -> Probe {
    let size = match imagesize::blob_size(head) {
        Ok(size) => size,
        Err(_) if !complete && head.len() < MAX_HEADER_BYTES => return Probe::NeedMore,
        Err(e) => return Probe::Invalid(format!("cannot read the {} header: {e}", kind.mime)),
    };
    let (Ok(width), Ok(height)) = (u32::try_from(size.width), u32::try_from(size.height)) else {
        return Probe::Invalid("the header gives impossible dimensions".into());
    };
    if width == 0 || height == 0 {
        return Probe::Invalid("the header gives a zero dimension".into());
    }
    let orientation = if kind == JPEG { jpeg_orientation(head).unwrap_or(1) } else { 1 };
    let (width, height) = if (5..=8).contains(&orientation) { (height, width) } else { (width, height) };
    Probe::Done(ImageInfo { width, height, orientation })
}

/// The Orientation tag of a JPEG's EXIF segment, if any.
pub fn jpeg_orientation(jpeg: &[u8]) -> Option<u8> {
    let mut at = 2;
    while at + 4 <= jpeg.len() {
        if jpeg[at] != 0xFF {
            return None;
        }
        let marker = jpeg[at + 1];
        // Start of scan or of a frame: EXIF would have come before.
        if marker == 0xDA || (0xC0..=0xCF).contains(&marker) && marker != 0xC4 && marker != 0xC8 && marker != 0xCC {
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
            if big {
                u32::from_be_bytes([b[0], b[1], b[2], b[3]])
            } else {
                u32::from_le_bytes([b[0], b[1], b[2], b[3]])
            }
        })
    };
    let ifd = u32_at(4)? as usize;
    let count = u16_at(ifd)? as usize;
    (0..count.min(512)).find_map(|i| {
        let entry = ifd + 2 + i * 12;
        (u16_at(entry)? == 0x0112)
            .then(|| u16_at(entry + 8))
            .flatten()
            .and_then(|v| u8::try_from(v).ok())
            .filter(|v| (1..=8).contains(v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::sniff::PNG;

    fn png_header(width: u32, height: u32) -> Vec<u8> {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&width.to_be_bytes());
        png.extend_from_slice(&height.to_be_bytes());
        png.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
        png
    }

    #[test]
    fn reads_png_dimensions_from_the_header_alone() {
        let head = png_header(60000, 60000);
        assert_eq!(probe(PNG, &head, false), Probe::Done(ImageInfo { width: 60000, height: 60000, orientation: 1 }));
    }

    #[test]
    fn a_cut_header_needs_more_until_the_file_ends() {
        let head = &png_header(10, 10)[..14];
        assert_eq!(probe(PNG, head, false), Probe::NeedMore);
        assert!(matches!(probe(PNG, head, true), Probe::Invalid(_)));
    }

    #[test]
    fn reads_exif_orientation_in_both_byte_orders() {
        for (order, orientation) in [
            (&b"MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0"[..], 6u8),
            (b"II\x2a\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0\x08\0\0\0", 8),
        ] {
            let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE1];
            let payload = [&b"Exif\0\0"[..], order].concat();
            jpeg.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
            jpeg.extend_from_slice(&payload);
            jpeg.extend_from_slice(&[0xFF, 0xDA]);
            assert_eq!(jpeg_orientation(&jpeg), Some(orientation));
        }
        assert_eq!(jpeg_orientation(&[0xFF, 0xD8, 0xFF, 0xDA, 0, 2]), None);
        assert_eq!(jpeg_orientation(&[0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF]), None, "a segment longer than the data");
    }
}

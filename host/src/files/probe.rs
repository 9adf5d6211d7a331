//! Image dimensions from the header only (no decode on the request path), and the EXIF
//! orientation of JPEGs (parsed by the standard plugin's own reader), so that the reported
//! `width`/`height` are the upright size.

use super::sniff::{HEIC, HEIF, JPEG, Sniffed};

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
    let orientation = if kind == JPEG { mbk_standard::exif::jpeg_orientation(head).unwrap_or(1) } else { 1 };
    let (width, height) = if (5..=8).contains(&orientation) { (height, width) } else { (width, height) };
    // A JPEG XL's own orientation (which overrides its EXIF) is applied by imagesize already.
    // A HEIF's primary picture, not its largest (see `heif_header`).
    let heif = if kind == HEIC || kind == HEIF { super::heif_header::displayed_size(head) } else { None };
    let (width, height) = heif.unwrap_or((width, height));
    Probe::Done(ImageInfo { width, height, orientation })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::sniff::{JXL, PNG};

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

    /// A bare JPEG XL codestream's size header for a 16x8 image (`small`, no aspect ratio) and its
    /// metadata's orientation, padded to what imagesize reads.
    fn jxl_header(orientation: u8) -> Vec<u8> {
        // Bits from the least significant: small, height/8-1 (5), ratio (3), width/8-1 (5) = 1,
        // then all_default; when not, extra_fields = 1 and orientation-1 (3).
        let mut bits: u32 = 1 | (1 << 9);
        bits |= if orientation == 1 { 1 << 14 } else { (1 << 15) | (u32::from(orientation - 1) << 16) };
        let mut head = vec![0xFF, 0x0A];
        head.extend_from_slice(&bits.to_le_bytes()[..3]);
        head.resize(16, 0);
        head
    }

    #[test]
    fn jpeg_xl_sizes_are_upright() {
        assert_eq!(probe(JXL, &jxl_header(1), true), Probe::Done(ImageInfo { width: 16, height: 8, orientation: 1 }));
        assert_eq!(probe(JXL, &jxl_header(3), true), Probe::Done(ImageInfo { width: 16, height: 8, orientation: 1 }));
        for turned in 5..=8 {
            let Probe::Done(info) = probe(JXL, &jxl_header(turned), true) else { panic!("orientation {turned}") };
            assert_eq!((info.width, info.height), (8, 16), "orientation {turned} turns a quarter");
        }
    }
}

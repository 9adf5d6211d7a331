//! What a file is, from its first bytes: never from its name or the client's Content-Type.

/// A type we recognise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sniffed {
    pub mime: &'static str,
    /// Extension of the storage key. Types a browser would render as active content (HTML, SVG,
    /// XML) get `bin`, so that even a public blob URL cannot become a script on our origin.
    pub ext: &'static str,
    /// One of the raster formats `/upload/image` accepts.
    pub is_image: bool,
}

const fn t(mime: &'static str, ext: &'static str, is_image: bool) -> Sniffed {
    Sniffed { mime, ext, is_image }
}

pub const JPEG: Sniffed = t("image/jpeg", "jpg", true);
pub const PNG: Sniffed = t("image/png", "png", true);
pub const GIF: Sniffed = t("image/gif", "gif", true);
pub const WEBP: Sniffed = t("image/webp", "webp", true);
pub const AVIF: Sniffed = t("image/avif", "avif", true);
pub const TIFF: Sniffed = t("image/tiff", "tiff", true);
/// HEVC in HEIF (phones' photos), decoded only in the sandbox (the standard plugin's wasm build).
pub const HEIC: Sniffed = t("image/heic", "heic", true);
pub const HEIF: Sniffed = t("image/heif", "heif", true);
/// JPEG XL, decoded only in the sandbox too.
pub const JXL: Sniffed = t("image/jxl", "jxl", true);
pub const OCTET: Sniffed = t("application/octet-stream", "bin", false);

/// How many leading bytes [`sniff`] looks at.
pub const SNIFF_LEN: usize = 512;

/// The type of a file from its first bytes (at least [`SNIFF_LEN`] when the file is that long).
pub fn sniff(head: &[u8]) -> Sniffed {
    let starts = |magic: &[u8]| head.starts_with(magic);
    if starts(&[0xFF, 0xD8, 0xFF]) {
        return JPEG;
    }
    if starts(b"\x89PNG\r\n\x1a\n") {
        return PNG;
    }
    if starts(b"GIF87a") || starts(b"GIF89a") {
        return GIF;
    }
    if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        return WEBP;
    }
    if starts(b"II*\0") || starts(b"MM\0*") {
        return TIFF;
    }
    // The bare codestream, or the ISO-BMFF container's own signature box (before any `ftyp`).
    if starts(&[0xFF, 0x0A]) || starts(b"\0\0\0\x0cJXL \r\n\x87\n") {
        return JXL;
    }
    if let Some(brands) = ftyp_brands(head) {
        if brands.iter().any(|b| b == b"avif" || b == b"avis") {
            return AVIF;
        }
        // HEVC brands, then the generic image brands (an AVIF says so above).
        if brands.iter().any(|b| [b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"].contains(&b)) {
            return HEIC;
        }
        if brands.iter().any(|b| b == b"mif1" || b == b"msf1") {
            return HEIF;
        }
        if brands.iter().any(|b| b == b"qt  ") {
            return t("video/quicktime", "mov", false);
        }
        return t("video/mp4", "mp4", false);
    }
    let table: &[(&[u8], Sniffed)] = &[
        (b"%PDF-", t("application/pdf", "pdf", false)),
        (b"PK\x03\x04", t("application/zip", "zip", false)),
        (b"\x1f\x8b", t("application/gzip", "gz", false)),
        (b"7z\xbc\xaf\x27\x1c", t("application/x-7z-compressed", "7z", false)),
        (b"\x28\xb5\x2f\xfd", t("application/zstd", "zst", false)),
        (b"ID3", t("audio/mpeg", "mp3", false)),
        (b"OggS", t("audio/ogg", "ogg", false)),
        (b"fLaC", t("audio/flac", "flac", false)),
        (b"\x1a\x45\xdf\xa3", t("video/webm", "webm", false)),
        (b"BM", t("image/bmp", "bmp", false)),
        (b"\0asm", t("application/wasm", "wasm", false)),
    ];
    if let Some((_, sniffed)) = table.iter().find(|(magic, _)| starts(magic)) {
        return *sniffed;
    }
    if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WAVE" {
        return t("audio/wav", "wav", false);
    }
    sniff_text(head)
}

/// ISO-BMFF brands (major and compatible) of an `ftyp` box at the start, if there is one.
fn ftyp_brands(head: &[u8]) -> Option<Vec<[u8; 4]>> {
    if head.len() < 16 || &head[4..8] != b"ftyp" {
        return None;
    }
    let size = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let end = size.clamp(16, head.len());
    let mut brands = vec![[head[8], head[9], head[10], head[11]]];
    brands.extend(head[16..end].chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]));
    Some(brands)
}

fn sniff_text(head: &[u8]) -> Sniffed {
    // A cut in the middle of a multi-byte character at the end of the head is still text.
    let valid = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    };
    if !valid || head.contains(&0) {
        return OCTET;
    }
    let text = String::from_utf8_lossy(head).trim_start_matches('\u{feff}').trim_start().to_ascii_lowercase();
    if text.starts_with("<svg") || (text.starts_with("<?xml") && text.contains("<svg")) {
        return t("image/svg+xml", "bin", false);
    }
    if ["<!doctype html", "<html", "<head", "<body", "<script", "<iframe"].iter().any(|p| text.starts_with(p)) {
        return t("text/html", "bin", false);
    }
    if text.starts_with("<?xml") {
        return t("application/xml", "bin", false);
    }
    if text.starts_with('{') || text.starts_with('[') {
        return t("application/json", "json", false);
    }
    t("text/plain", "txt", false)
}

/// The Content-Type to serve a stored key with, from the extension our sniffing gave it.
pub fn mime_for_key(key: &str) -> &'static str {
    match key.rsplit_once('.').map(|(_, ext)| ext) {
        Some("jpg") => "image/jpeg",
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("avif") => "image/avif",
        Some("tiff") => "image/tiff",
        Some("heic") => "image/heic",
        Some("heif") => "image/heif",
        Some("jxl") => "image/jxl",
        Some("bmp") => "image/bmp",
        Some("pdf") => "application/pdf",
        Some("zip") => "application/zip",
        Some("gz") => "application/gzip",
        Some("json") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        Some("mp4") => "video/mp4",
        Some("mov") => "video/quicktime",
        Some("webm") => "video/webm",
        Some("mp3") => "audio/mpeg",
        Some("ogg") => "audio/ogg",
        Some("wav") => "audio/wav",
        Some("flac") => "audio/flac",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_images_by_magic() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10]), JPEG);
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), PNG);
        assert_eq!(sniff(b"GIF89a\x01\0"), GIF);
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), WEBP);
        assert_eq!(sniff(b"II*\0\x08\0\0\0"), TIFF);
        assert_eq!(sniff(b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf"), AVIF);
        assert_eq!(sniff(b"\0\0\0\x1cftypmif1\0\0\0\0mif1avifmiaf"), AVIF, "avif as a compatible brand");
        assert_eq!(sniff(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic"), HEIC, "an iPhone photo");
        assert_eq!(sniff(b"\0\0\0\x18ftypmif1\0\0\0\0mif1heic"), HEIC);
        assert_eq!(sniff(b"\0\0\0\x14ftypmif1\0\0\0\0mif1"), HEIF);
        assert_eq!(sniff(b"\0\0\0\x14ftypisom\0\0\0\0isom").mime, "video/mp4");
        assert_eq!(sniff(&[0xFF, 0x0A, 0xFA, 0x7F, 0x01]), JXL, "a bare codestream");
        assert_eq!(sniff(b"\0\0\0\x0cJXL \r\n\x87\n\0\0\0\x14ftypjxl "), JXL, "the container");
        assert_eq!(mime_for_key("p/images/original/x.jxl"), "image/jxl");
    }

    #[test]
    fn active_content_never_keeps_its_extension() {
        for (head, mime) in [
            (&b"<!DOCTYPE html><html>"[..], "text/html"),
            (b"  <html><script>alert(1)</script>", "text/html"),
            (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml"),
            (b"<?xml version='1.0'?><svg/>", "image/svg+xml"),
        ] {
            let s = sniff(head);
            assert_eq!((s.mime, s.ext, s.is_image), (mime, "bin", false), "{}", String::from_utf8_lossy(head));
        }
    }

    #[test]
    fn text_binary_and_documents() {
        assert_eq!(sniff(b"hello world").mime, "text/plain");
        assert_eq!(sniff(b"").mime, "text/plain");
        assert_eq!(sniff(b"\0\x01\x02").mime, "application/octet-stream");
        assert_eq!(sniff(b"%PDF-1.7").ext, "pdf");
        assert_eq!(sniff("héllo".as_bytes()).mime, "text/plain");
        assert_eq!(sniff(&"é".as_bytes()[..1]).mime, "text/plain", "a cut character at the end");
        assert_eq!(mime_for_key("p/files/x.bin"), "application/octet-stream");
        assert_eq!(mime_for_key("p/images/thumbnail/x.webp"), "image/webp");
    }
}

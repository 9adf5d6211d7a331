//! What a photo says of itself: the EXIF fields people ask for (camera, lens, when, exposure,
//! GPS), read with `kamadak-exif` from any container it knows (JPEG, TIFF, PNG, WebP, HEIF and
//! AVIF). Inside the sandbox like every other parse of the untrusted original. Unreadable or
//! absent EXIF is no metadata, never an error.

use exif::{Exif, In, Rational, Tag, Value};

/// Each field only when present and readable.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Metadata {
    pub camera_make: Option<String>,
    pub camera_model: Option<String>,
    pub lens: Option<String>,
    /// ISO 8601, as the camera wrote it (`2024-05-01T13:45:10`, and its offset when known).
    pub taken_at: Option<String>,
    /// Seconds, as a fraction where the camera wrote one (`1/250`).
    pub exposure_time: Option<String>,
    pub f_number: Option<f64>,
    pub iso: Option<u32>,
    pub focal_length_mm: Option<f64>,
    /// 1..=8.
    pub orientation: Option<u8>,
    /// The ICC profile's description (set by the decoder, which has the profile).
    pub color_profile: Option<String>,
    pub gps: Option<Gps>,
}

/// Degrees (WGS 84, south and west negative) and metres above sea level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gps {
    pub latitude: f64,
    pub longitude: f64,
    pub altitude: Option<f64>,
}

/// The metadata of `input`'s EXIF (empty when it has none).
pub fn read(input: &[u8]) -> Metadata {
    let reader = exif::Reader::new();
    let exif = reader
        .read_from_container(&mut std::io::Cursor::new(input))
        .ok()
        .or_else(|| reader.read_raw(isobmff_exif(input)?.to_vec()).ok());
    exif.map(|exif| from_exif(&exif)).unwrap_or_default()
}

/// The most EXIF a HEIF/AVIF file is searched for, from its TIFF header on.
const MAX_ISOBMFF_EXIF: usize = 4 << 20;

/// The TIFF structure of a HEIF or AVIF file's `Exif` item, found by its `Exif\0\0` prefix and
/// TIFF header: kamadak-exif refuses an item over 128 KiB, and phones write bigger ones (a
/// Xiaomi's holds a 190 KB thumbnail). The offsets inside are relative to the TIFF header, so
/// what follows the item does no harm.
fn isobmff_exif(input: &[u8]) -> Option<&[u8]> {
    if input.get(4..8) != Some(&b"ftyp"[..]) {
        return None;
    }
    let at =
        input.windows(10).position(|w| &w[..6] == b"Exif\0\0" && (&w[6..] == b"MM\0\x2a" || &w[6..] == b"II\x2a\0"))?
            + 6;
    Some(&input[at..input.len().min(at + MAX_ISOBMFF_EXIF)])
}

fn from_exif(exif: &Exif) -> Metadata {
    let value = |tag: Tag| exif.get_field(tag, In::PRIMARY).map(|f| &f.value);
    let text = |tag: Tag| value(tag).and_then(ascii);
    let rational = |tag: Tag| value(tag).and_then(first_rational).filter(|r| r.denom != 0);
    let make = text(Tag::Make);
    let lens = text(Tag::LensModel).map(|model| match text(Tag::LensMake) {
        // "Apple iPhone 15 Pro back camera…" already names its maker.
        Some(maker) if !model.starts_with(&maker) => format!("{maker} {model}"),
        _ => model,
    });
    Metadata {
        camera_make: make,
        camera_model: text(Tag::Model),
        lens,
        taken_at: text(Tag::DateTimeOriginal).or_else(|| text(Tag::DateTime)).and_then(|at| {
            let offset = text(Tag::OffsetTimeOriginal).or_else(|| text(Tag::OffsetTime));
            iso_8601(&at, offset.as_deref())
        }),
        exposure_time: rational(Tag::ExposureTime).map(|r| match (r.num, r.denom) {
            (1, d) => format!("1/{d}"),
            (n, d) if n % d == 0 => (n / d).to_string(),
            (n, d) if d % n == 0 => format!("1/{}", d / n),
            _ => format!("{}", r.to_f64()),
        }),
        f_number: rational(Tag::FNumber).map(|r| round(r.to_f64(), 2)),
        iso: value(Tag::PhotographicSensitivity).and_then(|v| v.get_uint(0)),
        focal_length_mm: rational(Tag::FocalLength).map(|r| round(r.to_f64(), 2)),
        orientation: value(Tag::Orientation)
            .and_then(|v| v.get_uint(0))
            .and_then(|o| u8::try_from(o).ok())
            .filter(|o| (1..=8).contains(o)),
        color_profile: None,
        gps: gps(exif),
    }
}

fn gps(exif: &Exif) -> Option<Gps> {
    let value = |tag: Tag| exif.get_field(tag, In::PRIMARY).map(|f| &f.value);
    let degrees = |tag: Tag, negative_ref: u8, reference: Tag| -> Option<f64> {
        let Value::Rational(dms) = value(tag)? else { return None };
        if dms.len() < 3 || dms.iter().any(|r| r.denom == 0) {
            return None;
        }
        let unsigned = dms[0].to_f64() + dms[1].to_f64() / 60.0 + dms[2].to_f64() / 3600.0;
        let negative = value(reference).and_then(ascii).is_some_and(|r| r.as_bytes().first() == Some(&negative_ref));
        Some(if negative { -unsigned } else { unsigned })
    };
    let latitude = degrees(Tag::GPSLatitude, b'S', Tag::GPSLatitudeRef)?;
    let longitude = degrees(Tag::GPSLongitude, b'W', Tag::GPSLongitudeRef)?;
    if !(-90.0..=90.0).contains(&latitude) || !(-180.0..=180.0).contains(&longitude) {
        return None;
    }
    let altitude = value(Tag::GPSAltitude).and_then(first_rational).filter(|r| r.denom != 0).map(|r| {
        // Reference 1: below sea level.
        let below = matches!(value(Tag::GPSAltitudeRef), Some(Value::Byte(b)) if b.first() == Some(&1));
        round(if below { -r.to_f64() } else { r.to_f64() }, 2)
    });
    Some(Gps { latitude: round(latitude, 6), longitude: round(longitude, 6), altitude })
}

/// An ASCII field's first string, trimmed; `None` when empty or not text.
fn ascii(value: &Value) -> Option<String> {
    let Value::Ascii(strings) = value else { return None };
    let text = String::from_utf8_lossy(strings.first()?).trim().trim_end_matches('\0').trim().to_owned();
    (!text.is_empty()).then_some(text)
}

fn first_rational(value: &Value) -> Option<Rational> {
    match value {
        Value::Rational(r) => r.first().copied(),
        _ => None,
    }
}

/// EXIF's `2024:05:01 13:45:10` (and an offset `+02:00`) as ISO 8601; `None` for anything else
/// (cameras with no clock write blanks or zeros).
fn iso_8601(at: &str, offset: Option<&str>) -> Option<String> {
    let b = at.as_bytes();
    let digits = |range: std::ops::Range<usize>| b.get(range.clone()).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let shaped = b.len() >= 19
        && [0..4, 5..7, 8..10, 11..13, 14..16, 17..19].into_iter().all(digits)
        && b[4] == b':'
        && b[7] == b':'
        && b[13] == b':'
        && b[16] == b':';
    if !shaped || at.starts_with("0000") {
        return None;
    }
    let mut out = format!("{}-{}-{}T{}", &at[0..4], &at[5..7], &at[8..10], &at[11..19]);
    // `+02:00`, checked byte by byte: a camera's text may be anything, multibyte included.
    let offset_shaped = |o: &&str| {
        let b = o.as_bytes();
        b.len() == 6
            && matches!(b[0], b'+' | b'-')
            && b[3] == b':'
            && [1, 2, 4, 5].iter().all(|&i| b[i].is_ascii_digit())
    };
    if let Some(offset) = offset.filter(offset_shaped) {
        out.push_str(offset);
    }
    Some(out)
}

fn round(value: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exif_dates_become_iso_8601() {
        assert_eq!(iso_8601("2024:05:01 13:45:10", None).as_deref(), Some("2024-05-01T13:45:10"));
        assert_eq!(iso_8601("2024:05:01 13:45:10", Some("+02:00")).as_deref(), Some("2024-05-01T13:45:10+02:00"));
        assert_eq!(iso_8601("2024:05:01 13:45:10", Some("junk")).as_deref(), Some("2024-05-01T13:45:10"));
        assert_eq!(iso_8601("2024:05:01 13:45:10", Some("+0é00")).as_deref(), Some("2024-05-01T13:45:10"));
        assert_eq!(iso_8601("2024:05:01 13:45:10", Some("+ab:cd")).as_deref(), Some("2024-05-01T13:45:10"));
        assert_eq!(iso_8601("2024:05:01 13:45:1é", None), None, "multibyte where a digit belongs");
        assert_eq!(iso_8601("0000:00:00 00:00:00", None), None);
        assert_eq!(iso_8601("    :  :     :  :  ", None), None);
        assert_eq!(iso_8601("2024-05", None), None);
    }

    #[test]
    fn no_exif_is_no_metadata() {
        assert_eq!(read(b"not an image"), Metadata::default());
        assert_eq!(read(b"\xFF\xD8\xFF\xD9"), Metadata::default());
    }

    #[test]
    fn a_heif_exif_item_over_128_kib_is_read() {
        // TIFF: header, one IFD with Make (ASCII, 7 bytes at offset 26), then a big "thumbnail".
        let mut tiff = b"MM\0\x2a\0\0\0\x08\0\x01".to_vec();
        tiff.extend_from_slice(&[0x01, 0x0F, 0, 2, 0, 0, 0, 7, 0, 0, 0, 26, 0, 0, 0, 0]);
        tiff.extend_from_slice(b"Xiaomi\0");
        tiff.resize(tiff.len() + 200_000, 0);
        let mut heif = b"\0\0\0\x10ftypheic\0\0\0\0\0\0\0\x08mdat".to_vec();
        heif.extend_from_slice(b"\0\0\0\x06Exif\0\0");
        heif.extend_from_slice(&tiff);
        assert_eq!(read(&heif).camera_make.as_deref(), Some("Xiaomi"));
        assert_eq!(read(&heif[4..]).camera_make, None, "only in an ISOBMFF file");
    }
}

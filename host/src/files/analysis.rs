//! What an image is, as the File JSON shows it: placeholders (BlurHash, ThumbHash, dominant
//! colour), frames, the focal point and the photo's metadata. The analysis is made by the
//! standard plugin in the call that renders the variants ([`crate::pipeline`]); here it is
//! checked (a plugin's word is bounded before it is kept), stripped of GPS unless the project
//! keeps it, and stored as JSON in `files.analysis`.

use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::files::FileRow;
use crate::plugins::{Analysis, Gps, Metadata};
use crate::projects::variant_gravity::FocalPoint;

/// Text fields of the metadata are cut to this many characters.
const MAX_TEXT: usize = 128;

/// The analysis as kept (JSON in `files.analysis`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    pub blurhash: String,
    /// Base64 (standard alphabet, padded): what ThumbHash's own decoders take.
    pub thumbhash: String,
    /// `#rrggbb`.
    pub dominant_color: String,
    pub frames: u32,
    pub metadata: MetadataView,
}

/// What a photo says of itself (EXIF, its colour profile). Only the fields it has.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = ImageMetadata)]
pub struct MetadataView {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "Apple")]
    pub camera_make: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "iPhone 15 Pro")]
    pub camera_model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lens: Option<String>,
    /// ISO 8601 as the camera wrote it, with its offset when it wrote one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "2024-05-01T13:45:10+02:00")]
    pub taken_at: Option<String>,
    /// Seconds, as a fraction where the camera wrote one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "1/250")]
    pub exposure_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = 1.8)]
    pub f_number: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = 100)]
    pub iso: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = 6.86)]
    pub focal_length_mm: Option<f64>,
    /// The EXIF orientation (1..=8) the original was stored with; `width`, `height` and every
    /// variant are already upright.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 8)]
    pub orientation: Option<u8>,
    /// The embedded ICC profile's description; variants are sRGB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "Display P3")]
    pub color_profile: Option<String>,
    /// Only for projects with `keep_gps`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gps: Option<GpsView>,
}

/// Where a photo was taken: degrees (WGS 84), metres above sea level.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GpsView {
    pub latitude: f64,
    pub longitude: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub altitude: Option<f64>,
}

/// What the File JSON of an image says it is (absent from plain files). `null` until its
/// first render has been analysed, except `focal_point`, which is `null` until set.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct ImageFacts {
    /// A BlurHash (4x3 components) to paint while the image loads.
    #[schema(example = "LEHV6nWB2yk8pyo0adR*.7kCMdnj")]
    pub blurhash: Option<String>,
    /// A ThumbHash, base64.
    pub thumbhash: Option<String>,
    /// The most common colour, `#rrggbb`.
    #[schema(example = "#4a6b8c")]
    pub dominant_color: Option<String>,
    /// More than one frame (an animated GIF or WebP).
    pub animated: Option<bool>,
    pub frames: Option<u32>,
    /// Where `gravity: focal` variants are cropped around, set by `PATCH /files/{id}`.
    pub focal_point: Option<FocalPoint>,
    pub metadata: Option<MetadataView>,
}

impl ImageFacts {
    /// The facts of an image's row, GPS only while its project `keep_gps`; `None` for a plain
    /// file. A stored value that does not parse (it never should) reads as not analysed.
    pub fn of(file: &FileRow, keep_gps: bool) -> Option<ImageFacts> {
        if file.kind != "image" {
            return None;
        }
        let stored: Option<Stored> = file.analysis.as_deref().and_then(|json| serde_json::from_str(json).ok());
        let focal_point = focal_point(file);
        Some(match stored {
            Some(mut s) => ImageFacts {
                animated: Some(s.frames > 1),
                frames: Some(s.frames),
                blurhash: Some(s.blurhash),
                thumbhash: Some(s.thumbhash),
                dominant_color: Some(s.dominant_color),
                focal_point,
                metadata: Some(MetadataView { gps: s.metadata.gps.take().filter(|_| keep_gps), ..s.metadata }),
            },
            None => ImageFacts { focal_point, ..ImageFacts::default() },
        })
    }
}

/// The row's focal point, if set.
pub fn focal_point(file: &FileRow) -> Option<FocalPoint> {
    file.focal_point.as_deref().and_then(|json| serde_json::from_str(json).ok())
}

/// A plugin's analysis, checked and bounded, as kept; GPS only when the project `keep_gps`.
/// `None` when its placeholders are not what they claim to be.
pub fn to_stored(analysis: Analysis, keep_gps: bool) -> Option<Stored> {
    let Analysis { blurhash, thumbhash, dominant_color: [r, g, b], frames, metadata } = analysis;
    // BlurHash: base 83, 4 characters of header and 2 per component (at most 9x9).
    const BASE83: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";
    let blurhash_ok = (6..=4 + 2 * 81).contains(&blurhash.len()) && blurhash.bytes().all(|c| BASE83.contains(&c));
    // ThumbHash: 5 bytes of header, at most ~25 in all.
    let thumbhash_ok = (5..=64).contains(&thumbhash.len());
    if !blurhash_ok || !thumbhash_ok || frames == 0 {
        return None;
    }
    Some(Stored {
        blurhash,
        thumbhash: base64::engine::general_purpose::STANDARD.encode(&thumbhash),
        dominant_color: format!("#{r:02x}{g:02x}{b:02x}"),
        frames,
        metadata: metadata_view(metadata, keep_gps),
    })
}

fn metadata_view(m: Metadata, keep_gps: bool) -> MetadataView {
    let number = |v: Option<f64>, max: f64| v.filter(|v| v.is_finite() && *v > 0.0 && *v <= max);
    MetadataView {
        camera_make: text(m.camera_make),
        camera_model: text(m.camera_model),
        lens: text(m.lens),
        taken_at: text(m.taken_at),
        exposure_time: text(m.exposure_time),
        f_number: number(m.f_number, 1000.0),
        iso: m.iso.filter(|iso| (1..=10_000_000).contains(iso)),
        focal_length_mm: number(m.focal_length_mm, 100_000.0),
        orientation: m.orientation.filter(|o| (1..=8).contains(o)),
        color_profile: text(m.color_profile),
        gps: m.gps.filter(|_| keep_gps).and_then(gps_view),
    }
}

fn gps_view(g: Gps) -> Option<GpsView> {
    let inside = (-90.0..=90.0).contains(&g.latitude) && (-180.0..=180.0).contains(&g.longitude);
    inside.then_some(GpsView {
        latitude: g.latitude,
        longitude: g.longitude,
        altitude: g.altitude.filter(|a| a.is_finite() && a.abs() < 100_000.0),
    })
}

/// Text as a client may show it: no control characters, at most [`MAX_TEXT`] characters,
/// `None` when nothing is left.
fn text(value: Option<String>) -> Option<String> {
    let clean: String = value?.chars().filter(|c| !c.is_control()).take(MAX_TEXT).collect();
    let clean = clean.trim();
    (!clean.is_empty()).then(|| clean.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analysis() -> Analysis {
        Analysis {
            blurhash: "LEHV6nWB2yk8pyo0adR*.7kCMdnj".into(),
            thumbhash: vec![1; 20],
            dominant_color: [74, 107, 140],
            frames: 1,
            metadata: Metadata {
                camera_make: Some("Canon\u{1b}[31m".into()),
                iso: Some(0),
                f_number: Some(f64::NAN),
                gps: Some(Gps { latitude: 52.5, longitude: 13.4, altitude: Some(34.0) }),
                ..Metadata::default()
            },
        }
    }

    #[test]
    fn gps_only_when_kept_and_lies_are_dropped() {
        let stored = to_stored(analysis(), false).expect("valid");
        assert_eq!(stored.dominant_color, "#4a6b8c");
        assert_eq!(stored.metadata.gps, None, "no GPS without keep_gps");
        assert_eq!(stored.metadata.camera_make.as_deref(), Some("Canon[31m"), "no escape character");
        assert_eq!((stored.metadata.iso, stored.metadata.f_number), (None, None));
        let kept = to_stored(analysis(), true).expect("valid");
        assert_eq!(kept.metadata.gps, Some(GpsView { latitude: 52.5, longitude: 13.4, altitude: Some(34.0) }));
        assert_eq!(to_stored(Analysis { blurhash: "not base83 ☃".into(), ..analysis() }, true), None);
        assert_eq!(to_stored(Analysis { thumbhash: vec![0; 1000], ..analysis() }, true), None);
        assert_eq!(to_stored(Analysis { frames: 0, ..analysis() }, true), None);
    }
}

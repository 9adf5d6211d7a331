//! # mbk-standard
//!
//! The standard MediaBlobKit plugin: decode an image once, apply its EXIF orientation, and
//! render every requested variant (resize with `contain`, `cover` or `stretch`; encode WebP,
//! AVIF, JPEG or PNG; metadata stripped). One source of truth, built twice: as a native library
//! that the host calls directly (the fallback engine), and as a `wasm32-wasip2` component
//! exporting the `mbk:plugin` world (the thin `component/` crate beside this one, which only
//! translates between the WIT types and these).
//!
//! Everything here is pure Rust so that both builds are the same code, but one: native builds
//! encode WebP with libwebp (C), wasm builds with a pure-Rust encoder (see `encode`).

pub mod analysis;
mod animation;
#[cfg(any(target_arch = "wasm32", test))]
mod avif;
pub mod decode;
pub mod encode;
pub mod exif;
mod frames;
pub mod geometry;
pub mod gravity;
mod heic;
mod jxl;
#[cfg(not(target_arch = "wasm32"))]
mod libwebp;
pub mod metadata;
pub mod params;
mod webp_mux;

use fast_image_resize as fr;

pub use analysis::{Analysis, Gps, Metadata};
pub use gravity::Gravity;

pub const NAME: &str = "mbk-standard";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const DESCRIPTION: &str = "Decode, orient, resize (contain/cover/stretch) and encode WebP/AVIF/JPEG/PNG";

/// How a variant fits its box. The host's one `Fit`: project settings name it (with the `serde`
/// feature, as `contain`, `cover`, `stretch`), the plugin world carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "lowercase"))]
pub enum Fit {
    /// Inside width x height, ratio kept, never upscaled.
    Contain,
    /// Fill width x height, then crop to exactly that size (where the spec's gravity says).
    Cover,
    /// Exactly width x height, ratio ignored.
    Stretch,
}

impl Fit {
    pub const ALL: [Fit; 3] = [Fit::Contain, Fit::Cover, Fit::Stretch];

    /// The name settings use.
    pub fn as_str(self) -> &'static str {
        match self {
            Fit::Contain => "contain",
            Fit::Cover => "cover",
            Fit::Stretch => "stretch",
        }
    }
}

/// The encoding of a variant. The host's one image format: project settings name it (with the
/// `serde` feature, as `webp`, `avif`, `jpeg`, `png`; an `ImageFormat` to serde, as the settings
/// have always called it), the plugin world carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename = "ImageFormat", rename_all = "lowercase")
)]
pub enum Format {
    Webp,
    Avif,
    Jpeg,
    Png,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::Webp, Format::Avif, Format::Jpeg, Format::Png];

    pub fn mime(self) -> &'static str {
        match self {
            Format::Webp => "image/webp",
            Format::Avif => "image/avif",
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
        }
    }

    /// The name used in settings and in the API (`webp`, `avif`, `jpeg`, `png`).
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Webp => "webp",
            Format::Avif => "avif",
            Format::Jpeg => "jpeg",
            Format::Png => "png",
        }
    }

    /// The file extension of a variant in this format.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Webp => "webp",
            Format::Avif => "avif",
            Format::Jpeg => "jpg",
            Format::Png => "png",
        }
    }
}

/// What a render may decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Pixels of the picture; of all its frames together for an animation kept animated.
    pub max_pixels: u64,
    /// Frames of an animation kept animated (in WebP variants); a longer one, or one over
    /// `max_pixels` in all, renders its first frame.
    pub max_frames: u32,
}

impl Limits {
    /// `MAX_ANIMATION_FRAMES`' default.
    pub const DEFAULT_MAX_FRAMES: u32 = 500;

    /// `max_pixels`, and the default frames.
    pub fn pixels(max_pixels: u64) -> Self {
        Limits { max_pixels, max_frames: Self::DEFAULT_MAX_FRAMES }
    }
}

/// One variant to render (not `Eq`: a focal point is a float).
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub name: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fit: Fit,
    pub format: Format,
    pub quality: u8,
    pub params: Vec<(String, String)>,
    /// Where a `cover` crop is taken.
    pub gravity: Gravity,
}

/// What one render call answers: one result per spec, in order, and the analysis of the
/// original when it was asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub variants: Vec<Result<Rendered, RenderError>>,
    pub analysis: Option<Analysis>,
}

/// An encoded variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub bytes: Vec<u8>,
    pub mime: String,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderError {
    /// The input is not an image this plugin decodes.
    UnsupportedInput(String),
    /// The input is over the decode limits.
    TooLarge(String),
    /// The spec cannot be rendered (e.g. no dimension given).
    InvalidSpec(String),
    /// Anything else.
    Failed(String),
}

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RenderError::UnsupportedInput(m) => write!(f, "unsupported input: {m}"),
            RenderError::TooLarge(m) => write!(f, "input too large: {m}"),
            RenderError::InvalidSpec(m) => write!(f, "invalid spec: {m}"),
            RenderError::Failed(m) => write!(f, "render failed: {m}"),
        }
    }
}

impl std::error::Error for RenderError {}

/// Decodes `input` once and renders every spec (an animation's first frame). The outer error
/// means nothing could be rendered (the input itself is bad); inner errors belong to one spec
/// each.
pub fn render(
    input: &[u8],
    max_pixels: u64,
    specs: &[Spec],
) -> Result<Vec<Result<Rendered, RenderError>>, RenderError> {
    render_filtered(input, max_pixels, specs, |_| Ok(()))
}

/// [`render`], and with `analyse` what the original is (placeholders, frames, metadata), from
/// the same decode; an animated GIF or WebP stays animated in WebP variants, within `limits`:
/// what the host asks of the standard plugin for every image.
pub fn render_analysed(input: &[u8], limits: Limits, specs: &[Spec], analyse: bool) -> Result<Output, RenderError> {
    render_all(input, limits, specs, analyse, |_| Ok(()))
}

/// [`render`] with a step of one's own between decoding and resizing: how a third-party plugin
/// reuses this crate (see `plugins/examples/sepia`). `filter` sees the decoded, upright pixels
/// (of an animation, the first frame: it is what every variant shows).
pub fn render_filtered(
    input: &[u8],
    max_pixels: u64,
    specs: &[Spec],
    filter: impl FnOnce(&mut decode::Decoded) -> Result<(), RenderError>,
) -> Result<Vec<Result<Rendered, RenderError>>, RenderError> {
    let still = Limits { max_pixels, max_frames: 1 };
    render_all(input, still, specs, false, filter).map(|out| out.variants)
}

fn render_all(
    input: &[u8],
    limits: Limits,
    specs: &[Spec],
    analyse: bool,
    filter: impl FnOnce(&mut decode::Decoded) -> Result<(), RenderError>,
) -> Result<Output, RenderError> {
    // The scale of the full image every spec is satisfied with, so that a JPEG can be decoded at
    // a reduced DCT scale (libvips' shrink-on-load). Specs that cannot be planned need nothing;
    // the analysis looks at a thumbnail, which the smallest DCT scale of any photo still covers.
    let need = |w: u32, h: u32| -> Option<f64> {
        let mut most: f64 = if analyse { analysis::THUMBNAIL as f64 / f64::from(w.max(h).max(1)) } else { 0.0 };
        for spec in specs {
            let Ok(plan) = geometry::plan(w, h, spec.width, spec.height, spec.fit) else { continue };
            let (_, _, cw, ch) = plan.crop;
            most = most.max(f64::from(plan.out_width) / cw).max(f64::from(plan.out_height) / ch);
        }
        (most > 0.0).then_some(most)
    };
    let (mut source, full, profile) = decode::decode_described(input, limits.max_pixels, &need)?;
    let analysis = analyse.then(|| analysis::analyse(&source, input, profile));
    filter(&mut source)?;
    // Saliency is measured once, for every `attention` spec.
    let salient = specs
        .iter()
        .any(|s| s.gravity == Gravity::Attention && s.fit == Fit::Cover)
        .then(|| gravity::Saliency::of(&source));
    let plans: Vec<_> = specs.iter().map(|spec| plan(full, spec, salient.as_ref())).collect();
    // WebP variants of an animation are animated, from every frame; the rest take the first.
    let animated = animation::webp_variants(input, limits, full, specs, &plans);
    let variants = animated
        .into_iter()
        .zip(plans)
        .zip(specs)
        .map(|((done, plan), spec)| done.unwrap_or_else(|| render_still(&source, full, plan?, spec)))
        .collect();
    Ok(Output { variants, analysis })
}

/// The plan of one spec against `full`, the upright size of the full-resolution image (so that
/// sizes never depend on the decode scale).
fn plan(full: (u32, u32), spec: &Spec, salient: Option<&gravity::Saliency>) -> Result<geometry::Plan, RenderError> {
    if !(1..=100).contains(&spec.quality) {
        return Err(RenderError::InvalidSpec(format!("quality must be 1..=100, got {}", spec.quality)));
    }
    let mut plan =
        geometry::plan(full.0, full.1, spec.width, spec.height, spec.fit).map_err(RenderError::InvalidSpec)?;
    if spec.fit == Fit::Cover {
        let centre = spec.gravity.centre(salient, &plan, full).map_err(RenderError::InvalidSpec)?;
        plan.crop = geometry::centred_on(plan.crop, full, centre);
    }
    Ok(plan)
}

/// Renders one spec's `plan` (made against `full`) from the decoded pixels, mapping it onto
/// them first.
fn render_still(
    source: &decode::Decoded,
    full: (u32, u32),
    mut plan: geometry::Plan,
    spec: &Spec,
) -> Result<Rendered, RenderError> {
    let (fx, fy) = (f64::from(source.width) / f64::from(full.0), f64::from(source.height) / f64::from(full.1));
    let (left, top, w, h) = plan.crop;
    plan.crop = (left * fx, top * fy, (w * fx).min(f64::from(source.width)), (h * fy).min(f64::from(source.height)));
    let pixels = resize(source, &plan)?;
    let bytes = encode::encode(&pixels, plan.out_width, plan.out_height, source.has_alpha, spec.format, spec.quality)?;
    Ok(Rendered { bytes, mime: spec.format.mime().to_owned(), width: plan.out_width, height: plan.out_height })
}

/// Resizes (and crops, for `cover`) with Lanczos3. Returns tightly packed RGBA8 or RGB8.
fn resize(source: &decode::Decoded, plan: &geometry::Plan) -> Result<Vec<u8>, RenderError> {
    let pixel_type = if source.has_alpha { fr::PixelType::U8x4 } else { fr::PixelType::U8x3 };
    let src = fr::images::ImageRef::new(source.width, source.height, &source.pixels, pixel_type)
        .map_err(|e| RenderError::Failed(format!("source buffer: {e}")))?;
    let mut dst = fr::images::Image::new(plan.out_width, plan.out_height, pixel_type);
    let (left, top, width, height) = plan.crop;
    let options = fr::ResizeOptions::new()
        .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3))
        .crop(left, top, width, height);
    fr::Resizer::new().resize(&src, &mut dst, &options).map_err(|e| RenderError::Failed(format!("resize: {e}")))?;
    Ok(dst.into_vec())
}

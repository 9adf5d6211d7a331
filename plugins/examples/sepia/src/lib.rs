//! `mbk-sepia`: an example of a third-party plugin. It renders every variant in sepia tones, with
//! an optional `strength` param (0.0..=1.0, default 1.0). Everything but the tone comes from the
//! `mbk-standard` library; the component glue is the ten lines of `wit_bindgen` below.

use mbk_standard::{RenderError, Rendered, Spec, decode::Decoded};

/// Applies the classic sepia matrix, blended with the original by `strength`.
pub fn sepia(image: &mut Decoded, strength: f32) {
    let channels = if image.has_alpha { 4 } else { 3 };
    for px in image.pixels.chunks_exact_mut(channels) {
        let (r, g, b) = (f32::from(px[0]), f32::from(px[1]), f32::from(px[2]));
        let tone =
            [0.393 * r + 0.769 * g + 0.189 * b, 0.349 * r + 0.686 * g + 0.168 * b, 0.272 * r + 0.534 * g + 0.131 * b];
        for (c, t) in px.iter_mut().zip(tone) {
            *c = (f32::from(*c) * (1.0 - strength) + t.min(255.0) * strength).round() as u8;
        }
    }
}

/// `strength` from the variant's params (the first spec's: one decode serves every spec).
pub fn render(
    input: &[u8],
    max_pixels: u64,
    specs: &[Spec],
) -> Result<Vec<Result<Rendered, RenderError>>, RenderError> {
    let strength = match specs.first().and_then(|s| s.params.iter().find(|(k, _)| k == "strength")) {
        None => 1.0,
        Some((_, v)) => v
            .parse::<f32>()
            .ok()
            .filter(|s| (0.0..=1.0).contains(s))
            .ok_or_else(|| RenderError::InvalidSpec(format!("strength must be a number from 0 to 1, got {v:?}")))?,
    };
    mbk_standard::render_filtered(input, max_pixels, specs, |image| {
        sepia(image, strength);
        Ok(())
    })
}

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod component {
    wit_bindgen::generate!({ world: "plugin", path: "../../../wit" });
    use mbk::plugin::types::{Fit, ImageFormat};

    struct Sepia;

    impl Guest for Sepia {
        fn info() -> PluginInfo {
            PluginInfo {
                name: "mbk-sepia".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                description: "Variants in sepia tones".into(),
            }
        }

        fn render(
            input: Vec<u8>,
            limits: DecodeLimits,
            specs: Vec<VariantSpec>,
        ) -> Result<Vec<Result<Rendered, RenderError>>, RenderError> {
            let specs: Vec<mbk_standard::Spec> = specs
                .into_iter()
                .map(|s| mbk_standard::Spec {
                    name: s.name,
                    width: s.width,
                    height: s.height,
                    fit: match s.fit {
                        Fit::Contain => mbk_standard::Fit::Contain,
                        Fit::Cover => mbk_standard::Fit::Cover,
                        Fit::Stretch => mbk_standard::Fit::Stretch,
                    },
                    format: match s.format {
                        ImageFormat::Webp => mbk_standard::Format::Webp,
                        ImageFormat::Avif => mbk_standard::Format::Avif,
                        ImageFormat::Jpeg => mbk_standard::Format::Jpeg,
                        ImageFormat::Png => mbk_standard::Format::Png,
                    },
                    quality: s.quality,
                    params: s.params,
                })
                .collect();
            let convert = |e: mbk_standard::RenderError| match e {
                mbk_standard::RenderError::UnsupportedInput(m) => RenderError::UnsupportedInput(m),
                mbk_standard::RenderError::TooLarge(m) => RenderError::TooLarge(m),
                mbk_standard::RenderError::InvalidSpec(m) => RenderError::InvalidSpec(m),
                mbk_standard::RenderError::Failed(m) => RenderError::Failed(m),
            };
            let results = super::render(&input, limits.max_pixels, &specs).map_err(convert)?;
            Ok(results
                .into_iter()
                .map(|r| {
                    r.map(|o| Rendered { bytes: o.bytes, mime: o.mime, width: o.width, height: o.height })
                        .map_err(convert)
                })
                .collect())
        }
    }

    export!(Sepia);
}

#[cfg(test)]
mod tests {
    #[test]
    fn sepia_warms_grey() {
        let mut image =
            mbk_standard::decode::Decoded { width: 1, height: 1, pixels: vec![100, 100, 100], has_alpha: false };
        super::sepia(&mut image, 1.0);
        let [r, g, b] = [image.pixels[0], image.pixels[1], image.pixels[2]];
        assert!(r > g && g > b, "{r} {g} {b}");
    }
}

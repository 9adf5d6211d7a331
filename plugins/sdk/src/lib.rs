//! `mbk-plugin-sdk`: write a MediaBlobKit plugin as one render function.
//!
//! A plugin is a WebAssembly component exporting the `mbk:plugin` world (`wit/plugin.wit`). With
//! this crate it is a function from the original's bytes and the variant specs to one result per
//! spec, plus one line of glue:
//!
//! ```ignore
//! use mbk_plugin_sdk::{Decoded, RenderError, Rendered, Spec};
//!
//! pub fn render(input: &[u8], max_pixels: u64, specs: &[Spec]) -> Result<Vec<Result<Rendered, RenderError>>, RenderError> {
//!     // Decoding (EXIF orientation, ICC to sRGB), resizing and encoding come from the
//!     // standard library; only the filter is yours.
//!     mbk_plugin_sdk::render_filtered(input, max_pixels, specs, |image: &mut Decoded| {
//!         image.pixels.iter_mut().for_each(|c| *c = 255 - *c);
//!         Ok(())
//!     })
//! }
//!
//! mbk_plugin_sdk::component!(name: "invert", description: "Inverted colours", render: crate::render);
//! ```
//!
//! The crate using `component!` depends on `wit-bindgen` (wasm32 only) and keeps `wit/plugin.wit`
//! beside its `Cargo.toml` (`mbk-host plugin new` writes both).

pub use mbk_standard::decode::Decoded;
pub use mbk_standard::{self as standard, Fit, Format, RenderError, Rendered, Spec, render_filtered};

/// The value of param `name` of the first spec (one decode serves every spec, so per-call
/// options are read from the first), if set.
pub fn param<'a>(specs: &'a [Spec], name: &str) -> Option<&'a str> {
    specs.first()?.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Param `name` as a fraction in 0..=1 (`default` when unset), or the variant's `InvalidSpec`.
pub fn fraction(specs: &[Spec], name: &str, default: f32) -> Result<f32, RenderError> {
    match param(specs, name) {
        None => Ok(default),
        Some(v) => v
            .parse::<f32>()
            .ok()
            .filter(|f| (0.0..=1.0).contains(f))
            .ok_or_else(|| RenderError::InvalidSpec(format!("{name} must be a number from 0 to 1, got {v:?}"))),
    }
}

/// The component glue: exports `info()` and `render()` of the `mbk:plugin` world, converting
/// between the world's types and this crate's, around `render` (a path to a function of the
/// shape in the crate docs). `wit:` names the folder holding `plugin.wit` (default `"wit"`).
/// Expands to nothing outside wasm32, so the crate's unit tests run natively.
#[macro_export]
macro_rules! component {
    (name: $name:expr, description: $description:expr, render: $render:path $(,)?) => {
        $crate::component!(name: $name, description: $description, render: $render, wit: "wit");
    };
    (name: $name:expr, description: $description:expr, render: $render:path, wit: $wit:literal $(,)?) => {
        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code)]
        mod component {
            wit_bindgen::generate!({ world: "plugin", path: $wit });
            use mbk::plugin::types::{Fit, ImageFormat};
            use $crate::standard as std_plugin;

            struct Plugin;

            fn spec(s: VariantSpec) -> std_plugin::Spec {
                std_plugin::Spec {
                    name: s.name,
                    width: s.width,
                    height: s.height,
                    fit: match s.fit {
                        Fit::Contain => std_plugin::Fit::Contain,
                        Fit::Cover => std_plugin::Fit::Cover,
                        Fit::Stretch => std_plugin::Fit::Stretch,
                    },
                    format: match s.format {
                        ImageFormat::Webp => std_plugin::Format::Webp,
                        ImageFormat::Avif => std_plugin::Format::Avif,
                        ImageFormat::Jpeg => std_plugin::Format::Jpeg,
                        ImageFormat::Png => std_plugin::Format::Png,
                    },
                    quality: s.quality,
                    params: s.params,
                }
            }

            fn error(e: std_plugin::RenderError) -> RenderError {
                match e {
                    std_plugin::RenderError::UnsupportedInput(m) => RenderError::UnsupportedInput(m),
                    std_plugin::RenderError::TooLarge(m) => RenderError::TooLarge(m),
                    std_plugin::RenderError::InvalidSpec(m) => RenderError::InvalidSpec(m),
                    std_plugin::RenderError::Failed(m) => RenderError::Failed(m),
                }
            }

            impl Guest for Plugin {
                fn info() -> PluginInfo {
                    PluginInfo {
                        name: ($name).into(),
                        version: env!("CARGO_PKG_VERSION").into(),
                        description: ($description).into(),
                    }
                }

                fn render(
                    input: Vec<u8>,
                    limits: DecodeLimits,
                    specs: Vec<VariantSpec>,
                ) -> Result<Vec<Result<Rendered, RenderError>>, RenderError> {
                    let specs: Vec<std_plugin::Spec> = specs.into_iter().map(spec).collect();
                    let results = $render(&input, limits.max_pixels, &specs).map_err(error)?;
                    Ok(results
                        .into_iter()
                        .map(|r| {
                            r.map(|o| Rendered { bytes: o.bytes, mime: o.mime, width: o.width, height: o.height })
                                .map_err(error)
                        })
                        .collect())
                }
            }

            export!(Plugin);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_reads_the_first_specs_params() {
        let spec = |params: Vec<(String, String)>| Spec {
            name: "v".into(),
            width: Some(1),
            height: Some(1),
            fit: Fit::Cover,
            format: Format::Png,
            quality: 80,
            params,
        };
        let specs = [spec(vec![("strength".into(), "0.5".into())]), spec(vec![])];
        assert_eq!(param(&specs, "strength"), Some("0.5"));
        assert_eq!(param(&specs, "other"), None);
        assert_eq!(param(&[], "strength"), None);
        assert_eq!(fraction(&specs, "strength", 1.0), Ok(0.5));
        assert_eq!(fraction(&specs, "other", 1.0), Ok(1.0));
        let bad = [spec(vec![("strength".into(), "2".into())])];
        assert_eq!(
            fraction(&bad, "strength", 1.0),
            Err(RenderError::InvalidSpec("strength must be a number from 0 to 1, got \"2\"".into()))
        );
    }
}

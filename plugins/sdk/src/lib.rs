//! `mbk-plugin-sdk`: write a MediaBlobKit plugin as one render function and the params it takes.
//!
//! A plugin is a WebAssembly component exporting the `mbk:plugin@0.3.0` world (`wit/plugin.wit`).
//! With this crate it is a function from the original's bytes and the variant specs to one result
//! per spec, its declared params, and one line of glue:
//!
//! ```ignore
//! use mbk_plugin_sdk::{Decoded, Param, Plugin, RenderError, Rendered, Spec};
//!
//! fn amount() -> Param {
//!     Param::float("amount", 0.0, 1.0, 1.0).describe("How far towards the inverse")
//! }
//!
//! pub fn render(input: &[u8], max_pixels: u64, specs: &[Spec]) -> Result<Vec<Result<Rendered, RenderError>>, RenderError> {
//!     let amount: f32 = mbk_plugin_sdk::value(specs, &amount())?;
//!     // Decoding (EXIF orientation, ICC to sRGB), resizing and encoding come from the
//!     // standard library; only the filter is yours.
//!     mbk_plugin_sdk::render_filtered(input, max_pixels, specs, |image: &mut Decoded| {
//!         image.pixels.iter_mut().for_each(|c| *c = (f32::from(*c) + (255.0 - 2.0 * f32::from(*c)) * amount) as u8);
//!         Ok(())
//!     })
//! }
//!
//! mbk_plugin_sdk::component!(Plugin {
//!     name: "invert",
//!     description: "Inverted colours",
//!     params: vec![amount()],
//!     render: crate::render,
//!     render_analysed: None,
//!     encode_on_host: true,
//! });
//! ```
//!
//! The host checks a project's `params` against the declaration when its settings are saved (400
//! naming the param), so a plugin sees only declared params with values of their types; `value`
//! checks again all the same (a plugin trusts no input).
//!
//! The crate using `component!` depends on `wit-bindgen` (wasm32 only) and keeps `wit/plugin.wit`
//! beside its `Cargo.toml` (`mbk-host plugin new` writes both).

pub use mbk_standard::decode::Decoded;
pub use mbk_standard::params::{Param, ParamType};
pub use mbk_standard::{
    self as standard, Analysis, Fit, Format, Gravity, Limits, Output, RenderError, Rendered, Spec, render_filtered,
};

/// What a render function answers: one result per spec, or why none could be rendered.
pub type RenderResults = Result<Vec<Result<Rendered, RenderError>>, RenderError>;

/// A render function that takes every limit and, when its last argument asks, also says what
/// the original is (see [`Plugin::render_analysed`]).
pub type RenderAnalysed = fn(&[u8], Limits, &[Spec], bool) -> Result<Output, RenderError>;

/// A plugin, as [`component!`] exports it.
pub struct Plugin {
    /// What `info()` says (the host keeps the name it is registered under).
    pub name: &'static str,
    pub description: &'static str,
    /// Every param `render` reads: a project may set only these, to values of their types.
    pub params: Vec<Param>,
    /// Called once per image with every spec the project names for it (one decode).
    pub render: fn(&[u8], u64, &[Spec]) -> RenderResults,
    /// Called instead of `render` when present: with every decode limit (frames too), and asked
    /// to say what the image is as well when the host asks (placeholders, frames, metadata: the
    /// host asks the standard plugin only). `None`: `render`, and no analysis.
    pub render_analysed: Option<RenderAnalysed>,
    /// Hand encoding to the host's native encoders (the world's `codecs`): the same formats and
    /// quality, about twice as fast for WebP and AVIF as encoding inside the sandbox. Decoding
    /// the untrusted original stays inside either way.
    pub encode_on_host: bool,
}

/// The value of param `name` of the first spec (one decode serves every spec, so per-call
/// options are read from the first), if set.
pub fn param<'a>(specs: &'a [Spec], name: &str) -> Option<&'a str> {
    specs.first()?.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The first spec's value of the declared `param` (its default when unset), checked against the
/// declaration and parsed; a variant's `InvalidSpec` naming the param otherwise.
pub fn value<T: std::str::FromStr>(specs: &[Spec], declared: &Param) -> Result<T, RenderError> {
    let name = &declared.name;
    let Some(text) = param(specs, name).or(declared.default.as_deref()) else {
        return Err(RenderError::InvalidSpec(format!("param {name} is required")));
    };
    declared.check(text).map_err(|why| RenderError::InvalidSpec(format!("param {name} {why}")))?;
    text.parse().map_err(|_| RenderError::InvalidSpec(format!("param {name}: cannot read {text:?}")))
}

/// Param `name` as a fraction in 0..=1 (`default` when unset), or the variant's `InvalidSpec`.
pub fn fraction(specs: &[Spec], name: &str, default: f32) -> Result<f32, RenderError> {
    value(specs, &Param::float(name, 0.0, 1.0, f64::from(default)))
}

/// The component glue: exports `info()` and `render()` of the `mbk:plugin@0.3.0` world for a
/// [`Plugin`] (an expression, evaluated per call), converting between the world's types and this
/// crate's. `wit:` names the folder holding `plugin.wit` (default `"wit"`). Outside wasm32 it
/// expands to `component::plugin()` alone, so the crate's unit tests run natively.
#[macro_export]
macro_rules! component {
    ($plugin:expr $(,)?) => {
        $crate::component!($plugin, wit: "wit");
    };
    ($plugin:expr, wit: $wit:literal $(,)?) => {
        /// The plugin as `component!` exports it; natively too, so that a unit test can look at
        /// it (`component::plugin().params`, `mbk_plugin_sdk::check(&component::plugin())`).
        #[allow(dead_code)]
        pub mod component {
            pub fn plugin() -> $crate::Plugin {
                #[allow(unused_imports)]
                use super::*;
                $plugin
            }

            #[cfg(target_arch = "wasm32")]
            #[allow(unsafe_code)]
            mod exports {
                wit_bindgen::generate!({ world: "plugin", path: $wit });
                use mbk::plugin::types::{
                    Analysis, Fit, Gps, Gravity, ImageFormat, Metadata, ParamDecl, ParamType, Point, Rendered,
                };
                use $crate::standard as std_plugin;
                use super::plugin;

                fn format(f: std_plugin::Format) -> ImageFormat {
                    match f {
                        std_plugin::Format::Webp => ImageFormat::Webp,
                        std_plugin::Format::Avif => ImageFormat::Avif,
                        std_plugin::Format::Jpeg => ImageFormat::Jpeg,
                        std_plugin::Format::Png => ImageFormat::Png,
                    }
                }

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
                        gravity: match s.gravity {
                            Gravity::Centre => std_plugin::Gravity::Centre,
                            Gravity::Attention => std_plugin::Gravity::Attention,
                            Gravity::Focal(Point { x, y }) => std_plugin::Gravity::Focal { x, y },
                        },
                    }
                }

                fn analysis(a: std_plugin::Analysis) -> Analysis {
                    let [r, g, b] = a.dominant_color;
                    let m = a.metadata;
                    Analysis {
                        blurhash: a.blurhash,
                        thumbhash: a.thumbhash,
                        dominant_color: u32::from_be_bytes([0, r, g, b]),
                        frames: a.frames,
                        metadata: Metadata {
                            camera_make: m.camera_make,
                            camera_model: m.camera_model,
                            lens: m.lens,
                            taken_at: m.taken_at,
                            exposure_time: m.exposure_time,
                            f_number: m.f_number,
                            iso: m.iso,
                            focal_length_mm: m.focal_length_mm,
                            orientation: m.orientation,
                            color_profile: m.color_profile,
                            gps: m.gps.map(|g| Gps { latitude: g.latitude, longitude: g.longitude, altitude: g.altitude }),
                        },
                    }
                }

                fn declared(p: $crate::Param) -> ParamDecl {
                    ParamDecl {
                        name: p.name,
                        type_: match p.kind {
                            $crate::ParamType::String => ParamType::String,
                            $crate::ParamType::Int => ParamType::Int,
                            $crate::ParamType::Float => ParamType::Float,
                            $crate::ParamType::Bool => ParamType::Bool,
                            $crate::ParamType::Enum => ParamType::Enum,
                        },
                        default: p.default,
                        min: p.min,
                        max: p.max,
                        values: p.values,
                        description: p.description,
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

                /// The host's native encoders, for `encode_on_host`.
                fn host_encode(
                    pixels: &[u8],
                    width: u32,
                    height: u32,
                    has_alpha: bool,
                    f: std_plugin::Format,
                    quality: u8,
                ) -> Result<Vec<u8>, String> {
                    mbk::plugin::codecs::encode(pixels, width, height, has_alpha, format(f), quality)
                }

                struct Exported;

                impl Guest for Exported {
                    fn info() -> PluginInfo {
                        let plugin = plugin();
                        PluginInfo {
                            name: plugin.name.into(),
                            version: env!("CARGO_PKG_VERSION").into(),
                            description: plugin.description.into(),
                            params: plugin.params.into_iter().map(declared).collect(),
                        }
                    }

                    fn render(
                        input: Vec<u8>,
                        limits: DecodeLimits,
                        specs: Vec<VariantSpec>,
                        analyse: bool,
                    ) -> Result<RenderedSet, RenderError> {
                        let plugin = plugin();
                        if plugin.encode_on_host {
                            std_plugin::encode::use_encoder(host_encode);
                        }
                        let specs: Vec<std_plugin::Spec> = specs.into_iter().map(spec).collect();
                        let output = match plugin.render_analysed {
                            Some(render_analysed) => {
                                let limits = std_plugin::Limits {
                                    max_pixels: limits.max_pixels,
                                    max_frames: limits.max_frames,
                                };
                                render_analysed(&input, limits, &specs, analyse)
                            }
                            None => (plugin.render)(&input, limits.max_pixels, &specs)
                                .map(|variants| std_plugin::Output { variants, analysis: None }),
                        }
                        .map_err(error)?;
                        let variants = output
                            .variants
                            .into_iter()
                            .map(|r| {
                                r.map(|o| Rendered { bytes: o.bytes, mime: o.mime, width: o.width, height: o.height })
                                    .map_err(error)
                            })
                            .collect();
                        Ok(RenderedSet { variants, analysis: output.analysis.map(analysis) })
                    }
                }

                export!(Exported);
            }
        }
    };
}

/// What the host would refuse in `plugin`'s declaration when it is registered (a name twice, a
/// default of the wrong type…): for a plugin's own unit test.
pub fn check(plugin: &Plugin) -> Result<(), String> {
    mbk_standard::params::check_declaration(&plugin.params)
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
            gravity: Gravity::Centre,
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
            Err(RenderError::InvalidSpec("param strength must be at most 1, got \"2\"".into()))
        );
        let mode = Param::one_of("mode", &["soft", "hard"], "soft");
        assert_eq!(value::<String>(&specs, &mode).as_deref(), Ok("soft"));
        let required = Param::string("label", 10, None);
        assert!(value::<String>(&specs, &required).is_err());
    }
}

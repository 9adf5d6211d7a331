//! The one place that runs `bindgen!`, once per world version the host runs: `mbk:plugin@0.3.0`
//! (`wit/plugin.wit`: gravity, and the analysis `render` may answer), the frozen 0.2.0
//! (`wit/v0.2.0`, whose `info()` declares typed params) and 0.1.0 (`wit/v0.1.0`), so that
//! components built for older worlds keep working. [`Exports`] is a linked component of any,
//! with one face: the engine never asks which.
//!
//! The exports (`info`, `render`) are called as futures, so that a call's deadline can drop
//! it wherever the guest is, waiting in a host call included. The host's own imports (`log`,
//! `codecs`) stay plain functions: quick, or bounded by the call's deadline themselves.

use wasmtime::Store;
use wasmtime::component::InstancePre;

use super::host_calls::HostState;
use super::{Analysis, Limits, PluginInfo, RenderError, Rendered, Spec};

/// The worlds, newest first.
pub const WORLD: &str = "mbk:plugin/plugin@0.3.0";
pub const WORLD_0_2: &str = "mbk:plugin/plugin@0.2.0";
pub const WORLD_0_1: &str = "mbk:plugin/plugin@0.1.0";

pub mod v0_3 {
    wasmtime::component::bindgen!({ world: "plugin", path: "../wit", exports: { default: async } });
}

pub mod v0_2 {
    wasmtime::component::bindgen!({ world: "plugin", path: "../wit/v0.2.0", exports: { default: async } });
}

pub mod v0_1 {
    wasmtime::component::bindgen!({ world: "plugin", path: "../wit/v0.1.0", exports: { default: async } });
}

/// What a render answers, in the host's types: one result per spec and the analysis when asked
/// for (never from a world older than 0.3.0), or why none.
pub type Answer = Result<(Vec<Result<Rendered, RenderError>>, Option<Analysis>), RenderError>;

/// A component linked and checked to export one of the worlds.
#[derive(Clone)]
pub(super) enum Exports {
    V0_3(v0_3::PluginPre<HostState>),
    V0_2(v0_2::PluginPre<HostState>),
    V0_1(v0_1::PluginPre<HostState>),
}

impl Exports {
    /// The newest world the component exports; the error says why it exports none (why not the
    /// newest).
    pub(super) fn new(pre: InstancePre<HostState>) -> wasmtime::Result<Exports> {
        let newest = match v0_3::PluginPre::new(pre.clone()) {
            Ok(pre) => return Ok(Exports::V0_3(pre)),
            Err(e) => e,
        };
        if let Ok(pre) = v0_2::PluginPre::new(pre.clone()) {
            return Ok(Exports::V0_2(pre));
        }
        v0_1::PluginPre::new(pre).map(Exports::V0_1).map_err(|_| newest)
    }

    pub(super) fn world(&self) -> &'static str {
        match self {
            Exports::V0_3(_) => WORLD,
            Exports::V0_2(_) => WORLD_0_2,
            Exports::V0_1(_) => WORLD_0_1,
        }
    }

    /// A fresh instance, and nothing else (what every call pays before its work).
    pub(super) async fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<()> {
        match self {
            Exports::V0_3(pre) => pre.instantiate_async(store).await.map(drop),
            Exports::V0_2(pre) => pre.instantiate_async(store).await.map(drop),
            Exports::V0_1(pre) => pre.instantiate_async(store).await.map(drop),
        }
    }

    /// `info()` of a fresh instance; a 0.1.0 component declares no params (`None`: unchecked).
    pub(super) async fn info(&self, store: &mut Store<HostState>) -> wasmtime::Result<PluginInfo> {
        macro_rules! typed {
            ($pre:expr) => {{
                let info = $pre.instantiate_async(&mut *store).await?.call_info(store).await?;
                let params = info.params.into_iter().map(Into::into).collect();
                PluginInfo {
                    name: info.name,
                    version: info.version,
                    description: info.description,
                    params: Some(params),
                }
            }};
        }
        Ok(match self {
            Exports::V0_3(pre) => typed!(pre),
            Exports::V0_2(pre) => typed!(pre),
            Exports::V0_1(pre) => {
                let info = pre.instantiate_async(&mut *store).await?.call_info(store).await?;
                PluginInfo { name: info.name, version: info.version, description: info.description, params: None }
            }
        })
    }

    /// `render()` of a fresh instance; `analyse` asks a 0.3.0 component for the analysis too
    /// (and only 0.3.0 hears of the frame limit).
    pub(super) async fn render(
        &self,
        store: &mut Store<HostState>,
        input: &[u8],
        limits: Limits,
        specs: &[Spec],
        analyse: bool,
    ) -> wasmtime::Result<Answer> {
        macro_rules! variants {
            ($results:expr) => {
                $results.into_iter().map(|r| r.map(Rendered::from).map_err(RenderError::from)).collect()
            };
        }
        macro_rules! instance {
            ($world:ident, $pre:expr) => {{
                use $world::mbk::plugin::types as wit;
                let specs: Vec<wit::VariantSpec> = specs.iter().map(Into::into).collect();
                ($pre.instantiate_async(&mut *store).await?, specs)
            }};
        }
        let Limits { max_pixels, max_frames } = limits;
        Ok(match self {
            Exports::V0_3(pre) => {
                let limits = v0_3::mbk::plugin::types::DecodeLimits { max_pixels, max_frames };
                let (instance, specs) = instance!(v0_3, pre);
                let answer = instance.call_render(store, input, limits, &specs, analyse).await?;
                answer.map(|set| (variants!(set.variants), set.analysis.map(Analysis::from))).map_err(RenderError::from)
            }
            Exports::V0_2(pre) => {
                let limits = v0_2::mbk::plugin::types::DecodeLimits { max_pixels };
                let (instance, specs) = instance!(v0_2, pre);
                let answer = instance.call_render(store, input, limits, &specs).await?;
                answer.map(|results| (variants!(results), None)).map_err(RenderError::from)
            }
            Exports::V0_1(pre) => {
                let limits = v0_1::mbk::plugin::types::DecodeLimits { max_pixels };
                let (instance, specs) = instance!(v0_1, pre);
                let answer = instance.call_render(store, input, limits, &specs).await?;
                answer.map(|results| (variants!(results), None)).map_err(RenderError::from)
            }
        })
    }
}

/// The conversions between a world's types and the host's rendering types (the standard
/// plugin's own, see `super`), at the one edge where they meet: the same for both versions,
/// whose shared types are alike.
macro_rules! conversions {
    ($world:ident) => {
        impl From<Fit> for $world::Fit {
            fn from(fit: Fit) -> $world::Fit {
                match fit {
                    Fit::Contain => $world::Fit::Contain,
                    Fit::Cover => $world::Fit::Cover,
                    Fit::Stretch => $world::Fit::Stretch,
                }
            }
        }

        impl From<Format> for $world::ImageFormat {
            fn from(format: Format) -> $world::ImageFormat {
                match format {
                    Format::Webp => $world::ImageFormat::Webp,
                    Format::Avif => $world::ImageFormat::Avif,
                    Format::Jpeg => $world::ImageFormat::Jpeg,
                    Format::Png => $world::ImageFormat::Png,
                }
            }
        }

        /// What a plugin asks the host's `codecs` for.
        impl From<$world::ImageFormat> for Format {
            fn from(format: $world::ImageFormat) -> Format {
                match format {
                    $world::ImageFormat::Webp => Format::Webp,
                    $world::ImageFormat::Avif => Format::Avif,
                    $world::ImageFormat::Jpeg => Format::Jpeg,
                    $world::ImageFormat::Png => Format::Png,
                }
            }
        }

        impl From<$world::RenderError> for RenderError {
            fn from(e: $world::RenderError) -> RenderError {
                match e {
                    $world::RenderError::UnsupportedInput(m) => RenderError::UnsupportedInput(m),
                    $world::RenderError::TooLarge(m) => RenderError::TooLarge(m),
                    $world::RenderError::InvalidSpec(m) => RenderError::InvalidSpec(m),
                    $world::RenderError::Failed(m) => RenderError::Failed(m),
                }
            }
        }

        /// A plugin's claim about its output; the pipeline verifies it (`crate::pipeline::verify`).
        impl From<$world::Rendered> for Rendered {
            fn from(out: $world::Rendered) -> Rendered {
                Rendered { bytes: out.bytes, mime: out.mime, width: out.width, height: out.height }
            }
        }
    };
}

/// A param as a plugin of 0.2.0 or newer declares it (checked by `params::check_declaration` on
/// load).
macro_rules! param_declarations {
    ($world:ident) => {
        impl From<$world::ParamDecl> for Param {
            fn from(p: $world::ParamDecl) -> Param {
                Param {
                    name: p.name,
                    kind: match p.type_ {
                        $world::ParamType::String => ParamType::String,
                        $world::ParamType::Int => ParamType::Int,
                        $world::ParamType::Float => ParamType::Float,
                        $world::ParamType::Bool => ParamType::Bool,
                        $world::ParamType::Enum => ParamType::Enum,
                    },
                    default: p.default,
                    min: p.min,
                    max: p.max,
                    values: p.values,
                    description: p.description,
                }
            }
        }
    };
}

/// A spec as worlds before 0.3.0 take it: no gravity (their `cover` is centred).
macro_rules! spec_without_gravity {
    ($world:ident) => {
        impl From<&Spec> for $world::VariantSpec {
            fn from(spec: &Spec) -> $world::VariantSpec {
                $world::VariantSpec {
                    name: spec.name.clone(),
                    width: spec.width,
                    height: spec.height,
                    fit: spec.fit.into(),
                    format: spec.format.into(),
                    quality: spec.quality,
                    params: spec.params.clone(),
                }
            }
        }
    };
}

/// A module of its own: the worlds' `use` put generated `Rendered` and `RenderError` at the top
/// of each world's module.
mod conversions {
    use super::v0_1::mbk::plugin::types as v0_1;
    use super::v0_2::mbk::plugin::types as v0_2;
    use super::v0_3::mbk::plugin::types as v0_3;
    use crate::plugins::{
        Analysis, Fit, Format, Gps, Gravity, Metadata, Param, ParamType, RenderError, Rendered, Spec,
    };

    conversions!(v0_1);
    conversions!(v0_2);
    conversions!(v0_3);
    spec_without_gravity!(v0_1);
    spec_without_gravity!(v0_2);
    param_declarations!(v0_2);
    param_declarations!(v0_3);

    impl From<&Spec> for v0_3::VariantSpec {
        fn from(spec: &Spec) -> v0_3::VariantSpec {
            v0_3::VariantSpec {
                name: spec.name.clone(),
                width: spec.width,
                height: spec.height,
                fit: spec.fit.into(),
                format: spec.format.into(),
                quality: spec.quality,
                params: spec.params.clone(),
                gravity: match spec.gravity {
                    Gravity::Centre => v0_3::Gravity::Centre,
                    Gravity::Attention => v0_3::Gravity::Attention,
                    Gravity::Focal { x, y } => v0_3::Gravity::Focal(v0_3::Point { x, y }),
                },
            }
        }
    }

    /// A plugin's word about the original: checked and bounded by `crate::pipeline::analysis`
    /// before anything of it is kept.
    impl From<v0_3::Analysis> for Analysis {
        fn from(a: v0_3::Analysis) -> Analysis {
            let [_, r, g, b] = a.dominant_color.to_be_bytes();
            let m = a.metadata;
            Analysis {
                blurhash: a.blurhash,
                thumbhash: a.thumbhash,
                dominant_color: [r, g, b],
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
    }
}

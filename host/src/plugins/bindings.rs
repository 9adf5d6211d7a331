//! The one place that runs `bindgen!`, once per world version the host runs: `mbk:plugin@0.2.0`
//! (`wit/plugin.wit`, whose `info()` declares typed params) and the frozen `mbk:plugin@0.1.0`
//! (`wit/v0.1.0/plugin.wit`), so that components built for 0.1.0 keep working. [`Exports`] is a
//! linked component of either, with one face: the engine never asks which.
//!
//! The exports (`info`, `render`) are called as futures, so that a call's deadline can drop
//! it wherever the guest is, waiting in a host call included. The host's own imports (`log`,
//! `codecs`) stay plain functions: quick, or bounded by the call's deadline themselves.

use wasmtime::Store;
use wasmtime::component::InstancePre;

use super::host_calls::HostState;
use super::{PluginInfo, RenderError, Rendered, Spec};

/// The world of 0.2.0 and of 0.1.0.
pub const WORLD: &str = "mbk:plugin/plugin@0.2.0";
pub const WORLD_0_1: &str = "mbk:plugin/plugin@0.1.0";

pub mod v0_2 {
    wasmtime::component::bindgen!({ world: "plugin", path: "../wit", exports: { default: async } });
}

pub mod v0_1 {
    wasmtime::component::bindgen!({ world: "plugin", path: "../wit/v0.1.0", exports: { default: async } });
}

/// What a render answers, in the host's types: one result per spec, or why none.
pub type Answer = Result<Vec<Result<Rendered, RenderError>>, RenderError>;

/// A component linked and checked to export one of the worlds.
#[derive(Clone)]
pub(super) enum Exports {
    V0_2(v0_2::PluginPre<HostState>),
    V0_1(v0_1::PluginPre<HostState>),
}

impl Exports {
    /// The newest world the component exports; the error says why it exports none.
    pub(super) fn new(pre: InstancePre<HostState>) -> wasmtime::Result<Exports> {
        match v0_2::PluginPre::new(pre.clone()) {
            Ok(pre) => Ok(Exports::V0_2(pre)),
            Err(newest) => v0_1::PluginPre::new(pre).map(Exports::V0_1).map_err(|_| newest),
        }
    }

    pub(super) fn world(&self) -> &'static str {
        match self {
            Exports::V0_2(_) => WORLD,
            Exports::V0_1(_) => WORLD_0_1,
        }
    }

    /// A fresh instance, and nothing else (what every call pays before its work).
    pub(super) async fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<()> {
        match self {
            Exports::V0_2(pre) => pre.instantiate_async(store).await.map(drop),
            Exports::V0_1(pre) => pre.instantiate_async(store).await.map(drop),
        }
    }

    /// `info()` of a fresh instance; a 0.1.0 component declares no params (`None`: unchecked).
    pub(super) async fn info(&self, store: &mut Store<HostState>) -> wasmtime::Result<PluginInfo> {
        Ok(match self {
            Exports::V0_2(pre) => {
                let info = pre.instantiate_async(&mut *store).await?.call_info(store).await?;
                let params = info.params.into_iter().map(Into::into).collect();
                PluginInfo {
                    name: info.name,
                    version: info.version,
                    description: info.description,
                    params: Some(params),
                }
            }
            Exports::V0_1(pre) => {
                let info = pre.instantiate_async(&mut *store).await?.call_info(store).await?;
                PluginInfo { name: info.name, version: info.version, description: info.description, params: None }
            }
        })
    }

    /// `render()` of a fresh instance.
    pub(super) async fn render(
        &self,
        store: &mut Store<HostState>,
        input: &[u8],
        max_pixels: u64,
        specs: &[Spec],
    ) -> wasmtime::Result<Answer> {
        macro_rules! call {
            ($world:ident, $pre:expr) => {{
                use $world::mbk::plugin::types as wit;
                let specs: Vec<wit::VariantSpec> = specs.iter().map(Into::into).collect();
                let instance = $pre.instantiate_async(&mut *store).await?;
                let answer = instance.call_render(store, input, wit::DecodeLimits { max_pixels }, &specs).await?;
                answer
                    .map(|results| {
                        results.into_iter().map(|r| r.map(Rendered::from).map_err(RenderError::from)).collect()
                    })
                    .map_err(RenderError::from)
            }};
        }
        Ok(match self {
            Exports::V0_2(pre) => call!(v0_2, pre),
            Exports::V0_1(pre) => call!(v0_1, pre),
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

/// A module of its own: the worlds' `use` put generated `Rendered` and `RenderError` at the top
/// of each world's module.
mod conversions {
    use super::v0_1::mbk::plugin::types as v0_1;
    use super::v0_2::mbk::plugin::types as v0_2;
    use crate::plugins::{Fit, Format, Param, ParamType, RenderError, Rendered, Spec};

    conversions!(v0_1);
    conversions!(v0_2);

    /// A param as a 0.2.0 plugin declares it (checked by `params::check_declaration` on load).
    impl From<v0_2::ParamDecl> for Param {
        fn from(p: v0_2::ParamDecl) -> Param {
            Param {
                name: p.name,
                kind: match p.type_ {
                    v0_2::ParamType::String => ParamType::String,
                    v0_2::ParamType::Int => ParamType::Int,
                    v0_2::ParamType::Float => ParamType::Float,
                    v0_2::ParamType::Bool => ParamType::Bool,
                    v0_2::ParamType::Enum => ParamType::Enum,
                },
                default: p.default,
                min: p.min,
                max: p.max,
                values: p.values,
                description: p.description,
            }
        }
    }
}

//! The wasmtime host for plugins: [`engine::PluginEngine`] compiles components once (cached on
//! disk by SHA-256 and engine version) and runs each call in a fresh, bounded store. The
//! standard plugin is also linked natively ([`mbk_standard`]) as the fallback engine.
//!
//! Rendering types are the standard plugin's own plain types, shared by both engines and by
//! the host at large (project settings hold this `Fit` and `Format`); the WIT ones convert at the
//! bindings ([`bindings`]). So are typed params ([`Param`]): a 0.2.0 plugin declares them in
//! `info()`, the registry keeps the declaration, project settings are checked against it.

pub mod bindings;
mod encoders;
pub mod engine;
pub mod engine_config;
mod host_calls;
pub mod pin;
pub mod registry;
pub mod validate;

pub use bindings::WORLD;
pub use engine::{
    CompiledPlugin, PluginEngine, PluginFailure, PluginInfo, PluginSettings, RenderOutput, RenderResults,
};
pub use mbk_standard::params::{Param, ParamType};
pub use mbk_standard::{Analysis, Fit, Format, Gps, Gravity, Limits, Metadata, Output, RenderError, Rendered, Spec};

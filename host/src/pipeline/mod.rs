//! From project settings to rendered variants. [`Renderer`] runs the standard plugin as the
//! embedded WebAssembly component, or natively: `PIPELINE_ENGINE=wasm|native|auto` (auto: the
//! component when this build has one). Custom plugins always run in the sandbox, with no
//! fallback: their failure is the variant's failure.

use std::sync::Arc;

use crate::config::PipelineEngine;
use crate::plugins::{CompiledPlugin, PluginEngine, PluginFailure, PluginSettings, RenderError, Rendered, Spec};

/// The standard plugin as a component, built by `host/build.rs` (empty when it could not be).
pub static STANDARD_COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/mbk_standard.wasm"));

/// Which engine renders the standard plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Wasm,
    Native,
}

pub struct Renderer {
    plugins: Arc<PluginEngine>,
    standard: Option<CompiledPlugin>,
}

impl Renderer {
    /// Sets up the engine; with `wasm` or `auto` (and a component in this build), compiles the
    /// standard component now (or loads it from the cache), so the first job does not wait.
    pub fn new(choice: PipelineEngine, settings: PluginSettings) -> anyhow::Result<Renderer> {
        let plugins = PluginEngine::new(settings)?;
        let standard = match choice {
            PipelineEngine::Native => None,
            PipelineEngine::Wasm if STANDARD_COMPONENT.is_empty() => {
                anyhow::bail!("PIPELINE_ENGINE=wasm, but this build has no standard component (see the build warnings)")
            }
            PipelineEngine::Auto if STANDARD_COMPONENT.is_empty() => {
                tracing::warn!("no standard plugin component in this build; rendering natively");
                None
            }
            PipelineEngine::Wasm | PipelineEngine::Auto => Some(
                plugins.load(STANDARD_COMPONENT).map_err(|e| anyhow::anyhow!("the standard plugin component: {e}"))?,
            ),
        };
        Ok(Renderer { plugins, standard })
    }

    pub fn engine(&self) -> Engine {
        if self.standard.is_some() { Engine::Wasm } else { Engine::Native }
    }

    /// The plugin engine, for custom plugins.
    pub fn plugins(&self) -> &Arc<PluginEngine> {
        &self.plugins
    }

    /// Renders with the standard plugin. CPU-bound: call from a blocking thread.
    pub fn render_standard(
        &self,
        input: &[u8],
        max_pixels: u64,
        specs: &[Spec],
    ) -> Result<Vec<Result<Rendered, RenderError>>, PluginFailure> {
        match &self.standard {
            Some(component) => self.plugins.render(component, input, max_pixels, specs),
            None => mbk_standard::render(input, max_pixels, specs).map_err(PluginFailure::Render),
        }
    }
}

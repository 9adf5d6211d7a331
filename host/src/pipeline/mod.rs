//! The pipeline owns rendering: from a file's pending variants to settled ones, in one entry
//! point ([`render_pending`]: plan, resolve the plugin, run, verify, store, record); the jobs only
//! orchestrate. [`Renderer`] runs the standard plugin as the embedded WebAssembly component, or
//! natively: `PIPELINE_ENGINE=wasm|native|auto` (auto: the component when this build has one).
//! Custom plugins always run in the sandbox, with no fallback: their failure is the variant's
//! failure.

mod alpha;
mod analysed;
pub mod bench;
pub mod metering;
pub mod provenance;
mod render;
mod stored;

pub use render::{Outcome, Retry, fail_pending, render_pending, render_with_outdated, to_spec};

use std::sync::Arc;

use crate::config::PipelineEngine;
use crate::plugins::{
    CompiledPlugin, Fit, Limits, Output, PluginEngine, PluginFailure, PluginSettings, RenderError, RenderOutput,
    RenderResults, Rendered, Spec,
};

/// The standard plugin as a component, built by `host/build.rs` (empty when it could not be).
pub static STANDARD_COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/mbk_standard.wasm"));
/// Its machine code, compiled by `host/build.rs` for this machine (empty when it could not be):
/// a fresh data dir renders at once instead of compiling for seconds first.
pub static STANDARD_PRECOMPILED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/mbk_standard.cwasm"));

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
        Renderer::with_engine(choice, PluginEngine::new(settings)?)
    }

    /// Like [`Renderer::new`], on an engine that already runs: a process has one engine (one
    /// instance pool, one epoch thread), shared by the plugin checks and the renders.
    pub fn with_engine(choice: PipelineEngine, plugins: Arc<PluginEngine>) -> anyhow::Result<Renderer> {
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
                plugins.load_built_in(STANDARD_COMPONENT, STANDARD_PRECOMPILED).map_err(|e| anyhow::anyhow!("the standard plugin component: {e}"))?,
            ),
        };
        Ok(Renderer { plugins, standard })
    }

    /// The renderer a worker process uses: `PIPELINE_ENGINE`, on the App's own plugin engine
    /// (whose limits are [`plugin_settings`]), so that `serve` runs one engine, not two.
    /// CPU-bound (compiles the standard component): call from a blocking thread.
    pub fn for_app(app: &crate::App) -> anyhow::Result<Renderer> {
        let engine = app.plugin_engine().map_err(|e| anyhow::anyhow!("{e:#}"))?;
        Renderer::with_engine(app.config.pipeline_engine, engine)
    }

    pub fn engine(&self) -> Engine {
        if self.standard.is_some() { Engine::Wasm } else { Engine::Native }
    }

    /// The compiled standard component, when the wasm engine is in use.
    pub fn standard_component(&self) -> Option<&CompiledPlugin> {
        self.standard.as_ref()
    }

    /// The plugin engine, for custom plugins.
    pub fn plugins(&self) -> &Arc<PluginEngine> {
        &self.plugins
    }

    /// Renders with the standard plugin. CPU-bound: call from a blocking thread.
    pub fn render_standard(&self, input: &[u8], max_pixels: u64, specs: &[Spec]) -> RenderResults {
        self.render_standard_metered(input, Limits::pixels(max_pixels), specs, false).0.map(|out| out.variants)
    }

    /// [`Renderer::render_standard`] within every limit of `limits` (frames too), with the
    /// analysis of the original when `analyse`, and the call's peak linear memory (in the sandbox).
    pub fn render_standard_metered(
        &self,
        input: &[u8],
        limits: Limits,
        specs: &[Spec],
        analyse: bool,
    ) -> (RenderOutput, Option<u64>) {
        let (name, (output, peak)) = match &self.standard {
            Some(component) => ("mbk-standard", self.plugins.render_metered(component, input, limits, specs, analyse)),
            None => {
                let output =
                    mbk_standard::render_analysed(input, limits, specs, analyse).map_err(PluginFailure::Render);
                ("mbk-standard (native)", (output, None))
            }
        };
        (counted(name, output).map(|output| checked(specs, output)), peak)
    }

    /// Renders with a custom plugin, in the sandbox, with no fallback. CPU-bound.
    pub fn render_with(&self, plugin: &CompiledPlugin, input: &[u8], max_pixels: u64, specs: &[Spec]) -> RenderResults {
        self.render_with_metered(plugin, input, Limits::pixels(max_pixels), specs).0.map(|out| out.variants)
    }

    /// [`Renderer::render_with`] within every limit of `limits`, and the call's peak linear memory.
    pub fn render_with_metered(
        &self,
        plugin: &CompiledPlugin,
        input: &[u8],
        limits: Limits,
        specs: &[Spec],
    ) -> (RenderOutput, Option<u64>) {
        let (output, peak) = self.plugins.render_metered(plugin, input, limits, specs, false);
        (counted(&plugin.info.name, output).map(|r| checked(specs, r)), peak)
    }
}

/// Counts one plugin call for `GET /metrics`.
fn counted<T>(plugin: &str, result: Result<T, PluginFailure>) -> Result<T, PluginFailure> {
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) if e.is_transient() => "busy",
        Err(_) => "failed",
    };
    crate::metrics::plugin_run(plugin, outcome);
    result
}

/// The plugin limits of a process: `PLUGIN_MEMORY_MB`, `PLUGIN_TIMEOUT_MS`, two instances per
/// worker slot, compiled components cached under `DATA_DIR/plugin-cache`.
pub fn plugin_settings(config: &crate::config::Config) -> PluginSettings {
    PluginSettings {
        memory_bytes: (config.plugin_memory_mb as usize) << 20,
        timeout: config.plugin_timeout,
        cache_dir: Some(config.data_dir.join("plugin-cache")),
        instances: (config.worker_concurrency * 2).max(2) as u32,
    }
}

/// The builtin plugin as the registry lists it: version, SHA-256 and size of the embedded
/// component (of nothing when this build has none and renders natively).
pub fn builtin_identity() -> (&'static str, String, i64) {
    use sha2::Digest;
    (mbk_standard::VERSION, hex::encode(sha2::Sha256::digest(STANDARD_COMPONENT)), STANDARD_COMPONENT.len() as i64)
}

fn checked(specs: &[Spec], output: Output) -> Output {
    let variants =
        specs.iter().zip(output.variants).map(|(spec, result)| result.and_then(|r| verify(spec, r))).collect();
    Output { variants, analysis: output.analysis }
}

/// A plugin's word is not trusted: the bytes must be an image of the format asked for, of the
/// size the plugin claims, and that size must honour the fit.
pub fn verify(spec: &Spec, rendered: Rendered) -> Result<Rendered, RenderError> {
    let wrong =
        |why: String| Err(RenderError::Failed(format!("the plugin's output for {:?} is wrong: {why}", spec.name)));
    if rendered.mime != spec.format.mime() {
        return wrong(format!("{} instead of {}", rendered.mime, spec.format.mime()));
    }
    let Ok(size) = imagesize::blob_size(&rendered.bytes) else { return wrong("not a readable image".into()) };
    let actual = (size.width as u64, size.height as u64);
    if actual != (u64::from(rendered.width), u64::from(rendered.height)) {
        return wrong(format!(
            "it claims {}x{} but the image is {}x{}",
            rendered.width, rendered.height, actual.0, actual.1
        ));
    }
    let fits = match spec.fit {
        Fit::Cover | Fit::Stretch => Some(rendered.width) == spec.width && Some(rendered.height) == spec.height,
        Fit::Contain => {
            spec.width.is_none_or(|w| rendered.width <= w) && spec.height.is_none_or(|h| rendered.height <= h)
        }
    };
    if !fits {
        return wrong(format!("{}x{} does not honour the requested box", rendered.width, rendered.height));
    }
    Ok(rendered)
}

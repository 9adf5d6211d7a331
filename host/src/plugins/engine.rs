//! [`PluginEngine`]: a narrow face over wasmtime.
//!
//! - One `Engine` (component model, epoch interruption, SIMD) and one `Linker` (WASI p2 with an
//!   empty context: no preopened directories, no environment, no network, no inherited stdio;
//!   plus the host's `log`).
//! - Components are compiled once; the machine code is cached on disk under
//!   `<cache>/<sha256>-<engine hash>.cwasm` and reused across restarts.
//! - Every call gets a fresh `Store` with a memory cap, a deadline and its own captured stderr.
//!   A trap, a deadline or an out-of-memory fails that call with a clear reason; the process
//!   carries on.
//! - The deadline holds in host calls too. Calls run on wasmtime's async support: the call is a
//!   future, the guest's compute yields at every epoch tick (10 ms, from a thread holding only a
//!   weak engine reference), WASI's waits (sleep, poll) are async host calls, and a
//!   `tokio::time::timeout` drops the future at the deadline, and the `Store` with it, whether
//!   the guest was computing or waiting in the host. Epoch interruption alone never reaches a
//!   guest blocked in a host call.
//! - The API stays blocking (callers run it on blocking threads, as CPU-heavy work should): each
//!   call runs its future on the calling thread; only the timers live on a small runtime of
//!   their own ([`clock`]).

use std::collections::HashMap;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use anyhow::Context;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use super::bindings::{Answer, Exports, v0_1, v0_2, v0_3};
use super::host_calls::HostState;
use super::{Limits, Output, Param, RenderError, Rendered, Spec};

const TICK: Duration = Duration::from_millis(10);
/// Guest stderr kept per call (enough for a panic message and a backtrace line or two).
const STDERR_CAPTURE: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct PluginSettings {
    pub memory_bytes: usize,
    pub timeout: Duration,
    /// Where compiled components are cached; `None`: in memory only.
    pub cache_dir: Option<PathBuf>,
    /// Plugin calls that may run at once (the pooling allocator's slots): about twice the
    /// worker count. One more is refused until a slot frees (a transient failure).
    pub instances: u32,
}

/// Why a plugin call produced no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginFailure {
    #[error("the plugin ran past its deadline of {0:?}")]
    Timeout(Duration),
    #[error("the plugin ran out of memory (limit {0} MiB)")]
    OutOfMemory(usize),
    #[error("the plugin crashed: {0}")]
    Trap(String),
    #[error("the plugin refused the input: {0}")]
    Render(RenderError),
    #[error("invalid plugin: {0}")]
    Invalid(String),
    /// Every sandbox slot of this process is in use: nothing is wrong with the plugin or the
    /// input, the call is worth repeating later.
    #[error("every plugin sandbox of this process is busy: {0}")]
    Busy(String),
}

/// What one plugin call answers: one result per spec, in the specs' order, or the reason the
/// call as a whole produced none.
pub type RenderResults = Result<Vec<Result<Rendered, RenderError>>, PluginFailure>;

/// [`RenderResults`], and what the plugin saw of the original when it was asked (see
/// [`PluginEngine::render_metered`]).
pub type RenderOutput = Result<Output, PluginFailure>;

impl PluginFailure {
    /// Whether the same call may succeed later (nothing was wrong with the plugin or the input).
    pub fn is_transient(&self) -> bool {
        matches!(self, PluginFailure::Busy(_))
    }
}

/// A component compiled and linked, ready to instantiate in microseconds.
#[derive(Clone)]
pub struct CompiledPlugin {
    pub sha256: String,
    /// What its `info()` answered when it was loaded.
    pub info: PluginInfo,
    pre: Exports,
}

impl CompiledPlugin {
    /// The world version it exports (`mbk:plugin/plugin@0.2.0` or `@0.1.0`).
    pub fn world(&self) -> &'static str {
        self.pre.world()
    }
}

pub struct PluginEngine {
    engine: Engine,
    linker: Linker<HostState>,
    settings: PluginSettings,
    compiled: Mutex<HashMap<String, CompiledPlugin>>,
}

impl PluginEngine {
    pub fn new(settings: PluginSettings) -> anyhow::Result<Arc<Self>> {
        // Started now so that a failure shows at start-up, not on the first call.
        clock().map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut config = super::engine_config::compiler_config();
        // Pooling: instance slots are made once, so a call's instantiation is a few microseconds.
        // Sized to the call slots (the defaults reserve terabytes of address space).
        let slots = settings.instances.max(1);
        let mut pool = wasmtime::PoolingAllocationConfig::default();
        pool.total_component_instances(slots)
            .total_core_instances(slots * 16)
            .total_memories(slots * 2)
            .total_tables(slots * 4)
            // One fiber stack per call in flight (instantiation and the call take it in turn).
            .total_stacks(slots)
            .max_core_instances_per_component(16)
            .max_memories_per_component(2)
            .max_tables_per_component(4)
            .max_memory_size(settings.memory_bytes);
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| anyhow::anyhow!("wasmtime engine: {e:#}"))?;
        let mut linker = Linker::new(&engine);
        // The async WASI: its waits (sleep, poll) yield to the call's future instead of
        // blocking the thread, so the deadline can drop a call waiting in them.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| anyhow::anyhow!("link WASI: {e:#}"))?;
        // Every world version's host interfaces: older components keep running beside new ones.
        v0_3::Plugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| anyhow::anyhow!("link the host interface: {e:#}"))?;
        v0_2::Plugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| anyhow::anyhow!("link the 0.2.0 host interface: {e:#}"))?;
        v0_1::Plugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| anyhow::anyhow!("link the 0.1.0 host interface: {e:#}"))?;

        let weak = engine.weak();
        std::thread::Builder::new()
            .name("mbk-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(TICK);
                }
            })
            .context("start the epoch thread")?;
        Ok(Arc::new(Self { engine, linker, settings, compiled: Mutex::new(HashMap::new()) }))
    }

    fn cache_path(&self, sha256: &str) -> Option<PathBuf> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut hasher);
        let dir = self.settings.cache_dir.as_ref()?;
        Some(dir.join(format!("{sha256}-{:016x}.cwasm", hasher.finish())))
    }

    /// Machine code compiled ahead of time for `wasm` (by this host's build), from the disk
    /// cache, or compiled now (and cached).
    fn component(&self, wasm: &[u8], sha256: &str, ahead: Option<&[u8]>) -> Result<Component, PluginFailure> {
        let invalid = |e: anyhow::Error| PluginFailure::Invalid(format!("{e:#}"));
        if let Some(code) = ahead.filter(|code| !code.is_empty()) {
            match load_precompiled_bytes(&self.engine, code) {
                Ok(component) => return Ok(component),
                // Built on another CPU, or by another wasmtime: compiling it here is correct, only slower.
                Err(e) => tracing::info!(error = %format!("{e:#}"), "the ahead-of-time code does not fit this engine; compiling"),
            }
        }
        if let Some(path) = self.cache_path(sha256).filter(|p| p.is_file()) {
            if let Ok(component) = load_precompiled(&self.engine, &path) {
                return Ok(component);
            }
            let _ = std::fs::remove_file(&path); // stale or corrupt: compile again
        }
        if !wasmparser_is_component(wasm) {
            return Err(PluginFailure::Invalid("not a WebAssembly component".into()));
        }
        let code = self.engine.precompile_component(wasm).map_err(|e| invalid(anyhow::anyhow!(e)))?;
        if let Some(path) = self.cache_path(sha256) {
            let written = path.parent().map(std::fs::create_dir_all).transpose().and_then(|_| {
                let tmp = path.with_extension(format!("tmp{}", std::process::id()));
                std::fs::write(&tmp, &code)?;
                std::fs::rename(&tmp, &path)
            });
            if let Err(e) = written {
                tracing::warn!(path = %path.display(), error = %e, "cannot cache a compiled plugin");
            }
        }
        load_precompiled_bytes(&self.engine, &code).map_err(invalid)
    }

    /// The component with this digest, when this engine has it loaded already.
    pub fn loaded(&self, sha256: &str) -> Option<CompiledPlugin> {
        crate::sync::lock(&self.compiled).get(sha256).cloned()
    }

    /// Compiles (or fetches from the caches) and links a component.
    pub fn load(&self, wasm: &[u8]) -> Result<CompiledPlugin, PluginFailure> {
        self.load_with(wasm, None)
    }

    /// [`PluginEngine::load`] for a component of this very binary, whose machine code the build
    /// made too (`ahead`: `precompile_component` of [`compiler_config`](super::engine_config)
    /// on `wasm`): no compile at start-up when that code fits this engine, a compile when not.
    pub fn load_built_in(&self, wasm: &[u8], ahead: &'static [u8]) -> Result<CompiledPlugin, PluginFailure> {
        self.load_with(wasm, Some(ahead))
    }

    fn load_with(&self, wasm: &[u8], ahead: Option<&[u8]>) -> Result<CompiledPlugin, PluginFailure> {
        let sha256 = hex::encode(Sha256::digest(wasm));
        if let Some(found) = crate::sync::lock(&self.compiled).get(&sha256) {
            return Ok(found.clone());
        }
        let component = self.component(wasm, &sha256, ahead)?;
        check_imports(&self.engine, &component)?;
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| PluginFailure::Invalid(format!("imports something the host does not offer: {e:#}")))?;
        let pre = Exports::new(instance_pre).map_err(|e| {
            PluginFailure::Invalid(format!(
                "does not export the {} world (nor {}): {e:#}",
                super::WORLD,
                super::bindings::WORLD_0_1
            ))
        })?;
        let unnamed = PluginInfo {
            name: format!("plugin-{}", &sha256[..12]),
            version: String::new(),
            description: String::new(),
            params: None,
        };
        let mut plugin = CompiledPlugin { sha256: sha256.clone(), info: unnamed, pre };
        plugin.info = self.info(&plugin)?;
        if let Some(params) = &plugin.info.params {
            mbk_standard::params::check_declaration(params)
                .map_err(|why| PluginFailure::Invalid(format!("info() {why}")))?;
        }
        crate::sync::lock(&self.compiled).insert(sha256, plugin.clone());
        Ok(plugin)
    }

    fn store(&self, plugin: &str) -> (Store<HostState>, MemoryOutputPipe) {
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE);
        let wasi = WasiCtx::builder().stderr(stderr.clone()).build();
        let deadline = std::time::Instant::now() + self.settings.timeout;
        let state = HostState::new(wasi, plugin, self.settings.memory_bytes, deadline);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        // Compute yields to the call's future at every tick, so the deadline's timer is looked
        // at every 10 ms; the deadline itself is the timeout of `run`.
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        (store, stderr)
    }

    /// Runs one call's future to its end or to the deadline, on this thread. At the deadline
    /// the future is dropped, and with it the `Store` it owns: a guest computing or waiting in
    /// a host call alike, and its pool slot is free again.
    ///
    /// Blocks: call it from a blocking thread or outside async code (tokio refuses, with a
    /// panic, to block one of its async worker threads).
    fn run<T>(&self, call: impl Future<Output = Result<T, PluginFailure>>) -> Result<T, PluginFailure> {
        let timeout = self.settings.timeout;
        let clock = clock().map_err(|e| PluginFailure::Trap(e.to_string()))?;
        let started = std::time::Instant::now();
        clock.block_on(async {
            match tokio::time::timeout(timeout, call).await {
                // A call that answers after its deadline (a host encoder told it the time was
                // up, and it returned before its next yield) ran past it all the same.
                Ok(_) if started.elapsed() >= timeout => Err(PluginFailure::Timeout(timeout)),
                Ok(result) => result,
                Err(_) => Err(PluginFailure::Timeout(timeout)),
            }
        })
    }

    /// Turns a wasmtime error of a call into the reason a person can act on.
    fn failure(&self, store: &Store<HostState>, stderr: &MemoryOutputPipe, e: wasmtime::Error) -> PluginFailure {
        if let Some(limit) = e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>() {
            return PluginFailure::Busy(limit.to_string());
        }
        if e.downcast_ref::<wasmtime::Trap>().is_some() && store.data().limiter.hit {
            return PluginFailure::OutOfMemory(self.settings.memory_bytes >> 20);
        }
        let guest = String::from_utf8_lossy(&stderr.contents()).trim().lines().take(3).collect::<Vec<_>>().join(" / ");
        let trap = e.downcast_ref::<wasmtime::Trap>().map(|t| t.to_string()).unwrap_or_else(|| format!("{e:#}"));
        if guest.is_empty() { PluginFailure::Trap(trap) } else { PluginFailure::Trap(format!("{trap}: {guest}")) }
    }

    /// The plugin's `info()`, in a fresh sandbox. Blocks (see [`PluginEngine::render`]).
    pub fn info(&self, plugin: &CompiledPlugin) -> Result<PluginInfo, PluginFailure> {
        self.run(async {
            let (mut store, stderr) = self.store(&plugin.info.name);
            plugin.pre.info(&mut store).await.map_err(|e| self.failure(&store, &stderr, e))
        })
    }

    /// Mean cost of what every call pays before its work: a fresh store and instance, and the
    /// deadline's timer around them. Blocks.
    pub fn instantiation_cost(&self, plugin: &CompiledPlugin, rounds: u32) -> Result<Duration, PluginFailure> {
        let started = std::time::Instant::now();
        for _ in 0..rounds.max(1) {
            self.run(async {
                let (mut store, stderr) = self.store(&plugin.info.name);
                plugin.pre.instantiate(&mut store).await.map_err(|e| self.failure(&store, &stderr, e))
            })?;
        }
        Ok(started.elapsed() / rounds.max(1))
    }

    /// Renders `specs` from `input` in a fresh sandbox. CPU-bound and blocking: call it from a
    /// blocking thread (`spawn_blocking`) or outside async code, never on an async worker.
    pub fn render(&self, plugin: &CompiledPlugin, input: &[u8], max_pixels: u64, specs: &[Spec]) -> RenderResults {
        self.render_metered(plugin, input, Limits::pixels(max_pixels), specs, false).0.map(|out| out.variants)
    }

    /// [`PluginEngine::render`], with the analysis when `analyse` (from a 0.3.0 component
    /// willing to give it), every limit of `limits` (frames too), and the peak linear memory of
    /// the call when it answered.
    pub fn render_metered(
        &self,
        plugin: &CompiledPlugin,
        input: &[u8],
        limits: Limits,
        specs: &[Spec],
        analyse: bool,
    ) -> (RenderOutput, Option<u64>) {
        let called = self.run(async {
            let (mut store, stderr) = self.store(&plugin.info.name);
            let answer = plugin
                .pre
                .render(&mut store, input, limits, specs, analyse)
                .await
                .map_err(|e| self.failure(&store, &stderr, e))?;
            Ok((answer, store.data().limiter.peak as u64))
        });
        match called {
            // What was not asked for is not taken: only the builtin is asked for an analysis.
            Ok((answer, peak)) => {
                let answer = answer.map(|(variants, analysis)| (variants, analysis.filter(|_| analyse)));
                (Self::results(answer, specs.len()), Some(peak))
            }
            Err(failure) => (Err(failure), None),
        }
    }

    /// A render's answer, checked to hold one result per spec.
    fn results(answer: Answer, specs: usize) -> RenderOutput {
        let (variants, analysis) = answer.map_err(PluginFailure::Render)?;
        if variants.len() != specs {
            return Err(PluginFailure::Trap(format!("returned {} results for {specs} variants", variants.len())));
        }
        Ok(Output { variants, analysis })
    }
}

/// The timers of plugin calls (each call's deadline, the guest's WASI sleeps): a runtime of one
/// thread that only drives them. The calls themselves run on their callers' threads
/// (`Handle::block_on`), so a plugin never computes on an async worker thread, and callers
/// outside any runtime (`plugin validate`, `bench`) work alike. Made once, never dropped.
fn clock() -> Result<&'static tokio::runtime::Handle, String> {
    static CLOCK: LazyLock<Result<tokio::runtime::Runtime, String>> = LazyLock::new(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("mbk-plugin-clock")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the plugin clock: {e}"))
    });
    CLOCK.as_ref().map(|rt| rt.handle()).map_err(Clone::clone)
}

/// What `info()` says about a plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub description: String,
    /// The params it takes (world 0.2.0); `None` for a 0.1.0 component, which declares none and
    /// whose variants' params are handed over unchecked.
    pub params: Option<Vec<Param>>,
}

/// What a plugin may import: what a Rust std component for `wasm32-wasip2` asks for (streams,
/// stdio, environment, exit, clocks, random) and the host's log. The linker offers all of WASI
/// (with an empty context), but a plugin that imports the filesystem or sockets is refused up
/// front: it has no business there, even with nothing preopened.
const ALLOWED_IMPORTS: &[&str] = &[
    "wasi:io/",
    "wasi:cli/environment@",
    "wasi:cli/exit@",
    "wasi:cli/stdin@",
    "wasi:cli/stdout@",
    "wasi:cli/stderr@",
    "wasi:cli/terminal-",
    "wasi:clocks/",
    "wasi:random/",
    "mbk:plugin/",
];

/// Refuses a component importing anything outside [`ALLOWED_IMPORTS`].
fn check_imports(engine: &Engine, component: &Component) -> Result<(), PluginFailure> {
    let refused: Vec<String> = component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name.to_owned())
        .filter(|name| !ALLOWED_IMPORTS.iter().any(|allowed| name.starts_with(allowed)))
        .collect();
    if refused.is_empty() {
        Ok(())
    } else {
        Err(PluginFailure::Invalid(format!("imports what plugins may not use: {}", refused.join(", "))))
    }
}

/// The component-model layer of the binary header (`\0asm`, version, layer 1).
fn wasmparser_is_component(wasm: &[u8]) -> bool {
    wasm.len() >= 8 && &wasm[..4] == b"\0asm" && wasm[6..8] == [1, 0]
}

/// Loads machine code this host compiled itself. `deserialize` is unsafe because wasmtime
/// trusts the bytes; they only ever come from `precompile_component` of this engine (in memory,
/// or from our own cache folder keyed by the engine's compatibility hash), never from a user.
#[allow(unsafe_code)]
fn load_precompiled(engine: &Engine, path: &std::path::Path) -> anyhow::Result<Component> {
    // SAFETY: see above; the cache folder is ours (DATA_DIR) and keyed by engine version.
    unsafe { Component::deserialize_file(engine, path) }.map_err(|e| anyhow::anyhow!(e))
}

/// Loads machine code from memory: compiled by this engine a moment ago, or by this binary's
/// build for a component embedded in it (as trusted as the binary itself). wasmtime still checks
/// it fits this engine (version, CPU features, configuration) and refuses it otherwise.
#[allow(unsafe_code)]
fn load_precompiled_bytes(engine: &Engine, code: &[u8]) -> anyhow::Result<Component> {
    // SAFETY: `code` is `precompile_component` output of this engine, or `include_bytes!` of
    // build.rs's, made with the same configuration; never bytes from a user.
    unsafe { Component::deserialize(engine, code) }.map_err(|e| anyhow::anyhow!(e))
}

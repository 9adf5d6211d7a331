//! [`PluginEngine`]: a narrow face over wasmtime.
//!
//! - One `Engine` (component model, epoch interruption, SIMD) and one `Linker` (WASI p2 with an
//!   empty context: no preopened directories, no environment, no network, no inherited stdio;
//!   plus the host's `log`).
//! - Components are compiled once; the machine code is cached on disk under
//!   `<cache>/<sha256>-<engine hash>.cwasm` and reused across restarts.
//! - Every call gets a fresh `Store` with a memory cap, a deadline (epoch ticks every 10 ms from
//!   a thread holding only a weak engine reference) and its own captured stderr. A trap, a
//!   deadline or an out-of-memory fails that call with a clear reason; the process carries on.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, ResourceLimiter, Store};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::mbk::plugin::host::Level;
use super::bindings::mbk::plugin::types as wit;
use super::bindings::{Plugin, PluginPre};
use super::{Fit, Format, RenderError, Rendered, Spec};

const TICK: Duration = Duration::from_millis(10);
/// Guest stderr kept per call (enough for a panic message and a backtrace line or two).
const STDERR_CAPTURE: usize = 64 * 1024;
/// Guest log lines longer than this are cut.
const MAX_LOG_LINE: usize = 2048;

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
    pub name: String,
    pre: PluginPre<HostState>,
}

/// Per-call state: the (empty) WASI context, the memory cap, captured output.
struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryCap,
    plugin: String,
    /// When this call's time is up: host functions that do real work stop waiting then.
    deadline: std::time::Instant,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl wit::Host for HostState {}

impl super::bindings::mbk::plugin::host::Host for HostState {
    fn log(&mut self, level: Level, message: String) {
        let mut message = message;
        if message.len() > MAX_LOG_LINE {
            let mut end = MAX_LOG_LINE;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
        let plugin = self.plugin.as_str();
        match level {
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error => tracing::error!(plugin, "{message}"),
        }
    }
}

/// The largest picture the host encodes for a plugin.
const MAX_HOST_ENCODE_PIXELS: u64 = 50_000_000;

/// Host encodes running now, over every call of every engine of this process.
static HOST_ENCODES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Holds one of the host encoder's slots; gives it back when dropped.
struct EncodeSlot;

impl EncodeSlot {
    fn take() -> Option<EncodeSlot> {
        use std::sync::atomic::Ordering;
        // Asked once: `available_parallelism` reads cgroup files, and busy callers poll here.
        static MAX: std::sync::LazyLock<usize> =
            std::sync::LazyLock::new(|| std::thread::available_parallelism().map_or(2, |n| n.get()) * 2);
        let max = *MAX;
        HOST_ENCODES
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1))
            .ok()
            .map(|_| EncodeSlot)
    }
}

impl Drop for EncodeSlot {
    fn drop(&mut self) {
        HOST_ENCODES.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl super::bindings::mbk::plugin::codecs::Host for HostState {
    /// Native encoding for the plugin (decoding untrusted bytes stays in the sandbox; these are
    /// the plugin's own pixels). Host code is outside the epoch deadline, so the encode runs on a
    /// thread of its own and the call stops waiting when the plugin's time is up (the guest then
    /// meets its deadline); at most twice the core count of such encodes run at once, so a
    /// plugin cannot pile up work past its deadline.
    fn encode(
        &mut self,
        pixels: Vec<u8>,
        width: u32,
        height: u32,
        has_alpha: bool,
        format: super::bindings::mbk::plugin::types::ImageFormat,
        quality: u8,
    ) -> Result<Vec<u8>, String> {
        use super::bindings::mbk::plugin::types::ImageFormat;
        let count = u64::from(width) * u64::from(height);
        if width == 0 || height == 0 || count > MAX_HOST_ENCODE_PIXELS {
            return Err(format!("{width}x{height} is outside 1..={MAX_HOST_ENCODE_PIXELS} pixels"));
        }
        let channels = if has_alpha { 4 } else { 3 };
        if pixels.len() as u64 != count * channels {
            return Err(format!(
                "{} bytes of pixels for {width}x{height} with {channels} channels (expected {})",
                pixels.len(),
                count * channels
            ));
        }
        if !(1..=100).contains(&quality) {
            return Err(format!("quality {quality} is outside 1..=100"));
        }
        let format = match format {
            ImageFormat::Webp => mbk_standard::Format::Webp,
            ImageFormat::Avif => mbk_standard::Format::Avif,
            ImageFormat::Jpeg => mbk_standard::Format::Jpeg,
            ImageFormat::Png => mbk_standard::Format::Png,
        };
        let remaining = self.deadline.saturating_duration_since(std::time::Instant::now());
        if remaining.is_zero() {
            return Err("the plugin's time is up".into());
        }
        // Busy encoders are waited for, within the plugin's time.
        let slot = loop {
            if let Some(slot) = EncodeSlot::take() {
                break slot;
            }
            if std::time::Instant::now() >= self.deadline {
                return Err("the host's encoders stayed busy until the plugin's deadline".into());
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        std::thread::spawn(move || {
            let _slot = slot;
            let encoded = mbk_standard::encode::encode_builtin(&pixels, width, height, has_alpha, format, quality);
            let _ = tx.send(encoded.map_err(|e| e.to_string()));
        });
        rx.recv_timeout(remaining).unwrap_or_else(|_| Err("ran past the plugin's deadline".into()))
    }
}

/// Caps linear memory and remembers whether the cap was hit, so that an out-of-memory (which a
/// Rust guest reports as an `unreachable` trap) can be told apart from other crashes.
struct MemoryCap {
    max_bytes: usize,
    hit: bool,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
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
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true).epoch_interruption(true).max_wasm_stack(2 << 20);
        // Pooling: instance slots are made once, so a call's instantiation is a few microseconds.
        // Sized to the call slots (the defaults reserve terabytes of address space).
        let slots = settings.instances.max(1);
        let mut pool = wasmtime::PoolingAllocationConfig::default();
        pool.total_component_instances(slots)
            .total_core_instances(slots * 16)
            .total_memories(slots * 2)
            .total_tables(slots * 4)
            .total_stacks(slots)
            .max_core_instances_per_component(16)
            .max_memories_per_component(2)
            .max_tables_per_component(4)
            .max_memory_size(settings.memory_bytes);
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| anyhow::anyhow!("wasmtime engine: {e:#}"))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| anyhow::anyhow!("link WASI: {e:#}"))?;
        Plugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| anyhow::anyhow!("link the host interface: {e:#}"))?;

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

    /// Machine code from the disk cache, or compiled now (and cached).
    fn component(&self, wasm: &[u8], sha256: &str) -> Result<Component, PluginFailure> {
        let invalid = |e: anyhow::Error| PluginFailure::Invalid(format!("{e:#}"));
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
        self.compiled.lock().unwrap_or_else(|p| p.into_inner()).get(sha256).cloned()
    }

    /// Compiles (or fetches from the caches) and links a component.
    pub fn load(&self, wasm: &[u8]) -> Result<CompiledPlugin, PluginFailure> {
        let sha256 = hex::encode(Sha256::digest(wasm));
        if let Some(found) = self.compiled.lock().unwrap_or_else(|p| p.into_inner()).get(&sha256) {
            return Ok(found.clone());
        }
        let component = self.component(wasm, &sha256)?;
        check_imports(&self.engine, &component)?;
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| PluginFailure::Invalid(format!("imports something the host does not offer: {e:#}")))?;
        let pre = PluginPre::new(instance_pre)
            .map_err(|e| PluginFailure::Invalid(format!("does not export the {} world: {e:#}", super::WORLD)))?;
        let mut plugin = CompiledPlugin { sha256: sha256.clone(), name: format!("plugin-{}", &sha256[..12]), pre };
        let info = self.info(&plugin)?;
        plugin.name = info.name;
        self.compiled.lock().unwrap_or_else(|p| p.into_inner()).insert(sha256, plugin.clone());
        Ok(plugin)
    }

    fn store(&self, plugin: &str) -> (Store<HostState>, MemoryOutputPipe) {
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE);
        let wasi = WasiCtx::builder().stderr(stderr.clone()).build();
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryCap { max_bytes: self.settings.memory_bytes, hit: false },
            plugin: plugin.to_owned(),
            deadline: std::time::Instant::now() + self.settings.timeout,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        let ticks = (self.settings.timeout.as_millis() / TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        (store, stderr)
    }

    /// Turns a wasmtime error of a call into the reason a person can act on.
    fn failure(&self, store: &Store<HostState>, stderr: &MemoryOutputPipe, e: wasmtime::Error) -> PluginFailure {
        if let Some(limit) = e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>() {
            return PluginFailure::Busy(limit.to_string());
        }
        if let Some(trap) = e.downcast_ref::<wasmtime::Trap>() {
            if *trap == wasmtime::Trap::Interrupt {
                return PluginFailure::Timeout(self.settings.timeout);
            }
            if store.data().limiter.hit {
                return PluginFailure::OutOfMemory(self.settings.memory_bytes >> 20);
            }
        }
        let guest = String::from_utf8_lossy(&stderr.contents()).trim().lines().take(3).collect::<Vec<_>>().join(" / ");
        let trap = e.downcast_ref::<wasmtime::Trap>().map(|t| t.to_string()).unwrap_or_else(|| format!("{e:#}"));
        if guest.is_empty() { PluginFailure::Trap(trap) } else { PluginFailure::Trap(format!("{trap}: {guest}")) }
    }

    pub fn info(&self, plugin: &CompiledPlugin) -> Result<PluginInfo, PluginFailure> {
        let (mut store, stderr) = self.store(&plugin.name);
        let instance = plugin.pre.instantiate(&mut store).map_err(|e| self.failure(&store, &stderr, e))?;
        let info = instance.call_info(&mut store).map_err(|e| self.failure(&store, &stderr, e))?;
        Ok(PluginInfo { name: info.name, version: info.version, description: info.description })
    }

    /// Mean cost of making a fresh store and instance (what every call pays before its work).
    pub fn instantiation_cost(&self, plugin: &CompiledPlugin, rounds: u32) -> Result<Duration, PluginFailure> {
        let started = std::time::Instant::now();
        for _ in 0..rounds.max(1) {
            let (mut store, stderr) = self.store(&plugin.name);
            plugin.pre.instantiate(&mut store).map_err(|e| self.failure(&store, &stderr, e))?;
        }
        Ok(started.elapsed() / rounds.max(1))
    }

    /// Renders `specs` from `input` in a fresh sandbox.
    pub fn render(
        &self,
        plugin: &CompiledPlugin,
        input: &[u8],
        max_pixels: u64,
        specs: &[Spec],
    ) -> Result<Vec<Result<Rendered, RenderError>>, PluginFailure> {
        let (mut store, stderr) = self.store(&plugin.name);
        let instance = plugin.pre.instantiate(&mut store).map_err(|e| self.failure(&store, &stderr, e))?;
        let wit_specs: Vec<wit::VariantSpec> = specs.iter().map(to_wit).collect();
        let answer = instance
            .call_render(&mut store, input, wit::DecodeLimits { max_pixels }, &wit_specs)
            .map_err(|e| self.failure(&store, &stderr, e))?;
        let results = answer.map_err(|e| PluginFailure::Render(from_wit_error(e)))?;
        if results.len() != specs.len() {
            return Err(PluginFailure::Trap(format!(
                "returned {} results for {} variants",
                results.len(),
                specs.len()
            )));
        }
        Ok(results
            .into_iter()
            .map(|r| {
                r.map(|out| Rendered { bytes: out.bytes, mime: out.mime, width: out.width, height: out.height })
                    .map_err(from_wit_error)
            })
            .collect())
    }
}

/// What `info()` says about a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub description: String,
}

fn to_wit(spec: &Spec) -> wit::VariantSpec {
    wit::VariantSpec {
        name: spec.name.clone(),
        width: spec.width,
        height: spec.height,
        fit: match spec.fit {
            Fit::Contain => wit::Fit::Contain,
            Fit::Cover => wit::Fit::Cover,
            Fit::Stretch => wit::Fit::Stretch,
        },
        format: match spec.format {
            Format::Webp => wit::ImageFormat::Webp,
            Format::Avif => wit::ImageFormat::Avif,
            Format::Jpeg => wit::ImageFormat::Jpeg,
            Format::Png => wit::ImageFormat::Png,
        },
        quality: spec.quality,
        params: spec.params.clone(),
    }
}

fn from_wit_error(e: wit::RenderError) -> RenderError {
    match e {
        wit::RenderError::UnsupportedInput(m) => RenderError::UnsupportedInput(m),
        wit::RenderError::TooLarge(m) => RenderError::TooLarge(m),
        wit::RenderError::InvalidSpec(m) => RenderError::InvalidSpec(m),
        wit::RenderError::Failed(m) => RenderError::Failed(m),
    }
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

#[allow(unsafe_code)]
fn load_precompiled_bytes(engine: &Engine, code: &[u8]) -> anyhow::Result<Component> {
    // SAFETY: `code` was produced by `precompile_component` of this very engine a moment ago.
    unsafe { Component::deserialize(engine, code) }.map_err(|e| anyhow::anyhow!(e))
}

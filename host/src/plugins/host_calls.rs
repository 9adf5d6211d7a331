//! What the host offers a plugin during one call, and the per-call state behind it: the (empty)
//! WASI context, the memory cap, the guest's `log` (capped and escaped) and the native `codecs`.
//!
//! These host functions are plain (synchronous) functions inside the async store: `log` is
//! quick, and `encode` bounds its own wait by the call's deadline. WASI's blocking calls (sleep,
//! poll) are the async ones, linked by the engine, so that the deadline can drop a call waiting
//! in them.

use std::time::Instant;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::Format;
use super::bindings::{v0_1, v0_2, v0_3};

/// Guest log lines longer than this (escaped) are cut.
const MAX_LOG_LINE: usize = 2048;
/// Guest log lines kept per call; the rest are counted, and the count logged when the call ends.
const MAX_LOG_LINES: u32 = 100;
/// The largest picture the host encodes for a plugin.
const MAX_HOST_ENCODE_PIXELS: u64 = 50_000_000;

/// Per-call state: one per `Store`, dropped with it however the call ended.
pub(super) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) limiter: MemoryCap,
    plugin: String,
    /// When this call's time is up: host functions that do real work stop waiting then.
    deadline: Instant,
    logged: u32,
    suppressed: u64,
}

impl HostState {
    pub(super) fn new(wasi: WasiCtx, plugin: &str, memory_bytes: usize, deadline: Instant) -> HostState {
        HostState {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryCap { max_bytes: memory_bytes, hit: false, peak: 0 },
            plugin: plugin.to_owned(),
            deadline,
            logged: 0,
            suppressed: 0,
        }
    }
}

impl Drop for HostState {
    /// The call is over (answered, failed or cut at its deadline): say what its log lost.
    fn drop(&mut self) {
        if self.suppressed > 0 {
            let (plugin, n) = (self.plugin.as_str(), self.suppressed);
            tracing::warn!(plugin, "{n} more log lines suppressed (at most {MAX_LOG_LINES} per call)");
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// The host interfaces of one world version, each function handed to [`HostState`]'s own: both
/// versions offer the same `log` and `codecs`.
macro_rules! host_interfaces {
    ($world:ident) => {
        impl $world::mbk::plugin::types::Host for HostState {}

        impl $world::mbk::plugin::host::Host for HostState {
            fn log(&mut self, level: $world::mbk::plugin::host::Level, message: String) {
                use $world::mbk::plugin::host::Level;
                let level = match level {
                    Level::Debug => tracing::Level::DEBUG,
                    Level::Info => tracing::Level::INFO,
                    Level::Warn => tracing::Level::WARN,
                    Level::Error => tracing::Level::ERROR,
                };
                self.log_line(level, &message);
            }
        }

        impl $world::mbk::plugin::codecs::Host for HostState {
            fn encode(
                &mut self,
                pixels: Vec<u8>,
                width: u32,
                height: u32,
                has_alpha: bool,
                format: $world::mbk::plugin::types::ImageFormat,
                quality: u8,
            ) -> Result<Vec<u8>, String> {
                self.encode_pixels(pixels, width, height, has_alpha, format.into(), quality)
            }
        }
    };
}

host_interfaces!(v0_1);
host_interfaces!(v0_2);
host_interfaces!(v0_3);

impl HostState {
    /// A guest's line in the host's log: at most [`MAX_LOG_LINES`] per call (a loop of logs must
    /// not flood the operator's log), control characters escaped (a newline, a carriage return
    /// or a terminal escape would let the plugin write lines that look like the host's).
    fn log_line(&mut self, level: tracing::Level, message: &str) {
        if self.logged >= MAX_LOG_LINES {
            self.suppressed += 1;
            return;
        }
        self.logged += 1;
        let message = escaped(message, MAX_LOG_LINE);
        let plugin = self.plugin.as_str();
        match level {
            tracing::Level::DEBUG | tracing::Level::TRACE => tracing::debug!(plugin, "{message}"),
            tracing::Level::INFO => tracing::info!(plugin, "{message}"),
            tracing::Level::WARN => tracing::warn!(plugin, "{message}"),
            tracing::Level::ERROR => tracing::error!(plugin, "{message}"),
        }
    }
}

/// `message` on one line: control characters (C0, DEL, C1: newlines, carriage returns, terminal
/// escapes) and the Unicode line and paragraph separators and bidirectional overrides (which
/// reorder or break what a terminal shows) written as escapes; at most `max` bytes, cut on a
/// character boundary.
fn escaped(message: &str, max: usize) -> String {
    let mut out = String::with_capacity(message.len().min(max));
    for c in message.chars() {
        let start = out.len();
        match c {
            '\n' | '\r' | '\t' => out.extend(c.escape_default()),
            c if c.is_control()
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
            {
                out.extend(c.escape_unicode())
            }
            c => out.push(c),
        }
        if out.len() > max {
            out.truncate(start);
            break;
        }
    }
    out
}

impl HostState {
    /// Native encoding for the plugin (decoding untrusted bytes stays in the sandbox; these are
    /// the plugin's own pixels), on the host's bounded encoders, within the plugin's deadline
    /// (see [`super::encoders`]).
    fn encode_pixels(
        &mut self,
        pixels: Vec<u8>,
        width: u32,
        height: u32,
        has_alpha: bool,
        format: Format,
        quality: u8,
    ) -> Result<Vec<u8>, String> {
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
        if Instant::now() >= self.deadline {
            return Err("the plugin's time is up".into());
        }
        super::encoders::run_until(self.deadline, move || {
            mbk_standard::encode::encode_builtin(&pixels, width, height, has_alpha, format, quality)
                .map_err(|e| e.to_string())
        })
    }
}

/// Caps linear memory and remembers whether the cap was hit, so that an out-of-memory (which a
/// Rust guest reports as an `unreachable` trap) can be told apart from other crashes.
pub(super) struct MemoryCap {
    max_bytes: usize,
    pub(super) hit: bool,
    /// The largest linear memory granted in this call (its peak: wasm memory never shrinks).
    pub(super) peak: usize,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.hit = true;
            return Ok(false);
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

#[cfg(test)]
mod tests {
    use super::escaped;

    #[test]
    fn escaping_keeps_a_guest_line_on_one_line() {
        assert_eq!(escaped("plain text, ünïcode", 100), "plain text, ünïcode");
        assert_eq!(escaped("a\nb\r\tc", 100), r"a\nb\r\tc");
        assert_eq!(escaped("\u{1b}[31mred\u{7}\u{9b}", 100), r"\u{1b}[31mred\u{7}\u{9b}");
        assert_eq!(escaped("x\u{2028}y\u{202e}z", 100), r"x\u{2028}y\u{202e}z");
        // Cut on a whole character or escape, never inside one.
        assert_eq!(escaped("ab\ncd", 3), "ab");
        assert_eq!(escaped("aé", 2), "a");
    }
}

//! The wasmtime configuration every compile of this host uses. `host/build.rs` includes this
//! file too, to compile the standard component ahead of time: wasmtime runs machine code only in
//! an engine configured as the one that compiled it (it checks, and refuses a mismatch), so the
//! build and the host must take their configuration from one place. No `crate::` paths here:
//! build.rs has this file as a module of its own.

/// The wasm stack of a call (`max_wasm_stack`).
pub const WASM_STACK: usize = 2 << 20;
/// A call's fiber stack: the wasm stack plus room for the host functions it calls (WASI, log,
/// codecs), which run on the same stack. wasmtime requires it to exceed the wasm stack.
pub const CALL_STACK: usize = WASM_STACK + (1 << 20);

/// What shapes compiled code: the component model, epoch interruption (the deadline's ticks),
/// the stack sizes. The host adds the instance pool, which does not.
pub fn compiler_config() -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .max_wasm_stack(WASM_STACK)
        .async_stack_size(CALL_STACK);
    config
}

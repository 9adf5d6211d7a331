//! The one place that runs `bindgen!` for the `mbk:plugin` world (`wit/plugin.wit`).
//!
//! The exports (`info`, `render`) are called as futures, so that a call's deadline can drop
//! it wherever the guest is, waiting in a host call included. The host's own imports (`log`,
//! `codecs`) stay plain functions: quick, or bounded by the call's deadline themselves.

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../wit",
    exports: { default: async },
});

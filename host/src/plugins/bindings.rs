//! The one place that runs `bindgen!` for the `mbk:plugin` world (`wit/plugin.wit`).

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../wit",
});

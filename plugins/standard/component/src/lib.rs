//! `mbk-standard` as a component: the standard plugin through the SDK's glue (the `mbk:plugin@0.3.0`
//! world, on `wasm32-wasip2`), encoding on the host's native encoders. All the work is in
//! `mbk-standard`; the host links the same library natively as its fallback.

use mbk_plugin_sdk::{Plugin, standard};

mbk_plugin_sdk::component!(
    Plugin {
        name: standard::NAME,
        description: standard::DESCRIPTION,
        params: standard::params::standard(),
        render: standard::render,
        render_analysed: Some(standard::render_analysed),
        encode_on_host: true,
    },
    wit: "../../../wit",
);

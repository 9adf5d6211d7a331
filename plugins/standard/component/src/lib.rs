//! `mbk-standard` as a component: exports the `mbk:plugin` world (on `wasm32-wasip2`) and
//! translates between the WIT types and the library's. All the work is in `mbk-standard`.
#![cfg(target_arch = "wasm32")]
#![allow(unsafe_code)] // wit-bindgen's generated glue

wit_bindgen::generate!({
    world: "plugin",
    path: "../../../wit",
});

use exports_types::*;
use mbk::plugin::host::{Level, log};
use mbk::plugin::types::{Fit, ImageFormat};

mod exports_types {
    pub use super::mbk::plugin::types::{DecodeLimits, PluginInfo, RenderError, Rendered, VariantSpec};
}

struct Standard;

/// Encoding our own pixels is done by the host's native encoders (decoding stays in here).
fn host_encode(
    pixels: &[u8],
    width: u32,
    height: u32,
    has_alpha: bool,
    format: mbk_standard::Format,
    quality: u8,
) -> Result<Vec<u8>, String> {
    let format = match format {
        mbk_standard::Format::Webp => ImageFormat::Webp,
        mbk_standard::Format::Avif => ImageFormat::Avif,
        mbk_standard::Format::Jpeg => ImageFormat::Jpeg,
        mbk_standard::Format::Png => ImageFormat::Png,
    };
    mbk::plugin::codecs::encode(pixels, width, height, has_alpha, format, quality)
}

fn to_spec(spec: VariantSpec) -> mbk_standard::Spec {
    mbk_standard::Spec {
        name: spec.name,
        width: spec.width,
        height: spec.height,
        fit: match spec.fit {
            Fit::Contain => mbk_standard::Fit::Contain,
            Fit::Cover => mbk_standard::Fit::Cover,
            Fit::Stretch => mbk_standard::Fit::Stretch,
        },
        format: match spec.format {
            ImageFormat::Webp => mbk_standard::Format::Webp,
            ImageFormat::Avif => mbk_standard::Format::Avif,
            ImageFormat::Jpeg => mbk_standard::Format::Jpeg,
            ImageFormat::Png => mbk_standard::Format::Png,
        },
        quality: spec.quality,
        params: spec.params,
    }
}

fn to_error(e: mbk_standard::RenderError) -> RenderError {
    match e {
        mbk_standard::RenderError::UnsupportedInput(m) => RenderError::UnsupportedInput(m),
        mbk_standard::RenderError::TooLarge(m) => RenderError::TooLarge(m),
        mbk_standard::RenderError::InvalidSpec(m) => RenderError::InvalidSpec(m),
        mbk_standard::RenderError::Failed(m) => RenderError::Failed(m),
    }
}

impl Guest for Standard {
    fn info() -> PluginInfo {
        PluginInfo {
            name: mbk_standard::NAME.into(),
            version: mbk_standard::VERSION.into(),
            description: mbk_standard::DESCRIPTION.into(),
        }
    }

    fn render(
        input: Vec<u8>,
        limits: DecodeLimits,
        specs: Vec<VariantSpec>,
    ) -> Result<Vec<Result<Rendered, RenderError>>, RenderError> {
        // The host's native encoders: the same bytes, about twice as fast as inside wasm.
        mbk_standard::encode::use_encoder(host_encode);
        let specs: Vec<mbk_standard::Spec> = specs.into_iter().map(to_spec).collect();
        log(Level::Debug, &format!("rendering {} variant(s) from {} bytes", specs.len(), input.len()));
        let results = mbk_standard::render(&input, limits.max_pixels, &specs).map_err(to_error)?;
        Ok(results
            .into_iter()
            .map(|r| {
                r.map(|out| Rendered { bytes: out.bytes, mime: out.mime, width: out.width, height: out.height })
                    .map_err(to_error)
            })
            .collect())
    }
}

export!(Standard);

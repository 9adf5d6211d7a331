//! The `mbk:plugin` world exported by this crate when built for `wasm32-wasip2`.

wit_bindgen::generate!({
    world: "plugin",
    path: "../../wit",
});

use exports_types::*;
use mbk::plugin::host::{Level, log};
use mbk::plugin::types::{Fit, ImageFormat};

mod exports_types {
    pub use super::mbk::plugin::types::{DecodeLimits, PluginInfo, RenderError, Rendered, VariantSpec};
}

struct Standard;

fn to_spec(spec: VariantSpec) -> crate::Spec {
    crate::Spec {
        name: spec.name,
        width: spec.width,
        height: spec.height,
        fit: match spec.fit {
            Fit::Contain => crate::Fit::Contain,
            Fit::Cover => crate::Fit::Cover,
            Fit::Stretch => crate::Fit::Stretch,
        },
        format: match spec.format {
            ImageFormat::Webp => crate::Format::Webp,
            ImageFormat::Avif => crate::Format::Avif,
            ImageFormat::Jpeg => crate::Format::Jpeg,
            ImageFormat::Png => crate::Format::Png,
        },
        quality: spec.quality,
        params: spec.params,
    }
}

fn to_error(e: crate::RenderError) -> RenderError {
    match e {
        crate::RenderError::UnsupportedInput(m) => RenderError::UnsupportedInput(m),
        crate::RenderError::TooLarge(m) => RenderError::TooLarge(m),
        crate::RenderError::InvalidSpec(m) => RenderError::InvalidSpec(m),
        crate::RenderError::Failed(m) => RenderError::Failed(m),
    }
}

impl Guest for Standard {
    fn info() -> PluginInfo {
        PluginInfo { name: crate::NAME.into(), version: crate::VERSION.into(), description: crate::DESCRIPTION.into() }
    }

    fn render(
        input: Vec<u8>,
        limits: DecodeLimits,
        specs: Vec<VariantSpec>,
    ) -> Result<Vec<Result<Rendered, RenderError>>, RenderError> {
        let specs: Vec<crate::Spec> = specs.into_iter().map(to_spec).collect();
        log(Level::Debug, &format!("rendering {} variant(s) from {} bytes", specs.len(), input.len()));
        let results = crate::render(&input, limits.max_pixels, &specs).map_err(to_error)?;
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

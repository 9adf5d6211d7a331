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

/// The conversions between the plugin world's types and the host's rendering types (the
/// standard plugin's own, see `super`), at the one edge where they meet. A module of its own:
/// the world's `use` puts generated `Rendered` and `RenderError` at the top of this file.
mod conversions {
    use super::mbk::plugin::types as wit;
    use crate::plugins::{Fit, Format, RenderError, Rendered, Spec};

    impl From<Fit> for wit::Fit {
        fn from(fit: Fit) -> wit::Fit {
            match fit {
                Fit::Contain => wit::Fit::Contain,
                Fit::Cover => wit::Fit::Cover,
                Fit::Stretch => wit::Fit::Stretch,
            }
        }
    }

    impl From<Format> for wit::ImageFormat {
        fn from(format: Format) -> wit::ImageFormat {
            match format {
                Format::Webp => wit::ImageFormat::Webp,
                Format::Avif => wit::ImageFormat::Avif,
                Format::Jpeg => wit::ImageFormat::Jpeg,
                Format::Png => wit::ImageFormat::Png,
            }
        }
    }

    /// What a plugin asks the host's `codecs` for.
    impl From<wit::ImageFormat> for Format {
        fn from(format: wit::ImageFormat) -> Format {
            match format {
                wit::ImageFormat::Webp => Format::Webp,
                wit::ImageFormat::Avif => Format::Avif,
                wit::ImageFormat::Jpeg => Format::Jpeg,
                wit::ImageFormat::Png => Format::Png,
            }
        }
    }

    impl From<&Spec> for wit::VariantSpec {
        fn from(spec: &Spec) -> wit::VariantSpec {
            wit::VariantSpec {
                name: spec.name.clone(),
                width: spec.width,
                height: spec.height,
                fit: spec.fit.into(),
                format: spec.format.into(),
                quality: spec.quality,
                params: spec.params.clone(),
            }
        }
    }

    impl From<wit::RenderError> for RenderError {
        fn from(e: wit::RenderError) -> RenderError {
            match e {
                wit::RenderError::UnsupportedInput(m) => RenderError::UnsupportedInput(m),
                wit::RenderError::TooLarge(m) => RenderError::TooLarge(m),
                wit::RenderError::InvalidSpec(m) => RenderError::InvalidSpec(m),
                wit::RenderError::Failed(m) => RenderError::Failed(m),
            }
        }
    }

    /// A plugin's claim about its output; the pipeline verifies it (`crate::pipeline::verify`).
    impl From<wit::Rendered> for Rendered {
        fn from(out: wit::Rendered) -> Rendered {
            Rendered { bytes: out.bytes, mime: out.mime, width: out.width, height: out.height }
        }
    }
}

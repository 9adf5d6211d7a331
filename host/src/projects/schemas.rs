//! The OpenAPI faces of the settings' types that live with the renderers (`Fit`, `Format`),
//! which know nothing of the API.

use utoipa::ToSchema;

use super::VariantFormat;
use crate::plugins::{Fit, Format};

/// The OpenAPI face of [`Fit`], the host's one `Fit` (serde names it in settings; a schema of its
/// own because the enum lives with the renderers, which know nothing of the API).
pub struct FitSchema;

impl utoipa::PartialSchema for FitSchema {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        string_enum("How a variant fits its box.", Fit::ALL.map(Fit::as_str))
    }
}

impl ToSchema for FitSchema {
    fn name() -> std::borrow::Cow<'static, str> {
        "Fit".into()
    }
}

/// The OpenAPI face of [`Format`] (named `ImageFormat` in the API, as it always was).
pub struct ImageFormatSchema;

impl utoipa::PartialSchema for ImageFormatSchema {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let [webp, avif, jpeg, png] = Format::ALL.map(Format::as_str);
        string_enum(
            "The encoding of a variant; `auto`: AVIF, WebP and JPEG (PNG for images with alpha) from one \
             decode, `GET /v/{file_id}/{variant}` serving the best for the request's `Accept`.",
            [webp, avif, jpeg, png, VariantFormat::AUTO],
        )
    }
}

impl ToSchema for ImageFormatSchema {
    fn name() -> std::borrow::Cow<'static, str> {
        "ImageFormat".into()
    }
}

/// A string schema with these values, as utoipa derives one for a plain enum.
fn string_enum<const N: usize>(
    description: &str,
    values: [&'static str; N],
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::String))
        .description(Some(description))
        .enum_values(Some(values))
        .into()
}

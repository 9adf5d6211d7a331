//! A variant's `format`: one encoding, or `auto`: AVIF, WebP and a JPEG (a PNG when the image
//! has alpha) rendered from one decode, of which `GET /v/{file}/{variant}` serves the best the
//! request's `Accept` takes.

use serde::{Deserialize, Serialize};

use crate::plugins::Format;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum VariantFormat {
    One(Format),
    Auto,
}

impl VariantFormat {
    pub const AUTO: &'static str = "auto";

    /// The name in settings and in the variants table (`webp`, …, `auto`).
    pub fn as_str(self) -> &'static str {
        match self {
            VariantFormat::One(format) => format.as_str(),
            VariantFormat::Auto => Self::AUTO,
        }
    }

    /// The extension of the variant row's own key when it is made (for `auto`, the JPEG's: the
    /// render names the PNG instead when the image turns out to have alpha).
    pub fn extension(self) -> &'static str {
        match self {
            VariantFormat::One(format) => format.extension(),
            VariantFormat::Auto => Format::Jpeg.extension(),
        }
    }

    /// What one render makes, best first: the variant's one format, or for `auto` AVIF, WebP,
    /// then the sibling every client decodes (PNG when the original `has_alpha`, else JPEG),
    /// which is always last.
    pub fn renders(self, has_alpha: bool) -> Vec<Format> {
        match self {
            VariantFormat::One(format) => vec![format],
            VariantFormat::Auto => {
                vec![Format::Avif, Format::Webp, if has_alpha { Format::Png } else { Format::Jpeg }]
            }
        }
    }

    /// The format standing for the variant in its spec's hash (provenance): its own, or JPEG for
    /// `auto` (a variant changing between `jpeg` and `auto` is told apart by its format name).
    pub fn representative(self) -> Format {
        match self {
            VariantFormat::One(format) => format,
            VariantFormat::Auto => Format::Jpeg,
        }
    }
}

impl TryFrom<String> for VariantFormat {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, String> {
        if raw == Self::AUTO {
            return Ok(VariantFormat::Auto);
        }
        Format::ALL
            .into_iter()
            .find(|f| f.as_str() == raw)
            .map(VariantFormat::One)
            .ok_or_else(|| format!("must be webp, avif, jpeg, png or auto, got {raw:?}"))
    }
}

impl From<VariantFormat> for String {
    fn from(format: VariantFormat) -> String {
        format.as_str().to_owned()
    }
}

impl From<Format> for VariantFormat {
    fn from(format: Format) -> Self {
        VariantFormat::One(format)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_every_name() {
        for name in ["webp", "avif", "jpeg", "png", "auto"] {
            let format = VariantFormat::try_from(name.to_owned()).expect("a format");
            assert_eq!(String::from(format), name);
        }
        assert!(VariantFormat::try_from("gif".to_owned()).is_err());
        assert!(VariantFormat::try_from("AUTO".to_owned()).is_err());
    }

    #[test]
    fn auto_renders_three_with_the_fallback_last() {
        assert_eq!(VariantFormat::Auto.renders(false), [Format::Avif, Format::Webp, Format::Jpeg]);
        assert_eq!(VariantFormat::Auto.renders(true), [Format::Avif, Format::Webp, Format::Png]);
        assert_eq!(VariantFormat::One(Format::Png).renders(false), [Format::Png]);
    }
}

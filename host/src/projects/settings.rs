//! Project settings: the image variants to render and the quotas, typed and validated at the
//! edge. Every rule of API.md's Settings paragraph lives here, and every refusal names its field
//! (`settings.variants[2].quality`).

pub use super::delivery_settings::Visibility;
use super::delivery_settings::{DEFAULT_URL_TTL_SECONDS, default_url_ttl, is_default_url_ttl};
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::Error;

pub const STANDARD_PLUGIN: &str = "mbk-standard";
pub const MAX_DIMENSION: u32 = 8192;
/// Variants per project: each upload renders every one, so the count bounds an upload's work.
pub const MAX_VARIANTS: usize = 32;
/// Output pixels of one variant whose width and height are both set (8192 x 8192 would be 67
/// MP, more than the host's encoders take). A variant with one side null is bounded by its
/// original instead: `contain` never upscales.
pub const MAX_VARIANT_PIXELS: u64 = 50_000_000;
pub const DEFAULT_MAX_FILE_BYTES: i64 = 25 * 1024 * 1024;

use super::schemas::{FitSchema, ImageFormatSchema};
pub use super::variant_format::VariantFormat;
pub use super::variant_gravity::VariantGravity;
pub use crate::plugins::{Fit, Format};

/// A variant name: `[a-z0-9_-]{1,32}`. Safe as a storage key segment.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, pattern = "^[a-z0-9_-]{1,32}$", example = "thumbnail")]
pub struct VariantName(String);

impl VariantName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let valid = (1..=32).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if valid { Ok(Self(raw.to_owned())) } else { Err(format!("must match [a-z0-9_-]{{1,32}}, got {raw:?}")) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for VariantName {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        Self::parse(&raw)
    }
}

impl From<VariantName> for String {
    fn from(name: VariantName) -> String {
        name.0
    }
}

/// One image variant to render for every uploaded image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariantSpec {
    pub name: VariantName,
    /// 1..=8192, or null (then `height` bounds the size). With `height` set too, width x height
    /// is at most 50,000,000 pixels.
    #[schema(minimum = 1, maximum = 8192, example = 150)]
    pub width: Option<u32>,
    /// 1..=8192, or null (then `width` bounds the size).
    #[schema(minimum = 1, maximum = 8192, example = 150)]
    pub height: Option<u32>,
    #[schema(value_type = FitSchema)]
    pub fit: Fit,
    #[schema(value_type = ImageFormatSchema)]
    pub format: VariantFormat,
    #[schema(minimum = 1, maximum = 100, example = 80)]
    pub quality: u8,
    /// A plugin the project's owner may use: `name`, `name@1.2.0` or `name@^1` (see
    /// [`crate::plugins::pin`]).
    #[serde(default = "standard_plugin")]
    #[schema(example = "mbk-standard")]
    pub plugin: String,
    /// Handed to the plugin as is.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Where a `cover` crop is taken (other fits keep the whole picture). Shown when not
    /// `centre`.
    #[serde(default, skip_serializing_if = "VariantGravity::is_centre")]
    pub gravity: VariantGravity,
}

fn standard_plugin() -> String {
    STANDARD_PLUGIN.to_owned()
}

/// Limits on what a project may store. `null` means no limit (but `max_file_bytes` defaults to 25 MiB).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Quotas {
    #[serde(default = "default_max_file_bytes")]
    #[schema(minimum = 1, example = 26214400)]
    pub max_file_bytes: Option<i64>,
    #[serde(default)]
    #[schema(minimum = 1)]
    pub max_total_bytes: Option<i64>,
    #[serde(default)]
    #[schema(minimum = 1)]
    pub max_files: Option<i64>,
    /// Plugin time (wall seconds, over every render of the project) allowed per UTC day; over
    /// it, variants fail with `budget exceeded` until midnight. Null: no budget. Shown when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub max_render_seconds_per_day: Option<i64>,
}

fn default_max_file_bytes() -> Option<i64> {
    Some(DEFAULT_MAX_FILE_BYTES)
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            max_file_bytes: default_max_file_bytes(),
            max_total_bytes: None,
            max_files: None,
            max_render_seconds_per_day: None,
        }
    }
}

/// What a project renders and what it may store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectSettings {
    /// Omitted: the two default variants (`thumbnail`, `medium`). `[]`: no variants. At most 32.
    #[serde(default = "default_variants")]
    #[schema(max_items = 32)]
    pub variants: Vec<VariantSpec>,
    #[serde(default)]
    pub quotas: Quotas,
    /// Registering a new version that one of the variants' `plugin` resolves to enqueues the
    /// project's sync (which re-renders what that version now makes). Shown when true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rerender_on_upgrade: bool,
    /// `public`: a blob's URL works for anyone who has it. `private`: every URL in an answer is
    /// signed and expires after `url_ttl_seconds`, and unsigned ones are refused (403). Shown
    /// when private.
    #[serde(default, skip_serializing_if = "Visibility::is_public")]
    pub visibility: Visibility,
    /// How long a private project's signed URLs work, 60..=604800 seconds. Shown when not 3600.
    #[serde(default = "default_url_ttl", skip_serializing_if = "is_default_url_ttl")]
    #[schema(minimum = 60, maximum = 604800, default = 3600)]
    pub url_ttl_seconds: u32,
    /// Browser origins (`https://host[:port]`; `http://` only for localhost and loopback
    /// addresses, for development) whose pages may use `/upload/direct` and `/blobs` of
    /// this project: preflights are answered and responses carry `Access-Control-Allow-Origin`
    /// for them alone. At most 32. Shown when not empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(example = json!(["https://app.example.com"]), max_items = 32)]
    pub cors_origins: Vec<String>,
    /// Keep the GPS position of a photo's EXIF in its File JSON `metadata`. Off by default: a
    /// phone photo's position is where someone lives. Applies to images analysed after it is
    /// set. Shown when true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_gps: bool,
}

impl Default for ProjectSettings {
    fn default() -> Self {
        ProjectSettings {
            variants: default_variants(),
            quotas: Quotas::default(),
            rerender_on_upgrade: false,
            visibility: Visibility::Public,
            url_ttl_seconds: DEFAULT_URL_TTL_SECONDS,
            cors_origins: Vec::new(),
            keep_gps: false,
        }
    }
}

fn default_variants() -> Vec<VariantSpec> {
    let variant = |name: &str, width, height, fit| VariantSpec {
        name: VariantName(name.to_owned()),
        width,
        height,
        fit,
        format: VariantFormat::One(Format::Webp),
        quality: 80,
        plugin: standard_plugin(),
        params: BTreeMap::new(),
        gravity: VariantGravity::Centre,
    };
    vec![variant("thumbnail", Some(150), Some(150), Fit::Cover), variant("medium", Some(800), None, Fit::Contain)]
}

impl ProjectSettings {
    /// Parses settings from JSON, naming the field of any error under `prefix` (`settings`).
    pub fn from_json(value: serde_json::Value, prefix: &str) -> Result<Self, Error> {
        // serde would also read a struct from an array (`[]` -> all defaults): refuse that.
        if !value.is_object() {
            return Err(Error::validation(prefix, "must be an object with `variants` and/or `quotas`"));
        }
        // The same inside: `quotas`, each variant and its `params` are objects, never arrays.
        let not_object = |v: Option<&serde_json::Value>| v.is_some_and(|v| !v.is_object() && !v.is_null());
        if not_object(value.get("quotas")) {
            return Err(Error::validation(format!("{prefix}.quotas"), "must be an object"));
        }
        let variants = value.get("variants").and_then(|v| v.as_array()).map_or(&[][..], |v| v.as_slice());
        for (i, variant) in variants.iter().enumerate() {
            if !variant.is_object() {
                return Err(Error::validation(format!("{prefix}.variants[{i}]"), "must be an object"));
            }
            if not_object(variant.get("params")) {
                return Err(Error::validation(format!("{prefix}.variants[{i}].params"), "must be an object"));
            }
        }
        let settings: ProjectSettings = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." { prefix.to_owned() } else { format!("{prefix}.{path}") };
            Error::validation(field, e.inner().to_string())
        })?;
        settings.validate(prefix)?;
        Ok(settings)
    }

    /// The rules that types alone do not carry. `known_plugin` says whether a name is registered.
    pub fn validate(&self, prefix: &str) -> Result<(), Error> {
        if self.variants.len() > MAX_VARIANTS {
            return Err(Error::validation(format!("{prefix}.variants"), format!("at most {MAX_VARIANTS} variants")));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, v) in self.variants.iter().enumerate() {
            let field = |name: &str| format!("{prefix}.variants[{i}].{name}");
            if !seen.insert(v.name.as_str()) {
                return Err(Error::validation(
                    field("name"),
                    format!("{:?} is used by another variant", v.name.as_str()),
                ));
            }
            for (name, value) in [("width", v.width), ("height", v.height)] {
                if let Some(n) = value
                    && !(1..=MAX_DIMENSION).contains(&n)
                {
                    return Err(Error::validation(
                        field(name),
                        format!("must be 1..={MAX_DIMENSION} or null, got {n}"),
                    ));
                }
            }
            if let (Some(w), Some(h)) = (v.width, v.height)
                && u64::from(w) * u64::from(h) > MAX_VARIANT_PIXELS
            {
                return Err(Error::validation(
                    field("width"),
                    format!("width x height is at most {MAX_VARIANT_PIXELS} pixels, got {w} x {h}"),
                ));
            }
            if v.width.is_none() && v.height.is_none() {
                return Err(Error::validation(field("width"), "width and height cannot both be null"));
            }
            if matches!(v.fit, Fit::Cover | Fit::Stretch) && (v.width.is_none() || v.height.is_none()) {
                return Err(Error::validation(
                    field(if v.width.is_none() { "width" } else { "height" }),
                    "cover and stretch need both width and height",
                ));
            }
            if !(1..=100).contains(&v.quality) {
                return Err(Error::validation(field("quality"), format!("must be 1..=100, got {}", v.quality)));
            }
            if let Err(why) = crate::plugins::pin::PluginRef::parse(&v.plugin) {
                return Err(Error::validation(field("plugin"), why));
            }
            if v.params.len() > 64 || v.params.iter().any(|(k, val)| k.len() > 128 || val.len() > 4096) {
                return Err(Error::validation(
                    field("params"),
                    "at most 64 entries, keys up to 128 and values up to 4096 bytes",
                ));
            }
        }
        super::delivery_settings::validate(self.url_ttl_seconds, &self.cors_origins, prefix)?;
        for (name, value) in [
            ("max_file_bytes", self.quotas.max_file_bytes),
            ("max_total_bytes", self.quotas.max_total_bytes),
            ("max_files", self.quotas.max_files),
            ("max_render_seconds_per_day", self.quotas.max_render_seconds_per_day),
        ] {
            if let Some(n) = value
                && n < 1
            {
                return Err(Error::validation(
                    format!("{prefix}.quotas.{name}"),
                    format!("must be at least 1 or null, got {n}"),
                ));
            }
        }
        Ok(())
    }

    /// The plugins the variants name, each once, with the index of the first variant naming it.
    pub fn plugins(&self) -> Vec<(usize, &str)> {
        let mut out: Vec<(usize, &str)> = Vec::new();
        for (i, v) in self.variants.iter().enumerate() {
            if !out.iter().any(|(_, p)| *p == v.plugin) {
                out.push((i, v.plugin.as_str()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: serde_json::Value) -> Result<ProjectSettings, String> {
        ProjectSettings::from_json(value, "settings").map_err(|e| e.to_string())
    }

    /// serde reads a struct from an array too: settings refuse that at every level.
    #[test]
    fn quotas_variants_and_params_are_objects() {
        let v = json!({"name": "t", "width": 10, "height": null, "fit": "contain", "format": "webp", "quality": 80});
        assert_eq!(parse(json!({"quotas": [null, null]})).expect_err("refused"), "settings.quotas: must be an object");
        assert_eq!(
            parse(json!({"variants": [["t", 10]]})).expect_err("refused"),
            "settings.variants[0]: must be an object"
        );
        let mut with_params = v.clone();
        with_params["params"] = json!(["a"]);
        assert_eq!(
            parse(json!({"variants": [with_params]})).expect_err("refused"),
            "settings.variants[0].params: must be an object"
        );
        assert!(parse(json!({"variants": [v]})).is_ok());
    }

    /// The schema lists `as_str` names; settings are read and written by serde: one set.
    #[test]
    fn the_schemas_name_what_serde_reads_and_writes() {
        for fit in Fit::ALL {
            assert_eq!(serde_json::to_value(fit).ok(), Some(json!(fit.as_str())));
            assert_eq!(serde_json::from_value::<Fit>(json!(fit.as_str())).ok(), Some(fit));
        }
        for format in Format::ALL {
            assert_eq!(serde_json::to_value(format).ok(), Some(json!(format.as_str())));
            assert_eq!(serde_json::from_value::<Format>(json!(format.as_str())).ok(), Some(format));
        }
    }

    #[test]
    fn defaults_are_thumbnail_and_medium() {
        let s = ProjectSettings::default();
        assert_eq!(
            serde_json::to_value(&s).expect("json"),
            json!({"variants": [
                {"name": "thumbnail", "width": 150, "height": 150, "fit": "cover", "format": "webp", "quality": 80, "plugin": "mbk-standard", "params": {}},
                {"name": "medium", "width": 800, "height": null, "fit": "contain", "format": "webp", "quality": 80, "plugin": "mbk-standard", "params": {}}],
             "quotas": {"max_file_bytes": 26214400, "max_total_bytes": null, "max_files": null}})
        );
        assert_eq!(parse(json!({})).expect("valid"), s, "omitted parts take the defaults");
    }

    #[test]
    fn accepts_the_example_of_the_contract() {
        let s = parse(json!({"variants": [
            {"name": "thumbnail", "width": 150, "height": 150, "fit": "cover", "format": "webp", "quality": 80},
            {"name": "large", "width": 1600, "height": null, "fit": "contain", "format": "avif", "quality": 60, "plugin": "mbk-standard", "params": {}}],
            "quotas": {"max_file_bytes": 26214400, "max_total_bytes": null, "max_files": null}}))
        .expect("valid");
        assert_eq!(s.variants[1].format, VariantFormat::One(Format::Avif));
        assert_eq!(s.variants[0].plugin, STANDARD_PLUGIN);
        assert_eq!(parse(json!({"variants": []})).expect("valid").variants.len(), 0);
        // The caps themselves are allowed: 32 variants, 50 MP (8192 x 6103).
        let many: Vec<_> = (0..32)
            .map(|i| json!({"name": format!("v{i}"), "width": 8192, "height": 6103, "fit": "cover", "format": "webp", "quality": 80}))
            .collect();
        assert_eq!(parse(json!({"variants": many})).expect("valid").variants.len(), 32);
    }

    #[test]
    fn each_rule_names_its_field() {
        let ok = json!({"name": "a", "width": 10, "height": 10, "fit": "cover", "format": "png", "quality": 50});
        let with = |patch: serde_json::Value| {
            let mut v = ok.clone();
            v["name"] = json!("c");
            for (k, val) in patch.as_object().expect("object") {
                v[k] = val.clone();
            }
            json!({"variants": [ok.clone(), ok.clone().as_object().map(|o| { let mut o = o.clone(); o.insert("name".into(), json!("b")); o }), v]})
        };
        let cases = [
            (with(json!({"quality": 0})), "settings.variants[2].quality"),
            (with(json!({"quality": 101})), "settings.variants[2].quality"),
            (with(json!({"quality": 300})), "settings.variants[2].quality"),
            (with(json!({"width": 0})), "settings.variants[2].width"),
            (with(json!({"height": 8193})), "settings.variants[2].height"),
            (with(json!({"width": 8192, "height": 6104})), "settings.variants[2].width"),
            (with(json!({"width": null, "height": null, "fit": "contain"})), "settings.variants[2].width"),
            (with(json!({"width": null, "fit": "cover"})), "settings.variants[2].width"),
            (with(json!({"fit": "fill"})), "settings.variants[2].fit"),
            (with(json!({"format": "gif"})), "settings.variants[2].format"),
            (with(json!({"name": "Big Name"})), "settings.variants[2].name"),
            (with(json!({"name": "x".repeat(33)})), "settings.variants[2].name"),
            (with(json!({"name": "a"})), "settings.variants[2].name"),
            (with(json!({"qualty": 5})), "settings.variants[2].qualty"),
            (with(json!({"width": "10"})), "settings.variants[2].width"),
            (with(json!({"params": {"k": 1}})), "settings.variants[2].params.k"),
            (json!({"quotas": {"max_files": 0}}), "settings.quotas.max_files"),
            (json!({"quotas": {"max_file_bytes": -5}}), "settings.quotas.max_file_bytes"),
            (json!({"variants": {}}), "settings.variants"),
            (json!([]), "settings"),
            (
                json!({"variants": (0..33).map(|i| { let mut v = ok.clone(); v["name"] = json!(format!("v{i}")); v }).collect::<Vec<_>>()}),
                "settings.variants",
            ),
        ];
        for (value, field) in cases {
            let err = parse(value.clone()).expect_err(&format!("{value} must be refused"));
            assert!(err.starts_with(&format!("{field}: ")), "{value}: {err}");
        }
    }
}

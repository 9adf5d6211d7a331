//! `mbk-host plugin validate FILE`: what an author runs before uploading a component. The same
//! checks as an upload (a component exporting the world, importing only what plugins may,
//! compiling), then `info()`, then a render of a small built-in image through the sandbox's
//! limits, its output verified as the pipeline verifies every plugin's.

use std::path::Path;
use std::time::Duration;

use super::{Fit, Format, PluginEngine, PluginSettings, Spec};

/// Runs every check on the component in `file`, telling `report` each verdict (passed or not,
/// and one line saying what) as it is reached; stops at the first check the later ones need.
/// `Ok(true)` when every check passed; `Err` only when the host itself could not run them.
pub fn run(
    file: &Path,
    memory_bytes: usize,
    timeout: Duration,
    mut report: impl FnMut(bool, &str),
) -> anyhow::Result<bool> {
    let wasm = match std::fs::read(file) {
        Ok(bytes) => bytes,
        Err(e) => {
            report(false, &format!("cannot read {}: {e}", file.display()));
            return Ok(false);
        }
    };
    // No disk cache: validating leaves nothing behind (no data folder, no compiled code).
    let engine = PluginEngine::new(PluginSettings { memory_bytes, timeout, cache_dir: None, instances: 2 })?;
    let plugin = match engine.load(&wasm) {
        Ok(plugin) => plugin,
        Err(e) => {
            report(false, &format!("{}: {e}", file.display()));
            return Ok(false);
        }
    };
    let world = plugin.world();
    report(true, &format!("a component exporting {world} that compiles and links (sha256 {})", plugin.sha256));
    // `load` called info() already, and refused a declaration that does not hold.
    let info = &plugin.info;
    report(true, &format!("info(): {} {} — {}", info.name, info.version, info.description));
    match &info.params {
        None => report(true, "params: none declared (world 0.1.0): a variant's params reach it unchecked"),
        Some(params) if params.is_empty() => report(true, "params: it takes none"),
        Some(params) => {
            let each: Vec<String> = params.iter().map(describe).collect();
            report(true, &format!("params: {}", each.join("; ")));
        }
    }
    let image = test_image();
    let specs = [
        spec("cover", Some(32), Some(32), Fit::Cover, Format::Png),
        spec("contain", Some(48), None, Fit::Contain, Format::Webp),
        spec("stretch", Some(20), Some(40), Fit::Stretch, Format::Jpeg),
    ];
    let results = match engine.render(&plugin, &image, 100_000_000, &specs) {
        Ok(results) => results,
        Err(e) => {
            report(false, &format!("render() of a {}-byte test image: {e}", image.len()));
            return Ok(false);
        }
    };
    let mut all_ok = true;
    for (spec, result) in specs.iter().zip(results) {
        match result.and_then(|r| crate::pipeline::verify(spec, r)) {
            Ok(r) => report(
                true,
                &format!("render {:?}: {}x{} {} ({} bytes)", spec.name, r.width, r.height, r.mime, r.bytes.len()),
            ),
            Err(e) => {
                all_ok = false;
                report(false, &format!("render {:?}: {e}", spec.name));
            }
        }
    }
    Ok(all_ok)
}

/// `strength` (float 0..=1, default 1): How far…
fn describe(param: &super::Param) -> String {
    let mut out = format!("{} ({}", param.name, format!("{:?}", param.kind).to_lowercase());
    match (param.min, param.max) {
        (Some(min), Some(max)) => out += &format!(" {min}..={max}"),
        (Some(min), None) => out += &format!(" >= {min}"),
        (None, Some(max)) => out += &format!(" <= {max}"),
        (None, None) => {}
    }
    if !param.values.is_empty() {
        out += &format!(" of {}", param.values.join("|"));
    }
    if let Some(default) = &param.default {
        out += &format!(", default {default}");
    }
    out += ")";
    if !param.description.is_empty() {
        out += &format!(": {}", param.description);
    }
    out
}

fn spec(name: &str, width: Option<u32>, height: Option<u32>, fit: Fit, format: Format) -> Spec {
    Spec { name: name.into(), width, height, fit, format, quality: 80, params: Vec::new(), gravity: Default::default() }
}

/// A small built-in test image (a 96x64 PNG colour gradient): every plugin must read PNG.
fn test_image() -> Vec<u8> {
    let (w, h) = (96u32, 64u32);
    let pixels: Vec<u8> =
        (0..h).flat_map(|y| (0..w).flat_map(move |x| [(x * 255 / w) as u8, (y * 255 / h) as u8, 128])).collect();
    mbk_standard::encode::encode(&pixels, w, h, false, Format::Png, 90).unwrap_or_default()
}

//! `mbk-host plugin new NAME`: writes a plugin crate that depends on `mbk-plugin-sdk`, outside
//! any workspace, with the world's WIT, a build configuration for `wasm32-wasip2` (SIMD on), a
//! render function to start from (a colour inversion with a `strength` param), a unit test and
//! a README with the next four commands.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The newest world's WIT (`mbk:plugin@0.3.0`), as this host links it.
const WIT: &str = include_str!("../../../wit/plugin.wit");

/// Where the SDK of this build's source tree is (the default for `--sdk`).
pub fn default_sdk() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/sdk")
}

/// Writes the crate `name` under `parent` (a new folder `parent/name`), depending on the SDK at
/// `sdk`; the crate's folder.
pub fn new_plugin(parent: &Path, name: &str, sdk: &Path) -> anyhow::Result<PathBuf> {
    crate::plugins::registry::check_name(name).map_err(|e| anyhow::anyhow!("plugin name: {e}"))?;
    let sdk = sdk.canonicalize().with_context(|| format!("the SDK is not at {} (use --sdk PATH)", sdk.display()))?;
    if !sdk.join("Cargo.toml").is_file() {
        bail!("{} holds no Cargo.toml: not the SDK (use --sdk PATH)", sdk.display());
    }
    let dir = parent.join(name);
    if dir.exists() {
        bail!("{} exists already", dir.display());
    }
    let crate_name = name.replace('-', "_");
    let sdk_path = sdk.display().to_string().replace('\\', "/");
    let files: [(&str, String); 6] = [
        ("Cargo.toml", cargo_toml(name, &sdk_path)),
        (".cargo/config.toml", CARGO_CONFIG.to_owned()),
        ("wit/plugin.wit", WIT.to_owned()),
        ("src/lib.rs", LIB_RS.replace("{name}", name)),
        ("README.md", README.replace("{name}", name).replace("{crate}", &crate_name)),
        (".gitignore", "/target\n".to_owned()),
    ];
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap_or(&dir))
            .with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(dir)
}

fn cargo_toml(name: &str, sdk: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib", "rlib"]

[dependencies]
mbk-plugin-sdk = {{ path = "{sdk}" }}

[target.'cfg(target_arch = "wasm32")'.dependencies]
wit-bindgen = "0.61.1"

# Its own workspace: a plugin is built on its own, wherever it lives.
[workspace]

# Optimised, no debuginfo (a small guest shrinks 50x): `cargo build --profile plugin`.
[profile.plugin]
inherits = "release"
debug = false
strip = "debuginfo"
codegen-units = 4
"#
    )
}

const CARGO_CONFIG: &str = r#"# Plugins are WebAssembly components; SIMD makes resizing ~7x faster inside the sandbox.
[build]
target = "wasm32-wasip2"

[target.wasm32-wasip2]
rustflags = ["-C", "target-feature=+simd128"]
"#;

const LIB_RS: &str = r#"//! `{name}`: a MediaBlobKit plugin. Decoding (EXIF orientation, ICC to sRGB), resizing and
//! encoding come from the SDK; `filter` is yours. Its `strength` param (a float 0.0..=1.0,
//! default 1.0) blends the result with the original; the host refuses other values when a
//! project's settings are saved.

use mbk_plugin_sdk::{Decoded, Param, Plugin, RenderError, Rendered, Spec};

/// The params `render` reads, declared to the host (`GET /plugins/{id}` shows them).
pub fn strength() -> Param {
    Param::float("strength", 0.0, 1.0, 1.0).describe("How far towards the inverted colours")
}

/// Inverts the colours, blended with the original by `strength`.
pub fn filter(image: &mut Decoded, strength: f32) {
    let channels = if image.has_alpha { 4 } else { 3 };
    for px in image.pixels.chunks_exact_mut(channels) {
        for c in &mut px[..3] {
            let inverted = f32::from(255 - *c);
            *c = (f32::from(*c) * (1.0 - strength) + inverted * strength).round() as u8;
        }
    }
}

/// One decode, every spec: the host calls this once per image with all the variants it names.
pub fn render(input: &[u8], max_pixels: u64, specs: &[Spec]) -> Result<Vec<Result<Rendered, RenderError>>, RenderError> {
    let strength: f32 = mbk_plugin_sdk::value(specs, &strength())?;
    mbk_plugin_sdk::render_filtered(input, max_pixels, specs, |image| {
        filter(image, strength);
        Ok(())
    })
}

// Encoding on the host: its native encoders, about twice as fast as inside the sandbox.
mbk_plugin_sdk::component!(Plugin {
    name: "{name}",
    description: "Inverted colours",
    params: vec![strength()],
    render: crate::render,
    render_analysed: None,
    encode_on_host: true,
});

#[cfg(test)]
mod tests {
    #[test]
    fn inverts_a_pixel() {
        let mut image = mbk_plugin_sdk::Decoded { width: 1, height: 1, pixels: vec![10, 100, 250], has_alpha: false };
        super::filter(&mut image, 1.0);
        assert_eq!(image.pixels, [245, 155, 5]);
    }

    #[test]
    fn the_host_takes_the_declared_params() {
        assert_eq!(mbk_plugin_sdk::check(&super::component::plugin()), Ok(()));
    }
}
"#;

const README: &str = r#"# {name}

A MediaBlobKit plugin: a WebAssembly component that renders image variants inside the host's
sandbox (its own memory cap and deadline, no files, network or environment). Edit `filter` in
`src/lib.rs`; decoding, resizing and encoding come from `mbk-plugin-sdk`.

```sh
cargo test --target "$(rustc -vV | sed -n 's/^host: //p')"     # the filter's unit test, natively
cargo build --profile plugin                                     # target/wasm32-wasip2/plugin/{crate}.wasm
mbk-host plugin validate target/wasm32-wasip2/plugin/{crate}.wasm
MBK_URL=http://127.0.0.1:8080 MBK_TOKEN=… \
  mbk-host plugin push target/wasm32-wasip2/plugin/{crate}.wasm --name {name} --version 0.1.0
```

Then name it in a project's variant: `"plugin": "{name}"` (or `"{name}@^0.1"`), with
`"params": {"strength": "0.8"}` if you like, in `PUT /projects/{id}`. A plugin an admin pushes is
theirs: only their projects may use it. (`rustup target add wasm32-wasip2` once, if missing.)
"#;

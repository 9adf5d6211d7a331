//! Builds the standard plugin (`plugins/standard`) as a `wasm32-wasip2` component and hands it to
//! the host as `OUT_DIR/mbk_standard.wasm`, which `include_bytes!` embeds. Also builds the example
//! plugin (`plugins/examples/sepia`) and the test fixtures (`plugins/fixtures/*`), whose paths
//! the tests get as `MBK_TEST_SEPIA_WASM`, `MBK_TEST_HOSTILE_WASM`, `MBK_TEST_SNOOP_WASM`, `MBK_TEST_LEGACY_WASM` and `MBK_TEST_FLAT_WASM`.
//!
//! It compiles the standard component to machine code too (`OUT_DIR/mbk_standard.cwasm`), with
//! wasmtime and the host's own engine configuration (`src/plugins/engine_config.rs`), so a fresh
//! data dir need not compile it at start-up.
//!
//! The inner cargo gets a target dir of its own (next to ours), so it never waits on our lock.
//! The wasm target is added with rustup when missing. When the component cannot be built (no
//! rustup, no network, `MBK_SKIP_WASM=1`), the build warns and embeds an empty file: the host
//! then runs the standard plugin natively only.

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "src/plugins/engine_config.rs"]
mod engine_config;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir.parent().expect("workspace root").to_path_buf();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let out_file = out_dir.join("mbk_standard.wasm");
    // `migrations`: sqlx embeds them at compile time, and a new file must rebuild the crate.
    // `Cargo.toml`: its `[profile.plugin]` shapes the components as much as their sources do.
    for watched in ["plugins", "wit", "Cargo.toml", "Cargo.lock", "migrations", "host/src/plugins/engine_config.rs"] {
        println!("cargo:rerun-if-changed={}", workspace.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=MBK_SKIP_WASM");

    let skip = std::env::var("MBK_SKIP_WASM").is_ok_and(|v| v == "1");
    // One inner build for the five components: their shared dependencies compile once.
    let built = if skip {
        Err("MBK_SKIP_WASM=1".to_owned())
    } else {
        build(
            &workspace,
            &out_dir,
            &[
                "-p",
                "mbk-standard-component",
                "-p",
                "mbk-sepia",
                "-p",
                "mbk-hostile",
                "-p",
                "mbk-snoop",
                "-p",
                "mbk-legacy",
                "-p",
                "mbk-flat",
            ],
        )
    };
    let copied = built
        .clone()
        .and_then(|dir| std::fs::copy(dir.join("mbk_standard_component.wasm"), &out_file).map_err(|e| e.to_string()));
    if let Err(why) = copied {
        println!(
            "cargo:warning=the standard plugin's WebAssembly component was not built ({why}); the host will render natively only"
        );
        std::fs::write(&out_file, b"").expect("write an empty component");
    }
    precompile(&out_file, &out_dir.join("mbk_standard.cwasm"));
    for name in ["mbk_sepia", "mbk_hostile", "mbk_snoop", "mbk_legacy", "mbk_flat"] {
        let dest = out_dir.join(format!("{name}.wasm"));
        let copied = built
            .clone()
            .and_then(|dir| std::fs::copy(dir.join(format!("{name}.wasm")), &dest).map_err(|e| e.to_string()));
        if let Err(why) = copied {
            println!("cargo:warning=test plugin {name} was not built ({why})");
            std::fs::write(&dest, b"").expect("write an empty component");
        }
        let var = format!("MBK_TEST_{}_WASM", name.trim_start_matches("mbk_").to_ascii_uppercase());
        println!("cargo:rustc-env={var}={}", dest.display());
    }
}

/// Compiles the standard component to machine code for this machine with the host's own engine
/// configuration, so a fresh data dir renders at once rather than after seconds of compiling.
/// Empty when there is no component or it does not compile: the host then compiles at start-up.
fn precompile(wasm: &Path, cwasm: &Path) {
    let wasm = std::fs::read(wasm).unwrap_or_default();
    let code = if wasm.is_empty() {
        Vec::new()
    } else {
        let compiled = wasmtime::Engine::new(&engine_config::compiler_config())
            .and_then(|engine| engine.precompile_component(&wasm));
        compiled.unwrap_or_else(|e| {
            println!("cargo:warning=the standard component was not compiled ahead of time ({e}); the host will at start-up");
            Vec::new()
        })
    };
    std::fs::write(cwasm, code).expect("write the ahead-of-time code");
}

/// `<target>/` of this build: OUT_DIR is `<target>/[<triple>/]<profile>/build/<pkg>/out`.
fn target_root(out_dir: &Path) -> PathBuf {
    let profile_dir = out_dir.ancestors().nth(3).expect("OUT_DIR layout");
    profile_dir.parent().expect("target dir").to_path_buf()
}

fn ensure_target() -> Result<(), String> {
    let installed =
        Command::new("rustup").args(["target", "list", "--installed"]).output().map_err(|e| format!("rustup: {e}"))?;
    if String::from_utf8_lossy(&installed.stdout).lines().any(|l| l.trim() == TARGET) {
        return Ok(());
    }
    let added = Command::new("rustup").args(["target", "add", TARGET]).status().map_err(|e| format!("rustup: {e}"))?;
    if added.success() { Ok(()) } else { Err(format!("`rustup target add {TARGET}` failed")) }
}

/// Runs the inner cargo for `packages`; the folder holding the built `.wasm` files.
fn build(workspace: &Path, out_dir: &Path, packages: &[&str]) -> Result<PathBuf, String> {
    ensure_target()?;
    // One inner target dir per checkout: clones sharing the outer target dir (CI's fresh clone
    // beside a working copy) would otherwise take each other's `.wasm` for their own, as cargo
    // copies an artifact to `plugin/` only when it builds it.
    let checkout = {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        workspace.hash(&mut hasher);
        hasher.finish()
    };
    let target_dir = target_root(out_dir).join(format!("wasm-plugins-{checkout:016x}"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args(["build", "--locked", "--profile", "plugin", "--target", TARGET])
        .args(packages)
        .arg("--target-dir")
        .arg(&target_dir)
        // SIMD in the guest: Lanczos resizing is ~7x faster with simd128 than scalar wasm.
        .env("CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS", "-C target-feature=+simd128");
    // What the outer build set for itself must not leak into the inner one.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        command.env_remove(var);
    }
    for (key, _) in std::env::vars() {
        if key.starts_with("CARGO_FEATURE_") || key.starts_with("CARGO_CFG_") || key.starts_with("CARGO_PKG_") {
            command.env_remove(key);
        }
    }
    let output = command.output().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        let log = target_dir.join("last-failure.log");
        let _ = std::fs::create_dir_all(&target_dir);
        let _ = std::fs::write(&log, stderr.as_bytes());
        return Err(format!(
            "cargo build --target {TARGET} failed; see {}: {}",
            log.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        ));
    }
    Ok(target_dir.join(TARGET).join("plugin"))
}

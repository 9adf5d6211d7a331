//! The plugin author's path, from an empty folder against a live host (the real binary): five
//! commands, `plugin new`, `cargo build`, `plugin validate`, `plugin push` and one settings
//! update, and an upload's variant is rendered by the new plugin.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cli::{bare, free_port, post, serve_on, superuser};
use crate::helpers::fixture;

/// The target folder the host's own build puts plugin components in (`host/build.rs`): the new
/// plugin builds there too, so its dependencies are not built from cold.
fn wasm_target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary");
    exe.ancestors().nth(3).expect("<target>/<profile>/deps/<test>").join("wasm-plugins")
}

fn run(mut cmd: Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{what} failed:\n{text}");
    text
}

/// `cargo build --profile plugin` in `dir`, as an author runs it (their environment, not ours).
fn cargo_build(dir: &Path) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(dir).args(["build", "--profile", "plugin"]).env("CARGO_TARGET_DIR", wasm_target_dir());
    for var in
        ["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "CARGO_BUILD_TARGET", "RUSTC_WRAPPER", "RUSTC_WORKSPACE_WRAPPER"]
    {
        cmd.env_remove(var);
    }
    cmd
}

#[tokio::test]
async fn five_commands_take_an_author_from_nothing_to_a_rendered_variant() {
    let host_dir = tempfile::tempdir().expect("tempdir");
    assert!(superuser(host_dir.path(), "root", "a long password").status.success());
    let (_host, base) = serve_on(host_dir.path(), free_port()).await;
    // No pooled connections: the build below outlasts the host's 15 s idle timeout, and a POST on a
    // connection the host just closed is not retried.
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("client");
    let (_, tokens) =
        post(&client, &base, "/auth/login", None, json!({"username": "root", "password": "a long password"})).await;
    let token = tokens["access_token"].as_str().expect("token").to_owned();

    let empty = tempfile::tempdir().expect("tempdir");
    // 1. plugin new
    let mut new = bare(empty.path());
    new.args(["plugin", "new", "invert"]);
    run(new, "plugin new");
    let crate_dir = empty.path().join("invert");
    assert!(crate_dir.join("README.md").is_file() && crate_dir.join("wit/plugin.wit").is_file());
    // The workspace's versions, so that the build reuses what the host's own build compiled.
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock"), crate_dir.join("Cargo.lock"))
        .expect("lockfile");
    // 2. cargo build
    let started = Instant::now();
    run(cargo_build(&crate_dir), "cargo build");
    println!("report: the new plugin built in {:.1} s", started.elapsed().as_secs_f64());
    let wasm = wasm_target_dir().join("wasm32-wasip2/plugin/invert.wasm");
    assert!(wasm.is_file(), "{}", wasm.display());
    // 3. plugin validate
    let mut validate = bare(empty.path());
    validate.arg("plugin").arg("validate").arg(&wasm);
    let verdict = run(validate, "plugin validate");
    assert!(verdict.contains("info(): invert 0.1.0"), "{verdict}");
    assert!(
        verdict.contains("mbk:plugin/plugin@0.3.0") && verdict.contains("params: strength (float 0..=1"),
        "{verdict}"
    );
    // 4. plugin push
    let mut push = bare(empty.path());
    push.arg("plugin").arg("push").arg(&wasm).args(["--name", "invert", "--version", "0.1.0"]);
    push.env("MBK_URL", &base).env("MBK_TOKEN", &token);
    let pushed: Value = serde_json::from_str(&run(push, "plugin push")).expect("the plugin as JSON");
    assert_eq!((&pushed["name"], &pushed["version"]), (&json!("invert"), &json!("0.1.0")), "{pushed}");
    assert_eq!(pushed["params"][0]["name"], "strength", "the scaffold declares its param: {pushed}");

    // 5. one settings update names it (beside the standard plugin, to compare).
    let (status, project) = post(&client, &base, "/projects", Some(&token), json!({"name": "mine"})).await;
    assert_eq!(status, 201, "{project}");
    let id = project["id"].as_str().expect("id");
    let variant = |name: &str, plugin: &str| json!({"name": name, "width": 96, "height": 64, "fit": "cover", "format": "png", "quality": 90, "plugin": plugin});
    let settings = json!({"settings": {"variants": [variant("inverted", "invert"), variant("plain", "mbk-standard")]}});
    let updated = client.put(format!("{base}/projects/{id}")).bearer_auth(&token).json(&settings).send().await;
    assert_eq!(updated.expect("put").status(), 200);

    let (_, key) = post(&client, &base, &format!("/projects/{id}/keys"), Some(&token), json!({"name": "k"})).await;
    let key = key["key"].as_str().expect("key").to_owned();
    let (content_type, body) = crate::helpers::multipart_body("p.jpg", crate::helpers::chunks(fixture("photo.jpg")));
    let file: Value = client
        .post(format!("{base}/upload/image"))
        .header("x-api-key", &key)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("upload")
        .json()
        .await
        .expect("json");
    let path = format!("{base}/files/{}", file["id"].as_str().expect("id"));
    let deadline = Instant::now() + Duration::from_secs(120);
    let file = loop {
        let f: Value =
            client.get(&path).header("x-api-key", &key).send().await.expect("get").json().await.expect("json");
        if f["status"] != "processing" || Instant::now() > deadline {
            break f;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let inverted = &file["variants"]["inverted"];
    assert_eq!((&inverted["status"], &inverted["plugin"]["name"]), (&json!("ready"), &json!("invert")), "{file}");
    let pixels = |name: &str| {
        let (client, path, key) = (client.clone(), path.clone(), key.clone());
        let name = name.to_owned();
        async move {
            let bytes = client
                .get(format!("{path}/content?variant={name}"))
                .header("x-api-key", key)
                .send()
                .await
                .expect("content")
                .bytes()
                .await
                .expect("bytes");
            image::load_from_memory(&bytes).expect("png").to_rgb8()
        }
    };
    let (inv, plain) = (pixels("inverted").await, pixels("plain").await);
    assert_eq!((inv.dimensions(), plain.dimensions()), ((96, 64), (96, 64)));
    // Inverted against the standard render of the same size: each channel sums to about 255.
    let off: f64 =
        inv.as_raw().iter().zip(plain.as_raw()).map(|(a, b)| (f64::from(*a) + f64::from(*b) - 255.0).abs()).sum();
    let mean = off / inv.as_raw().len() as f64;
    assert!(mean < 3.0, "the plugin inverted the picture (mean distance {mean:.2} from 255 - plain)");
}

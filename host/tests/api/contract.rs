//! The contract checked by a tool nobody here wrote: schemathesis (PyPI, in the venv
//! `scripts/test` makes) generates requests from the served spec, valid and invalid, with a su
//! token and a project key, and runs every check it has (`--checks all`: no 5xx, only documented
//! status codes, bodies and headers as documented, valid data accepted, invalid data refused,
//! 405 for undeclared methods, …). `tests/contract/schemathesis.toml` lists the few refusals the
//! spec cannot express, each with its reason. Short here (`MBK_TEST_SCHEMATHESIS_EXAMPLES`, 20
//! per operation, fixed seed); longer runs take a bigger number.

use crate::helpers::{DbKind, StoreKind, TestApp};

// Two of the four combinations: the spec is one, the backends differ only below it.
mod sqlite {
    mod filesystem {
        use crate::helpers::{DbKind, StoreKind};

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn schemathesis_finds_no_failure() {
            super::super::schemathesis_finds_no_failure(DbKind::Sqlite, StoreKind::Filesystem).await
        }
    }
}
mod postgres {
    mod s3 {
        use crate::helpers::{DbKind, StoreKind};

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn schemathesis_finds_no_failure() {
            super::super::schemathesis_finds_no_failure(DbKind::Postgres, StoreKind::S3).await
        }
    }
}

async fn schemathesis_finds_no_failure(db: DbKind, store: StoreKind) {
    let python = std::env::var("MBK_TEST_PYTHON").ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {
        panic!("MBK_TEST_PYTHON is not set: run the suite with scripts/test, which makes a venv with schemathesis")
    });
    let app = TestApp::spawn(db, store).await;
    let (_, su) = app.user_with_token("root", mbk_host::db::users::Role::Su).await;
    let project = app.create_project(&su, "contract").await;
    let (_, key) = app.create_key(&su, project["id"].as_str().expect("id")).await;
    let examples = std::env::var("MBK_TEST_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "20".into());
    let seed = std::env::var("MBK_TEST_SCHEMATHESIS_SEED").unwrap_or_else(|_| "20261202".into());
    let contract = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/contract");
    // The venv's own `st` script, beside its python.
    let st = std::path::Path::new(&python).with_file_name("st");
    // Its cache (`.schemathesis/`) goes to a folder of this test, not the clone.
    let cwd = tempfile::tempdir().expect("tempdir");
    let out = tokio::process::Command::new(st)
        .current_dir(cwd.path())
        .arg("--config-file")
        .arg(contract.join("schemathesis.toml"))
        .arg("run")
        .arg(app.url("/api-docs/openapi.json"))
        .args(["-H", &format!("Authorization: Bearer {su}"), "-H", &format!("X-API-Key: {key}")])
        .args(["--max-examples", &examples, "--seed", &seed, "--workers", "2", "--no-color"])
        // The hooks module: a serializer for tus chunks (`application/offset+octet-stream`).
        .env("PYTHONPATH", &contract)
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .kill_on_drop(true)
        .output()
        .await
        .expect("schemathesis runs");
    let said = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "schemathesis finds failures:\n{said}");
    // Every operation of the spec was tested ("Selected: 49/49", "Tested: 49").
    let figure = |label: &str| {
        let line = said.lines().find(|l| l.trim_start().starts_with(label)).unwrap_or_default();
        line.trim_start().trim_start_matches(label).trim().split('/').next().unwrap_or_default().to_owned()
    };
    let (selected, tested) = (figure("Selected:"), figure("Tested:"));
    assert!(!selected.is_empty() && selected == tested, "selected {selected:?}, tested {tested:?}:\n{said}");
}

//! Keeps the arrows of DESIGN.md pointing one way: nothing below `http/` knows axum, the HTTP
//! error type, the start-up (`app.rs`) or `http/` itself. Only `http/`, `app.rs` (the start-up)
//! and `main.rs` may. A test, not a convention, because a stray `use axum::...` compiles fine.

use std::path::{Path, PathBuf};

/// What only the HTTP layer and the start-up may name.
const FORBIDDEN: &[&str] = &["axum", "AppError", "AppResult", "IntoResponse", "crate::app", "crate::http"];

/// The files allowed to name them, relative to `src/` (this one names them to look for them).
fn allowed(relative: &Path) -> bool {
    relative.starts_with("http") || ["app.rs", "main.rs", "layering.rs"].iter().any(|f| relative == Path::new(f))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `file:line: text` for every code line (comments may explain the arrows) naming a forbidden
/// word outside the allowed files.
fn offenders(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut found = Vec::new();
    for path in files {
        let relative = path.strip_prefix(src).expect("under src");
        if allowed(relative) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            if FORBIDDEN.iter().any(|word| code.contains(word)) {
                found.push(format!("src/{}:{}: {}", relative.display(), n + 1, code));
            }
        }
    }
    found
}

#[test]
fn nothing_below_http_knows_axum_or_the_http_error() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = offenders(&src);
    assert!(found.is_empty(), "only http/, app.rs and main.rs may name axum or the HTTP error:\n{}", found.join("\n"));
}

#[test]
fn the_check_sees_an_offender() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("http")).expect("mkdir");
    std::fs::write(dir.path().join("http/ok.rs"), "use axum::Router;\n").expect("write");
    std::fs::write(dir.path().join("domain.rs"), "// axum is fine in a comment\nuse crate::AppError;\n")
        .expect("write");
    assert_eq!(offenders(dir.path()), vec!["src/domain.rs:2: use crate::AppError;".to_owned()]);
}

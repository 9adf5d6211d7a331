//! The JWT secret: refused when guessable, generated and kept on the embedded default.

use std::path::Path;

use super::{ConfigError, JWT_SECRET_FILE, MIN_JWT_SECRET_LEN};

/// A JWT secret anyone could guess: the `.env.example` placeholder (or any "change me" value),
/// or one with so few distinct characters that it is a pattern rather than random.
pub(super) fn is_weak_secret(secret: &str) -> bool {
    let lower = secret.to_ascii_lowercase();
    let placeholder = ["change-me", "changeme", "change_me", "replace-me", "placeholder", "your-secret", "example"]
        .iter()
        .any(|p| lower.contains(p));
    let distinct = secret.chars().collect::<std::collections::HashSet<_>>().len();
    placeholder || distinct < 10
}

/// The embedded default keeps its generated JWT secret in `DATA_DIR/jwt_secret` (mode 0600), so
/// tokens survive a restart without the operator configuring anything.
pub(super) fn load_or_create_secret(data_dir: &Path) -> Result<String, ConfigError> {
    let path = data_dir.join(JWT_SECRET_FILE);
    let io_err = |e: std::io::Error| {
        ConfigError::new("DATA_DIR", format!("cannot keep the JWT secret in {}: {e}", path.display()))
    };
    match std::fs::read_to_string(&path) {
        Ok(secret) if secret.trim().len() >= MIN_JWT_SECRET_LEN => return Ok(secret.trim().to_owned()),
        Ok(_) => {
            return Err(ConfigError::new(
                "JWT_SECRET",
                format!("{} is too short; delete it or set JWT_SECRET", path.display()),
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(e)),
    }
    std::fs::create_dir_all(data_dir).map_err(io_err)?;
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| io_err(std::io::Error::other(e.to_string())))?;
    let secret = hex::encode(raw);
    write_private(&path, secret.as_bytes()).map_err(io_err)?;
    Ok(secret)
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

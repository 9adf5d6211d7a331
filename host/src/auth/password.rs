//! Password hashing with argon2id at OWASP's recommended cost (19 MiB, 2 passes, 1 lane).
//!
//! Hashing is deliberately slow, so it runs on the blocking pool, never on an async worker.
//! A login for an unknown user verifies against a fixed dummy hash of the same cost, so the
//! answer takes as long as a wrong password: no user enumeration by timing.

use std::sync::LazyLock;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longer inputs are refused before hashing: argon2 of megabytes is a cheap denial of service.
pub const MAX_PASSWORD_BYTES: usize = 1024;

fn hasher() -> Argon2<'static> {
    let params = Params::new(Params::DEFAULT_M_COST, Params::DEFAULT_T_COST, Params::DEFAULT_P_COST, None)
        .unwrap_or(Params::DEFAULT);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A hash of a random value nobody knows, with the production parameters.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let mut secret = [0u8; 32];
    let _ = getrandom::fill(&mut secret);
    hash_blocking(&hex::encode(secret)).unwrap_or_default()
});

/// Why a password is refused, as a message for the `password` field.
pub fn check_policy(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!("must be at least {MIN_PASSWORD_CHARS} characters long"));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!("must be at most {MAX_PASSWORD_BYTES} bytes long"));
    }
    Ok(())
}

fn hash_blocking(password: &str) -> anyhow::Result<String> {
    hasher()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("argon2 hashing failed: {e}"))
}

fn verify_blocking(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => hasher().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) of `password`.
pub async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || hash_blocking(&password)).await?
}

/// Whether `password` matches `hash`; `None` verifies against the dummy hash and is always false.
pub async fn verify(password: String, hash: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || match hash {
        Some(hash) => verify_blocking(&password, &hash),
        None => {
            let _ = verify_blocking(&password, &DUMMY_HASH);
            false
        }
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_carry_owasp_parameters() {
        let hash = hash("correct horse".into()).await.expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(verify("correct horse".into(), Some(hash.clone())).await);
        assert!(!verify("correct horsE".into(), Some(hash.clone())).await);
        assert!(!verify("correct horse".into(), None).await, "the dummy never matches");
        assert!(!verify("x".into(), Some("not a phc string".into())).await);
        let again = super::hash("correct horse".into()).await.expect("hash");
        assert_ne!(hash, again, "salted");
    }

    #[test]
    fn policy_bounds_length() {
        assert!(check_policy("1234567").is_err());
        assert!(check_policy("12345678").is_ok());
        assert!(check_policy("éééééééé").is_ok(), "characters, not bytes");
        assert!(check_policy(&"x".repeat(1025)).is_err());
    }
}

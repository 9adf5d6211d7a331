//! Project API keys: `mbk_<prefix>_<secret>`, 12 hex characters of prefix (for lookup and for
//! people to tell keys apart) and 32 random bytes of secret. Only the SHA-256 of the whole key is
//! stored; the presented key's hash is compared in constant time.

use subtle::ConstantTimeEq;

use super::tokens::hash_secret;

/// A freshly made key: shown once, then only its prefix and hash exist.
pub struct NewKey {
    pub key: String,
    pub prefix: String,
    pub hash: String,
}

pub fn generate() -> NewKey {
    let mut prefix = [0u8; 6];
    let mut secret = [0u8; 32];
    getrandom::fill(&mut prefix).expect("the OS random source is available");
    getrandom::fill(&mut secret).expect("the OS random source is available");
    let prefix = hex::encode(prefix);
    let key = format!("mbk_{prefix}_{}", hex::encode(secret));
    NewKey { hash: hash_secret(&key), key, prefix }
}

/// The prefix of a well-formed key; `None` for anything else (answered 401 without a lookup).
pub fn prefix_of(key: &str) -> Option<&str> {
    let rest = key.strip_prefix("mbk_")?;
    let (prefix, secret) = rest.split_once('_')?;
    let hex =
        |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    (hex(prefix, 12) && hex(secret, 64)).then_some(prefix)
}

/// Whether `key` hashes to `stored_hash`, in time independent of where they differ.
pub fn matches(key: &str, stored_hash: &str) -> bool {
    hash_secret(key).as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_the_documented_shape_and_verify() {
        let k = generate();
        assert!(k.key.starts_with(&format!("mbk_{}_", k.prefix)));
        assert_eq!(k.key.len(), 4 + 12 + 1 + 64);
        assert_eq!(prefix_of(&k.key), Some(k.prefix.as_str()));
        assert!(matches(&k.key, &k.hash));
        let mut other = k.key.clone();
        other.replace_range(other.len() - 1.., if other.ends_with('0') { "1" } else { "0" });
        assert!(!matches(&other, &k.hash));
        assert_ne!(generate().key, k.key);
    }

    #[test]
    fn malformed_keys_have_no_prefix() {
        for bad in [
            "",
            "mbk_",
            "mbk_abc_def",
            "xyz_0123456789ab_00",
            "mbk_0123456789AB_",
            &format!("mbk_0123456789ab_{}", "g".repeat(64)),
        ] {
            assert_eq!(prefix_of(bad), None, "{bad}");
        }
    }
}

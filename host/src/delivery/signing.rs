//! Signed, expiring URLs for private projects on the filesystem store:
//! `{PUBLIC_BASE_URL}{path}?exp=UNIX&sig=BASE64URL`, where `sig` is the HMAC-SHA256 of the path
//! and the expiry under a key only the host holds. (On S3 the bucket checks its own presigned
//! URLs.)
//!
//! The key is derived from `JWT_SECRET` (HMAC of a fixed label), so every `api` process of a
//! deployment signs and verifies alike with nothing more to configure, and a URL signature is
//! never a token signature: the two are different keys. Rotating `JWT_SECRET` ends every signed
//! URL along with every session.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What the key is derived for (changing it ends every URL signed before).
const LABEL: &[u8] = b"mbk blob url signing v1";

/// Why a signed URL is refused (the answer is one 403 whatever it is; the reason is logged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("no signature")]
    Unsigned,
    #[error("the signature expired")]
    Expired,
    #[error("the signature does not match")]
    Forged,
}

/// The contract's 403, saying what to do about it.
impl From<Refused> for crate::error::Error {
    fn from(why: Refused) -> Self {
        crate::error::Error::Forbidden(match why {
            Refused::Unsigned => "this project's media needs a signed URL (take a fresh one from its file)".into(),
            Refused::Expired => "this signed URL has expired (take a fresh one from its file)".into(),
            Refused::Forged => "this URL's signature is not valid".into(),
        })
    }
}

#[derive(Clone)]
pub struct UrlSigner {
    key: [u8; 32],
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlSigner(<redacted>)")
    }
}

impl UrlSigner {
    pub fn new(jwt_secret: &str) -> UrlSigner {
        let mut mac = HmacSha256::new_from_slice(jwt_secret.as_bytes()).unwrap_or_else(|e| panic!("HMAC key: {e}"));
        mac.update(LABEL);
        UrlSigner { key: mac.finalize().into_bytes().into() }
    }

    fn mac(&self, path: &str, exp: i64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).unwrap_or_else(|e| panic!("HMAC key: {e}"));
        // The path and the expiry, apart: no path can be made to end in another's digits.
        mac.update(path.as_bytes());
        mac.update(b"\n");
        mac.update(exp.to_string().as_bytes());
        mac
    }

    /// The query (`exp=…&sig=…`) that lets `path` (e.g. `/blobs/{key}`) be fetched until `exp`.
    pub fn query(&self, path: &str, exp: i64) -> String {
        let sig = URL_SAFE_NO_PAD.encode(self.mac(path, exp).finalize().into_bytes());
        format!("exp={exp}&sig={sig}")
    }

    /// Whether `exp` and `sig` (from the query, as given) let `path` be fetched at `now`. The
    /// comparison is in constant time (`Mac::verify_slice`).
    pub fn verify(&self, path: &str, exp: Option<&str>, sig: Option<&str>, now: i64) -> Result<(), Refused> {
        let (Some(exp), Some(sig)) = (exp, sig) else { return Err(Refused::Unsigned) };
        // Digits only, no leading zero: `+5`, ` 5` or `05` would parse, and each URL has one
        // spelling.
        let exp_value = match exp.parse::<i64>() {
            Ok(v) if exp.bytes().all(|b| b.is_ascii_digit()) && !exp.starts_with('0') => v,
            _ => return Err(Refused::Forged),
        };
        let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| Refused::Forged)?;
        self.mac(path, exp_value).verify_slice(&sig).map_err(|_| Refused::Forged)?;
        // Checked after the signature: an expired URL is told apart only when it was genuine.
        if exp_value <= now { Err(Refused::Expired) } else { Ok(()) }
    }
}

/// The value of `name` in a raw query string, percent-decoding nothing (the values this module
/// writes need none; anything else fails the signature check).
pub fn query_value<'q>(query: Option<&'q str>, name: &str) -> Option<&'q str> {
    query?.split('&').find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_path_verifies_until_it_expires_and_nothing_else_does() {
        let signer = UrlSigner::new("a-secret-of-the-test-a-secret-of-the-test");
        let query = signer.query("/blobs/p-1/images/thumb/f.webp", 1_000);
        let (exp, sig) = (query_value(Some(&query), "exp"), query_value(Some(&query), "sig"));
        assert_eq!(exp, Some("1000"));
        let path = "/blobs/p-1/images/thumb/f.webp";
        assert_eq!(signer.verify(path, exp, sig, 999), Ok(()));
        assert_eq!(signer.verify(path, exp, sig, 1_000), Err(Refused::Expired));
        assert_eq!(signer.verify("/blobs/p-1/images/thumb/g.webp", exp, sig, 999), Err(Refused::Forged));
        assert_eq!(signer.verify(path, Some("2000"), sig, 999), Err(Refused::Forged));
        assert_eq!(signer.verify(path, Some("+1000"), sig, 999), Err(Refused::Forged));
        assert_eq!(signer.verify(path, Some("01000"), sig, 999), Err(Refused::Forged));
        assert_eq!(signer.verify(path, exp, Some("AAAA"), 999), Err(Refused::Forged));
        assert_eq!(signer.verify(path, exp, Some("not base64!"), 999), Err(Refused::Forged));
        assert_eq!(signer.verify(path, None, sig, 999), Err(Refused::Unsigned));
        assert_eq!(signer.verify(path, exp, None, 999), Err(Refused::Unsigned));
        let other = UrlSigner::new("another-secret-another-secret-another-secret");
        assert_eq!(other.verify(path, exp, sig, 999), Err(Refused::Forged));
    }

    #[test]
    fn query_values_are_found_by_their_whole_name() {
        assert_eq!(query_value(Some("exp=1&sig=abc"), "sig"), Some("abc"));
        assert_eq!(query_value(Some("xsig=1&sig=2"), "sig"), Some("2"));
        assert_eq!(query_value(Some("exp=1"), "sig"), None);
        assert_eq!(query_value(None, "sig"), None);
    }
}

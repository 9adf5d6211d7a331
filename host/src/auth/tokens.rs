//! Access tokens (HS256 JWT, claims carry the user id and role; the extractor checks both against
//! the database on every request) and refresh tokens (opaque random values, stored only as SHA-256 hashes).

use std::time::Duration;

use base64::Engine;
use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::db::users::Role;

const ISSUER: &str = "mbk";
const AUDIENCE: &str = "mbk-api";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    pub jti: Uuid,
}

/// Signs and verifies access tokens with the process's `JWT_SECRET`.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    access_ttl: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is invalid")]
    Invalid,
}

impl TokenKeys {
    pub fn new(secret: &str, access_ttl: Duration) -> anyhow::Result<Self> {
        let mut validation = Validation::new(Algorithm::HS256);
        // Only HS256: `alg: none` and algorithm confusion are refused before the signature check.
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
        validation.leeway = 0;
        Ok(Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()).map_err(|e| anyhow::anyhow!("JWT key: {e}"))?,
            decoding: DecodingKey::from_secret(secret.as_bytes()).map_err(|e| anyhow::anyhow!("JWT key: {e}"))?,
            validation,
            access_ttl,
        })
    }

    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
    }

    pub fn issue(&self, user_id: Uuid, role: Role) -> anyhow::Result<String> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: user_id,
            role,
            iat: now,
            exp: now + self.access_ttl.as_secs() as i64,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            jti: Uuid::now_v7(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| anyhow::anyhow!("cannot sign an access token: {e}"))
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })?;
        // `exp` is exclusive: a token is dead at the second it expires (and a zero TTL, used by
        // tests, makes tokens that are dead at birth).
        if data.claims.exp <= Utc::now().timestamp() {
            return Err(TokenError::Expired);
        }
        Ok(data.claims)
    }
}

/// A new refresh token: 32 random bytes, URL-safe, prefixed so it is recognisable in a leak scan.
pub fn new_refresh_token() -> String {
    new_secret("mbkr_")
}

/// 32 random bytes, base64url, after `prefix` (which says what the secret is for).
pub fn new_secret(prefix: &str) -> String {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).expect("the OS random source is available");
    format!("{prefix}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))
}

/// What the database keeps of a secret token: its SHA-256, hex.
pub fn hash_secret(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new("0123456789abcdef0123456789abcdef", Duration::from_secs(900)).expect("keys")
    }

    #[test]
    fn issued_tokens_verify() {
        let k = keys();
        let id = Uuid::now_v7();
        let token = k.issue(id, Role::Admin).expect("issue");
        let claims = k.verify(&token).expect("verify");
        assert_eq!(claims.sub, id);
        assert_eq!(claims.role, Role::Admin);
        assert_eq!(claims.exp - claims.iat, 900);
    }

    #[test]
    fn refuses_other_keys_tampering_none_and_expiry() {
        let k = keys();
        let token = k.issue(Uuid::now_v7(), Role::User).expect("issue");
        let other = TokenKeys::new("another-secret-another-secret-xx", Duration::from_secs(900)).expect("keys");
        assert!(matches!(other.verify(&token), Err(TokenError::Invalid)));

        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = String::from_utf8(engine.decode(&parts[1]).expect("b64")).expect("utf8");
        parts[1] = engine.encode(payload.replace("\"user\"", "\"su\""));
        assert!(matches!(k.verify(&parts.join(".")), Err(TokenError::Invalid)), "tampered payload");

        let none_header = engine.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let unsigned = format!("{none_header}.{}.", engine.encode(payload));
        assert!(matches!(k.verify(&unsigned), Err(TokenError::Invalid)), "alg none");

        let dead = TokenKeys::new("0123456789abcdef0123456789abcdef", Duration::ZERO).expect("keys");
        let token = dead.issue(Uuid::now_v7(), Role::User).expect("issue");
        assert!(matches!(k.verify(&token), Err(TokenError::Expired)));
        assert!(matches!(k.verify("garbage"), Err(TokenError::Invalid)));
    }

    #[test]
    fn refresh_tokens_are_random_and_hashed() {
        let a = new_refresh_token();
        let b = new_refresh_token();
        assert_ne!(a, b);
        assert!(a.starts_with("mbkr_") && a.len() == 5 + 43, "{a}");
        assert_eq!(hash_secret(&a).len(), 64);
        assert_ne!(hash_secret(&a), a);
    }
}

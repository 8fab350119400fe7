//! Credentials: Argon2id password hashes, HS256 access tokens, opaque refresh tokens and
//! API keys (the last two stored only as SHA-256 hashes).

use crate::error::{Error, Result};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;
use uuid::Uuid;

/// Prefix of refresh tokens, so leaked ones are recognisable.
pub const REFRESH_TOKEN_PREFIX: &str = "hlr_";
/// Prefix of API keys.
pub const API_KEY_PREFIX: &str = "hlk_";

/// `n` random bytes from the operating system's generator.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// A fresh opaque secret: `prefix` + 256 random bits.
pub fn new_secret(prefix: &str) -> String {
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(random_bytes::<32>()))
}

/// SHA-256 of a token, hex: what stores keep instead of the token.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    // Bytes first and one check at the end: a `push` per character cost 400 instructions
    // for a visitor hash.
    let mut text = vec![0u8; bytes.len() * 2];
    hex_into(bytes, &mut text);
    String::from_utf8(text).unwrap_or_default()
}

/// `bytes` in lower-case hex into `out` (two digits a byte, as far as `out` goes): a
/// table, not the formatting machinery, as every click's visitor passes here.
pub(crate) fn hex_into(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0x0f)];
    }
}

/// `successor` sealed under `old` (a refresh token and the one that replaced it): only
/// whoever holds `old` can open it, so a store may keep it without holding a usable
/// token. `old` is 256 random bits used once, so a keystream from HMAC-SHA256 under it is
/// a one-time pad.
pub fn seal_successor(old: &str, successor: &str) -> Vec<u8> {
    successor
        .bytes()
        .zip(keystream(old, successor.len()))
        .map(|(a, b)| a ^ b)
        .collect()
}

/// Opens what [`seal_successor`] sealed under `old`; `None` when it is not a token.
pub fn open_successor(old: &str, sealed: &[u8]) -> Option<String> {
    let bytes: Vec<u8> = sealed
        .iter()
        .zip(keystream(old, sealed.len()))
        .map(|(a, b)| a ^ b)
        .collect();
    String::from_utf8(bytes)
        .ok()
        .filter(|t| t.starts_with(REFRESH_TOKEN_PREFIX))
}

fn keystream(key: &str, len: usize) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    let mut stream = Vec::with_capacity(len + 32);
    let mut block = 0u32;
    while stream.len() < len {
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes())
            .unwrap_or_else(|_| Hmac::<Sha256>::new_from_slice(b"hoplink").expect("any key"));
        mac.update(b"hoplink sealed successor ");
        mac.update(&block.to_be_bytes());
        stream.extend_from_slice(&mac.finalize().into_bytes());
        block += 1;
    }
    stream.truncate(len);
    stream
}

/// Hashes a password with Argon2id (CPU-heavy: call from a blocking thread).
pub fn hash_password(password: &str) -> Result<String> {
    let salt =
        SaltString::encode_b64(&random_bytes::<16>()).map_err(|e| Error::backend("argon2", e))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::backend("argon2", e))
}

/// Checks a password against a stored hash; `None` checks against a dummy hash so that
/// an unknown email costs the same time as a wrong password.
pub fn verify_password(password: &str, stored: Option<&str>) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let hash = match stored {
        Some(h) => h,
        None => {
            DUMMY.get_or_init(|| hash_password("not a password anyone has").unwrap_or_default())
        }
    };
    let verified = PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false);
    verified && stored.is_some()
}

/// Claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user.
    pub sub: Uuid,
    /// The login (refresh-token family) it was issued for.
    pub sid: Uuid,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds.
    pub exp: i64,
}

/// Signs an HS256 JWT.
pub fn sign_access_token(secret: &[u8], claims: &AccessClaims) -> Result<String> {
    let key =
        jsonwebtoken::EncodingKey::from_secret(secret).map_err(|e| Error::backend("jwt", e))?;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &key,
    )
    .map_err(|e| Error::backend("jwt", e))
}

/// Verifies an HS256 JWT: only that algorithm (so neither `none` nor a public-key
/// algorithm can be slipped in), its signature, and its expiry against `now_unix` (the
/// service's clock, not the system's, so tests can move time).
pub fn verify_access_token(secret: &[u8], token: &str, now_unix: i64) -> Result<AccessClaims> {
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.validate_exp = false;
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp", "sub"]);
    let invalid = || Error::Unauthorized {
        reason: "invalid access token",
    };
    let key = jsonwebtoken::DecodingKey::from_secret(secret).map_err(|_| invalid())?;
    let claims = jsonwebtoken::decode::<AccessClaims>(token, &key, &validation)
        .map_err(|_| invalid())?
        .claims;
    if claims.exp <= now_unix {
        return Err(Error::Unauthorized {
            reason: "access token expired",
        });
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lower_case_two_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xab, 0xff]), "000fabff");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn password_round_trip() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", Some(&hash)));
        assert!(!verify_password("wrong horse", Some(&hash)));
        assert!(!verify_password("correct horse", None));
        assert!(!verify_password("x", Some("not a hash")));
    }

    #[test]
    fn jwt_round_trip_and_tampering() {
        let claims = AccessClaims {
            sub: Uuid::new_v4(),
            sid: Uuid::new_v4(),
            iat: 100,
            exp: 200,
        };
        let token = sign_access_token(b"secret", &claims).unwrap();
        assert_eq!(verify_access_token(b"secret", &token, 150).unwrap(), claims);
        assert!(verify_access_token(b"other", &token, 150).is_err());
        assert!(verify_access_token(b"secret", &token, 200).is_err());
        let mut forged = token.clone();
        forged.insert(token.find('.').unwrap() + 2, 'x');
        assert!(verify_access_token(b"secret", &forged, 150).is_err());
        assert!(verify_access_token(b"secret", "a.b", 150).is_err());
        assert!(verify_access_token(b"secret", "", 150).is_err());
    }

    #[test]
    fn jwt_refuses_other_algorithms_and_none() {
        let claims = AccessClaims {
            sub: Uuid::new_v4(),
            sid: Uuid::new_v4(),
            iat: 100,
            exp: 200,
        };
        let token = sign_access_token(b"secret", &claims).unwrap();
        let payload = token.split('.').nth(1).unwrap();
        let unsigned = |header: &str| format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(header));
        for header in [
            r#"{"alg":"none","typ":"JWT"}"#,
            r#"{"alg":"None","typ":"JWT"}"#,
            r#"{"alg":"HS512","typ":"JWT"}"#,
            r#"{"alg":"RS256","typ":"JWT"}"#,
        ] {
            assert!(
                verify_access_token(b"secret", &unsigned(header), 150).is_err(),
                "{header}"
            );
        }
        // A token signed with HS512 under the right secret is refused too.
        let hs512 = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(b"secret").unwrap(),
        )
        .unwrap();
        assert!(verify_access_token(b"secret", &hs512, 150).is_err());
        // The signature of the original token over a different header is refused.
        let signature = token.split('.').nth(2).unwrap();
        let swapped = format!(
            "{}.{payload}.{signature}",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT","kid":"x"}"#)
        );
        assert!(verify_access_token(b"secret", &swapped, 150).is_err());
    }

    #[test]
    fn successors_open_only_under_their_old_token() {
        let old = new_secret(REFRESH_TOKEN_PREFIX);
        let successor = new_secret(REFRESH_TOKEN_PREFIX);
        let sealed = seal_successor(&old, &successor);
        assert_ne!(
            sealed,
            successor.as_bytes(),
            "sealed, not stored in the clear"
        );
        assert_eq!(open_successor(&old, &sealed), Some(successor.clone()));
        let other = new_secret(REFRESH_TOKEN_PREFIX);
        assert_eq!(open_successor(&other, &sealed), None);
    }

    #[test]
    fn secrets_are_unique_and_hashed() {
        let a = new_secret(API_KEY_PREFIX);
        assert!(a.starts_with("hlk_") && a.len() > 40);
        assert_ne!(a, new_secret(API_KEY_PREFIX));
        assert_eq!(token_hash("x").len(), 64);
        assert_ne!(token_hash(&a), a);
    }
}

//! Secrets handed to users (API keys, workspace tokens, external keys): generated from the OS
//! random source with a prefix that says what they are, shown once, stored only as SHA-256.

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix of API keys (`Authorization: Bearer fdk_…`).
pub const API_KEY_PREFIX: &str = "fdk_";
/// Prefix of workspace tokens (CX Genie's `workspace_token`).
pub const WORKSPACE_TOKEN_PREFIX: &str = "fdw_";
/// An agent's own token: what their console or socket signs in with.
pub const AGENT_TOKEN_PREFIX: &str = "fda_";
/// Prefix of external API keys (ChatGenius's `api_key` in a booking body).
pub const EXTERNAL_KEY_PREFIX: &str = "fdx_";

/// A new secret: the prefix and 32 random bytes, base64url without padding.
pub fn generate(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// A random public identifier (not a secret): the prefix and 10 random bytes in hex.
pub fn public_id(prefix: &str) -> String {
    let mut bytes = [0u8; 10];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

/// The stored form of a secret: lowercase hex SHA-256.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Lowercase hex SHA-256 of any bytes.
pub fn hash_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Whether `secret` hashes to `stored`, compared in constant time.
pub fn verify(secret: &str, stored: &str) -> bool {
    hash(secret).as_bytes().ct_eq(stored.as_bytes()).into()
}

/// What may be shown of a secret after creation: its prefix and first characters.
pub fn display_prefix(secret: &str) -> String {
    secret.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_long_prefixed_and_distinct() {
        let a = generate(API_KEY_PREFIX);
        let b = generate(API_KEY_PREFIX);
        assert!(a.starts_with("fdk_"));
        assert_eq!(a.len(), 4 + 43, "32 bytes of base64url");
        assert_ne!(a, b);
    }

    #[test]
    fn verify_accepts_only_the_same_secret() {
        let key = generate(API_KEY_PREFIX);
        let stored = hash(&key);
        assert!(verify(&key, &stored));
        assert!(!verify(&format!("{key}x"), &stored));
        assert!(!verify("", &stored));
    }
}

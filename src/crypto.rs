//! Encryption of secrets the server must read back (webhook signing secrets), with a key that
//! never enters the database.
//!
//! The key is `FRONTDESK_SECRET_KEY` (32 bytes, base64) when set — every node of a cluster needs
//! the same one — or else `DATA_DIR/secret.key`, created on first start readable by its owner
//! only. Ciphertexts are ChaCha20-Poly1305 with a random nonce: `v1:` + base64(nonce ‖ sealed).

use std::path::Path;

use anyhow::Context as _;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

const PREFIX: &str = "v1:";
const NONCE_LEN: usize = 12;

#[derive(Clone)]
pub struct SecretBox {
    cipher: ChaCha20Poly1305,
    /// Signs links the server hands out (a visitor's attachment); derived from the key, so
    /// every node of a cluster signs alike and no ciphertext shares a key with a signature.
    link_key: [u8; 32],
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    pub fn new(key: [u8; 32]) -> Self {
        use sha2::Digest;
        let link_key =
            sha2::Sha256::new().chain_update(b"frontdesk link signing v1").chain_update(key).finalize().into();
        SecretBox { cipher: ChaCha20Poly1305::new(Key::from_slice(&key)), link_key }
    }

    /// A signature of `what` for a link: whoever holds the link may fetch what it names.
    pub fn sign_link(&self, what: &str) -> String {
        use hmac::Mac;
        let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.link_key).expect("any key length");
        mac.update(what.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// Whether `signature` is this server's signature of `what` (compared in constant time).
    pub fn verify_link(&self, what: &str, signature: &str) -> bool {
        use subtle::ConstantTimeEq;
        let expected = self.sign_link(what);
        expected.len() == signature.len() && bool::from(expected.as_bytes().ct_eq(signature.as_bytes()))
    }

    /// The configured key, or the data folder's key file (created if missing).
    pub fn load(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<SecretBox> {
        if let Some(text) = configured {
            return Ok(SecretBox::new(decode_key(text).context("FRONTDESK_SECRET_KEY")?));
        }
        let path = data_dir.join("secret.key");
        if let Ok(text) = std::fs::read_to_string(&path) {
            return Ok(SecretBox::new(decode_key(&text).with_context(|| format!("{}", path.display()))?));
        }
        std::fs::create_dir_all(data_dir)?;
        let key: [u8; 32] = ChaCha20Poly1305::generate_key(&mut OsRng).into();
        write_private(&path, &B64.encode(key))?;
        tracing::info!(path = %path.display(), "created the secret key for stored secrets");
        Ok(SecretBox::new(key))
    }

    pub fn seal(&self, plaintext: &str) -> String {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self.cipher.encrypt(&nonce, plaintext.as_bytes()).expect("encryption cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{PREFIX}{}", B64.encode(out))
    }

    pub fn open(&self, stored: &str) -> anyhow::Result<String> {
        let raw = B64.decode(stored.strip_prefix(PREFIX).context("unknown secret format")?)?;
        anyhow::ensure!(raw.len() > NONCE_LEN, "sealed secret is too short");
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let plain = self.cipher.decrypt(Nonce::from_slice(nonce), sealed).map_err(|_| {
            anyhow::anyhow!("sealed secret does not open with this key (FRONTDESK_SECRET_KEY changed?)")
        })?;
        Ok(String::from_utf8(plain)?)
    }
}

fn decode_key(text: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = B64.decode(text.trim()).context("the secret key must be base64")?;
    bytes.try_into().map_err(|_| anyhow::anyhow!("the secret key must be 32 bytes"))
}

fn write_private(path: &Path, content: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(content.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key() {
        let a = SecretBox::new([7; 32]);
        let sealed = a.seal("whsec_abc");
        assert!(!sealed.contains("whsec_abc"));
        assert_ne!(sealed, a.seal("whsec_abc"), "a fresh nonce every time");
        assert_eq!(a.open(&sealed).unwrap(), "whsec_abc");
        assert!(SecretBox::new([8; 32]).open(&sealed).is_err());
    }

    #[test]
    fn the_key_file_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = SecretBox::load(None, dir.path()).unwrap();
        let sealed = first.seal("s");
        let again = SecretBox::load(None, dir.path()).unwrap();
        assert_eq!(again.open(&sealed).unwrap(), "s");
        assert!(SecretBox::load(Some("short"), dir.path()).is_err());
    }
}

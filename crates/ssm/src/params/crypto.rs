//! Encryption at rest of SecureString parameter values: AES-256-GCM under one key generated on first
//! start in `<data_dir>/ssm/parameter.key` (32 random bytes, mode 0600). A sealed value is the base64
//! of nonce ‖ ciphertext ‖ tag, bound to the parameter's name as associated data, so a value copied
//! to another parameter does not open. This sealed form is also what reads without WithDecryption
//! return, so plaintext never leaves the process unless asked for.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::InternalError;

const KEY_FILE: &str = "parameter.key";
const KEY_LEN: usize = 32;

/// Seals and opens SecureString values.
pub struct Sealer {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl Sealer {
    /// Load the key from `dir`, generating it (0600) when absent.
    pub fn open(dir: &Path) -> Result<Sealer, InternalError> {
        let crypto = |e: std::io::Error| InternalError::Crypto(format!("{}: {e}", dir.display()));
        std::fs::create_dir_all(dir).map_err(crypto)?;
        let path = dir.join(KEY_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let rng = SystemRandom::new();
                let mut key = [0u8; KEY_LEN];
                rng.fill(&mut key)
                    .map_err(|_| InternalError::Crypto("no randomness".into()))?;
                write_private(&path, &key).map_err(crypto)?;
                key.to_vec()
            }
            Err(e) => return Err(crypto(e)),
        };
        Sealer::from_key(&bytes)
    }

    /// A sealer over a fresh key held only in memory (tests).
    pub fn ephemeral() -> Sealer {
        let mut key = [0u8; KEY_LEN];
        let _ = SystemRandom::new().fill(&mut key);
        match Sealer::from_key(&key) {
            Ok(s) => s,
            Err(_) => unreachable!("a 32-byte key is always valid for AES-256-GCM"),
        }
    }

    fn from_key(bytes: &[u8]) -> Result<Sealer, InternalError> {
        if bytes.len() != KEY_LEN {
            return Err(InternalError::Crypto(format!(
                "{KEY_FILE} holds {} bytes, expected {KEY_LEN}",
                bytes.len()
            )));
        }
        let unbound = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| InternalError::Crypto("bad key".into()))?;
        Ok(Sealer {
            key: LessSafeKey::new(unbound),
            rng: SystemRandom::new(),
        })
    }

    /// Seal `plaintext` for the parameter `name`.
    pub fn seal(&self, name: &str, plaintext: &str) -> Result<String, InternalError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| InternalError::Crypto("no randomness".into()))?;
        let mut buf = plaintext.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_bytes()),
                &mut buf,
            )
            .map_err(|_| InternalError::Crypto("seal failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(base64::engine::general_purpose::STANDARD.encode(out))
    }

    /// Open a value sealed for `name`.
    pub fn open_value(&self, name: &str, sealed: &str) -> Result<String, InternalError> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| InternalError::Crypto("sealed value is not base64".into()))?;
        if raw.len() < NONCE_LEN {
            return Err(InternalError::Crypto("sealed value too short".into()));
        }
        let (nonce, rest) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| InternalError::Crypto("bad nonce".into()))?;
        let mut buf = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(name.as_bytes()), &mut buf)
            .map_err(|_| InternalError::Crypto("sealed value does not open".into()))?;
        String::from_utf8(plain.to_vec())
            .map_err(|_| InternalError::Crypto("plaintext is not UTF-8".into()))
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let tmp = path.with_extension("key.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = opts.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding_to_the_name() {
        let s = Sealer::ephemeral();
        let sealed = s.seal("/db/password", "hunter2").unwrap();
        assert!(!sealed.contains("hunter2"));
        assert_eq!(s.open_value("/db/password", &sealed).unwrap(), "hunter2");
        assert!(s.open_value("/other", &sealed).is_err());
        // Two seals of one value differ (fresh nonce).
        assert_ne!(sealed, s.seal("/db/password", "hunter2").unwrap());
    }

    #[test]
    fn key_file_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = Sealer::open(dir.path()).unwrap();
        let sealed = a.seal("p", "v").unwrap();
        let b = Sealer::open(dir.path()).unwrap();
        assert_eq!(b.open_value("p", &sealed).unwrap(), "v");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn truncated_key_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(KEY_FILE), b"short").unwrap();
        assert!(Sealer::open(dir.path()).is_err());
    }
}

//! Message signing as SNS does it: an RSA key pair and a self-signed X.509 certificate, created on
//! first start and kept in the data directory (`sns-signing-key.pem`, mode 0600, and
//! `sns-signing-cert.pem`); the certificate is served at the `SigningCertURL`. Signature version 1
//! is SHA1withRSA, version 2 SHA256withRSA (PKCS #1 v1.5), over SNS's documented string to sign:
//! `name\nvalue\n` pairs, in byte order, of `Message`, `MessageId`, `Subject` (when present),
//! `Timestamp`, `TopicArn` and `Type` for notifications, and of `Message`, `MessageId`,
//! `SubscribeURL`, `Timestamp`, `Token`, `TopicArn` and `Type` for (un)subscribe confirmations.

use std::path::Path;

use parking_lot::Mutex;

use base64::Engine;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use sha1::Sha1;
use sha2::{Digest, Sha256};

pub const KEY_FILE: &str = "sns-signing-key.pem";
pub const CERT_FILE: &str = "sns-signing-cert.pem";
const KEY_BITS: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("rsa: {0}")]
    Rsa(String),
    #[error("certificate: {0}")]
    Cert(String),
    #[error("the server is stopping; the signing key was not written")]
    Closed,
}

/// The signing key and its certificate.
pub struct Signer {
    key: RsaPrivateKey,
    cert_pem: String,
    cert_name: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("cert_name", &self.cert_name)
            .finish_non_exhaustive()
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SigningError + '_ {
    move |source| SigningError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl Signer {
    /// Load the key pair from `dir`, or generate it (and the certificate) on first use. Slow the
    /// first time (RSA key generation): call it off the async executor. Every file operation
    /// runs while holding `gate`, and only while it reads `false`: the owner sets it to `true`
    /// when it stops, after which this never creates or writes a file (the data directory may be
    /// about to be removed) and fails with [`SigningError::Closed`] instead.
    pub fn load_or_create(dir: &Path, gate: &Mutex<bool>) -> Result<Signer, SigningError> {
        let key_path = dir.join(KEY_FILE);
        let cert_path = dir.join(CERT_FILE);
        let with_files = |f: &mut dyn FnMut() -> Result<(), SigningError>| {
            let closed = gate.lock();
            if *closed {
                return Err(SigningError::Closed);
            }
            f()
        };
        let mut key_pem = None;
        with_files(&mut || {
            std::fs::create_dir_all(dir).map_err(io_err(dir))?;
            match std::fs::read_to_string(&key_path) {
                Ok(pem) => key_pem = Some(pem),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&key_path)(e)),
            }
            Ok(())
        })?;
        let key_pem = match key_pem {
            Some(pem) => pem,
            None => {
                // the slow part runs outside the gate, so stopping never waits for it
                let pem = generate_key_pem()?;
                with_files(&mut || write_private(&key_path, &pem))?;
                tracing::info!(path = %key_path.display(), "generated the sns signing key");
                pem
            }
        };
        let cert_pem = match std::fs::read_to_string(&cert_path) {
            Ok(pem) if pem.contains("BEGIN CERTIFICATE") => pem,
            _ => {
                let pem = self_signed_cert(&key_pem)?;
                with_files(&mut || std::fs::write(&cert_path, &pem).map_err(io_err(&cert_path)))?;
                pem
            }
        };
        Signer::from_pem(&key_pem, cert_pem)
    }

    /// A signer from a PKCS #8 PEM key; the certificate is made when `cert_pem` is empty.
    pub fn from_pem(key_pem: &str, cert_pem: String) -> Result<Signer, SigningError> {
        let key =
            RsaPrivateKey::from_pkcs8_pem(key_pem).map_err(|e| SigningError::Rsa(e.to_string()))?;
        let cert_pem = if cert_pem.is_empty() {
            self_signed_cert(key_pem)?
        } else {
            cert_pem
        };
        let digest = Sha256::digest(cert_pem.as_bytes());
        let cert_name = format!(
            "SimpleNotificationService-{}.pem",
            hex::encode(&digest[..16])
        );
        Ok(Signer {
            key,
            cert_pem,
            cert_name,
        })
    }

    /// The certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// File name under which the certificate is served (`SimpleNotificationService-<hash>.pem`).
    pub fn cert_name(&self) -> &str {
        &self.cert_name
    }

    /// Base64 signature of `data` for `SignatureVersion` "1" (SHA1withRSA) or "2" (SHA256withRSA).
    pub fn sign(&self, version: &str, data: &str) -> Result<String, SigningError> {
        let sig = if version == "2" {
            let digest = Sha256::digest(data.as_bytes());
            self.key.sign(Pkcs1v15Sign::new::<Sha256>(), &digest)
        } else {
            let digest = Sha1::digest(data.as_bytes());
            self.key.sign(Pkcs1v15Sign::new::<Sha1>(), &digest)
        }
        .map_err(|e| SigningError::Rsa(e.to_string()))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(sig))
    }
}

/// A new RSA private key as PKCS #8 PEM.
pub fn generate_key_pem() -> Result<String, SigningError> {
    let mut rng = rand::rngs::OsRng;
    let key =
        RsaPrivateKey::new(&mut rng, KEY_BITS).map_err(|e| SigningError::Rsa(e.to_string()))?;
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| SigningError::Rsa(e.to_string()))?;
    Ok(pem.to_string())
}

fn write_private(path: &Path, contents: &str) -> Result<(), SigningError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io_err(path))?;
    file.write_all(contents.as_bytes()).map_err(io_err(path))?;
    file.sync_all().map_err(io_err(path))
}

fn self_signed_cert(key_pem: &str) -> Result<String, SigningError> {
    let cert_err = |e: rcgen::Error| SigningError::Cert(e.to_string());
    let key_pair = rcgen::KeyPair::from_pem(key_pem).map_err(cert_err)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, "opsloop SNS message signing");
    dn.push(rcgen::DnType::OrganizationName, "opsloop");
    params.distinguished_name = dn;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    let cert = params.self_signed(&key_pair).map_err(cert_err)?;
    Ok(cert.pem())
}

/// The string to sign for a message of type `kind` from `(name, value)` fields: the fields SNS
/// signs for that type, in byte order, each as `name\nvalue\n`; absent optional fields are skipped.
pub fn string_to_sign<'a>(kind: &str, get: impl Fn(&str) -> Option<&'a str>) -> String {
    let names: &[&str] = if kind == "Notification" {
        &[
            "Message",
            "MessageId",
            "Subject",
            "Timestamp",
            "TopicArn",
            "Type",
        ]
    } else {
        &[
            "Message",
            "MessageId",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type",
        ]
    };
    let mut out = String::new();
    for name in names {
        if let Some(value) = get(name) {
            out.push_str(name);
            out.push('\n');
            out.push_str(value);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::RsaPublicKey;

    #[test]
    fn string_to_sign_orders_fields_and_skips_absent_subject() {
        let fields = [
            ("Type", "Notification"),
            ("Message", "hi"),
            ("MessageId", "m"),
            ("Timestamp", "t"),
            ("TopicArn", "a"),
        ];
        let get = |n: &str| fields.iter().find(|(k, _)| *k == n).map(|(_, v)| *v);
        assert_eq!(
            string_to_sign("Notification", get),
            "Message\nhi\nMessageId\nm\nTimestamp\nt\nTopicArn\na\nType\nNotification\n"
        );
        let fields = [
            ("Type", "SubscriptionConfirmation"),
            ("Message", "m"),
            ("MessageId", "i"),
            ("Token", "tok"),
            ("SubscribeURL", "u"),
            ("Timestamp", "t"),
            ("TopicArn", "a"),
        ];
        let get = |n: &str| fields.iter().find(|(k, _)| *k == n).map(|(_, v)| *v);
        assert_eq!(
            string_to_sign("SubscriptionConfirmation", get),
            "Message\nm\nMessageId\ni\nSubscribeURL\nu\nTimestamp\nt\nToken\ntok\nTopicArn\na\nType\nSubscriptionConfirmation\n"
        );
    }

    #[test]
    fn a_closed_gate_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let err = Signer::load_or_create(&keys, &Mutex::new(true)).unwrap_err();
        assert!(matches!(err, SigningError::Closed), "{err}");
        assert!(
            !keys.exists(),
            "no directory is created once the gate is closed"
        );
    }

    #[test]
    fn keys_persist_with_private_mode_and_signatures_verify() {
        let dir = tempfile::tempdir().unwrap();
        let signer = Signer::load_or_create(dir.path(), &Mutex::new(false)).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(signer.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(signer.cert_name().starts_with("SimpleNotificationService-"));
        let again = Signer::load_or_create(dir.path(), &Mutex::new(false)).unwrap();
        assert_eq!(
            again.cert_pem(),
            signer.cert_pem(),
            "the second start reuses the key and certificate"
        );

        let public = RsaPublicKey::from(&signer.key);
        let b64 = base64::engine::general_purpose::STANDARD;
        let sig1 = b64.decode(signer.sign("1", "data").unwrap()).unwrap();
        public
            .verify(Pkcs1v15Sign::new::<Sha1>(), &Sha1::digest(b"data"), &sig1)
            .unwrap();
        let sig2 = b64.decode(signer.sign("2", "data").unwrap()).unwrap();
        public
            .verify(
                Pkcs1v15Sign::new::<Sha256>(),
                &Sha256::digest(b"data"),
                &sig2,
            )
            .unwrap();
        assert!(public
            .verify(
                Pkcs1v15Sign::new::<Sha256>(),
                &Sha256::digest(b"other"),
                &sig2
            )
            .is_err());
    }
}

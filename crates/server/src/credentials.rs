//! The server's key pair: taken from the configuration, or generated on first start and kept in
//! `<data_dir>/credentials.json` (mode 0600), plus the [`CredentialStore`] the wire gateway verifies
//! signatures against and the `aws configure` snippet shown to the user.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use opsloop_wire::{CredentialStore, Credentials};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::config::Config;

/// File name of the generated key pair inside the data directory.
pub const CREDENTIALS_FILE: &str = "credentials.json";

/// Characters of a generated access key id after its `AKIA` prefix (as AWS ids use).
const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// Characters of a generated secret access key.
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Where the key pair in use came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `access_key_id` / `secret_access_key` were configured.
    Configured,
    /// Read from an existing `credentials.json`.
    Stored,
    /// Generated just now and written to `credentials.json` (first start).
    Generated,
}

/// `credentials.json` on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredKeys {
    access_key_id: String,
    secret_access_key: String,
}

/// A new random key pair: a 20-character `AKIA…` id and a 40-character secret, from the OS RNG.
pub fn generate() -> (String, String) {
    let mut rng = rand::rngs::OsRng;
    let mut pick = |alphabet: &[u8], n: usize| -> String {
        (0..n)
            .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
            .collect()
    };
    let id = format!("AKIA{}", pick(ID_ALPHABET, 16));
    let secret = pick(SECRET_ALPHABET, 40);
    (id, secret)
}

/// The path of the key-pair file in `data_dir`.
pub fn file_path(data_dir: &Path) -> PathBuf {
    data_dir.join(CREDENTIALS_FILE)
}

/// Read `credentials.json` from `data_dir`, if it exists.
pub fn load(data_dir: &Path) -> Result<Option<(String, String)>> {
    let path = file_path(data_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let keys: StoredKeys = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid key file", path.display()))?;
    if keys.access_key_id.is_empty() || keys.secret_access_key.is_empty() {
        bail!("{} has an empty key", path.display());
    }
    Ok(Some((keys.access_key_id, keys.secret_access_key)))
}

/// Write the key pair to `data_dir/credentials.json` with mode 0600, atomically (temp file, fsync,
/// rename, fsync of the directory).
fn store(data_dir: &Path, id: &str, secret: &str) -> Result<()> {
    let path = file_path(data_dir);
    let tmp = data_dir.join(format!(".{CREDENTIALS_FILE}.tmp"));
    let body = serde_json::to_vec_pretty(&StoredKeys {
        access_key_id: id.to_string(),
        secret_access_key: secret.to_string(),
    })?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    #[cfg(unix)]
    {
        // The mode given to open() is masked by the umask; make sure it is exactly 0600.
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(&body)?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    if let Ok(dir) = std::fs::File::open(data_dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// The key pair to use: configured, else stored in `data_dir`, else (when `generate_missing`)
/// generated and stored. `None` only when nothing is configured or stored and `generate_missing` is
/// false (any-key mode does not need a key pair).
pub fn resolve(
    config: &Config,
    data_dir: &Path,
    generate_missing: bool,
) -> Result<Option<(Credentials, Origin)>> {
    let creds = |id: String, secret: String| Credentials {
        access_key_id: id,
        secret_access_key: secret,
        account_id: config.account_id.clone(),
    };
    if let (Some(id), Some(secret)) = (&config.access_key_id, &config.secret_access_key) {
        return Ok(Some((
            creds(id.clone(), secret.clone()),
            Origin::Configured,
        )));
    }
    if let Some((id, secret)) = load(data_dir)? {
        return Ok(Some((creds(id, secret), Origin::Stored)));
    }
    if !generate_missing {
        return Ok(None);
    }
    let (id, secret) = generate();
    store(data_dir, &id, &secret)?;
    Ok(Some((creds(id, secret), Origin::Generated)))
}

/// The endpoint URL clients should use for a listen address (`0.0.0.0`/`::` become loopback).
pub fn endpoint_url(listen: std::net::SocketAddr) -> String {
    let ip = match listen.ip() {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => {
            std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
        }
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => {
            std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
        }
        ip => ip,
    };
    format!("http://{}", std::net::SocketAddr::new(ip, listen.port()))
}

/// AWS CLI profile name the snippet configures.
pub const PROFILE: &str = "opsloop";

/// A ready-to-paste snippet that configures an `opsloop` AWS CLI profile (key pair, region and
/// endpoint) and selects it, leaving the default profile alone.
pub fn configure_snippet(creds: &Credentials, endpoint: &str) -> String {
    format!(
        "aws configure set aws_access_key_id {id} --profile {PROFILE}\n\
         aws configure set aws_secret_access_key {secret} --profile {PROFILE}\n\
         aws configure set region us-east-1 --profile {PROFILE}\n\
         aws configure set endpoint_url {endpoint} --profile {PROFILE}\n\
         export AWS_PROFILE={PROFILE}\n\
         # without the profile: export AWS_ENDPOINT_URL={endpoint} (or pass --endpoint-url {endpoint})\n",
        id = creds.access_key_id,
        secret = creds.secret_access_key,
    )
}

/// A [`CredentialStore`] holding at most one key pair.
#[derive(Debug, Clone, Default)]
pub struct SingleKey {
    creds: Option<Credentials>,
}

impl SingleKey {
    pub fn new(creds: Option<Credentials>) -> Self {
        SingleKey { creds }
    }
}

impl CredentialStore for SingleKey {
    fn lookup(&self, access_key_id: &str) -> Option<Credentials> {
        self.creds
            .as_ref()
            .filter(|c| c.access_key_id == access_key_id)
            .cloned()
    }
}

/// How [`WithNodeKeys`] finds keys it does not hold: access key id → (secret, account).
pub type KeyLookup = dyn Fn(&str) -> Option<(String, String)> + Send + Sync;

/// Service id (model `serviceId`) of the managed-node agent protocol.
const AGENT_SERVICE: &str = "Opsloop Agent";

/// What a managed node's own key (`AKMI…`) may call: the agent protocol, and publishing metrics
/// and logs into the node's account (what the monitoring agent calls). Everything else is refused.
pub const NODE_KEY_OPERATIONS: &[(&str, &str)] = &[
    (AGENT_SERVICE, "UpdateInstanceInformation"),
    (AGENT_SERVICE, "GetMessages"),
    (AGENT_SERVICE, "SendReply"),
    ("CloudWatch", "PutMetricData"),
    ("CloudWatch Logs", "CreateLogGroup"),
    ("CloudWatch Logs", "CreateLogStream"),
    ("CloudWatch Logs", "PutLogEvents"),
    ("CloudWatch Logs", "PutRetentionPolicy"),
    ("CloudWatch Logs", "DescribeLogStreams"),
];

/// What an activation id (signing with its code's hash) may call: registration only.
pub const ACTIVATION_OPERATIONS: &[(&str, &str)] = &[(AGENT_SERVICE, "RegisterManagedInstance")];

/// Prefix of the access key ids issued to managed nodes.
const NODE_KEY_PREFIX: &str = "AKMI";

/// The server's key pair plus keys issued at runtime: the managed nodes' own keys and activation
/// ids (looked up in the SSM store; see `opsloop_ssm::commands::lookup_key`), both mapped to the
/// real account they belong to.
///
/// Rule: the server's key may do everything; a runtime key is a restricted principal —
/// [`CredentialStore::permits`] allows a node key only [`NODE_KEY_OPERATIONS`] and an activation
/// id only [`ACTIVATION_OPERATIONS`], and the gateway answers anything else with
/// `AccessDeniedException`. (The agent service further checks that a node names only itself.)
pub struct WithNodeKeys {
    main: SingleKey,
    lookup: Box<KeyLookup>,
}

impl WithNodeKeys {
    pub fn new(main: SingleKey, lookup: Box<KeyLookup>) -> Self {
        WithNodeKeys { main, lookup }
    }
}

impl CredentialStore for WithNodeKeys {
    fn lookup(&self, access_key_id: &str) -> Option<Credentials> {
        if let Some(c) = self.main.lookup(access_key_id) {
            return Some(c);
        }
        (self.lookup)(access_key_id).map(|(secret, account)| Credentials {
            access_key_id: access_key_id.to_string(),
            secret_access_key: secret,
            account_id: account,
        })
    }

    fn permits(&self, access_key_id: &str, service_id: &str, operation: &str) -> bool {
        if self.main.lookup(access_key_id).is_some() {
            return true;
        }
        let allowed = if access_key_id.starts_with(NODE_KEY_PREFIX) {
            NODE_KEY_OPERATIONS
        } else {
            ACTIVATION_OPERATIONS
        };
        allowed
            .iter()
            .any(|&(s, o)| s == service_id && o == operation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_look_like_aws_keys() {
        let (id, secret) = generate();
        assert_eq!(id.len(), 20);
        assert!(id.starts_with("AKIA"));
        assert!(id[4..].bytes().all(|b| ID_ALPHABET.contains(&b)));
        assert_eq!(secret.len(), 40);
        assert!(secret.bytes().all(|b| SECRET_ALPHABET.contains(&b)));
        assert_ne!(generate(), (id, secret), "two generated pairs must differ");
    }

    #[test]
    fn first_start_generates_then_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::defaults();
        let (first, origin) = resolve(&config, dir.path(), true).unwrap().unwrap();
        assert_eq!(origin, Origin::Generated);
        assert_eq!(first.account_id, "000000000000");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(file_path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (again, origin) = resolve(&config, dir.path(), true).unwrap().unwrap();
        assert_eq!(origin, Origin::Stored);
        assert_eq!(again, first);
    }

    #[test]
    fn configured_keys_win_and_any_key_needs_none() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::defaults();
        assert!(resolve(&config, dir.path(), false).unwrap().is_none());
        assert!(
            !file_path(dir.path()).exists(),
            "nothing generated when not asked"
        );
        config.access_key_id = Some("AKIDEXAMPLE".into());
        config.secret_access_key = Some("s3cret".into());
        config.account_id = "123456789012".into();
        let (c, origin) = resolve(&config, dir.path(), true).unwrap().unwrap();
        assert_eq!(origin, Origin::Configured);
        assert_eq!(c.access_key_id, "AKIDEXAMPLE");
        assert_eq!(c.account_id, "123456789012");
        assert!(!file_path(dir.path()).exists());
    }

    #[test]
    fn corrupt_key_file_is_an_error_not_a_silent_regeneration() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(file_path(dir.path()), "not json").unwrap();
        assert!(resolve(&Config::defaults(), dir.path(), true).is_err());
    }

    #[test]
    fn store_lookup_matches_only_its_key() {
        let creds = Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "s".into(),
            account_id: "000000000000".into(),
        };
        let store = SingleKey::new(Some(creds.clone()));
        assert_eq!(store.lookup("AKIDEXAMPLE"), Some(creds));
        assert_eq!(store.lookup("AKIDOTHER"), None);
        assert_eq!(SingleKey::new(None).lookup("AKIDEXAMPLE"), None);
    }

    #[test]
    fn node_keys_are_found_after_the_server_key() {
        let main = Credentials {
            access_key_id: "AKIDMAIN".into(),
            secret_access_key: "m".into(),
            account_id: "000000000000".into(),
        };
        let store = WithNodeKeys::new(
            SingleKey::new(Some(main.clone())),
            Box::new(|id: &str| {
                (id == "AKMINODE").then(|| ("n".to_string(), "111111111111".to_string()))
            }),
        );
        assert_eq!(store.lookup("AKIDMAIN"), Some(main));
        let node = store.lookup("AKMINODE").unwrap();
        assert_eq!(
            (node.secret_access_key.as_str(), node.account_id.as_str()),
            ("n", "111111111111")
        );
        assert_eq!(store.lookup("AKIDOTHER"), None);
    }

    fn node_store() -> WithNodeKeys {
        let main = Credentials {
            access_key_id: "AKIDMAIN".into(),
            secret_access_key: "m".into(),
            account_id: "000000000000".into(),
        };
        WithNodeKeys::new(
            SingleKey::new(Some(main)),
            Box::new(|id: &str| {
                matches!(id, "AKMINODE" | "6f1c2d3e-0000-4000-8000-000000000001")
                    .then(|| ("n".to_string(), "000000000000".to_string()))
            }),
        )
    }

    #[test]
    fn node_keys_act_in_the_real_account_but_only_publish() {
        let store = node_store();
        let node = store.lookup("AKMINODE").unwrap();
        assert_eq!(node.account_id, "000000000000", "the node's real account");
        for (svc, op) in [
            ("CloudWatch", "PutMetricData"),
            ("CloudWatch Logs", "PutLogEvents"),
            ("CloudWatch Logs", "CreateLogGroup"),
            ("CloudWatch Logs", "CreateLogStream"),
            ("CloudWatch Logs", "PutRetentionPolicy"),
            ("Opsloop Agent", "UpdateInstanceInformation"),
            ("Opsloop Agent", "GetMessages"),
            ("Opsloop Agent", "SendReply"),
        ] {
            assert!(store.permits("AKMINODE", svc, op), "{svc}:{op}");
        }
        for (svc, op) in [
            ("CloudWatch", "DeleteAlarms"),
            ("CloudWatch", "PutMetricAlarm"),
            ("CloudWatch", "GetMetricData"),
            ("CloudWatch Logs", "DeleteLogGroup"),
            ("CloudWatch Logs", "GetLogEvents"),
            ("SSM", "GetParameter"),
            ("SSM", "SendCommand"),
            ("SNS", "Publish"),
            ("Opsloop Agent", "RegisterManagedInstance"),
            // Same operation name, other service.
            ("SSM", "UpdateInstanceInformation"),
        ] {
            assert!(!store.permits("AKMINODE", svc, op), "{svc}:{op}");
        }
    }

    #[test]
    fn activation_ids_only_register_and_the_server_key_does_everything() {
        let store = node_store();
        let act = "6f1c2d3e-0000-4000-8000-000000000001";
        assert!(store.permits(act, "Opsloop Agent", "RegisterManagedInstance"));
        assert!(!store.permits(act, "Opsloop Agent", "GetMessages"));
        assert!(!store.permits(act, "CloudWatch", "PutMetricData"));
        assert!(store.permits("AKIDMAIN", "CloudWatch", "DeleteAlarms"));
        assert!(store.permits("AKIDMAIN", "SSM", "GetParameter"));
        // SingleKey keeps the trait's default.
        assert!(SingleKey::new(None).permits("anything", "SSM", "GetParameter"));
    }

    #[test]
    fn snippet_and_endpoint() {
        let creds = Credentials {
            access_key_id: "AKIAEXAMPLE".into(),
            secret_access_key: "sec/ret".into(),
            account_id: "000000000000".into(),
        };
        let url = endpoint_url("0.0.0.0:4566".parse().unwrap());
        assert_eq!(url, "http://127.0.0.1:4566");
        assert_eq!(endpoint_url("[::1]:99".parse().unwrap()), "http://[::1]:99");
        let s = configure_snippet(&creds, &url);
        assert!(s.contains("aws configure set aws_access_key_id AKIAEXAMPLE --profile opsloop\n"));
        assert!(s.contains("aws configure set aws_secret_access_key sec/ret --profile opsloop\n"));
        assert!(
            s.contains("aws configure set endpoint_url http://127.0.0.1:4566 --profile opsloop\n")
        );
        assert!(s.contains("export AWS_PROFILE=opsloop\n"));
        assert!(s.contains("AWS_ENDPOINT_URL=http://127.0.0.1:4566"));
    }
}

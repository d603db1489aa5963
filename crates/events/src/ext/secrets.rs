//! Connection secrets (API key values, passwords, OAuth client secrets, parameters marked
//! `IsValueSecret`): sealed with ChaCha20-Poly1305 under a random key kept in the control store, in
//! a table of their own, so neither Describe/List answers nor a glance at the connection records
//! show them. Each connection names its secret with an opsloop "Secrets Manager" ARN, as AWS does.

use opsloop_core::ApiError;
use opsloop_store::{ControlStore, WriteOp};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use super::common::{store_error, T_META, T_SECRETS};
use super::connections::HttpParams;

const KEY_ROW: &str = "secret-key";

/// The secret part of a connection.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct Secrets {
    #[serde(default)]
    pub api_key_value: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub client_secret: Option<String>,
    /// The full invocation parameters (secret values included).
    #[serde(default)]
    pub invocation: HttpParams,
    /// The full OAuth request parameters (secret values included).
    #[serde(default)]
    pub oauth_http: HttpParams,
}

fn internal(what: &str) -> ApiError {
    tracing::error!(what, "events ext: secret sealing failed");
    ApiError::internal()
}

/// The sealing key, created on first use (an `Insert`, so two racing creators agree on one).
fn key(control: &dyn ControlStore) -> Result<LessSafeKey, ApiError> {
    let bytes = match control.get(T_META, KEY_ROW).map_err(store_error)? {
        Some(b) => b,
        None => {
            let mut fresh = vec![0u8; 32];
            SystemRandom::new()
                .fill(&mut fresh)
                .map_err(|_| internal("random"))?;
            let insert = WriteOp::Insert {
                table: T_META.into(),
                key: KEY_ROW.into(),
                value: fresh.clone(),
            };
            match control.batch(vec![insert]) {
                Ok(()) => fresh,
                Err(_) => control
                    .get(T_META, KEY_ROW)
                    .map_err(store_error)?
                    .ok_or_else(|| internal("key vanished"))?,
            }
        }
    };
    let unbound = UnboundKey::new(&CHACHA20_POLY1305, &bytes).map_err(|_| internal("key"))?;
    Ok(LessSafeKey::new(unbound))
}

/// Seal `secrets` for the row `secret_arn` (the ARN is bound in as associated data).
pub(crate) fn seal(
    control: &dyn ControlStore,
    secret_arn: &str,
    secrets: &Secrets,
) -> Result<Vec<u8>, ApiError> {
    let key = key(control)?;
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| internal("random"))?;
    let mut data = serde_json::to_vec(secrets).map_err(|_| internal("encode"))?;
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(secret_arn.as_bytes()),
        &mut data,
    )
    .map_err(|_| internal("seal"))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&data);
    Ok(out)
}

/// A write op storing sealed `secrets` under `secret_arn`.
pub(crate) fn put_op(
    control: &dyn ControlStore,
    secret_arn: &str,
    secrets: &Secrets,
) -> Result<WriteOp, ApiError> {
    Ok(WriteOp::Put {
        table: T_SECRETS.into(),
        key: secret_arn.into(),
        value: seal(control, secret_arn, secrets)?,
    })
}

/// Read and open the secrets stored under `secret_arn` (empty when none are stored).
pub(crate) fn load(control: &dyn ControlStore, secret_arn: &str) -> Result<Secrets, ApiError> {
    let Some(sealed) = control.get(T_SECRETS, secret_arn).map_err(store_error)? else {
        return Ok(Secrets::default());
    };
    open(control, secret_arn, sealed)
}

fn open(
    control: &dyn ControlStore,
    secret_arn: &str,
    sealed: Vec<u8>,
) -> Result<Secrets, ApiError> {
    if sealed.len() < NONCE_LEN {
        return Err(internal("short secret"));
    }
    let key = key(control)?;
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&sealed[..NONCE_LEN]);
    let mut data = sealed[NONCE_LEN..].to_vec();
    let plain = key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(secret_arn.as_bytes()),
            &mut data,
        )
        .map_err(|_| internal("open"))?;
    serde_json::from_slice(plain).map_err(|_| internal("decode"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opsloop_store::SqliteStore;

    #[test]
    fn sealed_secrets_open_again_and_are_not_plain() {
        let store = SqliteStore::memory().unwrap();
        let secrets = Secrets {
            password: Some("hunter2-very-secret".into()),
            ..Default::default()
        };
        store
            .batch(vec![put_op(&store, "arn:s", &secrets).unwrap()])
            .unwrap();
        let raw = store.get(T_SECRETS, "arn:s").unwrap().unwrap();
        assert!(!String::from_utf8_lossy(&raw).contains("hunter2"));
        assert_eq!(load(&store, "arn:s").unwrap(), secrets);
        // Bound to its ARN: the same bytes under another name do not open.
        store.put(T_SECRETS, "arn:other", &raw).unwrap();
        assert!(load(&store, "arn:other").is_err());
        assert_eq!(load(&store, "arn:none").unwrap(), Secrets::default());
    }
}

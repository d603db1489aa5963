//! Opaque pagination tokens: a small JSON payload, checksummed and base64url-encoded, so that a
//! garbled or hand-made token is recognised as invalid rather than misread.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Serialize;

const VERSION: &str = "1";

/// 64-bit FNV-1a.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A stable fingerprint of a JSON document (its serialisation with ordered keys).
pub fn fingerprint(v: &serde_json::Value) -> u64 {
    fnv1a(v.to_string().as_bytes())
}

/// Encode a payload as an opaque token.
pub fn encode<T: Serialize>(payload: &T) -> String {
    let json = serde_json::to_vec(payload).unwrap_or_default();
    let sum = fnv1a(&json);
    format!("{VERSION}.{}.{sum:016x}", URL_SAFE_NO_PAD.encode(&json))
}

/// Decode a token made by [`encode`]; `None` for anything else.
pub fn decode<T: DeserializeOwned>(token: &str) -> Option<T> {
    let mut parts = token.split('.');
    let (version, body, sum) = (parts.next()?, parts.next()?, parts.next()?);
    if version != VERSION || parts.next().is_some() {
        return None;
    }
    let json = URL_SAFE_NO_PAD.decode(body).ok()?;
    if format!("{:016x}", fnv1a(&json)) != sum {
        return None;
    }
    serde_json::from_slice(&json).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct P {
        offset: u64,
        name: String,
    }

    #[test]
    fn round_trip() {
        let p = P {
            offset: 42,
            name: "x/y".into(),
        };
        assert_eq!(decode::<P>(&encode(&p)), Some(p));
    }

    #[test]
    fn garbage_and_tampering_are_rejected() {
        let good = encode(&P {
            offset: 1,
            name: "a".into(),
        });
        assert_eq!(decode::<P>("garbage"), None);
        assert_eq!(decode::<P>(""), None);
        let mut tampered = good.clone().into_bytes();
        let i = tampered.len() / 2;
        tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
        assert_eq!(decode::<P>(&String::from_utf8(tampered).unwrap()), None);
        assert_eq!(decode::<P>(&format!("{good}.x")), None);
    }

    #[test]
    fn fingerprints_differ_by_content() {
        assert_ne!(
            fingerprint(&serde_json::json!({"a": 1})),
            fingerprint(&serde_json::json!({"a": 2}))
        );
        assert_eq!(
            fingerprint(&serde_json::json!({"a": 1})),
            fingerprint(&serde_json::json!({"a": 1}))
        );
    }
}

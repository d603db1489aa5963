//! Reading and writing the protocol-neutral documents (see `opsloop_core::Service`): numbers that
//! may arrive as the special strings `NaN`/`Infinity`/`-Infinity`, epoch-second timestamps, and
//! CloudWatch-style rendering of doubles in messages.

use opsloop_core::Value;
use serde_json::{Map, Number};

/// A double from the document. JSON cannot carry NaN or infinities, so protocols that can (CBOR,
/// the query protocol's `NaN` text) hand them over as the strings AWS JSON protocols use.
#[inline]
pub fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

/// Epoch seconds (fractional allowed) to milliseconds, saturating far outside any sane range.
pub fn secs_to_ms(secs: f64) -> i64 {
    let ms = (secs * 1000.0).round();
    if ms.is_nan() {
        0
    } else {
        ms.clamp(i64::MIN as f64 / 2.0, i64::MAX as f64 / 2.0) as i64
    }
}

/// Milliseconds since the epoch as an epoch-seconds number (integral when whole).
pub fn ms_to_value(ms: i64) -> Value {
    if ms % 1000 == 0 {
        Value::Number(Number::from(ms / 1000))
    } else {
        f64_value(ms as f64 / 1000.0)
    }
}

/// A double as a document number; non-finite values become the special strings.
pub fn f64_value(v: f64) -> Value {
    match Number::from_f64(v) {
        Some(n) => Value::Number(n),
        None if v.is_nan() => Value::String("NaN".into()),
        None if v > 0.0 => Value::String("Infinity".into()),
        None => Value::String("-Infinity".into()),
    }
}

/// A double as CloudWatch prints it in error messages (Java's `Double.toString` style).
pub fn java_double(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e7).contains(&a) {
        let s = format!("{v:E}");
        match s.split_once('E') {
            Some((mantissa, exp)) if !mantissa.contains('.') => format!("{mantissa}.0E{exp}"),
            _ => s,
        }
    } else {
        let s = format!("{v}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    }
}

/// `(name, value)` pairs as a `Dimensions` list.
/// A `Dimensions` list (`[{"Name": …, "Value": …}]`) as `(name, value)` pairs, in input order;
/// entries missing either string are skipped.
pub fn dimensions_of(v: Option<&Value>) -> Vec<(String, String)> {
    v.and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|d| {
                    Some((
                        d.get("Name")?.as_str()?.to_string(),
                        d.get("Value")?.as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn dimensions_value(dims: &[(String, String)]) -> Value {
    Value::Array(
        dims.iter()
            .map(|(n, v)| {
                let mut m = Map::new();
                m.insert("Name".into(), Value::String(n.clone()));
                m.insert("Value".into(), Value::String(v.clone()));
                Value::Object(m)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn special_strings_are_doubles() {
        assert!(as_f64(&json!("NaN")).unwrap().is_nan());
        assert_eq!(as_f64(&json!("-Infinity")), Some(f64::NEG_INFINITY));
        assert_eq!(as_f64(&json!(2.5)), Some(2.5));
        assert_eq!(as_f64(&json!("2.5")), None);
    }

    #[test]
    fn timestamps_round_trip_through_ms() {
        assert_eq!(secs_to_ms(1.2345), 1235);
        assert_eq!(ms_to_value(60_000), json!(60));
        assert_eq!(ms_to_value(1_500), json!(1.5));
    }

    #[test]
    fn doubles_print_like_cloudwatch() {
        assert_eq!(java_double(f64::NAN), "NaN");
        assert_eq!(java_double(f64::INFINITY), "Infinity");
        assert_eq!(java_double(1e200), "1.0E200");
        assert_eq!(java_double(2.5e-9), "2.5E-9");
        assert_eq!(java_double(3.0), "3.0");
        assert_eq!(java_double(0.25), "0.25");
    }

    #[test]
    fn non_finite_values_become_strings() {
        assert_eq!(f64_value(f64::INFINITY), json!("Infinity"));
        assert_eq!(f64_value(1.5), json!(1.5));
    }

    #[test]
    fn dimensions_render_as_a_list() {
        let dims = vec![("A".to_string(), "1".to_string())];
        assert_eq!(
            dimensions_value(&dims),
            json!([{"Name": "A", "Value": "1"}])
        );
    }
}

//! Model-driven validation of a decoded input document, shared by every protocol: required members,
//! enum values, string / list / map / blob lengths and numeric ranges. Reports the first failure with
//! a query-style member path (`MetricData.member.1.MetricName`). Subtrees whose shapes carry no
//! constraints (see [`crate::model::Shape::has_constraints`]) are skipped without being walked.

use opsloop_core::ValidationFailure;
use serde_json::Value;

use crate::codec::{decode_base64, Path, Seg};
use crate::model::{Model, ShapeId, ShapeKind};

/// Validate `doc` against `shape`; the first failure found is returned.
pub fn validate(model: &Model, shape: ShapeId, doc: &Value) -> Result<(), ValidationFailure> {
    walk(model, shape, doc, &mut Path::new())
}

fn bound(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e18 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn invalid(path: &Path<'_>, reason: String) -> ValidationFailure {
    ValidationFailure::Invalid {
        path: path.render(),
        reason,
    }
}

fn check_len(
    path: &Path<'_>,
    len: usize,
    min: Option<u64>,
    max: Option<u64>,
) -> Result<(), ValidationFailure> {
    let len = len as u64;
    if let Some(min) = min.filter(|m| len < *m) {
        return Err(invalid(
            path,
            format!("Member must have length greater than or equal to {min}"),
        ));
    }
    if let Some(max) = max.filter(|m| len > *m) {
        return Err(invalid(
            path,
            format!("Member must have length less than or equal to {max}"),
        ));
    }
    Ok(())
}

/// `map.get(name)`, by a linear scan for the small maps most structures decode to: comparing a few
/// keys (lengths first) is cheaper than hashing the name once per member.
fn member_value<'v>(map: &'v serde_json::Map<String, Value>, name: &str) -> Option<&'v Value> {
    if map.len() <= 8 {
        map.iter().find(|(k, _)| k.as_str() == name).map(|(_, v)| v)
    } else {
        map.get(name)
    }
}

fn walk<'m>(
    model: &'m Model,
    shape: ShapeId,
    v: &Value,
    path: &mut Path<'m>,
) -> Result<(), ValidationFailure> {
    let sh = model.shape(shape);
    if !sh.has_constraints {
        return Ok(());
    }
    match (&sh.kind, v) {
        (ShapeKind::Structure(st), Value::Object(map)) => {
            for m in &st.members {
                let present = member_value(map, &m.name).filter(|x| !x.is_null());
                match present {
                    None if m.required => {
                        path.push(Seg::Member(&m.name));
                        let failure = ValidationFailure::Missing {
                            path: path.render(),
                        };
                        return Err(failure);
                    }
                    Some(val) if model.shape(m.target).has_constraints => {
                        path.push(Seg::Member(&m.name));
                        walk(model, m.target, val, path)?;
                        path.pop();
                    }
                    _ => {}
                }
            }
        }
        (ShapeKind::List(l), Value::Array(items)) => {
            check_len(path, items.len(), l.min, l.max)?;
            if model.shape(l.member).has_constraints {
                for (i, item) in items.iter().enumerate() {
                    if item.is_null() {
                        continue;
                    }
                    path.push(Seg::Index(i));
                    walk(model, l.member, item, path)?;
                    path.pop();
                }
            }
        }
        (ShapeKind::Map(m), Value::Object(map)) => {
            check_len(path, map.len(), m.min, m.max)?;
            let (kc, vc) = (
                model.shape(m.key).has_constraints,
                model.shape(m.value).has_constraints,
            );
            if kc || vc {
                for (key, val) in map {
                    path.push(Seg::Key(key.clone()));
                    if kc {
                        walk(model, m.key, &Value::String(key.clone()), path)?;
                    }
                    if vc && !val.is_null() {
                        walk(model, m.value, val, path)?;
                    }
                    path.pop();
                }
            }
        }
        (ShapeKind::String(st), Value::String(s)) => {
            if let Some(values) = &st.enum_values {
                if !values.iter().any(|e| e == s) {
                    return Err(invalid(
                        path,
                        format!(
                            "Member must satisfy enum value set: [{}]",
                            values.join(", ")
                        ),
                    ));
                }
            }
            if st.min.is_some() || st.max.is_some() {
                check_len(path, s.chars().count(), st.min, st.max)?;
            }
        }
        (
            ShapeKind::Integer(r) | ShapeKind::Long(r) | ShapeKind::Float(r) | ShapeKind::Double(r),
            Value::Number(n),
        ) => {
            let x = n.as_f64().unwrap_or(0.0);
            if let Some(min) = r.min.filter(|m| x < *m) {
                return Err(invalid(
                    path,
                    format!(
                        "Member must have value greater than or equal to {}",
                        bound(min)
                    ),
                ));
            }
            if let Some(max) = r.max.filter(|m| x > *m) {
                return Err(invalid(
                    path,
                    format!(
                        "Member must have value less than or equal to {}",
                        bound(max)
                    ),
                ));
            }
        }
        (ShapeKind::Blob(b), Value::String(s)) => {
            let len = decode_base64(s).map_or(0, |d| d.len());
            check_len(path, len, b.min, b.max)?;
        }
        // Non-finite floats (strings) and shapes the decoders already type-checked.
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const CLOUDWATCH: &str = include_str!("../../../models/cloudwatch-2010-08-01.json");

    fn check(op: &str, doc: Value) -> Result<(), ValidationFailure> {
        let model = Model::parse(CLOUDWATCH).expect("model");
        let input = model.operation(op).and_then(|o| o.input).expect("input");
        validate(&model, input, &doc)
    }

    #[test]
    fn accepts_valid_input() {
        let doc = json!({"Namespace": "App", "MetricData": [{"MetricName": "Latency", "Value": 1.5, "Unit": "Seconds",
            "Dimensions": [{"Name": "Host", "Value": "a"}], "Values": [1.0, 2.0], "Counts": [1.0, 1.0]}]});
        assert_eq!(check("PutMetricData", doc), Ok(()));
    }

    #[test]
    fn missing_required_members_with_paths() {
        assert_eq!(
            check("PutMetricData", json!({"MetricData": []})),
            Err(ValidationFailure::Missing {
                path: "Namespace".into()
            })
        );
        let doc = json!({"Namespace": "App", "MetricData": [{"MetricName": "a"}, {"Value": 1.0}]});
        assert_eq!(
            check("PutMetricData", doc),
            Err(ValidationFailure::Missing {
                path: "MetricData.member.2.MetricName".into()
            })
        );
        let doc = json!({"Namespace": "App", "MetricData": [{"MetricName": "a", "Dimensions": [{"Name": "x"}]}]});
        assert_eq!(
            check("PutMetricData", doc),
            Err(ValidationFailure::Missing {
                path: "MetricData.member.1.Dimensions.member.1.Value".into()
            })
        );
        let doc = json!({"Namespace": null, "MetricData": []});
        assert_eq!(
            check("PutMetricData", doc),
            Err(ValidationFailure::Missing {
                path: "Namespace".into()
            })
        );
    }

    #[test]
    fn enum_length_and_range_constraints() {
        let doc =
            json!({"Namespace": "App", "MetricData": [{"MetricName": "a", "Unit": "Parsecs"}]});
        let Err(ValidationFailure::Invalid { path, reason }) = check("PutMetricData", doc) else {
            panic!("enum must fail")
        };
        assert_eq!(path, "MetricData.member.1.Unit");
        assert!(
            reason.starts_with("Member must satisfy enum value set: [Seconds, "),
            "{reason}"
        );

        let doc = json!({"Namespace": "", "MetricData": []});
        assert_eq!(
            check("PutMetricData", doc),
            Err(ValidationFailure::Invalid {
                path: "Namespace".into(),
                reason: "Member must have length greater than or equal to 1".into()
            })
        );
        let doc = json!({"Namespace": "n".repeat(256), "MetricData": []});
        assert_eq!(
            check("PutMetricData", doc),
            Err(ValidationFailure::Invalid {
                path: "Namespace".into(),
                reason: "Member must have length less than or equal to 255".into()
            })
        );
        // Characters, not bytes: 255 multi-byte characters are fine.
        assert_eq!(
            check(
                "PutMetricData",
                json!({"Namespace": "é".repeat(255), "MetricData": []})
            ),
            Ok(())
        );

        let doc = json!({"Namespace": "App", "MetricData": [{"MetricName": "a", "StorageResolution": 0}]});
        assert_eq!(
            check("PutMetricData", doc),
            Err(ValidationFailure::Invalid {
                path: "MetricData.member.1.StorageResolution".into(),
                reason: "Member must have value greater than or equal to 1".into()
            })
        );
        let dims: Vec<Value> = (0..31)
            .map(|i| json!({"Name": format!("d{i}"), "Value": "v"}))
            .collect();
        let doc =
            json!({"Namespace": "App", "MetricData": [{"MetricName": "a", "Dimensions": dims}]});
        assert_eq!(
            check("PutMetricData", doc),
            Err(ValidationFailure::Invalid {
                path: "MetricData.member.1.Dimensions".into(),
                reason: "Member must have length less than or equal to 30".into()
            })
        );
    }
}

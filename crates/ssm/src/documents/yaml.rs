//! YAML for SSM documents over `yaml-rust2`: parse a YAML document into the JSON value model the
//! validator works on, and emit a JSON value as YAML (GetDocument's JSON↔YAML conversion).

use opsloop_core::Value;
use yaml_rust2::yaml::Hash;
use yaml_rust2::{Yaml, YamlEmitter, YamlLoader};

/// Parse the first YAML document of `text`; the error names line and column.
pub fn parse(text: &str) -> Result<Value, String> {
    let docs = YamlLoader::load_from_str(text).map_err(|e| {
        format!(
            "YAML not well-formed. at Line: {}, Column: {}: {}",
            e.marker().line(),
            e.marker().col() + 1,
            e.info()
        )
    })?;
    match docs.into_iter().next() {
        Some(doc) => to_json(doc),
        None => Err("YAML not well-formed: the content is empty.".into()),
    }
}

fn to_json(y: Yaml) -> Result<Value, String> {
    Ok(match y {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(b),
        Yaml::Integer(i) => Value::from(i),
        Yaml::Real(r) => match r.parse::<f64>() {
            Ok(f) => serde_json::Number::from_f64(f)
                .map(Value::Number)
                .unwrap_or(Value::String(r)),
            Err(_) => Value::String(r),
        },
        Yaml::String(s) => Value::String(s),
        Yaml::Array(a) => Value::Array(a.into_iter().map(to_json).collect::<Result<_, _>>()?),
        Yaml::Hash(h) => {
            let mut m = serde_json::Map::new();
            for (k, v) in h {
                let key = match k {
                    Yaml::String(s) => s,
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Real(r) => r,
                    Yaml::Boolean(b) => b.to_string(),
                    _ => return Err("YAML not well-formed: a mapping key is not a scalar.".into()),
                };
                m.insert(key, to_json(v)?);
            }
            Value::Object(m)
        }
        Yaml::Alias(_) | Yaml::BadValue => {
            return Err("YAML not well-formed: aliases and bad values are not supported.".into())
        }
    })
}

fn to_yaml(v: &Value) -> Yaml {
    match v {
        Value::Null => Yaml::Null,
        Value::Bool(b) => Yaml::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Yaml::Integer(i),
            None => Yaml::Real(n.to_string()),
        },
        Value::String(s) => Yaml::String(s.clone()),
        Value::Array(a) => Yaml::Array(a.iter().map(to_yaml).collect()),
        Value::Object(m) => {
            let mut h = Hash::new();
            for (k, v) in m {
                h.insert(Yaml::String(k.clone()), to_yaml(v));
            }
            Yaml::Hash(h)
        }
    }
}

/// Emit `v` as a YAML document (no leading `---`), multi-line strings as literal blocks.
pub fn emit(v: &Value) -> String {
    let mut out = String::new();
    let y = to_yaml(v);
    let mut emitter = YamlEmitter::new(&mut out);
    emitter.multiline_strings(true);
    if emitter.dump(&y).is_err() {
        return String::new();
    }
    let body = out.strip_prefix("---\n").unwrap_or(&out).to_string();
    format!("{body}\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_and_emit_round_trip() {
        let text = "schemaVersion: '2.2'\ndescription: hi\nmainSteps:\n  - action: aws:runShellScript\n    name: s1\n    inputs:\n      runCommand:\n        - echo one\n        - |\n          echo two\n          echo three\n";
        let v = parse(text).unwrap();
        assert_eq!(v["schemaVersion"], json!("2.2"));
        assert_eq!(
            v["mainSteps"][0]["inputs"]["runCommand"][1],
            json!("echo two\necho three\n")
        );
        let back = parse(&emit(&v)).unwrap();
        assert_eq!(back, v);
        assert!(!emit(&v).starts_with("---"));
    }

    #[test]
    fn errors_name_the_position() {
        let e = parse("a: [1, 2\nb: c").unwrap_err();
        assert!(e.contains("Line"), "{e}");
    }

    #[test]
    fn numbers_and_bools() {
        let v = parse("a: 1\nb: 2.5\nc: true\nd: ~").unwrap();
        assert_eq!(v, json!({"a": 1, "b": 2.5, "c": true, "d": null}));
    }
}

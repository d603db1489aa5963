//! Connection HTTP parameters (`ConnectionHttpParameters`): header, query-string and body
//! parameters, each possibly marked `IsValueSecret`; their parsing from a request, their public form
//! (secret values removed) and their rendering in Describe answers.

use opsloop_core::{ApiError, Value};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::common::{str_of, validation};

/// Most parameters of each kind (the model's list bound).
const MAX_PARAMS: usize = 100;

/// One header, query-string or body parameter.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct Param {
    pub key: String,
    /// `None` in the public record when the value is secret.
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub secret: bool,
}

/// `ConnectionHttpParameters`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct HttpParams {
    #[serde(default)]
    pub headers: Vec<Param>,
    #[serde(default)]
    pub query: Vec<Param>,
    #[serde(default)]
    pub body: Vec<Param>,
}

impl HttpParams {
    pub(crate) fn parse(v: Option<&Value>, path: &str) -> Result<HttpParams, ApiError> {
        let Some(v) = v.filter(|v| !v.is_null()) else {
            return Ok(HttpParams::default());
        };
        let list = |member: &str| -> Result<Vec<Param>, ApiError> {
            let Some(items) = v.get(member).and_then(Value::as_array) else {
                return Ok(Vec::new());
            };
            if items.len() > MAX_PARAMS {
                return Err(validation(format!(
                    "{path}.{member} must have at most {MAX_PARAMS} elements."
                )));
            }
            items
                .iter()
                .map(|item| {
                    let key = str_of(item, "Key")
                        .filter(|k| !k.is_empty())
                        .ok_or_else(|| {
                            validation(format!("{path}.{member}.Key must be specified."))
                        })?;
                    Ok(Param {
                        key: key.to_string(),
                        value: Some(str_of(item, "Value").unwrap_or("").to_string()),
                        secret: item
                            .get("IsValueSecret")
                            .and_then(Value::as_bool)
                            .unwrap_or(false),
                    })
                })
                .collect()
        };
        Ok(HttpParams {
            headers: list("HeaderParameters")?,
            query: list("QueryStringParameters")?,
            body: list("BodyParameters")?,
        })
    }

    /// The same parameters with secret values removed.
    pub(crate) fn public(&self) -> HttpParams {
        let strip = |ps: &[Param]| {
            ps.iter()
                .map(|p| Param {
                    key: p.key.clone(),
                    value: if p.secret { None } else { p.value.clone() },
                    secret: p.secret,
                })
                .collect()
        };
        HttpParams {
            headers: strip(&self.headers),
            query: strip(&self.query),
            body: strip(&self.body),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.headers.is_empty() && self.query.is_empty() && self.body.is_empty()
    }

    pub(crate) fn to_value(&self) -> Value {
        let list = |ps: &[Param]| {
            Value::Array(
                ps.iter()
                    .map(|p| {
                        let mut o = json!({"Key": p.key, "IsValueSecret": p.secret});
                        if let Some(v) = &p.value {
                            o["Value"] = json!(v);
                        }
                        o
                    })
                    .collect(),
            )
        };
        let mut o = serde_json::Map::new();
        if !self.headers.is_empty() {
            o.insert("HeaderParameters".into(), list(&self.headers));
        }
        if !self.query.is_empty() {
            o.insert("QueryStringParameters".into(), list(&self.query));
        }
        if !self.body.is_empty() {
            o.insert("BodyParameters".into(), list(&self.body));
        }
        Value::Object(o)
    }
}

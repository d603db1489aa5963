//! Building a [`Model`] from the botocore JSON: a serde pass into raw structs (keeping document key
//! order), then interning shapes, resolving references, precomputing member names and indexes, and
//! marking which shapes carry validation constraints.

use std::collections::HashMap;
use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use super::*;

/// Parse a botocore `service-2.json` document.
pub(super) fn parse(json: &str) -> Result<Model, ModelError> {
    let raw: RawModel =
        serde_json::from_str(json).map_err(|e| ModelError::Malformed(e.to_string()))?;
    build(raw)
}

// Raw (serde) form of the JSON document.

/// A JSON object deserialized into a vector, keeping the document's key order.
struct Ordered<T>(Vec<(String, T)>);

impl<T> Default for Ordered<T> {
    fn default() -> Self {
        Ordered(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Ordered<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Ordered<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some((k, v)) = map.next_entry::<String, T>()? {
                    out.push((k, v));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct RawModel {
    metadata: RawMetadata,
    #[serde(default)]
    operations: Ordered<RawOperation>,
    #[serde(default)]
    shapes: Ordered<RawShape>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMetadata {
    protocol: Option<String>,
    #[serde(default)]
    protocols: Vec<String>,
    service_id: Option<String>,
    target_prefix: Option<String>,
    json_version: Option<String>,
    endpoint_prefix: Option<String>,
    signing_name: Option<String>,
    aws_query_compatible: Option<IgnoredAny>,
    xml_namespace: Option<String>,
    api_version: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawHttp {
    method: Option<String>,
    request_uri: Option<String>,
    response_code: Option<u16>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawShapeRef {
    shape: String,
    result_wrapper: Option<String>,
}

#[derive(Deserialize)]
struct RawOperation {
    name: Option<String>,
    http: Option<RawHttp>,
    input: Option<RawShapeRef>,
    output: Option<RawShapeRef>,
    #[serde(default)]
    errors: Vec<RawShapeRef>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawMember {
    shape: String,
    location: Option<String>,
    location_name: Option<String>,
    query_name: Option<String>,
    #[serde(default)]
    flattened: bool,
    #[serde(default, rename = "jsonvalue")]
    json_value: bool,
    #[serde(default)]
    idempotency_token: bool,
    timestamp_format: Option<String>,
    #[serde(default)]
    streaming: bool,
    #[serde(default)]
    host_label: bool,
    #[serde(default)]
    xml_attribute: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawError {
    code: Option<String>,
    http_status_code: Option<u16>,
    #[serde(default)]
    sender_fault: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawShape {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    members: Ordered<RawMember>,
    #[serde(default)]
    required: Vec<String>,
    member: Option<RawMember>,
    key: Option<RawMember>,
    value: Option<RawMember>,
    min: Option<f64>,
    max: Option<f64>,
    #[serde(rename = "enum")]
    enum_values: Option<Vec<String>>,
    pattern: Option<String>,
    timestamp_format: Option<String>,
    #[serde(default)]
    flattened: bool,
    #[serde(default)]
    sparse: bool,
    payload: Option<String>,
    #[serde(default)]
    document: bool,
    #[serde(default)]
    union: bool,
    #[serde(default)]
    exception: bool,
    #[serde(default)]
    fault: bool,
    error: Option<RawError>,
    #[serde(default)]
    streaming: bool,
}

// Building the indexed model.

fn count_bound(v: Option<f64>) -> Option<u64> {
    v.filter(|x| x.is_finite() && *x >= 0.0).map(|x| x as u64)
}

fn build(raw: RawModel) -> Result<Model, ModelError> {
    let m = raw.metadata;
    let mut protocols: Vec<Protocol> = m
        .protocols
        .iter()
        .filter_map(|p| Protocol::from_model_name(p))
        .collect();
    let protocol = m.protocol.as_deref().and_then(Protocol::from_model_name);
    if protocols.is_empty() {
        protocols.extend(protocol);
    }
    if protocols.is_empty() {
        return Err(ModelError::Malformed(
            "metadata names no supported protocol".into(),
        ));
    }
    let endpoint_prefix = m
        .endpoint_prefix
        .ok_or_else(|| ModelError::Malformed("metadata.endpointPrefix missing".into()))?;
    let metadata = Metadata {
        protocol,
        protocols,
        service_id: m.service_id.unwrap_or_else(|| endpoint_prefix.clone()),
        target_prefix: m.target_prefix,
        json_version: m.json_version,
        endpoint_prefix,
        signing_name: m.signing_name,
        aws_query_compatible: m.aws_query_compatible.is_some(),
        xml_namespace: m.xml_namespace,
        api_version: m.api_version.unwrap_or_default(),
    };

    let mut shape_index = HashMap::with_capacity(raw.shapes.0.len());
    for (i, (name, _)) in raw.shapes.0.iter().enumerate() {
        let id = u32::try_from(i).map_err(|_| ModelError::Malformed("too many shapes".into()))?;
        if shape_index.insert(name.clone(), ShapeId(id)).is_some() {
            return Err(ModelError::Malformed(format!("duplicate shape {name}")));
        }
    }
    let resolve = |name: &str, from: &str| -> Result<ShapeId, ModelError> {
        shape_index.get(name).copied().ok_or_else(|| {
            ModelError::Malformed(format!("{from} refers to unknown shape {name:?}"))
        })
    };

    // First pass: every shape, except structure members' xml names (those need the targets' kinds).
    let mut shapes = Vec::with_capacity(raw.shapes.0.len());
    for (name, s) in raw.shapes.0 {
        let timestamp_format = s
            .timestamp_format
            .as_deref()
            .map(TimestampFormat::parse)
            .transpose()?;
        let range = NumberRange {
            min: s.min,
            max: s.max,
        };
        let kind = match s.kind.as_str() {
            "structure" => {
                let required: Vec<&str> = s.required.iter().map(String::as_str).collect();
                let mut members = Vec::with_capacity(s.members.0.len());
                for (mname, rm) in &s.members.0 {
                    let target = resolve(&rm.shape, &format!("{name}.{mname}"))?;
                    members.push(Member {
                        name: mname.clone(),
                        target,
                        location: parse_location(rm.location.as_deref())?,
                        location_name: rm.location_name.clone(),
                        query_name: rm.query_name.clone(),
                        flattened: rm.flattened,
                        json_value: rm.json_value,
                        idempotency_token: rm.idempotency_token,
                        timestamp_format: rm
                            .timestamp_format
                            .as_deref()
                            .map(TimestampFormat::parse)
                            .transpose()?,
                        streaming: rm.streaming,
                        host_label: rm.host_label,
                        xml_attribute: rm.xml_attribute,
                        required: required.contains(&mname.as_str()),
                        xml_name: String::new(),
                    });
                }
                let payload = match &s.payload {
                    Some(p) => {
                        Some(members.iter().position(|m| &m.name == p).ok_or_else(|| {
                            ModelError::Malformed(format!("{name}: payload {p:?} is not a member"))
                        })?)
                    }
                    None => None,
                };
                ShapeKind::Structure(StructureShape {
                    members,
                    payload,
                    document: s.document,
                    union: s.union,
                    index: None,
                })
            }
            "list" => {
                let member = s
                    .member
                    .ok_or_else(|| ModelError::Malformed(format!("list {name} has no member")))?;
                ShapeKind::List(ListShape {
                    member: resolve(&member.shape, &name)?,
                    member_location_name: member.location_name,
                    flattened: s.flattened,
                    sparse: s.sparse,
                    min: count_bound(s.min),
                    max: count_bound(s.max),
                })
            }
            "map" => {
                let key = s
                    .key
                    .ok_or_else(|| ModelError::Malformed(format!("map {name} has no key")))?;
                let value = s
                    .value
                    .ok_or_else(|| ModelError::Malformed(format!("map {name} has no value")))?;
                ShapeKind::Map(MapShape {
                    key: resolve(&key.shape, &name)?,
                    value: resolve(&value.shape, &name)?,
                    key_location_name: key.location_name,
                    value_location_name: value.location_name,
                    flattened: s.flattened,
                    sparse: s.sparse,
                    min: count_bound(s.min),
                    max: count_bound(s.max),
                })
            }
            "string" | "character" => ShapeKind::String(StringShape {
                enum_values: s.enum_values,
                min: count_bound(s.min),
                max: count_bound(s.max),
                pattern: s.pattern,
            }),
            "integer" => ShapeKind::Integer(range),
            "byte" => ShapeKind::Integer(narrow(range, -128.0, 127.0)),
            "short" => ShapeKind::Integer(narrow(range, -32768.0, 32767.0)),
            "long" => ShapeKind::Long(range),
            "float" => ShapeKind::Float(range),
            "double" => ShapeKind::Double(range),
            "boolean" => ShapeKind::Boolean,
            "timestamp" => ShapeKind::Timestamp,
            "blob" => ShapeKind::Blob(BlobShape {
                min: count_bound(s.min),
                max: count_bound(s.max),
                streaming: s.streaming,
            }),
            other => {
                return Err(ModelError::Malformed(format!(
                    "shape {name} has unsupported type {other:?}"
                )))
            }
        };
        let error = s.error.map(|e| ErrorTrait {
            code: e.code,
            http_status_code: e.http_status_code,
            sender_fault: e.sender_fault,
        });
        shapes.push(Shape {
            name,
            kind,
            timestamp_format,
            exception: s.exception,
            fault: s.fault,
            error,
            has_constraints: false,
        });
    }

    // Second pass: xml names (depend on the target list's member locationName) and member indexes.
    for i in 0..shapes.len() {
        let names: Vec<String> = match &shapes[i].kind {
            ShapeKind::Structure(st) => {
                st.members.iter().map(|m| xml_name_of(&shapes, m)).collect()
            }
            _ => continue,
        };
        if let ShapeKind::Structure(st) = &mut shapes[i].kind {
            for (m, n) in st.members.iter_mut().zip(names) {
                m.xml_name = n;
            }
            if st.members.len() > INDEX_THRESHOLD {
                let mut index = MemberIndex::default();
                for (j, m) in st.members.iter().enumerate() {
                    index.by_name.entry(m.name.clone()).or_insert(j);
                    index.by_json.entry(m.json_name().to_string()).or_insert(j);
                    index.by_xml.entry(m.xml_name.clone()).or_insert(j);
                }
                st.index = Some(Box::new(index));
            }
        }
    }

    compute_constraints(&mut shapes);

    let mut operations = Vec::with_capacity(raw.operations.0.len());
    let mut operation_index = HashMap::with_capacity(raw.operations.0.len());
    for (key, op) in raw.operations.0 {
        let name = op.name.unwrap_or_else(|| key.clone());
        let http = op.http.unwrap_or(RawHttp {
            method: None,
            request_uri: None,
            response_code: None,
        });
        let input = op
            .input
            .as_ref()
            .map(|r| resolve(&r.shape, &name))
            .transpose()?;
        let output = op
            .output
            .as_ref()
            .map(|r| resolve(&r.shape, &name))
            .transpose()?;
        for id in input.iter().chain(output.iter()) {
            if !matches!(shapes[id.0 as usize].kind, ShapeKind::Structure(_)) {
                return Err(ModelError::Malformed(format!(
                    "operation {name}: input/output is not a structure"
                )));
            }
        }
        let errors = op
            .errors
            .iter()
            .map(|r| resolve(&r.shape, &name))
            .collect::<Result<Vec<_>, _>>()?;
        operation_index.insert(name.clone(), operations.len());
        operations.push(Operation {
            name,
            http: HttpBinding {
                method: http.method.unwrap_or_else(|| "POST".into()),
                request_uri: http.request_uri.unwrap_or_else(|| "/".into()),
                response_code: http.response_code.unwrap_or(200),
            },
            input,
            output,
            result_wrapper: op.output.and_then(|r| r.result_wrapper),
            errors,
        });
    }

    Ok(Model {
        metadata,
        shapes,
        shape_index,
        operations,
        operation_index,
    })
}

fn narrow(r: NumberRange, lo: f64, hi: f64) -> NumberRange {
    NumberRange {
        min: Some(r.min.map_or(lo, |m| m.max(lo))),
        max: Some(r.max.map_or(hi, |m| m.min(hi))),
    }
}

fn parse_location(loc: Option<&str>) -> Result<Location, ModelError> {
    Ok(match loc {
        None => Location::Body,
        Some("uri") => Location::Uri,
        Some("querystring") => Location::QueryString,
        Some("header") => Location::Header,
        Some("headers") => Location::Headers,
        Some("statusCode") => Location::StatusCode,
        Some(other) => {
            return Err(ModelError::Malformed(format!(
                "unknown member location {other:?}"
            )))
        }
    })
}

fn xml_name_of(shapes: &[Shape], m: &Member) -> String {
    if let ShapeKind::List(l) = &shapes[m.target.0 as usize].kind {
        if m.flattened || l.flattened {
            if let Some(n) = &l.member_location_name {
                return n.clone();
            }
        }
    }
    m.location_name.clone().unwrap_or_else(|| m.name.clone())
}

/// Mark every shape whose subtree can fail validation (fixpoint over possibly recursive shapes).
fn compute_constraints(shapes: &mut [Shape]) {
    for s in shapes.iter_mut() {
        s.has_constraints = match &s.kind {
            ShapeKind::Structure(st) => !st.document && st.members.iter().any(|m| m.required),
            ShapeKind::List(l) => l.min.is_some() || l.max.is_some(),
            ShapeKind::Map(m) => m.min.is_some() || m.max.is_some(),
            ShapeKind::String(st) => {
                st.enum_values.is_some() || st.min.is_some() || st.max.is_some()
            }
            ShapeKind::Integer(r)
            | ShapeKind::Long(r)
            | ShapeKind::Float(r)
            | ShapeKind::Double(r) => r.min.is_some() || r.max.is_some(),
            ShapeKind::Blob(b) => b.min.is_some() || b.max.is_some(),
            ShapeKind::Boolean | ShapeKind::Timestamp => false,
        };
    }
    loop {
        let mut changed = false;
        for i in 0..shapes.len() {
            if shapes[i].has_constraints {
                continue;
            }
            let flag = |id: ShapeId| shapes[id.0 as usize].has_constraints;
            let child = match &shapes[i].kind {
                ShapeKind::Structure(st) => {
                    !st.document && st.members.iter().any(|m| flag(m.target))
                }
                ShapeKind::List(l) => flag(l.member),
                ShapeKind::Map(m) => flag(m.key) || flag(m.value),
                _ => false,
            };
            if child {
                shapes[i].has_constraints = true;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
}

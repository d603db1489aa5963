//! The botocore service model (`service-2.json`), parsed into an indexed, immutable form the codecs
//! walk on every request: metadata (protocols, target prefix, namespaces), operations (HTTP binding,
//! input/output shapes, result wrapper, errors) and shapes (structures, lists, maps, scalars) with the
//! serialization and constraint traits the wire layer honours.
//!
//! Shapes are interned into a vector and referenced by [`ShapeId`]; everything a request needs
//! (member lookup by wire name, whether a subtree carries constraints) is precomputed here once.

use std::collections::HashMap;

mod build;

/// Index of a shape inside its [`Model`]. Only valid for the model that produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShapeId(u32);

/// A wire protocol named in a model's `protocol` / `protocols` metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// awsJson 1.0 / 1.1 (`json`).
    Json,
    /// Smithy RPC v2 CBOR (`smithy-rpc-v2-cbor`).
    RpcV2Cbor,
    /// awsQuery (`query`).
    Query,
    /// restJson1 (`rest-json`).
    RestJson,
    /// restXml (`rest-xml`); parsed but not served.
    RestXml,
    /// ec2 query (`ec2`); parsed but not served.
    Ec2,
}

impl Protocol {
    /// The protocol for a botocore protocol name.
    pub fn from_model_name(name: &str) -> Option<Protocol> {
        Some(match name {
            "json" => Protocol::Json,
            "smithy-rpc-v2-cbor" => Protocol::RpcV2Cbor,
            "query" => Protocol::Query,
            "rest-json" => Protocol::RestJson,
            "rest-xml" => Protocol::RestXml,
            "ec2" => Protocol::Ec2,
            _ => return None,
        })
    }

    /// The botocore name of this protocol.
    pub fn model_name(self) -> &'static str {
        match self {
            Protocol::Json => "json",
            Protocol::RpcV2Cbor => "smithy-rpc-v2-cbor",
            Protocol::Query => "query",
            Protocol::RestJson => "rest-json",
            Protocol::RestXml => "rest-xml",
            Protocol::Ec2 => "ec2",
        }
    }
}

/// `timestampFormat` of a shape or member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampFormat {
    /// `iso8601`: `2026-01-02T03:04:05.000Z`.
    Iso8601,
    /// `unixTimestamp`: seconds since the epoch.
    EpochSeconds,
    /// `rfc822`: the HTTP date, `Fri, 02 Jan 2026 03:04:05 GMT`.
    HttpDate,
}

impl TimestampFormat {
    fn parse(s: &str) -> Result<TimestampFormat, ModelError> {
        match s.to_ascii_lowercase().as_str() {
            "iso8601" => Ok(TimestampFormat::Iso8601),
            "unixtimestamp" => Ok(TimestampFormat::EpochSeconds),
            "rfc822" => Ok(TimestampFormat::HttpDate),
            other => Err(ModelError::Malformed(format!(
                "unknown timestampFormat {other:?}"
            ))),
        }
    }
}

/// Service-wide metadata.
#[derive(Debug, Clone)]
pub struct Metadata {
    /// The primary protocol (`protocol`), if it is one this crate knows.
    pub protocol: Option<Protocol>,
    /// Every protocol the service speaks (`protocols`, else just `protocol`).
    pub protocols: Vec<Protocol>,
    pub service_id: String,
    pub target_prefix: Option<String>,
    pub json_version: Option<String>,
    pub endpoint_prefix: String,
    pub signing_name: Option<String>,
    pub aws_query_compatible: bool,
    pub xml_namespace: Option<String>,
    pub api_version: String,
}

impl Metadata {
    /// The SigV4 signing name: `signingName`, else `endpointPrefix`.
    pub fn signing_name(&self) -> &str {
        self.signing_name
            .as_deref()
            .unwrap_or(&self.endpoint_prefix)
    }

    /// Whether the service speaks `protocol`.
    pub fn speaks(&self, protocol: Protocol) -> bool {
        self.protocols.contains(&protocol)
    }
}

/// The `http` trait of an operation.
#[derive(Debug, Clone)]
pub struct HttpBinding {
    pub method: String,
    pub request_uri: String,
    pub response_code: u16,
}

/// One operation.
#[derive(Debug, Clone)]
pub struct Operation {
    pub name: String,
    pub http: HttpBinding,
    pub input: Option<ShapeId>,
    pub output: Option<ShapeId>,
    /// `output.resultWrapper` (awsQuery responses).
    pub result_wrapper: Option<String>,
    pub errors: Vec<ShapeId>,
}

/// Where a structure member is bound in an HTTP message (REST protocols).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Body,
    Uri,
    QueryString,
    Header,
    /// A prefixed header map (`location: headers`).
    Headers,
    StatusCode,
}

/// A member of a structure.
#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    pub target: ShapeId,
    pub location: Location,
    pub location_name: Option<String>,
    pub query_name: Option<String>,
    /// Member-level `flattened` (botocore merges it with the target's).
    pub flattened: bool,
    pub json_value: bool,
    pub idempotency_token: bool,
    pub timestamp_format: Option<TimestampFormat>,
    pub streaming: bool,
    pub host_label: bool,
    pub xml_attribute: bool,
    pub required: bool,
    /// The key of this member in awsQuery parameters and XML output elements: for a flattened list
    /// whose member has a `locationName`, that name; else `locationName`, else the member name.
    pub xml_name: String,
}

impl Member {
    /// The key of this member in JSON bodies: `locationName`, else the member name.
    pub fn json_name(&self) -> &str {
        self.location_name.as_deref().unwrap_or(&self.name)
    }
}

/// Structures with more members than this get hash indexes for member lookup.
const INDEX_THRESHOLD: usize = 12;

#[derive(Debug, Clone, Default)]
struct MemberIndex {
    by_name: HashMap<String, usize>,
    by_json: HashMap<String, usize>,
    by_xml: HashMap<String, usize>,
}

/// A structure shape.
#[derive(Debug, Clone)]
pub struct StructureShape {
    pub members: Vec<Member>,
    /// Index of the `payload` member (REST protocols).
    pub payload: Option<usize>,
    /// A document type: any JSON passes through unchanged.
    pub document: bool,
    pub union: bool,
    index: Option<Box<MemberIndex>>,
}

impl StructureShape {
    fn find(
        &self,
        key: &str,
        map: impl Fn(&MemberIndex) -> &HashMap<String, usize>,
        name: impl Fn(&Member) -> &str,
    ) -> Option<&Member> {
        match &self.index {
            Some(index) => map(index).get(key).and_then(|&i| self.members.get(i)),
            None => self.members.iter().find(|m| name(m) == key),
        }
    }
    /// The member with this model name.
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.find(name, |i| &i.by_name, |m| m.name.as_str())
    }
    /// The member with this JSON key (`locationName` or name).
    pub fn member_by_json_name(&self, key: &str) -> Option<&Member> {
        self.find(key, |i| &i.by_json, |m| m.json_name())
    }
    /// The member with this awsQuery / XML key (see [`Member::xml_name`]).
    pub fn member_by_xml_name(&self, key: &str) -> Option<&Member> {
        self.xml_member_index(key).and_then(|i| self.members.get(i))
    }
    /// Position in [`StructureShape::members`] of the member with this awsQuery / XML key.
    pub fn xml_member_index(&self, key: &str) -> Option<usize> {
        match &self.index {
            Some(index) => index.by_xml.get(key).copied(),
            None => self.members.iter().position(|m| m.xml_name == key),
        }
    }
}

/// A list shape.
#[derive(Debug, Clone)]
pub struct ListShape {
    pub member: ShapeId,
    /// `member.locationName`.
    pub member_location_name: Option<String>,
    pub flattened: bool,
    pub sparse: bool,
    pub min: Option<u64>,
    pub max: Option<u64>,
}

/// A map shape.
#[derive(Debug, Clone)]
pub struct MapShape {
    pub key: ShapeId,
    pub value: ShapeId,
    pub key_location_name: Option<String>,
    pub value_location_name: Option<String>,
    pub flattened: bool,
    pub sparse: bool,
    pub min: Option<u64>,
    pub max: Option<u64>,
}

/// A string shape's constraints.
#[derive(Debug, Clone, Default)]
pub struct StringShape {
    pub enum_values: Option<Vec<String>>,
    /// Length bounds in characters.
    pub min: Option<u64>,
    pub max: Option<u64>,
    /// Kept for reference; not enforced.
    pub pattern: Option<String>,
}

/// Range bounds of a numeric shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct NumberRange {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// A blob shape's constraints (lengths in bytes).
#[derive(Debug, Clone, Copy, Default)]
pub struct BlobShape {
    pub min: Option<u64>,
    pub max: Option<u64>,
    pub streaming: bool,
}

/// The type of a shape, with its type-specific traits.
#[derive(Debug, Clone)]
pub enum ShapeKind {
    Structure(StructureShape),
    List(ListShape),
    Map(MapShape),
    String(StringShape),
    /// 32-bit integer (also `byte` and `short`, with their narrower ranges applied as bounds).
    Integer(NumberRange),
    Long(NumberRange),
    Float(NumberRange),
    Double(NumberRange),
    Boolean,
    Timestamp,
    Blob(BlobShape),
}

/// The `error` trait of an exception shape.
#[derive(Debug, Clone, Default)]
pub struct ErrorTrait {
    pub code: Option<String>,
    pub http_status_code: Option<u16>,
    pub sender_fault: bool,
}

/// A shape.
#[derive(Debug, Clone)]
pub struct Shape {
    pub name: String,
    pub kind: ShapeKind,
    pub timestamp_format: Option<TimestampFormat>,
    pub exception: bool,
    /// `fault: true`: a server-side error.
    pub fault: bool,
    pub error: Option<ErrorTrait>,
    /// Whether validation can fail anywhere in this shape's subtree (required members, enums,
    /// lengths, ranges). Lets validation skip large unconstrained subtrees.
    pub has_constraints: bool,
}

/// A parsed botocore `service-2.json`.
#[derive(Debug)]
pub struct Model {
    pub metadata: Metadata,
    shapes: Vec<Shape>,
    shape_index: HashMap<String, ShapeId>,
    operations: Vec<Operation>,
    operation_index: HashMap<String, usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("malformed service model: {0}")]
    Malformed(String),
    #[error("service model conflicts with a registered one: {0}")]
    Conflict(String),
}

impl Model {
    /// Parse a botocore `service-2.json` document.
    pub fn parse(json: &str) -> Result<Model, ModelError> {
        build::parse(json)
    }

    /// The shape behind an id of this model.
    pub fn shape(&self, id: ShapeId) -> &Shape {
        &self.shapes[id.0 as usize]
    }

    /// A shape by name.
    pub fn shape_id(&self, name: &str) -> Option<ShapeId> {
        self.shape_index.get(name).copied()
    }

    /// An operation by name.
    pub fn operation(&self, name: &str) -> Option<&Operation> {
        self.operation_index
            .get(name)
            .and_then(|&i| self.operations.get(i))
    }

    /// Every operation.
    pub fn operations(&self) -> &[Operation] {
        &self.operations
    }

    /// An exception shape by name (`None` if absent or not an exception).
    pub fn error_shape(&self, name: &str) -> Option<&Shape> {
        self.shape_id(name)
            .map(|id| self.shape(id))
            .filter(|s| s.exception || s.error.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLOUDWATCH: &str = include_str!("../../../models/cloudwatch-2010-08-01.json");

    #[test]
    fn parses_cloudwatch_metadata_and_operations() {
        let m = Model::parse(CLOUDWATCH).expect("model parses");
        assert_eq!(m.metadata.service_id, "CloudWatch");
        assert_eq!(m.metadata.protocol, Some(Protocol::RpcV2Cbor));
        assert_eq!(
            m.metadata.protocols,
            vec![Protocol::RpcV2Cbor, Protocol::Json, Protocol::Query]
        );
        assert_eq!(
            m.metadata.target_prefix.as_deref(),
            Some("GraniteServiceVersion20100801")
        );
        assert_eq!(m.metadata.json_version.as_deref(), Some("1.0"));
        assert_eq!(m.metadata.signing_name(), "monitoring");
        assert!(m.metadata.aws_query_compatible);
        assert_eq!(
            m.metadata.xml_namespace.as_deref(),
            Some("http://monitoring.amazonaws.com/doc/2010-08-01/")
        );
        assert_eq!(m.metadata.api_version, "2010-08-01");
        assert_eq!(m.operations().len(), 46);

        let op = m.operation("GetMetricData").expect("op");
        assert_eq!(op.result_wrapper.as_deref(), Some("GetMetricDataResult"));
        assert_eq!(op.http.method, "POST");
        assert_eq!(op.http.response_code, 200);
        assert!(m.operation("NoSuchOperation").is_none());
    }

    #[test]
    fn parses_shapes_and_traits() {
        let m = Model::parse(CLOUDWATCH).expect("model parses");
        let input = m.shape(
            m.operation("PutMetricData")
                .and_then(|o| o.input)
                .expect("input"),
        );
        let ShapeKind::Structure(st) = &input.kind else {
            panic!("input is a structure")
        };
        let ns = st.member("Namespace").expect("Namespace");
        assert!(ns.required);
        let ShapeKind::String(s) = &m.shape(ns.target).kind else {
            panic!("Namespace is a string")
        };
        assert_eq!((s.min, s.max), (Some(1), Some(255)));
        let md = st.member("MetricData").expect("MetricData");
        let ShapeKind::List(l) = &m.shape(md.target).kind else {
            panic!("MetricData is a list")
        };
        assert!(!l.flattened);
        assert!(input.has_constraints);

        let unit = m.shape(m.shape_id("StandardUnit").expect("StandardUnit"));
        let ShapeKind::String(u) = &unit.kind else {
            panic!("StandardUnit is a string")
        };
        assert!(u
            .enum_values
            .as_ref()
            .is_some_and(|v| v.iter().any(|x| x == "Count/Second")));

        let err = m
            .error_shape("InvalidParameterValueException")
            .expect("error shape");
        let e = err.error.as_ref().expect("error trait");
        assert_eq!(e.code.as_deref(), Some("InvalidParameterValue"));
        assert_eq!(e.http_status_code, Some(400));
        assert!(e.sender_fault);
        assert!(m.error_shape("MetricDatum").is_none());

        let values = m.shape(m.shape_id("Values").expect("Values"));
        assert!(
            !values.has_constraints,
            "a list of unconstrained doubles needs no validation"
        );
    }

    #[test]
    fn rejects_malformed_models() {
        for bad in [
            "not json",
            r#"{"metadata":{"protocol":"json"},"shapes":{}}"#,
            r#"{"metadata":{"protocol":"telepathy","endpointPrefix":"x"},"shapes":{}}"#,
            r#"{"metadata":{"protocol":"json","endpointPrefix":"x"},"operations":{"A":{"input":{"shape":"Nope"}}},"shapes":{}}"#,
            r#"{"metadata":{"protocol":"json","endpointPrefix":"x"},"shapes":{"S":{"type":"structure","members":{"a":{"shape":"Missing"}}}}}"#,
            r#"{"metadata":{"protocol":"json","endpointPrefix":"x"},"shapes":{"S":{"type":"quaternion"}}}"#,
            r#"{"metadata":{"protocol":"json","endpointPrefix":"x"},"shapes":{"L":{"type":"list"}}}"#,
        ] {
            assert!(
                matches!(Model::parse(bad), Err(ModelError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn flattened_list_member_location_name_becomes_xml_name() {
        let json = r#"{"metadata":{"protocol":"query","endpointPrefix":"x"},"shapes":{
            "S":{"type":"structure","members":{"Items":{"shape":"L"},"Plain":{"shape":"Str","locationName":"plain"}}},
            "L":{"type":"list","member":{"shape":"Str","locationName":"Item"},"flattened":true},
            "Str":{"type":"string"}}}"#;
        let m = Model::parse(json).expect("parses");
        let ShapeKind::Structure(st) = &m.shape(m.shape_id("S").expect("S")).kind else {
            panic!()
        };
        assert_eq!(
            st.member("Items").map(|x| x.xml_name.as_str()),
            Some("Item")
        );
        assert_eq!(
            st.member_by_xml_name("Item").map(|x| x.name.as_str()),
            Some("Items")
        );
        assert_eq!(
            st.member_by_json_name("plain").map(|x| x.name.as_str()),
            Some("Plain")
        );
    }

    #[test]
    fn recursive_shapes_get_constraint_flags() {
        let json = r#"{"metadata":{"protocol":"json","endpointPrefix":"x"},"shapes":{
            "Node":{"type":"structure","members":{"Children":{"shape":"Nodes"},"Leaf":{"shape":"Leaf"}}},
            "Nodes":{"type":"list","member":{"shape":"Node"}},
            "Leaf":{"type":"structure","required":["V"],"members":{"V":{"shape":"Str"}}},
            "Free":{"type":"structure","members":{"Me":{"shape":"Free"}}},
            "Str":{"type":"string"}}}"#;
        let m = Model::parse(json).expect("parses");
        let flag = |n: &str| m.shape(m.shape_id(n).expect(n)).has_constraints;
        assert!(flag("Node"));
        assert!(flag("Nodes"));
        assert!(!flag("Free"));
    }
}

//! Rendering an [`opsloop_core::ApiError`] in each protocol, exactly as botocore (and the other
//! SDKs) parse it, so clients raise the modelled exception class.
//!
//! * The kind is looked up among the model's exception shapes → wire code (`error.code`, else the
//!   shape name), HTTP status and fault side. Unknown kinds use the kind as code and
//!   `ApiError::status` (400 when unset).
//! * awsJson / RPC v2 CBOR: body `{"__type": <shape name>, "message": ...}`; for
//!   `awsQueryCompatible` services also `x-amzn-query-error: <Code>;<Sender|Receiver>`, which
//!   botocore uses to pick the exception class by its query code.
//! * awsQuery: `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>`.
//! * restJson: `X-Amzn-ErrorType: <code>` plus a JSON body with the message.
//!
//! Server-fault messages (5xx) are replaced by a generic sentence (the original is logged), so nothing
//! internal leaks to callers — except 501 (`NotImplemented`) and 503 (a service not available), whose
//! messages are deliberate, user-facing sentences written by the service.

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use opsloop_core::ApiError;

use crate::codec::{cbor, xml::XmlWriter};
use crate::model::{Model, Protocol, ShapeKind};

/// The message sent instead of any 5xx message.
pub const INTERNAL_MESSAGE: &str = "We encountered an internal error. Please try again.";

/// How an error appears on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorInfo {
    /// `__type` for JSON/CBOR: the exception shape name (or the kind when unmodelled).
    pub type_name: String,
    /// The wire code: `error.code` of the shape, else the shape name / kind.
    pub code: String,
    pub status: u16,
    /// Sender (client) fault, else Receiver.
    pub sender: bool,
    /// The JSON key of the message: the shape's own message member when it has one.
    pub message_key: String,
    pub message: String,
}

/// Resolve `err` against `model`.
pub fn resolve(model: Option<&Model>, err: &ApiError) -> ErrorInfo {
    let shape = model.and_then(|m| m.error_shape(&err.kind));
    let (code, status, sender, message_key) = match shape {
        Some(sh) => {
            let trait_ = sh.error.clone().unwrap_or_default();
            let status = err
                .status
                .or(trait_.http_status_code)
                .unwrap_or(if sh.fault { 500 } else { 400 });
            let sender = trait_.sender_fault || (!sh.fault && status < 500);
            let message_key = match &sh.kind {
                ShapeKind::Structure(st) => st
                    .members
                    .iter()
                    .find(|m| m.name.eq_ignore_ascii_case("message"))
                    .map(|m| m.json_name().to_string()),
                _ => None,
            };
            (
                trait_.code.unwrap_or_else(|| err.kind.clone()),
                status,
                sender,
                message_key.unwrap_or_else(|| "message".into()),
            )
        }
        None => {
            let status = err.status.unwrap_or(400);
            (
                err.kind.clone(),
                status,
                status < 500,
                "message".to_string(),
            )
        }
    };
    let message = if status >= 500 && !matches!(status, 501 | 503) {
        if err.message != INTERNAL_MESSAGE {
            tracing::warn!(kind = %err.kind, status, message = %err.message, "server error; message withheld from the client");
        }
        INTERNAL_MESSAGE.to_string()
    } else {
        err.message.clone()
    };
    ErrorInfo {
        type_name: err.kind.clone(),
        code,
        status,
        sender,
        message_key,
        message,
    }
}

fn fault(sender: bool) -> &'static str {
    if sender {
        "Sender"
    } else {
        "Receiver"
    }
}

fn base(status: u16, request_id: &str, content_type: &'static str) -> http::response::Builder {
    let status = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_REQUEST);
    let mut b = http::Response::builder()
        .status(status)
        .header(CONTENT_TYPE, content_type);
    if let Ok(v) = HeaderValue::from_str(request_id) {
        b = b.header("x-amzn-RequestId", v);
    }
    b
}

fn finish(b: http::response::Builder, body: Vec<u8>) -> http::Response<Bytes> {
    b.body(Bytes::from(body)).unwrap_or_else(|_| {
        let mut r = http::Response::new(Bytes::new());
        *r.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

/// `application/x-amz-json-1.0` or `-1.1` per the model.
pub(crate) fn json_content_type(model: Option<&Model>) -> &'static str {
    match model.and_then(|m| m.metadata.json_version.as_deref()) {
        Some("1.1") => "application/x-amz-json-1.1",
        _ => "application/x-amz-json-1.0",
    }
}

/// Render `err` as a full HTTP response in `protocol`.
pub fn render(
    protocol: Protocol,
    model: Option<&Model>,
    err: &ApiError,
    request_id: &str,
) -> http::Response<Bytes> {
    let info = resolve(model, err);
    let query_compatible = model.is_some_and(|m| m.metadata.aws_query_compatible);
    match protocol {
        Protocol::Query | Protocol::Ec2 | Protocol::RestXml => {
            let mut w = XmlWriter::new();
            w.open_ns(
                "ErrorResponse",
                model.and_then(|m| m.metadata.xml_namespace.as_deref()),
            );
            w.open("Error");
            w.leaf("Type", fault(info.sender));
            w.leaf("Code", &info.code);
            w.leaf("Message", &info.message);
            w.close("Error");
            w.leaf("RequestId", request_id);
            w.close("ErrorResponse");
            finish(
                base(info.status, request_id, "text/xml"),
                w.finish().into_bytes(),
            )
        }
        Protocol::Json | Protocol::RpcV2Cbor => {
            let mut b = if protocol == Protocol::Json {
                base(info.status, request_id, json_content_type(model))
            } else {
                base(info.status, request_id, "application/cbor")
                    .header("smithy-protocol", "rpc-v2-cbor")
            };
            if query_compatible {
                if let Ok(v) =
                    HeaderValue::from_str(&format!("{};{}", info.code, fault(info.sender)))
                {
                    b = b.header("x-amzn-query-error", v);
                }
            }
            let body = if protocol == Protocol::Json {
                let mut map = serde_json::Map::new();
                map.insert("__type".into(), info.type_name.clone().into());
                map.insert(info.message_key.clone(), info.message.clone().into());
                serde_json::to_vec(&map).unwrap_or_default()
            } else {
                cbor::encode_text_map(&[
                    ("__type", &info.type_name),
                    (&info.message_key, &info.message),
                ])
            };
            finish(b, body)
        }
        Protocol::RestJson => {
            let mut b = base(info.status, request_id, "application/json");
            if let Ok(v) = HeaderValue::from_str(&info.code) {
                b = b.header("X-Amzn-ErrorType", v);
            }
            let mut map = serde_json::Map::new();
            map.insert("__type".into(), info.code.clone().into());
            map.insert(info.message_key.clone(), info.message.clone().into());
            finish(b, serde_json::to_vec(&map).unwrap_or_default())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLOUDWATCH: &str = include_str!("../../../models/cloudwatch-2010-08-01.json");

    fn model() -> Model {
        Model::parse(CLOUDWATCH).expect("model")
    }

    fn header<'a>(r: &'a http::Response<Bytes>, name: &str) -> Option<&'a str> {
        r.headers().get(name).and_then(|v| v.to_str().ok())
    }

    #[test]
    fn resolves_modelled_and_unknown_kinds() {
        let m = model();
        let info = resolve(
            Some(&m),
            &ApiError::new("InvalidParameterValueException", "bad"),
        );
        assert_eq!(
            (info.code.as_str(), info.status, info.sender),
            ("InvalidParameterValue", 400, true)
        );
        assert_eq!(info.message_key, "message");
        let info = resolve(Some(&m), &ApiError::new("ResourceNotFound", "nope"));
        assert_eq!((info.code.as_str(), info.status), ("ResourceNotFound", 404));
        let info = resolve(Some(&m), &ApiError::new("ConflictException", "busy"));
        assert_eq!(
            (
                info.code.as_str(),
                info.status,
                info.sender,
                info.message_key.as_str()
            ),
            ("ConflictException", 409, true, "Message")
        );
        let info = resolve(
            Some(&m),
            &ApiError::new("InternalServiceFault", "db exploded at /var/lib/x"),
        );
        assert_eq!(
            (info.code.as_str(), info.status, info.sender),
            ("InternalServiceError", 500, false)
        );
        assert_eq!(info.message, INTERNAL_MESSAGE);
        let info = resolve(
            Some(&m),
            &ApiError::with_status("ThrottlingException", 429, "slow down"),
        );
        assert_eq!(
            (info.code.as_str(), info.status, info.sender),
            ("ThrottlingException", 429, true)
        );
        let info = resolve(None, &ApiError::new("ValidationException", "x"));
        assert_eq!(
            (info.code.as_str(), info.status),
            ("ValidationException", 400)
        );
    }

    #[test]
    fn json_error_has_type_and_query_error_header() {
        let m = model();
        let r = render(
            Protocol::Json,
            Some(&m),
            &ApiError::new("InvalidParameterValueException", "bad value"),
            "rid-1",
        );
        assert_eq!(r.status(), 400);
        assert_eq!(
            header(&r, "content-type"),
            Some("application/x-amz-json-1.0")
        );
        assert_eq!(
            header(&r, "x-amzn-query-error"),
            Some("InvalidParameterValue;Sender")
        );
        assert_eq!(header(&r, "x-amzn-requestid"), Some("rid-1"));
        let body: serde_json::Value = serde_json::from_slice(r.body()).expect("json");
        assert_eq!(
            body,
            serde_json::json!({"__type": "InvalidParameterValueException", "message": "bad value"})
        );
    }

    #[test]
    fn cbor_error_body_is_a_cbor_map() {
        let m = model();
        let r = render(
            Protocol::RpcV2Cbor,
            Some(&m),
            &ApiError::new("MissingRequiredParameterException", "need it"),
            "rid",
        );
        assert_eq!(header(&r, "smithy-protocol"), Some("rpc-v2-cbor"));
        assert_eq!(
            header(&r, "x-amzn-query-error"),
            Some("MissingParameter;Sender")
        );
        let v: ciborium::Value = ciborium::from_reader(&r.body()[..]).expect("cbor");
        let map = v.as_map().expect("map");
        let get = |k: &str| {
            map.iter()
                .find(|(a, _)| a.as_text() == Some(k))
                .and_then(|(_, b)| b.as_text())
        };
        assert_eq!(get("__type"), Some("MissingRequiredParameterException"));
        assert_eq!(get("message"), Some("need it"));
    }

    #[test]
    fn query_error_is_error_response_xml() {
        let m = model();
        let r = render(
            Protocol::Query,
            Some(&m),
            &ApiError::new("InvalidParameterValueException", "a < b & c"),
            "rid-2",
        );
        assert_eq!(header(&r, "content-type"), Some("text/xml"));
        let body = std::str::from_utf8(r.body()).expect("utf8");
        assert!(
            body.contains(
                r#"<ErrorResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/">"#
            ),
            "{body}"
        );
        assert!(body.contains("<Error><Type>Sender</Type><Code>InvalidParameterValue</Code><Message>a &lt; b &amp; c</Message></Error><RequestId>rid-2</RequestId>"), "{body}");
    }

    #[test]
    fn server_errors_hide_details_and_are_receiver_faults() {
        let r = render(
            Protocol::Query,
            None,
            &ApiError::with_status("InternalFailure", 500, "stack trace here"),
            "r",
        );
        assert_eq!(r.status(), 500);
        let body = std::str::from_utf8(r.body()).expect("utf8");
        assert!(
            body.contains("<Type>Receiver</Type>")
                && body.contains(INTERNAL_MESSAGE)
                && !body.contains("stack trace"),
            "{body}"
        );
    }

    #[test]
    fn not_implemented_keeps_its_message() {
        let r = render(
            Protocol::Query,
            None,
            &ApiError::with_status(
                "NotImplemented",
                501,
                "Operation PutDashboard is not implemented by this opsloop release.",
            ),
            "r",
        );
        assert_eq!(r.status(), 501);
        let body = std::str::from_utf8(r.body()).expect("utf8");
        assert!(
            body.contains("<Code>NotImplemented</Code>")
                && body.contains("Operation PutDashboard is not implemented")
                && !body.contains(INTERNAL_MESSAGE),
            "{body}"
        );
    }

    #[test]
    fn rest_json_error_sets_error_type_header() {
        let r = render(
            Protocol::RestJson,
            None,
            &ApiError::with_status("ResourceNotFoundException", 404, "gone"),
            "r",
        );
        assert_eq!(r.status(), 404);
        assert_eq!(
            header(&r, "x-amzn-errortype"),
            Some("ResourceNotFoundException")
        );
        let body: serde_json::Value = serde_json::from_slice(r.body()).expect("json");
        assert_eq!(body["message"], "gone");
    }
}

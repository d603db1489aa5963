//! The unauthenticated HTTP routes messages link to, answered without any HTTP framework so the
//! server can mount them under `/_opsloop/sns/`: the SubscribeURL (`GET confirm?TopicArn&Token`),
//! the UnsubscribeURL (`GET unsubscribe?SubscriptionArn&Signature`, refused for subscriptions
//! confirmed with AuthenticateOnUnsubscribe) and the SigningCertURL (`GET <cert name>.pem`).
//! Answers are SNS-style XML documents (the certificate is PEM).

use opsloop_core::ApiError;

use crate::arn::{SubscriptionArn, TopicArn};
use crate::delivery::body::{unsubscribe_signature, PUBLIC_PREFIX};
use crate::subscriptions;
use crate::Inner;

/// An answer to a public route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

const XMLNS: &str = "http://sns.amazonaws.com/doc/2010-03-31/";

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn xml(status: u16, body: String) -> PublicResponse {
    PublicResponse {
        status,
        content_type: "text/xml",
        body: body.into_bytes(),
    }
}

fn error_response(e: &ApiError) -> PublicResponse {
    let (code, status) = match e.kind.as_str() {
        "InvalidParameterException" => ("InvalidParameter", 400),
        "NotFoundException" => ("NotFound", 404),
        "AuthorizationErrorException" => ("AuthorizationError", 403),
        _ => ("InternalFailure", e.status.unwrap_or(500)),
    };
    xml(
        status,
        format!(
            "<ErrorResponse xmlns=\"{XMLNS}\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
            xml_escape(&e.message),
            uuid::Uuid::new_v4()
        ),
    )
}

fn not_found() -> PublicResponse {
    PublicResponse {
        status: 404,
        content_type: "text/plain; charset=utf-8",
        body: b"not found\n".to_vec(),
    }
}

/// Answer `method path?query`. `path` is the full request path (starting with `/_opsloop/sns/`).
pub(crate) async fn handle(inner: &Inner, method: &str, path: &str, query: &str) -> PublicResponse {
    let Some(rest) = path.strip_prefix(PUBLIC_PREFIX) else {
        return not_found();
    };
    if method != "GET" && method != "HEAD" {
        return PublicResponse {
            status: 405,
            content_type: "text/plain; charset=utf-8",
            body: b"method not allowed\n".to_vec(),
        };
    }
    let param = |name: &str| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    match rest {
        "confirm" => {
            let topic = param("TopicArn").unwrap_or_default();
            let token = param("Token").unwrap_or_default();
            let Some(arn) = TopicArn::parse(&topic) else {
                return error_response(&crate::error::invalid("TopicArn"));
            };
            match subscriptions::confirm(inner, &arn, &token, false) {
                Ok(sub) => xml(
                    200,
                    format!(
                        "<ConfirmSubscriptionResponse xmlns=\"{XMLNS}\"><ConfirmSubscriptionResult><SubscriptionArn>{}</SubscriptionArn></ConfirmSubscriptionResult><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></ConfirmSubscriptionResponse>",
                        xml_escape(&sub),
                        uuid::Uuid::new_v4()
                    ),
                ),
                Err(e) => error_response(&e),
            }
        }
        "unsubscribe" => {
            let sub = param("SubscriptionArn").unwrap_or_default();
            let signature = param("Signature").unwrap_or_default();
            let Some(arn) = SubscriptionArn::parse(&sub) else {
                return error_response(&crate::error::invalid("SubscriptionArn"));
            };
            let expected = unsubscribe_signature(&inner.url_secret, &sub);
            if signature.is_empty() || !constant_time_eq(signature.as_bytes(), expected.as_bytes())
            {
                return error_response(&ApiError::new(
                    crate::error::AUTHORIZATION,
                    "The unsubscribe link is not valid for this subscription",
                ));
            }
            match subscriptions::unsubscribe_arn(inner, &arn, true) {
                Ok(()) => xml(
                    200,
                    format!(
                        "<UnsubscribeResponse xmlns=\"{XMLNS}\"><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></UnsubscribeResponse>",
                        uuid::Uuid::new_v4()
                    ),
                ),
                Err(e) => error_response(&e),
            }
        }
        name if name.ends_with(".pem") => match inner.runtime().await {
            Some(rt) if name == rt.signer.cert_name() || name == "cert.pem" => PublicResponse {
                status: 200,
                content_type: "application/x-pem-file",
                body: rt.signer.cert_pem().as_bytes().to_vec(),
            },
            Some(_) => not_found(),
            None => PublicResponse {
                status: 503,
                content_type: "text/plain; charset=utf-8",
                body: b"the signing certificate is not available\n".to_vec(),
            },
        },
        _ => not_found(),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_render_as_sns_xml() {
        let r = error_response(&crate::error::invalid("Token"));
        assert_eq!(r.status, 400);
        let body = String::from_utf8(r.body).unwrap();
        assert!(body
            .contains("<Code>InvalidParameter</Code><Message>Invalid parameter: Token</Message>"));
        assert_eq!(error_response(&crate::error::topic_not_found()).status, 404);
    }

    #[test]
    fn escaping_and_comparison() {
        assert_eq!(xml_escape("a<b>&\""), "a&lt;b&gt;&amp;&quot;");
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}

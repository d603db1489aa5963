//! Targets: what a schedule's `Target.Arn` means in opsloop and the in-process call that delivers
//! one fire.
//!
//! - Templated targets: an SNS topic ARN → SNS `Publish` (`Input` is the message); an EventBridge
//!   event-bus ARN → EventBridge `PutEvents` (`EventBridgeParameters` give `Source` and
//!   `DetailType`; `Input` is the detail); an SQS queue ARN → SQS `SendMessage` once opsloop
//!   serves SQS.
//! - Universal targets `arn:aws:scheduler:::aws-sdk:<service>:<apiAction>` → `<ApiAction>` of the
//!   opsloop service whose SDK name is `<service>` (e.g. `ssm:startAutomationExecution` → SSM
//!   `StartAutomationExecution`), with `Input` as the request document.
//!
//! Before the call, `Input` has Scheduler's context attributes substituted:
//! `<aws.scheduler.schedule-arn>`, `<aws.scheduler.scheduled-time>`,
//! `<aws.scheduler.execution-id>` and `<aws.scheduler.attempt-number>`.

use opsloop_core::{ApiError, Value};
use serde_json::json;

use crate::model::Delivery;

/// The input a templated target gets when the schedule gives none.
const DEFAULT_INPUT: &str = "{}";

/// What a target ARN points at.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TargetKind {
    SnsTopic {
        region: String,
    },
    EventBus {
        region: String,
    },
    SqsQueue {
        region: String,
    },
    /// `aws-sdk:<service>:<action>`, already mapped to a serviceId and an operation name.
    Universal {
        service_id: String,
        operation: String,
    },
    /// A well-formed ARN of a service opsloop does not deliver to (Lambda, Step Functions, …).
    Other {
        service: String,
    },
}

/// SDK service names (as universal targets spell them) → opsloop serviceIds.
const SERVICES: &[(&str, &str)] = &[
    ("sns", "SNS"),
    ("sqs", "SQS"),
    ("eventbridge", "EventBridge"),
    ("ssm", "SSM"),
    ("cloudwatch", "CloudWatch"),
    ("cloudwatchlogs", "CloudWatch Logs"),
    ("scheduler", "Scheduler"),
    ("ssmcontacts", "SSM Contacts"),
    ("ssmincidents", "SSM Incidents"),
    ("xray", "XRay"),
    ("sfn", "SFN"),
    ("lambda", "Lambda"),
];

/// Classify `arn`; `None` when it is not a target ARN at all.
pub(crate) fn kind_of(arn: &str) -> Option<TargetKind> {
    if let Some(rest) = arn.strip_prefix("arn:aws:scheduler:::aws-sdk:") {
        let (service, action) = rest.split_once(':')?;
        let valid = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric());
        if !valid(service) || !valid(action) || !action.as_bytes()[0].is_ascii_lowercase() {
            return None;
        }
        let service_id = SERVICES
            .iter()
            .find(|(sdk, _)| *sdk == service)
            .map(|(_, id)| id.to_string())
            .unwrap_or_else(|| service.to_string());
        let mut operation = action.to_string();
        operation[..1].make_ascii_uppercase();
        return Some(TargetKind::Universal {
            service_id,
            operation,
        });
    }
    let mut parts = arn.strip_prefix("arn:")?.splitn(5, ':');
    let _partition = parts.next().filter(|p| p.starts_with("aws"))?;
    let service = parts.next().filter(|s| !s.is_empty())?;
    let region = parts.next()?.to_string();
    let _account = parts.next()?;
    let resource = parts.next().filter(|r| !r.is_empty())?;
    Some(match service {
        "sns" => TargetKind::SnsTopic { region },
        "sqs" => TargetKind::SqsQueue { region },
        "events" if resource.starts_with("event-bus/") => TargetKind::EventBus { region },
        _ => TargetKind::Other {
            service: service.to_string(),
        },
    })
}

/// One in-process call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Call {
    pub service_id: String,
    pub region: String,
    pub operation: String,
    pub input: Value,
}

/// Why a delivery cannot even be attempted (never retried).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Unsupported(pub String);

/// `Input` with the context attributes of this attempt filled in.
pub(crate) fn input_text(d: &Delivery) -> String {
    let raw = d
        .target
        .get("Input")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_INPUT);
    raw.replace("<aws.scheduler.schedule-arn>", &d.schedule_arn)
        .replace(
            "<aws.scheduler.scheduled-time>",
            &opsloop_schedule::iso8601_utc(d.scheduled_ms),
        )
        .replace("<aws.scheduler.execution-id>", &d.id)
        .replace(
            "<aws.scheduler.attempt-number>",
            &(d.attempts + 1).to_string(),
        )
}

/// The call that delivers `d`.
pub(crate) fn call_for(d: &Delivery) -> Result<Call, Unsupported> {
    let arn = d
        .target
        .get("Arn")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let input = input_text(d);
    let kind = kind_of(arn).ok_or_else(|| Unsupported(format!("invalid target ARN {arn}")))?;
    Ok(match kind {
        TargetKind::SnsTopic { region } => Call {
            service_id: "SNS".into(),
            region,
            operation: "Publish".into(),
            input: json!({"TopicArn": arn, "Message": input}),
        },
        TargetKind::EventBus { region } => {
            let params = d.target.get("EventBridgeParameters");
            let field = |m: &str| {
                params
                    .and_then(|p| p.get(m))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            };
            Call {
                service_id: "EventBridge".into(),
                region,
                operation: "PutEvents".into(),
                input: json!({"Entries": [{
                    "EventBusName": arn,
                    "Source": field("Source"),
                    "DetailType": field("DetailType"),
                    "Detail": input,
                    "Resources": [d.schedule_arn],
                }]}),
            }
        }
        TargetKind::SqsQueue { region } => {
            let name = arn.rsplit(':').next().unwrap_or_default();
            let mut doc = json!({
                "QueueUrl": format!("{}/{}", d.account, name),
                "MessageBody": input,
            });
            if let Some(group) = d
                .target
                .get("SqsParameters")
                .and_then(|p| p.get("MessageGroupId"))
            {
                doc["MessageGroupId"] = group.clone();
            }
            Call {
                service_id: "SQS".into(),
                region,
                operation: "SendMessage".into(),
                input: doc,
            }
        }
        TargetKind::Universal {
            service_id,
            operation,
        } => {
            let doc: Value = serde_json::from_str(&input)
                .ok()
                .filter(Value::is_object)
                .ok_or_else(|| Unsupported("the target Input is not a JSON object".into()))?;
            Call {
                service_id,
                region: d.region.clone(),
                operation,
                input: doc,
            }
        }
        TargetKind::Other { service } => {
            return Err(Unsupported(format!(
                "opsloop does not deliver to {service} targets ({arn})"
            )))
        }
    })
}

/// Did the target accept the call? `PutEvents` answers 200 with per-entry failures.
pub(crate) fn check_answer(call: &Call, answer: &Value) -> Result<(), ApiError> {
    if call.operation == "PutEvents" && call.service_id == "EventBridge" {
        let failed = answer
            .get("FailedEntryCount")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if failed > 0 {
            let entry = answer.get("Entries").and_then(|e| e.get(0));
            let code = entry
                .and_then(|e| e.get("ErrorCode"))
                .and_then(Value::as_str)
                .unwrap_or("InternalFailure");
            let message = entry
                .and_then(|e| e.get("ErrorMessage"))
                .and_then(Value::as_str)
                .unwrap_or("PutEvents rejected the entry");
            return Err(ApiError::with_status(code, 500, message));
        }
    }
    Ok(())
}

/// Is an error worth another attempt? Throttling and server-side failures are; a rejected
/// request (4xx) is not.
pub(crate) fn retryable(e: &ApiError) -> bool {
    const TRANSIENT: &[&str] = &[
        "ServiceUnavailable",
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "InternalFailure",
        "InternalServerException",
        "InternalError",
        "InternalException",
    ];
    e.status.is_some_and(|s| s >= 500) || TRANSIENT.contains(&e.kind.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(target: Value) -> Delivery {
        Delivery {
            id: "exec-1".into(),
            account: "123456789012".into(),
            region: "us-east-1".into(),
            schedule_arn: "arn:aws:scheduler:us-east-1:123456789012:schedule/default/s".into(),
            scheduled_ms: 1_800_000_000_000,
            target,
            attempts: 2,
            first_attempt_ms: 0,
            next_attempt_ms: 0,
        }
    }

    #[test]
    fn kinds() {
        assert_eq!(
            kind_of("arn:aws:sns:eu-west-1:123456789012:alerts"),
            Some(TargetKind::SnsTopic {
                region: "eu-west-1".into()
            })
        );
        assert_eq!(
            kind_of("arn:aws:events:us-east-1:1:event-bus/default"),
            Some(TargetKind::EventBus {
                region: "us-east-1".into()
            })
        );
        assert_eq!(
            kind_of("arn:aws:events:us-east-1:1:rule/x"),
            Some(TargetKind::Other {
                service: "events".into()
            })
        );
        assert_eq!(
            kind_of("arn:aws:scheduler:::aws-sdk:ssm:startAutomationExecution"),
            Some(TargetKind::Universal {
                service_id: "SSM".into(),
                operation: "StartAutomationExecution".into()
            })
        );
        assert_eq!(
            kind_of("arn:aws:scheduler:::aws-sdk:cloudwatchlogs:putLogEvents"),
            Some(TargetKind::Universal {
                service_id: "CloudWatch Logs".into(),
                operation: "PutLogEvents".into()
            })
        );
        for bad in [
            "",
            "arn",
            "arn:aws:sns",
            "arn:aws:scheduler:::aws-sdk:sns",
            "arn:aws:scheduler:::aws-sdk:sns:Publish",
            "arn:aws:scheduler:::aws-sdk::publish",
            "x:aws:sns:r:1:t",
        ] {
            assert_eq!(kind_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn sns_publish_with_context_attributes() {
        let d = delivery(json!({
            "Arn": "arn:aws:sns:us-east-1:123456789012:alerts",
            "Input": "{\"at\":\"<aws.scheduler.scheduled-time>\",\"arn\":\"<aws.scheduler.schedule-arn>\",\"id\":\"<aws.scheduler.execution-id>\",\"n\":<aws.scheduler.attempt-number>}"
        }));
        let call = call_for(&d).unwrap();
        assert_eq!(
            (call.service_id.as_str(), call.operation.as_str()),
            ("SNS", "Publish")
        );
        let message: Value = serde_json::from_str(call.input["Message"].as_str().unwrap()).unwrap();
        assert_eq!(
            message,
            json!({"at": "2027-01-15T08:00:00Z", "arn": d.schedule_arn, "id": "exec-1", "n": 3})
        );
    }

    #[test]
    fn event_bus_and_universal_and_unsupported() {
        let d = delivery(json!({
            "Arn": "arn:aws:events:us-east-1:123456789012:event-bus/ops",
            "EventBridgeParameters": {"Source": "my.app", "DetailType": "Tick"},
            "Input": "{\"k\":1}"
        }));
        let call = call_for(&d).unwrap();
        assert_eq!(call.operation, "PutEvents");
        let entry = &call.input["Entries"][0];
        assert_eq!(entry["Source"], "my.app");
        assert_eq!(entry["DetailType"], "Tick");
        assert_eq!(entry["Detail"], "{\"k\":1}");
        assert_eq!(
            entry["EventBusName"],
            "arn:aws:events:us-east-1:123456789012:event-bus/ops"
        );

        let u = delivery(
            json!({"Arn": "arn:aws:scheduler:::aws-sdk:ssm:startAutomationExecution", "Input": "{\"DocumentName\":\"AWS-RestartEC2Instance\"}"}),
        );
        let call = call_for(&u).unwrap();
        assert_eq!(call.service_id, "SSM");
        assert_eq!(call.operation, "StartAutomationExecution");
        assert_eq!(
            call.input,
            json!({"DocumentName": "AWS-RestartEC2Instance"})
        );
        assert_eq!(call.region, "us-east-1");

        let lambda = delivery(json!({"Arn": "arn:aws:lambda:us-east-1:1:function:f"}));
        assert!(call_for(&lambda).unwrap_err().0.contains("lambda"));
        let not_object =
            delivery(json!({"Arn": "arn:aws:scheduler:::aws-sdk:sns:publish", "Input": "[1]"}));
        assert!(call_for(&not_object).is_err());
    }

    #[test]
    fn answers_and_retryability() {
        let call = Call {
            service_id: "EventBridge".into(),
            region: "r".into(),
            operation: "PutEvents".into(),
            input: json!({}),
        };
        assert!(check_answer(
            &call,
            &json!({"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]})
        )
        .is_ok());
        let err = check_answer(
            &call,
            &json!({"FailedEntryCount": 1, "Entries": [{"ErrorCode": "X", "ErrorMessage": "m"}]}),
        )
        .unwrap_err();
        assert!(retryable(&err));
        assert!(retryable(&ApiError::with_status(
            "ServiceUnavailable",
            503,
            "down"
        )));
        assert!(retryable(&ApiError::new(
            "ThrottlingException",
            "slow down"
        )));
        assert!(!retryable(&ApiError::new("NotFound", "no topic")));
    }
}

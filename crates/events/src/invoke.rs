//! Target invocation: what one delivery (or a batch of deliveries to one SNS topic) does to its
//! target — SNS `Publish`/`PublishBatch`, forwarding to another bus, CloudWatch Logs, SSM
//! Automation and Run Command, Incident Manager, Step Functions and API destinations — all through
//! the `Directory` (API destinations through `ext`). Failures come back as [`Failure`]s for the
//! dispatcher ([`crate::delivery`]) to retry or dead-letter.

use std::sync::Arc;

use opsloop_core::{ApiError, Value};
use serde_json::{json, Map};

use crate::delivery::{Delivery, Failure};
use crate::targets::TargetKind;
use crate::transform::{self, Context};
use crate::util::{event_time_ms, s};
use crate::{ext, Events};

/// `input` (a JSON object) as SSM parameters: each value a list of strings.
fn ssm_parameters(input: &str) -> Option<Value> {
    let v: Value = serde_json::from_str(input).ok()?;
    let obj = v.as_object()?;
    let mut out = Map::new();
    for (k, v) in obj {
        let list: Vec<Value> = match v {
            Value::String(s) => vec![s.clone().into()],
            Value::Array(a) => a
                .iter()
                .map(|x| match x {
                    Value::String(s) => s.clone().into(),
                    other => other.to_string().into(),
                })
                .collect(),
            other => vec![other.to_string().into()],
        };
        out.insert(k.clone(), Value::Array(list));
    }
    Some(Value::Object(out))
}

impl Events {
    /// Write one log event into `group`/`stream`, creating the stream when needed.
    pub(crate) async fn put_log_event(
        &self,
        account: &str,
        region: &str,
        group: &str,
        stream: &str,
        timestamp_ms: i64,
        message: String,
    ) -> Result<(), ApiError> {
        let create = json!({"logGroupName": group, "logStreamName": stream});
        match self
            .directory
            .invoke(
                "CloudWatch Logs",
                account,
                region,
                "CreateLogStream",
                create,
            )
            .await
        {
            Ok(_) => {}
            Err(e) if e.kind == "ResourceAlreadyExistsException" => {}
            Err(e) => return Err(e),
        }
        let put = json!({
            "logGroupName": group,
            "logStreamName": stream,
            "logEvents": [{"timestamp": timestamp_ms, "message": message}],
        });
        self.directory
            .invoke("CloudWatch Logs", account, region, "PutLogEvents", put)
            .await
            .map(drop)
    }

    /// Invoke the target of `d` once.
    pub(crate) async fn invoke_target(self: &Arc<Self>, d: &Delivery) -> Result<(), Failure> {
        let rule_arn = d.rule_arn();
        let arn = d.target_arn();
        let Some(kind) = TargetKind::of(arn, &d.region) else {
            return Err(Failure {
                retryable: false,
                code: "UnsupportedTarget".into(),
                message: format!("opsloop cannot deliver to {arn}"),
            });
        };
        let cx = Context {
            rule_arn: &rule_arn,
            rule_name: &d.rule,
            ingestion_ms: d.accepted_ms,
        };
        let input = || transform::render(&d.target, &d.event, &cx);
        let event_id = s(d.event.value(), "id").unwrap_or_default();
        let dir = &self.directory;
        let r = match kind {
            TargetKind::Sns {
                account,
                region,
                topic_arn,
            } => dir
                .invoke(
                    "SNS",
                    &account,
                    &region,
                    "Publish",
                    json!({"TopicArn": topic_arn, "Message": input()}),
                )
                .await
                .map(drop),
            TargetKind::Bus {
                account,
                region,
                name,
            } => {
                return self
                    .forward_boxed(account, region, name, d.event.value().clone())
                    .await
                    .map_err(Failure::from);
            }
            TargetKind::LogGroup {
                account,
                region,
                group,
            } => {
                let text = input();
                // A transformer for a log group renders {"timestamp": .., "message": ..}.
                let (ts, message) = match serde_json::from_str::<Value>(&text) {
                    Ok(Value::Object(o))
                        if o.contains_key("message")
                            && d.target.get("InputTransformer").is_some() =>
                    {
                        (
                            o.get("timestamp")
                                .and_then(Value::as_i64)
                                .unwrap_or(d.accepted_ms),
                            match o.get("message") {
                                Some(Value::String(s)) => s.clone(),
                                Some(v) => v.to_string(),
                                None => String::new(),
                            },
                        )
                    }
                    _ => (
                        event_time_ms(d.event.value()).unwrap_or(d.accepted_ms),
                        text,
                    ),
                };
                self.put_log_event(&account, &region, &group, event_id, ts, message)
                    .await
            }
            TargetKind::SsmAutomation {
                account,
                region,
                document,
                version,
            } => {
                let mut req = json!({"DocumentName": document});
                if let Some(v) = version {
                    req["DocumentVersion"] = v.into();
                }
                if let Some(p) = ssm_parameters(&input()) {
                    req["Parameters"] = p;
                }
                dir.invoke("SSM", &account, &region, "StartAutomationExecution", req)
                    .await
                    .map(drop)
            }
            TargetKind::SsmRunCommand {
                account,
                region,
                document,
            } => {
                let mut req = json!({
                    "DocumentName": document,
                    "Targets": d.target.get("RunCommandParameters").and_then(|p| p.get("RunCommandTargets")).cloned().unwrap_or(Value::Null),
                });
                if let Some(p) = ssm_parameters(&input()) {
                    req["Parameters"] = p;
                }
                dir.invoke("SSM", &account, &region, "SendCommand", req)
                    .await
                    .map(drop)
            }
            TargetKind::ResponsePlan {
                account,
                region,
                arn,
            } => {
                let req = json!({
                    "responsePlanArn": arn,
                    "clientToken": format!("{event_id}-{}", s(&d.target, "Id").unwrap_or_default()),
                    "triggerDetails": {
                        "source": "aws.events",
                        "triggerArn": rule_arn,
                        "timestamp": event_time_ms(d.event.value()).unwrap_or(d.accepted_ms) as f64 / 1000.0,
                        "rawData": input(),
                    },
                });
                dir.invoke("SSM Incidents", &account, &region, "StartIncident", req)
                    .await
                    .map(drop)
            }
            TargetKind::StateMachine {
                account,
                region,
                arn,
            } => dir
                .invoke(
                    "SFN",
                    &account,
                    &region,
                    "StartExecution",
                    json!({"stateMachineArn": arn, "input": input()}),
                )
                .await
                .map(drop),
            TargetKind::ApiDestination {
                account,
                region,
                arn,
            } => {
                let params = d
                    .target
                    .get("HttpParameters")
                    .cloned()
                    .unwrap_or(Value::Null);
                return ext::invoke_api_destination(
                    self,
                    &account,
                    &region,
                    &arn,
                    input(),
                    &params,
                )
                .await
                .map_err(|f| Failure {
                    retryable: f.retryable,
                    code: "ApiDestinationFailure".into(),
                    message: f.message,
                });
            }
        };
        r.map_err(Failure::from)
    }

    /// [`Events::forward`] boxed (delivery → forward → accept is recursive through the dispatcher).
    fn forward_boxed(
        &self,
        account: String,
        region: String,
        name: String,
        event: Value,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), ApiError>> + Send + '_>>
    {
        Box::pin(async move { self.forward(&account, &region, &name, event).await })
    }
}

/// Most messages sent to one topic in one call (as many as SNS's `PublishBatch` takes).
pub const MAX_BATCH: usize = 10;

/// SNS's in-process publish of plain messages (see the SNS crate; not a wire operation).
const SNS_PUBLISH_MESSAGES: &str = "OpsloopPublishMessages";

/// The SNS topic a first attempt of `d` can share a `PublishBatch` with: standard (not FIFO)
/// topics only. `None`: `d` is invoked on its own.
pub(crate) fn batch_topic(d: &Delivery) -> Option<&str> {
    d.target.batch_topic.then_some(d.target.arn.as_str())
}

/// The message of `d` for its target (its `Input`, `InputPath` or `InputTransformer` applied).
fn render(d: &Delivery) -> String {
    if d.target.verbatim {
        return d.event.text().to_string();
    }
    // Only an input transformer can use the rule's ARN.
    let rule_arn = if d.target.get("InputTransformer").is_some() {
        d.rule_arn()
    } else {
        String::new()
    };
    let cx = Context {
        rule_arn: &rule_arn,
        rule_name: &d.rule,
        ingestion_ms: d.accepted_ms,
    };
    transform::render(&d.target, &d.event, &cx)
}

impl Events {
    /// Invoke deliveries that all target SNS topic `topic_arn` (at most [`MAX_BATCH`]) with one
    /// in-process `OpsloopPublishMessages` call carrying every rendered message: SNS checks each
    /// as Publish would and stores and fans it out as Publish does, without PublishBatch's
    /// per-entry request documents. One result per delivery, in order.
    pub(crate) async fn invoke_sns_batch(
        &self,
        topic_arn: &str,
        ds: &[Delivery],
    ) -> Vec<Result<(), Failure>> {
        let Some(first) = ds.first() else {
            return Vec::new();
        };
        let Some(TargetKind::Sns {
            account, region, ..
        }) = TargetKind::of(topic_arn, &first.region)
        else {
            return ds
                .iter()
                .map(|_| {
                    Err(Failure {
                        retryable: false,
                        code: "UnsupportedTarget".into(),
                        message: format!("opsloop cannot deliver to {topic_arn}"),
                    })
                })
                .collect();
        };
        let messages: Vec<Value> = ds.iter().map(|d| Value::String(render(d))).collect();
        let answer = self
            .directory
            .invoke(
                "SNS",
                &account,
                &region,
                SNS_PUBLISH_MESSAGES,
                json!({"TopicArn": topic_arn, "Messages": messages}),
            )
            .await;
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                let f = Failure::from(e);
                return ds.iter().map(|_| Err(f.clone())).collect();
            }
        };
        let mut out: Vec<Result<(), Failure>> = ds.iter().map(|_| Ok(())).collect();
        let failed = answer.get("Failed").and_then(Value::as_array);
        for e in failed.map(Vec::as_slice).unwrap_or_default() {
            let Some(i) = e
                .get("Index")
                .and_then(Value::as_u64)
                .and_then(|i| usize::try_from(i).ok())
                .filter(|i| *i < out.len())
            else {
                continue;
            };
            let code = s(e, "Code").unwrap_or("InternalFailure");
            out[i] = Err(Failure {
                retryable: !e
                    .get("SenderFault")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                code: if code.ends_with("Exception") {
                    code.to_string()
                } else {
                    format!("{code}Exception")
                },
                message: s(e, "Message").unwrap_or_default().to_string(),
            });
        }
        let published = answer.get("Published").and_then(Value::as_u64);
        let ok = out.iter().filter(|r| r.is_ok()).count() as u64;
        if published != Some(ok) {
            // An answer that does not account for every message: treat all as not delivered.
            let f = Failure {
                retryable: true,
                code: "InternalFailure".into(),
                message: format!("{SNS_PUBLISH_MESSAGES} answered {answer}"),
            };
            return ds.iter().map(|_| Err(f.clone())).collect();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssm_parameter_mapping() {
        assert_eq!(
            ssm_parameters(r#"{"InstanceId": "i-1", "Ids": ["a", 2], "N": 3}"#),
            Some(json!({"InstanceId": ["i-1"], "Ids": ["a", "2"], "N": ["3"]}))
        );
        assert_eq!(ssm_parameters("\"x\""), None);
    }
}

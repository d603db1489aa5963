//! Targets of rules: PutTargets, RemoveTargets, ListTargetsByRule, the validation of a target
//! (ARN kind, Input / InputPath / InputTransformer, RunCommandParameters, DeadLetterConfig), and
//! [`TargetKind`] — what a target ARN means to delivery — and [`Target`], a rule's target with what
//! delivery reads of it on every event worked out once.
//!
//! Dead-letter destinations: AWS uses SQS queues, which opsloop does not host. A
//! `DeadLetterConfig.Arn` here is an SNS topic (`arn:aws:sns:...`) or a CloudWatch Logs log group
//! (`arn:aws:logs:...:log-group:NAME`); an SQS ARN is refused with a ValidationException that says so.

use std::sync::Arc;

use opsloop_core::{ApiError, RequestContext, Value};
use serde_json::json;

use crate::rules::check_managed;
use crate::transform;
use crate::util::{arn_parts, s, validation};
use crate::Events;

/// Most targets per rule (AWS's quota).
pub const MAX_TARGETS_PER_RULE: usize = 5;

/// A rule's target: the document as given to PutTargets (what is stored and listed, and what
/// `Deref` shows) plus what delivery reads of it for every event, worked out once per rule version
/// and shared by the rule and its deliveries.
#[derive(Debug, Clone)]
pub struct Target {
    doc: Value,
    /// `Id`.
    pub id: String,
    /// `Arn`.
    pub arn: String,
    /// No `Input`, `InputPath` or `InputTransformer`: the message is the event itself.
    pub verbatim: bool,
    /// A standard (not FIFO) SNS topic: first attempts may share one publish call.
    pub batch_topic: bool,
}

impl Target {
    pub fn new(doc: Value) -> Target {
        let arn = s(&doc, "Arn").unwrap_or_default().to_string();
        let batch_topic = matches!(TargetKind::of(&arn, ""), Some(TargetKind::Sns { .. }))
            && !arn.ends_with(".fifo");
        Target {
            id: s(&doc, "Id").unwrap_or_default().to_string(),
            verbatim: ["Input", "InputPath", "InputTransformer"]
                .iter()
                .all(|k| doc.get(k).is_none()),
            batch_topic,
            arn,
            doc,
        }
    }

    /// The target document.
    pub fn doc(&self) -> &Value {
        &self.doc
    }
}

impl std::ops::Deref for Target {
    type Target = Value;
    fn deref(&self) -> &Value {
        &self.doc
    }
}

impl PartialEq for Target {
    fn eq(&self, other: &Target) -> bool {
        self.doc == other.doc
    }
}

impl serde::Serialize for Target {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        self.doc.serialize(ser)
    }
}

impl<'de> serde::Deserialize<'de> for Target {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Target, D::Error> {
        Value::deserialize(d).map(Target::new)
    }
}

/// What a target ARN names, as far as delivery is concerned.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetKind {
    /// `arn:aws:sns:region:account:topic`
    Sns {
        account: String,
        region: String,
        topic_arn: String,
    },
    /// `arn:aws:events:region:account:event-bus/name`
    Bus {
        account: String,
        region: String,
        name: String,
    },
    /// `arn:aws:logs:region:account:log-group:name[:*]`
    LogGroup {
        account: String,
        region: String,
        group: String,
    },
    /// `arn:aws:ssm:region:account:automation-definition/name[:version]`
    SsmAutomation {
        account: String,
        region: String,
        document: String,
        version: Option<String>,
    },
    /// `arn:aws:ssm:region:account:document/name` (Run Command; needs RunCommandParameters)
    SsmRunCommand {
        account: String,
        region: String,
        document: String,
    },
    /// `arn:aws:ssm-incidents::account:response-plan/name`
    ResponsePlan {
        account: String,
        region: String,
        arn: String,
    },
    /// `arn:aws:states:region:account:stateMachine:name`
    StateMachine {
        account: String,
        region: String,
        arn: String,
    },
    /// `arn:aws:events:region:account:api-destination/name/uuid`
    ApiDestination {
        account: String,
        region: String,
        arn: String,
    },
}

impl TargetKind {
    /// Classify `arn`; `None` when opsloop cannot deliver to it.
    pub fn of(arn: &str, ctx_region: &str) -> Option<TargetKind> {
        let (service, region, account, res) = arn_parts(arn)?;
        let (account, region) = (account.to_string(), region.to_string());
        if account.is_empty() {
            return None;
        }
        match service {
            "sns" if !res.is_empty() && !res.contains(':') => Some(TargetKind::Sns {
                account,
                region,
                topic_arn: arn.to_string(),
            }),
            "events" => {
                if let Some(name) = res.strip_prefix("event-bus/") {
                    Some(TargetKind::Bus {
                        account,
                        region,
                        name: name.to_string(),
                    })
                } else if res.starts_with("api-destination/") {
                    Some(TargetKind::ApiDestination {
                        account,
                        region,
                        arn: arn.to_string(),
                    })
                } else {
                    None
                }
            }
            "logs" => {
                let g = res.strip_prefix("log-group:")?;
                let g = g.strip_suffix(":*").unwrap_or(g);
                (!g.is_empty()).then(|| TargetKind::LogGroup {
                    account,
                    region,
                    group: g.to_string(),
                })
            }
            "ssm" => {
                if let Some(d) = res.strip_prefix("automation-definition/") {
                    let (document, version) = match d.split_once(':') {
                        Some((n, v)) => (n.to_string(), Some(v.to_string())),
                        None => (d.to_string(), None),
                    };
                    Some(TargetKind::SsmAutomation {
                        account,
                        region,
                        document,
                        version,
                    })
                } else {
                    res.strip_prefix("document/")
                        .map(|d| TargetKind::SsmRunCommand {
                            account,
                            region,
                            document: d.to_string(),
                        })
                }
            }
            "ssm-incidents" if res.starts_with("response-plan/") => {
                Some(TargetKind::ResponsePlan {
                    account,
                    region: if region.is_empty() {
                        ctx_region.to_string()
                    } else {
                        region
                    },
                    arn: arn.to_string(),
                })
            }
            "states" if res.starts_with("stateMachine:") => Some(TargetKind::StateMachine {
                account,
                region,
                arn: arn.to_string(),
            }),
            _ => None,
        }
    }
}

/// Check a `DeadLetterConfig` document.
pub fn validate_dead_letter(dlq: &Value) -> Result<(), ApiError> {
    let Some(arn) = s(dlq, "Arn") else {
        return Ok(());
    };
    match arn_parts(arn) {
        Some(("sqs", ..)) => Err(validation(format!(
            "DeadLetterConfig.Arn {arn} is an SQS queue, which opsloop does not host: use an SNS topic ARN (arn:aws:sns:...) or a CloudWatch Logs log group ARN (arn:aws:logs:...:log-group:NAME)."
        ))),
        Some(("sns", _, acct, res)) if !acct.is_empty() && !res.is_empty() => Ok(()),
        Some(("logs", _, acct, res)) if !acct.is_empty() && res.starts_with("log-group:") => Ok(()),
        _ => Err(validation(format!(
            "DeadLetterConfig.Arn {arn} is not valid: use an SNS topic ARN or a CloudWatch Logs log group ARN."
        ))),
    }
}

/// Validate one target; `Err` is a whole-call ValidationException, `Ok(Some((code, msg)))` a failed
/// entry.
fn check_target(t: &Value, region: &str) -> Result<Option<(String, String)>, ApiError> {
    let id = s(t, "Id").unwrap_or_default();
    let arn = s(t, "Arn").unwrap_or_default();
    let given = ["Input", "InputPath", "InputTransformer"]
        .iter()
        .filter(|k| t.get(**k).is_some_and(|v| !v.is_null()))
        .count();
    if given > 1 {
        return Err(validation(format!(
            "Target {id}: only one of Input, InputPath, or InputTransformer must be provided."
        )));
    }
    if let Some(input) = s(t, "Input") {
        if serde_json::from_str::<Value>(input).is_err() {
            return Err(validation(format!(
                "Target {id}: Input is not valid JSON text."
            )));
        }
    }
    if let Some(p) = s(t, "InputPath") {
        transform::parse_path(p)
            .map_err(|e| validation(format!("Target {id}: InputPath {p} is not valid: {e}")))?;
    }
    if let Some(tr) = t.get("InputTransformer") {
        transform::validate_transformer(tr).map_err(|e| validation(format!("Target {id}: {e}")))?;
    }
    if let Some(dlq) = t.get("DeadLetterConfig") {
        validate_dead_letter(dlq)?;
    }
    let Some(kind) = TargetKind::of(arn, region) else {
        return Ok(Some((
            "ValidationException".into(),
            format!(
                "Target {id}: opsloop cannot deliver to {arn} (supported: SNS topics, event buses, CloudWatch Logs log groups, SSM Automation and Run Command, Incident Manager response plans, Step Functions state machines, API destinations)."
            ),
        )));
    };
    match kind {
        TargetKind::SsmRunCommand { .. } if t.get("RunCommandParameters").is_none() => {
            return Err(validation(format!(
                "Target {id}: RunCommandParameters is required for a Run Command target."
            )));
        }
        TargetKind::Bus { .. } if given > 0 => {
            return Err(validation(format!(
                "Target {id}: Input, InputPath and InputTransformer are not supported for event bus targets."
            )));
        }
        _ => {}
    }
    if t.get("RunCommandParameters").is_some() && !matches!(kind, TargetKind::SsmRunCommand { .. })
    {
        return Err(validation(format!(
            "Target {id}: RunCommandParameters is only valid for SSM document targets."
        )));
    }
    Ok(None)
}

impl Events {
    pub(crate) fn put_targets(
        &self,
        ctx: &RequestContext,
        input: &Value,
    ) -> Result<Value, ApiError> {
        let targets: Vec<Value> = input
            .get("Targets")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut failed = Vec::new();
        let mut accepted = Vec::new();
        for t in targets {
            match check_target(&t, &ctx.region)? {
                Some((code, msg)) => failed.push(json!({
                    "TargetId": s(&t, "Id").unwrap_or_default(),
                    "ErrorCode": code,
                    "ErrorMessage": msg,
                })),
                None => accepted.push(t),
            }
        }
        let _guard = self.write_lock.lock();
        let rule = self.existing_rule(ctx, input, "Rule")?;
        check_managed(ctx, &rule, false)?;
        let mut r = (*rule).clone();
        for t in accepted {
            let id = s(&t, "Id").unwrap_or_default().to_string();
            match r
                .targets
                .iter_mut()
                .find(|x| s(x, "Id") == Some(id.as_str()))
            {
                Some(slot) => *slot = Arc::new(Target::new(t)),
                None => r.targets.push(Arc::new(Target::new(t))),
            }
        }
        if r.targets.len() > MAX_TARGETS_PER_RULE {
            return Err(ApiError::new(
                "LimitExceededException",
                format!(
                    "The requested resource exceeds the maximum number allowed ({MAX_TARGETS_PER_RULE} targets per rule)."
                ),
            ));
        }
        if r.targets != rule.targets {
            self.store_rule(r)?;
        }
        Ok(json!({ "FailedEntryCount": failed.len(), "FailedEntries": failed }))
    }

    pub(crate) fn remove_targets(
        &self,
        ctx: &RequestContext,
        input: &Value,
    ) -> Result<Value, ApiError> {
        let ids: Vec<&str> = input
            .get("Ids")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let _guard = self.write_lock.lock();
        let rule = self.existing_rule(ctx, input, "Rule")?;
        let force = input.get("Force").and_then(Value::as_bool) == Some(true);
        check_managed(ctx, &rule, force)?;
        let mut r = (*rule).clone();
        let mut failed = Vec::new();
        for id in ids {
            let before = r.targets.len();
            r.targets.retain(|t| s(t, "Id") != Some(id));
            if r.targets.len() == before {
                failed.push(json!({
                    "TargetId": id,
                    "ErrorCode": "ResourceNotFoundException",
                    "ErrorMessage": format!("Target {id} does not exist on rule {}.", rule.name),
                }));
            }
        }
        if r.targets.len() != rule.targets.len() {
            self.store_rule(r)?;
        }
        Ok(json!({ "FailedEntryCount": failed.len(), "FailedEntries": failed }))
    }

    pub(crate) fn list_targets_by_rule(
        &self,
        ctx: &RequestContext,
        input: &Value,
    ) -> Result<Value, ApiError> {
        let rule = self.existing_rule(ctx, input, "Rule")?;
        let mut items: Vec<(String, Value)> = rule
            .targets
            .iter()
            .map(|t| (t.id.clone(), t.doc().clone()))
            .collect();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        let (targets, next) = crate::util::page(&items, input)?;
        let mut out = json!({ "Targets": targets });
        if let Some(t) = next {
            out["NextToken"] = t.into();
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_know_what_delivery_reads() {
        let t = Target::new(json!({"Id": "a", "Arn": "arn:aws:sns:us-east-1:111122223333:t"}));
        assert_eq!(
            (t.id.as_str(), t.verbatim, t.batch_topic),
            ("a", true, true)
        );
        let fifo =
            Target::new(json!({"Id": "f", "Arn": "arn:aws:sns:us-east-1:111122223333:t.fifo"}));
        assert!(!fifo.batch_topic);
        let logs = Target::new(
            json!({"Id": "l", "Arn": "arn:aws:logs:us-east-1:111122223333:log-group:g", "InputPath": "$.detail"}),
        );
        assert!(!logs.batch_topic && !logs.verbatim);
        let stored = serde_json::to_string(&vec![Arc::new(t.clone())]).unwrap();
        assert_eq!(stored, format!("[{}]", t.doc()));
        let back: Vec<Arc<Target>> = serde_json::from_str(&stored).unwrap();
        assert_eq!(*back[0], t);
        assert_eq!(back[0].id, "a");
    }

    #[test]
    fn classifies_target_arns() {
        assert!(matches!(
            TargetKind::of("arn:aws:sns:us-east-1:111122223333:t", "us-east-1"),
            Some(TargetKind::Sns { .. })
        ));
        assert_eq!(
            TargetKind::of(
                "arn:aws:logs:us-east-1:1:log-group:/aws/events/x:*",
                "us-east-1"
            ),
            Some(TargetKind::LogGroup {
                account: "1".into(),
                region: "us-east-1".into(),
                group: "/aws/events/x".into()
            })
        );
        assert_eq!(
            TargetKind::of(
                "arn:aws:ssm:us-east-1:1:automation-definition/Doc:$DEFAULT",
                "us-east-1"
            ),
            Some(TargetKind::SsmAutomation {
                account: "1".into(),
                region: "us-east-1".into(),
                document: "Doc".into(),
                version: Some("$DEFAULT".into())
            })
        );
        assert!(matches!(
            TargetKind::of("arn:aws:ssm-incidents::1:response-plan/p", "eu-west-1"),
            Some(TargetKind::ResponsePlan { region, .. }) if region == "eu-west-1"
        ));
        assert!(TargetKind::of("arn:aws:lambda:us-east-1:1:function:f", "us-east-1").is_none());
        assert!(TargetKind::of("nonsense", "us-east-1").is_none());
    }

    #[test]
    fn dead_letter_destinations() {
        assert!(validate_dead_letter(&json!({"Arn": "arn:aws:sns:us-east-1:1:dlq"})).is_ok());
        assert!(
            validate_dead_letter(&json!({"Arn": "arn:aws:logs:us-east-1:1:log-group:dlq"})).is_ok()
        );
        let e = validate_dead_letter(&json!({"Arn": "arn:aws:sqs:us-east-1:1:q"})).unwrap_err();
        assert!(e.message.contains("SQS"), "{}", e.message);
    }

    #[test]
    fn target_validation() {
        let t = json!({"Id": "a", "Arn": "arn:aws:sns:r:1:t", "Input": "{", });
        assert!(check_target(&t, "r").is_err());
        let t = json!({"Id": "a", "Arn": "arn:aws:sns:r:1:t", "Input": "{}", "InputPath": "$"});
        assert!(check_target(&t, "r").is_err());
        let t = json!({"Id": "a", "Arn": "arn:aws:ssm:r:1:document/AWS-RunShellScript"});
        assert!(check_target(&t, "r").is_err());
        let t = json!({"Id": "a", "Arn": "arn:aws:lambda:r:1:function:f"});
        assert!(check_target(&t, "r").unwrap().is_some());
        let t = json!({"Id": "a", "Arn": "arn:aws:sns:r:1:t", "InputPath": "$.detail"});
        assert!(check_target(&t, "r").unwrap().is_none());
    }
}

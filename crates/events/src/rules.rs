//! Rule operations: PutRule, DescribeRule, ListRules, Enable/DisableRule, DeleteRule,
//! ListRuleNamesByTarget, TestEventPattern, and tags on rules and buses (TagResource,
//! UntagResource, ListTagsForResource). Rules managed by an AWS service (`ManagedBy`, set only by
//! opsloop's own services) refuse changes from callers unless `Force` is given where AWS has it.

use std::sync::Arc;

use opsloop_core::{ApiError, RequestContext, Value};
use opsloop_store::WriteOp;
use serde_json::json;

use crate::model::{parse_pattern, StoredRule};
use crate::util::{
    self, arn_parts, internal, is_internal, not_found, s, validation, DEFAULT_BUS, T_RULE,
};
use crate::Events;

/// Most rules per bus. AWS's default quota is 300 and can be raised on request; opsloop has no
/// quota service, so it allows what its matcher is benchmarked with.
pub const MAX_RULES_PER_BUS: usize = 10_000;

/// Fields an event must have to be tested against a pattern.
const EVENT_FIELDS: [&str; 6] = ["id", "account", "source", "time", "region", "detail-type"];

fn managed_error(rule: &StoredRule) -> ApiError {
    ApiError::new(
        "ManagedRuleException",
        format!(
            "Rule {} is managed by {} and cannot be changed; use Force where the operation allows it.",
            rule.name,
            rule.managed_by.as_deref().unwrap_or("an AWS service")
        ),
    )
}

/// Whether `ctx` may change `rule` (`force`: the caller passed `Force: true`).
pub(crate) fn check_managed(
    ctx: &RequestContext,
    rule: &StoredRule,
    force: bool,
) -> Result<(), ApiError> {
    if rule.managed_by.is_some() && !force && !is_internal(ctx) {
        return Err(managed_error(rule));
    }
    Ok(())
}

fn force(input: &Value) -> bool {
    input.get("Force").and_then(Value::as_bool) == Some(true)
}

/// A tagged resource named by ARN.
enum Tagged {
    Bus(String),
    Rule { bus: String, name: String },
}

fn tagged(ctx: &RequestContext, arn: &str) -> Result<Tagged, ApiError> {
    let nf = || not_found(format!("Resource {arn} does not exist."));
    let Some(("events", region, account, res)) = arn_parts(arn) else {
        return Err(nf());
    };
    if account != ctx.account_id || region != ctx.region {
        return Err(nf());
    }
    if let Some(bus) = res.strip_prefix("event-bus/") {
        return Ok(Tagged::Bus(bus.to_string()));
    }
    if let Some(rest) = res.strip_prefix("rule/") {
        return Ok(match rest.rsplit_once('/') {
            Some((bus, name)) => Tagged::Rule {
                bus: bus.to_string(),
                name: name.to_string(),
            },
            None => Tagged::Rule {
                bus: DEFAULT_BUS.to_string(),
                name: rest.to_string(),
            },
        });
    }
    Err(nf())
}

impl Events {
    pub(crate) fn store_rule(&self, rule: StoredRule) -> Result<(), ApiError> {
        let bytes = serde_json::to_vec(&rule).map_err(internal)?;
        self.control
            .put(T_RULE, &rule.key(), &bytes)
            .map_err(internal)?;
        let schedule = rule.schedule.is_some();
        self.registry.put_rule(rule);
        if schedule {
            self.schedule_changed();
        }
        Ok(())
    }

    /// The rule named in `input` (`Name` or `Rule`, `EventBusName`), or ResourceNotFoundException.
    pub(crate) fn existing_rule(
        &self,
        ctx: &RequestContext,
        input: &Value,
        member: &str,
    ) -> Result<Arc<StoredRule>, ApiError> {
        let bus = self.existing_bus(ctx, s(input, "EventBusName"))?;
        let name = s(input, member).unwrap_or_default();
        self.registry
            .rule(&bus.account, &bus.region, &bus.name, name)
            .ok_or_else(|| {
                not_found(format!(
                    "Rule {name} does not exist on EventBus {}.",
                    bus.name
                ))
            })
    }

    pub(crate) fn put_rule(&self, ctx: &RequestContext, input: &Value) -> Result<Value, ApiError> {
        let name = s(input, "Name").unwrap_or_default();
        let pattern = s(input, "EventPattern");
        let schedule = s(input, "ScheduleExpression");
        if pattern.is_none() && schedule.is_none() {
            return Err(validation(
                "Parameter(s) EventPattern or ScheduleExpression must be specified.",
            ));
        }
        if let Some(p) = pattern {
            parse_pattern(p)?;
        }
        if let Some(x) = schedule {
            opsloop_schedule::parse_rule_expression(x).map_err(|e| validation(e.0))?;
        }
        let _guard = self.write_lock.lock();
        let bus = self.existing_bus(ctx, s(input, "EventBusName"))?;
        if schedule.is_some() && bus.name != DEFAULT_BUS {
            return Err(validation(
                "ScheduleExpression is supported only on the default event bus.",
            ));
        }
        let now = util::now_ms();
        let existing = self
            .registry
            .rule(&bus.account, &bus.region, &bus.name, name);
        let rule = match existing {
            Some(old) => {
                check_managed(ctx, &old, false)?;
                let mut r = (*old).clone();
                if r.schedule.as_deref() != schedule {
                    r.schedule_anchor_ms = now;
                }
                r.pattern = pattern.map(str::to_string);
                r.schedule = schedule.map(str::to_string);
                if let Some(st) = s(input, "State") {
                    r.state = st.to_string();
                }
                if let Some(d) = s(input, "Description") {
                    r.description = Some(d.to_string());
                }
                if let Some(d) = s(input, "RoleArn") {
                    r.role_arn = Some(d.to_string());
                }
                util::merge_tags(&mut r.tags, util::tags_of(input));
                r
            }
            None => {
                if self
                    .registry
                    .rule_count(&bus.account, &bus.region, &bus.name)
                    >= MAX_RULES_PER_BUS
                {
                    return Err(ApiError::new(
                        "LimitExceededException",
                        format!(
                            "The requested resource exceeds the maximum number allowed ({MAX_RULES_PER_BUS} rules on event bus {}).",
                            bus.name
                        ),
                    ));
                }
                StoredRule {
                    account: bus.account.clone(),
                    region: bus.region.clone(),
                    bus: bus.name.clone(),
                    name: name.to_string(),
                    pattern: pattern.map(str::to_string),
                    schedule: schedule.map(str::to_string),
                    state: s(input, "State").unwrap_or("ENABLED").to_string(),
                    description: s(input, "Description").map(str::to_string),
                    role_arn: s(input, "RoleArn").map(str::to_string),
                    managed_by: if is_internal(ctx) {
                        s(input, "ManagedBy").map(str::to_string)
                    } else {
                        None
                    },
                    created_ms: now,
                    schedule_anchor_ms: now,
                    targets: Vec::new(),
                    tags: util::tags_of(input),
                    counters: Default::default(),
                }
            }
        };
        let arn = rule.arn();
        self.store_rule(rule)?;
        Ok(json!({ "RuleArn": arn }))
    }

    pub(crate) fn describe_rule(
        &self,
        ctx: &RequestContext,
        input: &Value,
    ) -> Result<Value, ApiError> {
        let rule = self.existing_rule(ctx, input, "Name")?;
        let mut d = rule.doc();
        d["CreatedBy"] = rule.account.clone().into();
        Ok(d)
    }

    pub(crate) fn list_rules(
        &self,
        ctx: &RequestContext,
        input: &Value,
    ) -> Result<Value, ApiError> {
        let bus = self.existing_bus(ctx, s(input, "EventBusName"))?;
        let prefix = s(input, "NamePrefix").unwrap_or("");
        let items: Vec<(String, Value)> = self
            .registry
            .rules(&bus.account, &bus.region, &bus.name)
            .iter()
            .filter(|r| r.name.starts_with(prefix))
            .map(|r| (r.name.clone(), r.doc()))
            .collect();
        let (rules, next) = util::page(&items, input)?;
        let mut out = json!({ "Rules": rules });
        if let Some(t) = next {
            out["NextToken"] = t.into();
        }
        Ok(out)
    }

    pub(crate) fn set_rule_state(
        &self,
        ctx: &RequestContext,
        input: &Value,
        state: &str,
    ) -> Result<Value, ApiError> {
        let _guard = self.write_lock.lock();
        let rule = self.existing_rule(ctx, input, "Name")?;
        check_managed(ctx, &rule, false)?;
        let mut r = (*rule).clone();
        if r.state != state {
            if state != "DISABLED" && r.schedule.is_some() && !r.enabled() {
                // A schedule re-enabled counts from now, not from the time it was disabled.
                r.schedule_anchor_ms = util::now_ms();
            }
            r.state = state.to_string();
            let schedule = r.schedule.is_some();
            self.store_rule(r)?;
            if schedule {
                self.schedule_changed();
            }
        }
        Ok(json!({}))
    }

    pub(crate) fn delete_rule(
        &self,
        ctx: &RequestContext,
        input: &Value,
    ) -> Result<Value, ApiError> {
        let _guard = self.write_lock.lock();
        let bus = self.existing_bus(ctx, s(input, "EventBusName"))?;
        let name = s(input, "Name").unwrap_or_default();
        let Some(rule) = self
            .registry
            .rule(&bus.account, &bus.region, &bus.name, name)
        else {
            return Ok(json!({}));
        };
        check_managed(ctx, &rule, force(input))?;
        if !rule.targets.is_empty() {
            return Err(validation("Rule can't be deleted since it has targets."));
        }
        self.control
            .batch(vec![
                WriteOp::Delete {
                    table: T_RULE.into(),
                    key: rule.key(),
                },
                WriteOp::Delete {
                    table: util::T_SCHED.into(),
                    key: rule.key(),
                },
            ])
            .map_err(internal)?;
        self.registry
            .remove_rule(&bus.account, &bus.region, &bus.name, name);
        if rule.schedule.is_some() {
            self.schedule_changed();
        }
        Ok(json!({}))
    }

    pub(crate) fn list_rule_names_by_target(
        &self,
        ctx: &RequestContext,
        input: &Value,
    ) -> Result<Value, ApiError> {
        let bus = self.existing_bus(ctx, s(input, "EventBusName"))?;
        let target = s(input, "TargetArn").unwrap_or_default();
        let items: Vec<(String, String)> = self
            .registry
            .rules(&bus.account, &bus.region, &bus.name)
            .iter()
            .filter(|r| r.targets.iter().any(|t| s(t, "Arn") == Some(target)))
            .map(|r| (r.name.clone(), r.name.clone()))
            .collect();
        let (names, next) = util::page(&items, input)?;
        let mut out = json!({ "RuleNames": names });
        if let Some(t) = next {
            out["NextToken"] = t.into();
        }
        Ok(out)
    }

    pub(crate) fn test_event_pattern(&self, input: &Value) -> Result<Value, ApiError> {
        let pattern = parse_pattern(s(input, "EventPattern").unwrap_or_default())?;
        let event: Value = serde_json::from_str(s(input, "Event").unwrap_or_default())
            .map_err(|_| validation("Parameter Event is not valid."))?;
        let Some(obj) = event.as_object() else {
            return Err(validation("Parameter Event is not valid."));
        };
        if let Some(missing) = EVENT_FIELDS.iter().find(|f| !obj.contains_key(**f)) {
            return Err(validation(format!(
                "Parameter Event is not valid. Reason: Provided Event is missing required field {missing}."
            )));
        }
        Ok(json!({ "Result": pattern.matches(&event) }))
    }

    pub(crate) fn tag_resource(
        &self,
        ctx: &RequestContext,
        input: &Value,
        add: bool,
    ) -> Result<Value, ApiError> {
        let arn = s(input, "ResourceARN").unwrap_or_default();
        let _guard = self.write_lock.lock();
        let keys: Vec<String> = input
            .get("TagKeys")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let apply = |tags: &mut Vec<(String, String)>| {
            if add {
                util::merge_tags(tags, util::tags_of(input));
            } else {
                tags.retain(|(k, _)| !keys.contains(k));
            }
        };
        match tagged(ctx, arn)? {
            Tagged::Bus(name) => {
                let mut bus = self.existing_bus(ctx, Some(&name))?;
                apply(&mut bus.tags);
                if add && bus.tags.len() > 50 {
                    return Err(validation("A resource can have at most 50 tags."));
                }
                self.store_bus(&bus)?;
            }
            Tagged::Rule { bus, name } => {
                let rule = self
                    .registry
                    .rule(&ctx.account_id, &ctx.region, &bus, &name)
                    .ok_or_else(|| {
                        not_found(format!("Rule {name} does not exist on EventBus {bus}."))
                    })?;
                check_managed(ctx, &rule, false)?;
                let mut r = (*rule).clone();
                apply(&mut r.tags);
                if add && r.tags.len() > 50 {
                    return Err(validation("A resource can have at most 50 tags."));
                }
                self.store_rule(r)?;
            }
        }
        Ok(json!({}))
    }

    pub(crate) fn list_tags(&self, ctx: &RequestContext, input: &Value) -> Result<Value, ApiError> {
        let arn = s(input, "ResourceARN").unwrap_or_default();
        let tags = match tagged(ctx, arn)? {
            Tagged::Bus(name) => self.existing_bus(ctx, Some(&name))?.tags,
            Tagged::Rule { bus, name } => self
                .registry
                .rule(&ctx.account_id, &ctx.region, &bus, &name)
                .ok_or_else(|| not_found(format!("Rule {name} does not exist on EventBus {bus}.")))?
                .tags
                .clone(),
        };
        Ok(json!({ "Tags": util::tags_doc(&tags) }))
    }
}

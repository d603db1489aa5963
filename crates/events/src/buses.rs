//! Event-bus operations: Create/Describe/List/Update/DeleteEventBus and the bus resource policy
//! (PutPermission / RemovePermission). The default bus exists implicitly in every account and
//! region; it is stored only once a policy, description or tag is set on it.

use opsloop_core::{ApiError, RequestContext, Value};
use opsloop_store::WriteOp;
use serde_json::{json, Map};

use crate::model::StoredBus;
use crate::targets::validate_dead_letter;
use crate::util::{
    self, internal, not_found, resolve_bus, s, validation, DEFAULT_BUS, T_BUS, T_RULE,
};
use crate::Events;

/// Most custom buses per account and region (AWS's default quota).
const MAX_BUSES: usize = 100;
/// Longest resource policy, in bytes.
const MAX_POLICY: usize = 10_240;

fn bus_doc(b: &StoredBus) -> Value {
    let mut d = Map::new();
    d.insert("Name".into(), b.name.clone().into());
    d.insert("Arn".into(), b.arn().into());
    if let Some(x) = &b.description {
        d.insert("Description".into(), x.clone().into());
    }
    if let Some(p) = &b.policy {
        d.insert("Policy".into(), p.to_string().into());
    }
    if let Some(x) = &b.dead_letter {
        d.insert("DeadLetterConfig".into(), x.clone());
    }
    if let Some(x) = &b.kms_key {
        d.insert("KmsKeyIdentifier".into(), x.clone().into());
    }
    if let Some(x) = &b.log_config {
        d.insert("LogConfig".into(), x.clone());
    }
    if b.created > 0.0 {
        d.insert("CreationTime".into(), json!(b.created));
        d.insert("LastModifiedTime".into(), json!(b.modified));
    }
    Value::Object(d)
}

impl Events {
    pub(crate) fn store_bus(&self, bus: &StoredBus) -> Result<(), ApiError> {
        let bytes = serde_json::to_vec(bus).map_err(internal)?;
        self.control
            .put(T_BUS, &bus.key(), &bytes)
            .map_err(internal)?;
        self.registry.put_bus(bus.clone());
        Ok(())
    }

    /// The bus named by `name_or_arn` in the caller's account, or ResourceNotFoundException.
    pub(crate) fn existing_bus(
        &self,
        ctx: &RequestContext,
        name_or_arn: Option<&str>,
    ) -> Result<StoredBus, ApiError> {
        let (account, region, name) = resolve_bus(ctx, name_or_arn);
        if account != ctx.account_id {
            return Err(not_found(format!("Event bus {name} does not exist.")));
        }
        self.registry
            .bus(&account, &region, &name)
            .ok_or_else(|| not_found(format!("Event bus {name} does not exist.")))
    }

    pub(crate) fn create_event_bus(
        &self,
        ctx: &RequestContext,
        input: &Value,
    ) -> Result<Value, ApiError> {
        let name = s(input, "Name").unwrap_or_default();
        let source = s(input, "EventSourceName");
        if source.is_none() && (name.contains('/') || name.starts_with("aws.")) {
            return Err(validation(format!(
                "Event bus name {name} is not valid: only partner event buses may contain '/' or start with 'aws.'."
            )));
        }
        if let Some(src) = source {
            if src != name {
                return Err(validation("EventSourceName must equal the event bus Name."));
            }
            return Err(not_found(format!("Event source {src} does not exist.")));
        }
        if let Some(dlq) = input.get("DeadLetterConfig") {
            validate_dead_letter(dlq)?;
        }
        let _guard = self.write_lock.lock();
        if name == DEFAULT_BUS
            || self
                .registry
                .bus(&ctx.account_id, &ctx.region, name)
                .is_some()
        {
            return Err(ApiError::new(
                "ResourceAlreadyExistsException",
                format!("Event bus {name} already exists."),
            ));
        }
        let custom = self
            .registry
            .bus_list(&ctx.account_id, &ctx.region)
            .iter()
            .filter(|b| b.name != DEFAULT_BUS)
            .count();
        if custom >= MAX_BUSES {
            return Err(ApiError::new(
                "LimitExceededException",
                format!(
                    "The requested resource exceeds the maximum number allowed ({MAX_BUSES} event buses)."
                ),
            ));
        }
        let now = util::now_ms() as f64 / 1000.0;
        let bus = StoredBus {
            account: ctx.account_id.clone(),
            region: ctx.region.clone(),
            name: name.to_string(),
            description: s(input, "Description").map(str::to_string),
            created: now,
            modified: now,
            policy: None,
            dead_letter: input.get("DeadLetterConfig").cloned(),
            kms_key: s(input, "KmsKeyIdentifier").map(str::to_string),
            log_config: input.get("LogConfig").cloned(),
            tags: util::tags_of(input),
        };
        self.store_bus(&bus)?;
        let mut out = Map::new();
        out.insert("EventBusArn".into(), bus.arn().into());
        for k in [
            "Description",
            "KmsKeyIdentifier",
            "DeadLetterConfig",
            "LogConfig",
        ] {
            if let Some(v) = input.get(k) {
                out.insert(k.into(), v.clone());
            }
        }
        Ok(Value::Object(out))
    }

    pub(crate) fn describe_event_bus(
        &self,
        ctx: &RequestContext,
        input: &Value,
    ) -> Result<Value, ApiError> {
        Ok(bus_doc(&self.existing_bus(ctx, s(input, "Name"))?))
    }

    pub(crate) fn list_event_buses(
        &self,
        ctx: &RequestContext,
        input: &Value,
    ) -> Result<Value, ApiError> {
        let prefix = s(input, "NamePrefix").unwrap_or("");
        let items: Vec<(String, Value)> = self
            .registry
            .bus_list(&ctx.account_id, &ctx.region)
            .iter()
            .filter(|b| b.name.starts_with(prefix))
            .map(|b| (b.name.clone(), bus_doc(b)))
            .collect();
        let (buses, next) = util::page(&items, input)?;
        let mut out = json!({ "EventBuses": buses });
        if let Some(t) = next {
            out["NextToken"] = t.into();
        }
        Ok(out)
    }

    pub(crate) fn update_event_bus(
        &self,
        ctx: &RequestContext,
        input: &Value,
    ) -> Result<Value, ApiError> {
        if let Some(dlq) = input.get("DeadLetterConfig") {
            validate_dead_letter(dlq)?;
        }
        let _guard = self.write_lock.lock();
        let mut bus = self.existing_bus(ctx, s(input, "Name"))?;
        if let Some(d) = s(input, "Description") {
            bus.description = Some(d.to_string());
        }
        if let Some(d) = input.get("DeadLetterConfig") {
            bus.dead_letter = Some(d.clone());
        }
        if let Some(k) = s(input, "KmsKeyIdentifier") {
            bus.kms_key = Some(k.to_string());
        }
        if let Some(l) = input.get("LogConfig") {
            bus.log_config = Some(l.clone());
        }
        bus.modified = util::now_ms() as f64 / 1000.0;
        if bus.created == 0.0 {
            bus.created = bus.modified;
        }
        self.store_bus(&bus)?;
        let mut out = bus_doc(&bus);
        if let Some(o) = out.as_object_mut() {
            for k in ["Policy", "CreationTime", "LastModifiedTime"] {
                o.remove(k);
            }
        }
        Ok(out)
    }

    pub(crate) fn delete_event_bus(
        &self,
        ctx: &RequestContext,
        input: &Value,
    ) -> Result<Value, ApiError> {
        let name = s(input, "Name").unwrap_or_default();
        if name == DEFAULT_BUS {
            return Err(validation("Cannot delete event bus default."));
        }
        let _guard = self.write_lock.lock();
        if self
            .registry
            .bus(&ctx.account_id, &ctx.region, name)
            .is_none()
        {
            return Ok(json!({}));
        }
        let mut ops = vec![WriteOp::Delete {
            table: T_BUS.into(),
            key: util::bus_key(&ctx.account_id, &ctx.region, name),
        }];
        for r in self.registry.rules(&ctx.account_id, &ctx.region, name) {
            ops.push(WriteOp::Delete {
                table: T_RULE.into(),
                key: r.key(),
            });
        }
        self.control.batch(ops).map_err(internal)?;
        self.registry.remove_bus(&ctx.account_id, &ctx.region, name);
        self.schedule_changed();
        Ok(json!({}))
    }

    pub(crate) fn put_permission(
        &self,
        ctx: &RequestContext,
        input: &Value,
    ) -> Result<Value, ApiError> {
        let _guard = self.write_lock.lock();
        let mut bus = self.existing_bus(ctx, s(input, "EventBusName"))?;
        if let Some(policy) = s(input, "Policy") {
            if policy.len() > MAX_POLICY {
                return Err(ApiError::new(
                    "PolicyLengthExceededException",
                    "The policy exceeds the maximum allowed length.",
                ));
            }
            let doc: Value = serde_json::from_str(policy)
                .map_err(|_| validation("Policy is not valid JSON."))?;
            if !doc
                .get("Statement")
                .is_some_and(|s| s.is_array() || s.is_object())
            {
                return Err(validation("Policy must contain a Statement."));
            }
            bus.policy = Some(doc);
        } else {
            let (Some(action), Some(principal), Some(sid)) = (
                s(input, "Action"),
                s(input, "Principal"),
                s(input, "StatementId"),
            ) else {
                return Err(validation(
                    "Either Policy, or Action, Principal and StatementId must be specified.",
                ));
            };
            if action != "events:PutEvents" {
                return Err(validation(format!(
                    "Provided value in parameter 'action' is not supported: {action}."
                )));
            }
            let principal_doc = if principal == "*" {
                json!("*")
            } else {
                json!({ "AWS": format!("arn:aws:iam::{principal}:root") })
            };
            let mut st = json!({
                "Sid": sid,
                "Effect": "Allow",
                "Principal": principal_doc,
                "Action": action,
                "Resource": bus.arn(),
            });
            if let Some(c) = input.get("Condition") {
                let (Some(ty), Some(key), Some(val)) = (s(c, "Type"), s(c, "Key"), s(c, "Value"))
                else {
                    return Err(validation("Condition requires Type, Key and Value."));
                };
                st["Condition"] = json!({ ty: { key: val } });
            }
            let mut policy = bus
                .policy
                .take()
                .unwrap_or_else(|| json!({"Version": "2012-10-17", "Statement": []}));
            let stmts = statements_mut(&mut policy);
            stmts.retain(|x| x.get("Sid").and_then(Value::as_str) != Some(sid));
            stmts.push(st);
            if policy.to_string().len() > MAX_POLICY {
                return Err(ApiError::new(
                    "PolicyLengthExceededException",
                    "The policy exceeds the maximum allowed length.",
                ));
            }
            bus.policy = Some(policy);
        }
        bus.modified = util::now_ms() as f64 / 1000.0;
        if bus.created == 0.0 {
            bus.created = bus.modified;
        }
        self.store_bus(&bus)?;
        Ok(json!({}))
    }

    pub(crate) fn remove_permission(
        &self,
        ctx: &RequestContext,
        input: &Value,
    ) -> Result<Value, ApiError> {
        let _guard = self.write_lock.lock();
        let mut bus = self.existing_bus(ctx, s(input, "EventBusName"))?;
        if input.get("RemoveAllPermissions").and_then(Value::as_bool) == Some(true) {
            bus.policy = None;
        } else {
            let Some(sid) = s(input, "StatementId") else {
                return Err(validation(
                    "StatementId is required unless RemoveAllPermissions is true.",
                ));
            };
            let missing = || not_found("Statement with the provided id does not exist.");
            let policy = bus.policy.as_mut().ok_or_else(missing)?;
            let stmts = statements_mut(policy);
            let before = stmts.len();
            stmts.retain(|x| x.get("Sid").and_then(Value::as_str) != Some(sid));
            if stmts.len() == before {
                return Err(missing());
            }
            if stmts.is_empty() {
                bus.policy = None;
            }
        }
        bus.modified = util::now_ms() as f64 / 1000.0;
        self.store_bus(&bus)?;
        Ok(json!({}))
    }
}

/// The `Statement` array of a policy (a single statement object becomes an array).
fn statements_mut(policy: &mut Value) -> &mut Vec<Value> {
    if !policy.get("Statement").is_some_and(Value::is_array) {
        let one = policy.get("Statement").cloned();
        policy["Statement"] = Value::Array(one.into_iter().collect());
    }
    match policy.get_mut("Statement") {
        Some(Value::Array(a)) => a,
        _ => unreachable!("Statement was just made an array"),
    }
}

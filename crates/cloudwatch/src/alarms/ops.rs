//! The mutating alarm operations: PutMetricAlarm, PutCompositeAlarm, DeleteAlarms, SetAlarmState,
//! EnableAlarmActions and DisableAlarmActions.
//!
//! Semantics from the API reference: a new alarm starts in INSUFFICIENT_DATA ("Unchecked: Initial
//! alarm creation") and is then evaluated; updating an alarm leaves its state unchanged and replaces
//! its whole configuration, and `Tags` are ignored on updates; a composite alarm's children and
//! suppressor must exist, an alarm can be a child of at most 150 composites, and (as opsloop's rule)
//! a composite may not depend on itself through other composites; DeleteAlarms ignores unknown
//! names, deletes at most one composite alarm per call, and refuses to delete an alarm a remaining
//! composite alarm depends on; SetAlarmState needs `StateReasonData` to be JSON and runs the actions
//! of the new state when the state changes. Every configuration change writes a
//! `ConfigurationUpdate` history item (`Alarm "name" created|updated|deleted`).

use std::collections::{BTreeSet, HashSet};

use opsloop_core::{ApiError, RequestContext, Value};
use opsloop_store::WriteOp;
use serde_json::json;

use super::engine::suppression_on_entry;
use super::model::{initial_state, AlarmState, StateValue, StoredAlarm};
use super::parse::{self, Parsed};
use super::registry::{AlarmKey, Compiled, Entry, SeriesCache};
use super::render::{changed_fields, history_alarm};
use super::rule::resolve_ref;
use super::store::{self, HistoryRecord};
use super::Alarms;
use crate::anomaly::detectors;
use crate::error::{self, InternalError};
use crate::fetch::MetricId;
use crate::math;
use crate::tags;

/// Most composite alarms one alarm may be a child of.
pub const MAX_PARENTS: usize = 150;
/// `LimitExceeded`.
const LIMIT_EXCEEDED: &str = "LimitExceededFault";
/// `ResourceNotFound` (DeleteAlarms / SetAlarmState).
const RESOURCE_NOT_FOUND: &str = "ResourceNotFound";
/// `InvalidFormat`.
const INVALID_FORMAT: &str = "InvalidFormatFault";

fn config_record(stored: &StoredAlarm, kind: &str, body: Value, now_ms: i64) -> HistoryRecord {
    let verb = match kind {
        "Create" => "created",
        "Delete" => "deleted",
        _ => "updated",
    };
    let mut data = body;
    if let Some(obj) = data.as_object_mut() {
        obj.insert("version".into(), json!("1.0"));
        obj.insert("type".into(), json!(kind));
    }
    let mut text = data.to_string();
    if text.len() > 4095 {
        text = json!({"version": "1.0", "type": kind, "alarmName": stored.config.name}).to_string();
    }
    HistoryRecord {
        alarm_name: stored.config.name.clone(),
        alarm_type: stored.config.alarm_type().to_string(),
        timestamp_ms: now_ms,
        item_type: "ConfigurationUpdate".into(),
        summary: format!("Alarm \"{}\" {verb}", stored.config.name)
            .chars()
            .take(255)
            .collect(),
        data: text,
    }
}

fn strings(input: &Value, key: &str) -> Vec<String> {
    input
        .get(key)
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The metric and statistic an anomaly-band alarm's band models.
fn band_metric(stored: &StoredAlarm) -> Option<(MetricId, String)> {
    let m = stored.config.metric()?;
    let tid = m.threshold_metric_id.as_deref()?;
    let queries = m.metrics.as_ref()?;
    let band = queries
        .iter()
        .find(|q| q.get("Id").and_then(Value::as_str) == Some(tid))?;
    let expr = math::parse(band.get("Expression")?.as_str()?).ok()?;
    let math::Node::Call { args, .. } = &expr.root else {
        return None;
    };
    let math::Node::Id { name, .. } = args.first()? else {
        return None;
    };
    let q = queries
        .iter()
        .find(|q| q.get("Id").and_then(Value::as_str) == Some(name))?;
    let ms = q.get("MetricStat")?;
    let metric = ms.get("Metric")?;
    let text = |k: &str| metric.get(k).and_then(Value::as_str).map(str::to_string);
    let dims = crate::doc::dimensions_of(metric.get("Dimensions"));
    Some((
        MetricId::new(text("Namespace")?, text("MetricName")?, dims),
        ms.get("Stat")?.as_str()?.to_string(),
    ))
}

impl Alarms {
    /// Create or replace an alarm; the caller holds the admin lock.
    fn save(
        &self,
        ctx: &RequestContext,
        parsed: Parsed,
        composite: bool,
        now_ms: i64,
    ) -> Result<AlarmKey, ApiError> {
        let key = AlarmKey::new(&ctx.account_id, &ctx.region, &parsed.config.name);
        let existing = self.registry.read().get(&key);
        let name = &parsed.config.name;
        match existing {
            Some(entry) => {
                let mut inner = entry.inner.lock();
                if inner.stored.config.is_composite() != composite {
                    let (is, use_op) = if composite {
                        ("a metric alarm", "PutMetricAlarm")
                    } else {
                        ("a composite alarm", "PutCompositeAlarm")
                    };
                    return Err(error::validation(format!(
                        "The alarm {name} already exists and is {is}; update it with {use_op}."
                    )));
                }
                let old = inner.stored.clone();
                let mut next = old.clone();
                next.config = parsed.config;
                let new_doc = history_alarm(&next);
                let body = json!({
                    "updatedAlarm": new_doc,
                    "originalUpdatedFields": changed_fields(&history_alarm(&old), &new_doc),
                });
                let ops = vec![
                    store::put_alarm(&next)?,
                    store::put_history(
                        &key.account,
                        &key.region,
                        &config_record(&next, "Update", body, now_ms),
                    )?,
                ];
                self.control.batch(ops).map_err(InternalError::from)?;
                let compiled = Compiled::of(&next);
                self.registry
                    .write()
                    .reindex(&key, &inner.compiled, &compiled);
                *entry.series.lock() = SeriesCache::for_alarm(&next, &compiled);
                inner.stored = next;
                inner.compiled = compiled;
                self.after_save(&inner.stored);
            }
            None => {
                let stored = StoredAlarm {
                    account: key.account.clone(),
                    region: key.region.clone(),
                    config: parsed.config,
                    state: initial_state(now_ms),
                };
                let body = json!({ "createdAlarm": history_alarm(&stored) });
                let mut ops = vec![
                    store::put_alarm(&stored)?,
                    store::put_history(
                        &key.account,
                        &key.region,
                        &config_record(&stored, "Create", body, now_ms),
                    )?,
                ];
                if let Some(op) = tags::initial_tags_op(&key.arn(), &parsed.tags)? {
                    ops.push(op);
                }
                self.control.batch(ops).map_err(InternalError::from)?;
                self.after_save(&stored);
                let entry = Entry::new(stored);
                let compiled = entry.inner.lock().compiled.clone();
                self.registry.write().insert(entry, &compiled);
            }
        }
        Ok(key)
    }

    fn after_save(&self, stored: &StoredAlarm) {
        if let Some((metric, stat)) = band_metric(stored) {
            if let Err(e) = detectors::ensure(
                &*self.control,
                &stored.account,
                &stored.region,
                &metric,
                &stat,
            ) {
                tracing::warn!(error = %e, "anomaly detector of an alarm could not be recorded");
            }
            self.models.clear();
        }
    }

    /// PutMetricAlarm.
    pub fn put_metric_alarm(
        &self,
        ctx: &RequestContext,
        input: Value,
        now_ms: i64,
    ) -> Result<Value, ApiError> {
        let parsed = parse::metric_alarm(&input, &ctx.region, now_ms)?;
        let key = {
            let _admin = self.admin.lock();
            self.save(ctx, parsed, false, now_ms)?
        };
        self.queue([key]);
        Ok(json!({}))
    }

    /// PutCompositeAlarm.
    pub fn put_composite_alarm(
        &self,
        ctx: &RequestContext,
        input: Value,
        now_ms: i64,
    ) -> Result<Value, ApiError> {
        let (parsed, rule) = parse::composite_alarm(&input, &ctx.region, now_ms)?;
        let (account, region) = (&ctx.account_id, &ctx.region);
        let me = AlarmKey::new(account, region, &parsed.config.name);
        let _admin = self.admin.lock();
        let mut deps: BTreeSet<String> = BTreeSet::new();
        {
            let reg = self.registry.read();
            let mut refs: Vec<&str> = rule.references();
            let suppressor = parsed
                .config
                .composite()
                .and_then(|c| c.actions_suppressor.clone());
            if let Some(s) = &suppressor {
                refs.push(s);
            }
            for r in refs {
                let name = resolve_ref(r, account, region)
                    .filter(|n| reg.get(&me.sibling(n)).is_some())
                    .ok_or_else(|| error::validation(format!("Could not find alarm {r}.")))?;
                deps.insert(name.to_string());
            }
            // Composites that depend on this alarm, directly or not: none may become its child.
            let mut ancestors: HashSet<String> = HashSet::from([me.name.clone()]);
            let mut stack = vec![me.clone()];
            while let Some(k) = stack.pop() {
                for p in reg.parents_of(&k) {
                    if ancestors.insert(p.name.clone()) {
                        stack.push(p);
                    }
                }
            }
            if let Some(cycle) = deps.iter().find(|d| ancestors.contains(*d)) {
                return Err(error::validation(format!(
                    "The alarm rule of {} would create a cycle through the alarm {cycle}.",
                    me.name
                )));
            }
            for d in &deps {
                let parents = reg.parents_of(&me.sibling(d));
                let others = parents.iter().filter(|p| **p != me).count();
                if others >= MAX_PARENTS {
                    return Err(ApiError::new(
                        LIMIT_EXCEEDED,
                        format!("The alarm {d} is already referenced by {MAX_PARENTS} composite alarms."),
                    ));
                }
            }
        }
        let key = self.save(ctx, parsed, true, now_ms)?;
        drop(_admin);
        // A composite alarm is evaluated at once: its first state is OK or ALARM.
        self.evaluate_keys(vec![key], now_ms);
        Ok(json!({}))
    }

    /// DeleteAlarms.
    pub fn delete_alarms(
        &self,
        ctx: &RequestContext,
        input: Value,
        now_ms: i64,
    ) -> Result<Value, ApiError> {
        let names = strings(&input, "AlarmNames");
        let _admin = self.admin.lock();
        let targets: Vec<std::sync::Arc<Entry>> = {
            let reg = self.registry.read();
            let mut seen = HashSet::new();
            names
                .iter()
                .filter(|n| seen.insert(n.as_str()))
                .filter_map(|n| reg.get(&AlarmKey::new(&ctx.account_id, &ctx.region, n)))
                .collect()
        };
        let deleting: HashSet<AlarmKey> = targets.iter().map(|e| e.key.clone()).collect();
        let mut targets: Vec<(bool, std::sync::Arc<Entry>)> = targets
            .into_iter()
            .map(|e| {
                let composite = e.inner.lock().stored.config.is_composite();
                (composite, e)
            })
            .collect();
        // Lock composite alarms before metric alarms: the parent → child order evaluation uses.
        targets.sort_by_key(|(composite, _)| !*composite);
        let composites = targets.iter().filter(|(c, _)| *c).count();
        let targets: Vec<std::sync::Arc<Entry>> = targets.into_iter().map(|(_, e)| e).collect();
        if composites > 1 {
            return Err(error::validation(
                "You can delete at most one composite alarm in one DeleteAlarms request.",
            ));
        }
        {
            let reg = self.registry.read();
            for e in &targets {
                let blocking: Vec<String> = reg
                    .parents_of(&e.key)
                    .into_iter()
                    .filter(|p| !deleting.contains(p))
                    .map(|p| p.name)
                    .collect();
                if !blocking.is_empty() {
                    return Err(error::validation(format!(
                        "The alarm {} cannot be deleted because the composite alarm(s) {} depend on it.",
                        e.key.name,
                        blocking.join(", ")
                    )));
                }
            }
        }
        let mut ops: Vec<WriteOp> = Vec::new();
        let mut guards = Vec::new();
        for e in &targets {
            let inner = e.inner.lock();
            let body = json!({ "deletedAlarm": history_alarm(&inner.stored) });
            ops.push(store::delete_alarm(
                &e.key.account,
                &e.key.region,
                &e.key.name,
            ));
            ops.push(tags::purge_op(&e.key.arn()));
            ops.push(store::put_history(
                &e.key.account,
                &e.key.region,
                &config_record(&inner.stored, "Delete", body, now_ms),
            )?);
            guards.push(inner);
        }
        if !ops.is_empty() {
            self.control.batch(ops).map_err(InternalError::from)?;
        }
        let mut reg = self.registry.write();
        for (e, mut inner) in targets.iter().zip(guards) {
            inner.deleted = true;
            reg.remove(&e.key, &inner.compiled);
        }
        Ok(json!({}))
    }

    /// SetAlarmState.
    pub fn set_alarm_state(
        &self,
        ctx: &RequestContext,
        input: Value,
        now_ms: i64,
    ) -> Result<Value, ApiError> {
        let name = input
            .get("AlarmName")
            .and_then(Value::as_str)
            .ok_or_else(|| error::missing("AlarmName"))?;
        let value = input
            .get("StateValue")
            .and_then(Value::as_str)
            .ok_or_else(|| error::missing("StateValue"))?;
        let value = StateValue::parse(value)
            .ok_or_else(|| error::invalid_value(error::bad_value_message(value, "StateValue")))?;
        let reason = input
            .get("StateReason")
            .and_then(Value::as_str)
            .ok_or_else(|| error::missing("StateReason"))?;
        let reason_data = match input.get("StateReasonData").and_then(Value::as_str) {
            None => None,
            Some(d) => {
                if serde_json::from_str::<Value>(d).is_err() {
                    return Err(ApiError::new(
                        INVALID_FORMAT,
                        "StateReasonData must be valid JSON.",
                    ));
                }
                Some(d.to_string())
            }
        };
        let key = AlarmKey::new(&ctx.account_id, &ctx.region, name);
        let Some(entry) = self.registry.read().get(&key) else {
            return Err(ApiError::new(
                RESOURCE_NOT_FOUND,
                format!("Alarm {name} not found"),
            ));
        };
        let changed = {
            let _admin = self.admin.lock();
            let mut inner = entry.inner.lock();
            if inner.deleted {
                return Err(ApiError::new(
                    RESOURCE_NOT_FOUND,
                    format!("Alarm {name} not found"),
                ));
            }
            if inner.stored.state.value == value {
                false
            } else {
                let suppressor_alarm = self.suppressor_in_alarm(&inner);
                let state = AlarmState {
                    value,
                    reason: reason.to_string(),
                    reason_data,
                    updated_ms: now_ms,
                    transitioned_ms: now_ms,
                    suppression: suppression_on_entry(&inner, value, suppressor_alarm, now_ms),
                };
                self.commit_transition(&mut inner, state, now_ms)?;
                true
            }
        };
        if changed {
            let parents = self.registry.read().parents_of(&key);
            self.evaluate_keys(parents, now_ms);
        }
        Ok(json!({}))
    }

    /// EnableAlarmActions / DisableAlarmActions.
    pub fn set_actions_enabled(
        &self,
        ctx: &RequestContext,
        input: Value,
        enabled: bool,
        now_ms: i64,
    ) -> Result<Value, ApiError> {
        let names = strings(&input, "AlarmNames");
        let _admin = self.admin.lock();
        let entries: Vec<std::sync::Arc<Entry>> = {
            let reg = self.registry.read();
            names
                .iter()
                .filter_map(|n| reg.get(&AlarmKey::new(&ctx.account_id, &ctx.region, n)))
                .collect()
        };
        for entry in entries {
            let mut inner = entry.inner.lock();
            if inner.deleted || inner.stored.config.actions_enabled == enabled {
                continue;
            }
            let old = inner.stored.clone();
            let mut next = old.clone();
            next.config.actions_enabled = enabled;
            next.config.configuration_updated_ms = now_ms;
            if !enabled {
                next.state.suppression = None;
            }
            let new_doc = history_alarm(&next);
            let body = json!({
                "updatedAlarm": new_doc,
                "originalUpdatedFields": changed_fields(&history_alarm(&old), &new_doc),
            });
            let ops = vec![
                store::put_alarm(&next)?,
                store::put_history(
                    &entry.key.account,
                    &entry.key.region,
                    &config_record(&next, "Update", body, now_ms),
                )?,
            ];
            self.control.batch(ops).map_err(InternalError::from)?;
            inner.stored = next;
        }
        Ok(json!({}))
    }
}

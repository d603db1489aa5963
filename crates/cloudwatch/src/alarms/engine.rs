//! Evaluating alarms and committing their transitions.
//!
//! **Metric alarms.** At time `now` the alarm reads its evaluation range — `EvaluationPeriods + 2`
//! whole periods aligned to the epoch — plus the period in progress. Complete periods are evaluated
//! as CloudWatch evaluates them ([`super::evaluate`]). The period in progress counts only when its
//! datapoint already breaches and more data in that period cannot undo the breach in the direction
//! the statistic is biased: a partial `Maximum`, `Sum` or `SampleCount` only grows, a partial
//! `Minimum` only shrinks, so a partial period never raises a false "too low" alarm on a sum or a
//! false "too high" alarm on a minimum; averages and percentiles count as they stand. This is what
//! lets a breaching datapoint move an alarm to ALARM within milliseconds of PutMetricData
//! (CloudWatch itself waits for the period to end); a quiet partial period is never "missing".
//! Metric-math alarms count a breaching period in progress when every metric they read uses an
//! average or percentile-type statistic.
//!
//! **Composite alarms** evaluate their rule over the children's current states: TRUE → ALARM,
//! FALSE → OK. They are re-evaluated whenever a child (or their actions suppressor) changes state.
//!
//! **Transitions** are one atomic control-store batch: the alarm record with its new state, a
//! `StateUpdate` history item, the EventBridge event and — when actions are enabled and not
//! suppressed — one outbox item per action of the new state. Nothing is written when the state
//! does not change (the `StateReason` of the last transition stays, as in CloudWatch).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use opsloop_store::WriteOp;

use serde_json::{json, Map, Value};

use super::actions;
use super::data::{self, Span};
use super::evaluate::{decide, Point, Rules, Slot, Verdict};
use super::model::{
    AlarmState, Comparison, StateValue, StoredAlarm, SuppressedBy, Suppression, TreatMissing,
};
use super::reason::{reason_data, reason_text, ReasonInput};
use super::registry::{AlarmKey, Entry, Inner};
use super::rule::resolve_ref;
use super::store::{self, HistoryRecord};
use super::time::{iso_millis, long_time};
use super::Alarms;
use crate::error::InternalError;
use crate::fetch::find_series;
use crate::stats::Statistic;

/// Most metric alarm transitions persisted in one control-store batch. Bounds how long an
/// arrival-triggered evaluation can wait behind a clock tick's mass transition.
pub(crate) const TRANSITION_CHUNK: usize = 500;

/// A decided transition: the record it was decided on, the new record, the writes.
type Deferred = (StoredAlarm, StoredAlarm, Vec<WriteOp>);

/// A metric alarm transition evaluated but not yet persisted.
pub(crate) struct Prepared {
    entry: Arc<Entry>,
    /// The alarm record the transition was decided on.
    base: StoredAlarm,
    /// The record with the new state.
    next: StoredAlarm,
    /// The transition's writes.
    ops: Vec<WriteOp>,
}

/// Most alarm evaluations one cascade of composite re-evaluations may take.
const MAX_CASCADE: usize = 100_000;

impl Alarms {
    /// Evaluate `keys` at `now_ms`, then every composite alarm depending on one that changed state.
    /// Returns the number of transitions.
    ///
    /// Metric alarm transitions are collected and persisted in control-store batches of at most
    /// [`TRANSITION_CHUNK`] transitions (each with its history item, event and actions), so a mass
    /// transition costs a few durable writes rather than one per alarm; in memory an alarm adopts
    /// its new state only once the batch is durable. Composite alarms are committed one by one,
    /// after the pending metric transitions they may depend on.
    pub fn evaluate_keys(&self, keys: Vec<AlarmKey>, now_ms: i64) -> usize {
        let mut queue: VecDeque<AlarmKey> = keys.into();
        let mut transitions = 0;
        let mut steps = 0;
        let mut pending: Vec<Prepared> = Vec::new();
        let mut pending_keys: HashSet<AlarmKey> = HashSet::new();
        loop {
            while let Some(key) = queue.pop_front() {
                steps += 1;
                if steps > MAX_CASCADE {
                    tracing::warn!("alarm evaluation cascade cut short");
                    queue.clear();
                    break;
                }
                let Some(entry) = self.registry.read().get(&key) else {
                    continue;
                };
                let composite = entry.inner.lock().stored.config.is_composite();
                if composite {
                    if !pending.is_empty() {
                        self.flush(
                            &mut pending,
                            &mut pending_keys,
                            &mut queue,
                            &mut transitions,
                        );
                    }
                    match self.evaluate_entry(&entry, now_ms) {
                        Ok(true) => {
                            transitions += 1;
                            queue.extend(self.registry.read().parents_of(&key));
                        }
                        Ok(false) => {}
                        Err(e) => {
                            tracing::error!(alarm = %key.name, error = %e, "alarm evaluation failed")
                        }
                    }
                    continue;
                }
                if pending_keys.contains(&key) {
                    continue;
                }
                let result = {
                    let mut inner = entry.inner.lock();
                    if inner.deleted {
                        Ok(None)
                    } else {
                        self.evaluate_metric(&entry, &mut inner, now_ms, true)
                    }
                };
                match result {
                    Ok(Some(Some((base, next, ops)))) => {
                        pending_keys.insert(key);
                        pending.push(Prepared {
                            entry,
                            base,
                            next,
                            ops,
                        });
                        if pending.len() >= TRANSITION_CHUNK {
                            self.flush(
                                &mut pending,
                                &mut pending_keys,
                                &mut queue,
                                &mut transitions,
                            );
                        }
                    }
                    Ok(Some(None)) => transitions += 1,
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(alarm = %key.name, error = %e, "alarm evaluation failed")
                    }
                }
            }
            if pending.is_empty() {
                break;
            }
            self.flush(
                &mut pending,
                &mut pending_keys,
                &mut queue,
                &mut transitions,
            );
        }
        transitions
    }

    /// Persist the prepared metric transitions in one batch and adopt them in memory. A transition
    /// whose alarm changed meanwhile (another evaluation, an update, a deletion) is left out; the
    /// next evaluation decides again. Parents of the committed alarms join `queue`.
    fn flush(
        &self,
        pending: &mut Vec<Prepared>,
        pending_keys: &mut HashSet<AlarmKey>,
        queue: &mut VecDeque<AlarmKey>,
        transitions: &mut usize,
    ) {
        pending_keys.clear();
        let mut items = std::mem::take(pending);
        // One lock order for every flush: no two flushes can deadlock.
        items.sort_by(|a, b| a.entry.key.cmp(&b.entry.key));
        let mut op_lists: Vec<Vec<WriteOp>> = items
            .iter_mut()
            .map(|p| std::mem::take(&mut p.ops))
            .collect();
        let mut guards = Vec::with_capacity(items.len());
        let mut ops = Vec::new();
        for (p, list) in items.iter().zip(op_lists.iter_mut()) {
            let inner = p.entry.inner.lock();
            if inner.deleted || inner.stored != p.base {
                continue;
            }
            ops.append(list);
            guards.push((inner, p));
        }
        if guards.is_empty() {
            return;
        }
        if let Err(e) = self.control.batch(ops) {
            tracing::error!(error = %e, transitions = guards.len(), "alarm transitions could not be saved");
            return;
        }
        let mut committed = Vec::with_capacity(guards.len());
        for (mut inner, p) in guards {
            tracing::info!(
                alarm = %p.next.config.name,
                from = p.base.state.value.as_str(),
                to = p.next.state.value.as_str(),
                "alarm state changed"
            );
            inner.stored = p.next.clone();
            committed.push(p.entry.key.clone());
        }
        *transitions += committed.len();
        {
            let reg = self.registry.read();
            for key in &committed {
                queue.extend(reg.parents_of(key));
            }
        }
        self.outbox_wake.notify_one();
    }

    /// Evaluate one alarm; `Ok(true)` when its state changed.
    pub(crate) fn evaluate_entry(&self, entry: &Entry, now_ms: i64) -> Result<bool, InternalError> {
        let mut inner = entry.inner.lock();
        if inner.deleted {
            return Ok(false);
        }
        if inner.stored.config.is_composite() {
            self.evaluate_composite(&mut inner, now_ms)
        } else {
            match self.evaluate_metric(entry, &mut inner, now_ms, false)? {
                Some(_) => Ok(true),
                None => Ok(false),
            }
        }
    }

    fn series_of(&self, entry: &Entry) -> Result<Vec<opsloop_tsdb::SeriesKey>, InternalError> {
        let mut cache = entry.series.lock();
        if let Some(keys) = &cache.keys {
            return Ok(keys.clone());
        }
        let Some(metric) = cache.metric.clone() else {
            return Ok(Vec::new());
        };
        let found = find_series(
            &*self.metrics,
            &entry.key.account,
            &entry.key.region,
            &metric,
            cache.unit.as_deref(),
        )?;
        let keys: Vec<_> = found.into_iter().map(|s| s.key).collect();
        cache.keys = Some(keys.clone());
        Ok(keys)
    }

    fn evaluate_metric(
        &self,
        entry: &Entry,
        inner: &mut Inner,
        now_ms: i64,
        defer: bool,
    ) -> Result<Option<Option<Deferred>>, InternalError> {
        // The transition is stamped with the clock as this alarm is evaluated, never earlier than
        // the evaluation time (the data that caused it was read by then).
        let stamp = self.now().max(now_ms);
        let Some(cfg) = inner.stored.config.metric().cloned() else {
            return Ok(None);
        };
        let period_s = cfg.effective_period().max(1);
        let p = period_s * 1000;
        let n = cfg.evaluation_periods.max(1) as usize;
        let range = n + 2;
        let current = now_ms.div_euclid(p) * p;
        let span = Span {
            start_ms: current - range as i64 * p,
            period_ms: p,
            periods: range + 1,
        };
        let raw = if cfg.metrics.is_some() {
            match data::metric_math(
                &*self.metrics,
                &self.models,
                &entry.key.account,
                &entry.key.region,
                &cfg,
                span,
                now_ms,
            ) {
                Ok(raw) => raw,
                Err(e) => {
                    tracing::warn!(alarm = %entry.key.name, error = %e, "metric math alarm could not be evaluated");
                    return Ok(None);
                }
            }
        } else {
            let Some(statistic) = inner.compiled.statistic else {
                return Ok(None);
            };
            let series = self.series_of(entry)?;
            data::single_metric(
                &*self.metrics,
                &series,
                &statistic,
                inner.compiled.percentile,
                span,
            )?
        };
        let op = cfg.comparison();
        let threshold = cfg.threshold.unwrap_or(0.0);
        let points: Vec<Option<Point>> = raw
            .into_iter()
            .map(|r| {
                let r = r?;
                let breaching = match (op.is_band(), r.band) {
                    (true, Some((lo, hi))) => op.breaches_band(r.value, lo, hi),
                    (true, None) => return None,
                    (false, _) => op.breaches(r.value, threshold),
                };
                Some(Point {
                    value: r.value,
                    sample_count: r.sample_count,
                    band: r.band,
                    breaching,
                    low_sample: r.low_sample,
                })
            })
            .collect();
        let in_progress = points.get(range).copied().flatten();
        let include =
            in_progress.is_some_and(|pt| pt.breaching && !self.partial_is_biased(inner, op, &pt));
        let offset = usize::from(include);
        let slots: Vec<Slot> = (offset..offset + range)
            .map(|i| Slot {
                start_ms: span.start_ms + i as i64 * p,
                point: points.get(i).copied().flatten(),
            })
            .collect();
        let mut treat = cfg.treat_missing();
        if cfg.namespace.as_deref() == Some("AWS/DynamoDB") {
            // "Alarms that evaluate metrics in the AWS/DynamoDB namespace always ignore missing data."
            treat = TreatMissing::Ignore;
        }
        let rules = Rules {
            evaluation_periods: n,
            datapoints_to_alarm: cfg.datapoints_to_alarm().max(1) as usize,
            treat_missing: treat,
            ignore_low_samples: cfg.ignores_low_samples() && inner.compiled.percentile.is_some(),
        };
        let outcome = decide(&slots, &rules);
        let old = inner.stored.state.value;
        let new = match outcome.verdict {
            Verdict::Retain => return Ok(None),
            Verdict::Set(v) if v == old => return Ok(None),
            Verdict::Set(v) => v,
        };
        let input = ReasonInput {
            config: &cfg,
            slots: &slots,
            outcome: &outcome,
            old,
            new,
            query_ms: now_ms,
            period_s,
        };
        let state = AlarmState {
            value: new,
            reason: reason_text(&input),
            reason_data: Some(reason_data(&input)),
            updated_ms: stamp,
            transitioned_ms: stamp,
            suppression: None,
        };
        if defer {
            let (next, ops) = prepare_transition(inner, state, stamp)?;
            return Ok(Some(Some((inner.stored.clone(), next, ops))));
        }
        self.commit_transition(inner, state, stamp)?;
        Ok(Some(None))
    }

    /// Whether a breaching partial period of this alarm's statistic could be a mere artefact of
    /// the period being incomplete.
    fn partial_is_biased(&self, inner: &Inner, op: Comparison, pt: &Point) -> bool {
        let upward = match op.upward() {
            Some(u) => u,
            None => pt.band.is_some_and(|(_, hi)| pt.value > hi),
        };
        let grows_only = |s: &Statistic| {
            matches!(
                s,
                Statistic::Sum | Statistic::SampleCount | Statistic::Maximum
            )
        };
        match &inner.compiled.statistic {
            Some(s) if upward => matches!(s, Statistic::Minimum),
            Some(s) => grows_only(s),
            None => {
                // Metric math: only averages and percentile-type statistics count early.
                let stats = inner
                    .stored
                    .config
                    .metric()
                    .and_then(|m| m.metrics.as_ref())
                    .into_iter()
                    .flatten()
                    .filter_map(|q| q.pointer("/MetricStat/Stat").and_then(Value::as_str))
                    .filter_map(Statistic::parse);
                let mut any = false;
                for s in stats {
                    any = true;
                    if !matches!(s, Statistic::Average | Statistic::Extended(_)) {
                        return true;
                    }
                }
                !any
            }
        }
    }

    fn evaluate_composite(&self, inner: &mut Inner, now_ms: i64) -> Result<bool, InternalError> {
        let Some(rule) = inner.compiled.rule.clone() else {
            return Ok(false);
        };
        let (account, region) = (inner.stored.account.clone(), inner.stored.region.clone());
        let key = AlarmKey::new(&account, &region, &inner.stored.config.name);
        let mut names: Vec<String> = inner.compiled.children.iter().cloned().collect();
        names.extend(inner.compiled.suppressor.iter().cloned());
        let entries: Vec<(String, Option<std::sync::Arc<Entry>>)> = {
            let reg = self.registry.read();
            names
                .iter()
                .map(|n| (n.clone(), reg.get(&key.sibling(n))))
                .collect()
        };
        // Parent → child lock order; composites form no cycles.
        let mut states: HashMap<String, (StateValue, i64)> = HashMap::new();
        for (name, entry) in entries {
            if let Some(e) = entry {
                let child = e.inner.lock();
                if !child.deleted {
                    states.insert(
                        name,
                        (child.stored.state.value, child.stored.state.transitioned_ms),
                    );
                }
            }
        }
        let state_of =
            |r: &str| resolve_ref(r, &account, &region).and_then(|n| states.get(n).map(|s| s.0));
        let value = if rule.eval(&state_of) {
            StateValue::Alarm
        } else {
            StateValue::Ok
        };
        let suppressor_alarm = inner
            .compiled
            .suppressor
            .as_ref()
            .and_then(|s| states.get(s))
            .is_some_and(|s| s.0 == StateValue::Alarm);
        if value == inner.stored.state.value {
            self.recheck_suppression(inner, suppressor_alarm, now_ms)?;
            return Ok(false);
        }
        // The triggering children: those satisfying their state function (for ALARM), else the
        // child that changed most recently.
        let mut triggering: Vec<(String, StateValue, i64)> = if value == StateValue::Alarm {
            rule.satisfied(&state_of)
                .into_iter()
                .filter_map(|r| resolve_ref(r, &account, &region))
                .filter_map(|n| states.get(n).map(|s| (n.to_string(), s.0, s.1)))
                .collect()
        } else {
            Vec::new()
        };
        if triggering.is_empty() {
            triggering = inner
                .compiled
                .children
                .iter()
                .filter_map(|n| states.get(n).map(|s| (n.clone(), s.0, s.1)))
                .max_by_key(|t| t.2)
                .into_iter()
                .collect();
        }
        triggering.sort_by_key(|t| std::cmp::Reverse(t.2));
        let arn = |n: &str| key.sibling(n).arn();
        let reason = match triggering.first() {
            Some((n, s, t)) => format!(
                "{} transitioned to {} at {}",
                arn(n),
                s.as_str(),
                long_time(*t)
            ),
            None => format!(
                "The alarm rule evaluated to {}.",
                if value == StateValue::Alarm {
                    "TRUE"
                } else {
                    "FALSE"
                }
            ),
        };
        let data = json!({
            "triggeringAlarms": triggering
                .iter()
                .map(|(n, s, t)| json!({"arn": arn(n), "state": {"value": s.as_str(), "timestamp": iso_millis(*t)}}))
                .collect::<Vec<_>>(),
        });
        let suppression = suppression_on_entry(inner, value, suppressor_alarm, now_ms);
        let state = AlarmState {
            value,
            reason: reason.chars().take(super::reason::MAX_REASON).collect(),
            reason_data: Some(data.to_string()),
            updated_ms: now_ms,
            transitioned_ms: now_ms,
            suppression,
        };
        self.commit_transition(inner, state, now_ms)?;
        Ok(true)
    }

    /// Advance a composite alarm's action suppression; releases the held ALARM actions when a
    /// wait or extension period ends with the suppressor out of ALARM.
    fn recheck_suppression(
        &self,
        inner: &mut Inner,
        suppressor_alarm: bool,
        now_ms: i64,
    ) -> Result<(), InternalError> {
        let Some(sup) = inner.stored.state.suppression else {
            return Ok(());
        };
        let extension = inner
            .stored
            .config
            .composite()
            .and_then(|c| c.actions_suppressor_extension_period)
            .unwrap_or(0);
        let due = sup.until_ms.is_some_and(|u| now_ms >= u);
        let (next, release) = match sup.by {
            SuppressedBy::WaitPeriod | SuppressedBy::ExtensionPeriod if suppressor_alarm => (
                Some(Suppression {
                    by: SuppressedBy::Alarm,
                    until_ms: None,
                }),
                false,
            ),
            SuppressedBy::WaitPeriod | SuppressedBy::ExtensionPeriod if due => (None, true),
            SuppressedBy::Alarm if !suppressor_alarm && extension > 0 => (
                Some(Suppression {
                    by: SuppressedBy::ExtensionPeriod,
                    until_ms: Some(now_ms + extension * 1000),
                }),
                false,
            ),
            SuppressedBy::Alarm if !suppressor_alarm => (None, true),
            _ => return Ok(()),
        };
        let mut updated = inner.stored.clone();
        updated.state.suppression = next;
        updated.state.updated_ms = now_ms;
        let mut ops = vec![store::put_alarm(&updated)?];
        let fire =
            release && updated.state.value == StateValue::Alarm && updated.config.actions_enabled;
        if fire {
            for arn in &updated.config.alarm_actions {
                ops.push(store::put_outbox(&actions::action_item(
                    &updated,
                    arn,
                    StateValue::Alarm,
                ))?);
            }
        }
        self.control.batch(ops)?;
        inner.stored = updated;
        if fire {
            self.outbox_wake.notify_one();
        }
        Ok(())
    }

    /// Persist a new state with its history item, event and actions, then adopt it in memory.
    pub(crate) fn commit_transition(
        &self,
        inner: &mut Inner,
        state: AlarmState,
        now_ms: i64,
    ) -> Result<(), InternalError> {
        let old = inner.stored.state.value;
        let (next, ops) = prepare_transition(inner, state, now_ms)?;
        self.control.batch(ops)?;
        tracing::info!(
            alarm = %next.config.name,
            from = old.as_str(),
            to = next.state.value.as_str(),
            "alarm state changed"
        );
        inner.stored = next;
        self.outbox_wake.notify_one();
        Ok(())
    }

    /// Composite alarms whose suppression period may have ended by `now_ms`.
    pub(crate) fn suppression_due(&self, now_ms: i64) -> Vec<AlarmKey> {
        let entries = self.registry.read().all();
        entries
            .into_iter()
            .filter(|e| {
                let inner = e.inner.lock();
                inner
                    .stored
                    .state
                    .suppression
                    .and_then(|s| s.until_ms)
                    .is_some_and(|u| u <= now_ms)
            })
            .map(|e| e.key.clone())
            .collect()
    }

    /// Metric alarms due at this tick: sub-minute alarms always, the rest when a minute boundary
    /// passed since the last tick.
    pub(crate) fn due_alarms(&self, now_ms: i64, whole_minute: bool) -> Vec<AlarmKey> {
        let entries = self.registry.read().all();
        let mut seen = HashSet::new();
        entries
            .into_iter()
            .filter(|e| {
                let inner = e.inner.lock();
                match inner.stored.config.metric() {
                    Some(m) => whole_minute || m.effective_period() < 60,
                    None => false,
                }
            })
            .map(|e| e.key.clone())
            .filter(|k| seen.insert(k.clone()))
            .chain(self.suppression_due(now_ms))
            .collect()
    }
}

/// The writes of a transition of `inner` to `state`: the alarm record, its `StateUpdate` history
/// item, its actions (when enabled and not suppressed) and its EventBridge event.
fn prepare_transition(
    inner: &Inner,
    state: AlarmState,
    now_ms: i64,
) -> Result<(super::model::StoredAlarm, Vec<WriteOp>), InternalError> {
    let old = inner.stored.state.clone();
    let mut next = inner.stored.clone();
    next.state = state;
    let mut ops = vec![
        store::put_alarm(&next)?,
        store::put_history(
            &next.account,
            &next.region,
            &state_update_record(&next, &old, now_ms),
        )?,
    ];
    if next.config.actions_enabled && next.state.suppression.is_none() {
        for arn in next.config.actions_for(next.state.value) {
            ops.push(store::put_outbox(&actions::action_item(
                &next, arn, old.value,
            ))?);
        }
    }
    ops.push(store::put_outbox(&actions::event_item(&next, &old))?);
    Ok((next, ops))
}

/// The action suppression a composite alarm starts in when it enters `value`: held while the
/// suppressor is in ALARM; on entering ALARM otherwise, held for the wait period.
pub(crate) fn suppression_on_entry(
    inner: &Inner,
    value: StateValue,
    suppressor_alarm: bool,
    now_ms: i64,
) -> Option<Suppression> {
    let cfg = &inner.stored.config;
    let c = cfg.composite()?;
    if !cfg.actions_enabled || c.actions_suppressor.is_none() {
        return None;
    }
    let wait = c.actions_suppressor_wait_period.unwrap_or(0);
    if suppressor_alarm {
        Some(Suppression {
            by: SuppressedBy::Alarm,
            until_ms: None,
        })
    } else if value == StateValue::Alarm && wait > 0 {
        Some(Suppression {
            by: SuppressedBy::WaitPeriod,
            until_ms: Some(now_ms + wait * 1000),
        })
    } else {
        None
    }
}

impl Alarms {
    /// Whether the actions suppressor of a composite alarm is in ALARM now.
    pub(crate) fn suppressor_in_alarm(&self, inner: &Inner) -> bool {
        let Some(name) = &inner.compiled.suppressor else {
            return false;
        };
        let key = AlarmKey::new(&inner.stored.account, &inner.stored.region, name);
        let entry = self.registry.read().get(&key);
        entry.is_some_and(|e| {
            let s = e.inner.lock();
            !s.deleted && s.stored.state.value == StateValue::Alarm
        })
    }
}

fn state_doc(s: &AlarmState, with_data: bool) -> Value {
    let mut doc = Map::new();
    doc.insert("stateValue".into(), json!(s.value.as_str()));
    doc.insert("stateReason".into(), json!(s.reason));
    if with_data {
        if let Some(d) = s
            .reason_data
            .as_deref()
            .and_then(|d| serde_json::from_str::<Value>(d).ok())
        {
            doc.insert("stateReasonData".into(), d);
        }
    }
    Value::Object(doc)
}

/// The `StateUpdate` history item of a transition (`next` holds the new state).
pub(crate) fn state_update_record(
    next: &super::model::StoredAlarm,
    old: &AlarmState,
    now_ms: i64,
) -> HistoryRecord {
    let build = |old_data: bool, new_data: bool| {
        json!({
            "version": "1.0",
            "oldState": state_doc(old, old_data),
            "newState": state_doc(&next.state, new_data),
        })
        .to_string()
    };
    let mut data = build(true, true);
    if data.len() > 4095 {
        data = build(false, true);
    }
    if data.len() > 4095 {
        data = build(false, false);
    }
    HistoryRecord {
        alarm_name: next.config.name.clone(),
        alarm_type: next.config.alarm_type().to_string(),
        timestamp_ms: now_ms,
        item_type: "StateUpdate".into(),
        summary: format!(
            "Alarm updated from {} to {}",
            old.value.as_str(),
            next.state.value.as_str()
        ),
        data,
    }
}

//! PutMetricData: validating the published data as CloudWatch does and turning it into store
//! writes. This is the hot path, so the input document is taken apart by value (strings are moved,
//! never cloned) and error paths are only formatted when an error occurs.
//!
//! Rules (API reference `PutMetricData`, `MetricDatum`, `Dimension`, `StatisticSet`):
//! at most 1000 metrics across `MetricData` and `EntityMetricData`; a namespace must not start with
//! `AWS/`; at most 30 dimensions with unique names, ASCII, at least one non-whitespace character, no
//! control characters, names not starting with `:`; timestamps up to two weeks in the past and two
//! hours in the future (default: when received); exactly one of `Value`, `StatisticValues` and
//! `Values` (with optional `Counts` of the same length, at most 150 values); values finite and within
//! ±2^360; `StorageResolution` 1 or 60; `Unit` defaults to `None`.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use opsloop_core::{ApiError, RequestContext, Value};
use opsloop_tsdb::{Point, Sample, SeriesKey, SeriesWrite};
use serde_json::Map;

use crate::doc::{as_f64, java_double, secs_to_ms};
use crate::error::{self, ErrorList};
use crate::window::{DAY_MS, HOUR_MS};

/// Most metrics in one request, across `MetricData` and `EntityMetricData`.
pub const MAX_METRICS: usize = 1000;
/// Most values in one `Values` list.
pub const MAX_VALUES: usize = 150;
/// Most dimensions of one metric.
pub const MAX_DIMENSIONS: usize = 30;
/// Largest accepted magnitude of a value: 2^360.
pub const MAX_ABS: f64 = f64::from_bits((1023 + 360) << 52);

/// The `StandardUnit` enumeration.
pub const UNITS: [&str; 27] = [
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// Validated writes of one request.
#[derive(Debug, Default)]
pub struct PutBatch {
    pub writes: Vec<SeriesWrite>,
    pub datapoints: usize,
}

/// Validate a PutMetricData input and group its points by series.
pub fn parse(ctx: &RequestContext, input: Value, now_ms: i64) -> Result<PutBatch, ApiError> {
    let Some(root) = input.as_object() else {
        return Err(error::missing("Namespace"));
    };
    let Some(namespace) = root.get("Namespace").and_then(Value::as_str) else {
        return Err(error::missing("Namespace"));
    };
    check_namespace(namespace, ctx.is_internal())?;

    let mut lists: Vec<(String, &[Value])> = Vec::new();
    if let Some(items) = root.get("MetricData").and_then(Value::as_array) {
        lists.push(("MetricData".to_string(), items));
    }
    if let Some(entities) = root.get("EntityMetricData").and_then(Value::as_array) {
        for (i, entity) in entities.iter().enumerate() {
            if let Some(items) = entity.get("MetricData").and_then(Value::as_array) {
                lists.push((
                    format!("EntityMetricData.member.{}.MetricData", i + 1),
                    items,
                ));
            }
        }
    }
    let total: usize = lists.iter().map(|(_, items)| items.len()).sum();
    if total == 0 {
        return Err(error::missing("MetricData"));
    }
    if total > MAX_METRICS {
        return Err(error::invalid_value(format!(
            "The collection MetricData must not have a size greater than {MAX_METRICS}."
        )));
    }

    let mut b = Builder {
        account: &ctx.account_id,
        region: &ctx.region,
        namespace,
        now_ms,
        index: HashMap::with_capacity_and_hasher(total, BuildHasherDefault::default()),
        dims: Vec::new(),
        samples: Vec::new(),
        batch: PutBatch::default(),
        errors: ErrorList::new(),
    };
    for (prefix, items) in &lists {
        for (i, item) in items.iter().enumerate() {
            b.datum(
                &Path {
                    prefix,
                    index: i + 1,
                },
                item,
            );
        }
    }
    b.errors.into_result()?;
    Ok(b.batch)
}

/// `AWS/` namespaces are reserved for AWS's own services: here, for opsloop's services publishing
/// through the `Directory` (EventBridge's `AWS/Events`, ...), never for wire callers.
fn check_namespace(ns: &str, internal: bool) -> Result<(), ApiError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || ".-_/#: ".contains(c);
    if (ns.starts_with("AWS/") && !internal)
        || ns.starts_with(':')
        || !ns.chars().all(allowed)
        || ns.len() > 255
    {
        return Err(error::invalid_value(error::bad_value_message(
            ns,
            "Namespace",
        )));
    }
    Ok(())
}

/// Where a datum sits in the request, rendered only for messages.
struct Path<'a> {
    prefix: &'a str,
    index: usize,
}

impl Path<'_> {
    fn member(&self, rest: &str) -> String {
        format!("{}.member.{}.{rest}", self.prefix, self.index)
    }
}

/// Hashes an already-hashed `u64` key as itself.
#[derive(Default)]
struct PrehashedHasher(u64);

impl Hasher for PrehashedHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// FNV-1a over the parts of a series identity that vary within one request.
fn identity_hash(name: &str, dims: &[(&str, &str)], unit: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        h = (h ^ 0xff).wrapping_mul(0x0100_0000_01b3);
    };
    eat(name.as_bytes());
    for (n, v) in dims {
        eat(n.as_bytes());
        eat(v.as_bytes());
    }
    eat(unit.as_bytes());
    h
}

fn same_identity(key: &SeriesKey, name: &str, dims: &[(&str, &str)], unit: &str) -> bool {
    key.metric_name == name
        && key.unit == unit
        && key.dimensions.len() == dims.len()
        && key
            .dimensions
            .iter()
            .zip(dims)
            .all(|((a, b), (c, d))| a == c && b == d)
}

/// The members of one `MetricDatum`, found in a single pass over its map (cheaper than one hashed
/// lookup per member: a datum has a handful of entries and this runs for every datum).
#[derive(Default)]
struct Datum<'a> {
    metric_name: Option<&'a Value>,
    dimensions: Option<&'a Value>,
    timestamp: Option<&'a Value>,
    unit: Option<&'a Value>,
    storage_resolution: Option<&'a Value>,
    value: Option<&'a Value>,
    statistic_values: Option<&'a Value>,
    values: Option<&'a Value>,
    counts: Option<&'a Value>,
}

impl<'a> Datum<'a> {
    fn of(d: &'a Map<String, Value>) -> Self {
        let mut f = Datum::default();
        for (k, v) in d {
            let slot = match k.as_str() {
                "MetricName" => &mut f.metric_name,
                "Dimensions" => &mut f.dimensions,
                "Timestamp" => &mut f.timestamp,
                "Unit" => &mut f.unit,
                "StorageResolution" => &mut f.storage_resolution,
                "Value" => &mut f.value,
                "StatisticValues" => &mut f.statistic_values,
                "Values" => &mut f.values,
                "Counts" => &mut f.counts,
                _ => continue,
            };
            *slot = Some(v);
        }
        f
    }
}

struct Builder<'a> {
    account: &'a str,
    region: &'a str,
    namespace: &'a str,
    now_ms: i64,
    /// Identity hash to index of the first write with that hash.
    index: HashMap<u64, usize, BuildHasherDefault<PrehashedHasher>>,
    /// Scratch buffers reused across datums, so a datum of a known series allocates nothing.
    dims: Vec<(&'a str, &'a str)>,
    samples: Vec<Sample>,
    batch: PutBatch,
    errors: ErrorList,
}

fn valid_number(v: f64) -> bool {
    v.is_finite() && v.abs() <= MAX_ABS
}

fn dimension_text_ok(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.is_ascii()
        && s.bytes().any(|b| !b.is_ascii_whitespace())
        && !s.bytes().any(|b| b.is_ascii_control())
}

impl<'a> Builder<'a> {
    fn datum(&mut self, p: &Path<'_>, item: &'a Value) {
        let Some(d) = item.as_object() else {
            self.errors.missing(&p.member("MetricName"));
            return;
        };
        let d = Datum::of(d);
        let Some(metric_name) = d.metric_name.and_then(Value::as_str) else {
            self.errors.missing(&p.member("MetricName"));
            return;
        };
        let dims_ok = self.dimensions(p, d.dimensions);
        let ts_ms = self.timestamp(p, d.timestamp);
        let unit = match d.unit {
            None => "None",
            Some(Value::String(u)) if UNITS.contains(&u.as_str()) => u.as_str(),
            Some(_) => {
                self.errors.invalid(format!(
                    "The parameter {} must be a value in the set [ {} ].",
                    p.member("Unit"),
                    UNITS.join(", ")
                ));
                return;
            }
        };
        let high_resolution = match d.storage_resolution.and_then(as_f64) {
            None => false,
            Some(1.0) => true,
            Some(60.0) => false,
            Some(r) => {
                self.errors.invalid(error::bad_value_message(
                    &r.to_string(),
                    &p.member("StorageResolution"),
                ));
                return;
            }
        };
        let samples_ok = self.samples(p, &d);
        let (true, Some(ts_ms), true) = (dims_ok, ts_ms, samples_ok) else {
            return;
        };
        if !self.errors.is_empty() {
            // Once anything is wrong nothing is written; skip building.
            return;
        }
        self.batch.datapoints += self.samples.len();
        let hash = identity_hash(metric_name, &self.dims, unit);
        let writes = &mut self.batch.writes;
        let found = match self.index.get(&hash) {
            Some(&i) if same_identity(&writes[i].key, metric_name, &self.dims, unit) => Some(i),
            // A hash collision: look the slow way.
            Some(_) => writes
                .iter()
                .position(|w| same_identity(&w.key, metric_name, &self.dims, unit)),
            None => None,
        };
        let i = match found {
            Some(i) => i,
            None => {
                self.index.entry(hash).or_insert(writes.len());
                writes.push(SeriesWrite {
                    key: SeriesKey {
                        account: self.account.to_string(),
                        region: self.region.to_string(),
                        namespace: self.namespace.to_string(),
                        metric_name: metric_name.to_string(),
                        dimensions: self
                            .dims
                            .iter()
                            .map(|&(n, v)| (n.to_string(), v.to_string()))
                            .collect(),
                        unit: unit.to_string(),
                    },
                    high_resolution,
                    points: Vec::new(),
                });
                writes.len() - 1
            }
        };
        let w = &mut writes[i];
        w.high_resolution |= high_resolution;
        w.points
            .extend(self.samples.drain(..).map(|sample| Point { ts_ms, sample }));
    }

    /// Validate the dimensions into the sorted scratch buffer.
    fn dimensions(&mut self, p: &Path<'_>, v: Option<&'a Value>) -> bool {
        self.dims.clear();
        let items = match v {
            None => return true,
            Some(Value::Array(items)) => items,
            Some(_) => {
                self.errors
                    .invalid(error::bad_value_message("", &p.member("Dimensions")));
                return false;
            }
        };
        if items.len() > MAX_DIMENSIONS {
            self.errors.invalid(format!(
                "The collection {} must not have a size greater than {MAX_DIMENSIONS}.",
                p.member("Dimensions")
            ));
            return false;
        }
        let mut ok = true;
        for (k, item) in items.iter().enumerate() {
            let at = |field: &str| p.member(&format!("Dimensions.member.{}.{field}", k + 1));
            let (mut name, mut value) = (None, None);
            if let Some(members) = item.as_object() {
                for (k, v) in members {
                    match k.as_str() {
                        "Name" => name = Some(v),
                        "Value" => value = Some(v),
                        _ => {}
                    }
                }
            }
            let Some(name) = name.and_then(Value::as_str) else {
                self.errors.missing(&at("Name"));
                ok = false;
                continue;
            };
            let Some(value) = value.and_then(Value::as_str) else {
                self.errors.missing(&at("Value"));
                ok = false;
                continue;
            };
            if !dimension_text_ok(name, 255) || name.starts_with(':') {
                self.errors
                    .invalid(error::bad_value_message(name, &at("Name")));
                ok = false;
            }
            if !dimension_text_ok(value, 1024) {
                self.errors
                    .invalid(error::bad_value_message(value, &at("Value")));
                ok = false;
            }
            self.dims.push((name, value));
        }
        if !ok {
            return false;
        }
        self.dims.sort_unstable_by(|a, b| a.0.cmp(b.0));
        if let Some(w) = self.dims.windows(2).find(|w| w[0].0 == w[1].0) {
            let message = format!(
                "The dimension name {} is specified more than once in {}.",
                w[0].0,
                p.member("Dimensions")
            );
            self.errors.invalid(message);
            return false;
        }
        true
    }

    fn timestamp(&mut self, p: &Path<'_>, v: Option<&Value>) -> Option<i64> {
        let Some(v) = v else {
            return Some(self.now_ms);
        };
        let Some(ts_ms) = as_f64(v).filter(|s| s.is_finite()).map(secs_to_ms) else {
            self.errors.invalid(error::bad_value_message(
                &v.to_string(),
                &p.member("Timestamp"),
            ));
            return None;
        };
        if ts_ms < self.now_ms - 14 * DAY_MS {
            self.errors.invalid(format!(
                "The parameter {} must specify a time within the past two weeks.",
                p.member("Timestamp")
            ));
            return None;
        }
        if ts_ms > self.now_ms + 2 * HOUR_MS {
            self.errors.invalid(format!(
                "The parameter {} must specify a time no more than two hours in the future.",
                p.member("Timestamp")
            ));
            return None;
        }
        Some(ts_ms)
    }

    /// A checked double at `field`, recording an error otherwise.
    fn number(&mut self, field: &dyn Fn() -> String, v: &Value) -> Option<f64> {
        match as_f64(v) {
            Some(x) if valid_number(x) => Some(x),
            Some(x) => {
                self.errors
                    .invalid(error::bad_value_message(&java_double(x), &field()));
                None
            }
            None => {
                self.errors
                    .invalid(error::bad_value_message(&v.to_string(), &field()));
                None
            }
        }
    }

    /// Validate the datum's value(s) into the scratch sample buffer.
    fn samples(&mut self, p: &Path<'_>, d: &Datum<'_>) -> bool {
        self.samples.clear();
        let value = d.value;
        let stats = d.statistic_values;
        let values = d.values.and_then(Value::as_array).filter(|a| !a.is_empty());
        let counts = d.counts.and_then(Value::as_array).filter(|a| !a.is_empty());
        let both = |a: &str, b: &str| {
            format!(
                "The parameters {} and {} are mutually exclusive and you have specified both.",
                p.member(a),
                p.member(b)
            )
        };
        let clash = match (value.is_some(), stats.is_some(), values.is_some()) {
            (true, true, _) => Some(both("Value", "StatisticValues")),
            (true, _, true) => Some(both("Value", "Values")),
            (_, true, true) => Some(both("StatisticValues", "Values")),
            (false, false, false) => Some(format!(
                "At least one of the parameters {}, {} and {} must be specified.",
                p.member("Value"),
                p.member("StatisticValues"),
                p.member("Values")
            )),
            _ => None,
        };
        if let Some(message) = clash {
            self.errors.combination(message);
            return false;
        }
        if counts.is_some() && values.is_none() {
            self.errors.combination(format!(
                "The parameter {} can only be specified with {}.",
                p.member("Counts"),
                p.member("Values")
            ));
            return false;
        }
        if let Some(v) = value {
            let Some(x) = self.number(&|| p.member("Value"), v) else {
                return false;
            };
            self.samples.push(Sample::Value {
                value: x,
                count: 1.0,
            });
            return true;
        }
        if let Some(s) = stats {
            let Some(set) = self.statistic_set(p, s) else {
                return false;
            };
            self.samples.push(set);
            return true;
        }
        let Some(values) = values else {
            return false;
        };
        if values.len() > MAX_VALUES {
            self.errors.invalid(format!(
                "The collection {} must not have a size greater than {MAX_VALUES}.",
                p.member("Values")
            ));
            return false;
        }
        if let Some(c) = counts {
            if c.len() != values.len() {
                self.errors.invalid(format!(
                    "The parameters {} and {} must be of the same size.",
                    p.member("Values"),
                    p.member("Counts")
                ));
                return false;
            }
        }
        let mut ok = true;
        for (k, v) in values.iter().enumerate() {
            let value = self.number(&|| p.member(&format!("Values.member.{}", k + 1)), v);
            let count = match counts.map(|c| &c[k]) {
                None => Some(1.0),
                Some(c) => match as_f64(c) {
                    Some(x) if x.is_finite() && (0.0..=MAX_ABS).contains(&x) => Some(x),
                    other => {
                        let shown = other.map_or_else(|| c.to_string(), java_double);
                        self.errors.invalid(error::bad_value_message(
                            &shown,
                            &p.member(&format!("Counts.member.{}", k + 1)),
                        ));
                        None
                    }
                },
            };
            match (value, count) {
                (Some(value), Some(count)) if count > 0.0 => {
                    self.samples.push(Sample::Value { value, count })
                }
                (Some(_), Some(_)) => {}
                _ => ok = false,
            }
        }
        ok
    }

    fn statistic_set(&mut self, p: &Path<'_>, s: &Value) -> Option<Sample> {
        let Some(m) = s.as_object() else {
            self.errors
                .missing(&p.member("StatisticValues.SampleCount"));
            return None;
        };
        let mut field = |name: &str| -> Option<f64> {
            let path = || p.member(&format!("StatisticValues.{name}"));
            match m.get(name) {
                None => {
                    self.errors.missing(&path());
                    None
                }
                Some(v) => self.number(&path, v),
            }
        };
        let (count, sum, min, max) = (
            field("SampleCount"),
            field("Sum"),
            field("Minimum"),
            field("Maximum"),
        );
        let (count, sum, min, max) = (count?, sum?, min?, max?);
        if count <= 0.0 {
            self.errors.invalid(error::bad_value_message(
                &java_double(count),
                &p.member("StatisticValues.SampleCount"),
            ));
            return None;
        }
        if min > max {
            self.errors.combination(format!(
                "The parameter {} must be greater than or equal to {}.",
                p.member("StatisticValues.Maximum"),
                p.member("StatisticValues.Minimum")
            ));
            return None;
        }
        Some(Sample::Stats {
            count,
            sum,
            min,
            max,
        })
    }
}

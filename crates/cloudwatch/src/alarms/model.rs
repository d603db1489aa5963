//! The alarm data model: configuration of metric and composite alarms as PutMetricAlarm /
//! PutCompositeAlarm accept it, the alarm state, and the enumerations of the API with their wire
//! spellings. These are the documents persisted in the control store (serde), so field changes
//! must stay backward compatible (`#[serde(default)]` on additions).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `StateValue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StateValue {
    #[serde(rename = "OK")]
    Ok,
    #[serde(rename = "ALARM")]
    Alarm,
    #[serde(rename = "INSUFFICIENT_DATA")]
    InsufficientData,
}

impl StateValue {
    pub fn as_str(self) -> &'static str {
        match self {
            StateValue::Ok => "OK",
            StateValue::Alarm => "ALARM",
            StateValue::InsufficientData => "INSUFFICIENT_DATA",
        }
    }

    pub fn parse(s: &str) -> Option<StateValue> {
        match s {
            "OK" => Some(StateValue::Ok),
            "ALARM" => Some(StateValue::Alarm),
            "INSUFFICIENT_DATA" => Some(StateValue::InsufficientData),
            _ => None,
        }
    }
}

/// `ComparisonOperator`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    GreaterOrEqual,
    Greater,
    Less,
    LessOrEqual,
    /// `LessThanLowerOrGreaterThanUpperThreshold` (anomaly band).
    OutsideBand,
    /// `LessThanLowerThreshold` (anomaly band).
    BelowBand,
    /// `GreaterThanUpperThreshold` (anomaly band).
    AboveBand,
}

impl Comparison {
    pub const ALL: [Comparison; 7] = [
        Comparison::GreaterOrEqual,
        Comparison::Greater,
        Comparison::Less,
        Comparison::LessOrEqual,
        Comparison::OutsideBand,
        Comparison::BelowBand,
        Comparison::AboveBand,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Comparison::GreaterOrEqual => "GreaterThanOrEqualToThreshold",
            Comparison::Greater => "GreaterThanThreshold",
            Comparison::Less => "LessThanThreshold",
            Comparison::LessOrEqual => "LessThanOrEqualToThreshold",
            Comparison::OutsideBand => "LessThanLowerOrGreaterThanUpperThreshold",
            Comparison::BelowBand => "LessThanLowerThreshold",
            Comparison::AboveBand => "GreaterThanUpperThreshold",
        }
    }

    pub fn parse(s: &str) -> Option<Comparison> {
        Comparison::ALL.iter().copied().find(|c| c.as_str() == s)
    }

    /// Whether this operator compares against an anomaly detection band.
    pub fn is_band(self) -> bool {
        matches!(
            self,
            Comparison::OutsideBand | Comparison::BelowBand | Comparison::AboveBand
        )
    }

    /// Whether a breach means "too high" (true), "too low" (false), or either (`None`).
    pub fn upward(self) -> Option<bool> {
        match self {
            Comparison::GreaterOrEqual | Comparison::Greater | Comparison::AboveBand => Some(true),
            Comparison::Less | Comparison::LessOrEqual | Comparison::BelowBand => Some(false),
            Comparison::OutsideBand => None,
        }
    }

    /// Whether `value` breaches a static `threshold`.
    pub fn breaches(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::GreaterOrEqual => value >= threshold,
            Comparison::Greater => value > threshold,
            Comparison::Less => value < threshold,
            Comparison::LessOrEqual => value <= threshold,
            // Band operators never see a static threshold.
            Comparison::OutsideBand | Comparison::BelowBand | Comparison::AboveBand => false,
        }
    }

    /// Whether `value` breaches the band `[lower, upper]`.
    pub fn breaches_band(self, value: f64, lower: f64, upper: f64) -> bool {
        match self {
            Comparison::OutsideBand => value < lower || value > upper,
            Comparison::BelowBand => value < lower,
            Comparison::AboveBand => value > upper,
            other => other.breaches(value, upper),
        }
    }
}

/// `TreatMissingData`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreatMissing {
    Missing,
    Ignore,
    Breaching,
    NotBreaching,
}

impl TreatMissing {
    pub fn parse(s: &str) -> Option<TreatMissing> {
        match s {
            "missing" => Some(TreatMissing::Missing),
            "ignore" => Some(TreatMissing::Ignore),
            "breaching" => Some(TreatMissing::Breaching),
            "notBreaching" => Some(TreatMissing::NotBreaching),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TreatMissing::Missing => "missing",
            TreatMissing::Ignore => "ignore",
            TreatMissing::Breaching => "breaching",
            TreatMissing::NotBreaching => "notBreaching",
        }
    }
}

/// A metric alarm's watched data and evaluation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricAlarmConfig {
    pub namespace: Option<String>,
    pub metric_name: Option<String>,
    /// As given (the API returns them in request order).
    #[serde(default)]
    pub dimensions: Vec<(String, String)>,
    pub statistic: Option<String>,
    pub extended_statistic: Option<String>,
    pub period: Option<i64>,
    pub unit: Option<String>,
    pub evaluation_periods: i64,
    pub datapoints_to_alarm: Option<i64>,
    pub threshold: Option<f64>,
    pub threshold_metric_id: Option<String>,
    pub comparison_operator: String,
    pub treat_missing_data: Option<String>,
    pub evaluate_low_sample_count_percentile: Option<String>,
    /// The `Metrics` array of a metric-math alarm, as validated `MetricDataQuery` documents.
    pub metrics: Option<Vec<Value>>,
}

impl MetricAlarmConfig {
    pub fn comparison(&self) -> Comparison {
        Comparison::parse(&self.comparison_operator).unwrap_or(Comparison::GreaterOrEqual)
    }

    pub fn treat_missing(&self) -> TreatMissing {
        self.treat_missing_data
            .as_deref()
            .and_then(TreatMissing::parse)
            .unwrap_or(TreatMissing::Missing)
    }

    /// M of "M out of N" (defaults to N).
    pub fn datapoints_to_alarm(&self) -> i64 {
        self.datapoints_to_alarm.unwrap_or(self.evaluation_periods)
    }

    /// Whether low-sample percentiles leave the state unchanged (`ignore`).
    pub fn ignores_low_samples(&self) -> bool {
        self.evaluate_low_sample_count_percentile.as_deref() == Some("ignore")
    }

    /// The period of the data the alarm evaluates: `Period`, or for metric math the period of the
    /// first query that states one.
    pub fn effective_period(&self) -> i64 {
        if let Some(p) = self.period {
            return p;
        }
        self.metrics
            .iter()
            .flatten()
            .find_map(|q| {
                q.get("MetricStat")
                    .and_then(|m| m.get("Period"))
                    .or_else(|| q.get("Period"))
                    .and_then(Value::as_i64)
            })
            .unwrap_or(60)
    }
}

/// A composite alarm's rule and action suppression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompositeAlarmConfig {
    pub alarm_rule: String,
    pub actions_suppressor: Option<String>,
    pub actions_suppressor_wait_period: Option<i64>,
    pub actions_suppressor_extension_period: Option<i64>,
}

/// What kind of alarm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(clippy::large_enum_variant)] // few instances, read far more often than moved
pub enum AlarmKind {
    Metric(MetricAlarmConfig),
    Composite(CompositeAlarmConfig),
}

/// Configuration shared by both kinds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmConfig {
    pub name: String,
    pub description: Option<String>,
    pub actions_enabled: bool,
    #[serde(default)]
    pub ok_actions: Vec<String>,
    #[serde(default)]
    pub alarm_actions: Vec<String>,
    #[serde(default)]
    pub insufficient_data_actions: Vec<String>,
    pub configuration_updated_ms: i64,
    pub kind: AlarmKind,
}

impl AlarmConfig {
    /// `MetricAlarm` or `CompositeAlarm`.
    pub fn alarm_type(&self) -> &'static str {
        match self.kind {
            AlarmKind::Metric(_) => "MetricAlarm",
            AlarmKind::Composite(_) => "CompositeAlarm",
        }
    }

    pub fn is_composite(&self) -> bool {
        matches!(self.kind, AlarmKind::Composite(_))
    }

    pub fn metric(&self) -> Option<&MetricAlarmConfig> {
        match &self.kind {
            AlarmKind::Metric(m) => Some(m),
            AlarmKind::Composite(_) => None,
        }
    }

    pub fn composite(&self) -> Option<&CompositeAlarmConfig> {
        match &self.kind {
            AlarmKind::Composite(c) => Some(c),
            AlarmKind::Metric(_) => None,
        }
    }

    /// The actions of the state an alarm enters.
    pub fn actions_for(&self, state: StateValue) -> &[String] {
        match state {
            StateValue::Ok => &self.ok_actions,
            StateValue::Alarm => &self.alarm_actions,
            StateValue::InsufficientData => &self.insufficient_data_actions,
        }
    }

    /// Every action of every state.
    pub fn all_actions(&self) -> impl Iterator<Item = &String> {
        self.ok_actions
            .iter()
            .chain(&self.alarm_actions)
            .chain(&self.insufficient_data_actions)
    }
}

/// Why a composite alarm's actions are held back (`ActionsSuppressedBy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SuppressedBy {
    Alarm,
    WaitPeriod,
    ExtensionPeriod,
}

impl SuppressedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            SuppressedBy::Alarm => "Alarm",
            SuppressedBy::WaitPeriod => "WaitPeriod",
            SuppressedBy::ExtensionPeriod => "ExtensionPeriod",
        }
    }
}

/// Action suppression of a composite alarm in ALARM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppression {
    pub by: SuppressedBy,
    /// When a wait or extension period ends (the actions then run unless the suppressor is in
    /// ALARM).
    pub until_ms: Option<i64>,
}

/// The state of an alarm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmState {
    pub value: StateValue,
    pub reason: String,
    /// `StateReasonData`: a JSON document as a string.
    pub reason_data: Option<String>,
    /// `StateUpdatedTimestamp`.
    pub updated_ms: i64,
    /// `StateTransitionedTimestamp`.
    pub transitioned_ms: i64,
    #[serde(default)]
    pub suppression: Option<Suppression>,
}

/// The initial state of a new alarm (API reference: "the alarm state is immediately set to
/// INSUFFICIENT_DATA"; the reason is the one CloudWatch reports).
pub fn initial_state(now_ms: i64) -> AlarmState {
    AlarmState {
        value: StateValue::InsufficientData,
        reason: "Unchecked: Initial alarm creation".to_string(),
        reason_data: None,
        updated_ms: now_ms,
        transitioned_ms: now_ms,
        suppression: None,
    }
}

/// One persisted alarm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredAlarm {
    pub account: String,
    pub region: String,
    pub config: AlarmConfig,
    pub state: AlarmState,
}

/// The partition of a region (`aws`, `aws-cn`, `aws-us-gov`).
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// `arn:aws:cloudwatch:<region>:<account>:alarm:<name>`.
pub fn alarm_arn(account: &str, region: &str, name: &str) -> String {
    format!(
        "arn:{}:cloudwatch:{region}:{account}:alarm:{name}",
        partition(region)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enumerations_round_trip_their_wire_names() {
        for c in Comparison::ALL {
            assert_eq!(Comparison::parse(c.as_str()), Some(c));
        }
        for s in [
            StateValue::Ok,
            StateValue::Alarm,
            StateValue::InsufficientData,
        ] {
            assert_eq!(StateValue::parse(s.as_str()), Some(s));
        }
        for t in ["missing", "ignore", "breaching", "notBreaching"] {
            assert_eq!(TreatMissing::parse(t).map(TreatMissing::as_str), Some(t));
        }
        assert_eq!(TreatMissing::parse("Missing"), None);
    }

    #[test]
    fn comparisons_follow_their_names() {
        assert!(Comparison::GreaterOrEqual.breaches(3.0, 3.0));
        assert!(!Comparison::Greater.breaches(3.0, 3.0));
        assert!(Comparison::LessOrEqual.breaches(3.0, 3.0));
        assert!(!Comparison::Less.breaches(3.0, 3.0));
        assert!(Comparison::OutsideBand.breaches_band(0.5, 1.0, 2.0));
        assert!(Comparison::OutsideBand.breaches_band(2.5, 1.0, 2.0));
        assert!(!Comparison::OutsideBand.breaches_band(1.5, 1.0, 2.0));
        assert!(!Comparison::BelowBand.breaches_band(2.5, 1.0, 2.0));
        assert!(!Comparison::AboveBand.breaches_band(0.5, 1.0, 2.0));
    }

    #[test]
    fn arns_use_the_region_partition() {
        assert_eq!(
            alarm_arn("123456789012", "us-east-1", "a:b"),
            "arn:aws:cloudwatch:us-east-1:123456789012:alarm:a:b"
        );
        assert!(alarm_arn("123456789012", "cn-north-1", "x").starts_with("arn:aws-cn:"));
    }
}

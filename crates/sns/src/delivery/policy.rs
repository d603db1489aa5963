//! Delivery (retry) policies: parsing and validating the `DeliveryPolicy` JSON of topics
//! (`{"http": {"defaultHealthyRetryPolicy": ..., "disableSubscriptionOverrides": ..., ...}}`) and
//! subscriptions (`{"healthyRetryPolicy": ..., "throttlePolicy": ..., "requestPolicy": ...}`),
//! resolving the effective policy of a subscription, rendering `EffectiveDeliveryPolicy`, and the
//! retry schedule: immediate retries, pre-backoff retries at the minimum delay, backoff retries
//! from the minimum to the maximum delay, post-backoff retries at the maximum delay.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// AWS's content type for HTTP/S deliveries unless a request policy says otherwise.
pub const DEFAULT_CONTENT_TYPE: &str = "text/plain; charset=UTF-8";
/// The longest an HTTP/S policy may keep retrying, in seconds.
pub const MAX_TOTAL_SECONDS: u64 = 3600;
const MAX_RETRIES: i64 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backoff {
    Linear,
    Arithmetic,
    Geometric,
    Exponential,
}

impl Backoff {
    fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "linear" => Some(Backoff::Linear),
            "arithmetic" => Some(Backoff::Arithmetic),
            "geometric" => Some(Backoff::Geometric),
            "exponential" => Some(Backoff::Exponential),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Backoff::Linear => "linear",
            Backoff::Arithmetic => "arithmetic",
            Backoff::Geometric => "geometric",
            Backoff::Exponential => "exponential",
        }
    }
}

/// A healthy-retry policy (delays in seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    pub min_delay: u32,
    pub max_delay: u32,
    pub num_retries: u32,
    pub num_no_delay: u32,
    pub num_min_delay: u32,
    pub num_max_delay: u32,
    pub backoff: Backoff,
}

impl RetryPolicy {
    /// The default for HTTP/S (and chat webhooks): 3 retries, 20 seconds apart.
    pub const HTTP_DEFAULT: RetryPolicy = RetryPolicy {
        min_delay: 20,
        max_delay: 20,
        num_retries: 3,
        num_no_delay: 0,
        num_min_delay: 0,
        num_max_delay: 0,
        backoff: Backoff::Linear,
    };

    /// SNS's fixed policy for customer-managed endpoints such as SMTP: 2 retries 10 s apart,
    /// 10 with exponential backoff from 10 s to 600 s, 38 more 600 s apart (50 retries, > 6 hours).
    pub const EMAIL: RetryPolicy = RetryPolicy {
        min_delay: 10,
        max_delay: 600,
        num_retries: 50,
        num_no_delay: 0,
        num_min_delay: 2,
        num_max_delay: 38,
        backoff: Backoff::Exponential,
    };

    /// Seconds to wait before retry number `retry` (1-based); `None` once retries are exhausted.
    pub fn delay_before_retry(&self, retry: u32) -> Option<u32> {
        if retry == 0 || retry > self.num_retries {
            return None;
        }
        let backoff_count = self
            .num_retries
            .saturating_sub(self.num_no_delay)
            .saturating_sub(self.num_min_delay)
            .saturating_sub(self.num_max_delay);
        if retry <= self.num_no_delay {
            return Some(0);
        }
        let r = retry - self.num_no_delay;
        if r <= self.num_min_delay {
            return Some(self.min_delay);
        }
        let i = r - self.num_min_delay;
        if i > backoff_count {
            return Some(self.max_delay);
        }
        let (min, max) = (
            f64::from(self.min_delay),
            f64::from(self.max_delay.max(self.min_delay)),
        );
        let t = if backoff_count <= 1 {
            0.0
        } else {
            f64::from(i - 1) / f64::from(backoff_count - 1)
        };
        let d = match self.backoff {
            Backoff::Linear => min + (max - min) * t,
            Backoff::Arithmetic => min + (max - min) * t * t,
            Backoff::Geometric => min * (max / min.max(1.0)).powf(t),
            Backoff::Exponential => {
                let steps = f64::from(backoff_count.saturating_sub(1)).min(60.0);
                if steps == 0.0 {
                    min
                } else {
                    min + (max - min) * ((2f64.powf(steps * t) - 1.0) / (2f64.powf(steps) - 1.0))
                }
            }
        };
        Some(d.round().clamp(0.0, f64::from(u32::MAX)) as u32)
    }

    /// Sum of every retry delay, in seconds.
    pub fn total_seconds(&self) -> u64 {
        (1..=self.num_retries)
            .filter_map(|r| self.delay_before_retry(r))
            .map(u64::from)
            .sum()
    }

    fn to_json(self) -> Value {
        json!({
            "minDelayTarget": self.min_delay,
            "maxDelayTarget": self.max_delay,
            "numRetries": self.num_retries,
            "numMaxDelayRetries": self.num_max_delay,
            "numNoDelayRetries": self.num_no_delay,
            "numMinDelayRetries": self.num_min_delay,
            "backoffFunction": self.backoff.name(),
        })
    }
}

/// A parsed, valid delivery policy (topic or subscription level).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeliveryPolicy {
    pub retry: Option<RetryPolicy>,
    pub max_receives_per_second: Option<u32>,
    pub content_type: Option<String>,
    /// Topic level only: ignore subscription policies.
    pub disable_subscription_overrides: bool,
}

/// Parse a topic's `DeliveryPolicy`. `Err` is the reason, e.g.
/// `DeliveryPolicy: http.defaultHealthyRetryPolicy.minDelayTarget must be greater than or equal to 1`.
pub fn parse_topic(text: &str) -> Result<DeliveryPolicy, String> {
    let root = parse_object(text)?;
    let Some(http) = root.get("http") else {
        return Ok(DeliveryPolicy::default());
    };
    let http = http
        .as_object()
        .ok_or_else(|| reason("http must be an object"))?;
    let mut out = DeliveryPolicy::default();
    if let Some(v) = http
        .get("defaultHealthyRetryPolicy")
        .filter(|v| !v.is_null())
    {
        out.retry = Some(parse_retry(v, "http.defaultHealthyRetryPolicy")?);
    }
    if let Some(v) = http.get("defaultThrottlePolicy").filter(|v| !v.is_null()) {
        out.max_receives_per_second = parse_throttle(v, "http.defaultThrottlePolicy")?;
    }
    if let Some(v) = http.get("defaultRequestPolicy").filter(|v| !v.is_null()) {
        out.content_type = parse_request(v, "http.defaultRequestPolicy")?;
    }
    if let Some(v) = http.get("disableSubscriptionOverrides") {
        out.disable_subscription_overrides = v
            .as_bool()
            .ok_or_else(|| reason("http.disableSubscriptionOverrides must be a boolean"))?;
    }
    Ok(out)
}

/// Parse a subscription's `DeliveryPolicy`.
pub fn parse_subscription(text: &str) -> Result<DeliveryPolicy, String> {
    let root = parse_object(text)?;
    let mut out = DeliveryPolicy::default();
    if let Some(v) = root.get("healthyRetryPolicy").filter(|v| !v.is_null()) {
        out.retry = Some(parse_retry(v, "healthyRetryPolicy")?);
    }
    if let Some(v) = root.get("throttlePolicy").filter(|v| !v.is_null()) {
        out.max_receives_per_second = parse_throttle(v, "throttlePolicy")?;
    }
    if let Some(v) = root.get("requestPolicy").filter(|v| !v.is_null()) {
        out.content_type = parse_request(v, "requestPolicy")?;
    }
    Ok(out)
}

fn reason(s: impl AsRef<str>) -> String {
    format!("DeliveryPolicy: {}", s.as_ref())
}

fn parse_object(text: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(reason("Invalid JSON")),
    }
}

fn int_field(obj: &Map<String, Value>, path: &str, name: &str) -> Result<Option<i64>, String> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| reason(format!("{path}.{name} must be an integer"))),
    }
}

fn parse_retry(v: &Value, path: &str) -> Result<RetryPolicy, String> {
    let obj = v
        .as_object()
        .ok_or_else(|| reason(format!("{path} must be an object")))?;
    let d = RetryPolicy::HTTP_DEFAULT;
    let get = |name: &str, default: u32| -> Result<i64, String> {
        Ok(int_field(obj, path, name)?.unwrap_or(i64::from(default)))
    };
    let min = get("minDelayTarget", d.min_delay)?;
    let max = get("maxDelayTarget", d.max_delay)?;
    let retries = get("numRetries", d.num_retries)?;
    let no_delay = get("numNoDelayRetries", 0)?;
    let min_retries = get("numMinDelayRetries", 0)?;
    let max_retries = get("numMaxDelayRetries", 0)?;
    let at_least = |name: &str, v: i64, lo: i64| {
        if v < lo {
            Err(reason(format!(
                "{path}.{name} must be greater than or equal to {lo}"
            )))
        } else {
            Ok(())
        }
    };
    let at_most = |name: &str, v: i64, hi: i64| {
        if v > hi {
            Err(reason(format!(
                "{path}.{name} must be less than or equal to {hi}"
            )))
        } else {
            Ok(())
        }
    };
    at_least("minDelayTarget", min, 1)?;
    at_most("minDelayTarget", min, MAX_TOTAL_SECONDS as i64)?;
    at_least("maxDelayTarget", max, 1)?;
    at_most("maxDelayTarget", max, MAX_TOTAL_SECONDS as i64)?;
    if min > max {
        return Err(reason(format!(
            "{path}.minDelayTarget must be less than or equal to maxDelayTarget"
        )));
    }
    at_least("numRetries", retries, 0)?;
    at_most("numRetries", retries, MAX_RETRIES)?;
    for (name, v) in [
        ("numNoDelayRetries", no_delay),
        ("numMinDelayRetries", min_retries),
        ("numMaxDelayRetries", max_retries),
    ] {
        at_least(name, v, 0)?;
        at_most(name, v, MAX_RETRIES)?;
    }
    if no_delay + min_retries + max_retries > retries {
        return Err(reason(format!(
            "{path}.numRetries must be greater than or equal to the sum of numNoDelayRetries, numMinDelayRetries and numMaxDelayRetries"
        )));
    }
    let backoff = match obj.get("backoffFunction") {
        None | Some(Value::Null) => Backoff::Linear,
        Some(Value::String(s)) => Backoff::parse(s).ok_or_else(|| {
            reason(format!(
                "{path}.backoffFunction must be one of linear, arithmetic, geometric, exponential"
            ))
        })?,
        Some(_) => return Err(reason(format!("{path}.backoffFunction must be a string"))),
    };
    // Every value is within 0..=3600 here, so the casts are exact.
    let policy = RetryPolicy {
        min_delay: min as u32,
        max_delay: max as u32,
        num_retries: retries as u32,
        num_no_delay: no_delay as u32,
        num_min_delay: min_retries as u32,
        num_max_delay: max_retries as u32,
        backoff,
    };
    if policy.total_seconds() > MAX_TOTAL_SECONDS {
        return Err(reason(format!(
            "{path}: the total time of all retries must not exceed {MAX_TOTAL_SECONDS} seconds"
        )));
    }
    Ok(policy)
}

fn parse_throttle(v: &Value, path: &str) -> Result<Option<u32>, String> {
    let obj = v
        .as_object()
        .ok_or_else(|| reason(format!("{path} must be an object")))?;
    match int_field(obj, path, "maxReceivesPerSecond")? {
        None => Ok(None),
        Some(n) if n >= 1 => Ok(Some(u32::try_from(n).unwrap_or(u32::MAX))),
        Some(_) => Err(reason(format!(
            "{path}.maxReceivesPerSecond must be greater than or equal to 1"
        ))),
    }
}

fn parse_request(v: &Value, path: &str) -> Result<Option<String>, String> {
    let obj = v
        .as_object()
        .ok_or_else(|| reason(format!("{path} must be an object")))?;
    match obj.get("headerContentType") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let base = s
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if ["text/plain", "application/json", "application/xml"].contains(&base.as_str()) {
                Ok(Some(s.clone()))
            } else {
                Err(reason(format!(
                    "{path}.headerContentType must be text/plain, application/json or application/xml"
                )))
            }
        }
        Some(_) => Err(reason(format!("{path}.headerContentType must be a string"))),
    }
}

/// What a delivery to an HTTP/S or chat subscription uses: retry policy and content type.
pub fn effective(
    topic: Option<&DeliveryPolicy>,
    sub: Option<&DeliveryPolicy>,
) -> (RetryPolicy, String) {
    let overrides = !topic.is_some_and(|t| t.disable_subscription_overrides);
    let pick = |f: &dyn Fn(&DeliveryPolicy) -> Option<RetryPolicy>| {
        sub.filter(|_| overrides)
            .and_then(f)
            .or_else(|| topic.and_then(f))
    };
    let retry = pick(&|p| p.retry).unwrap_or(RetryPolicy::HTTP_DEFAULT);
    let content_type = sub
        .filter(|_| overrides)
        .and_then(|p| p.content_type.clone())
        .or_else(|| topic.and_then(|t| t.content_type.clone()))
        .unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_string());
    (retry, content_type)
}

/// The topic's `EffectiveDeliveryPolicy` attribute.
pub fn topic_effective_json(topic: Option<&DeliveryPolicy>) -> String {
    let retry = topic
        .and_then(|t| t.retry)
        .unwrap_or(RetryPolicy::HTTP_DEFAULT);
    let mut http = Map::new();
    http.insert("defaultHealthyRetryPolicy".into(), retry.to_json());
    http.insert(
        "disableSubscriptionOverrides".into(),
        Value::Bool(topic.is_some_and(|t| t.disable_subscription_overrides)),
    );
    if let Some(n) = topic.and_then(|t| t.max_receives_per_second) {
        http.insert(
            "defaultThrottlePolicy".into(),
            json!({ "maxReceivesPerSecond": n }),
        );
    }
    let ct = topic
        .and_then(|t| t.content_type.clone())
        .unwrap_or_else(|| DEFAULT_CONTENT_TYPE.into());
    http.insert(
        "defaultRequestPolicy".into(),
        json!({ "headerContentType": ct }),
    );
    json!({ "http": http }).to_string()
}

/// A subscription's `EffectiveDeliveryPolicy` attribute.
pub fn subscription_effective_json(
    topic: Option<&DeliveryPolicy>,
    sub: Option<&DeliveryPolicy>,
) -> String {
    let (retry, content_type) = effective(topic, sub);
    let throttle = sub
        .and_then(|s| s.max_receives_per_second)
        .or_else(|| topic.and_then(|t| t.max_receives_per_second))
        .map(|n| json!({ "maxReceivesPerSecond": n }))
        .unwrap_or(Value::Null);
    json!({
        "healthyRetryPolicy": retry.to_json(),
        "sicklyRetryPolicy": null,
        "throttlePolicy": throttle,
        "requestPolicy": { "headerContentType": content_type },
        "guaranteed": false,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_is_three_retries_twenty_seconds_apart() {
        let p = RetryPolicy::HTTP_DEFAULT;
        let delays: Vec<_> = (1..=4).map(|r| p.delay_before_retry(r)).collect();
        assert_eq!(delays, [Some(20), Some(20), Some(20), None]);
        assert_eq!(p.total_seconds(), 60);
    }

    #[test]
    fn phases_follow_in_order() {
        let p = parse_subscription(
            r#"{"healthyRetryPolicy":{"minDelayTarget":5,"maxDelayTarget":40,"numRetries":8,
                "numNoDelayRetries":2,"numMinDelayRetries":1,"numMaxDelayRetries":2,"backoffFunction":"linear"}}"#,
        )
        .unwrap()
        .retry
        .unwrap();
        let delays: Vec<_> = (1..=9).map(|r| p.delay_before_retry(r)).collect();
        // 2 immediate, 1 at min, 3 backoff (5, 22.5, 40), 2 at max, then exhausted.
        assert_eq!(
            delays,
            [
                Some(0),
                Some(0),
                Some(5),
                Some(5),
                Some(23),
                Some(40),
                Some(40),
                Some(40),
                None
            ]
        );
    }

    #[test]
    fn documented_linear_example() {
        // maxDelayTarget 40 with the other defaults: retries after 20, 30 and 40 seconds.
        let p = parse_subscription(r#"{"healthyRetryPolicy":{"maxDelayTarget":40}}"#)
            .unwrap()
            .retry
            .unwrap();
        assert_eq!(
            (1..=3)
                .map(|r| p.delay_before_retry(r).unwrap())
                .collect::<Vec<_>>(),
            [20, 30, 40]
        );
    }

    #[test]
    fn backoff_functions_run_from_min_to_max() {
        for f in ["linear", "arithmetic", "geometric", "exponential"] {
            let text = format!(
                r#"{{"healthyRetryPolicy":{{"minDelayTarget":5,"maxDelayTarget":260,"numRetries":10,"backoffFunction":"{f}"}}}}"#
            );
            let p = parse_subscription(&text).unwrap().retry.unwrap();
            let d: Vec<u32> = (1..=10).map(|r| p.delay_before_retry(r).unwrap()).collect();
            assert_eq!(d[0], 5, "{f}");
            assert_eq!(d[9], 260, "{f}");
            assert!(d.windows(2).all(|w| w[0] <= w[1]), "{f}: {d:?}");
        }
    }

    #[test]
    fn validation_messages() {
        let e = parse_subscription(r#"{"healthyRetryPolicy":{"minDelayTarget":0}}"#).unwrap_err();
        assert_eq!(
            e,
            "DeliveryPolicy: healthyRetryPolicy.minDelayTarget must be greater than or equal to 1"
        );
        let e = parse_topic(r#"{"http":{"defaultHealthyRetryPolicy":{"numRetries":101}}}"#)
            .unwrap_err();
        assert_eq!(e, "DeliveryPolicy: http.defaultHealthyRetryPolicy.numRetries must be less than or equal to 100");
        assert!(parse_subscription("not json").is_err());
        assert!(
            parse_subscription(r#"{"healthyRetryPolicy":{"backoffFunction":"cubic"}}"#).is_err()
        );
        assert!(
            parse_subscription(r#"{"requestPolicy":{"headerContentType":"image/png"}}"#).is_err()
        );
        // 100 retries at 3600 s exceed an hour.
        assert!(parse_subscription(
            r#"{"healthyRetryPolicy":{"minDelayTarget":3600,"maxDelayTarget":3600,"numRetries":100}}"#
        )
        .is_err());
        assert!(parse_subscription(
            r#"{"healthyRetryPolicy":{"numRetries":2,"numNoDelayRetries":2,"numMinDelayRetries":1}}"#
        )
        .is_err());
    }

    #[test]
    fn subscription_overrides_topic_unless_disabled() {
        let topic = parse_topic(r#"{"http":{"defaultHealthyRetryPolicy":{"numRetries":5},"defaultRequestPolicy":{"headerContentType":"application/json"}}}"#).unwrap();
        let sub = parse_subscription(
            r#"{"healthyRetryPolicy":{"numRetries":1,"minDelayTarget":1,"maxDelayTarget":1}}"#,
        )
        .unwrap();
        let (r, ct) = effective(Some(&topic), Some(&sub));
        assert_eq!(r.num_retries, 1);
        assert_eq!(ct, "application/json");
        let mut locked = topic.clone();
        locked.disable_subscription_overrides = true;
        assert_eq!(effective(Some(&locked), Some(&sub)).0.num_retries, 5);
        assert_eq!(
            effective(None, None),
            (RetryPolicy::HTTP_DEFAULT, DEFAULT_CONTENT_TYPE.to_string())
        );
    }

    #[test]
    fn effective_policy_json_shapes() {
        let v: Value = serde_json::from_str(&topic_effective_json(None)).unwrap();
        assert_eq!(v["http"]["defaultHealthyRetryPolicy"]["numRetries"], 3);
        assert_eq!(
            v["http"]["defaultRequestPolicy"]["headerContentType"],
            DEFAULT_CONTENT_TYPE
        );
        let v: Value = serde_json::from_str(&subscription_effective_json(None, None)).unwrap();
        assert_eq!(v["healthyRetryPolicy"]["minDelayTarget"], 20);
        assert_eq!(v["guaranteed"], false);
    }

    #[test]
    fn email_policy_spans_hours() {
        let p = RetryPolicy::EMAIL;
        assert_eq!(p.delay_before_retry(1), Some(10));
        assert_eq!(p.delay_before_retry(50), Some(600));
        assert!(p.total_seconds() > 6 * 3600);
    }
}

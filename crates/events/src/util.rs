//! Small shared helpers of the EventBridge core: AWS-style errors, internal-caller detection,
//! clock and timestamp formatting, ARNs and the control-store key layout.

use opsloop_core::{ApiError, RequestContext, Value};

/// Control-store tables of the core (the `ext` module uses its own `events.x.*` tables).
pub const T_BUS: &str = "events.bus";
pub const T_RULE: &str = "events.rule";
pub const T_OUTBOX: &str = "events.outbox";
pub const T_RETRY: &str = "events.retry";
pub const T_SCHED: &str = "events.sched";

/// Name of the bus every account and region has.
pub const DEFAULT_BUS: &str = "default";

pub fn validation(message: impl Into<String>) -> ApiError {
    ApiError::new("ValidationException", message)
}

pub fn not_found(message: impl Into<String>) -> ApiError {
    ApiError::new("ResourceNotFoundException", message)
}

/// Log `cause` and answer a 500 that reveals nothing.
pub fn internal(cause: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %cause, "events internal failure");
    ApiError::with_status(
        "InternalException",
        500,
        "We encountered an internal error. Please try again.",
    )
}

/// Whether the call comes from another service of this process (`Directory::invoke`), not a client.
pub fn is_internal(ctx: &RequestContext) -> bool {
    ctx.request_id == "internal" && ctx.access_key_id.is_none()
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Days since 1970-01-01 → (year, month, day) (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `2026-11-21T21:13:40Z`: an event's `time` (whole seconds, as EventBridge writes it).
pub fn iso_seconds(ms: i64) -> String {
    // Events come in bursts within one second: each thread keeps its last answer.
    thread_local! {
        static LAST: std::cell::RefCell<(i64, String)> = const { std::cell::RefCell::new((i64::MIN, String::new())) };
    }
    let secs = ms.div_euclid(1000);
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if last.0 != secs {
            *last = (secs, format_seconds(secs));
        }
        last.1.clone()
    })
}

fn format_seconds(secs: i64) -> String {
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// `2026-11-21T21:13:40.123Z`.
pub fn iso_millis(ms: i64) -> String {
    let s = iso_seconds(ms);
    format!("{}.{:03}Z", &s[..s.len() - 1], ms.rem_euclid(1000))
}

pub fn bus_arn(account: &str, region: &str, bus: &str) -> String {
    format!("arn:aws:events:{region}:{account}:event-bus/{bus}")
}

pub fn rule_arn(account: &str, region: &str, bus: &str, rule: &str) -> String {
    if bus == DEFAULT_BUS {
        format!("arn:aws:events:{region}:{account}:rule/{rule}")
    } else {
        format!("arn:aws:events:{region}:{account}:rule/{bus}/{rule}")
    }
}

/// The parts of an ARN: (service, region, account, resource).
pub fn arn_parts(arn: &str) -> Option<(&str, &str, &str, &str)> {
    let mut it = arn.splitn(6, ':');
    if it.next()? != "arn" {
        return None;
    }
    let _partition = it.next()?;
    let service = it.next()?;
    let region = it.next()?;
    let account = it.next()?;
    let resource = it.next()?;
    Some((service, region, account, resource))
}

/// A bus named by name or ARN → (account, region, name), the caller's account/region by default.
pub fn resolve_bus(ctx: &RequestContext, name_or_arn: Option<&str>) -> (String, String, String) {
    let (a, r, b) = resolve_bus_ref(ctx, name_or_arn);
    (a.to_string(), r.to_string(), b.to_string())
}

/// [`resolve_bus`] without copying: the names borrowed from `ctx` and the name or ARN.
pub fn resolve_bus_ref<'a>(
    ctx: &'a RequestContext,
    name_or_arn: Option<&'a str>,
) -> (&'a str, &'a str, &'a str) {
    match name_or_arn {
        None | Some("") => (&ctx.account_id, &ctx.region, DEFAULT_BUS),
        Some(s) => match arn_parts(s) {
            Some(("events", region, account, res)) if res.starts_with("event-bus/") => {
                (account, region, &res["event-bus/".len()..])
            }
            _ => (&ctx.account_id, &ctx.region, s),
        },
    }
}

pub fn bus_key(account: &str, region: &str, bus: &str) -> String {
    // Built by hand: looked up for every accepted event, and `format!` costs several times this.
    let mut k = String::with_capacity(account.len() + region.len() + bus.len() + 2);
    k.push_str(account);
    k.push('|');
    k.push_str(region);
    k.push('|');
    k.push_str(bus);
    k
}

pub fn rule_key(account: &str, region: &str, bus: &str, rule: &str) -> String {
    format!("{account}|{region}|{bus}|{rule}")
}

/// String member `name` of an input document.
pub fn s<'a>(input: &'a Value, name: &str) -> Option<&'a str> {
    input.get(name).and_then(Value::as_str)
}

/// `Tags` of an input (`[{Key, Value}]`) as pairs.
pub fn tags_of(input: &Value) -> Vec<(String, String)> {
    input
        .get("Tags")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|t| Some((s(t, "Key")?.to_string(), s(t, "Value")?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Merge `new` tags into `tags` (same key: replaced).
pub fn merge_tags(tags: &mut Vec<(String, String)>, new: Vec<(String, String)>) {
    for (k, v) in new {
        match tags.iter_mut().find(|(tk, _)| *tk == k) {
            Some(t) => t.1 = v,
            None => tags.push((k, v)),
        }
    }
}

pub fn tags_doc(tags: &[(String, String)]) -> Value {
    Value::Array(
        tags.iter()
            .map(|(k, v)| serde_json::json!({"Key": k, "Value": v}))
            .collect(),
    )
}

/// Page `items` (sorted by name) after `NextToken` (the last name returned), `Limit` at most.
pub fn page<T: Clone>(
    items: &[(String, T)],
    input: &Value,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let limit = input
        .get("Limit")
        .and_then(Value::as_u64)
        .unwrap_or(100)
        .clamp(1, 100) as usize;
    let start = match s(input, "NextToken") {
        Some(tok) => {
            let after = decode_token(tok)?;
            items.partition_point(|(n, _)| n.as_str() <= after.as_str())
        }
        None => 0,
    };
    let rest = &items[start.min(items.len())..];
    let out: Vec<T> = rest.iter().take(limit).map(|(_, t)| t.clone()).collect();
    let next = if rest.len() > limit {
        Some(encode_token(&rest[limit - 1].0))
    } else {
        None
    };
    Ok((out, next))
}

fn encode_token(name: &str) -> String {
    name.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_token(tok: &str) -> Result<String, ApiError> {
    let bad = || validation("The NextToken is not valid.");
    if !tok.len().is_multiple_of(2) {
        return Err(bad());
    }
    let bytes: Result<Vec<u8>, _> = (0..tok.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(tok.get(i..i + 2).unwrap_or("zz"), 16))
        .collect();
    String::from_utf8(bytes.map_err(|_| bad())?).map_err(|_| bad())
}

/// The event's `time` as epoch ms.
pub fn event_time_ms(event: &Value) -> Option<i64> {
    let t = s(event, "time")?;
    let b = t.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400) + h * 3600 + mi * 60 + sec) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_event_times() {
        assert_eq!(iso_seconds(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_seconds(1_795_296_820_999), "2026-11-21T21:33:40Z");
        assert_eq!(iso_millis(1_795_296_820_123), "2026-11-21T21:33:40.123Z");
        assert_eq!(iso_seconds(951_782_400_000), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn event_times_round_trip() {
        for ms in [0i64, 951_782_400_000, 1_795_296_820_000] {
            let ev = serde_json::json!({"time": iso_seconds(ms)});
            assert_eq!(event_time_ms(&ev), Some(ms));
        }
        assert_eq!(event_time_ms(&serde_json::json!({"time": "x"})), None);
    }

    #[test]
    fn arns_and_bus_resolution() {
        assert_eq!(
            rule_arn("1", "r", "default", "x"),
            "arn:aws:events:r:1:rule/x"
        );
        assert_eq!(rule_arn("1", "r", "b", "x"), "arn:aws:events:r:1:rule/b/x");
        let ctx = RequestContext::internal("111122223333", "us-east-1", "PutEvents");
        assert_eq!(
            resolve_bus(
                &ctx,
                Some("arn:aws:events:eu-west-1:444455556666:event-bus/o/x")
            ),
            ("444455556666".into(), "eu-west-1".into(), "o/x".into())
        );
        assert_eq!(resolve_bus(&ctx, None).2, "default");
        assert_eq!(
            arn_parts("arn:aws:logs:us-east-1:1:log-group:/a/b:*"),
            Some(("logs", "us-east-1", "1", "log-group:/a/b:*"))
        );
    }

    #[test]
    fn pages_by_name() {
        let items: Vec<(String, u32)> = (0..5).map(|i| (format!("n{i}"), i)).collect();
        let input = serde_json::json!({"Limit": 2});
        let (a, next) = page(&items, &input).unwrap();
        assert_eq!(a, vec![0, 1]);
        let input = serde_json::json!({"Limit": 2, "NextToken": next.unwrap()});
        let (b, next) = page(&items, &input).unwrap();
        assert_eq!(b, vec![2, 3]);
        let input = serde_json::json!({"Limit": 2, "NextToken": next.unwrap()});
        let (c, next) = page(&items, &input).unwrap();
        assert_eq!((c, next), (vec![4], None));
        assert!(page(&items, &serde_json::json!({"NextToken": "zz"})).is_err());
    }
}

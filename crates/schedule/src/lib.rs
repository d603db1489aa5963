//! Schedule expressions (SKELETON — the scheduler helper replaces the bodies; the public signatures
//! below are what `opsloop-events` compiles against and must stay).

/// An expression that failed validation; the message is AWS's (e.g.
/// `Parameter ScheduleExpression is not valid.`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ExpressionError(pub String);

/// A parsed schedule expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expression {
    /// `rate(value unit)`, as a period in seconds.
    Rate { seconds: u64 },
    /// `cron(min hour dom month dow year)`.
    Cron(Cron),
    /// `at(yyyy-mm-ddThh:mm:ss)` — a local date-time in the schedule's time zone, as seconds of
    /// that wall clock since the epoch.
    At { local_seconds: i64 },
}

/// A parsed six-field cron expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Cron {
    pub source: String,
}

/// Parse a `ScheduleExpression` of an EventBridge rule (`rate()` or `cron()`, UTC).
pub fn parse_rule_expression(text: &str) -> Result<Expression, ExpressionError> {
    let _ = text;
    Err(ExpressionError(
        "Parameter ScheduleExpression is not valid.".into(),
    ))
}

/// Parse a `ScheduleExpression` of EventBridge Scheduler (`at()`, `rate()` or `cron()`).
pub fn parse_scheduler_expression(text: &str) -> Result<Expression, ExpressionError> {
    let _ = text;
    Err(ExpressionError("Invalid Schedule Expression".into()))
}

impl Expression {
    /// The first fire time strictly after `after_ms` (epoch milliseconds), or `None` if the
    /// expression never fires again. `anchor_ms` is when the schedule started (rates count from
    /// it); `time_zone` is an IANA name (`"UTC"` for rules).
    pub fn next_after(
        &self,
        anchor_ms: i64,
        after_ms: i64,
        time_zone: &str,
    ) -> Result<Option<i64>, ExpressionError> {
        let _ = (anchor_ms, after_ms, time_zone);
        Ok(None)
    }
}

/// Is `name` a time zone this build knows (IANA name)?
pub fn is_valid_time_zone(name: &str) -> bool {
    name == "UTC"
}

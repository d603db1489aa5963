//! What `opsloop logs tail` and `opsloop logs query` do, over any [`LogsClient`]: the binary's
//! command line passes one that talks to a running server over signed HTTP, tests may pass an
//! in-process [`Logs`] ([`InProcess`]). Tail prints events of a group (optionally following new
//! ones), query runs an Insights query to completion and renders its rows as a text table.
//! [`parse_time`] reads the `--since` / `--start` / `--end` forms.

use std::collections::HashSet;
use std::future::Future;
use std::io::Write;
use std::time::{Duration, Instant};

use opsloop_core::{ApiError, RequestContext, Value};
use serde_json::json;

use crate::insights::eval::format_time;
use crate::Logs;

/// Options of [`tail`].
#[derive(Debug, Clone)]
pub struct TailOptions {
    pub group: String,
    /// Print events at or after this time (ms since the epoch).
    pub since_ms: i64,
    pub filter_pattern: Option<String>,
    pub stream_prefix: Option<String>,
    /// Keep polling for new events until `stop` says so.
    pub follow: bool,
    pub poll_interval: Duration,
}

/// Something that runs Logs operations: JSON input document in, output document or AWS error out.
pub trait LogsClient {
    fn call(&self, op: &str, input: Value) -> impl Future<Output = Result<Value, ApiError>> + Send;
}

/// A [`LogsClient`] calling an open [`Logs`] in this process.
pub struct InProcess<'a> {
    pub logs: &'a Logs,
    pub account: &'a str,
    pub region: &'a str,
}

impl LogsClient for InProcess<'_> {
    fn call(&self, op: &str, input: Value) -> impl Future<Output = Result<Value, ApiError>> + Send {
        let ctx = RequestContext::internal(self.account, self.region, op);
        async move { self.logs.handle(&ctx, input).await }
    }
}

/// Print `<time> <stream> <message>` lines for the group's events; returns how many were printed.
/// With `follow`, polls every `poll_interval` until `stop()` returns true.
pub async fn tail(
    logs: &Logs,
    account: &str,
    region: &str,
    opts: &TailOptions,
    out: &mut (dyn Write + Send),
    stop: &(dyn Fn() -> bool + Send + Sync),
) -> Result<u64, ApiError> {
    let client = InProcess {
        logs,
        account,
        region,
    };
    tail_with(&client, opts, out, stop).await
}

/// [`tail`] over any client.
pub async fn tail_with<C: LogsClient>(
    client: &C,
    opts: &TailOptions,
    out: &mut (dyn Write + Send),
    stop: &(dyn Fn() -> bool + Send + Sync),
) -> Result<u64, ApiError> {
    let mut printed = 0u64;
    let mut from = opts.since_ms;
    // event ids already printed at timestamp `from` (a later poll starts there again)
    let mut seen_at_from: HashSet<String> = HashSet::new();
    loop {
        let mut token: Option<Value> = None;
        loop {
            let mut input = json!({"logGroupName": opts.group, "startTime": from});
            if let Some(p) = &opts.filter_pattern {
                input["filterPattern"] = json!(p);
            }
            if let Some(p) = &opts.stream_prefix {
                input["logStreamNamePrefix"] = json!(p);
            }
            if let Some(t) = &token {
                input["nextToken"] = t.clone();
            }
            let page = client.call("FilterLogEvents", input).await?;
            for e in page["events"].as_array().into_iter().flatten() {
                let ts = e["timestamp"].as_i64().unwrap_or(0);
                let id = e["eventId"].as_str().unwrap_or_default().to_string();
                if ts == from && seen_at_from.contains(&id) {
                    continue;
                }
                if ts > from {
                    from = ts;
                    seen_at_from.clear();
                }
                seen_at_from.insert(id);
                writeln!(
                    out,
                    "{} {} {}",
                    format_time(ts),
                    e["logStreamName"].as_str().unwrap_or_default(),
                    e["message"].as_str().unwrap_or_default()
                )
                .map_err(crate::error::internal)?;
                printed += 1;
            }
            match page.get("nextToken") {
                Some(t) => token = Some(t.clone()),
                None => break,
            }
        }
        out.flush().map_err(crate::error::internal)?;
        if !opts.follow || stop() {
            return Ok(printed);
        }
        tokio::time::sleep(opts.poll_interval).await;
        if stop() {
            return Ok(printed);
        }
    }
}

/// A finished query: column names (first-seen order) and rows aligned to them.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryTable {
    pub status: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub records_scanned: f64,
    pub records_matched: f64,
}

/// Run `query` over `groups` for `[start_s, end_s]` and wait (up to `timeout`) for it to finish.
#[allow(clippy::too_many_arguments)]
pub async fn query(
    logs: &Logs,
    account: &str,
    region: &str,
    groups: &[String],
    query: &str,
    start_s: i64,
    end_s: i64,
    timeout: Duration,
) -> Result<QueryTable, ApiError> {
    let client = InProcess {
        logs,
        account,
        region,
    };
    query_with(&client, groups, query, start_s, end_s, None, timeout).await
}

/// [`query`] over any client, with an optional result `limit`.
pub async fn query_with<C: LogsClient>(
    client: &C,
    groups: &[String],
    query: &str,
    start_s: i64,
    end_s: i64,
    limit: Option<u32>,
    timeout: Duration,
) -> Result<QueryTable, ApiError> {
    let mut input = json!({"logGroupNames": groups, "queryString": query, "startTime": start_s, "endTime": end_s});
    if let Some(l) = limit {
        input["limit"] = json!(l);
    }
    let started = client.call("StartQuery", input).await?;
    let id = started["queryId"].clone();
    let deadline = Instant::now() + timeout;
    let mut wait = Duration::from_millis(2);
    let r = loop {
        let r = client
            .call("GetQueryResults", json!({"queryId": id}))
            .await?;
        let status = r["status"].as_str().unwrap_or_default();
        if status != "Running" && status != "Scheduled" {
            break r;
        }
        if Instant::now() >= deadline {
            let _ = client.call("StopQuery", json!({"queryId": id})).await;
            return Err(ApiError::new(
                "Timeout",
                "the query did not finish in time and was stopped",
            ));
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_millis(200));
    };
    let mut columns: Vec<String> = Vec::new();
    let raw: Vec<Vec<(String, String)>> = r["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|row| {
            row.as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    (
                        c["field"].as_str().unwrap_or_default().to_string(),
                        c["value"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .collect();
    for row in &raw {
        for (f, _) in row {
            if f != "@ptr" && !columns.contains(f) {
                columns.push(f.clone());
            }
        }
    }
    let rows = raw
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|c| {
                    row.iter()
                        .find(|(f, _)| f == c)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                })
                .collect()
        })
        .collect();
    Ok(QueryTable {
        status: r["status"].as_str().unwrap_or_default().to_string(),
        columns,
        rows,
        records_scanned: r["statistics"]["recordsScanned"].as_f64().unwrap_or(0.0),
        records_matched: r["statistics"]["recordsMatched"].as_f64().unwrap_or(0.0),
    })
}

/// A plain-text table of a query's rows, columns padded to their widest cell.
pub fn render_table(t: &QueryTable) -> String {
    let widths: Vec<usize> = t
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            t.rows
                .iter()
                .map(|r| r.get(i).map_or(0, |v| v.chars().count()))
                .chain(std::iter::once(c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &mut dyn Iterator<Item = &String>| -> String {
        cells
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join(" | ")
            .trim_end()
            .to_string()
    };
    let mut out = String::new();
    out.push_str(&line(&mut t.columns.iter()));
    out.push('\n');
    out.push_str(
        &widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("-+-"),
    );
    out.push('\n');
    for r in &t.rows {
        out.push_str(&line(&mut r.iter()));
        out.push('\n');
    }
    out.push_str(&format!(
        "{} rows, {} records matched, {} scanned ({})\n",
        t.rows.len(),
        t.records_matched,
        t.records_scanned,
        t.status
    ));
    out
}

/// A point in time (ms since the epoch) from `--since` / `--start` / `--end`: a relative age
/// (`30s`, `10m`, `2h`, `7d`, `1w`: that long before `now_ms`), epoch milliseconds (13+ digits)
/// or seconds (fewer), or an RFC 3339 time (`2026-01-02T03:04:05Z`).
pub fn parse_time(text: &str, now_ms: i64) -> Result<i64, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty time".into());
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        let n: i64 = t.parse().map_err(|_| format!("{t:?} is out of range"))?;
        return Ok(if t.len() >= 13 { n } else { n * 1000 });
    }
    let (num, unit) = t.split_at(t.len() - 1);
    if let Ok(n) = num.parse::<i64>() {
        let ms = match unit {
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            _ => 0,
        };
        if ms > 0 {
            return Ok(now_ms - n.saturating_mul(ms));
        }
    }
    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
        .map(|d| (d.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|_| {
            format!(
                "{t:?} is not a time: use an age (30s, 10m, 2h, 7d, 1w), epoch seconds or \
                 milliseconds, or RFC 3339 (2026-01-02T03:04:05Z)"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_every_form() {
        let now = 1_700_000_000_000;
        assert_eq!(parse_time("10m", now), Ok(now - 600_000));
        assert_eq!(parse_time("2h", now), Ok(now - 7_200_000));
        assert_eq!(parse_time("1w", now), Ok(now - 604_800_000));
        assert_eq!(parse_time("1700000000", now), Ok(1_700_000_000_000));
        assert_eq!(parse_time("1700000000123", now), Ok(1_700_000_000_123));
        assert_eq!(
            parse_time("2023-11-14T22:13:20.5Z", now),
            Ok(1_700_000_000_500)
        );
        assert!(parse_time("10x", now).unwrap_err().contains("not a time"));
        assert!(parse_time("", now).is_err());
    }

    #[test]
    fn tables_pad_columns() {
        let t = QueryTable {
            status: "Complete".into(),
            columns: vec!["user".into(), "count()".into()],
            rows: vec![
                vec!["alice".into(), "3".into()],
                vec!["bo".into(), "12".into()],
            ],
            records_scanned: 5.0,
            records_matched: 5.0,
        };
        assert_eq!(
            render_table(&t),
            "user  | count()\n------+--------\nalice | 3\nbo    | 12\n2 rows, 5 records matched, 5 scanned (Complete)\n"
        );
    }
}

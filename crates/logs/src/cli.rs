//! What `opsloop logs tail` and `opsloop logs query` do, as functions the server's command line
//! calls with an open [`Logs`]: tail prints events of a group (optionally following new ones),
//! query runs an Insights query to completion and renders its rows as a text table.

use std::collections::HashSet;
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

async fn call(
    logs: &Logs,
    account: &str,
    region: &str,
    op: &str,
    input: Value,
) -> Result<Value, ApiError> {
    let ctx = RequestContext::internal(account, region, op);
    logs.handle(&ctx, input).await
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
            let page = call(logs, account, region, "FilterLogEvents", input).await?;
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
    let started = call(
        logs,
        account,
        region,
        "StartQuery",
        json!({"logGroupNames": groups, "queryString": query, "startTime": start_s, "endTime": end_s}),
    )
    .await?;
    let id = started["queryId"].clone();
    let deadline = Instant::now() + timeout;
    let mut wait = Duration::from_millis(2);
    let r = loop {
        let r = call(
            logs,
            account,
            region,
            "GetQueryResults",
            json!({"queryId": id}),
        )
        .await?;
        let status = r["status"].as_str().unwrap_or_default();
        if status != "Running" && status != "Scheduled" {
            break r;
        }
        if Instant::now() >= deadline {
            let _ = call(logs, account, region, "StopQuery", json!({"queryId": id})).await;
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

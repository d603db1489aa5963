//! CloudWatch Logs Insights: StartQuery / GetQueryResults / StopQuery / DescribeQueries (queries run
//! on their own threads; state is kept in memory for the last 1,000 queries), query definitions
//! (durable, in the control store), GetLogGroupFields and GetLogRecord.

pub mod eval;
pub mod exec;
pub mod lexer;
pub mod parser;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use opsloop_core::{ApiError, RequestContext, Value};
use opsloop_store::ControlStore;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{self, opt_i64, opt_str, req_str, store_err};
use crate::groups;
use crate::storage::columns::Columns;
use crate::storage::LogStore;
use exec::{ExecError, Outcome, Source};

const MAX_CONCURRENT: usize = 30;
const KEPT_QUERIES: usize = 1000;
/// How long a query may run before it ends with status `Timeout`.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(15 * 60);
const DEFINITIONS: &str = "logs.qdefs";

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Status {
    Scheduled,
    Running,
    Complete,
    Failed,
    Cancelled,
    Timeout,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Scheduled => "Scheduled",
            Status::Running => "Running",
            Status::Complete => "Complete",
            Status::Failed => "Failed",
            Status::Cancelled => "Cancelled",
            Status::Timeout => "Timeout",
        }
    }

    fn active(self) -> bool {
        matches!(self, Status::Scheduled | Status::Running)
    }
}

struct QueryState {
    id: String,
    owner: String,
    query: String,
    group_names: Vec<String>,
    create_time: i64,
    status: Mutex<(Status, Option<Outcome>, Option<Duration>)>,
    cancel: AtomicBool,
}

/// The queries of this process.
#[derive(Default)]
pub struct Queries {
    map: Mutex<HashMap<String, Arc<QueryState>>>,
    order: Mutex<VecDeque<String>>,
}

fn owner(ctx: &RequestContext) -> String {
    format!("{}/{}", ctx.account_id, ctx.region)
}

impl Queries {
    /// StartQuery.
    pub fn start(
        &self,
        store: Arc<LogStore>,
        control: &dyn ControlStore,
        ctx: &RequestContext,
        input: &Value,
        now_ms: i64,
    ) -> Result<Value, ApiError> {
        let query = req_str(input, "queryString")?.to_string();
        if let Some(lang) = opt_str(input, "queryLanguage") {
            if lang != "CWLI" {
                return Err(error::invalid(format!(
                    "Query language {lang} is not supported; use CWLI."
                )));
            }
        }
        let cmds = parser::parse(&query)?;
        let mut names: Vec<String> = Vec::new();
        if let Some(n) = opt_str(input, "logGroupName") {
            names.push(n.to_string());
        }
        names.extend(error::str_list(input, "logGroupNames"));
        names.extend(
            error::str_list(input, "logGroupIdentifiers")
                .iter()
                .map(|i| groups::name_from_identifier(i)),
        );
        names.dedup();
        if names.is_empty() {
            return Err(error::invalid(
                "Specify logGroupName, logGroupNames or logGroupIdentifiers.",
            ));
        }
        if names.len() > 50 {
            return Err(error::invalid("A query can search at most 50 log groups."));
        }
        let start =
            opt_i64(input, "startTime").ok_or_else(|| error::invalid("startTime is required"))?;
        let end = opt_i64(input, "endTime").ok_or_else(|| error::invalid("endTime is required"))?;
        if end < start {
            return Err(error::invalid(
                "endTime must be greater than or equal to startTime.",
            ));
        }
        let limit = opt_i64(input, "limit").unwrap_or(10_000);
        if !(1..=10_000).contains(&limit) {
            return Err(error::invalid("limit must be between 1 and 10000."));
        }
        let mut sources = Vec::new();
        for name in &names {
            let g = groups::load_group(control, ctx, name)
                .map_err(|_| error::not_found(format!("Log group '{name}' does not exist")))?;
            let streams = groups::all_streams(control, ctx, g.gid)?
                .into_iter()
                .map(|s| (s.sid, s.name))
                .collect();
            sources.push(Source {
                gid: g.gid,
                name: g.name,
                account: ctx.account_id.clone(),
                streams,
            });
        }
        let running = self
            .map
            .lock()
            .values()
            .filter(|q| q.status.lock().0.active())
            .count();
        if running >= MAX_CONCURRENT {
            return Err(error::limit_exceeded(format!(
                "Account maximum query concurrency limit of [{MAX_CONCURRENT}] reached."
            )));
        }
        let state = Arc::new(QueryState {
            id: uuid::Uuid::new_v4().to_string(),
            owner: owner(ctx),
            query: query.clone(),
            group_names: names,
            create_time: now_ms,
            status: Mutex::new((Status::Scheduled, None, None)),
            cancel: AtomicBool::new(false),
        });
        self.remember(state.clone());
        let (start_ms, end_ms) = (
            start.saturating_mul(1000),
            end.saturating_add(1).saturating_mul(1000),
        );
        let worker = state.clone();
        let spawned = std::thread::Builder::new().name("logs-query".into()).spawn(move || {
            {
                let mut st = worker.status.lock();
                if st.0 != Status::Scheduled {
                    return;
                }
                st.0 = Status::Running;
            }
            let began = Instant::now();
            let result = exec::run(&store, &sources, &cmds, start_ms, end_ms, limit as usize, &worker.cancel, began + QUERY_TIMEOUT);
            let mut st = worker.status.lock();
            st.2 = Some(began.elapsed());
            match result {
                Ok(out) => {
                    tracing::debug!(query = %worker.id, rows = out.rows.len(), scanned = out.scanned, "logs query complete");
                    *st = (Status::Complete, Some(out), st.2);
                }
                Err(ExecError::Cancelled) => st.0 = Status::Cancelled,
                Err(ExecError::Timeout) => st.0 = Status::Timeout,
                Err(e) => {
                    tracing::warn!(query = %worker.id, error = %e, "logs query failed");
                    st.0 = Status::Failed;
                }
            }
        });
        if let Err(e) = spawned {
            state.status.lock().0 = Status::Failed;
            return Err(error::internal(e));
        }
        Ok(json!({"queryId": state.id}))
    }

    /// Forget every query (running ones are cancelled).
    pub fn clear(&self) {
        for q in self.map.lock().values() {
            q.cancel.store(true, Ordering::Relaxed);
        }
        self.map.lock().clear();
        self.order.lock().clear();
    }

    fn remember(&self, q: Arc<QueryState>) {
        let mut map = self.map.lock();
        let mut order = self.order.lock();
        order.push_back(q.id.clone());
        map.insert(q.id.clone(), q);
        while order.len() > KEPT_QUERIES {
            let Some(old) = order.pop_front() else { break };
            map.remove(&old);
        }
    }

    fn find(&self, ctx: &RequestContext, input: &Value) -> Result<Arc<QueryState>, ApiError> {
        let id = req_str(input, "queryId")?;
        self.map
            .lock()
            .get(id)
            .filter(|q| q.owner == owner(ctx))
            .cloned()
            .ok_or_else(|| error::not_found("Query does not exist"))
    }

    /// GetQueryResults.
    pub fn results(&self, ctx: &RequestContext, input: &Value) -> Result<Value, ApiError> {
        let q = self.find(ctx, input)?;
        let st = q.status.lock();
        let (rows, stats) = match &st.1 {
            Some(out) => (
                out.rows
                    .iter()
                    .map(|r| {
                        r.iter()
                            .map(|(f, v)| json!({"field": f, "value": v}))
                            .collect::<Vec<_>>()
                    })
                    .collect::<Vec<_>>(),
                json!({
                    "recordsMatched": out.matched as f64,
                    "recordsScanned": out.scanned as f64,
                    "bytesScanned": out.bytes as f64,
                    "logGroupsScanned": q.group_names.len() as f64,
                }),
            ),
            None => (
                Vec::new(),
                json!({"recordsMatched": 0.0, "recordsScanned": 0.0, "bytesScanned": 0.0}),
            ),
        };
        Ok(
            json!({"status": st.0.as_str(), "results": rows, "statistics": stats, "queryLanguage": "CWLI"}),
        )
    }

    /// ListLogGroupsForQuery.
    pub fn log_groups_for(&self, ctx: &RequestContext, input: &Value) -> Result<Value, ApiError> {
        let q = self.find(ctx, input)?;
        let max = opt_i64(input, "maxResults").unwrap_or(50).clamp(1, 500) as usize;
        let offset = match opt_str(input, "nextToken") {
            Some(t) => groups::decode_token(t)?
                .parse::<usize>()
                .map_err(|_| error::invalid("The specified nextToken is invalid."))?,
            None => 0,
        };
        let arns: Vec<String> = q
            .group_names
            .iter()
            .map(|n| {
                format!(
                    "arn:aws:logs:{}:{}:log-group:{n}",
                    ctx.region, ctx.account_id
                )
            })
            .collect();
        let mut out =
            json!({"logGroupIdentifiers": arns.iter().skip(offset).take(max).collect::<Vec<_>>()});
        if offset + max < arns.len() {
            out["nextToken"] = json!(groups::encode_token(&(offset + max).to_string()));
        }
        Ok(out)
    }

    /// StopQuery.
    pub fn stop(&self, ctx: &RequestContext, input: &Value) -> Result<Value, ApiError> {
        let q = self.find(ctx, input)?;
        let mut st = q.status.lock();
        if !st.0.active() {
            return Ok(json!({"success": false}));
        }
        q.cancel.store(true, Ordering::Relaxed);
        st.0 = Status::Cancelled;
        Ok(json!({"success": true}))
    }

    /// DescribeQueries, newest first.
    pub fn describe(&self, ctx: &RequestContext, input: &Value) -> Result<Value, ApiError> {
        let group = opt_str(input, "logGroupName");
        let status = opt_str(input, "status");
        let max = opt_i64(input, "maxResults").unwrap_or(1000);
        if !(1..=1000).contains(&max) {
            return Err(error::invalid("maxResults must be between 1 and 1000."));
        }
        let offset = match opt_str(input, "nextToken") {
            Some(t) => groups::decode_token(t)?
                .parse::<usize>()
                .map_err(|_| error::invalid("The specified nextToken is invalid."))?,
            None => 0,
        };
        let me = owner(ctx);
        let order: Vec<String> = self.order.lock().iter().rev().cloned().collect();
        let map = self.map.lock();
        let all: Vec<Value> = order
            .iter()
            .filter_map(|id| map.get(id))
            .filter(|q| q.owner == me)
            .filter(|q| group.is_none_or(|g| q.group_names.iter().any(|n| n == g)))
            .filter_map(|q| {
                let st = q.status.lock();
                if status.is_some_and(|s| s != st.0.as_str()) {
                    return None;
                }
                let mut v = json!({
                    "queryId": q.id,
                    "queryString": q.query,
                    "status": st.0.as_str(),
                    "createTime": q.create_time,
                    "logGroupName": q.group_names.first().cloned().unwrap_or_default(),
                    "queryLanguage": "CWLI",
                });
                if let Some(d) = st.2 {
                    v["queryDuration"] = json!(d.as_millis() as i64);
                }
                if let Some(out) = &st.1 {
                    v["bytesScanned"] = json!(out.bytes as f64);
                }
                Some(v)
            })
            .collect();
        let page: Vec<Value> = all
            .iter()
            .skip(offset)
            .take(max as usize)
            .cloned()
            .collect();
        let mut out = json!({"queries": page});
        if offset + (max as usize) < all.len() {
            out["nextToken"] = json!(groups::encode_token(&(offset + max as usize).to_string()));
        }
        Ok(out)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Definition {
    id: String,
    name: String,
    query: String,
    log_group_names: Vec<String>,
    last_modified: i64,
}

fn definition_key(ctx: &RequestContext, id: &str) -> String {
    format!("{}/{}/{id}", ctx.account_id, ctx.region)
}

pub fn put_definition(
    control: &dyn ControlStore,
    ctx: &RequestContext,
    input: &Value,
    now_ms: i64,
) -> Result<Value, ApiError> {
    let name = req_str(input, "name")?;
    let query = req_str(input, "queryString")?;
    parser::parse(query)?;
    let id = match opt_str(input, "queryDefinitionId") {
        Some(id) => {
            if control
                .get(DEFINITIONS, &definition_key(ctx, id))
                .map_err(store_err)?
                .is_none()
            {
                return Err(error::not_found("The query definition does not exist."));
            }
            id.to_string()
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    let d = Definition {
        id: id.clone(),
        name: name.to_string(),
        query: query.to_string(),
        log_group_names: error::str_list(input, "logGroupNames"),
        last_modified: now_ms,
    };
    control
        .put(
            DEFINITIONS,
            &definition_key(ctx, &id),
            &serde_json::to_vec(&d).map_err(error::internal)?,
        )
        .map_err(store_err)?;
    Ok(json!({"queryDefinitionId": id}))
}

pub fn describe_definitions(
    control: &dyn ControlStore,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, ApiError> {
    let prefix = opt_str(input, "queryDefinitionNamePrefix");
    let max = opt_i64(input, "maxResults").unwrap_or(1000);
    if !(1..=1000).contains(&max) {
        return Err(error::invalid("maxResults must be between 1 and 1000."));
    }
    let offset = match opt_str(input, "nextToken") {
        Some(t) => groups::decode_token(t)?
            .parse::<usize>()
            .map_err(|_| error::invalid("The specified nextToken is invalid."))?,
        None => 0,
    };
    let rows = control
        .scan(DEFINITIONS, &definition_key(ctx, ""), None, 100_000)
        .map_err(store_err)?;
    let mut defs: Vec<Definition> = rows
        .iter()
        .filter_map(|(_, v)| serde_json::from_slice::<Definition>(v).ok())
        .filter(|d| prefix.is_none_or(|p| d.name.starts_with(p)))
        .collect();
    defs.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    let page: Vec<Value> = defs
        .iter()
        .skip(offset)
        .take(max as usize)
        .map(|d| {
            json!({
                "queryDefinitionId": d.id, "name": d.name, "queryString": d.query,
                "lastModified": d.last_modified, "logGroupNames": d.log_group_names,
                "queryLanguage": "CWLI",
            })
        })
        .collect();
    let mut out = json!({"queryDefinitions": page});
    if offset + (max as usize) < defs.len() {
        out["nextToken"] = json!(groups::encode_token(&(offset + max as usize).to_string()));
    }
    Ok(out)
}

pub fn delete_definition(
    control: &dyn ControlStore,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, ApiError> {
    let id = req_str(input, "queryDefinitionId")?;
    if !control
        .delete(DEFINITIONS, &definition_key(ctx, id))
        .map_err(store_err)?
    {
        return Err(error::not_found("The query definition does not exist."));
    }
    Ok(json!({"success": true}))
}

/// GetLogGroupFields: fields seen in the 15 minutes before `time` (seconds; default now).
pub fn log_group_fields(
    store: &LogStore,
    gid: u64,
    input: &Value,
    now_ms: i64,
) -> Result<Value, ApiError> {
    let at = opt_i64(input, "time")
        .map(|s| s.saturating_mul(1000))
        .unwrap_or(now_ms);
    let (start, end) = (at - 15 * 60_000, at + 1);
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut total = 0u64;
    let (mut cols, mut raw) = (Columns::default(), Vec::new());
    for part in store.snapshot(gid, start, end) {
        part.scan(start, end, &mut cols, &mut raw, &mut |b| {
            for i in 0..b.len() {
                if b.ts[i] < start || b.ts[i] >= end {
                    continue;
                }
                total += 1;
                let msg = String::from_utf8_lossy(b.message(i));
                let mut seen: Vec<String> =
                    eval::discover(&msg).into_iter().map(|(k, _)| k).collect();
                seen.dedup();
                for k in seen {
                    *counts.entry(k).or_default() += 1;
                }
                if total >= 10_000 {
                    return false;
                }
            }
            true
        })?;
        if total >= 10_000 {
            break;
        }
    }
    let mut fields: Vec<Value> = [
        "@timestamp",
        "@message",
        "@logStream",
        "@log",
        "@ingestionTime",
    ]
    .iter()
    .map(|f| json!({"name": f, "percent": if total > 0 { 100 } else { 0 }}))
    .collect();
    for (k, n) in counts {
        fields.push(json!({"name": k, "percent": (n * 100).checked_div(total).unwrap_or(0)}));
    }
    Ok(json!({"logGroupFields": fields}))
}

/// GetLogRecord: every field of the event a `@ptr` names.
pub fn log_record(
    store: &LogStore,
    control: &dyn ControlStore,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, ApiError> {
    let ptr = req_str(input, "logRecordPointer")?;
    let (group, ts, seq) = eval::decode_ptr(ptr)
        .ok_or_else(|| error::invalid("The log record pointer is invalid."))?;
    let g = groups::load_group(control, ctx, &group)?;
    let streams: HashMap<u32, String> = groups::all_streams(control, ctx, g.gid)?
        .into_iter()
        .map(|s| (s.sid, s.name))
        .collect();
    let (mut cols, mut raw) = (Columns::default(), Vec::new());
    let mut found: Option<Value> = None;
    for part in store.snapshot(g.gid, ts, ts + 1) {
        part.scan(ts, ts + 1, &mut cols, &mut raw, &mut |b| {
            for i in 0..b.len() {
                if b.ts[i] == ts && b.seq[i] == seq {
                    let msg = String::from_utf8_lossy(b.message(i)).into_owned();
                    let mut rec = serde_json::Map::new();
                    rec.insert("@timestamp".into(), json!(ts.to_string()));
                    rec.insert("@ingestionTime".into(), json!(b.ingest[i].to_string()));
                    rec.insert(
                        "@logStream".into(),
                        json!(streams.get(&b.stream[i]).cloned().unwrap_or_default()),
                    );
                    rec.insert(
                        "@log".into(),
                        json!(format!("{}:{}", ctx.account_id, g.name)),
                    );
                    for (k, v) in eval::discover(&msg) {
                        rec.insert(k, json!(v.render()));
                    }
                    rec.insert("@message".into(), json!(msg));
                    found = Some(Value::Object(rec));
                    return false;
                }
            }
            true
        })?;
    }
    let record = found.ok_or_else(|| error::not_found("The log record does not exist."))?;
    Ok(json!({"logRecord": record}))
}

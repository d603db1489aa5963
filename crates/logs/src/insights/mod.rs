//! CloudWatch Logs Insights: the query language (`lexer`, `parser`, `eval`, `exec`), the durable
//! query lifecycle (`queries`: StartQuery / GetQueryResults / StopQuery / DescribeQueries), query
//! definitions (in the control store), GetLogGroupFields and GetLogRecord.

pub mod count;
pub mod eval;
pub mod exec;
pub mod fuzzing;
pub mod lexer;
pub mod parser;
pub mod queries;

pub use queries::{Queries, Status, QUERY_TIMEOUT};

use std::collections::{BTreeMap, HashMap};

use opsloop_core::{ApiError, RequestContext, Value};
use opsloop_store::ControlStore;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{self, opt_i64, opt_str, req_str, store_err};
use crate::groups;
use crate::storage::columns::Columns;
use crate::storage::LogStore;

const DEFINITIONS: &str = "logs.qdefs";

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

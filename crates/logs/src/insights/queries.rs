//! The Logs Insights query lifecycle: StartQuery, GetQueryResults, StopQuery, DescribeQueries and
//! ListLogGroupsForQuery. Queries run on their own threads; every query's record (text, groups,
//! status, statistics) and a finished query's result rows live in the control store
//! (`logs.queries`, `logs.qresults`, keyed `account/region/queryId`), so answers survive a
//! restart. A record is written before StartQuery answers; a query's end (record and rows) is one
//! atomic batch. A query that was scheduled or running when the process stopped comes back
//! `Failed`. Queries are kept for 7 days (as CloudWatch keeps results), at most 10,000.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opsloop_core::{ApiError, RequestContext, Value};
use opsloop_store::{ControlStore, WriteOp};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::exec::{self, ExecError, Source};
use super::parser;
use crate::error::{self, opt_i64, opt_str, req_str, store_err};
use crate::groups;
use crate::storage::LogStore;

/// Queries one account may run at once.
pub const MAX_CONCURRENT: usize = 30;
/// How long a query and its results are kept.
pub const RETENTION_MS: i64 = 7 * 86_400_000;
/// Queries kept at most (oldest finished ones go first).
const KEPT_QUERIES: usize = 10_000;
/// How long a query may run before it ends with status `Timeout`.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(15 * 60);
const QUERIES: &str = "logs.queries";
const RESULTS: &str = "logs.qresults";

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
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

    pub fn active(self) -> bool {
        matches!(self, Status::Scheduled | Status::Running)
    }
}

/// What the control store keeps of a query.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    id: String,
    /// `account/region`.
    owner: String,
    query: String,
    groups: Vec<String>,
    /// Epoch milliseconds.
    created: i64,
    status: Status,
    #[serde(default)]
    duration_ms: Option<i64>,
    #[serde(default)]
    matched: u64,
    #[serde(default)]
    scanned: u64,
    #[serde(default)]
    bytes: u64,
}

impl Record {
    fn key(&self) -> String {
        format!("{}/{}", self.owner, self.id)
    }
}

struct Entry {
    rec: Mutex<Record>,
    cancel: AtomicBool,
}

/// The queries of this service, mirrored in memory over the control store.
pub struct Queries {
    control: Arc<dyn ControlStore>,
    map: Mutex<HashMap<String, Arc<Entry>>>,
}

fn owner(ctx: &RequestContext) -> String {
    format!("{}/{}", ctx.account_id, ctx.region)
}

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn put_op(table: &str, key: String, value: Vec<u8>) -> WriteOp {
    WriteOp::Put {
        table: table.to_string(),
        key,
        value,
    }
}

fn delete_ops(key: &str) -> [WriteOp; 2] {
    [QUERIES, RESULTS].map(|t| WriteOp::Delete {
        table: t.to_string(),
        key: key.to_string(),
    })
}

fn encode(rec: &Record) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(rec).map_err(error::internal)
}

impl Queries {
    /// Load the stored queries: ones left scheduled or running by the previous process become
    /// `Failed`, ones older than the retention period are deleted.
    pub fn open(control: Arc<dyn ControlStore>) -> Result<Queries, ApiError> {
        Self::open_at(control, wall_ms())
    }

    /// [`Queries::open`] with an explicit "now" (epoch milliseconds).
    pub fn open_at(control: Arc<dyn ControlStore>, now_ms: i64) -> Result<Queries, ApiError> {
        let mut map = HashMap::new();
        let mut ops = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = control
                .scan(QUERIES, "", after.as_deref(), 1000)
                .map_err(store_err)?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for (key, value) in &page {
                let Ok(mut rec) = serde_json::from_slice::<Record>(value) else {
                    tracing::warn!(key = %key, "unreadable logs query record dropped");
                    ops.extend(delete_ops(key));
                    continue;
                };
                if rec.created < now_ms - RETENTION_MS {
                    ops.extend(delete_ops(key));
                    continue;
                }
                if rec.status.active() {
                    tracing::info!(query = %rec.id, "logs query interrupted by a restart marked Failed");
                    rec.status = Status::Failed;
                    ops.push(put_op(QUERIES, rec.key(), encode(&rec)?));
                }
                map.insert(
                    rec.id.clone(),
                    Arc::new(Entry {
                        rec: Mutex::new(rec),
                        cancel: AtomicBool::new(false),
                    }),
                );
            }
        }
        if !ops.is_empty() {
            control.batch(ops).map_err(store_err)?;
        }
        Ok(Queries {
            control,
            map: Mutex::new(map),
        })
    }

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
        let mut seen = std::collections::HashSet::new();
        names.retain(|n| seen.insert(n.clone()));
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
        self.prune(now_ms)?;
        let me = owner(ctx);
        let running = self
            .map
            .lock()
            .values()
            .filter(|q| {
                let r = q.rec.lock();
                r.owner == me && r.status.active()
            })
            .count();
        if running >= MAX_CONCURRENT {
            return Err(error::limit_exceeded(format!(
                "Account maximum query concurrency limit of [{MAX_CONCURRENT}] reached."
            )));
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
        let rec = Record {
            id: uuid::Uuid::new_v4().to_string(),
            owner: me,
            query,
            groups: names,
            created: now_ms,
            status: Status::Scheduled,
            duration_ms: None,
            matched: 0,
            scanned: 0,
            bytes: 0,
        };
        self.control
            .put(QUERIES, &rec.key(), &encode(&rec)?)
            .map_err(store_err)?;
        let id = rec.id.clone();
        let entry = Arc::new(Entry {
            rec: Mutex::new(rec),
            cancel: AtomicBool::new(false),
        });
        self.map.lock().insert(id.clone(), entry.clone());
        let (start_ms, end_ms) = (
            start.saturating_mul(1000),
            end.saturating_add(1).saturating_mul(1000),
        );
        let control = self.control.clone();
        let worker = entry.clone();
        let spawned = std::thread::Builder::new()
            .name("logs-query".into())
            .spawn(move || {
                run_query(
                    &worker,
                    &*control,
                    &store,
                    &sources,
                    &cmds,
                    (start_ms, end_ms),
                    limit as usize,
                )
            });
        if let Err(e) = spawned {
            let mut r = entry.rec.lock();
            let mut failed = r.clone();
            failed.status = Status::Failed;
            if self
                .control
                .put(QUERIES, &failed.key(), &encode(&failed)?)
                .is_ok()
            {
                *r = failed;
            }
            return Err(error::internal(e));
        }
        Ok(json!({"queryId": id}))
    }

    /// Delete queries past the retention period and, above the count cap, the oldest finished.
    fn prune(&self, now_ms: i64) -> Result<(), ApiError> {
        let mut map = self.map.lock();
        let mut finished: Vec<(i64, String, String)> = map
            .values()
            .filter_map(|e| {
                let r = e.rec.lock();
                (!r.status.active()).then(|| (r.created, r.id.clone(), r.key()))
            })
            .collect();
        finished.sort();
        let over = (map.len() + 1).saturating_sub(KEPT_QUERIES);
        let doomed: Vec<(String, String)> = finished
            .iter()
            .enumerate()
            .filter(|(i, (created, _, _))| *i < over || *created < now_ms - RETENTION_MS)
            .map(|(_, (_, id, key))| (id.clone(), key.clone()))
            .collect();
        if doomed.is_empty() {
            return Ok(());
        }
        let ops: Vec<WriteOp> = doomed.iter().flat_map(|(_, k)| delete_ops(k)).collect();
        self.control.batch(ops).map_err(store_err)?;
        for (id, _) in doomed {
            map.remove(&id);
        }
        Ok(())
    }

    /// Forget every query in memory (after the control store was wiped); running ones are
    /// cancelled and write nothing more.
    pub fn clear(&self) {
        for q in self.map.lock().values() {
            q.cancel.store(true, Ordering::Relaxed);
            q.rec.lock().status = Status::Cancelled;
        }
        self.map.lock().clear();
    }

    fn find(&self, ctx: &RequestContext, input: &Value) -> Result<Arc<Entry>, ApiError> {
        let id = req_str(input, "queryId")?;
        self.map
            .lock()
            .get(id)
            .filter(|q| q.rec.lock().owner == owner(ctx))
            .cloned()
            .ok_or_else(|| error::not_found("Query does not exist"))
    }

    /// GetQueryResults.
    pub fn results(&self, ctx: &RequestContext, input: &Value) -> Result<Value, ApiError> {
        let rec = self.find(ctx, input)?.rec.lock().clone();
        let rows: Vec<Vec<(String, String)>> = if rec.status == Status::Complete {
            match self.control.get(RESULTS, &rec.key()).map_err(store_err)? {
                Some(raw) => serde_json::from_slice(&raw).map_err(error::internal)?,
                None => Vec::new(),
            }
        } else {
            Vec::new()
        };
        let results: Vec<Value> = rows
            .iter()
            .map(|r| {
                Value::Array(
                    r.iter()
                        .map(|(f, v)| json!({"field": f, "value": v}))
                        .collect(),
                )
            })
            .collect();
        Ok(json!({
            "status": rec.status.as_str(),
            "results": results,
            "statistics": {
                "recordsMatched": rec.matched as f64,
                "recordsScanned": rec.scanned as f64,
                "bytesScanned": rec.bytes as f64,
                "logGroupsScanned": if rec.status == Status::Complete { rec.groups.len() as f64 } else { 0.0 },
            },
            "queryLanguage": "CWLI",
        }))
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
            .rec
            .lock()
            .groups
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

    /// StopQuery: `success` is false when the query had already ended.
    pub fn stop(&self, ctx: &RequestContext, input: &Value) -> Result<Value, ApiError> {
        let q = self.find(ctx, input)?;
        let mut r = q.rec.lock();
        if !r.status.active() {
            return Ok(json!({"success": false}));
        }
        let mut next = r.clone();
        next.status = Status::Cancelled;
        self.control
            .put(QUERIES, &next.key(), &encode(&next)?)
            .map_err(store_err)?;
        q.cancel.store(true, Ordering::Relaxed);
        *r = next;
        Ok(json!({"success": true}))
    }

    /// DescribeQueries: newest first, filtered by log group, status and language; the token
    /// names the last query returned, so pages stay stable while queries are added.
    pub fn describe(&self, ctx: &RequestContext, input: &Value) -> Result<Value, ApiError> {
        let group = opt_str(input, "logGroupName");
        let status = opt_str(input, "status");
        let language = opt_str(input, "queryLanguage");
        let max = opt_i64(input, "maxResults").unwrap_or(1000);
        if !(1..=1000).contains(&max) {
            return Err(error::invalid("maxResults must be between 1 and 1000."));
        }
        let after: Option<(i64, String)> = match opt_str(input, "nextToken") {
            Some(t) => {
                let raw = groups::decode_token(t)?;
                let parsed = raw
                    .split_once(':')
                    .and_then(|(c, id)| Some((c.parse::<i64>().ok()?, id.to_string())));
                Some(parsed.ok_or_else(|| error::invalid("The specified nextToken is invalid."))?)
            }
            None => None,
        };
        let me = owner(ctx);
        let mut all: Vec<Record> = self
            .map
            .lock()
            .values()
            .map(|e| e.rec.lock().clone())
            .filter(|r| r.owner == me)
            .filter(|r| group.is_none_or(|g| r.groups.iter().any(|n| n == g)))
            .filter(|r| status.is_none_or(|s| s == r.status.as_str()))
            .filter(|_| language.is_none_or(|l| l == "CWLI"))
            .collect();
        // Newest first; ties by id, descending, so the order is total.
        all.sort_by(|a, b| b.created.cmp(&a.created).then(b.id.cmp(&a.id)));
        let from = match &after {
            Some((c, id)) => all
                .iter()
                .position(|r| (r.created, &r.id) < (*c, id))
                .unwrap_or(all.len()),
            None => 0,
        };
        let page = &all[from..(from + max as usize).min(all.len())];
        let queries: Vec<Value> = page
            .iter()
            .map(|r| {
                let mut v = json!({
                    "queryId": r.id,
                    "queryString": r.query,
                    "status": r.status.as_str(),
                    "createTime": r.created,
                    "logGroupName": r.groups.first().cloned().unwrap_or_default(),
                    "queryLanguage": "CWLI",
                });
                if let Some(d) = r.duration_ms {
                    v["queryDuration"] = json!(d);
                }
                if r.status == Status::Complete {
                    v["bytesScanned"] = json!(r.bytes as f64);
                }
                v
            })
            .collect();
        let mut out = json!({ "queries": queries });
        if from + page.len() < all.len() {
            if let Some(last) = page.last() {
                out["nextToken"] = json!(groups::encode_token(&format!(
                    "{}:{}",
                    last.created, last.id
                )));
            }
        }
        Ok(out)
    }
}

/// A query's thread: run it, then record how it ended (unless StopQuery or a reset ended it
/// first).
fn run_query(
    entry: &Entry,
    control: &dyn ControlStore,
    store: &LogStore,
    sources: &[Source],
    cmds: &[parser::Command],
    (start_ms, end_ms): (i64, i64),
    limit: usize,
) {
    {
        let mut r = entry.rec.lock();
        if r.status != Status::Scheduled {
            return;
        }
        r.status = Status::Running;
    }
    let began = Instant::now();
    let result = exec::run(
        store,
        sources,
        cmds,
        start_ms,
        end_ms,
        limit,
        &entry.cancel,
        began + QUERY_TIMEOUT,
    );
    let mut r = entry.rec.lock();
    if r.status != Status::Running {
        return;
    }
    let mut next = r.clone();
    next.duration_ms = Some(began.elapsed().as_millis() as i64);
    let mut ops = Vec::new();
    match result {
        Ok(out) => {
            tracing::debug!(query = %next.id, rows = out.rows.len(), scanned = out.scanned, "logs query complete");
            next.status = Status::Complete;
            next.matched = out.matched;
            next.scanned = out.scanned;
            next.bytes = out.bytes;
            match serde_json::to_vec(&out.rows) {
                Ok(rows) => ops.push(put_op(RESULTS, next.key(), rows)),
                Err(e) => {
                    tracing::warn!(query = %next.id, error = %e, "logs query results not encodable");
                    next.status = Status::Failed;
                }
            }
        }
        Err(ExecError::Cancelled) => next.status = Status::Cancelled,
        Err(ExecError::Timeout) => next.status = Status::Timeout,
        Err(e) => {
            tracing::warn!(query = %next.id, error = %e, "logs query failed");
            next.status = Status::Failed;
        }
    }
    let encoded = match serde_json::to_vec(&next) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(query = %next.id, error = %e, "logs query record not encodable");
            r.status = Status::Failed;
            return;
        }
    };
    ops.push(put_op(QUERIES, next.key(), encoded));
    match control.batch(ops) {
        Ok(()) => *r = next,
        Err(e) => {
            // The stored record still says Scheduled, which the next start reads as Failed.
            tracing::warn!(query = %next.id, error = %e, "logs query end not stored");
            r.status = Status::Failed;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opsloop_store::SqliteStore;

    fn record(id: &str, created: i64, status: Status) -> Record {
        Record {
            id: id.into(),
            owner: "123456789012/us-east-1".into(),
            query: "fields @message".into(),
            groups: vec!["g".into()],
            created,
            status,
            duration_ms: None,
            matched: 0,
            scanned: 0,
            bytes: 0,
        }
    }

    #[test]
    fn open_fails_interrupted_queries_and_drops_expired_ones() {
        let control: Arc<dyn ControlStore> = Arc::new(SqliteStore::memory().unwrap());
        let now = 1_795_287_600_000;
        for r in [
            record("running", now - 1000, Status::Running),
            record("scheduled", now - 1000, Status::Scheduled),
            record("done", now - 1000, Status::Complete),
            record("old", now - RETENTION_MS - 1, Status::Complete),
        ] {
            control
                .put(QUERIES, &r.key(), &serde_json::to_vec(&r).unwrap())
                .unwrap();
        }
        control
            .put(RESULTS, "123456789012/us-east-1/old", b"[]")
            .unwrap();
        let q = Queries::open_at(control.clone(), now).unwrap();
        let status = |id: &str| q.map.lock().get(id).map(|e| e.rec.lock().status);
        assert_eq!(status("running"), Some(Status::Failed));
        assert_eq!(status("scheduled"), Some(Status::Failed));
        assert_eq!(status("done"), Some(Status::Complete));
        assert_eq!(status("old"), None);
        assert!(control
            .get(RESULTS, "123456789012/us-east-1/old")
            .unwrap()
            .is_none());
        // The Failed status was written back, so a second open agrees.
        let again = Queries::open_at(control, now).unwrap();
        assert_eq!(
            again.map.lock()["running"].rec.lock().status,
            Status::Failed
        );
    }

    fn insert(q: &Queries, r: Record) {
        q.control
            .put(QUERIES, &r.key(), &serde_json::to_vec(&r).unwrap())
            .unwrap();
        q.map.lock().insert(
            r.id.clone(),
            Arc::new(Entry {
                rec: Mutex::new(r),
                cancel: AtomicBool::new(false),
            }),
        );
    }

    #[test]
    fn stop_is_durable_and_concurrency_is_limited() {
        let control: Arc<dyn ControlStore> = Arc::new(SqliteStore::memory().unwrap());
        let now = 1_795_287_600_000;
        let q = Queries::open_at(control.clone(), now).unwrap();
        let ctx = RequestContext::internal("123456789012", "us-east-1", "StopQuery");
        insert(&q, record("r0", now, Status::Running));
        let out = q.stop(&ctx, &json!({"queryId": "r0"})).unwrap();
        assert_eq!(out["success"], true);
        assert!(q.map.lock()["r0"].cancel.load(Ordering::Relaxed));
        let reopened = Queries::open_at(control.clone(), now).unwrap();
        assert_eq!(
            reopened.map.lock()["r0"].rec.lock().status,
            Status::Cancelled
        );
        assert_eq!(
            q.stop(&ctx, &json!({"queryId": "r0"})).unwrap()["success"],
            false
        );
        let other = RequestContext::internal("999999999999", "us-east-1", "StopQuery");
        assert_eq!(
            q.stop(&other, &json!({"queryId": "r0"})).unwrap_err().kind,
            "ResourceNotFoundException"
        );

        for i in 0..MAX_CONCURRENT {
            insert(&q, record(&format!("busy{i}"), now, Status::Running));
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            LogStore::open(dir.path(), crate::storage::StoreOptions::default(), &|_| {
                true
            })
            .unwrap(),
        );
        let input = json!({"logGroupName": "g", "queryString": "fields @message", "startTime": 0, "endTime": 1});
        let e = q
            .start(store.clone(), &*control, &ctx, &input, now)
            .unwrap_err();
        assert_eq!(e.kind, "LimitExceededException");
        assert!(e.message.contains("[30]"), "{}", e.message);
        // Another account is not held back by this one's queries.
        let e = q.start(store, &*control, &other, &input, now).unwrap_err();
        assert_eq!(e.kind, "ResourceNotFoundException");
    }
}

//! CloudWatch Logs service logic behind the AWS `logs` API (JSON 1.1): log groups and streams,
//! retention (enforced by a background task), tags, PutLogEvents / GetLogEvents / FilterLogEvents,
//! filter patterns, metric filters and the embedded metric format (metrics go to CloudWatch through
//! the [`Directory`]), subscription filters delivered durably to EventBridge event buses
//! (`subscriptions`) and Logs Insights queries. Every operation of the model is dispatched here to
//! one module per family: `groups`, `events`, `filters`, `subscriptions`, `policies` (resource
//! policies, destinations), `dataprotection`, `accountpolicies` (account/index policies, field
//! indexes), `transformers`, `lookups`, `deliveries`, `anomalies`, `insights`, and `unhosted`
//! (features needing something a single host lacks — S3 exports, OpenSearch, event streams —
//! answered with errors that say so).
//!
//! Architecture: control-plane records live in the [`ControlStore`]; events live in a [`LogStore`]
//! of their own under `<data dir>/logs` (WAL with group commit, hour partitions of lz4-compressed
//! column segments). Scans and queries run on the blocking pool.
//!
//! Embedding: `Logs::open(data_dir, control)?` then optionally `.with_directory(dir)` and
//! `.with_clock(clock)` (tests); call [`Logs::start`] inside the tokio runtime for the retention
//! task and the subscription dispatcher, and [`Logs::close`] at shutdown (checkpoints the WAL into
//! segments).

pub mod accountpolicies;
pub mod anomalies;
pub mod cli;
pub mod dataprotection;
pub mod deliveries;
pub mod error;
pub mod events;
pub mod filters;
pub mod groups;
pub mod insights;
pub mod lookups;
pub mod pattern;
pub mod policies;
pub mod putdecode;
pub mod records;
pub mod storage;
pub mod subscriptions;
pub mod transformers;
pub mod unhosted;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use opsloop_core::{
    ApiError, BoxFuture, DecodedInput, DecodedOutput, Directory, RequestContext, Service,
    ValidationFailure, Value,
};
use opsloop_store::ControlStore;
use parking_lot::{Mutex, RwLock};
use serde_json::json;

use error::{opt_str, req_str};
use storage::{LogStore, StoreOptions};

/// The botocore model this service implements.
pub const MODEL_JSON: &str = include_str!("../../../models/logs-2014-03-28.json");

/// Wall clock in milliseconds since the epoch.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Failures opening the service.
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    #[error("log storage: {0}")]
    Storage(#[from] storage::StorageError),
    #[error("control store: {0}")]
    Control(String),
}

fn system_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The CloudWatch Logs service.
pub struct Logs {
    control: Arc<dyn ControlStore>,
    store: Arc<LogStore>,
    /// Serialises control-plane writes that read-modify-write a group record.
    lock: Mutex<()>,
    clock: Clock,
    directory: RwLock<Option<Arc<Directory>>>,
    started: Mutex<bool>,
    queries: insights::Queries,
    subs: subscriptions::Outbox,
}

/// Run CPU-bound or blocking work off the async executor when there is one.
async fn blocking<F>(f: F) -> Result<Value, ApiError>
where
    F: FnOnce() -> Result<Value, ApiError> + Send + 'static,
{
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle.spawn_blocking(f).await.map_err(error::internal)?,
        Err(_) => f(),
    }
}

impl Logs {
    /// Open the service: events under `data_dir/logs`, records in `control`.
    pub fn open(data_dir: &Path, control: Arc<dyn ControlStore>) -> Result<Logs, LogsError> {
        Self::open_with(data_dir, control, StoreOptions::default())
    }

    /// [`Logs::open`] with explicit storage thresholds.
    pub fn open_with(
        data_dir: &Path,
        control: Arc<dyn ControlStore>,
        options: StoreOptions,
    ) -> Result<Logs, LogsError> {
        let live: std::collections::HashSet<u64> = groups::all_group_ids(&*control)
            .map_err(|e| LogsError::Control(e.message))?
            .into_iter()
            .collect();
        let store = LogStore::open(&data_dir.join("logs"), options, &|gid| live.contains(&gid))?;
        let queries =
            insights::Queries::open(control.clone()).map_err(|e| LogsError::Control(e.message))?;
        Ok(Logs {
            control,
            store: Arc::new(store),
            lock: Mutex::new(()),
            clock: Arc::new(system_now),
            directory: RwLock::new(None),
            started: Mutex::new(false),
            queries,
            subs: subscriptions::Outbox::default(),
        })
    }

    /// Publish metric-filter and EMF metrics through `directory` (service id `CloudWatch`).
    pub fn with_directory(self, directory: Arc<Directory>) -> Self {
        *self.directory.write() = Some(directory);
        self
    }

    /// Use `clock` for "now" (ingestion times, age limits, retention).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Milliseconds since the epoch by this service's clock.
    pub fn now(&self) -> i64 {
        (self.clock)()
    }

    /// The event store (for tools and tests).
    pub fn store(&self) -> &Arc<LogStore> {
        &self.store
    }

    /// Start the background retention task (every 10 minutes) and the subscription dispatcher on
    /// the current tokio runtime. Idempotent.
    pub fn start(self: &Arc<Self>) {
        let mut started = self.started.lock();
        if *started {
            return;
        }
        *started = true;
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
            loop {
                tick.tick().await;
                let Some(logs) = weak.upgrade() else { break };
                match logs.enforce_retention().await {
                    Ok(n) if n > 0 => tracing::info!(groups = n, "log retention applied"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "log retention failed"),
                }
            }
        });
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(logs) = weak.upgrade() else { break };
                if let Err(e) = logs.deliver_subscriptions().await {
                    tracing::warn!(error = %e, "subscription dispatcher pass failed");
                }
                let wait = logs
                    .subs
                    .next_retry()
                    .map(|t| t.saturating_duration_since(std::time::Instant::now()))
                    .unwrap_or(std::time::Duration::from_secs(5))
                    .clamp(
                        std::time::Duration::from_millis(20),
                        std::time::Duration::from_secs(5),
                    );
                logs.subs.wait(wait).await;
            }
        });
    }

    /// One pass of subscription delivery over the outbox: (rows delivered, rows failed).
    pub async fn deliver_subscriptions(&self) -> Result<(usize, usize), ApiError> {
        self.subs
            .deliver_due(&*self.control, self.directory(), self.now())
            .await
    }

    /// Checkpoint the WAL into segments and stop the writer thread. Blocking.
    pub fn close(&self) {
        self.store.close();
    }

    /// Drop all event data and queries (call after the control store was wiped). Durable when it
    /// returns: a checkpoint retires the WAL files that still held the dropped events, and group
    /// ids handed out later stay above every id used before.
    pub async fn reset(&self) -> Result<(), ApiError> {
        for gid in self.store.group_ids() {
            self.store.drop_group(gid).await?;
        }
        self.store.checkpoint().await?;
        self.queries.clear();
        self.subs.clear();
        Ok(())
    }

    /// Delete every partition older than its group's retention period; returns how many groups
    /// have a retention setting.
    pub async fn enforce_retention(&self) -> Result<usize, ApiError> {
        let now = self.now();
        let all = groups::all_groups(&*self.control)?;
        let mut n = 0;
        for g in all {
            if let Some(days) = g.retention_days {
                self.store
                    .expire(g.gid, now - days * events::DAY_MS)
                    .await?;
                n += 1;
            }
        }
        Ok(n)
    }

    fn directory(&self) -> Option<Arc<Directory>> {
        self.directory.read().clone()
    }

    /// Publish metric data (namespace → datums) to CloudWatch, 1000 datums per call.
    async fn publish(
        &self,
        ctx: &RequestContext,
        data: std::collections::BTreeMap<String, Vec<Value>>,
    ) {
        if data.is_empty() {
            return;
        }
        let Some(dir) = self.directory() else {
            tracing::debug!("no directory: metric filter output dropped");
            return;
        };
        for (ns, datums) in data {
            for chunk in datums.chunks(1000) {
                let input = json!({"Namespace": ns, "MetricData": chunk});
                if let Err(e) = dir
                    .invoke(
                        "CloudWatch",
                        &ctx.account_id,
                        &ctx.region,
                        "PutMetricData",
                        input,
                    )
                    .await
                {
                    tracing::warn!(namespace = %ns, error = %e, "metric filter publish failed");
                }
            }
        }
    }

    async fn put_log_events(&self, ctx: &RequestContext, input: Value) -> Result<Value, ApiError> {
        let group = req_str(&input, "logGroupName")?;
        let stream = req_str(&input, "logStreamName")?;
        self.put_events(ctx, group, stream, || events::batch_of(&input))
            .await
    }

    /// PutLogEvents of the events `batch` yields (after the group and stream are found).
    async fn put_events(
        &self,
        ctx: &RequestContext,
        group_name: &str,
        stream_name: &str,
        batch: impl FnOnce() -> Result<storage::columns::Columns, ApiError>,
    ) -> Result<Value, ApiError> {
        let now = self.now();
        let group = groups::load_group(&*self.control, ctx, group_name)?;
        let stream = groups::load_stream(&*self.control, ctx, group.gid, stream_name)?
            .ok_or_else(error::stream_not_found)?;
        let mut accepted = events::validate_batch(batch()?, stream.sid, now, group.retention_days)?;
        if let Some(pipeline) = transformers::pipeline_of(&*self.control, ctx, &group.name)? {
            let meta = transformers::Meta {
                group: group.name.clone(),
                stream: stream_name.to_string(),
                account: ctx.account_id.clone(),
                region: ctx.region.clone(),
            };
            let old = std::mem::take(&mut accepted.cols);
            for i in 0..old.len() {
                let msg = String::from_utf8_lossy(old.message(i));
                let out = pipeline.apply(&msg, &meta);
                let bytes = out.as_deref().map_or(old.message(i), str::as_bytes);
                accepted
                    .cols
                    .push(old.ts[i], old.ingest[i], old.seq[i], old.stream[i], bytes);
            }
        }
        let filters = filters::group_metric_filters(&*self.control, ctx, &group.name)?;
        let subs = subscriptions::group_filters(&*self.control, ctx, &group.name)?;
        let wants_emf = memchr::memmem::find(&accepted.cols.text, b"CloudWatchMetrics").is_some();
        let metric_events: Vec<(i64, String)> =
            if filters.is_empty() && subs.is_empty() && !wants_emf {
                Vec::new()
            } else {
                (0..accepted.cols.len())
                    .map(|i| {
                        (
                            accepted.cols.ts[i],
                            String::from_utf8_lossy(accepted.cols.message(i)).into_owned(),
                        )
                    })
                    .collect()
            };
        if !accepted.cols.is_empty() {
            self.store.append(group.gid, accepted.cols).await?;
        }
        if !metric_events.is_empty() {
            let refs: Vec<(i64, &str)> = metric_events
                .iter()
                .map(|(t, m)| (*t, m.as_str()))
                .collect();
            if !subs.is_empty() {
                // durable before the answer: acknowledged events reach their subscriptions
                self.subs.enqueue(
                    &*self.control,
                    ctx,
                    &group.name,
                    stream_name,
                    &subs,
                    &refs,
                    now,
                )?;
            }
            let mut data = filters::metric_data(&filters, &refs, now);
            for (ns, d) in filters::emf_data(&refs) {
                data.entry(ns).or_default().extend(d);
            }
            self.publish(ctx, data).await;
        }
        let mut out = json!({"nextSequenceToken": format!("{:056}", now.max(0))});
        if let Some(r) = accepted.rejected {
            out["rejectedLogEventsInfo"] = r;
        }
        Ok(out)
    }

    fn describe_log_groups(&self, ctx: &RequestContext, input: &Value) -> Result<Value, ApiError> {
        let (list, token) = groups::describe_groups(&*self.control, ctx, input)?;
        let items: Vec<Value> = list
            .iter()
            .map(|g| {
                let mf = filters::group_metric_filters(&*self.control, ctx, &g.name)
                    .map(|v| v.len())
                    .unwrap_or(0);
                groups::group_json(g, self.store.stored_bytes(g.gid), mf)
            })
            .collect();
        let mut out = json!({"logGroups": items});
        if let Some(t) = token {
            out["nextToken"] = json!(t);
        }
        Ok(out)
    }

    fn describe_log_streams(&self, ctx: &RequestContext, input: &Value) -> Result<Value, ApiError> {
        let name = groups::group_name_of(input)?;
        let g = groups::load_group(&*self.control, ctx, &name)?;
        let prefix = opt_str(input, "logStreamNamePrefix");
        let by_time = match opt_str(input, "orderBy").unwrap_or("LogStreamName") {
            "LogStreamName" => false,
            "LastEventTime" => true,
            other => return Err(error::invalid(format!("Invalid orderBy value: {other}"))),
        };
        if by_time && prefix.is_some() {
            return Err(error::invalid(
                "Cannot order by LastEventTime with a logStreamNamePrefix.",
            ));
        }
        let descending = error::opt_bool(input, "descending").unwrap_or(false);
        let limit = error::opt_i64(input, "limit").unwrap_or(50);
        if !(1..=50).contains(&limit) {
            return Err(error::invalid("limit must be between 1 and 50."));
        }
        let stats = self.store.stream_stats(g.gid);
        let mut streams: Vec<_> = groups::all_streams(&*self.control, ctx, g.gid)?
            .into_iter()
            .filter(|s| prefix.is_none_or(|p| s.name.starts_with(p)))
            .collect();
        if by_time {
            streams.sort_by_key(|s| {
                (
                    stats.get(&s.sid).map_or(i64::MIN, |st| st.last_ts),
                    s.name.clone(),
                )
            });
        }
        if descending {
            streams.reverse();
        }
        let offset = match opt_str(input, "nextToken") {
            Some(t) => groups::decode_token(t)?
                .parse::<usize>()
                .map_err(|_| error::invalid("The specified nextToken is invalid."))?,
            None => 0,
        };
        let page: Vec<Value> = streams
            .iter()
            .skip(offset)
            .take(limit as usize)
            .map(|s| {
                let mut v = json!({
                    "logStreamName": s.name,
                    "creationTime": s.creation_time,
                    "arn": format!("{}:log-stream:{}", g.arn(), s.name),
                    "storedBytes": 0,
                });
                if let Some(st) = stats.get(&s.sid) {
                    v["firstEventTimestamp"] = json!(st.first_ts);
                    v["lastEventTimestamp"] = json!(st.last_ts);
                    v["lastIngestionTime"] = json!(st.last_ingest);
                    v["uploadSequenceToken"] = json!(format!("{:056}", st.events));
                }
                v
            })
            .collect();
        let mut out = json!({"logStreams": page});
        if offset + (limit as usize) < streams.len() {
            out["nextToken"] = json!(groups::encode_token(&(offset + limit as usize).to_string()));
        }
        Ok(out)
    }

    /// The data-protection masker for reading `group`, unless the input asks to `unmask`.
    fn masker_for(
        &self,
        ctx: &RequestContext,
        group: &str,
        input: &Value,
    ) -> Result<Option<dataprotection::Masker>, ApiError> {
        if error::opt_bool(input, "unmask").unwrap_or(false) {
            return Ok(None);
        }
        dataprotection::masker(&*self.control, ctx, group)
    }

    /// Stream id → name of a group.
    fn stream_names(
        &self,
        ctx: &RequestContext,
        gid: u64,
    ) -> Result<HashMap<u32, String>, ApiError> {
        Ok(groups::all_streams(&*self.control, ctx, gid)?
            .into_iter()
            .map(|s| (s.sid, s.name))
            .collect())
    }

    /// Run one operation.
    pub async fn handle(&self, ctx: &RequestContext, input: Value) -> Result<Value, ApiError> {
        let now = self.now();
        let control = &*self.control;
        match ctx.operation.as_str() {
            "CreateLogGroup" => {
                let _g = self.lock.lock();
                let min_gid = self.store.max_group_id().map_or(1, |g| g + 1);
                groups::create_group(control, ctx, &input, now, min_gid)
            }
            "DeleteLogGroup" => {
                let name = req_str(&input, "logGroupName")?.to_string();
                let g = {
                    let _g = self.lock.lock();
                    groups::delete_group(control, ctx, &name)?
                };
                self.store.drop_group(g.gid).await?;
                Ok(json!({}))
            }
            "DescribeLogGroups" => self.describe_log_groups(ctx, &input),
            "ListLogGroups" => groups::list_groups(control, ctx, &input),
            "PutLogGroupDeletionProtection" => {
                let _g = self.lock.lock();
                groups::put_deletion_protection(control, ctx, &input)
            }
            "ListLogGroupsForQuery" => self.queries.log_groups_for(ctx, &input),
            "PutRetentionPolicy" => {
                let _g = self.lock.lock();
                groups::put_retention(control, ctx, &input)
            }
            "DeleteRetentionPolicy" => {
                let _g = self.lock.lock();
                groups::delete_retention(control, ctx, &input)
            }
            "TagLogGroup" => {
                let _g = self.lock.lock();
                let name = req_str(&input, "logGroupName")?;
                groups::retag(
                    control,
                    ctx,
                    name,
                    input.get("tags").unwrap_or(&Value::Null),
                    &[],
                )
            }
            "UntagLogGroup" => {
                let _g = self.lock.lock();
                let name = req_str(&input, "logGroupName")?;
                groups::retag(
                    control,
                    ctx,
                    name,
                    &Value::Null,
                    &error::str_list(&input, "tags"),
                )
            }
            "ListTagsLogGroup" => {
                let g = groups::load_group(control, ctx, req_str(&input, "logGroupName")?)?;
                Ok(json!({"tags": g.tags}))
            }
            "TagResource" => {
                let _g = self.lock.lock();
                let name = groups::group_from_arn(ctx, req_str(&input, "resourceArn")?)?;
                groups::retag(
                    control,
                    ctx,
                    &name,
                    input.get("tags").unwrap_or(&Value::Null),
                    &[],
                )
            }
            "UntagResource" => {
                let _g = self.lock.lock();
                let name = groups::group_from_arn(ctx, req_str(&input, "resourceArn")?)?;
                groups::retag(
                    control,
                    ctx,
                    &name,
                    &Value::Null,
                    &error::str_list(&input, "tagKeys"),
                )
            }
            "ListTagsForResource" => {
                let name = groups::group_from_arn(ctx, req_str(&input, "resourceArn")?)?;
                let g = groups::load_group(control, ctx, &name)?;
                Ok(json!({"tags": g.tags}))
            }
            "CreateLogStream" => {
                let _g = self.lock.lock();
                let group = req_str(&input, "logGroupName")?;
                groups::create_stream(control, ctx, group, req_str(&input, "logStreamName")?, now)?;
                Ok(json!({}))
            }
            "DeleteLogStream" => groups::delete_stream(control, ctx, &input),
            "DescribeLogStreams" => self.describe_log_streams(ctx, &input),
            "PutLogEvents" => self.put_log_events(ctx, input).await,
            "GetLogEvents" => {
                let g = groups::load_group(control, ctx, &groups::group_name_of(&input)?)?;
                let stream =
                    groups::load_stream(control, ctx, g.gid, req_str(&input, "logStreamName")?)?
                        .ok_or_else(error::stream_not_found)?;
                let masker = self.masker_for(ctx, &g.name, &input)?;
                let store = self.store.clone();
                let mut out =
                    blocking(move || events::get_log_events(&store, g.gid, stream.sid, &input))
                        .await?;
                if let Some(m) = masker {
                    m.mask_events(&mut out);
                }
                Ok(out)
            }
            "FilterLogEvents" => {
                let g = groups::load_group(control, ctx, &groups::group_name_of(&input)?)?;
                let names = self.stream_names(ctx, g.gid)?;
                let masker = self.masker_for(ctx, &g.name, &input)?;
                let store = self.store.clone();
                let mut out =
                    blocking(move || events::filter_log_events(&store, g.gid, &names, &input))
                        .await?;
                if let Some(m) = masker {
                    m.mask_events(&mut out);
                }
                Ok(out)
            }
            "PutMetricFilter" => filters::put_metric_filter(control, ctx, &input, now),
            "DescribeMetricFilters" => filters::describe_metric_filters(control, ctx, &input),
            "DeleteMetricFilter" => {
                filters::delete_filter(control, ctx, &input, filters::METRIC_FILTERS)
            }
            "TestMetricFilter" => filters::test_metric_filter(&input),
            "PutSubscriptionFilter" => {
                subscriptions::put_filter(control, self.directory(), ctx, &input, now).await
            }
            "DescribeSubscriptionFilters" => {
                filters::describe_subscription_filters(control, ctx, &input)
            }
            "DeleteSubscriptionFilter" => {
                filters::delete_filter(control, ctx, &input, filters::SUBSCRIPTION_FILTERS)
            }
            "PutResourcePolicy" => policies::put_resource_policy(control, ctx, &input, now),
            "DescribeResourcePolicies" => {
                policies::describe_resource_policies(control, ctx, &input)
            }
            "DeleteResourcePolicy" => policies::delete_resource_policy(control, ctx, &input),
            "PutDestination" => policies::put_destination(control, ctx, &input, now),
            "PutDestinationPolicy" => policies::put_destination_policy(control, ctx, &input),
            "DescribeDestinations" => policies::describe_destinations(control, ctx, &input),
            "DeleteDestination" => policies::delete_destination(control, ctx, &input),
            "StartQuery" => self
                .queries
                .start(self.store.clone(), control, ctx, &input, now),
            "GetQueryResults" => self.queries.results(ctx, &input),
            "StopQuery" => self.queries.stop(ctx, &input),
            "DescribeQueries" => self.queries.describe(ctx, &input),
            "PutQueryDefinition" => insights::put_definition(control, ctx, &input, now),
            "DescribeQueryDefinitions" => insights::describe_definitions(control, ctx, &input),
            "DeleteQueryDefinition" => insights::delete_definition(control, ctx, &input),
            "GetLogGroupFields" => {
                let g = groups::load_group(control, ctx, &groups::group_name_of(&input)?)?;
                let store = self.store.clone();
                blocking(move || insights::log_group_fields(&store, g.gid, &input, now)).await
            }
            "GetLogRecord" => {
                let (store, control, ctx) = (self.store.clone(), self.control.clone(), ctx.clone());
                blocking(move || insights::log_record(&store, &*control, &ctx, &input)).await
            }
            "PutDataProtectionPolicy"
            | "GetDataProtectionPolicy"
            | "DeleteDataProtectionPolicy" => dataprotection::handle(control, ctx, &input, now),
            "PutAccountPolicy" => accountpolicies::put_account_policy(control, ctx, &input, now),
            "DescribeAccountPolicies" => {
                accountpolicies::describe_account_policies(control, ctx, &input)
            }
            "DeleteAccountPolicy" => accountpolicies::delete_account_policy(control, ctx, &input),
            "PutIndexPolicy"
            | "DeleteIndexPolicy"
            | "DescribeIndexPolicies"
            | "DescribeFieldIndexes" => accountpolicies::handle_index(control, ctx, &input, now),
            op if op.contains("Deliver") || op == "DescribeConfigurationTemplates" => {
                deliveries::handle(control, ctx, &input)
            }
            op if op.contains("Anomal") => anomalies::handle(control, ctx, &input, now),
            "PutTransformer" | "GetTransformer" | "DeleteTransformer" | "TestTransformer" => {
                transformers::handle(control, ctx, &input, now)
            }
            op if op.contains("LookupTable") => lookups::handle(control, ctx, &input, now),
            "AssociateKmsKey" | "DisassociateKmsKey" => {
                let _g = self.lock.lock();
                unhosted::handle(control, ctx, &input)
            }
            other if model_has(other) => unhosted::handle(control, ctx, &input),
            other => Err(not_implemented(other)),
        }
    }
}

/// Whether the model defines `operation`.
fn model_has(operation: &str) -> bool {
    static OPS: std::sync::OnceLock<std::collections::HashSet<String>> = std::sync::OnceLock::new();
    OPS.get_or_init(|| {
        serde_json::from_str::<Value>(MODEL_JSON)
            .ok()
            .and_then(|m| {
                m.get("operations")
                    .and_then(Value::as_object)
                    .map(|o| o.keys().cloned().collect())
            })
            .unwrap_or_default()
    })
    .contains(operation)
}

/// The answer to an operation this release does not implement.
pub fn not_implemented(operation: &str) -> ApiError {
    ApiError::with_status(
        "NotImplemented",
        501,
        format!("Operation {operation} is not implemented by this opsloop release."),
    )
}

/// Largest PutLogEvents-style request body accepted on the wire: a batch may hold 1,048,576 bytes of
/// events (counted as AWS counts them), and its JSON envelope — escaping, per-event fields — makes
/// the body larger than that; this bound leaves room for it while the service enforces AWS's counted
/// limit itself.
const MAX_REQUEST_BYTES: usize = 8 * 1024 * 1024;

impl Service for Logs {
    fn max_request_bytes(&self) -> Option<usize> {
        Some(MAX_REQUEST_BYTES)
    }

    fn model_json(&self) -> &'static str {
        MODEL_JSON
    }

    fn call<'a>(
        &'a self,
        ctx: &'a RequestContext,
        input: Value,
    ) -> BoxFuture<'a, Result<Value, ApiError>> {
        Box::pin(self.handle(ctx, input))
    }

    /// Ready always; the detail says how much the idle indexer has left to do.
    fn health(&self) -> opsloop_core::Health {
        let (segments, bytes) = self.store.unindexed();
        opsloop_core::Health {
            ready: true,
            detail: (segments > 0 && self.store.indexes_when_idle())
                .then(|| format!("{segments} log segments ({bytes} bytes) await the skip index")),
        }
    }

    fn decode_json_input(&self, operation: &str, json: &[u8]) -> Option<DecodedInput> {
        match operation {
            "PutLogEvents" => putdecode::decode(json).map(|p| Box::new(p) as DecodedInput),
            _ => None,
        }
    }

    fn call_decoded<'a>(
        &'a self,
        ctx: &'a RequestContext,
        input: DecodedInput,
    ) -> BoxFuture<'a, Result<DecodedOutput, ApiError>> {
        Box::pin(async move {
            match (
                ctx.operation.as_str(),
                input.downcast::<putdecode::PutInput>(),
            ) {
                ("PutLogEvents", Ok(p)) => {
                    let putdecode::PutInput {
                        group,
                        stream,
                        events,
                    } = *p;
                    self.put_events(ctx, &group, &stream, || Ok(events))
                        .await
                        .map(DecodedOutput::Doc)
                }
                _ => Err(ApiError::internal()),
            }
        })
    }

    fn validation_error(&self, failure: &ValidationFailure) -> ApiError {
        match failure {
            ValidationFailure::Missing { path } => error::invalid(format!(
                "1 validation error detected: Value null at '{path}' failed to satisfy constraint: Member must not be null"
            )),
            ValidationFailure::Invalid { path, reason } => error::invalid(format!(
                "1 validation error detected: Value at '{path}' failed to satisfy constraint: {reason}"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_is_the_logs_model() {
        let model: Value = serde_json::from_str(MODEL_JSON).unwrap();
        assert_eq!(model["metadata"]["serviceId"], "CloudWatch Logs");
    }
}

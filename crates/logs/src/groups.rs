//! Log groups and log streams in the control store: records, ARNs, creation and deletion,
//! DescribeLogGroups / DescribeLogStreams with their filters and paging, retention settings and tags.
//!
//! Keys: table `logs.groups`, `{account}/{region}/{name}`; table `logs.streams`,
//! `{account}/{region}/{gid:020}/{stream}`. Every group has a store-internal numeric id (never
//! reused), every stream a per-group numeric id, which is what the event storage keys on.

use std::collections::BTreeMap;

use base64::Engine as _;
use opsloop_core::{ApiError, RequestContext, Value};
use opsloop_store::{ControlStore, WriteOp};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{self, opt_bool, opt_i64, opt_str, req_str, store_err};

pub const GROUPS: &str = "logs.groups";
pub const STREAMS: &str = "logs.streams";
const META: &str = "logs.meta";

/// Retention periods PutRetentionPolicy accepts, in days.
pub const RETENTION_DAYS: [i64; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GroupRecord {
    pub name: String,
    pub gid: u64,
    pub account: String,
    pub region: String,
    pub creation_time: i64,
    pub retention_days: Option<i64>,
    pub class: String,
    pub kms_key_id: Option<String>,
    pub deletion_protection: bool,
    pub tags: BTreeMap<String, String>,
    pub next_stream: u32,
}

impl GroupRecord {
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:logs:{}:{}:log-group:{}",
            self.region, self.account, self.name
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StreamRecord {
    pub name: String,
    pub sid: u32,
    pub creation_time: i64,
}

pub fn group_key(ctx: &RequestContext, name: &str) -> String {
    format!("{}/{}/{}", ctx.account_id, ctx.region, name)
}

fn stream_prefix(ctx: &RequestContext, gid: u64) -> String {
    format!("{}/{}/{gid:020}/", ctx.account_id, ctx.region)
}

pub fn encode_token(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s.as_bytes())
}

pub fn decode_token(s: &str) -> Result<String, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| error::invalid("The specified nextToken is invalid."))
}

/// Resolve `logGroupName` or `logGroupIdentifier` (a name or an ARN) of an input.
pub fn group_name_of(input: &Value) -> Result<String, ApiError> {
    let name = opt_str(input, "logGroupName");
    let ident = opt_str(input, "logGroupIdentifier");
    match (name, ident) {
        (Some(_), Some(_)) => Err(error::invalid(
            "LogGroup name and LogGroup ARN are mutually exclusive parameters.",
        )),
        (Some(n), None) => Ok(n.to_string()),
        (None, Some(i)) => Ok(name_from_identifier(i)),
        (None, None) => Err(error::invalid(
            "Should provide either a log group name or a log group identifier.",
        )),
    }
}

/// A log group name from a name or an ARN (with or without the trailing `:*`).
pub fn name_from_identifier(ident: &str) -> String {
    match ident.split_once(":log-group:") {
        Some((_, rest)) => rest.strip_suffix(":*").unwrap_or(rest).to_string(),
        None => ident.to_string(),
    }
}

pub fn load_group(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    name: &str,
) -> Result<GroupRecord, ApiError> {
    let bytes = store
        .get(GROUPS, &group_key(ctx, name))
        .map_err(store_err)?
        .ok_or_else(error::group_not_found)?;
    serde_json::from_slice(&bytes).map_err(error::internal)
}

pub fn save_group(store: &dyn ControlStore, g: &GroupRecord) -> Result<(), ApiError> {
    let key = format!("{}/{}/{}", g.account, g.region, g.name);
    let bytes = serde_json::to_vec(g).map_err(error::internal)?;
    store.put(GROUPS, &key, &bytes).map_err(store_err)
}

/// Every group id in the store (all accounts), for dropping orphaned data at open.
pub fn all_group_ids(store: &dyn ControlStore) -> Result<Vec<u64>, ApiError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let rows = store
            .scan(GROUPS, "", after.as_deref(), 1000)
            .map_err(store_err)?;
        let Some((last, _)) = rows.last() else { break };
        after = Some(last.clone());
        for (_, v) in &rows {
            if let Ok(g) = serde_json::from_slice::<GroupRecord>(v) {
                out.push(g.gid);
            }
        }
    }
    Ok(out)
}

/// Every group of every account (for background tasks).
pub fn all_groups(store: &dyn ControlStore) -> Result<Vec<GroupRecord>, ApiError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let rows = store
            .scan(GROUPS, "", after.as_deref(), 1000)
            .map_err(store_err)?;
        let Some((last, _)) = rows.last() else { break };
        after = Some(last.clone());
        out.extend(
            rows.iter()
                .filter_map(|(_, v)| serde_json::from_slice(v).ok()),
        );
    }
    Ok(out)
}

fn validate_tags(tags: &Value) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    if let Some(map) = tags.as_object() {
        for (k, v) in map {
            if k.starts_with("aws:") {
                return Err(error::invalid(
                    "Tag keys starting with 'aws:' are reserved.",
                ));
            }
            out.insert(k.clone(), v.as_str().unwrap_or_default().to_string());
        }
    }
    Ok(out)
}

/// Create a group; its id is at least `min_gid` (above any id that still has data on disk).
pub fn create_group(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    input: &Value,
    now_ms: i64,
    min_gid: u64,
) -> Result<Value, ApiError> {
    let name = req_str(input, "logGroupName")?;
    if name.is_empty()
        || name.len() > 512
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/#".contains(c))
    {
        return Err(error::invalid(format!(
            "1 validation error detected: Value '{name}' at 'logGroupName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+"
        )));
    }
    let class = opt_str(input, "logGroupClass")
        .unwrap_or("STANDARD")
        .to_string();
    let tags = validate_tags(input.get("tags").unwrap_or(&Value::Null))?;
    if tags.len() > 50 {
        return Err(error::invalid("A log group can have at most 50 tags."));
    }
    let gid = match store.get(META, "next_gid").map_err(store_err)? {
        Some(b) => String::from_utf8_lossy(&b).parse::<u64>().unwrap_or(1),
        None => 1,
    }
    .max(min_gid);
    let record = GroupRecord {
        name: name.to_string(),
        gid,
        account: ctx.account_id.clone(),
        region: ctx.region.clone(),
        creation_time: now_ms,
        retention_days: None,
        class,
        kms_key_id: opt_str(input, "kmsKeyId").map(str::to_string),
        deletion_protection: opt_bool(input, "deletionProtectionEnabled").unwrap_or(false),
        tags,
        next_stream: 1,
    };
    let ops = vec![
        WriteOp::Insert {
            table: GROUPS.into(),
            key: group_key(ctx, name),
            value: serde_json::to_vec(&record).map_err(error::internal)?,
        },
        WriteOp::Put {
            table: META.into(),
            key: "next_gid".into(),
            value: (gid + 1).to_string().into_bytes(),
        },
    ];
    match store.batch(ops) {
        Ok(()) => Ok(json!({})),
        Err(opsloop_store::StoreError::Conflict { .. }) => Err(error::already_exists(
            "The specified log group already exists",
        )),
        Err(e) => Err(store_err(e)),
    }
}

/// Remove a group's record and stream records; returns the record (its data is dropped by the caller).
pub fn delete_group(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    name: &str,
) -> Result<GroupRecord, ApiError> {
    let g = load_group(store, ctx, name)?;
    if g.deletion_protection {
        return Err(ApiError::new(
            "OperationAbortedException",
            "Deletion protection is enabled for this log group.",
        ));
    }
    let mut ops = vec![WriteOp::Delete {
        table: GROUPS.into(),
        key: group_key(ctx, name),
    }];
    let prefix = stream_prefix(ctx, g.gid);
    let mut after: Option<String> = None;
    loop {
        let rows = store
            .scan(STREAMS, &prefix, after.as_deref(), 1000)
            .map_err(store_err)?;
        let Some((last, _)) = rows.last() else { break };
        after = Some(last.clone());
        ops.extend(rows.into_iter().map(|(k, _)| WriteOp::Delete {
            table: STREAMS.into(),
            key: k,
        }));
    }
    for table in [
        crate::filters::METRIC_FILTERS,
        crate::filters::SUBSCRIPTION_FILTERS,
    ] {
        let rows = store
            .scan(
                table,
                &crate::filters::filter_prefix(ctx, name),
                None,
                10_000,
            )
            .map_err(store_err)?;
        ops.extend(rows.into_iter().map(|(k, _)| WriteOp::Delete {
            table: table.into(),
            key: k,
        }));
    }
    ops.push(crate::dataprotection::delete_op(ctx, name));
    ops.push(crate::accountpolicies::delete_op(ctx, name));
    ops.push(crate::transformers::delete_op(ctx, name));
    store.batch(ops).map_err(store_err)?;
    Ok(g)
}

pub fn group_json(g: &GroupRecord, stored_bytes: u64, metric_filters: usize) -> Value {
    let mut v = json!({
        "logGroupName": g.name,
        "creationTime": g.creation_time,
        "metricFilterCount": metric_filters,
        "arn": format!("{}:*", g.arn()),
        "logGroupArn": g.arn(),
        "storedBytes": stored_bytes,
        "logGroupClass": g.class,
        "deletionProtectionEnabled": g.deletion_protection,
    });
    if let Some(days) = g.retention_days {
        v["retentionInDays"] = json!(days);
    }
    if let Some(k) = &g.kms_key_id {
        v["kmsKeyId"] = json!(k);
    }
    v
}

/// The page of groups DescribeLogGroups answers (records only; the caller adds sizes).
pub fn describe_groups(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    input: &Value,
) -> Result<(Vec<GroupRecord>, Option<String>), ApiError> {
    let prefix = opt_str(input, "logGroupNamePrefix");
    let pattern = opt_str(input, "logGroupNamePattern");
    if prefix.is_some() && pattern.is_some() {
        return Err(error::invalid(
            "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.",
        ));
    }
    let limit = opt_i64(input, "limit").unwrap_or(50);
    if !(1..=50).contains(&limit) {
        return Err(error::invalid("limit must be between 1 and 50."));
    }
    let class = opt_str(input, "logGroupClass");
    let idents: Vec<String> = crate::error::str_list(input, "logGroupIdentifiers")
        .iter()
        .map(|i| name_from_identifier(i))
        .collect();
    let base = group_key(ctx, "");
    let scan_prefix = format!("{base}{}", prefix.unwrap_or(""));
    let mut after = match opt_str(input, "nextToken") {
        Some(t) => Some(format!("{base}{}", decode_token(t)?)),
        None => None,
    };
    let pattern = pattern.map(str::to_lowercase);
    let mut out = Vec::new();
    loop {
        let rows = store
            .scan(GROUPS, &scan_prefix, after.as_deref(), 500)
            .map_err(store_err)?;
        let Some((last, _)) = rows.last() else {
            return Ok((out, None));
        };
        after = Some(last.clone());
        for (_, v) in rows {
            let g: GroupRecord = serde_json::from_slice(&v).map_err(error::internal)?;
            if pattern
                .as_ref()
                .is_some_and(|p| !g.name.to_lowercase().contains(p.as_str()))
                || class.is_some_and(|c| c != g.class)
                || (!idents.is_empty() && !idents.contains(&g.name))
            {
                continue;
            }
            out.push(g);
            if out.len() == limit as usize {
                let more = !store
                    .scan(
                        GROUPS,
                        &scan_prefix,
                        Some(&group_key(ctx, &out[out.len() - 1].name)),
                        1,
                    )
                    .map_err(store_err)?
                    .is_empty();
                let token = more.then(|| encode_token(&out[out.len() - 1].name));
                return Ok((out, token));
            }
        }
    }
}

pub fn put_retention(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, ApiError> {
    let name = group_name_of(input)?;
    let days = opt_i64(input, "retentionInDays").ok_or_else(|| {
        error::invalid("1 validation error detected: Value null at 'retentionInDays' failed to satisfy constraint: Member must not be null")
    })?;
    if !RETENTION_DAYS.contains(&days) {
        return Err(error::invalid(format!(
            "1 validation error detected: Value '{days}' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: {RETENTION_DAYS:?}"
        )));
    }
    let mut g = load_group(store, ctx, &name)?;
    g.retention_days = Some(days);
    save_group(store, &g)?;
    Ok(json!({}))
}

pub fn delete_retention(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, ApiError> {
    let name = group_name_of(input)?;
    let mut g = load_group(store, ctx, &name)?;
    g.retention_days = None;
    save_group(store, &g)?;
    Ok(json!({}))
}

pub fn load_stream(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    gid: u64,
    name: &str,
) -> Result<Option<StreamRecord>, ApiError> {
    let key = format!("{}{name}", stream_prefix(ctx, gid));
    match store.get(STREAMS, &key).map_err(store_err)? {
        Some(b) => Ok(Some(serde_json::from_slice(&b).map_err(error::internal)?)),
        None => Ok(None),
    }
}

/// Every stream of a group, ascending by name.
pub fn all_streams(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    gid: u64,
) -> Result<Vec<StreamRecord>, ApiError> {
    let prefix = stream_prefix(ctx, gid);
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let rows = store
            .scan(STREAMS, &prefix, after.as_deref(), 1000)
            .map_err(store_err)?;
        let Some((last, _)) = rows.last() else { break };
        after = Some(last.clone());
        for (_, v) in rows {
            out.push(serde_json::from_slice(&v).map_err(error::internal)?);
        }
    }
    Ok(out)
}

/// Create a stream (caller holds the control lock, so the stream counter is not raced).
pub fn create_stream(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    group: &str,
    stream: &str,
    now_ms: i64,
) -> Result<StreamRecord, ApiError> {
    if stream.is_empty() || stream.len() > 512 || stream.contains([':', '*']) {
        return Err(error::invalid(
            "Log stream name must be 1-512 characters and must not contain ':' or '*'.",
        ));
    }
    let mut g = load_group(store, ctx, group)?;
    let record = StreamRecord {
        name: stream.to_string(),
        sid: g.next_stream,
        creation_time: now_ms,
    };
    g.next_stream += 1;
    let ops = vec![
        WriteOp::Insert {
            table: STREAMS.into(),
            key: format!("{}{stream}", stream_prefix(ctx, g.gid)),
            value: serde_json::to_vec(&record).map_err(error::internal)?,
        },
        WriteOp::Put {
            table: GROUPS.into(),
            key: group_key(ctx, group),
            value: serde_json::to_vec(&g).map_err(error::internal)?,
        },
    ];
    match store.batch(ops) {
        Ok(()) => Ok(record),
        Err(opsloop_store::StoreError::Conflict { .. }) => Err(error::already_exists(
            "The specified log stream already exists",
        )),
        Err(e) => Err(store_err(e)),
    }
}

pub fn delete_stream(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, ApiError> {
    let group = group_name_of(input)?;
    let stream = req_str(input, "logStreamName")?;
    let g = load_group(store, ctx, &group)?;
    let key = format!("{}{stream}", stream_prefix(ctx, g.gid));
    if !store.delete(STREAMS, &key).map_err(store_err)? {
        return Err(error::stream_not_found());
    }
    Ok(json!({}))
}

/// Tag changes on a group record: add `add`, then remove `remove`.
pub fn retag(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    name: &str,
    add: &Value,
    remove: &[String],
) -> Result<Value, ApiError> {
    let mut g = load_group(store, ctx, name)?;
    for (k, v) in validate_tags(add)? {
        g.tags.insert(k, v);
    }
    for k in remove {
        g.tags.remove(k);
    }
    if g.tags.len() > 50 {
        return Err(error::invalid("A log group can have at most 50 tags."));
    }
    save_group(store, &g)?;
    Ok(json!({}))
}

/// The log group an ARN of `TagResource` & co. names.
pub fn group_from_arn(ctx: &RequestContext, arn: &str) -> Result<String, ApiError> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[2] != "logs" {
        return Err(error::invalid(format!("Invalid resource ARN: {arn}")));
    }
    if parts[3] != ctx.region || parts[4] != ctx.account_id {
        return Err(error::not_found("The specified resource does not exist."));
    }
    match parts[5].strip_prefix("log-group:") {
        Some(rest) => Ok(rest.strip_suffix(":*").unwrap_or(rest).to_string()),
        None => Err(error::invalid(format!(
            "Unsupported resource type in ARN: {arn}"
        ))),
    }
}

/// ListLogGroups: groups whose name matches the regular expression `logGroupNamePattern`.
pub fn list_groups(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, ApiError> {
    if input.get("logGroupTags").is_some_and(|v| !v.is_null()) {
        return Err(error::invalid(
            "Filtering by logGroupTags is not supported by this opsloop release.",
        ));
    }
    let limit = opt_i64(input, "limit").unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(error::invalid("limit must be between 1 and 1000."));
    }
    let pattern = match opt_str(input, "logGroupNamePattern") {
        Some(p) => Some(
            regex::RegexBuilder::new(p)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| error::invalid(format!("Invalid logGroupNamePattern: {e}")))?,
        ),
        None => None,
    };
    let class = opt_str(input, "logGroupClass");
    let base = group_key(ctx, "");
    let mut after = match opt_str(input, "nextToken") {
        Some(t) => Some(format!("{base}{}", decode_token(t)?)),
        None => None,
    };
    let mut out: Vec<Value> = Vec::new();
    loop {
        let rows = store
            .scan(GROUPS, &base, after.as_deref(), 500)
            .map_err(store_err)?;
        let Some((last, _)) = rows.last() else { break };
        after = Some(last.clone());
        for (_, v) in rows {
            let g: GroupRecord = serde_json::from_slice(&v).map_err(error::internal)?;
            if pattern.as_ref().is_some_and(|p| !p.is_match(&g.name))
                || class.is_some_and(|c| c != g.class)
            {
                continue;
            }
            if out.len() == limit as usize {
                let last_name = out[out.len() - 1]["logGroupName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                return Ok(json!({"logGroups": out, "nextToken": encode_token(&last_name)}));
            }
            out.push(
                json!({"logGroupName": g.name, "logGroupArn": g.arn(), "logGroupClass": g.class}),
            );
        }
    }
    Ok(json!({"logGroups": out}))
}

/// PutLogGroupDeletionProtection.
pub fn put_deletion_protection(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, ApiError> {
    let name = name_from_identifier(req_str(input, "logGroupIdentifier")?);
    let enabled = opt_bool(input, "deletionProtectionEnabled")
        .ok_or_else(|| error::invalid("deletionProtectionEnabled is required"))?;
    let mut g = load_group(store, ctx, &name)?;
    g.deletion_protection = enabled;
    save_group(store, &g)?;
    Ok(json!({}))
}

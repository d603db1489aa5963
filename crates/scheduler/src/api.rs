//! The Scheduler's operations: schedules (Create/Get/Update/Delete/List), schedule groups
//! (Create/Get/Delete/List; `default` always exists and cannot be deleted; deleting a group
//! deletes its schedules) and tags on groups. Each change is one atomic control-store batch made
//! under the service's write lock, so the timer never sees half of it.

use opsloop_core::{ApiError, RequestContext, Value};
use opsloop_store::WriteOp;
use serde_json::{json, Map};

use crate::input::{group_of, schedule_from, str_of};
use crate::model::{
    conflict, decode, encode, get, group_arn, group_key, not_found, now_ms, parse_group_arn, put,
    remove_schedule, save_schedule, schedule_arn, schedule_key, secs, store_error, tenant_prefix,
    validation, GroupRecord, ScheduleRecord, DEFAULT_GROUP, GROUPS, SCHEDULES,
};
use crate::Inner;

/// AWS's quota of schedule groups per account and region.
const MAX_GROUPS: usize = 500;
const MAX_TAGS: usize = 200;
const DEFAULT_PAGE: usize = 100;

pub(crate) fn dispatch(
    inner: &Inner,
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, ApiError> {
    let t = Tenant {
        inner,
        account: &ctx.account_id,
        region: &ctx.region,
    };
    match ctx.operation.as_str() {
        "CreateSchedule" => t.create_schedule(&input),
        "UpdateSchedule" => t.update_schedule(&input),
        "GetSchedule" => t.get_schedule(&input),
        "DeleteSchedule" => t.delete_schedule(&input),
        "ListSchedules" => t.list_schedules(&input),
        "CreateScheduleGroup" => t.create_group(&input),
        "GetScheduleGroup" => t.get_group(&input),
        "DeleteScheduleGroup" => t.delete_group(&input),
        "ListScheduleGroups" => t.list_groups(&input),
        "TagResource" => t.tag(&input),
        "UntagResource" => t.untag(&input),
        "ListTagsForResource" => t.list_tags(&input),
        other => Err(ApiError::with_status(
            "NotImplemented",
            501,
            format!("Operation {other} is not implemented by this opsloop release."),
        )),
    }
}

struct Tenant<'a> {
    inner: &'a Inner,
    account: &'a str,
    region: &'a str,
}

impl Tenant<'_> {
    fn batch(&self, ops: Vec<WriteOp>) -> Result<(), ApiError> {
        self.inner.store.batch(ops).map_err(store_error)
    }

    /// The group `name`, materializing `default` the first time it is needed.
    fn group(&self, name: &str) -> Result<Option<GroupRecord>, ApiError> {
        let key = group_key(self.account, self.region, name);
        if let Some(g) = get::<GroupRecord>(&*self.inner.store, GROUPS, &key)? {
            return Ok(Some(g));
        }
        if name != DEFAULT_GROUP {
            return Ok(None);
        }
        let now = secs(now_ms());
        let g = GroupRecord {
            name: DEFAULT_GROUP.into(),
            created: now,
            modified: now,
            tags: Vec::new(),
        };
        self.inner
            .store
            .put(GROUPS, &key, &encode(&g))
            .map_err(store_error)?;
        Ok(Some(g))
    }

    fn require_group(&self, name: &str) -> Result<GroupRecord, ApiError> {
        self.group(name)?
            .ok_or_else(|| not_found(format!("Schedule group {name} does not exist.")))
    }

    fn schedule(&self, group: &str, name: &str) -> Result<ScheduleRecord, ApiError> {
        let key = schedule_key(self.account, self.region, group, name);
        get(&*self.inner.store, SCHEDULES, &key)?
            .ok_or_else(|| not_found(format!("Schedule {name} does not exist.")))
    }

    // --- schedules ------------------------------------------------------------------------

    fn create_schedule(&self, input: &Value) -> Result<Value, ApiError> {
        let rec = schedule_from(input, self.account, self.region, now_ms())?;
        let _write = self.inner.write.lock();
        self.require_group(&rec.group)?;
        if let Some(existing) = get::<ScheduleRecord>(&*self.inner.store, SCHEDULES, &rec.key())? {
            // A retry of the request that created it (same ClientToken) is answered as before.
            if rec.client_token.is_some() && existing.client_token == rec.client_token {
                return Ok(json!({"ScheduleArn": existing.arn()}));
            }
            return Err(conflict(format!("Schedule {} already exists.", rec.name)));
        }
        self.batch(save_schedule(None, &rec))?;
        tracing::info!(schedule = %rec.arn(), next_ms = ?rec.next_ms, due_ms = ?rec.due_ms, "schedule created");
        Ok(json!({"ScheduleArn": rec.arn()}))
    }

    fn update_schedule(&self, input: &Value) -> Result<Value, ApiError> {
        let mut rec = schedule_from(input, self.account, self.region, now_ms())?;
        let _write = self.inner.write.lock();
        self.require_group(&rec.group)?;
        let old = self.schedule(&rec.group, &rec.name)?;
        rec.created = old.created;
        rec.client_token = old.client_token.clone();
        self.batch(save_schedule(Some(&old), &rec))?;
        tracing::info!(schedule = %rec.arn(), next_ms = ?rec.next_ms, "schedule updated");
        Ok(json!({"ScheduleArn": rec.arn()}))
    }

    fn get_schedule(&self, input: &Value) -> Result<Value, ApiError> {
        let group = group_of(input);
        self.require_group(&group)?;
        let rec = self.schedule(&group, str_of(input, "Name").unwrap_or_default())?;
        Ok(describe(&rec))
    }

    fn delete_schedule(&self, input: &Value) -> Result<Value, ApiError> {
        let group = group_of(input);
        let _write = self.inner.write.lock();
        self.require_group(&group)?;
        let rec = self.schedule(&group, str_of(input, "Name").unwrap_or_default())?;
        self.batch(remove_schedule(&rec))?;
        tracing::info!(schedule = %rec.arn(), "schedule deleted");
        Ok(json!({}))
    }

    fn list_schedules(&self, input: &Value) -> Result<Value, ApiError> {
        let prefix = match str_of(input, "GroupName") {
            Some(group) => {
                self.require_group(group)?;
                format!("{}/", group_key(self.account, self.region, group))
            }
            None => tenant_prefix(self.account, self.region),
        };
        let name_prefix = str_of(input, "NamePrefix");
        let state = str_of(input, "State");
        let summary = |rec: ScheduleRecord| -> Option<Value> {
            if name_prefix.is_some_and(|p| !rec.name.starts_with(p))
                || state.is_some_and(|s| rec.state != s)
            {
                return None;
            }
            Some(json!({
                "Arn": rec.arn(),
                "CreationDate": rec.created,
                "GroupName": rec.group,
                "LastModificationDate": rec.modified,
                "Name": rec.name,
                "State": rec.state,
                "Target": {"Arn": rec.target.get("Arn").cloned().unwrap_or(Value::Null)},
            }))
        };
        let (items, token) = self.page(SCHEDULES, &prefix, input, |bytes| {
            decode::<ScheduleRecord>(bytes).and_then(summary)
        })?;
        let mut out = json!({"Schedules": items});
        if let Some(token) = token {
            out["NextToken"] = json!(token);
        }
        Ok(out)
    }

    /// One page of `table` rows under `prefix`, mapped (and filtered) by `item`. The token is the
    /// last key returned, hex-encoded.
    fn page(
        &self,
        table: &str,
        prefix: &str,
        input: &Value,
        mut item: impl FnMut(&[u8]) -> Option<Value>,
    ) -> Result<(Vec<Value>, Option<String>), ApiError> {
        let limit = input
            .get("MaxResults")
            .and_then(Value::as_u64)
            .map_or(DEFAULT_PAGE, |n| n as usize);
        let mut after = match str_of(input, "NextToken") {
            Some(token) => {
                let key = hex::decode(token)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .filter(|k| k.starts_with(prefix))
                    .ok_or_else(|| validation("Invalid NextToken."))?;
                Some(key)
            }
            None => None,
        };
        let mut items = Vec::new();
        loop {
            let rows = self
                .inner
                .store
                .scan(table, prefix, after.as_deref(), 256)
                .map_err(store_error)?;
            let exhausted = rows.len() < 256;
            for (key, value) in rows {
                after = Some(key.clone());
                if let Some(v) = item(&value) {
                    items.push(v);
                    if items.len() == limit {
                        // Is there anything after this one?
                        let more = !self
                            .inner
                            .store
                            .scan(table, prefix, Some(&key), 1)
                            .map_err(store_error)?
                            .is_empty();
                        return Ok((items, more.then(|| hex::encode(key))));
                    }
                }
            }
            if exhausted {
                return Ok((items, None));
            }
        }
    }

    // --- groups ---------------------------------------------------------------------------

    fn create_group(&self, input: &Value) -> Result<Value, ApiError> {
        let name = str_of(input, "Name").unwrap_or_default();
        let tags = tags_of(input)?;
        let _write = self.inner.write.lock();
        if self.group(name)?.is_some() {
            return Err(conflict(format!("Schedule group {name} already exists.")));
        }
        let existing = self
            .inner
            .store
            .scan(
                GROUPS,
                &tenant_prefix(self.account, self.region),
                None,
                MAX_GROUPS + 1,
            )
            .map_err(store_error)?;
        if existing.len() >= MAX_GROUPS {
            return Err(ApiError::new(
                "ServiceQuotaExceededException",
                format!("The number of schedule groups has reached the quota of {MAX_GROUPS}."),
            ));
        }
        let now = secs(now_ms());
        let g = GroupRecord {
            name: name.to_string(),
            created: now,
            modified: now,
            tags,
        };
        let key = group_key(self.account, self.region, name);
        self.batch(vec![put(GROUPS, key, encode(&g))])?;
        Ok(json!({"ScheduleGroupArn": group_arn(self.account, self.region, name)}))
    }

    fn get_group(&self, input: &Value) -> Result<Value, ApiError> {
        let g = self.require_group(str_of(input, "Name").unwrap_or_default())?;
        Ok(self.describe_group(&g))
    }

    fn describe_group(&self, g: &GroupRecord) -> Value {
        json!({
            "Arn": group_arn(self.account, self.region, &g.name),
            "CreationDate": g.created,
            "LastModificationDate": g.modified,
            "Name": g.name,
            "State": "ACTIVE",
        })
    }

    fn delete_group(&self, input: &Value) -> Result<Value, ApiError> {
        let name = str_of(input, "Name").unwrap_or_default();
        if name == DEFAULT_GROUP {
            return Err(validation("The default schedule group cannot be deleted."));
        }
        let _write = self.inner.write.lock();
        self.require_group(name)?;
        let prefix = format!("{}/", group_key(self.account, self.region, name));
        let mut ops = vec![crate::model::del(
            GROUPS,
            group_key(self.account, self.region, name),
        )];
        let mut after: Option<String> = None;
        loop {
            let rows = self
                .inner
                .store
                .scan(SCHEDULES, &prefix, after.as_deref(), 1024)
                .map_err(store_error)?;
            let done = rows.len() < 1024;
            for (key, value) in rows {
                if let Some(rec) = decode::<ScheduleRecord>(&value) {
                    ops.extend(remove_schedule(&rec));
                }
                after = Some(key);
            }
            if done {
                break;
            }
        }
        let removed = ops.len();
        self.batch(ops)?;
        tracing::info!(group = %name, rows = removed, "schedule group deleted with its schedules");
        Ok(json!({}))
    }

    fn list_groups(&self, input: &Value) -> Result<Value, ApiError> {
        self.group(DEFAULT_GROUP)?;
        let name_prefix = str_of(input, "NamePrefix");
        let tenant = tenant_prefix(self.account, self.region);
        let (items, token) = self.page(GROUPS, &tenant, input, |bytes| {
            let g = decode::<GroupRecord>(bytes)?;
            if name_prefix.is_some_and(|p| !g.name.starts_with(p)) {
                return None;
            }
            Some(self.describe_group(&g))
        })?;
        let mut out = json!({"ScheduleGroups": items});
        if let Some(token) = token {
            out["NextToken"] = json!(token);
        }
        Ok(out)
    }

    // --- tags -----------------------------------------------------------------------------

    /// The group an ARN names, if it is this tenant's and exists.
    fn tagged_group(&self, input: &Value) -> Result<GroupRecord, ApiError> {
        let arn = str_of(input, "ResourceArn").unwrap_or_default();
        let missing = || not_found(format!("Resource {arn} does not exist."));
        let (account, region, name) = parse_group_arn(arn).ok_or_else(missing)?;
        if account != self.account || region != self.region {
            return Err(missing());
        }
        self.group(&name)?.ok_or_else(missing)
    }

    fn save_group(&self, g: &GroupRecord) -> Result<(), ApiError> {
        let key = group_key(self.account, self.region, &g.name);
        self.batch(vec![put(GROUPS, key, encode(g))])
    }

    fn tag(&self, input: &Value) -> Result<Value, ApiError> {
        let tags = tags_of(input)?;
        let _write = self.inner.write.lock();
        let mut g = self.tagged_group(input)?;
        for (k, v) in tags {
            match g.tags.iter_mut().find(|(key, _)| *key == k) {
                Some(slot) => slot.1 = v,
                None => g.tags.push((k, v)),
            }
        }
        if g.tags.len() > MAX_TAGS {
            return Err(validation(format!(
                "A resource can have at most {MAX_TAGS} tags."
            )));
        }
        self.save_group(&g)?;
        Ok(json!({}))
    }

    fn untag(&self, input: &Value) -> Result<Value, ApiError> {
        let keys: Vec<&str> = input
            .get("TagKeys")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let _write = self.inner.write.lock();
        let mut g = self.tagged_group(input)?;
        g.tags.retain(|(k, _)| !keys.contains(&k.as_str()));
        self.save_group(&g)?;
        Ok(json!({}))
    }

    fn list_tags(&self, input: &Value) -> Result<Value, ApiError> {
        let g = self.tagged_group(input)?;
        let tags: Vec<Value> = g
            .tags
            .iter()
            .map(|(k, v)| json!({"Key": k, "Value": v}))
            .collect();
        Ok(json!({"Tags": tags}))
    }
}

/// `Tags: [{Key, Value}]` of an input (later duplicates win).
fn tags_of(input: &Value) -> Result<Vec<(String, String)>, ApiError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for tag in input
        .get("Tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = str_of(tag, "Key").unwrap_or_default();
        let value = str_of(tag, "Value").unwrap_or_default();
        if key.starts_with("aws:") {
            return Err(validation("Tag keys starting with aws: are reserved."));
        }
        match out.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.to_string(),
            None => out.push((key.to_string(), value.to_string())),
        }
    }
    Ok(out)
}

/// `GetSchedule`'s answer.
fn describe(rec: &ScheduleRecord) -> Value {
    let mut out = Map::new();
    out.insert(
        "Arn".into(),
        json!(schedule_arn(
            &rec.account,
            &rec.region,
            &rec.group,
            &rec.name
        )),
    );
    out.insert("CreationDate".into(), json!(rec.created));
    out.insert("LastModificationDate".into(), json!(rec.modified));
    out.insert("GroupName".into(), json!(rec.group));
    out.insert("Name".into(), json!(rec.name));
    out.insert("ScheduleExpression".into(), json!(rec.expression));
    out.insert("State".into(), json!(rec.state));
    out.insert("FlexibleTimeWindow".into(), rec.flexible.clone());
    out.insert("Target".into(), rec.target.clone());
    out.insert(
        "ActionAfterCompletion".into(),
        json!(rec.action_after_completion.as_deref().unwrap_or("NONE")),
    );
    let optional = [
        ("Description", rec.description.as_ref().map(|v| json!(v))),
        (
            "ScheduleExpressionTimezone",
            rec.timezone.as_ref().map(|v| json!(v)),
        ),
        ("StartDate", rec.start_date.map(|v| json!(v))),
        ("EndDate", rec.end_date.map(|v| json!(v))),
        ("KmsKeyArn", rec.kms_key_arn.as_ref().map(|v| json!(v))),
    ];
    for (k, v) in optional {
        if let Some(v) = v {
            out.insert(k.into(), v);
        }
    }
    Value::Object(out)
}

//! Rotation operations: Create/Get/Update/Delete/List rotations, overrides, ListRotationShifts,
//! ListPreviewRotationShifts, and the on-call lookup an ONCALL_SCHEDULE engagement uses.

use opsloop_core::{ApiError, RequestContext, Value};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::resources::{get_contact, idem_op, idempotent, tag_ops, ContactRec};
use crate::rotation::{self, Override, Recurrence, Shift};
use crate::util::*;
use crate::Inner;

const MAX_ROTATIONS: usize = 1000;
const MAX_OVERRIDES: usize = 1000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RotationRec {
    pub arn: String,
    pub name: String,
    pub contact_ids: Vec<String>,
    pub recurrence: Value,
    pub start_time: f64,
    pub time_zone: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OverrideRec {
    pub id: String,
    pub rotation_arn: String,
    pub new_contact_ids: Vec<String>,
    pub start: f64,
    pub end: f64,
    pub created: f64,
}

fn get_rotation(inner: &Inner, arn: &str) -> Result<RotationRec, ApiError> {
    Db(&*inner.control)
        .get(T_ROTATION, arn)?
        .ok_or_else(|| not_found("Rotation", arn))
}

fn strings(v: &Value, name: &str) -> Vec<String> {
    v.get(name)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Rotation members must be distinct PERSONAL contacts that exist.
fn check_members(inner: &Inner, ids: &[String], field: &str) -> Result<(), ApiError> {
    for (i, id) in ids.iter().enumerate() {
        if ids[..i].contains(id) {
            return Err(invalid(field, format!("{id} is listed twice")));
        }
        let c: ContactRec = get_contact(inner, id)?;
        if c.kind != "PERSONAL" {
            return Err(invalid(field, format!("{id} is not a PERSONAL contact")));
        }
    }
    Ok(())
}

pub fn create_rotation(
    inner: &Inner,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, ApiError> {
    if let Some(arn) = idempotent(inner, ctx, input)? {
        return Ok(json!({"RotationArn": arn}));
    }
    let name = req(input, "Name")?;
    let ids = strings(input, "ContactIds");
    check_members(inner, &ids, "ContactIds")?;
    let recurrence = input.get("Recurrence").cloned().unwrap_or(Value::Null);
    Recurrence::parse(&recurrence)?;
    let tz = req(input, "TimeZoneId")?;
    rotation::time_zone(tz)?;
    let db = Db(&*inner.control);
    if db
        .scan::<Value>(T_ROTATION, &arn_prefix(ctx, "rotation"))?
        .len()
        >= MAX_ROTATIONS
    {
        return Err(quota(format!(
            "at most {MAX_ROTATIONS} rotations per account"
        )));
    }
    let arn = arn(ctx, &format!("rotation/{}", uuid()));
    let rec = RotationRec {
        arn: arn.clone(),
        name: name.to_string(),
        contact_ids: ids,
        recurrence,
        start_time: num(input, "StartTime").unwrap_or_else(now).floor(),
        time_zone: tz.to_string(),
    };
    let mut ops = vec![put(T_ROTATION, &arn, &rec)];
    ops.extend(tag_ops(&arn, input)?);
    ops.extend(idem_op(ctx, input, &arn));
    db.batch(ops)?;
    Ok(json!({"RotationArn": arn}))
}

fn rotation_doc(r: &RotationRec) -> Value {
    json!({
        "RotationArn": r.arn,
        "Name": r.name,
        "ContactIds": r.contact_ids,
        "StartTime": r.start_time,
        "TimeZoneId": r.time_zone,
        "Recurrence": r.recurrence,
    })
}

pub fn get_rotation_op(inner: &Inner, input: &Value) -> Result<Value, ApiError> {
    Ok(rotation_doc(&get_rotation(
        inner,
        req(input, "RotationId")?,
    )?))
}

pub fn update_rotation(inner: &Inner, input: &Value) -> Result<Value, ApiError> {
    let mut r = get_rotation(inner, req(input, "RotationId")?)?;
    if input.get("ContactIds").is_some() {
        let ids = strings(input, "ContactIds");
        check_members(inner, &ids, "ContactIds")?;
        r.contact_ids = ids;
    }
    if let Some(rec) = input.get("Recurrence") {
        Recurrence::parse(rec)?;
        r.recurrence = rec.clone();
    }
    if let Some(tz) = s(input, "TimeZoneId") {
        rotation::time_zone(tz)?;
        r.time_zone = tz.to_string();
    }
    if let Some(t) = num(input, "StartTime") {
        r.start_time = t.floor();
    }
    Db(&*inner.control).batch(vec![put(T_ROTATION, &r.arn, &r)])?;
    Ok(json!({}))
}

pub fn delete_rotation(
    inner: &Inner,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, ApiError> {
    let r = get_rotation(inner, req(input, "RotationId")?)?;
    let db = Db(&*inner.control);
    let users: Vec<String> = db
        .scan::<ContactRec>(T_CONTACT, &arn_prefix(ctx, "contact"))?
        .into_iter()
        .filter(|(_, c)| c.rotation_ids().contains(&r.arn))
        .map(|(a, _)| a)
        .collect();
    if !users.is_empty() {
        return Err(conflict(format!(
            "rotation {} is used by on-call schedules: {}",
            r.arn,
            users.join(", ")
        )));
    }
    let mut ops = vec![del(T_ROTATION, &r.arn), del(T_TAGS, &r.arn)];
    for (k, _) in db.scan::<Value>(T_OVERRIDE, &format!("{}|", r.arn))? {
        ops.push(del(T_OVERRIDE, &k));
    }
    db.batch(ops)?;
    Ok(json!({}))
}

pub fn list_rotations(
    inner: &Inner,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, ApiError> {
    let prefix = s(input, "RotationNamePrefix").unwrap_or("");
    let mut rows: Vec<RotationRec> = Db(&*inner.control)
        .scan::<RotationRec>(T_ROTATION, &arn_prefix(ctx, "rotation"))?
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| r.name.starts_with(prefix))
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name).then(a.arn.cmp(&b.arn)));
    let (page, next) = paginate(rows.iter().map(rotation_doc).collect(), input, 100)?;
    let mut out = json!({"Rotations": page});
    opt(out.as_object_mut().expect("object"), "NextToken", next);
    Ok(out)
}

pub fn create_override(
    inner: &Inner,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, ApiError> {
    if let Some(id) = idempotent(inner, ctx, input)? {
        return Ok(json!({"RotationOverrideId": id}));
    }
    let r = get_rotation(inner, req(input, "RotationId")?)?;
    let ids = strings(input, "NewContactIds");
    for id in &ids {
        if !r.contact_ids.contains(id) {
            return Err(invalid(
                "NewContactIds",
                format!("{id} is not a member of the rotation"),
            ));
        }
    }
    let (start, end) = (
        num(input, "StartTime").unwrap_or(0.0),
        num(input, "EndTime").unwrap_or(0.0),
    );
    if end <= start {
        return Err(invalid("EndTime", "must be after StartTime"));
    }
    let db = Db(&*inner.control);
    if db.scan::<Value>(T_OVERRIDE, &format!("{}|", r.arn))?.len() >= MAX_OVERRIDES {
        return Err(quota(format!(
            "a rotation has at most {MAX_OVERRIDES} overrides"
        )));
    }
    let id = uuid();
    let rec = OverrideRec {
        id: id.clone(),
        rotation_arn: r.arn.clone(),
        new_contact_ids: ids,
        start: start.floor(),
        end: end.floor(),
        created: now(),
    };
    let mut ops = vec![put(T_OVERRIDE, &format!("{}|{id}", r.arn), &rec)];
    ops.extend(idem_op(ctx, input, &id));
    db.batch(ops)?;
    Ok(json!({"RotationOverrideId": id}))
}

fn override_doc(o: &OverrideRec, with_arn: bool) -> Value {
    let mut v = json!({
        "RotationOverrideId": o.id,
        "NewContactIds": o.new_contact_ids,
        "StartTime": o.start,
        "EndTime": o.end,
        "CreateTime": o.created,
    });
    if with_arn {
        v["RotationArn"] = json!(o.rotation_arn);
    }
    v
}

fn get_override(inner: &Inner, input: &Value) -> Result<OverrideRec, ApiError> {
    let r = get_rotation(inner, req(input, "RotationId")?)?;
    let id = req(input, "RotationOverrideId")?;
    Db(&*inner.control)
        .get(T_OVERRIDE, &format!("{}|{id}", r.arn))?
        .ok_or_else(|| not_found("RotationOverride", id))
}

pub fn get_override_op(inner: &Inner, input: &Value) -> Result<Value, ApiError> {
    Ok(override_doc(&get_override(inner, input)?, true))
}

pub fn delete_override(inner: &Inner, input: &Value) -> Result<Value, ApiError> {
    let o = get_override(inner, input)?;
    Db(&*inner.control).batch(vec![del(
        T_OVERRIDE,
        &format!("{}|{}", o.rotation_arn, o.id),
    )])?;
    Ok(json!({}))
}

fn overrides_of(inner: &Inner, rotation_arn: &str) -> Result<Vec<OverrideRec>, ApiError> {
    let mut v: Vec<OverrideRec> = Db(&*inner.control)
        .scan::<OverrideRec>(T_OVERRIDE, &format!("{rotation_arn}|"))?
        .into_iter()
        .map(|(_, o)| o)
        .collect();
    // Later overrides win where they overlap earlier ones.
    v.sort_by(|a, b| b.created.total_cmp(&a.created));
    Ok(v)
}

pub fn list_overrides(inner: &Inner, input: &Value) -> Result<Value, ApiError> {
    let r = get_rotation(inner, req(input, "RotationId")?)?;
    let (from, to) = range(input, true)?;
    let mut rows: Vec<OverrideRec> = overrides_of(inner, &r.arn)?
        .into_iter()
        .filter(|o| o.end as i64 > from && (o.start as i64) < to)
        .collect();
    rows.sort_by(|a, b| a.start.total_cmp(&b.start));
    let (page, next) = paginate(
        rows.iter().map(|o| override_doc(o, false)).collect(),
        input,
        100,
    )?;
    let mut out = json!({"RotationOverrides": page});
    opt(out.as_object_mut().expect("object"), "NextToken", next);
    Ok(out)
}

fn range(input: &Value, start_required: bool) -> Result<(i64, i64), ApiError> {
    let from = match num(input, "StartTime") {
        Some(t) => t.floor() as i64,
        None if start_required => return Err(invalid("StartTime", "Member must not be null")),
        None => now() as i64,
    };
    let to = num(input, "EndTime")
        .ok_or_else(|| invalid("EndTime", "Member must not be null"))?
        .floor() as i64;
    if to <= from {
        return Err(invalid("EndTime", "must be after StartTime"));
    }
    Ok((from, to))
}

fn shift_doc(sh: &Shift) -> Value {
    let mut v = json!({
        "ContactIds": sh.contacts,
        "StartTime": sh.start,
        "EndTime": sh.end,
        "Type": if sh.overridden.is_some() { "OVERRIDDEN" } else { "REGULAR" },
    });
    if let Some(o) = &sh.overridden {
        v["ShiftDetails"] = json!({"OverriddenContactIds": o});
    }
    v
}

fn to_overrides(rows: &[OverrideRec]) -> Vec<Override> {
    rows.iter()
        .map(|o| Override {
            start: o.start as i64,
            end: o.end as i64,
            members: o.new_contact_ids.clone(),
        })
        .collect()
}

pub fn list_shifts(inner: &Inner, input: &Value) -> Result<Value, ApiError> {
    let r = get_rotation(inner, req(input, "RotationId")?)?;
    let (from, to) = range(input, false)?;
    let rec = Recurrence::parse(&r.recurrence)?;
    let tz = rotation::time_zone(&r.time_zone)?;
    let ov = to_overrides(&overrides_of(inner, &r.arn)?);
    let shifts = rotation::shifts(
        &r.contact_ids,
        &rec,
        &tz,
        r.start_time as i64,
        &ov,
        from,
        to,
    )?;
    let (page, next) = paginate(shifts.iter().map(shift_doc).collect(), input, 1024)?;
    let mut out = json!({"RotationShifts": page});
    opt(out.as_object_mut().expect("object"), "NextToken", next);
    Ok(out)
}

pub fn list_preview_shifts(input: &Value) -> Result<Value, ApiError> {
    let (from, to) = range(input, false)?;
    let members = strings(input, "Members");
    let rec = Recurrence::parse(input.get("Recurrence").unwrap_or(&Value::Null))?;
    let tz = rotation::time_zone(req(input, "TimeZoneId")?)?;
    let start = num(input, "RotationStartTime")
        .map(|t| t.floor() as i64)
        .unwrap_or(from);
    let mut ov = Vec::new();
    for o in input
        .get("Overrides")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        let (s, e) = (
            num(&o, "StartTime").unwrap_or(0.0),
            num(&o, "EndTime").unwrap_or(0.0),
        );
        if e <= s {
            return Err(invalid("Overrides.EndTime", "must be after StartTime"));
        }
        ov.push(Override {
            start: s as i64,
            end: e as i64,
            members: strings(&o, "NewMembers"),
        });
    }
    ov.reverse();
    let shifts = rotation::shifts(&members, &rec, &tz, start, &ov, from, to)?;
    let (page, next) = paginate(shifts.iter().map(shift_doc).collect(), input, 1024)?;
    let mut out = json!({"RotationShifts": page});
    opt(out.as_object_mut().expect("object"), "NextToken", next);
    Ok(out)
}

/// The contacts on call now in the rotations of an ONCALL_SCHEDULE contact (distinct, in order).
pub fn on_call_now(inner: &Inner, schedule: &ContactRec, at: f64) -> Result<Vec<String>, ApiError> {
    let mut out: Vec<String> = Vec::new();
    for id in schedule.rotation_ids() {
        let Some(r) = Db(&*inner.control).get::<RotationRec>(T_ROTATION, &id)? else {
            continue;
        };
        let rec = Recurrence::parse(&r.recurrence)?;
        let tz = rotation::time_zone(&r.time_zone)?;
        let ov = to_overrides(&overrides_of(inner, &r.arn)?);
        for c in rotation::on_call(
            &r.contact_ids,
            &rec,
            &tz,
            r.start_time as i64,
            &ov,
            at as i64,
        )? {
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    Ok(out)
}

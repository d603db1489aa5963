//! Contacts, contact channels, tags and resource policies: the stored records and their
//! Create/Get/Update/Delete/List operations, channel activation codes included.

use opsloop_core::{ApiError, RequestContext, Value};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map};

use crate::engage::Delivery;
use crate::util::*;
use crate::Inner;

/// Most contacts per account and region.
const MAX_CONTACTS: usize = 1000;
/// Most channels per contact.
const MAX_CHANNELS: usize = 10;
/// How long an activation code stays valid, seconds.
const CODE_TTL: f64 = 3600.0;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContactRec {
    pub arn: String,
    pub alias: String,
    pub display_name: Option<String>,
    pub kind: String,
    pub plan: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChannelRec {
    pub arn: String,
    pub contact_arn: String,
    pub name: String,
    pub kind: String,
    pub address: String,
    pub activated: bool,
    pub code: Option<String>,
    pub code_expires: f64,
}

impl ContactRec {
    pub fn stages(&self) -> Vec<Value> {
        self.plan
            .get("Stages")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }
    pub fn rotation_ids(&self) -> Vec<String> {
        self.plan
            .get("RotationIds")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

pub fn get_contact(inner: &Inner, arn: &str) -> Result<ContactRec, ApiError> {
    Db(&*inner.control)
        .get(T_CONTACT, arn)?
        .ok_or_else(|| not_found("Contact", arn))
}

pub fn get_channel(inner: &Inner, arn: &str) -> Result<ChannelRec, ApiError> {
    Db(&*inner.control)
        .get(T_CHANNEL, arn)?
        .ok_or_else(|| not_found("ContactChannel", arn))
}

/// Returns the ARN recorded for an idempotency token, if this create was already done.
pub fn idempotent(
    inner: &Inner,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Option<String>, ApiError> {
    match s(input, "IdempotencyToken") {
        Some(t) if !t.is_empty() => Db(&*inner.control).get(T_IDEMPOTENCY, &idem_key(ctx, t)),
        _ => Ok(None),
    }
}

pub fn idem_op(ctx: &RequestContext, input: &Value, arn: &str) -> Option<opsloop_store::WriteOp> {
    s(input, "IdempotencyToken")
        .filter(|t| !t.is_empty())
        .map(|t| put(T_IDEMPOTENCY, &idem_key(ctx, t), &arn))
}

fn idem_key(ctx: &RequestContext, token: &str) -> String {
    format!(
        "{}|{}|{}|{token}",
        ctx.account_id, ctx.region, ctx.operation
    )
}

/// Tag writes for a create, checked.
pub fn tag_ops(arn: &str, input: &Value) -> Result<Vec<opsloop_store::WriteOp>, ApiError> {
    let tags = parse_tags(input)?;
    Ok(if tags.is_empty() {
        vec![]
    } else {
        vec![put(T_TAGS, arn, &tags)]
    })
}

fn parse_tags(input: &Value) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    for t in input
        .get("Tags")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        let k = s(&t, "Key").ok_or_else(|| invalid("Tags.Key", "Member must not be null"))?;
        let v = s(&t, "Value").unwrap_or("");
        out.insert(k.to_string(), json!(v));
    }
    if out.len() > 50 {
        return Err(invalid("Tags", "a resource has at most 50 tags"));
    }
    Ok(out)
}

/// Check a plan against the contact type: PERSONAL stages target channels of this contact,
/// ESCALATION stages target contacts, ONCALL_SCHEDULE lists rotations and no stages.
fn check_plan(
    inner: &Inner,
    ctx: &RequestContext,
    kind: &str,
    self_arn: &str,
    plan: &Value,
) -> Result<(), ApiError> {
    let stages = plan
        .get("Stages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let rotations = plan
        .get("RotationIds")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let db = Db(&*inner.control);
    match kind {
        "ONCALL_SCHEDULE" => {
            if !stages.is_empty() {
                return Err(invalid(
                    "Plan.Stages",
                    "an ONCALL_SCHEDULE contact has RotationIds, not Stages",
                ));
            }
            if rotations.is_empty() {
                return Err(invalid(
                    "Plan.RotationIds",
                    "an ONCALL_SCHEDULE contact needs at least one rotation",
                ));
            }
            for r in &rotations {
                let r = r.as_str().unwrap_or("");
                if db.get::<Value>(T_ROTATION, r)?.is_none() {
                    return Err(not_found("Rotation", r));
                }
            }
        }
        _ => {
            if !rotations.is_empty() {
                return Err(invalid(
                    "Plan.RotationIds",
                    "only ONCALL_SCHEDULE contacts have rotations",
                ));
            }
        }
    }
    if stages.len() > 100 {
        return Err(invalid("Plan.Stages", "a plan has at most 100 stages"));
    }
    let _ = ctx;
    for (i, stage) in stages.iter().enumerate() {
        let targets = stage
            .get("Targets")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for t in targets {
            let field = format!("Plan.Stages.{}.Targets", i + 1);
            match (t.get("ChannelTargetInfo"), t.get("ContactTargetInfo")) {
                (Some(ch), None) => {
                    if kind != "PERSONAL" {
                        return Err(invalid(&field, "only PERSONAL contacts target channels"));
                    }
                    let id = s(ch, "ContactChannelId").unwrap_or("");
                    // A new personal contact cannot have channels yet: AWS accepts the plan
                    // update after channels exist, so the check applies to existing contacts.
                    if let Some(c) = db.get::<ChannelRec>(T_CHANNEL, id)? {
                        if c.contact_arn != self_arn {
                            return Err(invalid(
                                &field,
                                format!("channel {id} belongs to another contact"),
                            ));
                        }
                    } else {
                        return Err(not_found("ContactChannel", id));
                    }
                }
                (None, Some(ct)) => {
                    if kind != "ESCALATION" {
                        return Err(invalid(&field, "only ESCALATION contacts target contacts"));
                    }
                    let id = s(ct, "ContactId").unwrap_or("");
                    match db.get::<ContactRec>(T_CONTACT, id)? {
                        Some(c) if c.kind == "ESCALATION" => {
                            return Err(invalid(
                                &field,
                                "an escalation plan cannot target another escalation plan",
                            ))
                        }
                        Some(_) => {}
                        None => return Err(not_found("Contact", id)),
                    }
                }
                _ => {
                    return Err(invalid(
                        &field,
                        "each target has exactly one of ChannelTargetInfo or ContactTargetInfo",
                    ))
                }
            }
        }
    }
    Ok(())
}

pub fn create_contact(
    inner: &Inner,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, ApiError> {
    if let Some(arn) = idempotent(inner, ctx, input)? {
        return Ok(json!({"ContactArn": arn}));
    }
    let alias = req(input, "Alias")?;
    let kind = req(input, "Type")?;
    let arn = arn(ctx, &format!("contact/{alias}"));
    let db = Db(&*inner.control);
    if db.get::<Value>(T_CONTACT, &arn)?.is_some() {
        return Err(conflict(format!(
            "A contact with alias {alias} already exists"
        )));
    }
    if db
        .scan::<Value>(T_CONTACT, &arn_prefix(ctx, "contact"))?
        .len()
        >= MAX_CONTACTS
    {
        return Err(quota(format!(
            "at most {MAX_CONTACTS} contacts per account"
        )));
    }
    let plan = input.get("Plan").cloned().unwrap_or_else(|| json!({}));
    check_plan(inner, ctx, kind, &arn, &plan)?;
    let rec = ContactRec {
        arn: arn.clone(),
        alias: alias.to_string(),
        display_name: s(input, "DisplayName").map(str::to_string),
        kind: kind.to_string(),
        plan,
    };
    let mut ops = vec![put(T_CONTACT, &arn, &rec)];
    ops.extend(tag_ops(&arn, input)?);
    ops.extend(idem_op(ctx, input, &arn));
    db.batch(ops)?;
    Ok(json!({"ContactArn": arn}))
}

pub fn get_contact_op(inner: &Inner, input: &Value) -> Result<Value, ApiError> {
    let c = get_contact(inner, req(input, "ContactId")?)?;
    let mut out = Map::new();
    out.insert("ContactArn".into(), json!(c.arn));
    out.insert("Alias".into(), json!(c.alias));
    opt(&mut out, "DisplayName", c.display_name.clone());
    out.insert("Type".into(), json!(c.kind));
    let mut plan = c.plan.clone();
    if let Some(p) = plan.as_object_mut() {
        p.entry("Stages").or_insert_with(|| json!([]));
    }
    out.insert("Plan".into(), plan);
    Ok(Value::Object(out))
}

pub fn update_contact(
    inner: &Inner,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, ApiError> {
    let mut c = get_contact(inner, req(input, "ContactId")?)?;
    if let Some(plan) = input.get("Plan") {
        check_plan(inner, ctx, &c.kind, &c.arn, plan)?;
        c.plan = plan.clone();
    }
    if let Some(d) = s(input, "DisplayName") {
        c.display_name = Some(d.to_string());
    }
    Db(&*inner.control).batch(vec![put(T_CONTACT, &c.arn, &c)])?;
    Ok(json!({}))
}

pub fn delete_contact(
    inner: &Inner,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, ApiError> {
    let c = get_contact(inner, req(input, "ContactId")?)?;
    let db = Db(&*inner.control);
    // Escalation plans that target this contact depend on it.
    let mut dependents = Vec::new();
    for (arn, other) in db.scan::<ContactRec>(T_CONTACT, &arn_prefix(ctx, "contact"))? {
        if other.stages().iter().any(|st| {
            st.get("Targets")
                .and_then(Value::as_array)
                .is_some_and(|ts| {
                    ts.iter().any(|t| {
                        t.pointer("/ContactTargetInfo/ContactId")
                            .and_then(Value::as_str)
                            == Some(&c.arn)
                    })
                })
        }) {
            dependents.push(arn);
        }
    }
    // So do rotations it is a member of.
    for (arn, rotation) in db.scan::<Value>(T_ROTATION, &arn_prefix(ctx, "rotation"))? {
        let members = rotation.get("contact_ids").and_then(Value::as_array);
        if members.is_some_and(|m| m.iter().any(|id| id.as_str() == Some(&c.arn))) {
            dependents.push(arn);
        }
    }
    if !dependents.is_empty() {
        return Err(conflict(format!(
            "contact {} is used by escalation plans or rotations: {}",
            c.arn,
            dependents.join(", ")
        )));
    }
    let mut ops = vec![
        del(T_CONTACT, &c.arn),
        del(T_TAGS, &c.arn),
        del(T_POLICY, &c.arn),
    ];
    for (arn, ch) in db.scan::<ChannelRec>(T_CHANNEL, &arn_prefix(ctx, "contact-channel"))? {
        if ch.contact_arn == c.arn {
            ops.push(del(T_CHANNEL, &arn));
        }
    }
    db.batch(ops)?;
    Ok(json!({}))
}

pub fn list_contacts(
    inner: &Inner,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, ApiError> {
    let prefix = s(input, "AliasPrefix").unwrap_or("");
    let kind = s(input, "Type");
    let items: Vec<Value> = Db(&*inner.control)
        .scan::<ContactRec>(T_CONTACT, &arn(ctx, &format!("contact/{prefix}")))?
        .into_iter()
        .filter(|(_, c)| kind.is_none_or(|k| k == c.kind))
        .map(|(_, c)| {
            let mut o = Map::new();
            o.insert("ContactArn".into(), json!(c.arn));
            o.insert("Alias".into(), json!(c.alias));
            opt(&mut o, "DisplayName", c.display_name);
            o.insert("Type".into(), json!(c.kind));
            Value::Object(o)
        })
        .collect();
    let (page, next) = paginate(items, input, 100)?;
    let mut out = json!({"Contacts": page});
    opt(out.as_object_mut().expect("object"), "NextToken", next);
    Ok(out)
}

fn check_address(kind: &str, address: &str) -> Result<(), ApiError> {
    let ok = match kind {
        "EMAIL" => {
            let (local, domain) = address.split_once('@').unwrap_or(("", ""));
            !local.is_empty() && !domain.is_empty() && !address.contains(char::is_whitespace)
        }
        _ => {
            address.starts_with('+')
                && address.len() >= 8
                && address.len() <= 16
                && address[1..].bytes().all(|b| b.is_ascii_digit())
        }
    };
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "DeliveryAddress.SimpleAddress",
            match kind {
                "EMAIL" => "must be an email address",
                _ => "must be a phone number in E.164 format, e.g. +12065550100",
            },
        ))
    }
}

pub fn create_channel(
    inner: &Inner,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, ApiError> {
    if let Some(arn) = idempotent(inner, ctx, input)? {
        return Ok(json!({"ContactChannelArn": arn}));
    }
    let contact = get_contact(inner, req(input, "ContactId")?)?;
    if contact.kind != "PERSONAL" {
        return Err(invalid("ContactId", "only PERSONAL contacts have channels"));
    }
    let kind = req(input, "Type")?;
    let name = req(input, "Name")?;
    let address = input
        .pointer("/DeliveryAddress/SimpleAddress")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("DeliveryAddress.SimpleAddress", "Member must not be null"))?;
    check_address(kind, address)?;
    let db = Db(&*inner.control);
    let siblings: Vec<ChannelRec> = db
        .scan::<ChannelRec>(
            T_CHANNEL,
            &arn(ctx, &format!("contact-channel/{}/", contact.alias)),
        )?
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    if siblings.iter().any(|c| c.name == name) {
        return Err(conflict(format!(
            "contact {} already has a channel named {name}",
            contact.alias
        )));
    }
    if siblings.len() >= MAX_CHANNELS {
        return Err(quota(format!(
            "a contact has at most {MAX_CHANNELS} channels"
        )));
    }
    let arn = arn(
        ctx,
        &format!("contact-channel/{}/{}", contact.alias, uuid()),
    );
    let mut rec = ChannelRec {
        arn: arn.clone(),
        contact_arn: contact.arn,
        name: name.to_string(),
        kind: kind.to_string(),
        address: address.to_string(),
        activated: false,
        code: None,
        code_expires: 0.0,
    };
    let mut ops = Vec::new();
    if input.get("DeferActivation").and_then(Value::as_bool) != Some(true) {
        ops.push(activation_delivery(&mut rec));
    }
    ops.push(put(T_CHANNEL, &arn, &rec));
    ops.extend(idem_op(ctx, input, &arn));
    db.batch(ops)?;
    inner.wake.notify_one();
    Ok(json!({"ContactChannelArn": arn}))
}

/// A fresh activation code on `rec` and the outbox write that sends it.
fn activation_delivery(rec: &mut ChannelRec) -> opsloop_store::WriteOp {
    let code = code(6);
    rec.code = Some(code.clone());
    rec.code_expires = now() + CODE_TTL;
    let d = Delivery {
        page_arn: None,
        channel_arn: rec.arn.clone(),
        kind: rec.kind.clone(),
        address: rec.address.clone(),
        subject: "Incident Manager contact channel activation code".into(),
        body: format!(
            "Your activation code for the Incident Manager contact channel {} is {code}.",
            rec.name
        ),
        extra: json!({"kind": "activation", "activationCode": code, "contactChannelArn": rec.arn}),
        attempts: 0,
        next_attempt: 0.0,
    };
    put(T_OUTBOX, &seq(), &d)
}

fn channel_doc(c: &ChannelRec) -> Value {
    json!({
        "ContactArn": c.contact_arn,
        "ContactChannelArn": c.arn,
        "Name": c.name,
        "Type": c.kind,
        "DeliveryAddress": {"SimpleAddress": c.address},
        "ActivationStatus": if c.activated { "ACTIVATED" } else { "NOT_ACTIVATED" },
    })
}

pub fn get_channel_op(inner: &Inner, input: &Value) -> Result<Value, ApiError> {
    Ok(channel_doc(&get_channel(
        inner,
        req(input, "ContactChannelId")?,
    )?))
}

pub fn update_channel(inner: &Inner, input: &Value) -> Result<Value, ApiError> {
    let mut c = get_channel(inner, req(input, "ContactChannelId")?)?;
    if let Some(name) = s(input, "Name") {
        c.name = name.to_string();
    }
    if let Some(addr) = input
        .pointer("/DeliveryAddress/SimpleAddress")
        .and_then(Value::as_str)
    {
        check_address(&c.kind, addr)?;
        if addr != c.address {
            // A new address must prove itself again.
            c.address = addr.to_string();
            c.activated = false;
            c.code = None;
        }
    }
    Db(&*inner.control).batch(vec![put(T_CHANNEL, &c.arn, &c)])?;
    Ok(json!({}))
}

pub fn delete_channel(inner: &Inner, input: &Value) -> Result<Value, ApiError> {
    let c = get_channel(inner, req(input, "ContactChannelId")?)?;
    Db(&*inner.control).batch(vec![del(T_CHANNEL, &c.arn)])?;
    Ok(json!({}))
}

pub fn list_channels(
    inner: &Inner,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, ApiError> {
    let contact = get_contact(inner, req(input, "ContactId")?)?;
    let items: Vec<Value> = Db(&*inner.control)
        .scan::<ChannelRec>(
            T_CHANNEL,
            &arn(ctx, &format!("contact-channel/{}/", contact.alias)),
        )?
        .into_iter()
        .filter(|(_, c)| c.contact_arn == contact.arn)
        .map(|(_, c)| channel_doc(&c))
        .collect();
    let (page, next) = paginate(items, input, 100)?;
    let mut out = json!({"ContactChannels": page});
    opt(out.as_object_mut().expect("object"), "NextToken", next);
    Ok(out)
}

pub fn send_activation_code(inner: &Inner, input: &Value) -> Result<Value, ApiError> {
    let mut c = get_channel(inner, req(input, "ContactChannelId")?)?;
    let op = activation_delivery(&mut c);
    Db(&*inner.control).batch(vec![op, put(T_CHANNEL, &c.arn, &c)])?;
    inner.wake.notify_one();
    Ok(json!({}))
}

pub fn activate_channel(inner: &Inner, input: &Value) -> Result<Value, ApiError> {
    let mut c = get_channel(inner, req(input, "ContactChannelId")?)?;
    let given = req(input, "ActivationCode")?;
    let valid = c.code.as_deref() == Some(given) && now() <= c.code_expires;
    if !valid {
        return Err(invalid(
            "ActivationCode",
            "the activation code is not valid or has expired",
        ));
    }
    c.activated = true;
    c.code = None;
    Db(&*inner.control).batch(vec![put(T_CHANNEL, &c.arn, &c)])?;
    Ok(json!({}))
}

pub fn deactivate_channel(inner: &Inner, input: &Value) -> Result<Value, ApiError> {
    let mut c = get_channel(inner, req(input, "ContactChannelId")?)?;
    c.activated = false;
    Db(&*inner.control).batch(vec![put(T_CHANNEL, &c.arn, &c)])?;
    Ok(json!({}))
}

/// The stored table holding a taggable resource ARN (contacts and rotations are taggable).
fn taggable(inner: &Inner, arn: &str) -> Result<(), ApiError> {
    let db = Db(&*inner.control);
    let table = if arn.contains(":rotation/") {
        T_ROTATION
    } else {
        T_CONTACT
    };
    match db.get::<Value>(table, arn)? {
        Some(_) => Ok(()),
        None => Err(not_found("Resource", arn)),
    }
}

pub fn tag_resource(inner: &Inner, input: &Value) -> Result<Value, ApiError> {
    let arn = req(input, "ResourceARN")?;
    taggable(inner, arn)?;
    let db = Db(&*inner.control);
    let mut tags: Map<String, Value> = db.get(T_TAGS, arn)?.unwrap_or_default();
    tags.extend(parse_tags(input)?);
    if tags.len() > 50 {
        return Err(quota("a resource has at most 50 tags"));
    }
    db.batch(vec![put(T_TAGS, arn, &tags)])?;
    Ok(json!({}))
}

pub fn untag_resource(inner: &Inner, input: &Value) -> Result<Value, ApiError> {
    let arn = req(input, "ResourceARN")?;
    taggable(inner, arn)?;
    let db = Db(&*inner.control);
    let mut tags: Map<String, Value> = db.get(T_TAGS, arn)?.unwrap_or_default();
    for k in input
        .get("TagKeys")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        tags.remove(k.as_str().unwrap_or(""));
    }
    db.batch(vec![put(T_TAGS, arn, &tags)])?;
    Ok(json!({}))
}

pub fn list_tags(inner: &Inner, input: &Value) -> Result<Value, ApiError> {
    let arn = req(input, "ResourceARN")?;
    taggable(inner, arn)?;
    let tags: Map<String, Value> = Db(&*inner.control).get(T_TAGS, arn)?.unwrap_or_default();
    let list: Vec<Value> = tags
        .into_iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect();
    Ok(json!({"Tags": list}))
}

pub fn put_policy(inner: &Inner, input: &Value) -> Result<Value, ApiError> {
    let c = get_contact(inner, req(input, "ContactArn")?)?;
    let policy = req(input, "Policy")?;
    if !serde_json::from_str::<Value>(policy).is_ok_and(|v| v.is_object()) {
        return Err(invalid("Policy", "must be a JSON policy document"));
    }
    Db(&*inner.control).batch(vec![put(T_POLICY, &c.arn, &policy)])?;
    Ok(json!({}))
}

pub fn get_policy(inner: &Inner, input: &Value) -> Result<Value, ApiError> {
    let c = get_contact(inner, req(input, "ContactArn")?)?;
    let policy: Option<String> = Db(&*inner.control).get(T_POLICY, &c.arn)?;
    let mut out = json!({"ContactArn": c.arn});
    opt(out.as_object_mut().expect("object"), "Policy", policy);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked_per_channel_type() {
        assert!(check_address("EMAIL", "a@b.c").is_ok());
        assert!(check_address("EMAIL", "ab.c").is_err());
        assert!(check_address("SMS", "+12065550100").is_ok());
        assert!(check_address("VOICE", "2065550100").is_err());
    }
}

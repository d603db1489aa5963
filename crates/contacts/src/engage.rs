//! Engagements and pages: StartEngagement walks the engaged contact's plan; escalation stages and
//! a personal contact's channel stages advance on durable timers (rows of `contacts.timer` keyed by
//! due time) fired by one loop; messages go through a durable outbox worked by a delivery loop.
//!
//! Invariant: each timer row is deleted in the same atomic batch that writes the pages and
//! deliveries it causes, so a restart neither loses a stage nor pages twice. All read-modify-write
//! of engagements and pages happens under `Inner::lock`.

use opsloop_core::{ApiError, RequestContext, Value};
use opsloop_store::WriteOp;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map};

use crate::resources::{get_contact, idem_op, idempotent, ChannelRec, ContactRec};
use crate::rotations::on_call_now;
use crate::util::*;
use crate::Inner;

/// Delivery attempts before a page delivery is given up with an ERROR receipt.
pub const MAX_ATTEMPTS: u32 = 8;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EngagementRec {
    pub arn: String,
    pub region: String,
    pub account: String,
    pub contact_arn: String,
    pub sender: String,
    pub subject: String,
    pub content: String,
    pub public_subject: Option<String>,
    pub public_content: Option<String>,
    pub incident_id: Option<String>,
    pub start_time: f64,
    pub stop_time: Option<f64>,
    pub stop_reason: Option<String>,
    /// A page of this engagement was acknowledged (READ): no further stages.
    pub acknowledged: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PageRec {
    pub arn: String,
    pub engagement_arn: String,
    pub contact_arn: String,
    pub accept_code: String,
    pub created: f64,
    pub sent_time: Option<f64>,
    pub delivery_time: Option<f64>,
    pub read_time: Option<f64>,
    pub resolution: Vec<Value>,
}

/// A due escalation step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Timer {
    /// `engagement`: run stage `stage` of the engaged escalation plan; `page`: deliver stage
    /// `stage` of the paged personal contact's plan.
    pub kind: String,
    pub arn: String,
    pub stage: usize,
    pub due: f64,
}

/// A message waiting to be sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    pub page_arn: Option<String>,
    pub channel_arn: String,
    pub kind: String,
    pub address: String,
    pub subject: String,
    pub body: String,
    pub extra: Value,
    pub attempts: u32,
    pub next_attempt: f64,
}

fn arn_in(region: &str, account: &str, resource: &str) -> String {
    format!("arn:aws:ssm-contacts:{region}:{account}:{resource}")
}

pub fn timer_op(t: &Timer) -> WriteOp {
    let key = format!("{:016}|{}", (t.due * 1000.0).max(0.0) as u64, seq());
    put(T_TIMER, &key, t)
}

pub fn receipt_op(
    page_arn: &str,
    kind: &str,
    channel: Option<&str>,
    info: Option<&str>,
    at: f64,
) -> WriteOp {
    let mut r = Map::new();
    r.insert("ReceiptType".into(), json!(kind));
    r.insert("ReceiptTime".into(), json!(at));
    opt(&mut r, "ContactChannelArn", channel);
    opt(&mut r, "ReceiptInfo", info);
    put(
        T_RECEIPT,
        &format!("{page_arn}|{}", seq()),
        &Value::Object(r),
    )
}

/// Plans and writes of one engagement step, built under the lock and applied in one batch.
struct Step<'a> {
    inner: &'a Inner,
    eng: &'a EngagementRec,
    now: f64,
    ops: Vec<WriteOp>,
}

impl Step<'_> {
    fn duration(&self, stage: &Value) -> f64 {
        stage
            .get("DurationInMinutes")
            .and_then(Value::as_f64)
            .unwrap_or(0.0)
            * self.inner.minute_seconds
    }

    /// Engage `contact` as the engagement's own contact (stage `stage` for escalation plans).
    fn engage(&mut self, contact: &ContactRec, stage: usize) -> Result<(), ApiError> {
        match contact.kind.as_str() {
            "PERSONAL" => self.page(
                contact,
                vec![json!({"ContactArn": contact.arn, "Type": "PERSONAL"})],
            ),
            "ONCALL_SCHEDULE" => self.on_call(contact, vec![]),
            _ => {
                let stages = contact.stages();
                let Some(st) = stages.get(stage) else {
                    return Ok(());
                };
                let head =
                    json!({"ContactArn": contact.arn, "Type": "ESCALATION", "StageIndex": stage});
                for t in st
                    .get("Targets")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
                {
                    let Some(id) = t
                        .pointer("/ContactTargetInfo/ContactId")
                        .and_then(Value::as_str)
                    else {
                        continue;
                    };
                    let Ok(target) = get_contact(self.inner, id) else {
                        tracing::warn!(
                            contact = id,
                            "contacts: escalation target no longer exists"
                        );
                        continue;
                    };
                    match target.kind.as_str() {
                        "PERSONAL" => self.page(
                            &target,
                            vec![
                                head.clone(),
                                json!({"ContactArn": target.arn, "Type": "PERSONAL"}),
                            ],
                        )?,
                        "ONCALL_SCHEDULE" => self.on_call(&target, vec![head.clone()])?,
                        _ => {}
                    }
                }
                if stage + 1 < stages.len() {
                    self.ops.push(timer_op(&Timer {
                        kind: "engagement".into(),
                        arn: self.eng.arn.clone(),
                        stage: stage + 1,
                        due: self.now + self.duration(st),
                    }));
                }
                Ok(())
            }
        }
    }

    fn on_call(&mut self, schedule: &ContactRec, mut path: Vec<Value>) -> Result<(), ApiError> {
        path.push(json!({"ContactArn": schedule.arn, "Type": "ONCALL_SCHEDULE"}));
        let who = on_call_now(self.inner, schedule, self.now)?;
        if who.is_empty() {
            tracing::warn!(schedule = %schedule.arn, "contacts: nobody is on call");
        }
        for id in who {
            if let Ok(c) = get_contact(self.inner, &id) {
                let mut p = path.clone();
                p.push(json!({"ContactArn": c.arn, "Type": "PERSONAL"}));
                self.page(&c, p)?;
            }
        }
        Ok(())
    }

    /// A new page to a personal contact, delivering its plan's first stage.
    fn page(&mut self, contact: &ContactRec, resolution: Vec<Value>) -> Result<(), ApiError> {
        let page = PageRec {
            arn: arn_in(
                &self.eng.region,
                &self.eng.account,
                &format!("page/{}/{}", contact.alias, uuid()),
            ),
            engagement_arn: self.eng.arn.clone(),
            contact_arn: contact.arn.clone(),
            accept_code: code(6),
            created: self.now,
            sent_time: None,
            delivery_time: None,
            read_time: None,
            resolution,
        };
        self.ops.push(put(T_PAGE, &page.arn, &page));
        self.page_stage(&page, contact, 0)
    }

    /// Deliver stage `stage` of a personal contact's plan for `page`, and time the next stage.
    fn page_stage(
        &mut self,
        page: &PageRec,
        contact: &ContactRec,
        stage: usize,
    ) -> Result<(), ApiError> {
        let stages = contact.stages();
        let db = Db(&*self.inner.control);
        let channels: Vec<String> = if stages.is_empty() {
            // No plan: every channel of the contact, once.
            db.scan::<ChannelRec>(
                T_CHANNEL,
                &arn_in(
                    &self.eng.region,
                    &self.eng.account,
                    &format!("contact-channel/{}/", contact.alias),
                ),
            )?
            .into_iter()
            .filter(|(_, c)| c.contact_arn == contact.arn)
            .map(|(a, _)| a)
            .collect()
        } else {
            let Some(st) = stages.get(stage) else {
                return Ok(());
            };
            st.get("Targets")
                .and_then(Value::as_array)
                .map(|ts| {
                    ts.iter()
                        .filter_map(|t| {
                            t.pointer("/ChannelTargetInfo/ContactChannelId")
                                .and_then(Value::as_str)
                        })
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        for id in channels {
            match db.get::<ChannelRec>(T_CHANNEL, &id)? {
                Some(ch) if ch.activated => {
                    self.ops
                        .push(put(T_OUTBOX, &seq(), &self.message(page, &ch)))
                }
                Some(ch) => self.ops.push(receipt_op(
                    &page.arn,
                    "ERROR",
                    Some(&ch.arn),
                    Some("the contact channel is not activated"),
                    self.now,
                )),
                None => self.ops.push(receipt_op(
                    &page.arn,
                    "ERROR",
                    Some(&id),
                    Some("the contact channel no longer exists"),
                    self.now,
                )),
            }
        }
        if let Some(st) = stages.get(stage) {
            if stage + 1 < stages.len() {
                self.ops.push(timer_op(&Timer {
                    kind: "page".into(),
                    arn: page.arn.clone(),
                    stage: stage + 1,
                    due: self.now + self.duration(st),
                }));
            }
        }
        Ok(())
    }

    fn message(&self, page: &PageRec, ch: &ChannelRec) -> Delivery {
        let e = self.eng;
        let public = ch.kind != "EMAIL";
        let subject = if public {
            e.public_subject.clone().unwrap_or(e.subject.clone())
        } else {
            e.subject.clone()
        };
        let content = if public {
            e.public_content.clone().unwrap_or(e.content.clone())
        } else {
            e.content.clone()
        };
        let body = format!(
            "{content}\n\nSent by {}.\nTo acknowledge this page, use accept code {} (page {}).",
            e.sender, page.accept_code, page.arn
        );
        Delivery {
            page_arn: Some(page.arn.clone()),
            channel_arn: ch.arn.clone(),
            kind: ch.kind.clone(),
            address: ch.address.clone(),
            subject,
            body,
            extra: json!({
                "kind": "page", "pageArn": page.arn, "engagementArn": e.arn,
                "acceptCode": page.accept_code, "contactChannelArn": ch.arn,
                "incidentId": e.incident_id,
            }),
            attempts: 0,
            next_attempt: 0.0,
        }
    }
}

pub fn start_engagement(
    inner: &Inner,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, ApiError> {
    if let Some(arn) = idempotent(inner, ctx, input)? {
        return Ok(json!({"EngagementArn": arn}));
    }
    let contact = get_contact(inner, req(input, "ContactId")?)?;
    let now = now();
    let eng = EngagementRec {
        arn: arn(ctx, &format!("engagement/{}/{}", contact.alias, uuid())),
        region: ctx.region.clone(),
        account: ctx.account_id.clone(),
        contact_arn: contact.arn.clone(),
        sender: req(input, "Sender")?.to_string(),
        subject: req(input, "Subject")?.to_string(),
        content: req(input, "Content")?.to_string(),
        public_subject: s(input, "PublicSubject").map(str::to_string),
        public_content: s(input, "PublicContent").map(str::to_string),
        incident_id: s(input, "IncidentId").map(str::to_string),
        start_time: now,
        stop_time: None,
        stop_reason: None,
        acknowledged: false,
    };
    let _guard = inner.lock.lock();
    let mut step = Step {
        inner,
        eng: &eng,
        now,
        ops: vec![put(T_ENGAGEMENT, &eng.arn, &eng)],
    };
    step.engage(&contact, 0)?;
    let mut ops = step.ops;
    ops.extend(idem_op(ctx, input, &eng.arn));
    Db(&*inner.control).batch(ops)?;
    drop(_guard);
    inner.wake.notify_waiters();
    tracing::info!(engagement = %eng.arn, contact = %contact.arn, "contacts: engagement started");
    Ok(json!({"EngagementArn": eng.arn}))
}

/// Fire every timer due by `now`. Returns how many fired.
pub fn fire_due(inner: &Inner, now: f64) -> Result<usize, ApiError> {
    let db = Db(&*inner.control);
    let due_key = format!("{:016}|~", (now * 1000.0) as u64);
    let mut fired = 0;
    let _guard = inner.lock.lock();
    let rows = inner
        .control
        .scan(T_TIMER, "", None, 200)
        .map_err(store_err)?;
    for (key, bytes) in rows {
        if key.as_str() > due_key.as_str() {
            break;
        }
        let mut ops = vec![del(T_TIMER, &key)];
        match serde_json::from_slice::<Timer>(&bytes) {
            Ok(t) => {
                if let Err(e) = fire(inner, &t, now, &mut ops) {
                    tracing::warn!(error = %e, timer = %key, "contacts: escalation step failed; dropped");
                    ops.truncate(1);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, timer = %key, "contacts: undecodable timer dropped")
            }
        }
        db.batch(ops)?;
        fired += 1;
    }
    Ok(fired)
}

fn fire(inner: &Inner, t: &Timer, now: f64, ops: &mut Vec<WriteOp>) -> Result<(), ApiError> {
    let db = Db(&*inner.control);
    let (eng_arn, page) = match t.kind.as_str() {
        "page" => match db.get::<PageRec>(T_PAGE, &t.arn)? {
            Some(p) => (p.engagement_arn.clone(), Some(p)),
            None => return Ok(()),
        },
        _ => (t.arn.clone(), None),
    };
    let Some(eng) = db.get::<EngagementRec>(T_ENGAGEMENT, &eng_arn)? else {
        return Ok(());
    };
    if eng.stop_time.is_some() || eng.acknowledged {
        return Ok(());
    }
    let mut step = Step {
        inner,
        eng: &eng,
        now,
        ops: Vec::new(),
    };
    match page {
        Some(p) => {
            if p.read_time.is_some() {
                return Ok(());
            }
            let contact = get_contact(inner, &p.contact_arn)?;
            step.page_stage(&p, &contact, t.stage)?;
        }
        None => {
            let contact = get_contact(inner, &eng.contact_arn)?;
            tracing::info!(engagement = %eng.arn, stage = t.stage, "contacts: escalating to the next stage");
            step.engage(&contact, t.stage)?;
        }
    }
    ops.extend(step.ops);
    Ok(())
}

/// Seconds until the earliest timer is due (None when there is none).
pub fn next_due(inner: &Inner, now: f64) -> Option<f64> {
    let rows = inner.control.scan(T_TIMER, "", None, 1).ok()?;
    let (key, _) = rows.first()?;
    let ms: f64 = key.split('|').next()?.parse().ok()?;
    Some((ms / 1000.0 - now).max(0.0))
}

fn get_engagement(inner: &Inner, arn: &str) -> Result<EngagementRec, ApiError> {
    Db(&*inner.control)
        .get(T_ENGAGEMENT, arn)?
        .ok_or_else(|| not_found("Engagement", arn))
}

fn get_page(inner: &Inner, arn: &str) -> Result<PageRec, ApiError> {
    Db(&*inner.control)
        .get(T_PAGE, arn)?
        .ok_or_else(|| not_found("Page", arn))
}

pub fn stop_engagement(inner: &Inner, input: &Value) -> Result<Value, ApiError> {
    let _guard = inner.lock.lock();
    let mut eng = get_engagement(inner, req(input, "EngagementId")?)?;
    if eng.stop_time.is_some() {
        return Ok(json!({}));
    }
    let now = now();
    eng.stop_time = Some(now);
    eng.stop_reason = s(input, "Reason").map(str::to_string);
    let mut ops = vec![put(T_ENGAGEMENT, &eng.arn, &eng)];
    for p in pages_of_engagement(inner, &eng)? {
        if p.read_time.is_none() {
            ops.push(receipt_op(
                &p.arn,
                "STOP",
                None,
                eng.stop_reason.as_deref(),
                now,
            ));
        }
    }
    Db(&*inner.control).batch(ops)?;
    Ok(json!({}))
}

fn engagement_doc(e: &EngagementRec, full: bool) -> Value {
    let mut o = Map::new();
    o.insert("EngagementArn".into(), json!(e.arn));
    o.insert("ContactArn".into(), json!(e.contact_arn));
    o.insert("Sender".into(), json!(e.sender));
    opt(&mut o, "IncidentId", e.incident_id.clone());
    o.insert("StartTime".into(), json!(e.start_time));
    opt(&mut o, "StopTime", e.stop_time);
    if full {
        o.insert("Subject".into(), json!(e.subject));
        o.insert("Content".into(), json!(e.content));
        opt(&mut o, "PublicSubject", e.public_subject.clone());
        opt(&mut o, "PublicContent", e.public_content.clone());
    }
    Value::Object(o)
}

pub fn describe_engagement(inner: &Inner, input: &Value) -> Result<Value, ApiError> {
    Ok(engagement_doc(
        &get_engagement(inner, req(input, "EngagementId")?)?,
        true,
    ))
}

pub fn list_engagements(
    inner: &Inner,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, ApiError> {
    let incident = s(input, "IncidentId");
    let range = input.get("TimeRangeValue");
    let from = range.and_then(|r| num(r, "StartTime"));
    let to = range.and_then(|r| num(r, "EndTime"));
    let mut rows: Vec<EngagementRec> = Db(&*inner.control)
        .scan::<EngagementRec>(T_ENGAGEMENT, &arn_prefix(ctx, "engagement"))?
        .into_iter()
        .map(|(_, e)| e)
        .filter(|e| incident.is_none_or(|i| e.incident_id.as_deref() == Some(i)))
        .filter(|e| from.is_none_or(|f| e.start_time >= f) && to.is_none_or(|t| e.start_time <= t))
        .collect();
    rows.sort_by(|a, b| a.start_time.total_cmp(&b.start_time));
    let (page, next) = paginate(
        rows.iter().map(|e| engagement_doc(e, false)).collect(),
        input,
        100,
    )?;
    let mut out = json!({"Engagements": page});
    opt(out.as_object_mut().expect("object"), "NextToken", next);
    Ok(out)
}

fn pages_of_engagement(inner: &Inner, eng: &EngagementRec) -> Result<Vec<PageRec>, ApiError> {
    let mut v: Vec<PageRec> = Db(&*inner.control)
        .scan::<PageRec>(T_PAGE, &arn_in(&eng.region, &eng.account, "page/"))?
        .into_iter()
        .map(|(_, p)| p)
        .filter(|p| p.engagement_arn == eng.arn)
        .collect();
    v.sort_by(|a, b| a.created.total_cmp(&b.created).then(a.arn.cmp(&b.arn)));
    Ok(v)
}

fn page_doc(inner: &Inner, p: &PageRec, full: bool) -> Result<Value, ApiError> {
    let e = get_engagement(inner, &p.engagement_arn)?;
    let mut o = Map::new();
    o.insert("PageArn".into(), json!(p.arn));
    o.insert("EngagementArn".into(), json!(p.engagement_arn));
    o.insert("ContactArn".into(), json!(p.contact_arn));
    o.insert("Sender".into(), json!(e.sender));
    opt(&mut o, "IncidentId", e.incident_id.clone());
    opt(&mut o, "SentTime", p.sent_time);
    opt(&mut o, "DeliveryTime", p.delivery_time);
    opt(&mut o, "ReadTime", p.read_time);
    if full {
        o.insert("Subject".into(), json!(e.subject));
        o.insert("Content".into(), json!(e.content));
        opt(&mut o, "PublicSubject", e.public_subject);
        opt(&mut o, "PublicContent", e.public_content);
    }
    Ok(Value::Object(o))
}

fn pages_list(inner: &Inner, pages: Vec<PageRec>, input: &Value) -> Result<Value, ApiError> {
    let docs = pages
        .iter()
        .map(|p| page_doc(inner, p, false))
        .collect::<Result<Vec<_>, _>>()?;
    let (page, next) = paginate(docs, input, 100)?;
    let mut out = json!({"Pages": page});
    opt(out.as_object_mut().expect("object"), "NextToken", next);
    Ok(out)
}

pub fn list_pages_by_engagement(inner: &Inner, input: &Value) -> Result<Value, ApiError> {
    let eng = get_engagement(inner, req(input, "EngagementId")?)?;
    let pages = pages_of_engagement(inner, &eng)?;
    pages_list(inner, pages, input)
}

pub fn list_pages_by_contact(
    inner: &Inner,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, ApiError> {
    let contact = get_contact(inner, req(input, "ContactId")?)?;
    let mut pages: Vec<PageRec> = Db(&*inner.control)
        .scan::<PageRec>(T_PAGE, &arn_prefix(ctx, "page"))?
        .into_iter()
        .map(|(_, p)| p)
        .filter(|p| {
            p.contact_arn == contact.arn
                || p.resolution
                    .iter()
                    .any(|r| r.get("ContactArn").and_then(Value::as_str) == Some(&contact.arn))
        })
        .collect();
    pages.sort_by(|a, b| a.created.total_cmp(&b.created).then(a.arn.cmp(&b.arn)));
    pages_list(inner, pages, input)
}

pub fn describe_page(inner: &Inner, input: &Value) -> Result<Value, ApiError> {
    page_doc(inner, &get_page(inner, req(input, "PageId")?)?, true)
}

pub fn list_page_receipts(inner: &Inner, input: &Value) -> Result<Value, ApiError> {
    let p = get_page(inner, req(input, "PageId")?)?;
    let rows: Vec<Value> = Db(&*inner.control)
        .scan::<Value>(T_RECEIPT, &format!("{}|", p.arn))?
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    let (page, next) = paginate(rows, input, 100)?;
    let mut out = json!({"Receipts": page});
    opt(out.as_object_mut().expect("object"), "NextToken", next);
    Ok(out)
}

pub fn list_page_resolutions(inner: &Inner, input: &Value) -> Result<Value, ApiError> {
    let p = get_page(inner, req(input, "PageId")?)?;
    let (page, next) = paginate(p.resolution.clone(), input, 100)?;
    let mut out = json!({"PageResolutions": page});
    opt(out.as_object_mut().expect("object"), "NextToken", next);
    Ok(out)
}

pub fn accept_page(inner: &Inner, input: &Value) -> Result<Value, ApiError> {
    let _guard = inner.lock.lock();
    let mut p = get_page(inner, req(input, "PageId")?)?;
    let code = req(input, "AcceptCode")?;
    // Enforced unless the caller explicitly asks to IGNORE the code.
    if s(input, "AcceptCodeValidation") != Some("IGNORE") && code != p.accept_code {
        return Err(invalid(
            "AcceptCode",
            "the accept code does not match the code sent with the page",
        ));
    }
    let channel = s(input, "ContactChannelId");
    let note = s(input, "Note");
    let now = now();
    let mut ops = Vec::new();
    match req(input, "AcceptType")? {
        "READ" => {
            p.delivery_time.get_or_insert(now);
            p.read_time.get_or_insert(now);
            ops.push(receipt_op(&p.arn, "READ", channel, note, now));
            let mut eng = get_engagement(inner, &p.engagement_arn)?;
            if !eng.acknowledged {
                eng.acknowledged = true;
                ops.push(put(T_ENGAGEMENT, &eng.arn, &eng));
                tracing::info!(engagement = %eng.arn, page = %p.arn, "contacts: page acknowledged; escalation stops");
            }
        }
        _ => {
            p.delivery_time.get_or_insert(now);
            ops.push(receipt_op(&p.arn, "DELIVERED", channel, note, now));
        }
    }
    ops.push(put(T_PAGE, &p.arn, &p));
    Db(&*inner.control).batch(ops)?;
    Ok(json!({}))
}

/// Record the outcome of one delivery attempt (under the lock).
pub fn delivery_done(
    inner: &Inner,
    key: &str,
    mut d: Delivery,
    result: Result<(), String>,
) -> Result<(), ApiError> {
    let _guard = inner.lock.lock();
    let now = now();
    let mut ops = Vec::new();
    match result {
        Ok(()) => {
            ops.push(del(T_OUTBOX, key));
            if let Some(page_arn) = &d.page_arn {
                ops.push(receipt_op(
                    page_arn,
                    "SENT",
                    Some(&d.channel_arn),
                    None,
                    now,
                ));
                if let Some(mut p) = Db(&*inner.control).get::<PageRec>(T_PAGE, page_arn)? {
                    if p.sent_time.is_none() {
                        p.sent_time = Some(now);
                        ops.push(put(T_PAGE, page_arn, &p));
                    }
                }
            }
        }
        Err(e) => {
            d.attempts += 1;
            tracing::warn!(channel = %d.channel_arn, attempt = d.attempts, error = %e, "contacts: delivery failed");
            if d.attempts >= MAX_ATTEMPTS {
                ops.push(del(T_OUTBOX, key));
                if let Some(page_arn) = &d.page_arn {
                    ops.push(receipt_op(
                        page_arn,
                        "ERROR",
                        Some(&d.channel_arn),
                        Some(&e),
                        now,
                    ));
                }
            } else {
                d.next_attempt = now + f64::from(2u32.pow(d.attempts.min(10)));
                ops.push(put(T_OUTBOX, key, &d));
            }
        }
    }
    Db(&*inner.control).batch(ops)
}

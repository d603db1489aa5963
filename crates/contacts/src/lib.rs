//! Incident Manager contacts and on-call (`ssm-contacts`, JSON 1.1): contacts, channels, engagement
//! plans, rotations, engagements and pages with durable escalation timers.
//!
//! Modules: `resources` (contacts, channels, tags, policies), `rotations` (rotation API) over
//! `rotation` (shift arithmetic), `engage` (engagements, pages, timers, receipts), `notify` (SMTP and
//! HTTP gateway senders), `util` (errors, store access, pagination). This file holds the service,
//! its configuration, operation dispatch and the two background loops (timers and deliveries).

mod engage;
mod notify;
mod resources;
mod rotation;
mod rotations;
mod util;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opsloop_core::{ApiError, BoxFuture, Directory, RequestContext, Service, Value};
use opsloop_store::ControlStore;
use parking_lot::Mutex;
use tokio::sync::Notify;

pub use notify::{Gateway, SmtpServer};

/// The botocore model this service implements.
pub const MODEL_JSON: &str = include_str!("../../../models/ssm-contacts-2021-05-03.json");

/// How often the loops look for work when nothing woke them.
const POLL: Duration = Duration::from_millis(250);

/// Configuration of the contacts service.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactsConfig {
    /// SMTP server for EMAIL channels, `smtp://[user:pass@]host[:port]` (plain SMTP). `None`:
    /// email deliveries are retried and end with an ERROR receipt.
    pub smtp_url: Option<String>,
    /// Sender address of email.
    pub email_from: String,
    /// HTTP URL that SMS messages are POSTed to as JSON.
    pub sms_gateway_url: Option<String>,
    /// HTTP URL that VOICE messages are POSTed to as JSON.
    pub voice_gateway_url: Option<String>,
    /// Length of one engagement-plan "minute" in seconds. 60 in production; tests shrink it so
    /// a stage's `DurationInMinutes` passes in a fraction of a second.
    pub minute_seconds: f64,
}

impl Default for ContactsConfig {
    fn default() -> Self {
        ContactsConfig {
            smtp_url: None,
            email_from: "no-reply@opsloop.local".into(),
            sms_gateway_url: None,
            voice_gateway_url: None,
            minute_seconds: 60.0,
        }
    }
}

/// State shared by the handlers and the background loops.
pub(crate) struct Inner {
    pub control: Arc<dyn ControlStore>,
    #[allow(dead_code)]
    pub directory: Arc<Directory>,
    pub smtp: Option<SmtpServer>,
    pub email_from: String,
    pub sms: Option<Gateway>,
    pub voice: Option<Gateway>,
    pub minute_seconds: f64,
    /// Serialises read-modify-write of engagements, pages and timers.
    pub lock: Mutex<()>,
    /// Wakes the loops when new work was written.
    pub wake: Notify,
    pub stopping: AtomicBool,
    /// A delivery is being sent and its outcome not yet recorded.
    pub in_flight: AtomicBool,
}

/// The SSM Contacts service.
pub struct Contacts {
    inner: Arc<Inner>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Contacts {
    /// Open the service over the control store; peers are reached through `directory`. Cheap:
    /// nothing is read until the first request. Fails on an invalid URL in `config`.
    pub fn open(
        data_dir: &Path,
        control: Arc<dyn ControlStore>,
        directory: Arc<Directory>,
        config: ContactsConfig,
    ) -> Result<Contacts, String> {
        let _ = data_dir;
        let smtp = config
            .smtp_url
            .as_deref()
            .map(SmtpServer::from_url)
            .transpose()?;
        let sms = config
            .sms_gateway_url
            .as_deref()
            .map(Gateway::from_url)
            .transpose()?;
        let voice = config
            .voice_gateway_url
            .as_deref()
            .map(Gateway::from_url)
            .transpose()?;
        if !(config.minute_seconds > 0.0 && config.minute_seconds <= 3600.0) {
            return Err(format!(
                "contacts minute_seconds must be in (0, 3600], got {}",
                config.minute_seconds
            ));
        }
        Ok(Contacts {
            inner: Arc::new(Inner {
                control,
                directory,
                smtp,
                email_from: config.email_from,
                sms,
                voice,
                minute_seconds: config.minute_seconds,
                lock: Mutex::new(()),
                wake: Notify::new(),
                stopping: AtomicBool::new(false),
                in_flight: AtomicBool::new(false),
            }),
            tasks: Mutex::new(Vec::new()),
        })
    }

    /// Start the escalation-timer loop and the delivery loop on the current tokio runtime.
    pub fn start(self: &Arc<Self>) -> Result<(), String> {
        let timers = self.inner.clone();
        let deliveries = self.inner.clone();
        let mut tasks = self.tasks.lock();
        tasks.push(tokio::spawn(async move { timer_loop(timers).await }));
        tasks.push(tokio::spawn(async move { delivery_loop(deliveries).await }));
        Ok(())
    }

    /// The control store was wiped: nothing is cached in memory.
    pub fn reset(&self) {}

    /// Stop background work (blocking; called once at shutdown). A delivery being sent is given
    /// a few seconds to finish and be recorded, so a restart does not send it again.
    pub fn shutdown(&self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
        self.inner.wake.notify_waiters();
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        while self.inner.in_flight.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        for t in self.tasks.lock().drain(..) {
            t.abort();
        }
    }

    /// Run one operation.
    pub async fn handle(&self, ctx: &RequestContext, input: Value) -> Result<Value, ApiError> {
        use engage as e;
        use resources as r;
        use rotations as ro;
        let i = &*self.inner;
        let v = &input;
        let out = match ctx.operation.as_str() {
            "CreateContact" => r::create_contact(i, ctx, v),
            "GetContact" => r::get_contact_op(i, v),
            "UpdateContact" => r::update_contact(i, ctx, v),
            "DeleteContact" => r::delete_contact(i, ctx, v),
            "ListContacts" => r::list_contacts(i, ctx, v),
            "CreateContactChannel" => r::create_channel(i, ctx, v),
            "GetContactChannel" => r::get_channel_op(i, v),
            "UpdateContactChannel" => r::update_channel(i, v),
            "DeleteContactChannel" => r::delete_channel(i, v),
            "ListContactChannels" => r::list_channels(i, ctx, v),
            "SendActivationCode" => r::send_activation_code(i, v),
            "ActivateContactChannel" => r::activate_channel(i, v),
            "DeactivateContactChannel" => r::deactivate_channel(i, v),
            "TagResource" => r::tag_resource(i, v),
            "UntagResource" => r::untag_resource(i, v),
            "ListTagsForResource" => r::list_tags(i, v),
            "PutContactPolicy" => r::put_policy(i, v),
            "GetContactPolicy" => r::get_policy(i, v),
            "CreateRotation" => ro::create_rotation(i, ctx, v),
            "GetRotation" => ro::get_rotation_op(i, v),
            "UpdateRotation" => ro::update_rotation(i, v),
            "DeleteRotation" => ro::delete_rotation(i, ctx, v),
            "ListRotations" => ro::list_rotations(i, ctx, v),
            "CreateRotationOverride" => ro::create_override(i, ctx, v),
            "GetRotationOverride" => ro::get_override_op(i, v),
            "DeleteRotationOverride" => ro::delete_override(i, v),
            "ListRotationOverrides" => ro::list_overrides(i, v),
            "ListRotationShifts" => ro::list_shifts(i, v),
            "ListPreviewRotationShifts" => ro::list_preview_shifts(v),
            "StartEngagement" => e::start_engagement(i, ctx, v),
            "StopEngagement" => e::stop_engagement(i, v),
            "DescribeEngagement" => e::describe_engagement(i, v),
            "ListEngagements" => e::list_engagements(i, ctx, v),
            "ListPagesByContact" => e::list_pages_by_contact(i, ctx, v),
            "ListPagesByEngagement" => e::list_pages_by_engagement(i, v),
            "DescribePage" => e::describe_page(i, v),
            "ListPageReceipts" => e::list_page_receipts(i, v),
            "ListPageResolutions" => e::list_page_resolutions(i, v),
            "AcceptPage" => e::accept_page(i, v),
            other => Err(ApiError::with_status(
                "UnknownOperationException",
                400,
                format!("Unknown operation {other}"),
            )),
        };
        if out.is_ok()
            && matches!(
                ctx.operation.as_str(),
                "StartEngagement" | "SendActivationCode" | "CreateContactChannel"
            )
        {
            i.wake.notify_waiters();
        }
        out
    }
}

/// Fire due escalation timers; sleep until the next is due (at most `POLL`) or until woken.
async fn timer_loop(inner: Arc<Inner>) {
    while !inner.stopping.load(Ordering::SeqCst) {
        let now = util::now();
        match engage::fire_due(&inner, now) {
            Ok(n) if n > 0 => {
                inner.wake.notify_waiters();
                continue;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "contacts: timer pass failed"),
        }
        let wait = engage::next_due(&inner, util::now())
            .map(|s| Duration::from_secs_f64(s).min(POLL))
            .unwrap_or(POLL);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = inner.wake.notified() => {}
        }
    }
}

/// Send due deliveries from the outbox, one at a time, recording each outcome.
async fn delivery_loop(inner: Arc<Inner>) {
    while !inner.stopping.load(Ordering::SeqCst) {
        let rows = util::Db(&*inner.control)
            .scan::<engage::Delivery>(util::T_OUTBOX, "")
            .unwrap_or_default();
        let now = util::now();
        for (key, d) in rows.into_iter().filter(|(_, d)| d.next_attempt <= now) {
            inner.in_flight.store(true, Ordering::SeqCst);
            if inner.stopping.load(Ordering::SeqCst) {
                inner.in_flight.store(false, Ordering::SeqCst);
                return;
            }
            let result = send(&inner, &d).await;
            if let Err(e) = engage::delivery_done(&inner, &key, d, result) {
                tracing::warn!(error = %e, "contacts: cannot record a delivery");
            }
            inner.in_flight.store(false, Ordering::SeqCst);
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = inner.wake.notified() => {}
        }
    }
}

async fn send(inner: &Inner, d: &engage::Delivery) -> Result<(), String> {
    match d.kind.as_str() {
        "EMAIL" => match &inner.smtp {
            Some(server) => {
                notify::send_email(server, &inner.email_from, &d.address, &d.subject, &d.body).await
            }
            None => Err("no SMTP server is configured (contacts_smtp_url)".into()),
        },
        kind => {
            let gateway = if kind == "SMS" {
                &inner.sms
            } else {
                &inner.voice
            };
            match gateway {
                Some(g) => {
                    let message = if kind == "SMS" {
                        d.body.clone()
                    } else {
                        format!("{}. {}", d.subject, d.body)
                    };
                    let doc = notify::gateway_doc(kind, &d.address, &message, d.extra.clone());
                    notify::post_gateway(g, &doc).await
                }
                None => Err(format!("no {kind} gateway is configured")),
            }
        }
    }
}

impl Service for Contacts {
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
}

#[cfg(test)]
mod tests;

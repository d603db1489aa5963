//! Durable delivery. Publishing writes one outbox row per (message, subscription) in the same store
//! batch as the message; the dispatcher (tokio tasks started by [`crate::Sns::start`]) loads the
//! outbox on start, attempts each due delivery — signed JSON or raw body over HTTP/S, mail over
//! SMTP, chat posts — and deletes the row when delivered or given up, or stores the next attempt
//! time from the retry policy. A crash between a successful attempt and the row's deletion means
//! the endpoint sees the message again (at-least-once, as SNS).

pub mod body;
pub mod http;
pub mod policy;
pub mod queue;
pub mod smtp;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Semaphore};

use crate::chat;
use crate::doc::now_ms;
use crate::error::InternalError;
use crate::state::{self, Delivery, DeliveryKind, State, StoredMessage, Subscription, Topic};
use crate::{Inner, Runtime};

use self::http::Outcome;
use self::policy::RetryPolicy;
use self::queue::Pop;

/// A new delivery of `kind` to `sub`, due now, with the retry policy in effect for it.
pub(crate) fn make_delivery(
    topic: &Topic,
    sub: &Subscription,
    kind: DeliveryKind,
    now: i64,
) -> Delivery {
    let (retry, content_type) = if sub.protocol.starts_with("email") {
        (RetryPolicy::EMAIL, policy::DEFAULT_CONTENT_TYPE.to_string())
    } else {
        let tp = topic
            .attr("DeliveryPolicy")
            .and_then(|p| policy::parse_topic(p).ok());
        let sp = sub
            .attr("DeliveryPolicy")
            .and_then(|p| policy::parse_subscription(p).ok());
        policy::effective(tp.as_ref(), sp.as_ref())
    };
    let content_type = if sub.protocol == "slack" || sub.protocol == "teams" {
        "application/json".to_string()
    } else {
        content_type
    };
    Delivery {
        id: crate::doc::new_uuid(),
        subscription_arn: sub.arn.clone(),
        topic_arn: topic.arn.clone(),
        protocol: sub.protocol.clone(),
        endpoint: sub.endpoint.clone(),
        raw: sub.raw() && matches!(kind, DeliveryKind::Notification { .. }),
        kind,
        signature_version: topic.attr("SignatureVersion").unwrap_or("1").to_string(),
        policy: retry,
        content_type,
        attempts: 0,
        created_ms: now,
        due_ms: now,
    }
}

/// Load the outbox into the schedule and drop messages no delivery needs any more.
pub(crate) fn load_outbox(inner: &Inner) -> Result<usize, InternalError> {
    let st = State::new(&*inner.store);
    // Messages first, then deliveries: a message and its deliveries are written in one batch, so
    // every message seen here has its remaining deliveries visible in the outbox scan below, and a
    // message published after this scan is not considered at all.
    let messages: Vec<String> = inner
        .store
        .scan(state::MESSAGES, "", None, usize::MAX)?
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let rows: Vec<(String, Delivery)> = st.scan_all(state::OUTBOX, "")?;
    let mut referenced = std::collections::HashSet::new();
    for (_, d) in &rows {
        if let Some(m) = d.kind.shared_message() {
            referenced.insert(m.to_string());
        }
    }
    // The dispatcher is not running yet, so nothing can finish while the rows are added.
    inner.schedule.enqueue_many(
        rows.iter()
            .map(|(_, d)| (d.id.as_str(), d.due_ms, d.kind.shared_message())),
    );
    let orphans: Vec<_> = messages
        .iter()
        .filter(|m| !referenced.contains(*m))
        .map(|m| state::delete_op(state::MESSAGES, m))
        .collect();
    if !orphans.is_empty() {
        inner.store.batch(orphans)?;
    }
    Ok(rows.len())
}

/// The dispatcher loop: take due deliveries and attempt them, at most `concurrency` at once.
pub(crate) async fn run(
    inner: Arc<Inner>,
    rt: Arc<Runtime>,
    concurrency: usize,
    mut stop: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    loop {
        if *stop.borrow() {
            return;
        }
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = stop.changed() => return,
        };
        match inner.schedule.pop_due(now_ms()) {
            Pop::Ready(id) => {
                let (inner, rt) = (inner.clone(), rt.clone());
                tokio::spawn(async move {
                    attempt(&inner, &rt, &id).await;
                    drop(permit);
                });
            }
            Pop::Wait(next) => {
                drop(permit);
                let wait = next.map_or(Duration::from_secs(3600), |due| {
                    Duration::from_millis(
                        u64::try_from(due.saturating_sub(now_ms()))
                            .unwrap_or(0)
                            .max(1),
                    )
                });
                tokio::select! {
                    _ = inner.schedule.changed() => {}
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    }
}

/// Finish a delivery: delete its row (and its message, when it was the last delivery of it).
fn complete(inner: &Inner, d_id: &str) {
    let mut ops = vec![state::delete_op(state::OUTBOX, d_id)];
    if let Some(message) = inner.schedule.finish(d_id) {
        ops.push(state::delete_op(state::MESSAGES, &message));
    }
    if let Err(e) = inner.store.batch(ops) {
        tracing::error!(delivery = d_id, error = %e, "cannot remove a finished delivery");
    }
}

/// One attempt of delivery `id`.
async fn attempt(inner: &Inner, rt: &Runtime, id: &str) {
    let st = State::new(&*inner.store);
    let mut d: Delivery = match st.get(state::OUTBOX, id) {
        Ok(Some(d)) => d,
        Ok(None) => {
            // Deleted meanwhile (store wiped); nothing to do.
            inner.schedule.finish(id);
            return;
        }
        Err(e) => {
            tracing::error!(delivery = id, error = %e, "cannot read a delivery; dropping it");
            complete(inner, id);
            return;
        }
    };
    let message: Option<StoredMessage> = match d.kind.shared_message() {
        Some(mid) => match st.get(state::MESSAGES, mid) {
            Ok(Some(m)) => Some(m),
            _ => {
                tracing::warn!(
                    delivery = id,
                    message_id = mid,
                    "message of a delivery is gone; dropping it"
                );
                complete(inner, id);
                return;
            }
        },
        None => None,
    };
    if let DeliveryKind::Notification { .. } = d.kind {
        // Unsubscribed (or topic deleted) since publishing: SNS stops delivering.
        let current = crate::arn::SubscriptionArn::parse(&d.subscription_arn)
            .and_then(|a| st.subscription(&a).ok().flatten());
        if !current.is_some_and(|s| s.confirmed) {
            tracing::debug!(delivery = id, subscription = %d.subscription_arn, "subscription gone; dropping delivery");
            complete(inner, id);
            return;
        }
    }
    let outcome = send(inner, rt, &d, message.as_ref()).await;
    d.attempts += 1;
    match outcome {
        Outcome::Delivered => {
            tracing::debug!(delivery = id, protocol = %d.protocol, attempts = d.attempts, "delivered");
            complete(inner, id);
        }
        Outcome::Permanent(reason) => {
            tracing::warn!(delivery = id, endpoint = %d.endpoint, %reason, "delivery failed permanently");
            complete(inner, id);
        }
        Outcome::Retry(reason) => match d.policy.delay_before_retry(d.attempts) {
            Some(delay) => {
                d.due_ms = now_ms() + i64::from(delay) * 1000;
                tracing::info!(delivery = id, endpoint = %d.endpoint, %reason, attempts = d.attempts, retry_in_s = delay, "delivery failed; will retry");
                match st.put(state::OUTBOX, id, &d) {
                    Ok(()) => inner.schedule.reschedule(id, d.due_ms),
                    Err(e) => {
                        tracing::error!(delivery = id, error = %e, "cannot store a retry; dropping delivery");
                        complete(inner, id);
                    }
                }
            }
            None => {
                tracing::warn!(delivery = id, endpoint = %d.endpoint, %reason, attempts = d.attempts, "delivery retries exhausted; message discarded");
                complete(inner, id);
            }
        },
    }
}

/// Perform the attempt itself.
async fn send(
    inner: &Inner,
    rt: &Runtime,
    d: &Delivery,
    message: Option<&StoredMessage>,
) -> Outcome {
    let urls = inner.urls();
    match d.protocol.as_str() {
        "http" | "https" => {
            let body = match (d.raw, message) {
                (true, Some(m)) => m.text_for(&d.protocol).as_bytes().to_vec(),
                _ => match body::sns_json(d, message, &urls, &rt.signer) {
                    Ok(json) => json.into_bytes(),
                    Err(e) => return Outcome::Permanent(format!("cannot sign: {e}")),
                },
            };
            rt.http
                .post(&d.endpoint, &body::http_headers(d), body)
                .await
        }
        "slack" | "teams" => {
            let Some(m) = message else {
                // Chat subscriptions are confirmed on creation; nothing else is sent to them.
                return Outcome::Delivered;
            };
            let post = chat::summarise(m.subject.as_deref(), m.text_for(&d.protocol), &d.topic_arn);
            let payload = if d.protocol == "slack" {
                chat::slack_payload(&post, &d.topic_arn)
            } else {
                chat::teams_payload(&post, &d.topic_arn)
            };
            let headers = [
                ("content-type", "application/json".to_string()),
                ("user-agent", http::USER_AGENT.to_string()),
            ];
            rt.http
                .post(&d.endpoint, &headers, payload.to_string().into_bytes())
                .await
        }
        "email" | "email-json" => {
            let Some(smtp) = inner.config.smtp.as_ref() else {
                return Outcome::Retry("no SMTP server is configured (sns smtp_url)".into());
            };
            let json = if d.protocol == "email-json" {
                match body::sns_json(d, message, &urls, &rt.signer) {
                    Ok(j) => Some(j),
                    Err(e) => return Outcome::Permanent(format!("cannot sign: {e}")),
                }
            } else {
                None
            };
            let display = crate::arn::TopicArn::parse(&d.topic_arn)
                .and_then(|a| State::new(&*inner.store).topic(&a).ok().flatten())
                .and_then(|t| t.attr("DisplayName").map(str::to_string))
                .unwrap_or_default();
            let email = body::email(d, message, &urls, &display, json);
            let date = rfc2822_now();
            smtp::send(
                smtp,
                Some(rt.tls.clone()),
                &email,
                &date,
                d.kind.message_id(),
            )
            .await
        }
        other => Outcome::Permanent(format!("unsupported protocol {other}")),
    }
}

fn rfc2822_now() -> String {
    let t = time::OffsetDateTime::now_utc();
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {} {} {} {:02}:{:02}:{:02} +0000",
        DAYS[usize::from(t.weekday().number_days_from_monday())],
        t.day(),
        MONTHS[usize::from(u8::from(t.month()) - 1)],
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

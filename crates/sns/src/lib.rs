//! SNS behind the AWS `sns` API (awsQuery): topics, subscriptions with the real confirmation flow,
//! filter policies, Publish / PublishBatch, and durable delivery to HTTP/S endpoints (signed like
//! SNS), email over SMTP and Slack/Teams webhooks.
//!
//! Architecture: the wire layer decodes requests into protocol-neutral documents and calls [`Sns`]
//! through [`opsloop_core::Service`]. All state is in an [`opsloop_store::ControlStore`] (tables
//! `sns.*`); a publish writes the message and its per-subscription deliveries in one atomic batch
//! (an outbox) before answering. [`Sns::start`] runs the dispatcher (tokio tasks) that works the
//! outbox, resuming unfinished deliveries after a restart. [`Sns::handle_public`] answers the
//! unauthenticated links messages carry (SubscribeURL, UnsubscribeURL, SigningCertURL). Other
//! services publish in-process with `Directory::invoke("SNS", account, region, "Publish", ...)`, or
//! plain messages in bulk with the internal `OpsloopPublishMessages` (not in the model, so no wire
//! request reaches it; it runs on the caller's thread when publishing stores nothing).

pub mod arn;
mod cache;
pub mod chat;
pub mod delivery;
mod doc;
pub mod error;
pub mod filter;
mod public;
mod publish;
pub mod signing;
pub mod state;
mod subscriptions;
mod tags;
mod topics;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use opsloop_core::{
    ApiError, BoxFuture, Health, RequestContext, Service, ValidationFailure, Value,
};
use opsloop_store::ControlStore;
use parking_lot::Mutex;
use rand::RngCore;
use tokio::sync::{watch, OnceCell};

use crate::delivery::body::Urls;
pub use crate::delivery::body::PUBLIC_PREFIX;
use crate::delivery::http::HttpClient;
use crate::delivery::queue::Schedule;
pub use crate::delivery::smtp::{SmtpConfig, StartTls};
use crate::filter::Pattern;
pub use crate::public::PublicResponse;
use crate::signing::Signer;
use crate::state::{StoredMessage, Subscription};

/// The botocore model this service implements.
pub const MODEL_JSON: &str = include_str!("../../../models/sns-2010-03-31.json");

/// Settings of the SNS service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnsConfig {
    /// Base URL at which this server's `/_opsloop/sns/...` routes are reachable by endpoints, e.g.
    /// `http://127.0.0.1:4566`; SubscribeURL, UnsubscribeURL and SigningCertURL start with it.
    pub public_url: String,
    /// Directory for the signing key and certificate (`sns-signing-key.pem`, `sns-signing-cert.pem`).
    pub key_dir: PathBuf,
    /// SMTP server for `email` / `email-json` subscriptions (none: such deliveries wait and retry).
    pub smtp: Option<SmtpConfig>,
    /// PEM file of extra CA certificates trusted for HTTPS endpoints (and SMTP STARTTLS).
    pub extra_ca_file: Option<PathBuf>,
    /// Most deliveries attempted at once.
    pub max_concurrent_deliveries: usize,
}

impl SnsConfig {
    pub fn new(public_url: impl Into<String>, key_dir: impl Into<PathBuf>) -> Self {
        SnsConfig {
            public_url: public_url.into(),
            key_dir: key_dir.into(),
            smtp: None,
            extra_ca_file: None,
            max_concurrent_deliveries: 64,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SnsError {
    #[error("sns state: {0}")]
    Store(#[from] opsloop_store::StoreError),
    #[error("sns start: {0}")]
    Start(String),
}

/// What deliveries need and startup prepares off the executor: the signing key, TLS roots, client.
pub(crate) struct Runtime {
    pub signer: Signer,
    pub http: HttpClient,
    pub tls: Arc<rustls::ClientConfig>,
}

pub(crate) struct Inner {
    pub store: Arc<dyn ControlStore>,
    pub config: SnsConfig,
    /// Serialises control-plane read-modify-write operations.
    pub lock: Mutex<()>,
    pub schedule: Schedule,
    pub url_secret: Vec<u8>,
    runtime: OnceCell<Result<Arc<Runtime>, String>>,
    /// `true` once [`Sns::shutdown`] ran: no file is written into the data directory after that
    /// (see [`Signer::load_or_create`]).
    files_closed: Arc<Mutex<bool>>,
    filters: Mutex<FilterCache>,
    /// Topics with their confirmed subscriptions for Publish; `store` invalidates it on writes.
    pub topics: Arc<cache::TopicCache>,
}

const MAX_CACHED_FILTERS: usize = 4096;

/// Compiled filter policies by (body scope, policy text); `None` for a policy that does not compile.
type FilterCache = HashMap<(bool, String), Option<Arc<Pattern>>>;

impl Inner {
    pub fn urls(&self) -> Urls<'_> {
        Urls {
            base: &self.config.public_url,
            secret: &self.url_secret,
        }
    }

    /// The delivery runtime, prepared on first use (key generation on the blocking pool).
    pub async fn runtime(&self) -> Option<Arc<Runtime>> {
        let result = self
            .runtime
            .get_or_init(|| async {
                let key_dir = self.config.key_dir.clone();
                let ca = self.config.extra_ca_file.clone();
                let gate = self.files_closed.clone();
                let prepared = tokio::task::spawn_blocking(move || -> Result<Runtime, String> {
                    let signer =
                        Signer::load_or_create(&key_dir, &gate).map_err(|e| e.to_string())?;
                    let roots =
                        delivery::http::root_store(ca.as_deref()).map_err(|e| e.to_string())?;
                    let tls = delivery::http::tls_config(roots).map_err(|e| e.to_string())?;
                    Ok(Runtime {
                        signer,
                        http: HttpClient::new(tls.clone()),
                        tls: Arc::new(tls),
                    })
                })
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r);
                if let Err(e) = &prepared {
                    tracing::error!(error = %e, "sns delivery runtime cannot start");
                }
                prepared.map(Arc::new)
            })
            .await;
        result.as_ref().ok().cloned()
    }

    /// Whether `sub`'s filter policy accepts `message` (no policy: yes; invalid stored policy: no).
    pub fn filter_accepts(&self, sub: &Subscription, message: &StoredMessage) -> bool {
        let Some(text) = sub.attr("FilterPolicy").filter(|p| !p.is_empty()) else {
            return true;
        };
        let body_scope = sub.attr("FilterPolicyScope") == Some("MessageBody");
        let key = (body_scope, text.to_string());
        let pattern = {
            let mut cache = self.filters.lock();
            if let Some(p) = cache.get(&key) {
                p.clone()
            } else {
                let scope = if body_scope {
                    "MessageBody"
                } else {
                    "MessageAttributes"
                };
                let p = subscriptions::compile_filter(text, scope)
                    .ok()
                    .map(Arc::new);
                if cache.len() >= MAX_CACHED_FILTERS {
                    cache.clear();
                }
                cache.insert(key, p.clone());
                p
            }
        };
        let Some(pattern) = pattern else {
            return false;
        };
        publish::filter_document(message, &sub.protocol, body_scope)
            .is_some_and(|doc| pattern.matches(&doc))
    }
}

/// The SNS service.
pub struct Sns {
    inner: Arc<Inner>,
    started: AtomicBool,
    stop: watch::Sender<bool>,
}

const URL_SECRET_KEY: &str = "url-secret";

impl Sns {
    /// A service over `control`. Cheap: no key generation, no network; call [`Sns::start`] from
    /// within the tokio runtime to begin delivering.
    pub fn new(control: Arc<dyn ControlStore>, config: SnsConfig) -> Result<Sns, SnsError> {
        let url_secret = match control.get(state::META, URL_SECRET_KEY)? {
            Some(s) if s.len() >= 32 => s,
            _ => {
                let mut s = vec![0u8; 32];
                rand::thread_rng().fill_bytes(&mut s);
                control.put(state::META, URL_SECRET_KEY, &s)?;
                s
            }
        };
        let (stop, _) = watch::channel(false);
        let topics = Arc::new(cache::TopicCache::default());
        let control: Arc<dyn ControlStore> =
            Arc::new(cache::CachingStore::new(control, topics.clone()));
        Ok(Sns {
            inner: Arc::new(Inner {
                store: control,
                topics,
                config,
                lock: Mutex::new(()),
                schedule: Schedule::new(),
                url_secret,
                runtime: OnceCell::new(),
                files_closed: Arc::new(Mutex::new(false)),
                filters: Mutex::new(HashMap::new()),
            }),
            started: AtomicBool::new(false),
            stop,
        })
    }

    /// Start the dispatcher: prepare the signing key and TLS roots (first start: generate the key),
    /// load the outbox, then deliver until [`Sns::shutdown`]. Idempotent. Must be called from
    /// within a tokio runtime.
    pub fn start(&self) -> Result<(), SnsError> {
        if self.started.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let handle =
            tokio::runtime::Handle::try_current().map_err(|e| SnsError::Start(e.to_string()))?;
        let inner = self.inner.clone();
        let stop = self.stop.subscribe();
        handle.spawn(async move {
            let Some(rt) = inner.runtime().await else {
                return;
            };
            match delivery::load_outbox(&inner) {
                Ok(n) => tracing::info!(pending = n, "sns dispatcher started"),
                Err(e) => tracing::error!(error = %e, "cannot load the sns outbox"),
            }
            let concurrency = inner.config.max_concurrent_deliveries;
            delivery::run(inner, rt, concurrency, stop).await;
            tracing::info!("sns dispatcher stopped");
        });
        Ok(())
    }

    /// Stop the dispatcher (attempts in flight finish on their own; undelivered rows stay stored).
    /// Returns only when no file write into the data directory is in progress, and none starts
    /// later (a signing key being generated is then not saved).
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
        *self.inner.files_closed.lock() = true;
    }

    /// Answer a request for one of the public routes (`GET /_opsloop/sns/...`): `path` is the full
    /// request path, `query` the raw query string (without `?`).
    pub async fn handle_public(&self, method: &str, path: &str, query: &str) -> PublicResponse {
        public::handle(&self.inner, method, path, query).await
    }

    /// Deliveries scheduled or in flight.
    pub fn pending_deliveries(&self) -> usize {
        self.inner.schedule.len()
    }

    /// Forget scheduled deliveries after the control store was wiped (the reset endpoint).
    pub fn reset(&self) {
        self.inner.schedule.clear();
        self.inner.topics.invalidate();
    }

    /// Run one operation. Store work is synchronous (SQLite with full sync), so it runs on the blocking pool when
    /// there is a runtime, keeping the executor free for deliveries and other requests.
    pub async fn handle(&self, ctx: &RequestContext, input: Value) -> Result<Value, ApiError> {
        if tokio::runtime::Handle::try_current().is_err()
            || (ctx.operation == publish::PUBLISH_MESSAGES
                && publish::publishes_nothing_durable(&self.inner, &input))
        {
            return dispatch(&self.inner, ctx, input);
        }
        let (inner, owned) = (self.inner.clone(), ctx.clone());
        match tokio::task::spawn_blocking(move || dispatch(&inner, &owned, input)).await {
            Ok(result) => result,
            Err(e) => {
                tracing::error!(error = %e, operation = %ctx.operation, "sns operation task failed");
                Err(ApiError::internal())
            }
        }
    }
}

/// Run one operation.
fn dispatch(s: &Inner, ctx: &RequestContext, input: Value) -> Result<Value, ApiError> {
    match ctx.operation.as_str() {
        "CreateTopic" => topics::create_topic(s, ctx, input),
        "DeleteTopic" => topics::delete_topic(s, ctx, input),
        "ListTopics" => topics::list_topics(s, ctx, input),
        "GetTopicAttributes" => topics::get_topic_attributes(s, ctx, input),
        "SetTopicAttributes" => topics::set_topic_attributes(s, ctx, input),
        "AddPermission" => topics::add_permission(s, ctx, input),
        "RemovePermission" => topics::remove_permission(s, ctx, input),
        "GetDataProtectionPolicy" => topics::get_data_protection_policy(s, ctx, input),
        "PutDataProtectionPolicy" => topics::put_data_protection_policy(s, ctx, input),
        "TagResource" => tags::tag_resource(s, ctx, input),
        "UntagResource" => tags::untag_resource(s, ctx, input),
        "ListTagsForResource" => tags::list_tags(s, ctx, input),
        "Subscribe" => subscriptions::subscribe(s, ctx, input),
        "ConfirmSubscription" => subscriptions::confirm_subscription(s, ctx, input),
        "Unsubscribe" => subscriptions::unsubscribe(s, ctx, input),
        "ListSubscriptions" => subscriptions::list_subscriptions(s, ctx, input),
        "ListSubscriptionsByTopic" => subscriptions::list_subscriptions_by_topic(s, ctx, input),
        "GetSubscriptionAttributes" => subscriptions::get_subscription_attributes(s, ctx, input),
        "SetSubscriptionAttributes" => subscriptions::set_subscription_attributes(s, ctx, input),
        "Publish" => publish::publish(s, ctx, input),
        "PublishBatch" => publish::publish_batch(s, ctx, input),
        publish::PUBLISH_MESSAGES => publish::publish_messages(s, ctx, input),
        other => Err(not_implemented(other)),
    }
}

/// The answer to an operation this release does not implement (SMS, mobile push).
pub fn not_implemented(operation: &str) -> ApiError {
    ApiError::with_status(
        "NotImplemented",
        501,
        format!("Operation {operation} is not implemented by this opsloop release."),
    )
}

impl Service for Sns {
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

    fn validation_error(&self, failure: &ValidationFailure) -> ApiError {
        match failure {
            ValidationFailure::Missing { path } => error::invalid(path),
            ValidationFailure::Invalid { path, reason } => error::invalid_reason(path, reason),
        }
    }

    fn health(&self) -> Health {
        match self.inner.runtime.get() {
            Some(Err(e)) => Health {
                ready: false,
                detail: Some(format!("delivery runtime: {e}")),
            },
            _ => Health {
                ready: true,
                detail: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_is_the_sns_model() {
        let model: Value = serde_json::from_str(MODEL_JSON).unwrap();
        assert_eq!(model["metadata"]["serviceId"], "SNS");
    }

    #[test]
    fn validation_failures_use_sns_wording() {
        let store: Arc<dyn ControlStore> = Arc::new(opsloop_store::SqliteStore::memory().unwrap());
        let sns = Sns::new(store, SnsConfig::new("http://127.0.0.1:1", "/nonexistent")).unwrap();
        let e = sns.validation_error(&ValidationFailure::Missing {
            path: "TopicArn".into(),
        });
        assert_eq!(
            (e.kind.as_str(), e.message.as_str()),
            (error::INVALID_PARAMETER, "Invalid parameter: TopicArn")
        );
        assert_eq!(
            not_implemented("CreatePlatformApplication").status,
            Some(501)
        );
    }
}

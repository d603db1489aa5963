//! API destinations: Create/Describe/Update/Delete/List, and the invocation itself — the endpoint
//! with its `*` path parameters filled from the target's `PathParameterValues`, header and query
//! parameters from the target and the connection (the connection's win, as on AWS), body parameters
//! merged into a JSON-object body, the connection's authorization, and the destination's
//! `InvocationRateLimitPerSecond` enforced by a token bucket per destination (over the limit is a
//! retryable failure, so the core retries later).

use std::time::Instant;

use opsloop_core::{ApiError, Value};
use opsloop_store::WriteOp;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::auth;
use super::common::{
    already_exists, count_records, encode, get_record, limit_exceeded, list_page, not_found,
    now_secs, parse_events_arn, record_key, required_str, store_error, str_of, validation,
    T_DESTINATIONS,
};
use super::connections::{self, check_endpoint, HttpParams};
use super::http::{self, retryable_status, Request};
use super::{secrets, InvokeFailure, Shared};
use crate::Events;

/// AWS's default quota of API destinations per account and region.
const MAX_DESTINATIONS: usize = 3000;
/// AWS's default invocation rate when none is given.
const DEFAULT_RATE: i64 = 300;

/// A path segment keeps unreserved characters only.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Destination {
    pub name: String,
    pub arn: String,
    pub connection_arn: String,
    pub endpoint: String,
    pub method: String,
    pub rate: i64,
    #[serde(default)]
    pub description: Option<String>,
    pub state: String,
    pub created: f64,
    pub modified: f64,
}

impl Destination {
    fn summary(&self) -> Value {
        json!({
            "ApiDestinationArn": self.arn,
            "Name": self.name,
            "ApiDestinationState": self.state,
            "ConnectionArn": self.connection_arn,
            "InvocationEndpoint": self.endpoint,
            "HttpMethod": self.method,
            "InvocationRateLimitPerSecond": self.rate,
            "CreationTime": self.created,
            "LastModifiedTime": self.modified,
        })
    }

    fn change(&self) -> Value {
        json!({
            "ApiDestinationArn": self.arn,
            "ApiDestinationState": self.state,
            "CreationTime": self.created,
            "LastModifiedTime": self.modified,
        })
    }
}

/// A token bucket: `rate` tokens per second, holding at most `rate`.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    tokens: f64,
    rate: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: i64, now: Instant) -> Bucket {
        Bucket {
            tokens: rate as f64,
            rate: rate as f64,
            last: now,
        }
    }

    fn try_take(&mut self, rate: i64, now: Instant) -> bool {
        if self.rate != rate as f64 {
            self.rate = rate as f64;
            self.tokens = self.tokens.min(self.rate);
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

fn take_token(shared: &Shared, arn: &str, rate: i64) -> bool {
    let now = Instant::now();
    let mut buckets = shared.buckets.lock();
    buckets
        .entry(arn.to_string())
        .or_insert_with(|| Bucket::new(rate, now))
        .try_take(rate, now)
}

fn missing(name: &str) -> ApiError {
    not_found(format!(
        "Failed to describe the api-destination(s). An api-destination '{name}' does not exist."
    ))
}

fn rate_of(input: &Value) -> Result<Option<i64>, ApiError> {
    match input.get("InvocationRateLimitPerSecond") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_i64() {
            Some(n) if n >= 1 => Ok(Some(n)),
            _ => Err(validation(
                "1 validation error detected: Value at 'invocationRateLimitPerSecond' failed to satisfy constraint: Member must have value greater than or equal to 1",
            )),
        },
    }
}

fn check_connection(events: &Events, arn: &str) -> Result<(), ApiError> {
    match connections::by_arn(events, arn)? {
        Some(_) => Ok(()),
        None => Err(not_found(format!("Connection '{arn}' does not exist."))),
    }
}

pub(crate) fn create(
    events: &Events,
    account: &str,
    region: &str,
    input: &Value,
) -> Result<Value, ApiError> {
    let name = required_str(input, "Name")?;
    let connection_arn = required_str(input, "ConnectionArn")?;
    let endpoint = required_str(input, "InvocationEndpoint")?;
    let method = required_str(input, "HttpMethod")?;
    let rate = rate_of(input)?.unwrap_or(DEFAULT_RATE);
    check_endpoint(endpoint, "InvocationEndpoint")?;
    let key = record_key(account, region, name);
    if get_record::<Destination>(&*events.control, T_DESTINATIONS, &key)?.is_some() {
        return Err(already_exists(format!(
            "An api-destination '{name}' already exists."
        )));
    }
    check_connection(events, connection_arn)?;
    if count_records(&*events.control, T_DESTINATIONS, account, region)? >= MAX_DESTINATIONS {
        return Err(limit_exceeded(format!(
            "The requested resource exceeds the maximum number allowed ({MAX_DESTINATIONS} api-destinations)."
        )));
    }
    let now = now_secs();
    let dest = Destination {
        name: name.to_string(),
        arn: format!(
            "arn:aws:events:{region}:{account}:api-destination/{name}/{}",
            uuid::Uuid::new_v4()
        ),
        connection_arn: connection_arn.to_string(),
        endpoint: endpoint.to_string(),
        method: method.to_string(),
        rate,
        description: str_of(input, "Description").map(str::to_string),
        state: "ACTIVE".into(),
        created: now,
        modified: now,
    };
    let insert = WriteOp::Insert {
        table: T_DESTINATIONS.into(),
        key,
        value: encode(&dest),
    };
    events.control.batch(vec![insert]).map_err(|e| match e {
        opsloop_store::StoreError::Conflict { .. } => {
            already_exists(format!("An api-destination '{name}' already exists."))
        }
        e => store_error(e),
    })?;
    tracing::info!(
        account,
        region,
        api_destination = name,
        "api destination created"
    );
    Ok(dest.change())
}

fn load(
    events: &Events,
    account: &str,
    region: &str,
    name: &str,
) -> Result<Option<Destination>, ApiError> {
    get_record(
        &*events.control,
        T_DESTINATIONS,
        &record_key(account, region, name),
    )
}

pub(crate) fn describe(
    events: &Events,
    account: &str,
    region: &str,
    input: &Value,
) -> Result<Value, ApiError> {
    let name = required_str(input, "Name")?;
    let dest = load(events, account, region, name)?.ok_or_else(|| missing(name))?;
    let mut out = dest.summary();
    if let Some(d) = &dest.description {
        out["Description"] = json!(d);
    }
    Ok(out)
}

pub(crate) fn update(
    events: &Events,
    account: &str,
    region: &str,
    input: &Value,
) -> Result<Value, ApiError> {
    let name = required_str(input, "Name")?;
    let rate = rate_of(input)?;
    if let Some(ep) = str_of(input, "InvocationEndpoint") {
        check_endpoint(ep, "InvocationEndpoint")?;
    }
    if let Some(c) = str_of(input, "ConnectionArn") {
        check_connection(events, c)?;
    }
    let _guard = events.ext.shared.write_lock.lock();
    let mut dest = load(events, account, region, name)?.ok_or_else(|| missing(name))?;
    if let Some(c) = str_of(input, "ConnectionArn") {
        dest.connection_arn = c.to_string();
    }
    if let Some(ep) = str_of(input, "InvocationEndpoint") {
        dest.endpoint = ep.to_string();
    }
    if let Some(m) = str_of(input, "HttpMethod") {
        dest.method = m.to_string();
    }
    if let Some(r) = rate {
        dest.rate = r;
    }
    if let Some(d) = str_of(input, "Description") {
        dest.description = Some(d.to_string());
    }
    dest.modified = now_secs();
    super::common::put_record(
        &*events.control,
        T_DESTINATIONS,
        &record_key(account, region, name),
        &dest,
    )?;
    Ok(dest.change())
}

pub(crate) fn delete(
    events: &Events,
    account: &str,
    region: &str,
    input: &Value,
) -> Result<Value, ApiError> {
    let name = required_str(input, "Name")?;
    let _guard = events.ext.shared.write_lock.lock();
    let dest = load(events, account, region, name)?.ok_or_else(|| missing(name))?;
    events
        .control
        .delete(T_DESTINATIONS, &record_key(account, region, name))
        .map_err(store_error)?;
    events.ext.shared.buckets.lock().remove(&dest.arn);
    Ok(json!({}))
}

pub(crate) fn list(
    events: &Events,
    account: &str,
    region: &str,
    input: &Value,
) -> Result<Value, ApiError> {
    let conn = str_of(input, "ConnectionArn");
    let (page, token) = list_page::<Destination>(
        &*events.control,
        T_DESTINATIONS,
        account,
        region,
        input,
        |d| conn.is_none_or(|c| d.connection_arn == c),
    )?;
    let mut out =
        json!({"ApiDestinations": page.iter().map(Destination::summary).collect::<Vec<_>>()});
    if let Some(t) = token {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

/// Pairs of a `map<string,string>` member of the target's HttpParameters.
fn pairs(params: &Value, member: &str) -> Vec<(String, String)> {
    params
        .get(member)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Later pairs override earlier ones with the same key (`fold` compares case-insensitively).
fn merge(
    base: Vec<(String, String)>,
    over: Vec<(String, String)>,
    fold: bool,
) -> Vec<(String, String)> {
    let mut out = base;
    for (k, v) in over {
        out.retain(|(ek, _)| {
            if fold {
                !ek.eq_ignore_ascii_case(&k)
            } else {
                *ek != k
            }
        });
        out.push((k, v));
    }
    out
}

fn plain(params: &[connections::Param]) -> Vec<(String, String)> {
    params
        .iter()
        .map(|p| (p.key.clone(), p.value.clone().unwrap_or_default()))
        .collect()
}

/// The URL of one invocation: `*`s replaced by the path parameter values, query parameters added.
pub(crate) fn build_url(
    endpoint: &str,
    target: &Value,
    conn: &HttpParams,
) -> Result<String, String> {
    let values: Vec<String> = target
        .get("PathParameterValues")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    let stars = endpoint.matches('*').count();
    if values.len() != stars {
        return Err(format!(
            "the invocation endpoint has {stars} path parameter(s) but the target gives {}",
            values.len()
        ));
    }
    let mut url = String::with_capacity(endpoint.len());
    let mut values = values.iter();
    for c in endpoint.chars() {
        match c {
            '*' => url.extend(utf8_percent_encode(
                values.next().map(String::as_str).unwrap_or(""),
                SEGMENT,
            )),
            c => url.push(c),
        }
    }
    let query = merge(
        pairs(target, "QueryStringParameters"),
        plain(&conn.query),
        false,
    );
    if !query.is_empty() {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &query {
            ser.append_pair(k, v);
        }
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&ser.finish());
    }
    Ok(url)
}

/// Body parameters of the connection merged into a JSON-object body (other bodies unchanged).
fn merge_body(body: String, params: &[connections::Param]) -> String {
    if params.is_empty() {
        return body;
    }
    match serde_json::from_str::<Value>(&body) {
        Ok(Value::Object(mut o)) => {
            for p in params {
                o.insert(p.key.clone(), json!(p.value.clone().unwrap_or_default()));
            }
            Value::Object(o).to_string()
        }
        _ => body,
    }
}

pub(crate) async fn invoke(
    events: &Events,
    _account: &str,
    _region: &str,
    arn: &str,
    body: String,
    target: &Value,
) -> Result<(), InvokeFailure> {
    let internal = |e: ApiError| InvokeFailure::retry(format!("internal: {}", e.message));
    let (region, account, rest) = parse_events_arn(arn, "api-destination").ok_or_else(|| {
        InvokeFailure::permanent(format!("'{arn}' is not an API destination ARN"))
    })?;
    let name = rest.split('/').next().unwrap_or("");
    let dest = load(events, account, region, name)
        .map_err(internal)?
        .filter(|d| d.arn == arn)
        .ok_or_else(|| InvokeFailure::permanent(format!("API destination {arn} does not exist")))?;
    let shared = &*events.ext.shared;
    if !take_token(shared, &dest.arn, dest.rate) {
        return Err(InvokeFailure::retry(format!(
            "invocation rate limit of {} per second exceeded",
            dest.rate
        )));
    }
    let conn = connections::by_arn(events, &dest.connection_arn)
        .map_err(internal)?
        .ok_or_else(|| {
            InvokeFailure::permanent(format!("connection {} does not exist", dest.connection_arn))
        })?;
    if conn.state == "DEAUTHORIZED" {
        return Err(InvokeFailure::permanent(format!(
            "connection {} is deauthorized",
            conn.name
        )));
    }
    let secrets = secrets::load(&*events.control, &conn.secret_arn).map_err(internal)?;
    let target = if target.is_object() {
        target
    } else {
        &Value::Null
    };
    let url =
        build_url(&dest.endpoint, target, &secrets.invocation).map_err(InvokeFailure::permanent)?;
    let mut headers = vec![
        (
            "Content-Type".to_string(),
            "application/json; charset=utf-8".to_string(),
        ),
        ("User-Agent".to_string(), http::USER_AGENT.to_string()),
    ];
    headers = merge(headers, pairs(target, "HeaderParameters"), true);
    headers = merge(headers, plain(&secrets.invocation.headers), true);
    let oauth = conn.auth_type == "OAUTH_CLIENT_CREDENTIALS";
    if oauth {
        let outcome = auth::bearer(shared, &conn, &secrets, false).await;
        auth::record_outcome(shared, &*events.control, account, region, &conn, &outcome);
        let token = outcome.map_err(|f| InvokeFailure {
            retryable: f.retryable,
            message: format!("OAuth: {}", f.message),
        })?;
        headers = merge(
            headers,
            vec![("Authorization".into(), format!("Bearer {token}"))],
            true,
        );
    } else if let Some(h) = auth::static_header(&conn, &secrets) {
        headers = merge(headers, vec![h], true);
    }
    let with_body = !matches!(dest.method.as_str(), "GET" | "HEAD");
    let body = merge_body(body, &secrets.invocation.body);
    let client = http::client(shared).map_err(InvokeFailure::retry)?;
    let response = client
        .send(Request {
            method: dest.method.clone(),
            url,
            headers,
            body: with_body.then(|| body.into_bytes()),
        })
        .await
        .map_err(|(retryable, message)| InvokeFailure { retryable, message })?;
    let status = response.status;
    tracing::debug!(api_destination = %dest.name, status, "api destination invoked");
    if (200..300).contains(&status) {
        return Ok(());
    }
    if oauth && (status == 401 || status == 407) {
        auth::forget(shared, &conn.arn);
    }
    Err(InvokeFailure {
        retryable: retryable_status(status),
        message: format!("API destination endpoint answered {status}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_bucket_allows_the_rate_and_refills() {
        let t0 = Instant::now();
        let mut b = Bucket::new(3, t0);
        assert!((0..3).all(|_| b.try_take(3, t0)));
        assert!(!b.try_take(3, t0));
        assert!(b.try_take(3, t0 + Duration::from_millis(340)));
        assert!(!b.try_take(3, t0 + Duration::from_millis(340)));
        // A rate change applies at once, never granting more than the new rate.
        let mut b = Bucket::new(100, t0);
        assert!(b.try_take(1, t0));
        assert!(!b.try_take(1, t0));
    }

    #[test]
    fn urls_take_path_and_query_parameters() {
        let conn = HttpParams {
            query: vec![connections::Param {
                key: "k".into(),
                value: Some("conn".into()),
                secret: true,
            }],
            ..Default::default()
        };
        let target = json!({
            "PathParameterValues": ["a b", "x/y"],
            "QueryStringParameters": {"k": "target", "q": "1"}
        });
        assert_eq!(
            build_url("https://h.example/p/*/q/*", &target, &conn).unwrap(),
            "https://h.example/p/a%20b/q/x%2Fy?q=1&k=conn"
        );
        assert!(build_url("https://h.example/*", &json!({}), &conn).is_err());
        assert_eq!(
            build_url("http://h/x?a=1", &Value::Null, &HttpParams::default()).unwrap(),
            "http://h/x?a=1"
        );
    }

    #[test]
    fn body_parameters_join_json_objects_only() {
        let p = vec![connections::Param {
            key: "extra".into(),
            value: Some("v".into()),
            secret: false,
        }];
        assert_eq!(
            merge_body(r#"{"a":1}"#.into(), &p),
            r#"{"a":1,"extra":"v"}"#
        );
        assert_eq!(merge_body("plain".into(), &p), "plain");
    }
}

//! Flow tests of the ext module through [`super::handle`] on an in-memory store: connections,
//! API-destination invocations against a tiny local HTTP listener, archives with their counters and
//! retention, and replays stepped by the worker's tick.

use std::sync::Arc;
use std::time::{Duration, Instant};

use opsloop_core::{ApiError, Directory, RequestContext, Value};
use opsloop_store::SqliteStore;
use serde_json::json;

use super::http::testserver;
use super::{archives, handle, invoke_api_destination, worker};
use crate::Events;

const ACCOUNT: &str = "111122223333";
const REGION: &str = "us-east-1";

fn service() -> (Events, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::memory().unwrap());
    let events = Events::open(dir.path(), store, Directory::new()).unwrap();
    (events, dir)
}

async fn call(events: &Events, op: &str, input: Value) -> Result<Value, ApiError> {
    let mut ctx = RequestContext::internal(ACCOUNT, REGION, op);
    ctx.request_id = "test-request".into();
    handle(events, &ctx, input).await
}

async fn ok(events: &Events, op: &str, input: Value) -> Value {
    call(events, op, input)
        .await
        .unwrap_or_else(|e| panic!("{op}: {e:?}"))
}

async fn err(events: &Events, op: &str, input: Value) -> ApiError {
    call(events, op, input).await.expect_err(op)
}

async fn wait_for(mut cond: impl AsyncFnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn api_key_connection(name: &str) -> Value {
    json!({
        "Name": name,
        "AuthorizationType": "API_KEY",
        "AuthParameters": {
            "ApiKeyAuthParameters": {"ApiKeyName": "x-api-key", "ApiKeyValue": "s3cr3t-value"},
            "InvocationHttpParameters": {
                "HeaderParameters": [{"Key": "x-conn", "Value": "conn-header", "IsValueSecret": true}],
                "QueryStringParameters": [{"Key": "from", "Value": "conn"}]
            }
        }
    })
}

#[tokio::test]
async fn connection_lifecycle() {
    let (events, _dir) = service();
    let created = ok(&events, "CreateConnection", api_key_connection("c1")).await;
    assert_eq!(created["ConnectionState"], "AUTHORIZED");
    let arn = created["ConnectionArn"].as_str().unwrap().to_string();
    assert!(arn.starts_with(&format!("arn:aws:events:{REGION}:{ACCOUNT}:connection/c1/")));
    let e = err(&events, "CreateConnection", api_key_connection("c1")).await;
    assert_eq!(e.kind, "ResourceAlreadyExistsException");

    let d = ok(&events, "DescribeConnection", json!({"Name": "c1"})).await;
    let text = d.to_string();
    assert!(
        !text.contains("s3cr3t-value") && !text.contains("conn-header"),
        "{text}"
    );
    assert!(d["SecretArn"]
        .as_str()
        .unwrap()
        .starts_with("arn:aws:secretsmanager:"));
    assert_eq!(
        d["AuthParameters"]["ApiKeyAuthParameters"]["ApiKeyName"],
        "x-api-key"
    );

    for i in 2..=4 {
        ok(
            &events,
            "CreateConnection",
            api_key_connection(&format!("c{i}")),
        )
        .await;
    }
    let page = ok(&events, "ListConnections", json!({"Limit": 3})).await;
    assert_eq!(page["Connections"].as_array().unwrap().len(), 3);
    let next = page["NextToken"].as_str().unwrap();
    let page = ok(
        &events,
        "ListConnections",
        json!({"Limit": 3, "NextToken": next}),
    )
    .await;
    assert_eq!(page["Connections"][0]["Name"], "c4");
    assert!(page.get("NextToken").is_none());

    let d = ok(&events, "DeauthorizeConnection", json!({"Name": "c2"})).await;
    assert_eq!(d["ConnectionState"], "DEAUTHORIZING");
    let listed = ok(
        &events,
        "ListConnections",
        json!({"ConnectionState": "DEAUTHORIZED"}),
    )
    .await;
    assert_eq!(listed["Connections"].as_array().unwrap().len(), 1);
    // Re-authorized by an update that brings the secret again.
    let e = err(
        &events,
        "UpdateConnection",
        json!({"Name": "c2", "Description": "x"}),
    )
    .await;
    assert_eq!(e.kind, "ValidationException");
    ok(
        &events,
        "UpdateConnection",
        json!({"Name": "c2", "AuthParameters": {"ApiKeyAuthParameters": {"ApiKeyValue": "new"}}}),
    )
    .await;
    let d = ok(&events, "DescribeConnection", json!({"Name": "c2"})).await;
    assert_eq!(d["ConnectionState"], "AUTHORIZED");

    ok(&events, "DeleteConnection", json!({"Name": "c1"})).await;
    let e = err(&events, "DescribeConnection", json!({"Name": "c1"})).await;
    assert_eq!(e.kind, "ResourceNotFoundException");
}

#[tokio::test]
async fn api_destination_invocations_carry_auth_and_parameters() {
    let (events, _dir) = service();
    let server = testserver::start(vec![
        (200, "{}".into()),
        (503, "{}".into()),
        (404, "{}".into()),
    ])
    .await;
    let conn = ok(&events, "CreateConnection", api_key_connection("hook")).await;
    let e = err(&events, "CreateApiDestination", json!({
        "Name": "d", "ConnectionArn": format!("arn:aws:events:{REGION}:{ACCOUNT}:connection/nope/x"),
        "InvocationEndpoint": format!("{}/x", server.url), "HttpMethod": "POST"})).await;
    assert_eq!(e.kind, "ResourceNotFoundException");
    let d = ok(
        &events,
        "CreateApiDestination",
        json!({
        "Name": "d", "ConnectionArn": conn["ConnectionArn"],
        "InvocationEndpoint": format!("{}/orders/*", server.url), "HttpMethod": "PUT",
        "InvocationRateLimitPerSecond": 50}),
    )
    .await;
    let arn = d["ApiDestinationArn"].as_str().unwrap().to_string();
    assert_eq!(d["ApiDestinationState"], "ACTIVE");
    let params = json!({"PathParameterValues": ["42"], "HeaderParameters": {"x-target": "t"},
        "QueryStringParameters": {"from": "target", "q": "1"}});
    invoke_api_destination(&events, ACCOUNT, REGION, &arn, r#"{"a":1}"#.into(), &params)
        .await
        .unwrap();
    let seen = server.seen.lock()[0].clone();
    assert_eq!(seen.request_line, "PUT /orders/42?q=1&from=conn HTTP/1.1");
    assert_eq!(seen.header("x-api-key"), Some("s3cr3t-value"));
    assert_eq!(seen.header("x-conn"), Some("conn-header"));
    assert_eq!(seen.header("x-target"), Some("t"));
    assert_eq!(seen.body, r#"{"a":1}"#);
    let f = invoke_api_destination(&events, ACCOUNT, REGION, &arn, "{}".into(), &params)
        .await
        .unwrap_err();
    assert!(f.retryable, "503 is retried: {f:?}");
    let f = invoke_api_destination(&events, ACCOUNT, REGION, &arn, "{}".into(), &params)
        .await
        .unwrap_err();
    assert!(!f.retryable, "404 is final: {f:?}");
    let f = invoke_api_destination(
        &events,
        ACCOUNT,
        REGION,
        &format!("{arn}x"),
        "{}".into(),
        &params,
    )
    .await
    .unwrap_err();
    assert!(!f.retryable);

    // The rate limit: 1 per second, the second invocation at once is refused (retryable).
    ok(
        &events,
        "UpdateApiDestination",
        json!({"Name": "d", "InvocationRateLimitPerSecond": 1}),
    )
    .await;
    let server2 = testserver::start(vec![(200, "{}".into())]).await;
    ok(
        &events,
        "UpdateApiDestination",
        json!({"Name": "d", "InvocationEndpoint": format!("{}/*", server2.url)}),
    )
    .await;
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        outcomes.push(
            invoke_api_destination(&events, ACCOUNT, REGION, &arn, "{}".into(), &params).await,
        );
    }
    let limited = outcomes
        .iter()
        .filter(|o| {
            o.as_ref()
                .is_err_and(|f| f.retryable && f.message.contains("rate limit"))
        })
        .count();
    assert!(limited >= 2, "{outcomes:?}");

    // Deauthorized connections do not deliver.
    ok(&events, "DeauthorizeConnection", json!({"Name": "hook"})).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let f = invoke_api_destination(&events, ACCOUNT, REGION, &arn, "{}".into(), &params)
        .await
        .unwrap_err();
    assert!(!f.retryable && f.message.contains("deauthorized"), "{f:?}");

    let listed = ok(
        &events,
        "ListApiDestinations",
        json!({"ConnectionArn": conn["ConnectionArn"]}),
    )
    .await;
    assert_eq!(listed["ApiDestinations"].as_array().unwrap().len(), 1);
    ok(&events, "DeleteApiDestination", json!({"Name": "d"})).await;
    assert_eq!(
        err(&events, "DescribeApiDestination", json!({"Name": "d"}))
            .await
            .kind,
        "ResourceNotFoundException"
    );
}

#[tokio::test]
async fn oauth_connections_authorize_and_reauthorize_after_401() {
    let (events, _dir) = service();
    let tokens = testserver::start(vec![
        (200, r#"{"access_token":"tok-1","expires_in":3600}"#.into()),
        (200, r#"{"access_token":"tok-2","expires_in":3600}"#.into()),
    ])
    .await;
    let hook = testserver::start(vec![(401, "{}".into()), (200, "{}".into())]).await;
    let conn = ok(&events, "CreateConnection", json!({
        "Name": "o", "AuthorizationType": "OAUTH_CLIENT_CREDENTIALS",
        "AuthParameters": {"OAuthParameters": {
            "AuthorizationEndpoint": format!("{}/token", tokens.url), "HttpMethod": "POST",
            "ClientParameters": {"ClientID": "cid", "ClientSecret": "csecret"},
            "OAuthHttpParameters": {"BodyParameters": [{"Key": "audience", "Value": "api", "IsValueSecret": true}]}}}
    })).await;
    assert_eq!(conn["ConnectionState"], "AUTHORIZING");
    wait_for(
        async || {
            ok(&events, "DescribeConnection", json!({"Name": "o"})).await["ConnectionState"]
                == "AUTHORIZED"
        },
        "AUTHORIZED",
    )
    .await;
    let d = ok(&events, "DescribeConnection", json!({"Name": "o"})).await;
    assert!(!d.to_string().contains("csecret"));
    assert_eq!(
        d["AuthParameters"]["OAuthParameters"]["ClientParameters"]["ClientID"],
        "cid"
    );
    let dest = ok(
        &events,
        "CreateApiDestination",
        json!({
        "Name": "od", "ConnectionArn": conn["ConnectionArn"],
        "InvocationEndpoint": format!("{}/hook", hook.url), "HttpMethod": "POST"}),
    )
    .await;
    let arn = dest["ApiDestinationArn"].as_str().unwrap();
    let f = invoke_api_destination(&events, ACCOUNT, REGION, arn, "{}".into(), &Value::Null)
        .await
        .unwrap_err();
    assert!(f.retryable, "401 is retried: {f:?}");
    invoke_api_destination(&events, ACCOUNT, REGION, arn, "{}".into(), &Value::Null)
        .await
        .unwrap();
    let seen = hook.seen.lock().clone();
    assert_eq!(seen[0].header("authorization"), Some("Bearer tok-1"));
    assert_eq!(
        seen[1].header("authorization"),
        Some("Bearer tok-2"),
        "token fetched again after the 401"
    );
    assert!(tokens.seen.lock()[0].body.contains("audience=api"));
}

fn bus_arn(name: &str) -> String {
    format!("arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{name}")
}

fn event(id: &str, time: &str) -> Value {
    json!({"version": "0", "id": id, "detail-type": "t", "source": "app", "account": ACCOUNT,
        "time": time, "region": REGION, "resources": [], "detail": {"n": 1}})
}

#[tokio::test]
async fn archives_count_what_they_keep_and_forget_old_events() {
    let (events, _dir) = service();
    let e = err(&events, "CreateArchive", json!({"ArchiveName": "a", "EventSourceArn": "arn:aws:events:us-east-1:111122223333:rule/x"})).await;
    assert_eq!(e.kind, "ValidationException");
    let created = ok(
        &events,
        "CreateArchive",
        json!({"ArchiveName": "a", "EventSourceArn": bus_arn("default"), "RetentionDays": 1}),
    )
    .await;
    assert_eq!(created["State"], "ENABLED");
    assert_eq!(
        created["ArchiveArn"],
        format!("arn:aws:events:{REGION}:{ACCOUNT}:archive/a")
    );
    assert_eq!(
        err(
            &events,
            "CreateArchive",
            json!({"ArchiveName": "a", "EventSourceArn": bus_arn("default")})
        )
        .await
        .kind,
        "ResourceAlreadyExistsException"
    );
    let now = time::OffsetDateTime::now_utc();
    let fmt = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    archives::archive_event(
        &events,
        ACCOUNT,
        REGION,
        &bus_arn("default"),
        &event("e1", &fmt(now)),
    )
    .await
    .unwrap();
    archives::archive_event(
        &events,
        ACCOUNT,
        REGION,
        &bus_arn("default"),
        &event("e2", &fmt(now - time::Duration::days(3))),
    )
    .await
    .unwrap();
    archives::archive_event(
        &events,
        ACCOUNT,
        REGION,
        &bus_arn("other"),
        &event("e3", &fmt(now)),
    )
    .await
    .unwrap();
    let d = ok(&events, "DescribeArchive", json!({"ArchiveName": "a"})).await;
    assert_eq!(d["EventCount"], 2);
    let size = d["SizeBytes"].as_i64().unwrap();
    assert!(size > 100, "{d}");
    // The retention sweep deletes the 3-day-old event.
    worker::tick(&events).await.unwrap();
    let d = ok(&events, "DescribeArchive", json!({"ArchiveName": "a"})).await;
    assert_eq!(d["EventCount"], 1);
    assert!(d["SizeBytes"].as_i64().unwrap() < size);
    let listed = ok(
        &events,
        "ListArchives",
        json!({"EventSourceArn": bus_arn("default")}),
    )
    .await;
    assert_eq!(listed["Archives"].as_array().unwrap().len(), 1);
    let listed = ok(
        &events,
        "ListArchives",
        json!({"EventSourceArn": bus_arn("other")}),
    )
    .await;
    assert!(listed["Archives"].as_array().unwrap().is_empty());
    ok(&events, "DeleteArchive", json!({"ArchiveName": "a"})).await;
    assert_eq!(
        err(&events, "DescribeArchive", json!({"ArchiveName": "a"}))
            .await
            .kind,
        "ResourceNotFoundException"
    );
    // Archiving after the delete keeps nothing (the cache follows the store).
    archives::archive_event(
        &events,
        ACCOUNT,
        REGION,
        &bus_arn("default"),
        &event("e4", &fmt(now)),
    )
    .await
    .unwrap();
    ok(
        &events,
        "CreateArchive",
        json!({"ArchiveName": "a", "EventSourceArn": bus_arn("default")}),
    )
    .await;
    assert_eq!(
        ok(&events, "DescribeArchive", json!({"ArchiveName": "a"})).await["EventCount"],
        0
    );
}

#[tokio::test]
async fn replays_validate_step_cancel_and_fail_honestly() {
    let (events, _dir) = service();
    let archive = ok(
        &events,
        "CreateArchive",
        json!({"ArchiveName": "a", "EventSourceArn": bus_arn("default")}),
    )
    .await;
    let archive_arn = archive["ArchiveArn"].as_str().unwrap().to_string();
    let start = |name: &str, from: f64, to: f64, dest: &str| {
        json!({"ReplayName": name, "EventSourceArn": archive_arn, "EventStartTime": from, "EventEndTime": to,
            "Destination": {"Arn": dest}})
    };
    let now = super::common::now_secs();
    assert_eq!(
        err(
            &events,
            "StartReplay",
            start("r", now, now - 10.0, &bus_arn("default"))
        )
        .await
        .kind,
        "ValidationException"
    );
    let e = err(
        &events,
        "StartReplay",
        start("r", now - 10.0, now, &bus_arn("other")),
    )
    .await;
    assert!(e.message.contains("Cross event bus"), "{e:?}");
    let mut bad = start("r", now - 10.0, now, &bus_arn("default"));
    bad["EventSourceArn"] = json!(format!("arn:aws:events:{REGION}:{ACCOUNT}:archive/none"));
    assert_eq!(
        err(&events, "StartReplay", bad).await.kind,
        "ResourceNotFoundException"
    );
    let mut bad = start("r", now - 10.0, now, &bus_arn("default"));
    bad["Destination"]["FilterArns"] = json!([format!(
        "arn:aws:events:{REGION}:{ACCOUNT}:rule/other-bus/x"
    )]);
    assert_eq!(
        err(&events, "StartReplay", bad).await.kind,
        "ValidationException"
    );

    // An empty window completes.
    let r = ok(
        &events,
        "StartReplay",
        start("empty", now - 3600.0, now - 1800.0, &bus_arn("default")),
    )
    .await;
    assert_eq!(r["State"], "STARTING");
    assert_eq!(
        err(
            &events,
            "StartReplay",
            start("empty", now - 10.0, now, &bus_arn("default"))
        )
        .await
        .kind,
        "ResourceAlreadyExistsException"
    );
    worker::tick(&events).await.unwrap();
    let d = ok(&events, "DescribeReplay", json!({"ReplayName": "empty"})).await;
    assert_eq!(d["State"], "COMPLETED");
    assert!(d["ReplayEndTime"].is_number());
    assert_eq!(
        err(&events, "CancelReplay", json!({"ReplayName": "empty"}))
            .await
            .kind,
        "IllegalStatusException"
    );

    // A cancelled replay ends CANCELLED.
    ok(
        &events,
        "StartReplay",
        start("cancel-me", now - 10.0, now, &bus_arn("default")),
    )
    .await;
    let c = ok(&events, "CancelReplay", json!({"ReplayName": "cancel-me"})).await;
    assert_eq!(c["State"], "CANCELLING");
    worker::tick(&events).await.unwrap();
    assert_eq!(
        ok(
            &events,
            "DescribeReplay",
            json!({"ReplayName": "cancel-me"})
        )
        .await["State"],
        "CANCELLED"
    );

    // Deleting the archive under a replay fails it, with a reason.
    ok(
        &events,
        "StartReplay",
        start("orphan", now - 10.0, now, &bus_arn("default")),
    )
    .await;
    ok(&events, "DeleteArchive", json!({"ArchiveName": "a"})).await;
    worker::tick(&events).await.unwrap();
    let d = ok(&events, "DescribeReplay", json!({"ReplayName": "orphan"})).await;
    assert_eq!(d["State"], "FAILED");
    assert!(d["StateReason"].as_str().unwrap().contains("archive"));

    let listed = ok(&events, "ListReplays", json!({"State": "COMPLETED"})).await;
    assert_eq!(listed["Replays"].as_array().unwrap().len(), 1);
    let listed = ok(&events, "ListReplays", json!({"NamePrefix": "c"})).await;
    assert_eq!(listed["Replays"][0]["ReplayName"], "cancel-me");
}

#[tokio::test]
async fn a_replay_hands_every_event_of_its_window_to_the_core() {
    let (events, _dir) = service();
    ok(
        &events,
        "CreateArchive",
        json!({"ArchiveName": "a", "EventSourceArn": bus_arn("default")}),
    )
    .await;
    let base = (time::OffsetDateTime::now_utc() - time::Duration::hours(1))
        .replace_nanosecond(0)
        .unwrap();
    let fmt = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    // 250 events inside the window (more than one batch) and one after it.
    for i in 0..250 {
        let t = base + time::Duration::seconds(i);
        archives::archive_event(
            &events,
            ACCOUNT,
            REGION,
            &bus_arn("default"),
            &event(&format!("e{i:03}"), &fmt(t)),
        )
        .await
        .unwrap();
    }
    archives::archive_event(
        &events,
        ACCOUNT,
        REGION,
        &bus_arn("default"),
        &event("late", &fmt(base + time::Duration::minutes(30))),
    )
    .await
    .unwrap();
    let from = base.unix_timestamp() as f64;
    ok(&events, "StartReplay", json!({"ReplayName": "r", "EventSourceArn": format!("arn:aws:events:{REGION}:{ACCOUNT}:archive/a"),
        "EventStartTime": from, "EventEndTime": from + 600.0, "Destination": {"Arn": bus_arn("default")}})).await;
    for _ in 0..10 {
        worker::tick(&events).await.unwrap();
    }
    let d = ok(&events, "DescribeReplay", json!({"ReplayName": "r"})).await;
    assert_eq!(d["State"], "COMPLETED", "{d}");
    assert_eq!(d["EventLastReplayedTime"].as_f64().unwrap(), from + 249.0);
}

#[tokio::test]
async fn a_replay_resumes_from_its_cursor_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let open = || {
        let store = Arc::new(SqliteStore::open(&db).unwrap());
        Events::open(dir.path(), store, Directory::new()).unwrap()
    };
    let base = (time::OffsetDateTime::now_utc() - time::Duration::hours(1))
        .replace_nanosecond(0)
        .unwrap();
    let fmt = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let from = base.unix_timestamp() as f64;
    {
        let events = open();
        ok(
            &events,
            "CreateArchive",
            json!({"ArchiveName": "a", "EventSourceArn": bus_arn("default")}),
        )
        .await;
        for i in 0..250 {
            let e = event(&format!("e{i:03}"), &fmt(base + time::Duration::seconds(i)));
            archives::archive_event(&events, ACCOUNT, REGION, &bus_arn("default"), &e)
                .await
                .unwrap();
        }
        ok(
            &events,
            "StartReplay",
            json!({"ReplayName": "r",
            "EventSourceArn": format!("arn:aws:events:{REGION}:{ACCOUNT}:archive/a"),
            "EventStartTime": from, "EventEndTime": from + 600.0,
            "Destination": {"Arn": bus_arn("default")}}),
        )
        .await;
        worker::tick(&events).await.unwrap();
        let d = ok(&events, "DescribeReplay", json!({"ReplayName": "r"})).await;
        assert_eq!(d["State"], "RUNNING");
        assert_eq!(d["EventLastReplayedTime"].as_f64().unwrap(), from + 99.0);
    }
    // "Restart": a new service over the same database picks the replay up where it stopped.
    let events = open();
    for _ in 0..5 {
        worker::tick(&events).await.unwrap();
    }
    let key = super::common::record_key(ACCOUNT, REGION, "r");
    let stored: super::replays::Replay =
        super::common::get_record(&*events.control, super::common::T_REPLAYS, &key)
            .unwrap()
            .unwrap();
    assert_eq!(stored.state, "COMPLETED");
    assert_eq!(stored.replayed, 250, "each archived event replayed once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_archiving_is_group_committed_without_losing_counts() {
    let (events, _dir) = service();
    let events = Arc::new(events);
    ok(
        &events,
        "CreateArchive",
        json!({"ArchiveName": "a", "EventSourceArn": bus_arn("default")}),
    )
    .await;
    ok(
        &events,
        "CreateArchive",
        json!({"ArchiveName": "b", "EventSourceArn": bus_arn("default")}),
    )
    .await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        let events = Arc::clone(&events);
        tasks.spawn(async move {
            let e = event(&format!("e{i}"), "2026-01-01T00:00:00Z");
            archives::archive_event(&events, ACCOUNT, REGION, &bus_arn("default"), &e).await
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap().unwrap();
    }
    for name in ["a", "b"] {
        let d = ok(&events, "DescribeArchive", json!({"ArchiveName": name})).await;
        assert_eq!(d["EventCount"], 200, "{d}");
    }
    let rows = events
        .control
        .scan(super::common::T_ARCHIVED, "", None, 1000)
        .unwrap();
    assert_eq!(rows.len(), 400);
}

#[tokio::test]
async fn active_replays_are_limited() {
    let (events, _dir) = service();
    let archive = ok(
        &events,
        "CreateArchive",
        json!({"ArchiveName": "a", "EventSourceArn": bus_arn("default")}),
    )
    .await;
    let now = super::common::now_secs();
    let start = |name: String| {
        json!({"ReplayName": name, "EventSourceArn": archive["ArchiveArn"], "EventStartTime": now - 10.0,
            "EventEndTime": now, "Destination": {"Arn": bus_arn("default")}})
    };
    for i in 0..10 {
        ok(&events, "StartReplay", start(format!("r{i}"))).await;
    }
    let e = err(&events, "StartReplay", start("r10".into())).await;
    assert_eq!(e.kind, "LimitExceededException");
    worker::tick(&events).await.unwrap();
    ok(&events, "StartReplay", start("r10".into())).await;
}

//! Subscription-filter delivery through a recording EventBridge peer in a `Directory`: the control
//! message, DATA_MESSAGE payloads of matching events only, Logs destinations, refusal of
//! destinations opsloop does not host, retries while the target fails, durability across a crash,
//! batching under the PutEvents entry limit, account-level subscription policies, masking, and the
//! background dispatcher.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Env, ACCOUNT, T0};
use opsloop_core::{Directory, Value};
use opsloop_logs::subscriptions::MAX_DETAIL_BYTES;
use serde_json::json;

const BUS: &str = "arn:aws:events:us-east-1:123456789012:event-bus/default";

use common::Recorder;

fn setup() -> (Env, Arc<Recorder>, Arc<Directory>) {
    let rec = Arc::new(Recorder::default());
    let dir = Directory::new();
    dir.insert("EventBridge", rec.clone());
    (Env::with_directory(dir.clone()), rec, dir)
}

fn lines(msgs: &[&str]) -> Vec<(i64, String)> {
    msgs.iter()
        .enumerate()
        .map(|(i, m)| (T0 + i as i64, m.to_string()))
        .collect()
}

async fn subscribe(env: &Env, group: &str, name: &str, pattern: &str, dest: &str) {
    env.ok(
        "PutSubscriptionFilter",
        json!({"logGroupName": group, "filterName": name, "filterPattern": pattern, "destinationArn": dest}),
    )
    .await;
}

/// Run dispatcher passes until `done` holds or 10 s pass.
async fn deliver_until(env: &Env, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        env.logs.deliver_subscriptions().await.unwrap();
        if done() {
            return;
        }
        assert!(Instant::now() < deadline, "not delivered within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn matching_events_reach_the_bus_as_aws_payloads() {
    let (env, rec, _dir) = setup();
    env.stream("/app", "s1").await;
    subscribe(&env, "/app", "errors", "ERROR", BUS).await;
    let control = rec.payloads();
    assert_eq!(control.len(), 1);
    assert_eq!(control[0]["messageType"], "CONTROL_MESSAGE");
    assert_eq!(control[0]["owner"], "CloudwatchLogs");

    env.put("/app", "s1", &lines(&["ERROR one", "fine", "ERROR two"]))
        .await;
    let (delivered, failed) = env.logs.deliver_subscriptions().await.unwrap();
    assert_eq!((delivered, failed), (1, 0));
    let entries = rec.entries.lock().clone();
    let e = &entries[1];
    assert_eq!(e["Source"], "aws.logs");
    assert_eq!(e["DetailType"], "CloudWatch Logs Subscription");
    assert_eq!(e["EventBusName"], BUS);
    assert_eq!(
        e["Resources"],
        json!(["arn:aws:logs:us-east-1:123456789012:log-group:/app"])
    );
    let p = &rec.data_messages()[0];
    assert_eq!(p["owner"], ACCOUNT);
    assert_eq!(p["logGroup"], "/app");
    assert_eq!(p["logStream"], "s1");
    assert_eq!(p["subscriptionFilters"], json!(["errors"]));
    let evs = p["logEvents"].as_array().unwrap();
    let msgs: Vec<&str> = evs.iter().map(|e| e["message"].as_str().unwrap()).collect();
    assert_eq!(msgs, ["ERROR one", "ERROR two"]);
    assert_eq!(evs[0]["timestamp"], T0);
    assert_eq!(evs[0]["id"].as_str().unwrap().len(), 56);
    // nothing left to deliver
    assert_eq!(env.logs.deliver_subscriptions().await.unwrap(), (0, 0));
    assert_eq!(rec.entries.lock().len(), 2);

    // a space-delimited pattern carries extractedFields
    subscribe(&env, "/app", "codes", "[ip, status=5*]", BUS).await;
    env.put("/app", "s1", &lines(&["1.2.3.4 503", "1.2.3.4 200"]))
        .await;
    env.logs.deliver_subscriptions().await.unwrap();
    let last = rec.data_messages().pop().unwrap();
    assert_eq!(last["subscriptionFilters"], json!(["codes"]));
    assert_eq!(last["logEvents"][0]["extractedFields"]["status"], "503");
}

#[tokio::test]
async fn destinations_opsloop_does_not_host_are_refused() {
    let (env, rec, _dir) = setup();
    env.stream("/app", "s").await;
    for arn in [
        "arn:aws:kinesis:us-east-1:123456789012:stream/s",
        "arn:aws:firehose:us-east-1:123456789012:deliverystream/f",
        "arn:aws:lambda:us-east-1:123456789012:function:f",
    ] {
        let e = env
            .err(
                "PutSubscriptionFilter",
                json!({"logGroupName": "/app", "filterName": "f", "filterPattern": "", "destinationArn": arn}),
            )
            .await;
        assert_eq!(e.kind, "InvalidParameterException");
        assert!(e.message.contains("opsloop does not host"), "{}", e.message);
    }
    let d = env
        .ok(
            "DescribeSubscriptionFilters",
            json!({"logGroupName": "/app"}),
        )
        .await;
    assert_eq!(d["subscriptionFilters"], json!([]));
    // an unreachable bus: the control message fails, nothing is stored
    rec.failing.store(true, Ordering::SeqCst);
    let e = env
        .err(
            "PutSubscriptionFilter",
            json!({"logGroupName": "/app", "filterName": "f", "filterPattern": "", "destinationArn": BUS}),
        )
        .await;
    assert_eq!(e.kind, "InvalidParameterException");
    assert!(e.message.contains("Could not deliver test message"));
    let d = env
        .ok(
            "DescribeSubscriptionFilters",
            json!({"logGroupName": "/app"}),
        )
        .await;
    assert_eq!(d["subscriptionFilters"], json!([]));
    // PutDestination only targets event buses
    let e = env
        .err(
            "PutDestination",
            json!({"destinationName": "d", "targetArn": "arn:aws:kinesis:us-east-1:123456789012:stream/s", "roleArn": "arn:aws:iam::123456789012:role/r"}),
        )
        .await;
    assert_eq!(e.kind, "InvalidParameterException");
}

#[tokio::test]
async fn logs_destinations_deliver_to_their_bus() {
    let (env, rec, _dir) = setup();
    env.stream("/app", "s").await;
    let d = env
        .ok(
            "PutDestination",
            json!({"destinationName": "central", "targetArn": BUS, "roleArn": "arn:aws:iam::123456789012:role/r"}),
        )
        .await;
    let arn = d["destination"]["arn"].as_str().unwrap().to_string();
    subscribe(&env, "/app", "all", "", &arn).await;
    env.put("/app", "s", &lines(&["hello"])).await;
    deliver_until(&env, || rec.data_messages().len() == 1).await;
    assert_eq!(rec.entries.lock()[1]["EventBusName"], BUS);
    let e = env
        .err(
            "PutSubscriptionFilter",
            json!({"logGroupName": "/app", "filterName": "x", "filterPattern": "", "destinationArn": "arn:aws:logs:us-east-1:123456789012:destination:nope"}),
        )
        .await;
    assert_eq!(e.kind, "ResourceNotFoundException");
}

#[tokio::test]
async fn failures_retry_and_survive_a_crash() {
    let (mut env, rec, dir) = setup();
    env.stream("/app", "s").await;
    subscribe(&env, "/app", "all", "", BUS).await;
    rec.failing.store(true, Ordering::SeqCst);
    env.put("/app", "s", &lines(&["first"])).await;
    env.put("/app", "s", &lines(&["second"])).await;
    assert_eq!(env.logs.deliver_subscriptions().await.unwrap(), (0, 2));
    assert!(rec.data_messages().is_empty());

    // crash: the acknowledged events are still delivered by the next process, in order
    env.crash_and_reopen(dir.clone());
    rec.failing.store(false, Ordering::SeqCst);
    assert_eq!(env.logs.deliver_subscriptions().await.unwrap(), (2, 0));
    let msgs: Vec<Value> = rec
        .data_messages()
        .iter()
        .flat_map(|p| p["logEvents"].as_array().unwrap().clone())
        .map(|e| e["message"].clone())
        .collect();
    assert_eq!(msgs, [json!("first"), json!("second")]);
    assert_eq!(
        rec.data_messages().len(),
        1,
        "consecutive rows of a stream are merged into one entry"
    );

    // a target failing then recovering: retried with backoff until accepted
    rec.failing.store(true, Ordering::SeqCst);
    env.put("/app", "s", &lines(&["third"])).await;
    assert_eq!(env.logs.deliver_subscriptions().await.unwrap(), (0, 1));
    assert_eq!(
        env.logs.deliver_subscriptions().await.unwrap(),
        (0, 0),
        "backing off"
    );
    rec.failing.store(false, Ordering::SeqCst);
    deliver_until(&env, || rec.data_messages().len() == 2).await;
}

#[tokio::test]
async fn batches_stay_under_the_entry_limit() {
    let (env, rec, _dir) = setup();
    env.stream("/app", "s").await;
    subscribe(&env, "/app", "all", "", BUS).await;
    let big = "x".repeat(100 * 1024);
    let events: Vec<(i64, String)> = (0..8).map(|i| (T0 + i, big.clone())).collect();
    env.put("/app", "s", &events).await;
    deliver_until(&env, || {
        rec.data_messages()
            .iter()
            .map(|p| p["logEvents"].as_array().unwrap().len())
            .sum::<usize>()
            == 8
    })
    .await;
    for e in rec.entries.lock().iter() {
        assert!(e["Detail"].as_str().unwrap().len() <= MAX_DETAIL_BYTES);
    }
    assert!(rec.data_messages().len() >= 4);
}

#[tokio::test]
async fn account_subscription_policy_and_masking() {
    let (env, rec, _dir) = setup();
    env.stream("/app", "s").await;
    env.stream("/skip", "s").await;
    let doc = json!({"DestinationArn": BUS, "FilterPattern": "user", "Distribution": "Random"});
    env.ok(
        "PutAccountPolicy",
        json!({"policyName": "all", "policyType": "SUBSCRIPTION_FILTER_POLICY",
               "policyDocument": doc.to_string(), "selectionCriteria": "LogGroupName NOT IN [\"/skip\"]"}),
    )
    .await;
    let dp = json!({
        "Name": "p", "Version": "2021-06-01",
        "Statement": [
            {"Sid": "a", "DataIdentifier": ["arn:aws:dataprotection::aws:data-identifier/EmailAddress"], "Operation": {"Audit": {"FindingsDestination": {}}}},
            {"Sid": "m", "DataIdentifier": ["arn:aws:dataprotection::aws:data-identifier/EmailAddress"], "Operation": {"Deidentify": {"MaskConfig": {}}}}
        ]
    });
    env.put("/app", "s", &lines(&["user old@example.com"]))
        .await;
    env.set_now(T0 + 1000);
    env.ok(
        "PutDataProtectionPolicy",
        json!({"logGroupIdentifier": "/app", "policyDocument": dp.to_string()}),
    )
    .await;
    env.set_now(T0 + 2000);
    env.put(
        "/app",
        "s",
        &[(T0 + 1500, "user bob@example.com".to_string())],
    )
    .await;
    env.put("/skip", "s", &lines(&["user x"])).await;
    let delivered = || -> Vec<Value> {
        rec.data_messages()
            .iter()
            .flat_map(|p| p["logEvents"].as_array().unwrap().clone())
            .map(|e| e["message"].clone())
            .collect()
    };
    deliver_until(&env, || delivered().len() == 2).await;
    assert!(rec.data_messages().iter().all(|m| m["logGroup"] == "/app"));
    assert_eq!(
        delivered(),
        [json!("user old@example.com"), json!("user ***************")]
    );

    let got = env
        .ok(
            "GetLogEvents",
            json!({"logGroupName": "/app", "logStreamName": "s", "startFromHead": true}),
        )
        .await;
    assert_eq!(
        common::messages(&got),
        ["user old@example.com", "user ***************"],
        "events ingested before the policy are not masked"
    );
    let raw = env
        .ok(
            "FilterLogEvents",
            json!({"logGroupName": "/app", "unmask": true}),
        )
        .await;
    assert_eq!(
        common::messages(&raw),
        ["user old@example.com", "user bob@example.com"]
    );
}

#[tokio::test]
async fn the_background_dispatcher_delivers() {
    let (env, rec, _dir) = setup();
    env.logs.start();
    env.stream("/app", "s").await;
    subscribe(&env, "/app", "all", "", BUS).await;
    env.put("/app", "s", &lines(&["async"])).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while rec.data_messages().is_empty() {
        assert!(Instant::now() < deadline, "dispatcher did not deliver");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(rec.data_messages()[0]["logEvents"][0]["message"], "async");
}

#[tokio::test]
async fn transformers_apply_at_ingest_and_feed_subscriptions() {
    let (env, rec, _dir) = setup();
    env.stream("/app", "s").await;
    let config = json!([
        {"parseKeyValue": {"fieldDelimiter": " "}},
        {"addKeys": {"entries": [{"key": "group", "value": "@logGroupName"}]}},
        {"typeConverter": {"entries": [{"key": "ms", "type": "integer"}]}}
    ]);
    let e = env
        .err(
            "PutTransformer",
            json!({"logGroupIdentifier": "/app", "transformerConfig": [{"grok": {"match": "x"}}]}),
        )
        .await;
    assert_eq!(e.kind, "InvalidParameterException");
    env.ok(
        "PutTransformer",
        json!({"logGroupIdentifier": "/app", "transformerConfig": config}),
    )
    .await;
    let got = env
        .ok("GetTransformer", json!({"logGroupIdentifier": "/app"}))
        .await;
    assert_eq!(got["transformerConfig"], config);
    subscribe(&env, "/app", "slow", "{ $.ms > 100 }", BUS).await;
    env.put("/app", "s", &lines(&["op=get ms=250", "op=put ms=5"]))
        .await;
    let read = env
        .ok(
            "GetLogEvents",
            json!({"logGroupName": "/app", "logStreamName": "s", "startFromHead": true}),
        )
        .await;
    let stored: Vec<Value> = common::messages(&read)
        .iter()
        .map(|m| serde_json::from_str(m).unwrap())
        .collect();
    assert_eq!(stored[0], json!({"op": "get", "ms": 250, "group": "/app"}));
    deliver_until(&env, || rec.data_messages().len() == 1).await;
    let p = &rec.data_messages()[0];
    assert_eq!(p["logEvents"].as_array().unwrap().len(), 1);
    let t = env
        .ok(
            "TestTransformer",
            json!({"transformerConfig": config, "logEventMessages": ["a=1 ms=2"]}),
        )
        .await;
    let out: Value = serde_json::from_str(
        t["transformedLogs"][0]["transformedEventMessage"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(out, json!({"a": "1", "ms": 2, "group": ""}));
    env.ok("DeleteTransformer", json!({"logGroupIdentifier": "/app"}))
        .await;
    let e = env
        .err("GetTransformer", json!({"logGroupIdentifier": "/app"}))
        .await;
    assert_eq!(e.kind, "ResourceNotFoundException");
}

#[tokio::test]
async fn lookup_tables_crud() {
    let env = Env::new();
    let created = env
        .ok(
            "CreateLookupTable",
            json!({"lookupTableName": "users", "tableBody": "id,name\n1,ann\n2,bob\n"}),
        )
        .await;
    let arn = created["lookupTableArn"].as_str().unwrap().to_string();
    let e = env
        .err(
            "CreateLookupTable",
            json!({"lookupTableName": "users", "tableBody": "id\n1"}),
        )
        .await;
    assert_eq!(e.kind, "ResourceAlreadyExistsException");
    let e = env
        .err(
            "CreateLookupTable",
            json!({"lookupTableName": "bad", "tableBody": "a,b\n1"}),
        )
        .await;
    assert_eq!(e.kind, "InvalidParameterException");
    let d = env.ok("DescribeLookupTables", json!({})).await;
    assert_eq!(d["lookupTables"][0]["tableFields"], json!(["id", "name"]));
    assert_eq!(d["lookupTables"][0]["recordsCount"], 2);
    env.ok(
        "UpdateLookupTable",
        json!({"lookupTableArn": arn, "tableBody": "id,name\n3,cy\n"}),
    )
    .await;
    let g = env
        .ok("GetLookupTable", json!({"lookupTableArn": arn}))
        .await;
    assert_eq!(g["tableBody"], "id,name\n3,cy\n");
    env.ok("DeleteLookupTable", json!({"lookupTableArn": arn}))
        .await;
    let e = env
        .err("GetLookupTable", json!({"lookupTableArn": arn}))
        .await;
    assert_eq!(e.kind, "ResourceNotFoundException");
}

#[tokio::test]
async fn deleting_a_group_removes_its_policies() {
    let env = Env::new();
    env.stream("/gone", "s").await;
    env.ok(
        "PutIndexPolicy",
        json!({"logGroupIdentifier": "/gone", "policyDocument": "{\"Fields\":[\"a\"]}"}),
    )
    .await;
    env.ok(
        "PutTransformer",
        json!({"logGroupIdentifier": "/gone", "transformerConfig": [{"parseJSON": {}}]}),
    )
    .await;
    env.ok("DeleteLogGroup", json!({"logGroupName": "/gone"}))
        .await;
    env.stream("/gone", "s").await;
    let d = env
        .ok(
            "DescribeIndexPolicies",
            json!({"logGroupIdentifiers": ["/gone"]}),
        )
        .await;
    assert_eq!(d["indexPolicies"], json!([]));
    let e = env
        .err("GetTransformer", json!({"logGroupIdentifier": "/gone"}))
        .await;
    assert_eq!(e.kind, "ResourceNotFoundException");
}

#[tokio::test]
async fn every_model_operation_is_dispatched() {
    let env = Env::new();
    let model: Value = serde_json::from_str(opsloop_logs::MODEL_JSON).unwrap();
    let deliberate = ["CreateScheduledQuery", "StartLiveTail", "GetLogObject"];
    for op in model["operations"].as_object().unwrap().keys() {
        if let Err(e) = env.call(op, json!({})).await {
            if e.kind == "NotImplemented" {
                assert!(deliberate.contains(&op.as_str()), "{op} is not implemented");
            }
        }
    }
}

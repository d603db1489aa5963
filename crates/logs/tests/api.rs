//! Control plane and event API through the service: groups, streams, retention, tags,
//! PutLogEvents / GetLogEvents / FilterLogEvents, and durability across a restart.

mod common;

use common::{messages, Env, T0};
use serde_json::json;

#[tokio::test]
async fn log_group_lifecycle_filters_and_paging() {
    let env = Env::new();
    for name in ["/app/a", "/app/b", "/app/c", "/other/x", "/other/APPish"] {
        env.ok(
            "CreateLogGroup",
            json!({"logGroupName": name, "logGroupClass": "INFREQUENT_ACCESS"}),
        )
        .await;
    }
    let e = env
        .err("CreateLogGroup", json!({"logGroupName": "/app/a"}))
        .await;
    assert_eq!(e.kind, "ResourceAlreadyExistsException");

    let all = env.ok("DescribeLogGroups", json!({})).await;
    let names: Vec<&str> = all["logGroups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["logGroupName"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["/app/a", "/app/b", "/app/c", "/other/APPish", "/other/x"]
    );
    let g = &all["logGroups"][0];
    assert_eq!(g["logGroupClass"], "INFREQUENT_ACCESS");
    assert_eq!(
        g["arn"],
        "arn:aws:logs:us-east-1:123456789012:log-group:/app/a:*"
    );
    assert_eq!(
        g["logGroupArn"],
        "arn:aws:logs:us-east-1:123456789012:log-group:/app/a"
    );
    assert_eq!(g["creationTime"], T0);

    let p = env
        .ok("DescribeLogGroups", json!({"logGroupNamePrefix": "/app/"}))
        .await;
    assert_eq!(p["logGroups"].as_array().unwrap().len(), 3);
    let pat = env
        .ok("DescribeLogGroups", json!({"logGroupNamePattern": "app"}))
        .await;
    let pn: Vec<&str> = pat["logGroups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["logGroupName"].as_str().unwrap())
        .collect();
    assert_eq!(
        pn,
        ["/app/a", "/app/b", "/app/c", "/other/APPish"],
        "pattern is a case-insensitive substring"
    );
    let both = env
        .err(
            "DescribeLogGroups",
            json!({"logGroupNamePrefix": "/a", "logGroupNamePattern": "a"}),
        )
        .await;
    assert_eq!(both.kind, "InvalidParameterException");

    // paging with limit 2 visits every group exactly once
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut input = json!({"limit": 2});
        if let Some(t) = &token {
            input["nextToken"] = json!(t);
        }
        let page = env.ok("DescribeLogGroups", input).await;
        let groups = page["logGroups"].as_array().unwrap();
        assert!(groups.len() <= 2);
        seen.extend(
            groups
                .iter()
                .map(|g| g["logGroupName"].as_str().unwrap().to_string()),
        );
        match page["nextToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, names);

    env.ok("DeleteLogGroup", json!({"logGroupName": "/app/b"}))
        .await;
    let e = env
        .err("DeleteLogGroup", json!({"logGroupName": "/app/b"}))
        .await;
    assert_eq!(e.kind, "ResourceNotFoundException");
    assert_eq!(e.message, "The specified log group does not exist.");
    assert_eq!(
        env.ok("DescribeLogGroups", json!({"logGroupNamePrefix": "/app/"}))
            .await["logGroups"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn retention_values_and_tags() {
    let env = Env::new();
    env.ok(
        "CreateLogGroup",
        json!({"logGroupName": "g", "tags": {"team": "core"}}),
    )
    .await;
    let e = env
        .err(
            "PutRetentionPolicy",
            json!({"logGroupName": "g", "retentionInDays": 2}),
        )
        .await;
    assert_eq!(e.kind, "InvalidParameterException");
    env.ok(
        "PutRetentionPolicy",
        json!({"logGroupName": "g", "retentionInDays": 7}),
    )
    .await;
    let d = env
        .ok("DescribeLogGroups", json!({"logGroupNamePrefix": "g"}))
        .await;
    assert_eq!(d["logGroups"][0]["retentionInDays"], 7);
    env.ok("DeleteRetentionPolicy", json!({"logGroupName": "g"}))
        .await;
    let d = env
        .ok("DescribeLogGroups", json!({"logGroupNamePrefix": "g"}))
        .await;
    assert!(d["logGroups"][0].get("retentionInDays").is_none());

    env.ok(
        "TagLogGroup",
        json!({"logGroupName": "g", "tags": {"env": "prod"}}),
    )
    .await;
    assert_eq!(
        env.ok("ListTagsLogGroup", json!({"logGroupName": "g"}))
            .await["tags"],
        json!({"team": "core", "env": "prod"})
    );
    env.ok(
        "UntagLogGroup",
        json!({"logGroupName": "g", "tags": ["team"]}),
    )
    .await;
    let arn = "arn:aws:logs:us-east-1:123456789012:log-group:g";
    assert_eq!(
        env.ok("ListTagsForResource", json!({"resourceArn": arn}))
            .await["tags"],
        json!({"env": "prod"})
    );
    env.ok(
        "TagResource",
        json!({"resourceArn": format!("{arn}:*"), "tags": {"a": "1"}}),
    )
    .await;
    env.ok(
        "UntagResource",
        json!({"resourceArn": arn, "tagKeys": ["env"]}),
    )
    .await;
    assert_eq!(
        env.ok("ListTagsLogGroup", json!({"logGroupName": "g"}))
            .await["tags"],
        json!({"a": "1"})
    );
    let e = env.err("TagResource", json!({"resourceArn": "arn:aws:logs:us-east-1:123456789012:log-group:nope", "tags": {"a": "1"}})).await;
    assert_eq!(e.kind, "ResourceNotFoundException");
    let e = env
        .err(
            "TagResource",
            json!({"resourceArn": arn, "tags": {"aws:x": "1"}}),
        )
        .await;
    assert_eq!(e.kind, "InvalidParameterException");
}

#[tokio::test]
async fn streams_describe_order_and_stats() {
    let env = Env::new();
    for s in ["b", "a", "c"] {
        env.stream("g", s).await;
    }
    let e = env
        .err(
            "CreateLogStream",
            json!({"logGroupName": "g", "logStreamName": "a"}),
        )
        .await;
    assert_eq!(e.kind, "ResourceAlreadyExistsException");
    let e = env
        .err(
            "CreateLogStream",
            json!({"logGroupName": "g", "logStreamName": "x:y"}),
        )
        .await;
    assert_eq!(e.kind, "InvalidParameterException");
    env.put("g", "a", &[(T0 - 3000, "one".into())]).await;
    env.put("g", "c", &[(T0 - 5000, "two".into())]).await;
    env.put(
        "g",
        "b",
        &[(T0 - 1000, "three".into()), (T0 - 500, "four".into())],
    )
    .await;

    let by_name = env
        .ok("DescribeLogStreams", json!({"logGroupName": "g"}))
        .await;
    let names: Vec<&str> = by_name["logStreams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["logStreamName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b", "c"]);
    let b = &by_name["logStreams"][1];
    assert_eq!(b["firstEventTimestamp"], T0 - 1000);
    assert_eq!(b["lastEventTimestamp"], T0 - 500);
    assert_eq!(b["lastIngestionTime"], T0);

    let by_time = env
        .ok(
            "DescribeLogStreams",
            json!({"logGroupName": "g", "orderBy": "LastEventTime", "descending": true}),
        )
        .await;
    let names: Vec<&str> = by_time["logStreams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["logStreamName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["b", "a", "c"]);
    let e = env
        .err(
            "DescribeLogStreams",
            json!({"logGroupName": "g", "orderBy": "LastEventTime", "logStreamNamePrefix": "a"}),
        )
        .await;
    assert_eq!(e.kind, "InvalidParameterException");

    let page1 = env
        .ok(
            "DescribeLogStreams",
            json!({"logGroupName": "g", "limit": 2}),
        )
        .await;
    assert_eq!(page1["logStreams"].as_array().unwrap().len(), 2);
    let page2 = env
        .ok(
            "DescribeLogStreams",
            json!({"logGroupName": "g", "limit": 2, "nextToken": page1["nextToken"]}),
        )
        .await;
    assert_eq!(page2["logStreams"][0]["logStreamName"], "c");
    assert!(page2.get("nextToken").is_none());

    env.ok(
        "DeleteLogStream",
        json!({"logGroupName": "g", "logStreamName": "a"}),
    )
    .await;
    let e = env
        .err(
            "DeleteLogStream",
            json!({"logGroupName": "g", "logStreamName": "a"}),
        )
        .await;
    assert_eq!(e.message, "The specified log stream does not exist.");
    let f = env
        .ok("FilterLogEvents", json!({"logGroupName": "g"}))
        .await;
    assert_eq!(
        messages(&f),
        ["two", "three", "four"],
        "a deleted stream's events are gone"
    );
}

#[tokio::test]
async fn put_log_events_limits_and_rejections() {
    let env = Env::new();
    env.stream("g", "s").await;
    let e = env.err("PutLogEvents", json!({"logGroupName": "g", "logStreamName": "nope", "logEvents": [{"timestamp": T0, "message": "x"}]})).await;
    assert_eq!(e.kind, "ResourceNotFoundException");
    let day = 86_400_000;
    let r = env
        .put(
            "g",
            "s",
            &[
                (T0 - 15 * day, "old".into()),
                (T0 - 1, "ok1".into()),
                (T0, "ok2".into()),
                (T0 + 3 * 3_600_000, "new".into()),
            ],
        )
        .await;
    assert_eq!(
        r["rejectedLogEventsInfo"],
        json!({"tooOldLogEventEndIndex": 1, "tooNewLogEventStartIndex": 3})
    );
    assert!(r["nextSequenceToken"].as_str().is_some());
    let got = env
        .ok(
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "startFromHead": true}),
        )
        .await;
    assert_eq!(messages(&got), ["ok1", "ok2"]);
    // sequence tokens are accepted and ignored
    env.ok("PutLogEvents", json!({"logGroupName": "g", "logStreamName": "s", "sequenceToken": "garbage", "logEvents": [{"timestamp": T0, "message": "ok3"}]})).await;
    let e = env.err("PutLogEvents", json!({"logGroupName": "g", "logStreamName": "s", "logEvents": [{"timestamp": T0, "message": "b"}, {"timestamp": T0 - 1, "message": "a"}]})).await;
    assert!(e.message.contains("chronological"), "{}", e.message);
    env.ok(
        "PutRetentionPolicy",
        json!({"logGroupName": "g", "retentionInDays": 1}),
    )
    .await;
    let r = env
        .put(
            "g",
            "s",
            &[(T0 - 2 * day, "expired".into()), (T0, "fresh".into())],
        )
        .await;
    assert_eq!(
        r["rejectedLogEventsInfo"],
        json!({"expiredLogEventEndIndex": 1})
    );
}

#[tokio::test]
async fn get_log_events_tokens_both_directions() {
    let env = Env::new();
    env.stream("g", "s").await;
    env.stream("g", "other").await;
    let events: Vec<(i64, String)> = (0..10)
        .map(|i| (T0 - 10_000 + i * 1000, format!("e{i}")))
        .collect();
    env.put("g", "s", &events).await;
    env.put("g", "other", &[(T0 - 5000, "noise".into())]).await;

    // from the tail: the newest `limit` events, ascending
    let tail = env
        .ok(
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "limit": 3}),
        )
        .await;
    assert_eq!(messages(&tail), ["e7", "e8", "e9"]);
    // forward from the tail: nothing more, and the same token comes back
    let fwd = env.ok("GetLogEvents", json!({"logGroupName": "g", "logStreamName": "s", "limit": 3, "nextToken": tail["nextForwardToken"]})).await;
    assert!(messages(&fwd).is_empty());
    assert_eq!(fwd["nextForwardToken"], tail["nextForwardToken"]);
    // backward pages
    let b1 = env.ok("GetLogEvents", json!({"logGroupName": "g", "logStreamName": "s", "limit": 3, "nextToken": tail["nextBackwardToken"]})).await;
    assert_eq!(messages(&b1), ["e4", "e5", "e6"]);
    let b2 = env.ok("GetLogEvents", json!({"logGroupName": "g", "logStreamName": "s", "limit": 4, "nextToken": b1["nextBackwardToken"]})).await;
    assert_eq!(messages(&b2), ["e0", "e1", "e2", "e3"]);
    let b3 = env.ok("GetLogEvents", json!({"logGroupName": "g", "logStreamName": "s", "limit": 4, "nextToken": b2["nextBackwardToken"]})).await;
    assert!(messages(&b3).is_empty());
    assert_eq!(b3["nextBackwardToken"], b2["nextBackwardToken"]);

    // from the head, forward through everything
    let mut all = Vec::new();
    let mut page = env
        .ok(
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "limit": 4, "startFromHead": true}),
        )
        .await;
    loop {
        let m = messages(&page);
        if m.is_empty() {
            break;
        }
        all.extend(m);
        page = env.ok("GetLogEvents", json!({"logGroupName": "g", "logStreamName": "s", "limit": 4, "nextToken": page["nextForwardToken"]})).await;
    }
    assert_eq!(all, (0..10).map(|i| format!("e{i}")).collect::<Vec<_>>());

    // time window: start inclusive, end exclusive
    let w = env.ok("GetLogEvents", json!({"logGroupName": "g", "logStreamName": "s", "startFromHead": true, "startTime": T0 - 8000, "endTime": T0 - 5000})).await;
    assert_eq!(messages(&w), ["e2", "e3", "e4"]);
    let e = env
        .err(
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "nextToken": "f/bogus"}),
        )
        .await;
    assert_eq!(e.kind, "InvalidParameterException");
}

#[tokio::test]
async fn filter_log_events_patterns_streams_and_paging() {
    let env = Env::new();
    env.stream("g", "web-1").await;
    env.stream("g", "web-2").await;
    env.stream("g", "db").await;
    env.put(
        "g",
        "web-1",
        &[
            (T0 - 9000, "ERROR disk full".into()),
            (T0 - 7000, r#"{"status": 500, "path": "/a"}"#.into()),
        ],
    )
    .await;
    env.put(
        "g",
        "web-2",
        &[
            (T0 - 8000, "INFO fine".into()),
            (T0 - 6000, r#"{"status": 200, "path": "/b"}"#.into()),
        ],
    )
    .await;
    env.put("g", "db", &[(T0 - 8500, "ERROR lock timeout".into())])
        .await;

    let all = env
        .ok("FilterLogEvents", json!({"logGroupName": "g"}))
        .await;
    assert_eq!(messages(&all).len(), 5);
    let streams: Vec<&str> = all["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["logStreamName"].as_str().unwrap())
        .collect();
    assert_eq!(
        streams,
        ["web-1", "db", "web-2", "web-1", "web-2"],
        "interleaved by timestamp"
    );

    let errs = env
        .ok(
            "FilterLogEvents",
            json!({"logGroupName": "g", "filterPattern": "ERROR -timeout"}),
        )
        .await;
    assert_eq!(messages(&errs), ["ERROR disk full"]);
    let json_hits = env
        .ok(
            "FilterLogEvents",
            json!({"logGroupName": "g", "filterPattern": "{ $.status >= 500 }"}),
        )
        .await;
    assert_eq!(messages(&json_hits), [r#"{"status": 500, "path": "/a"}"#]);
    let prefixed = env.ok("FilterLogEvents", json!({"logGroupName": "g", "logStreamNamePrefix": "web-", "filterPattern": "?ERROR ?INFO"})).await;
    assert_eq!(messages(&prefixed), ["ERROR disk full", "INFO fine"]);
    let named = env
        .ok(
            "FilterLogEvents",
            json!({"logGroupName": "g", "logStreamNames": ["db", "web-2"], "startTime": T0 - 8000}),
        )
        .await;
    assert_eq!(
        messages(&named),
        ["INFO fine", r#"{"status": 200, "path": "/b"}"#]
    );
    let e = env
        .err(
            "FilterLogEvents",
            json!({"logGroupName": "g", "logStreamNames": ["db"], "logStreamNamePrefix": "w"}),
        )
        .await;
    assert_eq!(e.kind, "InvalidParameterException");
    let e = env
        .err(
            "FilterLogEvents",
            json!({"logGroupName": "g", "filterPattern": "{ $.status = }"}),
        )
        .await;
    assert_eq!(e.kind, "InvalidParameterException");

    let mut got = Vec::new();
    let mut input = json!({"logGroupName": "g", "limit": 2});
    loop {
        let page = env.ok("FilterLogEvents", input.clone()).await;
        assert!(page["events"].as_array().unwrap().len() <= 2);
        got.extend(messages(&page));
        match page.get("nextToken") {
            Some(t) => input["nextToken"] = t.clone(),
            None => break,
        }
    }
    assert_eq!(got, messages(&all));
}

#[tokio::test]
async fn events_survive_restart_and_checkpoint() {
    let mut env = Env::new();
    env.stream("g", "s").await;
    env.put("g", "s", &[(T0 - 2000, "before restart".into())])
        .await;
    // a second batch goes to a later hour partition
    env.put("g", "s", &[(T0 + 3_600_000 - 1, "later hour".into())])
        .await;
    env.reopen();
    env.put("g", "s", &[(T0 - 1000, "after restart".into())])
        .await;
    env.logs.store().checkpoint().await.unwrap();
    env.put("g", "s", &[(T0 - 500, "only in wal".into())]).await;
    env.reopen();
    let got = env
        .ok(
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "startFromHead": true}),
        )
        .await;
    assert_eq!(
        messages(&got),
        [
            "before restart",
            "after restart",
            "only in wal",
            "later hour"
        ]
    );
    let d = env
        .ok("DescribeLogStreams", json!({"logGroupName": "g"}))
        .await;
    assert_eq!(d["logStreams"][0]["lastEventTimestamp"], T0 + 3_600_000 - 1);
    assert!(
        env.ok("DescribeLogGroups", json!({})).await["logGroups"][0]["storedBytes"]
            .as_u64()
            .unwrap()
            > 0
    );

    // a deleted group's data does not come back after a restart
    env.ok("DeleteLogGroup", json!({"logGroupName": "g"})).await;
    env.reopen();
    env.stream("g", "s").await;
    let got = env
        .ok("FilterLogEvents", json!({"logGroupName": "g"}))
        .await;
    assert!(messages(&got).is_empty());
}

#[tokio::test]
async fn retention_task_deletes_old_partitions() {
    let env = Env::new();
    env.stream("g", "s").await;
    env.stream("keep", "s").await;
    let day = 86_400_000;
    env.put("g", "s", &[(T0 - 3 * day, "three days old".into())])
        .await;
    env.put("g", "s", &[(T0 - 1000, "fresh".into())]).await;
    env.put("keep", "s", &[(T0 - 3 * day, "kept".into())]).await;
    env.logs.store().checkpoint().await.unwrap();
    env.ok(
        "PutRetentionPolicy",
        json!({"logGroupName": "g", "retentionInDays": 1}),
    )
    .await;
    let hour = (T0 - 3 * day).div_euclid(3_600_000) * 3_600_000;
    let dirs_of_hour = || {
        walk(env.dir.path())
            .into_iter()
            .filter(|p| p.ends_with(hour.to_string()))
            .count()
    };
    assert_eq!(
        dirs_of_hour(),
        2,
        "both groups have a partition for that hour"
    );
    assert_eq!(env.logs.enforce_retention().await.unwrap(), 1);
    let got = env
        .ok("FilterLogEvents", json!({"logGroupName": "g"}))
        .await;
    assert_eq!(messages(&got), ["fresh"]);
    let kept = env
        .ok("FilterLogEvents", json!({"logGroupName": "keep"}))
        .await;
    assert_eq!(messages(&kept), ["kept"]);
    // the partition directory of the expired hour is gone from disk
    assert_eq!(
        dirs_of_hour(),
        1,
        "only the other group's partition of that hour remains"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.push(p.clone());
            out.extend(walk(&p));
        }
    }
    out
}

#[tokio::test]
async fn reset_after_a_control_store_wipe_leaves_no_stale_events() {
    let env = Env::new();
    env.stream("g", "s").await;
    env.put("g", "s", &[(T0 - 1000, "old life".into())]).await;
    env.control.wipe().unwrap();
    // without reset, a new group must still not inherit the old group's id and data
    env.stream("fresh", "s").await;
    assert!(messages(
        &env.ok("FilterLogEvents", json!({"logGroupName": "fresh"}))
            .await
    )
    .is_empty());
    env.logs.reset().await.unwrap();
    env.stream("g", "s").await;
    assert!(messages(
        &env.ok("FilterLogEvents", json!({"logGroupName": "g"}))
            .await
    )
    .is_empty());
    assert!(
        env.logs.store().group_ids().is_empty(),
        "reset dropped every group's data"
    );
}

#[tokio::test]
async fn list_log_groups_and_deletion_protection() {
    let env = Env::new();
    for (name, class) in [
        ("/svc/api", "STANDARD"),
        ("/svc/web", "INFREQUENT_ACCESS"),
        ("/batch/x", "STANDARD"),
    ] {
        env.ok(
            "CreateLogGroup",
            json!({"logGroupName": name, "logGroupClass": class}),
        )
        .await;
    }
    let l = env
        .ok("ListLogGroups", json!({"logGroupNamePattern": "^/svc/"}))
        .await;
    let names: Vec<&str> = l["logGroups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["logGroupName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["/svc/api", "/svc/web"]);
    assert_eq!(
        l["logGroups"][1]["logGroupArn"],
        "arn:aws:logs:us-east-1:123456789012:log-group:/svc/web"
    );
    let l = env
        .ok(
            "ListLogGroups",
            json!({"logGroupClass": "STANDARD", "limit": 1}),
        )
        .await;
    assert_eq!(l["logGroups"][0]["logGroupName"], "/batch/x");
    let l2 = env
        .ok(
            "ListLogGroups",
            json!({"logGroupClass": "STANDARD", "limit": 1, "nextToken": l["nextToken"]}),
        )
        .await;
    assert_eq!(l2["logGroups"][0]["logGroupName"], "/svc/api");
    assert!(l2.get("nextToken").is_none());
    assert_eq!(
        env.err("ListLogGroups", json!({"logGroupNamePattern": "("}))
            .await
            .kind,
        "InvalidParameterException"
    );

    env.ok(
        "PutLogGroupDeletionProtection",
        json!({"logGroupIdentifier": "/svc/api", "deletionProtectionEnabled": true}),
    )
    .await;
    let e = env
        .err("DeleteLogGroup", json!({"logGroupName": "/svc/api"}))
        .await;
    assert_eq!(e.kind, "OperationAbortedException");
    env.ok("PutLogGroupDeletionProtection", json!({"logGroupIdentifier": "arn:aws:logs:us-east-1:123456789012:log-group:/svc/api:*", "deletionProtectionEnabled": false})).await;
    env.ok("DeleteLogGroup", json!({"logGroupName": "/svc/api"}))
        .await;
}

#[tokio::test]
async fn reset_is_durable_across_a_crash() {
    let mut env = Env::new();
    env.stream("g", "s").await;
    env.put("g", "s", &[(T0 - 1000, "before reset".into())])
        .await;
    env.control.wipe().unwrap();
    env.logs.reset().await.unwrap();
    env.stream("g", "s").await;
    env.put("g", "s", &[(T0 - 500, "after reset".into())]).await;
    // crash: no checkpoint, the WAL is replayed on open
    env.logs.store().abandon();
    env.reopen();
    let got = env
        .ok("FilterLogEvents", json!({"logGroupName": "g"}))
        .await;
    assert_eq!(messages(&got), ["after reset"]);
}

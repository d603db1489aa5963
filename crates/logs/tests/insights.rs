//! Logs Insights through the service: the reference queries with results computed independently
//! from the generated data, query lifecycle operations, definitions, fields and records.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{Env, T0};
use opsloop_logs::insights::eval::format_time;
use serde_json::{json, Value};

/// Run a query and poll until it finishes (30 s deadline); returns the GetQueryResults answer.
async fn query(env: &Env, groups: &[&str], q: &str, start_ms: i64, end_ms: i64) -> Value {
    let id = env
        .ok("StartQuery", json!({"logGroupNames": groups, "queryString": q, "startTime": start_ms / 1000, "endTime": end_ms / 1000}))
        .await["queryId"]
        .as_str()
        .unwrap()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = env.ok("GetQueryResults", json!({"queryId": id})).await;
        match r["status"].as_str().unwrap() {
            "Scheduled" | "Running" => {}
            "Complete" => return r,
            other => panic!("query ended {other}: {r}"),
        }
        assert!(Instant::now() < deadline, "query did not finish in time");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Rows as field → value maps.
fn rows(r: &Value) -> Vec<BTreeMap<String, String>> {
    r["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    (
                        c["field"].as_str().unwrap().to_string(),
                        c["value"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn errors_sorted_newest_first_with_limit() {
    let env = Env::new();
    env.stream("app", "s1").await;
    env.stream("app", "s2").await;
    let mut all: Vec<(i64, String)> = Vec::new();
    for (k, stream) in ["s1", "s2"].iter().enumerate() {
        let events: Vec<(i64, String)> = (0..200)
            .map(|i| {
                let ts = T0 - 3_000_000 + i * 10_000 + k as i64 * 3;
                let level = if i % 3 == 0 { "ERROR" } else { "INFO" };
                (ts, format!("{level} request {i} on {stream}"))
            })
            .collect();
        env.put("app", stream, &events).await;
        all.extend(events);
    }
    let q = "fields @timestamp, @message | filter @message like /ERROR/ | sort @timestamp desc | limit 100";
    let r = query(&env, &["app"], q, T0 - 3_600_000, T0).await;
    let mut expected: Vec<&(i64, String)> =
        all.iter().filter(|(_, m)| m.contains("ERROR")).collect();
    expected.sort_by_key(|e| std::cmp::Reverse(e.0));
    expected.truncate(100);
    let got = rows(&r);
    assert_eq!(got.len(), 100);
    for (row, (ts, msg)) in got.iter().zip(&expected) {
        assert_eq!(row["@timestamp"], format_time(*ts));
        assert_eq!(&row["@message"], msg);
        assert!(row.contains_key("@ptr"));
        assert_eq!(row.len(), 3, "only the listed fields and @ptr: {row:?}");
    }
    let stats = &r["statistics"];
    assert_eq!(stats["recordsScanned"], 400.0);
    assert_eq!(
        stats["recordsMatched"],
        all.iter().filter(|(_, m)| m.contains("ERROR")).count() as f64
    );
    let bytes: usize = all.iter().map(|(_, m)| m.len()).sum();
    assert_eq!(stats["bytesScanned"], bytes as f64);

    // the @ptr leads back to the record
    let rec = env
        .ok("GetLogRecord", json!({"logRecordPointer": got[0]["@ptr"]}))
        .await;
    assert_eq!(
        rec["logRecord"]["@message"].as_str().unwrap(),
        expected[0].1
    );
    assert_eq!(rec["logRecord"]["@logStream"], "s2");
}

#[tokio::test]
async fn lambda_durations_by_five_minute_bins() {
    let env = Env::new();
    env.stream("/aws/lambda/fn", "2026/11/21/[$LATEST]abc")
        .await;
    let start = T0 - 20 * 60_000;
    let mut events = Vec::new();
    let mut expected: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for i in 0..80i64 {
        let ts = start + i * 15_000;
        let duration = 10.0 + ((i * 37) % 50) as f64 + 0.25;
        events.push((ts, format!("START RequestId: r{i} Version: $LATEST")));
        events.push((ts, format!("REPORT RequestId: r{i}\tDuration: {duration} ms\tBilled Duration: {} ms\tMemory Size: 128 MB\tMax Memory Used: 64 MB\t", duration.ceil())));
        expected
            .entry(ts.div_euclid(300_000) * 300_000)
            .or_default()
            .push(duration);
    }
    env.put("/aws/lambda/fn", "2026/11/21/[$LATEST]abc", &events)
        .await;
    let q = "fields @timestamp, @duration | stats avg(@duration), max(@duration), min(@duration) by bin(5m)";
    let r = query(&env, &["/aws/lambda/fn"], q, start, T0).await;
    let got = rows(&r);
    assert_eq!(got.len(), expected.len());
    for (row, (bin, durations)) in got.iter().zip(&expected) {
        assert_eq!(row["bin(5m)"], format_time(*bin));
        let avg = durations.iter().sum::<f64>() / durations.len() as f64;
        let max = durations.iter().cloned().fold(f64::MIN, f64::max);
        let min = durations.iter().cloned().fold(f64::MAX, f64::min);
        let num = |k: &str| row[k].parse::<f64>().unwrap();
        assert!(
            (num("avg(@duration)") - avg).abs() < 1e-9,
            "{row:?} vs {avg}"
        );
        assert_eq!(num("max(@duration)"), max);
        assert_eq!(num("min(@duration)"), min);
    }
    // START lines have no @duration: avg counts only REPORT lines
    assert_eq!(r["statistics"]["recordsMatched"], 160.0);
}

#[tokio::test]
async fn parse_users_and_count_sorted() {
    let env = Env::new();
    env.stream("auth", "s").await;
    let users = [("alice", 7), ("bob", 4), ("carol", 1), ("dave", 2)];
    let mut events = Vec::new();
    let mut t = T0 - 600_000;
    for (u, n) in users {
        for k in 0..n {
            t += 1000;
            events.push((t, format!("login ok user={u} session={k}")));
        }
    }
    events.push((t + 1, "healthcheck without a user".to_string()));
    env.put("auth", "s", &events).await;
    let q = r"fields @message | parse @message /user=(?<user>\S+)/ | stats count(*) by user | sort count desc";
    let got = rows(&query(&env, &["auth"], q, T0 - 3_600_000, T0).await);
    let mut expected: Vec<(String, i64)> = users.iter().map(|(u, n)| (u.to_string(), *n)).collect();
    expected.sort_by_key(|e| std::cmp::Reverse(e.1));
    // the line without a user forms its own (empty-user) group, counted once
    let with_user: Vec<(String, i64)> = got
        .iter()
        .filter(|r| r.contains_key("user"))
        .map(|r| (r["user"].clone(), r["count(*)"].parse().unwrap()))
        .collect();
    assert_eq!(with_user, expected);
    assert_eq!(got.len(), expected.len() + 1);
    assert_eq!(got.last().unwrap()["count(*)"], "1");
}

#[tokio::test]
async fn filters_functions_and_json_fields() {
    let env = Env::new();
    env.stream("api", "s").await;
    let events: Vec<(i64, String)> = (0..50)
        .map(|i| (T0 - 100_000 + i * 1000, json!({"req": {"path": format!("/p{}", i % 5), "ms": i}, "ip": format!("10.0.{}.1", i % 3)}).to_string()))
        .collect();
    env.put("api", "s", &events).await;
    let q = "filter req.ms >= 10 and isIpInSubnet(ip, '10.0.1.0/24') | stats count(*) as n, sum(req.ms) as total, pct(req.ms, 50) as p50 by req.path | sort req.path asc";
    let got = rows(&query(&env, &["api"], q, T0 - 3_600_000, T0).await);
    let mut expected: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for i in 0..50i64 {
        if i >= 10 && i % 3 == 1 {
            expected.entry(format!("/p{}", i % 5)).or_default().push(i);
        }
    }
    assert_eq!(got.len(), expected.len());
    for (row, (path, ms)) in got.iter().zip(&expected) {
        assert_eq!(&row["req.path"], path);
        assert_eq!(row["n"], ms.len().to_string());
        assert_eq!(row["total"], ms.iter().sum::<i64>().to_string());
        let rank = (0.5 * ms.len() as f64).ceil() as usize;
        assert_eq!(row["p50"], ms[rank - 1].to_string());
    }
    let q = "fields strlen(req.path) as len, toupper(req.path) as up | filter req.ms = 7 | display len, up";
    let mut got = rows(&query(&env, &["api"], q, T0 - 3_600_000, T0).await);
    assert_eq!(got.len(), 1);
    assert!(
        got[0].remove("@ptr").is_some(),
        "non-aggregate rows carry @ptr"
    );
    assert_eq!(
        got,
        vec![BTreeMap::from([
            ("len".to_string(), "3".to_string()),
            ("up".to_string(), "/P2".to_string())
        ])]
    );
    let q = "fields req.path | dedup req.path | sort req.path desc | limit 2";
    let got = rows(&query(&env, &["api"], q, T0 - 3_600_000, T0).await);
    let paths: Vec<&str> = got.iter().map(|r| r["req.path"].as_str()).collect();
    assert_eq!(paths, ["/p4", "/p3"]);

    let fields = env
        .ok(
            "GetLogGroupFields",
            json!({"logGroupName": "api", "time": T0 / 1000}),
        )
        .await;
    let names: Vec<&str> = fields["logGroupFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    for want in ["@timestamp", "@message", "req.path", "req.ms", "ip"] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
}

#[tokio::test]
async fn query_validation_and_lifecycle() {
    let env = Env::new();
    env.stream("g", "s").await;
    env.put("g", "s", &[(T0 - 1000, "hello".into())]).await;
    let e = env.err("StartQuery", json!({"logGroupName": "g", "queryString": "fields @message | filter", "startTime": 0, "endTime": T0 / 1000})).await;
    assert_eq!(e.kind, "MalformedQueryException");
    assert!(e.message.contains("position"), "{}", e.message);
    let e = env.err("StartQuery", json!({"logGroupName": "nope", "queryString": "fields @message", "startTime": 0, "endTime": 1})).await;
    assert_eq!(e.kind, "ResourceNotFoundException");
    let many: Vec<String> = (0..51).map(|i| format!("g{i}")).collect();
    let e = env.err("StartQuery", json!({"logGroupNames": many, "queryString": "fields @message", "startTime": 0, "endTime": 1})).await;
    assert_eq!(e.kind, "InvalidParameterException");
    let e = env.err("StartQuery", json!({"logGroupName": "g", "queryString": "fields @message", "startTime": 10, "endTime": 1})).await;
    assert_eq!(e.kind, "InvalidParameterException");
    let e = env.err("GetQueryResults", json!({"queryId": "nope"})).await;
    assert_eq!(e.kind, "ResourceNotFoundException");

    let arn = "arn:aws:logs:us-east-1:123456789012:log-group:g:*";
    let id = env
        .ok("StartQuery", json!({"logGroupIdentifiers": [arn], "queryString": "fields @message", "startTime": (T0 - 60_000) / 1000, "endTime": T0 / 1000}))
        .await["queryId"]
        .as_str()
        .unwrap()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    let r = loop {
        let r = env.ok("GetQueryResults", json!({"queryId": id})).await;
        if r["status"] == "Complete" {
            break r;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(rows(&r)[0]["@message"], "hello");
    assert_eq!(
        env.ok("StopQuery", json!({"queryId": id})).await["success"],
        false
    );
    let groups = env
        .ok("ListLogGroupsForQuery", json!({"queryId": id}))
        .await;
    assert_eq!(
        groups["logGroupIdentifiers"],
        json!(["arn:aws:logs:us-east-1:123456789012:log-group:g"])
    );
    let d = env
        .ok(
            "DescribeQueries",
            json!({"logGroupName": "g", "status": "Complete"}),
        )
        .await;
    assert_eq!(d["queries"][0]["queryId"], id.as_str());
    assert_eq!(d["queries"][0]["queryString"], "fields @message");

    // query definitions
    let def = env.ok("PutQueryDefinition", json!({"name": "errors", "queryString": "filter @message like /ERROR/", "logGroupNames": ["g"]})).await;
    let def_id = def["queryDefinitionId"].as_str().unwrap().to_string();
    env.ok("PutQueryDefinition", json!({"name": "errors-v2", "queryDefinitionId": def_id, "queryString": "filter @message like /ERR/"})).await;
    let e = env
        .err(
            "PutQueryDefinition",
            json!({"name": "x", "queryString": "sort"}),
        )
        .await;
    assert_eq!(e.kind, "MalformedQueryException");
    let list = env
        .ok(
            "DescribeQueryDefinitions",
            json!({"queryDefinitionNamePrefix": "errors"}),
        )
        .await;
    assert_eq!(list["queryDefinitions"].as_array().unwrap().len(), 1);
    assert_eq!(list["queryDefinitions"][0]["name"], "errors-v2");
    assert_eq!(
        env.ok(
            "DeleteQueryDefinition",
            json!({"queryDefinitionId": def_id})
        )
        .await["success"],
        true
    );
    assert_eq!(
        env.err(
            "DeleteQueryDefinition",
            json!({"queryDefinitionId": def_id})
        )
        .await
        .kind,
        "ResourceNotFoundException"
    );
}

/// Start a query and return its id.
async fn start(env: &Env, group: &str, q: &str) -> String {
    env.ok("StartQuery", json!({"logGroupName": group, "queryString": q, "startTime": (T0 - 3_600_000) / 1000, "endTime": T0 / 1000}))
        .await["queryId"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Poll until the query is no longer scheduled or running (30 s deadline).
async fn settle(env: &Env, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = env.ok("GetQueryResults", json!({"queryId": id})).await;
        if !matches!(r["status"].as_str(), Some("Scheduled" | "Running")) {
            return r;
        }
        assert!(Instant::now() < deadline, "query did not finish in time");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn query_state_survives_a_restart() {
    let mut env = Env::new();
    env.stream("g", "s").await;
    let events: Vec<(i64, String)> = (0..30)
        .map(|i| (T0 - 60_000 + i * 1000, format!("user=u{} op=read", i % 3)))
        .collect();
    env.put("g", "s", &events).await;
    let q = "parse @message /user=(?<user>\\S+)/ | stats count(*) as n by user | stats sum(n) as total, count(*) as users";
    let id = start(&env, "g", q).await;
    let before = settle(&env, &id).await;
    assert_eq!(before["status"], "Complete");
    assert_eq!(
        rows(&before),
        vec![BTreeMap::from([
            ("total".to_string(), "30".to_string()),
            ("users".to_string(), "3".to_string())
        ])]
    );
    assert_eq!(before["statistics"]["recordsMatched"], 30.0);
    env.reopen();
    let after = env.ok("GetQueryResults", json!({"queryId": id})).await;
    assert_eq!(after, before, "results and statistics are the stored ones");
    let d = env.ok("DescribeQueries", json!({})).await;
    assert_eq!(d["queries"][0]["queryId"], id.as_str());
    assert_eq!(d["queries"][0]["status"], "Complete");
    assert_eq!(d["queries"][0]["queryString"], q);
    assert!(d["queries"][0]["queryDuration"].is_i64());
}

#[tokio::test]
async fn describe_queries_filters_pages_and_expires() {
    let env = Env::new();
    env.stream("a", "s").await;
    env.stream("b", "s").await;
    env.put("a", "s", &[(T0 - 1000, "x".into())]).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        env.set_now(T0 + i);
        let id = start(&env, if i % 2 == 0 { "a" } else { "b" }, "fields @message").await;
        settle(&env, &id).await;
        ids.push(id);
    }
    // Newest first, two at a time, over every page.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut input = json!({"maxResults": 2});
        if let Some(t) = &token {
            input["nextToken"] = json!(t);
        }
        let page = env.ok("DescribeQueries", input).await;
        let batch = page["queries"].as_array().unwrap();
        assert!(batch.len() <= 2);
        seen.extend(
            batch
                .iter()
                .map(|q| q["queryId"].as_str().unwrap().to_string()),
        );
        match page["nextToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);
    let on_b = env
        .ok("DescribeQueries", json!({"logGroupName": "b"}))
        .await;
    let b_ids: Vec<&str> = on_b["queries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["queryId"].as_str().unwrap())
        .collect();
    assert_eq!(b_ids, [ids[3].as_str(), ids[1].as_str()]);
    let none = env
        .ok("DescribeQueries", json!({"status": "Running"}))
        .await;
    assert_eq!(none["queries"], json!([]));
    let e = env
        .err("DescribeQueries", json!({"nextToken": "garbage"}))
        .await;
    assert_eq!(e.kind, "InvalidParameterException");

    // Eight days later a new query prunes the old ones: their results are gone.
    env.set_now(T0 + 8 * 86_400_000);
    let fresh = start(&env, "a", "fields @message").await;
    settle(&env, &fresh).await;
    let e = env.err("GetQueryResults", json!({"queryId": ids[0]})).await;
    assert_eq!(e.kind, "ResourceNotFoundException");
    let all = env.ok("DescribeQueries", json!({})).await;
    assert_eq!(all["queries"].as_array().unwrap().len(), 1);
}

//! Throughput report (prints, never asserts): PutLogEvents ingest in MB/s of raw message bytes
//! through the service (8 concurrent writers, 1 MB batches; no HTTP/JSON layer), and scan speed
//! in GB/s of raw text for `filter @message like /ERROR/` and a FilterLogEvents term pattern.
//! Meaningful with `cargo nextest run --release -p opsloop-logs --test perf`; debug builds use a
//! small data set only so the test stays quick.

mod common;

use std::time::{Duration, Instant};

use common::{Env, T0};
use serde_json::{json, Value};

fn batch(seed: usize, n: usize, size: usize, ts: i64) -> Value {
    let events: Vec<Value> = (0..n)
        .map(|i| {
            let level = if (seed + i).is_multiple_of(97) {
                "ERROR"
            } else {
                "INFO"
            };
            let mut m = format!(
                "{level} req={} user=u{} path=/api/v1/items/{} took={}ms ",
                seed * n + i,
                i % 50,
                i % 1000,
                i % 300
            );
            while m.len() < size {
                m.push_str("lorem ipsum dolor sit amet ");
            }
            m.truncate(size);
            json!({"timestamp": ts, "message": m})
        })
        .collect();
    json!({"logGroupName": "perf", "logStreamName": "s", "logEvents": events})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_ingest_and_scan_throughput() {
    let env = Env::new();
    env.stream("perf", "s").await;
    let release = !cfg!(debug_assertions);
    let (batches, per_batch, size) = if release {
        (400, 5000, 180)
    } else {
        (8, 1000, 180)
    };
    let prepared: Vec<Value> = (0..batches)
        .map(|b| batch(b, per_batch, size, T0 - 3_600_000 + (b as i64) * 1000))
        .collect();
    let raw_bytes: usize = prepared.len() * per_batch * size;
    let logs = env.logs.clone();
    let chunks: Vec<Vec<Value>> = prepared
        .chunks(batches.div_ceil(8))
        .map(|c| c.to_vec())
        .collect();
    drop(prepared);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for chunk in chunks {
        let logs = logs.clone();
        tasks.push(tokio::spawn(async move {
            for input in chunk {
                let ctx = opsloop_core::RequestContext::internal(
                    common::ACCOUNT,
                    common::REGION,
                    "PutLogEvents",
                );
                logs.handle(&ctx, input).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let ingest = started.elapsed();
    println!(
        "logs perf: ingest {} events, {:.1} MB raw in {:.2?} = {:.1} MB/s (release: {release})",
        batches * per_batch,
        raw_bytes as f64 / 1e6,
        ingest,
        raw_bytes as f64 / 1e6 / ingest.as_secs_f64()
    );
    let started = Instant::now();
    env.logs.store().checkpoint().await.unwrap();
    println!(
        "logs perf: checkpoint to segments in {:.2?}",
        started.elapsed()
    );

    let id = env
        .ok("StartQuery", json!({"logGroupName": "perf", "queryString": "filter @message like /ERROR/ | stats count(*)", "startTime": (T0 - 7_200_000) / 1000, "endTime": T0 / 1000}))
        .await["queryId"]
        .as_str()
        .unwrap()
        .to_string();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(600);
    let r = loop {
        let r = env.ok("GetQueryResults", json!({"queryId": id})).await;
        if r["status"] != "Running" && r["status"] != "Scheduled" {
            break r;
        }
        if Instant::now() > deadline {
            println!("logs perf: query still running after 600 s");
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let took = started.elapsed();
    let scanned = r["statistics"]["bytesScanned"].as_f64().unwrap_or(0.0);
    println!(
        "logs perf: insights like /ERROR/ scanned {:.1} MB in {:.2?} = {:.2} GB/s ({} matched, status {})",
        scanned / 1e6,
        took,
        scanned / 1e9 / took.as_secs_f64(),
        r["statistics"]["recordsMatched"],
        r["status"]
    );

    let started = Instant::now();
    let f = env
        .ok(
            "FilterLogEvents",
            json!({"logGroupName": "perf", "filterPattern": "\"NOSUCHTERM\""}),
        )
        .await;
    let took = started.elapsed();
    println!(
        "logs perf: FilterLogEvents miss-all scan of {:.1} MB in {:.2?} = {:.2} GB/s ({} events)",
        raw_bytes as f64 / 1e6,
        took,
        raw_bytes as f64 / 1e9 / took.as_secs_f64(),
        f["events"].as_array().map_or(0, Vec::len)
    );
}

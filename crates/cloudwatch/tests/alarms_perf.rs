//! A measurement, printed and never asserted on timing: the per-alarm cost of a clock tick over
//! many alarms on the real metric store, and the latency from a breaching PutMetricData to the
//! alarm's ALARM state on the arrival path (p50/p99). 10,000 alarms in release builds
//! (`cargo nextest run --release -p opsloop-cloudwatch --test alarms_perf --no-capture`), 1,000 in
//! debug builds. Correctness is asserted: every alarm reaches the state its data implies.

mod alarm_support;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use alarm_support::*;
use opsloop_cloudwatch::CloudWatch;
use opsloop_core::{RequestContext, Service};
use opsloop_store::SqliteStore;
use opsloop_tsdb::{Tsdb, TsdbOptions};
use serde_json::{json, Value};

const MIN: i64 = 60_000;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarm_evaluation_cost() {
    let n: usize = if cfg!(debug_assertions) {
        1_000
    } else {
        10_000
    };
    let dir = tempfile::tempdir().unwrap();
    let tsdb = Tsdb::open(dir.path(), TsdbOptions::default()).unwrap();
    let clock = Arc::new(AtomicI64::new(base_time()));
    let c = clock.clone();
    let svc = CloudWatch::new(tsdb, Arc::new(SqliteStore::memory().unwrap()))
        .with_clock(Arc::new(move || c.load(Ordering::SeqCst)));
    let call = |op: &str, input: Value| {
        let ctx = RequestContext::internal(ACCOUNT, REGION, op);
        let svc = &svc;
        async move { svc.call(&ctx, input).await.unwrap() }
    };
    let t0 = clock.load(Ordering::SeqCst);

    let started = Instant::now();
    for i in 0..n {
        call(
            "PutMetricAlarm",
            json!({"AlarmName": format!("a{i}"), "Namespace": "Perf", "MetricName": format!("m{i}"),
                   "Statistic": "Average", "Period": 60, "EvaluationPeriods": 3, "DatapointsToAlarm": 1,
                   "Threshold": 100.0, "ComparisonOperator": "GreaterThanThreshold"}),
        )
        .await;
    }
    let create = started.elapsed();
    // Three minutes of calm data for every metric, 1000 metrics per request.
    for minute in 0..3 {
        for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
            let data: Vec<Value> = chunk
                .iter()
                .map(|i| {
                    json!({"MetricName": format!("m{i}"), "Value": 1.0,
                                "Timestamp": (t0 + minute * MIN + 1000) as f64 / 1000.0})
                })
                .collect();
            call(
                "PutMetricData",
                json!({"Namespace": "Perf", "MetricData": data}),
            )
            .await;
        }
    }
    // The arrival-triggered queue holds every alarm now; drain it (not measured).
    svc.alarms().run_pending().await;

    // A tick where every alarm transitions (INSUFFICIENT_DATA -> OK: one durable batch each) ...
    clock.store(t0 + 3 * MIN + 1000, Ordering::SeqCst);
    let started = Instant::now();
    let transitions = svc.alarms().tick_at(t0 + 3 * MIN + 1000);
    let with_commits = started.elapsed();
    assert_eq!(transitions, n);
    // ... and a tick where nothing changes: the pure evaluation cost.
    clock.store(t0 + 4 * MIN + 1000, Ordering::SeqCst);
    let started = Instant::now();
    assert_eq!(svc.alarms().tick_at(t0 + 4 * MIN + 1000), 0);
    let steady = started.elapsed();

    // Arrival path: one breaching datapoint, then the evaluation it triggers.
    let samples = 200.min(n);
    let mut latencies = Vec::with_capacity(samples);
    for i in 0..samples {
        let started = Instant::now();
        call(
            "PutMetricData",
            json!({"Namespace": "Perf", "MetricData": [{"MetricName": format!("m{i}"), "Value": 500.0,
                   "Timestamp": (t0 + 4 * MIN + 2000) as f64 / 1000.0}]}),
        )
        .await;
        svc.alarms().run_pending().await;
        latencies.push(started.elapsed().as_secs_f64() * 1e3);
    }
    let alarming = call(
        "DescribeAlarms",
        json!({"StateValue": "ALARM", "MaxRecords": 100}),
    )
    .await;
    let alarming = alarming["MetricAlarms"].as_array().unwrap().len();
    assert_eq!(
        alarming,
        samples.min(100),
        "every breached alarm is in ALARM"
    );
    latencies.sort_by(f64::total_cmp);

    let per = |d: std::time::Duration| d.as_secs_f64() * 1e6 / n as f64;
    println!(
        "alarms={n} build={} create={:.1}us/alarm tick_with_transitions={:.1}us/alarm tick_steady={:.1}us/alarm \
         breach_to_alarm_p50={:.3}ms p99={:.3}ms (in-process, excluding the wire layer)",
        if cfg!(debug_assertions) { "debug" } else { "release" },
        per(create),
        per(with_commits),
        per(steady),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    );
}

//! The `opsloop logs tail` / `query` helpers against a live service.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Env, ACCOUNT, REGION, T0};
use opsloop_logs::cli::{self, TailOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_prints_and_follows_without_duplicates() {
    let env = Env::new();
    env.stream("g", "s").await;
    env.put(
        "g",
        "s",
        &[(T0 - 2000, "first".into()), (T0 - 1000, "second".into())],
    )
    .await;
    let opts = TailOptions {
        group: "g".into(),
        since_ms: T0 - 1500,
        filter_pattern: None,
        stream_prefix: None,
        follow: true,
        poll_interval: Duration::from_millis(1),
    };
    let logs = env.logs.clone();
    let polls = AtomicUsize::new(0);
    let mut out: Vec<u8> = Vec::new();
    // the stop callback adds an event after the first pass, then stops after the third
    let writer = {
        let logs = logs.clone();
        move || {
            let n = polls.fetch_add(1, Ordering::SeqCst);
            if n == 0 {
                let ctx = opsloop_core::RequestContext::internal(ACCOUNT, REGION, "PutLogEvents");
                let input = serde_json::json!({"logGroupName": "g", "logStreamName": "s", "logEvents": [{"timestamp": T0 - 1000, "message": "third"}]});
                futures_lite_block(logs.handle(&ctx, input)).unwrap();
            }
            n >= 2
        }
    };
    let printed = cli::tail(&logs, ACCOUNT, REGION, &opts, &mut out, &writer)
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(printed, 2);
    assert_eq!(
        lines,
        [
            format!(
                "{} s second",
                opsloop_logs::insights::eval::format_time(T0 - 1000)
            ),
            format!(
                "{} s third",
                opsloop_logs::insights::eval::format_time(T0 - 1000)
            ),
        ]
    );
}

/// Drive a future to completion from a synchronous callback running inside the runtime.
fn futures_lite_block<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_renders_a_table() {
    let env = Env::new();
    env.stream("g", "s").await;
    env.put(
        "g",
        "s",
        &[
            (T0 - 3000, "user=ann".into()),
            (T0 - 2000, "user=bob".into()),
            (T0 - 1000, "user=ann".into()),
        ],
    )
    .await;
    let table = cli::query(
        &env.logs,
        ACCOUNT,
        REGION,
        &["g".to_string()],
        r"parse @message /user=(?<user>\w+)/ | stats count(*) as n by user | sort n desc",
        (T0 - 60_000) / 1000,
        T0 / 1000,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert_eq!(table.columns, ["user", "n"]);
    assert_eq!(table.rows, [["ann", "2"], ["bob", "1"]]);
    let text = cli::render_table(&table);
    assert_eq!(text.lines().next().unwrap(), "user | n");
    assert!(text.contains("ann  | 2"), "{text}");
    assert!(
        text.ends_with("2 rows, 3 records matched, 3 scanned (Complete)\n"),
        "{text}"
    );
}

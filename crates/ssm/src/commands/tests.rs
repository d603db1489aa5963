//! Run Command unit tests: registration and node keys, SendCommand → GetMessages → SendReply →
//! GetCommandInvocation, cancellation, delivery timeouts, and a node acting only as itself.

use std::sync::Arc;

use opsloop_core::{Directory, RequestContext, Service, Value};
use serde_json::json;

use super::*;
use crate::activations;

struct Fixture {
    ssm: Arc<Ssm>,
    agent: AgentService,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(opsloop_store::SqliteStore::memory().unwrap());
    let ssm = Arc::new(Ssm::open(dir.path(), store, Directory::new()).unwrap());
    let agent = AgentService::new(&ssm);
    Fixture {
        ssm,
        agent,
        _dir: dir,
    }
}

fn ctx(op: &str, key: &str) -> RequestContext {
    // A node key's requests arrive in the node's real account (what lookup_key answers).
    let mut c = RequestContext::internal("123456789012", "us-east-1", op);
    c.access_key_id = Some(key.to_string());
    c
}

fn scope() -> Scope {
    Scope::new("123456789012", "us-east-1")
}

/// Register a node through a fresh activation tagged `env=<env>`: (instance id, access key id).
async fn node(f: &Fixture, env: &str) -> (String, String) {
    let a = activations::create_activation(
        f.ssm.inner(),
        &scope(),
        &json!({"IamRole": "r", "DefaultInstanceName": "web", "Tags": [{"Key": "env", "Value": env}]}),
    )
    .unwrap();
    let id = a["ActivationId"].as_str().unwrap();
    let code = a["ActivationCode"].as_str().unwrap();
    let (secret, account) = lookup_key(&*f.ssm.inner().store, id).unwrap();
    assert_eq!(secret, activations::hash_code(code));
    assert_eq!(account, "123456789012");
    let bad = f
        .agent
        .call(
            &ctx("RegisterManagedInstance", "AKIAOTHER"),
            json!({"ActivationId": id, "ActivationCode": code}),
        )
        .await
        .unwrap_err();
    assert_eq!(bad.kind, "AccessDeniedException");
    let r = f
        .agent
        .call(
            &ctx("RegisterManagedInstance", id),
            json!({"ActivationId": id, "ActivationCode": code, "PlatformType": "Linux"}),
        )
        .await
        .unwrap();
    let key = r["AccessKeyId"].as_str().unwrap().to_string();
    let (secret, account) = lookup_key(&*f.ssm.inner().store, &key).unwrap();
    assert_eq!(secret, r["SecretAccessKey"].as_str().unwrap());
    assert_eq!(
        account, "123456789012",
        "node keys act in the node's account (restricted by the credential store)"
    );
    assert_eq!(r["Name"], "web");
    (r["InstanceId"].as_str().unwrap().to_string(), key)
}

async fn messages(f: &Fixture, id: &str, key: &str) -> Vec<Value> {
    f.agent
        .call(
            &ctx("GetMessages", key),
            json!({"InstanceId": id, "WaitSeconds": 0}),
        )
        .await
        .unwrap()["Messages"]
        .as_array()
        .unwrap()
        .clone()
}

async fn reply(f: &Fixture, id: &str, key: &str, body: Value) -> Value {
    let mut body = body;
    body["InstanceId"] = json!(id);
    f.agent.call(&ctx("SendReply", key), body).await.unwrap()
}

fn get_inv(f: &Fixture, cmd: &str, id: &str) -> Value {
    get_command_invocation(
        &f.ssm,
        &scope(),
        &json!({"CommandId": cmd, "InstanceId": id}),
    )
    .unwrap()
}

#[tokio::test]
async fn a_command_runs_on_the_tagged_node_and_reports_its_output() {
    let f = fixture();
    let (web, web_key) = node(&f, "prod").await;
    let (db, db_key) = node(&f, "dev").await;
    let sent = send_command(
        &f.ssm,
        &scope(),
        &json!({"DocumentName": "AWS-RunShellScript",
                "Targets": [{"Key": "tag:env", "Values": ["prod"]}],
                "Parameters": {"commands": ["echo Hello World"]}}),
    )
    .unwrap();
    let cmd = sent["Command"]["CommandId"].as_str().unwrap().to_string();
    assert_eq!(sent["Command"]["Status"], "Pending");
    assert_eq!(sent["Command"]["TargetCount"], 1);
    assert!(messages(&f, &db, &db_key).await.is_empty());
    // A node cannot fetch another node's work.
    let denied = f
        .agent
        .call(
            &ctx("GetMessages", &db_key),
            json!({"InstanceId": web, "WaitSeconds": 0}),
        )
        .await
        .unwrap_err();
    assert_eq!(denied.kind, "AccessDeniedException");
    let msgs = messages(&f, &web, &web_key).await;
    assert_eq!(msgs.len(), 1);
    let payload: Value = serde_json::from_str(msgs[0]["Payload"].as_str().unwrap()).unwrap();
    assert_eq!(
        payload["Plugins"][0]["runCommand"],
        json!(["echo Hello World"])
    );
    assert_eq!(get_inv(&f, &cmd, &web)["Status"], "InProgress");
    assert!(
        messages(&f, &web, &web_key).await.is_empty(),
        "delivered once"
    );
    let r = reply(
        &f,
        &web,
        &web_key,
        json!({"CommandId": cmd, "PluginName": "runShellScript",
        "StandardOutput": "Hello World\n"}),
    )
    .await;
    assert_eq!(r["Cancel"], false);
    reply(
        &f,
        &web,
        &web_key,
        json!({"CommandId": cmd, "Final": true, "Status": "Success",
        "ResponseCode": 0}),
    )
    .await;
    // A repeated final reply (agent re-delivery after a lost answer) changes nothing.
    reply(
        &f,
        &web,
        &web_key,
        json!({"CommandId": cmd, "Final": true, "Status": "Failed",
        "ResponseCode": 3, "StandardOutput": "again"}),
    )
    .await;
    let inv = get_inv(&f, &cmd, &web);
    assert_eq!(inv["Status"], "Success");
    assert_eq!(inv["ResponseCode"], 0);
    assert_eq!(inv["StandardOutputContent"], "Hello World\n");
    let list = send::list_commands(&f.ssm, &scope(), &json!({"CommandId": cmd})).unwrap();
    assert_eq!(list["Commands"][0]["Status"], "Success");
    assert_eq!(list["Commands"][0]["CompletedCount"], 1);
    let invs = send::list_command_invocations(
        &f.ssm,
        &scope(),
        &json!({"CommandId": cmd, "Details": true}),
    )
    .unwrap();
    assert_eq!(
        invs["CommandInvocations"][0]["CommandPlugins"][0]["Output"],
        "Hello World\n"
    );
    // Events were queued for EventBridge: Pending, InProgress, Success for invocation and command.
    let queued =
        scan_rows::<crate::bus::OutEvent>(&*f.ssm.inner().store, crate::bus::TABLE, "").unwrap();
    let kinds: Vec<(String, String)> = queued
        .iter()
        .map(|(_, e)| {
            (
                e.detail_type.clone(),
                e.detail["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(kinds.contains(&(
        "EC2 Command Status-change Notification".into(),
        "Success".into()
    )));
    assert!(kinds.contains(&(
        "EC2 Command Invocation Status-change Notification".into(),
        "InProgress".into()
    )));
}

#[tokio::test]
async fn bad_requests_change_nothing() {
    let f = fixture();
    let (web, _) = node(&f, "prod").await;
    let sc = scope();
    let e = send_command(
        &f.ssm,
        &sc,
        &json!({"DocumentName": "AWS-RunShellScript", "InstanceIds": [web]}),
    )
    .unwrap_err();
    assert_eq!(e.kind, "InvalidParameters");
    let e = send_command(
        &f.ssm,
        &sc,
        &json!({"DocumentName": "Nope", "InstanceIds": [web]}),
    )
    .unwrap_err();
    assert_eq!(e.kind, "InvalidDocument");
    let e = send_command(
        &f.ssm,
        &sc,
        &json!({"DocumentName": "AWS-RunShellScript", "InstanceIds": ["mi-00000000000000000"],
                "Parameters": {"commands": ["x"]}}),
    )
    .unwrap_err();
    assert_eq!(e.kind, "InvalidInstanceId");
    let e = get_command_invocation(
        &f.ssm,
        &sc,
        &json!({"CommandId": "nope", "InstanceId": web}),
    )
    .unwrap_err();
    assert_eq!(e.kind, "InvalidCommandId");
    let cmds = send::list_commands(&f.ssm, &sc, &json!({})).unwrap();
    assert_eq!(cmds["Commands"], json!([]));
}

#[tokio::test]
async fn cancel_and_timeouts() {
    let f = fixture();
    let (web, key) = node(&f, "prod").await;
    let sc = scope();
    let send = |cmds: &str| {
        send_command(
            &f.ssm,
            &sc,
            &json!({"DocumentName": "AWS-RunShellScript", "InstanceIds": [web],
                    "Parameters": {"commands": [cmds]}, "TimeoutSeconds": 30}),
        )
        .unwrap()["Command"]["CommandId"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // Pending → cancelled at once.
    let a = send("sleep 100");
    send::cancel_command(&f.ssm, &sc, &json!({"CommandId": a})).unwrap();
    assert_eq!(get_inv(&f, &a, &web)["Status"], "Cancelled");
    assert!(messages(&f, &web, &key).await.is_empty());
    // Running → Cancelling; the node's next reply learns it and reports Cancelled.
    let b = send("sleep 100");
    assert_eq!(messages(&f, &web, &key).await.len(), 1);
    send::cancel_command(&f.ssm, &sc, &json!({"CommandId": b})).unwrap();
    assert_eq!(get_inv(&f, &b, &web)["Status"], "Cancelling");
    let r = reply(&f, &web, &key, json!({"CommandId": b})).await;
    assert_eq!(r["Cancel"], true);
    reply(
        &f,
        &web,
        &key,
        json!({"CommandId": b, "Final": true, "Status": "Cancelled", "ResponseCode": -1}),
    )
    .await;
    assert_eq!(get_inv(&f, &b, &web)["Status"], "Cancelled");
    // Never picked up → Delivery Timed Out after TimeoutSeconds.
    let c = send("true");
    sweep(&f.ssm, now() + 31.0).unwrap();
    let inv = get_inv(&f, &c, &web);
    assert_eq!(
        (inv["Status"].as_str(), inv["StatusDetails"].as_str()),
        (Some("TimedOut"), Some("DeliveryTimedOut"))
    );
    // Picked up but silent past its execution timeout (3600 s by default) → Execution Timed Out.
    let d = send("true");
    assert_eq!(messages(&f, &web, &key).await.len(), 1);
    sweep(&f.ssm, now() + 3600.0 + EXECUTION_GRACE_S + 1.0).unwrap();
    assert_eq!(get_inv(&f, &d, &web)["StatusDetails"], "ExecutionTimedOut");
}

#[tokio::test]
async fn long_poll_wakes_on_send() {
    let f = Arc::new(fixture());
    let (web, key) = node(&f, "prod").await;
    let f2 = f.clone();
    let (web2, key2) = (web.clone(), key.clone());
    let poll = tokio::spawn(async move {
        f2.agent
            .call(
                &ctx("GetMessages", &key2),
                json!({"InstanceId": web2, "WaitSeconds": 20}),
            )
            .await
            .unwrap()
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let started = std::time::Instant::now();
    send_command(
        &f.ssm,
        &scope(),
        &json!({"DocumentName": "AWS-RunShellScript", "InstanceIds": [web], "Parameters": {"commands": ["true"]}}),
    )
    .unwrap();
    let got = poll.await.unwrap();
    assert_eq!(got["Messages"].as_array().unwrap().len(), 1);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[tokio::test]
async fn a_newer_long_poll_supersedes_an_older_one() {
    // An agent killed mid-poll leaves its GetMessages waiting on the server; the restarted agent's
    // poll must get the next command, not the dead connection.
    let f = Arc::new(fixture());
    let (web, key) = node(&f, "prod").await;
    let poll = |f: Arc<Fixture>, web: String, key: String| {
        tokio::spawn(async move {
            f.agent
                .call(
                    &ctx("GetMessages", &key),
                    json!({"InstanceId": web, "WaitSeconds": 20}),
                )
                .await
                .unwrap()
        })
    };
    let old = poll(f.clone(), web.clone(), key.clone());
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let new = poll(f.clone(), web.clone(), key.clone());
    let got = tokio::time::timeout(std::time::Duration::from_secs(5), old)
        .await
        .expect("the older poll ended when the newer one arrived")
        .unwrap();
    assert_eq!(got["Messages"], json!([]));
    send_command(
        &f.ssm,
        &scope(),
        &json!({"DocumentName": "AWS-RunShellScript", "InstanceIds": [web], "Parameters": {"commands": ["true"]}}),
    )
    .unwrap();
    let got = tokio::time::timeout(std::time::Duration::from_secs(5), new)
        .await
        .expect("the newer poll got the command")
        .unwrap();
    assert_eq!(got["Messages"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_stopping_server_ends_long_polls_at_once() {
    let f = Arc::new(fixture());
    let (web, key) = node(&f, "prod").await;
    let f2 = f.clone();
    let poll = tokio::spawn(async move {
        f2.agent
            .call(
                &ctx("GetMessages", &key),
                json!({"InstanceId": web, "WaitSeconds": 20}),
            )
            .await
            .unwrap()
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let started = std::time::Instant::now();
    f.ssm.commands().begin_stop();
    let got = tokio::time::timeout(std::time::Duration::from_secs(5), poll)
        .await
        .expect("the poll ended")
        .unwrap();
    assert_eq!(got["Messages"], json!([]));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[tokio::test]
async fn max_concurrency_limits_running_copies() {
    let f = fixture();
    let (a, ka) = node(&f, "prod").await;
    let (b, kb) = node(&f, "prod").await;
    let sent = send_command(
        &f.ssm,
        &scope(),
        &json!({"DocumentName": "AWS-RunShellScript", "MaxConcurrency": "1",
                "Targets": [{"Key": "tag-key", "Values": ["env"]}],
                "Parameters": {"commands": ["true"]}}),
    )
    .unwrap();
    let cmd = sent["Command"]["CommandId"].as_str().unwrap().to_string();
    assert_eq!(sent["Command"]["TargetCount"], 2);
    assert_eq!(messages(&f, &a, &ka).await.len(), 1);
    assert!(messages(&f, &b, &kb).await.is_empty(), "second copy waits");
    reply(
        &f,
        &a,
        &ka,
        json!({"CommandId": cmd, "Final": true, "Status": "Success", "ResponseCode": 0}),
    )
    .await;
    assert_eq!(messages(&f, &b, &kb).await.len(), 1);
}

#[tokio::test]
async fn max_errors_cancels_the_targets_not_yet_sent() {
    let f = fixture();
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(node(&f, "prod").await);
    }
    let send = |max_errors: &str| {
        send_command(
            &f.ssm,
            &scope(),
            &json!({"DocumentName": "AWS-RunShellScript", "MaxConcurrency": "1", "MaxErrors": max_errors,
                    "Targets": [{"Key": "tag:env", "Values": ["prod"]}],
                    "Parameters": {"commands": ["false"]}}),
        )
        .unwrap()["Command"]["CommandId"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // Runs one copy at a time, failing each; returns the nodes that got it.
    let drive = |cmd: String| {
        let f = &f;
        let nodes = &nodes;
        async move {
            let mut ran = Vec::new();
            for _ in 0..3 {
                for (id, key) in nodes {
                    if !messages(f, id, key).await.is_empty() {
                        reply(f, id, key, json!({"CommandId": cmd, "Final": true, "Status": "Failed", "ResponseCode": 1,
                            "PluginResults": [{"Name": "runShellScript", "Status": "Failed", "ResponseCode": 1,
                                               "StandardOutput": "boom"}]}))
                        .await;
                        ran.push(id.clone());
                    }
                }
            }
            ran
        }
    };
    let cmd = send("1");
    let ran = drive(cmd.clone()).await;
    assert_eq!(
        ran.len(),
        2,
        "the second error exceeds MaxErrors 1: the third node is never sent it"
    );
    let c =
        &send::list_commands(&f.ssm, &scope(), &json!({"CommandId": cmd})).unwrap()["Commands"][0];
    assert_eq!(
        (c["Status"].as_str(), c["StatusDetails"].as_str()),
        (Some("Failed"), Some("Failed"))
    );
    assert_eq!(
        (c["ErrorCount"].as_u64(), c["CompletedCount"].as_u64()),
        (Some(2), Some(3))
    );
    let skipped = nodes.iter().find(|(id, _)| !ran.contains(id)).unwrap();
    let inv = get_inv(&f, &cmd, &skipped.0);
    assert_eq!(inv["Status"], "Cancelled");
    let failed = get_command_invocation(
        &f.ssm,
        &scope(),
        &json!({"CommandId": cmd, "InstanceId": ran[0], "PluginName": "runShellScript"}),
    )
    .unwrap();
    assert_eq!(
        (
            failed["Status"].as_str(),
            failed["StandardOutputContent"].as_str()
        ),
        (Some("Failed"), Some("boom"))
    );
    // 34% of 3 tolerates one error too; 0% none: only the first node runs it.
    assert_eq!(drive(send("34%")).await.len(), 2);
    assert_eq!(drive(send("0%")).await.len(), 1);
    assert_eq!(drive(send("2")).await.len(), 3);
}

#[tokio::test]
async fn silent_nodes_are_marked_connection_lost_until_they_ping() {
    let f = fixture();
    let (web, key) = node(&f, "prod").await;
    let status = || {
        activations::describe_instance_information(f.ssm.inner(), &scope(), &json!({})).unwrap()
            ["InstanceInformationList"][0]["PingStatus"]
            .as_str()
            .unwrap()
            .to_string()
    };
    sweep(&f.ssm, now() + 10.0).unwrap();
    assert_eq!(status(), "Online");
    *f.ssm.commands().lost_after_s.lock() = 5.0;
    sweep(&f.ssm, now() + 10.0).unwrap();
    assert_eq!(status(), "ConnectionLost");
    f.agent
        .call(
            &ctx("UpdateInstanceInformation", &key),
            json!({"InstanceId": web, "AgentStatus": "Active"}),
        )
        .await
        .unwrap();
    assert_eq!(status(), "Online");
}

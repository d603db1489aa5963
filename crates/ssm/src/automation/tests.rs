//! Unit tests of the Automation engine: branch operators, variable resolution and parameter
//! validation, durations, and step control flow on a real executor over an in-memory store.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::vars::{self, choice_matches};
use super::*;

fn no_ssm(name: &str) -> Result<String, String> {
    if name == "/app/color" {
        Ok("blue".into())
    } else {
        Err(format!("Parameter {name} not found."))
    }
}

#[test]
fn branch_operators() {
    let t = |c: Value| choice_matches(&c).unwrap();
    assert!(t(json!({"Variable": "abc", "StringEquals": "abc"})));
    assert!(!t(json!({"Variable": "abc", "StringEquals": "ABC"})));
    assert!(t(json!({"Variable": "abc", "EqualsIgnoreCase": "ABC"})));
    assert!(t(json!({"Variable": "abcdef", "StartsWith": "abc"})));
    assert!(t(json!({"Variable": "abcdef", "EndsWith": "def"})));
    assert!(t(json!({"Variable": "abcdef", "Contains": "cd"})));
    assert!(t(json!({"Variable": ["a", "b"], "Contains": "b"})));
    assert!(t(json!({"Variable": 3, "NumericEquals": 3})));
    assert!(t(json!({"Variable": "4", "NumericGreater": 3})));
    assert!(t(json!({"Variable": 2, "NumericLesser": 3})));
    assert!(t(json!({"Variable": 3, "NumericGreaterOrEquals": 3})));
    assert!(t(json!({"Variable": 3, "NumericLesserOrEquals": 3})));
    assert!(!t(json!({"Variable": 4, "NumericLesserOrEquals": 3})));
    assert!(t(json!({"Variable": true, "BooleanEquals": true})));
    assert!(t(json!({"Variable": "false", "BooleanEquals": false})));
    assert!(t(
        json!({"And": [{"Variable": 1, "NumericEquals": 1}, {"Variable": "x", "StringEquals": "x"}]})
    ));
    assert!(!t(
        json!({"And": [{"Variable": 1, "NumericEquals": 1}, {"Variable": "x", "StringEquals": "y"}]})
    ));
    assert!(t(
        json!({"Or": [{"Variable": 1, "NumericEquals": 2}, {"Variable": "x", "StringEquals": "x"}]})
    ));
    assert!(t(json!({"Not": {"Variable": "x", "StringEquals": "y"}})));
    assert!(choice_matches(&json!({"Variable": "abc", "NumericEquals": 1})).is_err());
}

#[test]
fn references_resolve_with_their_types() {
    let mut v = BTreeMap::new();
    v.insert("Count".to_string(), json!(3));
    v.insert("Names".to_string(), json!(["a", "b"]));
    v.insert("step1.Out".to_string(), json!("hello"));
    for (k, x) in vars::builtins("id-1", "Doc", "123456789012", "eu-west-1", 0.0) {
        v.insert(k, x);
    }
    let r = |x: Value| vars::resolve(&x, &v, &no_ssm).unwrap();
    assert_eq!(r(json!("{{ Count }}")), json!(3));
    assert_eq!(r(json!("{{Names}}")), json!(["a", "b"]));
    assert_eq!(
        r(json!("say {{ step1.Out }} x{{Count}}")),
        json!("say hello x3")
    );
    assert_eq!(
        r(json!({"k": ["{{ automation:EXECUTION_ID }}"]})),
        json!({"k": ["id-1"]})
    );
    assert_eq!(
        r(json!("{{global:REGION}}/{{global:ACCOUNT_ID}}")),
        json!("eu-west-1/123456789012")
    );
    assert_eq!(
        r(json!("{{global:DATE_TIME}}")),
        json!("1970-01-01_00.00.00")
    );
    assert_eq!(r(json!("{{global:DATE}}")), json!("1970-01-01"));
    assert_eq!(r(json!("{{ ssm:/app/color }}")), json!("blue"));
    assert!(vars::resolve(&json!("{{ nope.Out }}"), &v, &no_ssm).is_err());
    assert!(vars::resolve(&json!("{{ ssm:/missing }}"), &v, &no_ssm).is_err());
}

#[test]
fn parameters_are_typed_and_checked() {
    let content = json!({"parameters": {
        "Name": {"type": "String", "allowedPattern": "^[a-z]+$"},
        "Size": {"type": "Integer", "default": 2},
        "Flag": {"type": "Boolean", "default": false},
        "Color": {"type": "String", "allowedValues": ["red", "blue"], "default": "red"},
        "List": {"type": "StringList", "default": ["x"]},
        "Map": {"type": "StringMap", "default": {"a": "b"}},
        "Maps": {"type": "MapList", "default": [{"a": 1}]},
    }});
    let given = |pairs: &[(&str, &[&str])]| -> BTreeMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect()
    };
    let (wire, typed) =
        vars::check_parameters(&content, &given(&[("Name", &["abc"]), ("Size", &["5"])])).unwrap();
    assert_eq!(typed["Size"], json!(5));
    assert_eq!(typed["Flag"], json!(false));
    assert_eq!(typed["Color"], json!("red"));
    assert_eq!(typed["List"], json!(["x"]));
    assert_eq!(typed["Map"], json!({"a": "b"}));
    assert_eq!(wire["Name"], vec!["abc".to_string()]);
    let e = |g| vars::check_parameters(&content, &g).unwrap_err().kind;
    assert_eq!(
        e(given(&[])),
        "InvalidAutomationExecutionParametersException"
    );
    assert_eq!(
        e(given(&[("Name", &["ABC"])])),
        "InvalidAutomationExecutionParametersException"
    );
    assert_eq!(
        e(given(&[("Name", &["a"]), ("Size", &["x"])])),
        "InvalidAutomationExecutionParametersException"
    );
    assert_eq!(
        e(given(&[("Name", &["a"]), ("Color", &["green"])])),
        "InvalidAutomationExecutionParametersException"
    );
    assert_eq!(
        e(given(&[("Name", &["a"]), ("Other", &["1"])])),
        "InvalidAutomationExecutionParametersException"
    );
    assert_eq!(
        e(given(&[("Name", &["a"]), ("Flag", &["maybe"])])),
        "InvalidAutomationExecutionParametersException"
    );
}

#[test]
fn durations_selectors_and_types() {
    assert_eq!(vars::parse_duration("PT0S"), Some(0.0));
    assert_eq!(vars::parse_duration("PT1M30S"), Some(90.0));
    assert_eq!(vars::parse_duration("P1DT1H"), Some(90000.0));
    assert_eq!(vars::parse_duration("10"), None);
    assert_eq!(vars::parse_timestamp("1970-01-01T00:01:00Z"), Some(60.0));
    let doc = json!({"Payload": {"a": [{"b": 1}, {"b": 2}], "s": "x"}});
    assert_eq!(vars::select(&doc, "$.Payload.s"), Some(json!("x")));
    assert_eq!(vars::select(&doc, "$.Payload.a[1].b"), Some(json!(2)));
    assert_eq!(vars::select(&doc, "$.Payload.a[*].b"), Some(json!([1, 2])));
    assert_eq!(vars::convert(json!("7"), "Integer").unwrap(), json!(7));
    assert_eq!(vars::convert(json!(7), "String").unwrap(), json!("7"));
    assert_eq!(
        vars::convert(json!([1, "a"]), "StringList").unwrap(),
        json!(["1", "a"])
    );
    assert!(vars::convert(json!("x"), "Boolean").is_err());
}

async fn service() -> (Arc<Ssm>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn opsloop_store::ControlStore> =
        Arc::new(opsloop_store::SqliteStore::memory().unwrap());
    let ssm = Arc::new(Ssm::open(dir.path(), store, opsloop_core::Directory::new()).unwrap());
    ssm.start().unwrap();
    (ssm, dir)
}

fn scope() -> Scope {
    Scope::new("123456789012", "us-east-1")
}

fn create(ssm: &Ssm, name: &str, content: Value) {
    documents::create_document(
        ssm.inner(),
        &scope(),
        &json!({"Name": name, "Content": content.to_string(), "DocumentType": "Automation", "DocumentFormat": "JSON"}),
    )
    .unwrap();
}

async fn wait_end(ssm: &Ssm, id: &str) -> Execution {
    for _ in 0..500 {
        let ex = model::load(ssm.inner(), &scope(), id).unwrap();
        if ex.is_terminal() {
            return ex;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("execution {id} did not end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_flow_branch_on_failure_and_outputs() {
    let (ssm, _dir) = service().await;
    create(
        &ssm,
        "Flow",
        json!({
            "schemaVersion": "0.3",
            "parameters": {"Mode": {"type": "String", "default": "b"}},
            "outputs": ["recover.CurrentIteration"],
            "mainSteps": [
                {"name": "pick", "action": "aws:branch", "inputs": {
                    "Choices": [{"NextStep": "boom", "Variable": "{{ Mode }}", "StringEquals": "b"}],
                    "Default": "skipped"}},
                {"name": "skipped", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}, "isEnd": true},
                {"name": "boom", "action": "aws:executeAwsApi", "maxAttempts": 2, "isCritical": false,
                 "onFailure": "step:recover", "inputs": {"Service": "ssm", "Api": "GetParameter", "Name": "/x"}},
                {"name": "never", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}},
                {"name": "recover", "action": "aws:loop", "inputs": {"Iterators": ["a", "b", "c"], "Steps": [
                    {"name": "inner", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}}
                ]}, "isEnd": true}
            ]
        }),
    );
    let id = start_execution(&ssm, &scope(), &json!({"DocumentName": "Flow"}), None, "me").unwrap();
    let ex = wait_end(&ssm, &id).await;
    let names: Vec<(&str, &str)> = ex
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.status.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("pick", "Success"),
            ("boom", "Failed"),
            ("recover", "Success"),
            ("inner", "Success"),
            ("inner", "Success"),
            ("inner", "Success"),
        ]
    );
    assert_eq!(ex.steps[1].attempt, 2, "maxAttempts retried the step");
    assert_eq!(
        ex.status, "Success",
        "a non-critical failure leaves the execution successful"
    );
    assert_eq!(
        ex.outputs["recover.CurrentIteration"],
        vec!["3".to_string()]
    );
    assert_eq!(ex.steps[5].parent.as_ref().unwrap().2, Some(json!("c")));
    // Events for every transition went to the outbox.
    let queued = ssm
        .inner()
        .store
        .scan(crate::bus::TABLE, "", None, 1000)
        .unwrap()
        .len();
    assert!(queued >= 10, "status-change events queued: {queued}");
    assert_eq!(active_count(&ssm), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn critical_abort_fails_and_cancel_runs_on_cancel() {
    let (ssm, _dir) = service().await;
    create(
        &ssm,
        "Abort",
        json!({"schemaVersion": "0.3", "mainSteps": [
            {"name": "boom", "action": "aws:executeAwsApi", "inputs": {"Service": "sns", "Api": "ListTopics"}},
            {"name": "after", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}}
        ]}),
    );
    let id = start_execution(
        &ssm,
        &scope(),
        &json!({"DocumentName": "Abort"}),
        None,
        "me",
    )
    .unwrap();
    let ex = wait_end(&ssm, &id).await;
    assert_eq!(ex.status, "Failed");
    assert_eq!(ex.steps.len(), 1);
    assert!(ex.failure_message.unwrap().contains("ServiceUnavailable"));

    create(
        &ssm,
        "Cancel",
        json!({"schemaVersion": "0.3", "mainSteps": [
            {"name": "wait", "action": "aws:sleep", "onCancel": "step:cleanup", "inputs": {"Duration": "PT1H"}},
            {"name": "cleanup", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}, "isEnd": true}
        ]}),
    );
    let id = start_execution(
        &ssm,
        &scope(),
        &json!({"DocumentName": "Cancel"}),
        None,
        "me",
    )
    .unwrap();
    for _ in 0..200 {
        if model::load(ssm.inner(), &scope(), &id)
            .unwrap()
            .steps
            .first()
            .is_some_and(|s| s.state.get("until").is_some())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop(&ssm, &scope(), &json!({"AutomationExecutionId": id})).unwrap();
    let ex = wait_end(&ssm, &id).await;
    assert_eq!(ex.status, "Cancelled");
    let names: Vec<(&str, &str)> = ex
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.status.as_str()))
        .collect();
    assert_eq!(names, vec![("wait", "Cancelled"), ("cleanup", "Success")]);
    let e = stop(&ssm, &scope(), &json!({"AutomationExecutionId": id})).unwrap_err();
    assert_eq!(e.kind, "InvalidAutomationStatusUpdateException");
}

//! Unit tests of document validation: what passes and the messages of what does not.

use serde_json::json;

use super::*;

fn auto(steps: Value) -> Value {
    json!({"schemaVersion": "0.3", "parameters": {"Id": {"type": "String"}}, "mainSteps": steps})
}

fn fails(doc: Value, ty: &str, needle: &str) {
    let e = validate(&doc, ty).expect_err("should fail");
    assert!(
        e.message.contains(needle),
        "{} does not contain {needle}",
        e.message
    );
}

#[test]
fn command_documents() {
    let ok = json!({"schemaVersion": "2.2", "mainSteps": [{"action": "aws:runShellScript", "name": "a", "inputs": {"runCommand": ["ls"]}, "precondition": {"StringEquals": ["platformType", "Linux"]}}]});
    let a = validate(&ok, "Command").unwrap();
    assert_eq!(a.schema_version, "2.2");
    fails(
        json!({"schemaVersion": "2.2", "mainSteps": []}),
        "Command",
        "at least one step",
    );
    fails(
        json!({"schemaVersion": "2.2", "mainSteps": [{"action": "aws:nope", "name": "a", "inputs": {}}]}),
        "Command",
        "Invalid action aws:nope",
    );
    fails(
        json!({"schemaVersion": "2.2", "mainSteps": [{"action": "aws:runShellScript", "name": "a", "inputs": {}}]}),
        "Command",
        "runCommand",
    );
    fails(
        json!({"schemaVersion": "2.2", "mainSteps": [{"action": "aws:runShellScript", "name": "a", "inputs": {"runCommand": ["echo {{ missing }}"]}}]}),
        "Command",
        "\"missing\"",
    );
    fails(
        json!({"schemaVersion": "2.2", "mainSteps": [{"action": "aws:runShellScript", "name": "a", "inputs": {"runCommand": ["x"]}, "precondition": {"StringEquals": ["os", "Linux"]}}]}),
        "Command",
        "precondition",
    );
    let e = validate(&json!({"schemaVersion": "9.9", "mainSteps": []}), "Command").unwrap_err();
    assert_eq!(e.kind, "InvalidDocumentSchemaVersion");
    fails(
        json!({"schemaVersion": "2.2", "mainSteps": [{"action": "aws:runDocument", "name": "a", "inputs": {"documentType": "Bogus", "documentPath": "x"}}]}),
        "Command",
        "documentType",
    );
}

#[test]
fn automation_documents() {
    let ok = auto(json!([
        {"name": "check", "action": "aws:branch", "inputs": {"Choices": [{"NextStep": "fix", "Variable": "{{ Id }}", "StringEquals": "x"}], "Default": "done"}},
        {"name": "fix", "action": "aws:executeAwsApi", "inputs": {"Service": "ec2", "Api": "RebootInstances", "InstanceIds": ["{{ Id }}"]}, "onFailure": "step:done", "outputs": [{"Name": "Out", "Selector": "$.x", "Type": "String"}]},
        {"name": "done", "action": "aws:sleep", "inputs": {"Duration": "PT1S"}, "isEnd": true}
    ]));
    validate(&ok, "Automation").unwrap();
    fails(
        auto(
            json!([{"name": "a", "action": "aws:sleep", "inputs": {"Duration": "PT1S"}, "nextStep": "ghost"}]),
        ),
        "Automation",
        "no step named ghost",
    );
    fails(
        auto(
            json!([{"name": "a", "action": "aws:sleep", "inputs": {"Duration": "PT1S"}, "onFailure": "Retry"}]),
        ),
        "Automation",
        "invalid onFailure",
    );
    fails(
        auto(json!([{"name": "a", "action": "aws:createImage", "inputs": {}}])),
        "Automation",
        "Invalid action aws:createImage",
    );
    fails(
        auto(
            json!([{"name": "a", "action": "aws:executeScript", "inputs": {"Runtime": "python3.11", "Script": "x"}}]),
        ),
        "Automation",
        "Handler",
    );
    fails(
        auto(json!([{"name": "a", "action": "aws:sleep", "inputs": {"Duration": "{{ Nope }}"}}])),
        "Automation",
        "\"Nope\"",
    );
    fails(
        auto(
            json!([{"name": "a", "action": "aws:sleep", "inputs": {"Duration": "{{ ghost.Out }}"}}]),
        ),
        "Automation",
        "step ghost",
    );
    fails(
        auto(
            json!([{"name": "a", "action": "aws:sleep", "inputs": {"Duration": "PT1S"}}, {"name": "a", "action": "aws:pause", "inputs": {}}]),
        ),
        "Automation",
        "Duplicate step name a",
    );
    fails(
        auto(
            json!([{"name": "b", "action": "aws:branch", "inputs": {"Choices": [{"NextStep": "b", "Variable": "x"}]}}]),
        ),
        "Automation",
        "exactly one operator",
    );
    fails(
        auto(
            json!([{"name": "l", "action": "aws:loop", "inputs": {"Iterators": ["a"], "Steps": [{"name": "in", "action": "aws:bogus"}]}}]),
        ),
        "Automation",
        "aws:bogus",
    );
    let e = validate(
        &json!({"schemaVersion": "2.2", "mainSteps": []}),
        "Automation",
    )
    .unwrap_err();
    assert_eq!(e.kind, "InvalidDocumentSchemaVersion");
}

#[test]
fn parameters() {
    let with = |p: Value| json!({"schemaVersion": "2.2", "parameters": p, "mainSteps": [{"action": "aws:runShellScript", "name": "a", "inputs": {"runCommand": ["ls"]}}]});
    let a = validate(
        &with(json!({"n": {"type": "Integer", "default": 3}, "l": {"type": "StringList", "default": ["a"]}})),
        "Command",
    )
    .unwrap();
    assert_eq!(a.parameters[0]["DefaultValue"], "3");
    fails(
        with(json!({"n": {"type": "Float"}})),
        "Command",
        "unsupported type Float",
    );
    fails(
        with(json!({"n": {"type": "Integer", "default": "x"}})),
        "Command",
        "not of type Integer",
    );
    fails(
        with(json!({"n": {"type": "String", "default": "c", "allowedValues": ["a", "b"]}})),
        "Command",
        "allowedValues",
    );
    fails(
        with(json!({"n": {"type": "String", "default": "abc", "allowedPattern": "^[0-9]+$"}})),
        "Command",
        "allowedPattern",
    );
    fails(
        with(json!({"bad-name": {"type": "String"}})),
        "Command",
        "not valid",
    );
    fails(
        with(json!({"n": {"description": "no type"}})),
        "Command",
        "must declare a type",
    );
}

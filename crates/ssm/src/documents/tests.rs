//! Unit tests of documents over an in-memory store.

use serde_json::json;

use super::*;
use crate::testing::{inner, scope};

const CMD_JSON: &str = r#"{"schemaVersion":"2.2","description":"hello","parameters":{"msg":{"type":"String","default":"hi"}},"mainSteps":[{"action":"aws:runShellScript","name":"say","inputs":{"runCommand":["echo {{ msg }}"]}}]}"#;
const CMD_YAML: &str = "schemaVersion: '2.2'\ndescription: yaml doc\nmainSteps:\n  - action: aws:runShellScript\n    name: one\n    inputs:\n      runCommand:\n        - echo one\n";

fn create(i: &Inner, name: &str, content: &str, format: &str, ty: &str) -> Result<Value, ApiError> {
    create_document(
        i,
        &scope(),
        &json!({"Name": name, "Content": content, "DocumentFormat": format, "DocumentType": ty}),
    )
}

#[test]
fn create_describe_get_and_convert() {
    let i = inner();
    let sc = scope();
    let d =
        create(&i, "Hello", CMD_JSON, "JSON", "Command").unwrap()["DocumentDescription"].clone();
    assert_eq!(d["DocumentVersion"], "1");
    assert_eq!(d["Owner"], "123456789012");
    assert_eq!(d["Parameters"][0]["Name"], "msg");
    assert_eq!(d["Parameters"][0]["DefaultValue"], "hi");
    assert_eq!(d["PlatformTypes"], json!(["Linux", "MacOS"]));
    assert_eq!(d["Description"], "hello");
    assert_eq!(
        create(&i, "Hello", CMD_JSON, "JSON", "Command")
            .unwrap_err()
            .kind,
        "DocumentAlreadyExists"
    );
    let g = get_document(&i, &sc, &json!({"Name": "Hello", "DocumentFormat": "YAML"})).unwrap();
    assert_eq!(g["DocumentFormat"], "YAML");
    let back = yaml::parse(g["Content"].as_str().unwrap()).unwrap();
    assert_eq!(back, serde_json::from_str::<Value>(CMD_JSON).unwrap());
    create(&i, "Yam", CMD_YAML, "YAML", "Command").unwrap();
    let g = get_document(&i, &sc, &json!({"Name": "Yam", "DocumentFormat": "JSON"})).unwrap();
    let parsed: Value = serde_json::from_str(g["Content"].as_str().unwrap()).unwrap();
    assert_eq!(parsed["mainSteps"][0]["name"], "one");
    let g = get_document(&i, &sc, &json!({"Name": "Yam"})).unwrap();
    assert_eq!(g["Content"], CMD_YAML);
    assert_eq!(
        get_document(&i, &sc, &json!({"Name": "Nope"}))
            .unwrap_err()
            .kind,
        "InvalidDocument"
    );
}

#[test]
fn versions_default_and_delete() {
    let i = inner();
    let sc = scope();
    create(&i, "Doc", CMD_JSON, "JSON", "Command").unwrap();
    let e = update_document(&i, &sc, &json!({"Name": "Doc", "Content": CMD_JSON})).unwrap_err();
    assert_eq!(e.kind, "DuplicateDocumentContent");
    let u = update_document(
        &i,
        &sc,
        &json!({"Name": "Doc", "Content": CMD_YAML, "DocumentFormat": "YAML", "VersionName": "v2", "DocumentVersion": "$LATEST"}),
    )
    .unwrap();
    assert_eq!(u["DocumentDescription"]["DocumentVersion"], "2");
    assert_eq!(u["DocumentDescription"]["DefaultVersion"], "1");
    let g = get_document(&i, &sc, &json!({"Name": "Doc"})).unwrap();
    assert_eq!(g["DocumentVersion"], "1");
    let g = get_document(&i, &sc, &json!({"Name": "Doc", "VersionName": "v2"})).unwrap();
    assert_eq!(g["DocumentVersion"], "2");
    assert_eq!(
        get_document(&i, &sc, &json!({"Name": "Doc", "DocumentVersion": "7"}))
            .unwrap_err()
            .kind,
        "InvalidDocumentVersion"
    );
    let r =
        update_document_default_version(&i, &sc, &json!({"Name": "Doc", "DocumentVersion": "2"}))
            .unwrap();
    assert_eq!(r["Description"]["DefaultVersionName"], "v2");
    let e = delete_document(&i, &sc, &json!({"Name": "Doc", "DocumentVersion": "2"})).unwrap_err();
    assert_eq!(e.kind, "InvalidDocumentOperation");
    delete_document(&i, &sc, &json!({"Name": "Doc", "DocumentVersion": "1"})).unwrap();
    let v = list::list_document_versions(&i, &sc, &json!({"Name": "Doc"})).unwrap();
    assert_eq!(v["DocumentVersions"].as_array().unwrap().len(), 1);
    let u = update_document(&i, &sc, &json!({"Name": "Doc", "Content": CMD_JSON})).unwrap();
    assert_eq!(u["DocumentDescription"]["DocumentVersion"], "3");
    delete_document(&i, &sc, &json!({"Name": "Doc"})).unwrap();
    assert!(find(&i, &sc, "Doc").unwrap().is_none());
}

#[test]
fn amazon_documents_are_read_only_and_listed() {
    let i = inner();
    let sc = scope();
    let d = describe_document(&i, &sc, &json!({"Name": "AWS-RunShellScript"})).unwrap();
    assert_eq!(d["Document"]["Owner"], "Amazon");
    for (op, req) in [
        (
            "update",
            json!({"Name": "AWS-RunShellScript", "Content": CMD_JSON}),
        ),
        ("delete", json!({"Name": "AWS-RunShellScript"})),
    ] {
        let e = if op == "update" {
            update_document(&i, &sc, &req).unwrap_err()
        } else {
            delete_document(&i, &sc, &req).unwrap_err()
        };
        assert_eq!(e.kind, "InvalidDocumentOperation");
    }
    assert_eq!(
        create(&i, "AWS-Mine", CMD_JSON, "JSON", "Command")
            .unwrap_err()
            .kind,
        "ValidationException"
    );
    create(&i, "Mine", CMD_JSON, "JSON", "Command").unwrap();
    let names = |f: Value| -> Vec<String> {
        list::list_documents(&i, &sc, &f).unwrap()["DocumentIdentifiers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["Name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(json!({"Filters": [{"Key": "Owner", "Values": ["Self"]}]})),
        vec!["Mine"]
    );
    let amazon = names(json!({"Filters": [{"Key": "Owner", "Values": ["Amazon"]}]}));
    assert!(amazon.contains(&"AWS-RunShellScript".to_string()));
    assert!(!amazon.contains(&"Mine".to_string()));
    assert_eq!(
        names(json!({"Filters": [{"Key": "Name", "Values": ["AWS-RunSh"]}]})),
        vec!["AWS-RunShellScript"]
    );
    let automation =
        names(json!({"DocumentFilterList": [{"key": "DocumentType", "value": "Automation"}]}));
    assert!(automation.contains(&"AWS-RestartEC2Instance".to_string()));
    assert_eq!(
        list::list_documents(
            &i,
            &sc,
            &json!({"Filters": [{"Key": "Bogus", "Values": ["x"]}]})
        )
        .unwrap_err()
        .kind,
        "InvalidFilterKey"
    );
}

#[test]
fn permissions_are_stored() {
    let i = inner();
    let sc = scope();
    create(&i, "Shared", CMD_JSON, "JSON", "Command").unwrap();
    list::modify_document_permission(
        &i,
        &sc,
        &json!({"Name": "Shared", "PermissionType": "Share", "AccountIdsToAdd": ["111122223333", "All"]}),
    )
    .unwrap();
    let p = list::describe_document_permission(
        &i,
        &sc,
        &json!({"Name": "Shared", "PermissionType": "Share"}),
    )
    .unwrap();
    assert_eq!(p["AccountIds"], json!(["111122223333", "all"]));
    list::modify_document_permission(
        &i,
        &sc,
        &json!({"Name": "Shared", "PermissionType": "Share", "AccountIdsToRemove": ["all"]}),
    )
    .unwrap();
    let p = list::describe_document_permission(
        &i,
        &sc,
        &json!({"Name": "Shared", "PermissionType": "Share"}),
    )
    .unwrap();
    assert_eq!(p["AccountIds"], json!(["111122223333"]));
}

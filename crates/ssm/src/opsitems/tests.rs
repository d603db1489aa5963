//! Unit tests of OpsCenter over an in-memory store.

use serde_json::json;

use super::*;
use crate::testing::{inner, scope};

fn create(i: &Inner, extra: Value) -> Result<String, ApiError> {
    let mut req = json!({"Title": "disk full", "Description": "d", "Source": "test"});
    for (k, v) in extra.as_object().unwrap() {
        req[k] = v.clone();
    }
    create_ops_item(i, &scope(), &req).map(|r| r["OpsItemId"].as_str().unwrap().to_string())
}

fn dedup(s: &str) -> Value {
    json!({"/aws/dedup": {"Value": json!({"dedupString": s}).to_string(), "Type": "SearchableString"}})
}

#[test]
fn create_get_update_with_events() {
    let i = inner();
    let sc = scope();
    let id = create(
        &i,
        json!({"Severity": "2", "Priority": 3, "Category": "Availability"}),
    )
    .unwrap();
    assert!(id.starts_with("oi-"));
    let o = get_ops_item(&i, &sc, &json!({"OpsItemId": id})).unwrap()["OpsItem"].clone();
    assert_eq!(o["Status"], "Open");
    assert_eq!(o["Severity"], "2");
    assert_eq!(o["OpsItemType"], "/aws/issue");
    update_ops_item(
        &i,
        &sc,
        &json!({"OpsItemId": id, "Status": "InProgress", "OperationalData": {"note": {"Value": "x", "Type": "String"}}}),
    )
    .unwrap();
    let o = get_ops_item(&i, &sc, &json!({"OpsItemId": id})).unwrap()["OpsItem"].clone();
    assert_eq!(o["Status"], "InProgress");
    assert_eq!(o["Version"], "2");
    assert_eq!(o["OperationalData"]["note"]["Value"], "x");
    let ev = query::list_ops_item_events(
        &i,
        &sc,
        &json!({"Filters": [{"Key": "OpsItemId", "Values": [id], "Operator": "Equal"}]}),
    )
    .unwrap();
    assert_eq!(ev["Summaries"].as_array().unwrap().len(), 2);
    assert_eq!(
        get_ops_item(&i, &sc, &json!({"OpsItemId": "oi-000000000000"}))
            .unwrap_err()
            .kind,
        "OpsItemNotFoundException"
    );
}

#[test]
fn validation_of_fields_and_data() {
    let i = inner();
    assert_eq!(
        create(&i, json!({"Category": "Nope"})).unwrap_err().kind,
        "OpsItemInvalidParameterException"
    );
    assert_eq!(
        create(&i, json!({"Severity": "9"})).unwrap_err().kind,
        "OpsItemInvalidParameterException"
    );
    let bad_key = json!({"OperationalData": {"/aws/custom": {"Value": "x", "Type": "String"}}});
    assert!(create(&i, bad_key).is_err());
    let bad_res = json!({"OperationalData": {"/aws/resources": {"Value": "nope", "Type": "SearchableString"}}});
    assert!(create(&i, bad_res).is_err());
    assert!(query::all_items(&i, &scope()).unwrap().is_empty());
}

#[test]
fn dedup_returns_the_open_item() {
    let i = inner();
    let sc = scope();
    let a = create(&i, json!({"OperationalData": dedup("web-1-disk")})).unwrap();
    let b = create(&i, json!({"OperationalData": dedup("web-1-disk")})).unwrap();
    assert_eq!(a, b);
    assert_eq!(query::all_items(&i, &sc).unwrap().len(), 1);
    update_ops_item(&i, &sc, &json!({"OpsItemId": a, "Status": "Resolved"})).unwrap();
    let c = create(&i, json!({"OperationalData": dedup("web-1-disk")})).unwrap();
    assert_ne!(a, c);
    let d = create(&i, json!({"OperationalData": dedup("web-1-disk")})).unwrap();
    assert_eq!(c, d);
    // A deleted item no longer absorbs duplicates; deleting twice succeeds.
    delete_ops_item(&i, &sc, &json!({"OpsItemId": c})).unwrap();
    delete_ops_item(&i, &sc, &json!({"OpsItemId": c})).unwrap();
    let e = create(&i, json!({"OperationalData": dedup("web-1-disk")})).unwrap();
    assert_ne!(e, c);
}

#[test]
fn describe_filters() {
    let i = inner();
    let sc = scope();
    let a = create(
        &i,
        json!({"Title": "cpu high", "Priority": 1, "OperationalData": {
            "/aws/resources": {"Value": "[{\"arn\":\"arn:aws:cloudwatch:us-east-1:123456789012:alarm:cpu\"}]", "Type": "SearchableString"},
            "owner": {"Value": "team-a", "Type": "SearchableString"},
            "hidden": {"Value": "secret", "Type": "String"}}}),
    )
    .unwrap();
    let b = create(&i, json!({"Title": "disk", "Priority": 4})).unwrap();
    let ids = |f: Value| -> Vec<String> {
        query::describe_ops_items(&i, &sc, &json!({"OpsItemFilters": f})).unwrap()
            ["OpsItemSummaries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["OpsItemId"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        ids(json!([{"Key": "Title", "Values": ["cpu"], "Operator": "Contains"}])),
        vec![a.clone()]
    );
    assert_eq!(
        ids(json!([{"Key": "Priority", "Values": ["2"], "Operator": "GreaterThan"}])),
        vec![b.clone()]
    );
    assert_eq!(
        ids(
            json!([{"Key": "OperationalData", "Values": ["{\"key\":\"owner\",\"value\":\"team-a\"}"], "Operator": "Equal"}])
        ),
        vec![a.clone()]
    );
    assert!(ids(
        json!([{"Key": "OperationalDataValue", "Values": ["secret"], "Operator": "Equal"}])
    )
    .is_empty());
    assert_eq!(
        ids(json!([{"Key": "ResourceId", "Values": ["alarm:cpu"], "Operator": "Contains"}])),
        vec![a.clone()]
    );
    assert_eq!(
        ids(json!([{"Key": "Status", "Values": ["Open"], "Operator": "Equal"}])).len(),
        2
    );
    let e = query::describe_ops_items(
        &i,
        &sc,
        &json!({"OpsItemFilters": [{"Key": "Status", "Values": ["Open"], "Operator": "GreaterThan"}]}),
    )
    .unwrap_err();
    assert_eq!(e.kind, "ValidationException");
}

#[test]
fn related_items() {
    let i = inner();
    let sc = scope();
    let id = create(&i, json!({})).unwrap();
    let req = json!({"OpsItemId": id, "AssociationType": "RelatesTo", "ResourceType": "AWS::SSM::Document", "ResourceUri": "arn:aws:ssm:us-east-1:123456789012:document/Fix"});
    let a = related::associate(&i, &sc, &req).unwrap()["AssociationId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        related::associate(&i, &sc, &req).unwrap_err().kind,
        "OpsItemRelatedItemAlreadyExistsException"
    );
    let l = related::list(&i, &sc, &json!({"OpsItemId": id})).unwrap();
    assert_eq!(l["Summaries"][0]["AssociationId"], a);
    related::disassociate(&i, &sc, &json!({"OpsItemId": id, "AssociationId": a})).unwrap();
    assert_eq!(
        related::disassociate(&i, &sc, &json!({"OpsItemId": id, "AssociationId": a}))
            .unwrap_err()
            .kind,
        "OpsItemRelatedItemAssociationNotFoundException"
    );
    let mut bad = req.clone();
    bad["ResourceType"] = json!("AWS::EC2::Instance");
    assert_eq!(
        related::associate(&i, &sc, &bad).unwrap_err().kind,
        "OpsItemInvalidParameterException"
    );
}

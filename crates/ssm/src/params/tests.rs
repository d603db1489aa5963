//! Unit tests of Parameter Store over an in-memory store.

use serde_json::json;

use super::*;
use crate::testing::{inner, scope};

fn put(inner: &Inner, v: Value) -> Result<Value, ApiError> {
    put_parameter(inner, &scope(), &v)
}

fn get(inner: &Inner, name: &str, decrypt: bool) -> Result<Value, ApiError> {
    get_parameter(
        inner,
        &scope(),
        &json!({"Name": name, "WithDecryption": decrypt}),
    )
}

#[test]
fn put_get_overwrite_and_versions() {
    let i = inner();
    let r = put(
        &i,
        json!({"Name": "/app/db/host", "Value": "a", "Type": "String"}),
    )
    .unwrap();
    assert_eq!(r, json!({"Version": 1, "Tier": "Standard"}));
    let e = put(
        &i,
        json!({"Name": "/app/db/host", "Value": "b", "Type": "String"}),
    )
    .unwrap_err();
    assert_eq!(e.kind, "ParameterAlreadyExists");
    let r = put(
        &i,
        json!({"Name": "/app/db/host", "Value": "b", "Overwrite": true}),
    )
    .unwrap();
    assert_eq!(r["Version"], 2);
    // Each change queued its "Parameter Store Change" event with the write.
    let queued: Vec<Value> = i
        .store
        .scan(crate::bus::TABLE, "", None, 10)
        .unwrap()
        .into_iter()
        .map(|(_, v)| serde_json::from_slice(&v).unwrap())
        .collect();
    let ops: Vec<&str> = queued
        .iter()
        .map(|e| e["detail"]["operation"].as_str().unwrap())
        .collect();
    assert_eq!(ops, vec!["Create", "Update"]);
    assert_eq!(queued[0]["detail_type"], "Parameter Store Change");
    let p = get(&i, "/app/db/host", false).unwrap();
    assert_eq!(p["Parameter"]["Value"], "b");
    assert_eq!(p["Parameter"]["Type"], "String");
    let p = get(&i, "/app/db/host:1", false).unwrap();
    assert_eq!(p["Parameter"]["Value"], "a");
    assert_eq!(p["Parameter"]["Selector"], ":1");
    assert_eq!(
        get(&i, "/app/db/host:9", false).unwrap_err().kind,
        "ParameterVersionNotFound"
    );
    assert_eq!(
        get(&i, "/nope", false).unwrap_err().kind,
        "ParameterNotFound"
    );
    let e = put(
        &i,
        json!({"Name": "/app/db/host", "Value": "s", "Type": "SecureString", "Overwrite": true}),
    )
    .unwrap_err();
    assert_eq!(e.kind, "HierarchyTypeMismatchException");
    let e = put(&i, json!({"Name": "/new", "Value": "x"})).unwrap_err();
    assert_eq!(e.kind, "ValidationException");
}

#[test]
fn secure_strings_are_sealed_at_rest() {
    let i = inner();
    put(
        &i,
        json!({"Name": "/s/pw", "Value": "hunter2-plaintext", "Type": "SecureString"}),
    )
    .unwrap();
    let sealed = get(&i, "/s/pw", false).unwrap();
    assert_ne!(sealed["Parameter"]["Value"], "hunter2-plaintext");
    let open = get(&i, "/s/pw", true).unwrap();
    assert_eq!(open["Parameter"]["Value"], "hunter2-plaintext");
    let rows = i.store.scan(TABLE, "", None, 100).unwrap();
    for (_, v) in rows {
        assert!(!String::from_utf8_lossy(&v).contains("hunter2"));
    }
    let d = describe_meta(&i);
    assert_eq!(d[0]["KeyId"], "alias/aws/ssm");
    let e = put(
        &i,
        json!({"Name": "/s/plain", "Value": "x", "Type": "String", "KeyId": "k"}),
    )
    .unwrap_err();
    assert_eq!(e.kind, "ValidationException");
}

fn describe_meta(i: &Inner) -> Vec<Value> {
    query::describe_parameters(i, &scope(), &json!({})).unwrap()["Parameters"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn tiers_and_limits() {
    let i = inner();
    let big = "x".repeat(5000);
    let e = put(&i, json!({"Name": "big", "Value": big, "Type": "String"})).unwrap_err();
    assert!(e.message.contains("4096"), "{}", e.message);
    let r = put(
        &i,
        json!({"Name": "big", "Value": big, "Type": "String", "Tier": "Advanced"}),
    )
    .unwrap();
    assert_eq!(r["Tier"], "Advanced");
    let e = put(
        &i,
        json!({"Name": "big", "Value": "small", "Overwrite": true, "Tier": "Standard"}),
    )
    .unwrap_err();
    assert!(e.message.contains("downgrade"));
    let r = put(
        &i,
        json!({"Name": "auto", "Value": big, "Type": "String", "Tier": "Intelligent-Tiering"}),
    )
    .unwrap();
    assert_eq!(r["Tier"], "Advanced");
    let huge = "x".repeat(9000);
    let e = put(
        &i,
        json!({"Name": "huge", "Value": huge, "Type": "String", "Tier": "Advanced"}),
    )
    .unwrap_err();
    assert!(e.message.contains("8192"));
}

#[test]
fn allowed_pattern_data_type_and_names() {
    let i = inner();
    let e = put(
        &i,
        json!({"Name": "n", "Value": "abc", "Type": "String", "AllowedPattern": "^[0-9]+$"}),
    )
    .unwrap_err();
    assert_eq!(e.kind, "ParameterPatternMismatchException");
    let e = put(
        &i,
        json!({"Name": "n", "Value": "1,x", "Type": "StringList", "AllowedPattern": "^[0-9]+$"}),
    )
    .unwrap_err();
    assert_eq!(e.kind, "ParameterPatternMismatchException");
    put(
        &i,
        json!({"Name": "n", "Value": "1,2", "Type": "StringList", "AllowedPattern": "^[0-9]+$"}),
    )
    .unwrap();
    let e = put(
        &i,
        json!({"Name": "p", "Value": "a", "Type": "String", "AllowedPattern": "("}),
    )
    .unwrap_err();
    assert_eq!(e.kind, "InvalidAllowedPatternException");
    let e = put(
        &i,
        json!({"Name": "ami", "Value": "nope", "Type": "String", "DataType": "aws:ec2:image"}),
    )
    .unwrap_err();
    assert_eq!(e.kind, "ValidationException");
    put(
        &i,
        json!({"Name": "ami", "Value": "ami-0123456789abcdef0", "Type": "String", "DataType": "aws:ec2:image"}),
    )
    .unwrap();
    let e = put(
        &i,
        json!({"Name": "/aws/x", "Value": "a", "Type": "String"}),
    )
    .unwrap_err();
    assert_eq!(e.kind, "ValidationException");
    let deep: String = (0..16).map(|n| format!("/l{n}")).collect();
    let e = put(&i, json!({"Name": deep, "Value": "a", "Type": "String"})).unwrap_err();
    assert_eq!(e.kind, "HierarchyLevelLimitExceededException");
    let e = put(
        &i,
        json!({"Name": "t", "Value": "a", "Type": "String", "Overwrite": true, "Tags": [{"Key": "k", "Value": "v"}]}),
    )
    .unwrap_err();
    assert!(e.message.contains("tags and overwrite"));
}

#[test]
fn labels_move_and_select() {
    let i = inner();
    let sc = scope();
    put(&i, json!({"Name": "/l", "Value": "v1", "Type": "String"})).unwrap();
    put(&i, json!({"Name": "/l", "Value": "v2", "Overwrite": true})).unwrap();
    let r = label_parameter_version(
        &i,
        &sc,
        &json!({"Name": "/l", "ParameterVersion": 1, "Labels": ["prod", "1bad"]}),
    )
    .unwrap();
    assert_eq!(r["InvalidLabels"], json!(["1bad"]));
    assert_eq!(
        get(&i, "/l:prod", false).unwrap()["Parameter"]["Value"],
        "v1"
    );
    label_parameter_version(&i, &sc, &json!({"Name": "/l", "Labels": ["prod"]})).unwrap();
    assert_eq!(
        get(&i, "/l:prod", false).unwrap()["Parameter"]["Value"],
        "v2"
    );
    let h = get_parameter_history(&i, &sc, &json!({"Name": "/l"})).unwrap();
    assert_eq!(h["Parameters"][0]["Labels"], json!([]));
    assert_eq!(h["Parameters"][1]["Labels"], json!(["prod"]));
    let r = unlabel_parameter_version(
        &i,
        &sc,
        &json!({"Name": "/l", "ParameterVersion": 2, "Labels": ["prod", "other"]}),
    )
    .unwrap();
    assert_eq!(r["RemovedLabels"], json!(["prod"]));
    assert_eq!(r["InvalidLabels"], json!(["other"]));
    let many: Vec<String> = (0..11).map(|n| format!("l{n}")).collect();
    let e = label_parameter_version(&i, &sc, &json!({"Name": "/l", "Labels": many})).unwrap_err();
    assert_eq!(e.kind, "ParameterVersionLabelLimitExceeded");
}

#[test]
fn at_most_100_versions_and_a_labelled_oldest_blocks() {
    let i = inner();
    let sc = scope();
    put(&i, json!({"Name": "v", "Value": "0", "Type": "String"})).unwrap();
    label_parameter_version(
        &i,
        &sc,
        &json!({"Name": "v", "ParameterVersion": 1, "Labels": ["first"]}),
    )
    .unwrap();
    for n in 2..=100 {
        put(
            &i,
            json!({"Name": "v", "Value": n.to_string(), "Overwrite": true}),
        )
        .unwrap();
    }
    let e = put(&i, json!({"Name": "v", "Value": "x", "Overwrite": true})).unwrap_err();
    assert_eq!(e.kind, "ParameterMaxVersionLimitExceeded");
    unlabel_parameter_version(
        &i,
        &sc,
        &json!({"Name": "v", "ParameterVersion": 1, "Labels": ["first"]}),
    )
    .unwrap();
    let r = put(&i, json!({"Name": "v", "Value": "x", "Overwrite": true})).unwrap();
    assert_eq!(r["Version"], 101);
    let p = load(&i, &sc, "v").unwrap().unwrap();
    assert_eq!(p.versions.len(), MAX_VERSIONS);
    assert_eq!(p.versions[0].version, 2);
}

#[test]
fn paths_filters_and_pagination() {
    let i = inner();
    let sc = scope();
    for n in ["/app/a", "/app/b", "/app/sub/c", "/other/d", "top"] {
        put(&i, json!({"Name": n, "Value": n, "Type": "String"})).unwrap();
    }
    put(
        &i,
        json!({"Name": "/app/s", "Value": "sec", "Type": "SecureString"}),
    )
    .unwrap();
    let names = |v: &Value| -> Vec<String> {
        v["Parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["Name"].as_str().unwrap().to_string())
            .collect()
    };
    let r = query::get_parameters_by_path(&i, &sc, &json!({"Path": "/app"})).unwrap();
    assert_eq!(names(&r), vec!["/app/a", "/app/b", "/app/s"]);
    let r = query::get_parameters_by_path(&i, &sc, &json!({"Path": "/app", "Recursive": true}))
        .unwrap();
    assert_eq!(names(&r).len(), 4);
    let r = query::get_parameters_by_path(
        &i,
        &sc,
        &json!({"Path": "/app", "Recursive": true, "ParameterFilters": [{"Key": "Type", "Values": ["SecureString"]}], "WithDecryption": true}),
    )
    .unwrap();
    assert_eq!(r["Parameters"][0]["Value"], "sec");
    let e = query::get_parameters_by_path(
        &i,
        &sc,
        &json!({"Path": "/app", "ParameterFilters": [{"Key": "Name", "Values": ["x"]}]}),
    )
    .unwrap_err();
    assert_eq!(e.kind, "InvalidFilterKey");
    // Pages of 2 walk all 4 recursive hits.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut req = json!({"Path": "/app", "Recursive": true, "MaxResults": 2});
        if let Some(t) = &token {
            req["NextToken"] = json!(t);
        }
        let r = query::get_parameters_by_path(&i, &sc, &req).unwrap();
        seen.extend(names(&r));
        match r.get("NextToken").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 4);

    let d = |f: Value| names(&query::describe_parameters(&i, &sc, &f).unwrap());
    assert_eq!(
        d(
            json!({"ParameterFilters": [{"Key": "Name", "Option": "BeginsWith", "Values": ["/app/s"]}]})
        ),
        vec!["/app/s", "/app/sub/c"]
    );
    assert_eq!(
        d(json!({"ParameterFilters": [{"Key": "Name", "Option": "Contains", "Values": ["ub"]}]})),
        vec!["/app/sub/c"]
    );
    assert_eq!(
        d(
            json!({"ParameterFilters": [{"Key": "Path", "Option": "Recursive", "Values": ["/other"]}]})
        ),
        vec!["/other/d"]
    );
    assert_eq!(
        d(json!({"Filters": [{"Key": "Type", "Values": ["SecureString"]}]})),
        vec!["/app/s"]
    );
    let e = query::describe_parameters(
        &i,
        &sc,
        &json!({"ParameterFilters": [{"Key": "Type", "Option": "BeginsWith", "Values": ["String"]}]}),
    )
    .unwrap_err();
    assert_eq!(e.kind, "InvalidFilterOption");
    let e = query::describe_parameters(
        &i,
        &sc,
        &json!({"ParameterFilters": [{"Key": "Type", "Values": ["Nope"]}]}),
    )
    .unwrap_err();
    assert_eq!(e.kind, "InvalidFilterValue");
    crate::tags::add_tags(
        &i,
        &sc,
        &json!({"ResourceType": "Parameter", "ResourceId": "/app/a", "Tags": [{"Key": "team", "Value": "core"}]}),
    )
    .unwrap();
    assert_eq!(
        d(json!({"ParameterFilters": [{"Key": "tag:team", "Values": ["core"]}]})),
        vec!["/app/a"]
    );
}

#[test]
fn get_and_delete_many() {
    let i = inner();
    let sc = scope();
    put(&i, json!({"Name": "a", "Value": "1", "Type": "String"})).unwrap();
    put(&i, json!({"Name": "b", "Value": "2", "Type": "String"})).unwrap();
    let r = get_parameters(&i, &sc, &json!({"Names": ["a", "b:1", "zz", "a:7"]})).unwrap();
    assert_eq!(r["Parameters"].as_array().unwrap().len(), 2);
    assert_eq!(r["InvalidParameters"], json!(["zz", "a:7"]));
    let r = delete_parameters(&i, &sc, &json!({"Names": ["a", "zz"]})).unwrap();
    assert_eq!(r["DeletedParameters"], json!(["a"]));
    assert_eq!(r["InvalidParameters"], json!(["zz"]));
    assert_eq!(
        delete_parameter(&i, &sc, &json!({"Name": "a"}))
            .unwrap_err()
            .kind,
        "ParameterNotFound"
    );
    // An ARN names the parameter too, with a selector.
    let arn = param_arn(&sc, "b");
    assert_eq!(get(&i, &arn, false).unwrap()["Parameter"]["Value"], "2");
    assert_eq!(
        get(&i, &format!("{arn}:1"), false).unwrap()["Parameter"]["Version"],
        1
    );
    put(&i, json!({"Name": "/top", "Value": "t", "Type": "String"})).unwrap();
    let arn = param_arn(&sc, "/top");
    assert_eq!(get(&i, &arn, false).unwrap()["Parameter"]["Name"], "/top");
    // A plain name never falls back to its slash-prefixed twin.
    assert_eq!(get(&i, "top", false).unwrap_err().kind, "ParameterNotFound");
}

#[test]
fn expiration_policy_expires_and_sweeps() {
    use time::format_description::well_known::Rfc3339;
    let i = inner();
    let sc = scope();
    let now = crate::common::now();
    let at = time::OffsetDateTime::from_unix_timestamp(now as i64 + 60)
        .unwrap()
        .format(&Rfc3339)
        .unwrap();
    let policy =
        format!(r#"[{{"Type":"Expiration","Version":"1.0","Attributes":{{"Timestamp":"{at}"}}}}]"#);
    let e = put(
        &i,
        json!({"Name": "/exp", "Value": "v", "Type": "String", "Policies": policy}),
    )
    .unwrap_err();
    assert!(e.message.contains("advanced"), "{}", e.message);
    let r = put(
        &i,
        json!({"Name": "/exp", "Value": "v", "Type": "String", "Policies": policy, "Tier": "Intelligent-Tiering"}),
    )
    .unwrap();
    assert_eq!(r["Tier"], "Advanced");
    put(&i, json!({"Name": "/keep", "Value": "v", "Type": "String"})).unwrap();
    assert_eq!(get(&i, "/exp", false).unwrap()["Parameter"]["Value"], "v");
    let meta = describe_meta(&i);
    assert_eq!(meta[0]["Policies"][0]["PolicyType"], "Expiration");
    let p = load(&i, &sc, "/exp").unwrap().unwrap();
    assert!(!policies::expired(&p, now));
    assert!(policies::expired(&p, now + 61.0));
    assert_eq!(policies::sweep(&*i.store, now).unwrap(), 0);
    assert_eq!(policies::sweep(&*i.store, now + 61.0).unwrap(), 1);
    assert!(load(&i, &sc, "/exp").unwrap().is_none());
    assert!(load(&i, &sc, "/keep").unwrap().is_some());
}

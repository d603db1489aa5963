//! Unit tests of the filter-policy language: every rule kind, nesting, `$or`, the attribute
//! document, and the validation errors and limits.

use serde_json::json;

use super::*;

fn body(policy: &str) -> Pattern {
    Pattern::compile(policy, &Limits::sns(true)).unwrap()
}

fn attrs(policy: &str) -> Pattern {
    Pattern::compile(policy, &Limits::sns(false)).unwrap()
}

fn compile_err(policy: &str, nesting: bool) -> String {
    Pattern::compile(policy, &Limits::sns(nesting))
        .unwrap_err()
        .0
}

#[test]
fn exact_strings_and_numbers() {
    let p = attrs(r#"{"store": ["example_corp"], "price": [100, 210.75]}"#);
    let doc = attributes_document([
        ("store", "String", "example_corp"),
        ("price", "Number", "210.75"),
    ]);
    assert!(p.matches(&doc));
    let doc = attributes_document([
        ("store", "String", "example_corp"),
        ("price", "Number", "210.76"),
    ]);
    assert!(!p.matches(&doc));
    // A Number attribute never equals a string rule, and vice versa.
    let p = attrs(r#"{"price": ["100"]}"#);
    assert!(!p.matches(&attributes_document([("price", "Number", "100")])));
    assert!(p.matches(&attributes_document([("price", "String", "100")])));
    // Case matters.
    assert!(!attrs(r#"{"s": ["A"]}"#).matches(&attributes_document([("s", "String", "a")])));
}

#[test]
fn numbers_compare_at_five_decimal_places() {
    let p = attrs(r#"{"n": [1.000001]}"#);
    assert!(p.matches(&attributes_document([("n", "Number", "1.0000012")])));
    assert!(p.matches(&attributes_document([("n", "Number", "1")])));
    assert!(!p.matches(&attributes_document([("n", "Number", "1.00002")])));
}

#[test]
fn string_arrays_match_any_element() {
    let p = attrs(r#"{"interests": ["rugby"]}"#);
    let doc = attributes_document([(
        "interests",
        "String.Array",
        r#"["soccer", "rugby", "hockey"]"#,
    )]);
    assert!(p.matches(&doc));
    let doc = attributes_document([("interests", "String.Array", r#"["soccer"]"#)]);
    assert!(!p.matches(&doc));
    // Numbers inside a String.Array take part in numeric matching.
    let p = attrs(r#"{"n": [{"numeric": [">", 5]}]}"#);
    assert!(p.matches(&attributes_document([("n", "String.Array", "[1, 10]")])));
}

#[test]
fn prefix_suffix_and_ignore_case() {
    let doc = attributes_document([("customer", "String", "com.example.Order")]);
    assert!(attrs(r#"{"customer": [{"prefix": "com."}]}"#).matches(&doc));
    assert!(!attrs(r#"{"customer": [{"prefix": "org."}]}"#).matches(&doc));
    assert!(attrs(r#"{"customer": [{"suffix": ".Order"}]}"#).matches(&doc));
    assert!(attrs(r#"{"customer": [{"equals-ignore-case": "COM.EXAMPLE.ORDER"}]}"#).matches(&doc));
    assert!(!attrs(r#"{"customer": [{"equals-ignore-case": "com.example"}]}"#).matches(&doc));
}

#[test]
fn anything_but_forms() {
    let red = attributes_document([("color", "String", "red")]);
    let blue = attributes_document([("color", "String", "blue")]);
    let none = attributes_document([]);
    let p = attrs(r#"{"color": [{"anything-but": ["red", "green"]}]}"#);
    assert!(!p.matches(&red));
    assert!(p.matches(&blue));
    assert!(
        !p.matches(&none),
        "anything-but needs the attribute present"
    );
    let p = attrs(r#"{"color": [{"anything-but": "red"}]}"#);
    assert!(p.matches(&blue) && !p.matches(&red));
    let p = attrs(r#"{"color": [{"anything-but": {"prefix": "bl"}}]}"#);
    assert!(p.matches(&red) && !p.matches(&blue));
    let p = attrs(r#"{"color": [{"anything-but": {"suffix": "ed"}}]}"#);
    assert!(!p.matches(&red) && p.matches(&blue));
    let p = attrs(r#"{"n": [{"anything-but": [100]}]}"#);
    assert!(p.matches(&attributes_document([("n", "Number", "101")])));
    assert!(!p.matches(&attributes_document([("n", "Number", "100")])));
}

#[test]
fn numeric_ranges() {
    let p = attrs(r#"{"price": [{"numeric": [">=", 0, "<", 100]}]}"#);
    let at = |v: &str| p.matches(&attributes_document([("price", "Number", v)]));
    assert!(at("0") && at("99.99999") && !at("100") && !at("-0.1"));
    let p = attrs(r#"{"price": [{"numeric": ["=", 301.5]}]}"#);
    assert!(p.matches(&attributes_document([("price", "Number", "301.5")])));
    // Numeric rules never match strings.
    assert!(!p.matches(&attributes_document([("price", "String", "301.5")])));
}

#[test]
fn exists() {
    let with = attributes_document([("k", "String", "v")]);
    let without = attributes_document([("other", "String", "v")]);
    assert!(attrs(r#"{"k": [{"exists": true}]}"#).matches(&with));
    assert!(!attrs(r#"{"k": [{"exists": true}]}"#).matches(&without));
    assert!(attrs(r#"{"k": [{"exists": false}]}"#).matches(&without));
    assert!(!attrs(r#"{"k": [{"exists": false}]}"#).matches(&with));
    // Binary attributes do not take part in filtering.
    let bin = attributes_document([("k", "Binary", "AAEC")]);
    assert!(!attrs(r#"{"k": [{"exists": true}]}"#).matches(&bin));
}

#[test]
fn cidr() {
    let p = attrs(r#"{"ip": [{"cidr": "10.0.0.0/24"}]}"#);
    assert!(p.matches(&attributes_document([("ip", "String", "10.0.0.255")])));
    assert!(!p.matches(&attributes_document([("ip", "String", "10.0.1.0")])));
    assert!(!p.matches(&attributes_document([("ip", "String", "not an ip")])));
    let p = attrs(r#"{"ip": [{"cidr": "2001:db8::/32"}]}"#);
    assert!(p.matches(&attributes_document([("ip", "String", "2001:db8::1")])));
    assert!(!p.matches(&attributes_document([("ip", "String", "10.0.0.1")])));
}

#[test]
fn several_keys_must_all_match_and_rules_are_alternatives() {
    let p = attrs(r#"{"a": ["x", "y"], "b": [{"prefix": "p"}]}"#);
    assert!(p.matches(&attributes_document([
        ("a", "String", "y"),
        ("b", "String", "pq")
    ])));
    assert!(!p.matches(&attributes_document([("a", "String", "y")])));
    assert!(!p.matches(&attributes_document([
        ("a", "String", "z"),
        ("b", "String", "pq")
    ])));
}

#[test]
fn or_alternatives() {
    let p = attrs(
        r#"{"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPUUtilization"]}, {"namespace": [{"prefix": "AWS/"}]}]}"#,
    );
    let m = |pairs: &[(&str, &str)]| {
        p.matches(&attributes_document(
            pairs.iter().map(|(k, v)| (*k, "String", *v)),
        ))
    };
    assert!(m(&[
        ("source", "aws.cloudwatch"),
        ("metricName", "CPUUtilization")
    ]));
    assert!(m(&[("source", "aws.cloudwatch"), ("namespace", "AWS/EC2")]));
    assert!(!m(&[("source", "aws.cloudwatch"), ("namespace", "Custom")]));
    assert!(!m(&[("source", "other"), ("metricName", "CPUUtilization")]));
}

#[test]
fn nested_body_matching() {
    let p = body(r#"{"detail": {"state": {"value": ["ALARM"]}, "region": [{"prefix": "us-"}]}}"#);
    assert!(p.matches(&json!({"detail": {"state": {"value": "ALARM"}, "region": "us-east-1"}})));
    assert!(!p.matches(&json!({"detail": {"state": {"value": "OK"}, "region": "us-east-1"}})));
    assert!(!p.matches(&json!({"detail": "flat"})));
    assert!(!p.matches(&json!("not an object")));
    // Arrays of objects: some element must match.
    let p = body(r#"{"items": {"sku": ["b"]}}"#);
    assert!(p.matches(&json!({"items": [{"sku": "a"}, {"sku": "b"}]})));
    assert!(!p.matches(&json!({"items": [{"sku": "a"}]})));
    // Booleans and null in bodies.
    let p = body(r#"{"ok": [true], "gone": [null]}"#);
    assert!(p.matches(&json!({"ok": true, "gone": null})));
    assert!(!p.matches(&json!({"ok": false, "gone": null})));
    // exists:false on a nested key that is absent.
    let p = body(r#"{"a": {"b": [{"exists": false}]}}"#);
    assert!(p.matches(&json!({"x": 1})));
    assert!(!p.matches(&json!({"a": {"b": 1}})));
}

#[test]
fn empty_policy_matches_everything() {
    assert!(attrs("{}").matches(&attributes_document([])));
}

#[test]
fn validation_errors() {
    assert_eq!(
        compile_err(r#"{"a": {"b": ["c"]}}"#, false),
        "Filter policy scope MessageAttributes does not support nested filter policy"
    );
    assert_eq!(
        compile_err(r#"{"a": []}"#, false),
        "Empty arrays are not allowed"
    );
    assert_eq!(
        compile_err(r#"{"a": "b"}"#, false),
        "\"a\" must be an object or an array"
    );
    assert_eq!(
        compile_err(r#"{"a": [{"wild": "x"}]}"#, false),
        "Unrecognized match type wild"
    );
    assert_eq!(
        compile_err(r#"{"a": [[1]]}"#, false),
        "Match value must be String, number, true, false, or null"
    );
    assert_eq!(
        compile_err(r#"{"a": [{"prefix": 1}]}"#, false),
        "prefix match pattern must be a string"
    );
    assert_eq!(
        compile_err(r#"{"a": [{"exists": "yes"}]}"#, false),
        "exists match pattern must be either true or false."
    );
    assert_eq!(
        compile_err(r#"{"a": [{"numeric": [">", "x"]}]}"#, false),
        "Value of > must be numeric"
    );
    assert_eq!(
        compile_err(r#"{"a": [{"numeric": ["<", 5, ">", 1]}]}"#, false),
        "Bad numeric range operator: >"
    );
    assert_eq!(
        compile_err(r#"{"a": [{"numeric": [">", 5, "<", 1]}]}"#, false),
        "Bottom must be less than top"
    );
    assert_eq!(
        compile_err(r#"{"a": [{"numeric": [">", 1, "<", 5, "=", 3]}]}"#, false),
        "Too many elements in numeric expression"
    );
    assert_eq!(
        compile_err(r#"{"a": [{"numeric": ["~", 1]}]}"#, false),
        "Unrecognized numeric range operator: ~"
    );
    assert!(compile_err(r#"{"a": [2e9]}"#, false).starts_with("Numeric values must be between"));
    assert_eq!(
        compile_err(r#"{"a": [{"cidr": "10.0.0.0"}]}"#, false),
        "Malformed CIDR, one '/' required"
    );
    assert_eq!(
        compile_err("[1]", false),
        "Filter policy must be a JSON object"
    );
    assert!(compile_err("{", false).starts_with("failed to parse JSON"));
    assert_eq!(
        compile_err(r#"{"$or": [{"a": ["b"]}]}"#, false),
        "Value of $or must be an array of at least 2 objects"
    );
}

#[test]
fn key_and_complexity_limits() {
    let six = r#"{"a":["1"],"b":["1"],"c":["1"],"d":["1"],"e":["1"],"f":["1"]}"#;
    assert_eq!(
        compile_err(six, false),
        "Filter policy can not have more than 5 keys"
    );
    let five: String = r#"{"a":["1"],"b":["1"],"c":["1"],"d":["1"],"e":["1"]}"#.into();
    assert!(Pattern::compile(&five, &Limits::sns(false)).is_ok());
    // 10 × 10 × 2 = 200 combinations > 150.
    let ten = (0..10)
        .map(|i| format!("\"v{i}\""))
        .collect::<Vec<_>>()
        .join(",");
    let complex = format!(r#"{{"a":[{ten}],"b":[{ten}],"c":["x","y"]}}"#);
    assert_eq!(compile_err(&complex, false), "Filter policy is too complex");
    // Nested leaf keys count, intermediate keys do not.
    let nested = r#"{"x":{"a":["1"],"b":["1"],"c":{"d":["1"],"e":["1"],"f":["1"]}},"g":["1"]}"#;
    assert!(Pattern::compile(&nested.replace(r#","g":["1"]"#, ""), &Limits::sns(true)).is_ok());
    assert_eq!(
        compile_err(nested, true),
        "Filter policy can not have more than 5 keys"
    );
    let big = format!(r#"{{"a":["{}"]}}"#, "x".repeat(300 * 1024));
    assert_eq!(compile_err(&big, false), "Filter policy is too big");
}

#[test]
fn hostile_inputs_do_not_panic() {
    let deep = format!(
        "{}{}",
        "{\"a\":".repeat(100),
        "[1]".to_string() + &"}".repeat(100)
    );
    assert!(Pattern::compile(&deep, &Limits::sns(true)).is_err());
    for text in [
        "",
        "null",
        "{\"a\": [{}]}",
        "{\"a\": [{\"numeric\": []}]}",
        "{\"a\": [{\"cidr\": \"1.2.3.4/99\"}]}",
    ] {
        assert!(
            Pattern::compile(text, &Limits::sns(true)).is_err(),
            "{text}"
        );
    }
}

//! The table of pattern cases: every operator with its edge cases, each judged by
//! `Pattern::matches`, `Matcher::matches` and `Matcher::matches_json`, and the invalid patterns
//! with the reasons AWS gives.

use opsloop_eventpattern::{parse, Matcher};
use serde_json::json;

/// (pattern, event, expected match)
fn cases() -> Vec<(&'static str, serde_json::Value, bool)> {
    let ec2 = json!({
        "version": "0", "id": "1", "source": "aws.ec2", "account": "123456789012",
        "detail-type": "EC2 Instance State-change Notification",
        "region": "us-east-1", "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-1"],
        "detail": {"instance-id": "i-1", "state": "stopped", "c-count": 5, "d-count": 3.0e2,
                   "x-limit": 301.8, "ip": "10.0.0.7", "ip6": "2001:db8::42", "flag": true,
                   "nothing": null, "tags": ["a", "B", "ünïcode"], "nested": {"deep": {"k": "v"}},
                   "empty": [], "obj": {"a": 1}, "big": 123456789012_u64, "neg": -7.5,
                   "text": "Hello World", "greek": "ΣΊΣΥΦΟΣ", "path": "dir/file*.txt"}
    });
    let arr = json!({"detail": {"items": [{"n": "a", "v": 1}, {"n": "b", "v": 2}],
                                "grid": [[1, 2], [3, [4, "x"]]],
                                "mixed": [1, "1", {"k": "z"}]}});
    vec![
        // The seed's own example.
        (
            r#"{"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"], "detail": {"state": ["stopped", "terminated"]}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"source": ["aws.ec2"], "detail": {"state": ["running"]}}"#,
            ec2.clone(),
            false,
        ),
        // Exact strings, numbers, booleans, null.
        (r#"{"detail": {"instance-id": ["i-1"]}}"#, ec2.clone(), true),
        (
            r#"{"detail": {"instance-id": ["I-1"]}}"#,
            ec2.clone(),
            false,
        ),
        (r#"{"detail": {"c-count": [5]}}"#, ec2.clone(), true),
        (r#"{"detail": {"c-count": [5.0]}}"#, ec2.clone(), true),
        (r#"{"detail": {"c-count": ["5"]}}"#, ec2.clone(), false),
        (r#"{"detail": {"d-count": [300]}}"#, ec2.clone(), true),
        (r#"{"detail": {"d-count": [3.0e2]}}"#, ec2.clone(), true),
        (r#"{"detail": {"d-count": [30e1]}}"#, ec2.clone(), true),
        (r#"{"detail": {"big": [123456789012]}}"#, ec2.clone(), true),
        (r#"{"detail": {"flag": [true]}}"#, ec2.clone(), true),
        (r#"{"detail": {"flag": [false]}}"#, ec2.clone(), false),
        (r#"{"detail": {"flag": ["true"]}}"#, ec2.clone(), false),
        (r#"{"detail": {"nothing": [null]}}"#, ec2.clone(), true),
        (r#"{"detail": {"missing": [null]}}"#, ec2.clone(), false),
        (r#"{"detail": {"tags": ["B"]}}"#, ec2.clone(), true),
        (r#"{"detail": {"tags": ["ünïcode"]}}"#, ec2.clone(), true),
        (
            r#"{"detail": {"tags": ["\u00fcn\u00efcode"]}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"detail": {"nested": {"deep": {"k": ["v"]}}}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"detail": {"nested": {"deep": ["v"]}}}"#,
            ec2.clone(),
            false,
        ),
        (
            r#"{"detail": {"obj": {"a": [1]}, "state": ["stopped"]}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-1"]}"#,
            ec2.clone(),
            true,
        ),
        // prefix / suffix / equals-ignore-case and their combinations.
        (
            r#"{"detail": {"text": [{"prefix": "Hello"}]}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"detail": {"text": [{"prefix": "hello"}]}}"#,
            ec2.clone(),
            false,
        ),
        (
            r#"{"detail": {"text": [{"prefix": ""}]}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"detail": {"c-count": [{"prefix": "5"}]}}"#,
            ec2.clone(),
            false,
        ),
        (
            r#"{"detail": {"text": [{"prefix": {"equals-ignore-case": "hELLO"}}]}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"detail": {"text": [{"suffix": "World"}]}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"detail": {"text": [{"suffix": "world"}]}}"#,
            ec2.clone(),
            false,
        ),
        (
            r#"{"detail": {"text": [{"suffix": {"equals-ignore-case": "WORLD"}}]}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"detail": {"text": [{"equals-ignore-case": "hello world"}]}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"detail": {"text": [{"equals-ignore-case": "hello"}]}}"#,
            ec2.clone(),
            false,
        ),
        (
            r#"{"detail": {"greek": [{"equals-ignore-case": "σίσυφος"}]}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"detail": {"tags": [{"equals-ignore-case": "ÜNÏCODE"}]}}"#,
            ec2.clone(),
            true,
        ),
        // anything-but in all its forms.
        (
            r#"{"detail": {"state": [{"anything-but": "running"}]}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"detail": {"state": [{"anything-but": "stopped"}]}}"#,
            ec2.clone(),
            false,
        ),
        (
            r#"{"detail": {"state": [{"anything-but": ["stopped", "x"]}]}}"#,
            ec2.clone(),
            false,
        ),
        (
            r#"{"detail": {"c-count": [{"anything-but": [5, 6]}]}}"#,
            ec2.clone(),
            false,
        ),
        (
            r#"{"detail": {"c-count": [{"anything-but": 6}]}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"detail": {"d-count": [{"anything-but": [3e2]}]}}"#,
            ec2.clone(),
            false,
        ),
        (
            r#"{"detail": {"missing": [{"anything-but": "x"}]}}"#,
            ec2.clone(),
            false,
        ),
        (
            r#"{"detail": {"state": [{"anything-but": {"prefix": "sto"}}]}}"#,
            ec2.clone(),
            false,
        ),
        (
            r#"{"detail": {"state": [{"anything-but": {"prefix": ["run", "term"]}}]}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"detail": {"state": [{"anything-but": {"suffix": "ped"}}]}}"#,
            ec2.clone(),
            false,
        ),
        (
            r#"{"detail": {"state": [{"anything-but": {"suffix": "ing"}}]}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"detail": {"state": [{"anything-but": {"equals-ignore-case": ["STOPPED"]}}]}}"#,
            ec2.clone(),
            false,
        ),
        (
            r#"{"detail": {"state": [{"anything-but": {"equals-ignore-case": "RUNNING"}}]}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"detail": {"state": [{"anything-but": {"wildcard": "st*d"}}]}}"#,
            ec2.clone(),
            false,
        ),
        (
            r#"{"detail": {"state": [{"anything-but": {"wildcard": ["r*", "t*"]}}]}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"detail": {"tags": [{"anything-but": ["a", "B"]}]}}"#,
            ec2.clone(),
            true,
        ),
        // numeric: ranges, equality across formats, six decimals, outside ±5e9.
        (
            r#"{"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}]}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"detail": {"c-count": [{"numeric": [">", 0, "<", 5]}]}}"#,
            ec2.clone(),
            false,
        ),
        (
            r#"{"detail": {"c-count": [{"numeric": [">=", 5]}]}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"detail": {"c-count": [{"numeric": [">", 5]}]}}"#,
            ec2.clone(),
            false,
        ),
        (
            r#"{"detail": {"c-count": [{"numeric": ["<", 5.000001]}]}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"detail": {"d-count": [{"numeric": ["=", 300]}]}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"detail": {"d-count": [{"numeric": ["=", 3.0e2]}]}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"detail": {"x-limit": [{"numeric": ["=", 3.018e2]}]}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"detail": {"neg": [{"numeric": [">", -8, "<", -7]}]}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"detail": {"big": [{"numeric": [">", 0]}]}}"#,
            ec2.clone(),
            false,
        ),
        (
            r#"{"detail": {"text": [{"numeric": [">", 0]}]}}"#,
            ec2.clone(),
            false,
        ),
        (
            r#"{"detail": {"c-count": [{"numeric": [">", 0]}], "d-count": [{"numeric": ["<", 301]}]}}"#,
            ec2.clone(),
            true,
        ),
        // exists: leaves only; false matches missing fields.
        (
            r#"{"detail": {"state": [{"exists": true}]}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"detail": {"missing": [{"exists": true}]}}"#,
            ec2.clone(),
            false,
        ),
        (
            r#"{"detail": {"missing": [{"exists": false}]}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"detail": {"state": [{"exists": false}]}}"#,
            ec2.clone(),
            false,
        ),
        (
            r#"{"detail": {"nothing": [{"exists": true}]}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"detail": {"obj": [{"exists": true}]}}"#,
            ec2.clone(),
            false,
        ),
        (
            r#"{"detail": {"obj": [{"exists": false}]}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"detail": {"empty": [{"exists": true}]}}"#,
            ec2.clone(),
            false,
        ),
        (
            r#"{"detail": {"empty": [{"exists": false}]}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"nope": {"deeper": [{"exists": false}]}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"source": {"deeper": [{"exists": false}]}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"detail": {"missing": [{"exists": false}, "x"]}}"#,
            ec2.clone(),
            true,
        ),
        // cidr and IP literals.
        (
            r#"{"detail": {"ip": [{"cidr": "10.0.0.0/24"}]}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"detail": {"ip": [{"cidr": "10.0.1.0/24"}]}}"#,
            ec2.clone(),
            false,
        ),
        (
            r#"{"detail": {"ip": [{"cidr": "10.0.0.8/29"}]}}"#,
            ec2.clone(),
            false,
        ),
        (
            r#"{"detail": {"ip6": [{"cidr": "2001:db8::/64"}]}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"detail": {"ip6": [{"cidr": "10.0.0.0/8"}]}}"#,
            ec2.clone(),
            false,
        ),
        (
            r#"{"detail": {"ip6": ["2001:0db8:0:0:0:0:0:42"]}}"#,
            ec2.clone(),
            true,
        ),
        (r#"{"detail": {"ip": ["10.0.0.7"]}}"#, ec2.clone(), true),
        // wildcard, with escapes.
        (
            r#"{"detail": {"instance-id": [{"wildcard": "i-*"}]}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"detail": {"text": [{"wildcard": "H*o W*d"}]}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"detail": {"text": [{"wildcard": "H*x*d"}]}}"#,
            ec2.clone(),
            false,
        ),
        (
            r#"{"detail": {"path": [{"wildcard": "dir/file\\*.txt"}]}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"detail": {"path": [{"wildcard": "dir/file\\*.*"}]}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"detail": {"state": [{"wildcard": "stopped"}]}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"detail": {"c-count": [{"wildcard": "*"}]}}"#,
            ec2.clone(),
            false,
        ),
        // $or, at the top and nested, and combined with fields.
        (
            r#"{"$or": [{"source": ["aws.s3"]}, {"detail": {"c-count": [5]}}]}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"$or": [{"source": ["aws.s3"]}, {"detail": {"c-count": [6]}}]}"#,
            ec2.clone(),
            false,
        ),
        (
            r#"{"source": ["aws.ec2"], "detail": {"$or": [{"c-count": [{"numeric": [">", 0, "<=", 5]}]}, {"d-count": [{"numeric": ["<", 10]}]}, {"x-limit": [{"numeric": ["=", 3.018e2]}]}]}}"#,
            ec2.clone(),
            true,
        ),
        (
            r#"{"source": ["aws.s3"], "$or": [{"detail": {"c-count": [5]}}, {"detail": {"d-count": [300]}}]}"#,
            ec2.clone(),
            false,
        ),
        (
            r#"{"detail": {"$or": [{"state": ["x"]}, {"$or": [{"flag": [false]}, {"nothing": [null]}]}]}}"#,
            ec2.clone(),
            true,
        ),
        // Arrays: any element; objects in arrays keep their fields together; nested arrays.
        (r#"{"detail": {"items": {"n": ["b"]}}}"#, arr.clone(), true),
        (
            r#"{"detail": {"items": {"n": ["a"], "v": [1]}}}"#,
            arr.clone(),
            true,
        ),
        (
            r#"{"detail": {"items": {"n": ["a"], "v": [2]}}}"#,
            arr.clone(),
            false,
        ),
        (
            r#"{"detail": {"items": {"v": [{"numeric": [">", 1]}]}}}"#,
            arr.clone(),
            true,
        ),
        (
            r#"{"detail": {"items": {"x": [{"exists": false}]}}}"#,
            arr.clone(),
            true,
        ),
        (r#"{"detail": {"grid": [4]}}"#, arr.clone(), true),
        (r#"{"detail": {"grid": ["x"]}}"#, arr.clone(), true),
        (r#"{"detail": {"grid": [5]}}"#, arr.clone(), false),
        (r#"{"detail": {"mixed": ["1"]}}"#, arr.clone(), true),
        (r#"{"detail": {"mixed": {"k": ["z"]}}}"#, arr.clone(), true),
        (
            r#"{"detail": {"mixed": [{"exists": true}]}}"#,
            arr.clone(),
            true,
        ),
        // Repeated field names: the last one wins.
        (
            r#"{"detail": {"state": ["x"], "state": ["stopped"]}}"#,
            ec2.clone(),
            true,
        ),
    ]
}

#[test]
fn every_case_by_every_entry_point() {
    let mut failures = Vec::new();
    for (i, (text, event, want)) in cases().into_iter().enumerate() {
        let p = match parse(text) {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("case {i} {text}: does not parse: {e}"));
                continue;
            }
        };
        let one = p.matches(&event);
        let mut m = Matcher::new();
        m.add(i, &p);
        let many = !m.matches(&event).is_empty();
        let bytes = serde_json::to_vec(&event).unwrap();
        let raw = !m.matches_json(&bytes).is_empty();
        if one != want || many != want || raw != want {
            failures.push(format!(
                "case {i} {text}: want {want}, Pattern::matches {one}, Matcher::matches {many}, matches_json {raw}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn all_cases_in_one_matcher() {
    let cases = cases();
    let mut m = Matcher::new();
    for (i, (text, _, _)) in cases.iter().enumerate() {
        m.add(i, &parse(text).unwrap());
    }
    assert_eq!(m.len(), cases.len());
    for (_, event, _) in &cases {
        let mut got = m.matches(event);
        got.sort_unstable();
        let want: Vec<usize> = cases
            .iter()
            .enumerate()
            .filter(|(_, (t, _, _))| parse(t).unwrap().matches(event))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(got, want);
    }
}

/// (pattern, the reason AWS gives — exact, or a prefix when it ends in "...")
const INVALID: &[(&str, &str)] = &[
    (r#"["a"]"#, "Filter is not an object"),
    (r#""x""#, "Filter is not an object"),
    (r#"{}"#, "Empty objects are not allowed"),
    (r#"{"detail": {}}"#, "Empty objects are not allowed"),
    (r#"{"source": []}"#, "Empty arrays are not allowed"),
    (r#"{"source": "aws.ec2"}"#, "\"source\" must be an object or an array"),
    (r#"{"source": 5}"#, "\"source\" must be an object or an array"),
    (r#"{"source": [["a"]]}"#, "Match value must be String, number, true, false, or null"),
    (r#"{"source": [{}]}"#, "Match expression name not found"),
    (r#"{"source": [{"prefix": "a", "suffix": "b"}]}"#, "Only one key allowed in match expression"),
    (r#"{"source": [{"regex": "a.*"}]}"#, "Unrecognized match type regex"),
    (r#"{"source": [{"prefix": 5}]}"#, "prefix match pattern must be a string"),
    (r#"{"source": [{"suffix": null}]}"#, "suffix match pattern must be a string"),
    (r#"{"source": [{"prefix": {"foo": "a"}}]}"#, "Unsupported prefix pattern: foo"),
    (r#"{"source": [{"suffix": {"foo": "a"}}]}"#, "Unsupported suffix pattern: foo"),
    (r#"{"source": [{"prefix": {"equals-ignore-case": 1}}]}"#, "equals-ignore-case match pattern must be a string"),
    (r#"{"source": [{"equals-ignore-case": ["a"]}]}"#, "equals-ignore-case match pattern must be a string"),
    (r#"{"source": [{"exists": "true"}]}"#, "exists match pattern must be either true or false."),
    (r#"{"source": [{"numeric": 5}]}"#, "Value of numeric must be an array."),
    (r#"{"source": [{"numeric": []}]}"#, "Invalid member in numeric match: ]"),
    (r#"{"source": [{"numeric": [5]}]}"#, "Invalid member in numeric match: 5"),
    (r#"{"source": [{"numeric": ["!=", 5]}]}"#, "Unrecognized numeric range operator: !="),
    (r#"{"source": [{"numeric": ["<", "5"]}]}"#, "Value of < must be numeric"),
    (r#"{"source": [{"numeric": ["=", "5"]}]}"#, "Value of equals must be numeric"),
    (r#"{"source": [{"numeric": ["<", 5, ">", 1]}]}"#, "Too many elements in numeric expression"),
    (r#"{"source": [{"numeric": [">", 5, 6]}]}"#, "Bad value in numeric range: 6"),
    (r#"{"source": [{"numeric": [">", 5, ">", 6]}]}"#, "Bad numeric range operator: >"),
    (r#"{"source": [{"numeric": [">", 5, "<", 9, "<", 10]}]}"#, "Too many terms in numeric range expression"),
    (r#"{"source": [{"numeric": [">", 5, "<", 1]}]}"#, "Bottom must be less than top"),
    (r#"{"source": [{"numeric": [">", 1.1234567]}]}"#, "Only values upto 6 decimals are supported..."),
    (r#"{"source": [{"numeric": ["<", 5000000001]}]}"#, "Value must be between -5000000000 and 5000000000, inclusive"),
    (r#"{"source": [{"anything-but": true}]}"#, "Value of anything-but must be an array or single string/number value."),
    (r#"{"source": [{"anything-but": [true]}]}"#, "Inside anything but list, start|null|boolean is not supported."),
    (r#"{"source": [{"anything-but": ["a", 1]}]}"#, "Inside anything but list, either all values are number or string, mixed type is not supported"),
    (r#"{"source": [{"anything-but": []}]}"#, "Inside anything but list, either all values are number or string, mixed type is not supported"),
    (r#"{"source": [{"anything-but": {"numeric": [">", 1]}}]}"#, "Unsupported anything-but pattern: numeric"),
    (r#"{"source": [{"anything-but": {}}]}"#, "Anything-But expression name not found"),
    (r#"{"source": [{"anything-but": {"prefix": ""}}]}"#, "Null prefix/suffix not allowed"),
    (r#"{"source": [{"anything-but": {"prefix": [1]}}]}"#, "prefix/suffix match pattern must be a string"),
    (r#"{"source": [{"anything-but": {"equals-ignore-case": 1}}]}"#, "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported."),
    (r#"{"source": [{"anything-but": {"wildcard": [1]}}]}"#, "wildcard match pattern must be a string"),
    (r#"{"source": [{"wildcard": "a**b"}]}"#, "Consecutive wildcard characters at pos 2"),
    (r#"{"source": [{"wildcard": "a\\b"}]}"#, "Invalid escape character at pos 2"),
    (r#"{"source": [{"wildcard": 1}]}"#, "wildcard match pattern must be a string"),
    (r#"{"source": [{"cidr": "10.0.0.0"}]}"#, "Malformed CIDR, one '/' required"),
    (r#"{"source": [{"cidr": "10.0.0.0/x"}]}"#, "Malformed CIDR, mask bits must be an integer"),
    (r#"{"source": [{"cidr": "10.0.0.0/-1"}]}"#, "Malformed CIDR, mask bits must not be negative"),
    (r#"{"source": [{"cidr": "10.0.0.0/32"}]}"#, "IPv4 mask bits must be < 32"),
    (r#"{"source": [{"cidr": "::/128"}]}"#, "IPv6 mask bits must be < 128"),
    (r#"{"source": [{"cidr": "host/8"}]}"#, "Nonstandard IP address: host"),
    (r#"{"$or": {"a": ["b"]}}"#, "It must be an Array followed with $or."),
    (r#"{"$or": [{"a": ["b"]}]}"#, "There must have at least 2 Objects in $or relationship."),
    (r#"{"$or": [{"a": ["b"]}, ["c"]]}"#, "Only JSON object is allowed in array of $or relationship."),
    (r#"{"$or": [{"a": ["b"]}, {"numeric": ["c"]}]}"#, "numeric is Ruler reserved fieldName which cannot be used inside $or."),
    (r#"{"source": ["a"]"#, "Unexpected end-of-input: expected close marker for OBJECT..."),
    (r#"{"source": ["a"],}"#, "Unexpected character: was expecting double-quote to start field name..."),
];

#[test]
fn invalid_patterns_give_aws_reasons() {
    let mut failures = Vec::new();
    for (text, want) in INVALID {
        match parse(text) {
            Ok(_) => failures.push(format!("{text}: parsed, want {want:?}")),
            Err(e) => {
                assert!(
                    e.0.starts_with("Event pattern is not valid. Reason: "),
                    "{e}"
                );
                let ok = match want.strip_suffix("...") {
                    Some(prefix) => e.reason().starts_with(prefix),
                    None => e.reason() == *want,
                };
                if !ok {
                    failures.push(format!("{text}: got {:?}, want {want:?}", e.reason()));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn limits() {
    let long = format!(r#"{{"source": ["{}"]}}"#, "a".repeat(5000));
    assert!(parse(&long)
        .unwrap_err()
        .reason()
        .starts_with("Event pattern is too long"));
    // 11 $or groups of 2 → 2048 combinations.
    let group = r#"{"$or": [{"a": ["1"]}, {"b": ["2"]}]}"#;
    let mut text = String::from("{");
    for i in 0..11 {
        text.push_str(&format!(r#""f{i}": {group},"#));
    }
    text.pop();
    text.push('}');
    assert!(parse(&text)
        .unwrap_err()
        .reason()
        .contains("$or combinations"));
    let stars = format!(
        r#"{{"a": [{}]}}"#,
        (0..11)
            .map(|_| format!(r#"{{"wildcard": "{}"}}"#, "x*".repeat(10)))
            .collect::<Vec<_>>()
            .join(",")
    );
    assert!(parse(&stars)
        .unwrap_err()
        .reason()
        .starts_with("Rule is too complex"));
}

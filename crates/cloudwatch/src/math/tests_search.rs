//! Search expression tests: parsing, tokenization and matching, using the examples of the user
//! guide's "CloudWatch search expression syntax" and "search expression examples" pages.

use super::search::partial_match;
use super::{parse_search, MetricIdentity, SearchProperty, SearchSchema, SearchTerm, MAX_NESTING};

fn metric(namespace: &str, name: &str, dims: &[(&str, &str)]) -> MetricIdentity {
    MetricIdentity {
        namespace: namespace.into(),
        metric_name: name.into(),
        dimensions: dims
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    }
}

fn word(v: &str) -> SearchTerm {
    SearchTerm::Match {
        property: None,
        value: v.into(),
        exact: false,
    }
}

#[test]
fn math_search_parse_structure() {
    let q = parse_search(r#" {AWS/EC2,InstanceId} MetricName="CPUUtilization" "#).unwrap();
    assert_eq!(
        q.schema,
        Some(SearchSchema {
            namespace: "AWS/EC2".into(),
            dimensions: vec!["InstanceId".into()]
        })
    );
    assert_eq!(
        q.term,
        Some(SearchTerm::Match {
            property: Some(SearchProperty::MetricName),
            value: "CPUUtilization".into(),
            exact: true
        })
    );

    let q =
        parse_search(r#" {"My Namespace", "Dimension@Name"}, "Custom:Name[Special_Characters" "#)
            .unwrap();
    assert_eq!(
        q.schema,
        Some(SearchSchema {
            namespace: "My Namespace".into(),
            dimensions: vec!["Dimension@Name".into()]
        })
    );
    assert_eq!(
        q.term,
        Some(SearchTerm::Match {
            property: None,
            value: "Custom:Name[Special_Characters".into(),
            exact: true
        })
    );

    let q = parse_search(r#""Europe\\France Traffic\(Network\)""#).unwrap();
    assert_eq!(
        q.term,
        Some(SearchTerm::Match {
            property: None,
            value: r"Europe\France Traffic(Network)".into(),
            exact: true
        })
    );

    let q = parse_search(" (EC2 OR EBS) AND MetricName=ReadOps ").unwrap();
    assert_eq!(
        q.term,
        Some(SearchTerm::And(vec![
            SearchTerm::Or(vec![word("EC2"), word("EBS")]),
            SearchTerm::Match {
                property: Some(SearchProperty::MetricName),
                value: "ReadOps".into(),
                exact: false
            },
        ]))
    );
    assert_eq!(q.schema, None);

    let cases: &[(&str, SearchTerm)] = &[
        (
            "network packets",
            SearchTerm::And(vec![word("network"), word("packets")]),
        ),
        (
            "a OR b c",
            SearchTerm::Or(vec![word("a"), SearchTerm::And(vec![word("b"), word("c")])]),
        ),
        (
            "a and b",
            SearchTerm::And(vec![word("a"), word("and"), word("b")]),
        ),
        (
            "NOT Namespace=AWS",
            SearchTerm::Not(Box::new(SearchTerm::Match {
                property: Some(SearchProperty::Namespace),
                value: "AWS".into(),
                exact: false,
            })),
        ),
        (
            "InstanceType = \"t2.micro\"",
            SearchTerm::Match {
                property: Some(SearchProperty::Dimension("InstanceType".into())),
                value: "t2.micro".into(),
                exact: true,
            },
        ),
    ];
    for (text, want) in cases {
        assert_eq!(
            parse_search(text).unwrap().term.as_ref(),
            Some(want),
            "{text}"
        );
    }
    let q = parse_search("{AWS/EC2}").unwrap();
    assert_eq!(q.term, None);
    assert_eq!(q.schema.unwrap().dimensions, Vec::<String>::new());
}

#[test]
fn math_search_parse_errors() {
    let too_long = "x".repeat(1025);
    let too_deep = format!(
        "{}a{}",
        "(".repeat(MAX_NESTING + 1),
        ")".repeat(MAX_NESTING + 1)
    );
    let nots = format!("{}a", "NOT ".repeat(5_000));
    let many_nots = format!("{}a", "NOT ".repeat(MAX_NESTING + 1));
    let cases: &[(&str, &str)] = &[
        (
            "",
            "a search must contain a metric schema, a search term, or both",
        ),
        (
            "   ",
            "a search must contain a metric schema, a search term, or both",
        ),
        ("{AWS/EC2", "the metric schema is missing its closing '}'"),
        ("{}", "the metric schema contains an empty name"),
        ("{AWS/EC2,}", "the metric schema contains an empty name"),
        ("{\"AWS/EC2}", "unterminated double-quoted string"),
        (
            "{A} {B}",
            "the metric schema {...} must come first in the query",
        ),
        ("(a", "missing ')'"),
        ("()", "empty parentheses"),
        ("a OR", "the query ends where a search term is expected"),
        ("a )", "unexpected ')'"),
        ("MetricName=", "expected a value after '='"),
        ("MetricName=(x)", "expected a value after '=', found '('"),
        ("=x", "unexpected '='"),
        ("\"abc", "unterminated double-quoted string"),
        (
            too_long.as_str(),
            "the query is longer than 1024 characters",
        ),
        (
            too_deep.as_str(),
            "the query is nested too deeply (at most 50 levels)",
        ),
        (nots.as_str(), "the query is longer than 1024 characters"),
        (
            many_nots.as_str(),
            "the query is nested too deeply (at most 50 levels)",
        ),
    ];
    for (text, want) in cases {
        let err = parse_search(text).unwrap_err();
        assert_eq!(
            err.message,
            format!("Invalid search expression: {want}"),
            "{text}"
        );
    }
    assert!(parse_search(&"x".repeat(1024)).is_ok());
}

#[test]
fn math_search_tokenized_partial_matches() {
    // (search word, name, matches)
    let cases: &[(&str, &str, bool)] = &[
        // "Partial matches": single tokens match case-insensitively ...
        ("count", "CustomCount1", true),
        ("Count", "CustomCount1", true),
        ("COUNT", "CustomCount1", true),
        ("1", "CustomCount1", true),
        ("custom", "CustomCount1", true),
        // ... capitalization splits the search word too ...
        ("couNT", "CustomCount1", false),
        // ... and composite tokens match case-sensitively.
        ("CustomCount", "CustomCount1", true),
        ("Count1", "CustomCount1", true),
        ("customcount", "CustomCount1", false),
        ("count1", "CustomCount1", false),
        // The whole-name token of the tokenization table.
        ("customcount1", "CustomCount1", true),
        ("sdbfailure", "SDBFailure", true),
        ("sdb", "SDBFailure", true),
        ("failure", "SDBFailure", true),
        ("project2trial333", "Project2-trial333", true),
        ("trial", "Project2-trial333", true),
        ("333", "Project2-trial333", true),
        ("33", "Project2-trial333", false),
        // Non-alphanumeric characters in the search word delimit tokens.
        ("network/errors", "Network-Errors-2", true),
        ("network+errors", "NetworkErrors2", true),
        ("network-errors", "Network-Errors-2", true),
        ("Network_Errors", "NetworkErrors2", true),
        ("errors/network", "Network-Errors-2", false),
        ("Errors", "ConnectionErrors", true),
        ("Errors", "errors", true),
        ("micro", "t2.micro", true),
        ("mic", "t2.micro", false),
        ("EC2", "AWS/EC2", true),
        ("AWS", "AWS/EC2", true),
        ("ReadOps", "VolumeReadOps", true),
        ("ProjectA", "my-ProjectA-fn", true),
        ("i-1234567890123456", "i-1234567890123456", true),
        ("---", "a-b", false),
    ];
    for (word, name, want) in cases {
        assert_eq!(partial_match(word, name), *want, "{word} vs {name}");
    }
}

#[test]
fn math_search_matching_table() {
    let ec2_cpu = metric(
        "AWS/EC2",
        "CPUUtilization",
        &[("InstanceId", "i-1234567890123456")],
    );
    let ec2_cpu2 = metric("AWS/EC2", "CPUUtilization", &[("InstanceId", "i-abc")]);
    let ec2_type = metric("AWS/EC2", "CPUUtilization", &[("InstanceType", "t2.micro")]);
    let ec2_agg = metric("AWS/EC2", "CPUUtilization", &[]);
    let ec2_multi = metric(
        "AWS/EC2",
        "CPUUtilization",
        &[("InstanceId", "i-abc"), ("ImageId", "ami-1")],
    );
    let ebs_read = metric("AWS/EBS", "VolumeReadOps", &[("VolumeId", "vol-1")]);
    let custom = metric("MyNamespace", "CustomCount1", &[("Project", "ProjectA")]);
    let lambda_err = metric("AWS/Lambda", "Errors", &[("FunctionName", "fn-ProjectA")]);
    let lambda_inv_a = metric(
        "AWS/Lambda",
        "Invocations",
        &[("FunctionName", "my-ProjectA")],
    );
    let lambda_inv_c = metric("AWS/Lambda", "Invocations", &[("FunctionName", "other")]);
    let conn_err = metric("App", "ConnectionErrors", &[]);
    let lower_err = metric("App", "errors", &[]);
    let spaced = metric(
        "Custom-Namespace",
        "ErrorCount",
        &[("Dimension Name With Spaces", "x")],
    );

    let cases: &[(&str, &MetricIdentity, bool)] = &[
        // A schema selects its namespace and exactly its set of dimension names.
        (
            r#"{AWS/EC2,InstanceId} MetricName="CPUUtilization""#,
            &ec2_cpu,
            true,
        ),
        (
            r#"{AWS/EC2,InstanceId} MetricName="CPUUtilization""#,
            &ec2_type,
            false,
        ),
        (
            r#"{AWS/EC2,InstanceId} MetricName="CPUUtilization""#,
            &ec2_agg,
            false,
        ),
        (
            r#"{AWS/EC2,InstanceId} MetricName="CPUUtilization""#,
            &ec2_multi,
            false,
        ),
        (
            r#"{AWS/EC2,InstanceId} MetricName="CPUUtilization""#,
            &ebs_read,
            false,
        ),
        (r#"{AWS/EC2, ImageId, InstanceId}"#, &ec2_multi, true),
        (r#"{AWS/EC2} MetricName="CPUUtilization""#, &ec2_agg, true),
        (r#"{AWS/EC2} MetricName="CPUUtilization""#, &ec2_cpu, false),
        (r#"{aws/ec2} MetricName="CPUUtilization""#, &ec2_agg, false),
        // Dimension names as properties, partial and exact.
        ("{AWS/EC2,InstanceType} InstanceType=micro", &ec2_type, true),
        (
            r#"{AWS/EC2,InstanceType} InstanceType="t2.micro""#,
            &ec2_type,
            true,
        ),
        (
            r#"{AWS/EC2,InstanceType} InstanceType="micro""#,
            &ec2_type,
            false,
        ),
        ("InstanceType=micro", &ec2_cpu, false),
        (
            r#"InstanceType="t2.micro" Namespace="AWS/EC2""#,
            &ec2_type,
            true,
        ),
        // NOT.
        (
            r#"{AWS/EC2,InstanceId} MetricName="CPUUtilization" NOT i-1234567890123456"#,
            &ec2_cpu,
            false,
        ),
        (
            r#"{AWS/EC2,InstanceId} MetricName="CPUUtilization" NOT i-1234567890123456"#,
            &ec2_cpu2,
            true,
        ),
        ("NOT Namespace=AWS", &custom, true),
        ("NOT Namespace=AWS", &ec2_cpu, false),
        ("NOT Namespace=AWS", &conn_err, true),
        (
            r#"MetricName="CustomCount1" NOT "ProjectA" NOT "ProjectB""#,
            &custom,
            false,
        ),
        // Exact matches are case sensitive and whole-name.
        (r#""CustomCount1""#, &custom, true),
        (r#"{MyNamespace}, "CustomCount1""#, &custom, false),
        (r#"{MyNamespace, Project}, "CustomCount1""#, &custom, true),
        (r#""customcount1""#, &custom, false),
        (r#""Custom""#, &custom, false),
        ("Errors", &conn_err, true),
        ("Errors", &lower_err, true),
        ("Errors", &lambda_err, true),
        (r#""Errors""#, &lambda_err, true),
        (r#""Errors""#, &conn_err, false),
        (r#""Errors""#, &lower_err, false),
        // Boolean grouping.
        ("(EC2 OR EBS) MetricName=ReadOps", &ebs_read, true),
        ("(EC2 OR EBS) AND MetricName=ReadOps", &ec2_cpu, false),
        (
            r#"MetricName="CPUUtilization" AND ("AWS/ECS" OR "AWS/EC2")"#,
            &ec2_cpu,
            true,
        ),
        (
            r#"MetricName="CPUUtilization" AND ("AWS/ECS" OR "AWS/ES")"#,
            &ec2_cpu,
            false,
        ),
        (
            r#"{AWS/Lambda,FunctionName} MetricName="Errors" OR (MetricName="Invocations" AND (ProjectA OR ProjectB))"#,
            &lambda_err,
            true,
        ),
        (
            r#"{AWS/Lambda,FunctionName} MetricName="Errors" OR (MetricName="Invocations" AND (ProjectA OR ProjectB))"#,
            &lambda_inv_a,
            true,
        ),
        (
            r#"{AWS/Lambda,FunctionName} MetricName="Errors" OR (MetricName="Invocations" AND (ProjectA OR ProjectB))"#,
            &lambda_inv_c,
            false,
        ),
        (
            r#"{"Custom-Namespace", "Dimension Name With Spaces"}, ErrorCount"#,
            &spaced,
            true,
        ),
        (
            r#"{"Custom-Namespace", "Dimension Name With Spaces"}, ErrorCount"#,
            &custom,
            false,
        ),
        (r#""Dimension Name With Spaces"=x"#, &spaced, true),
        // Implicit AND.
        ("{AWS/EC2,InstanceId} cpu utilization", &ec2_cpu, true),
        ("{AWS/EC2,InstanceId} cpu memory", &ec2_cpu, false),
    ];
    for (text, m, want) in cases {
        let q = parse_search(text).unwrap();
        assert_eq!(q.matches(m), *want, "{text} vs {m:?}");
    }
}

//! Parser tests: precedence and associativity (checked through scalar results computed by hand),
//! tree shape, error wording and positions, hostile input, `referenced_ids`.

use super::testenv::TestEnv;
use super::{parse, BinOp, Func, Node, MAX_NESTING};

#[test]
fn math_precedence_and_associativity() {
    let env = TestEnv::new();
    let cases: &[(&str, f64)] = &[
        ("1+2*3", 7.0),
        ("(1+2)*3", 9.0),
        ("10-4-3", 3.0),
        ("100/10/5", 2.0),
        ("2^3^2", 512.0),
        ("-2^2", -4.0),
        ("2^-1", 0.5),
        ("(-2)^2", 4.0),
        ("- - 3", 3.0),
        ("5 - -3", 8.0),
        ("-5*2", -10.0),
        ("1+2 > 2", 1.0),
        ("1+2 > 3", 0.0),
        ("2 == 2", 1.0),
        ("2 != 2", 0.0),
        ("3 >= 3", 1.0),
        ("3 <= 2", 0.0),
        ("1 < 2 AND 3 < 2", 0.0),
        ("1 < 2 OR 3 < 2", 1.0),
        ("1 OR 1 AND 0", 1.0),
        ("1 || 0 && 0", 1.0),
        ("(1 || 0) && 0", 0.0),
        ("-3 AND 2", 1.0),
        ("0 OR 0", 0.0),
        ("1e3 + 2.5E-1", 1000.25),
        (".5 * 4", 2.0),
        ("5. + 1", 6.0),
        ("1e-36 * 1e36", 1.0),
        ("\t 7 \n", 7.0),
    ];
    for (expr, want) in cases {
        let got = env.scalar(expr);
        assert!((got - want).abs() < 1e-9, "{expr}: got {got}, want {want}");
    }
}

#[test]
fn math_scalar_division_by_zero_is_no_value() {
    let env = TestEnv::new();
    assert!(env.scalar("1/0").is_nan());
    assert!(env.scalar("0/0 + 5").is_nan());
    assert!(env.scalar("10^400").is_nan(), "overflow is no value");
}

#[test]
fn math_tree_shape() {
    let e = parse("1+2*3").unwrap();
    let want = Node::Chain {
        first: Box::new(Node::Number(1.0)),
        rest: vec![(
            BinOp::Add,
            Node::Chain {
                first: Box::new(Node::Number(2.0)),
                rest: vec![(BinOp::Mul, Node::Number(3.0))],
            },
        )],
    };
    assert_eq!(e.root, want);

    let e = parse("FILL(m1, REPEAT)").unwrap();
    assert_eq!(
        e.root,
        Node::Call {
            func: Func::Fill,
            args: vec![
                Node::Id {
                    name: "m1".into(),
                    pos: 6
                },
                Node::Keyword {
                    name: "REPEAT".into(),
                    pos: 10
                }
            ],
            pos: 1
        }
    );
    assert_eq!(
        parse("2^3^2").unwrap().root,
        Node::Pow(vec![
            Node::Number(2.0),
            Node::Number(3.0),
            Node::Number(2.0)
        ])
    );
}

#[test]
fn math_syntax_errors_name_position_and_token() {
    let cases: &[(&str, &str)] = &[
        ("", "The expression is empty"),
        ("   ", "The expression is empty"),
        ("m1 +", "Syntax error at position 5: unexpected end of expression"),
        ("m1 + * m2", "Syntax error at position 6: unexpected '*'"),
        ("(m1 + m2", "Syntax error at position 9: expected ')' to close '(', found end of expression"),
        ("m1 m2", "Syntax error at position 4: unexpected identifier 'm2'"),
        ("avg(m1)", "Syntax error at position 1: unknown function 'avg' (function names are written in uppercase)"),
        ("FOO(m1)", "Syntax error at position 1: unknown function 'FOO'"),
        ("M1 + 1", "Syntax error at position 1: unexpected 'M1' (Ids must start with a lowercase letter)"),
        ("m1 # 2", "Syntax error at position 4: unexpected character '#'"),
        ("m1 + ü", "Syntax error at position 6: unexpected character 'ü'"),
        ("é", "Syntax error at position 1: unexpected character 'é'"),
        ("_x + 1", "Syntax error at position 1: an Id must start with a lowercase letter, not '_'"),
        ("'abc'", "Syntax error at position 1: a string ('abc') is only allowed as a function argument"),
        ("m1 + 'abc", "Syntax error at position 6: unterminated string literal"),
        ("SUM(m1, m2)", "Syntax error at position 1: SUM takes 1 argument(s), 2 given"),
        ("IF(m1)", "Syntax error at position 1: IF takes 2 to 3 argument(s), 1 given"),
        ("1e999", "Syntax error at position 1: number '1e999' is out of range"),
        ("2m1", "Syntax error at position 1: invalid number '2m1'"),
        ("1.2.3", "Syntax error at position 1: invalid number '1.2.3'"),
        ("1e", "Syntax error at position 1: invalid number '1e'"),
        ("METRICS(m1)", "Syntax error at position 9: argument 1 of METRICS must be a quoted string"),
        ("SORT(METRICS(), FOO, ASC)", "Syntax error at position 17: argument 2 of SORT must be one of AVG, MIN, MAX, SUM, STDDEV, found 'FOO'"),
        ("SORT(METRICS(), AVG, UP)", "Syntax error at position 22: argument 3 of SORT must be one of ASC, DESC, found 'UP'"),
        ("SORT(METRICS(), m1, ASC)", "Syntax error at position 17: argument 2 of SORT must be a sort function (AVG, MIN, MAX, SUM or STDDEV)"),
        ("FILL(m1, CONSTANT)", "Syntax error at position 10: argument 2 of FILL must be one of REPEAT, LINEAR, found 'CONSTANT'"),
        ("ABS('x')", "Syntax error at position 5: argument 1 of ABS cannot be a string"),
        ("ABS(REPEAT)", "Syntax error at position 5: unexpected 'REPEAT' (Ids must start with a lowercase letter)"),
        ("[]", "Syntax error at position 2: an array must contain at least one element"),
        ("[m1, m2", "Syntax error at position 8: expected ']' to close '[', found end of expression"),
        ("SEARCH(m1, 'Average', 300)", "Syntax error at position 8: argument 1 of SEARCH must be a quoted search expression"),
        ("SEARCH('{AWS/EC2}', 'Average', 'x')", "Syntax error at position 32: argument 3 of SEARCH cannot be a string"),
        ("NOT m1", "Syntax error at position 1: unexpected 'NOT' (Ids must start with a lowercase letter)"),
        ("m1 = 2", "Syntax error at position 4: unexpected character '='"),
        ("SELECT AVG(CPUUtilization) FROM SCHEMA(\"AWS/EC2\")", "Metrics Insights queries (SELECT ...) are not supported by this CloudWatch implementation"),
    ];
    for (expr, want) in cases {
        match parse(expr) {
            Err(e) => assert_eq!(e.message, *want, "{expr}"),
            Ok(v) => panic!("{expr}: expected an error, parsed {v:?}"),
        }
    }
}

#[test]
fn math_nesting_is_capped_without_overflowing_the_stack() {
    let deep =
        |open: &str, close: &str, n: usize| format!("{}m1{}", open.repeat(n), close.repeat(n));
    // At the limit: fine.
    assert!(parse(&deep("(", ")", MAX_NESTING)).is_ok());
    assert!(parse(&deep("ABS(", ")", MAX_NESTING)).is_ok());
    // One past the limit, and absurdly past it: a clean error.
    for input in [
        deep("(", ")", MAX_NESTING + 1),
        deep("(", ")", 200_000),
        deep("ABS(", ")", 100_000),
        deep("[", "]", 100_000),
        format!("{}1", "-".repeat(100_000)),
        format!("2^{}1", "-".repeat(100_000)),
        "(".repeat(100_000),
    ] {
        let err = parse(&input).unwrap_err();
        assert!(err.message.contains("nested too deeply"), "{}", err.message);
    }
}

#[test]
fn math_long_flat_chains_parse_and_evaluate() {
    let env = TestEnv::new().metric("m1", &[(0, 1.0)]);
    let expr = format!("m1{}", "+m1".repeat(20_000));
    assert_eq!(env.series(&expr), vec![(0, 20_001.0)]);
    let pow = format!("1{}", "^1".repeat(20_000));
    assert_eq!(env.scalar(&pow), 1.0);
}

#[test]
fn math_garbage_never_panics() {
    let samples = [
        "((((",
        "))))",
        "[[[[",
        "]]]]",
        ",,,",
        "m1,",
        "(,)",
        "ABS(,)",
        "ABS()",
        "IF(,,)",
        "'",
        "\"",
        "“",
        "“abc”",
        "SEARCH('",
        "SEARCH('{', 'Average', 300)",
        "FILL(m1,)",
        "SORT()",
        "SLICE(METRICS(),)",
        "1e+",
        "1e+5",
        ".",
        "..5",
        "&",
        "|",
        "!",
        "m1 && && m2",
        "m1 ||",
        "\u{0}",
        "𝔪1",
        "m1\u{200B}+1",
        "99999999999999999999999999999999999999999999999999999999999999999999999999999999999",
        "0.00000000000000000000000000000000000000000000000000000000000000000000000000000001",
    ];
    for s in samples {
        let _ = parse(s);
    }
    // Deterministic pseudo-random strings over the expression alphabet.
    let alphabet: Vec<char> = "m1e2 ()[],+-*/^<>=!&|'\"ABSIFLMETRICS.é_".chars().collect();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..3_000 {
        let len = (state % 40) as usize;
        let mut s = String::new();
        for _ in 0..len {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            s.push(alphabet[(state >> 33) as usize % alphabet.len()]);
        }
        if let Ok(e) = parse(&s) {
            let _ = e.referenced_ids();
            let env = TestEnv::new()
                .metric("m1", &[(0, 1.0)])
                .metric("m2", &[(60, 2.0)]);
            let _ = super::eval(&e, &env);
        }
        state = state.wrapping_add(0x2545_F491_4F6C_DD1D);
    }
}

#[test]
fn math_referenced_ids() {
    let cases: &[(&str, &[&str])] = &[
        ("m1 + m2 * m1", &["m1", "m2"]),
        ("SUM(METRICS('errors')) / requests", &["requests"]),
        (
            "SEARCH('{AWS/EC2,InstanceId} MetricName=\"CPUUtilization\"', 'Average', 300)",
            &[],
        ),
        ("FILL(m1, REPEAT)", &["m1"]),
        ("SORT(METRICS(), AVG, DESC, limit_e)", &["limit_e"]),
        ("ANOMALY_DETECTION_BAND(m1, 2)", &["m1"]),
        ("IF(e1 > 5, e2, e3)", &["e1", "e2", "e3"]),
        ("[m1, [m2, m3]]", &["m1", "m2", "m3"]),
        ("-x^y", &["x", "y"]),
        ("TIME_SERIES(10)", &[]),
        ("errorRate_2 * 100", &["errorRate_2"]),
    ];
    for (expr, want) in cases {
        let got = parse(expr).unwrap().referenced_ids();
        assert_eq!(
            got,
            want.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "{expr}"
        );
    }
}

#[test]
fn math_expression_introspection() {
    assert!(parse("SUM(METRICS())").unwrap().uses_metrics_function());
    assert!(!parse("SUM([m1, m2])").unwrap().uses_metrics_function());
    let e =
        parse("SUM(SEARCH('{AWS/Lambda, FunctionName} MetricName=\"Errors\"', 'Sum', 300)) + m1")
            .unwrap();
    let queries = e.search_queries();
    assert_eq!(queries.len(), 1);
    assert_eq!(queries[0].schema.as_ref().unwrap().namespace, "AWS/Lambda");
    assert!(parse("m1 + 1").unwrap().search_queries().is_empty());
}

#[test]
fn math_string_literals_are_verbatim() {
    // Backslashes reach the search parser untouched; typographic quotes (as in the guide's
    // METRICS(“4xx”) example) delimit strings too.
    let e = parse(r#"SEARCH('"Europe\\France Traffic\(Network\)"', 'Sum', 60)"#).unwrap();
    assert_eq!(
        e.search_queries()[0].text,
        r#""Europe\\France Traffic\(Network\)""#
    );
    let e = parse("METRICS(“4xx”)").unwrap();
    assert_eq!(
        e.root,
        Node::Call {
            func: Func::Metrics,
            args: vec![Node::Str("4xx".into())],
            pos: 1
        }
    );
}

#[test]
fn math_referenced_ids_of_a_large_expression() {
    let n = 50_000;
    let expr: Vec<String> = (0..n).map(|i| format!("id{i}")).collect();
    let ids = parse(&expr.join("+")).unwrap().referenced_ids();
    assert_eq!(ids.len(), n);
    assert_eq!(ids[0], "id0");
    assert_eq!(ids[n - 1], format!("id{}", n - 1));
}

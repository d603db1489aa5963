//! Operator semantics: scalar / series / array combinations, missing values, dropped points, labels,
//! and the comparison examples of the user guide.

use super::testenv::{pts, ts, TestEnv};
use super::{eval_result, parse, MathValue, Series};

/// m1 = [1, 2, 3] at 0, 60, 120; m2 = [10, 0, 5] at 60, 120, 180.
fn env() -> TestEnv {
    TestEnv::new()
        .metric("m1", &[(0, 1.0), (60, 2.0), (120, 3.0)])
        .metric("m2", &[(60, 10.0), (120, 0.0), (180, 5.0)])
}

#[test]
fn math_series_arithmetic_table() {
    let env = env();
    let cases: &[(&str, &[(i64, f64)])] = &[
        // Union of timestamps, a missing value counting as 0.
        ("m1 + m2", &[(0, 1.0), (60, 12.0), (120, 3.0), (180, 5.0)]),
        ("m1 - m2", &[(0, 1.0), (60, -8.0), (120, 3.0), (180, -5.0)]),
        ("m1 * m2", &[(0, 0.0), (60, 20.0), (120, 0.0), (180, 0.0)]),
        // Division by zero drops the data point: 1/0 at 0 (m2 missing), 3/0 at 120.
        ("m1 / m2", &[(60, 0.2), (180, 0.0)]),
        ("m2 / 0", &[]),
        ("m1 * 2", &[(0, 2.0), (60, 4.0), (120, 6.0)]),
        ("5 * m1", &[(0, 5.0), (60, 10.0), (120, 15.0)]),
        ("12 / m1", &[(0, 12.0), (60, 6.0), (120, 4.0)]),
        ("m1 ^ 2", &[(0, 1.0), (60, 4.0), (120, 9.0)]),
        ("2 ^ m1", &[(0, 2.0), (60, 4.0), (120, 8.0)]),
        ("-m1", &[(0, -1.0), (60, -2.0), (120, -3.0)]),
        ("-5*m1", &[(0, -5.0), (60, -10.0), (120, -15.0)]),
        ("m1 - AVG(m1)", &[(0, -1.0), (60, 0.0), (120, 1.0)]),
        (
            "(m1 + m2) / 2",
            &[(0, 0.5), (60, 6.0), (120, 1.5), (180, 2.5)],
        ),
        ("m1 > 1", &[(0, 0.0), (60, 1.0), (120, 1.0)]),
        ("m1 == m2", &[(0, 0.0), (60, 0.0), (120, 0.0), (180, 0.0)]),
        ("m1 != 2", &[(0, 1.0), (60, 0.0), (120, 1.0)]),
        ("m1 AND m2", &[(0, 0.0), (60, 1.0), (120, 0.0), (180, 0.0)]),
        ("m1 OR m2", &[(0, 1.0), (60, 1.0), (120, 1.0), (180, 1.0)]),
    ];
    for (expr, want) in cases {
        assert_eq!(env.series(expr), want.to_vec(), "{expr}");
    }
}

#[test]
fn math_guide_comparison_examples() {
    // metric1 = [30, 20, 0, 0], metric2 = [20, -, 20, -] (user guide, comparison operators).
    let env = TestEnv::new()
        .metric("metric1", &[(0, 30.0), (60, 20.0), (120, 0.0), (180, 0.0)])
        .metric("metric2", &[(0, 20.0), (120, 20.0)]);
    let cases: &[(&str, &[f64])] = &[
        ("(metric1 < metric2)", &[0.0, 0.0, 1.0, 0.0]),
        ("(metric1 >= 30)", &[1.0, 0.0, 0.0, 0.0]),
        ("(metric1 > 15 AND metric2 > 15)", &[1.0, 0.0, 0.0, 0.0]),
        ("(metric1 > 15 && metric2 > 15)", &[1.0, 0.0, 0.0, 0.0]),
    ];
    for (expr, want) in cases {
        let got: Vec<f64> = env.series(expr).into_iter().map(|p| p.1).collect();
        assert_eq!(got, want.to_vec(), "{expr}");
    }
}

#[test]
fn math_labels_follow_the_series() {
    let env = env();
    let label = |expr: &str| match env.run(expr).unwrap() {
        MathValue::Series(s) => s.label,
        other => panic!("{expr}: {other:?}"),
    };
    assert_eq!(label("m1 * 100"), "m1");
    assert_eq!(label("100 - m2"), "m2");
    assert_eq!(label("m2 + m1"), "m2");
    assert_eq!(label("SUM([m1, m2])"), "");
}

#[test]
fn math_array_combinations() {
    let env = env();
    assert_eq!(
        env.array("[m1, m2] * 10"),
        vec![
            ("m1".to_string(), vec![(0, 10.0), (60, 20.0), (120, 30.0)]),
            ("m2".to_string(), vec![(60, 100.0), (120, 0.0), (180, 50.0)]),
        ]
    );
    assert_eq!(
        env.array("METRICS() / 100"),
        vec![
            ("m1".to_string(), vec![(0, 0.01), (60, 0.02), (120, 0.03)]),
            ("m2".to_string(), vec![(60, 0.1), (120, 0.0), (180, 0.05)]),
        ]
    );
    assert_eq!(
        env.array("[m1, m2] - m1"),
        vec![
            ("m1".to_string(), vec![(0, 0.0), (60, 0.0), (120, 0.0)]),
            (
                "m2".to_string(),
                vec![(0, -1.0), (60, 8.0), (120, -3.0), (180, 5.0)]
            ),
        ]
    );
    assert_eq!(
        env.array("m1 - [m1, m2]"),
        vec![
            ("m1".to_string(), vec![(0, 0.0), (60, 0.0), (120, 0.0)]),
            (
                "m2".to_string(),
                vec![(0, 1.0), (60, -8.0), (120, 3.0), (180, -5.0)]
            ),
        ]
    );
    // 100/[m1, m2]: the 0 of m2 at 120 is dropped.
    assert_eq!(
        env.series("SUM(100/[m1, m2])"),
        vec![(0, 100.0), (60, 60.0), (120, 100.0 / 3.0), (180, 20.0)]
    );
    assert_eq!(
        env.series("SUM(-[m1, m2])"),
        vec![(0, -1.0), (60, -12.0), (120, -3.0), (180, -5.0)]
    );
    // Nested arrays flatten (the guide's SUM([METRICS("4xx"), METRICS("5xx")])).
    assert_eq!(env.array("[METRICS('m1'), METRICS('m2')]").len(), 2);
    assert_eq!(env.array("[m1, [m2, m1]]").len(), 3);
}

#[test]
fn math_evaluation_errors() {
    let env = env().value("scalar_e", MathValue::Scalar(2.0));
    let cases: &[(&str, &str)] = &[
        ("m9 + 1", "The expression references an unknown Id: m9"),
        (
            "[m1, m2] + [m1, m2]",
            "The operator + cannot combine two arrays of time series",
        ),
        (
            "[m1, 5]",
            "An array can contain only time series and arrays of time series, not scalar values",
        ),
        (
            "[m1, scalar_e]",
            "An array can contain only time series and arrays of time series, not scalar values",
        ),
    ];
    for (expr, want) in cases {
        assert_eq!(env.error(expr), *want, "{expr}");
    }
    assert_eq!(env.scalar("scalar_e * 3"), 6.0);
}

#[test]
fn math_no_value_scalars_drop_points() {
    let env = env().value("empty", MathValue::Series(ts("empty", &[])));
    assert!(env.scalar("AVG(empty)").is_nan());
    assert_eq!(env.series("m1 - AVG(empty)"), vec![]);
    assert_eq!(env.series("m1 * (1/0)"), vec![]);
    assert_eq!(
        env.series("LOG(m1 - 2)"),
        vec![(120, 0.0)],
        "log(-1) and log(0) are dropped"
    );
}

#[test]
fn math_caller_series_are_normalised() {
    // Unsorted, a duplicate timestamp (the later entry wins), a NaN, and one value too many.
    let raw = Series {
        label: "raw".into(),
        timestamps: vec![120, 0, 60, 60],
        values: vec![3.0, 1.0, f64::NAN, 2.0, 99.0],
    };
    let env = TestEnv::new().value("raw", MathValue::Series(raw));
    assert_eq!(env.series("raw * 1"), vec![(0, 1.0), (60, 2.0), (120, 3.0)]);
    assert_eq!(env.scalar("SUM(raw)"), 6.0);
}

#[test]
fn math_eval_result_rejects_a_final_scalar() {
    let env = env();
    let err = eval_result(&parse("AVG(m1)").unwrap(), &env).unwrap_err();
    assert!(
        err.message
            .contains("must be a single time series or an array"),
        "{}",
        err.message
    );
    match eval_result(&parse("m1 - AVG(m1)").unwrap(), &env).unwrap() {
        MathValue::Series(s) => assert_eq!(pts(&s), vec![(0, -1.0), (60, 0.0), (120, 1.0)]),
        other => panic!("{other:?}"),
    }
}

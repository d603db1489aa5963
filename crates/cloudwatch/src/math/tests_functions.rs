//! The function table, with expected values computed by hand from the user guide's definitions.

use super::series::civil;
use super::testenv::{ts, TestEnv};
use super::{MathValue, MetricIdentity};

/// Assert that `expr` evaluates to a series with these points (values within 1e-9).
fn assert_series(env: &TestEnv, expr: &str, want: &[(i64, f64)]) {
    let got = env.series(expr);
    let same = got.len() == want.len()
        && got
            .iter()
            .zip(want)
            .all(|(g, w)| g.0 == w.0 && (g.1 - w.1).abs() < 1e-9);
    assert!(same, "{expr}: got {got:?}, want {want:?}");
}

/// a = [1, 3] at 0, 60; b = [10] at 0; c = [5, 5] at 0, 60; d has no data.
fn sort_env() -> TestEnv {
    TestEnv::new()
        .metric("a", &[(0, 1.0), (60, 3.0)])
        .metric("b", &[(0, 10.0)])
        .metric("c", &[(0, 5.0), (60, 5.0)])
        .metric("d", &[])
}

fn labels(v: Vec<(String, Vec<(i64, f64)>)>) -> Vec<String> {
    v.into_iter().map(|(l, _)| l).collect()
}

#[test]
fn math_pointwise_functions() {
    let env = TestEnv::new()
        .metric("m", &[(0, -1.5), (60, 2.0), (120, 1.2)])
        .metric("p", &[(0, 1.0), (60, 100.0), (120, 1000.0)]);
    let cases: &[(&str, &[(i64, f64)])] = &[
        ("ABS(m)", &[(0, 1.5), (60, 2.0), (120, 1.2)]),
        ("CEIL(m)", &[(0, -1.0), (60, 2.0), (120, 2.0)]),
        ("FLOOR(m)", &[(0, -2.0), (60, 2.0), (120, 1.0)]),
        ("LOG10(p)", &[(0, 0.0), (60, 2.0), (120, 3.0)]),
        // ln(-1.5) is undefined: dropped.
        (
            "LOG(m)",
            &[(60, std::f64::consts::LN_2), (120, 0.182_321_556_793_954_6)],
        ),
        ("ABS(m - 2)", &[(0, 3.5), (60, 0.0), (120, 0.8)]),
    ];
    for (expr, want) in cases {
        assert_series(&env, expr, want);
    }
    assert_eq!(env.scalar("ABS(-3)"), 3.0);
    assert_eq!(labels(env.array("ABS(METRICS())")), vec!["m", "p"]);
    assert_series(&env, "MIN(ABS([m, p]))", &[(0, 1.0), (60, 2.0), (120, 1.2)]);
}

#[test]
fn math_reductions_of_a_series_are_scalars() {
    let env = TestEnv::new()
        .metric("m1", &[(0, 1.0), (60, 2.0), (120, 3.0), (180, 4.0)])
        .metric("e", &[]);
    let cases: &[(&str, f64)] = &[
        ("AVG(m1)", 2.5),
        ("SUM(m1)", 10.0),
        ("MIN(m1)", 1.0),
        ("MAX(m1)", 4.0),
        // Population standard deviation: sqrt((2.25 + 0.25 + 0.25 + 2.25) / 4).
        ("STDDEV(m1)", 1.118_033_988_749_895),
        ("DATAPOINT_COUNT(m1)", 4.0),
        ("DATAPOINT_COUNT(e)", 0.0),
        ("SUM(m1) / DATAPOINT_COUNT(m1)", 2.5),
        ("METRIC_COUNT(METRICS())", 2.0),
        ("PERIOD(m1)", 60.0),
    ];
    for (expr, want) in cases {
        let got = env.scalar(expr);
        assert!((got - want).abs() < 1e-12, "{expr}: got {got}, want {want}");
    }
    for expr in ["AVG(e)", "SUM(e)", "MIN(e)", "MAX(e)", "STDDEV(e)"] {
        assert!(env.scalar(expr).is_nan(), "{expr} of no data is no value");
    }
    assert_series(
        &env,
        "m1 / MAX(m1)",
        &[(0, 0.25), (60, 0.5), (120, 0.75), (180, 1.0)],
    );
    assert_series(
        &env,
        "m1 / PERIOD(m1)",
        &[
            (0, 1.0 / 60.0),
            (60, 2.0 / 60.0),
            (120, 0.05),
            (180, 4.0 / 60.0),
        ],
    );
}

#[test]
fn math_reductions_of_an_array_are_series() {
    // a = [1, 2] at 0, 60; b = [3, 5] at 0, 120.
    let env = TestEnv::new()
        .metric("a", &[(0, 1.0), (60, 2.0)])
        .metric("b", &[(0, 3.0), (120, 5.0)]);
    let cases: &[(&str, &[(i64, f64)])] = &[
        ("SUM([a, b])", &[(0, 4.0), (60, 2.0), (120, 5.0)]),
        // AVG across an array counts a missing value as 0 (the guide: "Missing values are treated as 0").
        ("AVG([a, b])", &[(0, 2.0), (60, 1.0), (120, 2.5)]),
        ("AVG(METRICS())", &[(0, 2.0), (60, 1.0), (120, 2.5)]),
        ("MIN([a, b])", &[(0, 1.0), (60, 2.0), (120, 5.0)]),
        ("MAX([a, b])", &[(0, 3.0), (60, 2.0), (120, 5.0)]),
        ("STDDEV([a, b])", &[(0, 1.0), (60, 0.0), (120, 0.0)]),
        (
            "DATAPOINT_COUNT([a, b])",
            &[(0, 2.0), (60, 1.0), (120, 1.0)],
        ),
        ("SUM(METRICS('zzz'))", &[]),
        ("SUM([a, b]) / AVG(b)", &[(0, 1.0), (60, 0.5), (120, 1.25)]),
        ("a / METRIC_COUNT(METRICS())", &[(0, 0.5), (60, 1.0)]),
    ];
    for (expr, want) in cases {
        assert_series(&env, expr, want);
    }
    for (expr, want) in [
        (
            "AVG(5)",
            "AVG expects a time series or an array of time series, but was given a scalar",
        ),
        (
            "METRIC_COUNT(5)",
            "METRIC_COUNT expects an array of time series, but was given a scalar",
        ),
    ] {
        assert_eq!(env.error(expr), want);
    }
}

#[test]
fn math_consecutive_point_functions() {
    // Points at 0, 60 and 180 (a gap at 120).
    let env = TestEnv::new()
        .metric("m", &[(0, 5.0), (60, 7.0), (180, 4.0)])
        .metric("n", &[(0, 1.0), (60, 1.0)]);
    let cases: &[(&str, &[(i64, f64)])] = &[
        ("DIFF(m)", &[(60, 2.0), (180, -3.0)]),
        ("DIFF_TIME(m)", &[(60, 60.0), (180, 120.0)]),
        ("RATE(m)", &[(60, 2.0 / 60.0), (180, -3.0 / 120.0)]),
        ("RUNNING_SUM(m)", &[(0, 5.0), (60, 12.0), (180, 16.0)]),
    ];
    for (expr, want) in cases {
        assert_series(&env, expr, want);
    }
    assert_eq!(
        env.array("RUNNING_SUM([m, n])"),
        vec![
            ("m".to_string(), vec![(0, 5.0), (60, 12.0), (180, 16.0)]),
            ("n".to_string(), vec![(0, 1.0), (60, 2.0)]),
        ]
    );
    assert_eq!(
        env.array("DIFF(METRICS())")[1],
        ("n".to_string(), vec![(60, 0.0)])
    );
    assert_eq!(
        env.error("RATE(3)"),
        "RATE expects a time series or an array of time series, but was given a scalar"
    );
}

#[test]
fn math_fill() {
    // Window [0, 300), period 60: the grid is 0, 60, 120, 180, 240.
    let env = TestEnv::new()
        .metric("m", &[(60, 2.0), (180, 6.0)])
        .metric("z", &[(0, 0.0), (180, 3.0)])
        .metric("off", &[(30, 1.0)])
        .metric("e", &[])
        .value("f", MathValue::Series(ts("f", &[(0, 9.0), (120, 8.0)])));
    let cases: &[(&str, &[(i64, f64)])] = &[
        (
            "FILL(m, 0)",
            &[(0, 0.0), (60, 2.0), (120, 0.0), (180, 6.0), (240, 0.0)],
        ),
        (
            "FILL(m, 10)",
            &[(0, 10.0), (60, 2.0), (120, 10.0), (180, 6.0), (240, 10.0)],
        ),
        // REPEAT: the most recent actual value; nothing precedes the first point.
        (
            "FILL(m, REPEAT)",
            &[(60, 2.0), (120, 2.0), (180, 6.0), (240, 6.0)],
        ),
        // LINEAR: only between two actual values.
        ("FILL(m, LINEAR)", &[(60, 2.0), (120, 4.0), (180, 6.0)]),
        (
            "FILL(z, LINEAR)",
            &[(0, 0.0), (60, 1.0), (120, 2.0), (180, 3.0)],
        ),
        (
            "FILL(m, MIN(m))",
            &[(0, 2.0), (60, 2.0), (120, 2.0), (180, 6.0), (240, 2.0)],
        ),
        ("FILL(m, f)", &[(0, 9.0), (60, 2.0), (120, 8.0), (180, 6.0)]),
        // The grid lines up with the series' own timestamps.
        (
            "FILL(off, 0)",
            &[(30, 1.0), (90, 0.0), (150, 0.0), (210, 0.0), (270, 0.0)],
        ),
        (
            "FILL(e, 7)",
            &[(0, 7.0), (60, 7.0), (120, 7.0), (180, 7.0), (240, 7.0)],
        ),
        ("FILL(e, REPEAT)", &[]),
        ("FILL(m, AVG(e))", &[(60, 2.0), (180, 6.0)]),
    ];
    for (expr, want) in cases {
        assert_series(&env, expr, want);
    }
    let filled = env.array("FILL(METRICS(), 0)");
    assert_eq!(labels(filled.clone()), vec!["m", "z", "off", "e"]);
    assert_eq!(
        filled[1].1,
        vec![(0, 0.0), (60, 0.0), (120, 0.0), (180, 3.0), (240, 0.0)]
    );
    let filled = env.array("FILL(METRICS(), m)");
    assert_eq!(filled[1].1, vec![(0, 0.0), (60, 2.0), (180, 3.0)]);
    assert_eq!(
        env.error("FILL(5, 0)"),
        "FILL expects a time series or an array of time series, but was given a scalar"
    );
    assert_eq!(
        env.error("FILL(m, [m, z])"),
        "FILL expects a time series, but was given an array of time series"
    );
}

#[test]
fn math_first_last_sort_slice_remove_empty() {
    let env = sort_env();
    let cases: &[(&str, &[&str])] = &[
        ("SORT(METRICS(), AVG, DESC)", &["b", "c", "a", "d"]),
        ("SORT(METRICS(), AVG, ASC)", &["a", "c", "b", "d"]),
        ("SORT(METRICS(), MAX, ASC, 2)", &["a", "c"]),
        ("SORT(METRICS(), SUM, DESC)", &["b", "c", "a", "d"]),
        ("SORT(METRICS(), MIN, ASC)", &["a", "c", "b", "d"]),
        ("SORT(METRICS(), STDDEV, DESC)", &["a", "b", "c", "d"]),
        ("SORT(METRICS(), AVG, DESC, 0)", &[]),
        ("SLICE(METRICS(), 1, 3)", &["b", "c"]),
        ("SLICE(METRICS(), 2)", &["c", "d"]),
        ("SLICE(METRICS(), 3, 10)", &["d"]),
        ("SLICE(METRICS(), 5)", &[]),
        ("SLICE(METRICS(), 3, 1)", &[]),
        ("SLICE(SORT(METRICS(), AVG, DESC), 0, 2)", &["b", "c"]),
        ("SLICE(SORT(METRICS(), AVG, ASC), 1)", &["c", "b", "d"]),
        ("REMOVE_EMPTY(METRICS())", &["a", "b", "c"]),
    ];
    for (expr, want) in cases {
        assert_eq!(labels(env.array(expr)), want.to_vec(), "{expr}");
    }
    let first = env.run("FIRST(SORT(METRICS(), AVG, DESC))").unwrap();
    assert_eq!(first, MathValue::Series(ts("b", &[(0, 10.0)])));
    assert_eq!(
        env.run("LAST(METRICS())").unwrap(),
        MathValue::Series(ts("d", &[]))
    );
    assert_eq!(
        env.run("FIRST(METRICS('zzz'))").unwrap(),
        MathValue::Series(ts("", &[]))
    );
    // The guide's example: IF(FIRST(SORT(METRICS(), AVG, DESC))>100, 1, 0).
    assert_series(
        &env,
        "IF(FIRST(SORT(METRICS(), AVG, DESC)) > 5, 1, 0)",
        &[(0, 1.0)],
    );
    for (expr, want) in [
        (
            "SORT(METRICS(), AVG, DESC, 1.5)",
            "The limit of SORT must be a whole number >= 0, not 1.5",
        ),
        (
            "SLICE(METRICS(), -1)",
            "The start index of SLICE must be a whole number >= 0, not -1",
        ),
        (
            "SLICE(METRICS(), a)",
            "SLICE expects a scalar, but was given a time series",
        ),
        (
            "FIRST(5)",
            "FIRST expects an array of time series, but was given a scalar",
        ),
    ] {
        assert_eq!(env.error(expr), want, "{expr}");
    }
}

#[test]
fn math_if_follows_the_guide_tables() {
    // metric1 = [1, 1, 0, 0, -], metric2 = [30, -, 0, 0, 30], metric3 = [0, 0, 20, -, 20].
    let env = TestEnv::new()
        .metric("metric1", &[(0, 1.0), (60, 1.0), (120, 0.0), (180, 0.0)])
        .metric("metric2", &[(0, 30.0), (120, 0.0), (180, 0.0), (240, 30.0)])
        .metric("metric3", &[(0, 0.0), (60, 0.0), (120, 20.0), (240, 20.0)])
        .metric("lat", &[(0, 100.0), (60, 500.0), (120, 300.0)]);
    let cases: &[(&str, &[(i64, f64)])] = &[
        (
            "IF(metric1, metric2, metric3)",
            &[(0, 30.0), (60, 0.0), (120, 20.0)],
        ),
        (
            "IF(metric1, 5, metric3)",
            &[(0, 5.0), (60, 5.0), (120, 20.0)],
        ),
        (
            "IF(metric1, metric2, 5)",
            &[(0, 30.0), (60, 0.0), (120, 5.0), (180, 5.0)],
        ),
        ("IF(metric1, metric2)", &[(0, 30.0), (60, 0.0)]),
        ("IF(lat < 400, lat)", &[(0, 100.0), (120, 300.0)]),
        ("IF(lat < 400, 10, 2)", &[(0, 10.0), (60, 2.0), (120, 10.0)]),
        ("IF(lat > 200, 1, 0)", &[(0, 0.0), (60, 1.0), (120, 1.0)]),
        (
            "IF(1, metric2, metric3)",
            &[(0, 30.0), (120, 0.0), (180, 0.0), (240, 30.0)],
        ),
        (
            "IF(0, metric2, metric3)",
            &[(0, 0.0), (60, 0.0), (120, 20.0), (240, 20.0)],
        ),
        ("IF(0, metric2)", &[]),
        ("IF(1/0, metric2, metric3)", &[]),
    ];
    for (expr, want) in cases {
        assert_series(&env, expr, want);
    }
    assert_eq!(env.scalar("IF(2 > 1, 7, 8)"), 7.0);
    assert_eq!(
        env.error("IF(METRICS(), 1, 0)"),
        "IF expects a time series, but was given an array of time series"
    );
}

#[test]
fn math_calendar_helper() {
    // (timestamp, year, month, day of month, weekday (1 = Monday), hour, minute)
    let cases: &[(i64, [i64; 6])] = &[
        (0, [1970, 1, 1, 4, 0, 0]),
        (-1, [1969, 12, 31, 3, 23, 59]),
        (951_782_400, [2000, 2, 29, 2, 0, 0]),
        (1_704_067_199, [2023, 12, 31, 7, 23, 59]),
        (1_710_510_300, [2024, 3, 15, 5, 13, 45]),
    ];
    for (t, [year, month, day, weekday, hour, minute]) in cases {
        let c = civil(*t);
        assert_eq!(
            [c.year, c.month, c.day, c.weekday, c.hour, c.minute],
            [*year, *month, *day, *weekday, *hour, *minute],
            "{t}"
        );
    }
    let _ = civil(i64::MAX);
    let _ = civil(i64::MIN);
}

#[test]
fn math_calendar_functions() {
    // 2024-03-15 (a Friday) 00:00 UTC, hourly, three hours; one data point at 01:00.
    let s = 1_710_460_800;
    let mut env = TestEnv::new().metric("m1", &[(s + 3_600, 7.0)]);
    env.period = 3_600;
    env.start = s;
    env.end = s + 3 * 3_600;
    let grid = [s, s + 3_600, s + 7_200];
    let with = |vals: [f64; 3]| grid.iter().copied().zip(vals).collect::<Vec<_>>();
    let cases: &[(&str, Vec<(i64, f64)>)] = &[
        ("HOUR(m1)", with([0.0, 1.0, 2.0])),
        ("MINUTE(m1)", with([0.0, 0.0, 0.0])),
        ("DAY(m1)", with([5.0, 5.0, 5.0])),
        ("DATE(m1)", with([15.0, 15.0, 15.0])),
        ("MONTH(m1)", with([3.0, 3.0, 3.0])),
        ("YEAR(m1)", with([2024.0, 2024.0, 2024.0])),
        (
            "EPOCH(m1)",
            with([s as f64, (s + 3_600) as f64, (s + 7_200) as f64]),
        ),
        // The guide: IF(DAY(m1)<6,m1) keeps weekdays; IF(MONTH(m1) == 4,m1) only April.
        (
            "IF(DAY(m1) < 6, m1)",
            vec![(s, 0.0), (s + 3_600, 7.0), (s + 7_200, 0.0)],
        ),
        ("IF(MONTH(m1) == 4, m1)", vec![]),
    ];
    for (expr, want) in cases {
        assert_series(&env, expr, want);
    }
    assert_eq!(
        env.error("HOUR(5)"),
        "HOUR expects a time series, but was given a scalar"
    );
}

#[test]
fn math_time_series_and_grid_limits() {
    let env = TestEnv::new().metric("m1", &[(0, 2.0), (60, 4.0)]);
    assert_series(
        &env,
        "TIME_SERIES(10)",
        &[(0, 10.0), (60, 10.0), (120, 10.0), (180, 10.0), (240, 10.0)],
    );
    assert_series(
        &env,
        "TIME_SERIES(5*AVG(m1))",
        &[(0, 15.0), (60, 15.0), (120, 15.0), (180, 15.0), (240, 15.0)],
    );
    assert_series(
        &env,
        "TIME_SERIES(MAX(m1)) - m1",
        &[(0, 2.0), (60, 0.0), (120, 4.0), (180, 4.0), (240, 4.0)],
    );
    assert_eq!(
        env.error("TIME_SERIES(m1)"),
        "TIME_SERIES expects a scalar, but was given a time series"
    );

    let mut huge = TestEnv::new();
    huge.period = 1;
    huge.end = 10_000_000;
    assert!(huge
        .error("TIME_SERIES(1)")
        .contains("too many data points"));
    let mut zero = TestEnv::new();
    zero.period = 0;
    assert_eq!(
        zero.error("TIME_SERIES(1)"),
        "The period must be a positive number of seconds, not 0"
    );
    let mut empty_window = TestEnv::new();
    empty_window.end = 0;
    assert_series(&empty_window, "TIME_SERIES(1)", &[]);
}

#[test]
fn math_metrics_and_period_arguments() {
    let env = TestEnv::new()
        .metric("errors_a", &[(0, 1.0)])
        .metric("errors_b", &[(0, 2.0)])
        .metric("requests", &[(0, 10.0)])
        .value("e1", MathValue::Series(ts("e1", &[(0, 100.0)])));
    // METRICS() lists metrics only, not expressions; METRICS('x') filters on the Id.
    assert_eq!(
        labels(env.array("METRICS()")),
        vec!["errors_a", "errors_b", "requests"]
    );
    assert_series(
        &env,
        "SUM(METRICS('errors')) / SUM(METRICS('requests')) * 100",
        &[(0, 30.0)],
    );
    assert_eq!(
        env.error("PERIOD(requests * 2)"),
        "PERIOD accepts only the Id of a metric"
    );
}

#[test]
fn math_unsupported_functions_error_cleanly() {
    let env = TestEnv::new().metric("m1", &[(0, 1.0)]);
    for (expr, name) in [
        ("SERVICE_QUOTA(m1)", "SERVICE_QUOTA"),
        (
            "INSIGHT_RULE_METRIC('my-rule', 'UniqueContributors')",
            "INSIGHT_RULE_METRIC",
        ),
        ("LAMBDA('my-function', 'arg1', 5)", "LAMBDA"),
        (
            "DB_PERF_INSIGHTS('RDS', 'db-ABC', 'os.cpuUtilization.user.avg')",
            "DB_PERF_INSIGHTS",
        ),
    ] {
        let msg = env.error(expr);
        assert!(
            msg.starts_with(&format!(
                "The function {name} is not supported by this CloudWatch implementation"
            )),
            "{expr}: {msg}"
        );
    }
}

#[test]
fn math_search_calls_the_environment() {
    let cpu = |id: &str| MetricIdentity {
        namespace: "AWS/EC2".into(),
        metric_name: "CPUUtilization".into(),
        dimensions: vec![("InstanceId".into(), id.into())],
    };
    let mut env = TestEnv::new();
    env.catalog = vec![
        (cpu("i-1"), ts("i-1", &[(0, 10.0), (60, 20.0)])),
        (cpu("i-2"), ts("i-2", &[(0, 30.0)])),
        (
            MetricIdentity {
                namespace: "AWS/EBS".into(),
                metric_name: "VolumeReadOps".into(),
                dimensions: vec![],
            },
            ts("ebs", &[(0, 1.0)]),
        ),
    ];
    let q = "SEARCH('{AWS/EC2,InstanceId} MetricName=\"CPUUtilization\"', 'Average', 300)";
    assert_eq!(labels(env.array(q)), vec!["i-1", "i-2"]);
    assert_series(&env, &format!("SUM({q})"), &[(0, 40.0), (60, 20.0)]);
    assert_eq!(
        labels(env.array("SEARCH(' {AWS/EC2,InstanceId} NOT i-1 ', 'Maximum')")),
        vec!["i-2"]
    );
    assert_eq!(
        *env.searches.borrow(),
        vec![
            ("Average".to_string(), 300),
            ("Average".to_string(), 300),
            ("Maximum".to_string(), 60)
        ]
    );
    assert_eq!(
        env.error("SEARCH('{AWS/EC2}', 'Average', 0)"),
        "The period of SEARCH must be a positive whole number of seconds, not 0"
    );
    assert_eq!(
        env.error("SEARCH('  ', 'Average', 300)"),
        "Invalid search expression: a search must contain a metric schema, a search term, or both"
    );
}

#[test]
fn math_extreme_timestamps_do_not_overflow() {
    let env = TestEnv::new().metric("x", &[(i64::MIN, 1.0), (0, 2.0), (i64::MAX, 4.0)]);
    let two_63 = 9_223_372_036_854_775_808.0_f64;
    assert_series(&env, "DIFF_TIME(x)", &[(0, two_63), (i64::MAX, two_63)]);
    assert_series(
        &env,
        "RATE(x)",
        &[(0, 1.0 / two_63), (i64::MAX, 2.0 / two_63)],
    );
    // The grid is anchored on the first timestamp: i64::MIN is 52 (mod 60), so the generated points
    // are 52, 112, 172, 232, 292. Between (0, 2) and (i64::MAX, 4) the slope is ~2^-62 per second.
    assert_series(
        &env,
        "FILL(x, LINEAR)",
        &[
            (i64::MIN, 1.0),
            (0, 2.0),
            (52, 2.0),
            (112, 2.0),
            (172, 2.0),
            (232, 2.0),
            (292, 2.0),
            (i64::MAX, 4.0),
        ],
    );
    assert_eq!(env.series("YEAR(x)").len(), 8);
    assert_series(&env, "x + x", &[(i64::MIN, 2.0), (0, 4.0), (i64::MAX, 8.0)]);
}

#[test]
fn math_anomaly_detection_band_asks_the_environment() {
    let mut env = TestEnv::new().metric("m1", &[(0, 10.0), (60, 20.0)]);
    // Without a model source the band is an error naming the metric.
    assert!(env
        .error("ANOMALY_DETECTION_BAND(m1)")
        .contains("ANOMALY_DETECTION_BAND is not available for m1"));
    env.band_spread = Some(1.5);
    let band = env.run("ANOMALY_DETECTION_BAND(m1, 2)").unwrap();
    let MathValue::Array(parts) = band else {
        panic!("expected the lower and upper series, got {band:?}");
    };
    assert_eq!(parts.len(), 2);
    assert_eq!(super::testenv::pts(&parts[0]), vec![(0, 7.0), (60, 17.0)]);
    assert_eq!(super::testenv::pts(&parts[1]), vec![(0, 13.0), (60, 23.0)]);
    // The default width is 2 standard deviations.
    assert_eq!(
        env.run("ANOMALY_DETECTION_BAND(m1)").unwrap(),
        env.run("ANOMALY_DETECTION_BAND(m1, 2)").unwrap()
    );
    assert!(env
        .error("ANOMALY_DETECTION_BAND(m1 * 2)")
        .contains("accepts only the Id of a metric"));
    assert!(env
        .error("ANOMALY_DETECTION_BAND(m1, 0)")
        .contains("must be a positive number"));
    assert!(env
        .error("ANOMALY_DETECTION_BAND(m1, -1)")
        .contains("must be a positive number"));
}

"""CloudWatch metrics through boto3, in each protocol: PutMetricData then GetMetricStatistics,
GetMetricData (metric math) and ListMetrics, with values checked against what was put."""

from __future__ import annotations

import datetime as dt

import pytest

UTC = dt.timezone.utc


def minute_ago(n: int, align_s: int = 60) -> dt.datetime:
    """At least `n` minutes before now (UTC), rounded down to a multiple of `align_s` seconds since the
    epoch (so that period boundaries agree whether periods are aligned to the start time or the epoch)."""
    ts = int(dt.datetime.now(UTC).timestamp()) - 60 * n
    return dt.datetime.fromtimestamp(ts - ts % align_s, UTC)


def by_time(datapoints):
    return sorted(datapoints, key=lambda d: d["Timestamp"])


def stats(cw, namespace, name, start, end, period=60, dims=(), **kw):
    resp = cw.get_metric_statistics(Namespace=namespace, MetricName=name, Dimensions=list(dims),
                                    StartTime=start, EndTime=end, Period=period, **kw)
    return by_time(resp["Datapoints"])


def test_statistics_of_raw_values(cw, namespace):
    t = minute_ago(10)
    dims = [{"Name": "Environment", "Value": "prod"}]
    # 98 samples of 1 and 2 samples of 100, via Values/Counts, plus nothing else in that minute.
    cw.put_metric_data(Namespace=namespace, MetricData=[{
        "MetricName": "Latency", "Dimensions": dims, "Timestamp": t,
        "Values": [1.0, 100.0], "Counts": [98.0, 2.0], "Unit": "Milliseconds",
    }])
    points = stats(cw, namespace, "Latency", t - dt.timedelta(minutes=5), t + dt.timedelta(minutes=5), dims=dims,
                   Statistics=["Average", "Sum", "SampleCount", "Minimum", "Maximum"])
    assert len(points) == 1, points
    p = points[0]
    assert p["Timestamp"] == t
    assert p["SampleCount"] == 100
    assert p["Sum"] == pytest.approx(298.0)
    assert p["Average"] == pytest.approx(2.98)
    assert p["Minimum"] == 1.0
    assert p["Maximum"] == 100.0
    assert p["Unit"] == "Milliseconds"

    points = stats(cw, namespace, "Latency", t, t + dt.timedelta(minutes=1), dims=dims,
                   ExtendedStatistics=["p99", "p50"])
    assert len(points) == 1, points
    assert points[0]["ExtendedStatistics"]["p99"] == pytest.approx(100.0)
    assert points[0]["ExtendedStatistics"]["p50"] == pytest.approx(1.0)
    assert "Sum" not in points[0], "only the asked statistics are returned"


def test_statistic_sets_and_values_combine(cw, namespace):
    t = minute_ago(12)
    cw.put_metric_data(Namespace=namespace, MetricData=[
        {"MetricName": "Bytes", "Timestamp": t,
         "StatisticValues": {"SampleCount": 4, "Sum": 10, "Minimum": 1, "Maximum": 4}, "Unit": "Bytes"},
        {"MetricName": "Bytes", "Timestamp": t + dt.timedelta(seconds=30), "Value": 5, "Unit": "Bytes"},
    ])
    points = stats(cw, namespace, "Bytes", t, t + dt.timedelta(minutes=1),
                   Statistics=["SampleCount", "Sum", "Minimum", "Maximum", "Average"])
    assert len(points) == 1, points
    p = points[0]
    assert (p["SampleCount"], p["Sum"], p["Minimum"], p["Maximum"]) == (5, 15, 1, 5)
    assert p["Average"] == pytest.approx(3.0)


def test_periods_split_and_merge(cw, namespace):
    t = minute_ago(20, align_s=180)
    cw.put_metric_data(Namespace=namespace, MetricData=[
        {"MetricName": "Orders", "Timestamp": t + dt.timedelta(minutes=i), "Value": v, "Unit": "Count"}
        for i, v in enumerate([3, 5, 7])
    ])
    per_minute = stats(cw, namespace, "Orders", t, t + dt.timedelta(minutes=3), Statistics=["Sum"])
    assert [(p["Timestamp"], p["Sum"]) for p in per_minute] == [
        (t, 3), (t + dt.timedelta(minutes=1), 5), (t + dt.timedelta(minutes=2), 7)]
    merged = stats(cw, namespace, "Orders", t, t + dt.timedelta(minutes=3), period=180,
                   Statistics=["Sum", "SampleCount", "Maximum"])
    assert len(merged) == 1, merged
    assert (merged[0]["Sum"], merged[0]["SampleCount"], merged[0]["Maximum"]) == (15, 3, 7)
    # Outside the range: nothing.
    assert stats(cw, namespace, "Orders", t - dt.timedelta(hours=2), t - dt.timedelta(hours=1),
                 Statistics=["Sum"]) == []


def test_unit_filter(cw, namespace):
    t = minute_ago(8)
    cw.put_metric_data(Namespace=namespace, MetricData=[
        {"MetricName": "Requests", "Timestamp": t, "Value": 42, "Unit": "Count"}])
    window = (t, t + dt.timedelta(minutes=1))
    same = stats(cw, namespace, "Requests", *window, Statistics=["Sum"], Unit="Count")
    assert [(p["Sum"], p["Unit"]) for p in same] == [(42, "Count")]
    assert stats(cw, namespace, "Requests", *window, Statistics=["Sum"], Unit="Seconds") == []
    any_unit = stats(cw, namespace, "Requests", *window, Statistics=["Sum"])
    assert [(p["Sum"], p["Unit"]) for p in any_unit] == [(42, "Count")]


def test_dimensions_are_part_of_identity(cw, namespace):
    t = minute_ago(9)
    cw.put_metric_data(Namespace=namespace, MetricData=[
        {"MetricName": "CPU", "Dimensions": [{"Name": "Host", "Value": "a"}], "Timestamp": t, "Value": 10},
        {"MetricName": "CPU", "Dimensions": [{"Name": "Host", "Value": "b"}], "Timestamp": t, "Value": 30},
    ])
    window = (t, t + dt.timedelta(minutes=1))
    a = stats(cw, namespace, "CPU", *window, dims=[{"Name": "Host", "Value": "a"}], Statistics=["Maximum"])
    b = stats(cw, namespace, "CPU", *window, dims=[{"Name": "Host", "Value": "b"}], Statistics=["Maximum"])
    assert [p["Maximum"] for p in a] == [10]
    assert [p["Maximum"] for p in b] == [30]
    # No dimensions names a different metric, which has no data.
    assert stats(cw, namespace, "CPU", *window, Statistics=["Maximum"]) == []


def _series(result):
    return sorted(zip(result["Timestamps"], result["Values"]))


def test_get_metric_data_with_math(cw, namespace):
    t = minute_ago(15)
    cw.put_metric_data(Namespace=namespace, MetricData=[
        {"MetricName": name, "Timestamp": t + dt.timedelta(minutes=i), "Value": v, "Unit": "Count"}
        for name, values in (("A", [1, 2, 3]), ("B", [10, 20, 30]))
        for i, v in enumerate(values)
    ])

    def stat(name):
        return {"Metric": {"Namespace": namespace, "MetricName": name}, "Period": 60, "Stat": "Sum"}

    start, end = t, t + dt.timedelta(minutes=3)
    minutes = [t + dt.timedelta(minutes=i) for i in range(3)]
    resp = cw.get_metric_data(StartTime=start, EndTime=end, MetricDataQueries=[
        {"Id": "m1", "MetricStat": stat("A")},
        {"Id": "e1", "Expression": "m1 * 2", "Label": "double"},
    ])
    results = {r["Id"]: r for r in resp["MetricDataResults"]}
    assert set(results) == {"m1", "e1"}
    assert _series(results["m1"]) == list(zip(minutes, [1, 2, 3]))
    assert _series(results["e1"]) == list(zip(minutes, [2, 4, 6]))
    assert results["e1"]["Label"] == "double"
    assert all(r["StatusCode"] == "Complete" for r in results.values())

    resp = cw.get_metric_data(StartTime=start, EndTime=end, MetricDataQueries=[
        {"Id": "m1", "MetricStat": stat("A"), "ReturnData": False},
        {"Id": "m2", "MetricStat": stat("B"), "ReturnData": False},
        {"Id": "total", "Expression": "SUM(METRICS())"},
    ])
    results = {r["Id"]: r for r in resp["MetricDataResults"]}
    assert set(results) == {"total"}, "ReturnData=false hides m1 and m2"
    assert _series(results["total"]) == list(zip(minutes, [11, 22, 33]))


def test_get_metric_data_default_order_is_newest_first(cw, namespace):
    t = minute_ago(30)
    cw.put_metric_data(Namespace=namespace, MetricData=[
        {"MetricName": "Q", "Timestamp": t + dt.timedelta(minutes=i), "Value": i} for i in range(3)])
    query = [{"Id": "q", "MetricStat": {"Metric": {"Namespace": namespace, "MetricName": "Q"},
                                         "Period": 60, "Stat": "Maximum"}}]
    window = dict(StartTime=t, EndTime=t + dt.timedelta(minutes=3), MetricDataQueries=query)
    desc = cw.get_metric_data(**window)["MetricDataResults"][0]
    assert desc["Values"] == [2, 1, 0]
    assert desc["Timestamps"] == sorted(desc["Timestamps"], reverse=True)
    asc = cw.get_metric_data(ScanBy="TimestampAscending", **window)["MetricDataResults"][0]
    assert asc["Values"] == [0, 1, 2]


def test_list_metrics_filters(cw, namespace):
    cw.put_metric_data(Namespace=namespace, MetricData=[
        {"MetricName": "CPU", "Dimensions": [{"Name": "Host", "Value": "a"}], "Value": 1},
        {"MetricName": "CPU", "Dimensions": [{"Name": "Host", "Value": "b"}], "Value": 1},
        {"MetricName": "Mem", "Dimensions": [{"Name": "Host", "Value": "a"}], "Value": 1},
        {"MetricName": "CPU", "Value": 1},
    ])

    def listed(**kw):
        metrics = cw.list_metrics(Namespace=namespace, **kw)["Metrics"]
        assert all(m["Namespace"] == namespace for m in metrics)
        return sorted((m["MetricName"], tuple((d["Name"], d["Value"]) for d in m.get("Dimensions", [])))
                      for m in metrics)

    assert listed() == [("CPU", ()), ("CPU", (("Host", "a"),)), ("CPU", (("Host", "b"),)), ("Mem", (("Host", "a"),))]
    assert listed(MetricName="CPU") == [("CPU", ()), ("CPU", (("Host", "a"),)), ("CPU", (("Host", "b"),))]
    assert listed(Dimensions=[{"Name": "Host"}]) == [
        ("CPU", (("Host", "a"),)), ("CPU", (("Host", "b"),)), ("Mem", (("Host", "a"),))]
    assert listed(Dimensions=[{"Name": "Host", "Value": "a"}]) == [("CPU", (("Host", "a"),)), ("Mem", (("Host", "a"),))]
    assert listed(MetricName="CPU", Dimensions=[{"Name": "Host", "Value": "a"}]) == [("CPU", (("Host", "a"),))]
    assert listed(MetricName="Disk") == []
    assert listed(RecentlyActive="PT3H") == listed()


def test_list_metrics_pagination(cw, namespace):
    total = 520
    for start in range(0, total, 260):
        cw.put_metric_data(Namespace=namespace, MetricData=[
            {"MetricName": "Load", "Dimensions": [{"Name": "Shard", "Value": f"{i:04d}"}], "Value": i}
            for i in range(start, start + 260)])
    pages = list(cw.get_paginator("list_metrics").paginate(Namespace=namespace))
    assert len(pages) >= 2, "more than 500 metrics must span pages"
    assert all(len(p["Metrics"]) <= 500 for p in pages)
    assert "NextToken" not in pages[-1]
    shards = [m["Dimensions"][0]["Value"] for p in pages for m in p["Metrics"]]
    assert len(shards) == total
    assert set(shards) == {f"{i:04d}" for i in range(total)}

"""Acknowledged writes are durable: they survive a clean restart (SIGTERM) and a crash (SIGKILL right
after the acknowledgement), and control-plane state survives as well."""

from __future__ import annotations

import datetime as dt
import signal

import pytest

import harness


def minute(n: int) -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0) - dt.timedelta(minutes=n)


def sums(cw, namespace, start, minutes):
    resp = cw.get_metric_statistics(Namespace=namespace, MetricName="Durable", StartTime=start,
                                    EndTime=start + dt.timedelta(minutes=minutes), Period=60,
                                    Statistics=["Sum", "SampleCount"])
    return sorted((p["Timestamp"], p["Sum"], p["SampleCount"]) for p in resp["Datapoints"])


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_acknowledged_writes_survive_restart(make_server, namespace, how):
    srv = make_server()
    cw = harness.client(srv, None)
    start = minute(30)
    expected = []
    for i in range(20):
        ts = start + dt.timedelta(minutes=i)
        cw.put_metric_data(Namespace=namespace, MetricData=[
            {"MetricName": "Durable", "Timestamp": ts, "Value": float(i), "Unit": "Count"}])
        expected.append((ts, float(i), 1.0))
    if how == "SIGTERM":
        assert srv.stop(signal.SIGTERM) == 0, srv.stderr()
    else:
        srv.kill()  # SIGKILL immediately after the last acknowledgement: no flush, no close.
    srv.start()
    assert sums(cw, namespace, start, 20) == expected
    assert [m["MetricName"] for m in cw.list_metrics(Namespace=namespace)["Metrics"]] == ["Durable"]


def test_writes_after_restart_append(make_server, namespace):
    srv = make_server()
    cw = harness.client(srv, None)
    t = minute(10)
    put = lambda v: cw.put_metric_data(Namespace=namespace, MetricData=[  # noqa: E731
        {"MetricName": "Durable", "Timestamp": t, "Value": v}])
    put(1.0)
    srv.kill()
    srv.start()
    put(2.0)
    assert srv.stop() == 0
    srv.start()
    assert sums(cw, namespace, t, 1) == [(t, 3.0, 2.0)]

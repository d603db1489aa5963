"""CloudWatch Logs as the server serves it: the aws CLI and boto3 write and read events, metric filters
reach CloudWatch metrics through the in-process Directory, acknowledged events survive SIGKILL, and the
reset endpoint wipes log groups and their events."""

from __future__ import annotations

import datetime as dt
import time

from botocore.config import Config

import harness


def logs_client(srv):
    cfg = Config(retries={"mode": "standard", "total_max_attempts": 1})
    return harness.session(None).client("logs", endpoint_url=srv.url, config=cfg)


def now_ms() -> int:
    return int(time.time() * 1000)


def messages(logs, group, stream):
    resp = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)
    return [e["message"] for e in resp["events"]]


def put(logs, group, stream, lines, ts=None):
    ts = ts or now_ms()
    logs.put_log_events(logGroupName=group, logStreamName=stream,
                        logEvents=[{"timestamp": ts + i, "message": m} for i, m in enumerate(lines)])


def test_cli_writes_and_reads_events(server):
    harness.aws(server, "logs", "create-log-group", "--log-group-name", "/e2e/cli")
    harness.aws(server, "logs", "create-log-stream", "--log-group-name", "/e2e/cli", "--log-stream-name", "s1")
    ts = now_ms()
    harness.aws(server, "logs", "put-log-events", "--log-group-name", "/e2e/cli", "--log-stream-name", "s1",
                "--log-events", f"timestamp={ts},message=hello", f"timestamp={ts + 1},message=ERROR disk full")
    _, got, _ = harness.aws(server, "logs", "get-log-events", "--log-group-name", "/e2e/cli",
                            "--log-stream-name", "s1", "--start-from-head")
    assert [e["message"] for e in got["events"]] == ["hello", "ERROR disk full"]
    _, found, _ = harness.aws(server, "logs", "filter-log-events", "--log-group-name", "/e2e/cli",
                              "--filter-pattern", "ERROR")
    assert [e["message"] for e in found["events"]] == ["ERROR disk full"]
    _, groups, _ = harness.aws(server, "logs", "describe-log-groups", "--log-group-name-prefix", "/e2e/cli")
    assert [g["logGroupName"] for g in groups["logGroups"]] == ["/e2e/cli"]


def test_metric_filter_publishes_to_cloudwatch(server, namespace):
    logs = logs_client(server)
    cw = harness.client(server, None)
    group = f"/e2e/{namespace}"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="app")
    logs.put_metric_filter(logGroupName=group, filterName="errors", filterPattern="ERROR",
                           metricTransformations=[{"metricName": "Errors", "metricNamespace": namespace,
                                                   "metricValue": "1"}])
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    put(logs, group, "app", ["ERROR one", "fine", "ERROR two", "ERROR three"])

    def errors_counted():
        resp = cw.get_metric_statistics(Namespace=namespace, MetricName="Errors", StartTime=start,
                                        EndTime=start + dt.timedelta(minutes=10), Period=600,
                                        Statistics=["Sum"])
        return sum(p["Sum"] for p in resp["Datapoints"])

    deadline = time.monotonic() + 20
    while errors_counted() < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert errors_counted() == 3


def test_acknowledged_events_survive_sigkill(make_server):
    srv = make_server()
    logs = logs_client(srv)
    logs.create_log_group(logGroupName="/e2e/durable")
    logs.create_log_stream(logGroupName="/e2e/durable", logStreamName="s")
    lines = [f"line {i}" for i in range(50)]
    put(logs, "/e2e/durable", "s", lines)
    srv.kill()
    srv.start()
    assert messages(logs, "/e2e/durable", "s") == lines


def test_reset_wipes_log_groups_and_events(make_server):
    srv = make_server(args=["--enable-reset"])
    logs = logs_client(srv)
    logs.create_log_group(logGroupName="/e2e/reset")
    logs.create_log_stream(logGroupName="/e2e/reset", logStreamName="s")
    put(logs, "/e2e/reset", "s", ["before reset"])
    assert srv.post("/_opsloop/reset")[0] == 200
    assert logs.describe_log_groups()["logGroups"] == []
    # The same names again start empty: no event from before the reset comes back.
    logs.create_log_group(logGroupName="/e2e/reset")
    logs.create_log_stream(logGroupName="/e2e/reset", logStreamName="s")
    put(logs, "/e2e/reset", "s", ["after reset"])
    assert messages(logs, "/e2e/reset", "s") == ["after reset"]
    srv.kill()
    srv.start()
    assert messages(logs, "/e2e/reset", "s") == ["after reset"], "nothing from before the reset after a restart"

"""Logs Insights end to end through boto3 and the aws CLI: the three reference queries with results
computed here from the events sent, a query with two `stats` commands, malformed queries, and query
state (results, statistics, DescribeQueries) that survives a SIGKILL and restart of a dedicated
server."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections import defaultdict

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import harness

BIN_MS = 5 * 60_000


def logs_client(srv):
    cfg = Config(retries={"mode": "standard", "total_max_attempts": 1})
    return harness.session(None).client("logs", endpoint_url=srv.url, config=cfg)


def fmt_time(ms: int) -> str:
    t = dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)
    return t.strftime("%Y-%m-%d %H:%M:%S.") + f"{ms % 1000:03d}"


def fmt_num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def window():
    """A 40-minute window ending at the last whole 5-minute boundary before now - 10 minutes."""
    end = (int(time.time() * 1000) - 10 * 60_000) // BIN_MS * BIN_MS
    return end - 8 * BIN_MS, end


def make_group(logs, group, events):
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    events = sorted(events)
    logs.put_log_events(logGroupName=group, logStreamName="s",
                        logEvents=[{"timestamp": t, "message": m} for t, m in events])


def run_query(logs, group, query, start_ms, end_ms, **kw):
    qid = logs.start_query(logGroupName=group, queryString=query, startTime=start_ms // 1000,
                           endTime=end_ms // 1000, **kw)["queryId"]
    deadline = time.monotonic() + 30
    while True:
        r = logs.get_query_results(queryId=qid)
        if r["status"] not in ("Scheduled", "Running"):
            assert r["status"] == "Complete", r
            return qid, r
        assert time.monotonic() < deadline, "query did not finish in 30 s"
        time.sleep(0.02)


def rows(resp):
    return [{c["field"]: c["value"] for c in row} for row in resp["results"]]


def test_reference_query_errors_newest_first(server):
    logs = logs_client(server)
    start, end = window()
    events = []
    for i in range(150):
        ts = start + i * 7_000
        level = "ERROR" if i % 5 != 0 else "INFO"
        events.append((ts, f"{level} request {i} failed" if level == "ERROR" else f"INFO request {i} ok"))
    make_group(logs, "/e2e/insights/errors", events)
    q = "fields @timestamp, @message | filter @message like /ERROR/ | sort @timestamp desc | limit 100"
    _, r = run_query(logs, "/e2e/insights/errors", q, start, end)
    want = sorted([e for e in events if "ERROR" in e[1]], reverse=True)[:100]
    got = rows(r)
    assert [(g["@timestamp"], g["@message"]) for g in got] == [(fmt_time(t), m) for t, m in want]
    assert all("@ptr" in g for g in got)
    assert r["statistics"]["recordsMatched"] == 120.0
    assert r["statistics"]["recordsScanned"] == 150.0
    # The scan benchmark's query: the block-wide literal search counts without evaluating.
    _, c = run_query(logs, "/e2e/insights/errors", "filter @message like /ERROR/ | stats count()", start, end)
    assert rows(c) == [{"count()": "120"}]
    _, c = run_query(logs, "/e2e/insights/errors", "filter @message like /ERROR/ | stats count()",
                     start + 70_000, start + 140_000 - 1000)
    assert rows(c) == [{"count()": str(sum(1 for t, m in events
                                              if start + 70_000 <= t < start + 140_000 and "ERROR" in m))}]
    # The same query through the aws CLI.
    _, started, _ = harness.aws(server, "logs", "start-query", "--log-group-name", "/e2e/insights/errors",
                                "--start-time", str(start // 1000), "--end-time", str(end // 1000),
                                "--query-string", q)
    deadline = time.monotonic() + 30
    while True:
        _, res, _ = harness.aws(server, "logs", "get-query-results", "--query-id", started["queryId"])
        if res["status"] == "Complete":
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert len(res["results"]) == 100
    assert {c["field"]: c["value"] for c in res["results"][0]}["@message"] == want[0][1]


def test_reference_query_lambda_durations_by_bin(server):
    logs = logs_client(server)
    start, end = window()
    events = []
    for i in range(64):
        ts = start + i * 37_000 + 11
        dur = round(3.25 + (i * 7919 % 1000) / 10, 2)
        events.append((ts, f"REPORT RequestId: req-{i}\tDuration: {dur} ms\tBilled Duration: {int(dur) + 1} ms\t"
                           f"Memory Size: 128 MB\tMax Memory Used: {60 + i % 9} MB\t"))
        events.append((ts + 1, f"START RequestId: req-{i} Version: $LATEST"))
    make_group(logs, "/e2e/insights/lambda", events)
    q = "fields @timestamp, @duration | stats avg(@duration), max(@duration), min(@duration) by bin(5m)"
    _, r = run_query(logs, "/e2e/insights/lambda", q, start, end)
    by_bin = defaultdict(list)
    for ts, m in events:
        hit = re.search(r"\tDuration: ([0-9.]+) ms", m)
        if hit:
            by_bin[ts // BIN_MS * BIN_MS].append(float(hit.group(1)))
    got = sorted(rows(r), key=lambda x: x["bin(5m)"])
    assert [g["bin(5m)"] for g in got] == [fmt_time(b) for b in sorted(by_bin)]
    for g, b in zip(got, sorted(by_bin)):
        ds = by_bin[b]
        assert float(g["avg(@duration)"]) == pytest.approx(sum(ds) / len(ds), rel=1e-12)
        assert g["max(@duration)"] == fmt_num(max(ds))
        assert g["min(@duration)"] == fmt_num(min(ds))
    assert r["statistics"]["recordsScanned"] == float(len(events))


def test_reference_query_parse_users_count_desc(server):
    logs = logs_client(server)
    start, end = window()
    users = {"alice": 9, "bob": 4, "carol": 7, "dave": 1}
    events = []
    i = 0
    for u, n in users.items():
        for _ in range(n):
            events.append((start + i * 1000, f"GET /x user={u} status=200"))
            i += 1
    events.append((start + i * 1000, "healthcheck ok"))
    events.append((start + i * 1000 + 1, "healthcheck ok"))
    make_group(logs, "/e2e/insights/users", events)
    q = r"fields @message | parse @message /user=(?<user>\S+)/ | stats count(*) by user | sort count desc"
    _, r = run_query(logs, "/e2e/insights/users", q, start, end)
    got = [(g.get("user"), g["count(*)"]) for g in rows(r)]
    # the two events without a user form their own group, whose user is null (left out of the row)
    assert got == [("alice", "9"), ("carol", "7"), ("bob", "4"), (None, "2"), ("dave", "1")]


def test_two_stats_and_malformed_queries(server):
    logs = logs_client(server)
    start, end = window()
    events = [(start + i * 45_000, f'{{"host": "h{i % 3}", "bytes": {i * 10}}}') for i in range(40)]
    make_group(logs, "/e2e/insights/twostats", events)
    q = "stats sum(bytes) as b by bin(5m), host | stats max(b) as peak, count(*) as groups by bin(10m)"
    _, r = run_query(logs, "/e2e/insights/twostats", q, start, end)
    per = defaultdict(int)
    for ts, m in events:
        i = (ts - start) // 45_000
        per[(ts // BIN_MS * BIN_MS, f"h{i % 3}")] += i * 10
    tens = defaultdict(list)
    for (b, _), total in per.items():
        tens[b // 600_000 * 600_000].append(total)
    got = sorted(rows(r), key=lambda x: x["bin(10m)"])
    assert [(g["bin(10m)"], g["peak"], g["groups"]) for g in got] == [
        (fmt_time(b), str(max(v)), str(len(v))) for b, v in sorted(tens.items())]

    for bad, needle in [("fields @message | filter", "position"),
                        ("stats count(*) as n by host | stats sum(bytes)", "second stats"),
                        ("stats count(*) as a | stats sum(a) as b | stats sum(b)", "at most two"),
                        ("fields nosuch(x)", "unknown function")]:
        with pytest.raises(ClientError) as e:
            logs.start_query(logGroupName="/e2e/insights/twostats", queryString=bad, startTime=0, endTime=1)
        assert e.value.response["Error"]["Code"] == "MalformedQueryException", bad
        assert needle in e.value.response["Error"]["Message"], e.value.response["Error"]["Message"]


def test_query_state_survives_sigkill(make_server):
    srv = make_server()
    logs = logs_client(srv)
    start, end = window()
    events = [(start + i * 1000, f"user=u{i % 4} op=read") for i in range(40)]
    make_group(logs, "/e2e/insights/durable", events)
    q = r"parse @message /user=(?<user>\S+)/ | stats count(*) as n by user | sort user asc"
    qid, before = run_query(logs, "/e2e/insights/durable", q, start, end)
    assert rows(before) == [{"user": f"u{i}", "n": "10"} for i in range(4)]
    srv.kill()
    srv.start()
    after = logs.get_query_results(queryId=qid)
    assert after["status"] == "Complete"
    assert after["results"] == before["results"]
    assert after["statistics"] == before["statistics"]
    described = logs.describe_queries(logGroupName="/e2e/insights/durable")["queries"]
    assert [(d["queryId"], d["status"], d["queryString"]) for d in described] == [(qid, "Complete", q)]
    assert logs.stop_query(queryId=qid)["success"] is False
    with pytest.raises(ClientError) as e:
        logs.get_query_results(queryId="00000000-0000-0000-0000-000000000000")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"


def skip_index_backlog(srv) -> str:
    """The health endpoint's note of log segments still waiting for the skip index ("" if none)."""
    status, body = srv.health()
    assert status == 200, body
    return " ".join(s.get("detail", "") for s in body["services"].values() if "skip index" in s.get("detail", ""))


@pytest.mark.parametrize("mode", ["off", "checkpoint", "idle"])
def test_segment_formats_answer_literal_queries_exactly(make_server, mode):
    """`OPSLOOP_LOGS_SKIP_INDEX`: with `checkpoint` the checkpoint writes format-3 segments (granules
    with bloom filters that literal searches use to skip text), with `off` and `idle` (the default)
    format 2; with `idle` the server rewrites them in format 3 once it has been idle for a moment,
    and the health endpoint reports the backlog meanwhile. Every way, the literal queries after a
    restart (events now read from segments) give exactly the counts and rows computed here."""
    env = {} if mode == "idle" else {"OPSLOOP_LOGS_SKIP_INDEX": mode}
    srv = make_server(env=env)
    logs = logs_client(srv)
    start, end = window()
    group = "/e2e/insights/segments"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    kinds = ["ERROR disk {i} full", "error lower {i}", "ok {i} served", "warn ERRO{i}R split",
             "timeout after {i} ms", "{i} trailing ERROR"]
    events = [(start + i * 200, kinds[(i * 7) % len(kinds)].format(i=i)) for i in range(6000)]
    for k in range(0, len(events), 2000):
        logs.put_log_events(logGroupName=group, logStreamName="s",
                            logEvents=[{"timestamp": t, "message": m} for t, m in events[k:k + 2000]])
    srv.stop()  # a graceful stop checkpoints everything into segments

    def segs() -> dict[str, bytes]:
        out = {}
        for p in (srv.data_dir / "logs").rglob("*.seg"):
            try:
                out[p.name] = p.read_bytes()[:8]
            except FileNotFoundError:  # replaced by its indexed rewrite meanwhile
                pass
        return out

    assert set(segs().values()) == {b"OLLOGSG3" if mode == "checkpoint" else b"OLLOGSG2"}, segs()
    srv.start()
    if mode == "idle":
        deadline = time.monotonic() + 60
        while skip_index_backlog(srv) or set(segs().values()) != {b"OLLOGSG3"}:
            assert time.monotonic() < deadline, (skip_index_backlog(srv), segs())
            time.sleep(0.1)
        assert all(name.endswith(".i.seg") for name in segs()), segs()
    else:
        assert skip_index_backlog(srv) == ""
    for literal in ["ERROR", "timeout", "served", "zzz"]:
        _, r = run_query(logs, group, f"filter @message like /{literal}/ | stats count()", start, end)
        want = sum(1 for _, m in events if literal in m)
        # no matching record: no row at all, as CloudWatch answers
        assert rows(r) == ([{"count()": str(want)}] if want else []), literal
    q = "fields @timestamp, @message | filter @message like /ERROR/ | sort @timestamp desc | limit 100"
    _, r = run_query(logs, group, q, start, end)
    want = sorted(((t, m) for t, m in events if "ERROR" in m), reverse=True)[:100]
    assert [(x["@timestamp"], x["@message"]) for x in rows(r)] == [(fmt_time(t), m) for t, m in want]

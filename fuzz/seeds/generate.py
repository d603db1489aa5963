#!/usr/bin/env python3
"""Regenerate the seed corpora under fuzz/seeds/<target>/.

Sources:
  * crates/wire/tests/fixtures/botocore/*.json -- requests botocore actually sent (body, headers);
  * crates/wire/tests/fixtures/sigv4/vectors.json -- botocore-signed requests;
  * DOCS below -- hand-written, valid CloudWatch inputs, serialized for each protocol from the
    model (models/cloudwatch-2010-08-01.json) by the small serializers in this file;
  * EXPRESSIONS / SEARCHES below -- metric math and search expressions.

Body seed layout: one selector byte (index of the operation among the model's operations sorted
by name, as fuzz/src/wire.rs picks it) followed by the body. File names start with the operation
name; crates/wire/tests/fuzz_regressions.rs checks that every body seed decodes and validates, and
that the selector picks that operation.

Run from anywhere: python3 fuzz/seeds/generate.py
"""

import base64
import datetime
import json
import math
import os
import shutil
import struct
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SEEDS = os.path.join(ROOT, "fuzz", "seeds")
MODEL = json.load(open(os.path.join(ROOT, "models", "cloudwatch-2010-08-01.json")))
SHAPES = MODEL["shapes"]
OPS = sorted(MODEL["operations"])

T0 = 1767312000  # 2026-01-02T00:00:00Z


def selector(op):
    return bytes([OPS.index(op)])


# --- model-driven serializers ----------------------------------------------------------------


def cbor_head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    for info, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
        if n < 1 << (8 * struct.calcsize(fmt)):
            return bytes([major << 5 | info]) + struct.pack(fmt, n)
    raise ValueError(n)


def cbor_any(v):
    if v is True:
        return b"\xf5"
    if v is False:
        return b"\xf4"
    if isinstance(v, int):
        return cbor_head(0, v) if v >= 0 else cbor_head(1, -1 - v)
    if isinstance(v, float):
        return b"\xfb" + struct.pack(">d", v)
    if isinstance(v, bytes):
        return cbor_head(2, len(v)) + v
    if isinstance(v, str):
        b = v.encode()
        return cbor_head(3, len(b)) + b
    if isinstance(v, list):
        return cbor_head(4, len(v)) + b"".join(cbor_any(x) for x in v)
    if isinstance(v, dict):
        return cbor_head(5, len(v)) + b"".join(cbor_any(k) + cbor_any(x) for k, x in v.items())
    raise TypeError(v)


def typed(shape_name, v, ts):
    """Walk a document along the model; `ts` renders timestamps, others stay Python values."""
    sh = SHAPES[shape_name]
    t = sh["type"]
    if t == "structure":
        return {k: typed(sh["members"][k]["shape"], x, ts) for k, x in v.items()}
    if t == "list":
        return [typed(sh["member"]["shape"], x, ts) for x in v]
    if t == "map":
        return {k: typed(sh["value"]["shape"], x, ts) for k, x in v.items()}
    if t == "timestamp":
        return ts(v)
    if t in ("double", "float"):
        return float(v)
    return v


def to_json(op, doc):
    shape = MODEL["operations"][op]["input"]["shape"]
    return json.dumps(typed(shape, doc, lambda s: s)).encode()


class Tag1:
    def __init__(self, secs):
        self.secs = secs


def to_cbor(op, doc):
    shape = MODEL["operations"][op]["input"]["shape"]

    def enc(v):
        if isinstance(v, Tag1):
            return b"\xc1" + cbor_any(v.secs)
        if isinstance(v, list):
            return cbor_head(4, len(v)) + b"".join(enc(x) for x in v)
        if isinstance(v, dict):
            return cbor_head(5, len(v)) + b"".join(cbor_any(k) + enc(x) for k, x in v.items())
        return cbor_any(v)

    return enc(typed(shape, doc, Tag1))


def iso(secs):
    return datetime.datetime.fromtimestamp(secs, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def query_pairs(shape_name, v, prefix, out):
    sh = SHAPES[shape_name]
    t = sh["type"]
    if t == "structure":
        for k, x in v.items():
            m = sh["members"][k]
            query_pairs(m["shape"], x, prefix + [m.get("locationName", k)], out)
    elif t == "list":
        name = sh["member"].get("locationName", "member")
        for i, x in enumerate(v, 1):
            query_pairs(sh["member"]["shape"], x, prefix + [name, str(i)], out)
    elif t == "map":
        kn = sh["key"].get("locationName", "key")
        vn = sh["value"].get("locationName", "value")
        for i, (k, x) in enumerate(v.items(), 1):
            out.append((".".join(prefix + ["entry", str(i), kn]), k))
            query_pairs(sh["value"]["shape"], x, prefix + ["entry", str(i), vn], out)
    elif t == "timestamp":
        out.append((".".join(prefix), iso(v)))
    elif t == "boolean":
        out.append((".".join(prefix), "true" if v else "false"))
    elif t in ("double", "float"):
        out.append((".".join(prefix), repr(float(v))))
    elif t == "blob":
        out.append((".".join(prefix), base64.b64encode(v).decode()))
    else:
        out.append((".".join(prefix), str(v)))


def to_query(op, doc):
    shape = MODEL["operations"][op]["input"]["shape"]
    out = [("Action", op), ("Version", MODEL["metadata"]["apiVersion"])]
    query_pairs(shape, doc, [], out)
    return urllib.parse.urlencode(out).encode()


# --- hand-written valid inputs ---------------------------------------------------------------

EC2 = [{"Name": "InstanceId", "Value": "i-0123456789abcdef0"}]
ARN = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:high-cpu"

DOCS = [
    ("GetMetricStatistics", "basic", {
        "Namespace": "AWS/EC2", "MetricName": "CPUUtilization", "Dimensions": EC2,
        "StartTime": T0, "EndTime": T0 + 3600, "Period": 300,
        "Statistics": ["Average", "Maximum", "SampleCount"], "Unit": "Percent"}),
    ("GetMetricStatistics", "extended", {
        "Namespace": "App/Web", "MetricName": "Latency", "StartTime": T0, "EndTime": T0 + 86400,
        "Period": 3600, "ExtendedStatistics": ["p99", "p50", "tm90"]}),
    ("GetMetricData", "search", {
        "MetricDataQueries": [
            {"Id": "s", "Expression": "SEARCH('{AWS/EC2,InstanceId} MetricName=\"CPUUtilization\"', 'Average', 300)",
             "ReturnData": False},
            {"Id": "e1", "Expression": "AVG(s)", "Label": "fleet average", "Period": 300},
        ],
        "StartTime": T0, "EndTime": T0 + 7200, "NextToken": "abc",
        "LabelOptions": {"Timezone": "+0130"}, "MaxDatapoints": 1000}),
    ("PutMetricData", "counts", {
        "Namespace": "Custom/Queue", "MetricData": [
            {"MetricName": "Depth", "Dimensions": [{"Name": "Queue", "Value": "jobs"}],
             "Timestamp": T0 + 30, "Values": [1.0, 2.0, 4.0], "Counts": [10.0, 5.0, 1.0],
             "Unit": "Count", "StorageResolution": 60},
            {"MetricName": "Age", "Value": 0.25, "Unit": "Seconds"},
        ]}),
    ("PutMetricAlarm", "static", {
        "AlarmName": "high-cpu", "AlarmDescription": "CPU above 80% for 3 minutes",
        "ActionsEnabled": True, "AlarmActions": ["arn:aws:sns:us-east-1:123456789012:ops"],
        "MetricName": "CPUUtilization", "Namespace": "AWS/EC2", "Statistic": "Average",
        "Dimensions": EC2, "Period": 60, "EvaluationPeriods": 3, "DatapointsToAlarm": 2,
        "Threshold": 80.0, "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching", "Tags": [{"Key": "team", "Value": "core"}]}),
    ("PutMetricAlarm", "math", {
        "AlarmName": "error-rate", "EvaluationPeriods": 5, "Threshold": 0.05,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "Metrics": [
            {"Id": "errors", "MetricStat": {"Metric": {"Namespace": "App/Web", "MetricName": "Errors"},
                                             "Period": 60, "Stat": "Sum"}, "ReturnData": False},
            {"Id": "requests", "MetricStat": {"Metric": {"Namespace": "App/Web", "MetricName": "Requests"},
                                               "Period": 60, "Stat": "Sum"}, "ReturnData": False},
            {"Id": "rate", "Expression": "errors / requests", "Label": "error rate", "ReturnData": True},
        ]}),
    ("DescribeAlarms", "filters", {
        "AlarmNamePrefix": "high-", "AlarmTypes": ["MetricAlarm", "CompositeAlarm"],
        "StateValue": "ALARM", "MaxRecords": 50}),
    ("DescribeAlarmsForMetric", "basic", {
        "MetricName": "CPUUtilization", "Namespace": "AWS/EC2", "Statistic": "Average",
        "Dimensions": EC2, "Period": 60}),
    ("DescribeAlarmHistory", "window", {
        "AlarmName": "high-cpu", "HistoryItemType": "StateUpdate", "StartDate": T0,
        "EndDate": T0 + 86400, "MaxRecords": 10, "ScanBy": "TimestampAscending"}),
    ("DeleteAlarms", "two", {"AlarmNames": ["high-cpu", "error-rate"]}),
    ("SetAlarmState", "basic", {
        "AlarmName": "high-cpu", "StateValue": "OK", "StateReason": "manual reset",
        "StateReasonData": "{\"version\":\"1.0\"}"}),
    ("EnableAlarmActions", "one", {"AlarmNames": ["high-cpu"]}),
    ("ListMetrics", "recent", {
        "Namespace": "AWS/EC2", "MetricName": "CPUUtilization",
        "Dimensions": [{"Name": "InstanceId"}], "RecentlyActive": "PT3H", "NextToken": "tok",
        "IncludeLinkedAccounts": False}),
    ("ListTagsForResource", "alarm", {"ResourceARN": ARN}),
    ("TagResource", "two", {"ResourceARN": ARN, "Tags": [{"Key": "env", "Value": "prod"},
                                                        {"Key": "team", "Value": "core"}]}),
    ("UntagResource", "one", {"ResourceARN": ARN, "TagKeys": ["env"]}),
    ("PutDashboard", "widget", {
        "DashboardName": "ops", "DashboardBody": json.dumps({"widgets": [{
            "type": "metric", "x": 0, "y": 0, "width": 12, "height": 6,
            "properties": {"metrics": [["AWS/EC2", "CPUUtilization"]], "period": 300,
                           "stat": "Average", "region": "us-east-1"}}]})}),
    ("ListDashboards", "prefix", {"DashboardNamePrefix": "op"}),
    ("GetMetricWidgetImage", "png", {
        "MetricWidget": json.dumps({"metrics": [["AWS/EC2", "CPUUtilization"]], "width": 600}),
        "OutputFormat": "png"}),
    ("PutAnomalyDetector", "single", {
        "SingleMetricAnomalyDetector": {"Namespace": "AWS/EC2", "MetricName": "CPUUtilization",
                                        "Dimensions": EC2, "Stat": "Average"},
        "Configuration": {"ExcludedTimeRanges": [{"StartTime": T0, "EndTime": T0 + 3600}],
                          "MetricTimezone": "UTC"}}),
]

# --- metric math ----------------------------------------------------------------------------

EXPRESSIONS = [
    "m1 + m2",
    "(m1 - m2) / m2 * 100",
    "-m1 ^ 2",
    "SUM(METRICS())",
    "AVG(METRICS('errors'))",
    "m1 / PERIOD(m1)",
    "RATE(m1)",
    "DIFF(m1)",
    "DIFF_TIME(m1)",
    "FILL(m1, REPEAT)",
    "FILL(m1, LINEAR)",
    "FILL(m1, 0)",
    "IF(m1 > 10 AND m2 < 5, 1, 0)",
    "IF(m1 != m2, m1)",
    "MAX([m1, m2])",
    "SORT(METRICS(), AVG, DESC, 3)",
    "SLICE(SORT(METRICS(), MAX, ASC), 0, 2)",
    "ABS(m1 - AVG(m1))",
    "CEIL(m1) + FLOOR(m2)",
    "LOG(m1) + LOG10(m2)",
    "STDDEV(m1)",
    "MIN(m1)",
    "RUNNING_SUM(m1)",
    "REMOVE_EMPTY(METRICS())",
    "TIME_SERIES(42)",
    "TIME_SERIES(MAX(m1))",
    "DATAPOINT_COUNT(m1)",
    "FIRST(SORT(METRICS(), SUM, DESC))",
    "LAST(METRICS())",
    "MINUTE(m1) + HOUR(m1) + DAY(m1) + DATE(m1) + MONTH(m1) + YEAR(m1) + EPOCH(m1)",
    "ANOMALY_DETECTION_BAND(m1, 2)",
    "SEARCH('{AWS/EC2,InstanceId} MetricName=\"CPUUtilization\"', 'Average', 300)",
    "AVG(SEARCH('Namespace=\"AWS/EC2\" CPUUtilization', 'Maximum'))",
    "SEARCH(' {AWS/Lambda,FunctionName} Errors OR Throttles NOT \"dev\" ', 'Sum', 60)",
    "s1 * 2 + 0.5e1",
    "m1 >= 1.5 OR m2 <= -2",
]

SEARCHES = [
    "{AWS/EC2,InstanceId} MetricName=\"CPUUtilization\"",
    "{AWS/EC2} CPUUtilization",
    "Namespace=\"AWS/EC2\" InstanceId=i-0123456789abcdef0",
    "{AWS/ApplicationELB,LoadBalancer,TargetGroup} (HTTPCode_Target_5XX_Count OR HTTPCode_ELB_5XX_Count)",
    "MetricName=Errors AND NOT FunctionName=\"test-*\"",
    "{\"Custom/App\",\"Host Name\"} latency",
    "\"CPUUtilization\"",
]


def fresh(target):
    d = os.path.join(SEEDS, target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def write(d, name, data):
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def latin1(s):
    return s.encode("latin-1")


def render_request(method, target, headers, body):
    out = method.encode() + b" " + target.encode() + b"\n"
    for name, value in headers:
        out += name.encode() + b": " + value + b"\n"
    return out + b"\n" + body


def main():
    fixtures = os.path.join(ROOT, "crates", "wire", "tests", "fixtures")
    botocore = os.path.join(fixtures, "botocore")
    dirs = {p: fresh(t) for p, t in (("json", "json_decode"), ("smithy-rpc-v2-cbor", "cbor_decode"),
                                     ("query", "query_decode"))}
    sig = fresh("sigv4_parse")
    for fname in sorted(os.listdir(botocore)):
        if "_big" in fname:
            continue  # 20+ KiB bodies slow libFuzzer down; the gateway tests cover them
        cap = json.load(open(os.path.join(botocore, fname)))
        body = base64.b64decode(cap["body_base64"])
        stem = fname[len(cap["protocol"]) + 1:-len(".json")]
        write(dirs[cap["protocol"]], f"{cap['operation']}.botocore-{stem}", selector(cap["operation"]) + body)
        headers = [("Host", b"localhost:4566")] + [(k, latin1(v)) for k, v in cap["headers"].items()]
        write(sig, f"capture.{cap['protocol']}-{stem}",
              render_request(cap["method"], cap["path"], headers, body))
    for op, name, doc in DOCS:
        write(dirs["json"], f"{op}.{name}", selector(op) + to_json(op, doc))
        write(dirs["smithy-rpc-v2-cbor"], f"{op}.{name}", selector(op) + to_cbor(op, doc))
        write(dirs["query"], f"{op}.{name}", selector(op) + to_query(op, doc))
    for op in ("ListDashboards", "DescribeAlarms"):
        write(dirs["json"], f"{op}.empty", selector(op))
        write(dirs["smithy-rpc-v2-cbor"], f"{op}.empty", selector(op))
        write(dirs["query"], f"{op}.empty", selector(op))

    vectors = json.load(open(os.path.join(fixtures, "sigv4", "vectors.json")))["vectors"]
    for v in vectors:
        headers = [(k, latin1(x)) for k, x in v["headers"]]
        write(sig, f"vector.{v['name']}",
              render_request(v["method"], v["path_and_query"], headers, base64.b64decode(v["body_b64"])))
        auth = dict((k.lower(), x) for k, x in v["headers"]).get("authorization")
        if auth:
            write(sig, f"string.authorization-{v['name']}", auth.encode())

    m = fresh("math_parse")
    for i, e in enumerate(EXPRESSIONS):
        write(m, f"expr.{i:02}", e.encode())
    for i, s in enumerate(SEARCHES):
        write(m, f"search.{i:02}", s.encode())


if __name__ == "__main__":
    main()

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


# --- operations beyond events: tags, KMS, data protection, policies, deliveries, detectors ----------

import json  # noqa: E402

import pytest  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

EMAIL_ID = "arn:aws:dataprotection::aws:data-identifier/EmailAddress"


def dp_document(ids):
    return json.dumps({
        "Name": "p", "Version": "2021-06-01",
        "Statement": [
            {"Sid": "audit", "DataIdentifier": ids, "Operation": {"Audit": {"FindingsDestination": {}}}},
            {"Sid": "mask", "DataIdentifier": ids, "Operation": {"Deidentify": {"MaskConfig": {}}}},
        ],
    })


def error_code(call, *args, **kwargs):
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def test_list_groups_tags_and_kms(server, namespace):
    logs = logs_client(server)
    group = f"/e2e/{namespace}/tagged"
    logs.create_log_group(logGroupName=group, tags={"team": "a"})
    listed = logs.list_log_groups(logGroupNamePattern=f"{namespace}/tagged")["logGroups"]
    assert [g["logGroupName"] for g in listed] == [group]
    arn = listed[0]["logGroupArn"]
    logs.tag_resource(resourceArn=arn, tags={"env": "prod"})
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "a", "env": "prod"}
    logs.untag_resource(resourceArn=arn, tagKeys=["team"])
    assert logs.list_tags_log_group(logGroupName=group)["tags"] == {"env": "prod"}
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    logs.associate_kms_key(logGroupName=group, kmsKeyId=key)
    described = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]
    assert described["kmsKeyId"] == key
    logs.disassociate_kms_key(logGroupName=group)
    assert "kmsKeyId" not in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]
    code, _ = error_code(logs.associate_kms_key, logGroupName=group, kmsKeyId="not-an-arn")
    assert code == "InvalidParameterException"


def test_data_protection_masks_and_unmasks(server, namespace):
    logs = logs_client(server)
    group = f"/e2e/{namespace}/dp"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    code, msg = error_code(logs.put_data_protection_policy, logGroupIdentifier=group,
                           policyDocument=dp_document(["arn:aws:dataprotection::aws:data-identifier/Name"]))
    assert code == "InvalidParameterException" and "not supported by opsloop" in msg
    logs.put_data_protection_policy(logGroupIdentifier=group, policyDocument=dp_document([EMAIL_ID]))
    got = logs.get_data_protection_policy(logGroupIdentifier=group)
    assert json.loads(got["policyDocument"])["Statement"][0]["DataIdentifier"] == [EMAIL_ID]
    put(logs, group, "s", ["login by alice@example.com ok"])
    assert messages(logs, group, "s") == ["login by ***************** ok"]
    raw = logs.filter_log_events(logGroupName=group, unmask=True)["events"]
    assert [e["message"] for e in raw] == ["login by alice@example.com ok"]
    logs.delete_data_protection_policy(logGroupIdentifier=group)
    assert messages(logs, group, "s") == ["login by alice@example.com ok"]
    code, _ = error_code(logs.delete_data_protection_policy, logGroupIdentifier=group)
    assert code == "ResourceNotFoundException"


def test_account_and_index_policies(make_server):
    srv = make_server()
    logs = logs_client(srv)
    logs.create_log_group(logGroupName="/app/one")
    logs.create_log_stream(logGroupName="/app/one", logStreamName="s")
    logs.put_account_policy(policyName="mask", policyType="DATA_PROTECTION_POLICY",
                            policyDocument=dp_document([EMAIL_ID]))
    pols = logs.describe_account_policies(policyType="DATA_PROTECTION_POLICY")["accountPolicies"]
    assert [p["policyName"] for p in pols] == ["mask"]
    put(logs, "/app/one", "s", ["to bob@example.com"])
    assert messages(logs, "/app/one", "s") == ["to ***************"]
    code, _ = error_code(logs.put_account_policy, policyName="t", policyType="TRANSFORMER_POLICY",
                         policyDocument="{}")
    assert code == "InvalidParameterException"
    logs.delete_account_policy(policyName="mask", policyType="DATA_PROTECTION_POLICY")
    assert messages(logs, "/app/one", "s") == ["to bob@example.com"]

    logs.put_account_policy(policyName="idx", policyType="FIELD_INDEX_POLICY",
                            policyDocument=json.dumps({"Fields": ["requestId"]}),
                            selectionCriteria='LogGroupNamePrefix IN ["/app/"]')
    idx = logs.describe_index_policies(logGroupIdentifiers=["/app/one"])["indexPolicies"]
    assert idx[0]["source"] == "ACCOUNT" and idx[0]["policyName"] == "idx"
    logs.put_index_policy(logGroupIdentifier="/app/one", policyDocument=json.dumps({"Fields": ["user", "op"]}))
    idx = logs.describe_index_policies(logGroupIdentifiers=["/app/one"])["indexPolicies"]
    assert idx[0]["source"] == "LOG_GROUP"
    fields = logs.describe_field_indexes(logGroupIdentifiers=["/app/one"])["fieldIndexes"]
    assert sorted(f["fieldIndexName"] for f in fields) == ["op", "user"]
    logs.delete_index_policy(logGroupIdentifier="/app/one")
    srv.kill()
    srv.start()
    idx = logs.describe_index_policies(logGroupIdentifiers=["/app/one"])["indexPolicies"]
    assert idx[0]["source"] == "ACCOUNT", "policies are durable"


def test_deliveries_crud(server, namespace):
    logs = logs_client(server)
    src = f"src-{namespace}"
    dst = f"dst-{namespace}"
    logs.put_delivery_source(name=src, resourceArn="arn:aws:cloudfront::123456789012:distribution/E1",
                             logType="ACCESS_LOGS")
    d = logs.put_delivery_destination(name=dst, deliveryDestinationConfiguration={
        "destinationResourceArn": "arn:aws:logs:us-east-1:123456789012:log-group:/vended"})
    dest_arn = d["deliveryDestination"]["arn"]
    assert d["deliveryDestination"]["deliveryDestinationType"] == "CWL"
    delivery = logs.create_delivery(deliverySourceName=src, deliveryDestinationArn=dest_arn)["delivery"]
    assert logs.get_delivery(id=delivery["id"])["delivery"]["deliverySourceName"] == src
    code, _ = error_code(logs.create_delivery, deliverySourceName=src, deliveryDestinationArn=dest_arn)
    assert code == "ConflictException"
    code, _ = error_code(logs.delete_delivery_source, name=src)
    assert code == "ConflictException"
    logs.put_delivery_destination_policy(deliveryDestinationName=dst, deliveryDestinationPolicy='{"Version":"2012-10-17"}')
    assert logs.get_delivery_destination_policy(deliveryDestinationName=dst)["policy"]["deliveryDestinationPolicy"]
    assert delivery["id"] in [x["id"] for x in logs.describe_deliveries()["deliveries"]]
    logs.delete_delivery(id=delivery["id"])
    logs.delete_delivery_source(name=src)
    logs.delete_delivery_destination(name=dst)
    code, _ = error_code(logs.get_delivery_source, name=src)
    assert code == "ResourceNotFoundException"


def test_anomaly_detectors_and_unhosted_features(server, namespace):
    logs = logs_client(server)
    group = f"/e2e/{namespace}/anom"
    logs.create_log_group(logGroupName=group)
    arn = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["logGroupArn"]
    det = logs.create_log_anomaly_detector(logGroupArnList=[arn], detectorName="d",
                                           evaluationFrequency="FIVE_MIN")["anomalyDetectorArn"]
    got = logs.get_log_anomaly_detector(anomalyDetectorArn=det)
    assert got["detectorName"] == "d" and got["logGroupArnList"] == [arn]
    listed = logs.list_log_anomaly_detectors(filterLogGroupArn=arn)["anomalyDetectors"]
    assert [x["anomalyDetectorArn"] for x in listed] == [det]
    logs.update_log_anomaly_detector(anomalyDetectorArn=det, enabled=False)
    assert logs.get_log_anomaly_detector(anomalyDetectorArn=det)["anomalyDetectorStatus"] == "PAUSED"
    assert logs.list_anomalies(anomalyDetectorArn=det)["anomalies"] == []
    logs.delete_log_anomaly_detector(anomalyDetectorArn=det)
    code, _ = error_code(logs.get_log_anomaly_detector, anomalyDetectorArn=det)
    assert code == "ResourceNotFoundException"

    code, msg = error_code(logs.create_export_task, logGroupName=group, fromTime=0, to=1, destination="bucket")
    assert code == "InvalidParameterException" and "S3" in msg
    assert logs.describe_export_tasks()["exportTasks"] == []
    code, msg = error_code(logs.put_subscription_filter, logGroupName=group, filterName="k", filterPattern="",
                           destinationArn="arn:aws:kinesis:us-east-1:123456789012:stream/s")
    assert code == "InvalidParameterException" and "does not host" in msg
    # StartLiveTail's endpoint carries a "stream-" host prefix; a client without it reaches this server
    tail = harness.session(None).client("logs", endpoint_url=server.url, config=Config(
        retries={"mode": "standard", "total_max_attempts": 1}, inject_host_prefix=False))
    code, msg = error_code(tail.start_live_tail, logGroupIdentifiers=[arn])
    assert code == "NotImplemented" and "event stream" in msg


def test_subscription_filter_delivers_through_eventbridge(server, namespace):
    """A subscription filter on an event bus: matching events arrive as the AWS subscription payload
    in an aws.logs event, which a rule routes to another log group."""
    logs = logs_client(server)
    events = harness.session(None).client("events", endpoint_url=server.url, config=Config(
        retries={"mode": "standard", "total_max_attempts": 1}))
    src, sink = f"/e2e/{namespace}/src", f"/e2e/{namespace}/sink"
    for g in (src, sink):
        logs.create_log_group(logGroupName=g)
    logs.create_log_stream(logGroupName=src, logStreamName="app")
    bus = events.create_event_bus(Name="bus-" + namespace.replace("/", "-"))["EventBusArn"]
    sink_arn = logs.describe_log_groups(logGroupNamePrefix=sink)["logGroups"][0]["logGroupArn"]
    src_arn = logs.describe_log_groups(logGroupNamePrefix=src)["logGroups"][0]["logGroupArn"]
    events.put_rule(Name="from-logs", EventBusName=bus,
                    EventPattern=json.dumps({"source": ["aws.logs"], "resources": [src_arn]}))
    events.put_targets(Rule="from-logs", EventBusName=bus, Targets=[{"Id": "sink", "Arn": sink_arn}])
    logs.put_subscription_filter(logGroupName=src, filterName="errors", filterPattern="ERROR",
                                 destinationArn=bus)
    described = logs.describe_subscription_filters(logGroupName=src)["subscriptionFilters"]
    assert described[0]["destinationArn"] == bus
    put(logs, src, "app", ["ERROR disk full", "all good", "ERROR again"])

    def delivered():
        found = logs.filter_log_events(logGroupName=sink)["events"]
        payloads = [json.loads(e["message"]).get("detail", {}) for e in found]
        return [p for p in payloads if p.get("messageType") == "DATA_MESSAGE"]

    deadline = time.monotonic() + 20
    while not delivered() and time.monotonic() < deadline:
        time.sleep(0.1)
    data = delivered()
    assert len(data) == 1, data
    p = data[0]
    assert p["logGroup"] == src and p["logStream"] == "app" and p["subscriptionFilters"] == ["errors"]
    assert [e["message"] for e in p["logEvents"]] == ["ERROR disk full", "ERROR again"]


def test_transformer_and_lookup_tables(server, namespace):
    logs = logs_client(server)
    group = f"/e2e/{namespace}/tx"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    config = [{"parseJSON": {}}, {"renameKeys": {"entries": [{"key": "lvl", "renameTo": "level"}]}},
              {"upperCaseString": {"withKeys": ["level"]}}]
    tested = logs.test_transformer(transformerConfig=config, logEventMessages=['{"lvl": "warn"}'])
    assert json.loads(tested["transformedLogs"][0]["transformedEventMessage"]) == {"level": "WARN"}
    logs.put_transformer(logGroupIdentifier=group, transformerConfig=config)
    assert logs.get_transformer(logGroupIdentifier=group)["transformerConfig"] == config
    put(logs, group, "s", ['{"lvl": "error", "msg": "x"}'])
    assert [json.loads(m) for m in messages(logs, group, "s")] == [{"level": "ERROR", "msg": "x"}]
    code, _ = error_code(logs.put_transformer, logGroupIdentifier=group,
                         transformerConfig=[{"grok": {"match": "%{WORD:w}"}}])
    assert code == "InvalidParameterException"

    name = "users-" + namespace.replace("/", "-")
    arn = logs.create_lookup_table(lookupTableName=name, tableBody="id,name\n1,ann\n")["lookupTableArn"]
    assert logs.get_lookup_table(lookupTableArn=arn)["tableBody"] == "id,name\n1,ann\n"
    tables = logs.describe_lookup_tables(lookupTableNamePrefix=name)["lookupTables"]
    assert tables[0]["tableFields"] == ["id", "name"] and tables[0]["recordsCount"] == 1
    logs.delete_lookup_table(lookupTableArn=arn)

"""CloudWatch alarms end to end, with boto3 in each protocol and the real aws CLI: a breaching
datapoint moves a metric alarm to ALARM (waited for with a deadline), validation errors have AWS's
codes, composite alarms follow their children, history and tags, anomaly detectors, actions reach
SNS (or fail visibly when SNS is not in the process), and alarm state survives a restart."""

from __future__ import annotations

import json
import signal
import time

import pytest
from botocore.exceptions import ClientError

import harness

DEADLINE_S = 15.0


def wait_for(check, deadline_s=DEADLINE_S, interval_s=0.02):
    """Poll `check()` until it returns a truthy value; fail after the deadline."""
    end = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < end:
        last = check()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"condition not met within {deadline_s}s (last: {last!r})")


def alarm(cw, name, **describe):
    types = ["MetricAlarm", "CompositeAlarm"]
    resp = cw.describe_alarms(AlarmNames=[name], AlarmTypes=types, **describe)
    found = resp["MetricAlarms"] + resp["CompositeAlarms"]
    assert len(found) == 1, resp
    return found[0]


def state(cw, name):
    return alarm(cw, name)["StateValue"]


def put_metric_alarm(cw, name, namespace, **extra):
    args = dict(AlarmName=name, Namespace=namespace, MetricName="Latency", Statistic="Maximum", Period=60,
                EvaluationPeriods=1, Threshold=10.0, ComparisonOperator="GreaterThanThreshold")
    args.update(extra)
    cw.put_metric_alarm(**args)


def error_code(exc: ClientError) -> str:
    return exc.response["Error"]["Code"]


def test_a_breaching_datapoint_alarms_within_the_deadline(cw, namespace):
    name = f"{namespace}/latency"
    dims = [{"Name": "Service", "Value": "checkout"}]
    put_metric_alarm(cw, name, namespace, Dimensions=dims, AlarmDescription="p100 latency")
    a = alarm(cw, name)
    assert a["StateValue"] == "INSUFFICIENT_DATA"
    assert a["StateReason"] == "Unchecked: Initial alarm creation"
    assert a["AlarmArn"].endswith(f":alarm:{name}")
    assert a["Dimensions"] == dims
    assert a["AlarmDescription"] == "p100 latency"

    started = time.monotonic()
    cw.put_metric_data(Namespace=namespace, MetricData=[
        {"MetricName": "Latency", "Dimensions": dims, "Value": 50.0, "Unit": "Milliseconds"}])
    wait_for(lambda: state(cw, name) == "ALARM")
    print(f"breaching datapoint -> ALARM observed after {1000 * (time.monotonic() - started):.1f} ms")

    a = alarm(cw, name)
    assert a["StateReason"].startswith("Threshold Crossed: 1 out of the last 1 datapoints [50.0 (")
    assert a["StateReason"].endswith(
        "was greater than the threshold (10.0) (minimum 1 datapoint for INSUFFICIENT_DATA -> ALARM transition).")
    data = json.loads(a["StateReasonData"])
    assert data["version"] == "1.0"
    assert data["statistic"] == "Maximum"
    assert data["period"] == 60
    assert data["recentDatapoints"] == [50.0]
    assert data["threshold"] == 10.0
    assert a["StateTransitionedTimestamp"] >= a["AlarmConfigurationUpdatedTimestamp"]

    history = cw.describe_alarm_history(AlarmName=name, ScanBy="TimestampAscending")["AlarmHistoryItems"]
    assert [(h["HistoryItemType"], h["HistorySummary"]) for h in history] == [
        ("ConfigurationUpdate", f'Alarm "{name}" created'),
        ("StateUpdate", "Alarm updated from INSUFFICIENT_DATA to ALARM"),
    ]
    update = json.loads(history[1]["HistoryData"])
    assert update["newState"]["stateValue"] == "ALARM"

    by_metric = cw.describe_alarms_for_metric(Namespace=namespace, MetricName="Latency", Dimensions=dims)
    assert [m["AlarmName"] for m in by_metric["MetricAlarms"]] == [name]


def test_put_metric_alarm_validation_errors(cw, namespace):
    name = f"{namespace}/bad"
    cases = [
        (dict(DatapointsToAlarm=2), "ValidationError", "DatapointsToAlarm must be less than or equal to EvaluationPeriods"),
        (dict(Period=45), "ValidationError", "multiple of 60"),
        (dict(ExtendedStatistic="p99"), "ValidationError", "mutually exclusive"),
        (dict(AlarmActions=["arn:aws:sns:eu-west-1:123456789012:x"]), "ValidationError",
         "Invalid region eu-west-1 specified. Only us-east-1 is supported."),
    ]
    for extra, code, message in cases:
        with pytest.raises(ClientError) as err:
            put_metric_alarm(cw, name, namespace, **extra)
        assert error_code(err.value) == code, err.value.response
        assert message in err.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as err:
        cw.set_alarm_state(AlarmName=f"{namespace}/ghost", StateValue="OK", StateReason="x")
    assert error_code(err.value) == "ResourceNotFound"
    assert cw.describe_alarms(AlarmNamePrefix=namespace)["MetricAlarms"] == []


def test_composite_alarms_follow_their_children(cw, namespace):
    a, b, c = (f"{namespace}/{x}" for x in ("a", "b", "svc"))
    put_metric_alarm(cw, a, namespace)
    put_metric_alarm(cw, b, namespace)
    cw.put_composite_alarm(AlarmName=c, AlarmRule=f'ALARM("{a}") OR ALARM("{b}")')
    assert state(cw, c) == "OK"
    cw.set_alarm_state(AlarmName=b, StateValue="ALARM", StateReason="drill")
    composite = alarm(cw, c)
    assert composite["StateValue"] == "ALARM"
    assert composite["StateReason"].startswith(f"{alarm(cw, b)['AlarmArn']} transitioned to ALARM at ")
    children = cw.describe_alarms(ChildrenOfAlarmName=c)
    assert sorted(x["AlarmName"] for x in children["MetricAlarms"]) == [a, b]
    parents = cw.describe_alarms(ParentsOfAlarmName=a)
    assert [x["AlarmName"] for x in parents["CompositeAlarms"]] == [c]
    with pytest.raises(ClientError) as err:
        cw.delete_alarms(AlarmNames=[a])
    assert error_code(err.value) == "ValidationError"
    with pytest.raises(ClientError) as err:
        cw.put_composite_alarm(AlarmName=f"{namespace}/x", AlarmRule="ALARM(nope)")
    assert error_code(err.value) == "ValidationError"
    cw.delete_alarms(AlarmNames=[c])
    cw.delete_alarms(AlarmNames=[a, b])
    assert cw.describe_alarms(AlarmNamePrefix=namespace, AlarmTypes=["MetricAlarm", "CompositeAlarm"]) \
        ["MetricAlarms"] == []


def test_metric_math_alarm(cw, namespace):
    name = f"{namespace}/math"
    cw.put_metric_alarm(
        AlarmName=name, EvaluationPeriods=1, Threshold=100.0, ComparisonOperator="GreaterThanThreshold",
        Metrics=[
            {"Id": "m1", "ReturnData": False,
             "MetricStat": {"Metric": {"Namespace": namespace, "MetricName": "Util"}, "Period": 60, "Stat": "Average"}},
            {"Id": "e1", "Expression": "m1 * 2", "Label": "doubled", "ReturnData": True},
        ])
    cw.put_metric_data(Namespace=namespace, MetricData=[{"MetricName": "Util", "Value": 80.0}])
    wait_for(lambda: state(cw, name) == "ALARM")
    data = json.loads(alarm(cw, name)["StateReasonData"])
    assert data["recentDatapoints"] == [160.0]


def test_tags_history_and_actions_toggle(cw, namespace):
    name = f"{namespace}/tagged"
    put_metric_alarm(cw, name, namespace, Tags=[{"Key": "team", "Value": "core"}])
    arn = alarm(cw, name)["AlarmArn"]
    assert cw.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "team", "Value": "core"}]
    cw.tag_resource(ResourceARN=arn, Tags=[{"Key": "env", "Value": "prod"}])
    assert len(cw.list_tags_for_resource(ResourceARN=arn)["Tags"]) == 2
    cw.disable_alarm_actions(AlarmNames=[name])
    assert alarm(cw, name)["ActionsEnabled"] is False
    cw.enable_alarm_actions(AlarmNames=[name])
    assert alarm(cw, name)["ActionsEnabled"] is True
    updates = cw.describe_alarm_history(AlarmName=name, HistoryItemType="ConfigurationUpdate")["AlarmHistoryItems"]
    assert len(updates) == 3
    cw.delete_alarms(AlarmNames=[name])
    with pytest.raises(ClientError) as err:
        cw.list_tags_for_resource(ResourceARN=arn)
    assert error_code(err.value) == "ResourceNotFoundException"


def test_anomaly_detectors(cw, namespace):
    detector = {"Namespace": namespace, "MetricName": "Traffic", "Stat": "Average",
                "Dimensions": [{"Name": "Site", "Value": "eu"}]}
    cw.put_anomaly_detector(SingleMetricAnomalyDetector=detector)
    found = cw.describe_anomaly_detectors(Namespace=namespace)["AnomalyDetectors"]
    assert len(found) == 1
    assert found[0]["SingleMetricAnomalyDetector"]["MetricName"] == "Traffic"
    assert found[0]["StateValue"] == "PENDING_TRAINING"
    cw.delete_anomaly_detector(SingleMetricAnomalyDetector=detector)
    assert cw.describe_anomaly_detectors(Namespace=namespace)["AnomalyDetectors"] == []


def test_sns_action_is_attempted_and_recorded(server, namespace):
    cw = harness.client(server, None)
    topic = f"arn:aws:sns:{harness.REGION}:123456789012:alarms-e2e"
    sns_available = True
    try:
        sns = harness.session(None).client("sns", endpoint_url=server.url)
        topic = sns.create_topic(Name="alarms-e2e")["TopicArn"]
    except Exception:  # noqa: BLE001 - any failure means SNS is not served by this process
        sns_available = False
    name = f"{namespace}/notify"
    put_metric_alarm(cw, name, namespace, AlarmActions=[topic])
    cw.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="testing the action")

    def action_items():
        items = cw.describe_alarm_history(AlarmName=name, HistoryItemType="Action")["AlarmHistoryItems"]
        return items or None

    items = wait_for(action_items)
    data = json.loads(items[0]["HistoryData"])
    assert data["notificationResource"] == topic
    if sns_available:
        assert items[0]["HistorySummary"] == f"Successfully executed action {topic}", data
        message = json.loads(data["publishedMessage"])
        assert message["NewStateValue"] == "ALARM"
        assert message["NewStateReason"] == "testing the action"
        assert message["AlarmName"] == name
    else:
        assert items[0]["HistorySummary"] == f"Failed to execute action {topic}"
        assert data["actionState"] == "Failed"
        assert "ServiceUnavailable" in data["error"]


def test_aws_cli_alarm_commands(server, namespace):
    name = f"{namespace}/cli"
    harness.aws(server, "cloudwatch", "put-metric-alarm", "--alarm-name", name, "--namespace", namespace,
                "--metric-name", "Errors", "--statistic", "Sum", "--period", "60", "--evaluation-periods", "3",
                "--datapoints-to-alarm", "2", "--threshold", "5", "--comparison-operator",
                "GreaterThanOrEqualToThreshold", "--treat-missing-data", "notBreaching")
    _, out, _ = harness.aws(server, "cloudwatch", "describe-alarms", "--alarm-names", name)
    a = out["MetricAlarms"][0]
    assert (a["EvaluationPeriods"], a["DatapointsToAlarm"], a["TreatMissingData"]) == (3, 2, "notBreaching")
    harness.aws(server, "cloudwatch", "set-alarm-state", "--alarm-name", name, "--state-value", "ALARM",
                "--state-reason", "from the cli")
    _, out, _ = harness.aws(server, "cloudwatch", "describe-alarm-history", "--alarm-name", name,
                            "--history-item-type", "StateUpdate")
    # The next evaluation may already have moved the alarm back (AWS documents SetAlarmState as
    # temporary), so look for the transition SetAlarmState made rather than at the newest item.
    summaries = [item["HistorySummary"] for item in out["AlarmHistoryItems"]]
    assert any(s.endswith("to ALARM") for s in summaries), summaries
    rc, _, err = harness.aws(server, "cloudwatch", "put-metric-alarm", "--alarm-name", name, "--namespace",
                             namespace, "--metric-name", "Errors", "--statistic", "Sum", "--period", "60",
                             "--evaluation-periods", "1", "--datapoints-to-alarm", "2", "--threshold", "5",
                             "--comparison-operator", "GreaterThanThreshold", check=False)
    assert rc != 0 and "ValidationError" in err and "DatapointsToAlarm" in err
    harness.aws(server, "cloudwatch", "delete-alarms", "--alarm-names", name)


def test_alarm_state_and_history_survive_a_restart(make_server, namespace):
    srv = make_server()
    cw = harness.client(srv, None)
    name = f"{namespace}/durable"
    put_metric_alarm(cw, name, namespace)
    cw.put_metric_data(Namespace=namespace, MetricData=[{"MetricName": "Latency", "Value": 99.0}])
    wait_for(lambda: state(cw, name) == "ALARM")
    before = alarm(cw, name)
    history = cw.describe_alarm_history(AlarmName=name)["AlarmHistoryItems"]
    assert srv.stop(signal.SIGTERM) == 0, srv.stderr()
    srv.start()
    after = alarm(cw, name)
    for key in ("StateValue", "StateReason", "StateReasonData", "StateUpdatedTimestamp", "Threshold"):
        assert after[key] == before[key], key
    assert cw.describe_alarm_history(AlarmName=name)["AlarmHistoryItems"] == history

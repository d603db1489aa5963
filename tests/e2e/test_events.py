"""EventBridge end to end with boto3 against the opsloop binary: event buses and their policies, rules,
targets, TestEventPattern with the seed's patterns verbatim, PutEvents results and per-entry errors,
delivery to each target kind opsloop hosts (CloudWatch Logs log groups, SNS topics, other buses),
input transformers, retries and dead-lettering, a `rate(1 minute)` schedule rule firing, the
CloudWatch alarm → rule → target chain, and durability of accepted events across a SIGKILL.
"""

from __future__ import annotations

import json
import signal
import time
import uuid

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import harness
from sns_support import Receiver, fetch, wait_for

ACCOUNT = "000000000000"
R = harness.REGION


def make(server, service):
    cfg = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=30)
    return harness.session(None).client(service, endpoint_url=server.url, config=cfg)


@pytest.fixture
def events(server):
    return make(server, "events")


@pytest.fixture
def logs(server):
    return make(server, "logs")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def error_of(call, *args, **kwargs) -> ClientError:
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    return info.value


def code(e: ClientError) -> str:
    return e.response["Error"]["Code"]


def log_group(logs) -> tuple[str, str]:
    name = unique("/e2e/events")
    logs.create_log_group(logGroupName=name)
    return name, f"arn:aws:logs:{R}:{ACCOUNT}:log-group:{name}"


def log_messages(logs, group: str) -> list[str]:
    out, token = [], None
    while True:
        kw = {"logGroupName": group}
        if token:
            kw["nextToken"] = token
        page = logs.filter_log_events(**kw)
        out += [e["message"] for e in page["events"]]
        token = page.get("nextToken")
        if not token:
            return out


def wait_messages(logs, group: str, count: int, deadline_s: float = 20.0) -> list[str]:
    return wait_for(lambda: (lambda m: m if len(m) >= count else None)(log_messages(logs, group)),
                    deadline_s=deadline_s, what=f"{count} log event(s) in {group}")


def entry(source="e2e.app", detail_type="Thing Happened", detail=None, **kw):
    e = {"Source": source, "DetailType": detail_type, "Detail": json.dumps(detail or {"k": "v"})}
    e.update(kw)
    return e


def rule_to_group(events, logs, pattern: dict, bus: str = "default", **target) -> tuple[str, str]:
    """A rule on `bus` with `pattern` whose one target is a new log group; returns (rule, group)."""
    rule = unique("rule")
    group, arn = log_group(logs)
    events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps(pattern))
    out = events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "logs", "Arn": arn, **target}])
    assert out["FailedEntryCount"] == 0, out
    return rule, group


# --- buses -----------------------------------------------------------------------------------------

def test_event_bus_lifecycle_policy_and_tags(events):
    name = unique("bus")
    arn = events.create_event_bus(Name=name, Description="orders", Tags=[{"Key": "team", "Value": "sre"}])["EventBusArn"]
    assert arn == f"arn:aws:events:{R}:{ACCOUNT}:event-bus/{name}"
    assert code(error_of(events.create_event_bus, Name=name)) == "ResourceAlreadyExistsException"
    assert code(error_of(events.create_event_bus, Name="default")) == "ResourceAlreadyExistsException"
    d = events.describe_event_bus(Name=name)
    assert (d["Name"], d["Arn"], d["Description"]) == (name, arn, "orders")
    assert events.describe_event_bus()["Name"] == "default"
    assert events.describe_event_bus(Name=arn)["Name"] == name
    names = [b["Name"] for b in events.list_event_buses(NamePrefix=name)["EventBuses"]]
    assert names == [name]
    assert "default" in [b["Name"] for b in events.list_event_buses()["EventBuses"]]
    assert events.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "team", "Value": "sre"}]
    events.tag_resource(ResourceARN=arn, Tags=[{"Key": "env", "Value": "prod"}])
    events.untag_resource(ResourceARN=arn, TagKeys=["team"])
    assert events.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "env", "Value": "prod"}]

    events.update_event_bus(Name=name, Description="orders v2",
                            DeadLetterConfig={"Arn": f"arn:aws:sns:{R}:{ACCOUNT}:dlq"})
    assert events.describe_event_bus(Name=name)["Description"] == "orders v2"
    e = error_of(events.update_event_bus, Name=name, DeadLetterConfig={"Arn": f"arn:aws:sqs:{R}:{ACCOUNT}:q"})
    assert code(e) == "ValidationException" and "SQS" in e.response["Error"]["Message"]

    events.put_permission(EventBusName=name, Action="events:PutEvents", Principal="111122223333", StatementId="acct")
    events.put_permission(EventBusName=name, Action="events:PutEvents", Principal="*", StatementId="org",
                          Condition={"Type": "StringEquals", "Key": "aws:PrincipalOrgID", "Value": "o-123"})
    policy = json.loads(events.describe_event_bus(Name=name)["Policy"])
    sids = {s["Sid"]: s for s in policy["Statement"]}
    assert sids["acct"]["Principal"] == {"AWS": "arn:aws:iam::111122223333:root"}
    assert sids["acct"]["Resource"] == arn
    assert sids["org"]["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": "o-123"}}
    events.remove_permission(EventBusName=name, StatementId="acct")
    assert [s["Sid"] for s in json.loads(events.describe_event_bus(Name=name)["Policy"])["Statement"]] == ["org"]
    assert code(error_of(events.remove_permission, EventBusName=name, StatementId="acct")) == "ResourceNotFoundException"
    events.remove_permission(EventBusName=name, RemoveAllPermissions=True)
    assert "Policy" not in events.describe_event_bus(Name=name)

    assert code(error_of(events.delete_event_bus, Name="default")) == "ValidationException"
    events.delete_event_bus(Name=name)
    assert code(error_of(events.describe_event_bus, Name=name)) == "ResourceNotFoundException"


# --- rules and targets -----------------------------------------------------------------------------

def test_rules_targets_and_their_errors(events):
    bus = unique("bus")
    events.create_event_bus(Name=bus)
    rule = unique("rule")
    pattern = json.dumps({"source": ["e2e.app"]})
    arn = events.put_rule(Name=rule, EventBusName=bus, EventPattern=pattern, Description="d")["RuleArn"]
    assert arn == f"arn:aws:events:{R}:{ACCOUNT}:rule/{bus}/{rule}"
    d = events.describe_rule(Name=rule, EventBusName=bus)
    assert (d["Name"], d["EventPattern"], d["State"], d["EventBusName"], d["Description"]) == (rule, pattern, "ENABLED", bus, "d")
    events.disable_rule(Name=rule, EventBusName=bus)
    assert events.describe_rule(Name=rule, EventBusName=bus)["State"] == "DISABLED"
    events.enable_rule(Name=rule, EventBusName=bus)
    assert [r["Name"] for r in events.list_rules(EventBusName=bus)["Rules"]] == [rule]
    assert code(error_of(events.describe_rule, Name=rule)) == "ResourceNotFoundException"

    topic = f"arn:aws:sns:{R}:{ACCOUNT}:t-{rule}"
    out = events.put_targets(Rule=rule, EventBusName=bus, Targets=[
        {"Id": "sns", "Arn": topic, "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 600}},
        {"Id": "lambda", "Arn": f"arn:aws:lambda:{R}:{ACCOUNT}:function:f"},
    ])
    assert out["FailedEntryCount"] == 1 and out["FailedEntries"][0]["TargetId"] == "lambda"
    targets = events.list_targets_by_rule(Rule=rule, EventBusName=bus)["Targets"]
    assert targets == [{"Id": "sns", "Arn": topic, "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 600}}]
    assert events.list_rule_names_by_target(TargetArn=topic, EventBusName=bus)["RuleNames"] == [rule]
    e = error_of(events.delete_rule, Name=rule, EventBusName=bus)
    assert code(e) == "ValidationException"
    for bad in (
        {"Id": "x", "Arn": topic, "Input": "{not json"},
        {"Id": "x", "Arn": topic, "Input": "{}", "InputPath": "$.detail"},
        {"Id": "x", "Arn": topic, "InputPath": "detail"},
        {"Id": "x", "Arn": topic, "InputTransformer": {"InputPathsMap": {"aws.x": "$.id"}, "InputTemplate": "<aws.x>"}},
        {"Id": "x", "Arn": topic, "DeadLetterConfig": {"Arn": f"arn:aws:sqs:{R}:{ACCOUNT}:dlq"}},
        {"Id": "x", "Arn": f"arn:aws:ssm:{R}:{ACCOUNT}:document/AWS-RunShellScript"},
    ):
        assert code(error_of(events.put_targets, Rule=rule, EventBusName=bus, Targets=[bad])) == "ValidationException", bad
    e = error_of(events.put_targets, Rule=rule, EventBusName=bus,
                 Targets=[{"Id": f"t{i}", "Arn": topic} for i in range(5)])
    assert code(e) == "LimitExceededException"
    out = events.remove_targets(Rule=rule, EventBusName=bus, Ids=["sns", "nope"])
    assert out["FailedEntryCount"] == 1 and out["FailedEntries"][0]["TargetId"] == "nope"
    tags_arn = arn
    events.tag_resource(ResourceARN=tags_arn, Tags=[{"Key": "k", "Value": "v"}])
    assert events.list_tags_for_resource(ResourceARN=tags_arn)["Tags"] == [{"Key": "k", "Value": "v"}]
    events.delete_rule(Name=rule, EventBusName=bus)
    assert events.list_rules(EventBusName=bus)["Rules"] == []

    e = error_of(events.put_rule, Name=rule, EventPattern=json.dumps({"source": "not-a-list"}))
    assert code(e) == "InvalidEventPatternException", e.response
    assert code(error_of(events.put_rule, Name=rule)) == "ValidationException"
    e = error_of(events.put_rule, Name=rule, EventBusName=bus, ScheduleExpression="rate(5 minutes)")
    assert code(e) == "ValidationException"
    assert code(error_of(events.put_rule, Name=rule, ScheduleExpression="rate(0 minutes)")) == "ValidationException"
    assert code(error_of(events.put_rule, Name=rule, EventBusName="nope", EventPattern=pattern)) == "ResourceNotFoundException"
    # The seed's schedule expressions are accepted verbatim.
    for expr in ("rate(5 minutes)", "cron(0 9 * * ? *)"):
        name = unique("sched")
        events.put_rule(Name=name, ScheduleExpression=expr, State="DISABLED")
        assert events.describe_rule(Name=name)["ScheduleExpression"] == expr
        events.delete_rule(Name=name)


def test_test_event_pattern_with_the_seed_patterns(events):
    seed = {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"],
            "detail": {"state": ["stopped", "terminated"]}}

    def ev(state, source="aws.ec2"):
        return json.dumps({"version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602", "source": source,
                           "detail-type": "EC2 Instance State-change Notification", "account": ACCOUNT,
                           "time": "2026-11-21T12:00:00Z", "region": R, "resources": [],
                           "detail": {"instance-id": "i-1", "state": state}})

    assert events.test_event_pattern(EventPattern=json.dumps(seed), Event=ev("stopped"))["Result"] is True
    assert events.test_event_pattern(EventPattern=json.dumps(seed), Event=ev("terminated"))["Result"] is True
    assert events.test_event_pattern(EventPattern=json.dumps(seed), Event=ev("running"))["Result"] is False
    assert events.test_event_pattern(EventPattern=json.dumps(seed), Event=ev("stopped", "aws.rds"))["Result"] is False
    e = error_of(events.test_event_pattern, EventPattern="{\"source\": [", Event=ev("stopped"))
    assert code(e) == "InvalidEventPatternException"
    e = error_of(events.test_event_pattern, EventPattern=json.dumps(seed), Event=json.dumps({"source": "aws.ec2"}))
    assert code(e) == "ValidationException"


# --- PutEvents -------------------------------------------------------------------------------------

def test_put_events_results_and_per_entry_errors(events):
    out = events.put_events(Entries=[
        entry(),
        {"DetailType": "t", "Detail": "{}"},
        {"Source": "e2e.app", "Detail": "{}"},
        entry(detail=None) | {"Detail": "[1, 2]"},
        entry(source="aws.ec2"),
        entry(EventBusName="no-such-bus"),
        entry(Time=1_700_000_000, Resources=["arn:aws:ec2:us-east-1:000000000000:instance/i-1"]),
    ])
    codes = [x.get("ErrorCode") for x in out["Entries"]]
    assert codes == [None, "InvalidArgument", "InvalidArgument", "MalformedDetail",
                     "NotAuthorizedForSourceException", "ResourceNotFoundException", None], out
    assert out["FailedEntryCount"] == 5
    assert len(out["Entries"][0]["EventId"]) == 36 and out["Entries"][0]["EventId"] != out["Entries"][6]["EventId"]
    e = error_of(events.put_events, Entries=[entry() for _ in range(11)])
    assert code(e) == "ValidationException"
    big = entry(detail={"x": "y" * (200 * 1024)})
    e = error_of(events.put_events, Entries=[big, big])
    assert code(e) == "ValidationException"


def test_delivery_to_a_log_group_in_the_shape_aws_gives(events, logs):
    source = unique("e2e.shape")
    rule, group = rule_to_group(events, logs, {"source": [source], "detail": {"state": ["stopped", "terminated"]}})
    out = events.put_events(Entries=[
        entry(source=source, detail={"state": "stopped", "n": 1}, Time=1_795_000_000,
              Resources=["arn:aws:ec2:us-east-1:000000000000:instance/i-1"]),
        entry(source=source, detail={"state": "running"}),
    ])
    assert out["FailedEntryCount"] == 0
    (msg,) = wait_messages(logs, group, 1)
    ev = json.loads(msg)
    assert list(ev) == ["version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"]
    assert ev["id"] == out["Entries"][0]["EventId"]
    assert (ev["version"], ev["source"], ev["account"], ev["region"]) == ("0", source, ACCOUNT, R)
    assert ev["time"] == "2026-11-18T11:06:40Z"
    assert ev["resources"] == ["arn:aws:ec2:us-east-1:000000000000:instance/i-1"]
    assert ev["detail"] == {"state": "stopped", "n": 1}
    streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert [s["logStreamName"] for s in streams] == [ev["id"]], "one stream per event, named by its id"
    time.sleep(0.5)
    assert len(log_messages(logs, group)) == 1, "the running event matched nothing"


def test_input_path_constant_input_and_transformers(events, logs):
    source = unique("e2e.tr")
    rule = unique("rule")
    events.put_rule(Name=rule, EventPattern=json.dumps({"source": [source]}))
    groups = {}
    targets = []
    for tid, extra in {
        "const": {"Input": json.dumps({"fixed": True})},
        "path": {"InputPath": "$.detail"},
        "tr": {"InputTransformer": {
            "InputPathsMap": {"instance": "$.detail.instance-id", "state": "$.detail.state", "n": "$.detail.n"},
            "InputTemplate": '{"text": "<instance> is <state>", "state": <state>, "n": <n>, '
                             '"rule": "<aws.events.rule-name>", "arn": "<aws.events.rule-arn>", '
                             '"at": "<aws.events.event.ingestion-time>", "event": <aws.events.event>}'}},
        "text": {"InputTransformer": {"InputPathsMap": {"instance": "$.detail.instance-id"},
                                      "InputTemplate": '"instance <instance> changed"'}},
    }.items():
        group, arn = log_group(logs)
        groups[tid] = group
        targets.append({"Id": tid, "Arn": arn, **extra})
    assert events.put_targets(Rule=rule, Targets=targets[:4])["FailedEntryCount"] == 0
    detail = {"instance-id": "i-9", "state": "stopped", "n": 7}
    event_id = events.put_events(Entries=[entry(source=source, detail=detail)])["Entries"][0]["EventId"]
    assert json.loads(wait_messages(logs, groups["const"], 1)[0]) == {"fixed": True}
    assert json.loads(wait_messages(logs, groups["path"], 1)[0]) == detail
    got = json.loads(wait_messages(logs, groups["tr"], 1)[0])
    assert got["text"] == "i-9 is stopped" and got["state"] == "stopped" and got["n"] == 7
    assert got["rule"] == rule and got["arn"] == f"arn:aws:events:{R}:{ACCOUNT}:rule/{rule}"
    assert got["at"].endswith("Z") and got["event"]["id"] == event_id
    assert wait_messages(logs, groups["text"], 1)[0] == '"instance i-9 changed"'


def test_event_bus_target_forwards_the_same_event(events, logs):
    source = unique("e2e.fwd")
    bus = unique("bus")
    events.create_event_bus(Name=bus)
    _, group = rule_to_group(events, logs, {"source": [source]}, bus=bus)
    rule = unique("rule")
    events.put_rule(Name=rule, EventPattern=json.dumps({"source": [source]}))
    events.put_targets(Rule=rule, Targets=[{"Id": "bus", "Arn": f"arn:aws:events:{R}:{ACCOUNT}:event-bus/{bus}"}])
    event_id = events.put_events(Entries=[entry(source=source)])["Entries"][0]["EventId"]
    ev = json.loads(wait_messages(logs, group, 1)[0])
    assert ev["id"] == event_id and ev["source"] == source


def test_sns_topic_target_reaches_a_confirmed_subscriber(server, events):
    sns = make(server, "sns")
    receiver = Receiver()
    try:
        topic = sns.create_topic(Name=unique("events-topic"))["TopicArn"]
        sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=receiver.url)
        doc = receiver.wait_type("SubscriptionConfirmation")[-1].json()
        assert fetch(doc["SubscribeURL"])[0] == 200
        source = unique("e2e.sns")
        rule = unique("rule")
        events.put_rule(Name=rule, EventPattern=json.dumps({"source": [source]}))
        events.put_targets(Rule=rule, Targets=[{"Id": "sns", "Arn": topic}])
        event_id = events.put_events(Entries=[entry(source=source)])["Entries"][0]["EventId"]
        note = receiver.wait_type("Notification")[-1].json()
        assert note["TopicArn"] == topic
        assert json.loads(note["Message"])["id"] == event_id
    finally:
        receiver.close()


def test_failed_deliveries_are_retried_then_dead_lettered(events, logs):
    source = unique("e2e.dlq")
    dlq, dlq_arn = log_group(logs)
    rule = unique("rule")
    events.put_rule(Name=rule, EventPattern=json.dumps({"source": [source]}))
    missing = f"arn:aws:logs:{R}:{ACCOUNT}:log-group:/e2e/missing-{uuid.uuid4().hex}"
    machine = f"arn:aws:states:{R}:{ACCOUNT}:stateMachine:absent"
    out = events.put_targets(Rule=rule, Targets=[
        # Not retryable (the log group does not exist): dead-lettered at once.
        {"Id": "gone", "Arn": missing, "DeadLetterConfig": {"Arn": dlq_arn}},
        # Retryable (no Step Functions in this process): one retry, then the dead-letter group.
        {"Id": "sfn", "Arn": machine, "DeadLetterConfig": {"Arn": dlq_arn},
         "RetryPolicy": {"MaximumRetryAttempts": 1, "MaximumEventAgeInSeconds": 60}},
    ])
    assert out["FailedEntryCount"] == 0
    started = time.monotonic()
    event_id = events.put_events(Entries=[entry(source=source)])["Entries"][0]["EventId"]
    letters = [json.loads(m) for m in wait_messages(logs, dlq, 2)]
    by_target = {l["TARGET_ARN"]: l for l in letters}
    assert set(by_target) == {missing, machine}
    gone, sfn = by_target[missing], by_target[machine]
    assert gone["event"]["id"] == event_id and gone["RULE_ARN"].endswith(f":rule/{rule}")
    assert gone["ERROR_CODE"] == "ResourceNotFoundException" and gone["EXHAUSTED_RETRY_CONDITION"] == "NonRetryableError"
    assert sfn["ERROR_CODE"] == "ServiceUnavailable" and sfn["EXHAUSTED_RETRY_CONDITION"] == "MaximumRetryAttempts"
    assert sfn["RETRY_ATTEMPTS"] == "1"
    assert time.monotonic() - started >= 0.8, "the retry waited for its backoff"


def test_events_metrics_count_matches_and_invocations(server, events, logs):
    """AWS/Events metrics reach CloudWatch as sums: per rule (RuleName, plus EventBusName on a custom
    bus) and account-wide, for delivered and failed invocations alike."""
    source = unique("e2e.metrics")
    ok_rule, group = rule_to_group(events, logs, {"source": [source]})
    bus = unique("bus")
    events.create_event_bus(Name=bus)
    bad_rule = unique("rule")
    events.put_rule(Name=bad_rule, EventBusName=bus, EventPattern=json.dumps({"source": [source]}))
    missing = f"arn:aws:logs:{R}:{ACCOUNT}:log-group:/e2e/missing-{uuid.uuid4().hex}"
    events.put_targets(Rule=bad_rule, EventBusName=bus, Targets=[{"Id": "gone", "Arn": missing}])
    started = time.time()
    assert events.put_events(Entries=[entry(source=source) for _ in range(3)])["FailedEntryCount"] == 0
    out = events.put_events(Entries=[entry(source=source, EventBusName=bus) for _ in range(2)])
    assert out["FailedEntryCount"] == 0
    wait_messages(logs, group, 3)
    cw = make(server, "cloudwatch")

    def total(metric, dims):
        points = cw.get_metric_statistics(
            Namespace="AWS/Events", MetricName=metric, Dimensions=dims, Statistics=["Sum"], Period=60,
            StartTime=started - 120, EndTime=time.time() + 120)["Datapoints"]
        return sum(p["Sum"] for p in points)

    ok = [{"Name": "RuleName", "Value": ok_rule}]
    bad = [{"Name": "EventBusName", "Value": bus}, {"Name": "RuleName", "Value": bad_rule}]
    want = {
        ("MatchedEvents", "ok"): 3, ("TriggeredRules", "ok"): 3, ("Invocations", "ok"): 3,
        ("SuccessfulInvocationAttempts", "ok"): 3, ("FailedInvocations", "ok"): 0,
        ("MatchedEvents", "bad"): 2, ("TriggeredRules", "bad"): 2, ("Invocations", "bad"): 2,
        ("FailedInvocations", "bad"): 2, ("SuccessfulInvocationAttempts", "bad"): 0,
    }
    # Counters are published every 10 s.
    deadline = time.monotonic() + 40
    while True:
        got = {(metric, which): total(metric, ok if which == "ok" else bad) for metric, which in want}
        if got == want:
            break
        assert time.monotonic() < deadline, f"AWS/Events sums: want {want}, got {got}"
        time.sleep(0.5)
    # Account-wide (no dimensions): this test's events at least (the server is shared).
    assert total("MatchedEvents", []) >= 5
    assert total("Invocations", []) >= 5


def test_ssm_targets_are_invoked_or_fail_cleanly(events, logs):
    """SSM Automation / Run Command targets call SSM; while SSM lacks the operation the delivery fails
    (retryably) and lands in the dead-letter group — never lost, never a crash."""
    source = unique("e2e.ssm")
    dlq, dlq_arn = log_group(logs)
    rule = unique("rule")
    events.put_rule(Name=rule, EventPattern=json.dumps({"source": [source]}))
    retry = {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60}
    out = events.put_targets(Rule=rule, Targets=[
        {"Id": "auto", "Arn": f"arn:aws:ssm:{R}:{ACCOUNT}:automation-definition/E2E-NoSuchDoc:$DEFAULT",
         "InputTransformer": {"InputPathsMap": {"i": "$.detail.instance"}, "InputTemplate": '{"InstanceId": [<i>]}'},
         "DeadLetterConfig": {"Arn": dlq_arn}, "RetryPolicy": retry},
        {"Id": "run", "Arn": f"arn:aws:ssm:{R}:{ACCOUNT}:document/E2E-NoSuchDoc",
         "RunCommandParameters": {"RunCommandTargets": [{"Key": "InstanceIds", "Values": ["i-1"]}]},
         "Input": json.dumps({"commands": ["uptime"]}),
         "DeadLetterConfig": {"Arn": dlq_arn}, "RetryPolicy": retry},
    ])
    assert out["FailedEntryCount"] == 0
    events.put_events(Entries=[entry(source=source, detail={"instance": "i-1"})])
    letters = [json.loads(m) for m in wait_messages(logs, dlq, 2)]
    assert {l["TARGET_ARN"].split(":")[5].split("/")[0] for l in letters} == {"automation-definition", "document"}


# --- schedules, alarms ------------------------------------------------------------------------------

def test_rate_schedule_rule_fires_a_scheduled_event(events, logs):
    rule = unique("every-minute")
    group, arn = log_group(logs)
    rule_arn = events.put_rule(Name=rule, ScheduleExpression="rate(1 minute)")["RuleArn"]
    events.put_targets(Rule=rule, Targets=[{"Id": "logs", "Arn": arn}])
    created = time.time()
    # The first firing is one period after the rule was created.
    ev = json.loads(wait_messages(logs, group, 1, deadline_s=80)[0])
    assert time.time() - created >= 55
    assert (ev["source"], ev["detail-type"], ev["detail"], ev["resources"]) == ("aws.events", "Scheduled Event", {}, [rule_arn])
    assert ev["time"].endswith("Z")
    events.disable_rule(Name=rule)


def test_alarm_state_change_reaches_a_rule_target(server, events, logs, namespace):
    cw = make(server, "cloudwatch")
    alarm = unique("alarm")
    _, group = rule_to_group(events, logs, {"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"],
                                            "detail": {"alarmName": [alarm]}})
    cw.put_metric_alarm(AlarmName=alarm, Namespace=namespace, MetricName="Errors", Statistic="Sum", Period=60,
                        EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
    cw.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="e2e")
    evs = [json.loads(m) for m in wait_messages(logs, group, 1)]
    alarm_ev = next(e for e in evs if e["detail"]["state"]["value"] == "ALARM")
    assert alarm_ev["source"] == "aws.cloudwatch" and alarm_ev["account"] == ACCOUNT
    assert alarm_ev["resources"] == [f"arn:aws:cloudwatch:{R}:{ACCOUNT}:alarm:{alarm}"]
    assert alarm_ev["detail"]["alarmName"] == alarm


# --- durability -----------------------------------------------------------------------------------

def test_accepted_events_survive_a_sigkill(make_server):
    srv = make_server()
    events, logs = make(srv, "events"), make(srv, "logs")
    source = unique("e2e.kill")
    _, group = rule_to_group(events, logs, {"source": [source]})
    ids = []
    for i in range(30):
        out = events.put_events(Entries=[entry(source=source, detail={"i": i * 10 + j}) for j in range(10)])
        assert out["FailedEntryCount"] == 0
        ids += [e["EventId"] for e in out["Entries"]]
    srv.proc.send_signal(signal.SIGKILL)
    srv.wait_exit()
    # the accepted events were made durable in the outbox log (not the control store)
    assert list((srv.data_dir / "events" / "outbox").glob("*.log"))
    srv.start()
    logs = make(srv, "logs")
    wait_for(lambda: {json.loads(m)["id"] for m in log_messages(logs, group)} >= set(ids), deadline_s=60,
             what="every accepted event delivered after the restart")
    events = make(srv, "events")
    assert events.describe_rule(Name=events.list_rules()["Rules"][0]["Name"])["State"] == "ENABLED"

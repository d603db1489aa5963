"""EventBridge Scheduler end to end with boto3: schedules in all three expression forms with time
zones, groups and tags, AWS's validation errors, an at() schedule publishing to an SNS topic whose
HTTP subscriber (a loopback receiver started here) gets the message, a one-time schedule deleting
itself after it fires, and restarts between scheduling and firing that neither lose nor repeat a
fire.
"""

from __future__ import annotations

import datetime
import json
import re
import time
import uuid
from zoneinfo import ZoneInfo

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import harness
from sns_support import Receiver, fetch, sns_client, wait_for

ACCOUNT = "000000000000"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/scheduler"
OFF = {"Mode": "OFF"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def scheduler_client(server: harness.Server):
    cfg = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=30)
    return harness.session(None).client("scheduler", endpoint_url=server.url, config=cfg)


def error_of(call, **kwargs) -> ClientError:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return info.value


def code_and_message(e: ClientError) -> tuple[str, str]:
    return e.response["Error"]["Code"], e.response["Error"]["Message"]


def at_in(seconds: float, zone: str = "UTC") -> str:
    """An at() expression `seconds` from now, in `zone`'s wall clock (rounded up to a second)."""
    when = datetime.datetime.now(ZoneInfo(zone)) + datetime.timedelta(seconds=seconds)
    when = when.replace(microsecond=0) + datetime.timedelta(seconds=1)
    return f"at({when.strftime('%Y-%m-%dT%H:%M:%S')})"


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def subscribed_topic(server: harness.Server, receiver: Receiver) -> str:
    """A topic with the receiver subscribed over HTTP and confirmed through its SubscribeURL."""
    sns = sns_client(server)
    topic = sns.create_topic(Name=unique("sched-topic"))["TopicArn"]
    assert sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=receiver.url)["SubscriptionArn"] == \
        "pending confirmation"
    doc = receiver.wait_type("SubscriptionConfirmation")[-1].json()
    status, body = fetch(doc["SubscribeURL"])
    assert status == 200, body
    return topic


def messages(receiver: Receiver) -> list[str]:
    return [r.json()["Message"] for r in receiver.of_type("Notification")]


def test_schedules_in_all_three_forms_with_time_zones(server):
    s = scheduler_client(server)
    group = unique("grp")
    group_arn = s.create_schedule_group(Name=group, Tags=[{"Key": "team", "Value": "sre"}])["ScheduleGroupArn"]
    assert group_arn == f"arn:aws:scheduler:{harness.REGION}:{ACCOUNT}:schedule-group/{group}"
    target = {"Arn": f"arn:aws:sns:{harness.REGION}:{ACCOUNT}:nowhere", "RoleArn": ROLE, "Input": "hi"}
    forms = {
        "rate": ("rate(5 minutes)", None),
        "cron": ("cron(0 9 ? * MON-FRI *)", "America/New_York"),
        "at": ("at(2030-06-01T12:00:00)", "Europe/Berlin"),
    }
    start = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    for name, (expr, tz) in forms.items():
        kwargs = dict(Name=name, GroupName=group, ScheduleExpression=expr, FlexibleTimeWindow=OFF, Target=target)
        if tz:
            kwargs["ScheduleExpressionTimezone"] = tz
        if name == "rate":
            kwargs["StartDate"] = start
            kwargs["FlexibleTimeWindow"] = {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15}
        arn = s.create_schedule(**kwargs)["ScheduleArn"]
        assert arn == f"arn:aws:scheduler:{harness.REGION}:{ACCOUNT}:schedule/{group}/{name}"
    got = s.get_schedule(Name="cron", GroupName=group)
    assert got["ScheduleExpression"] == "cron(0 9 ? * MON-FRI *)"
    assert got["ScheduleExpressionTimezone"] == "America/New_York"
    assert got["State"] == "ENABLED"
    assert got["Target"]["Arn"] == target["Arn"]
    assert got["ActionAfterCompletion"] == "NONE"
    rate = s.get_schedule(Name="rate", GroupName=group)
    assert rate["FlexibleTimeWindow"] == {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15}
    assert abs(rate["StartDate"].timestamp() - start.timestamp()) < 1
    assert s.get_schedule(Name="at", GroupName=group)["ScheduleExpressionTimezone"] == "Europe/Berlin"

    listed = s.list_schedules(GroupName=group)["Schedules"]
    assert sorted(x["Name"] for x in listed) == ["at", "cron", "rate"]
    page = s.list_schedules(GroupName=group, MaxResults=2)
    assert len(page["Schedules"]) == 2 and "NextToken" in page
    rest = s.list_schedules(GroupName=group, MaxResults=2, NextToken=page["NextToken"])
    assert len(rest["Schedules"]) == 1 and "NextToken" not in rest
    assert [x["Name"] for x in s.list_schedules(GroupName=group, NamePrefix="cr")["Schedules"]] == ["cron"]

    s.update_schedule(Name="cron", GroupName=group, ScheduleExpression="cron(30 8 L * ? *)",
                      ScheduleExpressionTimezone="Asia/Kolkata", FlexibleTimeWindow=OFF, Target=target,
                      State="DISABLED")
    got = s.get_schedule(Name="cron", GroupName=group)
    assert (got["ScheduleExpression"], got["State"]) == ("cron(30 8 L * ? *)", "DISABLED")
    assert [x["Name"] for x in s.list_schedules(GroupName=group, State="DISABLED")["Schedules"]] == ["cron"]

    assert s.list_tags_for_resource(ResourceArn=group_arn)["Tags"] == [{"Key": "team", "Value": "sre"}]
    s.tag_resource(ResourceArn=group_arn, Tags=[{"Key": "env", "Value": "prod"}])
    s.untag_resource(ResourceArn=group_arn, TagKeys=["team"])
    assert s.list_tags_for_resource(ResourceArn=group_arn)["Tags"] == [{"Key": "env", "Value": "prod"}]
    assert group in [g["Name"] for g in s.list_schedule_groups(NamePrefix=group[:6])["ScheduleGroups"]]
    assert s.get_schedule_group(Name="default")["State"] == "ACTIVE"

    # Deleting the group deletes its schedules.
    s.delete_schedule_group(Name=group)
    assert code_and_message(error_of(s.get_schedule_group, Name=group))[0] == "ResourceNotFoundException"
    assert code_and_message(error_of(s.get_schedule, Name="rate", GroupName=group))[0] == \
        "ResourceNotFoundException"


def test_validation_errors(server):
    s = scheduler_client(server)
    target = {"Arn": f"arn:aws:sns:{harness.REGION}:{ACCOUNT}:t", "RoleArn": ROLE}
    name = unique("v")
    for expr in ["rate(1 minutes)", "rate(0 hours)", "cron(0 9 * * * *)", "cron(0 9 ? * ? *)", "cron(60 9 * * ? *)",
                 "cron(0 9 * * ?)", "at(2030-02-30T00:00:00)", "every 5 minutes"]:
        e = error_of(s.create_schedule, Name=name, ScheduleExpression=expr, FlexibleTimeWindow=OFF, Target=target)
        assert code_and_message(e) == ("ValidationException", f"Invalid Schedule Expression {expr}"), expr
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    e = error_of(s.create_schedule, Name=name, ScheduleExpression="rate(1 hour)", FlexibleTimeWindow=OFF,
                 Target=target, ScheduleExpressionTimezone="Mars/Olympus_Mons")
    assert code_and_message(e) == ("ValidationException", "Invalid time zone Mars/Olympus_Mons.")
    e = error_of(s.create_schedule, Name=name, ScheduleExpression="rate(1 hour)", FlexibleTimeWindow={"Mode": "FLEXIBLE"},
                 Target=target)
    assert code_and_message(e)[0] == "ValidationException" and "MaximumWindowInMinutes" in str(e)
    e = error_of(s.create_schedule, Name=name, ScheduleExpression="rate(1 hour)", FlexibleTimeWindow={"Mode": "SOMETIMES"},
                 Target=target)
    assert code_and_message(e)[0] == "ValidationException"
    e = error_of(s.create_schedule, Name=name, ScheduleExpression="rate(1 hour)", FlexibleTimeWindow=OFF,
                 Target=target, GroupName=unique("nogroup"))
    assert code_and_message(e)[0] == "ResourceNotFoundException"
    e = error_of(s.create_schedule, Name=name, ScheduleExpression="rate(1 hour)", FlexibleTimeWindow=OFF,
                 Target={"Arn": "arn:aws:scheduler:::aws-sdk:sns:publish", "RoleArn": ROLE, "Input": "{not json"})
    assert code_and_message(e)[0] == "ValidationException"
    # Nothing was created by the failures; then a good one, and its duplicate.
    assert code_and_message(error_of(s.get_schedule, Name=name))[0] == "ResourceNotFoundException"
    s.create_schedule(Name=name, ScheduleExpression="rate(1 hour)", FlexibleTimeWindow=OFF, Target=target,
                      State="DISABLED")
    e = error_of(s.create_schedule, Name=name, ScheduleExpression="rate(1 hour)", FlexibleTimeWindow=OFF, Target=target)
    assert code_and_message(e) == ("ConflictException", f"Schedule {name} already exists.")
    s.delete_schedule(Name=name)
    e = error_of(s.delete_schedule, Name=name)
    assert code_and_message(e) == ("ResourceNotFoundException", f"Schedule {name} does not exist.")
    assert code_and_message(error_of(s.delete_schedule_group, Name="default"))[0] == "ValidationException"


def test_at_schedule_publishes_to_sns_and_deletes_itself(make_server, receiver):
    srv = make_server()
    s = scheduler_client(srv)
    topic = subscribed_topic(srv, receiver)
    zone = "America/New_York"
    expr = at_in(2, zone)
    name = unique("once")
    s.create_schedule(Name=name, ScheduleExpression=expr, ScheduleExpressionTimezone=zone, FlexibleTimeWindow=OFF,
                      ActionAfterCompletion="DELETE",
                      Target={"Arn": topic, "RoleArn": ROLE,
                              "Input": json.dumps({"fired": "<aws.scheduler.scheduled-time>",
                                                   "schedule": "<aws.scheduler.schedule-arn>"})})
    assert s.get_schedule(Name=name)["ActionAfterCompletion"] == "DELETE"
    got = receiver.wait_type("Notification")
    body = json.loads(got[0].json()["Message"])
    # The scheduled time is the at() wall-clock time in New York, as UTC.
    local = datetime.datetime.strptime(expr[3:-1], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=ZoneInfo(zone))
    assert body["fired"] == local.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert body["schedule"] == f"arn:aws:scheduler:{harness.REGION}:{ACCOUNT}:schedule/default/{name}"

    def gone():
        try:
            s.get_schedule(Name=name)
            return False
        except ClientError as e:
            return e.response["Error"]["Code"] == "ResourceNotFoundException"

    wait_for(gone, what="the one-time schedule deleting itself")
    assert name not in [x["Name"] for x in s.list_schedules()["Schedules"]]


def sentinel(s, topic: str, receiver: Receiver) -> None:
    """Fire one more at() schedule and wait for it: everything due before it has been processed."""
    marker = unique("sentinel")
    s.create_schedule(Name=marker, ScheduleExpression=at_in(1), FlexibleTimeWindow=OFF,
                      ActionAfterCompletion="DELETE", Target={"Arn": topic, "RoleArn": ROLE, "Input": marker})
    wait_for(lambda: marker in messages(receiver), what=f"sentinel {marker}")


def test_restart_before_the_fire_time_fires_once(make_server, receiver):
    srv = make_server()
    s = scheduler_client(srv)
    topic = subscribed_topic(srv, receiver)
    s.create_schedule(Name="before", ScheduleExpression=at_in(4), FlexibleTimeWindow=OFF,
                      Target={"Arn": topic, "RoleArn": ROLE, "Input": "before-restart"})
    assert srv.stop() == 0
    srv.start()
    s = scheduler_client(srv)
    wait_for(lambda: "before-restart" in messages(receiver), what="the fire scheduled before the restart")
    sentinel(s, topic, receiver)
    assert messages(receiver).count("before-restart") == 1
    # The schedule has completed (kept, as ActionAfterCompletion is NONE) and fires no more.
    assert s.get_schedule(Name="before")["Name"] == "before"


def test_fire_missed_while_down_is_delivered_once_on_start(make_server, receiver):
    srv = make_server()
    s = scheduler_client(srv)
    topic = subscribed_topic(srv, receiver)
    expr = at_in(5)  # room for create + kill on a loaded machine
    fire_at = datetime.datetime.strptime(expr[3:-1], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    s.create_schedule(Name="missed", ScheduleExpression=expr, FlexibleTimeWindow=OFF,
                      Target={"Arn": topic, "RoleArn": ROLE, "Input": "missed-while-down"})
    srv.kill()  # no graceful shutdown
    wait_for(lambda: datetime.datetime.now(datetime.timezone.utc) > fire_at + datetime.timedelta(seconds=1),
             what="the fire time passing while the server is down")
    assert "missed-while-down" not in messages(receiver)
    srv.start()
    s = scheduler_client(srv)
    wait_for(lambda: "missed-while-down" in messages(receiver), what="the missed fire after start")
    # A second restart does not deliver it again.
    assert srv.stop() == 0
    srv.start()
    s = scheduler_client(srv)
    sentinel(s, topic, receiver)
    assert messages(receiver).count("missed-while-down") == 1


def test_universal_and_event_bus_targets(make_server, receiver):
    """A universal target (`aws-sdk:sns:publish`, Input = the Publish request) and a templated
    EventBridge target whose event a rule routes on to the same topic."""
    srv = make_server()
    s = scheduler_client(srv)
    topic = subscribed_topic(srv, receiver)
    s.create_schedule(Name="universal", ScheduleExpression=at_in(1), FlexibleTimeWindow=OFF,
                      Target={"Arn": "arn:aws:scheduler:::aws-sdk:sns:publish", "RoleArn": ROLE,
                              "Input": json.dumps({"TopicArn": topic, "Message": "via-universal",
                                                   "Subject": "sched"})})
    wait_for(lambda: "via-universal" in messages(receiver), what="the universal-target publish")
    note = [r.json() for r in receiver.of_type("Notification") if r.json()["Message"] == "via-universal"][0]
    assert note["Subject"] == "sched"

    # The same seam reaches Systems Manager: a universal target writing a parameter.
    ssm = harness.session(None).client("ssm", endpoint_url=srv.url, config=Config(retries={"total_max_attempts": 1}))
    param = f"/scheduler-e2e/{unique('p')}"
    s.create_schedule(Name="to-ssm", ScheduleExpression=at_in(1), FlexibleTimeWindow=OFF,
                      Target={"Arn": "arn:aws:scheduler:::aws-sdk:ssm:putParameter", "RoleArn": ROLE,
                              "Input": json.dumps({"Name": param, "Type": "String",
                                                   "Value": "fired <aws.scheduler.execution-id>"})})

    def parameter():
        try:
            return ssm.get_parameter(Name=param)["Parameter"]["Value"]
        except ClientError:
            return None

    value = wait_for(parameter, what="the parameter written by the schedule")
    assert value.startswith("fired ") and len(value) > len("fired ")

    events = harness.session(None).client("events", endpoint_url=srv.url,
                                          config=Config(retries={"total_max_attempts": 1}))
    events.put_rule(Name="from-scheduler", EventPattern=json.dumps({"source": ["opsloop.test"],
                                                                    "detail-type": ["Tick"]}))
    events.put_targets(Rule="from-scheduler", Targets=[{"Id": "sns", "Arn": topic}])
    bus = f"arn:aws:events:{harness.REGION}:{ACCOUNT}:event-bus/default"
    s.create_schedule(Name="to-bus", ScheduleExpression=at_in(1), FlexibleTimeWindow=OFF,
                      Target={"Arn": bus, "RoleArn": ROLE, "Input": json.dumps({"hello": "bus"}),
                              "EventBridgeParameters": {"DetailType": "Tick", "Source": "opsloop.test"}})

    def routed():
        for m in messages(receiver):
            try:
                event = json.loads(m)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("source") == "opsloop.test":
                return event
        return None

    event = wait_for(routed, what="the scheduled event routed by a rule to SNS")
    assert event["detail-type"] == "Tick"
    assert event["detail"] == {"hello": "bus"}
    assert f"arn:aws:scheduler:{harness.REGION}:{ACCOUNT}:schedule/default/to-bus" in event["resources"]


def test_fire_lateness(make_server):
    """60 at() schedules, six per second over ten seconds: each fires within a second of its time
    (AWS promises a minute). The server logs each fire's lateness; p50/max are printed (`-s`)."""
    srv = make_server()
    s = scheduler_client(srv)
    topic = sns_client(srv).create_topic(Name=unique("lateness"))["TopicArn"]
    count = 60
    base = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) + datetime.timedelta(seconds=3)
    for i in range(count):
        t = base + datetime.timedelta(seconds=i // 6)
        s.create_schedule(Name=f"l{i}", ScheduleExpression=f"at({t.strftime('%Y-%m-%dT%H:%M:%S')})",
                          FlexibleTimeWindow=OFF, Target={"Arn": topic, "RoleArn": ROLE})

    def lateness():
        found = [int(x) for x in re.findall(r"lateness_ms=(-?\d+)", srv.stderr())]
        return found if len(found) >= count else None

    found = sorted(wait_for(lateness, deadline_s=40, what=f"{count} fires"))
    assert len(found) == count, "each schedule fired exactly once"
    assert found[0] >= 0, "nothing fires early"
    assert found[-1] < 1000, found
    print(f"\nscheduler fire lateness over {count} at() fires: p50 {found[count // 2]} ms, max {found[-1]} ms")

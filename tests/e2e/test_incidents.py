"""End-to-end tests of Incident Manager (`ssm-incidents`) with boto3: replication set and response
plans, StartIncident with client tokens and dedupe, the timeline, related items, UpdateIncidentRecord,
a CloudWatch alarm whose action is the response plan opening an incident, chat posts reaching a
Slack-style webhook receiver (started here, on loopback) through an SNS `slack` subscription,
auto-resolve when the alarm returns to OK, and conditional engagement through SSM Contacts (with the
test-only `OPSLOOP_INCIDENTS_MINUTE_SECONDS` scaling so a delay "minute" lasts a fraction of a
second)."""

from __future__ import annotations

import datetime
import json
import time
import uuid

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import harness
from sns_support import Receiver, wait_for

CFG = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=30)


def client(srv: harness.Server, name: str):
    return harness.session(None).client(name, endpoint_url=srv.url, config=CFG)


def code(e: pytest.ExceptionInfo) -> str:
    return e.value.response["Error"]["Code"]


@pytest.fixture
def srv(make_server):
    return make_server(env={"OPSLOOP_INCIDENTS_MINUTE_SECONDS": "0.5"})


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def event_data(im, arn: str) -> list[str]:
    out = []
    for s in im.list_timeline_events(incidentRecordArn=arn)["eventSummaries"]:
        out.append(im.get_timeline_event(incidentRecordArn=arn, eventId=s["eventId"])["event"]["eventData"])
    return out


def test_replication_set_and_response_plan_crud(srv):
    im = client(srv, "ssm-incidents")
    rs = im.create_replication_set(regions={"us-east-1": {}})["arn"]
    with pytest.raises(ClientError) as e:
        im.create_replication_set(regions={"us-west-2": {}})
    assert code(e) == "ConflictException"
    im.update_replication_set(arn=rs, actions=[{"addRegionAction": {"regionName": "eu-west-1"}}])
    got = im.get_replication_set(arn=rs)["replicationSet"]
    assert set(got["regionMap"]) == {"us-east-1", "eu-west-1"} and got["status"] == "ACTIVE"
    im.update_deletion_protection(arn=rs, deletionProtected=True)
    with pytest.raises(ClientError) as e:
        im.delete_replication_set(arn=rs)
    assert code(e) == "ValidationException"

    template = {"title": "Checkout is down", "impact": 2, "summary": "5xx on checkout",
                "dedupeString": "checkout", "incidentTags": {"team": "web"}}
    arn = im.create_response_plan(name="checkout", displayName="Checkout", incidentTemplate=template,
                                  chatChannel={"empty": {}}, tags={"owner": "ops"})["arn"]
    assert arn.endswith(":response-plan/checkout")
    with pytest.raises(ClientError) as e:
        im.create_response_plan(name="checkout", incidentTemplate=template)
    assert code(e) == "ConflictException"
    with pytest.raises(ClientError) as e:
        im.create_response_plan(name="bad", incidentTemplate={"title": "x", "impact": 9})
    assert code(e) == "ValidationException"
    plan = im.get_response_plan(arn=arn)
    assert plan["displayName"] == "Checkout" and plan["incidentTemplate"]["summary"] == "5xx on checkout"
    im.update_response_plan(arn=arn, incidentTemplateImpact=1, incidentTemplateTitle="Checkout outage")
    plan = im.get_response_plan(arn=arn)
    assert plan["incidentTemplate"]["impact"] == 1 and plan["incidentTemplate"]["title"] == "Checkout outage"
    for n in range(3):
        im.create_response_plan(name=f"extra-{n}", incidentTemplate={"title": "t", "impact": 3})
    names, token = [], None
    while True:
        page = im.list_response_plans(maxResults=2, **({"nextToken": token} if token else {}))
        names += [p["name"] for p in page["responsePlanSummaries"]]
        token = page.get("nextToken")
        if not token:
            break
    assert sorted(names) == ["checkout", "extra-0", "extra-1", "extra-2"]
    assert im.list_tags_for_resource(resourceArn=arn)["tags"] == {"owner": "ops"}
    im.tag_resource(resourceArn=arn, tags={"tier": "1"})
    im.untag_resource(resourceArn=arn, tagKeys=["owner"])
    assert im.list_tags_for_resource(resourceArn=arn)["tags"] == {"tier": "1"}
    pid = im.put_resource_policy(resourceArn=arn, policy=json.dumps({"Version": "2012-10-17", "Statement": []}))["policyId"]
    assert [p["policyId"] for p in im.get_resource_policies(resourceArn=arn)["resourcePolicies"]] == [pid]
    im.delete_resource_policy(resourceArn=arn, policyId=pid)
    im.delete_response_plan(arn=arn)
    with pytest.raises(ClientError) as e:
        im.get_response_plan(arn=arn)
    assert code(e) == "ResourceNotFoundException"


def test_start_incident_dedupe_timeline_and_updates(srv):
    im = client(srv, "ssm-incidents")
    plan = im.create_response_plan(name="api", incidentTemplate={"title": "API errors", "impact": 3,
                                                                  "dedupeString": "api-5xx"})["arn"]
    first = im.start_incident(responsePlanArn=plan, clientToken="tok-1", impact=2,
                              relatedItems=[{"identifier": {"type": "OTHER", "value": {"url": "https://wiki/api"}},
                                             "title": "runbook"}])["incidentRecordArn"]
    assert im.start_incident(responsePlanArn=plan, clientToken="tok-1")["incidentRecordArn"] == first
    now = datetime.datetime.now(datetime.timezone.utc)
    second = im.start_incident(responsePlanArn=plan, triggerDetails={
        "source": "aws.events", "timestamp": now, "triggerArn": "arn:aws:events:us-east-1:123456789012:rule/r",
        "rawData": json.dumps({"detail": {"x": 1}})})["incidentRecordArn"]
    assert second == first, "the open incident with the same dedupe string takes the trigger"
    rec = im.get_incident_record(arn=first)["incidentRecord"]
    assert rec["status"] == "OPEN" and rec["impact"] == 2 and rec["title"] == "API errors"
    assert rec["dedupeString"] == "api-5xx"
    assert rec["incidentRecordSource"]["source"] == "aws.ssm-incidents.custom"
    data = event_data(im, first)
    assert any("Incident created" in d for d in data) and any("Deduplicated trigger" in d for d in data)

    # Timeline: a custom event, edited, listed with filters and sorting, then deleted.
    eid = im.create_timeline_event(incidentRecordArn=first, eventTime=now - datetime.timedelta(hours=1),
                                   eventType="Custom Event", eventData=json.dumps("deploy 1.2.3"),
                                   eventReferences=[{"resource": plan}])["eventId"]
    im.update_timeline_event(incidentRecordArn=first, eventId=eid, eventData=json.dumps("deploy 1.2.4"))
    ev = im.get_timeline_event(incidentRecordArn=first, eventId=eid)["event"]
    assert json.loads(ev["eventData"]) == "deploy 1.2.4" and ev["eventReferences"] == [{"resource": plan}]
    asc = im.list_timeline_events(incidentRecordArn=first, sortBy="EVENT_TIME", sortOrder="ASCENDING")
    assert asc["eventSummaries"][0]["eventId"] == eid
    custom = im.list_timeline_events(incidentRecordArn=first, filters=[
        {"key": "eventType", "condition": {"equals": {"stringValues": ["Custom Event"]}}}])["eventSummaries"]
    assert [e["eventId"] for e in custom] == [eid]
    with pytest.raises(ClientError) as e:
        im.create_timeline_event(incidentRecordArn=first, eventTime=now, eventType="Bogus", eventData="x")
    assert code(e) == "ValidationException"
    im.delete_timeline_event(incidentRecordArn=first, eventId=eid)
    with pytest.raises(ClientError) as e:
        im.get_timeline_event(incidentRecordArn=first, eventId=eid)
    assert code(e) == "ResourceNotFoundException"

    # Related items.
    items = im.list_related_items(incidentRecordArn=first)["relatedItems"]
    assert [i["identifier"]["value"] for i in items] == [{"url": "https://wiki/api"}]
    metric = {"type": "METRIC", "value": {"arn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:x"}}
    im.update_related_items(incidentRecordArn=first, relatedItemsUpdate={"itemToAdd": {"identifier": metric}})
    with pytest.raises(ClientError) as e:
        im.update_related_items(incidentRecordArn=first, relatedItemsUpdate={"itemToAdd": {"identifier": metric}})
    assert code(e) == "ConflictException"
    im.update_related_items(incidentRecordArn=first, relatedItemsUpdate={"itemToRemove": metric})
    assert len(im.list_related_items(incidentRecordArn=first)["relatedItems"]) == 1
    assert im.list_incident_findings(incidentRecordArn=first)["findings"] == []
    got = im.batch_get_incident_findings(incidentRecordArn=first, findingIds=["f-1"])
    assert got["findings"] == [] and got["errors"][0]["findingId"] == "f-1"

    # Update: impact, summary, then resolve; a new StartIncident opens a new incident.
    im.update_incident_record(arn=first, impact=1, summary="root cause: bad deploy")
    im.update_incident_record(arn=first, status="RESOLVED")
    rec = im.get_incident_record(arn=first)["incidentRecord"]
    assert rec["status"] == "RESOLVED" and rec["impact"] == 1 and "resolvedTime" in rec
    assert rec["summary"] == "root cause: bad deploy"
    data = event_data(im, first)
    assert any("Impact changed from 2 to 1" in d for d in data)
    assert any("Status changed from OPEN to RESOLVED" in d for d in data)
    third = im.start_incident(responsePlanArn=plan, title="API errors again")["incidentRecordArn"]
    assert third != first
    resolved = im.list_incident_records(filters=[
        {"key": "status", "condition": {"equals": {"stringValues": ["RESOLVED"]}}}])["incidentRecordSummaries"]
    assert [r["arn"] for r in resolved] == [first]
    high = im.list_incident_records(filters=[
        {"key": "impact", "condition": {"equals": {"integerValues": [1]}}},
        {"key": "creationTime", "condition": {"after": now - datetime.timedelta(minutes=5)}}])["incidentRecordSummaries"]
    assert [r["arn"] for r in high] == [first]
    with pytest.raises(ClientError) as e:
        im.get_incident_record(arn=plan.replace("response-plan/api", "incident-record/api/nope"))
    assert code(e) == "ResourceNotFoundException"


def test_alarm_opens_incident_posts_to_chat_and_auto_resolves(srv, receiver):
    im, cw, sns = client(srv, "ssm-incidents"), client(srv, "cloudwatch"), client(srv, "sns")
    topic = sns.create_topic(Name="incident-chat")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="slack", Endpoint=receiver.url)
    plan = im.create_response_plan(
        name="web", incidentTemplate={"title": "Web latency", "impact": 2},
        chatChannel={"chatbotSns": [topic]}, tags={"opsloop:auto-resolve": "true"})["arn"]
    # PutMetricAlarm documents the `responseplan/<name>` form of the plan's ARN.
    ns, alarm_name = f"e2e/{uuid.uuid4().hex[:8]}", "web-latency"
    cw.put_metric_alarm(AlarmName=alarm_name, Namespace=ns, MetricName="Latency", Statistic="Maximum", Period=10,
                        EvaluationPeriods=1, Threshold=10.0, ComparisonOperator="GreaterThanThreshold",
                        AlarmActions=[plan.replace(":response-plan/", ":responseplan/")])
    breached_at = time.time()
    cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "Latency", "Value": 50.0, "StorageResolution": 1}])

    def opened():
        recs = im.list_incident_records()["incidentRecordSummaries"]
        return [r for r in recs if r["incidentRecordSource"]["source"] == "aws.cloudwatch"]
    rec = wait_for(opened, what="incident opened by the alarm")[0]
    print(f"breaching datapoint -> incident opened after {1000 * (time.time() - breached_at):.0f} ms")
    arn = rec["arn"]
    assert rec["incidentRecordSource"]["resourceArn"].endswith(f":alarm:{alarm_name}")
    assert alarm_name in rec["title"]
    post = wait_for(lambda: [r for r in receiver.all() if b"Incident opened" in r.body], what="chat post: opened")[0]
    assert "text" in post.json()
    items = im.list_related_items(incidentRecordArn=arn)["relatedItems"]
    assert any(i["identifier"]["value"].get("arn", "").endswith(f":alarm:{alarm_name}") for i in items)

    # The alarm recovers: a good datapoint in the next 10-second period (the breaching period's
    # maximum cannot fall), evaluated when that period ends.
    next_period = (breached_at // 10) * 10 + 10
    wait_for(lambda: time.time() >= next_period, what="the next 10-second period")
    cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "Latency", "Value": 1.0, "StorageResolution": 1}])
    wait_for(lambda: cw.describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"][0]["StateValue"] == "OK",
             deadline_s=40, what="alarm back to OK")
    wait_for(lambda: im.get_incident_record(arn=arn)["incidentRecord"]["status"] == "RESOLVED",
             what="incident auto-resolved")
    data = event_data(im, arn)
    assert any("changed from ALARM to OK" in d for d in data), data
    assert any("Auto-resolved" in d for d in data), data
    wait_for(lambda: [r for r in receiver.all() if b"Incident resolved" in r.body], what="chat post: resolved")


def test_runbook_runs_with_the_incident_arn_and_its_result_reaches_timeline_and_chat(srv, receiver):
    im, sns, ssm = client(srv, "ssm-incidents"), client(srv, "sns"), client(srv, "ssm")
    topic = sns.create_topic(Name="runbook-chat")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="slack", Endpoint=receiver.url)
    doc = {"schemaVersion": "0.3", "parameters": {"IncidentArn": {"type": "String"}, "Target": {"type": "String"}},
           "mainSteps": [{"name": "diagnose", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}, "isEnd": True}]}
    ssm.create_document(Name="Diagnose", DocumentType="Automation", DocumentFormat="JSON", Content=json.dumps(doc))
    plan = im.create_response_plan(
        name="rb", incidentTemplate={"title": "Disk full", "impact": 3}, chatChannel={"chatbotSns": [topic]},
        actions=[{"ssmAutomation": {"documentName": "Diagnose", "roleArn": "arn:aws:iam::123456789012:role/r",
                                    "parameters": {"Target": ["web-1"]},
                                    "dynamicParameters": {"IncidentArn": {"variable": "INCIDENT_RECORD_ARN"}}}}])["arn"]
    arn = im.start_incident(responsePlanArn=plan)["incidentRecordArn"]
    execs = wait_for(lambda: im.get_incident_record(arn=arn)["incidentRecord"]["automationExecutions"],
                     what="automation execution on the incident")
    exec_id = execs[0]["ssmExecutionArn"].rsplit("/", 1)[1]
    got = ssm.get_automation_execution(AutomationExecutionId=exec_id)["AutomationExecution"]
    assert got["Parameters"]["IncidentArn"] == [arn] and got["Parameters"]["Target"] == ["web-1"]
    wait_for(lambda: [d for d in event_data(im, arn) if "finished: Success" in d], what="runbook result on the timeline")
    wait_for(lambda: [r for r in receiver.all() if b"finished: Success" in r.body], what="chat post: runbook result")

    # A runbook that cannot start is recorded as such.
    broken = im.create_response_plan(
        name="rb-missing", incidentTemplate={"title": "Disk full", "impact": 3},
        actions=[{"ssmAutomation": {"documentName": "NoSuchRunbook", "roleArn": "arn:aws:iam::123456789012:role/r"}}])["arn"]
    arn2 = im.start_incident(responsePlanArn=broken)["incidentRecordArn"]
    wait_for(lambda: [d for d in event_data(im, arn2) if "Runbook NoSuchRunbook could not be started" in d],
             what="runbook failure on the timeline")
    assert im.get_incident_record(arn=arn2)["incidentRecord"]["automationExecutions"] == []


def test_conditional_engagement_pages_only_open_incidents(srv):
    im, contacts = client(srv, "ssm-incidents"), client(srv, "ssm-contacts")
    contact = contacts.create_contact(Alias="oncall", Type="PERSONAL", Plan={"Stages": []})["ContactArn"]
    # 0.5 s minutes: the delay of 2 minutes lasts one second.
    plan = im.create_response_plan(name="pager", incidentTemplate={"title": "DB slow", "impact": 2},
                                   engagements=[contact], tags={"opsloop:engage-delay-minutes": "2"})["arn"]
    fixed = im.start_incident(responsePlanArn=plan, title="fixed by the runbook")["incidentRecordArn"]
    im.update_incident_record(arn=fixed, status="RESOLVED")
    broken = im.start_incident(responsePlanArn=plan, title="still broken")["incidentRecordArn"]
    started = time.monotonic()
    engaged = wait_for(lambda: contacts.list_engagements(IncidentId=broken)["Engagements"],
                       what="engagement of the still-open incident")
    assert time.monotonic() - started >= 0.5, "the engagement waited for the delay"
    assert engaged[0]["ContactArn"] == contact
    wait_for(lambda: [d for d in event_data(im, fixed) if "skipped" in d], what="skipped engagement on the timeline")
    assert contacts.list_engagements(IncidentId=fixed)["Engagements"] == []
    assert any("Engaged" in d for d in event_data(im, broken))


def test_a_restart_before_the_delay_neither_loses_nor_repeats_the_engagement(srv):
    im, contacts = client(srv, "ssm-incidents"), client(srv, "ssm-contacts")
    contact = contacts.create_contact(Alias="night", Type="PERSONAL", Plan={"Stages": []})["ContactArn"]
    # 0.5 s minutes: the delay of 4 minutes lasts two seconds, longer than the restart.
    plan = im.create_response_plan(name="durable", incidentTemplate={"title": "Queue stuck", "impact": 2},
                                   engagements=[contact], tags={"opsloop:engage-delay-minutes": "4"})["arn"]
    arn = im.start_incident(responsePlanArn=plan)["incidentRecordArn"]
    assert srv.stop() == 0
    srv.start()
    im, contacts = client(srv, "ssm-incidents"), client(srv, "ssm-contacts")
    wait_for(lambda: contacts.list_engagements(IncidentId=arn)["Engagements"], what="engagement after the restart")
    wait_for(lambda: [d for d in event_data(im, arn) if "Engaged" in d], what="engaged on the timeline")
    # Give a repeated job every chance to show up: its due time has long passed.
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        assert len(contacts.list_engagements(IncidentId=arn)["Engagements"]) == 1
        time.sleep(0.1)
    assert sum("Engaged" in d for d in event_data(im, arn)) == 1

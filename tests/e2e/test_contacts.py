"""End-to-end tests of Incident Manager contacts (`ssm-contacts`) with boto3: contacts and channels
with activation codes delivered through an SMTP sink and an SMS/voice HTTP gateway receiver (both
on loopback, started here), pages with accept codes, escalation on timers (with the test-only
`OPSLOOP_CONTACTS_MINUTE_SECONDS` scaling so a plan "minute" lasts a fraction of a second), rotation
shifts in a time zone, and a restart in the middle of an escalation."""

from __future__ import annotations

import datetime
import json
import re
import time

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import harness
from sns_support import Receiver, SmtpSink, wait_for

CODE = re.compile(r"(?:activation code for .* is|accept code) (\d{6})")


def contacts_client(srv: harness.Server):
    cfg = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=30)
    return harness.session(None).client("ssm-contacts", endpoint_url=srv.url, config=cfg)


@pytest.fixture
def sinks():
    smtp, gateway = SmtpSink(), Receiver()
    yield smtp, gateway
    smtp.close()
    gateway.close()


def start_server(make_server, smtp, gateway, minute_seconds="0.5", name=None):
    env = {
        "OPSLOOP_CONTACTS_SMTP_URL": smtp.url,
        "OPSLOOP_CONTACTS_SMS_GATEWAY_URL": gateway.url,
        "OPSLOOP_CONTACTS_VOICE_GATEWAY_URL": gateway.url.replace("/hook", "/voice"),
        "OPSLOOP_CONTACTS_MINUTE_SECONDS": minute_seconds,
    }
    return make_server(env=env, name=name)


def mails_to(smtp: SmtpSink, address: str) -> list:
    return [m for m in smtp.all() if address in m.rcpt_to]


def code_in(text: str) -> str:
    m = CODE.search(text)
    assert m, f"no code in {text!r}"
    return m.group(1)


def error_code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def personal(c, smtp: SmtpSink, alias: str, stages_minutes=(1,)) -> tuple[str, str]:
    """A PERSONAL contact with one activated EMAIL channel and a plan paging it."""
    arn = c.create_contact(Alias=alias, Type="PERSONAL", Plan={"Stages": []})["ContactArn"]
    address = f"{alias}@example.com"
    ch = c.create_contact_channel(ContactId=arn, Name="mail", Type="EMAIL",
                                  DeliveryAddress={"SimpleAddress": address})["ContactChannelArn"]
    mail = wait_for(lambda: mails_to(smtp, address), what=f"activation mail to {address}")[0]
    c.activate_contact_channel(ContactChannelId=ch, ActivationCode=code_in(mail.body()))
    stages = [{"DurationInMinutes": m, "Targets": [{"ChannelTargetInfo": {"ContactChannelId": ch}}]}
              for m in stages_minutes]
    c.update_contact(ContactId=arn, Plan={"Stages": stages})
    return arn, ch


def test_contacts_channels_activation_and_paging(make_server, sinks):
    smtp, gateway = sinks
    srv = start_server(make_server, smtp, gateway)
    c = contacts_client(srv)

    alice = c.create_contact(Alias="alice", DisplayName="Alice", Type="PERSONAL", Plan={"Stages": []},
                             Tags=[{"Key": "team", "Value": "ops"}])["ContactArn"]
    with pytest.raises(ClientError) as e:
        c.create_contact(Alias="alice", Type="PERSONAL", Plan={"Stages": []})
    assert error_code(e) == "ConflictException"
    assert c.list_tags_for_resource(ResourceARN=alice)["Tags"] == [{"Key": "team", "Value": "ops"}]

    # EMAIL: the activation code arrives by mail; a wrong code is refused.
    email_ch = c.create_contact_channel(ContactId=alice, Name="work-mail", Type="EMAIL",
                                        DeliveryAddress={"SimpleAddress": "alice@example.com"})["ContactChannelArn"]
    mail = wait_for(lambda: mails_to(smtp, "alice@example.com"), what="activation mail")[0]
    code = code_in(mail.body())
    assert c.get_contact_channel(ContactChannelId=email_ch)["ActivationStatus"] == "NOT_ACTIVATED"
    with pytest.raises(ClientError) as e:
        c.activate_contact_channel(ContactChannelId=email_ch, ActivationCode="000000" if code != "000000" else "111111")
    assert error_code(e) == "ValidationException"
    c.activate_contact_channel(ContactChannelId=email_ch, ActivationCode=code)
    assert c.get_contact_channel(ContactChannelId=email_ch)["ActivationStatus"] == "ACTIVATED"

    # SMS with deferred activation: nothing is sent until SendActivationCode.
    sms_ch = c.create_contact_channel(ContactId=alice, Name="phone", Type="SMS", DeferActivation=True,
                                      DeliveryAddress={"SimpleAddress": "+12065550100"})["ContactChannelArn"]
    with pytest.raises(ClientError) as e:
        c.create_contact_channel(ContactId=alice, Name="bad", Type="SMS",
                                 DeliveryAddress={"SimpleAddress": "not-a-number"})
    assert error_code(e) == "ValidationException"
    assert gateway.all() == []
    c.send_activation_code(ContactChannelId=sms_ch)
    sms = gateway.wait_count(1)[0].json()
    assert sms["channel"] == "SMS" and sms["address"] == "+12065550100" and sms["kind"] == "activation"
    assert sms["activationCode"] in sms["message"]
    c.activate_contact_channel(ContactChannelId=sms_ch, ActivationCode=sms["activationCode"])
    channels = c.list_contact_channels(ContactId=alice, MaxResults=1)
    assert len(channels["ContactChannels"]) == 1 and "NextToken" in channels
    rest = c.list_contact_channels(ContactId=alice, NextToken=channels["NextToken"])
    assert {ch["Name"] for ch in channels["ContactChannels"] + rest["ContactChannels"]} == {"work-mail", "phone"}

    c.update_contact(ContactId=alice, Plan={"Stages": [{"DurationInMinutes": 1, "Targets": [
        {"ChannelTargetInfo": {"ContactChannelId": email_ch}},
        {"ChannelTargetInfo": {"ContactChannelId": sms_ch}}]}]})
    got = c.get_contact(ContactId=alice)
    assert got["DisplayName"] == "Alice" and len(got["Plan"]["Stages"][0]["Targets"]) == 2
    assert [x["Alias"] for x in c.list_contacts(AliasPrefix="ali")["Contacts"]] == ["alice"]

    c.put_contact_policy(ContactArn=alice, Policy=json.dumps({"Version": "2012-10-17", "Statement": []}))
    assert json.loads(c.get_contact_policy(ContactArn=alice)["Policy"])["Version"] == "2012-10-17"

    # A page by email (with its accept code) and by SMS.
    eng = c.start_engagement(ContactId=alice, Sender="cloudwatch", Subject="CPU high", Content="web-1 CPU at 99%",
                             PublicSubject="Alert", PublicContent="An alert needs you", IncidentId="inc-42")["EngagementArn"]
    page_mail = wait_for(lambda: [m for m in mails_to(smtp, "alice@example.com") if m.subject == "CPU high"],
                         what="page mail")[0]
    accept = code_in(page_mail.body())
    assert "web-1 CPU at 99%" in page_mail.body()
    page_sms = wait_for(lambda: [r.json() for r in gateway.all() if r.json().get("kind") == "page"], what="page SMS")[0]
    assert page_sms["acceptCode"] == accept and "An alert needs you" in page_sms["message"]

    pages = c.list_pages_by_engagement(EngagementId=eng)["Pages"]
    assert len(pages) == 1 and pages[0]["ContactArn"] == alice and pages[0]["IncidentId"] == "inc-42"
    page = pages[0]["PageArn"]
    assert c.list_pages_by_contact(ContactId=alice)["Pages"][0]["PageArn"] == page
    wait_for(lambda: len([r for r in c.list_page_receipts(PageId=page)["Receipts"] if r["ReceiptType"] == "SENT"]) == 2,
             what="two SENT receipts")

    with pytest.raises(ClientError) as e:
        c.accept_page(PageId=page, AcceptType="READ", AcceptCode="000000" if accept != "000000" else "111111",
                      AcceptCodeValidation="ENFORCE")
    assert error_code(e) == "ValidationException"
    c.accept_page(PageId=page, AcceptType="DELIVERED", AcceptCode=accept, ContactChannelId=email_ch)
    c.accept_page(PageId=page, AcceptType="READ", AcceptCode=accept, ContactChannelId=email_ch, Note="on it")
    kinds = [r["ReceiptType"] for r in c.list_page_receipts(PageId=page)["Receipts"]]
    assert kinds.count("SENT") == 2 and "DELIVERED" in kinds and "READ" in kinds
    described = c.describe_page(PageId=page)
    assert described["Subject"] == "CPU high" and "ReadTime" in described and "DeliveryTime" in described
    assert c.list_page_resolutions(PageId=page)["PageResolutions"] == [{"ContactArn": alice, "Type": "PERSONAL"}]

    engagement = c.describe_engagement(EngagementId=eng)
    assert engagement["PublicSubject"] == "Alert" and "StopTime" not in engagement
    c.stop_engagement(EngagementId=eng, Reason="resolved")
    assert "StopTime" in c.describe_engagement(EngagementId=eng)
    assert [x["EngagementArn"] for x in c.list_engagements(IncidentId="inc-42")["Engagements"]] == [eng]

    with pytest.raises(ClientError) as e:
        c.describe_page(PageId=page.replace(page.rsplit("/", 1)[1], "00000000-0000-0000-0000-000000000000"))
    assert error_code(e) == "ResourceNotFoundException"
    c.delete_contact_channel(ContactChannelId=sms_ch)
    with pytest.raises(ClientError) as e:
        c.get_contact_channel(ContactChannelId=sms_ch)
    assert error_code(e) == "ResourceNotFoundException"


def test_escalation_moves_on_when_unacknowledged_and_stops_when_acknowledged(make_server, sinks):
    smtp, gateway = sinks
    minute = 0.5
    srv = start_server(make_server, smtp, gateway, minute_seconds=str(minute))
    c = contacts_client(srv)
    alice, _ = personal(c, smtp, "alice")
    bob, _ = personal(c, smtp, "bob")
    carol, _ = personal(c, smtp, "carol")
    plan = {"Stages": [
        {"DurationInMinutes": 2, "Targets": [{"ContactTargetInfo": {"ContactId": alice, "IsEssential": True}}]},
        {"DurationInMinutes": 2, "Targets": [{"ContactTargetInfo": {"ContactId": bob, "IsEssential": True}}]},
        {"DurationInMinutes": 2, "Targets": [{"ContactTargetInfo": {"ContactId": carol, "IsEssential": True}}]},
    ]}
    team = c.create_contact(Alias="team", Type="ESCALATION", Plan=plan)["ContactArn"]
    with pytest.raises(ClientError) as e:
        c.delete_contact(ContactId=alice)
    assert error_code(e) == "ConflictException"

    started = time.monotonic()
    eng = c.start_engagement(ContactId=team, Sender="ops", Subject="db down", Content="primary db down")["EngagementArn"]
    wait_for(lambda: [m for m in mails_to(smtp, "alice@example.com") if m.subject == "db down"], what="stage 1 page")
    # Alice does not answer: after stage 1's 2 "minutes" (1 s) Bob is paged.
    bob_mail = wait_for(lambda: [m for m in mails_to(smtp, "bob@example.com") if m.subject == "db down"],
                        what="stage 2 page")[0]
    assert time.monotonic() - started >= 2 * minute - 0.05, "stage 2 came before stage 1 ended"
    pages = c.list_pages_by_engagement(EngagementId=eng)["Pages"]
    bob_page = next(p["PageArn"] for p in pages if p["ContactArn"] == bob)
    resolution = c.list_page_resolutions(PageId=bob_page)["PageResolutions"]
    assert resolution[0] == {"ContactArn": team, "Type": "ESCALATION", "StageIndex": 1}
    # Bob acknowledges: Carol (stage 3, due 1 s after Bob's page) is never paged.
    c.accept_page(PageId=bob_page, AcceptType="READ", AcceptCode=code_in(bob_mail.body()))
    acked = time.monotonic()
    wait_for(lambda: time.monotonic() - acked > 4 * minute, what="stage 3 due time to pass")
    assert [m for m in mails_to(smtp, "carol@example.com") if m.subject == "db down"] == []
    assert len(c.list_pages_by_engagement(EngagementId=eng)["Pages"]) == 2

    # A second engagement acknowledged in stage 1 never reaches Bob.
    eng2 = c.start_engagement(ContactId=team, Sender="ops", Subject="disk full", Content="disk")["EngagementArn"]
    alice_mail = wait_for(lambda: [m for m in mails_to(smtp, "alice@example.com") if m.subject == "disk full"],
                          what="second engagement page")[0]
    page = c.list_pages_by_engagement(EngagementId=eng2)["Pages"][0]["PageArn"]
    c.accept_page(PageId=page, AcceptType="READ", AcceptCode=code_in(alice_mail.body()))
    acked = time.monotonic()
    wait_for(lambda: time.monotonic() - acked > 4 * minute, what="stage 2 due time to pass")
    assert [m for m in mails_to(smtp, "bob@example.com") if m.subject == "disk full"] == []


def ts(s: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


def test_rotation_shifts_in_a_time_zone_and_oncall_engagement(make_server, sinks):
    smtp, gateway = sinks
    srv = start_server(make_server, smtp, gateway)
    c = contacts_client(srv)
    alice, _ = personal(c, smtp, "alice")
    bob, _ = personal(c, smtp, "bob")
    recurrence = {"NumberOfOnCalls": 1, "RecurrenceMultiplier": 1,
                  "DailySettings": [{"HourOfDay": 9, "MinuteOfHour": 0}]}
    with pytest.raises(ClientError) as e:
        c.create_rotation(Name="bad", ContactIds=[alice], TimeZoneId="Mars/Olympus", Recurrence=recurrence)
    assert error_code(e) == "ValidationException"
    rot = c.create_rotation(Name="primary", ContactIds=[alice, bob], TimeZoneId="America/New_York",
                            StartTime=ts("2026-03-06T14:00:00Z"), Recurrence=recurrence)["RotationArn"]
    got = c.get_rotation(RotationId=rot)
    assert got["TimeZoneId"] == "America/New_York" and got["ContactIds"] == [alice, bob]
    shifts = c.list_rotation_shifts(RotationId=rot, StartTime=ts("2026-03-06T14:00:00Z"),
                                    EndTime=ts("2026-03-10T00:00:00Z"))["RotationShifts"]
    # 09:00 New York is 14:00 UTC before the DST change of 8 March 2026 and 13:00 UTC after it.
    starts = [s["StartTime"].astimezone(datetime.timezone.utc).isoformat() for s in shifts]
    assert starts[:4] == ["2026-03-06T14:00:00+00:00", "2026-03-07T14:00:00+00:00",
                          "2026-03-08T13:00:00+00:00", "2026-03-09T13:00:00+00:00"]
    assert [s["ContactIds"] for s in shifts[:3]] == [[alice], [bob], [alice]]

    override = c.create_rotation_override(RotationId=rot, NewContactIds=[bob], StartTime=ts("2026-03-06T15:00:00Z"),
                                          EndTime=ts("2026-03-06T16:00:00Z"))["RotationOverrideId"]
    assert c.get_rotation_override(RotationId=rot, RotationOverrideId=override)["NewContactIds"] == [bob]
    listed = c.list_rotation_overrides(RotationId=rot, StartTime=ts("2026-03-06T00:00:00Z"),
                                       EndTime=ts("2026-03-07T00:00:00Z"))["RotationOverrides"]
    assert [o["RotationOverrideId"] for o in listed] == [override]
    shifts = c.list_rotation_shifts(RotationId=rot, StartTime=ts("2026-03-06T14:00:00Z"),
                                    EndTime=ts("2026-03-07T00:00:00Z"))["RotationShifts"]
    overridden = [s for s in shifts if s["Type"] == "OVERRIDDEN"]
    assert len(overridden) == 1 and overridden[0]["ContactIds"] == [bob]
    assert overridden[0]["ShiftDetails"]["OverriddenContactIds"] == [alice]
    c.delete_rotation_override(RotationId=rot, RotationOverrideId=override)

    preview = c.list_preview_rotation_shifts(
        Members=["ann", "ben", "cat"], TimeZoneId="Asia/Tokyo", RotationStartTime=ts("2026-01-05T00:00:00Z"),
        StartTime=ts("2026-01-05T00:00:00Z"), EndTime=ts("2026-01-26T00:00:00Z"),
        Recurrence={"NumberOfOnCalls": 1, "RecurrenceMultiplier": 1,
                    "WeeklySettings": [{"DayOfWeek": "MON", "HandOffTime": {"HourOfDay": 9, "MinuteOfHour": 30}}]})
    weekly = preview["RotationShifts"]
    # Monday 09:30 in Tokyo is 00:30 UTC.
    assert weekly[1]["StartTime"].astimezone(datetime.timezone.utc).isoformat() == "2026-01-05T00:30:00+00:00"
    assert [s["ContactIds"] for s in weekly[:4]] == [["ann"], ["ben"], ["cat"], ["ann"]]

    # An on-call schedule pages whoever is on call now.
    now_rot = c.create_rotation(Name="now", ContactIds=[bob, alice], TimeZoneId="UTC",
                                StartTime=datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1),
                                Recurrence={"NumberOfOnCalls": 1, "RecurrenceMultiplier": 1,
                                            "WeeklySettings": [{"DayOfWeek": d, "HandOffTime": {"HourOfDay": 0, "MinuteOfHour": 0}}
                                                               for d in ["MON"]]})["RotationArn"]
    assert {r["Name"] for r in c.list_rotations()["Rotations"]} == {"primary", "now"}
    schedule = c.create_contact(Alias="oncall", Type="ONCALL_SCHEDULE", Plan={"RotationIds": [now_rot]})["ContactArn"]
    c.start_engagement(ContactId=schedule, Sender="ops", Subject="on-call test", Content="who is on call")
    wait_for(lambda: [m for m in mails_to(smtp, "bob@example.com") if m.subject == "on-call test"], what="on-call page")
    assert [m for m in mails_to(smtp, "alice@example.com") if m.subject == "on-call test"] == []
    with pytest.raises(ClientError) as e:
        c.delete_rotation(RotationId=now_rot)
    assert error_code(e) == "ConflictException"


def test_restart_mid_escalation_neither_loses_nor_repeats_a_page(make_server, sinks):
    smtp, gateway = sinks
    minute = 1.0
    srv = start_server(make_server, smtp, gateway, minute_seconds=str(minute))
    c = contacts_client(srv)
    alice, _ = personal(c, smtp, "alice")
    bob, _ = personal(c, smtp, "bob")
    team = c.create_contact(Alias="team", Type="ESCALATION", Plan={"Stages": [
        {"DurationInMinutes": 3, "Targets": [{"ContactTargetInfo": {"ContactId": alice, "IsEssential": True}}]},
        {"DurationInMinutes": 3, "Targets": [{"ContactTargetInfo": {"ContactId": bob, "IsEssential": True}}]},
    ]})["ContactArn"]
    eng = c.start_engagement(ContactId=team, Sender="ops", Subject="outage", Content="site down")["EngagementArn"]
    started = time.monotonic()
    wait_for(lambda: [m for m in mails_to(smtp, "alice@example.com") if m.subject == "outage"], what="stage 1 page")
    first = c.list_pages_by_engagement(EngagementId=eng)["Pages"][0]["PageArn"]
    wait_for(lambda: [r for r in c.list_page_receipts(PageId=first)["Receipts"] if r["ReceiptType"] == "SENT"],
             what="stage 1 delivery recorded")
    assert srv.stop() == 0
    # Stage 2 falls due (3 s after the start) while the server is down.
    wait_for(lambda: time.monotonic() - started > 3 * minute + 0.5, what="stage 2 due time to pass")
    srv.start()
    c = contacts_client(srv)
    wait_for(lambda: [m for m in mails_to(smtp, "bob@example.com") if m.subject == "outage"], what="stage 2 after restart")
    # Give the server more loop turns: still exactly one page each.
    wait_for(lambda: time.monotonic() - started > 6 * minute + 1, what="settling time")
    assert len([m for m in mails_to(smtp, "alice@example.com") if m.subject == "outage"]) == 1
    assert len([m for m in mails_to(smtp, "bob@example.com") if m.subject == "outage"]) == 1
    pages = c.list_pages_by_engagement(EngagementId=eng)["Pages"]
    assert sorted(p["ContactArn"] for p in pages) == sorted([alice, bob])
    # And a restart after it all leaves the engagement intact.
    assert srv.stop() == 0
    srv.start()
    c = contacts_client(srv)
    assert len(c.list_pages_by_engagement(EngagementId=eng)["Pages"]) == 2

"""SNS end to end: the real aws CLI and boto3 against the opsloop binary — topics, attributes, tags,
permissions, the HTTP/S confirmation flow with signatures checked the way AWS tells validators to
check them, filter policies, raw delivery, retries that survive a restart, email through an SMTP
sink, Slack-style chat posts, and the API's validation errors.
"""

from __future__ import annotations

import json
import signal
import urllib.parse
import uuid

import pytest
from botocore.exceptions import ClientError

import harness
from sns_support import LoopbackCA, Receiver, SmtpSink, fetch, sns_client, verify_signature, wait_for


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def sns_server(make_server):
    """A dedicated server (its public URL is its own listen address)."""
    return make_server()


@pytest.fixture
def sns(sns_server):
    return sns_client(sns_server)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def error_of(call, *args, **kwargs) -> ClientError:
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    return info.value


def confirm(sns, receiver: Receiver, topic_arn: str, protocol: str = "http", attributes=None) -> str:
    """Subscribe the receiver and confirm by visiting the SubscribeURL; returns the subscription ARN."""
    kwargs = {"TopicArn": topic_arn, "Protocol": protocol, "Endpoint": receiver.url}
    if attributes:
        kwargs["Attributes"] = attributes
    before = len(receiver.of_type("SubscriptionConfirmation"))
    assert sns.subscribe(**kwargs)["SubscriptionArn"] == "pending confirmation"
    doc = receiver.wait_type("SubscriptionConfirmation", before + 1)[-1].json()
    status, body = fetch(doc["SubscribeURL"])
    assert status == 200, body
    arn = body.decode().split("<SubscriptionArn>")[1].split("<")[0]
    assert arn.startswith(topic_arn + ":")
    return arn


def test_topics_with_the_aws_cli(sns_server):
    name = unique("cli-topic")
    _, out, _ = harness.aws(sns_server, "sns", "create-topic", "--name", name, "--attributes", "DisplayName=Ops",
                            "--tags", "Key=team,Value=sre")
    arn = out["TopicArn"]
    assert arn == f"arn:aws:sns:{harness.REGION}:000000000000:{name}"
    # Idempotent by name and attributes.
    _, again, _ = harness.aws(sns_server, "sns", "create-topic", "--name", name, "--attributes", "DisplayName=Ops")
    assert again["TopicArn"] == arn
    rc, _, err = harness.aws(sns_server, "sns", "create-topic", "--name", name, "--attributes", "DisplayName=Other",
                             check=False)
    assert rc != 0 and "InvalidParameter" in err and "different attributes" in err

    _, attrs, _ = harness.aws(sns_server, "sns", "get-topic-attributes", "--topic-arn", arn)
    a = attrs["Attributes"]
    assert a["DisplayName"] == "Ops" and a["TopicArn"] == arn and a["Owner"] == "000000000000"
    assert (a["SubscriptionsConfirmed"], a["SubscriptionsPending"], a["SubscriptionsDeleted"]) == ("0", "0", "0")
    policy = json.loads(a["Policy"])
    assert policy["Statement"][0]["Resource"] == arn
    effective = json.loads(a["EffectiveDeliveryPolicy"])
    assert effective["http"]["defaultHealthyRetryPolicy"]["numRetries"] == 3
    assert effective["http"]["defaultHealthyRetryPolicy"]["minDelayTarget"] == 20

    _, tags, _ = harness.aws(sns_server, "sns", "list-tags-for-resource", "--resource-arn", arn)
    assert tags["Tags"] == [{"Key": "team", "Value": "sre"}]
    harness.aws(sns_server, "sns", "delete-topic", "--topic-arn", arn)
    rc, _, err = harness.aws(sns_server, "sns", "get-topic-attributes", "--topic-arn", arn, check=False)
    assert rc != 0 and "NotFound" in err


def test_topic_attributes_permissions_tags_and_paging(sns):
    arn = sns.create_topic(Name=unique("attrs"))["TopicArn"]
    policy = json.dumps({"http": {"defaultHealthyRetryPolicy": {"numRetries": 5, "minDelayTarget": 1,
                                                                  "maxDelayTarget": 10}}})
    sns.set_topic_attributes(TopicArn=arn, AttributeName="DeliveryPolicy", AttributeValue=policy)
    sns.set_topic_attributes(TopicArn=arn, AttributeName="KmsMasterKeyId", AttributeValue="alias/aws/sns")
    a = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert json.loads(a["EffectiveDeliveryPolicy"])["http"]["defaultHealthyRetryPolicy"]["numRetries"] == 5
    assert a["KmsMasterKeyId"] == "alias/aws/sns"
    e = error_of(sns.set_topic_attributes, TopicArn=arn, AttributeName="DeliveryPolicy",
                 AttributeValue=json.dumps({"http": {"defaultHealthyRetryPolicy": {"minDelayTarget": 0}}}))
    assert e.response["Error"]["Code"] == "InvalidParameter"
    assert "minDelayTarget must be greater than or equal to 1" in e.response["Error"]["Message"]
    e = error_of(sns.set_topic_attributes, TopicArn=arn, AttributeName="Bogus", AttributeValue="x")
    assert e.response["Error"]["Message"] == "Invalid parameter: AttributeName"

    sns.add_permission(TopicArn=arn, Label="pub", AWSAccountId=["111122223333"], ActionName=["Publish"])
    statements = json.loads(sns.get_topic_attributes(TopicArn=arn)["Attributes"]["Policy"])["Statement"]
    added = [s for s in statements if s["Sid"] == "pub"][0]
    assert added["Principal"] == {"AWS": "arn:aws:iam::111122223333:root"} and added["Action"] == "SNS:Publish"
    e = error_of(sns.add_permission, TopicArn=arn, Label="pub", AWSAccountId=["111122223333"], ActionName=["Publish"])
    assert e.response["Error"]["Code"] == "InvalidParameter"
    sns.remove_permission(TopicArn=arn, Label="pub")
    statements = json.loads(sns.get_topic_attributes(TopicArn=arn)["Attributes"]["Policy"])["Statement"]
    assert [s["Sid"] for s in statements] == ["__default_statement_ID"]

    sns.tag_resource(ResourceArn=arn, Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    sns.untag_resource(ResourceArn=arn, TagKeys=["a"])
    assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "b", "Value": "2"}]
    e = error_of(sns.list_tags_for_resource, ResourceArn=arn + "-missing")
    assert e.response["Error"]["Code"] == "ResourceNotFound"

    created = {sns.create_topic(Name=f"page-{i:03d}")["TopicArn"] for i in range(105)}
    seen, token, pages = [], None, 0
    while True:
        page = sns.list_topics(**({"NextToken": token} if token else {}))
        pages += 1
        seen += [t["TopicArn"] for t in page["Topics"]]
        token = page.get("NextToken")
        if not token:
            break
    assert pages >= 2 and created <= set(seen) and len(seen) == len(set(seen))
    # The paginator (what most code uses) sees the same.
    listed = [t["TopicArn"] for p in sns.get_paginator("list_topics").paginate() for t in p["Topics"]]
    assert sorted(listed) == sorted(seen)


def test_fifo_topics_and_publish_validation(sns):
    fifo = sns.create_topic(Name=unique("orders") + ".fifo",
                            Attributes={"FifoTopic": "true", "ContentBasedDeduplication": "true"})["TopicArn"]
    attrs = sns.get_topic_attributes(TopicArn=fifo)["Attributes"]
    assert (attrs["FifoTopic"], attrs["ContentBasedDeduplication"]) == ("true", "true")
    e = error_of(sns.create_topic, Name=unique("plain"), Attributes={"FifoTopic": "true"})
    assert "Fifo Topic names must end with .fifo" in e.response["Error"]["Message"]
    e = error_of(sns.publish, TopicArn=fifo, Message="m")
    assert "MessageGroupId" in e.response["Error"]["Message"]
    first = sns.publish(TopicArn=fifo, Message="same", MessageGroupId="g")
    dup = sns.publish(TopicArn=fifo, Message="same", MessageGroupId="g")
    assert dup["MessageId"] == first["MessageId"] and dup["SequenceNumber"] == first["SequenceNumber"]
    other = sns.publish(TopicArn=fifo, Message="different", MessageGroupId="g")
    assert int(other["SequenceNumber"]) > int(first["SequenceNumber"])

    topic = sns.create_topic(Name=unique("std"))["TopicArn"]
    cases = [
        (dict(Message=""), "Invalid parameter: Empty message"),
        (dict(Message="m", Subject="a\nb"), "Invalid parameter: Subject"),
        (dict(Message="x" * (256 * 1024 + 1)), "Invalid parameter: Message too long"),
        (dict(Message="{}", MessageStructure="json"),
         "Invalid parameter: Message Structure - No default entry in JSON message body"),
        (dict(Message="m", MessageAttributes={"n": {"DataType": "Number", "StringValue": "ten"}}),
         "Could not cast message attribute 'n' value to number."),
        (dict(Message="m", MessageDeduplicationId="d"), "not valid for this topic type"),
    ]
    for kwargs, message in cases:
        e = error_of(sns.publish, TopicArn=topic, **kwargs)
        assert e.response["Error"]["Code"] == "InvalidParameter", kwargs
        assert message in e.response["Error"]["Message"], (kwargs, e.response["Error"]["Message"])
    e = error_of(sns.publish, PhoneNumber="+15555550100", Message="hi")
    assert e.response["Error"]["Code"] == "InvalidParameter"
    e = error_of(sns.publish, TopicArn=topic + "-missing", Message="m")
    assert e.response["Error"]["Code"] == "NotFound"
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 404

    out = sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=[
        {"Id": "ok", "Message": "fine"}, {"Id": "bad", "Message": "m", "Subject": ""}])
    assert [s["Id"] for s in out["Successful"]] == ["ok"]
    assert out["Failed"][0]["Id"] == "bad" and out["Failed"][0]["Code"] == "InvalidParameter"
    assert out["Failed"][0]["SenderFault"] is True
    e = error_of(sns.publish_batch, TopicArn=topic, PublishBatchRequestEntries=[])
    assert e.response["Error"]["Code"] == "EmptyBatchRequest"
    e = error_of(sns.publish_batch, TopicArn=topic,
                 PublishBatchRequestEntries=[{"Id": "same", "Message": "1"}, {"Id": "same", "Message": "2"}])
    assert e.response["Error"]["Code"] == "BatchEntryIdsNotDistinct"
    e = error_of(sns.publish_batch, TopicArn=topic,
                 PublishBatchRequestEntries=[{"Id": f"e{i}", "Message": "m"} for i in range(11)])
    assert e.response["Error"]["Code"] == "TooManyEntriesInBatchRequest"


def test_http_confirmation_signatures_and_unsubscribe(sns_server, sns, receiver):
    topic = sns.create_topic(Name=unique("hooks"))["TopicArn"]
    # Subscribe with the aws CLI.
    _, out, _ = harness.aws(sns_server, "sns", "subscribe", "--topic-arn", topic, "--protocol", "http",
                            "--notification-endpoint", receiver.url)
    assert out["SubscriptionArn"] == "pending confirmation"
    listed = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert listed[0]["SubscriptionArn"] == "PendingConfirmation" and listed[0]["Endpoint"] == receiver.url

    req = receiver.wait_type("SubscriptionConfirmation")[0]
    assert req.headers["content-type"] == "text/plain; charset=UTF-8"
    assert req.headers["x-amz-sns-topic-arn"] == topic
    doc = req.json()
    assert req.headers["x-amz-sns-message-id"] == doc["MessageId"]
    assert doc["Type"] == "SubscriptionConfirmation" and doc["TopicArn"] == topic
    verify_signature(doc)
    query = urllib.parse.parse_qs(urllib.parse.urlparse(doc["SubscribeURL"]).query)
    assert query["Token"] == [doc["Token"]] and query["TopicArn"] == [topic]
    status, body = fetch(doc["SubscribeURL"])
    assert status == 200
    sub_arn = body.decode().split("<SubscriptionArn>")[1].split("<")[0]
    a = sns.get_subscription_attributes(SubscriptionArn=sub_arn)["Attributes"]
    assert a["PendingConfirmation"] == "false" and a["Protocol"] == "http" and a["Endpoint"] == receiver.url

    # A notification, signed with SHA1withRSA (version 1, the default).
    msg = 'multi\nline "quoted" message ü'
    mid = sns.publish(TopicArn=topic, Subject="Hello", Message=msg,
                      MessageAttributes={"kind": {"DataType": "String", "StringValue": "greeting"},
                                         "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}})["MessageId"]
    n = receiver.wait_type("Notification")[0]
    assert n.headers["x-amz-sns-message-id"] == mid and n.headers["x-amz-sns-subscription-arn"] == sub_arn
    doc = n.json()
    assert (doc["Message"], doc["Subject"], doc["SignatureVersion"]) == (msg, "Hello", "1")
    assert doc["MessageAttributes"]["kind"] == {"Type": "String", "Value": "greeting"}
    assert doc["MessageAttributes"]["blob"] == {"Type": "Binary", "Value": "AAE="}
    verify_signature(doc)

    # SignatureVersion 2: SHA256withRSA; no Subject in the string to sign when there is none.
    sns.set_topic_attributes(TopicArn=topic, AttributeName="SignatureVersion", AttributeValue="2")
    sns.publish(TopicArn=topic, Message="second")
    doc = receiver.wait_type("Notification", 2)[1].json()
    assert doc["SignatureVersion"] == "2" and "Subject" not in doc
    verify_signature(doc)
    tampered = dict(doc, Message="forged")
    with pytest.raises(Exception):
        verify_signature(tampered)

    # The UnsubscribeURL unsubscribes; the endpoint gets a signed UnsubscribeConfirmation.
    status, _ = fetch(doc["UnsubscribeURL"])
    assert status == 200
    u = receiver.wait_type("UnsubscribeConfirmation")[0].json()
    verify_signature(u)
    e = error_of(sns.get_subscription_attributes, SubscriptionArn=sub_arn)
    assert e.response["Error"]["Code"] == "NotFound"
    assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["SubscriptionsDeleted"] == "1"


def test_confirm_subscription_api_and_authenticated_unsubscribe(sns, receiver):
    topic = sns.create_topic(Name=unique("auth"))["TopicArn"]
    sub = sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=receiver.url, ReturnSubscriptionArn=True)
    assert sub["SubscriptionArn"].startswith(topic + ":")
    token = receiver.wait_type("SubscriptionConfirmation")[0].json()["Token"]
    e = error_of(sns.confirm_subscription, TopicArn=topic, Token="0" * 128)
    assert e.response["Error"]["Message"] == "Invalid parameter: Token"
    arn = sns.confirm_subscription(TopicArn=topic, Token=token, AuthenticateOnUnsubscribe="true")["SubscriptionArn"]
    assert arn == sub["SubscriptionArn"]
    assert sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]["ConfirmationWasAuthenticated"] == "true"
    sns.publish(TopicArn=topic, Message="x")
    link = receiver.wait_type("Notification")[0].json()["UnsubscribeURL"]
    status, _ = fetch(link)
    assert status == 403, "an authenticated subscription ignores unsigned unsubscribe links"
    sns.unsubscribe(SubscriptionArn=arn)
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []


def test_subscribe_validation(sns):
    topic = sns.create_topic(Name=unique("val"))["TopicArn"]
    cases = [
        (dict(Protocol="http", Endpoint="https://example.com/"), "Endpoint must match the specified protocol"),
        (dict(Protocol="email", Endpoint="nobody"), "Invalid parameter: Email address"),
        (dict(Protocol="carrier-pigeon", Endpoint="x"), "Invalid protocol type: carrier-pigeon"),
        (dict(Protocol="sqs", Endpoint="arn:aws:sqs:us-east-1:000000000000:q"), "not supported"),
        (dict(Protocol="http", Endpoint="http://127.0.0.1:9/x",
              Attributes={"FilterPolicy": json.dumps({"a": {"b": ["c"]}})}), "does not support nested filter policy"),
        (dict(Protocol="http", Endpoint="http://127.0.0.1:9/x",
              Attributes={"FilterPolicy": json.dumps({k: ["v"] for k in "abcdef"})}), "more than 5 keys"),
        (dict(Protocol="email", Endpoint="a@example.com", Attributes={"RawMessageDelivery": "true"}),
         "raw message delivery"),
    ]
    for kwargs, message in cases:
        e = error_of(sns.subscribe, TopicArn=topic, **kwargs)
        assert e.response["Error"]["Code"] == "InvalidParameter", kwargs
        assert message in e.response["Error"]["Message"], (kwargs, e.response["Error"]["Message"])
    e = error_of(sns.subscribe, TopicArn=topic + "-missing", Protocol="http", Endpoint="http://127.0.0.1:9/")
    assert e.response["Error"]["Code"] == "NotFound"


def test_filter_policies_and_raw_delivery(sns, receiver):
    topic = sns.create_topic(Name=unique("filter"))["TopicArn"]
    raw = Receiver()
    try:
        confirm(sns, receiver, topic, attributes={
            "FilterPolicy": json.dumps({"severity": ["critical", {"prefix": "sev1"}],
                                        "latency_ms": [{"numeric": [">", 500]}]})})
        body_sub = confirm(sns, raw, topic, attributes={"RawMessageDelivery": "true"})
        sns.set_subscription_attributes(SubscriptionArn=body_sub, AttributeName="FilterPolicyScope",
                                        AttributeValue="MessageBody")
        sns.set_subscription_attributes(SubscriptionArn=body_sub, AttributeName="FilterPolicy",
                                        AttributeValue=json.dumps({"detail": {"state": ["ALARM"]}}))

        def attrs(severity, latency):
            return {"severity": {"DataType": "String", "StringValue": severity},
                    "latency_ms": {"DataType": "Number", "StringValue": str(latency)}}
        sns.publish(TopicArn=topic, Message="low", MessageAttributes=attrs("info", 900))
        sns.publish(TopicArn=topic, Message="fast", MessageAttributes=attrs("critical", 10))
        sns.publish(TopicArn=topic, Message="hit", MessageAttributes=attrs("sev1-db", 501))
        sns.publish(TopicArn=topic, Message=json.dumps({"detail": {"state": "OK"}}))
        sns.publish(TopicArn=topic, Message=json.dumps({"detail": {"state": "ALARM"}}))
        # A message both subscriptions accept. Only matching messages get deliveries at all, so
        # each endpoint must end up with exactly its two.
        sns.publish(TopicArn=topic, Message=json.dumps({"detail": {"state": ["ALARM"]}}),
                    MessageAttributes=attrs("critical", 1000))
        got = [r.json()["Message"] for r in receiver.wait_type("Notification", 2)]
        raw_got = [r.body.decode() for r in raw.wait_type("Notification", 2)]
        assert sorted(got) == sorted(["hit", json.dumps({"detail": {"state": ["ALARM"]}})])
        assert sorted(raw_got) == sorted([json.dumps({"detail": {"state": "ALARM"}}),
                                          json.dumps({"detail": {"state": ["ALARM"]}})])
        assert all(r.headers.get("x-amz-sns-rawdelivery") == "true" for r in raw.of_type("Notification"))
    finally:
        raw.close()


def test_https_endpoint_trusted_through_the_configured_ca(make_server, tmp_path):
    ca = LoopbackCA(tmp_path / "tls")
    srv = make_server(env={"OPSLOOP_SNS_CA_FILE": str(ca.ca_file)})
    sns = sns_client(srv)
    receiver = Receiver(tls=ca)
    try:
        topic = sns.create_topic(Name=unique("tls"))["TopicArn"]
        confirm(sns, receiver, topic, protocol="https")
        sns.publish(TopicArn=topic, Message="over tls")
        doc = receiver.wait_type("Notification")[0].json()
        assert doc["Message"] == "over tls"
        verify_signature(doc)
    finally:
        receiver.close()


def test_retries_resume_after_a_restart(make_server, receiver):
    srv = make_server()
    sns = sns_client(srv)
    topic = sns.create_topic(Name=unique("durable"))["TopicArn"]
    policy = {"healthyRetryPolicy": {"minDelayTarget": 3, "maxDelayTarget": 3, "numRetries": 3}}
    confirm(sns, receiver, topic, attributes={"DeliveryPolicy": json.dumps(policy)})
    receiver.script(500)
    mid = sns.publish(TopicArn=topic, Message="survives")["MessageId"]
    # The first attempt fails; the retry is due 3 s later. Stop the server before that.
    wait_for(lambda: [r for r in receiver.of_type("Notification") if r.headers["x-amz-sns-message-id"] == mid])
    assert srv.stop(signal.SIGTERM) == 0
    srv.start()
    attempts = wait_for(lambda: (lambda got: got if len(got) >= 2 else None)(
        [r for r in receiver.of_type("Notification") if r.headers["x-amz-sns-message-id"] == mid]),
        what="the retried delivery after the restart")
    assert attempts[1].json()["Message"] == "survives"


def test_email_through_smtp(make_server):
    sink = SmtpSink()
    try:
        srv = make_server(env={"OPSLOOP_SNS_SMTP_URL": sink.url, "OPSLOOP_SNS_EMAIL_FROM": "alerts@opsloop.test"})
        sns = sns_client(srv)
        topic = sns.create_topic(Name=unique("mail"), Attributes={"DisplayName": "Ops Alerts"})["TopicArn"]
        assert sns.subscribe(TopicArn=topic, Protocol="email",
                             Endpoint="oncall@example.com")["SubscriptionArn"] == "pending confirmation"
        mail = sink.wait_count(1)[0]
        assert mail.rcpt_to == ["oncall@example.com"] and mail.mail_from == "alerts@opsloop.test"
        assert mail.subject == "AWS Notification - Subscription Confirmation"
        link = next(w for w in mail.body().split() if "/_opsloop/sns/confirm?" in w)
        status, _ = fetch(link)
        assert status == 200
        sns.publish(TopicArn=topic, Subject="Disk full", Message="volume /data is at 99%")
        mail = sink.wait_count(2)[1]
        assert mail.subject == "Disk full"
        assert "Ops Alerts" in str(mail.message["From"])
        assert mail.body().startswith("volume /data is at 99%")
        assert "/_opsloop/sns/unsubscribe?" in mail.body()
    finally:
        sink.close()


def test_slack_chat_posts_render_cloudwatch_alarms(sns, receiver):
    topic = sns.create_topic(Name=unique("chat"))["TopicArn"]
    sub = sns.subscribe(TopicArn=topic, Protocol="slack", Endpoint=receiver.url)["SubscriptionArn"]
    assert sub.startswith(topic + ":"), "chat webhooks are confirmed at once"
    alarm = {"AlarmName": "HighCPU", "NewStateValue": "ALARM", "OldStateValue": "OK",
             "NewStateReason": "Threshold Crossed: 1 datapoint [91.0] was greater than the threshold (80.0).",
             "Region": "US East (N. Virginia)", "StateChangeTime": "2024-05-01T12:00:00.000+0000",
             "Trigger": {"MetricName": "CPUUtilization", "Namespace": "AWS/EC2", "Statistic": "AVERAGE",
                         "Period": 60, "ComparisonOperator": "GreaterThanThreshold", "Threshold": 80.0,
                         "Dimensions": [{"name": "InstanceId", "value": "i-0abc"}]}}
    sns.publish(TopicArn=topic, Subject='ALARM: "HighCPU"', Message=json.dumps(alarm))
    post = json.loads(receiver.wait_count(1)[0].body)
    assert 'ALARM: "HighCPU" in US East (N. Virginia)' in post["text"]
    attachment = post["attachments"][0]
    assert attachment["color"] == "#d13212" and attachment["text"].startswith("Threshold Crossed")
    assert {"title": "State", "value": "OK → ALARM", "short": True} in attachment["fields"]

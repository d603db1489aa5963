"""Systems Manager end to end with boto3 and the real aws CLI: Parameter Store (String, StringList,
SecureString encrypted at rest — the plaintext is in no file of the data directory — paths,
labels, history, filters, pagination, errors), documents in JSON and YAML with validation errors,
versions and format conversion, the Amazon-owned documents, OpsCenter items (dedup, filters,
related items, events) including one created by a CloudWatch alarm action, hybrid activations and
an empty managed-node fleet."""

from __future__ import annotations

import json
import os
import stat
import time
import uuid

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import harness

DEADLINE_S = 30.0


def ssm_client(server):
    cfg = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=30)
    return harness.session(None).client("ssm", endpoint_url=server.url, config=cfg)


@pytest.fixture
def ssm(server):
    return ssm_client(server)


@pytest.fixture
def prefix() -> str:
    return f"/e2e/{uuid.uuid4().hex[:10]}"


def code(exc: ClientError) -> str:
    return exc.response["Error"]["Code"]


def raises(code_name, fn, *args, **kwargs) -> str:
    with pytest.raises(ClientError) as e:
        fn(*args, **kwargs)
    assert code(e.value) == code_name, e.value.response
    return e.value.response["Error"].get("Message", "")


def wait_for(check, deadline_s=DEADLINE_S, interval_s=0.1):
    end = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < end:
        last = check()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"condition not met within {deadline_s}s (last: {last!r})")


# ---------------------------------------------------------------- Parameter Store


def test_parameter_types_versions_and_errors(ssm, prefix):
    name = f"{prefix}/db/host"
    assert ssm.put_parameter(Name=name, Value="db1", Type="String")["Version"] == 1
    raises("ParameterAlreadyExists", ssm.put_parameter, Name=name, Value="db2", Type="String")
    out = ssm.put_parameter(Name=name, Value="db2", Overwrite=True)
    assert out == {"Version": 2, "Tier": "Standard", "ResponseMetadata": out["ResponseMetadata"]}
    p = ssm.get_parameter(Name=name)["Parameter"]
    assert (p["Value"], p["Version"], p["Type"], p["DataType"]) == ("db2", 2, "String", "text")
    assert p["ARN"].endswith(f":parameter{name}")
    assert ssm.get_parameter(Name=f"{name}:1")["Parameter"]["Value"] == "db1"
    raises("ParameterVersionNotFound", ssm.get_parameter, Name=f"{name}:5")
    raises("ParameterNotFound", ssm.get_parameter, Name=f"{prefix}/missing")

    ssm.put_parameter(Name=f"{prefix}/list", Value="a,b,c", Type="StringList")
    assert ssm.get_parameter(Name=f"{prefix}/list")["Parameter"]["Value"] == "a,b,c"

    msg = raises("ValidationException", ssm.put_parameter, Name="/aws/reserved", Value="x", Type="String")
    assert "aws" in msg
    deep = "".join(f"/l{i}" for i in range(16))
    raises("HierarchyLevelLimitExceededException", ssm.put_parameter, Name=deep, Value="x", Type="String")
    raises("ParameterPatternMismatchException", ssm.put_parameter, Name=f"{prefix}/port", Value="http",
           Type="String", AllowedPattern="^[0-9]+$")
    msg = raises("ValidationException", ssm.put_parameter, Name=f"{prefix}/big", Value="x" * 5000, Type="String")
    assert "4096" in msg
    assert ssm.put_parameter(Name=f"{prefix}/big", Value="x" * 5000, Type="String",
                             Tier="Advanced")["Tier"] == "Advanced"
    raises("ValidationException", ssm.put_parameter, Name=f"{prefix}/ami", Value="not-an-ami", Type="String",
           DataType="aws:ec2:image")
    ssm.put_parameter(Name=f"{prefix}/ami", Value="ami-0123456789abcdef0", Type="String", DataType="aws:ec2:image")

    raises("HierarchyTypeMismatchException", ssm.put_parameter, Name=name, Value="x", Type="SecureString",
           Overwrite=True)
    assert ssm.get_parameter(Name=p["ARN"])["Parameter"]["Name"] == name
    assert ssm.get_parameter(Name=f"{p['ARN']}:1")["Parameter"]["Value"] == "db1"

    got = ssm.get_parameters(Names=[name, f"{prefix}/list", f"{prefix}/nope"])
    assert sorted(p["Name"] for p in got["Parameters"]) == [name, f"{prefix}/list"]
    assert got["InvalidParameters"] == [f"{prefix}/nope"]


def test_expiration_policy_deletes_the_parameter(ssm, prefix):
    name = f"{prefix}/temporary"
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3))
    policy = json.dumps([{"Type": "Expiration", "Version": "1.0", "Attributes": {"Timestamp": at}}])
    raises("ValidationException", ssm.put_parameter, Name=name, Value="v", Type="String", Policies=policy)
    out = ssm.put_parameter(Name=name, Value="v", Type="String", Policies=policy, Tier="Intelligent-Tiering")
    assert out["Tier"] == "Advanced"
    meta = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name]}])["Parameters"]
    assert [p["PolicyType"] for p in meta[0]["Policies"]] == ["Expiration"]
    raises("InvalidPolicyTypeException", ssm.put_parameter, Name=f"{name}2", Value="v", Type="String",
           Tier="Advanced", Policies=json.dumps([{"Type": "Explode", "Attributes": {}}]))

    def gone():
        try:
            ssm.get_parameter(Name=name)
            return False
        except ClientError as e:
            return code(e) == "ParameterNotFound"

    wait_for(gone, deadline_s=20)


def test_securestring_round_trip(ssm, prefix):
    name = f"{prefix}/secret"
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    ssm.put_parameter(Name=name, Value=secret, Type="SecureString", KeyId="alias/app")
    sealed = ssm.get_parameter(Name=name)["Parameter"]
    assert sealed["Type"] == "SecureString" and sealed["Value"] != secret and secret not in sealed["Value"]
    assert ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"] == secret
    meta = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name]}])["Parameters"]
    assert [m["KeyId"] for m in meta] == ["alias/app"]
    hist = ssm.get_parameter_history(Name=name, WithDecryption=True)["Parameters"]
    assert [h["Value"] for h in hist] == [secret]


def test_securestring_plaintext_is_in_no_file_of_the_data_dir(make_server):
    srv = make_server()
    ssm = ssm_client(srv)
    secret = f"plaintext-{uuid.uuid4().hex}"
    ssm.put_parameter(Name="/app/password", Value=secret, Type="SecureString")
    assert ssm.get_parameter(Name="/app/password", WithDecryption=True)["Parameter"]["Value"] == secret
    key = srv.data_dir / "ssm" / "parameter.key"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert srv.stop() == 0
    needle = secret.encode()
    files = [p for p in srv.data_dir.rglob("*") if p.is_file()]
    assert files, "the data dir holds files"
    for path in files:
        assert needle not in path.read_bytes(), f"plaintext found in {path}"
    srv.start()
    ssm = ssm_client(srv)
    assert ssm.get_parameter(Name="/app/password", WithDecryption=True)["Parameter"]["Value"] == secret


def test_paths_filters_labels_history_and_pagination(ssm, prefix):
    for leaf in ["a", "b", "c", "sub/d", "sub/deeper/e"]:
        ssm.put_parameter(Name=f"{prefix}/app/{leaf}", Value=leaf, Type="String")
    ssm.put_parameter(Name=f"{prefix}/app/key", Value="k", Type="SecureString")

    one = ssm.get_parameters_by_path(Path=f"{prefix}/app")["Parameters"]
    assert sorted(p["Name"].rsplit("/", 1)[1] for p in one) == ["a", "b", "c", "key"]
    names, token, pages = [], None, 0
    while True:
        kw = {"NextToken": token} if token else {}
        page = ssm.get_parameters_by_path(Path=f"{prefix}/app", Recursive=True, MaxResults=2, **kw)
        pages += 1
        names += [p["Name"] for p in page["Parameters"]]
        token = page.get("NextToken")
        if not token:
            break
    assert len(names) == 6 and len(set(names)) == 6 and pages == 3
    secure = ssm.get_parameters_by_path(Path=f"{prefix}/app", WithDecryption=True,
                                        ParameterFilters=[{"Key": "Type", "Values": ["SecureString"]}])
    assert [p["Value"] for p in secure["Parameters"]] == ["k"]
    raises("InvalidFilterKey", ssm.get_parameters_by_path, Path=f"{prefix}/app",
           ParameterFilters=[{"Key": "Name", "Values": ["x"]}])
    paginator = ssm.get_paginator("describe_parameters")
    described = [p["Name"] for pg in paginator.paginate(
        ParameterFilters=[{"Key": "Path", "Option": "Recursive", "Values": [f"{prefix}/app"]}],
        PaginationConfig={"PageSize": 4}) for p in pg["Parameters"]]
    assert sorted(described) == sorted(names)
    begins = ssm.describe_parameters(ParameterFilters=[
        {"Key": "Name", "Option": "BeginsWith", "Values": [f"{prefix}/app/sub"]}])["Parameters"]
    assert len(begins) == 2
    raises("InvalidFilterOption", ssm.describe_parameters,
           ParameterFilters=[{"Key": "Type", "Option": "Contains", "Values": ["String"]}])
    raises("ValidationException", ssm.describe_parameters, Filters=[{"Key": "Name", "Values": ["x"]}],
           ParameterFilters=[{"Key": "Name", "Values": ["x"]}])

    name = f"{prefix}/app/a"
    ssm.put_parameter(Name=name, Value="a2", Overwrite=True)
    ssm.put_parameter(Name=name, Value="a3", Overwrite=True)
    out = ssm.label_parameter_version(Name=name, ParameterVersion=1, Labels=["stable", "9bad"])
    assert out["InvalidLabels"] == ["9bad"] and out["ParameterVersion"] == 1
    assert ssm.get_parameter(Name=f"{name}:stable")["Parameter"]["Value"] == "a"
    ssm.label_parameter_version(Name=name, Labels=["stable"])  # moves to the latest
    assert ssm.get_parameter(Name=f"{name}:stable")["Parameter"]["Value"] == "a3"
    hist = ssm.get_parameter_history(Name=name)["Parameters"]
    assert [(h["Version"], h["Value"], h["Labels"]) for h in hist] == [
        (1, "a", []), (2, "a2", []), (3, "a3", ["stable"])]
    out = ssm.unlabel_parameter_version(Name=name, ParameterVersion=3, Labels=["stable"])
    assert out["RemovedLabels"] == ["stable"]
    raises("ParameterVersionNotFound", ssm.get_parameter, Name=f"{name}:stable")

    ssm.add_tags_to_resource(ResourceType="Parameter", ResourceId=name, Tags=[{"Key": "team", "Value": "db"}])
    assert ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)["TagList"] == [
        {"Key": "team", "Value": "db"}]
    tagged = ssm.describe_parameters(ParameterFilters=[{"Key": "tag:team", "Values": ["db"]}])["Parameters"]
    assert name in [p["Name"] for p in tagged]
    ssm.remove_tags_from_resource(ResourceType="Parameter", ResourceId=name, TagKeys=["team"])
    assert ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)["TagList"] == []
    raises("InvalidResourceId", ssm.list_tags_for_resource, ResourceType="Parameter", ResourceId=f"{prefix}/none")

    out = ssm.delete_parameters(Names=[f"{prefix}/app/b", f"{prefix}/app/zz"])
    assert out["DeletedParameters"] == [f"{prefix}/app/b"] and out["InvalidParameters"] == [f"{prefix}/app/zz"]
    ssm.delete_parameter(Name=f"{prefix}/app/c")
    raises("ParameterNotFound", ssm.delete_parameter, Name=f"{prefix}/app/c")


def test_parameter_changes_reach_eventbridge(server, ssm, prefix):
    s = harness.session(None)
    cfg = Config(retries={"mode": "standard", "total_max_attempts": 1})
    events = s.client("events", endpoint_url=server.url, config=cfg)
    logs = s.client("logs", endpoint_url=server.url, config=cfg)
    group = f"/e2e/ssm-events/{uuid.uuid4().hex[:8]}"
    logs.create_log_group(logGroupName=group)
    name = f"{prefix}/watched"
    rule = f"ssm-changes-{uuid.uuid4().hex[:8]}"
    events.put_rule(Name=rule, EventPattern=json.dumps({
        "source": ["aws.ssm"], "detail-type": ["Parameter Store Change"], "detail": {"name": [name]}}))
    ssm.put_parameter(Name=f"{prefix}/probe", Value="x", Type="String")
    account = ssm.get_parameter(Name=f"{prefix}/probe")["Parameter"]["ARN"].split(":")[4]
    out = events.put_targets(Rule=rule, Targets=[
        {"Id": "logs", "Arn": f"arn:aws:logs:{harness.REGION}:{account}:log-group:{group}"}])
    assert out["FailedEntryCount"] == 0
    ssm.put_parameter(Name=name, Value="v1", Type="String", Description="watched value")
    ssm.put_parameter(Name=name, Value="v2", Overwrite=True)
    ssm.label_parameter_version(Name=name, Labels=["live"])
    ssm.delete_parameter(Name=name)

    def received():
        msgs = [json.loads(e["message"]) for e in logs.filter_log_events(logGroupName=group)["events"]]
        return msgs if len(msgs) >= 4 else None

    msgs = wait_for(received)
    assert sorted(m["detail"]["operation"] for m in msgs) == sorted(
        ["Create", "Update", "LabelParameterVersion", "Delete"])
    first = next(m for m in msgs if m["detail"]["operation"] == "Create")
    assert first["source"] == "aws.ssm" and first["detail-type"] == "Parameter Store Change"
    assert first["detail"] == {"operation": "Create", "name": name, "type": "String",
                               "description": "watched value"}
    assert first["resources"] == [f"arn:aws:ssm:{harness.REGION}:{account}:parameter{name}"]
    events.remove_targets(Rule=rule, Ids=["logs"])
    events.delete_rule(Name=rule)


def test_parameters_with_the_aws_cli(server, prefix):
    harness.aws(server, "ssm", "put-parameter", "--name", f"{prefix}/cli/url", "--value", "db.internal:5432",
                "--type", "String")
    harness.aws(server, "ssm", "put-parameter", "--name", f"{prefix}/cli/token", "--value", "tok-123",
                "--type", "SecureString")
    _, out, _ = harness.aws(server, "ssm", "get-parameters-by-path", "--path", f"{prefix}/cli",
                            "--with-decryption")
    assert sorted((p["Name"], p["Value"]) for p in out["Parameters"]) == [
        (f"{prefix}/cli/token", "tok-123"), (f"{prefix}/cli/url", "db.internal:5432")]
    rc, _, err = harness.aws(server, "ssm", "get-parameter", "--name", f"{prefix}/cli/none", check=False)
    assert rc != 0 and "ParameterNotFound" in err


# ---------------------------------------------------------------- documents

COMMAND_YAML = """schemaVersion: '2.2'
description: Say hello
parameters:
  Message:
    type: String
    default: hello
mainSteps:
  - action: aws:runShellScript
    name: say
    inputs:
      runCommand:
        - echo {{ Message }}
"""

RUNBOOK_JSON = {
    "schemaVersion": "0.3",
    "description": "Remediate unencrypted S3 bucket",
    "assumeRole": "{{AutomationAssumeRole}}",
    "parameters": {
        "BucketName": {"type": "String", "description": "S3 Bucket Name"},
        "AutomationAssumeRole": {"type": "String", "default": ""},
    },
    "mainSteps": [{
        "name": "EnableEncryption",
        "action": "aws:executeAwsApi",
        "inputs": {
            "Service": "s3", "Api": "PutBucketEncryption", "Bucket": "{{BucketName}}",
            "ServerSideEncryptionConfiguration": {"Rules": [
                {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
        },
        "isEnd": True,
    }],
}


def test_documents_json_and_yaml(ssm):
    suffix = uuid.uuid4().hex[:8]
    cmd, runbook = f"Hello-{suffix}", f"Remediate-{suffix}"
    d = ssm.create_document(Name=cmd, Content=COMMAND_YAML, DocumentFormat="YAML", DocumentType="Command",
                            Tags=[{"Key": "team", "Value": "ops"}])["DocumentDescription"]
    assert (d["DocumentVersion"], d["DefaultVersion"], d["SchemaVersion"]) == ("1", "1", "2.2")
    assert d["Parameters"] == [{"Name": "Message", "Type": "String", "DefaultValue": "hello"}]
    assert d["PlatformTypes"] == ["Linux", "MacOS"] and d["Status"] == "Active"
    raises("DocumentAlreadyExists", ssm.create_document, Name=cmd, Content=COMMAND_YAML, DocumentFormat="YAML")
    d = ssm.create_document(Name=runbook, Content=json.dumps(RUNBOOK_JSON),
                            DocumentType="Automation")["DocumentDescription"]
    assert d["DocumentType"] == "Automation" and d["DocumentFormat"] == "JSON"

    as_json = ssm.get_document(Name=cmd, DocumentFormat="JSON")
    assert json.loads(as_json["Content"])["mainSteps"][0]["inputs"]["runCommand"] == ["echo {{ Message }}"]
    assert ssm.get_document(Name=cmd)["Content"] == COMMAND_YAML
    as_yaml = ssm.get_document(Name=runbook, DocumentFormat="YAML")["Content"]
    assert "aws:executeAwsApi" in as_yaml and not as_yaml.lstrip().startswith("{")

    raises("DuplicateDocumentContent", ssm.update_document, Name=cmd, Content=COMMAND_YAML,
           DocumentFormat="YAML", DocumentVersion="$LATEST")
    u = ssm.update_document(Name=cmd, Content=COMMAND_YAML.replace("hello", "bonjour"), DocumentFormat="YAML",
                            DocumentVersion="$LATEST", VersionName="v2")["DocumentDescription"]
    assert (u["DocumentVersion"], u["DefaultVersion"], u["LatestVersion"]) == ("2", "1", "2")
    assert ssm.get_document(Name=cmd)["DocumentVersion"] == "1"
    assert ssm.get_document(Name=cmd, VersionName="v2")["DocumentVersion"] == "2"
    raises("InvalidDocumentVersion", ssm.get_document, Name=cmd, DocumentVersion="9")
    ssm.update_document_default_version(Name=cmd, DocumentVersion="2")
    assert ssm.describe_document(Name=cmd)["Document"]["DefaultVersion"] == "2"
    versions = ssm.list_document_versions(Name=cmd)["DocumentVersions"]
    assert [(v["DocumentVersion"], v["IsDefaultVersion"]) for v in versions] == [("2", True), ("1", False)]

    mine = ssm.list_documents(Filters=[{"Key": "Owner", "Values": ["Self"]},
                                       {"Key": "Name", "Values": [f"Hello-{suffix}"]}])["DocumentIdentifiers"]
    assert [m["Name"] for m in mine] == [cmd]
    tagged = ssm.list_documents(Filters=[{"Key": "tag:team", "Values": ["ops"]}])["DocumentIdentifiers"]
    assert cmd in [t["Name"] for t in tagged]
    autos = ssm.list_documents(DocumentFilterList=[{"key": "DocumentType", "value": "Automation"}])
    assert runbook in [a["Name"] for a in autos["DocumentIdentifiers"]]

    ssm.modify_document_permission(Name=cmd, PermissionType="Share", AccountIdsToAdd=["111122223333"])
    assert ssm.describe_document_permission(Name=cmd, PermissionType="Share")["AccountIds"] == ["111122223333"]

    ssm.delete_document(Name=cmd, DocumentVersion="1")
    assert [v["DocumentVersion"] for v in ssm.list_document_versions(Name=cmd)["DocumentVersions"]] == ["2"]
    ssm.delete_document(Name=cmd)
    raises("InvalidDocument", ssm.describe_document, Name=cmd)


@pytest.mark.parametrize("content,fmt,doc_type,code_name,needle", [
    ("{not json", "JSON", "Command", "InvalidDocumentContent", "JSON not well-formed"),
    ("a: [1,\nb", "YAML", "Command", "InvalidDocumentContent", "YAML not well-formed"),
    (json.dumps({"schemaVersion": "2.2", "mainSteps": [
        {"action": "aws:runFoo", "name": "x", "inputs": {}}]}), "JSON", "Command",
     "InvalidDocumentContent", "aws:runFoo"),
    (json.dumps({"schemaVersion": "2.2", "mainSteps": [
        {"action": "aws:runShellScript", "name": "x", "inputs": {"runCommand": ["echo {{ nope }}"]}}]}),
     "JSON", "Command", "InvalidDocumentContent", "nope"),
    (json.dumps({"schemaVersion": "0.3", "mainSteps": [
        {"name": "a", "action": "aws:sleep", "inputs": {"Duration": "PT1S"}, "onFailure": "step:ghost"}]}),
     "JSON", "Automation", "InvalidDocumentContent", "ghost"),
    (json.dumps({"schemaVersion": "0.3", "mainSteps": [
        {"name": "a", "action": "aws:sleep", "inputs": {"Duration": "PT1S"}, "nextStep": "b"}]}),
     "JSON", "Automation", "InvalidDocumentContent", "no step named b"),
    (json.dumps({"schemaVersion": "2.2", "mainSteps": [
        {"action": "aws:runShellScript", "name": "x", "inputs": {"runCommand": ["ls"]}}]}), "JSON", "Automation",
     "InvalidDocumentSchemaVersion", "2.2"),
])
def test_document_validation_errors(ssm, content, fmt, doc_type, code_name, needle):
    name = f"Bad-{uuid.uuid4().hex[:8]}"
    msg = raises(code_name, ssm.create_document, Name=name, Content=content, DocumentFormat=fmt,
                 DocumentType=doc_type)
    assert needle in msg, msg
    raises("InvalidDocument", ssm.describe_document, Name=name)


def test_amazon_documents_with_the_aws_cli(server, tmp_path):
    _, out, _ = harness.aws(server, "ssm", "describe-document", "--name", "AWS-RunShellScript")
    doc = out["Document"]
    assert doc["Owner"] == "Amazon"
    assert [p["Name"] for p in doc["Parameters"]] == ["commands", "workingDirectory", "executionTimeout"]
    _, out, _ = harness.aws(server, "ssm", "list-documents", "--filters", "Key=Owner,Values=Amazon")
    names = {d["Name"] for d in out["DocumentIdentifiers"]}
    assert {"AWS-RunShellScript", "AWS-RunPatchBaseline", "Opsloop-RestartService", "Opsloop-CollectDiagnostics",
            "AWS-RestartEC2Instance", "AWS-DisableS3BucketPublicReadWrite"} <= names
    rc, _, err = harness.aws(server, "ssm", "delete-document", "--name", "AWS-RunShellScript", check=False)
    assert rc != 0 and "InvalidDocumentOperation" in err
    path = tmp_path / "runbook.yaml"
    path.write_text(COMMAND_YAML)
    name = f"CliDoc-{uuid.uuid4().hex[:8]}"
    _, out, _ = harness.aws(server, "ssm", "create-document", "--name", name, "--content", f"file://{path}",
                            "--document-format", "YAML", "--document-type", "Command")
    assert out["DocumentDescription"]["Name"] == name
    _, out, _ = harness.aws(server, "ssm", "get-document", "--name", name, "--document-format", "JSON")
    assert json.loads(out["Content"])["description"] == "Say hello"


# ---------------------------------------------------------------- OpsCenter


def test_ops_items(ssm):
    tag = uuid.uuid4().hex[:8]
    dedup = {"/aws/dedup": {"Value": json.dumps({"dedupString": f"disk-{tag}"}), "Type": "SearchableString"}}
    data = dict(dedup, team={"Value": f"team-{tag}", "Type": "SearchableString"},
                note={"Value": "not searchable", "Type": "String"})
    first = ssm.create_ops_item(Title=f"Disk full {tag}", Description="root fs at 95%", Source="e2e",
                                Severity="2", Priority=2, Category="Availability", OperationalData=data)["OpsItemId"]
    again = ssm.create_ops_item(Title="dup", Description="dup", Source="e2e", OperationalData=dedup)["OpsItemId"]
    assert again == first
    item = ssm.get_ops_item(OpsItemId=first)["OpsItem"]
    assert (item["Status"], item["Severity"], item["Priority"], item["Category"]) == ("Open", "2", 2, "Availability")
    assert item["OperationalData"]["note"]["Type"] == "String"

    def ids(filters):
        return [s["OpsItemId"] for s in ssm.describe_ops_items(OpsItemFilters=filters)["OpsItemSummaries"]]

    assert ids([{"Key": "OperationalData", "Operator": "Equal",
                 "Values": [json.dumps({"key": "team", "value": f"team-{tag}"})]}]) == [first]
    assert ids([{"Key": "OperationalDataValue", "Operator": "Equal", "Values": ["not searchable"]}]) == []
    assert ids([{"Key": "Title", "Operator": "Contains", "Values": [tag]},
                {"Key": "Status", "Operator": "Equal", "Values": ["Open"]}]) == [first]
    raises("OpsItemInvalidParameterException", ssm.create_ops_item, Title="t", Description="d", Source="s",
           Category="Nonsense")
    raises("OpsItemNotFoundException", ssm.get_ops_item, OpsItemId="oi-0123456789ab")

    ssm.update_ops_item(OpsItemId=first, Status="InProgress", OperationalDataToDelete=["note"])
    item = ssm.get_ops_item(OpsItemId=first)["OpsItem"]
    assert item["Status"] == "InProgress" and "note" not in item["OperationalData"]
    events = ssm.list_ops_item_events(Filters=[{"Key": "OpsItemId", "Values": [first], "Operator": "Equal"}])
    assert sorted(e["DetailType"] for e in events["Summaries"]) == ["OpsItem Create", "OpsItem Update"]

    uri = f"arn:aws:ssm:{harness.REGION}:123456789012:document/Fix-{tag}"
    assoc = ssm.associate_ops_item_related_item(OpsItemId=first, AssociationType="RelatesTo",
                                                ResourceType="AWS::SSM::Document", ResourceUri=uri)["AssociationId"]
    raises("OpsItemRelatedItemAlreadyExistsException", ssm.associate_ops_item_related_item, OpsItemId=first,
           AssociationType="RelatesTo", ResourceType="AWS::SSM::Document", ResourceUri=uri)
    related = ssm.list_ops_item_related_items(OpsItemId=first)["Summaries"]
    assert [(r["AssociationId"], r["ResourceUri"]) for r in related] == [(assoc, uri)]
    ssm.disassociate_ops_item_related_item(OpsItemId=first, AssociationId=assoc)
    assert ssm.list_ops_item_related_items(OpsItemId=first)["Summaries"] == []

    ssm.update_ops_item(OpsItemId=first, Status="Resolved")
    fresh = ssm.create_ops_item(Title="again", Description="d", Source="e2e", OperationalData=dedup)["OpsItemId"]
    assert fresh != first
    ssm.delete_ops_item(OpsItemId=fresh)
    raises("OpsItemNotFoundException", ssm.get_ops_item, OpsItemId=fresh)


def test_alarm_action_creates_an_ops_item(server, ssm):
    cw = harness.client(server, None)
    ns = f"E2E/ssm/{uuid.uuid4().hex[:8]}"
    name = f"{ns}/disk"
    cw.put_metric_alarm(AlarmName=name, Namespace=ns, MetricName="DiskUsed", Statistic="Maximum", Period=60,
                        EvaluationPeriods=1, Threshold=90.0, ComparisonOperator="GreaterThanThreshold")
    alarm_arn = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["AlarmArn"]
    account = alarm_arn.split(":")[4]
    action = f"arn:aws:ssm:{harness.REGION}:{account}:opsitem:2#CATEGORY=Availability"
    cw.put_metric_alarm(AlarmName=name, Namespace=ns, MetricName="DiskUsed", Statistic="Maximum", Period=60,
                        EvaluationPeriods=1, Threshold=90.0, ComparisonOperator="GreaterThanThreshold",
                        AlarmActions=[action])
    cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "DiskUsed", "Value": 97.0}])

    def items():
        return ssm.describe_ops_items(OpsItemFilters=[
            {"Key": "ResourceId", "Operator": "Equal", "Values": [alarm_arn]}])["OpsItemSummaries"]

    found = wait_for(items)
    assert len(found) == 1
    item = ssm.get_ops_item(OpsItemId=found[0]["OpsItemId"])["OpsItem"]
    assert item["Source"] == "CloudWatch Alarm"
    assert item["Severity"] == "2" and item["Category"] == "Availability"
    assert name in item["Title"] and "ALARM" in item["Title"]
    assert json.loads(item["OperationalData"]["/aws/resources"]["Value"]) == [{"arn": alarm_arn}]
    history = wait_for(lambda: cw.describe_alarm_history(AlarmName=name, HistoryItemType="Action")[
        "AlarmHistoryItems"])
    assert history[0]["HistorySummary"] == f"Successfully executed action {action}", history


# ---------------------------------------------------------------- activations and nodes


def test_activations_and_an_empty_fleet(ssm):
    name = f"web-{uuid.uuid4().hex[:6]}"
    created = ssm.create_activation(Description="e2e", DefaultInstanceName=name, IamRole="SSMServiceRole",
                                    RegistrationLimit=3, Tags=[{"Key": "env", "Value": "e2e"}])
    act_id, act_code = created["ActivationId"], created["ActivationCode"]
    assert len(act_code) >= 20
    listed = ssm.describe_activations(Filters=[{"FilterKey": "ActivationIds", "FilterValues": [act_id]}])
    [a] = listed["ActivationList"]
    assert (a["DefaultInstanceName"], a["RegistrationLimit"], a["RegistrationsCount"], a["Expired"]) == (
        name, 3, 0, False)
    assert a["Tags"] == [{"Key": "env", "Value": "e2e"}]
    assert "ActivationCode" not in a
    by_name = ssm.describe_activations(Filters=[{"FilterKey": "DefaultInstanceName", "FilterValues": [name]}])
    assert [x["ActivationId"] for x in by_name["ActivationList"]] == [act_id]
    raises("InvalidParameters", ssm.create_activation, IamRole="r", ExpirationDate=time.time() - 3600)
    ssm.delete_activation(ActivationId=act_id)
    raises("InvalidActivation", ssm.delete_activation, ActivationId=act_id)

    assert ssm.describe_instance_information()["InstanceInformationList"] == []
    out = ssm.describe_instance_information(Filters=[{"Key": "PingStatus", "Values": ["Online"]}])
    assert out["InstanceInformationList"] == []
    raises("InvalidInstanceInformationFilterValue", ssm.describe_instance_information,
           Filters=[{"Key": "PingStatus", "Values": ["Sleeping"]}])
    raises("InvalidFilterKey", ssm.describe_instance_information, Filters=[{"Key": "Color", "Values": ["x"]}])

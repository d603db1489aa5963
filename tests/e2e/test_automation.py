"""Systems Manager Automation end to end with boto3: a runbook with aws:executeScript (system python3),
aws:branch and outputs; onFailure Abort / Continue / step:NAME; an approval approved and one rejected
(SendAutomationSignal); aws:executeAwsApi against opsloop's own SSM and SNS; Stop; executions that
carry on across a server restart in the middle of an aws:sleep and an aws:approve; and the
status-change events reaching an EventBridge rule whose target is a log group."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import harness

ACCOUNT = "000000000000"
R = harness.REGION
TERMINAL = {"Success", "Failed", "Cancelled", "TimedOut"}


def make(server, service):
    cfg = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=30)
    return harness.session(None).client(service, endpoint_url=server.url, config=cfg)


@pytest.fixture
def ssm(server):
    return make(server, "ssm")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_for(check, deadline_s=30.0, what="condition"):
    end = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < end:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"{what} not met within {deadline_s}s (last: {last!r})")


def runbook(ssm, steps, parameters=None, outputs=None) -> str:
    name = unique("e2e-rb")
    content = {"schemaVersion": "0.3", "mainSteps": steps}
    if parameters:
        content["parameters"] = parameters
    if outputs:
        content["outputs"] = outputs
    ssm.create_document(Name=name, DocumentType="Automation", DocumentFormat="JSON", Content=json.dumps(content))
    return name


def execution(ssm, exec_id):
    return ssm.get_automation_execution(AutomationExecutionId=exec_id)["AutomationExecution"]


def wait_status(ssm, exec_id, statuses, deadline_s=30.0):
    statuses = {statuses} if isinstance(statuses, str) else set(statuses)
    return wait_for(lambda: (lambda e: e if e["AutomationExecutionStatus"] in statuses else None)(execution(ssm, exec_id)),
                    deadline_s=deadline_s, what=f"execution {exec_id} in {statuses}")


def steps_of(ex):
    return [(s["StepName"], s["StepStatus"]) for s in ex["StepExecutions"]]


SCRIPT = """
def handler(events, context):
    print("checking", events["name"])
    return {"greeting": "hello " + events["name"], "size": len(events["name"])}
"""


def test_script_branch_and_outputs(ssm):
    name = runbook(ssm, [
        {"name": "compute", "action": "aws:executeScript", "inputs": {
            "Runtime": "python3.11", "Handler": "handler", "Script": SCRIPT,
            "InputPayload": {"name": "{{ Who }}"}},
         "outputs": [{"Name": "Greeting", "Selector": "$.Payload.greeting", "Type": "String"},
                     {"Name": "Size", "Selector": "$.Payload.size", "Type": "Integer"}]},
        {"name": "decide", "action": "aws:branch", "inputs": {
            "Choices": [{"NextStep": "big", "Variable": "{{ compute.Size }}", "NumericGreater": 3},
                        {"NextStep": "small", "Variable": "{{ compute.Greeting }}", "StartsWith": "hello"}],
            "Default": "big"}},
        {"name": "big", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}, "isEnd": True},
        {"name": "small", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}},
    ], parameters={"Who": {"type": "String", "allowedPattern": "^[a-z]+$"}},
        outputs=["compute.Greeting", "compute.Size"])
    exec_id = ssm.start_automation_execution(DocumentName=name, Parameters={"Who": ["bob"]})["AutomationExecutionId"]
    ex = wait_status(ssm, exec_id, TERMINAL)
    assert ex["AutomationExecutionStatus"] == "Success", ex
    assert steps_of(ex) == [("compute", "Success"), ("decide", "Success"), ("small", "Success")]
    assert ex["Outputs"] == {"compute.Greeting": ["hello bob"], "compute.Size": ["3"]}
    assert "checking bob" in ex["StepExecutions"][0]["Outputs"]["ExecutionLog"][0]
    assert ex["Parameters"] == {"Who": ["bob"]}
    # Parameter validation happens before anything runs.
    with pytest.raises(ClientError) as e:
        ssm.start_automation_execution(DocumentName=name, Parameters={"Who": ["BOB"]})
    assert e.value.response["Error"]["Code"] == "InvalidAutomationExecutionParametersException"
    with pytest.raises(ClientError) as e:
        ssm.start_automation_execution(DocumentName=unique("missing"))
    assert e.value.response["Error"]["Code"] == "AutomationDefinitionNotFoundException"
    # Filters and step filters.
    listed = ssm.describe_automation_executions(Filters=[{"Key": "DocumentNamePrefix", "Values": [name]}])
    assert [m["AutomationExecutionId"] for m in listed["AutomationExecutionMetadataList"]] == [exec_id]
    rev = ssm.describe_automation_step_executions(AutomationExecutionId=exec_id, ReverseOrder=True)
    assert [s["StepName"] for s in rev["StepExecutions"]] == ["small", "decide", "compute"]
    only = ssm.describe_automation_step_executions(
        AutomationExecutionId=exec_id, Filters=[{"Key": "Action", "Values": ["aws:branch"]}])
    assert [s["StepName"] for s in only["StepExecutions"]] == ["decide"]


def test_script_failure_and_on_failure_paths(ssm):
    failing = {"name": "fail", "action": "aws:executeScript", "inputs": {
        "Runtime": "python3.11", "Handler": "h", "Script": "def h(e, c):\n    raise ValueError('nope')\n"}}
    # Abort (default): the execution fails with the script's error.
    name = runbook(ssm, [failing, {"name": "after", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}}])
    ex = wait_status(ssm, ssm.start_automation_execution(DocumentName=name)["AutomationExecutionId"], TERMINAL)
    assert ex["AutomationExecutionStatus"] == "Failed"
    assert steps_of(ex) == [("fail", "Failed")]
    assert "ValueError: nope" in ex["FailureMessage"]
    assert "ValueError: nope" in ex["StepExecutions"][0]["FailureMessage"]
    # Continue: the next step runs, the critical failure still fails the execution.
    name = runbook(ssm, [dict(failing, onFailure="Continue"),
                         {"name": "after", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}}])
    ex = wait_status(ssm, ssm.start_automation_execution(DocumentName=name)["AutomationExecutionId"], TERMINAL)
    assert steps_of(ex) == [("fail", "Failed"), ("after", "Success")]
    assert ex["AutomationExecutionStatus"] == "Failed"
    # step:NAME on a non-critical step: jump, and succeed.
    name = runbook(ssm, [dict(failing, onFailure="step:recover", isCritical=False),
                         {"name": "skipped", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}},
                         {"name": "recover", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}}])
    ex = wait_status(ssm, ssm.start_automation_execution(DocumentName=name)["AutomationExecutionId"], TERMINAL)
    assert steps_of(ex) == [("fail", "Failed"), ("recover", "Success")]
    assert ex["AutomationExecutionStatus"] == "Success"


def test_execute_aws_api_against_own_ssm_and_sns(ssm, server):
    sns = make(server, "sns")
    param = f"/e2e/{uuid.uuid4().hex[:8]}/color"
    ssm.put_parameter(Name=param, Value="teal", Type="String")
    topic = unique("rb-topic")
    name = runbook(ssm, [
        {"name": "read", "action": "aws:executeAwsApi", "inputs": {"Service": "ssm", "Api": "GetParameter", "Name": param},
         "outputs": [{"Name": "Value", "Selector": "$.Parameter.Value", "Type": "String"}]},
        {"name": "write", "action": "aws:executeAwsApi", "inputs": {
            "Service": "ssm", "Api": "PutParameter", "Name": param + "-copy", "Type": "String",
            "Value": "{{ read.Value }}-{{ ssm:" + param + " }}"}},
        {"name": "topic", "action": "aws:executeAwsApi", "inputs": {"Service": "sns", "Api": "CreateTopic", "Name": topic},
         "outputs": [{"Name": "Arn", "Selector": "$.TopicArn", "Type": "String"}]},
        {"name": "check", "action": "aws:assertAwsResourceProperty", "inputs": {
            "Service": "ssm", "Api": "GetParameter", "Name": param + "-copy",
            "PropertySelector": "$.Parameter.Value", "DesiredValues": ["teal-teal"]}},
    ], outputs=["topic.Arn"])
    ex = wait_status(ssm, ssm.start_automation_execution(DocumentName=name)["AutomationExecutionId"], TERMINAL)
    assert ex["AutomationExecutionStatus"] == "Success", ex
    assert ssm.get_parameter(Name=param + "-copy")["Parameter"]["Value"] == "teal-teal"
    arn = ex["Outputs"]["topic.Arn"][0]
    assert arn in [t["TopicArn"] for t in sns.list_topics()["Topics"]]


def approval_runbook(ssm, topic_arn=None, min_approvals=1):
    inputs = {"Approvers": [f"arn:aws:iam::{ACCOUNT}:root"], "MinRequiredApprovals": min_approvals,
              "Message": "ok to go?"}
    if topic_arn:
        inputs["NotificationArn"] = topic_arn
    return runbook(ssm, [
        {"name": "gate", "action": "aws:approve", "inputs": inputs},
        {"name": "go", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}},
    ])


def test_approval_approved_and_rejected(ssm, server):
    sns = make(server, "sns")
    topic = sns.create_topic(Name=unique("approvals"))["TopicArn"]
    name = approval_runbook(ssm, topic)
    exec_id = ssm.start_automation_execution(DocumentName=name)["AutomationExecutionId"]
    ex = wait_status(ssm, exec_id, "Waiting")
    assert ex["CurrentStepName"] == "gate" and ex["CurrentAction"] == "aws:approve"
    with pytest.raises(ClientError) as e:
        ssm.send_automation_signal(AutomationExecutionId=exec_id, SignalType="Resume")
    assert e.value.response["Error"]["Code"] == "InvalidAutomationSignalException"
    ssm.send_automation_signal(AutomationExecutionId=exec_id, SignalType="Approve", Payload={"Comment": ["fine"]})
    ex = wait_status(ssm, exec_id, TERMINAL)
    assert ex["AutomationExecutionStatus"] == "Success"
    assert steps_of(ex) == [("gate", "Success"), ("go", "Success")]
    assert ex["StepExecutions"][0]["Outputs"]["ApprovalStatus"] == ["Approved"]

    exec_id = ssm.start_automation_execution(DocumentName=name)["AutomationExecutionId"]
    wait_status(ssm, exec_id, "Waiting")
    ssm.send_automation_signal(AutomationExecutionId=exec_id, SignalType="Reject")
    ex = wait_status(ssm, exec_id, TERMINAL)
    assert ex["AutomationExecutionStatus"] == "Failed"
    assert steps_of(ex) == [("gate", "Failed")]
    assert "rejected" in ex["StepExecutions"][0]["FailureMessage"]
    with pytest.raises(ClientError) as e:
        ssm.send_automation_signal(AutomationExecutionId=exec_id, SignalType="Approve")
    assert e.value.response["Error"]["Code"] == "InvalidAutomationSignalException"


def test_stop_cancels_a_sleeping_execution(ssm):
    name = runbook(ssm, [{"name": "nap", "action": "aws:sleep", "inputs": {"Duration": "PT1H"}},
                         {"name": "never", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}}])
    token = str(uuid.uuid4())
    exec_id = ssm.start_automation_execution(DocumentName=name, ClientToken=token)["AutomationExecutionId"]
    again = ssm.start_automation_execution(DocumentName=name, ClientToken=token)["AutomationExecutionId"]
    assert again == exec_id
    wait_for(lambda: execution(ssm, exec_id).get("CurrentStepName") == "nap", what="sleeping")
    ssm.stop_automation_execution(AutomationExecutionId=exec_id, Type="Cancel")
    ex = wait_status(ssm, exec_id, TERMINAL)
    assert ex["AutomationExecutionStatus"] == "Cancelled"
    assert steps_of(ex) == [("nap", "Cancelled")]
    with pytest.raises(ClientError) as e:
        ssm.stop_automation_execution(AutomationExecutionId=exec_id)
    assert e.value.response["Error"]["Code"] == "InvalidAutomationStatusUpdateException"
    with pytest.raises(ClientError) as e:
        ssm.get_automation_execution(AutomationExecutionId=str(uuid.uuid4()))
    assert e.value.response["Error"]["Code"] == "AutomationExecutionNotFoundException"


def test_restart_in_the_middle_of_sleep_and_approval(make_server):
    srv = make_server()
    ssm = make(srv, "ssm")
    sleeper = runbook(ssm, [{"name": "nap", "action": "aws:sleep", "inputs": {"Duration": "PT4S"}},
                            {"name": "after", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}}])
    approver = approval_runbook(ssm)
    sleep_id = ssm.start_automation_execution(DocumentName=sleeper)["AutomationExecutionId"]
    approve_id = ssm.start_automation_execution(DocumentName=approver)["AutomationExecutionId"]
    wait_for(lambda: execution(ssm, sleep_id).get("CurrentStepName") == "nap", what="sleeping")
    wait_status(ssm, approve_id, "Waiting")
    started = time.monotonic()
    assert srv.stop() == 0
    srv.start()
    ssm = make(srv, "ssm")
    assert execution(ssm, approve_id)["AutomationExecutionStatus"] == "Waiting"
    ex = wait_status(ssm, sleep_id, TERMINAL)
    assert ex["AutomationExecutionStatus"] == "Success"
    assert steps_of(ex) == [("nap", "Success"), ("after", "Success")]
    nap = ex["StepExecutions"][0]
    assert nap["ExecutionEndTime"].timestamp() - nap["ExecutionStartTime"].timestamp() >= 4.0
    assert time.monotonic() - started < 30
    ssm.send_automation_signal(AutomationExecutionId=approve_id, SignalType="Approve")
    ex = wait_status(ssm, approve_id, TERMINAL)
    assert ex["AutomationExecutionStatus"] == "Success"
    assert steps_of(ex) == [("gate", "Success"), ("go", "Success")]


def test_status_changes_reach_an_eventbridge_rule(ssm, server):
    events = make(server, "events")
    logs = make(server, "logs")
    name = runbook(ssm, [{"name": "one", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}}])
    group = unique("/e2e/automation")
    logs.create_log_group(logGroupName=group)
    rule = unique("rb-rule")
    events.put_rule(Name=rule, EventPattern=json.dumps({
        "source": ["aws.ssm"], "detail-type": ["EC2 Automation Execution Status-change Notification"],
        "detail": {"Definition": [name]}}))
    events.put_targets(Rule=rule, Targets=[{"Id": "logs", "Arn": f"arn:aws:logs:{R}:{ACCOUNT}:log-group:{group}"}])
    exec_id = ssm.start_automation_execution(DocumentName=name)["AutomationExecutionId"]
    wait_status(ssm, exec_id, TERMINAL)

    def statuses():
        msgs = [json.loads(e["message"]) for e in logs.filter_log_events(logGroupName=group)["events"]]
        seen = [m["detail"]["Status"] for m in msgs]
        return msgs if "Success" in seen else None

    msgs = wait_for(statuses, what="Success event in the log group")
    done = [m for m in msgs if m["detail"]["Status"] == "Success"][0]
    assert done["source"] == "aws.ssm"
    assert done["detail-type"] == "EC2 Automation Execution Status-change Notification"
    assert done["detail"]["ExecutionId"] == exec_id
    assert done["detail"]["Definition"] == name


@pytest.mark.parametrize("kind", ["sleep", "branch"])
def test_step_overhead_of_a_100_step_runbook(ssm, kind):
    """Benchmark: per-step overhead of the executor (prints ms/step; bound is loose for slow CI)."""
    steps = []
    for i in range(100):
        nxt = f"s{i + 1}" if i < 99 else None
        if kind == "sleep" or nxt is None:
            steps.append({"name": f"s{i}", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}})
        else:
            steps.append({"name": f"s{i}", "action": "aws:branch", "inputs": {
                "Choices": [{"NextStep": nxt, "Variable": "{{ automation:EXECUTION_ID }}", "StringEquals": "x"}],
                "Default": nxt}})
    name = runbook(ssm, steps)
    exec_id = ssm.start_automation_execution(DocumentName=name)["AutomationExecutionId"]
    ex = wait_status(ssm, exec_id, TERMINAL, deadline_s=120)
    assert ex["AutomationExecutionStatus"] == "Success"
    assert len(ex["StepExecutions"]) == 100
    first = ex["StepExecutions"][0]["ExecutionStartTime"].timestamp()
    last = ex["StepExecutions"][-1]["ExecutionEndTime"].timestamp()
    per_step_ms = (last - first) * 1000 / 100
    print(f"\nautomation step overhead ({kind}): {per_step_ms:.2f} ms/step over 100 steps")
    assert per_step_ms < 200


def test_child_automation_loop_wait_and_timeout(ssm):
    child = runbook(ssm, [
        {"name": "echo", "action": "aws:executeScript", "inputs": {
            "Runtime": "python3.11", "Handler": "h", "Script": "def h(e, c):\n    return {'v': e['v'] * 2}\n",
            "InputPayload": {"v": "{{ V }}"}},
         "outputs": [{"Name": "Double", "Selector": "$.Payload.v", "Type": "Integer"}]},
    ], parameters={"V": {"type": "Integer"}}, outputs=["echo.Double"])
    param = f"/e2e/{uuid.uuid4().hex[:8]}/flag"
    ssm.put_parameter(Name=param, Value="ready", Type="String")
    parent = runbook(ssm, [
        {"name": "each", "action": "aws:loop", "inputs": {"Iterators": ["1", "2"], "Steps": [
            {"name": "call", "action": "aws:executeAutomation", "inputs": {
                "DocumentName": child, "RuntimeParameters": {"V": "{{ each.CurrentIteratorValue }}"}}}]}},
        {"name": "ready", "action": "aws:waitForAwsResourceProperty", "timeoutSeconds": 20, "inputs": {
            "Service": "ssm", "Api": "GetParameter", "Name": param,
            "PropertySelector": "$.Parameter.Value", "DesiredValues": ["ready"]}},
        {"name": "slow", "action": "aws:executeScript", "timeoutSeconds": 1, "onFailure": "Continue", "isCritical": False,
         "inputs": {"Runtime": "python3.11", "Handler": "h", "Script": "import time\ndef h(e, c):\n    time.sleep(30)\n"}},
        {"name": "external", "action": "aws:executeAwsApi", "isCritical": False, "onFailure": "Continue",
         "inputs": {"Service": "s3", "Api": "ListBuckets"}},
    ])
    exec_id = ssm.start_automation_execution(DocumentName=parent)["AutomationExecutionId"]
    ex = wait_status(ssm, exec_id, TERMINAL, deadline_s=60)
    assert ex["AutomationExecutionStatus"] == "Success", ex
    assert steps_of(ex) == [("each", "Success"), ("call", "Success"), ("call", "Success"),
                            ("ready", "Success"), ("slow", "TimedOut"), ("external", "Failed")]
    calls = [s for s in ex["StepExecutions"] if s["StepName"] == "call"]
    assert [c["ParentStepDetails"]["IteratorValue"] for c in calls] == ["1", "2"]
    children = [c["Outputs"]["ExecutionId"][0] for c in calls]
    assert [execution(ssm, c)["Outputs"] for c in children] == [{"echo.Double": ["2"]}, {"echo.Double": ["4"]}]
    assert all(execution(ssm, c)["ParentAutomationExecutionId"] == exec_id for c in children)
    listed = ssm.describe_automation_executions(Filters=[{"Key": "ParentExecutionId", "Values": [exec_id]}])
    assert sorted(m["AutomationExecutionId"] for m in listed["AutomationExecutionMetadataList"]) == sorted(children)
    external = ex["StepExecutions"][-1]["FailureMessage"]
    # Without boto3 or credentials the step fails with a clear reason (never silently succeeds).
    assert "boto3" in external or "Credentials" in external or "Error" in external, external


def test_a_step_running_at_shutdown_runs_again_after_restart(make_server, tmp_path):
    srv = make_server()
    ssm = make(srv, "ssm")
    marker = tmp_path / "runs.txt"
    script = ("import time\ndef h(e, c):\n    open(e['path'], 'a').write('run\\n')\n    time.sleep(2)\n"
              "    return {'ok': True}\n")
    name = runbook(ssm, [{"name": "work", "action": "aws:executeScript", "inputs": {
        "Runtime": "python3.11", "Handler": "h", "Script": script, "InputPayload": {"path": str(marker)}}}])
    exec_id = ssm.start_automation_execution(DocumentName=name)["AutomationExecutionId"]
    wait_for(lambda: marker.exists(), what="script started")
    assert srv.stop() == 0
    srv.start()
    ssm = make(srv, "ssm")
    ex = wait_status(ssm, exec_id, TERMINAL)
    assert ex["AutomationExecutionStatus"] == "Success"
    assert steps_of(ex) == [("work", "Success")]
    # The interrupted action ran again as the same step execution (documented restart semantics).
    assert marker.read_text().count("run") == 2

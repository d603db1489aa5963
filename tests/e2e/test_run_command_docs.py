"""Run Command beyond the basics, end to end against a dedicated server and two real `opsloop agent`
processes (separate state directories) with boto3:

- MaxErrors (a number and a percentage) stops sending to the remaining targets, which end Cancelled,
  and the command ends Failed; MaxConcurrency 1 runs the targets one after the other.
- command documents: `{{ssm:/param}}` references (resolved by the server before dispatch; a missing
  or SecureString parameter is InvalidParameters), `aws:runDocument` of a stored document with
  documentParameters, and preconditions (steps for another platform are skipped: Success /
  Skipped), with per-step CommandPlugins and GetCommandInvocation by PluginName.
- output caps: 24,000 characters in GetCommandInvocation, 2,500 in ListCommandInvocations Details,
  the full output in CloudWatch Logs.
- NotificationConfig: command and invocation status changes published to an SNS topic whose HTTP
  subscriber is a loopback receiver started here.
- the Linux documents opsloop ships: Opsloop-CollectDiagnostics; Opsloop-RestartService against
  this machine's real systemctl (systemd is not running here, so the restart fails and the
  document says so), and against a `systemctl` test double on one agent's PATH that restarts a real
  process; the Opsloop-RestartServiceOnInstances runbook driving it through aws:runCommand.
- Automation `aws:runCommand` on a real agent: the runbook waits for the command, exposes its
  Output and ResponseCode, and a failing command fails the step.
"""

from __future__ import annotations

import json
import os
import uuid

import pytest
from botocore.exceptions import ClientError

import harness
from sns_support import Receiver, fetch, sns_client
from test_run_command import Agent, client, invocation, poll, wait_status

SHIM = r"""#!/bin/sh
# Test double for systemctl on a host without systemd: each unit is one real background process
# whose pid is kept in $STATE/<unit>.pid. Anything else goes to the real systemctl.
STATE="__STATE__"
cmd="$1"; shift
[ "$1" = "--quiet" ] && { quiet=1; shift; }
[ "$1" = "--no-pager" ] && shift
unit="$1"
alive() { [ -f "$STATE/$unit.pid" ] && kill -0 "$(cat "$STATE/$unit.pid")" 2>/dev/null; }
case "$cmd" in
  restart)
    [ -f "$STATE/$unit.pid" ] && kill "$(cat "$STATE/$unit.pid")" 2>/dev/null
    setsid sleep 600 </dev/null >/dev/null 2>&1 &
    echo $! > "$STATE/$unit.pid"
    echo restart >> "$STATE/$unit.log" ;;
  is-active) alive ;;
  status) echo "* $unit - test double"; if alive; then echo "   Active: active (running) pid $(cat "$STATE/$unit.pid")"; else echo "   Active: inactive (dead)"; exit 3; fi ;;
  *) exec /usr/bin/systemctl "$cmd" "$@" ;;
esac
"""


class ShimAgent(Agent):
    """An agent whose PATH starts with a directory holding the systemctl test double."""

    def __init__(self, srv, workdir, activation_id, code):
        super().__init__(srv, workdir, activation_id, code)
        self.units = workdir / "units"
        self.units.mkdir(parents=True, exist_ok=True)
        bin_dir = workdir / "bin"
        bin_dir.mkdir(exist_ok=True)
        shim = bin_dir / "systemctl"
        shim.write_text(SHIM.replace("__STATE__", str(self.units)))
        shim.chmod(0o755)
        self.path = f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"

    def start(self):
        import subprocess
        env = harness.base_env()
        env["PATH"] = self.path
        self.err = open(self.workdir / "agent.log", "ab")
        self.proc = subprocess.Popen(self.args, env=env, stdin=subprocess.DEVNULL, stdout=self.err, stderr=self.err)
        return self

    def unit_pid(self, unit):
        p = self.units / f"{unit}.pid"
        return int(p.read_text()) if p.exists() else None

    def cleanup(self):
        for p in self.units.glob("*.pid"):
            try:
                os.kill(int(p.read_text()), 9)
            except (ProcessLookupError, ValueError):
                pass


@pytest.fixture
def fleet(make_server, tmp_path):
    srv = make_server()
    ssm = client(srv, "ssm")
    agents = {}
    for role, cls in (("web", Agent), ("db", ShimAgent)):
        act = ssm.create_activation(IamRole="SSMServiceRole", DefaultInstanceName=f"{role}-node",
                                    Tags=[{"Key": "role", "Value": role}, {"Key": "fleet", "Value": "e2e"}])
        agents[role] = cls(srv, tmp_path / f"agent-{role}", act["ActivationId"], act["ActivationCode"]).start()
    for a in agents.values():
        poll(a.instance_id, "registration")
    ids = [a.instance_id() for a in agents.values()]
    poll(lambda: len([n for n in ssm.describe_instance_information()["InstanceInformationList"]
                      if n["InstanceId"] in ids and n["PingStatus"] == "Online"]) == 2, "two Online nodes")
    yield srv, ssm, agents
    agents["db"].cleanup()
    for a in agents.values():
        if a.proc and a.proc.poll() is None:
            a.proc.kill()
            a.proc.wait()


def alive(pid):
    """Is `pid` a live process (not gone, not a zombie left for a parent that does not reap)?"""
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def command(ssm, cmd_id):
    return ssm.list_commands(CommandId=cmd_id)["Commands"][0]


def wait_command(ssm, cmd_id, deadline_s=30.0):
    done = {"Success", "Failed", "TimedOut", "Cancelled"}
    return poll(lambda: (lambda c: c if c["Status"] in done else None)(command(ssm, cmd_id)),
                f"command {cmd_id} to end", deadline_s)


def to_both(ssm, commands, **kw):
    return ssm.send_command(DocumentName="AWS-RunShellScript", Targets=[{"Key": "tag:fleet", "Values": ["e2e"]}],
                            Parameters={"commands": commands}, **kw)["Command"]["CommandId"]


def test_max_errors_and_max_concurrency(fleet):
    srv, ssm, agents = fleet
    web, db = agents["web"].instance_id(), agents["db"].instance_id()

    # MaxConcurrency 1: the two targets run one after the other.
    seq = to_both(ssm, ["sleep 1", "echo done"], MaxConcurrency="1")
    c = wait_command(ssm, seq)
    assert (c["Status"], c["CompletedCount"], c["ErrorCount"]) == ("Success", 2, 0)
    windows = sorted((invocation(ssm, seq, i)["ExecutionStartDateTime"], invocation(ssm, seq, i)["ExecutionEndDateTime"])
                     for i in (web, db))
    assert windows[1][0] >= windows[0][1], windows

    # MaxErrors 0 (the default) with MaxConcurrency 1: the first failure stops the command; the
    # target not yet sent it ends Cancelled and never runs it.
    stop = to_both(ssm, ["echo ran >> ran.txt", "exit 4"], MaxConcurrency="1", MaxErrors="0")
    c = wait_command(ssm, stop)
    assert (c["Status"], c["StatusDetails"], c["ErrorCount"], c["CompletedCount"]) == ("Failed", "Failed", 1, 2)
    statuses = sorted(invocation(ssm, stop, i)["Status"] for i in (web, db))
    assert statuses == ["Cancelled", "Failed"], statuses
    ran = [a for a in agents.values() if (a.state / "orchestration" / stop / "ran.txt").exists()]
    assert len(ran) == 1, "exactly one node ran the command"

    # MaxErrors 1: both run; one error is tolerated (Incomplete), two are not (Failed).
    fail_web = 'case "$(pwd)" in *agent-web*) echo failing >&2; exit 3;; esac; echo ok'
    one = to_both(ssm, [fail_web], MaxErrors="1")
    c = wait_command(ssm, one)
    assert (c["Status"], c["StatusDetails"], c["ErrorCount"]) == ("Success", "Incomplete", 1)
    assert invocation(ssm, one, db)["Status"] == "Success"
    two = to_both(ssm, ["exit 2"], MaxErrors="1", MaxConcurrency="1")
    c = wait_command(ssm, two)
    assert (c["Status"], c["ErrorCount"]) == ("Failed", 2)
    assert {invocation(ssm, two, i)["Status"] for i in (web, db)} == {"Failed"}

    # A percentage: 50% of 2 targets tolerates one error.
    pct = to_both(ssm, [fail_web], MaxErrors="50%")
    assert wait_command(ssm, pct)["StatusDetails"] == "Incomplete"
    pct = to_both(ssm, [fail_web], MaxErrors="49%")
    assert wait_command(ssm, pct)["Status"] == "Failed"

    # tag-key targeting reaches both nodes.
    keyed = ssm.send_command(DocumentName="AWS-RunShellScript", Targets=[{"Key": "tag-key", "Values": ["fleet"]}],
                             Parameters={"commands": ["echo keyed"]})["Command"]
    assert keyed["TargetCount"] == 2
    assert wait_command(ssm, keyed["CommandId"])["Status"] == "Success"

    # Bad values are refused and create nothing.
    before = len(ssm.list_commands()["Commands"])
    for field, value in (("MaxErrors", "x"), ("MaxConcurrency", "101%")):
        with pytest.raises(ClientError) as e:
            to_both(ssm, ["echo no"], **{field: value})
        assert e.value.response["Error"]["Code"] == "ValidationException", e.value.response
        assert field in e.value.response["Error"]["Message"]
    assert len(ssm.list_commands()["Commands"]) == before


def test_parameter_references_run_document_and_preconditions(fleet):
    srv, ssm, agents = fleet
    web = agents["web"].instance_id()
    ps = unique("/e2e/rc")
    ssm.put_parameter(Name=f"{ps}/greeting", Value="hello-from-parameter-store", Type="String")
    ssm.put_parameter(Name=f"{ps}/greeting", Value="second", Type="String", Overwrite=True)
    ssm.put_parameter(Name=f"{ps}/secret", Value="s3cr3t", Type="SecureString")

    # {{ssm:}} in a SendCommand parameter value, latest and by version.
    ref = f"echo {{{{ssm:{ps}/greeting}}}} {{{{ssm:{ps}/greeting:1}}}}"
    cmd = ssm.send_command(DocumentName="AWS-RunShellScript", InstanceIds=[web],
                           Parameters={"commands": [ref]})["Command"]
    assert cmd["Parameters"]["commands"] == [ref], "the command keeps the reference as sent"
    inv = wait_status(ssm, cmd["CommandId"], web, {"Success", "Failed"})
    assert inv["StandardOutputContent"] == "second hello-from-parameter-store\n"
    for bad, needle in ((f"{ps}/missing", "does not exist"), (f"{ps}/secret", "SecureString")):
        with pytest.raises(ClientError) as e:
            ssm.send_command(DocumentName="AWS-RunShellScript", InstanceIds=[web],
                             Parameters={"commands": [f"echo {{{{ssm:{bad}}}}}"]})
        assert e.value.response["Error"]["Code"] == "InvalidParameters"
        assert needle in e.value.response["Error"]["Message"]

    # DocumentVersion picks the version that runs.
    versioned = unique("e2e-versioned")
    body = lambda word: json.dumps({"schemaVersion": "2.2", "mainSteps": [
        {"action": "aws:runShellScript", "name": "say", "inputs": {"runCommand": [f"echo {word}"]}}]})
    ssm.create_document(Name=versioned, DocumentType="Command", Content=body("version-one"))
    ssm.update_document(Name=versioned, Content=body("version-two"), DocumentVersion="$LATEST")
    for version, word in (("1", "version-one"), ("$LATEST", "version-two"), (None, "version-one")):
        kw = {"DocumentVersion": version} if version else {}
        c = ssm.send_command(DocumentName=versioned, InstanceIds=[web], **kw)["Command"]
        assert c["DocumentVersion"] == ("2" if version == "$LATEST" else "1")
        assert wait_status(ssm, c["CommandId"], web, {"Success"})["StandardOutputContent"] == f"{word}\n"

    # aws:runDocument of a stored document, with documentParameters, inside a document whose steps
    # have preconditions.
    inner = unique("e2e-inner")
    ssm.create_document(Name=inner, DocumentType="Command", DocumentFormat="YAML", Content=f"""
schemaVersion: '2.2'
description: nested
parameters:
  who: {{type: String, default: nobody}}
mainSteps:
  - action: aws:runShellScript
    name: greet
    inputs:
      runCommand: ["echo hi {{{{ who }}}} from {{{{ssm:{ps}/greeting}}}}"]
  - action: aws:runShellScript
    name: winStep
    precondition: {{StringEquals: [platformType, Windows]}}
    inputs:
      runCommand: ["echo never-on-linux"]
""")
    outer = unique("e2e-outer")
    ssm.create_document(Name=outer, DocumentType="Command", DocumentFormat="JSON", Content=json.dumps({
        "schemaVersion": "2.2", "description": "outer",
        "parameters": {"name": {"type": "String"}},
        "mainSteps": [
            {"action": "aws:runDocument", "name": "nested",
             "inputs": {"documentType": "SSMDocument", "documentPath": inner,
                        "documentParameters": "{\"who\": \"{{ name }}\"}"}},
            {"action": "aws:runShellScript", "name": "linuxOnly",
             "precondition": {"StringEquals": ["platformType", "Linux"]},
             "inputs": {"runCommand": ["echo linux-step"]}},
            {"action": "aws:runShellScript", "name": "macOnly",
             "precondition": {"StringEquals": ["platformType", "MacOS"]},
             "inputs": {"runCommand": ["echo never-on-linux"]}},
        ]}))
    cid = ssm.send_command(DocumentName=outer, InstanceIds=[web], Parameters={"name": ["ops"]})["Command"]["CommandId"]
    inv = wait_status(ssm, cid, web, {"Success", "Failed"})
    assert inv["Status"] == "Success", inv
    assert "hi ops from second" in inv["StandardOutputContent"]
    assert "linux-step" in inv["StandardOutputContent"]
    assert "never-on-linux" not in inv["StandardOutputContent"]
    plugins = ssm.list_command_invocations(CommandId=cid, Details=True)["CommandInvocations"][0]["CommandPlugins"]
    assert [(p["Name"], p["Status"], p["StatusDetails"]) for p in plugins] == [
        ("nested.greet", "Success", "Success"),
        ("nested.winStep", "Success", "Skipped"),
        ("linuxOnly", "Success", "Success"),
        ("macOnly", "Success", "Skipped"),
    ]
    assert plugins[0]["Output"] == "hi ops from second\n"
    assert "skipped due to unsatisfied preconditions" in plugins[1]["Output"]
    one = ssm.get_command_invocation(CommandId=cid, InstanceId=web, PluginName="linuxOnly")
    assert (one["PluginName"], one["Status"], one["StandardOutputContent"]) == ("linuxOnly", "Success", "linux-step\n")
    skipped = ssm.get_command_invocation(CommandId=cid, InstanceId=web, PluginName="macOnly")
    assert (skipped["Status"], skipped["StatusDetails"]) == ("Success", "Skipped")
    with pytest.raises(ClientError) as e:
        ssm.get_command_invocation(CommandId=cid, InstanceId=web, PluginName="nope")
    assert e.value.response["Error"]["Code"] == "InvalidPluginName"

    # A runDocument naming a document that does not exist, or a LocalPath, is refused at send time.
    for inputs in ({"documentType": "SSMDocument", "documentPath": unique("e2e-missing")},
                   {"documentType": "LocalPath", "documentPath": "/tmp/doc.json"}):
        bad = unique("e2e-bad")
        ssm.create_document(Name=bad, DocumentType="Command", Content=json.dumps({
            "schemaVersion": "2.2", "mainSteps": [{"action": "aws:runDocument", "name": "go", "inputs": inputs}]}))
        with pytest.raises(ClientError) as e:
            ssm.send_command(DocumentName=bad, InstanceIds=[web])
        assert e.value.response["Error"]["Code"] == "InvalidDocument"


def test_output_caps_and_full_output_in_logs(fleet):
    srv, ssm, agents = fleet
    web = agents["web"].instance_id()
    group = unique("/e2e/rc-caps")
    cid = ssm.send_command(DocumentName="AWS-RunShellScript", InstanceIds=[web],
                           Parameters={"commands": ["head -c 30000 /dev/zero | tr '\\0' x"]},
                           CloudWatchOutputConfig={"CloudWatchOutputEnabled": True,
                                                   "CloudWatchLogGroupName": group})["Command"]["CommandId"]
    inv = wait_status(ssm, cid, web, {"Success", "Failed"})
    assert inv["Status"] == "Success"
    assert inv["StandardOutputContent"] == "x" * 24000
    listed = ssm.list_command_invocations(CommandId=cid, Details=True)["CommandInvocations"][0]
    assert listed["CommandPlugins"][0]["Output"] == "x" * 2500
    logs = client(srv, "logs")

    def logged():
        try:
            events = logs.get_log_events(logGroupName=group, logStreamName=f"{cid}/{web}/runShellScript/stdout",
                                         startFromHead=True)["events"]
        except logs.exceptions.ResourceNotFoundException:
            return None
        text = "".join(e["message"] for e in events)
        return text if len(text) >= 30000 else None

    assert poll(logged, "the full output in Logs") == "x" * 30000


def test_notification_config_publishes_to_sns(fleet):
    srv, ssm, agents = fleet
    web = agents["web"].instance_id()
    receiver = Receiver()
    try:
        sns = sns_client(srv)
        topic = sns.create_topic(Name=unique("rc-topic"))["TopicArn"]
        sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=receiver.url)
        status, body = fetch(receiver.wait_type("SubscriptionConfirmation")[-1].json()["SubscribeURL"])
        assert status == 200, body
        cid = ssm.send_command(DocumentName="AWS-RunShellScript", InstanceIds=[web],
                               Parameters={"commands": ["echo notify"]},
                               NotificationConfig={"NotificationArn": topic, "NotificationType": "Command",
                                                   "NotificationEvents": ["Success", "Failed"]})["Command"]["CommandId"]
        wait_status(ssm, cid, web, {"Success"})
        note = json.loads(receiver.wait_type("Notification")[-1].json()["Message"])
        assert (note["commandId"], note["status"], note["instanceIds"]) == (cid, "Success", [web])
        inv_cid = ssm.send_command(DocumentName="AWS-RunShellScript", InstanceIds=[web],
                                   Parameters={"commands": ["exit 9"]},
                                   NotificationConfig={"NotificationArn": topic, "NotificationType": "Invocation",
                                                       "NotificationEvents": ["All"]})["Command"]["CommandId"]
        notes = poll(lambda: (lambda ns: ns if any(n["status"] == "Failed" for n in ns) else None)(
            [json.loads(r.json()["Message"]) for r in receiver.of_type("Notification")
             if json.loads(r.json()["Message"])["commandId"] == inv_cid]), "invocation notifications")
        assert {n["instanceId"] for n in notes} == {web}
        assert [n["status"] for n in notes][-1] == "Failed"
        # Only the events asked for on the first command: no InProgress message, no invocation-level
        # message. Its notifications were published before the second command even ran, and the
        # second command's have arrived, so any extra one for the first would be here by now.
        first = [json.loads(r.json()["Message"]) for r in receiver.of_type("Notification")
                 if json.loads(r.json()["Message"])["commandId"] == cid]
        assert [(n["status"], "instanceId" in n) for n in first] == [("Success", False)]
        with pytest.raises(ClientError) as e:
            ssm.send_command(DocumentName="AWS-RunShellScript", InstanceIds=[web], Parameters={"commands": ["true"]},
                             NotificationConfig={"NotificationArn": "not-an-arn"})
        assert e.value.response["Error"]["Code"] == "InvalidNotificationConfig"
    finally:
        receiver.close()


def test_linux_documents_on_this_machine(fleet):
    srv, ssm, agents = fleet
    web, db = agents["web"].instance_id(), agents["db"].instance_id()

    diag = ssm.send_command(DocumentName="Opsloop-CollectDiagnostics", InstanceIds=[web],
                            Parameters={"JournalLines": ["5"]})["Command"]["CommandId"]
    inv = wait_status(ssm, diag, web, {"Success", "Failed"})
    assert inv["Status"] == "Success", inv
    out = inv["StandardOutputContent"]
    for section in ("===== host =====", "===== memory =====", "===== disks =====",
                    "===== top processes by cpu =====", "===== listening sockets ====="):
        assert section in out, section
    assert open("/proc/sys/kernel/hostname").read().strip() in out
    with pytest.raises(ClientError) as e:
        ssm.send_command(DocumentName="Opsloop-CollectDiagnostics", InstanceIds=[web],
                         Parameters={"ServiceName": ["x; rm -rf /"]})
    assert e.value.response["Error"]["Code"] == "InvalidParameters"

    # The real systemctl of this machine: systemd is not PID 1 here, so the restart fails and the
    # document reports it with exit code 1.
    unit = unique("opsloop-e2e")
    real = ssm.send_command(DocumentName="Opsloop-RestartService", InstanceIds=[web],
                            Parameters={"ServiceName": [unit], "GracePeriodSeconds": ["2"]})["Command"]["CommandId"]
    inv = wait_status(ssm, real, web, {"Success", "Failed"})
    assert (inv["Status"], inv["ResponseCode"]) == ("Failed", 1), inv
    assert f"failed to restart {unit}" in inv["StandardErrorContent"]

    # The db node's PATH has a systemctl test double that restarts a real process.
    ok = ssm.send_command(DocumentName="Opsloop-RestartService", InstanceIds=[db],
                          Parameters={"ServiceName": ["demo"]})["Command"]["CommandId"]
    inv = wait_status(ssm, ok, db, {"Success", "Failed"})
    assert inv["Status"] == "Success", inv
    assert "demo is active" in inv["StandardOutputContent"]
    first = agents["db"].unit_pid("demo")
    assert alive(first), "the restarted process outlives the command"

    # The runbook that drives it through aws:runCommand restarts it again (a new process).
    ex = ssm.start_automation_execution(DocumentName="Opsloop-RestartServiceOnInstances",
                                        Parameters={"InstanceIds": [db], "ServiceName": ["demo"]})["AutomationExecutionId"]
    done = poll(lambda: (lambda e: e if e["AutomationExecutionStatus"] in {"Success", "Failed", "TimedOut", "Cancelled"}
                         else None)(ssm.get_automation_execution(AutomationExecutionId=ex)["AutomationExecution"]),
                "the restart runbook", 60)
    assert done["AutomationExecutionStatus"] == "Success", done
    second = agents["db"].unit_pid("demo")
    assert second != first
    assert alive(second) and not alive(first)
    assert (agents["db"].units / "demo.log").read_text().count("restart") == 2


def test_automation_run_command_on_a_real_agent(fleet):
    srv, ssm, agents = fleet
    web, db = agents["web"].instance_id(), agents["db"].instance_id()
    name = unique("e2e-rb-rc")
    ssm.create_document(Name=name, DocumentType="Automation", DocumentFormat="JSON", Content=json.dumps({
        "schemaVersion": "0.3",
        "parameters": {"Node": {"type": "String"}, "Code": {"type": "String", "default": "0"}},
        "mainSteps": [
            {"name": "say", "action": "aws:runCommand",
             "inputs": {"DocumentName": "AWS-RunShellScript", "InstanceIds": ["{{ Node }}"],
                        "Parameters": {"commands": ["echo from-runbook {{ automation:EXECUTION_ID }}"]}},
             "outputs": [{"Name": "Said", "Selector": "$.Output", "Type": "String"},
                         {"Name": "Cmd", "Selector": "$.CommandId", "Type": "String"}]},
            {"name": "exitWith", "action": "aws:runCommand",
             "inputs": {"DocumentName": "AWS-RunShellScript", "Targets": [{"Key": "tag:role", "Values": ["db"]}],
                        "Parameters": {"commands": ["echo code {{ Code }}", "exit {{ Code }}"]}},
             "outputs": [{"Name": "Code", "Selector": "$.ResponseCode", "Type": "Integer"}]},
        ],
        "outputs": ["say.Said", "say.Cmd", "exitWith.Code"]}))

    def run(code):
        ex = ssm.start_automation_execution(DocumentName=name, Parameters={"Node": [web], "Code": [code]})[
            "AutomationExecutionId"]
        return ex, poll(lambda: (lambda e: e if e["AutomationExecutionStatus"] in {"Success", "Failed", "TimedOut"}
                                 else None)(ssm.get_automation_execution(AutomationExecutionId=ex)["AutomationExecution"]),
                        "the runbook", 60)

    ex, done = run("0")
    assert done["AutomationExecutionStatus"] == "Success", done
    assert done["Outputs"]["say.Said"] == [f"from-runbook {ex}\n"]
    cmd = done["Outputs"]["say.Cmd"][0]
    assert invocation(ssm, cmd, web)["StandardOutputContent"] == f"from-runbook {ex}\n"
    assert done["Outputs"]["exitWith.Code"] == ["0"]

    ex, done = run("6")
    assert done["AutomationExecutionStatus"] == "Failed", done
    steps = {s["StepName"]: s for s in ssm.describe_automation_step_executions(AutomationExecutionId=ex)["StepExecutions"]}
    assert steps["say"]["StepStatus"] == "Success"
    assert steps["exitWith"]["StepStatus"] == "Failed"
    assert "Failed" in steps["exitWith"]["FailureMessage"]
    failed = [c for c in ssm.list_commands(InstanceId=db)["Commands"] if c["Status"] == "Failed"]
    assert failed and invocation(ssm, failed[0]["CommandId"], db)["ResponseCode"] == 6

#!/usr/bin/env python3
"""The incident-automation scenario on one machine, end to end, with a timeline per fault.

Starts `opsloop server` (fresh data directory) and one `opsloop agent` (hybrid activation, CloudWatch
agent config with 1-second metrics), a loopback HTTP endpoint that plays the chat webhook, the SMS
gateway, the node's service manager and the node's power controller, and the watched service
(`app.py`). Applies the example's files with the real `aws` CLI, then injects each fault in turn:

  cpu       the watched service burns CPU (SIGUSR1 to app.py) -> runbook runs vmstat; the operator
            (this script) ends the burn once the runbook has reported
  process   the watched service is stopped (SIGTERM, as `systemctl stop`) -> runbook restarts it
  instance  the agent is frozen (SIGSTOP: the node goes silent, as with `networkctl down`) -> the
            server marks the node ConnectionLost and publishes StatusCheckFailed_Instance = 1 ->
            runbook "restarts the instance" through the power controller (SIGKILL + start again)

and waits for every step: first breaching sample, alarm ALARM, incident opened, chat post, runbook
start and result, recovered (metric healthy again), alarm OK, incident resolved (auto-resolve).
Exits 1 if a step does not happen within its deadline, 2 on a setup failure.

Needs boto3 and awscli (the repository's .venv has both); see README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
from botocore.config import Config

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
REGION = "us-east-1"
ACCOUNT = "000000000000"
ALARMS = {"cpu": "opsloop-demo-cpu-high", "process": "opsloop-demo-process-down",
          "instance": "opsloop-demo-instance-status"}
FAULTS = ["cpu", "process", "instance"]
STEPS = ["injected", "first_breaching_sample", "alarm_alarm", "incident_opened", "chat_opened",
         "runbook_started", "runbook_finished", "fix_applied", "recovered", "alarm_ok",
         "incident_resolved", "chat_resolved"]
LABELS = {
    "injected": "fault injected", "first_breaching_sample": "first breaching sample (1 s bucket)",
    "alarm_alarm": "alarm -> ALARM", "incident_opened": "incident opened", "chat_opened": "chat post: opened",
    "runbook_started": "runbook started", "runbook_finished": "runbook finished",
    "fix_applied": "fix applied", "recovered": "recovered: metric healthy (1 s bucket)",
    "alarm_ok": "alarm -> OK", "incident_resolved": "incident resolved", "chat_resolved": "chat post: resolved",
}


class StepTimeout(Exception):
    pass


def log(msg: str) -> None:
    print(msg, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fmt(t: float | None) -> str:
    return "-" if t is None else datetime.fromtimestamp(t).strftime("%H:%M:%S.%f")[:-3]


def epoch(v) -> float | None:
    if v is None:
        return None
    if isinstance(v, datetime):
        return v.timestamp()
    return float(v)


# --- the loopback endpoint: chat webhook, SMS gateway, service manager, power controller ---------

class Node:
    """The 'host': the watched service and the agent, both children of this script."""

    def __init__(self, args, workdir: Path, server_url: str):
        self.args, self.workdir, self.server_url = args, workdir, server_url
        self.marker = f"opsloop-demo-app-{secrets.token_hex(4)}"
        self.app: subprocess.Popen | None = None
        self.agent: subprocess.Popen | None = None
        self.agent_args: list[str] = []
        self.lock = threading.Lock()
        self.events: list[tuple[float, str]] = []  # (time, what) of restarts done by the endpoints

    def start_app(self) -> subprocess.Popen:
        with self.lock:
            if self.app is not None and self.app.poll() is None:
                return self.app
            self.app = subprocess.Popen(
                [sys.executable, str(HERE / "app.py"), "--name", self.marker, "--threads", str(self.args.burn_threads)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.events.append((time.time(), "app started"))
            return self.app

    def stop_app(self) -> None:
        with self.lock:
            if self.app is not None and self.app.poll() is None:
                self.app.terminate()
                self.app.wait(timeout=10)

    def start_agent(self) -> subprocess.Popen:
        logf = open(self.workdir / "agent.log", "ab")
        self.agent = subprocess.Popen(self.agent_args, env=clean_env(), stdin=subprocess.DEVNULL,
                                      stdout=logf, stderr=logf)
        logf.close()
        return self.agent

    def power_cycle(self) -> int:
        """'Restart the instance': kill the (frozen) agent and start it again from its state dir."""
        with self.lock:
            if self.agent is not None and self.agent.poll() is None:
                self.agent.kill()  # SIGKILL also ends a SIGSTOPped process
                self.agent.wait(timeout=10)
            self.start_agent()
            self.events.append((time.time(), "agent power-cycled"))
            return self.agent.pid

    def shutdown(self) -> None:
        for p in (self.agent, self.app):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait(timeout=10)


class Endpoint:
    """One threaded HTTP server on 127.0.0.1 with four roles, by path."""

    def __init__(self, node: Node):
        self.node = node
        self.posts: list[tuple[float, str, bytes]] = []  # (arrival, path, body)
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                at = time.time()
                with outer.lock:
                    outer.posts.append((at, self.path, body))
                out = {"ok": True}
                if self.path == "/services/app/restart":
                    out["pid"] = outer.node.start_app().pid
                elif self.path == "/power/reset":
                    out["pid"] = outer.node.power_cycle()
                data = json.dumps(out).encode() + b"\n"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def find(self, path: str, *needles: str, after: float = 0.0) -> tuple[float, bytes] | None:
        with self.lock:
            for at, p, body in self.posts:
                if p == path and at >= after and all(n.encode() in body for n in needles):
                    return at, body
        return None

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# --- processes and clients ----------------------------------------------------------------------

def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSLOOP_", "AWS_"))}
    env.update({"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "AWS_EC2_METADATA_DISABLED": "true"})
    return env


class Scenario:
    def __init__(self, args):
        self.args = args
        self.workdir = Path(args.workdir or tempfile.mkdtemp(prefix="opsloop-incident-demo-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.key = "AKIA" + secrets.token_hex(8).upper()
        self.secret = secrets.token_urlsafe(30)
        self.server: subprocess.Popen | None = None
        self.node = Node(args, self.workdir, self.url)
        self.endpoint = Endpoint(self.node)
        self.vars: dict[str, str] = {"ACCOUNT_ID": ACCOUNT}
        cfg = Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=5, read_timeout=30)
        sess = boto3.Session(aws_access_key_id=self.key, aws_secret_access_key=self.secret, region_name=REGION)
        self.cw = sess.client("cloudwatch", endpoint_url=self.url, config=cfg)
        self.im = sess.client("ssm-incidents", endpoint_url=self.url, config=cfg)
        self.ssm = sess.client("ssm", endpoint_url=self.url, config=cfg)
        self.results: list[dict] = []

    # -- setup --

    def start_server(self) -> None:
        env = clean_env()
        env.update({
            "OPSLOOP_ACCESS_KEY_ID": self.key, "OPSLOOP_SECRET_ACCESS_KEY": self.secret,
            "OPSLOOP_LOG": os.environ.get("OPSLOOP_LOG", "info"),
            # Test-only knobs (see README.md): a node silent for this many seconds is ConnectionLost
            # (AWS and opsloop's default: 5 minutes), and the length of one engage-delay "minute".
            "OPSLOOP_TEST_SSM_CONNECTION_LOST_AFTER_S": str(self.args.lost_after),
            "OPSLOOP_INCIDENTS_MINUTE_SECONDS": str(self.args.minute_seconds),
            "OPSLOOP_CONTACTS_SMS_GATEWAY_URL": self.endpoint.url + "/sms",
        })
        logf = open(self.workdir / "server.log", "ab")
        self.server = subprocess.Popen(
            [str(self.args.bin), "server", "--listen", f"127.0.0.1:{self.port}", "--data-dir",
             str(self.workdir / "data")], env=env, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
        logf.close()
        end = time.monotonic() + 20
        while time.monotonic() < end:
            if self.server.poll() is not None:
                raise RuntimeError(f"opsloop server exited with {self.server.returncode}; see {self.workdir}/server.log")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    import urllib.request
                    with urllib.request.urlopen(self.url + "/_opsloop/health", timeout=2) as r:
                        if r.status == 200:
                            return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("opsloop server not healthy within 20 s")

    def aws(self, *args: str) -> dict:
        env = clean_env()
        env.update({"AWS_ACCESS_KEY_ID": self.key, "AWS_SECRET_ACCESS_KEY": self.secret,
                    "AWS_DEFAULT_REGION": REGION, "AWS_ENDPOINT_URL": self.url, "AWS_MAX_ATTEMPTS": "3"})
        cmd = [sys.executable, "-m", "awscli", *args, "--output", "json"]
        p = subprocess.run(cmd, env=env, cwd=self.workdir, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=120)
        if p.returncode != 0:
            raise RuntimeError(f"aws {' '.join(args)} failed ({p.returncode}):\n{p.stderr}")
        if self.args.verbose:
            log(f"  $ aws {' '.join(args)}")
        return json.loads(p.stdout) if p.stdout.strip() else {}

    def render(self, rel: str) -> str:
        """Copy an example file into the work dir with ${NAME} placeholders filled in; returns the
        `file://` argument for the CLI. `${aws:InstanceId}` (the agent's own variable) is kept."""
        text = (HERE / rel).read_text()
        is_json = rel.endswith(".json")

        def sub(m: re.Match) -> str:
            name = m.group(1)
            if name not in self.vars:
                raise RuntimeError(f"{rel}: no value for ${{{name}}}")
            v = self.vars[name]
            return json.dumps(v)[1:-1] if is_json else v

        out = re.sub(r"\$\{([A-Z_]+)\}", sub, text)
        dest = self.workdir / "rendered" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(out)
        return f"file://{dest}"

    def start_node(self) -> None:
        self.node.start_app()
        self.vars["APP_PATTERN"] = self.node.marker
        act = self.aws("ssm", "create-activation", "--iam-role", "SSMServiceRole",
                       "--default-instance-name", "demo-host")
        cfg = self.render("cwagent.json")[len("file://"):]
        state = self.workdir / "agent-state"
        self.node.agent_args = [
            str(self.args.bin), "agent", "--endpoint", self.url, "--region", REGION, "--state-dir", str(state),
            "--activation-id", act["ActivationId"], "--activation-code", act["ActivationCode"],
            "--heartbeat-seconds", "1", "--monitoring-config", cfg]
        self.node.start_agent()
        reg = state / "registration.json"
        end = time.monotonic() + 30
        while time.monotonic() < end:
            try:
                got = json.loads(reg.read_text())
                if got.get("instance_id"):
                    self.vars["INSTANCE_ID"] = got["instance_id"]
                    return
            except (OSError, ValueError):
                pass
            if self.node.agent.poll() is not None:
                raise RuntimeError(f"opsloop agent exited; see {self.workdir}/agent.log")
            time.sleep(0.1)
        raise RuntimeError("the agent did not register within 30 s")

    def apply(self) -> None:
        """Everything a user applies with the aws CLI, in order."""
        v = self.vars
        v["APP_PROCESS_NAME"] = Path(f"/proc/{self.node.app.pid}/comm").read_text().strip()
        curl = shutil.which("curl")
        restart = self.endpoint.url + "/services/app/restart"
        v["PROCESS_RESTART_COMMAND"] = (
            f"curl -fsS -X POST {restart}" if curl else
            f"{sys.executable} -c \"import urllib.request as u; u.urlopen(u.Request('{restart}', data=b'', method='POST'))\"")
        v["POWER_CONTROL_URL"] = self.endpoint.url + "/power/reset"
        v["ENGAGE_DELAY_MINUTES"] = str(self.args.engage_delay)
        v["CPU_THRESHOLD"] = str(self.args.cpu_threshold)
        self.aws("ssm-incidents", "create-replication-set", "--cli-input-json", self.render("incidents/replication-set.json"))
        v["CHAT_TOPIC_ARN"] = self.aws("sns", "create-topic", "--name", "opsloop-demo-chat")["TopicArn"]
        self.aws("sns", "subscribe", "--topic-arn", v["CHAT_TOPIC_ARN"], "--protocol", "slack",
                 "--notification-endpoint", self.endpoint.url + "/chat")
        v["ONCALL_CONTACT_ARN"] = self.aws("ssm-contacts", "create-contact", "--cli-input-json",
                                           self.render("contacts/oncall-engineer.json"))["ContactArn"]
        channel = self.aws("ssm-contacts", "create-contact-channel", "--cli-input-json",
                           self.render("contacts/oncall-engineer-sms.json"))["ContactChannelArn"]
        code = self.wait(lambda: self.activation_code(), 20, "SMS activation code at the gateway")
        self.aws("ssm-contacts", "activate-contact-channel", "--contact-channel-id", channel, "--activation-code", code)
        v["ESCALATION_PLAN_ARN"] = self.aws("ssm-contacts", "create-contact", "--cli-input-json",
                                            self.render("contacts/escalation-plan.json"))["ContactArn"]
        self.aws("ssm", "create-document", "--name", "OpsloopDemo-IncidentRunbook", "--document-type", "Automation",
                 "--document-format", "YAML", "--content", f"file://{HERE / 'runbooks' / 'incident-runbook.yaml'}")
        plan = self.aws("ssm-incidents", "create-response-plan", "--cli-input-json", self.render("response-plan.json"))
        # PutMetricAlarm takes the plan as `arn:aws:ssm-incidents::<account>:responseplan/<name>`.
        v["RESPONSE_PLAN_ACTION"] = plan["arn"].replace(":response-plan/", ":responseplan/")
        for name in ("cpu-high", "process-down", "instance-status"):
            self.aws("cloudwatch", "put-metric-alarm", "--cli-input-json", self.render(f"alarms/{name}.json"))

    def activation_code(self) -> str | None:
        got = self.endpoint.find("/sms", '"activation"')
        return json.loads(got[1]).get("activationCode") if got else None

    @staticmethod
    def wait(fn, deadline_s: float, what: str, every: float = 0.1):
        end = time.monotonic() + deadline_s
        while True:
            got = fn()
            if got:
                return got
            if time.monotonic() > end:
                raise StepTimeout(f"{what}: not within {deadline_s:.0f} s")
            time.sleep(every)

    def alarm(self, name: str) -> dict:
        return self.cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]

    def all_ok(self) -> bool:
        got = self.cw.describe_alarms(AlarmNames=list(ALARMS.values()))["MetricAlarms"]
        return len(got) == 3 and all(a["StateValue"] == "OK" for a in got)

    def no_open_incidents(self) -> bool:
        return not self.im.list_incident_records(filters=[
            {"key": "status", "condition": {"equals": {"stringValues": ["OPEN"]}}}])["incidentRecordSummaries"]

    # -- one fault --

    def samples(self, alarm: dict, since: float) -> list[tuple[float, float]]:
        stat = alarm["Statistic"]
        now = datetime.now(timezone.utc)
        out = self.cw.get_metric_data(
            MetricDataQueries=[{"Id": "m", "MetricStat": {"Metric": {
                "Namespace": alarm["Namespace"], "MetricName": alarm["MetricName"],
                "Dimensions": alarm["Dimensions"]}, "Period": 1, "Stat": stat}}],
            StartTime=datetime.fromtimestamp(int(since) - 1, timezone.utc), EndTime=now + timedelta(seconds=2),
            ScanBy="TimestampAscending")["MetricDataResults"][0]
        return [(t.timestamp(), v) for t, v in zip(out["Timestamps"], out["Values"])]

    @staticmethod
    def breaching(alarm: dict, v: float) -> bool:
        th, op = alarm["Threshold"], alarm["ComparisonOperator"]
        return {"GreaterThanThreshold": v > th, "GreaterThanOrEqualToThreshold": v >= th,
                "LessThanThreshold": v < th, "LessThanOrEqualToThreshold": v <= th}[op]

    def transition(self, name: str, state: str, since: float) -> float | None:
        items = self.cw.describe_alarm_history(
            AlarmName=name, HistoryItemType="StateUpdate",
            StartDate=datetime.fromtimestamp(since - 1, timezone.utc), ScanBy="TimestampAscending")["AlarmHistoryItems"]
        for it in items:
            data = json.loads(it["HistoryData"])
            if data.get("newState", {}).get("stateValue") == state and it["Timestamp"].timestamp() >= since - 0.5:
                return it["Timestamp"].timestamp()
        return None

    def inject(self, fault: str) -> float:
        if fault == "cpu":
            t = time.time()
            self.node.app.send_signal(signal.SIGUSR1)
        elif fault == "process":
            t = time.time()
            self.node.stop_app()
        else:
            t = time.time()
            self.node.agent.send_signal(signal.SIGSTOP)
        return t

    def run_fault(self, fault: str, round_no: int) -> dict:
        name = ALARMS[fault]
        alarm = self.alarm(name)
        alarm_arn = alarm["AlarmArn"]
        tl: dict[str, float | None] = {s: None for s in STEPS}
        info: dict[str, object] = {"fault": fault, "round": round_no, "alarm": name}
        t0 = self.inject(fault)
        tl["injected"] = t0
        d = self.args.deadline_scale
        lost = self.args.lost_after if fault == "instance" else 0
        deadlines = {"first_breaching_sample": 15 + lost, "alarm_alarm": 20 + lost, "incident_opened": 25 + lost,
                     "chat_opened": 30 + lost, "runbook_started": 30 + lost, "runbook_finished": 60 + lost,
                     "fix_applied": 60 + lost, "recovered": 70 + lost, "alarm_ok": 90 + lost,
                     "incident_resolved": 95 + lost, "chat_resolved": 100 + lost}
        record: dict | None = None
        operator_stopped = False
        while True:
            now = time.time()
            if tl["first_breaching_sample"] is None:
                for ts, v in self.samples(alarm, t0):
                    if ts >= int(t0) and self.breaching(alarm, v):
                        tl["first_breaching_sample"], info["breaching_value"] = ts, v
                        break
            if tl["alarm_alarm"] is None:
                tl["alarm_alarm"] = self.transition(name, "ALARM", t0)
            if record is None:
                for r in self.im.list_incident_records()["incidentRecordSummaries"]:
                    if r["incidentRecordSource"].get("resourceArn") == alarm_arn and epoch(r["creationTime"]) >= t0 - 1:
                        record = r
                        tl["incident_opened"] = epoch(r["creationTime"])
                        info["incident"] = r["arn"]
                        break
            if record is not None:
                arn = record["arn"]
                if tl["chat_opened"] is None:
                    got = self.endpoint.find("/chat", "Incident opened", arn)
                    tl["chat_opened"] = got[0] if got else None
                rec = self.im.get_incident_record(arn=arn)["incidentRecord"]
                execs = rec.get("automationExecutions") or []
                if execs and tl["runbook_finished"] is None:
                    ex_id = execs[0]["ssmExecutionArn"].rsplit("/", 1)[1]
                    ex = self.ssm.get_automation_execution(AutomationExecutionId=ex_id)["AutomationExecution"]
                    tl["runbook_started"] = epoch(ex.get("ExecutionStartTime"))
                    status = ex["AutomationExecutionStatus"]
                    info["runbook_execution"] = ex_id
                    if status in ("Success", "Failed", "Cancelled", "TimedOut", "CompletedWithSuccess",
                                  "CompletedWithFailure"):
                        tl["runbook_finished"] = epoch(ex.get("ExecutionEndTime")) or now
                        info["runbook_status"] = status
                        info["runbook_steps"] = [s["StepName"] for s in ex.get("StepExecutions", [])
                                                 if s.get("StepStatus") not in (None, "Pending")]
                        for s in ex.get("StepExecutions", []):
                            out = (s.get("Outputs") or {}).get("Output")
                            if out:
                                info["runbook_output"] = out[0]
                if rec["status"] == "RESOLVED" and tl["incident_resolved"] is None:
                    tl["incident_resolved"] = epoch(rec.get("resolvedTime"))
                if tl["incident_resolved"] is not None and tl["chat_resolved"] is None:
                    got = self.endpoint.find("/chat", "Incident resolved", arn)
                    tl["chat_resolved"] = got[0] if got else None
            # The fix: the runbook's (process, instance) or the operator's after the vmstat report (cpu).
            if fault == "cpu" and tl["runbook_finished"] is not None and not operator_stopped:
                self.node.app.send_signal(signal.SIGUSR2)
                operator_stopped = True
                tl["fix_applied"] = time.time()
                info["fix"] = "operator ended the CPU burn after reading the runbook's vmstat output"
            if fault != "cpu" and tl["fix_applied"] is None:
                what = "app started" if fault == "process" else "agent power-cycled"
                hits = [t for t, w in self.node.events if w == what and t >= t0]
                if hits:
                    tl["fix_applied"] = hits[0]
                    info["fix"] = ("runbook restarted the process through the service manager" if fault == "process"
                                   else "runbook power-cycled the node (agent killed and started again)")
            if tl["fix_applied"] is not None and tl["recovered"] is None:
                for ts, v in self.samples(alarm, tl["fix_applied"]):
                    if ts >= int(tl["fix_applied"]) and not self.breaching(alarm, v):
                        tl["recovered"] = ts
                        break
            if tl["recovered"] is not None and tl["alarm_ok"] is None:
                tl["alarm_ok"] = self.transition(name, "OK", tl["alarm_alarm"] or t0)
            if all(tl[s] is not None for s in STEPS):
                break
            late = [s for s, lim in deadlines.items() if tl[s] is None and now - t0 > lim * d]
            if late:
                info["missing"] = late
                break
            time.sleep(self.args.poll)
        if fault == "cpu" and not operator_stopped:
            self.node.app.send_signal(signal.SIGUSR2)
        info["timeline"] = tl
        # Samples are 1-second buckets; the agent took the sample somewhere inside its bucket, and
        # not before the fault (a breaching sample) or the fix (the healthy one). Report the bounds;
        # detect_s and recovery_s are the upper bounds (conservative against the targets).
        o, b, r, fix = tl["incident_opened"], tl["first_breaching_sample"], tl["recovered"], tl["fix_applied"]
        if o is not None and b is not None:
            info["detect_s"] = round(o - max(b, t0), 3)
            info["detect_min_s"] = round(max(0.0, o - (b + 1)), 3)
        else:
            info["detect_s"] = info["detect_min_s"] = None
        if r is not None:
            info["recovery_s"] = round(r + 1 - t0, 3)
            info["recovery_min_s"] = round(max(r, fix or r) - t0, 3)
        else:
            info["recovery_s"] = info["recovery_min_s"] = None
        return info

    # -- reporting --

    def print_timeline(self, info: dict) -> None:
        tl = info["timeline"]
        t0 = tl["injected"]
        log(f"\n== round {info['round']} · fault: {info['fault']} (alarm {info['alarm']}) ==")
        # In time order (steps that did not happen last, in their usual order).
        for s in sorted(STEPS, key=lambda k: (tl[k] is None, tl[k] or 0.0, STEPS.index(k))):
            t = tl[s]
            rel = "      -  " if t is None else f"{t - t0:+8.2f}s"
            extra = ""
            if s == "first_breaching_sample" and "breaching_value" in info:
                extra = f"  value {info['breaching_value']:.1f}"
            if s == "runbook_finished" and "runbook_status" in info:
                extra = f"  {info['runbook_status']} via {' > '.join(info.get('runbook_steps', []))}"
            if s == "fix_applied" and "fix" in info:
                extra = f"  {info['fix']}"
            log(f"  {rel}  {fmt(t)}  {LABELS[s]}{extra}")
        if info.get("runbook_output"):
            first = [ln for ln in str(info["runbook_output"]).splitlines() if ln.strip()][:4]
            log("           runbook output: " + "\n                           ".join(first))
        log(f"  detect (first breaching sample -> incident opened): {info['detect_min_s']} .. {info['detect_s']} s")
        log(f"  recovery / MTTR (fault -> metric healthy again):    {info['recovery_min_s']} .. {info['recovery_s']} s")
        if info.get("missing"):
            log(f"  MISSING within the deadline: {', '.join(info['missing'])}")

    def check_paging(self) -> list[str]:
        """Every incident was resolved before its engage delay: its engagement is skipped, nobody paged."""
        problems = []
        wait_s = self.args.engage_delay * self.args.minute_seconds + 15
        for info in self.results:
            arn = info.get("incident")
            if not arn:
                continue

            def seen(arn=arn):
                for e in self.im.list_timeline_events(incidentRecordArn=arn)["eventSummaries"]:
                    if e["eventType"] == "SSM Contacts Page":
                        data = self.im.get_timeline_event(incidentRecordArn=arn, eventId=e["eventId"])["event"]
                        return json.loads(data["eventData"]).get("message", "")
                return None
            try:
                msg = self.wait(seen, wait_s, f"engagement decision of {arn}", every=0.5)
            except StepTimeout as e:
                problems.append(str(e))
                continue
            info["paging"] = msg
            log(f"  paging of {info['fault']} (round {info['round']}): {msg}")
            if "skipped" not in msg:
                problems.append(f"{arn}: paged although resolved: {msg}")
        return problems

    def summary(self) -> None:
        log("\n== summary (seconds; upper bounds: samples are 1-second buckets) ==")
        log(f"  {'fault':<9} {'detect: sample -> incident':<40} {'recovery (MTTR): fault -> healthy':<40}")
        for fault in FAULTS:
            det = [r["detect_s"] for r in self.results if r["fault"] == fault and r["detect_s"] is not None]
            rec = [r["recovery_s"] for r in self.results if r["fault"] == fault and r["recovery_s"] is not None]

            def line(xs):
                if not xs:
                    return "-"
                return (f"n={len(xs)} min {min(xs):.2f} median {statistics.median(xs):.2f} max {max(xs):.2f}")
            log(f"  {fault:<9} {line(det):<40} {line(rec):<40}")

    def close(self) -> None:
        self.node.shutdown()
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            try:
                self.server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
        self.endpoint.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", type=Path, default=Path(os.environ.get("OPSLOOP_BIN", ROOT / "target" / "debug" / "opsloop")),
                   help="opsloop binary (default: $OPSLOOP_BIN or target/debug/opsloop)")
    p.add_argument("--workdir", help="keep data and logs here (default: a new temporary directory, removed on success)")
    p.add_argument("--rounds", type=int, default=1, help="inject every fault this many times")
    p.add_argument("--faults", default=",".join(FAULTS), help="comma-separated subset of cpu,process,instance")
    p.add_argument("--lost-after", type=float, default=6.0,
                   help="seconds of silence before the server marks the node lost (test-only knob; AWS: minutes)")
    p.add_argument("--engage-delay", type=int, default=1, help="opsloop:engage-delay-minutes of the response plan")
    p.add_argument("--minute-seconds", type=float, default=45.0,
                   help="length of one engage-delay minute (test-only knob OPSLOOP_INCIDENTS_MINUTE_SECONDS)")
    p.add_argument("--check-paging", action="store_true",
                   help="at the end, wait for each incident's engagement decision and require 'skipped'")
    p.add_argument("--cpu-threshold", type=float, default=90.0,
                   help="CPU alarm threshold, percent of one core (the talk: 90; lower it on a saturated machine)")
    p.add_argument("--burn-threads", type=int, default=max(4, 2 * (os.cpu_count() or 1)))
    p.add_argument("--deadline-scale", type=float, default=1.0, help="multiply every step deadline")
    p.add_argument("--poll", type=float, default=0.2, help="seconds between polls")
    p.add_argument("--json", type=Path, help="write every timeline here as JSON")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args()
    if not args.bin.is_file():
        log(f"opsloop binary not found at {args.bin}: run `cargo build -p opsloop` or pass --bin")
        return 2
    faults = [f for f in args.faults.split(",") if f]
    if any(f not in FAULTS for f in faults):
        log(f"--faults takes {','.join(FAULTS)}")
        return 2
    sc = Scenario(args)
    failed = False
    started = time.monotonic()
    try:
        try:
            log(f"work dir {sc.workdir}")
            sc.start_server()
            log(f"server {sc.url} up; starting the node")
            sc.start_node()
            log(f"node {sc.vars['INSTANCE_ID']} registered; applying the example's files with the aws CLI")
            sc.apply()
            log("waiting for the three alarms to be OK")
            sc.wait(sc.all_ok, 60 * args.deadline_scale, "all alarms OK before the first fault", every=0.3)
        except (RuntimeError, StepTimeout, OSError) as e:
            log(f"setup failed: {e}")
            return 2
        for round_no in range(1, args.rounds + 1):
            for fault in faults:
                info = sc.run_fault(fault, round_no)
                sc.results.append(info)
                sc.print_timeline(info)
                if info.get("missing"):
                    failed = True
                    break
                try:
                    sc.wait(lambda: sc.all_ok() and sc.no_open_incidents(), 60 * args.deadline_scale,
                            "all alarms OK and no open incident before the next fault", every=0.3)
                except StepTimeout as e:
                    log(f"  {e}")
                    failed = True
                    break
            if failed:
                break
        if not failed and args.check_paging:
            log("\n== conditional paging ==")
            problems = sc.check_paging()
            for pr in problems:
                log(f"  {pr}")
            failed = bool(problems)
        sc.summary()
        if args.json:
            args.json.write_text(json.dumps({"results": sc.results, "instance": sc.vars.get("INSTANCE_ID"),
                                             "load": os.getloadavg(), "wall_s": time.monotonic() - started},
                                            indent=2, default=str))
    finally:
        sc.close()
    log(f"\n{'FAILED' if failed else 'OK'} in {time.monotonic() - started:.1f} s; logs in {sc.workdir}")
    if not failed and not args.workdir:
        shutil.rmtree(sc.workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

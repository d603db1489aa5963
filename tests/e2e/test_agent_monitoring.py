"""The agent as monitoring agent, end to end: a dedicated server (lost-after knob 3 s), a hybrid
activation, one real `opsloop agent --monitoring-config` collecting cpu, mem and procstat (on a
process this test starts) every second and tailing a log file this test writes; boto3 throughout.

Covers: CWAgent metrics with the node id as InstanceId (ListMetrics, GetMetricData), tailed lines in
the log group, procstat_lookup_pid_count dropping to 0 once the process is killed, the node's own key
publishing a metric but refused DeleteAlarms / GetParameter / GetMetricData (AccessDeniedException),
and the server's StatusCheckFailed_Instance metric (AWS/EC2, InstanceId) driving an alarm to ALARM
after the agent is killed.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import harness


def poll(fn, what: str, deadline_s: float = 30.0, every: float = 0.3):
    """Call fn until it returns a truthy value; fail with `what` after the deadline."""
    end = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < end:
        last = fn()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}; last={last!r}")


def client(srv, name, access_key=harness.ACCESS_KEY, secret_key=harness.SECRET_KEY):
    cfg = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=30)
    return harness.session(None, access_key, secret_key).client(name, endpoint_url=srv.url, config=cfg)


def latest(cw, namespace, name, dims, seconds=120):
    """The most recent 1-second value of a metric (Maximum), or None."""
    now = datetime.now(timezone.utc)
    out = cw.get_metric_data(
        MetricDataQueries=[{"Id": "m", "MetricStat": {
            "Metric": {"Namespace": namespace, "MetricName": name, "Dimensions": dims},
            "Period": 1, "Stat": "Maximum"}}],
        StartTime=now - timedelta(seconds=seconds), EndTime=now + timedelta(seconds=5),
        ScanBy="TimestampDescending")
    r = out["MetricDataResults"][0]
    return r["Values"][0] if r["Values"] else None


@pytest.fixture
def node(make_server, tmp_path):
    srv = make_server(env={"OPSLOOP_TEST_SSM_CONNECTION_LOST_AFTER_S": "3"})
    ssm = client(srv, "ssm")
    act = ssm.create_activation(IamRole="SSMServiceRole", DefaultInstanceName="mon-node")
    marker = f"opsloop-mon-{uuid.uuid4().hex[:8]}"
    # A process the procstat section watches (its command line carries the marker).
    watched = subprocess.Popen([marker, "600"], executable="sleep", stdin=subprocess.DEVNULL)
    logfile = tmp_path / "app.log"
    logfile.write_text("")
    group = f"/opsloop/e2e/{marker}"
    config = {
        "agent": {"metrics_collection_interval": 1},
        "metrics": {
            "append_dimensions": {"InstanceId": "${aws:InstanceId}"},
            "metrics_collected": {
                "cpu": {"measurement": ["cpu_usage_idle", "cpu_usage_user"], "totalcpu": True},
                "mem": {"measurement": ["mem_used_percent"]},
                "procstat": [{"pattern": marker, "measurement": ["pid_count"]}],
            },
        },
        "logs": {"force_flush_interval": 1, "logs_collected": {"files": {"collect_list": [
            {"file_path": str(logfile), "log_group_name": group, "log_stream_name": "{instance_id}"}]}}},
    }
    cfg_path = tmp_path / "cwagent.json"
    cfg_path.write_text(json.dumps(config))
    state = tmp_path / "agent-state"
    log = open(tmp_path / "agent.log", "ab")
    agent = subprocess.Popen(
        [str(harness.binary()), "agent", "--endpoint", srv.url, "--activation-id", act["ActivationId"],
         "--activation-code", act["ActivationCode"], "--region", harness.REGION, "--state-dir", str(state),
         "--heartbeat-seconds", "1", "--monitoring-config", str(cfg_path)],
        env=harness.base_env(), stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    reg_path = state / "registration.json"
    poll(reg_path.exists, "registration")
    reg = poll(lambda: (lambda r: r if r.get("instance_id") else None)(json.loads(reg_path.read_text() or "{}")),
               "registration file")
    yield {"srv": srv, "ssm": ssm, "agent": agent, "watched": watched, "marker": marker, "logfile": logfile,
           "group": group, "reg": reg, "agent_log": tmp_path / "agent.log"}
    for p in (agent, watched):
        if p.poll() is None:
            p.kill()
            p.wait()
    log.close()


def test_monitoring_agent_metrics_logs_and_status_check(node):
    srv, reg = node["srv"], node["reg"]
    mi = reg["instance_id"]
    cw, logs = client(srv, "cloudwatch"), client(srv, "logs")

    # CWAgent metrics with the node id as InstanceId.
    def cwagent_metrics():
        names = {m["MetricName"] for m in cw.list_metrics(
            Namespace="CWAgent", Dimensions=[{"Name": "InstanceId", "Value": mi}])["Metrics"]}
        want = {"cpu_usage_idle", "mem_used_percent", "procstat_lookup_pid_count"}
        return names if want <= names else None

    poll(cwagent_metrics, "CWAgent metrics with InstanceId", deadline_s=40)
    mem = poll(lambda: latest(cw, "CWAgent", "mem_used_percent", [{"Name": "InstanceId", "Value": mi}]),
               "a mem_used_percent value")
    assert 0 < mem <= 100
    pid_metric = [m for m in cw.list_metrics(Namespace="CWAgent", MetricName="procstat_lookup_pid_count")["Metrics"]
                  if {"Name": "InstanceId", "Value": mi} in m["Dimensions"]][0]
    assert {"Name": "pattern", "Value": node["marker"]} in pid_metric["Dimensions"]

    def pids(seconds=120):
        return latest(cw, "CWAgent", "procstat_lookup_pid_count", pid_metric["Dimensions"], seconds)

    assert node["watched"].poll() is None
    assert poll(lambda: pids() == 1, "pid_count 1 while the process runs")

    # Tailed lines arrive in the log group, in the node's stream.
    with open(node["logfile"], "a") as f:
        f.write("first line from the app\nsecond line from the app\n")

    def tailed():
        try:
            ev = logs.get_log_events(logGroupName=node["group"], logStreamName=mi, startFromHead=True)["events"]
        except logs.exceptions.ResourceNotFoundException:
            return None
        msgs = [e["message"] for e in ev]
        return msgs if len(msgs) >= 2 else None

    assert poll(tailed, "tailed lines in the log group", deadline_s=30) == [
        "first line from the app", "second line from the app"]

    # The watched process stops: pid_count drops to 0.
    node["watched"].kill()
    node["watched"].wait()
    poll(lambda: pids(3) == 0,
         "pid_count 0 after the process was killed", deadline_s=30)

    # The node's own key: may publish into the real account, nothing else.
    node_cw = client(srv, "cloudwatch", reg["access_key_id"], reg["secret_access_key"])
    node_cw.put_metric_data(Namespace="NodeKeyTest", MetricData=[{"MetricName": "probe", "Value": 7.0}])
    poll(lambda: cw.list_metrics(Namespace="NodeKeyTest", MetricName="probe")["Metrics"],
         "node-key metric visible to the account owner")
    for call in (lambda: node_cw.delete_alarms(AlarmNames=["x"]),
                 lambda: node_cw.list_metrics(),
                 lambda: client(srv, "ssm", reg["access_key_id"], reg["secret_access_key"]).get_parameter(Name="p"),
                 lambda: client(srv, "logs", reg["access_key_id"], reg["secret_access_key"]).delete_log_group(
                     logGroupName=node["group"])):
        with pytest.raises(ClientError) as e:
            call()
        assert e.value.response["Error"]["Code"] == "AccessDeniedException", e.value.response
    assert logs.describe_log_groups(logGroupNamePrefix=node["group"])["logGroups"], "log group not deleted"

    # Status check: 0 while Online; an alarm on it goes to ALARM once the killed agent is lost.
    status_dims = [{"Name": "InstanceId", "Value": mi}]
    assert poll(lambda: latest(cw, "AWS/EC2", "StatusCheckFailed_Instance", status_dims) == 0,
                "StatusCheckFailed_Instance 0 while Online")
    cw.put_metric_alarm(AlarmName=f"instance-failure-{mi}", Namespace="AWS/EC2",
                        MetricName="StatusCheckFailed_Instance", Dimensions=status_dims, Statistic="Maximum",
                        Period=10, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
                        TreatMissingData="notBreaching")
    node["agent"].send_signal(signal.SIGKILL)
    node["agent"].wait()
    killed = time.monotonic()
    poll(lambda: latest(cw, "AWS/EC2", "StatusCheckFailed", status_dims, seconds=5) == 1,
         "StatusCheckFailed 1 after the agent was killed", deadline_s=30)

    def alarm_state():
        a = cw.describe_alarms(AlarmNames=[f"instance-failure-{mi}"])["MetricAlarms"][0]
        return a if a["StateValue"] == "ALARM" else None

    poll(alarm_state, "instance-failure alarm in ALARM", deadline_s=60)
    print(f"alarm in ALARM {time.monotonic() - killed:.1f} s after the agent was killed")

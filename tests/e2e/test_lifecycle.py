"""The server process: health endpoint, reset endpoint, --ephemeral, graceful shutdown on SIGTERM/SIGINT,
first-start credentials, the data-directory lock, configuration precedence and JSON logs."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import stat
import subprocess
import threading
import time

import botocore.exceptions
import pytest

import harness


def put_and_list(cw, namespace):
    cw.put_metric_data(Namespace=namespace, MetricData=[{"MetricName": "M", "Value": 1}])
    return [m["MetricName"] for m in cw.list_metrics(Namespace=namespace)["Metrics"]]


def test_health_reports_services_and_version(server):
    status, body = server.health()
    assert status == 200
    assert body["status"] == "ok"
    assert body["services"]["CloudWatch"] == {"ready": True}
    version = subprocess.run([str(harness.binary()), "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.split() == ["opsloop", body["version"]]
    assert isinstance(body["uptime_seconds"], (int, float)) and body["uptime_seconds"] >= 0


def test_unknown_admin_route_is_404(server):
    status, body = server.post("/_opsloop/nothing-here")
    assert status == 404 and body["error"]


def test_reset_is_refused_unless_enabled(make_server, namespace):
    srv = make_server()
    cw = harness.client(srv, None)
    assert put_and_list(cw, namespace) == ["M"]
    status, body = srv.post("/_opsloop/reset")
    assert status == 403 and "--enable-reset" in body["error"]
    assert [m["MetricName"] for m in cw.list_metrics(Namespace=namespace)["Metrics"]] == ["M"]


def test_reset_wipes_all_state(make_server, namespace):
    srv = make_server(args=["--enable-reset"])
    cw = harness.client(srv, None)
    assert put_and_list(cw, namespace) == ["M"]
    status, body = srv.post("/_opsloop/reset")
    assert (status, body) == (200, {"status": "reset"})
    assert cw.list_metrics(Namespace=namespace)["Metrics"] == []
    assert put_and_list(cw, namespace) == ["M"], "the server keeps working after a reset"


def test_reset_wipes_alarms_and_topics(make_server, namespace):
    srv = make_server(args=["--enable-reset"])
    cw = harness.client(srv, None)
    sns = harness.session(None).client("sns", endpoint_url=srv.url)
    topic = sns.create_topic(Name="reset-me")["TopicArn"]
    cw.put_metric_alarm(AlarmName="reset-me", Namespace=namespace, MetricName="M", Statistic="Sum",
                        Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold",
                        AlarmActions=[topic])
    assert [a["AlarmName"] for a in cw.describe_alarms()["MetricAlarms"]] == ["reset-me"]
    assert srv.post("/_opsloop/reset")[0] == 200
    assert cw.describe_alarms()["MetricAlarms"] == []
    assert sns.list_topics()["Topics"] == []
    # Both services keep working after the reset.
    assert sns.create_topic(Name="again")["TopicArn"].endswith(":again")
    cw.put_metric_alarm(AlarmName="again", Namespace=namespace, MetricName="M", Statistic="Sum", Period=60,
                        EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
    assert [a["AlarmName"] for a in cw.describe_alarms()["MetricAlarms"]] == ["again"]


def test_ephemeral_uses_a_temp_dir_and_removes_it(make_server, tmp_path, namespace):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    srv = make_server(args=["--ephemeral"], data_dir=False, env={"TMPDIR": str(tmp)})
    dirs = list(tmp.iterdir())
    assert len(dirs) == 1 and dirs[0].name.startswith("opsloop-ephemeral-"), dirs
    assert (dirs[0] / "state.db").exists()
    cw = harness.client(srv, None)
    assert put_and_list(cw, namespace) == ["M"]
    assert srv.post("/_opsloop/reset")[0] == 200, "reset is on by default with --ephemeral"
    assert srv.stop() == 0
    left = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*"))
    assert left == [], f"the ephemeral directory is removed at exit; left: {left}\n{srv.stderr()[-3000:]}"
    assert "written during removal" not in srv.stderr(), "nothing writes into it while it is removed"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_shuts_down_cleanly(make_server, sig):
    srv = make_server()
    sns = harness.session(None).client("sns", endpoint_url=srv.url)
    sns.create_topic(Name="written-before-stop")
    assert (srv.data_dir / "state.db-wal").exists(), "SQLite keeps a WAL while open"
    assert srv.stop(sig) == 0, srv.stderr()
    assert not harness.port_open(srv.port)
    assert "stopped" in srv.stderr()
    # SQLite removes its WAL when the last connection closes cleanly: the store was closed.
    assert not (srv.data_dir / "state.db-wal").exists(), "the control store was not closed"


def test_writes_acknowledged_before_sigterm_survive(make_server, namespace):
    srv = make_server()
    cw = harness.client(srv, None)
    acked = []

    def writer():
        # Keep writing until the server stops answering; every acknowledged write must survive.
        for i in range(5_000):
            try:
                cw.put_metric_data(Namespace=namespace, MetricData=[{"MetricName": "W", "Value": 1}])
            except Exception:  # noqa: BLE001 - the server going away ends the loop
                return
            acked.append(i)

    t = threading.Thread(target=writer)
    t.start()
    deadline = time.monotonic() + 30
    while len(acked) < 20 and t.is_alive() and time.monotonic() < deadline:
        time.sleep(0.005)
    assert len(acked) >= 20, "the writer did not get going"
    assert srv.stop() == 0, srv.stderr()
    t.join(timeout=60)
    assert not t.is_alive()
    srv.start()
    now = dt.datetime.now(dt.timezone.utc)
    resp = cw.get_metric_statistics(Namespace=namespace, MetricName="W", StartTime=now - dt.timedelta(hours=1),
                                    EndTime=now + dt.timedelta(minutes=5), Period=3600, Statistics=["SampleCount"])
    stored = sum(p["SampleCount"] for p in resp["Datapoints"])
    assert stored >= len(acked), f"{len(acked)} writes acknowledged but only {stored} stored"


def test_first_start_generates_and_prints_credentials_once(make_server, tmp_path, namespace):
    srv = make_server(credentials=False)
    out = srv.stdout()
    creds_file = srv.data_dir / "credentials.json"
    keys = json.loads(creds_file.read_text())
    assert stat.S_IMODE(os.stat(creds_file).st_mode) == 0o600
    assert keys["access_key_id"].startswith("AKIA") and len(keys["access_key_id"]) == 20
    assert len(keys["secret_access_key"]) == 40
    assert f"aws configure set aws_access_key_id {keys['access_key_id']}" in out
    assert f"aws configure set aws_secret_access_key {keys['secret_access_key']}" in out
    assert f"AWS_ENDPOINT_URL={srv.url}" in out

    cw = harness.client(srv, None, access_key=keys["access_key_id"], secret_key=keys["secret_access_key"])
    assert put_and_list(cw, namespace) == ["M"]

    assert srv.stop() == 0
    srv.start()
    assert keys["secret_access_key"] not in srv.stdout(), "the secret is printed on first start only"
    assert json.loads(creds_file.read_text()) == keys, "the key pair is kept across restarts"
    assert put_and_list(cw, namespace) == ["M"]

    shown = subprocess.run([str(harness.binary()), "credentials", "--data-dir", str(srv.data_dir)],
                           capture_output=True, text=True, env=harness.base_env(), check=True)
    assert f"aws configure set aws_secret_access_key {keys['secret_access_key']}" in shown.stdout


def test_second_server_on_same_data_dir_is_refused(make_server):
    first = make_server()
    second = make_server(data_dir=first.data_dir, start=False)
    second.start(wait=False)
    assert second.wait_exit() != 0
    assert "in use by another opsloop server" in second.stderr()
    assert first.health()[0] == 200


def test_config_precedence_flag_env_file(make_server, tmp_path):
    p_file, p_env = harness.free_port(), harness.free_port()
    config = tmp_path / "opsloop.toml"
    config.write_text(f'listen = "127.0.0.1:{p_file}"\n')
    # File only (named by --config).
    srv = make_server(name="file", args=["--config", str(config)], listen=False, port=p_file)
    assert srv.stop() == 0
    # Env beats file.
    srv.env["OPSLOOP_LISTEN"] = f"127.0.0.1:{p_env}"
    srv.port = p_env
    srv.start()
    assert not harness.port_open(p_file)
    assert srv.stop() == 0
    # Flag beats env (and the file, named by OPSLOOP_CONFIG this time).
    srv2 = make_server(name="flag", env={"OPSLOOP_LISTEN": f"127.0.0.1:{p_env}", "OPSLOOP_CONFIG": str(config)})
    assert srv2.health()[0] == 200
    assert not harness.port_open(p_env) and not harness.port_open(p_file)


def test_bad_configuration_fails_fast_with_a_message(make_server):
    srv = make_server(env={"OPSLOOP_ACCOUNT_ID": "12345"}, start=False)
    srv.start(wait=False)
    assert srv.wait_exit() != 0
    assert "account_id" in srv.stderr()


def test_json_logs_carry_the_request_span(make_server, namespace):
    # every request logged when the wire crate logs at DEBUG
    srv = make_server(args=["--log-format", "json"], env={"OPSLOOP_LOG": "info,opsloop_wire=debug"})
    cw = harness.client(srv, None)
    put_and_list(cw, namespace)
    assert srv.stop() == 0
    lines = [json.loads(line) for line in srv.stderr().splitlines() if line.strip()]
    assert any(line.get("message") == "listening" for line in lines)
    done = [line for line in lines if line.get("message") == "request completed"]
    assert any(line.get("operation") == "PutMetricData" and line.get("status") == 200 for line in done), done


def test_info_logs_name_failed_requests_only(make_server, namespace):
    # at the default level a client error is logged with its request fields; successes are not
    srv = make_server(args=["--log-format", "json"])
    cw = harness.client(srv, None)
    put_and_list(cw, namespace)
    with pytest.raises(botocore.exceptions.ClientError):
        cw.put_metric_data(Namespace="AWS/Reserved", MetricData=[{"MetricName": "M", "Value": 1}])
    assert srv.stop() == 0
    lines = [json.loads(line) for line in srv.stderr().splitlines() if line.strip()]
    done = [line for line in lines if line.get("message") == "request completed"]
    assert [(d.get("operation"), d.get("status"), d.get("level")) for d in done] == [
        ("PutMetricData", 400, "INFO")
    ], done

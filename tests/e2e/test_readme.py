"""README.md, executed: the first-start banner's `aws configure` lines are pasted into a shell as a user
would (into a private AWS config), then every shell block of the five-minute tour runs verbatim with the
real `aws` CLI — in each CloudWatch protocol — and its output is checked; the boto3 snippet runs too."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

import harness

README = (harness.ROOT / "README.md").read_text()


def tour_blocks() -> list[str]:
    begin = README.index("<!-- tour:begin")
    end = README.index("<!-- tour:end -->")
    return re.findall(r"```sh\n(.*?)```", README[begin:end], flags=re.S)


def python_block() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert len(blocks) == 1
    return blocks[0]


def banner_lines(stdout: str) -> list[str]:
    return [line.strip() for line in stdout.splitlines()
            if line.strip().startswith(("aws configure set", "export AWS_PROFILE="))]


@pytest.fixture
def user_shell(make_server, tmp_path):
    """A fresh server (generating its key pair) and a shell environment configured by pasting its banner."""
    srv = make_server(credentials=False)
    lines = banner_lines(srv.stdout())
    assert len(lines) == 5, srv.stdout()
    env = harness.base_env()
    env["AWS_CONFIG_FILE"] = str(tmp_path / "aws-config")
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "aws-credentials")
    env["PATH"] = harness.aws_env(srv)["PATH"]
    harness.which_aws()
    setup = "\n".join(lines)
    subprocess.run(["bash", "-euo", "pipefail", "-c", setup], env=env, check=True, timeout=120,
                   stdin=subprocess.DEVNULL)
    env["AWS_PROFILE"] = "opsloop"
    return srv, env


def run_block(block: str, env: dict) -> str:
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", block], env=env, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"README block failed:\n{block}\n{proc.stderr}"
    return proc.stdout


def test_banner_matches_readme(make_server):
    srv = make_server(credentials=False)
    keys = json.loads((srv.data_dir / "credentials.json").read_text())
    for line in banner_lines(srv.stdout()):
        shown = (line.replace(keys["access_key_id"], "AKIA...").replace(keys["secret_access_key"], "...")
                 .replace(srv.url, "http://127.0.0.1:4566"))
        assert shown in README, f"README does not show the banner line {shown!r}"


@pytest.mark.parametrize("proto", [None] + harness.PROTOCOLS, ids=["cli-default"] + harness.PROTOCOLS)
def test_tour(user_shell, model_dirs, proto):
    srv, env = user_shell
    if proto is not None:
        env["AWS_DATA_PATH"] = str(model_dirs[proto])
    blocks = tour_blocks()
    assert len(blocks) == 4, "the tour has four shell blocks; update this test with the README"
    reference = ('aws cloudwatch put-metric-data --namespace "MyApp" --metric-name "OrderCount" --value 100 '
                 '--unit "Count" --dimensions "Environment=prod"')
    assert reference in blocks[0]

    put, listing, statistics, math = blocks
    assert run_block(put, env).strip() == ""

    metrics = json.loads(run_block(listing, env))["Metrics"]
    assert metrics == [{"Namespace": "MyApp", "MetricName": "OrderCount",
                        "Dimensions": [{"Name": "Environment", "Value": "prod"}]}]

    points = json.loads(run_block(statistics, env))["Datapoints"]
    assert sum(p["SampleCount"] for p in points) == 2
    assert sum(p["Sum"] for p in points) == 350
    assert max(p["Maximum"] for p in points) == 250
    assert all(p["Unit"] == "Count" for p in points)
    if len(points) == 1:  # as the README shows it (two periods only if the puts straddle an hour)
        assert points[0]["Average"] == 175

    results = {r["Id"]: r for r in json.loads(run_block(math, env))["MetricDataResults"]}
    assert set(results) == {"orders", "doubled"}
    assert sum(results["orders"]["Values"]) == 350
    assert sorted(results["doubled"]["Values"]) == sorted(2 * v for v in results["orders"]["Values"])
    assert results["doubled"]["Label"] == "Orders x2"
    assert results["orders"]["Timestamps"] == results["doubled"]["Timestamps"]


def test_boto3_snippet(user_shell):
    srv, env = user_shell
    proc = subprocess.run([sys.executable, "-c", python_block()], env=env, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "OrderCount [{'Name': 'Environment', 'Value': 'prod'}]"


def test_health_example_shape(server):
    status, body = server.health()
    example = json.loads(re.search(r"# (\{\"status\".*\})", README).group(1))
    assert status == 200
    assert set(body) == set(example)
    assert body["services"] == example["services"]

"""Process harness for the end-to-end suite: start the built `opsloop` binary on a free loopback port,
wait for its health endpoint (with a deadline), make boto3 clients that speak one chosen CloudWatch
protocol, and run the real `aws` CLI against it.

Protocol forcing: botocore uses the first protocol of its own priority list that the model's
`protocols` names. We write a copy of the installed CloudWatch model with `protocol`/`protocols`
narrowed to one protocol into a directory on botocore's data path (AWS_DATA_PATH), which botocore
searches before its bundled models.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import botocore
import botocore.session
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[2]
PROTOCOLS = ["smithy-rpc-v2-cbor", "json", "query"]
ACCESS_KEY = "AKIAOPSLOOPE2ETEST01"
SECRET_KEY = "e2eSecretKey/0123456789abcdefghijklmnopq"
REGION = "us-east-1"
START_DEADLINE_S = 15.0
STOP_DEADLINE_S = 20.0


def binary() -> Path:
    path = Path(os.environ.get("OPSLOOP_BIN", ROOT / "target" / "debug" / "opsloop"))
    if not path.is_file():
        raise RuntimeError(f"opsloop binary not found at {path}; run `cargo build -p opsloop` or set OPSLOOP_BIN")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def base_env() -> dict[str, str]:
    """The environment minus anything that would configure opsloop or the AWS tools from outside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSLOOP_", "AWS_"))}
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    return env


class Server:
    """One `opsloop server` process. Output goes to files in `workdir` (read with `.stdout()` / `.stderr()`)."""

    def __init__(self, workdir: Path, args=(), env=None, data_dir: "Path | None | bool" = None, port: int | None = None,
                 credentials: bool = True, listen: "str | None | bool" = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        # listen=False: pass no --listen flag (the address then comes from env or config file).
        self.listen = f"127.0.0.1:{self.port}" if listen is None else listen
        self.data_dir = data_dir if data_dir is not None else self.workdir / "data"
        self.args = list(args)
        self.env = base_env()
        self.env.setdefault("OPSLOOP_LOG", "info")
        if credentials:
            self.env["OPSLOOP_ACCESS_KEY_ID"] = ACCESS_KEY
            self.env["OPSLOOP_SECRET_ACCESS_KEY"] = SECRET_KEY
        self.env.update(env or {})
        self.proc: subprocess.Popen | None = None
        self.runs = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        cmd = [str(binary()), "server"]
        if self.listen is not False:
            cmd += ["--listen", self.listen]
        if self.data_dir is not False:  # False: pass no --data-dir (e.g. with --ephemeral)
            cmd += ["--data-dir", str(self.data_dir)]
        return cmd + self.args

    def start(self, wait: bool = True) -> "Server":
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("start() on a server that is still running (it would be leaked)")
        self.runs += 1
        self._out = open(self.workdir / f"stdout.{self.runs}.log", "wb")
        self._err = open(self.workdir / f"stderr.{self.runs}.log", "wb")
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(self.command(), env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=self._err)
        if wait:
            self.wait_healthy()
        return self

    def stdout(self) -> str:
        return (self.workdir / f"stdout.{self.runs}.log").read_text(errors="replace")

    def stderr(self) -> str:
        return (self.workdir / f"stderr.{self.runs}.log").read_text(errors="replace")

    def health(self, timeout: float = 2.0) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(self.url + "/_opsloop/health", timeout=timeout) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def wait_healthy(self, deadline_s: float = START_DEADLINE_S) -> float:
        """Poll the health endpoint until it answers 200; returns seconds since spawn."""
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"opsloop exited with {self.proc.returncode} before becoming healthy:\n{self.stderr()}")
            try:
                status, _ = self.health(timeout=0.5)
                if status == 200:
                    return time.monotonic() - self.started_at
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.01)
        raise RuntimeError(f"opsloop not healthy within {deadline_s}s:\n{self.stderr()}")

    def post(self, path: str) -> tuple[int, dict]:
        req = urllib.request.Request(self.url + path, data=b"", method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def wait_exit(self, deadline_s: float = STOP_DEADLINE_S) -> int:
        try:
            return self.proc.wait(timeout=deadline_s)
        finally:
            self._close_files()

    def stop(self, sig: int = signal.SIGTERM, deadline_s: float = STOP_DEADLINE_S) -> int:
        """Send `sig` and wait (with a deadline) for exit; returns the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        return self.wait_exit(deadline_s)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=STOP_DEADLINE_S)
        self._close_files()

    def _close_files(self) -> None:
        for f in (getattr(self, "_out", None), getattr(self, "_err", None)):
            if f is not None and not f.closed:
                f.close()


def _installed_model() -> dict:
    d = Path(botocore.__file__).parent / "data" / "cloudwatch" / "2010-08-01"
    if (d / "service-2.json").exists():
        return json.loads((d / "service-2.json").read_text())
    with gzip.open(d / "service-2.json.gz", "rt") as f:
        return json.load(f)


def write_protocol_models(root: Path) -> dict[str, Path]:
    """One botocore data directory per protocol, each holding the CloudWatch model narrowed to it."""
    model = _installed_model()
    out = {}
    for proto in PROTOCOLS:
        narrowed = json.loads(json.dumps(model))
        narrowed["metadata"]["protocol"] = proto
        narrowed["metadata"]["protocols"] = [proto]
        d = root / proto
        target = d / "cloudwatch" / "2010-08-01"
        target.mkdir(parents=True, exist_ok=True)
        (target / "service-2.json").write_text(json.dumps(narrowed))
        out[proto] = d
    return out


def session(data_path: Path | None, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> boto3.Session:
    bs = botocore.session.Session()
    if data_path is not None:
        bs.set_config_variable("data_path", str(data_path))
    return boto3.Session(botocore_session=bs, aws_access_key_id=access_key,
                         aws_secret_access_key=secret_key, region_name=REGION)


def client(server: Server, data_path: Path | None, protocol: str | None = None, access_key: str = ACCESS_KEY,
           secret_key: str = SECRET_KEY, **config):
    cfg = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=30, **config)
    c = session(data_path, access_key, secret_key).client("cloudwatch", endpoint_url=server.url, config=cfg)
    if protocol is not None:
        assert c.meta.service_model.resolved_protocol == protocol, "protocol override not in effect"
    return c


def aws_env(server: Server, data_path: Path | None = None) -> dict[str, str]:
    env = base_env()
    env.update({
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": server.url,
        "AWS_MAX_ATTEMPTS": "1",
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
    })
    if data_path is not None:
        env["AWS_DATA_PATH"] = str(data_path)
    return env


def aws(server: Server, *args: str, data_path: Path | None = None, check: bool = True):
    """Run `aws <args> --output json` (the awscli installed next to this Python); returns (rc, parsed stdout, stderr)."""
    proc = subprocess.run([sys.executable, "-m", "awscli", *args, "--output", "json"], env=aws_env(server, data_path),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"aws {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    out = json.loads(proc.stdout) if proc.stdout.strip() else None
    return proc.returncode, out, proc.stderr


def which_aws() -> str:
    found = shutil.which("aws", path=str(Path(sys.executable).parent))
    if not found:
        raise RuntimeError("the aws CLI is not installed next to this Python (pip install awscli)")
    return found

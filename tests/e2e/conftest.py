"""Fixtures of the end-to-end suite: a shared server for tests that only need a running endpoint (each
uses its own namespace), a factory for tests that need their own server (lifecycle, durability), the
per-protocol model directories, and boto3 CloudWatch clients parametrized over the three protocols."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import harness  # noqa: E402


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory) -> dict[str, Path]:
    return harness.write_protocol_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One server shared by the whole session (tests isolate themselves by namespace)."""
    srv = harness.Server(tmp_path_factory.mktemp("shared-server"), args=["--enable-reset"])
    srv.start()
    yield srv
    rc = srv.stop()
    assert rc == 0, f"shared server exited with {rc}:\n{srv.stderr()}"


@pytest.fixture
def make_server(tmp_path):
    """Factory for a dedicated server: `make_server(args=[...], env={...}, start=True)`."""
    servers = []

    def make(args=(), env=None, start=True, name=None, **kw):
        workdir = tmp_path / (name or f"server{len(servers)}")
        srv = harness.Server(workdir, args=args, env=env, **kw)
        servers.append(srv)
        if start:
            srv.start()
        return srv

    yield make
    for srv in servers:
        srv.kill()


@pytest.fixture(params=harness.PROTOCOLS)
def protocol(request) -> str:
    return request.param


@pytest.fixture
def cw(server, model_dirs, protocol):
    """A CloudWatch client on the shared server speaking `protocol`."""
    return harness.client(server, model_dirs[protocol], protocol)


@pytest.fixture
def make_client(model_dirs, protocol):
    """`make_client(server, **boto_config)`: a client speaking `protocol` against any server."""

    def make(srv, access_key=harness.ACCESS_KEY, secret_key=harness.SECRET_KEY, **config):
        return harness.client(srv, model_dirs[protocol], protocol, access_key, secret_key, **config)

    return make


@pytest.fixture
def namespace(request) -> str:
    """A namespace no other test uses."""
    return f"E2E/{request.node.originalname}/{uuid.uuid4().hex[:8]}"

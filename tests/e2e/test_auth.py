"""SigV4 authentication as AWS answers it: a wrong secret is SignatureDoesNotMatch, an unknown access key
is InvalidClientTokenId, an unsigned request is MissingAuthenticationToken — in every protocol; and
`--auth any-key` accepts any key (on loopback only)."""

from __future__ import annotations

import botocore
import pytest
from botocore.exceptions import ClientError

import harness


def error_of(call) -> dict:
    with pytest.raises(ClientError) as e:
        call()
    return e.value.response


def put(cw, namespace):
    return lambda: cw.put_metric_data(Namespace=namespace, MetricData=[{"MetricName": "M", "Value": 1}])


def test_wrong_secret_is_signature_mismatch(server, make_client, namespace):
    cw = make_client(server, secret_key="not-the-secret-" + "x" * 25)
    err = error_of(put(cw, namespace))
    assert err["Error"]["Code"] == "SignatureDoesNotMatch", err
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_unknown_key_is_invalid_client_token(server, make_client, namespace):
    cw = make_client(server, access_key="AKIAUNKNOWNKEY000000")
    err = error_of(put(cw, namespace))
    assert err["Error"]["Code"] == "InvalidClientTokenId", err
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_unsigned_request_is_missing_token(server, make_client, namespace):
    cw = make_client(server, signature_version=botocore.UNSIGNED)
    err = error_of(put(cw, namespace))
    assert err["Error"]["Code"] == "MissingAuthenticationToken", err
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_rejected_requests_write_nothing(server, make_client, cw, namespace):
    bad = make_client(server, secret_key="wrong" * 8)
    error_of(put(bad, namespace))
    assert cw.list_metrics(Namespace=namespace)["Metrics"] == []


def test_any_key_accepts_any_key_pair(make_server, make_client, namespace):
    srv = make_server(args=["--auth", "any-key"], credentials=False)
    cw = make_client(srv, access_key="AKIAANYTHINGGOES0000", secret_key="whatever")
    put(cw, namespace)()
    other = make_client(srv, access_key="AKIASOMETHINGELSE000", secret_key="different")
    names = [m["MetricName"] for m in other.list_metrics(Namespace=namespace)["Metrics"]]
    assert names == ["M"], "every key maps to the same account"


def test_any_key_refused_off_loopback(make_server):
    port = harness.free_port()
    srv = make_server(args=["--auth", "any-key"], listen=f"0.0.0.0:{port}", port=port, start=False)
    srv.start(wait=False)
    rc = srv.wait_exit()
    assert rc != 0
    err = srv.stderr()
    assert "any-key" in err and "loopback" in err, err
    assert not harness.port_open(port)

"""Helpers for the SNS end-to-end tests: a loopback webhook receiver (HTTP, or HTTPS with a CA made
here with `cryptography`), a tiny stdlib SMTP sink, SNS message-signature verification exactly as
AWS documents validators should do it (certificate fetched from SigningCertURL), an SNS boto3 client
and polling with deadlines.
"""

from __future__ import annotations

import base64
import datetime
import email
import email.policy
import ipaddress
import json
import queue
import socketserver
import ssl
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from botocore.config import Config
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.x509.oid import NameOID

import harness

DEADLINE_S = 20.0


def wait_for(cond, deadline_s: float = DEADLINE_S, what: str = "condition"):
    """Poll `cond()` until it returns something truthy; returns it. Fails after the deadline."""
    end = time.monotonic() + deadline_s
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > end:
            raise AssertionError(f"{what} not met within {deadline_s}s")
        time.sleep(0.02)


def sns_client(server: harness.Server):
    cfg = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=30)
    return harness.session(None).client("sns", endpoint_url=server.url, config=cfg)


# --- webhook receiver ---------------------------------------------------------------------------

class Request:
    def __init__(self, path: str, headers: dict[str, str], body: bytes):
        self.path = path
        self.headers = headers
        self.body = body

    @property
    def type(self) -> str:
        return self.headers.get("x-amz-sns-message-type", "")

    def json(self) -> dict:
        return json.loads(self.body)


class Receiver:
    """A threaded HTTP(S) server on 127.0.0.1 recording POSTs; answers scripted statuses, then 200."""

    def __init__(self, tls: "LoopbackCA | None" = None):
        self.requests: list[Request] = []
        self.statuses: "queue.Queue[int]" = queue.Queue()
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server naming)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                try:
                    status = outer.statuses.get_nowait()
                except queue.Empty:
                    status = 200
                with outer.lock:
                    outer.requests.append(Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        scheme = "http"
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls.leaf_cert_file, tls.leaf_key_file)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def script(self, *statuses: int) -> None:
        for s in statuses:
            self.statuses.put(s)

    def all(self) -> list[Request]:
        with self.lock:
            return list(self.requests)

    def of_type(self, kind: str) -> list[Request]:
        return [r for r in self.all() if r.type == kind]

    def wait_type(self, kind: str, count: int = 1) -> list[Request]:
        return wait_for(lambda: (lambda got: got if len(got) >= count else None)(self.of_type(kind)),
                        what=f"{count} {kind} request(s) at {self.url}")

    def wait_count(self, count: int) -> list[Request]:
        return wait_for(lambda: (lambda got: got if len(got) >= count else None)(self.all()),
                        what=f"{count} request(s) at {self.url}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class LoopbackCA:
    """A CA and a leaf certificate for 127.0.0.1, written as PEM files into `directory`."""

    def __init__(self, directory: Path):
        now = datetime.datetime.now(datetime.timezone.utc)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "opsloop e2e test CA")])
        ca_cert = (
            x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        leaf_cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        directory.mkdir(parents=True, exist_ok=True)
        self.ca_file = directory / "ca.pem"
        self.leaf_cert_file = directory / "leaf.pem"
        self.leaf_key_file = directory / "leaf.key"
        self.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        self.leaf_cert_file.write_bytes(leaf_cert.public_bytes(serialization.Encoding.PEM))
        self.leaf_key_file.write_bytes(leaf_key.private_bytes(serialization.Encoding.PEM,
                                                              serialization.PrivateFormat.PKCS8,
                                                              serialization.NoEncryption()))


# --- signature verification ---------------------------------------------------------------------

NOTIFICATION_FIELDS = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
CONFIRMATION_FIELDS = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]


def string_to_sign(doc: dict) -> str:
    """AWS's documented string to sign: `name\\nvalue\\n` for the type's fields, in byte order,
    skipping Subject when the notification has none."""
    fields = NOTIFICATION_FIELDS if doc["Type"] == "Notification" else CONFIRMATION_FIELDS
    out = []
    for name in fields:
        if name in doc:
            out.append(f"{name}\n{doc[name]}\n")
    return "".join(out)


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def verify_signature(doc: dict) -> None:
    """Verify `doc` against the certificate at its SigningCertURL (raises on a bad signature)."""
    status, pem = fetch(doc["SigningCertURL"])
    assert status == 200, f"SigningCertURL answered {status}"
    assert doc["SigningCertURL"].endswith(".pem")
    cert = x509.load_pem_x509_certificate(pem)
    algorithm = {"1": hashes.SHA1(), "2": hashes.SHA256()}[doc["SignatureVersion"]]
    cert.public_key().verify(base64.b64decode(doc["Signature"]), string_to_sign(doc).encode("utf-8"),
                             padding.PKCS1v15(), algorithm)


# --- SMTP sink ----------------------------------------------------------------------------------

class Mail:
    def __init__(self, mail_from: str, rcpt_to: list[str], data: bytes):
        self.mail_from = mail_from
        self.rcpt_to = rcpt_to
        self.message = email.message_from_bytes(data, policy=email.policy.default)

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def body(self) -> str:
        return self.message.get_content()


class SmtpSink:
    """A minimal threaded SMTP server on 127.0.0.1 that accepts every mail."""

    def __init__(self):
        self.mails: list[Mail] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write((line + "\r\n").encode())

            def handle(self):
                self.reply("220 e2e-sink ESMTP")
                mail_from, rcpt = "", []
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    cmd = line.decode("utf-8", "replace").rstrip("\r\n")
                    upper = cmd.upper()
                    if upper.startswith("EHLO") or upper.startswith("HELO"):
                        self.wfile.write(b"250-e2e-sink\r\n250 8BITMIME\r\n")
                    elif upper.startswith("MAIL FROM:"):
                        mail_from = cmd[10:].strip().strip("<>")
                        self.reply("250 ok")
                    elif upper.startswith("RCPT TO:"):
                        rcpt.append(cmd[8:].strip().strip("<>"))
                        self.reply("250 ok")
                    elif upper == "DATA":
                        self.reply("354 end with .")
                        data = b""
                        while True:
                            chunk = self.rfile.readline()
                            if not chunk or chunk == b".\r\n":
                                break
                            data += chunk[1:] if chunk.startswith(b".") else chunk
                        with outer.lock:
                            outer.mails.append(Mail(mail_from, rcpt, data))
                        mail_from, rcpt = "", []
                        self.reply("250 queued")
                    elif upper == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("250 ok")

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"smtp://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def all(self) -> list[Mail]:
        with self.lock:
            return list(self.mails)

    def wait_count(self, count: int) -> list[Mail]:
        return wait_for(lambda: (lambda got: got if len(got) >= count else None)(self.all()),
                        what=f"{count} mail(s)")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

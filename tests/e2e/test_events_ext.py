"""EventBridge connections, API destinations, archives and replays end to end with boto3: a webhook
receiver and an OAuth token endpoint started here on loopback check that API-key, basic and OAuth
credentials arrive, that the invocation rate limit holds, that archives count what they keep and that
a replay delivers the archived events again."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import harness
from sns_support import wait_for


def events_client(server):
    cfg = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=30)
    return harness.session(None).client("events", endpoint_url=server.url, config=cfg)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Hit:
    def __init__(self, method, path, headers, body):
        self.method, self.path, self.headers, self.body = method, path, headers, body
        self.at = time.monotonic()

    def json(self):
        return json.loads(self.body)


class Endpoint:
    """A loopback HTTP server recording every request; answers 200 with `answer` (JSON) unless a
    scripted status is queued."""

    def __init__(self, answer: dict | None = None):
        self.hits: list[Hit] = []
        self.statuses: list[int] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                with outer.lock:
                    outer.hits.append(Hit(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    status = outer.statuses.pop(0) if outer.statuses else 200
                payload = json.dumps(answer or {}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_POST = do_PUT = do_GET = do_PATCH = do_DELETE = _any

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def all(self) -> list[Hit]:
        with self.lock:
            return list(self.hits)

    def wait_count(self, n: int, deadline_s: float = 20.0) -> list[Hit]:
        return wait_for(lambda: (lambda got: got if len(got) >= n else None)(self.all()), deadline_s,
                        what=f"{n} request(s) at {self.base}")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint():
    made = []

    def make(answer=None):
        e = Endpoint(answer)
        made.append(e)
        return e

    yield make
    for e in made:
        e.close()


def api_key_auth(value="k3y-value"):
    return {"ApiKeyAuthParameters": {"ApiKeyName": "x-api-key", "ApiKeyValue": value}}


def routed_bus(eb, arn: str, http_parameters: dict | None = None, pattern: dict | None = None):
    """A custom bus with one rule whose target is `arn`; returns the bus name."""
    bus = unique("ext-bus")
    eb.create_event_bus(Name=bus)
    rule = unique("rule")
    eb.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps(pattern or {"source": ["e2e.ext"]}))
    target = {"Id": "t1", "Arn": arn, "RetryPolicy": {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 3600}}
    if http_parameters:
        target["HttpParameters"] = http_parameters
    out = eb.put_targets(Rule=rule, EventBusName=bus, Targets=[target])
    assert out["FailedEntryCount"] == 0, out
    return bus


def put(eb, bus: str, n: int = 1, detail: dict | None = None):
    for i in range(n):
        out = eb.put_events(Entries=[{"Source": "e2e.ext", "DetailType": "ext test", "EventBusName": bus,
                                      "Detail": json.dumps(detail or {"i": i})}])
        assert out["FailedEntryCount"] == 0, out


def test_connection_lifecycle_hides_secrets(server):
    eb = events_client(server)
    name = unique("conn")
    created = eb.create_connection(Name=name, AuthorizationType="API_KEY", AuthParameters={
        **api_key_auth("very-secret-key"),
        "InvocationHttpParameters": {"HeaderParameters": [
            {"Key": "x-hidden", "Value": "hidden-header-value", "IsValueSecret": True},
            {"Key": "x-open", "Value": "open-value", "IsValueSecret": False}]}})
    assert created["ConnectionState"] == "AUTHORIZED"
    assert created["ConnectionArn"].startswith(f"arn:aws:events:{harness.REGION}:")
    with pytest.raises(ClientError) as e:
        eb.create_connection(Name=name, AuthorizationType="API_KEY", AuthParameters=api_key_auth())
    assert e.value.response["Error"]["Code"] == "ResourceAlreadyExistsException"

    d = eb.describe_connection(Name=name)
    text = json.dumps(d, default=str)
    assert "very-secret-key" not in text and "hidden-header-value" not in text
    assert "open-value" in text
    assert d["SecretArn"].startswith("arn:aws:secretsmanager:")
    assert d["AuthParameters"]["ApiKeyAuthParameters"] == {"ApiKeyName": "x-api-key"}
    listed = eb.list_connections(NamePrefix=name)["Connections"]
    assert [c["Name"] for c in listed] == [name]
    assert "very-secret-key" not in json.dumps(listed, default=str)

    assert eb.deauthorize_connection(Name=name)["ConnectionState"] == "DEAUTHORIZING"
    assert eb.describe_connection(Name=name)["ConnectionState"] == "DEAUTHORIZED"
    eb.update_connection(Name=name, AuthParameters=api_key_auth("another"))
    assert eb.describe_connection(Name=name)["ConnectionState"] == "AUTHORIZED"
    with pytest.raises(ClientError) as e:
        eb.create_connection(Name=unique("bad"), AuthorizationType="BASIC", AuthParameters=api_key_auth())
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert eb.delete_connection(Name=name)["ConnectionState"] == "DELETING"
    with pytest.raises(ClientError) as e:
        eb.describe_connection(Name=name)
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_list_pagination(server):
    eb = events_client(server)
    prefix = unique("page")
    for i in range(5):
        eb.create_connection(Name=f"{prefix}-{i}", AuthorizationType="API_KEY", AuthParameters=api_key_auth())
    seen, token = [], None
    while True:
        kw = {"NamePrefix": prefix, "Limit": 2}
        if token:
            kw["NextToken"] = token
        page = eb.list_connections(**kw)
        seen += [c["Name"] for c in page["Connections"]]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == [f"{prefix}-{i}" for i in range(5)]


def test_api_key_and_basic_credentials_reach_the_endpoint(server, endpoint):
    eb = events_client(server)
    hook = endpoint()
    key_conn = eb.create_connection(Name=unique("key"), AuthorizationType="API_KEY", AuthParameters={
        **api_key_auth("the-api-key"),
        "InvocationHttpParameters": {"QueryStringParameters": [{"Key": "tenant", "Value": "t1"}]}})
    with pytest.raises(ClientError) as e:
        eb.create_api_destination(Name=unique("d"), ConnectionArn=key_conn["ConnectionArn"] + "x",
                                  InvocationEndpoint=hook.base, HttpMethod="POST")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    dest = eb.create_api_destination(Name=unique("d"), ConnectionArn=key_conn["ConnectionArn"],
                                     InvocationEndpoint=f"{hook.base}/orders/*", HttpMethod="POST")
    bus = routed_bus(eb, dest["ApiDestinationArn"], {"PathParameterValues": ["o-17"],
                                                     "HeaderParameters": {"x-from-target": "yes"}})
    put(eb, bus, detail={"order": 17})
    got = hook.wait_count(1)[0]
    assert got.method == "POST"
    url = urlsplit(got.path)
    assert url.path == "/orders/o-17"
    assert parse_qs(url.query) == {"tenant": ["t1"]}
    assert got.headers["x-api-key"] == "the-api-key"
    assert got.headers["x-from-target"] == "yes"
    assert got.json()["detail"] == {"order": 17}

    basic_hook = endpoint()
    basic = eb.create_connection(Name=unique("basic"), AuthorizationType="BASIC",
                                 AuthParameters={"BasicAuthParameters": {"Username": "ops", "Password": "pa55"}})
    dest = eb.create_api_destination(Name=unique("d"), ConnectionArn=basic["ConnectionArn"],
                                     InvocationEndpoint=basic_hook.base + "/b", HttpMethod="PUT")
    put(eb, routed_bus(eb, dest["ApiDestinationArn"]))
    got = basic_hook.wait_count(1)[0]
    assert got.method == "PUT"
    assert got.headers["authorization"] == "Basic " + base64.b64encode(b"ops:pa55").decode()


def test_oauth_client_credentials(server, endpoint):
    eb = events_client(server)
    tokens = endpoint({"access_token": "e2e-token", "expires_in": 3600, "token_type": "Bearer"})
    hook = endpoint()
    conn = eb.create_connection(Name=unique("oauth"), AuthorizationType="OAUTH_CLIENT_CREDENTIALS", AuthParameters={
        "OAuthParameters": {"AuthorizationEndpoint": f"{tokens.base}/oauth2/token", "HttpMethod": "POST",
                            "ClientParameters": {"ClientID": "client-1", "ClientSecret": "client-secret-1"},
                            "OAuthHttpParameters": {"BodyParameters": [{"Key": "scope", "Value": "events"}]}}})
    assert conn["ConnectionState"] == "AUTHORIZING"
    name = conn["ConnectionArn"].split("/")[1]
    wait_for(lambda: eb.describe_connection(Name=name)["ConnectionState"] == "AUTHORIZED", what="AUTHORIZED")
    assert "client-secret-1" not in json.dumps(eb.describe_connection(Name=name), default=str)
    token_request = tokens.all()[0]
    assert token_request.headers["authorization"] == "Basic " + base64.b64encode(b"client-1:client-secret-1").decode()
    assert parse_qs(token_request.body) == {"grant_type": ["client_credentials"], "scope": ["events"]}

    dest = eb.create_api_destination(Name=unique("d"), ConnectionArn=conn["ConnectionArn"],
                                     InvocationEndpoint=hook.base + "/o", HttpMethod="POST")
    hook.statuses.append(401)  # the first delivery is refused: the token is fetched again, the retry delivers
    put(eb, routed_bus(eb, dest["ApiDestinationArn"]))
    hits = hook.wait_count(2, deadline_s=60)
    assert all(h.headers["authorization"] == "Bearer e2e-token" for h in hits)
    assert len(tokens.all()) >= 2


def test_invocation_rate_limit(server, endpoint):
    eb = events_client(server)
    hook = endpoint()
    conn = eb.create_connection(Name=unique("rl"), AuthorizationType="API_KEY", AuthParameters=api_key_auth())
    dest = eb.create_api_destination(Name=unique("d"), ConnectionArn=conn["ConnectionArn"],
                                     InvocationEndpoint=hook.base, HttpMethod="POST", InvocationRateLimitPerSecond=1)
    assert eb.describe_api_destination(Name=dest["ApiDestinationArn"].split("/")[1])["InvocationRateLimitPerSecond"] == 1
    put(eb, routed_bus(eb, dest["ApiDestinationArn"]), n=4)
    hits = hook.wait_count(4, deadline_s=120)
    times = sorted(h.at for h in hits)
    # A bucket of one token refilled at 1/s: never more than two deliveries within one second.
    for i in range(len(times) - 2):
        assert times[i + 2] - times[i] >= 1.0, times
    assert times[-1] - times[0] >= 2.0, times


def test_archive_counts_and_replay_delivers_again(server, endpoint):
    eb = events_client(server)
    hook = endpoint()
    conn = eb.create_connection(Name=unique("ar"), AuthorizationType="API_KEY", AuthParameters=api_key_auth())
    dest = eb.create_api_destination(Name=unique("d"), ConnectionArn=conn["ConnectionArn"],
                                     InvocationEndpoint=hook.base, HttpMethod="POST")
    bus = routed_bus(eb, dest["ApiDestinationArn"])
    bus_arn = eb.describe_event_bus(Name=bus)["Arn"]
    archive = unique("arch")
    with pytest.raises(ClientError) as e:
        eb.create_archive(ArchiveName=archive, EventSourceArn=bus_arn.replace(bus, unique("nobus")))
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    created = eb.create_archive(ArchiveName=archive, EventSourceArn=bus_arn, RetentionDays=7,
                                EventPattern=json.dumps({"source": ["e2e.ext"]}))
    assert created["State"] == "ENABLED"
    start = time.time() - 5
    put(eb, bus, n=3)
    eb.put_events(Entries=[{"Source": "other.source", "DetailType": "x", "EventBusName": bus, "Detail": "{}"}])
    hook.wait_count(3)
    d = wait_for(lambda: (lambda d: d if d["EventCount"] == 3 else None)(eb.describe_archive(ArchiveName=archive)),
                 what="3 archived events")
    assert d["SizeBytes"] > 0 and d["RetentionDays"] == 7
    assert [a["ArchiveName"] for a in eb.list_archives(EventSourceArn=bus_arn)["Archives"]] == [archive]

    replay = unique("replay")
    with pytest.raises(ClientError) as e:
        eb.start_replay(ReplayName=replay, EventSourceArn=created["ArchiveArn"], EventStartTime=start,
                        EventEndTime=start - 1, Destination={"Arn": bus_arn})
    assert e.value.response["Error"]["Code"] == "ValidationException"
    started = eb.start_replay(ReplayName=replay, EventSourceArn=created["ArchiveArn"], EventStartTime=start,
                              EventEndTime=time.time() + 1, Destination={"Arn": bus_arn})
    assert started["State"] == "STARTING"
    done = wait_for(lambda: (lambda r: r if r["State"] in ("COMPLETED", "FAILED") else None)(
        eb.describe_replay(ReplayName=replay)), what="replay finished")
    assert done["State"] == "COMPLETED", done
    assert "EventLastReplayedTime" in done
    replayed = wait_for(lambda: (lambda got: got if len(got) >= 3 else None)(
        [h.json() for h in hook.all() if h.json().get("replay-name") == replay]), what="3 replayed")
    assert sorted(r["detail"]["i"] for r in replayed) == [0, 1, 2]
    assert len(hook.all()) == 6, [h.body for h in hook.all()]
    assert [r["ReplayName"] for r in eb.list_replays(NamePrefix=replay)["Replays"]] == [replay]
    with pytest.raises(ClientError) as e:
        eb.cancel_replay(ReplayName=replay)
    assert e.value.response["Error"]["Code"] == "IllegalStatusException"
    eb.delete_archive(ArchiveName=archive)
    with pytest.raises(ClientError) as e:
        eb.describe_archive(ArchiveName=archive)
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_connections_archives_and_replays_survive_a_restart(make_server, endpoint):
    srv = make_server()
    eb = events_client(srv)
    hook = endpoint()
    conn = eb.create_connection(Name="kept", AuthorizationType="API_KEY", AuthParameters=api_key_auth("kept-key"))
    dest = eb.create_api_destination(Name="kept", ConnectionArn=conn["ConnectionArn"],
                                     InvocationEndpoint=hook.base, HttpMethod="POST")
    bus = routed_bus(eb, dest["ApiDestinationArn"])
    bus_arn = eb.describe_event_bus(Name=bus)["Arn"]
    archive = eb.create_archive(ArchiveName="kept", EventSourceArn=bus_arn)
    start = time.time() - 5
    put(eb, bus, n=2)
    hook.wait_count(2)
    wait_for(lambda: eb.describe_archive(ArchiveName="kept")["EventCount"] == 2, what="2 archived")

    srv.kill()
    srv.start()
    eb = events_client(srv)
    assert eb.describe_connection(Name="kept")["ConnectionState"] == "AUTHORIZED"
    assert eb.describe_archive(ArchiveName="kept")["EventCount"] == 2
    # The sealed secret opens after the restart: the key still reaches the endpoint.
    put(eb, bus, n=1, detail={"i": 9})
    # (Deliveries in flight at the kill may arrive twice: delivery is at-least-once.)
    after = wait_for(lambda: [h for h in hook.all() if h.json()["detail"]["i"] == 9], what="post-restart delivery")
    assert after[0].headers["x-api-key"] == "kept-key"
    wait_for(lambda: eb.describe_archive(ArchiveName="kept")["EventCount"] == 3, what="3 archived")
    eb.start_replay(ReplayName="after-restart", EventSourceArn=archive["ArchiveArn"], EventStartTime=start,
                    EventEndTime=time.time() + 1, Destination={"Arn": bus_arn})
    done = wait_for(lambda: (lambda r: r if r["State"] in ("COMPLETED", "FAILED") else None)(
        eb.describe_replay(ReplayName="after-restart")), what="replay finished")
    assert done["State"] == "COMPLETED", done
    replayed = wait_for(lambda: (lambda got: got if len(got) >= 3 else None)(
        [h.json() for h in hook.all() if h.json().get("replay-name") == "after-restart"]), what="3 replayed")
    assert sorted(r["detail"]["i"] for r in replayed) == [0, 1, 9]


def test_oauth_refusal_deauthorizes_and_update_reauthorizes(server, endpoint):
    eb = events_client(server)
    refusing = endpoint()
    refusing.statuses.append(400)
    accepting = endpoint({"access_token": "second", "expires_in": 600})
    name = unique("oauth-refused")
    eb.create_connection(Name=name, AuthorizationType="OAUTH_CLIENT_CREDENTIALS", AuthParameters={
        "OAuthParameters": {"AuthorizationEndpoint": refusing.base + "/token", "HttpMethod": "POST",
                            "ClientParameters": {"ClientID": "c", "ClientSecret": "s"}}})
    d = wait_for(lambda: (lambda d: d if d["ConnectionState"] == "DEAUTHORIZED" else None)(
        eb.describe_connection(Name=name)), what="DEAUTHORIZED")
    assert "400" in d["StateReason"]
    eb.update_connection(Name=name, AuthParameters={"OAuthParameters": {"AuthorizationEndpoint": accepting.base + "/t"}})
    wait_for(lambda: eb.describe_connection(Name=name)["ConnectionState"] == "AUTHORIZED", what="AUTHORIZED")
    assert len(accepting.all()) == 1

"""Webhooks: registry events POSTed to a receiver on loopback, signed as Standard Webhooks
(checked with its reference library), in order, retried, by exactly one process."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpcore
import neo4j
import pytest
from standardwebhooks.webhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError

from lineagehub.graph import webhooks
from lineagehub.settings import DEFAULT_DENIED_NETWORKS
from tests.api.test_approvals_aliases import APPROVE, register
from tests.conftest import Client, ThreadedServer

CREATE = """mutation($input: WebhookInput!) { createWebhook(input: $input) {
  secret webhook { id name url types model active deliveredSeq failures } } }"""
STATUS = """{ webhooks { id name deliveredSeq delivered failures lastStatus lastError
  lastAttemptAt lastSuccessAt nextAttemptAt active } }"""
UPDATE = """mutation($id: ID!, $input: WebhookChanges!) { updateWebhook(id: $id, input: $input) {
  active deliveredSeq failures types } }"""


@dataclass
class Delivery:
    body: bytes
    headers: dict[str, str]

    @property
    def event(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)["data"]
        return data


@dataclass
class Receiver:
    """An HTTP endpoint on loopback that records what it is sent and answers with the
    statuses it is told to (then 204)."""

    statuses: list[int] = field(default_factory=list)
    got: list[Delivery] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)
    url: str = ""

    def wait_for(self, count: int, timeout: float = 20) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while len(self.got) < count:
            assert time.monotonic() < deadline, f"got {len(self.got)} deliveries, not {count}"
            time.sleep(0.05)
        return self.got


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            with lock:
                status = made.statuses.pop(0) if made.statuses else 204
                made.got.append(Delivery(body, {k.lower(): v for k, v in self.headers.items()}))
                made.answered.append(status)
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    made.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield made
    server.shutdown()
    server.server_close()


@pytest.fixture
def root(as_role: Any) -> Client:
    client: Client = as_role("admin", name="root")
    return client


def create(client: Client, url: str, **fields: Any) -> tuple[str, str]:
    made = client(CREATE, {"input": {"name": "ci", "url": url, **fields}})["createWebhook"]
    return made["webhook"]["id"], made["secret"]


def status(client: Client) -> dict[str, Any]:
    found: dict[str, Any] = client(STATUS)["webhooks"][0]
    return found


def eventually(check: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_events_arrive_signed_in_order(root: Client, receiver: Receiver) -> None:
    webhook_id, secret = create(root, receiver.url)
    assert secret.startswith("whsec_")
    v1 = register(root, "v1", author="ana")
    root(APPROVE, {"v": v1})
    got = receiver.wait_for(3)
    verifier = Verifier(secret)
    bodies = [verifier.verify(d.body, d.headers) for d in got]  # raises on a bad signature
    assert [b["type"] for b in bodies] == [
        "MODEL_REGISTERED",
        "VERSION_REGISTERED",
        "VERSION_APPROVED",
    ]
    approved = bodies[2]["data"]
    assert (approved["modelName"], approved["versionName"], approved["toState"]) == (
        "churn-predictor",
        "v1",
        "APPROVED",
    )
    assert [d.headers["webhook-id"] for d in got] == [b["data"]["id"] for b in bodies]
    assert [b["data"]["seq"] for b in bodies] == [1, 2, 3]
    assert got[0].headers["content-type"] == "application/json"
    assert got[0].headers["user-agent"].startswith("lineagehub-webhooks/")
    # A tampered body, or another secret, does not verify.
    with pytest.raises(WebhookVerificationError):
        verifier.verify(got[0].body.replace(b"churn", b"churm"), got[0].headers)
    with pytest.raises(WebhookVerificationError):
        Verifier(webhooks.new_secret()).verify(got[0].body, got[0].headers)
    eventually(lambda: status(root)["delivered"] == 3)
    now = status(root)
    assert (now["id"], now["deliveredSeq"], now["failures"], now["lastStatus"]) == (
        webhook_id,
        3,
        0,
        204,
    )
    assert now["lastSuccessAt"] is not None and now["nextAttemptAt"] is None


def test_filters_and_the_cursor_skipping_unwanted_events(root: Client, receiver: Receiver) -> None:
    create(root, receiver.url, types=["VERSION_APPROVED"], model="churn-predictor")
    v1 = register(root, "v1", author="ana")
    other = root(
        "mutation($i: RegisterModelInput!) { registerModel(input: $i) { version { id } } }",
        {
            "i": {
                "model": {"name": "fraud"},
                "version": {"name": "f1", "author": "ana"},
                "artifact": {"uri": "s3://f"},
            }
        },
    )["registerModel"]["version"]["id"]
    root(APPROVE, {"v": other})
    root(APPROVE, {"v": v1})
    got = receiver.wait_for(1)
    time.sleep(1.0)  # nothing else comes
    assert [(d.event["type"], d.event["versionName"]) for d in got] == [("VERSION_APPROVED", "v1")]
    eventually(lambda: status(root)["deliveredSeq"] == 6)  # past what it did not want
    assert status(root)["delivered"] == 1


def test_a_failing_receiver_gets_the_same_event_again(
    root: Client, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhooks, "FIRST_BACKOFF_SECONDS", 0.5)
    receiver.statuses = [500, 503]
    create(root, receiver.url)
    register(root, "v1")
    got = receiver.wait_for(4)
    assert receiver.answered[:4] == [500, 503, 204, 204]
    ids = [d.headers["webhook-id"] for d in got[:4]]
    assert ids[0] == ids[1] == ids[2] != ids[3]  # the same event until it went through
    assert [d.event["type"] for d in got[2:4]] == ["MODEL_REGISTERED", "VERSION_REGISTERED"]
    eventually(lambda: status(root)["delivered"] == 2)
    assert status(root)["failures"] == 0


def test_failures_are_shown_and_backed_off(root: Client, receiver: Receiver) -> None:
    receiver.statuses = [500] * 10
    create(root, receiver.url)
    register(root, "v1")
    receiver.wait_for(1)
    eventually(lambda: status(root)["failures"] == 1)
    now = status(root)
    assert (now["lastStatus"], now["lastError"], now["delivered"]) == (
        500,
        "the receiver answered 500",
        0,
    )
    assert now["nextAttemptAt"] > now["lastAttemptAt"]  # 5 s later, not at once
    time.sleep(1.0)
    assert len(receiver.got) == 1


def test_gone_deactivates_and_reactivating_resumes(root: Client, receiver: Receiver) -> None:
    receiver.statuses = [410]
    webhook_id, _ = create(root, receiver.url)
    register(root, "v1")
    receiver.wait_for(1)
    eventually(lambda: status(root)["active"] is False)
    assert "410" in status(root)["lastError"]
    root(UPDATE, {"id": webhook_id, "input": {"active": True}})
    got = receiver.wait_for(3)
    assert [d.event["type"] for d in got[1:]] == ["MODEL_REGISTERED", "VERSION_REGISTERED"]


def test_replay_from_a_seq_and_a_rotated_secret(root: Client, receiver: Receiver) -> None:
    register(root, "v1")  # before the webhook: not sent
    webhook_id, first_secret = create(root, receiver.url)
    time.sleep(0.8)
    assert receiver.got == []
    changed = root(UPDATE, {"id": webhook_id, "input": {"afterSeq": 0}})["updateWebhook"]
    assert changed["deliveredSeq"] == 0
    got = receiver.wait_for(2)
    assert [d.event["seq"] for d in got] == [1, 2]
    Verifier(first_secret).verify(got[0].body, got[0].headers)
    rotated = root(
        "mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret } }", {"id": webhook_id}
    )["rotateWebhookSecret"]["secret"]
    assert rotated != first_secret
    register(root, "v2")
    got = receiver.wait_for(3)
    Verifier(rotated).verify(got[2].body, got[2].headers)
    with pytest.raises(WebhookVerificationError):
        Verifier(first_secret).verify(got[2].body, got[2].headers)


def test_two_processes_deliver_each_event_once(
    root: Client, receiver: Receiver, settings: Any
) -> None:
    with ThreadedServer(settings) as other:
        create(root, receiver.url)
        other_client = Client(other.url, root.http.headers["Authorization"].split(" ", 1)[1])
        for i in range(6):
            register(root if i % 2 else other_client, f"v{i}")
        receiver.wait_for(7)
        time.sleep(1.0)
        other_client.http.close()
    seqs = [d.event["seq"] for d in receiver.got]
    assert seqs == list(range(1, 8))  # each once, in order


def test_only_admins_and_input_is_checked(
    root: Client, as_role: Any, receiver: Receiver, db: neo4j.Driver
) -> None:
    writer = as_role("writer", name="w")
    error = writer.fails(CREATE, {"input": {"name": "x", "url": receiver.url}})
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert writer.fails(STATUS)["extensions"]["code"] == "FORBIDDEN"
    for url in ("ftp://x/y", "http://user:pw@host/x", "not a url", "http://host:99999/"):
        error = root.fails(CREATE, {"input": {"name": "x", "url": url}})
        assert (error["extensions"]["code"], error["extensions"]["field"]) == (
            "VALIDATION",
            "input.url",
        )
    webhook_id, secret = create(root, receiver.url)
    error = root.fails(CREATE, {"input": {"name": "ci", "url": receiver.url}})
    assert error["extensions"]["code"] == "CONFLICT"
    error = root.fails(UPDATE, {"id": "whk_01ARZ3NDEKTSV4RRFFQ69G5FAV", "input": {"active": False}})
    assert error["extensions"]["code"] == "NOT_FOUND"
    # The secret is never stored in the audit trail.
    records, _, _ = db.execute_query("MATCH (e:AuditEvent) RETURN e.changes AS changes")
    assert records and all(secret not in r["changes"] for r in records)
    deleted = root("mutation($id: ID!) { deleteWebhook(id: $id) }", {"id": webhook_id})
    assert deleted == {"deleteWebhook": webhook_id}
    assert root(STATUS)["webhooks"] == []


def test_a_scoped_admin_reaches_only_its_projects_webhooks(
    root: Client, as_role: Any, receiver: Receiver
) -> None:
    create(root, receiver.url)  # every project's events
    scoped = as_role("admin", name="alpha-admin", projects=["alpha"])
    error = scoped.fails(CREATE, {"input": {"name": "mine", "url": receiver.url}})
    assert (error["extensions"]["code"], error["extensions"]["field"]) == (
        "FORBIDDEN",
        "input.project",
    )
    error = scoped.fails(CREATE, {"input": {"name": "b", "url": receiver.url, "project": "beta"}})
    assert error["extensions"]["code"] == "FORBIDDEN"
    made = scoped(CREATE, {"input": {"name": "a", "url": receiver.url, "project": "alpha"}})
    assert [w["name"] for w in scoped(STATUS)["webhooks"]] == ["a"]
    assert sorted(w["name"] for w in root(STATUS)["webhooks"]) == ["a", "ci"]
    everyone = next(w["id"] for w in root(STATUS)["webhooks"] if w["name"] == "ci")
    error = scoped.fails(UPDATE, {"id": everyone, "input": {"url": "http://127.0.0.1:1/x"}})
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert made["createWebhook"]["webhook"]["name"] == "a"


def test_the_audit_trail_keeps_a_webhooks_host_not_its_url(root: Client, db: neo4j.Driver) -> None:
    create(root, "https://hooks.example.com/services/T000/B000/XXXXSECRETXXXX")
    records, _, _ = db.execute_query(
        "MATCH (e:AuditEvent {action: 'createWebhook'}) RETURN e.changes AS c"
    )
    (change,) = json.loads(records[0]["c"])
    assert change["after"]["webhook.urlHost"] == "hooks.example.com"
    assert "XXXXSECRETXXXX" not in records[0]["c"]


@pytest.mark.parametrize(
    "url",
    [
        "http://xn--/hook",  # a host that cannot even be encoded
        "http://a..b/hook",  # an empty label: the resolver raises, not a failed lookup
    ],
)
def test_an_unreachable_url_is_a_recorded_failure(root: Client, url: str) -> None:
    create(root, url)
    register(root, "v1")
    eventually(lambda: status(root)["failures"] == 1)
    now = status(root)
    assert now["lastStatus"] is None and now["lastError"].startswith("cannot resolve ")
    assert now["nextAttemptAt"] is not None
    time.sleep(0.5)
    assert status(root)["failures"] == 1  # backed off, not tried again at once


def test_writes_pay_no_webhook_query_while_no_webhook_waits_for_events(
    root: Client, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no webhook, or only ones waiting to retry, new events do not send the
    dispatcher looking; a webhook made here, or a retry coming due, still does."""
    looks: list[float] = []
    real = webhooks.Dispatcher._claim

    async def claim(self: webhooks.Dispatcher) -> list[dict[str, Any]]:
        looks.append(time.monotonic())
        return await real(self)

    monkeypatch.setattr(webhooks.Dispatcher, "_claim", claim)
    register(root, "v0")  # the first events: a look finds no webhook at all
    time.sleep(0.3)
    looks.clear()
    for n in range(1, 6):
        register(root, f"v{n}")
    # At most the regular look (every 5 s while there is no webhook), not one per write.
    assert len(looks) <= 1

    monkeypatch.setattr(webhooks, "FIRST_BACKOFF_SECONDS", 2.0)
    receiver.statuses = [500]
    create(root, receiver.url)  # from now on
    register(root, "v6")
    receiver.wait_for(1)  # failed: it waits 2 s to retry
    eventually(lambda: status(root)["failures"] == 1)
    looks.clear()
    started = time.monotonic()
    for n in range(7, 12):
        register(root, f"v{n}")
    elapsed = time.monotonic() - started
    # Not one look per write: only the regular ones (every poll_seconds).
    assert elapsed < 2.0 and len(looks) <= 1 + elapsed / 0.5
    got = receiver.wait_for(2)  # the retry came due: the same event again, then the rest
    assert got[1].headers["webhook-id"] == got[0].headers["webhook-id"]
    eventually(lambda: status(root)["failures"] == 0 and status(root)["delivered"] == 6)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # a cloud's instance metadata
        "http://[::ffff:169.254.169.254]/",  # the same, as an IPv4-mapped IPv6 address
        "http://[fe80::1]:8080/",
        "http://[fd00:ec2::254]/",
        "http://0.0.0.0:80/",
        "http://100.100.100.200/latest/meta-data/",  # another cloud's
        "http://[64:ff9b::a9fe:a9fe]/",  # 169.254.169.254 through a NAT64 gateway
    ],
)
def test_webhooks_may_not_send_to_metadata_or_no_ones_addresses(root: Client, url: str) -> None:
    made = root.post(CREATE, {"input": {"name": "ssrf", "url": url}}).error()
    assert (made["extensions"]["code"], made["extensions"]["field"]) == (
        "VALIDATION",
        "input.url",
    )
    assert "where webhooks may not send" in made["message"]
    webhook_id, _ = create(root, "https://receiver.example/hooks")
    changed = root.post(UPDATE, {"id": webhook_id, "input": {"url": url}}).error()
    assert changed["extensions"]["code"] == "VALIDATION"


def test_a_name_that_resolves_where_webhooks_may_not_send_is_not_posted_to(
    root: Client, receiver: Receiver, server: ThreadedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This server's policy: no private or loopback addresses either.
    app: Any = server.server.config.app  # the Starlette app the test server runs
    dispatcher = app.state.webhooks
    strict = webhooks.Reach.of(DEFAULT_DENIED_NETWORKS, allow_private=False)
    monkeypatch.setattr(dispatcher, "reach", strict)
    # By name, the URL cannot be judged when made: its addresses are, before each POST.
    create(root, receiver.url.replace("127.0.0.1", "localhost"))
    register(root, "v1")
    eventually(lambda: status(root)["failures"] >= 1)
    failed = status(root)
    assert failed["lastError"].startswith("localhost resolves to ")
    assert "private or loopback address" in failed["lastError"]
    assert receiver.got == []


def test_a_delivery_goes_to_the_address_checked_not_to_a_second_lookup(
    root: Client, receiver: Receiver, server: ThreadedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: a name that answers an allowed address when checked and a refused
    one right after cannot steer a delivery to the refused one. The name is looked up once
    per connection, by the check itself, and the connection goes to what it checked (the
    name never resolves for real); the request still names the host as its URL does."""
    app: Any = server.server.config.app
    # 127.0.0.2 plays the refused address (on loopback, so that nothing leaves the machine
    # should a connection go there).
    monkeypatch.setattr(
        app.state.webhooks, "reach", webhooks.Reach.of("127.0.0.2/32", allow_private=True)
    )
    lookups: list[str] = []

    async def rebinding(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"] if len(lookups) == 1 else ["127.0.0.2"]

    monkeypatch.setattr(webhooks, "resolve", rebinding)
    port = receiver.url.split(":")[2].split("/")[0]
    create(root, f"http://hooks.rebind.invalid:{port}/hooks")
    register(root, "v1")
    got = receiver.wait_for(1)
    assert got[0].headers["host"] == f"hooks.rebind.invalid:{port}"
    # The next event's connection (this receiver closes each one) looked the name up again,
    # got the refused address, and went nowhere.
    eventually(lambda: status(root)["failures"] >= 1)
    assert "resolves to 127.0.0.2 is in 127.0.0.2/32" in status(root)["lastError"]
    assert len(receiver.got) == 1 and status(root)["delivered"] == 1
    assert set(lookups) == {"hooks.rebind.invalid"} and len(lookups) >= 2


def test_a_delivery_tries_each_address_of_the_name_in_turn(
    root: Client, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name with several addresses (IPv6 and IPv4, say) is reached at the first that
    answers, as a client resolving it itself would."""

    async def two(host: str, port: int) -> list[str]:
        return ["127.0.0.3", "127.0.0.1"]  # nothing listens on the first

    monkeypatch.setattr(webhooks, "resolve", two)
    create(root, receiver.url.replace("127.0.0.1", "hooks.two.invalid"))
    register(root, "v1")
    receiver.wait_for(1)
    eventually(lambda: status(root)["delivered"] >= 1 and status(root)["failures"] == 0)


def test_the_host_checked_is_the_one_the_client_connects_to() -> None:
    """International names are checked as the HTTP client encodes them (IDNA 2008), not
    as Python's own codec would (``ß`` -> ``ss``): else a checked name and a connected one
    differ. Strict mode also refuses shared (CGNAT) space and NAT64-wrapped private ones."""
    assert webhooks.client_host("http://ß.example/x", "url") == "xn--zca.example"
    strict = webhooks.Reach.of(DEFAULT_DENIED_NETWORKS, allow_private=False)
    wrapped = ("64:ff9b::a00:5", "2002:a00:5::1", "::a00:5")  # NAT64, 6to4, compatible
    for address in ("10.0.0.5", "100.64.1.1", "64:ff9b:1::1", "::1", *wrapped):
        assert strict.refusal(address) is not None, address
    lenient = webhooks.Reach.of(DEFAULT_DENIED_NETWORKS, allow_private=True)
    assert lenient.refusal("::1") is None  # IPv6's loopback, not 0.0.0.1
    for address in ("2002:a9fe:a9fe::1", "::169.254.169.254"):  # metadata, wrapped
        assert lenient.refusal(address) is not None, address
    assert strict.refusal("93.184.215.14") is None
    assert (
        webhooks.Reach.of(DEFAULT_DENIED_NETWORKS, allow_private=True).refusal("10.0.0.5") is None
    )


def test_an_address_that_never_answers_leaves_time_for_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Addresses are tried in turn, each with its share of the connect timeout: one that
    drops connections (a firewalled IPv6 address, say) does not use up the whole of it."""
    given: list[tuple[str, float | None]] = []

    class Inner:
        async def connect_tcp(self, host: str, port: int, **kw: Any) -> str:
            given.append((host, kw["timeout"]))
            if host == "2001:db8::1":
                await asyncio.sleep(kw["timeout"])
                raise httpcore.ConnectTimeout("no answer")
            return "connected"

    async def two(host: str, port: int) -> list[str]:
        return ["2001:db8::1", "192.0.2.1"]  # (nothing is sent: the inner backend is fake)

    monkeypatch.setattr(webhooks, "resolve", two)
    pinned = webhooks.Pinned(lambda: webhooks.ANYWHERE)
    monkeypatch.setattr(pinned, "_inner", Inner())
    connected: Any = asyncio.run(pinned.connect_tcp("hooks.example", 443, timeout=1.0))
    assert connected == "connected"
    (first, one), (second, other) = given
    assert (first, second) == ("2001:db8::1", "192.0.2.1")
    assert one == pytest.approx(0.5) and other is not None and 0.3 < other <= 0.5

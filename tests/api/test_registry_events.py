"""Registry events: the numbered log (``registryEvents``) and live subscriptions over a
WebSocket (graphql-transport-ws), through the real server and Neo4j."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import neo4j
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin, Subprotocol

from lineagehub.api.graphql import events as api_events
from lineagehub.graph import identity, versions
from tests.api.test_approvals_aliases import APPROVE, REQUEST, SET_ALIAS, register
from tests.conftest import Api, Client, ThreadedServer, clean, make_token, with_store

PROTOCOLS = [Subprotocol("graphql-transport-ws")]

LOG = """query($after: Long!, $first: Int, $types: [RegistryEventType!], $model: String) {
  registryEvents(afterSeq: $after, first: $first, types: $types, model: $model) {
    endSeq hasMore
    events {
      seq id type at actor requestId auditEventId project
      modelId modelName versionId versionName serviceId serviceName deploymentId
      alias previousVersionId previousVersionName fromState toState
    }
  }
}"""

SUBSCRIBE = """subscription($after: Long, $types: [RegistryEventType!], $model: String) {
  registryEvents(afterSeq: $after, types: $types, model: $model) {
    seq type modelName versionName alias previousVersionName serviceName fromState toState
    modelVersion { name approvalStatus }
  }
}"""


def log(client: Api, after: int = 0, **kw: Any) -> dict[str, Any]:
    page: dict[str, Any] = client(LOG, {"after": after, **kw})["registryEvents"]
    return page


def kinds(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(e["seq"], e["type"]) for e in events]


@pytest.fixture
def team(as_role: Any) -> dict[str, Client]:
    return {
        "ana": as_role("writer", name="ana"),
        "bo": as_role("approver", name="bo"),
        "root": as_role("admin", name="root"),
    }


def _service(client: Api, version_id: str) -> tuple[str, str]:
    env = client('mutation { createServingEnvironment(input: {name: "prod"}) { id } }')[
        "createServingEnvironment"
    ]["id"]
    created = client(
        "mutation($e: ID!, $v: ID!) { createInferenceService(input: "
        '{environmentId: $e, name: "churn-api", modelVersionId: $v}) '
        "{ id deployments { nodes { id } } } }",
        {"e": env, "v": version_id},
    )["createInferenceService"]
    return created["id"], created["deployments"]["nodes"][0]["id"]


def test_every_kind_of_change_is_one_numbered_event(team: dict[str, Client]) -> None:
    ana, bo, root = team["ana"], team["bo"], team["root"]
    v1 = register(ana, "v1")
    v2 = register(ana, "v2")
    ana(REQUEST, {"v": v1})
    bo(APPROVE, {"v": v1, "c": "ok"})
    bo(SET_ALIAS, {"a": "production", "v": "v1", "r": "first"})
    bo(SET_ALIAS, {"a": "production", "v": "v1", "r": "no move"})  # same target: no event
    bo(
        'mutation($v: ID!) { rejectModelVersion(versionId: $v, comment: "no") { decision { status } } }',
        {"v": v2},
    )
    service, first_deployment = _service(root, v1)
    root(
        "mutation($d: ID!) { recordDeploymentState(deploymentId: $d, state: READY) { id } }",
        {"d": first_deployment},
    )
    root(
        "mutation($s: ID!, $v: ID!) { deployModelVersion(serviceId: $s, modelVersionId: $v) "
        "{ deployment { id } } }",
        {"s": service, "v": v2},
    )
    root("mutation($id: ID!) { undeployInferenceService(id: $id) { id } }", {"id": service})
    root("mutation($id: ID!) { archiveModelVersion(id: $id) { state } }", {"id": v2})
    root(
        'mutation { removeAlias(model: "churn-predictor", alias: "production", reason: "r") '
        "{ alias } }"
    )

    page = log(root)
    events = page["events"]
    assert [(e["type"], e["versionName"], e["actor"]) for e in events] == [
        ("MODEL_REGISTERED", None, "ana"),
        ("VERSION_REGISTERED", "v1", "ana"),
        ("VERSION_REGISTERED", "v2", "ana"),
        ("VERSION_APPROVAL_REQUESTED", "v1", "ana"),
        ("VERSION_APPROVED", "v1", "bo"),
        ("ALIAS_MOVED", "v1", "bo"),
        ("VERSION_REJECTED", "v2", "bo"),
        ("VERSION_DEPLOYED", "v1", "root"),
        ("DEPLOYMENT_STATE_CHANGED", "v1", "root"),
        ("VERSION_DEPLOYED", "v2", "root"),
        ("SERVICE_UNDEPLOYED", None, "root"),
        ("VERSION_ARCHIVED", "v2", "root"),
        ("ALIAS_MOVED", None, "root"),
    ]
    # Gap-free numbers in commit order; the page's end is the newest one.
    assert [e["seq"] for e in events] == list(range(events[0]["seq"], events[0]["seq"] + 13))
    assert (page["endSeq"], page["hasMore"]) == (events[-1]["seq"], False)
    assert all(e["modelName"] == "churn-predictor" for e in events)
    assert len({e["id"] for e in events}) == 13 and all(e["id"].startswith("evt_") for e in events)

    by_type: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_type.setdefault(event["type"], []).append(event)
    approved = by_type["VERSION_APPROVED"][0]
    assert (approved["fromState"], approved["toState"]) == ("PENDING", "APPROVED")
    moved, removed = by_type["ALIAS_MOVED"]
    assert (moved["alias"], moved["previousVersionId"], moved["versionId"]) == (
        "production",
        None,
        v1,
    )
    assert (removed["alias"], removed["previousVersionName"], removed["versionId"]) == (
        "production",
        "v1",
        None,
    )
    first, second = by_type["VERSION_DEPLOYED"]
    assert (first["serviceName"], first["deploymentId"], first["toState"]) == (
        "churn-api",
        first_deployment,
        "PENDING",
    )
    assert (second["previousVersionName"], second["versionName"]) == ("v1", "v2")
    ready = by_type["DEPLOYMENT_STATE_CHANGED"][0]
    assert (ready["fromState"], ready["toState"], ready["serviceName"]) == (
        "PENDING",
        "READY",
        "churn-api",
    )
    assert by_type["SERVICE_UNDEPLOYED"][0]["previousVersionName"] == "v2"
    assert (
        by_type["VERSION_ARCHIVED"][0]["fromState"],
        by_type["VERSION_ARCHIVED"][0]["toState"],
    ) == (
        "LIVE",
        "ARCHIVED",
    )

    # Each event is part of the audit event of the mutation that made it.
    audit = root(
        "query($id: ID!) { node(id: $id) { ... on ModelVersion { auditTrail { nodes { id action } } } } }",
        {"id": v1},
    )["node"]["auditTrail"]["nodes"]
    actions = {a["id"]: a["action"] for a in audit}
    assert actions[approved["auditEventId"]] == "approveModelVersion"


def test_pages_filters_and_typed_fields(team: dict[str, Client]) -> None:
    ana, bo = team["ana"], team["bo"]
    v1 = register(ana, "v1")
    ana(
        "mutation($i: RegisterModelInput!) { registerModel(input: $i) { version { id } } }",
        {
            "i": {
                "model": {"name": "other"},
                "version": {"name": "o1"},
                "artifact": {"uri": "s3://o"},
            }
        },
    )
    bo(APPROVE, {"v": v1})
    everything = log(ana)["events"]
    assert len(everything) == 5
    start = everything[0]["seq"] - 1

    # Pages: first N, then on from endSeq; the last page ends at the newest seq.
    seen: list[dict[str, Any]] = []
    after = start
    while True:
        page = log(ana, after, first=2)
        seen += page["events"]
        after = page["endSeq"]
        if not page["hasMore"]:
            break
    assert seen == everything and after == everything[-1]["seq"]

    # A filter skips events, and endSeq moves past them for good.
    approvals = log(ana, start, types=["VERSION_APPROVED"])
    assert kinds(approvals["events"]) == [(everything[-1]["seq"], "VERSION_APPROVED")]
    assert approvals["endSeq"] == everything[-1]["seq"]
    other = log(ana, start, model="other")
    assert [e["type"] for e in other["events"]] == ["MODEL_REGISTERED", "VERSION_REGISTERED"]
    assert log(ana, everything[-1]["seq"]) == {
        "endSeq": everything[-1]["seq"],
        "hasMore": False,
        "events": [],
    }

    typed = ana(
        "query($a: Long!) { registryEvents(afterSeq: $a, types: [VERSION_APPROVED]) { events { "
        "model { name } modelVersion { name approvalStatus } service { name } deployment { id } } } }",
        {"a": start},
    )["registryEvents"]["events"]
    assert typed == [
        {
            "model": {"name": "churn-predictor"},
            "modelVersion": {"name": "v1", "approvalStatus": "APPROVED"},
            "service": None,
            "deployment": None,
        }
    ]

    for variables, field in (
        ({"after": -1}, "afterSeq"),
        ({"after": 0, "first": 0}, "first"),
        ({"after": 0, "first": 10_000}, "first"),
        ({"after": 0, "model": ""}, "model"),
    ):
        error = ana.fails(LOG, variables)
        assert (error["extensions"]["code"], error["extensions"]["field"]) == ("VALIDATION", field)


def test_failed_and_unchanged_mutations_make_no_event(
    team: dict[str, Client], db: neo4j.Driver
) -> None:
    ana, bo = team["ana"], team["bo"]
    v1 = register(ana, "v1", author="bo")
    before = log(ana)["endSeq"]
    assert bo.fails(APPROVE, {"v": v1})["extensions"]["code"] == "FORBIDDEN"  # self-approval
    ana(
        'mutation($id: ID!) { updateModelVersion(id: $id, input: {description: "d"}) { id } }',
        {"id": v1},
    )
    assert log(ana, before) == {"endSeq": before, "hasMore": False, "events": []}
    records, _, _ = db.execute_query("MATCH (r:RegistryEvent) RETURN count(r) AS n")
    assert records[0]["n"] == before


def test_kubeflow_rest_writes_make_events_too(
    team: dict[str, Client], server: ThreadedServer
) -> None:
    root = team["root"]
    rest = root.http
    base = f"{server.url}/api/model_registry/v1alpha3"
    model = rest.post(f"{base}/registered_models", json={"name": "kf"}).json()
    version = rest.post(
        f"{base}/model_versions", json={"name": "1", "registeredModelId": model["id"]}
    ).json()
    rest.patch(f"{base}/model_versions/{version['id']}", json={"state": "ARCHIVED"})
    assert [(e["type"], e["modelName"]) for e in log(root)["events"]] == [
        ("MODEL_REGISTERED", "kf"),
        ("VERSION_REGISTERED", "kf"),
        ("VERSION_ARCHIVED", "kf"),
    ]


def test_a_bulk_registration_numbers_each_event_in_one_round_trip(team: dict[str, Client]) -> None:
    ana = team["ana"]
    bulk = """mutation($inputs: [RegisterModelInput!]!) { registerModels(inputs: $inputs) { version { id } } }"""
    trips = []
    for size in (1, 50):
        start = log(ana)["endSeq"]
        items = [
            {
                "model": {"name": f"bulk-{size}"},
                "version": {"name": f"v{i}"},
                "artifact": {"uri": f"s3://b/{size}/{i}"},
            }
            for i in range(size)
        ]
        response = ana.post(bulk, {"inputs": items})
        assert not response.errors, response.errors
        trips.append(response.round_trips)
        page = log(ana, start, first=200)
        assert [e["type"] for e in page["events"]] == ["MODEL_REGISTERED"] + [
            "VERSION_REGISTERED"
        ] * size
        assert [e["versionName"] for e in page["events"][1:]] == [f"v{i}" for i in range(size)]
    assert trips[0] == trips[1]


def test_concurrent_writers_get_gap_free_numbers(team: dict[str, Client], db: neo4j.Driver) -> None:
    ana = team["ana"]
    start = log(ana)["endSeq"]
    answered: list[str] = []

    def one(i: int) -> None:
        register(ana, f"c{i}")
        # Answered only once numbered: what the writer then reads holds its event.
        names = [e["versionName"] for e in log(ana, start, first=100)["events"]]
        assert f"c{i}" in names
        answered.append(f"c{i}")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(24)))
    assert len(answered) == 24
    events = log(ana, start, first=100)["events"]
    assert [e["seq"] for e in events] == list(range(start + 1, start + 1 + 25))
    # Each once; a version's event after its model's (it was written after it).
    assert events[0]["type"] == "MODEL_REGISTERED"
    assert sorted(e["versionName"] for e in events[1:]) == sorted(f"c{i}" for i in range(24))
    # Nothing is left waiting for a number.
    records, _, _ = db.execute_query("MATCH (r:Unnumbered) RETURN count(r) AS n")
    assert records[0]["n"] == 0


def test_events_a_process_left_unnumbered_are_numbered_by_another(
    team: dict[str, Client], settings: Any, db: neo4j.Driver
) -> None:
    """Events written without a numbering pass after them (a process that died between
    its commit and the pass, or a write from the CLI) are numbered within a few seconds."""
    ana = team["ana"]

    async def write(store: Any) -> None:
        await versions.create(store, versions.ModelVersionCreate(model_id=model_id, name="cli"))

    register(ana, "v1")
    model_id = ana('{ registeredModel(name: "churn-predictor") { id } }')["registeredModel"]["id"]
    with_store(settings, write)  # a Store of its own: no numbering pass after the commit
    records, _, _ = db.execute_query("MATCH (r:Unnumbered) RETURN r.versionName AS v")
    assert [r["v"] for r in records] == ["cli"]
    deadline = time.monotonic() + 10
    while not [e for e in log(ana)["events"] if e["versionName"] == "cli"]:
        assert time.monotonic() < deadline, "never numbered"
        time.sleep(0.2)
    assert [e["seq"] for e in log(ana)["events"]] == [1, 2, 3]


def test_a_scoped_reader_sees_only_its_projects_events(as_role: Any) -> None:
    root = as_role("admin", name="root")
    for name, project in (("a-model", "alpha"), ("b-model", "beta")):
        root(
            "mutation($i: RegisterModelInput!) { registerModel(input: $i) { version { id } } }",
            {
                "i": {
                    "model": {"name": name, "project": project},
                    "version": {"name": "1"},
                    "artifact": {"uri": f"s3://{name}"},
                }
            },
        )
    alpha = as_role("reader", name="alpha-reader", projects=["alpha"])
    assert {e["modelName"] for e in log(alpha)["events"]} == {"a-model"}
    assert {e["project"] for e in log(root)["events"]} == {"alpha", "beta"}
    with subscription(ws_url(alpha), alpha.http.headers["Authorization"], {"after": 0}) as ws:
        got = [next_event(ws)["modelName"] for _ in range(2)]
    assert got == ["a-model", "a-model"]


# --- subscriptions over a WebSocket ------------------------------------------------------


def revoke(settings: Any, secret: str) -> None:
    """Revoke the token ``secret`` is, as another process would (no server's cache knows)."""

    async def work(store: Any) -> None:
        verdict = await identity.authenticate(store, secret)
        assert verdict.principal is not None and verdict.principal.token_id is not None
        await identity.revoke_token(store, verdict.principal.token_id)

    with_store(settings, work)


def ws_url(client: Api) -> str:
    return client.http.base_url.copy_with(scheme="ws", path="/graphql").__str__()


@contextmanager
def subscription(
    url: str,
    authorization: str | None,
    variables: dict[str, Any],
    *,
    query: str = SUBSCRIBE,
    headers: dict[str, str] | None = None,
) -> Iterator[ClientConnection]:
    with connect(url, subprotocols=PROTOCOLS, additional_headers=headers, open_timeout=10) as ws:
        payload = {"Authorization": authorization} if authorization else {}
        ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        ack = json.loads(text_frame(ws, 10))
        assert ack["type"] == "connection_ack", ack
        ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": query, "variables": variables},
                }
            )
        )
        yield ws


def text_frame(ws: ClientConnection, timeout: float) -> str:
    """The next message, which graphql-transport-ws sends as a text frame: browsers hand a
    binary one to the client as a Blob, which graphql-ws (GraphiQL's) cannot read."""
    frame = ws.recv(timeout=timeout)
    assert isinstance(frame, str), f"a binary frame: {frame!r}"
    return frame


def next_message(ws: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = json.loads(text_frame(ws, timeout))
        if message["type"] == "ping":
            ws.send(json.dumps({"type": "pong"}))
            continue
        return message


def next_event(ws: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    message = next_message(ws, timeout)
    assert message["type"] == "next", message
    assert "errors" not in message["payload"], message
    event: dict[str, Any] = message["payload"]["data"]["registryEvents"]
    return event


def test_a_subscription_gets_events_as_they_commit(team: dict[str, Client]) -> None:
    ana, bo = team["ana"], team["bo"]
    with subscription(ws_url(ana), ana.http.headers["Authorization"], {}) as ws:
        time.sleep(0.3)  # subscribed: from now on
        v1 = register(ana, "v1")
        assert next_event(ws)["type"] == "MODEL_REGISTERED"
        event = next_event(ws)
        assert (event["type"], event["versionName"], event["modelVersion"]) == (
            "VERSION_REGISTERED",
            "v1",
            {"name": "v1", "approvalStatus": "NONE"},
        )
        bo(APPROVE, {"v": v1})
        approved = next_event(ws)
        # modelVersion is read again for each event: as it is now.
        assert (approved["type"], approved["modelVersion"]["approvalStatus"]) == (
            "VERSION_APPROVED",
            "APPROVED",
        )
        assert approved["seq"] == event["seq"] + 1


def test_resume_after_a_seq_then_live_with_filters(team: dict[str, Client]) -> None:
    ana, bo = team["ana"], team["bo"]
    start = log(ana)["endSeq"]
    v1 = register(ana, "v1")
    register(ana, "v2")
    variables = {"after": start, "types": ["VERSION_REGISTERED", "VERSION_APPROVED"]}
    with subscription(ws_url(ana), ana.http.headers["Authorization"], variables) as ws:
        assert [next_event(ws)["versionName"] for _ in range(2)] == ["v1", "v2"]  # the log
        bo(APPROVE, {"v": v1})
        register(ana, "v3")
        live = [next_event(ws) for _ in range(2)]
        assert [(e["type"], e["versionName"]) for e in live] == [
            ("VERSION_APPROVED", "v1"),
            ("VERSION_REGISTERED", "v3"),
        ]
    nothing = {"after": start, "model": "nope"}
    with (
        subscription(ws_url(ana), ana.http.headers["Authorization"], nothing) as ws,
        pytest.raises(TimeoutError),
    ):
        next_message(ws, timeout=1.0)


def test_events_written_by_another_process_arrive_by_polling(
    team: dict[str, Client], settings: Any, db: neo4j.Driver
) -> None:
    """A second server (another worker or replica) writes; the first one's subscriber gets it."""
    ana = team["ana"]
    with ThreadedServer(settings) as other:
        other_client = Client(other.url, ana.http.headers["Authorization"].split(" ", 1)[1])
        with subscription(ws_url(ana), ana.http.headers["Authorization"], {}) as ws:
            time.sleep(0.3)
            register(other_client, "elsewhere")
            assert [next_event(ws)["type"] for _ in range(2)] == [
                "MODEL_REGISTERED",
                "VERSION_REGISTERED",
            ]
        other_client.http.close()


def test_many_subscribers_each_get_every_event(team: dict[str, Client]) -> None:
    ana = team["ana"]
    start = log(ana)["endSeq"]
    got: dict[int, list[str]] = {}

    def listen(n: int, ready: threading.Barrier) -> None:
        with subscription(ws_url(ana), ana.http.headers["Authorization"], {"after": start}) as ws:
            ready.wait()
            got[n] = [next_event(ws)["versionName"] for _ in range(11)]

    ready = threading.Barrier(9)
    threads = [threading.Thread(target=listen, args=(n, ready)) for n in range(8)]
    for thread in threads:
        thread.start()
    ready.wait()
    for i in range(10):
        register(ana, f"v{i}")
    for thread in threads:
        thread.join(timeout=30)
    assert got == {n: [None] + [f"v{i}" for i in range(10)] for n in range(8)}


def test_websocket_authentication(server: ThreadedServer, as_role: Any, settings: Any) -> None:
    writer = as_role("writer", name="w")
    url = ws_url(writer)
    # No token, a bad one, a wrong scheme: the socket closes with 4403 at connection_init.
    for payload in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        with connect(url, subprotocols=PROTOCOLS) as ws:
            ws.send(json.dumps({"type": "connection_init", "payload": payload}))
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    # As a header, its name in any case: GraphiQL sends its Headers tab's entries as typed.
    secret = writer.http.headers["Authorization"]
    for name in ("authorization", "AUTHORIZATION"):
        with connect(url, subprotocols=PROTOCOLS) as ws:
            ws.send(json.dumps({"type": "connection_init", "payload": {name: secret}}))
            assert json.loads(ws.recv(timeout=10))["type"] == "connection_ack"
    # The token in the upgrade request's header works as well.
    token = writer.http.headers["Authorization"]
    with subscription(url, None, {}, headers={"Authorization": token}) as ws:
        register(writer, "v1")
        assert next_event(ws)["type"] == "MODEL_REGISTERED"
    # A page on another origin may not open one (a browser would send its credentials).
    with pytest.raises(InvalidStatus) as refused:
        connect(url, subprotocols=PROTOCOLS, origin=Origin("https://evil.example")).close()
    assert refused.value.response.status_code == 403


def test_mutations_over_the_websocket_are_authorized_and_audited(as_role: Any) -> None:
    reader = as_role("reader", name="r")
    writer = as_role("writer", name="w")
    mutation = 'mutation { createRegisteredModel(input: {name: "ws-model"}) { name } }'
    with subscription(
        ws_url(reader), reader.http.headers["Authorization"], {}, query=mutation
    ) as ws:
        message = next_message(ws)
        assert message["payload"]["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    with subscription(
        ws_url(writer), writer.http.headers["Authorization"], {}, query=mutation
    ) as ws:
        message = next_message(ws)
        assert message["payload"]["data"] == {"createRegisteredModel": {"name": "ws-model"}}
        connection_id = message["payload"]["extensions"]["requestId"]
    events = log(writer)["events"]
    assert [(e["type"], e["actor"]) for e in events] == [("MODEL_REGISTERED", "w")]
    assert events[0]["requestId"] == connection_id  # the connection's request id


def test_a_revoked_token_ends_its_subscription(
    as_role: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api_events, "RECHECK_SECONDS", 0.2)  # rather than every 30 s
    writer = as_role("writer", name="w")
    _, doomed = make_token(settings, "doomed", ["reader"])
    with subscription(ws_url(writer), f"Bearer {doomed}", {}) as ws:
        time.sleep(0.3)
        register(writer, "v1")
        assert [next_event(ws)["type"] for _ in range(2)] == [
            "MODEL_REGISTERED",
            "VERSION_REGISTERED",
        ]
        revoke(settings, doomed)
        ended = next_message(ws)  # no event needed: the token is asked about regularly
        assert ended["type"] == "next"
        assert ended["payload"]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert next_message(ws) == {"id": "1", "type": "complete"}


def test_each_operation_on_a_socket_asks_about_its_token_again(as_role: Any, settings: Any) -> None:
    """A token revoked while its socket is open: the next query or mutation on that socket
    is UNAUTHENTICATED, as over HTTP."""
    _, secret = make_token(settings, "short-lived", ["writer"])
    url = ws_url(as_role("reader", name="r"))
    mutation = 'mutation { createRegisteredModel(input: {name: "late"}) { name } }'
    with connect(url, subprotocols=PROTOCOLS, open_timeout=10) as ws:
        ws.send(
            json.dumps(
                {"type": "connection_init", "payload": {"Authorization": f"Bearer {secret}"}}
            )
        )
        assert json.loads(ws.recv(timeout=10))["type"] == "connection_ack"

        async def revoke(store: Any) -> None:
            verdict = await identity.authenticate(store, secret)
            assert verdict.principal is not None and verdict.principal.token_id is not None
            await identity.revoke_token(store, verdict.principal.token_id)

        with_store(settings, revoke)
        ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": mutation}}))
        message = next_message(ws)
        assert message["payload"]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert message["payload"]["data"] is None
    assert log(as_role("reader", name="r2"))["events"] == []  # nothing was written


def test_a_local_mode_socket_ends_when_authentication_comes_on(
    api: Api, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api_events, "RECHECK_SECONDS", 0.2)
    with subscription(ws_url(api), None, {}) as ws:  # no token exists: the local admin
        time.sleep(0.3)
        register(api, "v1")
        assert next_event(ws)["type"] == "MODEL_REGISTERED"
        next_event(ws)
        make_token(settings, "first", ["admin"])
        ended = next_message(ws)
        assert ended["payload"]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_operations_on_one_socket_do_not_share_cached_answers(team: dict[str, Client]) -> None:
    ana = team["ana"]
    register(ana, "v1")
    query = '{ registeredModel(name: "churn-predictor") { description } }'
    with connect(ws_url(ana), subprotocols=PROTOCOLS, open_timeout=10) as ws:
        init = {"Authorization": ana.http.headers["Authorization"]}
        ws.send(json.dumps({"type": "connection_init", "payload": init}))
        assert json.loads(ws.recv(timeout=10))["type"] == "connection_ack"
        seen = []
        for n, text in enumerate(("first", "second")):
            ana(
                "mutation($d: String!) { updateRegisteredModel(id: $id, input: {description: $d}) { id } }".replace(
                    "$id",
                    '"'
                    + ana('{ registeredModel(name: "churn-predictor") { id } }')["registeredModel"][
                        "id"
                    ]
                    + '"',
                ),
                {"d": text},
            )
            ws.send(json.dumps({"id": str(n), "type": "subscribe", "payload": {"query": query}}))
            seen.append(next_message(ws)["payload"]["data"]["registeredModel"]["description"])
            assert next_message(ws)["type"] == "complete"
    assert seen == ["first", "second"]


def test_a_cursor_beyond_the_log_is_refused(team: dict[str, Client]) -> None:
    ana = team["ana"]
    register(ana, "v1")
    error = ana.fails(LOG, {"after": 99})
    assert (error["extensions"]["code"], error["extensions"]["field"]) == ("VALIDATION", "afterSeq")
    with subscription(ws_url(ana), ana.http.headers["Authorization"], {"after": 99}) as ws:
        message = next_message(ws)
        assert message["type"] == "error" or "errors" in message["payload"], message


def test_a_deleted_version_keeps_its_name_in_its_event(team: dict[str, Client]) -> None:
    root = team["root"]
    v1 = register(root, "v1")
    root("mutation($id: ID!) { deleteNode(id: $id) { id } }", {"id": v1})
    deleted = log(root, types=["VERSION_DELETED"], model="churn-predictor")["events"]
    assert [(e["versionName"], e["versionId"]) for e in deleted] == [("v1", v1)]


def test_a_subscription_follows_the_log_when_the_database_is_emptied(
    api: Api, db: neo4j.Driver
) -> None:
    with subscription(ws_url(api), None, {}) as ws:
        time.sleep(0.3)
        register(api, "v1")
        first = [next_event(ws) for _ in range(2)]
        assert [e["seq"] for e in first] == [1, 2]
        clean(db)  # a new log: numbered from 1 again
        register(api, "again")
        again = [next_event(ws) for _ in range(2)]
        assert [(e["seq"], e["type"], e["versionName"]) for e in again] == [
            (1, "MODEL_REGISTERED", None),
            (2, "VERSION_REGISTERED", "again"),
        ]


def test_seqs_go_past_32_bits(team: dict[str, Client], db: neo4j.Driver) -> None:
    """A long-lived registry numbers past 2**31, where GraphQL's Int ends: seq and every
    cursor are Long, in the log, in a subscription and in a webhook."""
    ana, root = team["ana"], team["root"]
    start = 2**31 + 5  # as if that many events had come, and gone with the retention
    with db.session() as session:
        session.run(
            "MERGE (s:Sequence {name: 'registryEvent'}) SET s.value = $start "
            "MERGE (g:Sequence {name: 'registryEventPruned'}) SET g.value = $start",
            start=start,
        ).consume()
    register(ana, "v1")
    page = log(ana)
    assert kinds(page["events"]) == [
        (start + 1, "MODEL_REGISTERED"),
        (start + 2, "VERSION_REGISTERED"),
    ]
    assert page["endSeq"] == start + 2
    assert kinds(log(ana, start + 1)["events"]) == [(start + 2, "VERSION_REGISTERED")]
    with subscription(ws_url(ana), ana.http.headers["Authorization"], {"after": start}) as ws:
        assert [next_event(ws)["seq"] for _ in range(2)] == [start + 1, start + 2]
    made = root(
        "mutation($i: WebhookInput!) { createWebhook(input: $i) { webhook { deliveredSeq } } }",
        {"i": {"name": "big", "url": "https://receiver.example/hooks", "afterSeq": start + 1}},
    )
    assert made["createWebhook"]["webhook"]["deliveredSeq"] == start + 1


def test_a_subscription_over_http_is_told_where_to_go(team: dict[str, Client]) -> None:
    """Subscriptions are served over the WebSocket; one POSTed (as a client does when it
    is not set up for WebSockets) gets a clear error, not a server error."""
    ana = team["ana"]
    for query, operation in (
        ("subscription { registryEvents { seq } }", None),
        ("query Q { registryEvents { endSeq } } subscription S { registryEvents { seq } }", "S"),
    ):
        answer = ana.http.post("/graphql", json={"query": query, "operationName": operation})
        (error,) = answer.json()["errors"]
        assert error["extensions"]["code"] == "VALIDATION", error
        assert "WebSocket" in error["message"] and error["extensions"]["requestId"]
    # The query beside it still runs over HTTP.
    both = "query Q { registryEvents { endSeq } } subscription S { registryEvents { seq } }"
    answer = ana.http.post("/graphql", json={"query": both, "operationName": "Q"})
    assert "errors" not in answer.json() and answer.json()["data"]["registryEvents"]

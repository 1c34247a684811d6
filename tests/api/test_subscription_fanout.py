"""Subscribers that ask the same thing of an event share one execution of it
(``api/graphql/fanout.py``), and only they: through the real server, WebSockets and Neo4j."""

from __future__ import annotations

import time
from collections import Counter
from contextlib import ExitStack
from typing import Any

import pytest

from lineagehub.api.graphql import fanout
from lineagehub.graph import entities, records
from tests.api.test_approvals_aliases import register
from tests.api.test_registry_events import (
    next_event,
    next_message,
    revoke,
    subscription,
    ws_url,
)
from tests.conftest import Client, make_token

# A nested field: each event's execution loads its version.
WATCH = """subscription($types: [RegistryEventType!]) {
  registryEvents(types: $types) { seq type versionName modelVersion { name approvalStatus } }
}"""


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many times the server loaded nodes by id, per label (the loaders' one query)."""
    counted: Counter[str] = Counter()
    real = entities.get_many

    async def get_many(store: Any, record: Any, node_ids: list[str]) -> Any:
        counted[record.LABEL] += 1
        return await real(store, record, node_ids)

    monkeypatch.setattr(entities, "get_many", get_many)  # the loaders call it through the module
    return counted


def _auth(client: Client) -> str:
    return client.http.headers["Authorization"]


def test_subscribers_asking_the_same_share_one_execution_per_event(
    as_role: Any, loads: Counter[str]
) -> None:
    ana = as_role("writer", name="ana")
    with ExitStack() as stack:
        sockets = [
            stack.enter_context(subscription(ws_url(ana), _auth(ana), {}, query=WATCH))
            for _ in range(5)
        ]
        time.sleep(0.5)  # all subscribed: from now on
        executed, shared = fanout.counts()
        register(ana, "v1")  # two events: the model, then its version
        got = [[next_event(ws) for _ in range(2)] for ws in sockets]
    assert all(events == got[0] for events in got)
    assert [(e["type"], e["modelVersion"]) for e in got[0]] == [
        ("MODEL_REGISTERED", None),
        ("VERSION_REGISTERED", {"name": "v1", "approvalStatus": "NONE"}),
    ]
    now_executed, now_shared = fanout.counts()
    # Each event executed once, for all five; the version loaded once, not five times.
    assert (now_executed - executed, now_shared - shared) == (2, 8)
    assert loads[records.ModelVersion.LABEL] == 1


def test_what_the_caller_may_see_and_what_it_asked_keep_executions_apart(
    as_role: Any, loads: Counter[str]
) -> None:
    ana = as_role("writer", name="ana")
    # Same roles, but limited to a project; or every project, but other roles: not the
    # same answer to share.
    scoped = as_role("writer", name="scoped", projects=["default"])
    reader = as_role("reader", name="reader")
    other_kinds = {"types": ["VERSION_REGISTERED", "VERSION_APPROVED"]}
    with ExitStack() as stack:
        sockets = [
            stack.enter_context(subscription(ws_url(ana), _auth(ana), {}, query=WATCH)),
            stack.enter_context(subscription(ws_url(ana), _auth(ana), {}, query=WATCH)),
            stack.enter_context(subscription(ws_url(ana), _auth(scoped), {}, query=WATCH)),
            stack.enter_context(subscription(ws_url(ana), _auth(ana), other_kinds, query=WATCH)),
            stack.enter_context(subscription(ws_url(ana), _auth(reader), {}, query=WATCH)),
        ]
        time.sleep(0.5)
        executed, shared = fanout.counts()
        register(ana, "v1")
        versions = [
            next(e for e in (next_event(ws), next_event(ws)) if e["type"] == "VERSION_REGISTERED")
            for ws in (*sockets[:3], sockets[4])
        ]
        versions.append(next_event(sockets[3]))  # it takes versions only
    assert all(e["modelVersion"] == {"name": "v1", "approvalStatus": "NONE"} for e in versions)
    now_executed, now_shared = fanout.counts()
    # The model's event: 3 keys (ana, scoped, reader; the filtered one never sees it), 1
    # shared. The version's: 4 keys (ana, scoped, reader, ana with other variables), 1 shared.
    assert (now_executed - executed, now_shared - shared) == (7, 2)
    assert loads[records.ModelVersion.LABEL] == 4


def test_a_revoked_token_ends_at_the_next_event_though_another_executed_it(
    as_role: Any, settings: Any
) -> None:
    writer = as_role("writer", name="w")
    _, doomed = make_token(settings, "doomed", ["reader"])
    _, kept = make_token(settings, "kept", ["reader"])
    # The kept token's subscriber subscribes first, so it is the one woken first that
    # executes each event (asyncio wakes waiters in order); the doomed one's gets its answer.
    with (
        subscription(ws_url(writer), f"Bearer {kept}", {}, query=WATCH) as stays,
        subscription(ws_url(writer), f"Bearer {doomed}", {}, query=WATCH) as goes,
    ):
        time.sleep(0.5)
        register(writer, "v1")
        for ws in (stays, goes):
            assert [next_event(ws)["type"] for _ in range(2)] == [
                "MODEL_REGISTERED",
                "VERSION_REGISTERED",
            ]
        revoke(settings, doomed)
        register(writer, "v2")  # the 30 s check is far off: the event itself ends it
        ended = next_message(goes)
        assert ended["payload"]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert next_message(goes) == {"id": "1", "type": "complete"}
        assert next_event(stays)["versionName"] == "v2"

"""Registry events older than the retention are deleted, oldest first; whoever resumes
after a deleted one is told (EXPIRED), never left with a silent gap: the log, a
subscription, a webhook. Through the real server and Neo4j."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import neo4j
import pytest

from lineagehub.graph import events, identity
from lineagehub.graph.errors import Expired
from lineagehub.graph.store import Store
from tests.api.test_approvals_aliases import register
from tests.api.test_registry_events import LOG, next_message, subscription, ws_url
from tests.api.test_webhooks import (
    CREATE,
    STATUS,
    UPDATE,
    Receiver,
    create,
    eventually,
    receiver,
)
from tests.conftest import Api, Client, ThreadedServer, with_store

__all__ = ["receiver"]  # the fixture, from the webhook tests

RETENTION = timedelta(days=30)
MISSED = "{ webhooks { missedThroughSeq lastError failures } }"
PAGE = "query($a: Long!) { registryEvents(afterSeq: $a) { prunedSeq events { seq } } }"


def age(db: neo4j.Driver, *seqs: int) -> None:
    """Make these events 40 days old (past the 30-day retention)."""
    with db.session() as session:
        session.run(
            "MATCH (r:RegistryEvent) WHERE r.seq IN $seqs SET r.at = r.at - duration('P40D')",
            seqs=list(seqs),
        ).consume()


def prune(settings: Any) -> int:
    async def work(store: Store) -> int:
        return await events.prune(store, identity.now() - RETENTION)

    return with_store(settings, work)


def seqs(client: Api, after: int = 0) -> list[int]:
    page = client(LOG, {"after": after})["registryEvents"]
    return [e["seq"] for e in page["events"]]


@pytest.fixture
def ana(as_role: Any) -> Client:
    made: Client = as_role("writer", name="ana")
    return made


def test_the_oldest_events_go_and_resuming_after_one_of_them_is_expired(
    ana: Client, db: neo4j.Driver, settings: Any
) -> None:
    register(ana, "v1")
    register(ana, "v2")
    register(ana, "v3")
    first, second, third, fourth = seqs(ana)  # the model, then three versions
    # The first two are old; so is the fourth, but the third is not: the log stays one
    # unbroken range, so the fourth waits until the third goes.
    age(db, first, second, fourth)
    assert prune(settings) == 2
    assert seqs(ana) == [third, fourth]  # afterSeq 0: from the oldest kept
    page = ana(PAGE, {"a": second})["registryEvents"]
    assert ([e["seq"] for e in page["events"]], page["prunedSeq"]) == ([third, fourth], second)

    error = ana.post(PAGE, {"a": first}).error()
    assert error["extensions"]["code"] == "EXPIRED"
    assert (error["extensions"]["field"], error["extensions"]["prunedSeq"]) == ("afterSeq", second)
    assert f"events {second} to {second} were deleted" in error["message"]

    # A subscription resuming there is refused the same way.
    with subscription(ws_url(ana), ana.http.headers["Authorization"], {"after": first}) as ws:
        message = next_message(ws)
        assert message["type"] == "error", message
        assert message["payload"][0]["extensions"]["code"] == "EXPIRED"
    assert prune(settings) == 0  # nothing more is old enough to go


def test_a_listener_left_behind_by_pruning_ends_with_expired(
    ana: Client, db: neo4j.Driver, settings: Any
) -> None:
    register(ana, "v1")
    register(ana, "v2")
    first, second, _ = seqs(ana)
    age(db, first, second)
    prune(settings)

    async def listen(store: Store) -> None:
        hub = events.EventHub(store, poll_seconds=0.1)
        try:
            async for _ in hub.listen(first, lambda _: True):
                pytest.fail("an event after a gap")
        finally:
            await hub.close()

    with pytest.raises(Expired) as raised:
        with_store(settings, lambda store: asyncio.wait_for(listen(store), 10))
    assert raised.value.details == {"prunedSeq": second}


def test_a_webhook_that_was_off_past_the_retention_says_what_it_missed(
    as_role: Any, db: neo4j.Driver, settings: Any, receiver: Receiver
) -> None:
    root = as_role("admin", name="root")
    webhook_id, _ = create(root, receiver.url)
    root(UPDATE, {"id": webhook_id, "input": {"active": False}})
    register(root, "v1")
    register(root, "v2")
    first, second, third = seqs(root)
    age(db, first, second)
    prune(settings)
    # Resuming from a deleted event is refused outright.
    refused = root.post(UPDATE, {"id": webhook_id, "input": {"afterSeq": first}}).error()
    assert (refused["extensions"]["code"], refused["extensions"]["field"]) == (
        "EXPIRED",
        "input.afterSeq",
    )
    made = root.post(
        CREATE, {"input": {"name": "late", "url": receiver.url, "afterSeq": first}}
    ).error()
    assert (made["extensions"]["code"], made["extensions"]["field"]) == (
        "EXPIRED",
        "input.afterSeq",
    )
    root(UPDATE, {"id": webhook_id, "input": {"active": True}})
    got = receiver.wait_for(1)
    assert got[0].event["seq"] == third  # what was kept is sent
    eventually(lambda: root(STATUS)["webhooks"][0]["deliveredSeq"] == third)
    status = root(MISSED)["webhooks"][0]
    assert status == {"missedThroughSeq": second, "lastError": None, "failures": 0}
    # Sending the whole log again (afterSeq 0) starts from the oldest kept: nothing missed.
    moved = root(UPDATE, {"id": webhook_id, "input": {"afterSeq": 0}})["updateWebhook"]
    assert moved["deliveredSeq"] == second
    got = receiver.wait_for(2)
    assert got[1].event["seq"] == third
    assert root(MISSED)["webhooks"][0]["missedThroughSeq"] is None


def test_a_server_deletes_old_events_by_itself(
    settings: Any, as_role: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events, "PRUNE_SECONDS", 0.5)
    short = settings.model_copy(update={"event_retention_days": 1 / 86400})  # one second
    with ThreadedServer(short) as server:
        writer = as_role("writer", name="w")
        client = Client(server.url, writer.http.headers["Authorization"].split(" ", 1)[1])
        try:
            register(client, "v1")
            assert len(seqs(client)) == 2
            deadline = time.monotonic() + 15
            while seqs(client):
                assert time.monotonic() < deadline, "old events were not deleted"
                time.sleep(0.2)
            assert client(PAGE, {"a": 0})["registryEvents"]["prunedSeq"] == 2
        finally:
            client.http.close()


def test_a_lost_counter_starts_again_above_the_deleted_events(
    ana: Client, db: neo4j.Driver, settings: Any
) -> None:
    register(ana, "v1")
    first, second = seqs(ana)
    age(db, first, second)
    assert prune(settings) == 2  # none is left
    with db.session() as session:
        session.run("MATCH (s:Sequence {name: 'registryEvent'}) DELETE s").consume()
    register(ana, "v2")
    # Numbered after the deleted ones, not from 1 again (which would be "expired").
    assert seqs(ana) == [second + 1]
    assert ana(PAGE, {"a": second})["registryEvents"]["prunedSeq"] == second

"""Store.read against real Neo4j: auto-commit reads, retried when the driver says so."""

from __future__ import annotations

import time
from typing import Any

import pytest
from neo4j import exceptions as neo4j_errors

from lineagehub.graph.errors import Unavailable
from lineagehub.graph.store import Store, Tx, count_round_trips
from lineagehub.settings import Settings
from tests.conftest import with_store


class Flaky(Store):
    """A real store whose first ``failures`` reads fail as the driver would on a leader
    switch (retryable) or with ``error``."""

    def __init__(self, store: Store, failures: int, error: Exception) -> None:
        super().__init__(store.driver, store.database)
        self.read_retry_seconds = 1.0
        self.failures = failures
        self.error = error
        self.attempts = 0

    async def _auto_commit_read(self, query: str, params: dict[str, Any]) -> Any:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise self.error
        return await super()._auto_commit_read(query, params)


def test_reads_see_writes_made_just_before(settings: Settings) -> None:
    async def work(store: Store) -> list[int]:
        seen = []
        for i in range(20):

            async def change(tx: Tx, i: int = i) -> None:
                await tx.run("MERGE (n:ReadProbe) SET n.v = $v", {"v": i})

            await store.write(change)
            rows = await store.read("MATCH (n:ReadProbe) RETURN n.v AS v")
            seen.append(rows[0]["v"])
        await store.write(lambda tx: tx.run("MATCH (n:ReadProbe) DELETE n"))
        return seen

    assert with_store(settings, work) == list(range(20))


def test_a_retryable_failure_is_retried_and_counted_once(settings: Settings) -> None:
    async def work(store: Store) -> tuple[list[dict[str, Any]], int, int]:
        flaky = Flaky(store, 3, neo4j_errors.SessionExpired("leader switch"))
        with count_round_trips() as trips:
            rows = await flaky.read("RETURN 41 + 1 AS answer")
        return rows, flaky.attempts, trips.count

    rows, attempts, trips = with_store(settings, work)
    assert rows == [{"answer": 42}]
    assert attempts == 4
    assert trips == 1


def test_retries_end_with_unavailable_when_their_time_is_up(settings: Settings) -> None:
    async def work(store: Store) -> tuple[int, float]:
        flaky = Flaky(store, 1000, neo4j_errors.ServiceUnavailable("gone"))
        began = time.monotonic()
        with pytest.raises(Unavailable, match="not available"):
            await flaky.read("RETURN 1 AS one")
        return flaky.attempts, time.monotonic() - began

    attempts, seconds = with_store(settings, work)
    assert attempts > 3  # backing off: 50 ms, then about twice as long each time
    assert seconds <= 1.5


def test_a_failure_that_is_not_retryable_is_not_retried(settings: Settings) -> None:
    async def work(store: Store) -> int:
        flaky = Flaky(store, 0, neo4j_errors.ServiceUnavailable("unused"))
        with pytest.raises(neo4j_errors.CypherSyntaxError):
            await flaky.read("RETURN 1 +")
        return flaky.attempts

    assert with_store(settings, work) == 1

"""Keyed reads of concurrent requests share Bolt queries (graph/coalesce.py), against real
Neo4j: each reader gets its own answer, as if it had read alone; readers of another scope
never share a batch; a failed batch fails only its own readers; a read never joins a query
already sent; a cancelled reader leaves the others' batch running."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from neo4j import exceptions as neo4j_errors

from lineagehub.graph import entities, records, serving, versions
from lineagehub.graph.errors import Unavailable
from lineagehub.graph.identity import ROLES, Principal, current_principal
from lineagehub.graph.lineage import LINEAGE_BATCH, Direction, Lineage, LineageNode, LineageSpec
from lineagehub.graph.store import Store, count_round_trips
from lineagehub.settings import Settings
from tests.api.lineage_scenario import Scenario, build
from tests.conftest import Api, with_store


class Watched(Store):
    """A real store that counts the Bolt queries it sends; ``gate``, when set, holds each
    answer back (after Neo4j ran the query) until it opens; ``fail`` makes the queries with
    these numbers (1-based) fail as Neo4j would refuse them."""

    def __init__(self, store: Store, in_flight: int) -> None:
        super().__init__(store.driver, store.database)
        self.coalescer.in_flight = in_flight
        self.sent: list[int] = []  # keys per query sent
        self.gate: asyncio.Event | None = None
        self.fail: set[int] = set()
        self.answered = asyncio.Event()  # Neo4j answered a query

    async def _auto_commit_read(self, query: str, params: dict[str, Any]) -> Any:
        self.sent.append(len(params.get("coalesced", ())))
        if len(self.sent) in self.fail:
            raise neo4j_errors.ClientError("refused")
        answer = await super()._auto_commit_read(query, params)
        self.answered.set()
        if self.gate is not None:
            await self.gate.wait()
        return answer


@pytest.fixture
def scenario(api: Api) -> Scenario:
    return build(api)


def _reads(scenario: Scenario) -> list[tuple[str, Any]]:
    """Keyed reads of three kinds, found and missing."""
    spec = LineageSpec(direction=Direction.UPSTREAM, max_depth=4)
    return [
        ("by name", ("churn-predictor", "v1")),
        ("by name", ("churn-predictor", "v2")),
        ("by name", ("churn-predictor", "v9")),
        ("by name", ("no-such-model", "v1")),
        ("ahead", ("churn-predictor", "v2", spec)),
        ("ahead", ("churn-predictor", "v1", spec)),
        ("service", ("prod", "churn-api")),
        ("service", ("prod", "churn-shadow")),
        ("service", ("prod", "nothing")),
        ("ids", [scenario.v1, scenario.v2, "mv_missing"]),
        ("ids", [scenario.v2]),
    ]


async def _read(store: Store, kind: str, args: Any) -> Any:
    if kind == "by name":
        return await versions.get_by_name(store, *args)
    if kind == "ahead":
        model, name, spec = args
        return await versions.get_with_lineage(store, [spec], model_name=model, version_name=name)
    if kind == "service":
        return await serving.get_service_and_version(store, *args)
    return await entities.get_many(store, records.ModelVersion, args)


def _comparable(answer: Any) -> Any:
    """An answer with its lineage nodes (which compare by identity) as plain values."""
    if isinstance(answer, LineageNode):
        return (answer.labels, answer.props, answer.degree, answer.path)
    if isinstance(answer, Lineage):
        return [_comparable(part) for part in astuple_shallow(answer)]
    if isinstance(answer, list | tuple):
        return [_comparable(part) for part in answer]
    return answer


def astuple_shallow(value: Any) -> tuple[Any, ...]:
    return tuple(getattr(value, f.name) for f in dataclasses.fields(value))


def test_concurrent_reads_share_queries_and_each_gets_its_own_answer(
    settings: Settings, scenario: Scenario
) -> None:
    reads = _reads(scenario)

    async def work(store: Store) -> tuple[list[Any], list[Any], list[int], list[int]]:
        alone = Watched(store, in_flight=0)
        expected = [await _read(alone, kind, args) for kind, args in reads]
        shared = Watched(store, in_flight=1)

        async def counted(kind: str, args: Any) -> tuple[Any, int]:
            with count_round_trips() as trips:
                return await _read(shared, kind, args), trips.count

        answers = await asyncio.gather(*(counted(kind, args) for kind, args in reads))
        return expected, [a for a, _ in answers], [t for _, t in answers], shared.sent

    expected, answers, trips, sent = with_store(settings, work)
    assert [_comparable(a) for a in answers] == [_comparable(e) for e in expected]
    assert expected[0] is not None and expected[2] is None and expected[3] is None
    assert expected[6][1] is not None  # churn-api serves v2
    assert set(expected[9]) == {scenario.v1, scenario.v2}
    assert trips == [1] * len(reads)  # each request still counts the one read it made
    # Four kinds of query (by name: 1, 3; with a lineage walk: 1, 1; service: 1, 2;
    # by ids: 3 keys, then 1) the first read of each goes alone, the others of its kind wait
    # and go together.
    assert sorted(sent) == [1, 1, 1, 1, 1, 2, 3, 3]
    assert len(sent) < len(reads)


def test_many_interleaved_readers_each_get_their_own_answer(
    settings: Settings, scenario: Scenario
) -> None:
    reads = _reads(scenario) * 40
    random.Random(7).shuffle(reads)

    async def work(store: Store) -> tuple[list[Any], list[Any], list[int], bool]:
        alone = Watched(store, in_flight=0)
        expected = [await _read(alone, kind, args) for kind, args in reads]
        shared = Watched(store, in_flight=2)

        async def read(i: int, kind: str, args: Any) -> Any:
            await asyncio.sleep(i % 7 * 0.001)  # arrive while others run and wait
            return await _read(shared, kind, args)

        answers = await asyncio.gather(*(read(i, *r) for i, r in enumerate(reads)))
        return expected, list(answers), shared.sent, shared.coalescer.idle

    expected, answers, sent, idle = with_store(settings, work)
    assert [_comparable(a) for a in answers] == [_comparable(e) for e in expected]
    # every key sent once: none lost, none twice
    assert sum(sent) == sum(len(args) if kind == "ids" else 1 for kind, args in reads)
    assert len(sent) < len(reads) / 2
    assert idle


def test_readers_of_another_scope_never_share_a_batch(
    settings: Settings, scenario: Scenario
) -> None:
    elsewhere = Principal(name="elsewhere", roles=frozenset(ROLES), projects=frozenset({"other"}))

    async def work(store: Store) -> tuple[list[Any], list[int]]:
        shared = Watched(store, in_flight=1)

        async def read(scoped: bool) -> Any:
            if scoped:
                current_principal.set(elsewhere)
            return await versions.get_by_name(shared, "churn-predictor", "v1")

        answers = await asyncio.gather(*(read(i % 2 == 1) for i in range(8)))
        return list(answers), shared.sent

    answers, sent = with_store(settings, work)
    assert [a is not None for a in answers] == [True, False] * 4
    assert all(a.id == scenario.v1 for a in answers if a is not None)
    assert sorted(sent) == [1, 1, 3, 3]  # each scope: one alone, then its own batch


def test_a_failed_batch_fails_its_readers_only_and_reads_go_on(
    settings: Settings, scenario: Scenario
) -> None:
    async def work(store: Store) -> tuple[list[Any], Any, list[int]]:
        shared = Watched(store, in_flight=1)
        shared.fail = {2}  # the batch that follows the first read
        answers = await asyncio.gather(
            *(versions.get_by_name(shared, "churn-predictor", "v1") for _ in range(4)),
            return_exceptions=True,
        )
        after = await versions.get_by_name(shared, "churn-predictor", "v2")
        return list(answers), after, shared.sent

    answers, after, sent = with_store(settings, work)
    assert answers[0].id == scenario.v1
    failed = answers[1:]
    assert all(isinstance(a, neo4j_errors.ClientError) for a in failed)
    # each reader raised an exception of its own (so logs show each its own traceback),
    # all caused by the batch's one failure
    assert len({id(a) for a in failed}) == 3
    assert len({id(a.__cause__) for a in failed}) == 1
    assert after.id == scenario.v2
    assert sent == [1, 3, 1]


def test_a_read_of_several_keys_never_holds_up_point_reads(
    settings: Settings, scenario: Scenario
) -> None:
    async def work(store: Store) -> tuple[int, Any, list[int]]:
        shared = Watched(store, in_flight=1)
        shared.gate = asyncio.Event()
        page = asyncio.ensure_future(
            entities.get_many(shared, records.ModelVersion, [scenario.v1, scenario.v2])
        )
        await shared.answered.wait()
        shared.answered.clear()
        # The page's query holds no slot: a point read of the same kind goes at once, and
        # Neo4j answers it while the page's answer is still held back.
        point = asyncio.ensure_future(
            entities.get_many(shared, records.ModelVersion, [scenario.v1])
        )
        await shared.answered.wait()
        shared.gate.set()
        return len(await page), await point, shared.sent

    found, point, sent = with_store(settings, work)
    assert found == 2
    assert list(point) == [scenario.v1]
    assert sent == [2, 1]


def test_reads_that_walk_lineage_share_queries_a_few_at_a_time(
    settings: Settings, scenario: Scenario
) -> None:
    spec = LineageSpec(direction=Direction.UPSTREAM, max_depth=4)

    async def work(store: Store) -> tuple[list[Any], list[int]]:
        shared = Watched(store, in_flight=1)
        answers = await asyncio.gather(
            *(
                versions.get_with_lineage(
                    shared, [spec], model_name="churn-predictor", version_name=f"v{1 + i % 2}"
                )
                for i in range(20)
            )
        )
        return list(answers), shared.sent

    answers, sent = with_store(settings, work)
    assert [version.name for version, _ in answers] == ["v1", "v2"] * 10
    assert sent == [1, LINEAGE_BATCH, LINEAGE_BATCH, 3]


def test_closing_the_store_fails_waiting_readers_as_unavailable(
    settings: Settings, scenario: Scenario
) -> None:
    async def work(store: Store) -> list[Any]:
        shared = Watched(store, in_flight=1)
        shared.gate = asyncio.Event()
        first = asyncio.ensure_future(versions.get_by_name(shared, "churn-predictor", "v1"))
        await shared.answered.wait()
        waiting = [
            asyncio.ensure_future(versions.get_by_name(shared, "churn-predictor", "v2"))
            for _ in range(3)
        ]
        await asyncio.sleep(0.05)
        await shared.coalescer.close()
        shared.gate.set()
        answers = await asyncio.gather(first, *waiting, return_exceptions=True)
        assert shared.coalescer.idle
        return list(answers)

    first, *waiting = with_store(settings, work)
    assert first.id == scenario.v1
    assert all(isinstance(a, Unavailable) for a in waiting)


def test_a_read_never_joins_a_query_already_sent(
    settings: Settings, scenario: Scenario, api: Api
) -> None:
    """A query already run cannot have seen a write made after it: a read that comes
    after the write waits for the next query, which sees it."""

    async def work(store: Store) -> tuple[Any, Any, list[int]]:
        shared = Watched(store, in_flight=1)
        shared.gate = asyncio.Event()
        before = asyncio.ensure_future(versions.get_by_name(shared, "churn-predictor", "v3"))
        await shared.answered.wait()  # Neo4j has run ``before``'s query
        await asyncio.to_thread(
            api,
            'mutation { registerModel(input: {model: {name: "churn-predictor"}, '
            'version: {name: "v3"}}) { version { id } } }',
        )
        after = asyncio.ensure_future(versions.get_by_name(shared, "churn-predictor", "v3"))
        await asyncio.sleep(0.05)
        shared.gate.set()
        return await before, await after, shared.sent

    before, after, sent = with_store(settings, work)
    assert before is None
    assert after is not None and after.name == "v3"
    assert sent == [1, 1]


def test_a_cancelled_reader_leaves_the_others_batch_running(
    settings: Settings, scenario: Scenario
) -> None:
    async def work(store: Store) -> tuple[Any, bool, Any, list[int]]:
        shared = Watched(store, in_flight=1)
        shared.gate = asyncio.Event()
        first = asyncio.ensure_future(versions.get_by_name(shared, "churn-predictor", "v1"))
        await shared.answered.wait()
        dropped = asyncio.ensure_future(versions.get_by_name(shared, "churn-predictor", "v1"))
        kept = asyncio.ensure_future(versions.get_by_name(shared, "churn-predictor", "v2"))
        await asyncio.sleep(0.05)
        dropped.cancel()
        shared.gate.set()
        answers = await asyncio.gather(first, dropped, kept, return_exceptions=True)
        return answers[0], isinstance(answers[1], asyncio.CancelledError), answers[2], shared.sent

    first, cancelled, kept, sent = with_store(settings, work)
    assert first.id == scenario.v1
    assert cancelled
    assert kept.id == scenario.v2
    assert sent == [1, 2]


QUERIES = [
    (
        'query { modelVersion(model: "churn-predictor", name: "v2") '
        "{ id name trainingDatasets { uri } code { commit } } }",
        1,
    ),
    ('query { modelVersion(model: "churn-predictor", name: "v1") { id name author } }', 1),
    ('query { modelVersion(model: "churn-predictor", name: "nope") { id } }', 1),
    (
        'query { inferenceService(environment: "prod", name: "churn-api") '
        "{ id name modelVersion { name } } }",
        1,
    ),
    ('query { inferenceService(environment: "prod", name: "churn-shadow") { id url } }', 1),
]


def test_concurrent_http_requests_get_the_answers_they_get_alone(
    api: Api, scenario: Scenario
) -> None:
    alone = [api.post(query).body for query, _ in QUERIES]
    assert all("errors" not in body for body in alone)
    assert alone[0]["data"]["modelVersion"]["trainingDatasets"]
    assert alone[2]["data"]["modelVersion"] is None
    jobs = [i % len(QUERIES) for i in range(200)]
    with ThreadPoolExecutor(max_workers=32) as pool:
        together = list(pool.map(lambda i: api.post(QUERIES[i][0]).body, jobs))
    for i, body in zip(jobs, together, strict=True):
        assert body["data"] == alone[i]["data"]
        assert "errors" not in body
        assert body["extensions"]["boltRoundTrips"] == QUERIES[i][1]

"""Lineage through ``/graphql`` versus the same traversal hand-written in Cypher.

    python -m bench.lineage --neo4j-uri bolt://127.0.0.1:17687 [--api-url URL]

Picks start nodes of the generated graph whose lineage is about 20, 200 and 2,000 nodes
(upstream of a service; downstream of a dataset), then times:

- lineagehub: ``lineage(start, direction, maxDepth, limit)`` over HTTP against a
  ``lineagehub serve`` process (started here unless ``--api-url`` is given);
- the floor: one hand-written Cypher query on the raw async driver returning the same
  fields (ids, names, types, degrees, edges, truncated), plus ``json.dumps``. It walks
  level by level with directed expansions, so it stays proportional to the answer.

Then a breakdown of where lineagehub's time goes, stage by stage, for each size.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import neo4j

from bench.common import (
    RESULTS,
    Answer,
    ApiServer,
    GraphQLClient,
    add_neo4j_args,
    lane_timer,
    neo4j_driver,
    raw_read,
    say,
    store_for,
)
from bench.report import Latency, Row, Table, percentile, save
from lineagehub.graph import lineage as engine
from lineagehub.graph.store import Store, count_round_trips
from lineagehub.graph.vocabulary import EDGE_TYPES, LINEAGE_EDGE_TYPES, Flow
from lineagehub.settings import Settings

QUERY = """
query Lineage($start: ID!, $direction: LineageDirection!, $maxDepth: Int!, $limit: Int!) {
  lineage(start: $start, direction: $direction, maxDepth: $maxDepth, limit: $limit) {
    nodes { degree node { __typename id name } }
    edges { from to type }
    truncated
  }
}
"""
# Every field QUERY selects below ``lineage`` (the API reads only what they show).
QUERY_FIELDS = {"nodes", "degree", "node", "__typename", "id", "name", "edges", "from", "to"}
QUERY_FIELDS |= {"type", "truncated"}
# (answer size, direction, maxDepth). Upstream of a service at lineagehub's default depth;
# downstream of datasets at depth 3, because deeper ones take lineagehub minutes (the
# depth sweep shows why).
TARGETS = ((20, "UPSTREAM", 5), (200, "DOWNSTREAM", 3), (2000, "DOWNSTREAM", 3))
SWEEP_DEPTHS = (1, 2, 3, 4, 5)
LIMIT = 5000  # lineagehub's cap; high enough that no chosen answer is cut
TIMEOUT = 60.0  # seconds one lineagehub request may take before it is given up


def _types(direction: str) -> tuple[list[str], list[str]]:
    """Edge types walked (incoming, outgoing) from a node, one step ``direction``."""
    forward = [t for t in LINEAGE_EDGE_TYPES if EDGE_TYPES[t].flow is Flow.FORWARD]
    backward = [t for t in LINEAGE_EDGE_TYPES if EDGE_TYPES[t].flow is Flow.BACKWARD]
    # Upstream, a FORWARD edge b->a makes b a cause of a: walk it backwards.
    return (forward, backward) if direction == "UPSTREAM" else (backward, forward)


def floor_query(direction: str, depth: int, *, count_only: bool = False) -> str:
    """Breadth-first, one level per step, directed expansions: each node is reached once,
    at its smallest degree. Types and the depth come from code, never from input."""
    incoming, outgoing = _types(direction)
    step = (
        "CALL (frontier, seen) { UNWIND frontier AS a CALL (a) { "
        f"MATCH (a)<-[r:{'|'.join(incoming)}]-(b) WHERE r.until IS NULL RETURN b UNION "
        f"MATCH (a)-[r:{'|'.join(outgoing)}]->(b) WHERE r.until IS NULL RETURN b }} "
        "WITH DISTINCT b WHERE NOT b IN seen RETURN collect(b) AS next } "
        "WITH s, seen + next AS seen, next AS frontier, levels + [next] AS levels "
    )
    query = "MATCH (s:Node {id: $start}) WITH s, [s] AS seen, [s] AS frontier, [] AS levels "
    query += step * depth
    query += (
        "WITH s, [d IN range(1, size(levels)) | [n IN levels[d - 1] | {n: n, degree: d}]] AS lv "
        "WITH s, reduce(acc = [], l IN lv | acc + l) AS reached "
    )
    if count_only:
        return query + "RETURN size(reached) AS reachable"
    rel = "|".join(LINEAGE_EDGE_TYPES)
    return query + (
        "WITH s, reached, size(reached) AS reachable "
        "CALL (reached) { UNWIND reached AS x WITH x ORDER BY x.degree, x.n.id "
        "  RETURN collect(x)[0..$limit] AS kept } "
        "WITH s, kept, reachable, [s] + [k IN kept | k.n] AS members "
        "CALL (members) { UNWIND members AS a "
        f"  MATCH (a)-[r:{rel}]->(b) WHERE b IN members AND r.until IS NULL "
        "  RETURN collect({from: a.id, to: b.id, type: type(r)}) AS edges } "
        "RETURN [k IN kept | {degree: k.degree, id: k.n.id, name: k.n.name, "
        "  typename: [l IN labels(k.n) WHERE NOT l IN ['Node', 'Artifact']][0]}] AS nodes, "
        "  edges, reachable > $limit AS truncated"
    )


@dataclass(frozen=True)
class Start:
    node_id: str
    direction: str
    depth: int
    size: int  # nodes in the answer (start excluded)
    target: int

    @property
    def label(self) -> str:
        what = "service" if self.node_id.startswith("svc_") else "dataset"
        return f"{self.direction.lower()} of a {what}, maxDepth {self.depth} (~{self.target})"


async def _reachable(driver: neo4j.AsyncDriver, node_id: str, direction: str, depth: int) -> int:
    records, _, _ = await driver.execute_query(
        floor_query(direction, depth, count_only=True), {"start": node_id}
    )
    size: int = records[0]["reachable"] if records else 0
    return size


async def pick_starts(
    driver: neo4j.AsyncDriver, targets: tuple[tuple[int, str, int], ...] = TARGETS
) -> list[Start]:
    """For each target size, the candidate whose lineage size is closest to it."""
    services, _, _ = await driver.execute_query(
        "MATCH (s:InferenceService) WHERE s.servedVersionId IS NOT NULL "
        "RETURN s.id AS id ORDER BY s.id LIMIT 40"
    )
    datasets, _, _ = await driver.execute_query(
        "MATCH (d:Dataset) WITH d, COUNT { (d)-[:INPUT_TO]->() } AS fan WHERE fan > 0 "
        "RETURN d.id AS id, fan ORDER BY fan DESC, d.id LIMIT 3000"
    )
    picked: list[Start] = []
    for target, direction, depth in targets:
        if direction == "UPSTREAM":
            candidates = [r["id"] for r in services]
        else:
            # A dataset's downstream is roughly 3-4 nodes per run it feeds: try the closest.
            ranked = sorted(datasets, key=lambda r: (abs(r["fan"] * 3.5 - target), r["id"]))
            candidates = [r["id"] for r in ranked[:12]]
        sizes = [(await _reachable(driver, c, direction, depth), c) for c in candidates]
        size, best = min(sizes, key=lambda sc: (abs(sc[0] - target), sc[1]))
        picked.append(Start(best, direction, depth, size, target))
    return picked


def _variables(start: Start) -> dict[str, Any]:
    return {
        "start": start.node_id,
        "direction": start.direction,
        "maxDepth": start.depth,
        "limit": LIMIT,
    }


async def run_floor(driver: neo4j.AsyncDriver, start: Start) -> tuple[float, Any]:
    """The floor: the hand-written query, decoded, as JSON. (seconds, answer)."""
    started = time.perf_counter()
    records = await raw_read(
        driver, floor_query(start.direction, start.depth), {"start": start.node_id, "limit": LIMIT}
    )
    row = records[0]
    nodes = [
        {
            "degree": n["degree"],
            "node": {"__typename": n["typename"], "id": n["id"], "name": n["name"]},
        }
        for n in row["nodes"]
    ]
    edges = [{"from": e["from"], "to": e["to"], "type": e["type"]} for e in row["edges"]]
    answer = {"lineage": {"nodes": nodes, "edges": edges, "truncated": row["truncated"]}}
    json.dumps({"data": answer})
    return time.perf_counter() - started, answer


async def give_up(driver: neo4j.AsyncDriver) -> None:
    """End lineagehub's lineage queries still running in Neo4j after a client timeout, so
    they do not slow down what is measured next."""
    records, _, _ = await driver.execute_query(
        "SHOW TRANSACTIONS YIELD transactionId, currentQuery "
        "WHERE currentQuery CONTAINS 'ANY SHORTEST' RETURN transactionId"
    )
    ids = [r["transactionId"] for r in records]
    if ids:
        await driver.execute_query("TERMINATE TRANSACTIONS $ids", {"ids": ids})


async def ask(
    client: GraphQLClient, driver: neo4j.AsyncDriver, start: Start, patience: float
) -> Answer | None:
    """lineagehub's answer, or None when it took longer than ``patience`` seconds."""
    try:
        return await asyncio.wait_for(client.must(QUERY, _variables(start)), patience)
    except TimeoutError:
        await client.close()  # the connection is mid-response: drop it
        await give_up(driver)
        return None


class TimedStore(Store):
    """lineagehub's Store, adding up the time its reads take (Neo4j + driver decode)."""

    read_seconds = 0.0

    async def read(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await super().read(*args, **kwargs)
        finally:
            self.read_seconds += time.perf_counter() - started


@dataclass
class Budget:
    """At most ``iterations`` rounds, stopping early once ``seconds`` have passed."""

    iterations: int
    seconds: float

    async def rounds(self, one: Callable[[], Awaitable[bool]]) -> None:
        """Run ``one`` until the budget is spent or it returns False."""
        deadline = time.monotonic() + self.seconds
        for _ in range(self.iterations):
            if not await one() or time.monotonic() > deadline:
                return


@dataclass
class Measured:
    row: Row
    api_seconds: list[float]
    timed_out: bool


async def measure(
    client: GraphQLClient,
    driver: neo4j.AsyncDriver,
    start: Start,
    budget: Budget,
    *,
    warmup: int,
    patience: float,
    label: str | None = None,
) -> Measured:
    """API and floor, interleaved so drifts hit both alike."""
    api: list[float] = []
    floor: list[float] = []
    trips: list[int] = []
    timed_out = False
    for _ in range(warmup):
        await run_floor(driver, start)

    async def one() -> bool:
        nonlocal timed_out
        answer = await ask(client, driver, start, patience)
        if answer is None:
            timed_out = True
            return False
        api.append(answer.seconds)
        trips.append(answer.trips)
        seconds, _ = await run_floor(driver, start)
        floor.append(seconds)
        return True

    # Warm-up rounds for the API too, unless a single answer already takes seconds.
    for _ in range(warmup):
        began = time.perf_counter()
        if not await one() or time.perf_counter() - began > 1:
            break
    api.clear()
    floor.clear()
    trips.clear()
    if not timed_out:
        await budget.rounds(one)
    if not floor:
        seconds, _ = await run_floor(driver, start)
        floor.append(seconds)
    lhub = Latency.of(api, max(trips)) if api else None
    note = f"timed out (> {patience:.0f} s)" if timed_out else ""
    row = Row(label or start.label, f"{start.size} nodes", lhub, Latency.of(floor, 1), note)
    return Measured(row, api, timed_out)


async def same_answer(client: GraphQLClient, driver: neo4j.AsyncDriver, start: Start) -> int:
    """The node count both sides answer; raises if their (id, degree) sets differ."""
    answer = await client.must(QUERY, _variables(start))
    _, floor = await run_floor(driver, start)
    got = {(n["node"]["id"], n["degree"]) for n in answer.data["lineage"]["nodes"]}
    want = {(n["node"]["id"], n["degree"]) for n in floor["lineage"]["nodes"]}
    if got != want:
        raise AssertionError(
            f"lineage of {start.node_id}: API and floor disagree on {len(got ^ want)} nodes"
        )
    return len(got)


@dataclass
class Stages:
    """Per-request timings of the layers under the HTTP endpoint, in seconds."""

    reads: list[float] = field(default_factory=list)  # lineagehub's Cypher: Neo4j + decode
    records: list[float] = field(default_factory=list)  # lineage_of minus its read
    executes: list[float] = field(default_factory=list)  # schema.execute in-process
    graphql: list[float] = field(default_factory=list)  # schema.execute minus its read


async def breakdown(
    uri: str, database: str, start: Start, http_seconds: list[float], budget: Budget
) -> Table:
    """Where lineagehub's time goes for one request, stage by stage (p50s, ms)."""
    from lineagehub.api.graphql.context import Context
    from lineagehub.api.graphql.lineage import reads_for

    settings = Settings(neo4j_uri=uri, neo4j_database=database, _env_file=None)  # type: ignore[call-arg]
    plain = store_for(uri, database)
    store = TimedStore(plain.driver, database)
    # The spec the API builds for QUERY, whose selection shows no metric or schema field.
    spec = engine.LineageSpec(
        engine.Direction(start.direction),
        max_depth=start.depth,
        limit=LIMIT,
        **reads_for(QUERY_FIELDS),
    )
    stages = Stages()

    def context() -> Context:
        return Context(store=store, settings=settings, request_id=None)

    async def one() -> bool:
        store.read_seconds = 0.0
        began = time.perf_counter()
        await engine.lineage_of(store, [start.node_id], spec)
        stages.reads.append(store.read_seconds)
        stages.records.append(time.perf_counter() - began - store.read_seconds)
        store.read_seconds = 0.0
        with count_round_trips():
            stages.executes.append(await lane(_variables(start)))
        stages.graphql.append(stages.executes[-1] - store.read_seconds)
        return True

    try:
        # The server answers a document it has seen through its warm lane: time that.
        lane = await lane_timer(settings, QUERY, _variables(start), context)
        await budget.rounds(one)
    finally:
        await plain.close()
    records = p50(stages.records)
    total = p50(http_seconds)
    return stage_table(
        f"Where the time goes: {start.label}, {start.size} nodes",
        [
            ("Neo4j + driver decode (lineagehub's Cypher)", p50(stages.reads)),
            ("rows decoded (labels, properties)", records),
            (
                "GraphQL execution (fast path) and JSON encoding, warm lane",
                max(0.0, p50(stages.graphql) - records),
            ),
            (
                "HTTP, uvicorn, middleware, auth check, client",
                max(0.0, total - p50(stages.executes)),
            ),
        ],
        total,
    )


def stage_table(title: str, stages: list[tuple[str, float]], total: float) -> Table:
    """A breakdown: each stage's p50 (ms) and its share of the whole request's p50. Stages
    are timed in separate runs, so they need not add up exactly."""
    table = Table(title, "-")
    table.notes = [f"{name}|{ms:.2f}|{ms / total:.0%}" for name, ms in stages]
    table.notes.append(f"**HTTP request, total**|{total:.2f}|100%")
    return table


def p50(values: list[float]) -> float:
    return percentile(sorted(v * 1000 for v in values), 50)


async def sweep(
    client: GraphQLClient,
    driver: neo4j.AsyncDriver,
    start: Start,
    *,
    depths: tuple[int, ...],
    patience: float,
) -> Table:
    """The same start at growing maxDepth: lineagehub's time against the answer's size."""
    table = Table(
        f"Depth sweep: {start.direction.lower()} of {start.node_id}",
        "raw Cypher + json.dumps",
    )
    for depth in depths:
        at = replace(start, depth=depth)
        at = replace(at, size=await _reachable(driver, at.node_id, at.direction, depth))
        measured = await measure(
            client,
            driver,
            at,
            Budget(3, 10),
            warmup=1,
            patience=patience,
            label=f"maxDepth {depth}",
        )
        table.rows.append(measured.row)
        say(f"  sweep maxDepth {depth}: {at.size} nodes {measured.row.note}")
        if measured.timed_out:
            break
    return table


async def run(
    uri: str,
    *,
    database: str = "neo4j",
    api_url: str | None = None,
    iterations: int = 50,
    seconds: float = 30.0,
    warmup: int = 3,
    patience: float = TIMEOUT,
    targets: tuple[tuple[int, str, int], ...] = TARGETS,
    depths: tuple[int, ...] = SWEEP_DEPTHS,
    workdir: Path | None = None,
) -> list[Table]:
    async with neo4j_driver(uri) as driver:
        starts = await pick_starts(driver, targets)
        for s in starts:
            say(f"lineage start: {s.label}: {s.node_id} -> {s.size} nodes")
        server = None
        if api_url is None:
            where = workdir or Path(tempfile.mkdtemp(prefix="bench-"))
            server = ApiServer(uri, where, database=database).__enter__()
            api_url = server.url
        client = GraphQLClient(api_url)
        try:
            main = Table("Lineage via /graphql vs hand-written Cypher", "raw Cypher + json.dumps")
            breakdowns = []
            budget = Budget(iterations, seconds)
            for start in starts:
                await same_answer(client, driver, start)
                measured = await measure(
                    client, driver, start, budget, warmup=warmup, patience=patience
                )
                main.rows.append(measured.row)
                say(f"  {start.label}: {len(measured.api_seconds)} requests {measured.row.note}")
                if measured.api_seconds:
                    breakdowns.append(
                        await breakdown(uri, database, start, measured.api_seconds, budget)
                    )
            main.notes.append(
                "Same nodes (ids and degrees checked), edges and fields on both sides; the "
                "floor walks level by level with directed expansions."
            )
            # One sweep is enough to show the shape: the ~200-node downstream start.
            downstream = [s for s in starts if s.direction == "DOWNSTREAM"][:1]
            sweeps = [
                await sweep(client, driver, start, depths=depths, patience=patience)
                for start in downstream
            ]
        finally:
            await client.close()
            if server is not None:
                server.stop()
    return [main, *breakdowns, *sweeps]


def render(table: Table) -> str:
    if table.baseline != "-":
        return table.render()
    lines = [f"### {table.title}", "", "| stage | p50 ms | share |", "|---|---|---|"]
    lines += [f"| {note.replace('|', ' | ')} |" for note in table.notes]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lineage", description=__doc__)
    add_neo4j_args(parser)
    parser.add_argument("--api-url", help="a running lineagehub (default: start one)")
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0, help="time budget per row")
    parser.add_argument("--timeout", type=float, default=TIMEOUT, help="per lineagehub request")
    parser.add_argument("--json", type=Path, help="also write the tables as JSON here")
    args = parser.parse_args(argv)
    tables = asyncio.run(
        run(
            args.neo4j_uri,
            database=args.database,
            api_url=args.api_url,
            iterations=args.iterations,
            seconds=args.seconds,
            patience=args.timeout,
            workdir=RESULTS / "work",
        )
    )
    for table in tables:
        print(render(table))
    save(tables, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Fill Neo4j with a realistic registry of ``--nodes`` nodes, planned from ``--seed``.

    python -m bench.generate --nodes 100000 --seed 1 --neo4j-uri bolt://127.0.0.1:17687 --wipe

Writes exactly lineagehub's storage model (see bench.rows) with batched ``UNWIND`` writes,
one transaction per batch, after making sure lineagehub's constraints exist. The next
batch is built in a worker thread while Neo4j writes the current one. It then checks the
graph it wrote: counts per label and type, and reads through lineagehub.graph.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import neo4j

from bench import plan, rows
from bench.common import add_neo4j_args, neo4j_driver, store_for
from lineagehub.graph import entities, lineage, serving, versions
from lineagehub.graph.constraints import ensure_constraints
from lineagehub.graph.records import RECORD_TYPES
from lineagehub.graph.vocabulary import EDGE_TYPES, NODE_TYPES

T = TypeVar("T")
DEFAULT_BATCH = 10_000


def _datetime(expr: str) -> str:
    return f"datetime({{epochMillis: {expr}}})"


def node_query(label: str) -> str:
    """CREATE one batch of ``label`` nodes. Labels and property names come from the
    vocabulary and bench.rows, never from input."""
    labels = ":".join(("Node", *rows.EXTRA_LABELS.get(label, ()), label))
    sets = [f"n.`{name}` = {_datetime(f'row.t.`{name}`')}" for name in ("createdAt", "updatedAt")]
    sets += [
        f"n.`{name}` = {_datetime(f'row.t.`{name}`')}" for name in rows.TEMPORAL.get(label, ())
    ]
    # Absent history lists stay absent: a list comprehension over null is null.
    sets += [
        f"n.`{name}` = [x IN row.t.`{name}` | {_datetime('x')}]"
        for name in rows.TEMPORAL_LISTS.get(label, ())
    ]
    return f"UNWIND $rows AS row CREATE (n:{labels}) SET n = row.p, {', '.join(sets)}"


def rel_query(edge_type: str) -> str:
    return (
        "UNWIND $rows AS row "
        "MATCH (a:Node {id: row.a}) MATCH (b:Node {id: row.b}) "
        f"CREATE (a)-[r:{edge_type}]->(b) "
        f"SET r.since = {_datetime('row.s')}, "
        f"r.until = CASE WHEN row.u IS NULL THEN null ELSE {_datetime('row.u')} END"
    )


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass
class LoadStats:
    nodes: dict[str, int] = field(default_factory=dict)
    rels: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.nodes.values()) + sum(self.rels.values())

    @property
    def rate(self) -> float:
        return self.total / self.seconds if self.seconds else 0.0


class Progress:
    """One line per label or type, and a running line every few seconds on big ones."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def step(self, what: str, done: int, total: int, started: float, *, final: bool) -> None:
        if self.quiet:
            return
        elapsed = time.perf_counter() - started
        rate = done / elapsed if elapsed else 0.0
        mark = "" if final else " ..."
        print(f"  {what:<20} {done:>9,}/{total:<9,} {rate:>9,.0f}/s{mark}", file=sys.stderr)


async def _write_all(
    driver: neo4j.AsyncDriver,
    database: str,
    query: str,
    items: Iterator[dict[str, Any]],
    *,
    total: int,
    batch: int,
    what: str,
    progress: Progress,
) -> int:
    """Write ``items`` in batches; the next batch is built while this one is written."""
    loop = asyncio.get_running_loop()
    batches = chunks(items, batch)
    done, started, shown = 0, time.perf_counter(), time.perf_counter()
    with ThreadPoolExecutor(max_workers=1) as pool:
        upcoming = loop.run_in_executor(pool, next, batches, None)
        while (current := await upcoming) is not None:
            upcoming = loop.run_in_executor(pool, next, batches, None)
            await driver.execute_query(
                query, {"rows": current}, database_=database, routing_=neo4j.RoutingControl.WRITE
            )
            done += len(current)
            if time.perf_counter() - shown > 5:
                progress.step(what, done, total, started, final=False)
                shown = time.perf_counter()
    progress.step(what, done, total, started, final=True)
    return done


def expected_rels(reg: plan.Registry) -> dict[str, int]:
    return {t: sum(1 for _ in rows.rel_rows(reg, t)) for t in EDGE_TYPES}


async def load(
    driver: neo4j.AsyncDriver,
    reg: plan.Registry,
    *,
    database: str = "neo4j",
    batch: int = DEFAULT_BATCH,
    quiet: bool = False,
) -> LoadStats:
    """Write the planned registry: every node label, then every relationship type."""
    progress = Progress(quiet)
    stats = LoadStats()
    started = time.perf_counter()
    counts = reg.node_counts()
    next_rest_id = 1
    for label in NODE_TYPES:
        stats.nodes[label] = await _write_all(
            driver,
            database,
            node_query(label),
            rows.node_rows(reg, label, next_rest_id),
            total=counts[label],
            batch=batch,
            what=label,
            progress=progress,
        )
        next_rest_id += counts[label]
    # The REST id counter continues after the loaded nodes (see lineagehub.graph.restids).
    await driver.execute_query(
        "MERGE (s:Sequence {name: 'restId'}) SET s.value = $last",
        {"last": next_rest_id - 1},
        database_=database,
    )
    expected = expected_rels(reg)
    for edge_type in EDGE_TYPES:
        stats.rels[edge_type] = await _write_all(
            driver,
            database,
            rel_query(edge_type),
            rows.rel_rows(reg, edge_type),
            total=expected[edge_type],
            batch=batch,
            what=edge_type,
            progress=progress,
        )
    stats.seconds = time.perf_counter() - started
    return stats


async def node_count(driver: neo4j.AsyncDriver, database: str) -> int:
    records, _, _ = await driver.execute_query("MATCH (n) RETURN count(n) AS n", database_=database)
    found: int = records[0]["n"]
    return found


async def wipe(driver: neo4j.AsyncDriver, database: str) -> None:
    """Delete every node, in transactions of 10k (constraints and indexes stay)."""
    async with driver.session(database=database) as session:
        result = await session.run(
            "MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS"
        )
        await result.consume()


async def verify(
    driver: neo4j.AsyncDriver, reg: plan.Registry, *, database: str, uri: str
) -> list[str]:
    """Problems with the written graph (empty when it is what the plan says, and
    lineagehub.graph reads it back)."""
    problems: list[str] = []
    for label, want in reg.node_counts().items():
        records, _, _ = await driver.execute_query(
            f"MATCH (n:{label}) RETURN count(n) AS n", database_=database
        )
        if records[0]["n"] != want:
            problems.append(f"{label}: {records[0]['n']} nodes, planned {want}")
    for edge_type, want in expected_rels(reg).items():
        records, _, _ = await driver.execute_query(
            f"MATCH ()-[r:{edge_type}]->() RETURN count(r) AS n", database_=database
        )
        if records[0]["n"] != want:
            problems.append(f"{edge_type}: {records[0]['n']} relationships, planned {want}")
    records, _, _ = await driver.execute_query(
        "MATCH (n) WHERE NOT n:Node AND NOT n:Sequence RETURN count(n) AS n", database_=database
    )
    if records[0]["n"]:
        problems.append(f"{records[0]['n']} nodes lack the :Node label")
    store = store_for(uri, database)
    try:
        # One node of every label decodes into lineagehub's record of that label.
        sample = [reg.ids[label][len(reg.ids[label]) // 2] for label in NODE_TYPES]
        found = await entities.get_any(store, sample)
        for label, node_id in zip(NODE_TYPES, sample, strict=True):
            record = found.get(node_id)
            if not isinstance(record, RECORD_TYPES[label]):
                problems.append(f"{node_id} does not read back as a {label}: {record!r}")
        model, name = reg.version_key(reg.counts.versions // 2)
        version = await versions.get_by_name(store, model, name)
        if version is None or version.id != reg.ids["ModelVersion"][reg.counts.versions // 2]:
            problems.append(f"modelVersion {model}@{name} not found by name")
        s = next(i for i, svc in enumerate(reg.services) if svc.undeployed_at is None)
        env, svc_name = reg.service_key(s)
        service = await serving.get_service(store, env, svc_name)
        served = reg.ids["ModelVersion"][reg.services[s].versions[-1]]
        if service is None or service.served_version_id != served:
            problems.append(f"service {env}/{svc_name} not found or not serving {served}")
        up = await lineage.lineage(
            store,
            reg.ids["InferenceService"][s],
            # Shallow on purpose: lineagehub's traversal gets slow with depth on hubs.
            lineage.LineageSpec(lineage.Direction.UPSTREAM, max_depth=2, limit=5000),
        )
        if served not in {n.record.id for n in up.nodes}:
            problems.append(f"lineage upstream of service {svc_name} misses {served}")
    finally:
        await store.close()
    return problems


async def generate(
    uri: str,
    nodes: int,
    seed: int,
    *,
    database: str = "neo4j",
    wipe_first: bool = False,
    batch: int = DEFAULT_BATCH,
    check: bool = True,
    quiet: bool = False,
) -> tuple[plan.Registry, LoadStats]:
    """Plan, (wipe,) constrain, load and verify; the planned registry and load stats."""

    def say(text: str) -> None:
        if not quiet:
            print(text, file=sys.stderr, flush=True)

    started = time.perf_counter()
    reg = plan.build(nodes, seed)
    say(f"planned {nodes:,} nodes (seed {seed}) in {time.perf_counter() - started:.1f} s")
    store = store_for(uri, database)
    try:
        await ensure_constraints(store)
    finally:
        await store.close()
    async with neo4j_driver(uri) as driver:
        existing = await node_count(driver, database)
        if existing and not wipe_first:
            raise SystemExit(f"the database holds {existing:,} nodes; pass --wipe to replace them")
        if existing:
            wiped = time.perf_counter()
            await wipe(driver, database)
            say(f"wiped {existing:,} nodes in {time.perf_counter() - wiped:.1f} s")
        stats = await load(driver, reg, database=database, batch=batch, quiet=quiet)
        say(
            f"loaded {sum(stats.nodes.values()):,} nodes + {sum(stats.rels.values()):,} "
            f"relationships in {stats.seconds:.1f} s: {stats.rate:,.0f} (nodes+rels)/s"
        )
        if check:
            problems = await verify(driver, reg, database=database, uri=uri)
            if problems:
                raise SystemExit("verification failed:\n  " + "\n  ".join(problems))
            say("verified: counts match the plan; lineagehub.graph reads it back")
    return reg, stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.generate", description=__doc__)
    parser.add_argument("--nodes", type=int, default=100_000, help="total nodes (>= 500)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="rows per transaction")
    parser.add_argument("--wipe", action="store_true", help="delete what the database holds")
    parser.add_argument("--no-verify", dest="verify", action="store_false")
    add_neo4j_args(parser)
    args = parser.parse_args(argv)
    asyncio.run(
        generate(
            args.neo4j_uri,
            args.nodes,
            args.seed,
            database=args.database,
            wipe_first=args.wipe,
            batch=args.batch,
            check=args.verify,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Point lookups and registration throughput: lineagehub over HTTP vs raw Cypher.

    python -m bench.lookups --neo4j-uri bolt://127.0.0.1:17687 [--api-url URL]

- ``modelVersion(model:, name:)`` and ``inferenceService(environment:, name:)`` on keys
  sampled from the generated graph, against the one Cypher query that answers each.
- A page of ``modelVersions`` (newest first) deep in the list, by a key cursor and by an
  offset cursor, against the hand-written keyset and ``SKIP`` queries.
- ``registerModel``: one version with its artifact per call, alone (latency), N calls in
  a row, N calls from K concurrent clients, and ``registerModels`` (the bulk mutation, one
  transaction per call) against raw Cypher writing the same nodes (one transaction per
  version, or one ``UNWIND`` transaction per batch).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import neo4j

from bench.common import (
    RESULTS,
    ApiServer,
    GraphQLClient,
    HttpConnection,
    add_neo4j_args,
    lane_timer,
    neo4j_driver,
    raw_read,
    say,
    store_for,
)
from bench.lineage import TimedStore, p50, render, stage_table
from bench.report import Latency, Rate, Row, Table, save
from lineagehub.graph import ids
from lineagehub.graph.store import count_round_trips

VERSION_QUERY = """
query Version($model: String!, $name: String!) {
  modelVersion(model: $model, name: $name) { id name author createdAt }
}
"""
VERSION_CYPHER = (
    "MATCH (:RegisteredModel {name: $model})-[:HAS_VERSION]->(v:ModelVersion {name: $name}) "
    "RETURN v.id AS id, v.name AS name, v.author AS author, v.createdAt AS createdAt"
)
SERVICE_QUERY = """
query Service($environment: String!, $name: String!) {
  inferenceService(environment: $environment, name: $name) {
    id name desiredState url modelVersion { id name }
  }
}
"""
SERVICE_CYPHER = (
    "MATCH (e:ServingEnvironment {name: $environment}) "
    "MATCH (s:InferenceService {environmentId: e.id, name: $name}) "
    "OPTIONAL MATCH (s)-[r:SERVES]->(v:ModelVersion) WHERE r.until IS NULL "
    "RETURN s.id AS id, s.name AS name, s.desiredState AS desiredState, s.url AS url, "
    "  v.id AS versionId, v.name AS versionName"
)
PAGE_QUERY = """
query Page($first: Int!, $after: String) {
  modelVersions(first: $first, after: $after, orderBy: [{field: CREATED_AT, direction: DESC}]) {
    edges { cursor node { id name createdAt } }
    pageInfo { hasNextPage }
  }
}
"""
# As one would write them by hand: read off the createdAt index in order (IS NOT NULL or
# a range on it, the tie on the id kept out of the planner's way).
_PAGE_RETURN = (
    "RETURN n.id AS id, n.name AS name, n.createdAt AS createdAt "
    "ORDER BY n.createdAt DESC, n.id SKIP $skip LIMIT $limit"
)
PAGE_KEY_CYPHER = (
    "MATCH (n:ModelVersion) WHERE NOT n:Deleted AND n.createdAt <= datetime($at) "
    "AND CASE WHEN n.createdAt = datetime($at) THEN n.id > $id ELSE true END " + _PAGE_RETURN
)
PAGE_SKIP_CYPHER = (
    "MATCH (n:ModelVersion) WHERE NOT n:Deleted AND n.createdAt IS NOT NULL " + _PAGE_RETURN
)
PAGE_SIZE = 20
REST_VERSIONS = "/api/model_registry/v1alpha3/model_versions"
# The Kubeflow REST list's default order (by REST id), by hand.
REST_FIRST_CYPHER = (
    "MATCH (n:ModelVersion) USING INDEX n:ModelVersion(restId) "
    "WHERE NOT n:Deleted AND n.restId IS NOT NULL "
    "RETURN n {.*} AS item ORDER BY n.restId SKIP $skip LIMIT $limit"
)
REST_AFTER_CYPHER = (
    "MATCH (n:ModelVersion) USING INDEX SEEK n:ModelVersion(restId) "
    "WHERE NOT n:Deleted AND n.restId > $after "
    "RETURN n {.*} AS item ORDER BY n.restId SKIP $skip LIMIT $limit"
)
REGISTER = """
mutation Register($input: RegisterModelInput!) {
  registerModel(input: $input) { versionCreated version { id name } artifact { id } }
}
"""
REGISTER_MANY = """
mutation RegisterMany($inputs: [RegisterModelInput!]!) {
  registerModels(inputs: $inputs) { versionCreated version { id } }
}
"""
# What registerModel writes for a new version of an existing model, by hand: the version
# and its artifact, linked, with the properties lineagehub gives them (its audit event and
# uniqueness checks are what the raw side leaves out).
REGISTER_CYPHER = (
    "UNWIND $rows AS row "
    "MATCH (m:RegisteredModel {name: row.model}) "
    "CREATE (m)-[:HAS_VERSION {since: row.at}]->(v:Node:ModelVersion) "
    "SET v = row.version, v.modelId = m.id, v.project = m.project "
    "CREATE (v)-[:HAS_ARTIFACT {since: row.at}]->(a:Node:Artifact:ModelArtifact) "
    "SET a = row.artifact, a.versionId = v.id, a.project = m.project "
    "RETURN count(v) AS created"
)


@dataclass(frozen=True)
class Keys:
    versions: list[tuple[str, str]]  # (model name, version name)
    services: list[tuple[str, str]]  # (environment name, service name)
    models: list[str]


async def sample_keys(driver: neo4j.AsyncDriver, n: int = 200) -> Keys:
    """Lookup keys spread over the graph (every k-th by id: deterministic)."""
    versions, _, _ = await driver.execute_query(
        "MATCH (m:RegisteredModel)-[:HAS_VERSION]->(v:ModelVersion) "
        "WITH m, v ORDER BY v.id WITH collect([m.name, v.name]) AS found "
        "WITH found, CASE WHEN size(found) > $n THEN size(found) / $n ELSE 1 END AS step "
        "RETURN [i IN range(0, size(found) - 1, step) | found[i]][0..$n] AS keys",
        {"n": n},
    )
    services, _, _ = await driver.execute_query(
        "MATCH (s:InferenceService)-[:IN]->(e:ServingEnvironment) "
        "WITH e, s ORDER BY s.id WITH collect([e.name, s.name]) AS found "
        "WITH found, CASE WHEN size(found) > $n THEN size(found) / $n ELSE 1 END AS step "
        "RETURN [i IN range(0, size(found) - 1, step) | found[i]][0..$n] AS keys",
        {"n": n},
    )
    version_keys = [(k[0], k[1]) for k in versions[0]["keys"]]
    return Keys(
        versions=version_keys,
        services=[(k[0], k[1]) for k in services[0]["keys"]],
        models=sorted({m for m, _ in version_keys}),
    )


def _iso(value: Any) -> Any:
    return value.iso_format() if hasattr(value, "iso_format") else value


async def raw_version(driver: neo4j.AsyncDriver, key: tuple[str, str]) -> dict[str, Any] | None:
    records = await raw_read(driver, VERSION_CYPHER, {"model": key[0], "name": key[1]})
    found = {k: _iso(v) for k, v in records[0].data().items()} if records else None
    json.dumps({"data": {"modelVersion": found}})
    return found


async def raw_service(driver: neo4j.AsyncDriver, key: tuple[str, str]) -> dict[str, Any] | None:
    records = await raw_read(driver, SERVICE_CYPHER, {"environment": key[0], "name": key[1]})
    found = None
    if records:
        r = records[0]
        served = {"id": r["versionId"], "name": r["versionName"]} if r["versionId"] else None
        found = {
            "id": r["id"],
            "name": r["name"],
            "desiredState": r["desiredState"],
            "url": r["url"],
            "modelVersion": served,
        }
    json.dumps({"data": {"inferenceService": found}})
    return found


async def time_pairs(
    n: int,
    api: Callable[[int], Awaitable[int]],
    raw: Callable[[int], Awaitable[Any]],
) -> tuple[list[float], list[float], int]:
    """``n`` interleaved rounds of ``api(i)`` (returns its Bolt trips) and ``raw(i)``."""
    api_s: list[float] = []
    raw_s: list[float] = []
    trips = 0
    for i in range(n):
        began = time.perf_counter()
        trips = max(trips, await api(i))
        api_s.append(time.perf_counter() - began)
        began = time.perf_counter()
        await raw(i)
        raw_s.append(time.perf_counter() - began)
    return api_s, raw_s, trips


async def lookup_rows(
    client: GraphQLClient, driver: neo4j.AsyncDriver, keys: Keys, n: int
) -> tuple[list[Row], list[float]]:
    """The lookup rows, and the HTTP seconds of the modelVersion lookups."""

    async def version(i: int) -> int:
        model, name = keys.versions[i % len(keys.versions)]
        answer = await client.must(VERSION_QUERY, {"model": model, "name": name})
        assert answer.data["modelVersion"] is not None
        return answer.trips

    async def service(i: int) -> int:
        environment, name = keys.services[i % len(keys.services)]
        answer = await client.must(SERVICE_QUERY, {"environment": environment, "name": name})
        assert answer.data["inferenceService"] is not None
        return answer.trips

    rows = []
    http: list[list[float]] = []
    for label, api, raw in (
        (
            "modelVersion(model, name)",
            version,
            lambda i: raw_version(driver, keys.versions[i % len(keys.versions)]),
        ),
        (
            "inferenceService(environment, name)",
            service,
            lambda i: raw_service(driver, keys.services[i % len(keys.services)]),
        ),
    ):
        await time_pairs(min(n, 20), api, raw)  # warm-up
        api_s, raw_s, trips = await time_pairs(n, api, raw)
        rows.append(Row(label, "1 node", Latency.of(api_s, trips), Latency.of(raw_s, 1)))
        http.append(api_s)
    return rows, http[0]


def offset_cursor(offset: int) -> str:
    """A cursor as they were before key cursors (still taken)."""
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


async def page_rows(
    client: GraphQLClient, driver: neo4j.AsyncDriver, n: int, depth: int | None
) -> list[Row]:
    """A page of 20 versions, newest first, starting ``depth`` items in (half the list by
    default): by the key cursor of the item before it, and by an offset cursor."""
    count = (await raw_read(driver, "MATCH (n:ModelVersion) RETURN count(n) AS c"))[0]["c"]
    depth = max(2, min(depth if depth is not None else count // 2, count - PAGE_SIZE))
    before = await raw_read(
        driver,
        "MATCH (n:ModelVersion) WHERE NOT n:Deleted WITH n ORDER BY n.createdAt DESC, n.id "
        "SKIP $skip LIMIT 1 RETURN toString(n.createdAt) AS at, n.id AS id",
        {"skip": depth - 1},
    )
    at, last_id = before[0]["at"], before[0]["id"]
    found = await client.must(PAGE_QUERY, {"first": 1, "after": offset_cursor(depth - 2)})
    key_cursor = found.data["modelVersions"]["edges"][0]["cursor"]
    assert found.data["modelVersions"]["edges"][0]["node"]["id"] == last_id

    def api(after: str | None) -> Callable[[int], Awaitable[int]]:
        async def one(i: int) -> int:
            answer = await client.must(PAGE_QUERY, {"first": PAGE_SIZE, "after": after})
            assert len(answer.data["modelVersions"]["edges"]) == PAGE_SIZE
            return answer.trips

        return one

    def raw(query: str, params: dict[str, Any]) -> Callable[[int], Awaitable[Any]]:
        async def one(i: int) -> None:
            records = await raw_read(driver, query, {**params, "limit": PAGE_SIZE + 1})
            page = [{k: _iso(v) for k, v in r.data().items()} for r in records]
            json.dumps({"data": {"modelVersions": page[:PAGE_SIZE]}}, default=str)

        return one

    http = HttpConnection(client.http.base_url)
    offset_path = f"{REST_VERSIONS}?pageSize={PAGE_SIZE}&nextPageToken={offset_cursor(depth - 1)}"
    status, body = await http.get(offset_path)
    assert status == 200, body
    rest_page = json.loads(body)
    rest_token = rest_page["nextPageToken"]
    last_rest_id = int(rest_page["items"][-1]["id"])

    def rest(path: str) -> Callable[[int], Awaitable[int]]:
        async def one(i: int) -> int:
            status, body = await http.get(path)
            assert status == 200, body[:200]
            assert len(json.loads(body)["items"]) == PAGE_SIZE
            return 1

        return one

    rows = []
    for label, api_one, raw_one in (
        ("modelVersions, first page", api(None), raw(PAGE_SKIP_CYPHER, {"skip": 0})),
        (
            "REST model_versions, first page (by id)",
            rest(f"{REST_VERSIONS}?pageSize={PAGE_SIZE}"),
            raw(REST_FIRST_CYPHER, {"skip": 0}),
        ),
        (
            f"REST model_versions, page at {depth + PAGE_SIZE:,}: its token",
            rest(f"{REST_VERSIONS}?pageSize={PAGE_SIZE}&nextPageToken={rest_token}"),
            raw(REST_AFTER_CYPHER, {"after": last_rest_id, "skip": 0}),
        ),
        (
            f"modelVersions, page at {depth:,}: key cursor",
            api(key_cursor),
            raw(PAGE_KEY_CYPHER, {"at": at, "id": last_id, "skip": 0}),
        ),
        (
            f"modelVersions, page at {depth:,}: offset cursor",
            api(offset_cursor(depth - 1)),
            raw(PAGE_SKIP_CYPHER, {"skip": depth}),
        ),
    ):
        await time_pairs(min(n, 3), api_one, raw_one)  # warm-up
        api_s, raw_s, trips = await time_pairs(n, api_one, raw_one)
        note = f"{count:,} versions, newest first, {PAGE_SIZE} a page"
        rows.append(
            Row(label, f"{PAGE_SIZE} nodes", Latency.of(api_s, trips), Latency.of(raw_s, 1), note)
        )
    await http.close()
    return rows


async def lookup_breakdown(
    uri: str, database: str, keys: Keys, http_seconds: list[float], n: int
) -> Table:
    """Where a modelVersion lookup's time goes: its Cypher, the rest of GraphQL execution
    (the warm lane the server answers a known document by, in-process), and the rest of
    the HTTP request (uvicorn, middleware, the per-request token check, logging, client)."""
    from lineagehub.api.graphql.context import Context
    from lineagehub.settings import Settings

    settings = Settings(neo4j_uri=uri, neo4j_database=database, _env_file=None)  # type: ignore[call-arg]
    plain = store_for(uri, database)
    store = TimedStore(plain.driver, database)
    reads: list[float] = []
    executes: list[float] = []

    def context() -> Context:
        return Context(store=store, settings=settings, request_id=None)

    def variables(i: int) -> dict[str, Any]:
        model, name = keys.versions[i % len(keys.versions)]
        return {"model": model, "name": name}

    try:
        lane = await lane_timer(settings, VERSION_QUERY, variables(0), context)
        for i in range(n):
            store.read_seconds = 0.0
            with count_round_trips():
                executes.append(await lane(variables(i)))
            reads.append(store.read_seconds)
    finally:
        await plain.close()
    total, execute, read = p50(http_seconds), p50(executes), p50(reads)
    return stage_table(
        "Where the time goes: modelVersion(model, name)",
        [
            ("Neo4j + driver decode (lineagehub's Cypher)", read),
            ("GraphQL execution and JSON encoding (warm lane)", max(0.0, execute - read)),
            ("HTTP, uvicorn, middleware, auth check, logging, client", max(0.0, total - execute)),
        ],
        total,
    )


class Registrations:
    """Inputs for new versions of existing models, named uniquely for this run."""

    def __init__(self, models: list[str]) -> None:
        self.models = models
        self.tag = f"bench-{os.getpid()}-{int(time.time())}"
        self.counter = itertools.count()

    def next(self) -> tuple[str, str]:
        i = next(self.counter)
        return self.models[i % len(self.models)], f"{self.tag}-{i}"

    def api_input(self) -> dict[str, Any]:
        model, name = self.next()
        return {
            "model": {"name": model},
            "version": {
                "name": name,
                "author": "bench",
                "customProperties": [{"key": "accuracy", "floatValue": 0.9}],
            },
            "artifact": {
                "uri": f"s3://models/{model}/{name}/model.onnx",
                "modelFormatName": "onnx",
            },
        }

    def raw_row(self) -> dict[str, Any]:
        model, name = self.next()
        at = datetime.now(UTC)
        return {
            "model": model,
            "at": at,
            "version": {
                "id": ids.new_id("ModelVersion"),
                "name": name,
                "author": "bench",
                "cp.accuracy": 0.9,
                "approvalStatus": "NONE",
                "state": "LIVE",
                "createdAt": at,
                "updatedAt": at,
            },
            "artifact": {
                "id": ids.new_id("ModelArtifact"),
                "name": "model",
                "kind": "ModelArtifact",
                "uri": f"s3://models/{model}/{name}/model.onnx",
                "modelFormatName": "onnx",
                "state": "LIVE",
                "createdAt": at,
                "updatedAt": at,
            },
        }


async def raw_register(driver: neo4j.AsyncDriver, rows: list[dict[str, Any]]) -> None:
    records, _, _ = await driver.execute_query(
        REGISTER_CYPHER, {"rows": rows}, routing_=neo4j.RoutingControl.WRITE
    )
    assert records[0]["created"] == len(rows)


C = TypeVar("C")


async def in_parallel(
    k: int,
    n: int,
    one: Callable[[C | None], Awaitable[None]],
    clients: list[C] | None,
) -> float:
    """Seconds for ``n`` calls of ``one`` spread over ``k`` concurrent workers (worker
    ``w`` passing ``clients[w]``, or None)."""
    counter = itertools.count()

    async def worker(w: int) -> None:
        while next(counter) < n:
            await one(clients[w] if clients else None)

    began = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(k)))
    return time.perf_counter() - began


async def registration_rows(
    api_url: str,
    driver: neo4j.AsyncDriver,
    keys: Keys,
    *,
    single: int,
    bulk: int,
    concurrency: int,
    batch: int,
) -> list[Row]:
    reg = Registrations(keys.models)
    client = GraphQLClient(api_url)
    rows: list[Row] = []
    try:

        async def api_one(c: GraphQLClient | None = None) -> int:
            answer = await (c or client).must(REGISTER, {"input": reg.api_input()})
            assert answer.data["registerModel"]["versionCreated"]
            return answer.trips

        async def raw_one(_: Any = None) -> None:
            await raw_register(driver, [reg.raw_row()])

        await time_pairs(5, lambda i: api_one(), lambda i: raw_one())  # warm-up
        api_s, raw_s, trips = await time_pairs(single, lambda i: api_one(), lambda i: raw_one())
        rows.append(
            Row(
                "registerModel: 1 version + artifact",
                "1 call",
                Latency.of(api_s, trips),
                Latency.of(raw_s, 1),
            )
        )
        began = time.perf_counter()
        for _ in range(bulk):
            await api_one()
        api_seq = time.perf_counter() - began
        began = time.perf_counter()
        for _ in range(bulk):
            await raw_one()
        raw_seq = time.perf_counter() - began
        rows.append(
            Row(
                f"registerModel x {bulk}, one client",
                f"{bulk} versions",
                Rate(bulk, api_seq, "versions/s"),
                Rate(bulk, raw_seq, "versions/s"),
                "raw: one transaction per version",
            )
        )
        clients = [GraphQLClient(api_url) for _ in range(concurrency)]
        try:

            async def api_c(c: GraphQLClient | None) -> None:
                await api_one(c)

            api_par = await in_parallel(concurrency, bulk, api_c, clients)
        finally:
            for c in clients:
                await c.close()
        raw_par = await in_parallel(concurrency, bulk, raw_one, None)
        rows.append(
            Row(
                f"registerModel x {bulk}, {concurrency} concurrent clients",
                f"{bulk} versions",
                Rate(bulk, api_par, "versions/s"),
                Rate(bulk, raw_par, "versions/s"),
                "raw: one transaction per version",
            )
        )
        # A warm-up call each (first-use query plans, REST id blocks), then at least 4
        # timed calls: fewer swing too much from run to run.
        await client.must(REGISTER_MANY, {"inputs": [reg.api_input() for _ in range(batch)]})
        await raw_register(driver, [reg.raw_row() for _ in range(batch)])
        calls = max(4, bulk // batch)
        began = time.perf_counter()
        for _ in range(calls):
            inputs = [reg.api_input() for _ in range(batch)]
            answer = await client.must(REGISTER_MANY, {"inputs": inputs})
            assert len(answer.data["registerModels"]) == batch
        api_bulk = time.perf_counter() - began
        bulk_trips = answer.trips
        began = time.perf_counter()
        for _ in range(calls):
            await raw_register(driver, [reg.raw_row() for _ in range(batch)])
        raw_bulk = time.perf_counter() - began
        rows.append(
            Row(
                f"registerModels (bulk), {batch} per call",
                f"{calls * batch} versions",
                Rate(calls * batch, api_bulk, "versions/s"),
                Rate(calls * batch, raw_bulk, "versions/s"),
                f"lineagehub: {bulk_trips} Bolt queries per call; raw: one UNWIND per batch",
            )
        )
    finally:
        await client.close()
    return rows


async def run(
    uri: str,
    *,
    database: str = "neo4j",
    api_url: str | None = None,
    iterations: int = 500,
    single: int = 200,
    bulk: int = 1000,
    concurrency: int = 8,
    batch: int = 500,
    pages: int = 30,
    page_depth: int | None = None,
    workdir: Path | None = None,
) -> list[Table]:
    async with neo4j_driver(uri) as driver:
        keys = await sample_keys(driver)
        server = None
        if api_url is None:
            where = workdir or Path(tempfile.mkdtemp(prefix="bench-"))
            server = ApiServer(uri, where, database=database).__enter__()
            api_url = server.url
        client = GraphQLClient(api_url)
        try:
            lookups = Table("Point lookups via /graphql vs raw Cypher", "raw Cypher + json.dumps")
            lookups.rows, http_seconds = await lookup_rows(client, driver, keys, iterations)
            lookups.rows += await page_rows(client, driver, pages, page_depth)
            lookups.notes = list(dict.fromkeys(row.note for row in lookups.rows if row.note))
            stages = await lookup_breakdown(uri, database, keys, http_seconds, iterations)
            say("lookups done")
            writes = Table("Registration via /graphql vs raw Cypher", "raw Cypher")
            writes.rows = await registration_rows(
                api_url,
                driver,
                keys,
                single=single,
                bulk=bulk,
                concurrency=concurrency,
                batch=batch,
            )
            writes.notes = [
                *dict.fromkeys(row.note for row in writes.rows if row.note),
                "Each registration adds a new version (with a model artifact) to an existing "
                "model; lineagehub also writes its audit event and checks unique keys.",
            ]
            say("registration done")
        finally:
            await client.close()
            if server is not None:
                server.stop()
    return [lookups, stages, writes]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lookups", description=__doc__)
    add_neo4j_args(parser)
    parser.add_argument("--api-url", help="a running lineagehub (default: start one)")
    parser.add_argument("--iterations", type=int, default=500, help="lookups per operation")
    parser.add_argument("--single", type=int, default=200, help="timed single registrations")
    parser.add_argument("--bulk", type=int, default=1000, help="versions per throughput run")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent registering clients")
    parser.add_argument("--batch", type=int, default=500, help="versions per registerModels call")
    parser.add_argument("--pages", type=int, default=30, help="timed calls per page row")
    parser.add_argument("--page-depth", type=int, help="where the deep page starts (default: half)")
    parser.add_argument("--json", type=Path, help="also write the tables as JSON here")
    args = parser.parse_args(argv)
    tables = asyncio.run(
        run(
            args.neo4j_uri,
            database=args.database,
            api_url=args.api_url,
            iterations=args.iterations,
            single=args.single,
            bulk=args.bulk,
            concurrency=args.concurrency,
            batch=args.batch,
            pages=args.pages,
            page_depth=args.page_depth,
            workdir=RESULTS / "work",
        )
    )
    for table in tables:
        print(render(table))
    save(tables, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

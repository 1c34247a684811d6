"""Column lineage: ``columnLineage`` facets sent to ``POST /api/v1/lineage``, and
``Dataset.columnLineage`` read through ``/graphql``, each against raw Cypher.

    python -m bench.columns --neo4j-uri bolt://127.0.0.1:17911 --width 200 --iterations 100

The bench builds, through the API, a chain of ``--levels`` tables of ``--width`` columns:
column ``c<i>`` of table k+1 is computed (DIRECT) from columns ``c<i>``..``c<i+3>`` of
table k, and column ``c0`` of table k filters all of table k+1 (a dataset-wide INDIRECT
input). Reads, at three sizes: upstream of the last table's ``c0`` 3 hops deep (~20
columns) and 10 hops deep (~180), and downstream of the first table's ``c0`` 10 hops deep
(every column the filter shapes: ~2,000). The baseline is the same question written by hand
in Cypher (a DISTINCT variable-length match, then the edges among what it found and the
datasets' URIs; no degrees) through the raw async driver, plus ``json.dumps`` of what it
returns; both sides are checked to find the same columns before timing.

Writes: one COMPLETE event whose output reports ``--width`` columns of 4 inputs each and a
filter column (5 x width edges), each time to a new output table, against one hand-written
UNWIND/MERGE query writing the same columns and edges (no event validation, run, facets,
audit event).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import neo4j

from bench.common import (
    RESULTS,
    GraphQLClient,
    HttpConnection,
    add_neo4j_args,
    api_at,
    finish,
    neo4j_driver,
    raw_read,
    say,
)
from bench.report import Latency, Row, Table

PATH = "/api/v1/lineage"
PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.26.0/integration/spark"
FAN_IN = 4
_T0 = datetime(2026, 3, 1, tzinfo=UTC)

QUERY = """
query($uri: String!, $column: String!, $direction: LineageDirection!, $depth: Int!) {
  dataset(uri: $uri) {
    columnLineage(columns: [$column], direction: $direction, maxDepth: $depth, limit: 5000) {
      columns { name degree dataset { uri } }
      edges { from { name dataset { uri } } to { name dataset { uri } } direct
              transformations { type subtype } }
      truncated
    }
  }
}
"""

RAW_READ = """
MATCH (:Node:Dataset {{uri: $uri}})-[:HAS_FIELD]->(s:DatasetField {{name: $column}})
MATCH (s){arrow}(x:DatasetField)
WITH collect(DISTINCT x) AS nodes
CALL (nodes) {{
  UNWIND nodes AS b MATCH (b)<-[r:FEEDS]-(a) WHERE a IN nodes
  RETURN collect([a.datasetId, a.name, b.datasetId, b.name, r.direct, r.transformations]) AS edges
}}
CALL (nodes) {{
  UNWIND nodes AS a WITH DISTINCT a.datasetId AS id MATCH (d:Node:Dataset {{id: id}})
  RETURN collect([d.id, d.uri]) AS datasets
}}
RETURN [x IN nodes | [x.datasetId, x.name]] AS columns, edges, datasets
"""

RAW_WRITE = """
UNWIND $columns AS c
MERGE (f:DatasetField {datasetId: c[0], name: c[1]}) ON CREATE SET f.createdAt = $at
WITH f, c MATCH (d:Node:Dataset {id: c[0]}) MERGE (d)-[:HAS_FIELD]->(f)
WITH count(*) AS done
UNWIND $edges AS e
MATCH (a:DatasetField {datasetId: e.source[0], name: e.source[1]})
MATCH (b:DatasetField {datasetId: e.target[0], name: e.target[1]})
MERGE (a)-[r:FEEDS {reporter: $reporter}]->(b)
SET r.transformations = e.transformations, r.direct = e.direct, r.at = $at
RETURN count(*) AS written
"""


def _facet(**fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": "https://openlineage.io/spec/facets", **fields}


def _inputs(width: int, i: int) -> list[int]:
    return [k for k in range(i, i + FAN_IN) if k < width]


def column_facet(namespace: str, source: str, width: int) -> dict[str, Any]:
    """Column ``c<i>`` from ``c<i>``..``c<i+3>`` of ``source``, all filtered by its ``c0``."""

    def ref(k: int, kind: str, subtype: str) -> dict[str, Any]:
        return {
            "namespace": namespace,
            "name": source,
            "field": f"c{k}",
            "transformations": [{"type": kind, "subtype": subtype}],
        }

    return _facet(
        fields={
            f"c{i}": {
                "inputFields": [ref(k, "DIRECT", "TRANSFORMATION") for k in _inputs(width, i)]
            }
            for i in range(width)
        },
        dataset=[ref(0, "INDIRECT", "FILTER")],
    )


def event(namespace: str, job: str, source: str, target: str, width: int, at: float) -> bytes:
    schema = _facet(fields=[{"name": f"c{i}", "type": "DOUBLE"} for i in range(width)])
    return json.dumps(
        {
            "eventType": "COMPLETE",
            "eventTime": (_T0 + timedelta(seconds=at)).isoformat(),
            "producer": PRODUCER,
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json",
            "run": {"runId": str(uuid.uuid4()), "facets": {}},
            "job": {"namespace": "spark", "name": job, "facets": {}},
            "inputs": [{"namespace": namespace, "name": source, "facets": {"schema": schema}}],
            "outputs": [
                {
                    "namespace": namespace,
                    "name": target,
                    "facets": {
                        "schema": schema,
                        "columnLineage": column_facet(namespace, source, width),
                    },
                }
            ],
        }
    ).encode()


async def _post(conn: HttpConnection, body: bytes) -> dict[str, Any]:
    status, payload = await conn.post(PATH, body)
    if status != 201:
        raise RuntimeError(f"event refused ({status}): {payload[:300]!r}")
    answer: dict[str, Any] = json.loads(payload)
    return answer


def _raw_answer(record: neo4j.Record, uris: dict[str, str]) -> bytes:
    datasets = {d: uri for d, uri in record["datasets"]}
    uris.update(datasets)
    body = {
        "columns": [{"name": n, "dataset": {"uri": datasets[d]}} for d, n in record["columns"]],
        "edges": [
            {
                "from": {"name": a_name, "dataset": {"uri": datasets[a]}},
                "to": {"name": b_name, "dataset": {"uri": datasets[b]}},
                "direct": direct,
                "transformations": json.loads(t) if t else [],
            }
            for a, a_name, b, b_name, direct, t in record["edges"]
        ],
    }
    return json.dumps(body).encode()


async def read_rows(
    client: GraphQLClient,
    driver: neo4j.AsyncDriver,
    tables: list[str],
    *,
    iterations: int,
) -> list[Row]:
    targets = [
        ("upstream of one column, maxDepth 3", tables[-1], "UPSTREAM", 3),
        ("upstream of one column, maxDepth 10", tables[-1], "UPSTREAM", 10),
        ("downstream of a filter column, maxDepth 10", tables[0], "DOWNSTREAM", 10),
    ]
    rows: list[Row] = []
    for label, uri, direction, depth in targets:
        depth = min(depth, len(tables) - 1)
        variables = {"uri": uri, "column": "c0", "direction": direction, "depth": depth}
        arrow = f"<-[:FEEDS*0..{depth}]-" if direction == "UPSTREAM" else f"-[:FEEDS*0..{depth}]->"
        raw_query = RAW_READ.format(arrow=arrow)
        params = {"uri": uri, "column": "c0"}
        api = await client.must(QUERY, variables)
        found = api.data["dataset"]["columnLineage"]
        (record,) = await raw_read(driver, raw_query, params)
        api_set = {(c["dataset"]["uri"], c["name"]) for c in found["columns"]}
        uris: dict[str, str] = {}
        _raw_answer(record, uris)
        raw_set = {(uris[d], n) for d, n in record["columns"]}
        if api_set != raw_set or found["truncated"]:
            raise RuntimeError(f"{label}: the API and raw Cypher found different columns")
        api_times, raw_times, trips = [], [], []
        for i in range(iterations + 3):
            answer = await client.must(QUERY, variables)
            began = time.perf_counter()
            (record,) = await raw_read(driver, raw_query, params)
            _raw_answer(record, {})
            raw_s = time.perf_counter() - began
            if i >= 3:
                api_times.append(answer.seconds)
                raw_times.append(raw_s)
                trips.append(answer.trips)
        rows.append(
            Row(
                label,
                f"{len(api_set)} columns",
                Latency.of(api_times, sum(trips) / len(trips)),
                Latency.of(raw_times, 1),
            )
        )
    return rows


async def write_row(
    conn: HttpConnection,
    driver: neo4j.AsyncDriver,
    namespace: str,
    source: str,
    *,
    width: int,
    iterations: int,
) -> Row:
    source_id = await _dataset_id(driver, f"{namespace}/{source}")
    api_times, raw_times, edges_written = [], [], []
    for i in range(iterations + 2):
        began = time.perf_counter()
        body = event(namespace, f"write{i}", source, f"api_out{i}", width, 10_000 + i)
        status, payload = await conn.post(PATH, body)
        api_s = time.perf_counter() - began
        if status != 201:
            raise RuntimeError(f"event refused ({status}): {payload[:300]!r}")
        # the raw side writes the same columns and edges into a dataset of its own
        target = await _raw_dataset(driver, f"{namespace}/raw_out{i}")
        columns = [[source_id, f"c{k}"] for k in range(width)] + [
            [target, f"c{k}"] for k in range(width)
        ]
        edges = [
            {
                "source": [source_id, f"c{k}"],
                "target": [target, f"c{c}"],
                "transformations": json.dumps([{"type": "DIRECT", "subtype": "TRANSFORMATION"}]),
                "direct": True,
            }
            for c in range(width)
            for k in _inputs(width, c)
        ] + [
            {
                "source": [source_id, "c0"],
                "target": [target, f"c{c}"],
                "transformations": json.dumps([{"type": "INDIRECT", "subtype": "FILTER"}]),
                "direct": c == 0,  # c0 of c0 is also a direct input
            }
            for c in range(width)
        ]
        params = {
            "columns": columns,
            "edges": edges,
            "reporter": "raw",
            "at": _T0 + timedelta(seconds=i),
        }
        began = time.perf_counter()
        await driver.execute_query(RAW_WRITE, params, routing_=neo4j.RoutingControl.WRITE)
        raw_s = time.perf_counter() - began
        if i >= 2:
            api_times.append(api_s)
            raw_times.append(raw_s)
            edges_written.append(json.loads(payload)["columnLineage"]["edges"])
    return Row(
        "COMPLETE event reporting column lineage",
        f"{width} columns, {edges_written[0]} edges",
        Latency.of(api_times),
        Latency.of(raw_times, 1),
    )


async def _dataset_id(driver: neo4j.AsyncDriver, uri: str) -> str:
    records, _, _ = await driver.execute_query(
        "MATCH (d:Node:Dataset {uri: $uri}) RETURN d.id AS id LIMIT 1", {"uri": uri}
    )
    found: str = records[0]["id"]
    return found


async def _raw_dataset(driver: neo4j.AsyncDriver, uri: str) -> str:
    made = f"ds_raw_{uuid.uuid4().hex}"
    await driver.execute_query(
        "CREATE (:Node:Dataset {id: $id, name: $id, uri: $uri, datasetKey: $id, state: 'LIVE', "
        "createdAt: datetime(), updatedAt: datetime()})",
        {"id": made, "uri": uri},
        routing_=neo4j.RoutingControl.WRITE,
    )
    return made


async def run(
    uri: str,
    *,
    database: str = "neo4j",
    api_url: str | None = None,
    width: int = 200,
    levels: int = 11,
    iterations: int = 100,
    writes: int = 30,
    workdir: Path | None = None,
) -> list[Table]:
    async with neo4j_driver(uri, pool=8) as driver:
        with api_at(uri, api_url, database=database, workdir=workdir) as url:
            conn, client = HttpConnection(url), GraphQLClient(url)
            try:
                table = await _table(conn, client, driver, width, levels, iterations, writes)
            finally:
                await conn.close()
                await client.close()
    return [table]


async def _table(
    conn: HttpConnection,
    client: GraphQLClient,
    driver: neo4j.AsyncDriver,
    width: int,
    levels: int,
    iterations: int,
    writes: int,
) -> Table:
    namespace = f"s3://bench-columns-{uuid.uuid4().hex[:8]}"
    names = [f"t{k}" for k in range(levels)]
    began = time.perf_counter()
    for k in range(1, levels):
        await _post(conn, event(namespace, f"build{k}", names[k - 1], names[k], width, k))
    took = time.perf_counter() - began
    say(f"columns: {levels} tables of {width} columns in {took:.1f} s")
    tables = [f"{namespace}/{name}" for name in names]
    table = Table("Column lineage via /graphql and /api/v1/lineage vs raw Cypher", "raw Cypher")
    table.rows = await read_rows(client, driver, tables, iterations=iterations)
    table.rows.append(
        await write_row(conn, driver, namespace, names[0], width=width, iterations=writes)
    )
    table.notes = [
        f"{levels} tables of {width} columns; each column from {FAN_IN} columns of the "
        "table before, every column filtered by its c0 (dataset-wide INDIRECT input).",
        "Reads: lineagehub answers degrees, typed columns and transformations in one "
        "Bolt query; raw Cypher is a DISTINCT variable-length match plus edges and "
        "dataset URIs (no degrees), then json.dumps.",
        "Write: lineagehub records the whole event (run, datasets, facets, audit "
        "event, column edges) in one transaction; raw writes only columns and edges.",
    ]
    say("columns done")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.columns", description=__doc__)
    add_neo4j_args(parser)
    parser.add_argument("--api-url", help="a running lineagehub (default: start one)")
    parser.add_argument("--width", type=int, default=200, help="columns per table")
    parser.add_argument("--levels", type=int, default=11, help="tables in the chain")
    parser.add_argument("--iterations", type=int, default=100, help="timed reads per row")
    parser.add_argument("--writes", type=int, default=30, help="timed events")
    parser.add_argument("--json", type=Path, help="also write the tables as JSON here")
    args = parser.parse_args(argv)
    tables = asyncio.run(
        run(
            args.neo4j_uri,
            database=args.database,
            api_url=args.api_url,
            width=args.width,
            levels=args.levels,
            iterations=args.iterations,
            writes=args.writes,
            workdir=RESULTS / "work",
        )
    )
    return finish(tables, args.json)


if __name__ == "__main__":
    raise SystemExit(main())

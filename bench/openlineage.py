"""OpenLineage events through ``POST /api/v1/lineage``, against raw Cypher writing the
same graph.

    python -m bench.openlineage --neo4j-uri bolt://127.0.0.1:17687 --runs 400

Each run is what Airflow's provider sends for a task: a START (job facets: source code,
documentation; two input tables out of a pool of 50, each with schema and version facets)
and a COMPLETE (one output, a new version of the job's table, with output statistics).
Rows: one event at a time (latency of START and COMPLETE), then ``--runs`` runs from
``--concurrency`` concurrent senders, each run in a job of its own, then every run in one
job (runs of one job are recorded side by side; only events of one run wait for each
other). The baseline writes the same nodes and edges with one hand-written Cypher query
per event on the raw async driver, one transaction each: no validation, audit event,
facet bookkeeping or REST ids. Events are JSON as the OpenLineage client sends them, over
the bench's keep-alive HTTP client.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import neo4j

from bench.common import RESULTS, ApiServer, HttpConnection, add_neo4j_args, neo4j_driver, say
from bench.lookups import in_parallel
from bench.report import Latency, Rate, Row, Table, save

PATH = "/api/v1/lineage"
PRODUCER = "https://github.com/apache/airflow/tree/providers-openlineage/2.1.0"
TABLES = 50
_T0 = datetime(2026, 3, 1, tzinfo=UTC)

RAW = """
MERGE (e:Node:Experiment {name: $job})
  ON CREATE SET e.id = $experimentId, e.createdAt = $at, e.updatedAt = $at, e.state = 'LIVE',
                e.`cpj.openlineage.facet.sourceCodeLocation` = $code
MERGE (r:Node:ExperimentRun {externalId: $runId})
  ON CREATE SET r.id = $id, r.name = $runId, r.experimentId = e.id, r.state = 'LIVE',
                r.createdAt = $at, r.startTime = $at
SET r.status = $status, r.updatedAt = $at,
    r.endTime = CASE WHEN $status = 'RUNNING' THEN r.endTime ELSE $at END
MERGE (r)-[:PART_OF]->(e)
WITH r
CALL (r) {
  UNWIND $inputs AS d
  MERGE (n:Node:Dataset {datasetKey: d.key})
    ON CREATE SET n.id = d.id, n.uri = d.uri, n.digest = d.digest, n.state = 'LIVE',
                  n.createdAt = $at, n.updatedAt = $at, n.`cpj.openlineage.facet.schema` = d.schema
  MERGE (n)-[:INPUT_TO]->(r)
}
CALL (r) {
  UNWIND $outputs AS d
  MERGE (n:Node:Dataset {datasetKey: d.key})
    ON CREATE SET n.id = d.id, n.uri = d.uri, n.digest = d.digest, n.state = 'LIVE',
                  n.createdAt = $at, n.updatedAt = $at
  MERGE (r)-[:PRODUCED]->(n)
}
RETURN r.id AS id
"""


def _facet(**fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": "https://openlineage.io/spec/facets", **fields}


class Runs:
    """The events of successive runs, as JSON for the API and parameters for raw Cypher."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.count = itertools.count()

    def events(self, job: str) -> tuple[list[bytes], list[dict[str, Any]]]:
        i = next(self.count)
        job = f"{self.tag}.{job}"  # each side its own jobs and output tables
        run_id = str(uuid.uuid4())
        tables = [(i * 7 + k) % TABLES for k in (0, 1)]
        inputs = [
            {
                "namespace": "postgres://warehouse:5432",
                "name": f"crm.public.t{t}",
                "facets": {
                    "schema": _facet(fields=[{"name": "id", "type": "BIGINT"}]),
                    "version": _facet(datasetVersion="v1"),
                },
            }
            for t in tables
        ]
        output = {
            "namespace": "s3://lake",
            "name": job,
            "facets": {"version": _facet(datasetVersion=f"r{i}")},
            "outputFacets": {"outputStatistics": _facet(rowCount=1000 + i, size=64_000)},
        }
        job_facets = {
            "sourceCodeLocation": _facet(
                type="git", url="https://git.example/etl.git", repoUrl="https://git.example/etl.git"
            ),
            "documentation": _facet(description=f"Builds {job}."),
        }
        start_at, end_at = _T0 + timedelta(seconds=i), _T0 + timedelta(seconds=i + 0.5)
        bodies, params = [], []
        for kind, at, ins, outs in (
            ("START", start_at, inputs, []),
            ("COMPLETE", end_at, [], [output]),
        ):
            bodies.append(
                json.dumps(
                    {
                        "eventType": kind,
                        "eventTime": at.isoformat(),
                        "producer": PRODUCER,
                        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json",
                        "run": {"runId": run_id, "facets": {}},
                        "job": {"namespace": "airflow", "name": job, "facets": job_facets},
                        "inputs": ins,
                        "outputs": outs,
                    }
                ).encode()
            )
            params.append(
                {
                    "job": f"airflow/{job}",
                    "experimentId": f"exp_raw_{self.tag}_{job}",
                    "code": json.dumps(job_facets["sourceCodeLocation"]),
                    "runId": run_id,
                    "id": f"run_raw_{run_id}",
                    "status": "RUNNING" if kind == "START" else "FINISHED",
                    "at": at,
                    "inputs": [_raw_dataset(d) for d in ins],
                    "outputs": [_raw_dataset(d) for d in outs],
                }
            )
        return bodies, params


def _raw_dataset(d: dict[str, Any]) -> dict[str, Any]:
    uri = f"{d['namespace']}/{d['name']}"
    digest = d["facets"]["version"]["datasetVersion"]
    return {
        "key": json.dumps([uri, digest]),
        "id": f"ds_raw_{uuid.uuid4().hex}",
        "uri": uri,
        "digest": digest,
        "schema": json.dumps(d["facets"].get("schema")),
    }


async def _post(conn: HttpConnection, body: bytes) -> None:
    status, payload = await conn.post(PATH, body)
    if status != 201:
        raise RuntimeError(f"event refused ({status}): {payload[:300]!r}")


async def _raw(driver: neo4j.AsyncDriver, params: dict[str, Any]) -> None:
    await driver.execute_query(RAW, params, routing_=neo4j.RoutingControl.WRITE)


async def rows(
    api_url: str, driver: neo4j.AsyncDriver, *, single: int, runs: int, concurrency: int
) -> list[Row]:
    tag = uuid.uuid4().hex[:8]
    api_runs, raw_runs = Runs(f"api-{tag}"), Runs(f"raw-{tag}")
    conns = [HttpConnection(api_url) for _ in range(concurrency)]
    out: list[Row] = []
    try:
        # one at a time: START and COMPLETE latencies
        timings: dict[str, tuple[list[float], list[float]]] = {
            "START": ([], []),
            "COMPLETE": ([], []),
        }
        for i in range(single + 5):
            bodies, _ = api_runs.events(f"single_{i % 10}")
            _, raw_params = raw_runs.events(f"single_{i % 10}")
            for kind, body, raw in zip(("START", "COMPLETE"), bodies, raw_params, strict=True):
                began = time.perf_counter()
                await _post(conns[0], body)
                api_s = time.perf_counter() - began
                began = time.perf_counter()
                await _raw(driver, raw)
                raw_s = time.perf_counter() - began
                if i >= 5:  # the first few warm both sides up
                    timings[kind][0].append(api_s)
                    timings[kind][1].append(raw_s)
        for kind, (api_times, raw_times) in timings.items():
            out.append(
                Row(
                    f"{kind} event, one at a time",
                    "1 event",
                    Latency.of(api_times),
                    Latency.of(raw_times, 1),
                )
            )
        for label, one_job in (("each run its own job", False), ("all runs of one job", True)):
            sent = itertools.count()

            def job_of(one_job: bool = one_job, sent: itertools.count[int] = sent) -> str:
                return "one_job" if one_job else f"job_{next(sent)}"

            async def api_one(
                conn: HttpConnection | None, job_of: Callable[[], str] = job_of
            ) -> None:
                assert conn is not None
                bodies, _ = api_runs.events(job_of())
                for body in bodies:
                    await _post(conn, body)

            async def raw_one(_conn: None, job_of: Callable[[], str] = job_of) -> None:
                _, params = raw_runs.events(job_of())
                for p in params:
                    await _raw(driver, p)

            api_seconds = await in_parallel(concurrency, runs, api_one, conns)
            raw_seconds = await in_parallel(concurrency, runs, raw_one, None)
            out.append(
                Row(
                    f"{runs} runs (START + COMPLETE), {concurrency} senders, {label}",
                    f"{2 * runs} events",
                    Rate(2 * runs, api_seconds, "events/s"),
                    Rate(2 * runs, raw_seconds, "events/s"),
                )
            )
    finally:
        for conn in conns:
            await conn.close()
    return out


async def run(
    uri: str,
    *,
    database: str = "neo4j",
    api_url: str | None = None,
    single: int = 100,
    runs: int = 400,
    concurrency: int = 8,
    workdir: Path | None = None,
) -> list[Table]:
    async with neo4j_driver(uri, pool=max(concurrency, 8)) as driver:
        server = None
        if api_url is None:
            where = workdir or Path(tempfile.mkdtemp(prefix="bench-"))
            server = ApiServer(uri, where, database=database).__enter__()
            api_url = server.url
        try:
            table = Table("OpenLineage events via /api/v1/lineage vs raw Cypher", "raw Cypher")
            table.rows = await rows(
                api_url, driver, single=single, runs=runs, concurrency=concurrency
            )
            table.notes = [
                "An event: job facets (source code, documentation); START with 2 input "
                "tables (schema and version facets), COMPLETE with 1 output (a new version, "
                "output statistics).",
                "lineagehub: one transaction per event with its audit event, facets as "
                "custom properties, run state by event time; raw: one MERGE query per event.",
            ]
            say("openlineage done")
        finally:
            if server is not None:
                server.stop()
    return [table]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.openlineage", description=__doc__)
    add_neo4j_args(parser)
    parser.add_argument("--api-url", help="a running lineagehub (default: start one)")
    parser.add_argument("--single", type=int, default=100, help="runs timed one event at a time")
    parser.add_argument("--runs", type=int, default=400, help="runs per throughput row")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent senders")
    parser.add_argument("--json", type=Path, help="also write the tables as JSON here")
    args = parser.parse_args(argv)
    tables = asyncio.run(
        run(
            args.neo4j_uri,
            database=args.database,
            api_url=args.api_url,
            single=args.single,
            runs=args.runs,
            concurrency=args.concurrency,
            workdir=RESULTS / "work",
        )
    )
    for table in tables:
        print(table.render())
    save(tables, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

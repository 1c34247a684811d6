"""OpenLineage events at ``POST /api/v1/lineage``: the official client (openlineage-python)
sends them unchanged, and what pipelines report meets the registry's own lineage."""

from __future__ import annotations

import gzip
import json
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import neo4j
import pytest

from lineagehub.settings import Settings
from tests.api.lineage_scenario import build
from tests.conftest import Api, ThreadedServer, make_token

ol_client = pytest.importorskip("openlineage.client")
from openlineage.client import OpenLineageClient  # noqa: E402
from openlineage.client.event_v2 import (  # noqa: E402
    DatasetEvent,
    InputDataset,
    Job,
    JobEvent,
    OutputDataset,
    Run,
    RunEvent,
    RunState,
    StaticDataset,
)
from openlineage.client.facet_v2 import (  # noqa: E402
    dataset_version_dataset,
    datasource_dataset,
    documentation_job,
    nominal_time_run,
    output_statistics_output_dataset,
    ownership_job,
    parent_run,
    schema_dataset,
    source_code_location_job,
)

PRODUCER = "https://github.com/apache/airflow/tree/providers-openlineage/2.1.0"
T0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
CUSTOMERS = "postgres://warehouse:5432/crm.public.customers"

RUN_QUERY = """
query($runId: String!) {
  experimentRun(externalId: $runId) {
    id name status startTime endTime owner
    experiment { name owner description customProperty(key: "openlineage.namespace") { value } }
    inputDatasets { uri digest name sourceType source schema description
                    facet: customProperty(key: "openlineage.facet.schema") { jsonValue } }
    producedDatasets { uri digest }
    code { repository commit path }
    nominal: customProperty(key: "openlineage.facet.nominalTime") { jsonValue }
    parent: customProperty(key: "openlineage.facet.parent") { jsonValue }
    error: customProperty(key: "openlineage.facet.errorMessage") { jsonValue }
    outputs: customProperty(key: "openlineage.outputFacets") { jsonValue }
  }
}
"""


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def client_for(server: ThreadedServer, secret: str, **transport: Any) -> OpenLineageClient:
    """The official client, configured as a user would (``transport`` in its config)."""
    return OpenLineageClient(
        config={
            "transport": {
                "type": "http",
                "url": server.url,
                "auth": {"type": "api_key", "apiKey": secret},
                **transport,
            }
        }
    )


def job(name: str = "etl.build_labels", **facets: Any) -> Job:
    return Job(namespace="airflow", name=name, facets=facets)


def customers() -> InputDataset:
    return InputDataset(
        namespace="postgres://warehouse:5432",
        name="crm.public.customers",
        facets={
            "schema": schema_dataset.SchemaDatasetFacet(
                fields=[
                    schema_dataset.SchemaDatasetFacetFields(name="id", type="BIGINT"),
                    schema_dataset.SchemaDatasetFacetFields(name="churned", type="BOOLEAN"),
                ]
            ),
            "dataSource": datasource_dataset.DatasourceDatasetFacet(
                name="warehouse", uri="postgres://warehouse:5432"
            ),
            "version": dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion="v41"),
        },
    )


def labels(version: str = "d3", rows: int = 1200) -> OutputDataset:
    return OutputDataset(
        namespace="s3://lake",
        name="labels",
        facets={
            "version": dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=version)
        },
        outputFacets={
            "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                rowCount=rows, size=48_000
            )
        },
    )


def full_job() -> Job:
    return job(
        sourceCodeLocation=source_code_location_job.SourceCodeLocationJobFacet(
            type="git",
            url="https://git.example/etl/blob/9f1c/dags/labels.py",
            repoUrl="https://git.example/etl.git",
            path="dags/labels.py",
            version="9f1c",
        ),
        documentation=documentation_job.DocumentationJobFacet(description="Builds churn labels."),
        ownership=ownership_job.OwnershipJobFacet(
            owners=[ownership_job.Owner(name="team:data-eng", type="team")]
        ),
    )


def test_official_client_start_then_complete(
    server: ThreadedServer, writer: str, graph: Api
) -> None:
    client = client_for(server, writer)
    run_id = str(uuid.uuid4())
    parent_id = str(uuid.uuid4())
    run_facets = {
        "nominalTime": nominal_time_run.NominalTimeRunFacet(nominalStartTime=at(0)),
        "parent": parent_run.ParentRunFacet(
            run=parent_run.Run(runId=parent_id),
            job=parent_run.Job(namespace="airflow", name="etl"),
        ),
    }
    client.emit(
        RunEvent(
            eventType=RunState.START,
            eventTime=at(1),
            run=Run(runId=run_id, facets=run_facets),
            job=full_job(),
            inputs=[customers()],
            producer=PRODUCER,
        )
    )
    started = graph(RUN_QUERY, {"runId": run_id})["experimentRun"]
    assert started["status"] == "RUNNING"
    assert started["startTime"] == at(1)
    assert started["endTime"] is None

    client.emit(
        RunEvent(
            eventType=RunState.COMPLETE,
            eventTime=at(7.5),
            run=Run(runId=run_id),
            job=job(),
            outputs=[labels()],
            producer=PRODUCER,
        )
    )
    run = graph(RUN_QUERY, {"runId": run_id})["experimentRun"]
    assert run["id"] == started["id"]
    assert run["name"] == "run-1"
    assert (run["status"], run["startTime"], run["endTime"]) == ("FINISHED", at(1), at(7.5))
    assert run["owner"] == "team:data-eng"
    assert run["experiment"] == {
        "name": "airflow/etl.build_labels",
        "owner": "team:data-eng",
        "description": "Builds churn labels.",
        "customProperty": {"value": "airflow"},
    }
    (table,) = run["inputDatasets"]
    assert table["uri"] == CUSTOMERS
    assert (table["digest"], table["name"]) == ("v41", "crm.public.customers")
    assert (table["sourceType"], table["source"]) == ("postgres", "warehouse")
    assert table["schema"] == [
        {"name": "id", "type": "BIGINT", "fields": []},
        {"name": "churned", "type": "BOOLEAN", "fields": []},
    ]
    assert table["facet"]["jsonValue"]["fields"][1]["name"] == "churned"
    assert run["producedDatasets"] == [{"uri": "s3://lake/labels", "digest": "d3"}]
    assert run["code"] == [
        {"repository": "https://git.example/etl.git", "commit": "9f1c", "path": "dags/labels.py"}
    ]
    assert run["nominal"]["jsonValue"]["nominalStartTime"] == at(0)
    assert run["parent"]["jsonValue"]["run"]["runId"] == parent_id
    assert run["error"] is None
    stats = run["outputs"]["jsonValue"]["s3://lake/labels"]["outputStatistics"]
    assert (stats["rowCount"], stats["size"]) == (1200, 48_000)


def test_pipeline_lineage_meets_the_registry(
    api: Api, server: ThreadedServer, settings: Settings, db: neo4j.Driver
) -> None:
    """The Airflow job writes the labels churn-predictor v2 was trained on (the scenario
    registered them as s3://lake/labels @ d3), so the CRM table feeds the live churn-api."""
    scenario = build(api)  # before any token exists: the tokenless client may still write
    _, secret = make_token(settings, "airflow", ["writer"])
    client_for(server, secret).emit(
        RunEvent(
            eventType=RunState.COMPLETE,
            eventTime=at(3),
            run=Run(runId=str(uuid.uuid4())),
            job=full_job(),
            inputs=[customers()],
            outputs=[labels()],
            producer=PRODUCER,
        )
    )
    _, reading = make_token(settings, "auditor", ["reader"])
    api.http.headers["Authorization"] = f"Bearer {reading}"
    impact = api(
        """query($uri: String!) { dataset(uri: $uri, digest: "v41") {
             impactedVersions { name } impactedDeployments { name modelVersion { name } } } }""",
        {"uri": CUSTOMERS},
    )["dataset"]
    assert impact == {
        "impactedVersions": [{"name": "v2"}],
        "impactedDeployments": [{"name": "churn-api", "modelVersion": {"name": "v2"}}],
    }
    upstream = api(
        """query($id: ID!) { lineage(start: $id, maxDepth: 6) {
             nodes { degree node { __typename ... on Dataset { uri } ... on CodeRef { repository }
                                   ... on ExperimentRun { experiment { name } } } } } }""",
        {"id": scenario.api_service},
    )["lineage"]["nodes"]
    reached = {
        (n["node"]["__typename"], n["node"].get("uri") or n["node"].get("repository"))
        for n in upstream
    }
    assert ("Dataset", CUSTOMERS) in reached
    assert ("CodeRef", "https://git.example/etl.git") in reached
    assert {"degree": 5, "node": {"__typename": "Dataset", "uri": CUSTOMERS}} in upstream


def post(server: ThreadedServer, secret: str | None, body: Any, **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {"content-type": "application/json", **headers}
    if secret:
        sent["authorization"] = f"Bearer {secret}"
    return httpx.post(f"{server.url}/api/v1/lineage", content=content, headers=sent, timeout=30)


def raw_event(run_id: str, event_type: str, minutes: float, **more: Any) -> dict[str, Any]:
    return {
        "eventType": event_type,
        "eventTime": at(minutes),
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id, "facets": {}},
        "job": {"namespace": "dbt", "name": "shop.orders", "facets": {}},
        "inputs": [{"namespace": "s3://raw", "name": "orders.csv"}],
        "outputs": [],
        **more,
    }


def graph_size(db: neo4j.Driver) -> tuple[int, int, int]:
    with db.session() as session:
        row = session.run(
            "MATCH (n) WITH count(n) AS nodes "
            "OPTIONAL MATCH ()-[r]->() WITH nodes, count(r) AS rels "
            "OPTIONAL MATCH (e:AuditEvent) RETURN nodes, rels, count(e) AS audits"
        ).single()
        assert row is not None
        return row["nodes"], row["rels"], row["audits"]


def facet(**fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": "https://example/facet.json", **fields}


def test_events_sent_again_change_nothing(
    server: ThreadedServer, writer: str, db: neo4j.Driver, graph: Api
) -> None:
    """Replays, also of an older event after a newer one, with all the parts an event can
    have: facets of every kind, code, one dataset as input and output, a local offset."""
    run_id = str(uuid.uuid4())
    table = {
        "namespace": "postgres://db:5432",
        "name": "shop.public.orders",
        "facets": {"schema": facet(fields=[{"name": "id", "type": "INT"}])},
        "inputFacets": {"dataQualityMetrics": facet(rowCount=10)},
    }
    start = raw_event(
        run_id,
        "START",
        1,
        run={"runId": run_id, "facets": {"nominalTime": facet(nominalStartTime=at(0))}},
        job={
            "namespace": "dbt",
            "name": "shop.orders",
            "facets": {"sourceCodeLocation": facet(type="git", url="https://git.example/shop.git")},
        },
        inputs=[table],
        outputs=[{**table, "facets": {"schema": facet(fields=[{"name": "id", "type": "BIGINT"}])}}],
    )
    start["eventTime"] = "2026-03-01T08:01:00+02:00"  # at(1), in another zone
    complete = raw_event(
        run_id,
        "COMPLETE",
        5,
        run={"runId": run_id, "facets": {"nominalTime": facet(nominalStartTime=at(4))}},
        outputs=[{**table, "outputFacets": {"outputStatistics": facet(rowCount=99)}}],
    )
    for event in (start, complete):
        assert post(server, writer, event).status_code == 201
    query = """query($runId: String!) { experimentRun(externalId: $runId) {
        updatedAt status startTime endTime
        nominal: customProperty(key: "openlineage.facet.nominalTime") { jsonValue }
        inputDatasets { updatedAt schema } } }"""
    settled = graph(query, {"runId": run_id})["experimentRun"]
    assert (settled["status"], settled["startTime"], settled["endTime"]) == (
        "FINISHED",
        at(1),
        at(5),
    )
    assert settled["nominal"]["jsonValue"]["nominalStartTime"] == at(4)  # the later event's
    # the output mention (later in the event) wins over the input's
    assert settled["inputDatasets"][0]["schema"] == [{"name": "id", "type": "BIGINT"}]
    size = graph_size(db)
    for event in (start, complete, start):
        assert post(server, writer, event).status_code == 201
    assert graph_size(db) == size
    assert graph(query, {"runId": run_id})["experimentRun"] == settled


def test_runs_follow_their_events_in_any_order(
    server: ThreadedServer, writer: str, graph: Api
) -> None:
    run_id = str(uuid.uuid4())
    # the end arrives first, then a late START with an earlier time, then a stray RUNNING
    for event_type, minutes in (("COMPLETE", 9), ("START", 2), ("RUNNING", 4), ("OTHER", 11)):
        assert post(server, writer, raw_event(run_id, event_type, minutes)).status_code == 201
    run = graph(RUN_QUERY, {"runId": run_id})["experimentRun"]
    assert (run["status"], run["startTime"], run["endTime"]) == ("FINISHED", at(2), at(9))

    # OTHER first: the run exists, RUNNING, started then until a START says otherwise
    late = str(uuid.uuid4())
    assert post(server, writer, raw_event(late, "OTHER", 1)).status_code == 201
    run = graph(RUN_QUERY, {"runId": late})["experimentRun"]
    assert (run["status"], run["startTime"]) == ("RUNNING", at(1))
    assert post(server, writer, raw_event(late, "START", 3)).status_code == 201
    run = graph(RUN_QUERY, {"runId": late})["experimentRun"]
    assert (run["status"], run["startTime"]) == ("RUNNING", at(3))
    # two ends at one time: the failure stands, whichever came first
    for order in (("FAIL", "COMPLETE"), ("COMPLETE", "FAIL")):
        tied = str(uuid.uuid4())
        for event_type in order:
            assert post(server, writer, raw_event(tied, event_type, 6)).status_code == 201
        assert graph(RUN_QUERY, {"runId": tied})["experimentRun"]["status"] == "FAILED"

    for event_type, status in (("FAIL", "FAILED"), ("ABORT", "KILLED")):
        other = str(uuid.uuid4())
        post(server, writer, raw_event(other, "START", 1))
        failure = {
            "errorMessage": {
                "_producer": PRODUCER,
                "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json",
                "message": "division by zero",
                "programmingLanguage": "python",
            }
        }
        event = raw_event(other, event_type, 3, run={"runId": other, "facets": failure})
        assert post(server, writer, event).status_code == 201
        ended = graph(RUN_QUERY, {"runId": other})["experimentRun"]
        assert (ended["status"], ended["endTime"]) == (status, at(3))
        assert ended["error"]["jsonValue"]["message"] == "division by zero"


def all_at_once(
    server: ThreadedServer, secret: str, event: Callable[[int], dict[str, Any]], n: int = 8
) -> list[int]:
    """The statuses of ``n`` events (``event(i)``) posted from ``n`` threads at once."""
    statuses: list[int] = []
    threads = [
        threading.Thread(
            target=lambda i=i: statuses.append(post(server, secret, event(i)).status_code)
        )
        for i in range(n)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_concurrent_events_of_a_new_run_make_one_run(
    server: ThreadedServer, writer: str, graph: Api, db: neo4j.Driver
) -> None:
    run_id = str(uuid.uuid4())

    def event(i: int) -> dict[str, Any]:
        return raw_event(run_id, "COMPLETE" if i == 7 else "RUNNING", 10 + i)

    assert all_at_once(server, writer, event) == [201] * 8
    with db.session() as session:
        runs = session.run(
            "MATCH (r:ExperimentRun {externalId: $id}) RETURN count(r) AS n", id=run_id
        ).single()
    assert runs is not None and runs["n"] == 1
    run = graph(RUN_QUERY, {"runId": run_id})["experimentRun"]
    assert (run["status"], run["endTime"]) == ("FINISHED", at(17))


def test_concurrent_runs_of_one_job_and_one_dataset(
    server: ThreadedServer, writer: str, graph: Api
) -> None:
    """Runs of one job recorded side by side get names of their own; events changing one
    dataset's facet at once leave the newest event's facet, whatever order they commit in."""

    def event(i: int) -> dict[str, Any]:
        sent = raw_event(str(uuid.uuid4()), "COMPLETE", 20 + i)
        sent["inputs"] = [
            {
                "namespace": "s3://raw",
                "name": "orders.csv",
                "facets": {"schema": facet(fields=[{"name": f"c{i}", "type": "INT"}])},
            }
        ]
        return sent

    assert all_at_once(server, writer, event) == [201] * 8
    found = graph(
        """{ experiment(name: "dbt/shop.orders") { runs(first: 20) { nodes { name } } }
             dataset(uri: "s3://raw/orders.csv") {
               customProperty(key: "openlineage.facet.schema") { jsonValue } } }"""
    )
    names = sorted(n["name"] for n in found["experiment"]["runs"]["nodes"])
    assert names == sorted(f"run-{i}" for i in range(1, 9))
    newest = found["dataset"]["customProperty"]["jsonValue"]["fields"]
    assert newest == [{"name": "c7", "type": "INT"}]


def test_job_and_dataset_events(server: ThreadedServer, writer: str, graph: Api) -> None:
    client = client_for(server, writer, compression="gzip")
    client.emit(
        JobEvent(
            eventTime=at(0),
            job=full_job(),
            inputs=[customers()],
            outputs=[labels()],
            producer=PRODUCER,
        )
    )
    client.emit(
        DatasetEvent(
            eventTime=at(1),
            dataset=StaticDataset(
                namespace="s3://lake",
                name="labels",
                facets={
                    "version": dataset_version_dataset.DatasetVersionDatasetFacet(
                        datasetVersion="d3"
                    ),
                    "schema": schema_dataset.SchemaDatasetFacet(
                        fields=[schema_dataset.SchemaDatasetFacetFields(name="y", type="INT")]
                    ),
                },
            ),
            producer=PRODUCER,
        )
    )
    found = graph(
        """{ experiment(name: "airflow/etl.build_labels") { description runs { totalCount } }
             dataset(uri: "s3://lake/labels", digest: "d3") { schema lineage { nodes { degree } } } }"""
    )
    assert found["experiment"] == {
        "description": "Builds churn labels.",
        "runs": {"totalCount": 0},
    }
    # the DatasetEvent filled in the schema the JobEvent's dataset had none of
    assert found["dataset"]["schema"] == [{"name": "y", "type": "INT", "fields": []}]
    assert found["dataset"]["lineage"]["nodes"] == []  # a JobEvent links nothing


def test_round_trips_do_not_grow_with_the_event(server: ThreadedServer, writer: str) -> None:
    def trips(count: int) -> int:
        datasets = [
            {
                "namespace": f"s3://wide-{count}",  # new datasets each time
                "name": f"part-{i}",
                "facets": {"schema": facet(fields=[{"name": "x", "type": "INT"}])},
                "outputFacets": {"outputStatistics": facet(rowCount=i)},
            }
            for i in range(count)
        ]
        event = raw_event(str(uuid.uuid4()), "COMPLETE", 1, inputs=datasets, outputs=datasets)
        event["job"]["facets"] = {
            "sourceCodeLocation": facet(type="git", url="https://git.example/wide.git")
        }
        response = post(server, writer, event)
        assert response.status_code == 201, response.text
        return int(response.headers["x-bolt-round-trips"])

    assert trips(1) == trips(200) == trips(2) <= 10


def test_facets_are_kept_bounded_and_can_be_removed(
    server: ThreadedServer, writer: str, graph: Api
) -> None:
    run_id = str(uuid.uuid4())
    plan = {"_producer": PRODUCER, "_schemaURL": "https://example/plan.json", "plan": "x" * 100_000}
    sql = {"_producer": PRODUCER, "_schemaURL": "https://example/sql.json", "query": "SELECT 1"}
    first = raw_event(
        run_id, "START", 1, run={"runId": run_id, "facets": {"spark.logicalPlan": plan}}
    )
    first["job"]["facets"] = {"sql": sql}
    assert post(server, writer, first).status_code == 201
    query = """query($runId: String!) { experimentRun(externalId: $runId) {
        plan: customProperty(key: "openlineage.facet.spark.logicalPlan") { jsonValue }
        experiment { sql: customProperty(key: "openlineage.facet.sql") { jsonValue } } } }"""
    run = graph(query, {"runId": run_id})["experimentRun"]
    size = len(json.dumps(plan, sort_keys=True))
    assert run["plan"]["jsonValue"] == {
        "_omitted": f"{size} bytes, over the 65536-byte limit",
        "_producer": PRODUCER,
        "_schemaURL": "https://example/plan.json",
    }
    assert run["experiment"]["sql"]["jsonValue"]["query"] == "SELECT 1"
    second = raw_event(run_id, "COMPLETE", 2)
    second["job"]["facets"] = {"sql": {**sql, "_deleted": True}}
    assert post(server, writer, second).status_code == 201
    run = graph(query, {"runId": run_id})["experimentRun"]
    assert run["experiment"]["sql"] is None


RUN = str(uuid.uuid4())
BAD: list[tuple[Any, int, str, str | None]] = [
    (b"{not json", 400, "BAD_REQUEST", None),
    (b"[]", 400, "BAD_REQUEST", None),
    ({"eventTime": at(0), "producer": PRODUCER}, 400, "VALIDATION", "body"),
    (raw_event("not-a-uuid", "START", 0), 400, "VALIDATION", "body.run.runId"),
    (raw_event(str(uuid.uuid4()), "BEGIN", 0), 400, "VALIDATION", "body.eventType"),
    (
        {k: v for k, v in raw_event(str(uuid.uuid4()), "START", 0).items() if k != "eventTime"},
        400,
        "VALIDATION",
        "body.eventTime",
    ),
    (
        {k: v for k, v in raw_event(str(uuid.uuid4()), "START", 0).items() if k != "job"},
        400,
        "VALIDATION",
        "body",
    ),
    (
        raw_event(str(uuid.uuid4()), "START", 0, inputs=[{"namespace": "s3://x"}]),
        400,
        "VALIDATION",
        "body.inputs[0].name",
    ),
    (
        raw_event(str(uuid.uuid4()), "START", 0, run={"runId": RUN, "facets": {"x": 5}}),
        400,
        "VALIDATION",
        "body.run.facets.x",
    ),
    ({**raw_event(RUN, "START", 0), "eventTime": 1772344800}, 400, "VALIDATION", "body.eventTime"),
    (
        {**raw_event(RUN, "START", 0), "eventTime": "9999-12-31T23:59:59-01:00"},
        400,
        "VALIDATION",
        "body.eventTime",
    ),
    (b'{"a": ' * 5000 + b"1" + b"}" * 5000, 400, "BAD_REQUEST", None),
    (
        json.dumps(raw_event(RUN, "START", 0)).replace("{}", '{"n": NaN}', 1).encode(),
        400,
        "BAD_REQUEST",
        None,
    ),
    (
        json.dumps(raw_event(RUN, "START", 0)).replace("{}", '{"n": 1e400}', 1).encode(),
        400,
        "BAD_REQUEST",
        None,
    ),
]


@pytest.mark.parametrize(("body", "status", "code", "field"), BAD)
def test_bad_events_are_refused_and_write_nothing(
    server: ThreadedServer,
    writer: str,
    db: neo4j.Driver,
    body: Any,
    status: int,
    code: str,
    field: str | None,
) -> None:
    before = graph_size(db)
    response = post(server, writer, body)
    assert response.status_code == status, response.text
    error = response.json()
    assert error["code"] == code
    assert error.get("field") == field
    assert error["message"]
    assert graph_size(db) == before


def test_transport_problems(server: ThreadedServer, writer: str, db: neo4j.Driver) -> None:
    event = raw_event(str(uuid.uuid4()), "START", 0)
    before = graph_size(db)
    assert (
        post(
            server, writer, json.dumps(event).encode(), **{"content-type": "text/plain"}
        ).status_code
        == 415
    )
    assert (
        post(server, writer, b"\x1f\x8b not gzip", **{"content-encoding": "gzip"}).status_code
        == 400
    )
    assert post(server, writer, b"{}", **{"content-encoding": "br"}).status_code == 415
    untyped = httpx.post(
        f"{server.url}/api/v1/lineage",
        content=json.dumps(event).encode(),
        headers={"authorization": f"Bearer {writer}"},
    )
    assert untyped.status_code == 415  # what a web page may send a loopback server unasked
    trailing = gzip.compress(json.dumps(event).encode()) + b"more"
    after = post(server, writer, trailing, **{"content-encoding": "gzip"})
    assert (after.status_code, after.json()["code"]) == (400, "BAD_REQUEST")
    bomb = gzip.compress(b" " * (17 * 1024 * 1024))  # 17 MiB of blanks in ~17 kB
    too_big = post(server, writer, bomb, **{"content-encoding": "gzip"})
    assert (too_big.status_code, too_big.json()["code"]) == (413, "TOO_LARGE")
    assert graph_size(db) == before
    zipped = post(
        server, writer, gzip.compress(json.dumps(event).encode()), **{"content-encoding": "gzip"}
    )
    assert zipped.status_code == 201, zipped.text


def test_who_may_send(
    server: ThreadedServer, settings: Settings, db: neo4j.Driver, as_role: Any
) -> None:
    event = raw_event(str(uuid.uuid4()), "START", 0)
    _, reader = make_token(settings, "dashboard", ["reader"])
    denied = post(server, reader, event)
    assert (denied.status_code, denied.json()["code"]) == (403, "FORBIDDEN")
    assert post(server, None, event).status_code == 401
    _, scoped = make_token(settings, "team-a", ["writer", "reader"], projects=["team-a"])
    elsewhere = httpx.post(
        f"{server.url}/api/v1/lineage?project=team-b",
        json=event,
        headers={"authorization": f"Bearer {scoped}"},
    )
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (403, "FORBIDDEN")
    ours = httpx.post(
        f"{server.url}/api/v1/lineage?project=team-a",
        json=event,
        headers={"authorization": f"Bearer {scoped}"},
    )
    assert ours.status_code == 201, ours.text
    run = as_role("reader")(
        """query($id: String!) { experimentRun(externalId: $id) { project experiment { project } } }""",
        {"id": event["run"]["runId"]},
    )["experimentRun"]
    assert run == {"project": "team-a", "experiment": {"project": "team-a"}}


def test_a_run_moves_to_the_job_its_later_events_name(
    server: ThreadedServer, writer: str, graph: Api
) -> None:
    """Spark sends a run's first event as job "unknown", its later ones by the real name."""
    run_id = str(uuid.uuid4())
    unknown = raw_event(run_id, "START", 0, job={"namespace": "spark", "name": "unknown"})
    assert post(server, writer, unknown).status_code == 201
    named = raw_event(run_id, "COMPLETE", 4, job={"namespace": "spark", "name": "etl_orders"})
    assert post(server, writer, named).status_code == 201
    stray = raw_event(run_id, "RUNNING", 2, job={"namespace": "spark", "name": "unknown"})
    assert post(server, writer, stray).status_code == 201  # older: the run stays
    found = graph(
        """query($runId: String!) {
             experimentRun(externalId: $runId) { name status experiment { name } }
             unknown: experiment(name: "spark/unknown") { runs { totalCount } }
             named: experiment(name: "spark/etl_orders") { runs { nodes { externalId } } } }""",
        {"runId": run_id},
    )
    assert found["experimentRun"] == {
        "name": "run-1",
        "status": "FINISHED",
        "experiment": {"name": "spark/etl_orders"},
    }
    assert found["unknown"] == {"runs": {"totalCount": 0}}
    assert found["named"] == {"runs": {"nodes": [{"externalId": run_id}]}}


def test_long_and_odd_names_are_kept(server: ThreadedServer, writer: str, graph: Api) -> None:
    name = "dag_" + "x" * 300 + "@nightly"
    event = raw_event(str(uuid.uuid4()), "START", 0, job={"namespace": "airflow", "name": name})
    event["inputs"] = [{"namespace": "s3://odd", "name": "a@b"}]
    response = post(server, writer, event)
    assert response.status_code == 201, response.text
    experiment = response.json()["job"]["name"]
    assert len(experiment) <= 256 and "@" not in experiment
    assert experiment.startswith("airflow/dag_xxx")
    again = post(server, writer, {**event, "run": {"runId": str(uuid.uuid4())}})
    assert again.json()["job"] == response.json()["job"]  # the same job, found again
    found = graph(
        """query($name: String!) { experiment(name: $name) {
             name: customProperty(key: "openlineage.name") { stringValue } runs { totalCount } } }""",
        {"name": experiment},
    )["experiment"]
    assert found == {"name": {"stringValue": name}, "runs": {"totalCount": 2}}
    assert response.json()["inputs"][0]["uri"] == "s3://odd/a@b"


def test_a_refused_event_leaves_what_it_touched_as_it_was(
    server: ThreadedServer, settings: Settings, db: neo4j.Driver, graph: Api
) -> None:
    _, team_a = make_token(settings, "team-a", ["writer"], projects=["team-a"])
    _, team_b = make_token(settings, "team-b", ["writer"], projects=["team-b"])
    run_id = str(uuid.uuid4())
    sql = {"sql": facet(query="SELECT 1")}
    first = raw_event(run_id, "START", 0)
    first["job"]["facets"] = sql
    sent = httpx.post(
        f"{server.url}/api/v1/lineage?project=team-a",
        json={**first, "inputs": [{"namespace": "s3://shared", "name": "orders"}]},
        headers={"authorization": f"Bearer {team_a}"},
    )
    assert sent.status_code == 201, sent.text
    before = graph_size(db)
    # team-b's event would change the shared dataset's facets, then meets team-a's run
    second = raw_event(run_id, "COMPLETE", 3, job={"namespace": "dbt", "name": "b.job"})
    second["inputs"] = [
        {"namespace": "s3://shared", "name": "orders", "facets": {"schema": facet(fields=[])}}
    ]
    refused = httpx.post(
        f"{server.url}/api/v1/lineage?project=team-b",
        json=second,
        headers={"authorization": f"Bearer {team_b}"},
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "FORBIDDEN")
    assert refused.json()["field"] == "body.run.runId"
    assert graph_size(db) == before
    dataset = graph(
        """{ dataset(uri: "s3://shared/orders") {
             customProperty(key: "openlineage.facet.schema") { jsonValue } } }"""
    )["dataset"]
    assert dataset == {"customProperty": None}

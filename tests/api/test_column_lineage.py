"""Column lineage: OpenLineage's ``columnLineage`` facet, sent to ``POST /api/v1/lineage``,
read back through ``Dataset.columnLineage`` over HTTP.

The pipeline: a Spark job copies CRM users to the lake (hashing the e-mail, keeping only
users who signed up after a date: ``signup_at`` shapes the whole output), then a dbt model
joins those users with orders into ML features.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import neo4j
import pytest

from lineagehub.settings import Settings
from tests.api.test_openlineage import all_at_once, graph_size, post
from tests.conftest import Api, ThreadedServer, make_token

T0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.26.0/integration/spark"
CRM = ("postgres://crm:5432", "public.users")
STAGING = ("s3://lake", "staging/users")
ORDERS = ("s3://lake", "raw/orders")
FEATURES = ("bigquery", "proj.mart.features")
RUN_FEATURES = "0193f1a2-7c4e-7d7a-9a55-000000000002"
URI = {
    CRM: "postgres://crm:5432/public.users",
    STAGING: "s3://lake/staging/users",
    ORDERS: "s3://lake/raw/orders",
    FEATURES: "bigquery:proj.mart.features",
}


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def facet(**fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": "https://example/facet.json", **fields}


def ref(dataset: tuple[str, str], column: str, *transformations: dict[str, Any]) -> dict[str, Any]:
    given: dict[str, Any] = {"namespace": dataset[0], "name": dataset[1], "field": column}
    if transformations:
        given["transformations"] = list(transformations)
    return given


def t(kind: str, subtype: str, **more: Any) -> dict[str, Any]:
    return {"type": kind, "subtype": subtype, **more}


def schema(*columns: str) -> dict[str, Any]:
    return facet(fields=[{"name": c, "type": "STRING"} for c in columns])


def dataset(
    name: tuple[str, str], columns: dict[str, Any] | None = None, **facets: Any
) -> dict[str, Any]:
    given: dict[str, Any] = {"namespace": name[0], "name": name[1], "facets": dict(facets)}
    if columns is not None:
        given["facets"]["columnLineage"] = columns
    return given


def event(
    job: str,
    inputs: list[dict[str, Any]],
    outputs: list[dict[str, Any]],
    minutes: float = 5,
    run_id: str | None = None,
    kind: str = "COMPLETE",
) -> dict[str, Any]:
    return {
        "eventType": kind,
        "eventTime": at(minutes),
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id or str(uuid.uuid4())},
        "job": {"namespace": job.split("/")[0], "name": job.split("/")[1]},
        "inputs": inputs,
        "outputs": outputs,
    }


def staging_columns() -> dict[str, Any]:
    return facet(
        fields={
            "user_id": {"inputFields": [ref(CRM, "id", t("DIRECT", "IDENTITY"))]},
            "email_hash": {
                "inputFields": [
                    ref(
                        CRM,
                        "email",
                        t("DIRECT", "TRANSFORMATION", masking=True, description="sha256"),
                    )
                ]
            },
            "country": {"inputFields": [ref(CRM, "country", t("DIRECT", "IDENTITY"))]},
        },
        dataset=[ref(CRM, "signup_at", t("INDIRECT", "FILTER"))],
    )


def features_columns(join: bool = True) -> dict[str, Any]:
    return facet(
        fields={
            "user_id": {"inputFields": [ref(STAGING, "user_id", t("DIRECT", "IDENTITY"))]},
            "country": {"inputFields": [ref(STAGING, "country", t("DIRECT", "IDENTITY"))]},
            "total_spend": {"inputFields": [ref(ORDERS, "amount", t("DIRECT", "AGGREGATION"))]},
        },
        dataset=(
            [
                ref(STAGING, "user_id", t("INDIRECT", "JOIN")),
                ref(ORDERS, "user_id", t("INDIRECT", "JOIN")),
            ]
            if join
            else []
        ),
    )


def send(server: ThreadedServer, writer: str, body: dict[str, Any]) -> dict[str, Any]:
    response = post(server, writer, body)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


def build(server: ThreadedServer, writer: str) -> None:
    send(
        server,
        writer,
        event(
            "spark/copy_users",
            [dataset(CRM, schema=schema("id", "email", "country", "signup_at"))],
            [
                dataset(
                    STAGING, staging_columns(), schema=schema("user_id", "email_hash", "country")
                )
            ],
        ),
    )
    send(
        server,
        writer,
        event(
            "dbt/mart.features",
            [dataset(STAGING), dataset(ORDERS)],
            [dataset(FEATURES, features_columns())],
            minutes=10,
            run_id=RUN_FEATURES,
        ),
    )


LINEAGE = """
query($uri: String!, $columns: [String!], $direction: LineageDirection!, $depth: Int,
      $limit: Int, $indirect: Boolean! = true) {
  dataset(uri: $uri) {
    columnLineage(columns: $columns, direction: $direction, maxDepth: $depth, limit: $limit,
                  includeIndirect: $indirect) {
      columns { name type degree dataset { uri } }
      edges {
        from { name dataset { uri } } to { name dataset { uri } }
        direct description reportedAt reporter
        transformations { type subtype description masking }
        run { externalId experiment { name } }
      }
      truncated omittedColumns reachableColumns moreBeyondDepth
    }
  }
}
"""


def lineage(graph: Api, name: tuple[str, str], direction: str = "UPSTREAM", **args: Any) -> Any:
    data = graph(LINEAGE, {"uri": URI[name], "direction": direction, **args})
    return data["dataset"]["columnLineage"]


def columns_of(answer: Any) -> set[tuple[str, str, int]]:
    return {(c["dataset"]["uri"], c["name"], c["degree"]) for c in answer["columns"]}


def edges_of(answer: Any) -> set[tuple[str, str, str, str]]:
    return {
        (e["from"]["dataset"]["uri"], e["from"]["name"], e["to"]["dataset"]["uri"], e["to"]["name"])
        for e in answer["edges"]
    }


def test_upstream_of_a_column_crosses_jobs(server: ThreadedServer, writer: str, graph: Api) -> None:
    build(server, writer)
    answer = lineage(graph, FEATURES, columns=["user_id"], depth=5)
    assert columns_of(answer) == {
        (URI[FEATURES], "user_id", 0),
        # its value, and the join that decides its rows
        (URI[STAGING], "user_id", 1),
        (URI[ORDERS], "user_id", 1),
        # the staging column's own sources: the CRM id, and the filter on signup_at
        (URI[CRM], "id", 2),
        (URI[CRM], "signup_at", 2),
    }
    assert [c["degree"] for c in answer["columns"]] == sorted(
        c["degree"] for c in answer["columns"]
    )
    assert edges_of(answer) == {
        (URI[STAGING], "user_id", URI[FEATURES], "user_id"),
        (URI[ORDERS], "user_id", URI[FEATURES], "user_id"),
        (URI[CRM], "id", URI[STAGING], "user_id"),
        (URI[CRM], "signup_at", URI[STAGING], "user_id"),
    }
    by_pair = {(e["from"]["name"], e["to"]["dataset"]["uri"]): e for e in answer["edges"]}
    # a direct input that is also a join key: one edge, both transformations
    staging_edge = next(e for e in answer["edges"] if e["from"]["dataset"]["uri"] == URI[STAGING])
    assert staging_edge["direct"] is True
    assert {(x["type"], x["subtype"]) for x in staging_edge["transformations"]} == {
        ("DIRECT", "IDENTITY"),
        ("INDIRECT", "JOIN"),
    }
    orders_edge = next(e for e in answer["edges"] if e["from"]["dataset"]["uri"] == URI[ORDERS])
    assert orders_edge["direct"] is False
    assert orders_edge["run"]["experiment"]["name"] == "dbt/mart.features"
    assert orders_edge["reportedAt"] == at(10)
    signup = by_pair["signup_at", URI[STAGING]]
    assert signup["transformations"] == [
        {"type": "INDIRECT", "subtype": "FILTER", "description": None, "masking": None}
    ]
    assert signup["run"]["experiment"]["name"] == "spark/copy_users"
    # types come from the dataset's schema, where it has one
    typed = {(c["dataset"]["uri"], c["name"]): c["type"] for c in answer["columns"]}
    assert typed[URI[CRM], "signup_at"] == "STRING"
    assert typed[URI[ORDERS], "user_id"] is None
    assert not answer["truncated"] and not answer["moreBeyondDepth"]
    assert answer["reachableColumns"] == 4 and answer["omittedColumns"] == 0

    # Only what flows into the value: no join keys, no filter.
    direct = lineage(graph, FEATURES, columns=["user_id"], indirect=False)
    assert columns_of(direct) == {
        (URI[FEATURES], "user_id", 0),
        (URI[STAGING], "user_id", 1),
        (URI[CRM], "id", 2),
    }
    assert all(e["direct"] for e in direct["edges"])


def test_downstream_impact_of_a_source_column(
    server: ThreadedServer, writer: str, graph: Api
) -> None:
    build(server, writer)
    # The e-mail reaches only its masked hash.
    email = lineage(graph, CRM, "DOWNSTREAM", columns=["email"])
    assert columns_of(email) == {(URI[CRM], "email", 0), (URI[STAGING], "email_hash", 1)}
    (edge,) = email["edges"]
    assert edge["transformations"] == [
        {"type": "DIRECT", "subtype": "TRANSFORMATION", "description": "sha256", "masking": True}
    ]
    # A filter column shapes every staging column, and through the join key every feature.
    signup = lineage(graph, CRM, "DOWNSTREAM", columns=["signup_at"])
    assert columns_of(signup) == {
        (URI[CRM], "signup_at", 0),
        (URI[STAGING], "user_id", 1),
        (URI[STAGING], "email_hash", 1),
        (URI[STAGING], "country", 1),
        (URI[FEATURES], "user_id", 2),
        (URI[FEATURES], "country", 2),
        (URI[FEATURES], "total_spend", 2),
    }
    assert not lineage(graph, CRM, "DOWNSTREAM", columns=["signup_at"], indirect=False)["columns"][
        1:
    ]
    # Both ways from the middle; every column of a dataset when none is named.
    both = lineage(graph, STAGING, "BOTH", columns=["country"])
    assert columns_of(both) == {
        (URI[STAGING], "country", 0),
        (URI[CRM], "country", 1),
        (URI[CRM], "signup_at", 1),
        (URI[FEATURES], "country", 1),
    }
    everything = lineage(graph, STAGING, "UPSTREAM")
    assert {(uri, name) for uri, name, d in columns_of(everything) if d == 0} == {
        (URI[STAGING], "user_id"),
        (URI[STAGING], "email_hash"),
        (URI[STAGING], "country"),
    }


def test_limits_are_honest_and_arguments_checked(
    server: ThreadedServer, writer: str, graph: Api, settings: Settings
) -> None:
    build(server, writer)
    # 6 columns beside the start: 3 staging ones at degree 1, 3 features at degree 2
    cut = lineage(graph, CRM, "DOWNSTREAM", columns=["signup_at"], limit=3)
    assert columns_of(cut) == {
        (URI[CRM], "signup_at", 0),
        (URI[STAGING], "country", 1),
        (URI[STAGING], "email_hash", 1),
        (URI[STAGING], "user_id", 1),
    }
    assert cut["truncated"] is True and cut["moreBeyondDepth"] is False
    assert (cut["reachableColumns"], cut["omittedColumns"]) == (6, 3)
    # edges only among the columns kept
    assert edges_of(cut) == {
        (URI[CRM], "signup_at", URI[STAGING], name) for name in ("country", "email_hash", "user_id")
    }
    # past the limit at the first level, the walk stops there: the nearest two, in order
    tight = lineage(graph, CRM, "DOWNSTREAM", columns=["signup_at"], limit=2)
    assert [c["name"] for c in tight["columns"]] == ["signup_at", "country", "email_hash"]
    assert tight["truncated"] is True and tight["moreBeyondDepth"] is False
    assert (tight["reachableColumns"], tight["omittedColumns"]) == (3, 1)
    shallow = lineage(graph, CRM, "DOWNSTREAM", columns=["signup_at"], depth=1)
    assert shallow["moreBeyondDepth"] is True and shallow["truncated"] is False
    assert max(c["degree"] for c in shallow["columns"]) == 1
    deep = graph.fails(LINEAGE, {"uri": URI[CRM], "direction": "UPSTREAM", "depth": 999})
    assert deep["extensions"]["code"] == "LIMIT_EXCEEDED"
    assert deep["extensions"]["field"] == "maxDepth"
    empty = graph.fails(LINEAGE, {"uri": URI[CRM], "direction": "UPSTREAM", "columns": ["id", ""]})
    assert empty["extensions"]["code"] == "VALIDATION"
    assert empty["extensions"]["field"] == "columns[1]"
    # a column named that no lineage reaches: itself, and nothing else
    none = lineage(graph, CRM, columns=["no_such_column"])
    assert none["columns"] == [
        {"name": "no_such_column", "type": None, "degree": 0, "dataset": {"uri": URI[CRM]}}
    ]
    assert none["edges"] == [] and none["reachableColumns"] == 0


def test_columns_of_a_dataset_from_its_schema(
    server: ThreadedServer, writer: str, graph: Api
) -> None:
    nested = facet(
        fields=[
            {"name": "id", "type": "BIGINT", "description": "user id"},
            {"name": "address", "type": "STRUCT", "fields": [{"name": "city", "type": "STRING"}]},
        ]
    )
    send(
        server,
        writer,
        event("spark/addresses", [], [dataset(("s3://lake", "addr"), schema=nested)]),
    )
    found = graph(
        '{ dataset(uri: "s3://lake/addr") { columns { name type description dataset { uri } } } }'
    )
    assert found["dataset"]["columns"] == [
        {
            "name": "id",
            "type": "BIGINT",
            "description": "user id",
            "dataset": {"uri": "s3://lake/addr"},
        },
        {
            "name": "address",
            "type": "STRUCT",
            "description": None,
            "dataset": {"uri": "s3://lake/addr"},
        },
        {
            "name": "address.city",
            "type": "STRING",
            "description": None,
            "dataset": {"uri": "s3://lake/addr"},
        },
    ]


def test_a_newer_report_replaces_an_older_one_and_replays_change_nothing(
    server: ThreadedServer, writer: str, graph: Api, db: neo4j.Driver
) -> None:
    build(server, writer)
    before = lineage(graph, FEATURES, columns=["total_spend"])
    assert (URI[ORDERS], "user_id", 1) in columns_of(before)
    # The dbt model drops its join: the join keys are no longer inputs of its columns.
    newer = event(
        "dbt/mart.features",
        [dataset(STAGING), dataset(ORDERS)],
        [dataset(FEATURES, features_columns(join=False))],
        minutes=20,
    )
    answer = send(server, writer, newer)
    # (each of the 3 columns had both join keys as inputs; user_id keeps its own, now
    # direct only)
    assert answer["columnLineage"] == {"edges": 3, "removed": 5}
    after = lineage(graph, FEATURES, columns=["total_spend"])
    assert columns_of(after) == {(URI[FEATURES], "total_spend", 0), (URI[ORDERS], "amount", 1)}
    # the edge kept lost the join it had
    kept = lineage(graph, FEATURES, columns=["user_id"], depth=1)
    (user_id,) = kept["edges"]
    assert user_id["transformations"] == [
        {"type": "DIRECT", "subtype": "IDENTITY", "description": None, "masking": None}
    ]
    assert after["edges"][0]["reportedAt"] == at(20)
    size = graph_size(db)
    # The older report, sent again late, and the newer one again: nothing changes.
    older = event(
        "dbt/mart.features",
        [dataset(STAGING), dataset(ORDERS)],
        [dataset(FEATURES, features_columns())],
        minutes=10,
        run_id=RUN_FEATURES,
    )
    send(server, writer, older)
    send(server, writer, newer)
    assert graph_size(db) == size
    assert lineage(graph, FEATURES, columns=["total_spend"]) == after
    # Another job's report on the same dataset leaves the first job's edges alone, even
    # stamped earlier than the first job's latest (its clock, or a late delivery).
    send(
        server,
        writer,
        event(
            "dbt/mart.backfill",
            [dataset(ORDERS)],
            [
                dataset(
                    FEATURES,
                    facet(fields={"total_spend": {"inputFields": [ref(ORDERS, "refund")]}}),
                )
            ],
            minutes=15,
        ),
    )
    both = lineage(graph, FEATURES, columns=["total_spend"])
    assert columns_of(both) == {
        (URI[FEATURES], "total_spend", 0),
        (URI[ORDERS], "amount", 1),
        (URI[ORDERS], "refund", 1),
    }
    # A report that names no transformation counts as direct.
    refund = next(e for e in both["edges"] if e["from"]["name"] == "refund")
    assert refund["direct"] is True and refund["transformations"] == []
    # The facet marked deleted withdraws what that job said.
    withdrawn = event(
        "dbt/mart.backfill",
        [dataset(ORDERS)],
        [dataset(FEATURES, {"_deleted": True})],
        minutes=16,
    )
    assert send(server, writer, withdrawn)["columnLineage"] == {"edges": 0, "removed": 1}
    assert columns_of(lineage(graph, FEATURES, columns=["total_spend"])) == {
        (URI[FEATURES], "total_spend", 0),
        (URI[ORDERS], "amount", 1),
    }


def test_input_versions_and_datasets_named_only_in_the_facet(
    server: ThreadedServer, writer: str, graph: Api
) -> None:
    version = {"version": facet(datasetVersion="v7")}
    send(
        server,
        writer,
        event(
            "spark/snapshot",
            [{"namespace": "s3://lake", "name": "events", "facets": version}],
            [
                dataset(
                    ("s3://lake", "daily"),
                    facet(
                        fields={
                            "n": {
                                "inputFields": [
                                    ref(("s3://lake", "events"), "id"),
                                    ref(("s3://lake", "lookup"), "k"),
                                ],
                                # the facet's 1-0 form: one transformation for the column
                                "transformationDescription": "count(distinct id)",
                                "transformationType": "AGGREGATION",
                            }
                        }
                    ),
                )
            ],
        ),
    )
    answer = graph(
        """{ dataset(uri: "s3://lake/daily") { columnLineage {
              columns { name dataset { uri digest } }
              edges { from { name } description transformations { type subtype } } } } }"""
    )["dataset"]["columnLineage"]
    sources = {(c["dataset"]["uri"], c["dataset"]["digest"], c["name"]) for c in answer["columns"]}
    # the input column is the version the run read; a dataset only the facet names is the
    # unversioned one at its URI, made for it
    assert sources == {
        ("s3://lake/daily", None, "n"),
        ("s3://lake/events", "v7", "id"),
        ("s3://lake/lookup", None, "k"),
    }
    assert {e["description"] for e in answer["edges"]} == {"count(distinct id)"}
    assert all(
        e["transformations"] == [{"type": "DIRECT", "subtype": "AGGREGATION"}]
        for e in answer["edges"]
    )
    made = graph('{ dataset(uri: "s3://lake/lookup") { uri sourceType } }')["dataset"]
    assert made == {"uri": "s3://lake/lookup", "sourceType": "s3"}


def test_a_dataset_event_reports_column_lineage(
    server: ThreadedServer, writer: str, graph: Api
) -> None:
    body = {
        "eventTime": at(3),
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
        "dataset": dataset(
            ("s3://lake", "view"), facet(fields={"a": {"inputFields": [ref(ORDERS, "amount")]}})
        ),
    }
    assert send(server, writer, body)["columnLineage"] == {"edges": 1, "removed": 0}
    answer = graph(
        '{ dataset(uri: "s3://lake/view") { columnLineage { edges { from { name } run { id } } } } }'
    )
    assert answer["dataset"]["columnLineage"]["edges"] == [
        {"from": {"name": "amount"}, "run": None}
    ]


@pytest.mark.parametrize(
    ("columns", "field"),
    [
        (
            {"fields": {"a": {"inputFields": [{"namespace": "s3://x", "name": "y"}]}}},
            "inputFields[0].field",
        ),
        (
            {"fields": {"a": {"inputFields": [{"name": "y", "field": "b"}]}}},
            "inputFields[0].namespace",
        ),
        ({"fields": {"a": {"inputFields": "nope"}}}, "fields.a.inputFields"),
        ({"fields": ["a"]}, "columnLineage.fields"),
    ],
)
def test_a_malformed_report_is_skipped_and_the_run_still_recorded(
    server: ThreadedServer,
    writer: str,
    graph: Api,
    db: neo4j.Driver,
    columns: dict[str, Any],
    field: str,
) -> None:
    """A producer's bad optional facet must not lose the run (clients do not resend a
    refused event): the event is recorded, the report skipped, and the answer says why."""
    body = event("spark/bad", [dataset(ORDERS)], [dataset(FEATURES, facet(**columns))])
    response = post(server, writer, body)
    assert response.status_code == 201, response.text
    said = response.json()["columnLineage"]
    assert said["edges"] == 0 and said["removed"] == 0
    (skipped,) = said["skipped"]
    assert skipped["field"].startswith("body.outputs[0].facets.columnLineage")
    assert field in skipped["field"], skipped
    run = graph(
        "query($id: String!) { experimentRun(externalId: $id) { status } }",
        {"id": body["run"]["runId"]},
    )
    assert run["experimentRun"]["status"] == "FINISHED"
    records, _, _ = db.execute_query("MATCH ()-[r:FEEDS]->() RETURN count(r) AS n")
    assert records[0]["n"] == 0


def test_what_real_producers_send_is_taken(server: ThreadedServer, writer: str, graph: Api) -> None:
    """Nulls for absent parts, empty legacy fields, the 1-0 MASKED type, a transformation
    without a type, unusable names (left out and said so), long descriptions (shortened)."""
    fields = {
        "a": {
            "inputFields": [
                {**ref(ORDERS, "amount"), "transformations": None},
                {
                    **ref(ORDERS, "note"),
                    "transformations": [{"subtype": "X", "description": "d" * 9000}],
                },
                ref(ORDERS, ""),
                ref(ORDERS, "x" * 2000),
            ],
            "transformationDescription": "",
            "transformationType": "",
        },
        "b": {"inputFields": [ref(ORDERS, "email")], "transformationType": "MASKED"},
        "": {"inputFields": [ref(ORDERS, "amount")]},
    }
    answer = send(
        server,
        writer,
        event(
            "spark/real", [dataset(ORDERS)], [dataset(FEATURES, facet(fields=fields, dataset=None))]
        ),
    )
    assert answer["columnLineage"]["edges"] == 3
    (skipped,) = answer["columnLineage"]["skipped"]
    assert skipped["message"].startswith("3 column reference(s) left out")
    found = lineage(graph, FEATURES, columns=["a", "b"])
    by_source = {e["from"]["name"]: e for e in found["edges"]}
    assert by_source["amount"]["transformations"] == [] and by_source["amount"]["direct"] is True
    (note,) = by_source["note"]["transformations"]
    assert note["type"] == "DIRECT"  # (none given: taken as direct)
    assert by_source["note"]["direct"] is True and len(note["description"]) == 4096
    assert by_source["email"]["transformations"] == [
        {"type": "DIRECT", "subtype": "TRANSFORMATION", "description": None, "masking": True}
    ]


def test_reports_past_the_limits_are_skipped_before_anything_is_built(
    server: ThreadedServer, writer: str, graph: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lineagehub.graph import columns as engine

    # (the server runs in this process: its limit is the module's)
    monkeypatch.setattr(engine, "MAX_EDGES", 10)
    # 3 dataset-wide inputs x 4 columns (2 named + 2 in the schema) = 12 edges
    wide = facet(
        fields={"a": {"inputFields": []}, "b": {"inputFields": []}},
        dataset=[ref(ORDERS, c) for c in ("x", "y", "z")],
    )
    body = event(
        "spark/wide",
        [dataset(ORDERS)],
        [dataset(FEATURES, wide, schema=schema("a", "b", "c", "d"))],
    )
    answer = send(server, writer, body)
    (skipped,) = answer["columnLineage"]["skipped"]
    assert skipped == {
        "field": "body.outputs[0].facets.columnLineage",
        "message": "reports 12 column edges; at most 10 are taken",
    }
    assert lineage(graph, FEATURES)["columns"] == []


def test_round_trips_do_not_grow_with_the_answer(
    server: ThreadedServer, writer: str, graph: Api
) -> None:
    def trips(width: int) -> tuple[int, int]:
        source = ("s3://wide", f"src-{width}")
        target = ("s3://wide", f"dst-{width}")
        fields = {
            f"c{i}": {"inputFields": [ref(source, f"c{i}", t("DIRECT", "IDENTITY"))]}
            for i in range(width)
        }
        answer = post(
            server,
            writer,
            event("spark/wide", [dataset(source)], [dataset(target, facet(fields=fields))]),
        )
        assert answer.status_code == 201, answer.text
        assert answer.json()["columnLineage"] == {"edges": width, "removed": 0}
        read = graph.post(
            """query($uri: String!) { dataset(uri: $uri) { columnLineage(limit: 5000) {
                  columns { name dataset { uri } } edges { from { name } run { name } } } } }""",
            {"uri": f"s3://wide/dst-{width}"},
        )
        assert not read.errors, read.errors
        assert len(read.data["dataset"]["columnLineage"]["columns"]) == 2 * width
        return int(answer.headers["x-bolt-round-trips"]), read.round_trips

    small, large = trips(2), trips(400)
    assert small == large
    # the dataset, its column lineage, the runs on its edges
    assert small[1] == 3
    # many datasets' column lineage: one query for all of them
    listed = graph.post(
        "{ datasets(first: 50) { nodes { uri columnLineage { columns { name } } } } }"
    )
    assert not listed.errors, listed.errors
    assert listed.round_trips == 2


def test_purging_a_dataset_takes_its_columns(
    server: ThreadedServer, writer: str, as_role: Any, db: neo4j.Driver
) -> None:
    build(server, writer)
    admin = as_role("admin")
    staging = admin(f'{{ dataset(uri: "{URI[STAGING]}") {{ id }} }}')["dataset"]["id"]
    admin("mutation($id: ID!) { deleteNode(id: $id) { id } }", {"id": staging})
    # a tombstone keeps its lineage, columns included
    kept = admin(
        f'{{ dataset(uri: "{URI[FEATURES]}") {{ columnLineage(columns: ["country"]) {{ columns {{ name dataset {{ deleted }} }} }} }} }}'
    )
    assert {"name": "country", "dataset": {"deleted": True}} in kept["dataset"]["columnLineage"][
        "columns"
    ]
    admin("mutation($id: ID!) { purgeNode(id: $id) }", {"id": staging})
    records, _, _ = db.execute_query(
        "MATCH (f:DatasetField {datasetId: $id}) RETURN count(f) AS n", {"id": staging}
    )
    assert records[0]["n"] == 0
    after = lineage(admin, FEATURES, columns=["country"])
    # what the staging dataset's columns fed is gone with them; the other join key stays
    assert columns_of(after) == {(URI[FEATURES], "country", 0), (URI[ORDERS], "user_id", 1)}


def test_who_may_read_and_send(server: ThreadedServer, settings: Settings, graph: Api) -> None:
    _, reader = make_token(settings, "viewer", ["reader"])
    body = event("spark/x", [], [dataset(FEATURES, facet(fields={"a": {"inputFields": []}}))])
    refused = httpx.post(
        f"{server.url}/api/v1/lineage",
        json=body,
        headers={"authorization": f"Bearer {reader}"},
        timeout=30,
    )
    assert refused.status_code == 403


def test_concurrent_reports_on_one_output(server: ThreadedServer, writer: str, graph: Api) -> None:
    """Eight jobs report on one output at once, sharing input columns (named in different
    orders): every report lands, none undoes another, nothing deadlocks for good."""

    def report(i: int) -> dict[str, Any]:
        order = ["a", "b", "c"] if i % 2 else ["c", "b", "a"]
        fields = {f"out{i}": {"inputFields": [ref(ORDERS, c) for c in order]}}
        return event(f"spark/job{i}", [dataset(ORDERS)], [dataset(FEATURES, facet(fields=fields))])

    statuses = all_at_once(server, writer, report)
    assert statuses == [201] * 8
    found = lineage(graph, FEATURES)
    assert {(e["from"]["name"], e["to"]["name"]) for e in found["edges"]} == {
        (c, f"out{i}") for i in range(8) for c in ("a", "b", "c")
    }


def test_job_and_dataset_events_report_and_withdraw(
    server: ThreadedServer, writer: str, graph: Api
) -> None:
    job_event = {
        "eventTime": at(1),
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent",
        "job": {"namespace": "dbt", "name": "mart.view"},
        "inputs": [dataset(ORDERS)],
        "outputs": [
            dataset(FEATURES, facet(fields={"v": {"inputFields": [ref(ORDERS, "amount")]}}))
        ],
    }
    assert send(server, writer, job_event)["columnLineage"] == {"edges": 1, "removed": 0}
    (edge,) = lineage(graph, FEATURES)["edges"]
    assert edge["run"] is None and edge["from"]["name"] == "amount"
    # a DatasetEvent's report, then withdrawn by the same producer
    body = {
        "eventTime": at(2),
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
        "dataset": dataset(STAGING, facet(fields={"s": {"inputFields": [ref(CRM, "id")]}})),
    }
    assert send(server, writer, body)["columnLineage"] == {"edges": 1, "removed": 0}
    body["eventTime"] = at(3)
    body["dataset"] = dataset(STAGING, {"_deleted": True})
    assert send(server, writer, body)["columnLineage"] == {"edges": 0, "removed": 1}
    assert lineage(graph, STAGING)["columns"] == []
    # the job's report is another reporter's: untouched
    assert len(lineage(graph, FEATURES)["edges"]) == 1


def test_starts_do_not_use_up_the_limit(server: ThreadedServer, writer: str, graph: Api) -> None:
    """Every column of a wide table, each from its own source column: all 250 starts come
    back, then the first `limit` (200) sources."""
    fields = {f"c{i:03}": {"inputFields": [ref(ORDERS, f"s{i:03}")]} for i in range(250)}
    send(
        server,
        writer,
        event("spark/wide", [dataset(ORDERS)], [dataset(FEATURES, facet(fields=fields))]),
    )
    found = graph(
        """query($uri: String!) { dataset(uri: $uri) { columnLineage {
              columns { degree } truncated reachableColumns omittedColumns } } }""",
        {"uri": URI[FEATURES]},
    )["dataset"]["columnLineage"]
    degrees = [c["degree"] for c in found["columns"]]
    assert degrees.count(0) == 250 and degrees.count(1) == 200
    assert found["truncated"] is True
    # (a level is read up to limit + 1 new columns: past the limit, counts are lower bounds)
    assert (found["reachableColumns"], found["omittedColumns"]) == (201, 1)


def test_a_dataset_named_only_in_the_facet_binds_to_the_one_at_its_uri(
    server: ThreadedServer, writer: str, graph: Api
) -> None:
    # the lookup table exists only as a version (another run wrote it)
    version = {"version": facet(datasetVersion="v3")}
    send(server, writer, event("spark/lookup", [], [dataset(("s3://lake", "lookup"), **version)]))
    fields = {"k": {"inputFields": [ref(("s3://lake/", "/lookup"), "key")]}}  # slashes differ
    send(
        server,
        writer,
        event("spark/use", [], [dataset(("s3://lake", "daily"), facet(fields=fields))]),
    )
    found = graph(
        '{ dataset(uri: "s3://lake/daily") { columnLineage { columns { name dataset { uri digest } } } } }'
    )["dataset"]["columnLineage"]["columns"]
    assert {"name": "key", "dataset": {"uri": "s3://lake/lookup", "digest": "v3"}} in found
    versions = graph('{ datasetVersions(uri: "s3://lake/lookup") { digest } }')["datasetVersions"]
    assert versions == [{"digest": "v3"}]  # no unversioned twin made


RECORD = """
mutation($input: ColumnLineageInput!) {
  recordColumnLineage(input: $input) { dataset { uri } edges removed }
}
"""


def test_column_lineage_declared_through_graphql(
    server: ThreadedServer, as_role: Any, writer: str
) -> None:
    """A notebook declares its feature table's column lineage; a second call replaces it;
    naming a run makes the run's job the reporter, as its OpenLineage events would be."""
    notebook = as_role("writer")
    for uri in ("s3://lake/orders", "s3://lake/features"):
        notebook(
            "mutation($i: DatasetInput!) { registerDataset(input: $i) { dataset { id } } }",
            {"i": {"uri": uri, "schema": [{"name": "total", "type": "DOUBLE"}, {"name": "n"}]}},
        )
    orders = {"uri": "s3://lake/orders"}
    given: dict[str, Any] = {
        "dataset": {"uri": "s3://lake/features"},
        "columns": [
            {
                "name": "total",
                "inputs": [
                    {
                        "dataset": orders,
                        "column": "amount",
                        "transformations": [{"type": "DIRECT", "subtype": "AGGREGATION"}],
                    }
                ],
            }
        ],
        "datasetInputs": [{"dataset": orders, "column": "status"}],
    }
    done = notebook(RECORD, {"input": given})["recordColumnLineage"]
    # total <- amount, and the filter into both schema columns (total, n)
    assert done == {"dataset": {"uri": "s3://lake/features"}, "edges": 3, "removed": 0}
    found = notebook(
        """{ dataset(uri: "s3://lake/features") { columnLineage {
              columns { name type degree }
              edges { from { name } to { name } direct transformations { type subtype } run { id } }
        } } }"""
    )["dataset"]["columnLineage"]
    assert {(e["from"]["name"], e["to"]["name"], e["direct"]) for e in found["edges"]} == {
        ("amount", "total", True),
        ("status", "total", False),
        ("status", "n", False),
    }
    assert {"name": "total", "type": "DOUBLE", "degree": 0} in found["columns"]
    # the same reporter (the API) says something else: the old edges go
    given["datasetInputs"] = []
    assert notebook(RECORD, {"input": given})["recordColumnLineage"]["removed"] == 2
    audit = notebook(
        """{ auditEvents(filter: {action: "recordColumnLineage"}) {
              nodes { actor changes { after } } } }"""
    )["auditEvents"]["nodes"]
    assert len(audit) == 2
    assert audit[0]["changes"][0]["after"]["columnLineage"]["reporter"] == "api"

    # Named by a run, the declaration is the API's for that job ("api:<experiment>"): the
    # run is on its edges, and the job's own OpenLineage reports are another reporter's,
    # whatever their (producer's) times.
    experiment = notebook('mutation { createExperiment(input: {name: "spark/features"}) { id } }')
    job = experiment["createExperiment"]["id"]
    run = notebook(
        "mutation($e: ID!) { recordExperimentRun(input: {experimentId: $e, externalId: "
        '"nb-1", status: FINISHED}) { run { id } } }',
        {"e": job},
    )["recordExperimentRun"]["run"]["id"]
    given["runId"] = run
    given["columns"][0]["inputs"][0]["column"] = "price"
    assert notebook(RECORD, {"input": given})["recordColumnLineage"]["edges"] == 1
    fields = {"total": {"inputFields": [ref(("s3", "//lake/orders"), "cost")]}}
    ol = event("spark/features", [], [dataset(("s3://lake", "features"), facet(fields=fields))])
    assert send(server, writer, ol)["columnLineage"] == {"edges": 1, "removed": 0}
    edges = lineage_edges(notebook, "s3://lake/features")
    assert {e["from"]["name"] for e in edges} == {"amount", "price", "cost"}
    by_source = {e["from"]["name"]: e for e in edges}
    assert by_source["amount"]["reporter"] == "api"
    assert by_source["price"]["reporter"] == f"api:{job}"
    assert by_source["price"]["run"] == {"id": run}
    assert by_source["cost"]["reporter"] == job
    assert by_source["cost"]["run"] is not None and by_source["cost"]["run"]["id"] != run


def lineage_edges(api: Api, uri: str) -> list[dict[str, Any]]:
    found = api(
        "query($u: String!) { dataset(uri: $u) { columnLineage { "
        "edges { from { name } reporter run { id } } } } }",
        {"u": uri},
    )
    edges: list[dict[str, Any]] = found["dataset"]["columnLineage"]["edges"]
    return edges


def test_declaring_column_lineage_checks_everything_and_writes_nothing_on_error(
    server: ThreadedServer, as_role: Any, db: neo4j.Driver
) -> None:
    writer = as_role("writer")
    writer(
        "mutation($i: DatasetInput!) { registerDataset(input: $i) { dataset { id } } }",
        {"i": {"uri": "s3://lake/out"}},
    )
    out = {"uri": "s3://lake/out"}
    size = graph_size(db)
    cases = [
        (
            {
                "dataset": out,
                "columns": [
                    {"name": "a", "inputs": [{"dataset": {"uri": "s3://nope"}, "column": "x"}]}
                ],
            },
            "NOT_FOUND",
            "input.columns[0].inputs[0].dataset",
        ),
        (
            {"dataset": out, "columns": [{"name": "", "inputs": []}]},
            "VALIDATION",
            "input.columns[0].name",
        ),
        (
            {"dataset": out, "columns": [{"name": "a", "inputs": []}, {"name": "a", "inputs": []}]},
            "VALIDATION",
            "input.columns",
        ),
        ({"dataset": out, "columns": [], "runId": "run_01NOPE"}, "NOT_FOUND", "input.runId"),
        ({"dataset": {"uri": "s3://nope"}, "columns": []}, "NOT_FOUND", "input.dataset"),
    ]
    for given, code, field in cases:
        error = writer.fails(RECORD, {"input": given})
        assert error["extensions"]["code"] == code, (given, error)
        assert error["extensions"]["field"] == field, (given, error)
    assert graph_size(db) == size
    refused = as_role("reader").fails(RECORD, {"input": {"dataset": out, "columns": []}})
    assert refused["extensions"]["code"] == "FORBIDDEN"


def test_a_report_not_taken_leaves_the_report_time(
    server: ThreadedServer, writer: str, graph: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused report (too big) changes nothing, its time included: the same job's
    report stamped between the stored one and the refused one is still taken."""
    from lineagehub.graph import columns as engine

    def report(minutes: float, *sources: str) -> dict[str, Any]:
        fields = {"a": {"inputFields": [ref(ORDERS, c) for c in sources]}}
        return event(
            "spark/j", [dataset(ORDERS)], [dataset(FEATURES, facet(fields=fields))], minutes
        )

    send(server, writer, report(10, "x"))
    monkeypatch.setattr(engine, "MAX_EDGES", 2)
    refused = send(server, writer, report(20, "p", "q", "r"))
    assert refused["columnLineage"]["skipped"][0]["message"].startswith("reports 3 column edges")
    assert {e["from"]["name"] for e in lineage(graph, FEATURES)["edges"]} == {"x"}
    monkeypatch.undo()
    assert send(server, writer, report(15, "y"))["columnLineage"] == {"edges": 1, "removed": 1}
    assert {e["from"]["name"] for e in lineage(graph, FEATURES)["edges"]} == {"y"}
    # and nothing was made for a refused report's datasets
    fields = {"a": {"inputFields": [ref(("s3://elsewhere", f"t{i}"), "c") for i in range(3)]}}
    monkeypatch.setattr(engine, "MAX_EDGES", 2)
    send(server, writer, event("spark/j", [], [dataset(FEATURES, facet(fields=fields))], 30))
    assert graph('{ dataset(uri: "s3://elsewhere/t0") { id } }')["dataset"] is None


def test_one_dataset_named_twice_takes_its_later_report(
    server: ThreadedServer, writer: str, graph: Api
) -> None:
    first = facet(fields={"a": {"inputFields": [ref(ORDERS, "x")]}})
    later = facet(fields={"a": {"inputFields": [ref(ORDERS, "y")]}})
    body = event(
        "spark/twice", [dataset(ORDERS)], [dataset(FEATURES, first), dataset(FEATURES, later)]
    )
    assert send(server, writer, body)["columnLineage"] == {"edges": 1, "removed": 0}
    assert {e["from"]["name"] for e in lineage(graph, FEATURES)["edges"]} == {"y"}


def test_both_ways_with_a_limit(server: ThreadedServer, writer: str, graph: Api) -> None:
    build(server, writer)
    both = lineage(graph, STAGING, "BOTH", columns=["user_id"], limit=2)
    # 2 upstream (CRM id, signup_at), 3 downstream (features user_id, country, total_spend)
    assert [c["degree"] for c in both["columns"]] == [0, 1, 1]
    assert both["truncated"] is True and both["moreBeyondDepth"] is False
    assert both["reachableColumns"] >= 3 and both["omittedColumns"] == both["reachableColumns"] - 2
    whole = lineage(graph, STAGING, "BOTH", columns=["user_id"])
    assert columns_of(whole) == {
        (URI[STAGING], "user_id", 0),
        (URI[CRM], "id", 1),
        (URI[CRM], "signup_at", 1),
        (URI[FEATURES], "user_id", 1),
        (URI[FEATURES], "country", 1),
        (URI[FEATURES], "total_spend", 1),
    }
    assert whole["truncated"] is False and whole["reachableColumns"] == 5


def test_a_producer_upgrade_is_the_same_reporter(
    server: ThreadedServer, writer: str, graph: Api
) -> None:
    def dataset_event(version: str, source: str, minutes: float) -> dict[str, Any]:
        return {
            "eventTime": at(minutes),
            "producer": f"https://github.com/OpenLineage/OpenLineage/tree/{version}/integration/spark",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
            "dataset": dataset(STAGING, facet(fields={"s": {"inputFields": [ref(CRM, source)]}})),
        }

    send(server, writer, dataset_event("1.26.0", "id", 1))
    assert send(server, writer, dataset_event("1.27.1", "email", 2))["columnLineage"] == {
        "edges": 1,
        "removed": 1,
    }
    (edge,) = lineage(graph, STAGING)["edges"]
    assert edge["from"]["name"] == "email"

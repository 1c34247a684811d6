"""Every document in queries/ runs against the live endpoint and answers what it promises.

Each ``queries/NAME.graphql`` has a ``queries/NAME.json`` beside it with the
``variables`` to send and an ``expect`` object that the response's data must contain
(objects match on the keys given, lists element by element).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.api.fragments import REGISTER
from tests.api.lineage_scenario import build
from tests.api.test_registry_events import next_message, subscription
from tests.conftest import REPO, Api

QUERIES = sorted((REPO / "queries").glob("*.graphql"))


def contains(actual: Any, expected: Any, where: str = "data") -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{where}.{key} is missing"
            contains(actual[key], value, f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), (
            f"{where}: expected {len(expected)} items, got {actual!r}"
        )
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            contains(a, e, f"{where}[{i}]")
    else:
        assert actual == expected, f"{where}: expected {expected!r}, got {actual!r}"


def seed_examples(api: Api) -> None:
    """The registry the examples talk about: the lineage scenario (churn-predictor v1, v2
    with their data, code, runs and services) and fraud-detector v1."""
    scenario = build(api)
    # An Airflow job, through OpenLineage, built the labels v2 was trained on.
    for event_type, minute in (("START", 0), ("COMPLETE", 7)):
        sent = api.http.post("/api/v1/lineage", json=pipeline_event(event_type, minute))
        assert sent.status_code == 201, sent.text
    for model, version, accuracy in [("fraud-detector", "v1", 0.95)]:
        api(
            REGISTER,
            {
                "input": {
                    "model": {"name": model, "owner": "ana", "tags": ["tabular"]},
                    "version": {
                        "name": version,
                        "author": "ana",
                        "customProperties": [{"key": "accuracy", "floatValue": accuracy}],
                    },
                    "artifact": {
                        "uri": f"s3://models/{model}/{version}/model.onnx",
                        "modelFormatName": "onnx",
                        "modelFormatVersion": "1.16",
                    },
                }
            },
        )
    # Governance: v2 approved and promoted; fraud-detector v1 deployed without approval.
    fraud = api('{ modelVersion(model: "fraud-detector", name: "v1") { id } }')["modelVersion"]
    api(
        "mutation($e: ID!, $v: ID!) { createInferenceService(input: "
        '{environmentId: $e, name: "fraud-api", modelVersionId: $v}) { id } }',
        {"e": scenario.env, "v": fraud["id"]},
    )
    api(
        'mutation($v: ID!) { requestApproval(versionId: $v, comment: "ready") { version { id } } }',
        {"v": scenario.v2},
    )
    api(
        'mutation($v: ID!) { approveModelVersion(versionId: $v, comment: "AUC +7 points, bias check passed") '
        "{ version { id } } }",
        {"v": scenario.v2},
    )
    for alias, version, reason in [
        ("champion", "v1", None),
        ("champion", "v2", "fine-tuned on labels"),
        ("production", "v2", "approved release"),
    ]:
        api(
            "mutation($a: String!, $v: String!, $r: String) { setAlias(model: "
            '"churn-predictor", alias: $a, version: $v, reason: $r) { alias } }',
            {"a": alias, "v": version, "r": reason},
        )


def pipeline_event(event_type: str, minute: int) -> dict[str, Any]:
    """An OpenLineage RunEvent as Airflow's provider sends it (facets trimmed)."""
    return {
        "eventType": event_type,
        "eventTime": f"2026-03-01T06:{minute:02d}:00+00:00",
        "producer": "https://github.com/apache/airflow/tree/providers-openlineage/2.1.0",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": "0193f1a2-7c4e-7d7a-9a55-2f0c3b1e8d01"},
        "job": {
            "namespace": "airflow",
            "name": "etl.build_labels",
            "facets": {
                "sourceCodeLocation": {
                    "_producer": "https://github.com/apache/airflow",
                    "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/SourceCodeLocationJobFacet.json",
                    "type": "git",
                    "url": "https://git.example/etl/blob/9f1c/dags/labels.py",
                    "repoUrl": "https://git.example/etl.git",
                    "version": "9f1c",
                }
            },
        },
        "inputs": [{"namespace": "postgres://warehouse:5432", "name": "crm.public.customers"}],
        "outputs": (
            [
                {
                    "namespace": "s3://lake",
                    "name": "labels",
                    "facets": {
                        "version": {"_producer": "x", "_schemaURL": "x", "datasetVersion": "d3"},
                        "schema": {
                            "_producer": "x",
                            "_schemaURL": "x",
                            "fields": [
                                {"name": "customer_id", "type": "BIGINT"},
                                {"name": "churned", "type": "BOOLEAN"},
                            ],
                        },
                        # which customer columns each label column is computed from
                        "columnLineage": {
                            "_producer": "x",
                            "_schemaURL": "x",
                            "fields": {
                                "customer_id": {"inputFields": [customer("id", "IDENTITY")]},
                                "churned": {
                                    "inputFields": [customer("cancelled_at", "TRANSFORMATION")]
                                },
                            },
                            "dataset": [customer("region", "FILTER", "INDIRECT")],
                        },
                    },
                }
            ]
            if event_type == "COMPLETE"
            else []
        ),
    }


def customer(column: str, subtype: str, kind: str = "DIRECT") -> dict[str, Any]:
    """An input column of the CRM customers table, as a columnLineage facet names it."""
    return {
        "namespace": "postgres://warehouse:5432",
        "name": "crm.public.customers",
        "field": column,
        "transformations": [{"type": kind, "subtype": subtype}],
    }


def test_every_query_has_its_variables_and_expectations() -> None:
    assert QUERIES, "queries/ holds no documents"
    for path in QUERIES:
        assert path.with_suffix(".json").exists(), f"{path.name} has no .json beside it"


def resolve(api: Api, value: Any) -> Any:
    """Variables may look ids up: {"$lookup": "<query>", "$at": "dotted.path"}."""
    if isinstance(value, dict) and "$lookup" in value:
        found = api(value["$lookup"])
        for part in value["$at"].split("."):
            found = found[part]
        return found
    if isinstance(value, dict):
        return {k: resolve(api, v) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(api, v) for v in value]
    return value


@pytest.mark.parametrize("path", QUERIES, ids=[p.stem for p in QUERIES])
def test_query_document_runs(api: Api, path: Path) -> None:
    seed_examples(api)
    spec = json.loads(path.with_suffix(".json").read_text())
    document = path.read_text()
    variables = resolve(api, spec.get("variables", {}))
    if is_subscription(document):
        # Over a WebSocket: "expect" lists the first results, in order.
        url = str(api.http.base_url.copy_with(scheme="ws", path="/graphql"))
        with subscription(url, None, variables, query=document) as ws:
            for i, expected in enumerate(spec["expect"]):
                message = next_message(ws)
                assert message["type"] == "next" and "errors" not in message["payload"], message
                contains(message["payload"]["data"], expected, f"results[{i}]")
        return
    response = api.post(document, variables)
    assert not response.errors, response.errors
    contains(response.data, spec["expect"])


def is_subscription(document: str) -> bool:
    code = [line for line in document.splitlines() if not line.lstrip().startswith("#")]
    return "\n".join(code).lstrip().startswith("subscription")

"""Deletes leave tombstones that keep lineage whole; only admins purge, and it is audited."""

from __future__ import annotations

from typing import Any

import neo4j

from tests.api.lineage_scenario import Scenario, build
from tests.conftest import Api

DELETE = "mutation($id: ID!) { deleteNode(id: $id) { id name deleted deletedBy tombstone } }"


def test_a_deleted_dataset_leaves_lookups_but_not_lineage(api: Api) -> None:
    s: Scenario = build(api)
    gone = api(DELETE, {"id": s.clean})["deleteNode"]
    assert gone == {
        "id": s.clean,
        "name": "clean",
        "deleted": True,
        "deletedBy": "local",
        "tombstone": "deleted Dataset clean",
    }
    assert api('{ dataset(uri: "s3://lake/clean", digest: "d2") { id } }')["dataset"] is None
    assert api('{ datasetVersions(uri: "s3://lake/clean") { id } }')["datasetVersions"] == []
    listed = api("{ datasets(first: 50) { nodes { id } } }")["datasets"]["nodes"]
    assert {"id": s.clean} not in listed
    # Lineage still walks through it, and says what it was.
    lineage = api(
        """query($v: ID!) { lineage(start: $v, nodeTypes: [ExperimentRun, Dataset]) {
              nodes { node { id name deleted tombstone } } } }""",
        {"v": s.v1},
    )["lineage"]["nodes"]
    by_id = {n["node"]["id"]: n["node"] for n in lineage}
    assert by_id[s.clean]["deleted"] is True
    assert by_id[s.clean]["tombstone"] == "deleted Dataset clean"
    assert s.raw in by_id  # reached through the tombstone: no hole
    # Its natural key is free again.
    again = api(
        """mutation { registerDataset(input: {uri: "s3://lake/clean", digest: "d2"}) {
              created dataset { id } } }"""
    )["registerDataset"]
    assert again["created"] is True
    assert again["dataset"]["id"] != s.clean
    updates = api.fails(
        """mutation($id: ID!) { updateDataset(id: $id, input: {description: "x"}) { id } }""",
        {"id": s.clean},
    )
    assert updates["extensions"]["code"] == "NOT_FOUND"


def test_versions_in_use_cannot_be_deleted(api: Api) -> None:
    s = build(api)
    served = api.fails(DELETE, {"id": s.v2})
    assert served["extensions"]["code"] == "CONFLICT"
    api(
        'mutation { setAlias(model: "churn-predictor", alias: "champion", version: "v1") { alias } }'
    )
    aliased = api.fails(DELETE, {"id": s.v1})
    assert aliased["extensions"]["code"] == "CONFLICT"
    assert "alias" in aliased["message"]


def test_deleting_a_version_frees_its_name_and_shows_in_lineage(api: Api) -> None:
    s = build(api)
    gone = api(DELETE, {"id": s.v1})["deleteNode"]
    assert gone["tombstone"] == "deleted ModelVersion v1 of churn-predictor"
    assert (
        api('{ modelVersion(model: "churn-predictor", name: "v1") { id } }')["modelVersion"] is None
    )
    assert (
        api("query($id: ID!) { modelVersion(id: $id) { id } }", {"id": s.v1})["modelVersion"]
        is None
    )
    node = api(
        "query($id: ID!) { node(id: $id) { ... on ModelVersion { name deleted } } }", {"id": s.v1}
    )
    assert node["node"] == {"name": "v1", "deleted": True}
    versions = api('{ registeredModel(name: "churn-predictor") { versions { nodes { name } } } }')
    assert versions["registeredModel"]["versions"]["nodes"] == [{"name": "v2"}]
    base = api(
        "query($id: ID!) { node(id: $id) { ... on ModelVersion { baseModel { name deleted tombstone } } } }",
        {"id": s.v2},
    )
    assert base["node"]["baseModel"] == {
        "name": "v1",
        "deleted": True,
        "tombstone": "deleted ModelVersion v1 of churn-predictor",
    }


def test_deleting_a_model_cascades_and_purge_is_for_admins(
    api: Api, as_role: Any, db: neo4j.Driver
) -> None:
    s = build(api)
    api("mutation($id: ID!) { undeployInferenceService(id: $id) { id } }", {"id": s.api_service})
    model = api('{ registeredModel(name: "churn-predictor") { id } }')["registeredModel"]["id"]
    api(DELETE, {"id": model})
    assert api('{ registeredModel(name: "churn-predictor") { id } }')["registeredModel"] is None
    records, _, _ = db.execute_query("MATCH (n:Deleted) RETURN n.tombstone AS t ORDER BY t")
    assert [r["t"] for r in records] == [
        "deleted ModelVersion v1 of churn-predictor",
        "deleted ModelVersion v2 of churn-predictor",
        "deleted RegisteredModel churn-predictor",
        "deleted artifact model",
        "deleted artifact model",
    ]
    writer = as_role("writer", name="wendy")
    admin = as_role("admin", name="ada")
    refused = writer.fails("mutation($id: ID!) { purgeNode(id: $id) }", {"id": s.v1})
    assert refused["extensions"]["code"] == "FORBIDDEN"
    assert refused["extensions"]["missingRole"] == "admin"
    live = admin.fails("mutation($id: ID!) { purgeNode(id: $id) }", {"id": s.raw})
    assert live["extensions"]["code"] == "CONFLICT"
    purged = admin("mutation($id: ID!) { purgeNode(id: $id) }", {"id": s.v1})
    assert purged["purgeNode"] == "deleted ModelVersion v1 of churn-predictor"
    assert admin("query($id: ID!) { node(id: $id) { id } }", {"id": s.v1})["node"] is None
    trail = admin(
        "query($id: ID!) { auditEvents(filter: {target: $id}) { totalCount } }", {"id": s.v1}
    )
    assert trail["auditEvents"]["totalCount"] == 0  # its CONCERNS edges went with it...
    kept = admin('{ auditEvents(filter: {action: "purgeNode"}) { nodes { actor targetIds } } }')
    assert kept["auditEvents"]["nodes"] == [
        {"actor": "ada", "targetIds": [s.v1]}
    ]  # ...the event stays


def test_a_deleted_service_is_not_looked_up_by_name(api: Api) -> None:
    """Lookups answer live nodes: a service's tombstone keeps its environment and takes its
    id as its name, and a lookup by that name answers null, as for a version."""
    s = build(api)
    env = api(
        "query($id: ID!) { node(id: $id) { ... on InferenceService { environment { name } } } }",
        {"id": s.shadow_service},
    )["node"]["environment"]["name"]
    api(DELETE, {"id": s.shadow_service})
    lookup = (
        "query($e: String!, $n: String!) { inferenceService(environment: $e, name: $n) { %s } }"
    )
    for selection in ("id", "name url", "modelVersion { id }"):
        found = api(lookup % selection, {"e": env, "n": s.shadow_service})
        assert found["inferenceService"] is None, selection
    assert api(
        "query($id: ID!) { node(id: $id) { ... on InferenceService { deleted } } }",
        {"id": s.shadow_service},
    )["node"] == {"deleted": True}

"""Create, update, archive and look up each registry entity through HTTP."""

from __future__ import annotations

from typing import Any

from tests.api.fragments import REGISTER, registration
from tests.conftest import Api

CREATE_MODEL = """
mutation($input: RegisteredModelInput!) {
  createRegisteredModel(input: $input) {
    id name owner task license tags externalId state createdAt updatedAt
    customProperties { key type stringValue intValue floatValue boolValue jsonValue }
  }
}
"""
UPDATE_MODEL = """
mutation($id: ID!, $input: RegisteredModelChanges!) {
  updateRegisteredModel(id: $id, input: $input) {
    id name description owner tags state updatedAt customProperties { key value }
  }
}
"""


def create_model(api: Api, **fields: Any) -> dict[str, Any]:
    model: dict[str, Any] = api(CREATE_MODEL, {"input": {"name": "fraud", **fields}})[
        "createRegisteredModel"
    ]
    return model


def test_create_a_model_with_typed_custom_properties(api: Api) -> None:
    model = create_model(
        api,
        owner="risk-team",
        task="classification",
        license="apache-2.0",
        tags=["tabular", "pii"],
        externalId="jira-42",
        customProperties=[
            {"key": "team", "stringValue": "risk"},
            {"key": "budget", "intValue": 9_000_000_000},
            {"key": "threshold", "floatValue": 0.5},
            {"key": "regulated", "boolValue": True},
            {"key": "sla", "jsonValue": {"p99_ms": 50}},
        ],
    )
    assert model["name"] == "fraud"
    assert model["state"] == "LIVE"
    assert model["tags"] == ["tabular", "pii"]
    assert model["createdAt"] == model["updatedAt"]
    props = {p["key"]: p for p in model["customProperties"]}
    assert props["team"]["type"] == "STRING" and props["team"]["stringValue"] == "risk"
    assert props["budget"]["type"] == "INT" and props["budget"]["intValue"] == 9_000_000_000
    assert props["threshold"]["floatValue"] == 0.5 and props["threshold"]["intValue"] is None
    assert props["regulated"]["boolValue"] is True
    assert props["sla"]["jsonValue"] == {"p99_ms": 50}


def test_a_taken_model_name_is_a_conflict_on_the_name_field(api: Api) -> None:
    create_model(api)
    error = api.fails(CREATE_MODEL, {"input": {"name": "fraud"}})
    assert error["extensions"] | {"requestId": None} == {
        "code": "CONFLICT",
        "field": "input.name",
        "requestId": None,
    }


def test_update_changes_given_fields_clears_nulls_and_keeps_the_rest(api: Api) -> None:
    model = create_model(
        api,
        owner="ana",
        description="first",
        tags=["a"],
        customProperties=[{"key": "k1", "stringValue": "x"}, {"key": "k2", "intValue": 1}],
    )
    updated = api(
        UPDATE_MODEL,
        {
            "id": model["id"],
            "input": {
                "description": None,
                "owner": "bo",
                "customProperties": [{"key": "k2", "boolValue": False}],
                "removeCustomProperties": ["k1"],
            },
        },
    )["updateRegisteredModel"]
    assert updated["description"] is None
    assert updated["owner"] == "bo"
    assert updated["tags"] == ["a"]
    assert updated["customProperties"] == [{"key": "k2", "value": False}]
    assert updated["updatedAt"] > model["updatedAt"]


def test_renaming_onto_a_taken_name_is_a_conflict_and_changes_nothing(api: Api) -> None:
    create_model(api)
    other = api(CREATE_MODEL, {"input": {"name": "other"}})["createRegisteredModel"]
    error = api.fails(UPDATE_MODEL, {"id": other["id"], "input": {"name": "fraud", "owner": "x"}})
    assert error["extensions"]["code"] == "CONFLICT"
    assert error["extensions"]["field"] == "input.name"
    again = api(
        "query($id: ID!) { node(id: $id) { ... on RegisteredModel { name owner } } }",
        {"id": other["id"]},
    )
    assert again["node"] == {"name": "other", "owner": None}


def test_a_name_cannot_be_cleared(api: Api) -> None:
    model = create_model(api)
    error = api.fails(UPDATE_MODEL, {"id": model["id"], "input": {"name": None}})
    assert error["extensions"]["code"] == "VALIDATION"
    assert error["extensions"]["field"] == "input.name"


def test_unknown_and_malformed_ids(api: Api) -> None:
    missing = api.fails(
        UPDATE_MODEL, {"id": "rm_01JD5Q5Z6B3N4K8W2X7Y9T0R1S", "input": {"owner": "x"}}
    )
    assert missing["extensions"]["code"] == "NOT_FOUND"
    assert missing["extensions"]["field"] == "id"
    wrong_type = api.fails(
        UPDATE_MODEL, {"id": "mv_01JD5Q5Z6B3N4K8W2X7Y9T0R1S", "input": {"owner": "x"}}
    )
    assert wrong_type["extensions"]["code"] == "VALIDATION"
    assert "ModelVersion" in wrong_type["message"]
    garbage = api.fails('{ node(id: "42") { id } }')
    assert garbage["extensions"]["code"] == "VALIDATION"


def test_archive_and_unarchive(api: Api) -> None:
    model = create_model(api)
    archived = api(
        "mutation($id: ID!) { archiveRegisteredModel(id: $id) { state } }", {"id": model["id"]}
    )
    assert archived["archiveRegisteredModel"]["state"] == "ARCHIVED"
    live = api(UPDATE_MODEL, {"id": model["id"], "input": {"state": "LIVE"}})
    assert live["updateRegisteredModel"]["state"] == "LIVE"


def test_versions_and_artifacts_lifecycle(api: Api) -> None:
    model = create_model(api)
    version = api(
        """mutation($input: CreateModelVersionInput!) {
             createModelVersion(input: $input) { id name author model { id name } } }""",
        {"input": {"modelId": model["id"], "name": "2024-06", "author": "ana"}},
    )["createModelVersion"]
    assert version["model"] == {"id": model["id"], "name": "fraud"}

    artifact = api(
        """mutation($input: CreateModelArtifactInput!) {
             createModelArtifact(input: $input) { id name uri storageKey version { id } } }""",
        {"input": {"versionId": version["id"], "uri": "oci://reg/fraud:1", "storageKey": "k"}},
    )["createModelArtifact"]
    assert artifact["name"] == "model"
    assert artifact["version"] == {"id": version["id"]}

    doc = api(
        """mutation($input: CreateDocArtifactInput!) {
             createDocArtifact(input: $input) { id name uri } }""",
        {"input": {"versionId": version["id"], "name": "model-card", "uri": "https://x/card.md"}},
    )["createDocArtifact"]
    assert doc["id"].startswith("da_")

    clash = api.fails(
        """mutation($input: CreateDocArtifactInput!) { createDocArtifact(input: $input) { id } }""",
        {"input": {"versionId": version["id"], "name": "model", "uri": "https://x/y"}},
    )
    assert clash["extensions"]["code"] == "CONFLICT"
    assert clash["extensions"]["field"] == "input.name"

    immutable = api.fails(
        """mutation($id: ID!) { updateModelArtifact(id: $id, input: {uri: "oci://other"}) { id } }""",
        {"id": artifact["id"]},
    )
    assert immutable["extensions"]["code"] == "CONFLICT"
    assert immutable["extensions"]["field"] == "input.uri"
    formats = api(
        """mutation($id: ID!) {
             updateModelArtifact(id: $id, input: {modelFormatName: "onnx", digest: "sha256:1"}) {
               modelFormatName digest } }""",
        {"id": artifact["id"]},
    )["updateModelArtifact"]
    assert formats == {"modelFormatName": "onnx", "digest": "sha256:1"}

    renamed = api(
        """mutation($id: ID!) { updateModelVersion(id: $id, input: {name: "v2"}) { name } }""",
        {"id": version["id"]},
    )
    assert renamed["updateModelVersion"]["name"] == "v2"
    author = api.fails(
        """mutation($id: ID!) { updateModelVersion(id: $id, input: {author: "eve"}) { name } }""",
        {"id": version["id"]},
    )
    assert author["extensions"]["code"] == "CONFLICT"

    for mutation, node_id in [
        ("archiveModelArtifact", artifact["id"]),
        ("archiveDocArtifact", doc["id"]),
        ("archiveModelVersion", version["id"]),
    ]:
        done = api(f"mutation($id: ID!) {{ {mutation}(id: $id) {{ state }} }}", {"id": node_id})
        assert done[mutation]["state"] == "ARCHIVED"

    blocked = api.fails(
        """mutation($input: CreateModelArtifactInput!) { createModelArtifact(input: $input) { id } }""",
        {"input": {"versionId": version["id"], "name": "again", "uri": "oci://x"}},
    )
    assert blocked["extensions"]["code"] == "CONFLICT"
    assert blocked["extensions"]["field"] == "input.versionId"


def test_lookups_by_id_external_id_and_natural_keys(api: Api) -> None:
    variables = registration()
    variables["input"]["model"]["externalId"] = "m-ext"  # type: ignore[index]
    variables["input"]["version"]["externalId"] = "v-ext"  # type: ignore[index]
    variables["input"]["artifact"]["externalId"] = "a-ext"  # type: ignore[index]
    done = api(REGISTER, variables)["registerModel"]
    model_id, version_id, artifact_id = (
        done["model"]["id"],
        done["version"]["id"],
        done["artifact"]["id"],
    )
    data = api(
        """query($m: ID!, $v: ID!, $a: ID!) {
          byId: registeredModel(id: $m) { id }
          byName: registeredModel(name: "churn-predictor") { id }
          byExt: registeredModel(externalId: "m-ext") { id }
          none: registeredModel(name: "nope") { id }
          vById: modelVersion(id: $v) { id }
          vByExt: modelVersion(externalId: "v-ext") { id }
          vByName: modelVersion(model: "churn-predictor", name: "v1") { id model { id } }
          aById: modelArtifact(id: $a) { id }
          aByExt: modelArtifact(externalId: "a-ext") { id }
          node(id: $a) { __typename id ... on Artifact { uri } }
        }""",
        {"m": model_id, "v": version_id, "a": artifact_id},
    )
    assert data["byId"] == data["byName"] == data["byExt"] == {"id": model_id}
    assert data["none"] is None
    assert data["vById"] == data["vByExt"] == {"id": version_id}
    assert data["vByName"] == {"id": version_id, "model": {"id": model_id}}
    assert data["aById"] == data["aByExt"] == {"id": artifact_id}
    assert data["node"] == {
        "__typename": "ModelArtifact",
        "id": artifact_id,
        "uri": "s3://models/churn/v1/model.pkl",
    }


def test_lookup_arguments_must_name_exactly_one_key(api: Api) -> None:
    error = api.fails('{ registeredModel(name: "a", externalId: "b") { id } }')
    assert error["extensions"]["code"] == "VALIDATION"
    error = api.fails('{ modelVersion(model: "a") { id } }')
    assert error["extensions"]["code"] == "VALIDATION"
    assert error["extensions"]["field"] == "name"

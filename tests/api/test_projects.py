"""Project scoping: a token for project A neither sees nor changes project B, and lineage
never crosses the line silently (cut edges are reported)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Client

REGISTER = """mutation($input: RegisterModelInput!) { registerModel(input: $input) {
    model { id project } version { id project } trainingRun { id project } } }"""


def register(client: Client, model: str, project: str | None, experiment: str) -> dict[str, Any]:
    data: dict[str, Any] = client(
        REGISTER,
        {
            "input": {
                "model": {"name": model} | ({"project": project} if project else {}),
                "version": {"name": "v1"},
                "trainingRun": {
                    "experiment": experiment,
                    "inputs": {"datasets": [{"uri": "s3://shared/events", "digest": "d1"}]},
                },
            }
        },
    )["registerModel"]
    return data


@pytest.fixture
def projects(as_role: Any) -> dict[str, Any]:
    admin = as_role("admin", name="admin")
    alpha = register(admin, "alpha-model", "alpha", "alpha-exp")
    beta = register(admin, "beta-model", "beta", "beta-exp")
    return {
        "admin": admin,
        "alpha_writer": as_role("writer", name="alice", projects=["alpha"]),
        "alpha": alpha,
        "beta": beta,
    }


def test_registered_nodes_carry_their_project(projects: dict[str, Any]) -> None:
    alpha = projects["alpha"]
    assert alpha["model"]["project"] == "alpha"
    assert alpha["version"]["project"] == "alpha"
    assert alpha["trainingRun"]["project"] == "alpha"


def test_a_scoped_token_does_not_see_other_projects(projects: dict[str, Any]) -> None:
    alice: Client = projects["alpha_writer"]
    beta = projects["beta"]
    listed = alice(
        "{ registeredModels { totalCount nodes { name } } modelVersions { totalCount } }"
    )
    assert listed["registeredModels"] == {"totalCount": 1, "nodes": [{"name": "alpha-model"}]}
    assert listed["modelVersions"]["totalCount"] == 1
    hidden = alice(
        """query($v: ID!, $m: ID!) {
             byName: registeredModel(name: "beta-model") { id }
             byId: registeredModel(id: $m) { id }
             node(id: $v) { id }
             version: modelVersion(model: "beta-model", name: "v1") { id } }""",
        {"v": beta["version"]["id"], "m": beta["model"]["id"]},
    )
    assert hidden == {"byName": None, "byId": None, "node": None, "version": None}
    runs = alice('{ experiment(name: "beta-exp") { id } }')
    assert runs["experiment"] is None
    assert (
        projects["admin"]("{ registeredModels { totalCount } }")["registeredModels"]["totalCount"]
        == 2
    )


def test_a_scoped_token_does_not_change_other_projects(projects: dict[str, Any]) -> None:
    alice: Client = projects["alpha_writer"]
    beta = projects["beta"]
    update = alice.fails(
        """mutation($id: ID!) { updateRegisteredModel(id: $id, input: {owner: "alice"}) { id } }""",
        {"id": beta["model"]["id"]},
    )
    assert update["extensions"]["code"] == "NOT_FOUND"
    into_beta = alice.fails(
        REGISTER, {"input": {"model": {"name": "beta-model"}, "version": {"name": "v9"}}}
    )
    assert into_beta["extensions"]["code"] == "FORBIDDEN"
    assert into_beta["extensions"]["field"] == "input.model.name"
    new_in_beta = alice.fails(
        'mutation { createRegisteredModel(input: {name: "x", project: "beta"}) { id } }'
    )
    assert new_in_beta["extensions"]["code"] == "FORBIDDEN"
    assert new_in_beta["extensions"]["project"] == "beta"
    own = alice(
        'mutation { createRegisteredModel(input: {name: "x", project: "alpha"}) { project } }'
    )
    assert own["createRegisteredModel"] == {"project": "alpha"}
    link = alice.fails(
        "mutation($a: ID!, $b: ID!) { linkNodes(from: $a, type: DERIVED_FROM, to: $b) { changed } }",
        {"a": projects["alpha"]["version"]["id"], "b": beta["version"]["id"]},
    )
    assert link["extensions"]["code"] == "NOT_FOUND"


def test_lineage_reports_the_edges_it_does_not_follow(projects: dict[str, Any]) -> None:
    alice: Client = projects["alpha_writer"]
    dataset = alice('{ dataset(uri: "s3://shared/events", digest: "d1") { id } }')["dataset"]["id"]
    lineage = alice(
        """query($d: ID!) { lineage(start: $d, direction: DOWNSTREAM) {
              nodes { node { id } } edges { from to } cut { from type } } }""",
        {"d": dataset},
    )["lineage"]
    seen = {n["node"]["id"] for n in lineage["nodes"]}
    assert projects["alpha"]["version"]["id"] in seen
    assert projects["beta"]["version"]["id"] not in seen
    assert projects["beta"]["trainingRun"]["id"] not in seen
    assert lineage["cut"] == [{"from": dataset, "type": "INPUT_TO"}]
    assert all(
        projects["beta"]["trainingRun"]["id"] not in (e["from"], e["to"]) for e in lineage["edges"]
    )
    full = projects["admin"](
        "query($d: ID!) { lineage(start: $d, direction: DOWNSTREAM) { nodes { node { id } } cut { from } } }",
        {"d": dataset},
    )["lineage"]
    assert projects["beta"]["version"]["id"] in {n["node"]["id"] for n in full["nodes"]}
    assert full["cut"] == []


def test_audit_events_stay_within_the_project(projects: dict[str, Any]) -> None:
    alice: Client = projects["alpha_writer"]
    events = alice("{ auditEvents(first: 50) { nodes { targetIds } } }")["auditEvents"]["nodes"]
    beta_ids = {projects["beta"]["model"]["id"], projects["beta"]["version"]["id"]}
    assert events
    assert all(not beta_ids & set(e["targetIds"]) for e in events)


def test_a_version_lookup_answering_shortcuts_ahead_stays_in_scope(
    projects: dict[str, Any],
) -> None:
    alice: Client = projects["alpha_writer"]
    query = """query($m: String!) { modelVersion(model: $m, name: "v1") {
                 name trainingDatasets { uri } } }"""
    own = alice.post(query, {"m": "alpha-model"})
    assert not own.errors, own.errors
    assert own.round_trips == 1
    assert own.data["modelVersion"] == {
        "name": "v1",
        "trainingDatasets": [{"uri": "s3://shared/events"}],
    }
    assert alice(query, {"m": "beta-model"}) == {"modelVersion": None}
    beta_id = projects["beta"]["version"]["id"]
    by_id = alice(
        "query($id: ID!) { modelVersion(id: $id) { trainingDatasets { uri } } }", {"id": beta_id}
    )
    assert by_id == {"modelVersion": None}


def test_several_lineage_shapes_in_one_query_stay_in_scope(projects: dict[str, Any]) -> None:
    alice: Client = projects["alpha_writer"]
    query = """query($a: ID!, $b: ID!) {
                 a: node(id: $a) { ... on ModelVersion { trainingDatasets { uri } code { commit } } }
                 b: node(id: $b) { ... on ModelVersion { trainingDatasets { uri } code { commit } } }
               }"""
    ids = {"a": projects["alpha"]["version"]["id"], "b": projects["beta"]["version"]["id"]}
    response = alice.post(query, ids)
    assert not response.errors, response.errors
    assert response.data == {
        "a": {"trainingDatasets": [{"uri": "s3://shared/events"}], "code": []},
        "b": None,
    }
    assert response.round_trips == 2  # both nodes; both shapes of lineage for those seen
    admin = projects["admin"].post(query, ids)
    assert admin.data["b"] == {"trainingDatasets": [{"uri": "s3://shared/events"}], "code": []}

"""A version lookup answers the shortcut fields selected on it in its own query
(lookahead): one Bolt query, and the same answer the fields give when resolved alone."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.lineage_scenario import Scenario, build
from tests.conftest import Api

SHORTCUTS = """
  trainingDatasets { id uri digest name }
  direct: trainingDatasets(transitive: false) { uri }
  code { repository commit path }
"""


@pytest.fixture
def scenario(api: Api) -> Scenario:
    return build(api)


def alone(api: Api, version_id: str) -> dict[str, Any]:
    """The shortcut fields of a version reached through node(id), which looks nothing
    up ahead: one query for the node, one for its three shortcut requests."""
    response = api.post(
        f"query($id: ID!) {{ node(id: $id) {{ ... on ModelVersion {{ {SHORTCUTS} }} }} }}",
        {"id": version_id},
    )
    assert not response.errors, response.errors
    assert response.round_trips == 2
    found: dict[str, Any] = response.data["node"]
    return found


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_by_model_and_name_one_round_trip_same_answer(
    api: Api, scenario: Scenario, version: str
) -> None:
    response = api.post(
        'query($name: String!) { modelVersion(model: "churn-predictor", name: $name) '
        f"{{ id name {SHORTCUTS} }} }}",
        {"name": version},
    )
    assert not response.errors, response.errors
    assert response.round_trips == 1
    found = response.data["modelVersion"]
    assert found.pop("name") == version
    version_id = found.pop("id")
    assert version_id == getattr(scenario, version)
    assert found == alone(api, version_id)
    assert found["trainingDatasets"]  # the scenario trains both versions on data


def test_by_id_one_round_trip(api: Api, scenario: Scenario) -> None:
    response = api.post(
        f"query($id: ID!) {{ modelVersion(id: $id) {{ {SHORTCUTS} }} }}", {"id": scenario.v1}
    )
    assert not response.errors, response.errors
    assert response.round_trips == 1
    assert response.data["modelVersion"] == alone(api, scenario.v1)
    assert [d["uri"] for d in response.data["modelVersion"]["direct"]] == ["s3://lake/clean"]


def test_fragments_and_repeated_selections_read_what_every_selection_shows(
    api: Api, scenario: Scenario
) -> None:
    response = api.post(
        """query($t: Boolean!) {
          modelVersion(model: "churn-predictor", name: "v1") {
            ...Uris ...Digests
            ... on ModelVersion { trainingDatasets(transitive: $t) { name } }
            other: trainingDatasets(transitive: false) { __typename uri }
          } }
        fragment Uris on ModelVersion { trainingDatasets(transitive: $t) { uri } }
        fragment Digests on ModelVersion { trainingDatasets(transitive: $t) { digest } }""",
        {"t": True},
    )
    assert not response.errors, response.errors
    assert response.round_trips == 1
    version = response.data["modelVersion"]
    by_uri = {d["uri"]: d for d in version["trainingDatasets"]}
    assert sorted(by_uri) == ["s3://lake/clean", "s3://lake/events"]
    assert by_uri["s3://lake/clean"]["digest"] == "d2"
    assert all(set(d) == {"uri", "digest", "name"} for d in version["trainingDatasets"])
    assert all(d["name"] for d in version["trainingDatasets"])
    assert version["other"] == [{"__typename": "Dataset", "uri": "s3://lake/clean"}]


def test_missing_and_deleted_versions_are_null(api: Api, scenario: Scenario) -> None:
    missing = api.post(
        '{ modelVersion(model: "churn-predictor", name: "v9") { trainingDatasets { uri } } }'
    )
    assert not missing.errors, missing.errors
    assert missing.data == {"modelVersion": None}
    assert missing.round_trips == 1
    api(
        "mutation($id: ID!) { deleteNode(id: $id) { id } }",
        {"id": scenario.v1},
    )
    deleted = api.post(
        "query($id: ID!) { modelVersion(id: $id) { trainingDatasets { uri } } }",
        {"id": scenario.v1},
    )
    assert not deleted.errors, deleted.errors
    assert deleted.data == {"modelVersion": None}


def test_a_wrong_id_is_still_a_typed_error(api: Api, scenario: Scenario) -> None:
    error = api.fails(
        "query($id: ID!) { modelVersion(id: $id) { trainingDatasets { uri } } }",
        {"id": scenario.raw},
    )
    assert error["extensions"]["code"] == "VALIDATION"
    assert error["extensions"]["field"] == "id"


def test_a_service_answers_its_version_and_shortcuts_in_one_more_query(
    api: Api, scenario: Scenario
) -> None:
    """Which data and code trained the model behind this endpoint: the service, then its
    version with the shortcut fields selected on it, in one query."""
    response = api.post(
        f"""{{ inferenceService(environment: "prod", name: "churn-api") {{
              name modelVersion {{ id {SHORTCUTS} }} }} }}"""
    )
    assert not response.errors, response.errors
    assert response.round_trips == 2
    version = response.data["inferenceService"]["modelVersion"]
    assert version.pop("id") == scenario.v2
    assert version == alone(api, scenario.v2)


def test_every_service_of_a_list_in_one_more_query(api: Api, scenario: Scenario) -> None:
    response = api.post(
        """{ inferenceServices(orderBy: [{field: NAME}]) { nodes {
              name modelVersion { name trainingDatasets { uri } }
              deployments { nodes { modelVersion { name direct: trainingDatasets(transitive: false) { uri } } } }
            } } }"""
    )
    assert not response.errors, response.errors
    # the page; the served versions (ahead); the deploy histories; their versions (ahead)
    assert response.round_trips == 4
    services = {s["name"]: s for s in response.data["inferenceServices"]["nodes"]}
    assert services["churn-api"]["modelVersion"] == {
        "name": "v2",
        "trainingDatasets": [{"uri": "s3://lake/labels"}],
    }
    assert services["churn-shadow"]["modelVersion"] is None  # undeployed
    deployed = [d["modelVersion"] for d in services["churn-shadow"]["deployments"]["nodes"]]
    assert {"name": "v1", "direct": [{"uri": "s3://lake/clean"}]} in deployed


def test_a_service_and_the_version_it_serves_in_one_query(api: Api, scenario: Scenario) -> None:
    query = """query($name: String!) { inferenceService(environment: "prod", name: $name) {
                 name desiredState modelVersion { id name approvalStatus model { name } } } }"""
    served = api.post(query, {"name": "churn-api"})
    assert not served.errors, served.errors
    # the service with its version; the version's model (a field of its own)
    assert served.round_trips == 2
    assert served.data["inferenceService"] == {
        "name": "churn-api",
        "desiredState": "DEPLOYED",
        "modelVersion": {
            "id": scenario.v2,
            "name": "v2",
            "approvalStatus": "NONE",
            "model": {"name": "churn-predictor"},
        },
    }
    plain = api.post(
        '{ inferenceService(environment: "prod", name: "churn-api") { modelVersion { name } } }'
    )
    assert plain.round_trips == 1
    assert plain.data == {"inferenceService": {"modelVersion": {"name": "v2"}}}
    undeployed = api.post(query, {"name": "churn-shadow"})
    assert undeployed.round_trips == 1
    assert undeployed.data["inferenceService"]["modelVersion"] is None
    missing = api.post(query, {"name": "nope"})
    assert missing.data == {"inferenceService": None}


def test_requests_ahead_follow_defaults_and_directives(api: Api, scenario: Scenario) -> None:
    """What a field's resolver will ask for, as graphql-core hands it over: an argument
    whose variable is left out takes its default; a selection @skip/@include leaves out
    reads nothing."""
    omitted = api.post(
        """query($id: ID!, $t: Boolean) {
             modelVersion(id: $id) { trainingDatasets(transitive: $t) { uri } } }""",
        {"id": scenario.v1},
    )
    assert not omitted.errors, omitted.errors
    assert omitted.round_trips == 1
    assert sorted(d["uri"] for d in omitted.data["modelVersion"]["trainingDatasets"]) == [
        "s3://lake/clean",
        "s3://lake/events",
    ]  # transitive, the default
    query = """query($id: ID!, $d: Boolean!) { modelVersion(id: $id) {
                 trainingDatasets { uri } ...D @include(if: $d)
                 code @skip(if: $d) { commit } } }
               fragment D on ModelVersion { trainingDatasets { uri schema profile } }"""
    for flag in (False, True):
        response = api.post(query, {"id": scenario.v1, "d": flag})
        assert not response.errors, response.errors
        assert response.round_trips == 1, flag
        version = response.data["modelVersion"]
        assert ("code" in version) is not flag
        assert all(("schema" in d) is flag for d in version["trainingDatasets"])

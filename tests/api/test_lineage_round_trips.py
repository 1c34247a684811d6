"""Round trips per lineage request are pinned: constant, whatever the size of the answer."""

from __future__ import annotations

import neo4j
import pytest

from tests.conftest import Api

# n versions, each produced by its own run from its own dataset, each dataset derived from
# a chain of `depth` ancestors, every version served by a service.
SEED = """
UNWIND range(1, $n) AS i
CREATE (m:Node:RegisteredModel {id: 'rm_' + right('0000000000000000000000000' + i, 26),
        name: 'model-' + i, state: 'LIVE', createdAt: datetime(), updatedAt: datetime()})
CREATE (v:Node:ModelVersion {id: 'mv_' + right('0000000000000000000000000' + i, 26),
        name: 'v1', modelId: m.id, state: 'LIVE', createdAt: datetime(), updatedAt: datetime()})
CREATE (m)-[:HAS_VERSION {since: datetime()}]->(v)
CREATE (r:Node:ExperimentRun {id: 'run_' + right('0000000000000000000000000' + i, 26),
        name: 'run-' + i, experimentId: 'ex_x', status: 'FINISHED', state: 'LIVE',
        createdAt: datetime(), updatedAt: datetime()})
CREATE (r)-[:PRODUCED {since: datetime()}]->(v)
CREATE (s:Node:InferenceService {id: 'svc_' + right('0000000000000000000000000' + i, 26),
        name: 'svc-' + i, environmentId: 'env_x', desiredState: 'DEPLOYED', state: 'LIVE',
        servedVersionId: v.id, createdAt: datetime(), updatedAt: datetime()})
CREATE (s)-[:SERVES {since: datetime()}]->(v)
WITH r, i
UNWIND range(0, $depth) AS d
CREATE (ds:Node:Dataset {id: 'ds_' + right('0000000000000000000000000' + (i * 1000 + d), 26),
        name: 'ds-' + i + '-' + d, uri: 's3://d/' + i + '/' + d, datasetKey: i + '/' + d,
        state: 'LIVE', createdAt: datetime(), updatedAt: datetime()})
WITH r, i, collect(ds) AS chain
CALL (r, chain) {
  WITH r, chain[0] AS first
  CREATE (first)-[:INPUT_TO {since: datetime()}]->(r)
}
CALL (chain) {
  UNWIND range(0, size(chain) - 2) AS k
  WITH chain[k] AS child, chain[k + 1] AS parent
  CREATE (child)-[:DERIVED_FROM {since: datetime()}]->(parent)
}
"""


def seed(db: neo4j.Driver, n: int, depth: int) -> None:
    db.execute_query(SEED, {"n": n, "depth": depth})


@pytest.mark.parametrize(("n", "depth"), [(1, 2), (1, 7)])
def test_root_lineage_is_one_round_trip(api: Api, db: neo4j.Driver, n: int, depth: int) -> None:
    seed(db, n, depth)
    response = api.post(
        """{ lineage(start: "svc_00000000000000000000000001", maxDepth: 10, withPaths: true) {
              nodes { degree node { id __typename ... on Dataset { uri } } } edges { type } } }"""
    )
    assert not response.errors, response.errors
    datasets = [
        x for x in response.data["lineage"]["nodes"] if x["node"]["__typename"] == "Dataset"
    ]
    assert len(datasets) == depth + 1
    assert response.round_trips == 1


@pytest.mark.parametrize("n", [3, 100])
def test_lineage_and_shortcuts_on_a_list_cost_one_round_trip_each(
    api: Api, db: neo4j.Driver, n: int
) -> None:
    seed(db, n, 3)
    response = api.post(
        """{ modelVersions(first: 200) { nodes {
              name
              lineage(maxDepth: 3) { nodes { degree } truncated }
              trainingRuns { name }
              trainingDatasets { uri }
              deployments { name }
            } } }"""
    )
    assert not response.errors, response.errors
    versions = response.data["modelVersions"]["nodes"]
    assert len(versions) == n
    assert all(len(v["trainingDatasets"]) == 4 for v in versions)
    assert all(len(v["trainingRuns"]) == 1 and len(v["deployments"]) == 1 for v in versions)
    # the list; lineage and trainingDatasets of all (one query for both shapes);
    # trainingRuns of all; deployments of all
    assert response.round_trips == 4


def test_impact_of_many_datasets_is_batched(api: Api, db: neo4j.Driver) -> None:
    seed(db, 50, 2)
    response = api.post(
        """{ datasets(first: 200, filter: {name: {endsWith: "-2"}}) { nodes {
              impactedDeployments { name } derivedDatasets { name } } } }"""
    )
    assert not response.errors, response.errors
    nodes = response.data["datasets"]["nodes"]
    assert len(nodes) == 50
    assert all(len(d["impactedDeployments"]) == 1 for d in nodes)
    assert all(len(d["derivedDatasets"]) == 2 for d in nodes)
    # the list; both shortcuts of all datasets, in one query
    assert response.round_trips == 2

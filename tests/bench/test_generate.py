"""The generator plans the same graph for the same seed and writes lineagehub's model."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from bench import generate, plan, rows
from lineagehub.graph import ids
from lineagehub.graph.vocabulary import EDGE_TYPES, NODE_TYPES
from tests.bench.conftest import NODES, SEED
from tests.conftest import ThreadedServer


def fingerprint(reg: plan.Registry) -> list[Any]:
    nodes = [row for label in NODE_TYPES for row in rows.node_rows(reg, label)]
    rels = [row for edge in EDGE_TYPES for row in rows.rel_rows(reg, edge)]
    return [nodes, rels]


def test_same_seed_same_graph_other_seed_other_graph() -> None:
    first, again, other = plan.build(NODES, SEED), plan.build(NODES, SEED), plan.build(NODES, 8)
    assert fingerprint(first) == fingerprint(again)
    assert first.ids != other.ids
    assert sum(first.node_counts().values()) == NODES


def test_ids_are_typed_ulids() -> None:
    reg = plan.build(NODES, SEED)
    for label, node_ids in reg.ids.items():
        assert len(set(node_ids)) == len(node_ids)
        for node_id in node_ids[:20]:
            assert ids.label_of(node_id) == label
            assert len(node_id.partition("_")[2]) == 26


def test_lineage_is_up_to_eight_deep_and_fans_out() -> None:
    reg = plan.build(100_000, SEED)
    assert max(reg.family_len) == 8
    fan: dict[int, int] = {}
    for inputs in reg.run_inputs:
        for dataset in inputs:
            fan[dataset] = fan.get(dataset, 0) + 1
    assert max(fan.values()) > 500  # a popular dataset feeds hundreds of runs


def test_generator_loads_exactly_the_plan(tiny_graph: tuple[plan.Registry, Any]) -> None:
    reg, stats = tiny_graph
    assert stats.nodes == reg.node_counts()
    assert sum(stats.nodes.values()) == NODES
    assert stats.rels == generate.expected_rels(reg)
    assert stats.rate > 0


def test_generated_graph_reads_back(tiny_graph: tuple[plan.Registry, Any], neo4j_uri: str) -> None:
    reg, _ = tiny_graph

    async def check() -> list[str]:
        from bench.common import neo4j_driver

        async with neo4j_driver(neo4j_uri) as driver:
            return await generate.verify(driver, reg, database="neo4j", uri=neo4j_uri)

    assert asyncio.run(check()) == []


@pytest.fixture
def graphql(server: ThreadedServer) -> Any:
    with httpx.Client(base_url=server.url, timeout=30) as http:

        def ask(query: str, variables: dict[str, Any] | None = None) -> Any:
            body = http.post("/graphql", json={"query": query, "variables": variables}).json()
            assert not body.get("errors"), body
            return body["data"]

        yield ask


def test_the_api_answers_on_the_generated_graph(
    tiny_graph: tuple[plan.Registry, Any], graphql: Any
) -> None:
    reg, _ = tiny_graph
    c = reg.counts
    data = graphql("{ registeredModels(first: 1) { totalCount } }")
    assert data["registeredModels"]["totalCount"] == c.models
    model, version = reg.version_key(0)
    data = graphql(
        """query($m: String!, $v: String!) { modelVersion(model: $m, name: $v) {
             id trainingRuns { name status metric(key: "accuracy") { value }
                               params { key type } }
             trainingDatasets(transitive: false) { uri digest } artifacts { nodes { uri } } } }""",
        {"m": model, "v": version},
    )
    found = data["modelVersion"]
    assert found["id"] == reg.ids["ModelVersion"][0]
    assert len(found["trainingDatasets"]) == len(reg.run_inputs[0])
    assert f"/{model}/{version}/model." in found["artifacts"]["nodes"][0]["uri"]
    params = {p["key"]: p["type"] for p in found["trainingRuns"][0]["params"]}
    assert params["batch_size"] == "INT" and params["learning_rate"] == "FLOAT"
    experiment = f"{model}-training"
    data = graphql(
        """query($e: String!) { experiment(name: $e) { runs(first: 10) { totalCount
             nodes { name metric(key: "loss") { value history { step } } } } } }""",
        {"e": experiment},
    )
    assert data["experiment"]["runs"]["totalCount"] == reg.exp_runs[0]
    s = next(i for i, svc in enumerate(reg.services) if svc.undeployed_at is None)
    env, name = reg.service_key(s)
    data = graphql(
        """query($e: String!, $n: String!) { inferenceService(environment: $e, name: $n) {
             desiredState modelVersion { id } deployments { totalCount } } }""",
        {"e": env, "n": name},
    )
    svc = data["inferenceService"]
    assert svc["modelVersion"]["id"] == reg.ids["ModelVersion"][reg.services[s].versions[-1]]
    assert svc["deployments"]["totalCount"] == reg.services[s].deploys

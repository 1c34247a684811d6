"""Lineage through /graphql on real Neo4j: traced back to data and code, forward to deployments."""

from __future__ import annotations

import logging
import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import neo4j
import pytest

from tests.api.lineage_scenario import Scenario, build, register_dataset
from tests.conftest import Api


@pytest.fixture
def scenario(api: Api) -> Scenario:
    return build(api)


def names(items: list[dict[str, Any]], key: str = "name") -> list[Any]:
    return sorted(item[key] for item in items)


def test_a_deployment_traces_back_to_its_data_code_and_run(api: Api, scenario: Scenario) -> None:
    data = api(
        """{ inferenceService(environment: "prod", name: "churn-api") {
              desiredState
              modelVersion {
                name
                trainingRuns { name externalId params { key value } metric(key: "val_auc") { value step } }
                trainingDatasets { uri digest }
                direct: trainingDatasets(transitive: false) { uri }
                code { repository commit path }
                baseModel { name trainingDatasets { uri } }
              } } }"""
    )["inferenceService"]
    assert data["desiredState"] == "DEPLOYED"
    version = data["modelVersion"]
    assert version["name"] == "v2"
    assert version["trainingRuns"] == [
        {
            "name": "run-2",
            "externalId": "pipeline-run-2",
            "params": [{"key": "lr", "value": 0.05}],
            "metric": {"value": 0.93, "step": 1},
        }
    ]
    assert version["trainingDatasets"] == [{"uri": "s3://lake/labels", "digest": "d3"}]
    assert version["direct"] == [{"uri": "s3://lake/labels"}]
    assert version["code"] == [
        {"repository": "https://git.example/churn.git", "commit": "def", "path": "train.py"}
    ]
    # The base version was trained on clean events, derived from raw events.
    assert version["baseModel"]["name"] == "v1"
    assert names(version["baseModel"]["trainingDatasets"], "uri") == [
        "s3://lake/clean",
        "s3://lake/events",
    ]


def test_the_full_upstream_subgraph_of_a_service(api: Api, scenario: Scenario) -> None:
    response = api.post(
        """query($start: ID!) { lineage(start: $start, maxDepth: 8, withPaths: true) {
              start { id __typename }
              nodes { degree path node { __typename id name ... on Dataset { uri } } }
              edges { from to type since until }
              truncated omittedNodes reachableNodes moreBeyondDepth } }""",
        {"start": scenario.api_service},
    )
    assert not response.errors, response.errors
    lineage = response.data["lineage"]
    assert lineage["start"] == {"id": scenario.api_service, "__typename": "InferenceService"}
    by_id = {n["node"]["id"]: n for n in lineage["nodes"]}
    assert by_id[scenario.v2]["degree"] == 1
    assert by_id[scenario.run2]["degree"] == 2
    assert by_id[scenario.labels]["degree"] == 3
    assert by_id[scenario.v1]["degree"] == 2  # the base version
    assert by_id[scenario.raw]["degree"] == 5  # service > v2 > v1 > run-1 > clean > raw
    assert by_id[scenario.raw]["path"] == [
        scenario.api_service,
        scenario.v2,
        scenario.v1,
        scenario.run1,
        scenario.clean,
        scenario.raw,
    ]
    assert [n["degree"] for n in lineage["nodes"]] == sorted(n["degree"] for n in lineage["nodes"])
    types = {n["node"]["__typename"] for n in lineage["nodes"]}
    assert types >= {
        "ModelVersion",
        "ExperimentRun",
        "Dataset",
        "CodeRef",
        "ServingEnvironment",
        "RegisteredModel",
        "Experiment",
    }
    edges = {(e["from"], e["type"], e["to"]) for e in lineage["edges"]}
    assert (scenario.api_service, "SERVES", scenario.v2) in edges
    assert (scenario.run1, "PRODUCED", scenario.v1) in edges
    assert (scenario.clean, "DERIVED_FROM", scenario.raw) in edges
    assert (scenario.v2, "DERIVED_FROM", scenario.v1) in edges
    assert all(e["since"] is not None and e["until"] is None for e in lineage["edges"])
    assert lineage["truncated"] is False
    assert lineage["omittedNodes"] == 0
    assert lineage["reachableNodes"] == len(lineage["nodes"])
    assert lineage["moreBeyondDepth"] is False
    # The shadow service's history does not leak into the current lineage.
    assert scenario.shadow_service not in by_id
    assert response.round_trips == 1


def test_node_and_edge_type_filters(api: Api, scenario: Scenario) -> None:
    data = api(
        """query($start: ID!) { lineage(start: $start, maxDepth: 8,
              nodeTypes: [ModelVersion, ExperimentRun, Dataset],
              edgeTypes: [SERVES, PRODUCED, INPUT_TO, DERIVED_FROM]) {
              nodes { node { __typename } } edges { type } } }""",
        {"start": scenario.api_service},
    )["lineage"]
    assert {n["node"]["__typename"] for n in data["nodes"]} == {
        "ModelVersion",
        "ExperimentRun",
        "Dataset",
    }
    assert {e["type"] for e in data["edges"]} <= {"SERVES", "PRODUCED", "INPUT_TO", "DERIVED_FROM"}


def test_a_dataset_forward_to_every_affected_deployment(api: Api, scenario: Scenario) -> None:
    data = api(
        """{ dataset(uri: "s3://lake/events", digest: "d1") {
              derivedDatasets { uri }
              impactedVersions { name }
              impactedDeployments { name environment { name } modelVersion { name } }
              all: impactedDeployments(includeUndeployed: true) { name } } }"""
    )["dataset"]
    assert data["derivedDatasets"] == [{"uri": "s3://lake/clean"}]
    # v2 is a fine-tune of v1, which was trained on data derived from raw events.
    assert names(data["impactedVersions"]) == ["v1", "v2"]
    assert data["impactedDeployments"] == [
        {"name": "churn-api", "environment": {"name": "prod"}, "modelVersion": {"name": "v2"}}
    ]
    assert data["all"] == [{"name": "churn-api"}]


def test_downstream_and_both_directions(api: Api, scenario: Scenario) -> None:
    down = api(
        """query($start: ID!) { lineage(start: $start, direction: DOWNSTREAM, maxDepth: 8) {
              nodes { degree node { id } } } }""",
        {"start": scenario.labels},
    )["lineage"]
    reached = {n["node"]["id"]: n["degree"] for n in down["nodes"]}
    assert reached[scenario.run2] == 1
    assert reached[scenario.v2] == 2
    assert reached[scenario.api_service] == 3  # and v2's artifact, also 3 hops away
    assert scenario.v1 not in reached  # v1 is v2's base: upstream of it, not downstream
    both = api(
        """query($start: ID!) { lineage(start: $start, direction: BOTH, maxDepth: 1) {
              nodes { node { id } } } }""",
        {"start": scenario.run2},
    )["lineage"]
    assert {n["node"]["id"] for n in both["nodes"]} >= {scenario.labels, scenario.v2}


def test_limits_are_honest(api: Api, scenario: Scenario) -> None:
    cut = api(
        """query($start: ID!) { lineage(start: $start, maxDepth: 8, limit: 3) {
              nodes { degree } truncated omittedNodes reachableNodes } }""",
        {"start": scenario.api_service},
    )["lineage"]
    assert len(cut["nodes"]) == 3
    assert cut["truncated"] is True
    assert cut["omittedNodes"] == cut["reachableNodes"] - 3 > 0
    shallow = api(
        """query($start: ID!) { lineage(start: $start, maxDepth: 1) {
              nodes { node { id } } moreBeyondDepth } }""",
        {"start": scenario.api_service},
    )["lineage"]
    assert shallow["moreBeyondDepth"] is True


def test_the_time_window_shows_lineage_as_it_was(api: Api, scenario: Scenario) -> None:
    before = api('{ inferenceService(environment: "prod", name: "churn-shadow") { updatedAt } }')
    # Now: the shadow service serves nothing; in a window covering its deployment it did.
    now = api(
        """query($s: ID!) { lineage(start: $s, nodeTypes: [ModelVersion]) { nodes { node { id } } } }""",
        {"s": scenario.shadow_service},
    )["lineage"]
    assert now["nodes"] == []
    then = api(
        """query($s: ID!, $until: DateTime!) {
             lineage(start: $s, nodeTypes: [ModelVersion], since: "2000-01-01T00:00:00Z", until: $until) {
               nodes { node { id } } edges { type since until } } }""",
        {"s": scenario.shadow_service, "until": before["inferenceService"]["updatedAt"]},
    )["lineage"]
    assert [n["node"]["id"] for n in then["nodes"]] == [scenario.v1]
    assert then["edges"][0]["type"] == "SERVES"
    assert then["edges"][0]["until"] is not None


def test_redeploying_moves_the_serves_edge_and_keeps_history(api: Api, scenario: Scenario) -> None:
    deployed = api(
        """mutation($s: ID!, $v: ID!) { deployModelVersion(serviceId: $s, modelVersionId: $v, actor: "ci") {
              service { modelVersion { name } } deployment { name deploymentState actor modelVersion { name } } } }""",
        {"s": scenario.api_service, "v": scenario.v1},
    )["deployModelVersion"]
    assert deployed["service"]["modelVersion"]["name"] == "v1"
    assert deployed["deployment"] == {
        "name": "deploy-2",
        "deploymentState": "PENDING",
        "actor": "ci",
        "modelVersion": {"name": "v1"},
    }
    history = api(
        """query($s: ID!) { node(id: $s) { ... on InferenceService {
              deployments { totalCount nodes { name modelVersion { name } } } } } }""",
        {"s": scenario.api_service},
    )["node"]["deployments"]
    assert history["totalCount"] == 2
    assert [d["modelVersion"]["name"] for d in history["nodes"]] == ["v1", "v2"]
    v2 = api(
        "query($v: ID!) { node(id: $v) { ... on ModelVersion { deployments { name } } } }",
        {"v": scenario.v2},
    )
    assert v2["node"]["deployments"] == []
    state = api(
        """mutation($d: ID!) { recordDeploymentState(deploymentId: $d, state: READY) { deploymentState } }""",
        {
            "d": api(
                "query($s: ID!) { node(id: $s) { ... on InferenceService { deployments(first: 1) { nodes { id } } } } }",
                {"s": scenario.api_service},
            )["node"]["deployments"]["nodes"][0]["id"]
        },
    )
    assert state["recordDeploymentState"]["deploymentState"] == "READY"


def test_how_two_nodes_relate(api: Api, scenario: Scenario) -> None:
    downstream = api(
        """query($a: ID!, $b: ID!) { path(from: $a, to: $b) {
              direction length nodes { id } edges { type } } }""",
        {"a": scenario.labels, "b": scenario.api_service},
    )["path"]
    assert downstream["direction"] == "DOWNSTREAM"
    assert [n["id"] for n in downstream["nodes"]] == [
        scenario.labels,
        scenario.run2,
        scenario.v2,
        scenario.api_service,
    ]
    assert [e["type"] for e in downstream["edges"]] == ["INPUT_TO", "PRODUCED", "SERVES"]
    upstream = api(
        "query($a: ID!, $b: ID!) { path(from: $a, to: $b) { direction length } }",
        {"a": scenario.api_service, "b": scenario.raw},
    )["path"]
    assert upstream == {"direction": "UPSTREAM", "length": 5}
    siblings = api(
        "query($a: ID!, $b: ID!) { path(from: $a, to: $b) { direction length } }",
        {"a": scenario.labels, "b": scenario.clean},
    )["path"]
    assert siblings is not None
    assert siblings["direction"] == "MIXED"


def test_bad_lineage_arguments(api: Api, scenario: Scenario) -> None:
    unknown_type = api.fails(
        "query($s: ID!) { lineage(start: $s, nodeTypes: [Spaceship]) { truncated } }",
        {"s": scenario.v1},
    )
    assert unknown_type["extensions"]["code"] == "GRAPHQL_VALIDATION"
    assert "Spaceship" in unknown_type["message"]
    too_deep = api.fails(
        "query($s: ID!) { lineage(start: $s, maxDepth: 99) { truncated } }", {"s": scenario.v1}
    )
    assert too_deep["extensions"]["code"] == "LIMIT_EXCEEDED"
    assert too_deep["extensions"]["field"] == "maxDepth"
    assert too_deep["extensions"]["maximum"] == 10
    too_many = api.fails(
        "query($s: ID!) { lineage(start: $s, limit: 100000) { truncated } }", {"s": scenario.v1}
    )
    assert too_many["extensions"]["code"] == "LIMIT_EXCEEDED"
    assert too_many["extensions"]["field"] == "limit"
    missing = api.fails('{ lineage(start: "mv_01JD5Q5Z6B3N4K8W2X7Y9T0R1S") { truncated } }')
    assert missing["extensions"]["code"] == "NOT_FOUND"
    garbage = api.fails('{ lineage(start: "nope") { truncated } }')
    assert garbage["extensions"]["code"] == "VALIDATION"
    assert garbage["extensions"]["field"] == "start"
    window = api.fails(
        """query($s: ID!) { lineage(start: $s, since: "2026-02-01T00:00:00Z", until: "2026-01-01T00:00:00Z") {
             truncated } }""",
        {"s": scenario.v1},
    )
    assert window["extensions"]["field"] == "until"


def test_compare_runs_and_versions_by_metrics_and_params(api: Api, scenario: Scenario) -> None:
    best = api(
        """{ experiment(name: "churn-training") {
              best: runs(orderBy: [{metric: "val_auc", direction: DESC}], first: 1) { nodes { name } }
              slow: runs(filter: {params: [{key: "lr", lt: 0.08}]}) { nodes { name } }
              good: runs(filter: {metrics: [{key: "val_auc", gte: 0.85}]}) { totalCount } } }"""
    )["experiment"]
    assert best["best"]["nodes"] == [{"name": "run-2"}]
    assert best["slow"]["nodes"] == [{"name": "run-2"}]
    assert best["good"]["totalCount"] == 2
    versions = api(
        """{ registeredModel(name: "churn-predictor") {
              versions(filter: {trainingMetrics: [{key: "val_auc", gt: 0.9}]}) { nodes { name } }
              ranked: versions(orderBy: [{trainingMetric: "val_auc", direction: DESC}]) { nodes { name } } } }"""
    )["registeredModel"]
    assert versions["versions"]["nodes"] == [{"name": "v2"}]
    assert versions["ranked"]["nodes"] == [{"name": "v2"}, {"name": "v1"}]


def test_runs_and_datasets_are_idempotent_by_natural_key(
    api: Api, scenario: Scenario, db: neo4j.Driver
) -> None:
    again = register_dataset(api, "s3://lake/events", "d1")
    assert again == {
        "created": False,
        "dataset": {"id": scenario.raw, "uri": "s3://lake/events", "digest": "d1"},
    }
    other_version = register_dataset(api, "s3://lake/events", "d9")
    assert other_version["created"] is True
    versions = api('{ datasetVersions(uri: "s3://lake/events") { digest } }')["datasetVersions"]
    assert [v["digest"] for v in versions] == ["d9", "d1"]

    experiment = api('{ experiment(name: "churn-training") { id } }')["experiment"]["id"]
    record = """mutation($input: CreateExperimentRunInput!) {
        recordExperimentRun(input: $input) { created run { id metric(key: "val_auc") { value history { value step } } } } }"""
    run = api(
        record,
        {
            "input": {
                "experimentId": experiment,
                "externalId": "pipeline-run-1",
                "metrics": [{"key": "val_auc", "value": 0.88, "step": 3}],
            }
        },
    )["recordExperimentRun"]
    assert run["created"] is False
    assert run["run"]["id"] == scenario.run1
    assert run["run"]["metric"]["value"] == 0.88
    assert [p["step"] for p in run["run"]["metric"]["history"]] == [1, 2, 3]
    conflict = api.fails(
        record,
        {
            "input": {
                "experimentId": experiment,
                "externalId": "pipeline-run-1",
                "params": [{"key": "lr", "floatValue": 0.5}],
            }
        },
    )
    assert conflict["extensions"]["code"] == "CONFLICT"
    assert conflict["extensions"]["field"] == "input.params[0]"
    runs, _, _ = db.execute_query("MATCH (r:ExperimentRun) RETURN count(r) AS n")
    assert runs[0]["n"] == 2


def test_link_nodes_follows_the_vocabulary(api: Api, scenario: Scenario) -> None:
    linked = api(
        """mutation($a: ID!, $b: ID!) { linkNodes(from: $a, type: INPUT_TO, to: $b) {
              changed type from { id } to { id } } }""",
        {"a": scenario.raw, "b": scenario.run2},
    )["linkNodes"]
    assert linked == {
        "changed": True,
        "type": "INPUT_TO",
        "from": {"id": scenario.raw},
        "to": {"id": scenario.run2},
    }
    again = api(
        "mutation($a: ID!, $b: ID!) { linkNodes(from: $a, type: INPUT_TO, to: $b) { changed } }",
        {"a": scenario.raw, "b": scenario.run2},
    )
    assert again["linkNodes"]["changed"] is False
    wrong = api.fails(
        "mutation($a: ID!, $b: ID!) { linkNodes(from: $a, type: SERVES, to: $b) { changed } }",
        {"a": scenario.raw, "b": scenario.v1},
    )
    assert wrong["extensions"]["code"] == "VALIDATION"
    assert "SERVES cannot join a Dataset to a ModelVersion" in wrong["message"]
    missing = api.fails(
        'mutation($b: ID!) { linkNodes(from: "ds_01JD5Q5Z6B3N4K8W2X7Y9T0R1S", type: INPUT_TO, to: $b) { changed } }',
        {"b": scenario.run2},
    )
    assert missing["extensions"]["code"] == "NOT_FOUND"
    unlinked = api(
        "mutation($a: ID!, $b: ID!) { unlinkNodes(from: $a, type: INPUT_TO, to: $b) { changed } }",
        {"a": scenario.raw, "b": scenario.run2},
    )
    assert unlinked["unlinkNodes"]["changed"] is True


def test_monitoring_links(api: Api, scenario: Scenario) -> None:
    created = api(
        """mutation($v: ID!) { createMonitoringLink(input: {targetId: $v, name: "drift",
              url: "https://grafana.example/d/churn", tool: "grafana", kind: DRIFT_BASELINE}) {
              id kind target { id } } }""",
        {"v": scenario.v2},
    )["createMonitoringLink"]
    assert created["kind"] == "DRIFT_BASELINE"
    assert created["target"] == {"id": scenario.v2}
    watched = api(
        "query($v: ID!) { node(id: $v) { ... on ModelVersion { monitoring { name url } } } }",
        {"v": scenario.v2},
    )
    assert watched["node"]["monitoring"] == [
        {"name": "drift", "url": "https://grafana.example/d/churn"}
    ]
    wrong = api.fails(
        """mutation($d: ID!) { createMonitoringLink(input: {targetId: $d, name: "x", url: "https://x"}) { id } }""",
        {"d": scenario.raw},
    )
    assert wrong["extensions"]["field"] == "input.targetId"


def test_lineage_leaves_out_only_what_the_selection_never_shows(
    api: Api, scenario: Scenario
) -> None:
    """Metric histories and dataset schemas are left out of the Neo4j answer when no field
    of the selection shows them; the fields that are shown come out the same."""
    common = (
        "id name state customProperties { key value } ... on ExperimentRun { params { key value } }"
    )
    query = """query($id: ID!) { node(id: $id) { ... on RegistryEntity {
      lineage(direction: UPSTREAM, maxDepth: 4) { nodes { node { %s } } } } } }"""
    light = api(query % common, {"id": scenario.v2})
    full = api(
        query % f"{common} ... on ExperimentRun {{ metrics {{ key value history {{ value }} }} }}"
        " ... on Dataset { schema profile }",
        {"id": scenario.v2},
    )
    light_nodes = light["node"]["lineage"]["nodes"]
    full_nodes = full["node"]["lineage"]["nodes"]
    assert [n["node"]["id"] for n in light_nodes] == [n["node"]["id"] for n in full_nodes]
    for shown, more in zip(light_nodes, full_nodes, strict=True):
        assert {k: more["node"][k] for k in shown["node"]} == shown["node"]
    runs = [n["node"] for n in full_nodes if "metrics" in n["node"]]
    assert runs and all(run["metrics"] and run["metrics"][0]["history"] for run in runs)
    # A field named like a heavy one anywhere in the selection keeps the data (fragments too).
    spread = api(
        """fragment M on ExperimentRun { metric(key: "val_auc") { value } }
        query($id: ID!) { node(id: $id) { ... on RegistryEntity {
          lineage(direction: UPSTREAM, maxDepth: 4) { nodes { node { id ...M } } } } } }""",
        {"id": scenario.v2},
    )
    values = [n["node"].get("metric") for n in spread["node"]["lineage"]["nodes"]]
    assert {"value": 0.93} in values


_FIELDS = {
    "RegistryEntity": [
        "id", "name", "description", "externalId", "state", "createdAt", "updatedAt",
        "deletedAt", "deletedBy", "tombstone", "restId", "deleted",
        "customProperties { key type value }", 'customProperty(key: "team") { value }',
    ],
    "ModelVersion": ["author", "approvalStatus", "project"],
    "RegisteredModel": ["owner", "task", "license", "tags", "readme", "tasks"],
    "Dataset": ["uri", "digest", "sourceType", "source", "schema", "profile", "artifactState"],
    "CodeRef": ["repository", "commit", "path", "notebook", "entryPoint"],
    "ExperimentRun": [
        "status", "startTime", "endTime", "owner", "project", "params { key value }",
        "metrics { key value step history { value step } }", 'param(key: "lr") { value }',
        'metric(key: "val_auc") { value }',
    ],
    "InferenceService": ["runtime", "desiredState", "url", "project"],
    "ModelArtifact": ["uri", "modelFormatName", "digest", "sizeBytes", "artifactState"],
}  # fmt: skip


def test_lineage_projection_matches_the_full_read_on_random_selections(
    api: Api, scenario: Scenario
) -> None:
    """A lineage answer reads only the properties its selection shows; on random
    selections it says exactly what the full read (forced by a field that reaches beyond
    plain ones) says about the same fields."""
    import random

    rng = random.Random(7)
    query = """query($id: ID!, $direction: LineageDirection!) { node(id: $id) {
      ... on RegistryEntity { lineage(direction: $direction, maxDepth: 6) {
        start { %s } nodes { degree node { __typename %s } } } } } }"""
    for _ in range(12):
        parts = []
        for type_name, choices in _FIELDS.items():
            picked = rng.sample(choices, k=rng.randint(1, min(4, len(choices))))
            parts.append(" ".join(picked) if type_name == "RegistryEntity" else
                         f"... on {type_name} {{ {' '.join(picked)} }}")  # fmt: skip
        selection = " ".join(parts)
        forced = selection + " ... on ModelVersion { model { id } }"
        start, direction = rng.choice(
            [(scenario.api_service, "UPSTREAM"), (scenario.raw, "DOWNSTREAM")]
        )
        variables = {"id": start, "direction": direction}
        light = api(query % (selection, selection), variables)["node"]["lineage"]
        full = api(query % (selection, forced), variables)["node"]["lineage"]
        assert light["start"] == full["start"]
        assert len(light["nodes"]) == len(full["nodes"]) > 0
        for shown, read in zip(light["nodes"], full["nodes"], strict=True):
            assert shown["node"] == {k: read["node"][k] for k in shown["node"]}, selection


@pytest.mark.parametrize(
    ("edge", "start", "end"),
    [("INPUT_TO", "raw", "run2"), ("DERIVED_FROM", "labels", "clean")],
)
def test_identical_concurrent_links_make_one_edge(
    api: Api, scenario: Scenario, db: neo4j.Driver, edge: str, start: str, end: str
) -> None:
    """Twenty clients link the same pair at once: one edge, and exactly one of them is
    told it changed something."""
    a, b = getattr(scenario, start), getattr(scenario, end)
    link = (
        f"mutation($a: ID!, $b: ID!) {{ linkNodes(from: $a, type: {edge}, to: $b) {{ changed }} }}"
    )
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda _: api(link, {"a": a, "b": b}), range(20)))
    assert sum(answer["linkNodes"]["changed"] for answer in answers) == 1
    edges, _, _ = db.execute_query(
        f"MATCH (:Node {{id: $a}})-[r:{edge}]->(:Node {{id: $b}}) WHERE r.until IS NULL "
        "RETURN count(r) AS n",
        {"a": a, "b": b},
    )
    assert edges[0]["n"] == 1


def test_overlapping_links_in_other_orders_do_not_deadlock(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """Sixteen runs each add the same six datasets as outputs at once, each in its own
    order: every transaction locks the ends it links in the same (id) order, so none
    waits on another in a cycle (Neo4j would abort one, and the driver retry it)."""
    experiment = api('mutation { createExperiment(input: {name: "e"}) { id } }')
    record = (
        "mutation($i: CreateExperimentRunInput!) { recordExperimentRun(input: $i) { run { id } } }"
    )
    runs = [
        api(record, {"i": {"experimentId": experiment["createExperiment"]["id"], "name": f"r{i}"}})[
            "recordExperimentRun"
        ]["run"]["id"]
        for i in range(16)
    ]
    outputs = [register_dataset(api, f"s3://out/{i}", "d")["dataset"]["id"] for i in range(6)]
    rng = random.Random(7)
    orders = [rng.sample(outputs, len(outputs)) for _ in runs]
    add = "mutation($r: ID!, $o: [ID!]!) { addRunOutputs(runId: $r, outputs: $o) { id } }"
    with caplog.at_level(logging.WARNING, logger="neo4j"), ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda job: api(add, {"r": job[0], "o": job[1]}), zip(runs, orders, strict=True)
            )
        )
    assert not [r for r in caplog.records if "Deadlock" in r.getMessage()]

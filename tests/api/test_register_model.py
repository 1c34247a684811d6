"""registerModel through HTTP: one transaction, idempotent, immutable facts guarded."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import neo4j

from tests.api.fragments import REGISTER, registration
from tests.conftest import Api


def count_nodes(db: neo4j.Driver) -> dict[str, int]:
    """Nodes per label; the REST id counter (one :Sequence node) is infrastructure."""
    records, _, _ = db.execute_query(
        "MATCH (n) WHERE NOT n:Sequence "
        "UNWIND labels(n) AS label RETURN label, count(*) AS n ORDER BY label"
    )
    return {r["label"]: r["n"] for r in records}


def test_registers_model_version_and_artifact_in_one_call(api: Api, db: neo4j.Driver) -> None:
    variables = registration(
        digest="sha256:abc", sizeBytes=5_000_000_000, modelFormatName="sklearn"
    )
    variables["input"]["version"]["customProperties"] = [  # type: ignore[index]
        {"key": "accuracy", "floatValue": 0.93},
        {"key": "epochs", "intValue": 12},
        {"key": "features", "jsonValue": {"n": 3, "names": ["a", "b", "c"]}},
    ]
    data = api(REGISTER, variables)["registerModel"]

    assert (data["modelCreated"], data["versionCreated"], data["artifactCreated"]) == (True,) * 3
    assert data["model"]["name"] == "churn-predictor"
    assert data["model"]["id"].startswith("rm_")
    assert data["version"]["id"].startswith("mv_")
    assert data["artifact"] == {
        "id": data["artifact"]["id"],
        "name": "model",
        "uri": "s3://models/churn/v1/model.pkl",
        "digest": "sha256:abc",
        "sizeBytes": 5_000_000_000,
        "modelFormatName": "sklearn",
    }
    assert data["version"]["customProperties"] == [
        {"key": "accuracy", "type": "FLOAT", "value": 0.93},
        {"key": "epochs", "type": "INT", "value": 12},
        {"key": "features", "type": "JSON", "value": {"n": 3, "names": ["a", "b", "c"]}},
    ]
    assert count_nodes(db) == {
        "Artifact": 1,
        "AuditEvent": 1,  # one mutation, one audit event, in the same transaction
        "RegistryEvent": 2,  # MODEL_REGISTERED and VERSION_REGISTERED, in it too
        "ModelArtifact": 1,
        "ModelVersion": 1,
        "Node": 3,
        "RegisteredModel": 1,
    }
    edges, _, _ = db.execute_query(
        "MATCH (m:RegisteredModel)-[:HAS_VERSION]->(v:ModelVersion)-[:HAS_ARTIFACT]->(a) "
        "RETURN m.id AS m, v.id AS v, a.id AS a"
    )
    assert [tuple(e.values()) for e in edges] == [
        (data["model"]["id"], data["version"]["id"], data["artifact"]["id"])
    ]


def test_registering_again_returns_the_same_nodes(api: Api, db: neo4j.Driver) -> None:
    first = api(REGISTER, registration())["registerModel"]
    again = api(REGISTER, registration())["registerModel"]

    assert (again["modelCreated"], again["versionCreated"], again["artifactCreated"]) == (
        False,
        False,
        False,
    )
    assert again["model"]["id"] == first["model"]["id"]
    assert again["version"]["id"] == first["version"]["id"]
    assert again["artifact"]["id"] == first["artifact"]["id"]
    assert count_nodes(db)["Node"] == 3


def test_a_new_version_of_an_existing_model_reuses_the_model(api: Api) -> None:
    first = api(REGISTER, registration(version="v1"))["registerModel"]
    second = api(REGISTER, registration(version="v2", uri="s3://models/churn/v2"))["registerModel"]
    assert second["modelCreated"] is False
    assert second["versionCreated"] is True
    assert second["model"]["id"] == first["model"]["id"]
    assert second["version"]["id"] != first["version"]["id"]


def test_changing_the_artifact_uri_of_a_registered_version_is_a_conflict(
    api: Api, db: neo4j.Driver
) -> None:
    api(REGISTER, registration())
    before = count_nodes(db)

    error = api.fails(REGISTER, registration(uri="s3://models/churn/v1/OTHER.pkl"))

    assert error["extensions"]["code"] == "CONFLICT"
    assert error["extensions"]["field"] == "input.artifact.uri"
    assert "s3://models/churn/v1/model.pkl" in error["message"]
    assert error["path"] == ["registerModel"]
    assert count_nodes(db) == before


def test_changing_the_author_of_a_registered_version_is_a_conflict(api: Api) -> None:
    api(REGISTER, registration())
    variables = registration()
    variables["input"]["version"]["author"] = "mallory"  # type: ignore[index]
    error = api.fails(REGISTER, variables)
    assert error["extensions"]["code"] == "CONFLICT"
    assert error["extensions"]["field"] == "input.version.author"


def test_a_failed_registration_writes_nothing(api: Api, db: neo4j.Driver) -> None:
    # Model and version would be new; the version's externalId is taken elsewhere, so the
    # call fails after the model was already created inside the transaction.
    api(REGISTER, registration(model="other", version="v9"))
    api(
        'mutation($id: ID!) { updateModelVersion(id: $id, input: {externalId: "ext-1"}) { id } }',
        {"id": api('{ modelVersion(model: "other", name: "v9") { id } }')["modelVersion"]["id"]},
    )
    before = count_nodes(db)
    variables = registration(model="brand-new")
    variables["input"]["version"]["externalId"] = "ext-1"  # type: ignore[index]

    error = api.fails(REGISTER, variables)

    assert error["extensions"]["code"] == "CONFLICT"
    assert error["extensions"]["field"] == "input.version.externalId"
    assert count_nodes(db) == before
    assert api('{ registeredModel(name: "brand-new") { id } }')["registeredModel"] is None


def test_invalid_input_names_every_offending_field(api: Api, db: neo4j.Driver) -> None:
    variables = {
        "input": {
            "model": {"name": " padded"},
            "version": {
                "name": "v1",
                "customProperties": [{"key": "x", "intValue": 1, "stringValue": "1"}],
            },
            "artifact": {"uri": "s3://x", "sizeBytes": -1},
        }
    }
    error = api.fails(REGISTER, variables)

    assert error["extensions"]["code"] == "VALIDATION"
    assert error["extensions"]["field"] == "input.model.name"
    fields = {p["field"] for p in error["extensions"]["problems"]}
    assert fields == {
        "input.model.name",
        "input.version.customProperties[0]",
        "input.artifact.sizeBytes",
    }
    assert "Traceback" not in str(error)
    assert count_nodes(db) == {}


def test_versions_without_a_name_are_numbered(api: Api) -> None:
    names = [
        api(REGISTER, registration(version=None, uri=None))["registerModel"]["version"]["name"]
        for _ in range(3)
    ]
    assert names == ["1", "2", "3"]


def test_registering_under_an_archived_model_is_a_conflict(api: Api) -> None:
    model_id = api(REGISTER, registration())["registerModel"]["model"]["id"]
    api("mutation($id: ID!) { archiveRegisteredModel(id: $id) { state } }", {"id": model_id})
    error = api.fails(REGISTER, registration(version="v2"))
    assert error["extensions"]["code"] == "CONFLICT"
    assert error["extensions"]["field"] == "input.model.name"


def test_concurrent_identical_registrations_create_one_of_each(api: Api, db: neo4j.Driver) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: api.post(REGISTER, registration()), range(8)))

    assert all(not r.errors for r in results), [r.errors for r in results]
    ids = {
        (
            r.data["registerModel"]["model"]["id"],
            r.data["registerModel"]["version"]["id"],
            r.data["registerModel"]["artifact"]["id"],
        )
        for r in results
    }
    assert len(ids) == 1
    assert sum(r.data["registerModel"]["versionCreated"] for r in results) == 1
    assert count_nodes(db)["Node"] == 3


def test_concurrent_unnamed_versions_get_distinct_numbers(api: Api) -> None:
    api(REGISTER, registration(version="v0", uri=None))
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(
            pool.map(lambda _: api.post(REGISTER, registration(version=None, uri=None)), range(6))
        )
    names = sorted(r.data["registerModel"]["version"]["name"] for r in results)
    assert names == ["1", "2", "3", "4", "5", "6"]


BULK = """
mutation Bulk($inputs: [RegisterModelInput!]!) {
  registerModels(inputs: $inputs) { modelCreated versionCreated version { id name } }
}
"""


def test_bulk_registration_is_one_transaction(api: Api, db: neo4j.Driver) -> None:
    items = [
        registration(model=f"m-{i % 3}", version=f"v{i}", uri=f"s3://b/{i}")["input"]
        for i in range(30)
    ]
    done = api(BULK, {"inputs": items})["registerModels"]
    assert len(done) == 30
    assert sum(d["modelCreated"] for d in done) == 3
    assert all(d["versionCreated"] for d in done)
    again = api(BULK, {"inputs": items})["registerModels"]
    assert [d["version"]["id"] for d in again] == [d["version"]["id"] for d in done]
    assert not any(d["versionCreated"] for d in again)
    records, _, _ = db.execute_query(
        "MATCH (e:AuditEvent {action: 'registerModels'}) RETURN count(e) AS n"
    )
    assert records[0]["n"] == 1  # one mutation, one event, however many items


def test_a_bad_item_fails_the_whole_batch(api: Api, db: neo4j.Driver) -> None:
    api(REGISTER, registration(model="m", version="v1", uri="s3://b/1"))
    before = count_nodes(db)
    items = [
        registration(model="new-model", version="v1", uri="s3://b/x")["input"],
        registration(model="m", version="v1", uri="s3://b/CHANGED")["input"],
    ]
    error = api.fails(BULK, {"inputs": items})
    assert error["extensions"]["code"] == "CONFLICT"
    assert error["extensions"]["field"] == "inputs[1].artifact.uri"
    assert count_nodes(db) == before
    invalid = api.fails(BULK, {"inputs": [{"model": {"name": "ok"}, "version": {"name": " bad"}}]})
    assert invalid["extensions"]["field"] == "inputs[0].version.name"
    too_many = api.fails(BULK, {"inputs": [registration()["input"]] * 1001})
    assert too_many["extensions"]["code"] == "LIMIT_EXCEEDED"


def bulk_items(tag: str, n: int, **artifact: object) -> list[Any]:
    """``n`` registrations of new versions spread over four models."""
    return [
        registration(model=f"m-{i % 4}", version=f"{tag}-{i}", uri=f"s3://b/{tag}/{i}", **artifact)[
            "input"
        ]
        for i in range(n)
    ]


def test_bulk_round_trips_do_not_grow_with_the_batch(api: Api) -> None:
    small, large = bulk_items("small", 2), bulk_items("large", 80)
    first = [api.post(BULK, {"inputs": items}) for items in (small, large)]
    assert not any(r.errors for r in first)
    assert first[0].round_trips == first[1].round_trips
    # Registering the same items again looks up the existing artifacts too.
    again = [api.post(BULK, {"inputs": items}) for items in (small, large)]
    assert not any(r.errors for r in again)
    assert again[0].round_trips == again[1].round_trips


def test_bulk_registration_answers_every_part(api: Api, db: neo4j.Driver) -> None:
    query = """
    mutation Bulk($inputs: [RegisterModelInput!]!) {
      registerModels(inputs: $inputs) {
        modelCreated versionCreated artifactCreated trainingRunCreated
        model { id name owner } version { id name author restId } artifact { id uri sizeBytes }
        trainingRun { id }
      }
    }"""
    items = bulk_items("v", 3, sizeBytes=5_000_000_000)
    items.append(registration(model="m-0", version="v-0", uri="s3://b/v/0")["input"])  # a repeat
    done = api(query, {"inputs": items})["registerModels"]
    assert [(d["modelCreated"], d["versionCreated"], d["artifactCreated"]) for d in done] == [
        (True, True, True),
        (True, True, True),
        (True, True, True),
        (False, False, False),
    ]
    assert done[3]["version"]["id"] == done[0]["version"]["id"]
    assert done[3]["artifact"]["id"] == done[0]["artifact"]["id"]
    assert done[0]["model"]["owner"] == "ana" and done[0]["version"]["author"] == "ana"
    assert done[1]["artifact"] == {
        "id": done[1]["artifact"]["id"],
        "uri": "s3://b/v/1",
        "sizeBytes": 5_000_000_000,
    }
    assert all(d["trainingRun"] is None and not d["trainingRunCreated"] for d in done)
    records, _, _ = db.execute_query(
        "MATCH (m:RegisteredModel)-[:HAS_VERSION]->(v:ModelVersion)-[:HAS_ARTIFACT]->(a) "
        "RETURN v.id AS v, a.id AS a, v.restId IS NOT NULL AND a.restId IS NOT NULL AS numbered"
    )
    assert {(r["v"], r["a"]) for r in records} == {
        (d["version"]["id"], d["artifact"]["id"]) for d in done
    }
    assert all(r["numbered"] for r in records)


def test_bulk_conflicts_name_the_item_and_write_nothing(api: Api, db: neo4j.Driver) -> None:
    old = api(BULK, {"inputs": bulk_items("old", 1, externalId="art-1")})["registerModels"][0]
    api(
        'mutation($id: ID!) { updateModelVersion(id: $id, input: {externalId: "ver-1"}) { id } }',
        {"id": old["version"]["id"]},
    )
    before = count_nodes(db)
    cases = {
        # a new version's artifact whose externalId another artifact holds
        "inputs[2].artifact.externalId": bulk_items("new", 3)[:2]
        + bulk_items("new2", 1, externalId="art-1"),
        # a new version whose externalId another version holds
        "inputs[1].version.externalId": [
            bulk_items("new", 1)[0],
            {**bulk_items("new3", 1)[0], "version": {"name": "x", "externalId": "ver-1"}},
        ],
        # the artifact of a registered version, given again with another uri
        "inputs[0].artifact.uri": [
            registration(model="m-0", version="old-0", uri="s3://x")["input"]
        ],
    }
    for field, items in cases.items():
        error = api.fails(BULK, {"inputs": items})
        assert (error["extensions"]["code"], error["extensions"]["field"]) == ("CONFLICT", field)
    assert count_nodes(db) == before


def test_enums_and_scalars_of_a_registration_reach_the_run(api: Api) -> None:
    query = """
    mutation Register($input: RegisterModelInput!) {
      registerModel(input: $input) {
        trainingRun { status startTime } artifact { sizeBytes }
      }
    }"""
    variables = registration(sizeBytes=5_000_000_000)
    variables["input"]["trainingRun"] = {  # type: ignore[index]
        "experiment": "exp",
        "name": "r1",
        "status": "FINISHED",
        "startTime": "2024-05-01T10:00:00Z",
    }
    done = api(query, variables)["registerModel"]
    assert done["trainingRun"]["status"] == "FINISHED"
    assert done["trainingRun"]["startTime"].startswith("2024-05-01T10:00:00")
    assert done["artifact"]["sizeBytes"] == 5_000_000_000


def _with_run(version: str, datasets: int, code: int) -> dict[str, Any]:
    data = registration(model="trained", version=version, uri=f"s3://m/{version}")["input"]
    assert isinstance(data, dict)
    data["trainingRun"] = {
        "experiment": "training",
        "name": f"run-{version}",
        "params": [{"key": "lr", "floatValue": 0.1}],
        "metrics": [{"key": "auc", "value": 0.9, "step": s} for s in range(3)],
        "inputs": {
            "datasets": [
                {"uri": f"s3://lake/{version}/{i}", "digest": f"d{i}"} for i in range(datasets)
            ],
            "code": [
                {"repository": "https://git.example/x.git", "commit": f"c{version}{i}"}
                for i in range(code)
            ],
        },
    }
    return data


def test_registering_with_a_run_costs_the_same_whatever_its_inputs(
    api: Api, db: neo4j.Driver
) -> None:
    """A registration with its training run: the Bolt queries do not grow with the number
    of datasets and code refs it reports (they are found or created in one query)."""
    small = api.post(REGISTER, {"input": _with_run("v1", datasets=1, code=1)})
    large = api.post(REGISTER, {"input": _with_run("v2", datasets=6, code=4)})
    assert not small.errors and not large.errors, (small.errors, large.errors)
    assert small.round_trips == large.round_trips
    # Version (1), experiment (1), run looked up and created (2), datasets (1), code refs
    # (1), the edges of both types (1), the run's logs with their ids (1), audit (1).
    assert small.round_trips == 9
    records, _, _ = db.execute_query(
        "MATCH (d)-[:INPUT_TO]->(:ExperimentRun {name: 'run-v2'}) RETURN count(d) AS n"
    )
    assert records[0]["n"] == 10
    # The same datasets again: found, not created twice.
    again = api.post(REGISTER, {"input": _with_run("v2", datasets=6, code=4)})
    assert not again.errors, again.errors
    records, _, _ = db.execute_query("MATCH (d:Dataset) RETURN count(d) AS n")
    assert records[0]["n"] == 7


def test_params_and_metrics_are_written_together(api: Api, db: neo4j.Driver) -> None:
    """A run's params and metrics go to Neo4j in one query: reporting both costs what
    reporting params alone does, and both are stored."""
    both = _with_run("v1", datasets=1, code=0)
    params_only = _with_run("v2", datasets=1, code=0)
    params_only["trainingRun"]["metrics"] = []
    first = api.post(REGISTER, {"input": both})
    second = api.post(REGISTER, {"input": params_only})
    assert not first.errors and not second.errors, (first.errors, second.errors)
    assert first.round_trips == second.round_trips
    records, _, _ = db.execute_query(
        "MATCH (:ExperimentRun {name: 'run-v1'})-[:LOGGED]->(l) "
        "RETURN l.kind AS kind, count(l) AS n ORDER BY kind"
    )
    assert {r["kind"]: r["n"] for r in records} == {"Metric": 1, "Parameter": 1}


def test_a_named_registration_costs_two_queries(api: Api, db: neo4j.Driver) -> None:
    """Model, version and artifact found or created in one query; the audit event and the
    new nodes' REST ids in one more (none when nothing changed)."""
    first = api.post(REGISTER, registration())
    again = api.post(REGISTER, registration())
    assert not first.errors and not again.errors, (first.errors, again.errors)
    assert first.data["registerModel"]["versionCreated"]
    assert not again.data["registerModel"]["versionCreated"]
    assert (first.round_trips, again.round_trips) == (2, 1)
    records, _, _ = db.execute_query(
        "MATCH (e:AuditEvent)-[:CONCERNS]->(n:Node) "
        "RETURN e.id AS event, count(n) AS targets, collect(n.restId IS NOT NULL) AS numbered"
    )
    # Only the first changed anything: one event, about the three nodes it made, numbered.
    assert [(r["targets"], all(r["numbered"])) for r in records] == [(3, True)]

"""The Kubeflow REST contract over real HTTP: shapes, ids, times, custom properties, lists,
errors, auth, and that REST and GraphQL are two views of one graph."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import neo4j
import pytest

from lineagehub.settings import Settings
from tests.conftest import Api, ThreadedServer, make_token

V1A3 = "/api/model_registry/v1alpha3"
V1 = "/api/model_registry/v1"


class Rest:
    """A REST client of the running server that checks the JSON shape of every answer."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=base_url, timeout=30, headers=headers)

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> httpx.Response:
        response = self.http.request(
            method, path, json=body, params={k: v for k, v in params.items() if v is not None}
        )
        assert response.headers["content-type"].startswith("application/json"), response.text
        return response

    def __enter__(self) -> Rest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def ok(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        response = self.call(method, path, body, **params)
        assert response.status_code in (200, 201), (response.status_code, response.text)
        return response.json()

    def fails(self, status: int, method: str, path: str, body: Any = None, **params: Any) -> str:
        response = self.call(method, path, body, **params)
        assert response.status_code == status, (response.status_code, response.text)
        error = response.json()
        assert set(error) == {"code", "message"}, error
        message: str = error["message"]
        return message


@pytest.fixture
def rest(server: ThreadedServer, db: neo4j.Driver) -> Iterator[Rest]:
    client = Rest(server.url)
    yield client
    client.http.close()


def _model(rest: Rest, name: str = "churn", **fields: Any) -> dict[str, Any]:
    created: dict[str, Any] = rest.ok("POST", f"{V1A3}/registered_models", {"name": name, **fields})
    return created


def test_ids_times_and_custom_properties_round_trip(rest: Rest) -> None:
    struct = base64.b64encode(json.dumps({"layers": [64, 32]}).encode()).decode()
    props = {
        "epochs": {"metadataType": "MetadataIntValue", "int_value": "12"},
        "accuracy": {"metadataType": "MetadataDoubleValue", "double_value": 0.91},
        "framework": {"metadataType": "MetadataStringValue", "string_value": "torch"},
        "calibrated": {"metadataType": "MetadataBoolValue", "bool_value": True},
        "arch": {"metadataType": "MetadataStructValue", "struct_value": struct},
    }
    model = _model(rest, customProperties=props, owner="ada", tasks=["fraud"], language=["en"])
    assert model["id"].isdigit() and not model["id"].startswith("0")
    assert model["customProperties"] == props
    assert model["state"] == "LIVE"
    assert (model["owner"], model["tasks"], model["language"]) == ("ada", ["fraud"], ["en"])
    assert int(model["createTimeSinceEpoch"]) == int(model["lastUpdateTimeSinceEpoch"])

    # Any key a client holds, but NUL, which Neo4j refuses in a property name: a 422
    # naming the key, not a 500 (a schemathesis finding).
    message = rest.fails(
        422,
        "POST",
        f"{V1A3}/registered_models",
        {"name": "nul", "customProperties": {"a\u0000b": props["epochs"]}},
    )
    assert "NUL" in message, message
    # PATCH replaces the whole customProperties map and moves the update time forward.
    changed = rest.ok(
        "PATCH",
        f"{V1A3}/registered_models/{model['id']}",
        {"customProperties": {"epochs": props["epochs"]}, "description": "v2"},
    )
    assert changed["customProperties"] == {"epochs": props["epochs"]}
    assert int(changed["lastUpdateTimeSinceEpoch"]) > int(model["lastUpdateTimeSinceEpoch"])
    assert changed["createTimeSinceEpoch"] == model["createTimeSinceEpoch"]
    assert rest.ok("GET", f"{V1A3}/registered_models/{model['id']}") == changed
    assert rest.ok("GET", f"{V1A3}/registered_model", name="churn") == changed

    # Ids grow with creation order, across resource types.
    version = rest.ok(
        "POST",
        f"{V1A3}/model_versions",
        {"name": "1", "registeredModelId": model["id"], "author": "ada"},
    )
    assert int(version["id"]) > int(model["id"])
    assert version["registeredModelId"] == model["id"]


def test_lists_page_with_tokens_and_order(rest: Rest) -> None:
    ids = [_model(rest, f"m{i}")["id"] for i in range(7)]
    seen: list[str] = []
    token = None
    while True:
        page = rest.ok("GET", f"{V1A3}/registered_models", pageSize="3", nextPageToken=token)
        assert set(page) == {"items", "nextPageToken", "pageSize", "size"}
        assert page["pageSize"] == 3 and page["size"] == len(page["items"])
        seen += [m["id"] for m in page["items"]]
        token = page["nextPageToken"]
        if token == "":
            break
    assert seen == ids
    newest = rest.ok("GET", f"{V1A3}/registered_models", orderBy="CREATE_TIME", sortOrder="DESC")
    assert [m["id"] for m in newest["items"]] == ids[::-1]
    rest.fails(400, "GET", f"{V1A3}/registered_models", orderBy="NAME")
    rest.fails(400, "GET", f"{V1A3}/registered_models", nextPageToken="garbage")


def test_a_token_is_a_place_in_the_order(rest: Rest) -> None:
    """The next page starts after the last item seen, however many items were made
    before it meanwhile (newest first); a token of another order is refused; offset
    tokens given out before still work."""
    ids = [_model(rest, f"m{i}")["id"] for i in range(6)]
    newest = {"orderBy": "CREATE_TIME", "sortOrder": "DESC", "pageSize": "2"}
    first = rest.ok("GET", f"{V1A3}/registered_models", **newest)
    assert [m["id"] for m in first["items"]] == ids[:3:-1]
    _model(rest, "newer")  # sorts before the token: moves nothing after it
    rest_of: list[str] = []
    token = first["nextPageToken"]
    while token:
        page = rest.ok("GET", f"{V1A3}/registered_models", nextPageToken=token, **newest)
        rest_of += [m["id"] for m in page["items"]]
        token = page["nextPageToken"]
    assert rest_of == ids[3::-1]
    by_id = rest.ok("GET", f"{V1A3}/registered_models", pageSize="2")["nextPageToken"]
    error = rest.fails(400, "GET", f"{V1A3}/registered_models", nextPageToken=by_id, **newest)
    assert "another list or order" in error
    offset = base64.urlsafe_b64encode(b"offset:1").decode()
    page = rest.ok("GET", f"{V1A3}/registered_models", pageSize="2", nextPageToken=offset)
    assert [m["id"] for m in page["items"]] == ids[2:4]


def test_list_is_one_bolt_query_whatever_its_size(rest: Rest) -> None:
    for i in range(30):
        _model(rest, f"m{i}")
    small = rest.call("GET", f"{V1A3}/registered_models", pageSize="2")
    large = rest.call("GET", f"{V1A3}/registered_models", pageSize="30")
    assert small.headers["x-bolt-round-trips"] == large.headers["x-bolt-round-trips"] == "1"


def test_errors_are_code_and_message_with_the_right_status(rest: Rest) -> None:
    model = _model(rest)
    assert rest.fails(404, "GET", "/")
    assert "RegisteredModel" in rest.fails(404, "GET", f"{V1A3}/registered_models/999999")
    rest.fails(404, "GET", f"{V1A3}/registered_models/abc")
    rest.fails(400, "GET", f"{V1A3}/registered_models/0")
    assert "bogus" in rest.fails(
        400, "POST", f"{V1A3}/registered_models", {"name": "x", "bogus": 1}
    )
    rest.fails(400, "POST", f"{V1A3}/registered_models", {"description": "no name"})
    rest.fails(400, "POST", f"{V1A3}/registered_models", {"name": 5})
    response = rest.http.post(f"{V1A3}/registered_models", content=b"{not json")
    assert response.status_code == 400 and set(response.json()) == {"code", "message"}
    assert "already exists" in rest.fails(
        409, "POST", f"{V1A3}/registered_models", {"name": "churn"}
    )
    assert "@" in rest.fails(422, "POST", f"{V1A3}/registered_models", {"name": "a@b"})
    bad_props = {"k": {"metadataType": "MetadataIntValue", "int_value": "x"}}
    rest.fails(
        422, "PATCH", f"{V1A3}/registered_models/{model['id']}", {"customProperties": bad_props}
    )
    # The name of a model is fixed through REST (RegisteredModelUpdate has no name).
    rest.fails(400, "PATCH", f"{V1A3}/registered_models/{model['id']}", {"name": "other"})
    assert "999" in rest.fails(
        404, "POST", f"{V1A3}/model_versions", {"name": "1", "registeredModelId": "999"}
    )


def test_v1_serves_the_same_graph_without_experiments(rest: Rest) -> None:
    model = _model(rest)
    assert rest.ok("GET", f"{V1}/registered_models/{model['id']}")["name"] == "churn"
    rest.fails(404, "GET", f"{V1}/experiments")
    assert rest.ok("GET", f"{V1A3}/experiments")["items"] == []
    spec = rest.ok("GET", f"{V1}/openapi.json")
    assert not any("experiment" in p for p in spec["paths"])


def test_tokens_and_roles(server: ThreadedServer, settings: Settings, db: neo4j.Driver) -> None:
    _, reader = make_token(settings, "reader", ["reader"])
    with Rest(server.url) as anonymous, Rest(server.url, reader) as read_only:
        assert "Bearer" in anonymous.fails(401, "GET", f"{V1A3}/registered_models")
        assert read_only.ok("GET", f"{V1A3}/registered_models")["items"] == []
        assert "writer" in read_only.fails(403, "POST", f"{V1A3}/registered_models", {"name": "x"})
    with Rest(server.url, "not-a-token") as wrong:
        wrong.fails(401, "GET", f"{V1A3}/registered_models")


def test_standalone_artifact_joins_a_version(rest: Rest, api: Api) -> None:
    model = _model(rest)
    version = rest.ok(
        "POST",
        f"{V1A3}/registered_models/{model['id']}/versions",
        {"name": "1", "author": "ada", "registeredModelId": model["id"]},
    )
    loose = rest.ok(
        "POST",
        f"{V1A3}/model_artifacts",
        {"name": "weights", "uri": "s3://w/1", "state": "PENDING", "modelFormatName": "onnx"},
    )
    assert loose["artifactType"] == "model-artifact" and loose["state"] == "PENDING"
    attached = rest.ok(
        "POST",
        f"{V1A3}/model_versions/{version['id']}/artifacts",
        {"artifactType": "model-artifact", "id": loose["id"], "state": "LIVE"},
    )
    assert attached["id"] == loose["id"] and attached["state"] == "LIVE"
    doc = rest.ok(
        "POST",
        f"{V1A3}/model_versions/{version['id']}/artifacts",
        {"artifactType": "doc-artifact", "name": "card", "uri": "s3://w/card.md"},
    )
    listed = rest.ok("GET", f"{V1A3}/model_versions/{version['id']}/artifacts")
    assert [a["id"] for a in listed["items"]] == [loose["id"], doc["id"]]
    docs = rest.ok(
        "GET", f"{V1A3}/model_versions/{version['id']}/artifacts", artifactType="doc-artifact"
    )
    assert [a["name"] for a in docs["items"]] == ["card"]
    found = rest.ok("GET", f"{V1A3}/model_artifact", name="weights", parentResourceId=version["id"])
    assert found["uri"] == "s3://w/1"
    archived = rest.ok(
        "PATCH",
        f"{V1A3}/artifacts/{doc['id']}",
        {"state": "DELETED", "artifactType": "doc-artifact"},
    )
    assert archived["state"] == "DELETED"

    data = api(
        "query($name: String!) { registeredModel(name: $name) { versions { nodes { "
        "artifacts { nodes { name state artifactState } } } } } }",
        {"name": "churn"},
    )
    artifacts = data["registeredModel"]["versions"]["nodes"][0]["artifacts"]["nodes"]
    assert {a["name"]: (a["state"], a["artifactState"]) for a in artifacts} == {
        "weights": ("LIVE", "LIVE"),
        "card": ("ARCHIVED", "DELETED"),
    }


def test_runs_log_metrics_params_and_datasets_as_lineage(rest: Rest, api: Api) -> None:
    experiment = rest.ok("POST", f"{V1A3}/experiments", {"name": "churn", "owner": "ada"})
    run = rest.ok(
        "POST",
        f"{V1A3}/experiments/{experiment['id']}/experiment_runs",
        {
            "name": "r1",
            "experimentId": experiment["id"],
            "startTimeSinceEpoch": "1700000000000",
            "status": "RUNNING",
        },
    )
    assert run["experimentId"] == experiment["id"]
    assert run["startTimeSinceEpoch"] == "1700000000000"
    for step, loss in enumerate([0.9, 0.4, 0.2]):
        metric = rest.ok(
            "POST",
            f"{V1A3}/experiment_runs/{run['id']}/artifacts",
            {"artifactType": "metric", "name": "loss", "value": loss, "step": step},
        )
    assert (metric["value"], metric["step"], metric["experimentRunId"]) == (0.2, 2, run["id"])
    param = {"artifactType": "parameter", "name": "lr", "value": "0.01", "parameterType": "number"}
    rest.ok("POST", f"{V1A3}/experiment_runs/{run['id']}/artifacts", param)
    changed = {**param, "value": "0.1"}
    assert "cannot change" in rest.fails(
        409, "POST", f"{V1A3}/experiment_runs/{run['id']}/artifacts", changed
    )
    dataset = rest.ok(
        "POST",
        f"{V1A3}/experiment_runs/{run['id']}/artifacts",
        {
            "artifactType": "dataset-artifact",
            "name": "train",
            "uri": "s3://data/train",
            "digest": "sha256:1",
            "schema": '{"cols": 3}',
        },
    )
    assert dataset["schema"] == '{"cols": 3}'
    assert dataset["experimentId"] == experiment["id"]
    history = rest.ok("GET", f"{V1A3}/experiment_runs/{run['id']}/metric_history", name="loss")
    assert [(m["value"], m["step"]) for m in history["items"]] == [(0.9, 0), (0.4, 1), (0.2, 2)]
    logs = rest.ok("GET", f"{V1A3}/experiment_runs/{run['id']}/artifacts")
    assert sorted(a["artifactType"] for a in logs["items"]) == [
        "dataset-artifact",
        "metric",
        "parameter",
    ]
    finished = rest.ok(
        "PATCH",
        f"{V1A3}/experiment_runs/{run['id']}",
        {"status": "FINISHED", "endTimeSinceEpoch": "1700000360000"},
    )
    assert finished["status"] == "FINISHED"

    # A model version produced by the run, registered through GraphQL, traces back to the
    # dataset logged through REST.
    produced = rest.ok(
        "POST",
        f"{V1A3}/experiment_runs/{run['id']}/artifacts",
        {"artifactType": "model-artifact", "name": "weights", "uri": "s3://w/r1"},
    )
    data = api(
        'query($uri: String!) { dataset(uri: $uri, digest: "sha256:1") { '
        "lineage(direction: DOWNSTREAM) { nodes { node { __typename restId } } } } }",
        {"uri": "s3://data/train"},
    )
    downstream = {
        (n["node"]["__typename"], str(n["node"]["restId"]))
        for n in data["dataset"]["lineage"]["nodes"]
    }
    assert ("ExperimentRun", run["id"]) in downstream
    assert ("ModelArtifact", produced["id"]) in downstream


def test_serving_records_are_deployments_in_the_graph(rest: Rest, api: Api) -> None:
    model = _model(rest)
    v1 = rest.ok(
        "POST",
        f"{V1A3}/registered_models/{model['id']}/versions",
        {"name": "1", "registeredModelId": model["id"]},
    )
    v2 = rest.ok(
        "POST",
        f"{V1A3}/registered_models/{model['id']}/versions",
        {"name": "2", "registeredModelId": model["id"]},
    )
    other = _model(rest, "other")
    stray = rest.ok(
        "POST",
        f"{V1A3}/registered_models/{other['id']}/versions",
        {"name": "1", "registeredModelId": other["id"]},
    )
    env = rest.ok("POST", f"{V1A3}/serving_environments", {"name": "prod"})
    isvc = rest.ok(
        "POST",
        f"{V1A3}/serving_environments/{env['id']}/inference_services",
        {
            "name": "churn-svc",
            "registeredModelId": model["id"],
            "servingEnvironmentId": env["id"],
            "runtime": "kserve",
        },
    )
    assert isvc["servingEnvironmentId"] == env["id"]
    assert isvc["registeredModelId"] == model["id"]
    assert "modelVersionId" not in isvc
    # No version served yet: the model's latest version is the one it would serve.
    assert rest.ok("GET", f"{V1A3}/inference_services/{isvc['id']}/version")["id"] == v2["id"]
    assert rest.ok("GET", f"{V1A3}/inference_services/{isvc['id']}/model")["id"] == model["id"]

    serve = rest.ok(
        "POST",
        f"{V1A3}/inference_services/{isvc['id']}/serves",
        {"modelVersionId": v1["id"], "lastKnownState": "RUNNING", "name": "rollout-1"},
    )
    assert (serve["modelVersionId"], serve["lastKnownState"]) == (v1["id"], "RUNNING")
    served = rest.ok("GET", f"{V1A3}/inference_services/{isvc['id']}")
    assert served["modelVersionId"] == v1["id"]
    # A version of another model cannot be served here, and nothing is written trying.
    assert "not a version" in rest.fails(
        409,
        "POST",
        f"{V1A3}/inference_services/{isvc['id']}/serves",
        {"modelVersionId": stray["id"]},
    )
    serves = rest.ok("GET", f"{V1A3}/inference_services/{isvc['id']}/serves")
    assert [s["name"] for s in serves["items"]] == ["rollout-1"]

    moved = rest.ok(
        "PATCH", f"{V1A3}/inference_services/{isvc['id']}", {"modelVersionId": v2["id"]}
    )
    assert moved["modelVersionId"] == v2["id"]
    found = rest.ok(
        "GET", f"{V1A3}/inference_service", name="churn-svc", parentResourceId=env["id"]
    )
    assert found["id"] == isvc["id"]

    data = api(
        "query($id: ID!) { inferenceService(id: $id) { name restId modelVersion { name } } }",
        {"id": _our_id(api, isvc["id"])},
    )
    assert data["inferenceService"]["modelVersion"] == {"name": "2"}
    stopped = rest.ok(
        "PATCH", f"{V1A3}/inference_services/{isvc['id']}", {"desiredState": "UNDEPLOYED"}
    )
    assert stopped["desiredState"] == "UNDEPLOYED"
    assert stopped["modelVersionId"] == v2["id"]  # still the version it is set to serve


def _our_id(api: Api, rest_id: str) -> str:
    data = api(
        "query { inferenceServices { nodes { id restId } } }",
    )
    found: str = next(
        n["id"] for n in data["inferenceServices"]["nodes"] if str(n["restId"]) == rest_id
    )
    return found


def test_graphql_registrations_are_readable_through_rest(rest: Rest, api: Api) -> None:
    api(
        """mutation {
          registerModel(input: {
            model: {name: "from-graphql", owner: "ada"}
            version: {name: "1", author: "ada"}
            artifact: {uri: "s3://g/1", modelFormatName: "onnx"}
          }) { version { id } }
        }"""
    )
    model = rest.ok("GET", f"{V1A3}/registered_model", name="from-graphql")
    assert model["owner"] == "ada"
    version = rest.ok("GET", f"{V1A3}/model_version", name="1", parentResourceId=model["id"])
    assert version["registeredModelId"] == model["id"]
    artifacts = rest.ok("GET", f"{V1A3}/model_versions/{version['id']}/artifacts")
    assert [(a["uri"], a["modelFormatName"]) for a in artifacts["items"]] == [("s3://g/1", "onnx")]


def test_filter_query_on_fields_custom_properties_and_times(rest: Rest) -> None:
    def props(accuracy: float, framework: str) -> dict[str, Any]:
        return {
            "accuracy": {"metadataType": "MetadataDoubleValue", "double_value": accuracy},
            "framework": {"metadataType": "MetadataStringValue", "string_value": framework},
            "mlflow.source.type": {"metadataType": "MetadataStringValue", "string_value": "nb"},
        }

    a = _model(rest, "fraud-tf", customProperties=props(0.97, "tensorflow"), owner="ada")
    b = _model(rest, "fraud-torch", customProperties=props(0.91, "pytorch"), owner="bob")
    c = _model(rest, "churn-tf", customProperties=props(0.99, "tensorflow"), owner="ada")
    rest.ok("PATCH", f"{V1A3}/registered_models/{c['id']}", {"state": "ARCHIVED"})

    def names(query: str) -> list[str]:
        page = rest.ok("GET", f"{V1A3}/registered_models", filterQuery=query)
        return [m["name"] for m in page["items"]]

    assert names("name LIKE 'fraud-%'") == ["fraud-tf", "fraud-torch"]
    assert names("name ILIKE '%-TF'") == ["fraud-tf", "churn-tf"]
    assert names("accuracy > 0.95") == ["fraud-tf", "churn-tf"]
    assert names("framework.string_value = 'pytorch'") == ["fraud-torch"]
    assert names("`mlflow.source.type` = 'nb' AND owner = 'bob'") == ["fraud-torch"]
    assert names("state = 'LIVE' AND (framework = 'tensorflow' OR owner = 'bob')") == [
        "fraud-tf",
        "fraud-torch",
    ]
    assert names(f"id IN ({a['id']}, {c['id']})") == ["fraud-tf", "churn-tf"]
    assert names(f"createTimeSinceEpoch > {b['createTimeSinceEpoch']}") == ["churn-tf"]
    message = rest.fails(400, "GET", f"{V1A3}/registered_models", filterQuery="name = AND")
    assert "filterQuery" in message and "position" in message
    rest.fails(400, "GET", f"{V1A3}/registered_models", filterQuery="createTimeSinceEpoch LIKE 'x'")


def test_rest_writes_are_audited_and_a_failed_write_leaves_nothing(
    rest: Rest, api: Api, db: neo4j.Driver
) -> None:
    model = _model(rest)
    rest.fails(
        404,
        "POST",
        f"{V1A3}/inference_services",
        {"name": "svc", "registeredModelId": model["id"], "servingEnvironmentId": "999"},
    )
    env = rest.ok("POST", f"{V1A3}/serving_environments", {"name": "prod"})
    other = _model(rest, "other")
    stray = rest.ok(
        "POST", f"{V1A3}/model_versions", {"name": "1", "registeredModelId": other["id"]}
    )
    before = db.execute_query("MATCH (n) RETURN count(n) AS n").records[0]["n"]
    # The version belongs to another model: the service would be created, then refused.
    rest.fails(
        409,
        "POST",
        f"{V1A3}/inference_services",
        {
            "name": "svc",
            "registeredModelId": model["id"],
            "servingEnvironmentId": env["id"],
            "modelVersionId": stray["id"],
        },
    )
    after = db.execute_query("MATCH (n) RETURN count(n) AS n").records[0]["n"]
    assert after == before
    events = api(
        '{ auditEvents(filter: {action: "rest.createRegisteredModel"}) { nodes { action actor } } }'
    )
    assert events["auditEvents"]["nodes"] == [
        {"action": "rest.createRegisteredModel", "actor": "local"},
        {"action": "rest.createRegisteredModel", "actor": "local"},
    ]


def test_run_logs_page_by_token_too(rest: Rest) -> None:
    """Metrics and parameters (run logs: a REST id, no graph id) page with the others."""
    experiment = rest.ok("POST", f"{V1A3}/experiments", {"name": "paged"})
    run = rest.ok(
        "POST",
        f"{V1A3}/experiments/{experiment['id']}/experiment_runs",
        {"name": "r1", "experimentId": experiment["id"]},
    )
    for step in range(4):
        body = {"artifactType": "metric", "name": f"m{step}", "value": 0.5, "step": step}
        rest.ok("POST", f"{V1A3}/experiment_runs/{run['id']}/artifacts", body)
    for name in ("lr", "batch"):
        body = {"artifactType": "parameter", "name": name, "value": "1", "parameterType": "number"}
        rest.ok("POST", f"{V1A3}/experiment_runs/{run['id']}/artifacts", body)
    for path in (f"{V1A3}/experiment_runs/{run['id']}/artifacts", f"{V1A3}/artifacts"):
        for order in ({}, {"orderBy": "CREATE_TIME", "sortOrder": "DESC"}):
            whole = rest.ok("GET", path, pageSize="100", **order)["items"]
            seen: list[str] = []
            token = None
            while True:
                page = rest.ok("GET", path, pageSize="2", nextPageToken=token, **order)
                seen += [a["id"] for a in page["items"]]
                token = page["nextPageToken"]
                if not token:
                    break
            assert seen == [a["id"] for a in whole] and len(seen) >= 6, (path, order)


def test_metric_history_across_runs(rest: Rest) -> None:
    experiment = rest.ok("POST", f"{V1A3}/experiments", {"name": "sweep"})
    runs = []
    for lr in ("0.1", "0.01"):
        run = rest.ok(
            "POST",
            f"{V1A3}/experiment_runs",
            {"experimentId": experiment["id"], "name": f"lr-{lr}", "owner": "ada"},
        )
        runs.append(run)
        for step in range(3):
            rest.ok(
                "POST",
                f"{V1A3}/experiment_runs/{run['id']}/artifacts",
                {"artifactType": "metric", "name": "loss", "value": 1.0 / (step + 1), "step": step},
            )
    history = rest.ok(
        "GET",
        f"{V1A3}/experiment_runs/metric_history",
        filterQuery="name = 'lr-0.1'",
        stepIds="0,2",
    )
    assert [(m["experimentRunId"], m["step"]) for m in history["items"]] == [
        (runs[0]["id"], 0),
        (runs[0]["id"], 2),
    ]
    everything = rest.ok("GET", f"{V1A3}/experiment_runs/metric_history", pageSize="4")
    assert everything["size"] == 4 and everything["nextPageToken"]
    rest.fails(400, "GET", f"{V1A3}/experiment_runs/metric_history", stepIds="a,b")


def test_runs_logged_through_graphql_show_their_params_and_metrics_through_rest(
    rest: Rest, api: Api
) -> None:
    api(
        """mutation {
          registerModel(input: {
            model: {name: "tabular"}
            version: {name: "1"}
            trainingRun: {
              experiment: "tabular-exp"
              name: "r1"
              params: [{key: "lr", floatValue: 0.01}, {key: "opt", stringValue: "adam"}]
              metrics: [{key: "auc", value: 0.8, step: 0}, {key: "auc", value: 0.9, step: 1}]
            }
          }) { version { id } }
        }"""
    )
    run = rest.ok("GET", f"{V1A3}/experiment_run", name="r1")
    logs = rest.ok("GET", f"{V1A3}/experiment_runs/{run['id']}/artifacts")["items"]
    shown = {(a["artifactType"], a["name"]): a for a in logs}
    assert shown[("parameter", "lr")]["value"] == "0.01"
    assert shown[("parameter", "lr")]["parameterType"] == "number"
    assert shown[("parameter", "opt")]["value"] == "adam"
    assert (shown[("metric", "auc")]["value"], shown[("metric", "auc")]["step"]) == (0.9, 1)
    history = rest.ok("GET", f"{V1A3}/experiment_runs/{run['id']}/metric_history", name="auc")
    assert [(m["value"], m["step"]) for m in history["items"]] == [(0.8, 0), (0.9, 1)]


def test_catalog_fields_are_one_set_in_both_edges(rest: Rest, api: Api) -> None:
    created = api(
        """mutation { createRegisteredModel(input: {
             name: "granite", readme: "# Granite", maturity: "Tech preview",
             language: ["en"], tasks: ["text-generation"], provider: "IBM",
             licenseLink: "https://example.org/license", libraryName: "transformers"
           }) { id readme tasks licenseLink } }"""
    )["createRegisteredModel"]
    assert created["tasks"] == ["text-generation"]
    model = rest.ok("GET", f"{V1A3}/registered_model", name="granite")
    assert (model["readme"], model["maturity"], model["language"]) == (
        "# Granite",
        "Tech preview",
        ["en"],
    )
    assert (model["provider"], model["licenseLink"], model["libraryName"]) == (
        "IBM",
        "https://example.org/license",
        "transformers",
    )
    rest.ok("PATCH", f"{V1A3}/registered_models/{model['id']}", {"maturity": "GA"})
    changed = api(
        """mutation($id: ID!) { updateRegisteredModel(id: $id, input: {readme: null}) {
             readme maturity } }""",
        {"id": created["id"]},
    )["updateRegisteredModel"]
    assert changed == {"readme": None, "maturity": "GA"}

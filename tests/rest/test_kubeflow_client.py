"""The official Kubeflow Model Registry client (model-registry 0.3.18, `/v1` prefix) drives
the real server unchanged; what it registers is visible to GraphQL lineage at once."""

from __future__ import annotations

from typing import Any

import pytest

from lineagehub.settings import Settings
from tests.conftest import Api, ThreadedServer, make_token

model_registry = pytest.importorskip("model_registry")
ONNX = {"model_format_name": "onnx", "model_format_version": "1"}


@pytest.fixture
def registry(server: ThreadedServer, settings: Settings, db: Any) -> Any:
    """The official client with a writer's bearer token (as a Kubeflow user would have)."""
    _, secret = make_token(settings, "kubeflow-client", ["reader", "writer"])
    return model_registry.ModelRegistry(
        "http://127.0.0.1", server.port, author="ada", is_secure=False, user_token=secret
    )


@pytest.fixture
def graph(as_role: Any) -> Api:
    """A GraphQL reader, to see what the REST client registered."""
    client: Api = as_role("reader")
    return client


def test_register_get_update_archive(registry: Any, graph: Api) -> None:
    model = registry.register_model(
        "fraud-detector",
        "s3://models/fraud/1/model.onnx",
        version="1.0.0",
        model_format_name="onnx",
        model_format_version="1",
        version_description="first cut",
        metadata={"accuracy": 0.91, "epochs": 12, "framework": "torch", "calibrated": True},
    )
    assert model.name == "fraud-detector"
    assert model.id.isdigit()

    found = registry.get_registered_model("fraud-detector")
    assert found.id == model.id
    version = registry.get_model_version("fraud-detector", "1.0.0")
    assert version.name == "1.0.0"
    assert version.author == "ada"
    assert version.custom_properties == {
        "accuracy": 0.91,
        "epochs": 12,
        "framework": "torch",
        "calibrated": True,
    }
    artifact = registry.get_model_artifact("fraud-detector", "1.0.0")
    assert artifact.uri == "s3://models/fraud/1/model.onnx"
    assert artifact.model_format_name == "onnx"

    found.description = "catches card fraud"
    updated = registry.update(found)
    assert updated.description == "catches card fraud"
    assert int(updated.last_update_time_since_epoch) > int(found.last_update_time_since_epoch)

    version.description = "retrained"
    version.custom_properties = {"accuracy": 0.93}
    version = registry.update(version)
    assert version.custom_properties == {"accuracy": 0.93}

    from model_registry.types import ModelVersionState, RegisteredModelState

    version.state = ModelVersionState.ARCHIVED
    assert registry.update(version).state == ModelVersionState.ARCHIVED
    found = registry.get_registered_model("fraud-detector")
    found.state = RegisteredModelState.ARCHIVED
    assert registry.update(found).state == RegisteredModelState.ARCHIVED

    # The same registration is a graph: GraphQL sees the model, its version and artifact.
    data = graph(
        """query($name: String!) {
          registeredModel(name: $name) {
            restId state description
            versions { nodes { name state author artifacts { nodes { uri } } } }
          }
        }""",
        {"name": "fraud-detector"},
    )
    graph_model = data["registeredModel"]
    assert str(graph_model["restId"]) == model.id
    assert graph_model["state"] == "ARCHIVED"
    assert graph_model["versions"]["nodes"][0]["artifacts"]["nodes"] == [
        {"uri": "s3://models/fraud/1/model.onnx"}
    ]


def test_paginate_many_models_and_versions(registry: Any) -> None:
    for i in range(23):
        registry.register_model(f"model-{i:02d}", f"s3://m/{i}", version="v1", **ONNX)
    for v in range(2, 6):
        registry.register_model("model-00", f"s3://m/0/{v}", version=f"v{v}", **ONNX)
    names = [m.name for m in registry.get_registered_models().page_size(5)]
    assert names == [f"model-{i:02d}" for i in range(23)]  # ID order = creation order
    newest_first = [m.name for m in registry.get_registered_models().order_by_id().descending()]
    assert newest_first[0] == "model-22"
    versions = [v.name for v in registry.get_model_versions("model-00").page_size(2)]
    assert versions == ["v1", "v2", "v3", "v4", "v5"]


def test_duplicate_version_is_refused(registry: Any) -> None:
    registry.register_model("dup", "s3://d/1", version="1", **ONNX)
    from model_registry.exceptions import StoreError

    with pytest.raises(StoreError):
        registry.register_model("dup", "s3://d/2", version="1", **ONNX)


def test_serving_records_through_the_official_generated_api(registry: Any, graph: Api) -> None:
    """The package's generated API (mr_openapi) for what the high-level client lacks."""
    from mr_openapi import (
        InferenceServiceCreate,
        InferenceServiceState,
        InferenceServiceUpdate,
        ServeModelCreate,
        ServingEnvironmentCreate,
    )

    registry.register_model("churn", "s3://m/churn/1", version="1", **ONNX)
    registry.register_model("churn", "s3://m/churn/2", version="2", **ONNX)
    model = registry.get_registered_model("churn")
    v1 = registry.get_model_version("churn", "1")
    v2 = registry.get_model_version("churn", "2")

    async def scenario() -> dict[str, Any]:
        async with registry._api.get_client() as api:
            env = await api.create_serving_environment(ServingEnvironmentCreate(name="prod"))
            isvc = await api.create_inference_service(
                InferenceServiceCreate(
                    name="churn-svc",
                    registered_model_id=model.id,
                    serving_environment_id=env.id,
                    model_version_id=v1.id,
                    runtime="kserve",
                )
            )
            serve = await api.create_inference_service_serve(
                isvc.id, ServeModelCreate(model_version_id=v2.id, last_known_state="RUNNING")
            )
            serves = await api.get_inference_service_serves(isvc.id)
            served = await api.get_inference_service_version(isvc.id)
            stopped = await api.update_inference_service(
                isvc.id, InferenceServiceUpdate(desired_state=InferenceServiceState.UNDEPLOYED)
            )
            return {
                "isvc": isvc,
                "serve": serve,
                "serves": serves,
                "served": served,
                "stopped": stopped,
            }

    seen = registry.async_runner(scenario())
    assert seen["isvc"].model_version_id == v1.id
    assert seen["serve"].model_version_id == v2.id
    assert [s.model_version_id for s in seen["serves"].items] == [v1.id, v2.id]
    assert seen["served"].id == v2.id
    assert seen["stopped"].desired_state == "UNDEPLOYED"

    # The deploy history is the graph's: both deploys, v2 served until the undeploy.
    data = graph(
        """{ inferenceServices { nodes { name desiredState modelVersion { name }
             deployments { nodes { deploymentState modelVersion { name } } } } } }"""
    )
    service = data["inferenceServices"]["nodes"][0]
    assert service["desiredState"] == "UNDEPLOYED"
    assert service["modelVersion"] is None
    deploys = service["deployments"]["nodes"]
    assert [(d["modelVersion"]["name"], d["deploymentState"]) for d in deploys] == [
        ("2", "READY"),  # newest first; ServeModel's RUNNING is our READY
        ("1", "PENDING"),
    ]

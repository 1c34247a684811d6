"""A small but complete registry, built through the public API, for the lineage tests.

raw events (s3://lake/events@d1) --DERIVED_FROM-- clean events (s3://lake/clean@d2)
clean events + train.py@abc --INPUT_TO--> run-1 --PRODUCED--> churn-predictor v1
labels (s3://lake/labels@d3) + train.py@def --INPUT_TO--> run-2 --PRODUCED--> churn-predictor v2
v2 --DERIVED_FROM--> v1 (fine-tune)
prod/churn-api serves v2 (DEPLOYED); prod/churn-shadow served v1, now UNDEPLOYED
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.conftest import Api

REGISTER = """
mutation($input: RegisterModelInput!) {
  registerModel(input: $input) {
    version { id name }
    trainingRun { id name }
    trainingRunCreated
  }
}
"""
DATASET = """
mutation($input: DatasetInput!, $parents: [DatasetRefInput!]) {
  registerDataset(input: $input, derivedFrom: $parents) { created dataset { id uri digest } }
}
"""


@dataclass
class Scenario:
    raw: str
    clean: str
    labels: str
    v1: str
    v2: str
    run1: str
    run2: str
    env: str
    api_service: str
    shadow_service: str


def register_dataset(
    api: Api, uri: str, digest: str, parents: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = api(
        DATASET, {"input": {"uri": uri, "digest": digest}, "parents": parents}
    )["registerDataset"]
    return data


def build(api: Api) -> Scenario:
    raw = register_dataset(api, "s3://lake/events", "d1")["dataset"]["id"]
    clean = register_dataset(
        api, "s3://lake/clean", "d2", [{"uri": "s3://lake/events", "digest": "d1"}]
    )["dataset"]["id"]
    labels = register_dataset(api, "s3://lake/labels", "d3")["dataset"]["id"]

    def register(
        version: str, accuracy: float, run: dict[str, Any], base: str | None = None
    ) -> dict[str, Any]:
        data: dict[str, Any] = {
            "model": {"name": "churn-predictor", "owner": "ana", "tags": ["tabular"]},
            "version": {
                "name": version,
                "author": "ana",
                "customProperties": [{"key": "accuracy", "floatValue": accuracy}],
            },
            "artifact": {
                "uri": f"s3://models/churn-predictor/{version}/model.onnx",
                "modelFormatName": "onnx",
                "modelFormatVersion": "1.16",
            },
            "trainingRun": {"experiment": "churn-training", **run},
        }
        if base:
            data["baseVersion"] = {"model": "churn-predictor", "name": base}
        result: dict[str, Any] = api(REGISTER, {"input": data})["registerModel"]
        return result

    first = register(
        "v1",
        0.87,
        {
            "externalId": "pipeline-run-1",
            "params": [{"key": "lr", "floatValue": 0.1}, {"key": "epochs", "intValue": 10}],
            "metrics": [
                {"key": "val_auc", "value": 0.81, "step": 1},
                {"key": "val_auc", "value": 0.86, "step": 2},
            ],
            "inputs": {
                "datasetRefs": [{"id": clean}],
                "code": [
                    {
                        "repository": "https://git.example/churn.git",
                        "commit": "abc",
                        "path": "train.py",
                    }
                ],
            },
        },
    )
    second = register(
        "v2",
        0.91,
        {
            "externalId": "pipeline-run-2",
            "params": [{"key": "lr", "floatValue": 0.05}],
            "metrics": [{"key": "val_auc", "value": 0.93, "step": 1}],
            "inputs": {
                "datasetRefs": [{"uri": "s3://lake/labels", "digest": "d3"}],
                "code": [
                    {
                        "repository": "https://git.example/churn.git",
                        "commit": "def",
                        "path": "train.py",
                    }
                ],
            },
        },
        base="v1",
    )
    env = api('mutation { createServingEnvironment(input: {name: "prod"}) { id } }')[
        "createServingEnvironment"
    ]["id"]
    service = """mutation($input: InferenceServiceInput!) {
        createInferenceService(input: $input) { id } }"""
    api_service = api(
        service,
        {
            "input": {
                "environmentId": env,
                "name": "churn-api",
                "runtime": "kserve",
                "url": "https://churn.prod/v1/predict",
                "modelVersionId": second["version"]["id"],
            }
        },
    )["createInferenceService"]["id"]
    shadow = api(
        service,
        {
            "input": {
                "environmentId": env,
                "name": "churn-shadow",
                "modelVersionId": first["version"]["id"],
            }
        },
    )["createInferenceService"]["id"]
    api("mutation($id: ID!) { undeployInferenceService(id: $id) { id } }", {"id": shadow})
    return Scenario(
        raw=raw,
        clean=clean,
        labels=labels,
        v1=first["version"]["id"],
        v2=second["version"]["id"],
        run1=first["trainingRun"]["id"],
        run2=second["trainingRun"]["id"],
        env=env,
        api_service=api_service,
        shadow_service=shadow,
    )

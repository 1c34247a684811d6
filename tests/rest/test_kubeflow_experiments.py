"""Experiments and runs through the official client's last v1alpha3 release (0.3.9), in a
subprocess with that release first on its path (it cannot share a venv with 0.3.18)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lineagehub.settings import Settings
from tests.conftest import Api, ThreadedServer, make_token

CLIENT_VERSION = "0.3.9"
SCRIPT = Path(__file__).parent / "clients" / "experiments_v1alpha3.py"


@pytest.fixture(scope="session")
def old_client() -> Path:
    """model-registry 0.3.9 in its own directory beside the venv (installed once)."""
    target = Path(sys.prefix) / f"kubeflow-model-registry-{CLIENT_VERSION}"
    if not (target / "model_registry").is_dir():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--target",
                str(target),
                f"model-registry=={CLIENT_VERSION}",
            ],
            check=True,
        )
    return target


def test_experiment_runs_with_params_metrics_and_datasets(
    old_client: Path, server: ThreadedServer, settings: Settings, db: Any, as_role: Any
) -> None:
    _, secret = make_token(settings, "kubeflow-0.3.9", ["reader", "writer"])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(old_client), os.getcwd()])}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(server.port), secret],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["experiments"] == ["churn"]
    assert sorted(seen["runs"]) == sorted(seen["expectedRuns"])
    assert seen["logs"] == [
        {
            "type": "DataSet",
            "name": "train",
            "uri": "s3://data/churn/train.parquet",
            "sourceType": "s3",
        },
        {"type": "Metric", "name": "loss", "value": 0.3, "step": 2},
        {"type": "Parameter", "name": "early_stop", "value": True, "parameterType": "boolean"},
        {"type": "Parameter", "name": "learning_rate", "value": 0.01, "parameterType": "number"},
        {"type": "Parameter", "name": "optimizer", "value": "adam", "parameterType": "string"},
    ]

    # GraphQL sees the same run: typed params, the metric history, and the dataset as lineage.
    graph: Api = as_role("reader")
    rows = db.execute_query(
        "MATCH (r:ExperimentRun {restId: $rid}) RETURN r.id AS id", {"rid": int(seen["runId"])}
    ).records
    run_id = rows[0]["id"]
    data = graph(
        """query($id: ID!) {
          experimentRun(id: $id) {
            name restId
            params { key type value }
            metrics { key value step history { value step } }
            lineage(direction: UPSTREAM) { nodes { node { __typename ... on Dataset { uri } } } }
          }
        }""",
        {"id": run_id},
    )
    run = data["experimentRun"]
    assert run["name"] == seen["runName"]
    assert {p["key"]: p["value"] for p in run["params"]} == {
        "early_stop": True,
        "learning_rate": 0.01,
        "optimizer": "adam",
    }
    # The 0.3.9 client keeps the last logged value of each metric and sends that one.
    assert run["metrics"][0]["history"] == [{"value": 0.3, "step": 2}]
    nodes = [n["node"] for n in run["lineage"]["nodes"]]
    datasets = [n for n in nodes if n["__typename"] == "Dataset"]
    assert datasets == [{"__typename": "Dataset", "uri": "s3://data/churn/train.parquet"}]

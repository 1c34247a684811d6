"""Run by tests/rest/test_kubeflow_experiments.py with model-registry 0.3.9 (the last client
release speaking v1alpha3 with experiments) first on sys.path; prints what it saw as JSON.

Usage: python experiments_v1alpha3.py PORT TOKEN
"""

from __future__ import annotations

import json
import sys

from model_registry import ModelRegistry
from model_registry.types import DataSet, Metric, Parameter


def main() -> None:
    port, token = int(sys.argv[1]), sys.argv[2]
    registry = ModelRegistry(
        "http://127.0.0.1", port, author="grace", is_secure=False, user_token=token
    )
    # 0.3.9 only looks a named run up (and with the experiment's id), so let it name runs.
    with registry.start_experiment_run(
        experiment_name="churn", owner="grace", description="churn models"
    ) as run:
        run.log_param("learning_rate", 0.01)
        run.log_param("optimizer", "adam")
        run.log_param("early_stop", True)
        for step, loss in enumerate([0.9, 0.5, 0.3]):
            run.log_metric("loss", loss, step=step, timestamp=str(1_700_000_000_000 + step))
        run.log_dataset(
            name="train", uri="s3://data/churn/train.parquet", source_type="s3", source="lake"
        )
        run_id, run_name = run.info.id, run.info.name
    with registry.start_experiment_run(experiment_name="churn") as run:
        run.log_metric("loss", 0.2)
        other = run.info.name
    experiments = [e.name for e in registry.get_experiments()]
    runs = [r.name for r in registry.get_experiment_runs(experiment_name="churn")]
    logs = registry.get_experiment_run_logs(run_id=run_id)
    seen = []
    for log in logs:
        entry: dict[str, object] = {"type": type(log).__name__, "name": log.name}
        if isinstance(log, Metric):
            entry.update(value=log.value, step=log.step)
        elif isinstance(log, Parameter):
            entry.update(value=log.value, parameterType=str(log.parameter_type.value))
        elif isinstance(log, DataSet):
            entry.update(uri=log.uri, sourceType=log.source_type)
        seen.append(entry)
    print(
        json.dumps(
            {
                "experiments": experiments,
                "runs": runs,
                "expectedRuns": [run_name, other],
                "runId": run_id,
                "runName": run_name,
                "logs": sorted(seen, key=lambda e: (str(e["type"]), str(e["name"]))),
            }
        )
    )


if __name__ == "__main__":
    main()

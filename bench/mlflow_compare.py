"""The same registry operations on lineagehub and on MLflow's model registry.

    python -m bench.mlflow_compare --neo4j-uri bolt://127.0.0.1:17687 [--api-url URL]

Starts ``mlflow server`` (SQLite backend store, one worker, loopback, a free port; its
background job runner off) and, unless given one, a lineagehub server. Both get the same
data: ``--models`` models with ``--versions`` versions each; every version trained by a
run with 5 params, 3 metrics of 5 steps and 2 input datasets, and tagged with a stage.

- register: lineagehub ``registerModel`` (one call: version, artifact, run, params,
  metrics, inputs) vs MLflow ``create_run``, ``log_batch``, ``log_inputs``,
  ``set_terminated``, ``create_model_version``;
- version -> training datasets: ``modelVersion { trainingDatasets }`` vs
  ``get_model_version``, ``get_run`` and ``run.inputs.dataset_inputs``;
- versions of a model with a stage: ``registeredModel { versions(filter) }`` vs
  ``search_model_versions("name=... AND tags.stage=...")``.

Both sides go through the same HTTP library, requests, with a keep-alive session:
lineagehub's GraphQL requests are plain ``requests`` posts, MLflow's are MlflowClient's
(which uses requests). The HTTP calls each operation made are counted on the MLflow side.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from bench.common import RESULTS, ApiServer, add_neo4j_args, free_port, say, wait_ready
from bench.report import Latency, Row, Table, save

STAGES = ("candidate", "staging", "production", "archived")
REGISTER = """
mutation Register($input: RegisterModelInput!) {
  registerModel(input: $input) { versionCreated version { id name } }
}
"""
CREATE_MODEL = (
    "mutation($input: RegisteredModelInput!) { createRegisteredModel(input: $input) { id } }"
)
DATASETS = """
query Datasets($model: String!, $name: String!) {
  modelVersion(model: $model, name: $name) {
    trainingDatasets(transitive: false) { name uri digest }
  }
}
"""
LIST = """
query Staged($model: String!, $stage: JSON!) {
  registeredModel(name: $model) {
    versions(filter: {customProperties: [{key: "stage", eq: $stage}]}, first: 100) {
      nodes { name }
    }
  }
}
"""


def mlflow_module(name: str) -> Any:
    """An MLflow module, imported at run time: MLflow is an optional dependency (the
    ``bench`` extra), and its types stay out of this project's type checking."""
    return importlib.import_module(name)


class MlflowServer:
    """``mlflow server`` with a SQLite backend store in ``workdir``, in its own process
    group (it starts children), stopped as a group."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> MlflowServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / "mlflow-server.log", "ab")
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        self.process = subprocess.Popen(  # noqa: S603 - fixed argv
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--backend-store-uri",
                f"sqlite:///{self.workdir / 'mlflow.db'}",
                "--default-artifact-root",
                str(self.workdir / "artifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
            ],
            cwd=self.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        try:
            wait_ready(f"{self.url}/health", self.process, timeout=120)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        # Its workers share the group: make sure none outlives it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process = None

    def __exit__(self, *exc: object) -> None:
        self.stop()


class HttpCalls:
    """Counts the HTTP requests ``requests`` sends (MlflowClient's transport)."""

    count = 0

    @classmethod
    @contextlib.contextmanager
    def counting(cls) -> Iterator[None]:
        adapter = mlflow_module("requests.adapters").HTTPAdapter
        original = adapter.send

        def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            if "/graphql" not in request.url:  # lineagehub's calls go through requests too
                cls.count += 1
            return original(self, request, *args, **kwargs)

        adapter.send = send
        try:
            yield
        finally:
            adapter.send = original


def version_data(tag: str, m: int, v: int) -> dict[str, Any]:
    """The facts of version v of model m, the same for both registries."""
    return {
        "model": f"cmp-{tag}-model-{m}",
        "experiment": f"cmp-{tag}-training-{m}",
        "version": str(v + 1),
        "stage": STAGES[(m + v) % len(STAGES)],
        "uri": f"s3://models/cmp-{tag}-model-{m}/{v + 1}/model.onnx",
        "params": {
            "learning_rate": 0.001 * (v + 1),
            "batch_size": 64,
            "optimizer": "adam",
            "epochs": 10 + v,
            "seed": m,
        },
        "metrics": {k: [0.5 + 0.05 * s for s in range(5)] for k in ("loss", "accuracy", "val_auc")},
        "datasets": [
            (f"events-{m}", f"s3://lake/cmp-{tag}/events-{m}", f"d-{m}"),
            (f"labels-{m}-{v}", f"s3://lake/cmp-{tag}/labels-{m}-{v}", f"d-{m}-{v}"),
        ],
    }


def lineagehub_input(d: dict[str, Any]) -> dict[str, Any]:
    def typed(value: Any) -> dict[str, Any]:
        kind = (
            "floatValue"
            if isinstance(value, float)
            else "intValue"
            if isinstance(value, int)
            else "stringValue"
        )
        return {kind: value}

    return {
        "model": {"name": d["model"]},
        "version": {
            "name": d["version"],
            "customProperties": [{"key": "stage", "stringValue": d["stage"]}],
        },
        "artifact": {"uri": d["uri"], "modelFormatName": "onnx"},
        "trainingRun": {
            "experiment": d["experiment"],
            "name": f"run-{d['version']}",
            "status": "FINISHED",
            "params": [{"key": k, **typed(v)} for k, v in d["params"].items()],
            "metrics": [
                {"key": k, "value": value, "step": step}
                for k, values in d["metrics"].items()
                for step, value in enumerate(values)
            ],
            "inputs": {
                "datasets": [
                    {"name": n, "uri": u, "digest": g, "sourceType": "s3"}
                    for n, u, g in d["datasets"]
                ]
            },
        },
    }


class Lineagehub:
    def __init__(self, url: str) -> None:
        self.url = f"{url}/graphql"
        self.http = mlflow_module("requests").Session()

    def call(self, query: str, variables: dict[str, Any]) -> tuple[Any, int]:
        body = self.http.post(
            self.url, json={"query": query, "variables": variables}, timeout=60
        ).json()
        if body.get("errors"):
            raise RuntimeError(body["errors"])
        return body["data"], body["extensions"]["boltRoundTrips"]

    def close(self) -> None:
        self.http.close()


class Mlflow:
    def __init__(self, url: str) -> None:
        # MlflowClient prints a "View run" URL per run and logs each version's creation:
        # keep the bench's output to its tables.
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        tracking = mlflow_module("mlflow.tracking")
        logging.getLogger("mlflow").setLevel(logging.WARNING)  # after MLflow set up its own
        self.entities = mlflow_module("mlflow.entities")
        self.client = tracking.MlflowClient(tracking_uri=url, registry_uri=url)
        self.experiments: dict[str, str] = {}

    def prepare(self, d: dict[str, Any]) -> None:
        if d["experiment"] not in self.experiments:
            self.experiments[d["experiment"]] = self.client.create_experiment(d["experiment"])
            self.client.create_registered_model(d["model"])

    def register(self, d: dict[str, Any]) -> None:
        e = self.entities
        now = int(time.time() * 1000)
        run = self.client.create_run(
            self.experiments[d["experiment"]], run_name=f"run-{d['version']}"
        )
        run_id = run.info.run_id
        self.client.log_batch(
            run_id,
            params=[e.Param(k, str(v)) for k, v in d["params"].items()],
            metrics=[
                e.Metric(k, value, now, step)
                for k, values in d["metrics"].items()
                for step, value in enumerate(values)
            ],
        )
        self.client.log_inputs(
            run_id,
            datasets=[
                e.DatasetInput(
                    e.Dataset(name=n, digest=g, source_type="s3", source=u),
                    tags=[e.InputTag("mlflow.data.context", "training")],
                )
                for n, u, g in d["datasets"]
            ],
        )
        self.client.set_terminated(run_id)
        self.client.create_model_version(
            d["model"], source=d["uri"], run_id=run_id, tags={"stage": d["stage"]}
        )

    def training_datasets(self, model: str, version: str) -> list[tuple[str, str]]:
        mv = self.client.get_model_version(model, version)
        run = self.client.get_run(mv.run_id)
        return sorted((i.dataset.name, i.dataset.digest) for i in run.inputs.dataset_inputs)

    def staged(self, model: str, stage: str) -> list[str]:
        found = self.client.search_model_versions(f"name='{model}' AND tags.stage='{stage}'")
        return sorted(v.version for v in found)


BLOCK = 20


def blocks(iterations: int) -> list[range]:
    """The iterations in blocks of ``BLOCK``: each block runs on one side, then the same
    requests on the other. Back-to-back requests to one server keep it warm (as a client
    using it would); alternating every request made each side pay for the other's
    wake-up on two shared cores. Blocks still spread drifts over both sides alike."""
    return [range(i, min(i + BLOCK, iterations)) for i in range(0, iterations, BLOCK)]


def timed(work: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    result = work()
    return time.perf_counter() - began, result


def read_row(
    operation: str,
    size: str,
    iterations: int,
    ours: Callable[[int], tuple[Any, int]],
    theirs: Callable[[int], Any],
    shown: Callable[[Any], Any],
    items: int,
) -> Row:
    """One read, timed on both sides in ``blocks``: ``ours(i)`` (lineagehub's answer and
    Bolt queries), ``theirs(i)`` (MLflow's answer, to equal ``shown`` of ours) for item
    ``i % items``."""
    times_l: list[float] = []
    times_m: list[float] = []
    trips_l = 0
    calls_before = HttpCalls.count
    for block in blocks(iterations):
        answers = []
        for i in block:
            seconds, (answer, trips) = timed(partial(ours, i % items))
            times_l.append(seconds)
            trips_l = max(trips_l, trips)
            answers.append(answer)
        for i, answer in zip(block, answers, strict=True):
            seconds, found = timed(partial(theirs, i % items))
            times_m.append(seconds)
            if shown(answer) != found or not found:
                raise AssertionError(f"{operation}: {shown(answer)} vs {found}")
    calls = (HttpCalls.count - calls_before) / iterations
    return Row(operation, size, Latency.of(times_l, trips_l), Latency.of(times_m, calls, "http"))


def compare(api_url: str, mlflow_url: str, *, models: int, versions: int, iterations: int) -> Table:
    tag = f"{os.getpid()}-{int(time.time())}"
    lhub, mlf = Lineagehub(api_url), Mlflow(mlflow_url)
    data = [version_data(tag, m, v) for m in range(models) for v in range(versions)]
    table = Table(
        f"lineagehub vs MLflow registry ({models} models x {versions} versions)", "MLflow (SQLite)"
    )
    try:
        for d in data:  # models and experiments exist before the timed registrations
            if d["version"] == "1":
                lhub.call(CREATE_MODEL, {"input": {"name": d["model"]}})
            mlf.prepare(d)
        reg_l, reg_m, trips_l = [], [], 0
        with HttpCalls.counting():
            calls_before = HttpCalls.count
            for d in data:
                seconds, (_, trips) = timed(
                    partial(lhub.call, REGISTER, {"input": lineagehub_input(d)})
                )
                reg_l.append(seconds)
                trips_l = max(trips_l, trips)
                seconds, _ = timed(partial(mlf.register, d))
                reg_m.append(seconds)
            reg_calls = (HttpCalls.count - calls_before) / len(data)
            table.rows.append(
                Row(
                    "register version + run + params, metrics, 2 datasets",
                    f"{len(data)} versions",
                    Latency.of(reg_l, trips_l),
                    Latency.of(reg_m, reg_calls, "http"),
                )
            )

            def datasets_of(answer: Any) -> list[tuple[str, str]]:
                found = answer["modelVersion"]["trainingDatasets"]
                return sorted((x["name"], x["digest"]) for x in found)

            table.rows.append(
                read_row(
                    "version -> its training datasets",
                    "2 datasets",
                    iterations,
                    lambda i: lhub.call(
                        DATASETS, {"model": data[i]["model"], "name": data[i]["version"]}
                    ),
                    lambda i: mlf.training_datasets(data[i]["model"], data[i]["version"]),
                    datasets_of,
                    len(data),
                )
            )
            table.rows.append(
                read_row(
                    "versions of a model with stage = X",
                    f"{versions} versions",
                    iterations,
                    lambda i: lhub.call(
                        LIST, {"model": data[i]["model"], "stage": data[i]["stage"]}
                    ),
                    lambda i: mlf.staged(data[i]["model"], data[i]["stage"]),
                    lambda answer: sorted(
                        n["name"] for n in answer["registeredModel"]["versions"]["nodes"]
                    ),
                    len(data),
                )
            )
    finally:
        lhub.close()
    table.notes = [
        "lineagehub: one HTTP request per operation (trips = its Bolt queries); MLflow: the "
        "HTTP calls MlflowClient made (trips), to a server with a SQLite store.",
        "Same data on both sides; answers compared on every fetch and listing. lineagehub's "
        "Neo4j also holds the generated graph; MLflow's database holds only this data.",
    ]
    return table


def run(
    uri: str,
    *,
    database: str = "neo4j",
    api_url: str | None = None,
    models: int = 10,
    versions: int = 20,
    iterations: int = 200,
    workdir: Path | None = None,
) -> list[Table]:
    where = workdir or Path(tempfile.mkdtemp(prefix="bench-mlflow-"))
    mlflow_dir = Path(tempfile.mkdtemp(prefix="mlflow-", dir=where if where.exists() else None))
    with contextlib.ExitStack() as stack:
        if api_url is None:
            api_url = stack.enter_context(ApiServer(uri, where, database=database)).url
        mlflow_url = stack.enter_context(MlflowServer(mlflow_dir)).url
        say(f"mlflow server at {mlflow_url} (store: {mlflow_dir})")
        table = compare(
            api_url, mlflow_url, models=models, versions=versions, iterations=iterations
        )
    return [table]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mlflow_compare", description=__doc__)
    add_neo4j_args(parser)
    parser.add_argument("--api-url", help="a running lineagehub (default: start one)")
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--versions", type=int, default=20, help="per model")
    parser.add_argument("--iterations", type=int, default=200, help="fetches and listings")
    parser.add_argument("--json", type=Path, help="also write the tables as JSON here")
    args = parser.parse_args(argv)
    if args.versions > 100:
        parser.error("--versions is at most 100 (the listing asks for one page of 100)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    tables = run(
        args.neo4j_uri,
        database=args.database,
        api_url=args.api_url,
        models=args.models,
        versions=args.versions,
        iterations=args.iterations,
        workdir=RESULTS / "work",
    )
    for table in tables:
        print(table.render())
    save(tables, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

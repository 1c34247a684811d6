"""Property maps of the planned registry, exactly as lineagehub stores them.

A node row is ``{"p": properties, "t": {name: epoch ms | [epoch ms]}}``: the loader sets
``p`` as is and turns each ``t`` entry into a Neo4j datetime. A relationship row is
``{"a": from id, "b": to id, "s": since ms, "u": until ms or None}``. Property names and
encodings follow lineagehub.graph: ``cp.<key>`` custom properties, ``param.<key>`` typed
params, ``metric.<key>`` (latest) with ``metricValues.`` / ``metricSteps.`` /
``metricTimes.`` histories, ``datasetKey`` / ``codeKey`` natural keys, artifacts' ``kind``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from typing import Any

from bench.plan import DOMAINS, FORMATS, PEOPLE, STAGES, Registry
from lineagehub.graph.datasets import dataset_key

Row = dict[str, Any]
RowMaker = Callable[[Registry, int, random.Random], Row]

METRIC_KEYS = ("loss", "val_loss", "accuracy", "val_auc", "f1")
# Datetime properties besides createdAt/updatedAt, per label.
TEMPORAL: dict[str, tuple[str, ...]] = {
    "ExperimentRun": ("startTime", "endTime"),
    "Deployment": ("stateAt",),
}
TEMPORAL_LISTS: dict[str, tuple[str, ...]] = {
    "ExperimentRun": tuple(f"metricTimes.{k}" for k in METRIC_KEYS)
}
# Labels a node carries besides :Node and its own.
EXTRA_LABELS: dict[str, tuple[str, ...]] = {
    "ModelArtifact": ("Artifact",),
    "DocArtifact": ("Artifact",),
}


def _hex(rng: random.Random, n: int) -> str:
    return f"{rng.getrandbits(4 * n):0{n}x}"


def _t(created: int, updated: int | None = None, **more: Any) -> dict[str, Any]:
    return {"createdAt": created, "updatedAt": created if updated is None else updated, **more}


def project_of_model(m: int) -> str:
    """Models belong to projects (lineagehub's scoping unit); their versions, artifacts,
    experiments, runs and services with them. Data, code and environments are shared."""
    return DOMAINS[m % len(DOMAINS)]


def _model(reg: Registry, m: int, rng: random.Random) -> Row:
    name = reg.model_name(m)
    last = reg.model_first[m] + reg.model_count[m] - 1
    return {
        "p": {
            "name": name,
            "project": project_of_model(m),
            "description": f"{DOMAINS[m % len(DOMAINS)]} model {m}",
            "owner": rng.choice(PEOPLE),
            "task": name.split("-")[1],
            "license": rng.choice(("apache-2.0", "mit", "proprietary")),
            "tags": rng.sample(("tabular", "nlp", "vision", "realtime", "batch"), 2),
            # what registerModel numbers unnamed versions from
            "versionSeq": reg.model_count[m],
        },
        "t": _t(reg.times["RegisteredModel"][m], reg.times["ModelVersion"][last]),
    }


def _version(reg: Registry, v: int, rng: random.Random) -> Row:
    m = reg.ver_model[v]
    latest = reg.ver_seq[v] == reg.model_count[m]
    stage = "production" if latest else rng.choice(("archived", "candidate", "staging"))
    return {
        "p": {
            "name": str(reg.ver_seq[v]),
            "modelId": reg.ids["RegisteredModel"][m],
            "project": project_of_model(m),
            "approvalStatus": "NONE",
            "author": rng.choice(PEOPLE),
            "cp.accuracy": round(rng.uniform(0.6, 0.99), 4),
            "cp.stage": stage,
        },
        "t": _t(reg.times["ModelVersion"][v]),
    }


def _model_artifact(reg: Registry, v: int, rng: random.Random) -> Row:
    model, version = reg.version_key(v)
    fmt, fmt_version = rng.choice(FORMATS)
    return {
        "p": {
            "name": "model",
            "kind": "ModelArtifact",
            "project": project_of_model(reg.ver_model[v]),
            "versionId": reg.ids["ModelVersion"][v],
            "uri": f"s3://models/{model}/{version}/model.{fmt}",
            "modelFormatName": fmt,
            "modelFormatVersion": fmt_version,
            "storageKey": "s3-models",
            "digest": f"sha256:{_hex(rng, 64)}",
            "sizeBytes": rng.randrange(1 << 20, 1 << 32),
        },
        "t": _t(reg.times["ModelArtifact"][v]),
    }


def _doc_artifact(reg: Registry, j: int, rng: random.Random) -> Row:
    v = reg.doc_version[j]
    model, version = reg.version_key(v)
    return {
        "p": {
            "name": "model-card",
            "kind": "DocArtifact",
            "project": project_of_model(reg.ver_model[v]),
            "versionId": reg.ids["ModelVersion"][v],
            "uri": f"s3://models/{model}/{version}/MODEL_CARD.md",
        },
        "t": _t(reg.times["DocArtifact"][j]),
    }


def _dataset(reg: Registry, i: int, rng: random.Random) -> Row:
    uri = reg.dataset_uri(i)
    digest = f"sha256:{_hex(rng, 16)}"
    props: dict[str, Any] = {
        "name": f"{reg.family_name(reg.ds_family[i])}-{STAGES[reg.ds_stage[i]]}",
        "uri": uri,
        "digest": digest,
        "datasetKey": dataset_key(uri, digest),
        "sourceType": "s3",
        "source": "lake",
    }
    if reg.ds_stage[i] == 0:
        props["schemaJson"] = json.dumps(
            {"columns": [{"name": f"c{k}", "type": "double"} for k in range(rng.randint(3, 12))]}
        )
    return {"p": props, "t": _t(reg.times["Dataset"][i])}


def _repository(reg: Registry, i: int) -> tuple[str, str]:
    repos = max(1, reg.counts.code_refs // 8)
    repo = i % repos
    project = f"{DOMAINS[repo % len(DOMAINS)]}-models-{repo:04d}"
    return f"https://git.example/{DOMAINS[repo % len(DOMAINS)]}/{project}.git", project


def _code_ref(reg: Registry, i: int, rng: random.Random) -> Row:
    repository, project = _repository(reg, i)
    commit = _hex(rng, 40)
    path = rng.choice(("train.py", "pipelines/prep.py", "src/train.py"))
    return {
        "p": {
            "name": project,
            "repository": repository,
            "commit": commit,
            "path": path,
            "codeKey": json.dumps([repository, commit, path, None, None]),
        },
        "t": _t(reg.times["CodeRef"][i]),
    }


def _experiment(reg: Registry, x: int, rng: random.Random) -> Row:
    models = reg.counts.models
    name = f"{reg.model_name(x)}-training" if x < models else f"data-prep-{x - models:04d}"
    props: dict[str, Any] = {"name": name, "owner": rng.choice(PEOPLE), "runSeq": reg.exp_runs[x]}
    if x < models:
        props["project"] = project_of_model(x)
    return {
        "p": props,
        "t": _t(reg.times["Experiment"][x]),
    }


def _metrics(rng: random.Random, keys: list[str], points: int, start: int) -> Row:
    """Latest values and histories of ``keys``, each logged at ``points`` steps."""
    props: dict[str, Any] = {}
    times: dict[str, Any] = {}
    for key in keys:
        level = rng.uniform(0.5, 0.9)
        values = [
            round(level + (1 - level) * step / points + rng.gauss(0, 0.01), 5)
            for step in range(points)
        ]
        if "loss" in key:
            values = [round(max(0.0, 1 - v), 5) for v in values]
        steps = [step * 100 for step in range(points)]
        props[f"metric.{key}"] = values[-1]  # the highest step is the latest
        props[f"metricValues.{key}"] = values
        props[f"metricSteps.{key}"] = steps
        times[f"metricTimes.{key}"] = [start + 60_000 * (step + 1) for step in range(points)]
    return {"p": props, "t": times}


def _run(reg: Registry, r: int, rng: random.Random) -> Row:
    c = reg.counts
    start, end = reg.times["ExperimentRun"][r], reg.run_end[r]
    kind = "train" if r < c.versions else "prep" if r < c.versions + len(reg.prep_target) else ""
    status = (
        "FINISHED"
        if kind
        else rng.choices(("FINISHED", "FAILED", "KILLED"), weights=(70, 20, 10))[0]
    )
    props: dict[str, Any] = {
        "name": f"run-{reg.run_seq[r]}",
        "experimentId": reg.ids["Experiment"][reg.run_exp[r]],
        "status": status,
    }
    if reg.run_exp[r] < c.models:
        props["project"] = project_of_model(reg.run_exp[r])
    if rng.random() < 0.5:
        props["externalId"] = f"mlflow-{r:08x}{_hex(rng, 24)}"
    times = _t(start, end, startTime=start, endTime=end)
    if kind == "prep":
        props["param.sample_rate"] = round(rng.uniform(0.1, 1.0), 3)
        props["param.dedupe"] = rng.random() < 0.5
    else:
        props["param.learning_rate"] = rng.choice((1e-4, 3e-4, 1e-3, 3e-3))
        props["param.batch_size"] = rng.choice((32, 64, 128, 256))
        props["param.optimizer"] = rng.choice(("adam", "adamw", "sgd"))
        props["param.epochs"] = rng.randint(3, 50)
        props["param.early_stopping"] = rng.random() < 0.5
        keys = rng.sample(METRIC_KEYS, 3 if kind else rng.randint(1, 3))
        points = rng.randint(5, 20) if status == "FINISHED" else rng.randint(1, 4)
        metrics = _metrics(rng, keys, points, start)
        props.update(metrics["p"])
        times.update(metrics["t"])
    return {"p": props, "t": times}


def _environment(reg: Registry, e: int, rng: random.Random) -> Row:
    name = reg.env_names[e]
    return {
        "p": {"name": name, "description": f"{name.split('-')[0]} cluster"},
        "t": _t(reg.times["ServingEnvironment"][e]),
    }


def _service(reg: Registry, s: int, rng: random.Random) -> Row:
    svc = reg.services[s]
    env = reg.env_names[svc.env]
    props: dict[str, Any] = {
        "name": svc.name,
        "environmentId": reg.ids["ServingEnvironment"][svc.env],
        "project": project_of_model(svc.model),
        "runtime": rng.choice(("kserve", "seldon", "triton", "torchserve")),
        "url": f"https://{env}.serving.example/{svc.name}",
        "desiredState": "UNDEPLOYED" if svc.undeployed_at else "DEPLOYED",
        "deploySeq": svc.deploys,
    }
    if svc.undeployed_at is None:
        props["servedVersionId"] = reg.ids["ModelVersion"][svc.versions[-1]]
    updated = svc.undeployed_at or svc.times[-1]
    return {"p": props, "t": _t(reg.times["InferenceService"][s], updated)}


def _deployment(reg: Registry, d: int, rng: random.Random) -> Row:
    s = reg.dep_service[d]
    svc = reg.services[s]
    k = d - svc.first_deployment
    last = k == svc.deploys - 1
    state = (
        rng.choices(("READY", "FAILED", "PENDING"), weights=(85, 10, 5))[0] if last else ("STOPPED")
    )
    at = svc.times[k] if last else svc.times[k + 1]
    return {
        "p": {
            "name": f"deploy-{k + 1}",
            "serviceId": reg.ids["InferenceService"][s],
            "versionId": reg.ids["ModelVersion"][svc.versions[k]],
            "deploymentState": state,
            "actor": rng.choice(PEOPLE),
        },
        "t": _t(svc.times[k], at, stateAt=at),
    }


def _monitor(reg: Registry, k: int, rng: random.Random) -> Row:
    kind, i = reg.monitor_targets[k]
    if kind == "svc":
        target = reg.ids["InferenceService"][i]
        props = {
            "name": "dashboard",
            "url": f"https://grafana.example/d/{reg.services[i].name}",
            "tool": "grafana",
            "kind": "DASHBOARD",
        }
    else:
        target = reg.ids["ModelVersion"][i]
        model, version = reg.version_key(i)
        props = {
            "name": "drift-baseline",
            "url": f"https://evidently.example/{model}/{version}",
            "tool": "evidently",
            "kind": "DRIFT_BASELINE",
        }
    return {"p": {**props, "targetId": target}, "t": _t(reg.times["MonitoringLink"][k])}


ROW_MAKERS: dict[str, RowMaker] = {
    "RegisteredModel": _model,
    "ModelVersion": _version,
    "ModelArtifact": _model_artifact,
    "DocArtifact": _doc_artifact,
    "Dataset": _dataset,
    "CodeRef": _code_ref,
    "Experiment": _experiment,
    "ExperimentRun": _run,
    "ServingEnvironment": _environment,
    "InferenceService": _service,
    "Deployment": _deployment,
    "MonitoringLink": _monitor,
}


def node_rows(reg: Registry, label: str, first_rest_id: int = 1) -> Iterator[Row]:
    """The rows of every ``label`` node, in index order (deterministic for the seed); REST
    ids (the Kubeflow edge's numbers) run on from ``first_rest_id``."""
    rng = random.Random(f"lineagehub-bench:{reg.seed}:props:{label}")
    make = ROW_MAKERS[label]
    for i, node_id in enumerate(reg.ids[label]):
        row = make(reg, i, rng)
        row["p"]["id"] = node_id
        row["p"]["state"] = "LIVE"
        row["p"]["restId"] = first_rest_id + i
        yield row


def _edge(a: str, b: str, since: int, until: int | None = None) -> Row:
    return {"a": a, "b": b, "s": since, "u": until}


def rel_rows(reg: Registry, edge_type: str) -> Iterator[Row]:
    """The rows of every ``edge_type`` relationship (since = when the later end appeared)."""
    ids, times, c = reg.ids, reg.times, reg.counts
    if edge_type == "HAS_VERSION":
        for v, m in enumerate(reg.ver_model):
            yield _edge(ids["RegisteredModel"][m], ids["ModelVersion"][v], times["ModelVersion"][v])
    elif edge_type == "HAS_ARTIFACT":
        for v, artifact in enumerate(ids["ModelArtifact"]):
            yield _edge(ids["ModelVersion"][v], artifact, times["ModelArtifact"][v])
        for j, v in enumerate(reg.doc_version):
            yield _edge(ids["ModelVersion"][v], ids["DocArtifact"][j], times["DocArtifact"][j])
    elif edge_type == "INPUT_TO":
        for r, inputs in enumerate(reg.run_inputs):
            run, start = ids["ExperimentRun"][r], times["ExperimentRun"][r]
            for i in inputs:
                yield _edge(ids["Dataset"][i], run, start)
            if reg.run_code[r] >= 0:
                yield _edge(ids["CodeRef"][reg.run_code[r]], run, start)
    elif edge_type == "PRODUCED":
        for v in range(c.versions):
            yield _edge(ids["ExperimentRun"][v], ids["ModelVersion"][v], times["ModelVersion"][v])
        for p, target in enumerate(reg.prep_target):
            run = ids["ExperimentRun"][c.versions + p]
            yield _edge(run, ids["Dataset"][target], times["Dataset"][target])
    elif edge_type == "PART_OF":
        for r, x in enumerate(reg.run_exp):
            yield _edge(ids["ExperimentRun"][r], ids["Experiment"][x], times["ExperimentRun"][r])
    elif edge_type == "DERIVED_FROM":
        for i, stage in enumerate(reg.ds_stage):
            if stage > 0:
                yield _edge(ids["Dataset"][i], ids["Dataset"][i - 1], times["Dataset"][i])
            if i in reg.ds_join:
                yield _edge(ids["Dataset"][i], ids["Dataset"][reg.ds_join[i]], times["Dataset"][i])
        for v, base in reg.ver_base.items():
            yield _edge(ids["ModelVersion"][v], ids["ModelVersion"][base], times["ModelVersion"][v])
    elif edge_type == "SERVES":
        for s, svc in enumerate(reg.services):
            for v, since, until in svc.segments():
                yield _edge(ids["InferenceService"][s], ids["ModelVersion"][v], since, until)
    elif edge_type == "IN":
        for s, svc in enumerate(reg.services):
            yield _edge(
                ids["InferenceService"][s],
                ids["ServingEnvironment"][svc.env],
                times["InferenceService"][s],
            )
    elif edge_type == "HAS_DEPLOYMENT":
        for d, s in enumerate(reg.dep_service):
            yield _edge(ids["InferenceService"][s], ids["Deployment"][d], times["Deployment"][d])
    elif edge_type == "MONITORS":
        for k, (kind, i) in enumerate(reg.monitor_targets):
            watched = ids["InferenceService" if kind == "svc" else "ModelVersion"][i]
            yield _edge(ids["MonitoringLink"][k], watched, times["MonitoringLink"][k])
    else:
        raise ValueError(f"unknown edge type {edge_type!r}")

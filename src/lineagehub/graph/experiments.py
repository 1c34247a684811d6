"""Experiments and their runs: typed params, metrics with history, inputs and outputs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import Field, model_validator

from lineagehub.graph import links
from lineagehub.graph.commands import Command
from lineagehub.graph.datasets import (
    CodeRefFields,
    DatasetFields,
    DatasetRef,
    ensure_codes,
    ensure_datasets,
    resolve_datasets,
)
from lineagehub.graph.entities import (
    EntityCreate,
    EntityUpdate,
    Name,
    ShortText,
    check_unique,
    create_keys,
    lock,
    new_node,
    now,
)
from lineagehub.graph.errors import Conflict
from lineagehub.graph.identity import check_project, in_scope, scope_params
from lineagehub.graph.listing import ListSpec, Sort
from lineagehub.graph.models import Project
from lineagehub.graph.properties import (
    HISTORY_STEPS,
    HISTORY_TIMES,
    HISTORY_VALUES,
    METRIC_PREFIX,
    PARAM_PREFIX,
    CustomPropertyIn,
    PropertyKey,
    decode,
    encode,
)
from lineagehub.graph.records import Experiment, ExperimentRun, RunStatus
from lineagehub.graph.store import Store, Tx

MAX_PARAMS = 500
MAX_METRIC_POINTS = 10_000


class ExperimentFields(EntityCreate):
    owner: ShortText | None = None
    project: Project | None = None


class ExperimentUpdate(EntityUpdate):
    owner: ShortText | None = None


class MetricIn(Command):
    """One logged value; ``step`` defaults to 0 and ``timestamp`` to now."""

    key: PropertyKey
    value: float
    step: int = Field(default=0, ge=0, le=2**63 - 1)
    timestamp: datetime | None = None


class RunInputs(Command):
    """What a run consumed: datasets (registered if new, or referenced) and code."""

    datasets: list[DatasetFields] = Field(default_factory=list, max_length=1000)
    dataset_refs: list[DatasetRef] = Field(default_factory=list, max_length=1000)
    code: list[CodeRefFields] = Field(default_factory=list, max_length=100)


class RunFields(EntityCreate):
    """A run. With an externalId (or a name) it is found again instead of duplicated."""

    name: Name | None = None  # type: ignore[assignment]
    owner: ShortText | None = None
    status: RunStatus = RunStatus.RUNNING
    start_time: datetime | None = None
    end_time: datetime | None = None
    params: list[CustomPropertyIn] = Field(default_factory=list, max_length=MAX_PARAMS)
    metrics: list[MetricIn] = Field(default_factory=list, max_length=MAX_METRIC_POINTS)
    inputs: RunInputs = Field(default_factory=RunInputs)

    @model_validator(mode="after")
    def _times(self) -> RunFields:
        if self.start_time and self.end_time and self.end_time < self.start_time:
            raise ValueError("endTime is before startTime")
        keys = [p.key for p in self.params]
        if len(keys) != len(set(keys)):
            raise ValueError("param keys must be unique")
        return self

    @classmethod
    def relations(cls) -> set[str]:
        return {"params", "metrics", "inputs", "status", "start_time", "end_time"}


class RunCreate(RunFields):
    experiment_id: str

    @classmethod
    def relations(cls) -> set[str]:
        return RunFields.relations() | {"experiment_id"}


class RunUpdate(EntityUpdate):
    status: RunStatus | None = None
    end_time: datetime | None = None
    owner: ShortText | None = None


EXPERIMENTS = ListSpec(
    label=Experiment.LABEL,
    match="MATCH (n:Experiment)",
    fields=Experiment.FIELDS,
    default_sort=(Sort("name"),),
    indexed=frozenset({"createdAt", "name"}),
)
RUNS_OF_EXPERIMENT = ListSpec(
    label=ExperimentRun.LABEL,
    parent_label=Experiment.LABEL,
    match="MATCH (n:ExperimentRun)-[:PART_OF]->(p)",
    fields=ExperimentRun.FIELDS,
)


async def ensure_experiment(
    tx: Tx, fields: ExperimentFields, *, path: str, lock: bool = True
) -> tuple[dict[str, Any], bool]:
    """The experiment named ``fields.name``, created if new; write-locked unless ``lock``
    is false (a new one is locked by its creation either way)."""
    check_project(fields.project, f"{path}.project")
    props = new_node(Experiment.LABEL, fields, now())
    row = await tx.single(
        "MERGE (n:Experiment {name: $props.name}) "
        "ON CREATE SET n = $props, n:Node "
        + ("SET n._lock = true REMOVE n._lock " if lock else "")
        + "RETURN n {.*} AS n, n.id = $props.id AS created",
        {"props": props},
    )
    assert row is not None
    check_project(row["n"].get("project"), f"{path}.experiment")
    if row["created"]:
        tx.touch(row["n"]["id"], None, row["n"])
    return row["n"], row["created"]


async def create_experiment(store: Store, fields: ExperimentFields) -> Experiment:
    check_project(fields.project, "input.project")

    async def work(tx: Tx) -> Experiment:
        props = new_node(Experiment.LABEL, fields, now())
        await check_unique(tx, create_keys(Experiment, props, "input"))
        row = await tx.single(
            "CREATE (n:Node:Experiment) SET n = $props RETURN n {.*} AS n", {"props": props}
        )
        tx.touch(props["id"], None, props)
        assert row is not None
        return Experiment.from_props(row["n"])

    return await store.write(work)


def _metric_changes(
    current: dict[str, Any], metrics: list[MetricIn], at: datetime
) -> dict[str, Any]:
    """History lists (and latest values) after appending ``metrics`` to a run's."""
    changes: dict[str, Any] = {}
    for metric in metrics:
        values = changes.get(
            HISTORY_VALUES + metric.key, current.get(HISTORY_VALUES + metric.key, [])
        )
        steps = changes.get(HISTORY_STEPS + metric.key, current.get(HISTORY_STEPS + metric.key, []))
        times = changes.get(HISTORY_TIMES + metric.key, current.get(HISTORY_TIMES + metric.key, []))
        if len(values) >= MAX_METRIC_POINTS:
            raise Conflict(
                f"metric {metric.key!r} already holds {MAX_METRIC_POINTS} points",
                field="input.metrics",
            )
        changes[HISTORY_VALUES + metric.key] = [*values, metric.value]
        changes[HISTORY_STEPS + metric.key] = [*steps, metric.step]
        changes[HISTORY_TIMES + metric.key] = [*times, metric.timestamp or at]
    for name in list(changes):
        if name.startswith(HISTORY_VALUES):
            key = name[len(HISTORY_VALUES) :]
            points = zip(
                changes[HISTORY_STEPS + key],
                changes[HISTORY_TIMES + key],
                changes[name],
                strict=True,
            )
            changes[METRIC_PREFIX + key] = max(points, key=lambda p: (p[0], p[1]))[2]
    return changes


def _param_changes(
    current: dict[str, Any], params: list[CustomPropertyIn], path: str
) -> dict[str, Any]:
    """New params; a param already logged with another value is a CONFLICT (params are facts)."""
    stored = {p.key: p for p in decode(current, prefix=PARAM_PREFIX)}
    fresh = []
    for i, param in enumerate(params):
        typed = param.typed()
        old = stored.get(typed.key)
        if old is None:
            fresh.append(param)
        elif (old.type, old.value) != (typed.type, typed.value):
            raise Conflict(
                f"param {typed.key!r} was logged as {old.value!r}; params cannot change",
                field=f"{path}.params[{i}]",
            )
    return encode(fresh, prefix=PARAM_PREFIX)


async def _link_inputs(
    tx: Tx, run_id: str, inputs: RunInputs, path: str, produced: Sequence[str] = ()
) -> None:
    """The run's inputs found or created and linked, with its ``produced`` outputs linked
    in the same query."""
    ids_ = [dataset.id for dataset, _ in await ensure_datasets(tx, inputs.datasets)]
    if inputs.dataset_refs:
        ids_ += await resolve_datasets(tx, inputs.dataset_refs, f"{path}.inputs.datasetRefs")
    ids_ += [code.id for code, _ in await ensure_codes(tx, inputs.code)]
    edges = [links.Link(i, "INPUT_TO", run_id, f"{path}.inputs") for i in ids_]
    edges += [links.Link(run_id, "PRODUCED", out, path) for out in produced]
    await links.add(tx, edges, now())


async def ensure_run(
    tx: Tx,
    fields: RunFields,
    experiment: dict[str, Any],
    *,
    path: str,
    produced: Sequence[str] = (),
) -> tuple[ExperimentRun, bool]:
    """Find the run (by externalId, else by name in the experiment) or create it; then log
    its params, metrics and inputs, and link what it ``produced`` (ids; errors name
    ``path``). Inside ``tx``; ``experiment`` is locked."""
    row = await tx.single(
        "OPTIONAL MATCH (byExt:ExperimentRun {externalId: $externalId}) "
        "OPTIONAL MATCH (byName:ExperimentRun {experimentId: $experimentId, name: $name}) "
        "WITH coalesce(byExt, byName) AS run "
        "RETURN run {.*} AS run",
        {"externalId": fields.external_id, "experimentId": experiment["id"], "name": fields.name},
    )
    existing = row["run"] if row else None
    stamp = now()
    if existing is not None:
        if existing["experimentId"] != experiment["id"]:
            raise Conflict(
                f"run {fields.external_id!r} belongs to another experiment",
                field=f"{path}.externalId",
            )
        props: dict[str, Any] = {}
        created = False
    else:
        name = fields.name or await next_run_name(tx, experiment["id"])
        props = new_node(ExperimentRun.LABEL, fields, stamp)
        props.update(
            name=name,
            project=experiment.get("project"),
            experimentId=experiment["id"],
            status=fields.status.value,
            startTime=fields.start_time or stamp,
        )
        if fields.end_time:
            props["endTime"] = fields.end_time
        if fields.name is None:
            # Both keys were looked up above when the name was given; a generated one
            # is checked.
            await check_unique(tx, create_keys(ExperimentRun, props, path))
        existing = props
        created = True
    props.update(_param_changes(existing, fields.params, path))
    props.update(_metric_changes(existing, fields.metrics, stamp))
    if created:
        query = (
            "MATCH (e:Node:Experiment {id: $experimentId}) "
            "CREATE (n:Node:ExperimentRun)-[:PART_OF {since: $at}]->(e) "
            "SET n = $props "
            "RETURN n {.*} AS n"
        )
        props = {k: v for k, v in props.items() if v is not None}
    else:
        query = (
            "MATCH (n:Node:ExperimentRun {id: $id}) "
            "SET n += $props, n.updatedAt = $at "
            "RETURN n {.*} AS n"
        )
    if created:
        tx.touch(props["id"], None, props)
    elif props:
        tx.touch(existing["id"], {k: existing.get(k) for k in props}, props)
    saved = await tx.single(
        query,
        {"experimentId": experiment["id"], "id": existing.get("id"), "props": props, "at": stamp},
    )
    assert saved is not None
    run = ExperimentRun.from_props(saved["n"])
    await _link_inputs(tx, run.id, fields.inputs, path, produced)
    from lineagehub.graph import runlogs  # it builds on this module

    await runlogs.mirror(tx, run.id, fields.params, fields.metrics, stamp, fresh=created)
    return run, created


# Cypher naming a new run of experiment ``e`` run-N: the counter moved on (which write-locks
# the experiment), then the name, as an expression.
NEXT_RUN = "SET e.runSeq = coalesce(e.runSeq, 0) + 1 "
RUN_NAME = "'run-' + toString(e.runSeq)"


async def next_run_name(tx: Tx, experiment_id: str) -> str:
    row = await tx.single(
        f"MATCH (e:Node:Experiment {{id: $id}}) {NEXT_RUN}RETURN {RUN_NAME} AS name",
        {"id": experiment_id},
    )
    assert row is not None
    name: str = row["name"]
    return name


async def create_run(store: Store, command: RunCreate) -> tuple[ExperimentRun, bool]:
    async def work(tx: Tx) -> tuple[ExperimentRun, bool]:
        experiment = await lock(tx, Experiment, command.experiment_id, field="input.experimentId")
        return await ensure_run(tx, command, experiment, path="input")

    return await store.write(work)


async def log_to_run(
    store: Store,
    run_id: str,
    *,
    params: list[CustomPropertyIn],
    metrics: list[MetricIn],
    inputs: RunInputs,
) -> ExperimentRun:
    """Append metrics, add params and inputs to an existing run, in one transaction."""

    async def work(tx: Tx) -> ExperimentRun:
        current = await lock(tx, ExperimentRun, run_id, field="runId")
        stamp = now()
        changes = _param_changes(current, params, "input")
        changes.update(_metric_changes(current, metrics, stamp))
        tx.touch(run_id, {k: current.get(k) for k in changes}, changes)
        row = await tx.single(
            "MATCH (n:Node:ExperimentRun {id: $id}) SET n += $changes, n.updatedAt = $at "
            "RETURN n {.*} AS n",
            {"id": run_id, "changes": changes, "at": stamp},
        )
        assert row is not None
        await _link_inputs(tx, run_id, inputs, "input")
        from lineagehub.graph import runlogs  # it builds on this module

        await runlogs.mirror(tx, run_id, params, metrics, stamp)
        return ExperimentRun.from_props(row["n"])

    return await store.write(work)


async def add_outputs(store: Store, run_id: str, output_ids: list[str]) -> ExperimentRun:
    """Record what a run produced (versions, datasets, model artifacts)."""

    async def work(tx: Tx) -> ExperimentRun:
        current = await lock(tx, ExperimentRun, run_id, field="runId")
        await links.add(
            tx,
            [
                links.Link(run_id, "PRODUCED", out, f"outputs[{i}]")
                for i, out in enumerate(output_ids)
            ],
            now(),
        )
        return ExperimentRun.from_props(current)

    return await store.write(work)


async def get_by_name(store: Store, name: str) -> Experiment | None:
    rows = await store.read(
        f"MATCH (n:Experiment {{name: $name}}) WHERE {in_scope('n')} RETURN n {{.*}} AS n",
        {"name": name, **scope_params()},
    )
    return Experiment.from_props(rows[0]["n"]) if rows else None

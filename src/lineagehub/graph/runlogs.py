"""A run's logged metrics and parameters as records of their own (Kubeflow's ``metric`` and
``parameter`` artifacts), kept in step with the run's own params and metric history.

A run stores its params and metric history as properties (what GraphQL, comparisons and
filters read). Clients of the Kubeflow REST API also address each logged metric or param
as an artifact with an id, so each (run, kind, name) also has a ``RunLog`` node, linked
``(run)-[:LOGGED]->(log)``, holding the latest value. Logging through either edge writes
the run's properties; the log node is written in the same transaction.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from lineagehub.graph import restids
from lineagehub.graph.artifacts import ArtifactState
from lineagehub.graph.commands import Command
from lineagehub.graph.entities import ExternalId, Name, Text, lock, now
from lineagehub.graph.errors import Conflict, ValidationFailed
from lineagehub.graph.experiments import MetricIn, _metric_changes, _param_changes
from lineagehub.graph.properties import CustomProperty, CustomPropertyIn, PropertyType, encode
from lineagehub.graph.records import ExperimentRun
from lineagehub.graph.store import Tx


class LogKind(Enum):
    METRIC = "Metric"
    PARAMETER = "Parameter"


# The label of each kind's log node: literals, chosen by the kind, never by input.
LOG_LABELS = {LogKind.METRIC: "MetricLog", LogKind.PARAMETER: "ParameterLog"}


class ParameterType(Enum):
    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"
    OBJECT = "object"


class RunLogFields(Command):
    name: Name | None = None  # a run's log is found again by its name; a standalone one needn't
    description: Text | None = None
    external_id: ExternalId | None = None
    artifact_state: ArtifactState | None = None
    custom_properties: list[CustomPropertyIn] = Field(default_factory=list, max_length=200)


class MetricLog(RunLogFields):
    value: float | None = None  # a metric recorded before it has a value joins no history
    step: int = Field(default=0, ge=0, le=2**63 - 1)
    timestamp: datetime | None = None


class ParameterLog(RunLogFields):
    value: Annotated[str, StringConstraints(max_length=65536)] | None = None
    parameter_type: ParameterType = ParameterType.STRING

    def typed(self) -> CustomPropertyIn:
        """The parameter as a typed value of the run; a value that does not read as its
        declared type is kept as the string it is (as Kubeflow keeps every value)."""
        assert self.value is not None
        assert self.name is not None
        try:
            match self.parameter_type:
                case ParameterType.NUMBER:
                    number = json.loads(self.value)
                    if isinstance(number, bool) or not isinstance(number, int | float):
                        raise ValueError
                    slot = "intValue" if isinstance(number, int) else "floatValue"
                    return CustomPropertyIn.model_validate({"key": self.name, slot: number})
                case ParameterType.BOOLEAN:
                    if self.value.lower() not in ("true", "false"):
                        raise ValueError
                    return CustomPropertyIn(key=self.name, bool_value=self.value.lower() == "true")
                case ParameterType.OBJECT:
                    return CustomPropertyIn(key=self.name, json_value=json.loads(self.value))
        except ValueError:
            pass
        return CustomPropertyIn(key=self.name, string_value=self.value)


def _log_props(fields: RunLogFields, kind: LogKind) -> dict[str, Any]:
    props: dict[str, Any] = {
        "name": fields.name,
        "kind": kind.value,
        "description": fields.description,
        "externalId": fields.external_id,
        "artifactState": (fields.artifact_state or ArtifactState.LIVE).value,
    }
    if isinstance(fields, MetricLog):
        props.update(value=fields.value, step=fields.step, timestamp=fields.timestamp)
    elif isinstance(fields, ParameterLog):
        props.update(value=fields.value, parameterType=fields.parameter_type.value)
    props.update(encode(fields.custom_properties))
    return props


async def log_in(
    tx: Tx, run_id: str, fields: MetricLog | ParameterLog, *, path: str
) -> dict[str, Any]:
    """Log a metric point or a param on a run (locked here), upserting its log node."""
    if fields.name is None:
        raise ValidationFailed(
            "a metric or parameter logged on a run needs a name (its key)", field=f"{path}.name"
        )
    run = await lock(tx, ExperimentRun, run_id, field="runId")
    stamp = now()
    kind = LogKind.METRIC if isinstance(fields, MetricLog) else LogKind.PARAMETER
    changes: dict[str, Any] = {}
    if isinstance(fields, MetricLog):
        if fields.value is not None:
            point = MetricIn(
                key=fields.name, value=fields.value, step=fields.step, timestamp=fields.timestamp
            )
            changes = _metric_changes(run, [point], stamp)
        if fields.timestamp is None:
            fields = fields.model_copy(update={"timestamp": stamp})
    elif fields.value is not None:
        changes = _param_changes(run, [fields.typed()], path)
    tx.touch(run_id, {k: run.get(k) for k in changes}, changes)
    await tx.run(
        "MATCH (r:Node:ExperimentRun {id: $id}) SET r += $changes, r.updatedAt = $at",
        {"id": run_id, "changes": changes, "at": stamp},
    )
    props = _log_props(fields, kind)
    if fields.external_id is not None:
        row = await tx.single(
            "MATCH (l:RunLog {externalId: $externalId}) "
            "WHERE l.runId <> $runId OR l.name <> $name OR l.kind <> $kind "
            "RETURN l.restId AS taken",
            {
                "externalId": fields.external_id,
                "runId": run_id,
                "name": fields.name,
                "kind": kind.value,
            },
        )
        if row is not None:
            raise Conflict(
                f"externalId {fields.external_id!r} is taken by another log",
                field=f"{path}.externalId",
            )
    [log] = await _upsert(
        tx, run_id, [{"kind": kind.value, "name": fields.name, "props": props}], stamp
    )
    return log


async def _upsert(
    tx: Tx, run_id: str, logs: list[dict[str, Any]], at: datetime, *, fresh: bool = False
) -> list[dict[str, Any]]:
    """Create or update a run's log nodes (``{kind, name, props}`` each), numbering new
    ones; the stored logs come back, metrics first. The caller holds the run's lock, which
    serialises loggers of the run, so the logs found here are the ones the MERGE updates.
    ``fresh``: the run was created in this transaction (every log is new)."""
    missing = logs
    if not fresh:
        rows = await tx.run(
            "UNWIND $logs AS log "
            "OPTIONAL MATCH (:Node:ExperimentRun {id: $runId})-[:LOGGED]->"
            "(l:RunLog {kind: log.kind, name: log.name}) "
            "RETURN l.restId AS restId",
            {"runId": run_id, "logs": [{"kind": g["kind"], "name": g["name"]} for g in logs]},
        )
        missing = [g for g, row in zip(logs, rows, strict=True) if row["restId"] is None]
    # One query for both kinds: a subquery per kind, each with its label (one of two
    # literals), metrics first.
    kinds = [
        (label, mine)
        for kind, label in LOG_LABELS.items()
        if (mine := [g for g in logs if g["kind"] == kind.value])
    ]
    if not kinds:
        return []
    calls = "".join(
        f"CALL (r) {{ UNWIND $logs{i} AS log "
        f"MERGE (r)-[:LOGGED]->(l:RunLog:`{label}` "
        "{runId: $runId, kind: log.kind, name: log.name}) "
        "ON CREATE SET l.createdAt = $at, l.restId = log.restId "
        "SET l += log.props, l.updatedAt = $at "
        f"RETURN collect(l {{.*}}) AS stored{i} }} "
        for i, (label, _) in enumerate(kinds)
    )
    upsert = (
        f"MATCH (r:Node:ExperimentRun {{id: $runId}}) {calls}"
        f"RETURN {' + '.join(f'stored{i}' for i in range(len(kinds)))} AS result"
    )
    params = {"runId": run_id, "at": at, **{f"logs{i}": mine for i, (_, mine) in enumerate(kinds)}}
    if not missing:
        row = await tx.single(upsert, params)
        return list(row["result"]) if row is not None else []

    def write(first: int) -> restids.Along:
        # The new logs take their ids in the query that writes them (checked there).
        for i, g in enumerate(missing):
            g["restId"] = first + i
        return upsert, params

    _, stored = await restids.numbered(tx, len(missing), write)
    return list(stored or [])


async def create_standalone(tx: Tx, fields: MetricLog | ParameterLog) -> dict[str, Any]:
    """A metric or param recorded without a run (Kubeflow allows it); it joins no run."""
    kind = LogKind.METRIC if isinstance(fields, MetricLog) else LogKind.PARAMETER
    stamp = now()
    if isinstance(fields, MetricLog) and fields.timestamp is None:
        fields = fields.model_copy(update={"timestamp": stamp})
    rest_id = await restids.allocate(tx, 1)
    props = {k: v for k, v in _log_props(fields, kind).items() if v is not None}
    props.update(restId=rest_id, createdAt=stamp, updatedAt=stamp)
    row = await tx.single(
        f"CREATE (l:RunLog:`{LOG_LABELS[kind]}`) SET l = $props RETURN l {{.*}} AS l",
        {"props": props},
    )
    assert row is not None
    log: dict[str, Any] = row["l"]
    return log


async def update_standalone(
    tx: Tx, rest_id: int, fields: MetricLog | ParameterLog
) -> dict[str, Any]:
    """Replace the recorded value (and description, state, properties) of a run-less log."""
    kind = LogKind.METRIC if isinstance(fields, MetricLog) else LogKind.PARAMETER
    props = _log_props(fields, kind)
    row = await tx.single(
        "MATCH (l:RunLog {restId: $restId}) WHERE l.runId IS NULL "
        "SET l += $props, l.updatedAt = $at RETURN l {.*} AS l",
        {"restId": rest_id, "props": props, "at": now()},
    )
    assert row is not None
    log: dict[str, Any] = row["l"]
    return log


def _as_text(prop: CustomProperty) -> tuple[str, str]:
    """A typed param as Kubeflow shows one: its value as text, and the parameterType."""
    match prop.type:
        case PropertyType.BOOL:
            return ("true" if prop.value else "false"), ParameterType.BOOLEAN.value
        case PropertyType.INT | PropertyType.FLOAT:
            return json.dumps(prop.value), ParameterType.NUMBER.value
        case PropertyType.JSON:
            return json.dumps(prop.value), ParameterType.OBJECT.value
    return str(prop.value), ParameterType.STRING.value


async def mirror(
    tx: Tx,
    run_id: str,
    params: list[CustomPropertyIn],
    metrics: list[MetricIn],
    at: datetime,
    *,
    fresh: bool = False,
) -> None:
    """Keep a run's log nodes in step with params and metric points logged through the
    run itself (GraphQL's logToRun, registerModel's training run), so REST clients see
    them as the run's parameter and metric artifacts. ``fresh``: the run was created in
    this transaction, so it has no log nodes yet."""
    logs: list[dict[str, Any]] = []
    for param in params:
        value, kind = _as_text(param.typed())
        logs.append(
            {"kind": LogKind.PARAMETER.value, "name": param.key, "props": {
                "value": value, "parameterType": kind, "artifactState": "LIVE"}}
        )  # fmt: skip
    latest: dict[str, MetricIn] = {}
    for point in metrics:
        best = latest.get(point.key)
        if best is None or (point.step, point.timestamp or at) >= (best.step, best.timestamp or at):
            latest[point.key] = point
    for key, point in latest.items():
        logs.append(
            {"kind": LogKind.METRIC.value, "name": key, "props": {
                "value": point.value, "step": point.step, "timestamp": point.timestamp or at,
                "artifactState": "LIVE"}}
        )  # fmt: skip
    if logs:
        await _upsert(tx, run_id, logs, at, fresh=fresh)

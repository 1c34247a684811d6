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
from lineagehub.graph.properties import CustomPropertyIn, encode
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
    name: Name
    description: Text | None = None
    external_id: ExternalId | None = None
    artifact_state: ArtifactState | None = None
    custom_properties: list[CustomPropertyIn] = Field(default_factory=list, max_length=200)


class MetricLog(RunLogFields):
    value: float
    step: int = Field(default=0, ge=0, le=2**63 - 1)
    timestamp: datetime | None = None


class ParameterLog(RunLogFields):
    value: Annotated[str, StringConstraints(max_length=65536)]
    parameter_type: ParameterType = ParameterType.STRING

    def typed(self, path: str) -> CustomPropertyIn:
        """The parameter as a typed value of the run."""
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
            raise ValidationFailed(
                f"value {self.value!r} is not a {self.parameter_type.value}", field=f"{path}.value"
            ) from None
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
    run = await lock(tx, ExperimentRun, run_id, field="runId")
    stamp = now()
    kind = LogKind.METRIC if isinstance(fields, MetricLog) else LogKind.PARAMETER
    if isinstance(fields, MetricLog):
        point = MetricIn(
            key=fields.name, value=fields.value, step=fields.step, timestamp=fields.timestamp
        )
        changes = _metric_changes(run, [point], stamp)
        if fields.timestamp is None:
            fields = fields.model_copy(update={"timestamp": stamp})
    else:
        changes = _param_changes(run, [fields.typed(path)], path)
    tx.touch(run_id, {k: run.get(k) for k in changes}, changes)
    await tx.run(
        "MATCH (r:Node:ExperimentRun {id: $id}) SET r += $changes, r.updatedAt = $at",
        {"id": run_id, "changes": changes, "at": stamp},
    )
    props = {k: v for k, v in _log_props(fields, kind).items()}
    label = LOG_LABELS[kind]
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
    key = {"runId": run_id, "kind": kind.value, "name": fields.name}
    # The run's lock (taken above) serialises loggers of the same run, so the log node
    # found here is still the one to update when the MERGE runs.
    existing = await tx.single(
        "MATCH (:Node:ExperimentRun {id: $runId})-[:LOGGED]->"
        "(l:RunLog {kind: $kind, name: $name}) RETURN l.restId AS restId",
        key,
    )
    rest_id = existing["restId"] if existing else await restids.allocate(tx, 1)
    found = await tx.single(
        f"MATCH (r:Node:ExperimentRun {{id: $runId}}) "
        f"MERGE (r)-[:LOGGED]->(l:RunLog:`{label}` {{runId: $runId, kind: $kind, name: $name}}) "
        "ON CREATE SET l.createdAt = $at, l.restId = $restId "
        "SET l += $props, l.updatedAt = $at "
        "RETURN l {.*} AS l",
        {**key, "props": props, "at": stamp, "restId": rest_id},
    )
    assert found is not None
    log: dict[str, Any] = found["l"]
    return log

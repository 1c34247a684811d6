"""What operations return: plain frozen records built from Neo4j property maps."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime
from enum import Enum
from functools import cache
from typing import Any, ClassVar, Self

from pydantic.alias_generators import to_camel

from lineagehub.graph.listing import Kind
from lineagehub.graph.properties import (
    HISTORY_STEPS,
    HISTORY_TIMES,
    HISTORY_VALUES,
    PARAM_PREFIX,
    CustomProperty,
    decode,
)
from lineagehub.graph.vocabulary import NODE_TYPES


@cache
def reading_plan(
    cls: type[Entity],
) -> tuple[tuple[str, str, Callable[[dict[str, Any]], Any] | None], ...]:
    """(field, stored property, decoder) for each field of a record class, worked out once."""
    return tuple((f.name, to_camel(f.name), cls.DECODERS.get(f.name)) for f in fields(cls))


class State(Enum):
    LIVE = "LIVE"
    ARCHIVED = "ARCHIVED"


# Fields every entity has, with how they filter.
COMMON_FIELDS: dict[str, Kind] = {
    "id": Kind.ID,
    "name": Kind.STRING,
    "description": Kind.STRING,
    "externalId": Kind.STRING,
    "state": Kind.ENUM,
    "createdAt": Kind.TIME,
    "updatedAt": Kind.TIME,
    "restId": Kind.NUMBER,
}


@dataclass(frozen=True, kw_only=True)
class Entity:
    LABEL: ClassVar[str]
    FIELDS: ClassVar[dict[str, Kind]] = COMMON_FIELDS
    # The property naming the parent a name is unique within (None: unique globally).
    NAME_SCOPE: ClassVar[str | None] = None
    # The label a name is unique among (artifacts of both kinds share their names).
    NAME_LABEL: ClassVar[str]

    id: str
    name: str
    description: str | None
    external_id: str | None
    state: State
    created_at: datetime
    updated_at: datetime
    custom_properties: list[CustomProperty]
    # Set on tombstones: the node was deleted, but stays for lineage and audit.
    deleted_at: datetime | None = None
    deleted_by: str | None = None
    tombstone: str | None = None
    # The numeric id the Kubeflow REST edge knows this node by (set when its write commits).
    rest_id: int | None = None

    # Fields not stored as a plain property of the same (camelCase) name.
    DECODERS: ClassVar[dict[str, Callable[[dict[str, Any]], Any]]] = {
        "custom_properties": decode,
        "state": lambda p: State(p["state"]),
        # A tombstone gives up its unique keys; it keeps showing what it was.
        "name": lambda p: p.get("deletedName") or p["name"],
        "external_id": lambda p: p.get("deletedExternalId") or p.get("externalId"),
    }

    @classmethod
    def from_props(cls, props: dict[str, Any]) -> Self:
        values: dict[str, Any] = {
            name: decoder(props) if decoder else props.get(stored)
            for name, stored, decoder in reading_plan(cls)  # type: ignore[arg-type]
        }
        return cls(**values)


@dataclass(frozen=True, kw_only=True)
class RegisteredModel(Entity):
    LABEL = "RegisteredModel"
    NAME_LABEL = "RegisteredModel"
    FIELDS = {
        **COMMON_FIELDS,
        "project": Kind.STRING,
        "owner": Kind.STRING,
        "task": Kind.STRING,
        "license": Kind.STRING,
        "tags": Kind.STRING_LIST,
        "maturity": Kind.STRING,
        "provider": Kind.STRING,
        "libraryName": Kind.STRING,
        "language": Kind.STRING_LIST,
        "tasks": Kind.STRING_LIST,
    }

    project: str | None
    owner: str | None
    task: str | None
    license: str | None
    tags: list[str] | None
    # Catalog fields (the Kubeflow model catalog's): free text, URIs and lists.
    readme: str | None = None
    maturity: str | None = None
    language: list[str] | None = None
    tasks: list[str] | None = None
    provider: str | None = None
    logo: str | None = None
    license_link: str | None = None
    library_name: str | None = None


@dataclass(frozen=True, kw_only=True)
class ModelVersion(Entity):
    LABEL = "ModelVersion"
    NAME_LABEL = "ModelVersion"
    NAME_SCOPE = "modelId"
    FIELDS = {
        **COMMON_FIELDS,
        "author": Kind.STRING,
        "modelId": Kind.ID,
        "approvalStatus": Kind.STRING,
        "project": Kind.STRING,
    }
    DECODERS = {
        **Entity.DECODERS,
        "approval_status": lambda p: p.get("approvalStatus") or "NONE",
    }

    author: str | None
    model_id: str
    approval_status: str
    project: str | None


@dataclass(frozen=True, kw_only=True)
class Artifact(Entity):
    LABEL = "Artifact"
    NAME_LABEL = "Artifact"
    NAME_SCOPE = "versionId"
    FIELDS = {
        **COMMON_FIELDS,
        "uri": Kind.STRING,
        "versionId": Kind.ID,
        "artifactState": Kind.ENUM,
    }

    uri: str | None
    # None for a standalone artifact (registered through REST before it joins a version).
    version_id: str | None
    # The Kubeflow artifact life cycle (UNKNOWN, PENDING, LIVE, ..., REFERENCE).
    artifact_state: str | None = None


@dataclass(frozen=True, kw_only=True)
class ModelArtifact(Artifact):
    LABEL = "ModelArtifact"
    FIELDS = {
        **Artifact.FIELDS,
        "modelFormatName": Kind.STRING,
        "modelFormatVersion": Kind.STRING,
        "storageKey": Kind.STRING,
        "storagePath": Kind.STRING,
        "digest": Kind.STRING,
        "sizeBytes": Kind.NUMBER,
        "serviceAccountName": Kind.STRING,
        "modelSourceKind": Kind.STRING,
        "modelSourceClass": Kind.STRING,
        "modelSourceGroup": Kind.STRING,
        "modelSourceId": Kind.STRING,
        "modelSourceName": Kind.STRING,
    }

    model_format_name: str | None
    model_format_version: str | None
    storage_key: str | None
    storage_path: str | None
    digest: str | None
    size_bytes: int | None
    service_account_name: str | None = None
    # Where the model came from (e.g. a Kubeflow pipeline run or a catalog entry).
    model_source_kind: str | None = None
    model_source_class: str | None = None
    model_source_group: str | None = None
    model_source_id: str | None = None
    model_source_name: str | None = None


@dataclass(frozen=True, kw_only=True)
class DocArtifact(Artifact):
    LABEL = "DocArtifact"


def _enum(name: str, enum: type[Enum]) -> Callable[[dict[str, Any]], Any]:
    return lambda p: enum(p[name]) if p.get(name) is not None else None


def _json(name: str) -> Callable[[dict[str, Any]], Any]:
    return lambda p: json.loads(p[name]) if p.get(name) is not None else None


@dataclass(frozen=True, kw_only=True)
class Dataset(Entity):
    """Data at a URI; the digest names its content version. (uri, digest) is unique."""

    LABEL = "Dataset"
    NAME_LABEL = "Dataset"
    NAME_SCOPE = "datasetKey"  # names are free-form; the natural key is uri + digest
    FIELDS = {
        **COMMON_FIELDS,
        "uri": Kind.STRING,
        "digest": Kind.STRING,
        "sourceType": Kind.STRING,
        "source": Kind.STRING,
        "artifactState": Kind.ENUM,
    }
    DECODERS = {
        **Entity.DECODERS,
        "schema": _json("schemaJson"),
        "profile": _json("profileJson"),
    }

    uri: str | None
    digest: str | None
    source_type: str | None
    source: str | None
    schema: Any
    profile: Any
    artifact_state: str | None = None


@dataclass(frozen=True, kw_only=True)
class CodeRef(Entity):
    """Code at a commit. (repository, commit, path, notebook, entryPoint) is unique."""

    LABEL = "CodeRef"
    NAME_LABEL = "CodeRef"
    NAME_SCOPE = "codeKey"
    FIELDS = {
        **COMMON_FIELDS,
        "repository": Kind.STRING,
        "commit": Kind.STRING,
        "path": Kind.STRING,
        "notebook": Kind.STRING,
        "entryPoint": Kind.STRING,
    }

    repository: str
    commit: str | None
    path: str | None
    notebook: str | None
    entry_point: str | None


@dataclass(frozen=True, kw_only=True)
class Experiment(Entity):
    LABEL = "Experiment"
    NAME_LABEL = "Experiment"
    FIELDS = {**COMMON_FIELDS, "owner": Kind.STRING, "project": Kind.STRING}

    owner: str | None
    project: str | None


class RunStatus(Enum):
    SCHEDULED = "SCHEDULED"
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"


@dataclass(frozen=True, slots=True)
class MetricPoint:
    value: float
    step: int
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class Metric:
    """A run's metric: its latest value (highest step, then newest) and its history."""

    key: str
    latest: MetricPoint
    history: list[MetricPoint]


def decode_metrics(props: dict[str, Any]) -> list[Metric]:
    metrics = []
    for name in props:
        if not name.startswith(HISTORY_VALUES):
            continue
        key = name[len(HISTORY_VALUES) :]
        points = [
            MetricPoint(value=v, step=s, timestamp=t)
            for v, s, t in zip(
                props[name],
                props.get(HISTORY_STEPS + key, []),
                props.get(HISTORY_TIMES + key, []),
                strict=True,
            )
        ]
        if points:
            latest = max(points, key=lambda p: (p.step, p.timestamp))
            metrics.append(Metric(key=key, latest=latest, history=points))
    return sorted(metrics, key=lambda m: m.key)


@dataclass(frozen=True, kw_only=True)
class ExperimentRun(Entity):
    LABEL = "ExperimentRun"
    NAME_LABEL = "ExperimentRun"
    NAME_SCOPE = "experimentId"
    FIELDS = {
        **COMMON_FIELDS,
        "project": Kind.STRING,
        "experimentId": Kind.ID,
        "status": Kind.ENUM,
        "startTime": Kind.TIME,
        "endTime": Kind.TIME,
        "owner": Kind.STRING,
    }
    DECODERS = {
        **Entity.DECODERS,
        "status": _enum("status", RunStatus),
        "params": lambda p: decode(p, prefix=PARAM_PREFIX),
        "metrics": decode_metrics,
    }

    experiment_id: str
    project: str | None
    status: RunStatus
    start_time: datetime | None
    end_time: datetime | None
    params: list[CustomProperty]
    metrics: list[Metric]
    owner: str | None = None


@dataclass(frozen=True, kw_only=True)
class ServingEnvironment(Entity):
    LABEL = "ServingEnvironment"
    NAME_LABEL = "ServingEnvironment"


class DesiredState(Enum):
    DEPLOYED = "DEPLOYED"
    UNDEPLOYED = "UNDEPLOYED"


@dataclass(frozen=True, kw_only=True)
class InferenceService(Entity):
    """An endpoint in an environment, serving (at most) one version at a time."""

    LABEL = "InferenceService"
    NAME_LABEL = "InferenceService"
    NAME_SCOPE = "environmentId"
    FIELDS = {
        **COMMON_FIELDS,
        "environmentId": Kind.ID,
        "runtime": Kind.STRING,
        "desiredState": Kind.ENUM,
        "url": Kind.STRING,
        "servedVersionId": Kind.ID,
        "project": Kind.STRING,
        "modelId": Kind.ID,
    }
    DECODERS = {**Entity.DECODERS, "desired_state": _enum("desiredState", DesiredState)}

    environment_id: str
    runtime: str | None
    desired_state: DesiredState
    url: str | None
    served_version_id: str | None
    project: str | None
    # The registered model this service is for (Kubeflow's registeredModelId).
    model_id: str | None = None


class DeploymentState(Enum):
    PENDING = "PENDING"
    READY = "READY"
    FAILED = "FAILED"
    STOPPED = "STOPPED"
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True, kw_only=True)
class Deployment(Entity):
    """One (re)deploy of a service: which version, when, and its last known state."""

    LABEL = "Deployment"
    NAME_LABEL = "Deployment"
    NAME_SCOPE = "serviceId"
    FIELDS = {
        **COMMON_FIELDS,
        "serviceId": Kind.ID,
        "versionId": Kind.ID,
        "deploymentState": Kind.ENUM,
        "stateAt": Kind.TIME,
        "actor": Kind.STRING,
    }
    DECODERS = {
        **Entity.DECODERS,
        "deployment_state": _enum("deploymentState", DeploymentState),
    }

    service_id: str
    version_id: str
    deployment_state: DeploymentState
    state_at: datetime
    actor: str | None
    # Kubeflow's ServeModel.lastKnownState, kept as given (NEW, RUNNING, COMPLETE, ...).
    execution_state: str | None = None


class MonitoringKind(Enum):
    DASHBOARD = "DASHBOARD"
    DRIFT_BASELINE = "DRIFT_BASELINE"


@dataclass(frozen=True, kw_only=True)
class MonitoringLink(Entity):
    LABEL = "MonitoringLink"
    NAME_LABEL = "MonitoringLink"
    NAME_SCOPE = "targetId"
    FIELDS = {**COMMON_FIELDS, "url": Kind.STRING, "tool": Kind.STRING, "kind": Kind.ENUM}
    DECODERS = {**Entity.DECODERS, "kind": _enum("kind", MonitoringKind)}

    url: str
    tool: str | None
    kind: MonitoringKind
    target_id: str


RECORD_TYPES: dict[str, type[Entity]] = {
    cls.LABEL: cls
    for cls in (
        RegisteredModel,
        ModelVersion,
        ModelArtifact,
        DocArtifact,
        Dataset,
        CodeRef,
        Experiment,
        ExperimentRun,
        ServingEnvironment,
        InferenceService,
        Deployment,
        MonitoringLink,
    )
}
assert set(RECORD_TYPES) == set(NODE_TYPES), "records and vocabulary disagree"

# Stored properties holding instants (datetime fields of any record type).
TEMPORAL_PROPS = frozenset(
    to_camel(f.name)
    for cls in RECORD_TYPES.values()
    for f in fields(cls)
    if "datetime" in str(f.type)
)


def record_from(labels: list[str], props: dict[str, Any]) -> Entity:
    """The record for a node given its labels (the most specific known label wins)."""
    for label in labels:
        if label in RECORD_TYPES:
            return RECORD_TYPES[label].from_props(props)
    raise KeyError(f"no record type for labels {labels}")

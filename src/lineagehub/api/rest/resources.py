"""The Kubeflow REST resources as views of our nodes: what each one matches, the related
ids it shows, the properties ``filterQuery`` and ``orderBy`` reach, and its JSON.

Every label, relationship type and property name below is a literal of this module; values
from requests only ever travel as query parameters.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lineagehub.api.rest.filter_query import RestField
from lineagehub.api.rest.wire import custom_properties_out, epoch_ms, from_epoch_ms, rest_id
from lineagehub.graph.listing import Kind, ListSpec, Sort
from lineagehub.graph.records import RECORD_TYPES


def _id(value: Any) -> int:
    return rest_id(value, field="filterQuery")


def _time(value: Any) -> datetime:
    return from_epoch_ms(value, field="filterQuery")


COMMON_FILTERS: dict[str, RestField] = {
    "id": RestField("restId", Kind.NUMBER, _id),
    "name": RestField("name", Kind.STRING),
    "description": RestField("description", Kind.STRING),
    "externalId": RestField("externalId", Kind.STRING),
    "state": RestField("state", Kind.ENUM),
    "createTimeSinceEpoch": RestField("createdAt", Kind.TIME, _time),
    "lastUpdateTimeSinceEpoch": RestField("updatedAt", Kind.TIME, _time),
}

# orderBy values and the stored property each sorts on.
ORDER_BY = {"ID": "restId", "CREATE_TIME": "createdAt", "LAST_UPDATE_TIME": "updatedAt"}


def _strings(*names: str) -> dict[str, RestField]:
    return {name: RestField(name, Kind.STRING) for name in names}


def _related_id(pattern: str) -> str:
    """The REST id of the first node ``r`` that ``pattern`` (binding ``n`` and ``r``) finds."""
    return f"head(COLLECT {{ MATCH {pattern} RETURN r.restId AS rid ORDER BY rid }})"


# The run (and its experiment) an artifact came from or went into.
_ARTIFACT_RUN = (
    "head(COLLECT { MATCH (n)-[:INPUT_TO|PRODUCED|LOGGED]-(r:ExperimentRun) "
    "OPTIONAL MATCH (r)-[:PART_OF]->(e:Experiment) "
    "RETURN [r.restId, e.restId] AS ids ORDER BY r.createdAt })"
)


@dataclass(frozen=True)
class Resource:
    """One REST resource type over our graph."""

    name: str  # the resource's schema name, e.g. "RegisteredModel"
    label: str  # the label of its nodes (a list matches ``(n:<label>)``)
    render: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]
    related: str = "{}"  # a Cypher map over ``n`` of the REST ids it shows
    filters: dict[str, RestField] = field(default_factory=lambda: dict(COMMON_FILTERS))
    node_label: str = "Node"  # the label its REST ids are unique (and indexed) under
    where: str = "true"  # a literal predicate on ``n`` narrowing ``label``

    def spec(self, match: str) -> ListSpec:
        whole = match == f"MATCH (n:{self.label})" and self.label in RECORD_TYPES
        return ListSpec(
            label=self.label,
            match=match,
            fields={f.stored: f.kind for f in self.filters.values()},
            default_sort=(Sort("restId"),),
            # (Run logs, listed among artifacts, have a REST id but no id.)
            tiebreak=("restId", Kind.NUMBER),
            # A whole label's list, by REST id or creation time: read off its index.
            indexed=frozenset({"restId", "createdAt"}) if whole else frozenset(),
        )


def base(props: dict[str, Any], *, with_state: bool = True) -> dict[str, Any]:
    """Fields every resource shows."""
    out: dict[str, Any] = {
        "id": str(props["restId"]) if props.get("restId") is not None else None,
        "name": props.get("deletedName") or props.get("name"),
        "description": props.get("description"),
        "externalId": props.get("deletedExternalId") or props.get("externalId"),
        "customProperties": custom_properties_out(props),
        "createTimeSinceEpoch": epoch_ms(props.get("createdAt")),
        "lastUpdateTimeSinceEpoch": epoch_ms(props.get("updatedAt")),
    }
    if with_state:
        out["state"] = props.get("state")
    return out


def _copy(props: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: props.get(name) for name in names}


def _rid(value: Any) -> str | None:
    return None if value is None else str(value)


def _model(props: dict[str, Any], rel: dict[str, Any]) -> dict[str, Any]:
    out = base(props)
    out.update(
        _copy(
            props,
            "owner",
            "readme",
            "maturity",
            "language",
            "tasks",
            "provider",
            "logo",
            "license",
            "licenseLink",
            "libraryName",
        )
    )
    return out


def _version(props: dict[str, Any], rel: dict[str, Any]) -> dict[str, Any]:
    out = base(props)
    out.update(author=props.get("author"), registeredModelId=_rid(rel.get("registeredModelId")))
    return out


def _artifact_base(props: dict[str, Any], rel: dict[str, Any], kind: str) -> dict[str, Any]:
    out = base(props, with_state=False)
    run = rel.get("run") or [None, None]
    out.update(
        artifactType=kind,
        state=props.get("artifactState") or ("LIVE" if props.get("state") == "LIVE" else None),
        experimentRunId=_rid(run[0]),
        experimentId=_rid(run[1]),
    )
    return out


MODEL_ARTIFACT_FIELDS = (
    "modelFormatName",
    "modelFormatVersion",
    "storageKey",
    "storagePath",
    "serviceAccountName",
    "modelSourceKind",
    "modelSourceClass",
    "modelSourceGroup",
    "modelSourceId",
    "modelSourceName",
)


def _json_text(value: str | None) -> str | None:
    """A dataset's schema/profile as the string Kubeflow shows (we store JSON)."""
    if value is None:
        return None
    parsed = json.loads(value)
    return parsed if isinstance(parsed, str) else json.dumps(parsed)


def render_artifact(props: dict[str, Any], rel: dict[str, Any]) -> dict[str, Any]:
    labels = rel.get("labels") or []
    if "Dataset" in labels:
        out = _artifact_base(props, rel, "dataset-artifact")
        out.update(
            _copy(props, "uri", "digest", "sourceType", "source"),
            schema=_json_text(props.get("schemaJson")),
            profile=_json_text(props.get("profileJson")),
        )
        return out
    if "MetricLog" in labels:
        out = _artifact_base(props, rel, "metric")
        out.update(
            value=props.get("value"),
            step=props.get("step"),
            timestamp=epoch_ms(props.get("timestamp")),
        )
        return out
    if "ParameterLog" in labels:
        out = _artifact_base(props, rel, "parameter")
        out.update(value=props.get("value"), parameterType=props.get("parameterType"))
        return out
    if "ModelArtifact" in labels:
        out = _artifact_base(props, rel, "model-artifact")
        out.update(_copy(props, "uri", *MODEL_ARTIFACT_FIELDS))
        return out
    out = _artifact_base(props, rel, "doc-artifact")
    out["uri"] = props.get("uri")
    return out


def _experiment(props: dict[str, Any], rel: dict[str, Any]) -> dict[str, Any]:
    out = base(props)
    out["owner"] = props.get("owner")
    return out


def _run(props: dict[str, Any], rel: dict[str, Any]) -> dict[str, Any]:
    out = base(props)
    out.update(
        owner=props.get("owner"),
        status=props.get("status"),
        experimentId=_rid(rel.get("experimentId")),
        startTimeSinceEpoch=epoch_ms(props.get("startTime")),
        endTimeSinceEpoch=epoch_ms(props.get("endTime")),
    )
    return out


def _environment(props: dict[str, Any], rel: dict[str, Any]) -> dict[str, Any]:
    return base(props, with_state=False)


def _service(props: dict[str, Any], rel: dict[str, Any]) -> dict[str, Any]:
    out = base(props, with_state=False)
    out.update(
        runtime=props.get("runtime"),
        desiredState=props.get("desiredState"),
        registeredModelId=_rid(rel.get("registeredModelId")),
        modelVersionId=_rid(rel.get("modelVersionId")),
        servingEnvironmentId=_rid(rel.get("servingEnvironmentId")),
    )
    return out


def _serve(props: dict[str, Any], rel: dict[str, Any]) -> dict[str, Any]:
    out = base(props, with_state=False)
    out.update(
        lastKnownState=props.get("executionState")
        or _EXECUTION.get(str(props.get("deploymentState"))),
        modelVersionId=_rid(rel.get("modelVersionId")),
    )
    return out


# Our deployment states as Kubeflow execution states (for deploys recorded through GraphQL).
_EXECUTION = {
    "PENDING": "NEW",
    "READY": "RUNNING",
    "FAILED": "FAILED",
    "STOPPED": "COMPLETE",
    "UNKNOWN": "UNKNOWN",
}
# And back: a ServeModel's lastKnownState as our deployment state.
DEPLOYMENT_STATE = {
    "UNKNOWN": "UNKNOWN",
    "NEW": "PENDING",
    "RUNNING": "READY",
    "COMPLETE": "STOPPED",
    "FAILED": "FAILED",
    "CACHED": "READY",
    "CANCELED": "STOPPED",
}

REGISTERED_MODEL = Resource(
    "RegisteredModel",
    "RegisteredModel",
    _model,
    filters={
        **COMMON_FILTERS,
        **_strings("owner", "maturity", "provider", "license", "libraryName", "readme"),
        "language": RestField("language", Kind.STRING_LIST),
        "tasks": RestField("tasks", Kind.STRING_LIST),
    },
)
MODEL_VERSION = Resource(
    "ModelVersion",
    "ModelVersion",
    _version,
    related=("{registeredModelId: " + _related_id("(r:RegisteredModel)-[:HAS_VERSION]->(n)") + "}"),
    filters={**COMMON_FILTERS, **_strings("author")},
)
_ARTIFACT_FILTERS = {
    **COMMON_FILTERS,
    "state": RestField("artifactState", Kind.ENUM),
    **_strings("uri", *MODEL_ARTIFACT_FIELDS, "digest", "sourceType", "source"),
}
MODEL_ARTIFACT = Resource(
    "ModelArtifact",
    "ModelArtifact",
    render_artifact,
    related=f"{{labels: labels(n), run: {_ARTIFACT_RUN}}}",
    filters=_ARTIFACT_FILTERS,
)
# Every kind of artifact: model and doc artifacts, datasets, logged metrics and params.
ARTIFACT = Resource(
    "Artifact",
    "Artifact|Dataset|RunLog",
    render_artifact,
    related=f"{{labels: labels(n), run: {_ARTIFACT_RUN}}}",
    filters=_ARTIFACT_FILTERS,
)
EXPERIMENT = Resource(
    "Experiment", "Experiment", _experiment, filters={**COMMON_FILTERS, **_strings("owner")}
)
EXPERIMENT_RUN = Resource(
    "ExperimentRun",
    "ExperimentRun",
    _run,
    related="{experimentId: " + _related_id("(n)-[:PART_OF]->(r:Experiment)") + "}",
    filters={
        **COMMON_FILTERS,
        **_strings("owner"),
        "status": RestField("status", Kind.ENUM),
        "startTimeSinceEpoch": RestField("startTime", Kind.TIME, _time),
        "endTimeSinceEpoch": RestField("endTime", Kind.TIME, _time),
    },
)
_NO_STATE = {k: v for k, v in COMMON_FILTERS.items() if k != "state"}
SERVING_ENVIRONMENT = Resource(
    "ServingEnvironment", "ServingEnvironment", _environment, filters=dict(_NO_STATE)
)
INFERENCE_SERVICE = Resource(
    "InferenceService",
    "InferenceService",
    _service,
    related=(
        "{servingEnvironmentId: "
        + _related_id("(n)-[:IN]->(r:ServingEnvironment)")
        + ", registeredModelId: "
        + _related_id("(r:Node:RegisteredModel {id: n.modelId})")
        + ", modelVersionId: "
        + _related_id(
            "(r:Node:ModelVersion {id: coalesce(n.servedVersionId, n.configuredVersionId)})"
        )
        + "}"
    ),
    filters={
        **_NO_STATE,
        **_strings("runtime"),
        "desiredState": RestField("desiredState", Kind.ENUM),
    },
)
SERVE_MODEL = Resource(
    "ServeModel",
    "Deployment",
    _serve,
    related="{modelVersionId: " + _related_id("(r:Node:ModelVersion {id: n.versionId})") + "}",
    filters={**_NO_STATE, "lastKnownState": RestField("executionState", Kind.STRING)},
)

# What ``artifactType`` narrows an artifact list to: literal label predicates.
ARTIFACT_TYPES = {
    "model-artifact": "n:ModelArtifact",
    "doc-artifact": "n:DocArtifact",
    "dataset-artifact": "n:Dataset",
    "metric": "n:MetricLog",
    "parameter": "n:ParameterLog",
}

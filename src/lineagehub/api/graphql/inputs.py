"""Mutation inputs. They only carry data: validation lives in the domain commands."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, TypeVar

import strawberry
from strawberry.types.base import get_object_definition, has_object_definition

from lineagehub.api.graphql import enums as _enums  # noqa: F401  (registers the enums)
from lineagehub.api.graphql.filters import set_fields
from lineagehub.api.graphql.scalars import JSON, Long
from lineagehub.graph.records import DesiredState, MonitoringKind, RunStatus, State

UNSET: Any = strawberry.UNSET
T = TypeVar("T")


def wire(value: Any) -> Any:
    """An input as the plain data a client sent: GraphQL names, no UNSET, enums as values."""
    if has_object_definition(value):
        return {name: wire(v) for name, v in set_fields(value)}
    if isinstance(value, list):
        return [wire(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _wire_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {name: _wire_value(v) for name, v in value.items()}
    if isinstance(value, list):
        return [_wire_value(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    return value


def arrives_as_wire(cls: type[T]) -> type[T]:
    """Let arguments of input type ``cls`` reach resolvers as wire data (see ``wire``).

    GraphQL has already coerced and checked the value against the schema; Strawberry would
    then build an input object for every nested value (slow for bulk arguments of hundreds
    of items) only for ``wire`` to turn it back into what the client sent. With this, the
    resolver gets that data directly (a dict, typed as ``cls`` in its signature).
    """
    definition = get_object_definition(cls, strict=True)
    definition.from_input = lambda _cls, value, _context: _wire_value(value)
    return cls


@strawberry.input(description="A typed custom property: give `key` and exactly one value.")
class CustomPropertyInput:
    key: str
    string_value: str | None = UNSET
    int_value: Long | None = UNSET
    float_value: float | None = UNSET
    bool_value: bool | None = UNSET
    json_value: JSON | None = UNSET


@strawberry.input
class _EntityFields:
    description: str | None = UNSET
    external_id: str | None = UNSET
    custom_properties: list[CustomPropertyInput] | None = UNSET


@strawberry.input
class _EntityChanges(_EntityFields):
    name: str | None = UNSET
    state: State | None = UNSET
    remove_custom_properties: list[str] | None = strawberry.field(
        default=UNSET, description="Keys of custom properties to remove."
    )


# --- RegisteredModel -------------------------------------------------------------------


@strawberry.input(description="What a model catalog shows about a model.")
class _CatalogFields:
    readme: str | None = strawberry.field(default=UNSET, description="Markdown.")
    maturity: str | None = UNSET
    language: list[str] | None = UNSET
    tasks: list[str] | None = UNSET
    provider: str | None = UNSET
    logo: str | None = UNSET
    license_link: str | None = UNSET
    library_name: str | None = UNSET


@strawberry.input(description="A new registered model.")
class RegisteredModelInput(_EntityFields, _CatalogFields):
    name: str
    project: str | None = strawberry.field(
        default=UNSET, description='Its project (default "default"); fixed once created.'
    )
    owner: str | None = UNSET
    task: str | None = UNSET
    license: str | None = UNSET
    tags: list[str] | None = UNSET


@strawberry.input(description="Changes to a registered model; omitted fields stay, null clears.")
class RegisteredModelChanges(_EntityChanges, _CatalogFields):
    owner: str | None = UNSET
    task: str | None = UNSET
    license: str | None = UNSET
    tags: list[str] | None = UNSET


# --- ModelVersion ----------------------------------------------------------------------


@strawberry.input(description="A new version; without a name it gets the model's next number.")
class ModelVersionInput(_EntityFields):
    name: str | None = UNSET
    author: str | None = UNSET


@strawberry.input(description="A new version of the model `modelId`.")
class CreateModelVersionInput(ModelVersionInput):
    model_id: strawberry.ID


@strawberry.input(description="Changes to a version; omitted fields stay, null clears.")
class ModelVersionChanges(_EntityChanges):
    author: str | None = UNSET


# --- artifacts -------------------------------------------------------------------------


@strawberry.input(description="A new doc artifact (model card, report).")
class DocArtifactInput(_EntityFields):
    uri: str
    name: str | None = strawberry.field(
        default=UNSET, description='Unique in its version; default "doc".'
    )


@strawberry.input(
    description="A new model artifact: where the model's bytes are and what they are."
)
class ModelArtifactInput(_EntityFields):
    uri: str
    name: str | None = strawberry.field(
        default=UNSET, description='Unique in its version; default "model".'
    )
    model_format_name: str | None = UNSET
    model_format_version: str | None = UNSET
    storage_key: str | None = UNSET
    storage_path: str | None = UNSET
    digest: str | None = UNSET
    size_bytes: Long | None = UNSET


@strawberry.input(description="A new model artifact of the version `versionId`.")
class CreateModelArtifactInput(ModelArtifactInput):
    version_id: strawberry.ID


@strawberry.input(description="A new doc artifact of the version `versionId`.")
class CreateDocArtifactInput(DocArtifactInput):
    version_id: strawberry.ID


@strawberry.input(description="Changes to a doc artifact; `uri` is immutable once set.")
class DocArtifactChanges(_EntityChanges):
    uri: str | None = UNSET


@strawberry.input(
    description=(
        "Changes to a model artifact; `uri`, `digest` and `sizeBytes` are immutable once set."
    )
)
class ModelArtifactChanges(DocArtifactChanges):
    model_format_name: str | None = UNSET
    model_format_version: str | None = UNSET
    storage_key: str | None = UNSET
    storage_path: str | None = UNSET
    digest: str | None = UNSET
    size_bytes: Long | None = UNSET


# --- registerModel ---------------------------------------------------------------------


@arrives_as_wire
@strawberry.input(
    description=(
        "Model, version and artifact to register in one transaction, with (optionally) the "
        "run that trained the version, its params, metrics and inputs, and its base version."
    )
)
class RegisterModelInput:
    model: RegisteredModelInput
    version: ModelVersionInput
    artifact: ModelArtifactInput | None = UNSET
    training_run: TrainingRunInput | None = UNSET
    base_version: VersionRefInput | None = UNSET


# --- datasets and code -------------------------------------------------------------------


@strawberry.input(description="A dataset: the data at `uri`, content version `digest`.")
class DatasetInput(_EntityFields):
    uri: str
    digest: str | None = UNSET
    name: str | None = strawberry.field(
        default=UNSET, description="Defaults to the last segment of the URI."
    )
    source_type: str | None = UNSET
    source: str | None = UNSET
    schema: JSON | None = UNSET
    profile: JSON | None = UNSET


@strawberry.input(description="An existing dataset: give `id`, or `uri` (and `digest`).")
class DatasetRefInput:
    id: strawberry.ID | None = UNSET
    uri: str | None = UNSET
    digest: str | None = UNSET


@strawberry.input(description="Changes to a dataset; its uri and digest are its identity.")
class DatasetChanges(_EntityChanges):
    source_type: str | None = UNSET
    source: str | None = UNSET
    schema: JSON | None = UNSET
    profile: JSON | None = UNSET


@strawberry.input(description="Code at a commit.")
class CodeRefInput(_EntityFields):
    repository: str
    commit: str | None = UNSET
    path: str | None = UNSET
    notebook: str | None = UNSET
    entry_point: str | None = UNSET
    name: str | None = strawberry.field(
        default=UNSET, description="Defaults to the repository's name."
    )


# --- experiments and runs ---------------------------------------------------------------


@strawberry.input(description="A new experiment.")
class ExperimentInput(_EntityFields):
    name: str
    project: str | None = UNSET
    owner: str | None = UNSET


@strawberry.input(description="Changes to an experiment.")
class ExperimentChanges(_EntityChanges):
    owner: str | None = UNSET


@strawberry.input(description="One metric value; step defaults to 0, timestamp to now.")
class MetricInput:
    key: str
    value: float
    step: Long | None = UNSET
    timestamp: datetime | None = UNSET


@strawberry.input(description="What a run consumed.")
class RunInputsInput:
    datasets: list[DatasetInput] | None = strawberry.field(
        default=UNSET, description="Registered if new (by uri + digest)."
    )
    dataset_refs: list[DatasetRefInput] | None = strawberry.field(
        default=UNSET, description="Datasets that must exist already."
    )
    code: list[CodeRefInput] | None = UNSET


@strawberry.input(
    description="A run; with an externalId (or a name) it is found again, not duplicated."
)
class ExperimentRunInput(_EntityFields):
    name: str | None = UNSET
    status: RunStatus | None = UNSET
    start_time: datetime | None = UNSET
    end_time: datetime | None = UNSET
    params: list[CustomPropertyInput] | None = UNSET
    metrics: list[MetricInput] | None = UNSET
    inputs: RunInputsInput | None = UNSET


@strawberry.input(description="A run of the experiment `experimentId`.")
class CreateExperimentRunInput(ExperimentRunInput):
    experiment_id: strawberry.ID


@strawberry.input(description="The run that trained a version, in the experiment named so.")
class TrainingRunInput(ExperimentRunInput):
    experiment: str


@strawberry.input(description="Changes to a run.")
class ExperimentRunChanges(_EntityChanges):
    status: RunStatus | None = UNSET
    end_time: datetime | None = UNSET


@strawberry.input(description="An existing version: give `id`, or `model` and `name`.")
class VersionRefInput:
    id: strawberry.ID | None = UNSET
    model: str | None = UNSET
    name: str | None = UNSET


# --- serving ------------------------------------------------------------------------------


@strawberry.input(description="A new serving environment.")
class ServingEnvironmentInput(_EntityFields):
    name: str


@strawberry.input(description="A new inference service; with modelVersionId it is deployed.")
class InferenceServiceInput(_EntityFields):
    environment_id: strawberry.ID
    name: str
    project: str | None = UNSET
    runtime: str | None = UNSET
    url: str | None = UNSET
    desired_state: DesiredState | None = UNSET
    model_version_id: strawberry.ID | None = UNSET


@strawberry.input(description="Changes to an inference service (deploy with deployModelVersion).")
class InferenceServiceChanges(_EntityChanges):
    runtime: str | None = UNSET
    url: str | None = UNSET


@strawberry.input(description="A dashboard or drift baseline for a version or a service.")
class MonitoringLinkInput(_EntityFields):
    target_id: strawberry.ID
    name: str
    url: str
    tool: str | None = UNSET
    kind: MonitoringKind | None = UNSET

"""Mutation inputs. They only carry data: validation lives in the domain commands."""

from __future__ import annotations

import enum
from typing import Any

import strawberry
from strawberry.types.base import has_object_definition

from lineagehub.api.graphql.filters import set_fields
from lineagehub.api.graphql.scalars import JSON, Long
from lineagehub.graph.records import State

UNSET: Any = strawberry.UNSET


def wire(value: Any) -> Any:
    """An input as the plain data a client sent: GraphQL names, no UNSET, enums as values."""
    if has_object_definition(value):
        return {name: wire(v) for name, v in set_fields(value)}
    if isinstance(value, list):
        return [wire(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    return value


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


@strawberry.input(description="A new registered model.")
class RegisteredModelInput(_EntityFields):
    name: str
    owner: str | None = UNSET
    task: str | None = UNSET
    license: str | None = UNSET
    tags: list[str] | None = UNSET


@strawberry.input(description="Changes to a registered model; omitted fields stay, null clears.")
class RegisteredModelChanges(_EntityChanges):
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


@strawberry.input(description="Model, version and artifact to register in one transaction.")
class RegisterModelInput:
    model: RegisteredModelInput
    version: ModelVersionInput
    artifact: ModelArtifactInput | None = UNSET

"""What operations return: plain frozen records built from Neo4j property maps."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from enum import Enum
from typing import Any, ClassVar, Self

from pydantic.alias_generators import to_camel

from lineagehub.graph.listing import Kind
from lineagehub.graph.properties import CustomProperty, decode


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

    @classmethod
    def from_props(cls, props: dict[str, Any]) -> Self:
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "custom_properties":
                values[f.name] = decode(props)
            elif f.name == "state":
                values[f.name] = State(props["state"])
            else:
                values[f.name] = props.get(to_camel(f.name))
        return cls(**values)


@dataclass(frozen=True, kw_only=True)
class RegisteredModel(Entity):
    LABEL = "RegisteredModel"
    NAME_LABEL = "RegisteredModel"
    FIELDS = {
        **COMMON_FIELDS,
        "owner": Kind.STRING,
        "task": Kind.STRING,
        "license": Kind.STRING,
        "tags": Kind.STRING_LIST,
    }

    owner: str | None
    task: str | None
    license: str | None
    tags: list[str] | None


@dataclass(frozen=True, kw_only=True)
class ModelVersion(Entity):
    LABEL = "ModelVersion"
    NAME_LABEL = "ModelVersion"
    NAME_SCOPE = "modelId"
    FIELDS = {**COMMON_FIELDS, "author": Kind.STRING, "modelId": Kind.ID}

    author: str | None
    model_id: str


@dataclass(frozen=True, kw_only=True)
class Artifact(Entity):
    LABEL = "Artifact"
    NAME_LABEL = "Artifact"
    NAME_SCOPE = "versionId"
    FIELDS = {**COMMON_FIELDS, "uri": Kind.STRING, "versionId": Kind.ID}

    uri: str | None
    version_id: str


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
    }

    model_format_name: str | None
    model_format_version: str | None
    storage_key: str | None
    storage_path: str | None
    digest: str | None
    size_bytes: int | None


@dataclass(frozen=True, kw_only=True)
class DocArtifact(Artifact):
    LABEL = "DocArtifact"


RECORD_TYPES: dict[str, type[Entity]] = {
    cls.LABEL: cls for cls in (RegisteredModel, ModelVersion, ModelArtifact, DocArtifact)
}


def record_from(labels: list[str], props: dict[str, Any]) -> Entity:
    """The record for a node given its labels (the most specific known label wins)."""
    for label in labels:
        if label in RECORD_TYPES:
            return RECORD_TYPES[label].from_props(props)
    raise KeyError(f"no record type for labels {labels}")

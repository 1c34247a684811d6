"""ModelArtifact and DocArtifact: the files behind a version, named uniquely within it."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, Field, StringConstraints

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
from lineagehub.graph.listing import Kind, ListSpec
from lineagehub.graph.records import Artifact, DocArtifact, ModelArtifact, ModelVersion, State
from lineagehub.graph.store import Store, Tx

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _check_uri(value: str) -> str:
    if _CONTROL.search(value) or value != value.strip():
        raise ValueError("must not contain control characters or surrounding whitespace")
    return value


Uri = Annotated[str, StringConstraints(min_length=1, max_length=4096), AfterValidator(_check_uri)]
Digest = Annotated[str, StringConstraints(min_length=1, max_length=256)]
SizeBytes = Annotated[int, Field(ge=0, le=2**63 - 1)]


class DocArtifactFields(EntityCreate):
    name: Name = "doc"
    uri: Uri


class ModelArtifactFields(DocArtifactFields):
    name: Name = "model"
    model_format_name: ShortText | None = None
    model_format_version: ShortText | None = None
    storage_key: ShortText | None = None
    storage_path: Uri | None = None
    digest: Digest | None = None
    size_bytes: SizeBytes | None = None


class _InVersion(EntityCreate):
    version_id: str

    @classmethod
    def relations(cls) -> set[str]:
        return {"version_id"}


class DocArtifactCreate(DocArtifactFields, _InVersion):
    pass


class ModelArtifactCreate(ModelArtifactFields, _InVersion):
    pass


class DocArtifactUpdate(EntityUpdate):
    uri: Uri | None = None

    IMMUTABLE_ONCE_SET: ClassVar[frozenset[str]] = frozenset({"uri"})
    REQUIRED: ClassVar[frozenset[str]] = frozenset({"name", "state", "uri"})


class ModelArtifactUpdate(DocArtifactUpdate):
    model_format_name: ShortText | None = None
    model_format_version: ShortText | None = None
    storage_key: ShortText | None = None
    storage_path: Uri | None = None
    digest: Digest | None = None
    size_bytes: SizeBytes | None = None

    IMMUTABLE_ONCE_SET: ClassVar[frozenset[str]] = frozenset({"uri", "digest", "size_bytes"})


# Both kinds are listed together; the filter whitelist is the union of their fields.
ARTIFACTS_OF_VERSION = ListSpec(
    label=Artifact.LABEL,
    parent_label=ModelVersion.LABEL,
    match="MATCH (p)-[:HAS_ARTIFACT]->(n:Artifact)",
    fields={**ModelArtifact.FIELDS, "kind": Kind.ENUM},
)


def kind_of(command: DocArtifactFields) -> type[Artifact]:
    return ModelArtifact if isinstance(command, ModelArtifactFields) else DocArtifact


async def create_in(
    tx: Tx, command: DocArtifactFields, version: dict[str, Any], *, path: str
) -> Artifact:
    """Create an artifact of ``command``'s kind under ``version`` (locked), inside ``tx``."""
    record = kind_of(command)
    if version["state"] == State.ARCHIVED.value:
        raise Conflict(
            f"ModelVersion {version['name']!r} is archived; unarchive it to add artifacts",
            field=f"{path}.versionId",
        )
    props = new_node(record.LABEL, command, now())
    props.update(versionId=version["id"], kind=record.LABEL, project=version.get("project"))
    await check_unique(tx, create_keys(record, props, path))
    tx.touch(props["id"], None, props)
    # The label is one of two literals chosen by the command's type, never by input.
    row = await tx.single(
        "MATCH (v:Node:ModelVersion {id: $versionId}) "
        "CREATE (v)-[:HAS_ARTIFACT {since: $props.createdAt}]->"
        f"(n:Node:Artifact:`{record.LABEL}`) "
        "SET n = $props, v.updatedAt = $props.updatedAt "
        "RETURN n {.*} AS n",
        {"versionId": version["id"], "props": props},
    )
    assert row is not None
    return record.from_props(row["n"])


async def create(store: Store, command: DocArtifactCreate | ModelArtifactCreate) -> Artifact:
    async def work(tx: Tx) -> Artifact:
        version = await lock(tx, ModelVersion, command.version_id, field="input.versionId")
        return await create_in(tx, command, version, path="input")

    return await store.write(work)


def artifact_from(props: dict[str, Any]) -> Artifact:
    """The record of a stored artifact, of the kind it was created as."""
    return (ModelArtifact if props.get("kind") == ModelArtifact.LABEL else DocArtifact).from_props(
        props
    )

"""ModelArtifact and DocArtifact: the files behind a version, named uniquely within it."""

from __future__ import annotations

import re
from enum import Enum
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, Field, StringConstraints

from lineagehub.graph import ids
from lineagehub.graph.commands import Command
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

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0 and C1 control characters


def _check_uri(value: str) -> str:
    if _CONTROL.search(value) or value != value.strip():
        raise ValueError("must not contain control characters or surrounding whitespace")
    return value


Uri = Annotated[str, StringConstraints(min_length=1, max_length=4096), AfterValidator(_check_uri)]
Digest = Annotated[str, StringConstraints(min_length=1, max_length=256)]
SizeBytes = Annotated[int, Field(ge=0, le=2**63 - 1)]


class ArtifactState(Enum):
    """The Kubeflow artifact life cycle; the three ending ones archive the artifact."""

    UNKNOWN = "UNKNOWN"
    PENDING = "PENDING"
    LIVE = "LIVE"
    MARKED_FOR_DELETION = "MARKED_FOR_DELETION"
    DELETED = "DELETED"
    ABANDONED = "ABANDONED"
    REFERENCE = "REFERENCE"


ENDED = frozenset(
    {ArtifactState.MARKED_FOR_DELETION, ArtifactState.DELETED, ArtifactState.ABANDONED}
)


def state_for(artifact_state: ArtifactState | None) -> State:
    """The registry state an artifact life-cycle state stands for."""
    return State.ARCHIVED if artifact_state in ENDED else State.LIVE


class ModelSourceFields(Command):
    """Where a model came from, and how to reach its storage (Kubeflow's fields)."""

    service_account_name: ShortText | None = None
    model_source_kind: ShortText | None = None
    model_source_class: ShortText | None = None
    model_source_group: ShortText | None = None
    model_source_id: ShortText | None = None
    model_source_name: ShortText | None = None


class DocArtifactFields(EntityCreate):
    name: Name = "doc"
    # May be left out while the bytes are still being uploaded (state PENDING); set once.
    uri: Uri | None = None
    artifact_state: ArtifactState | None = None


class ModelArtifactFields(DocArtifactFields, ModelSourceFields):
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
    artifact_state: ArtifactState | None = None

    def changes(self, current: dict[str, Any], path: str) -> dict[str, Any]:
        changes = super().changes(current, path)
        if "artifactState" in changes and "state" not in changes:
            changes["state"] = state_for(self.artifact_state).value
        return changes

    IMMUTABLE_ONCE_SET: ClassVar[frozenset[str]] = frozenset({"uri"})
    REQUIRED: ClassVar[frozenset[str]] = frozenset({"name", "state", "uri"})


class ModelArtifactUpdate(DocArtifactUpdate, ModelSourceFields):
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


def check_open(version: dict[str, Any], path: str) -> None:
    """CONFLICT when ``version`` (its properties) is archived: it takes no new artifacts."""
    if version["state"] == State.ARCHIVED.value:
        raise Conflict(
            f"ModelVersion {version['name']!r} is archived; unarchive it to add artifacts",
            field=f"{path}.versionId",
        )


async def create_in(
    tx: Tx, command: DocArtifactFields, version: dict[str, Any] | None, *, path: str
) -> Artifact:
    """Create an artifact of ``command``'s kind under ``version`` (locked), inside ``tx``;
    without a version it stands alone until :func:`attach_in` gives it one."""
    record = kind_of(command)
    if version is not None:
        check_open(version, path)
    props = new_node(record.LABEL, command, now())
    props.update(
        versionId=version["id"] if version else None,
        kind=record.LABEL,
        project=version.get("project") if version else None,
        state=state_for(command.artifact_state).value,
    )
    props = {k: v for k, v in props.items() if v is not None}
    await check_unique(tx, create_keys(record, props, path) if version else [])
    tx.touch(props["id"], None, props)
    # The label is one of two literals chosen by the command's type, never by input.
    row = await tx.single(
        f"CREATE (n:Node:Artifact:`{record.LABEL}`) SET n = $props "
        "WITH n "
        "OPTIONAL MATCH (v:Node:ModelVersion {id: $versionId}) "
        "FOREACH (_ IN CASE WHEN v IS NULL THEN [] ELSE [1] END | "
        "  CREATE (v)-[:HAS_ARTIFACT {since: $props.createdAt}]->(n) "
        "  SET v.updatedAt = $props.updatedAt) "
        "RETURN n {.*} AS n",
        {"versionId": version["id"] if version else None, "props": props},
    )
    assert row is not None
    return record.from_props(row["n"])


async def attach_in(tx: Tx, artifact_id: str, version: dict[str, Any], *, path: str) -> Artifact:
    """Add an existing artifact to ``version`` (locked); a no-op when it is already there.
    A standalone artifact takes the version as its own (and must then be unique in it)."""
    check_open(version, path)
    label = ids.label_of(artifact_id, field=f"{path}.id")
    record = ModelArtifact if label == ModelArtifact.LABEL else DocArtifact
    current = await lock(tx, record, artifact_id, field=f"{path}.id")
    stamp = now()
    if current.get("versionId") is None:
        claimed = {**current, "versionId": version["id"]}
        await check_unique(tx, create_keys(record, claimed, path)[:1])
        tx.touch(artifact_id, {"versionId": None}, {"versionId": version["id"]})
    row = await tx.single(
        "MATCH (n:Node:Artifact {id: $id}), (v:Node:ModelVersion {id: $versionId}) "
        "SET n.versionId = coalesce(n.versionId, v.id), "
        "    n.project = coalesce(n.project, v.project) "
        "WITH n, v "
        "CALL (n, v) { "
        "  WITH n, v WHERE NOT EXISTS { (v)-[:HAS_ARTIFACT]->(n) } "
        "  CREATE (v)-[:HAS_ARTIFACT {since: $at}]->(n) "
        "  SET v.updatedAt = $at, n.updatedAt = $at "
        "} "
        "RETURN n {.*} AS n",
        {"id": artifact_id, "versionId": version["id"], "at": stamp},
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

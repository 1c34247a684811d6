"""ModelVersion: versions of a registered model, named uniquely within it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

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
from lineagehub.graph.identity import DEFAULT_PROJECT, in_scope
from lineagehub.graph.lineage import Lineage, LineageSpec, found_with_lineage
from lineagehub.graph.listing import ListSpec
from lineagehub.graph.records import ModelVersion, RegisteredModel, State
from lineagehub.graph.store import Store, Tx


class ModelVersionFields(EntityCreate):
    """A new version. Without a name it gets the next number ("1", "2", …) of its model."""

    name: Name | None = None  # type: ignore[assignment]
    author: ShortText | None = None


class ModelVersionCreate(ModelVersionFields):
    model_id: str

    @classmethod
    def relations(cls) -> set[str]:
        return {"model_id"}


class ModelVersionUpdate(EntityUpdate):
    author: ShortText | None = None

    IMMUTABLE_ONCE_SET: ClassVar[frozenset[str]] = frozenset({"author"})


# Filters and sorts on a version may reach into the run that produced it.
_TRAINING_RUN = (("trainingRun", "(src:ExperimentRun)-[:PRODUCED]->(n)"),)
VERSIONS_OF_MODEL = ListSpec(
    label=ModelVersion.LABEL,
    parent_label=RegisteredModel.LABEL,
    match="MATCH (p)-[:HAS_VERSION]->(n:ModelVersion)",
    fields=ModelVersion.FIELDS,
    related=_TRAINING_RUN,
)
ALL_VERSIONS = ListSpec(
    label=ModelVersion.LABEL,
    match="MATCH (n:ModelVersion)",
    fields=ModelVersion.FIELDS,
    related=_TRAINING_RUN,
    indexed=frozenset({"createdAt"}),
)


# Cypher binding ``candidate`` to model ``m``'s next free version number (text), and moving
# the model's counter to it; the model's lock serialises concurrent callers.
NEXT_NUMBER = (
    "SET m.versionSeq = coalesce(m.versionSeq, 0) + 1 "
    "WITH * "
    "CALL (m) { "
    "  UNWIND range(m.versionSeq, m.versionSeq + 1000) AS candidate "
    "  WITH m, toString(candidate) AS candidate "
    # By the (modelId, name) key its uniqueness constraint indexes: a seek per candidate,
    # not a walk through every version of the model.
    "  WHERE NOT EXISTS { MATCH (:ModelVersion {modelId: m.id, name: candidate}) } "
    "  RETURN candidate LIMIT 1 "
    "} "
    "SET m.versionSeq = toInteger(candidate) "
)


async def next_version_name(tx: Tx, model_id: str) -> str:
    """The model's next free version number; the model's lock serialises concurrent callers."""
    row = await tx.single(
        f"MATCH (m:Node:RegisteredModel {{id: $id}}) {NEXT_NUMBER}RETURN candidate",
        {"id": model_id},
    )
    assert row is not None
    name: str = row["candidate"]
    return name


def check_open(model: dict[str, Any], field: str) -> None:
    """CONFLICT when ``model`` (its properties) is archived: it takes no new versions."""
    if model["state"] == State.ARCHIVED.value:
        raise Conflict(
            f"RegisteredModel {model['name']!r} is archived; unarchive it to add versions",
            field=field,
        )


async def create_in(
    tx: Tx,
    command: ModelVersionFields,
    model: dict[str, Any],
    *,
    path: str,
    model_field: str,
    name_checked: bool = False,
) -> ModelVersion:
    """Create a version inside ``tx`` under ``model`` (the locked model's properties).
    ``name_checked``: the caller found no version of this name in ``tx`` already (its
    uniqueness is not asked again; the constraint still backs it)."""
    check_open(model, model_field)
    name = command.name or await next_version_name(tx, model["id"])
    props = new_node(ModelVersion.LABEL, command, now())
    props.update(
        name=name,
        modelId=model["id"],
        approvalStatus="NONE",
        project=model.get("project", DEFAULT_PROJECT),
    )
    keys = create_keys(ModelVersion, props, path)
    await check_unique(tx, keys[1:] if name_checked else keys)
    tx.touch(props["id"], None, props)
    row = await tx.single(
        "MATCH (m:Node:RegisteredModel {id: $modelId}) "
        "CREATE (m)-[:HAS_VERSION {since: $props.createdAt}]->(n:Node:ModelVersion) "
        "SET n = $props, m.updatedAt = $props.updatedAt "
        "RETURN n {.*} AS n",
        {"modelId": model["id"], "props": props},
    )
    assert row is not None
    return ModelVersion.from_props(row["n"])


async def create(store: Store, command: ModelVersionCreate) -> ModelVersion:
    async def work(tx: Tx) -> ModelVersion:
        model = await lock(tx, RegisteredModel, command.model_id, field="input.modelId")
        return await create_in(tx, command, model, path="input", model_field="input.modelId")

    return await store.write(work)


def _by_name() -> str:
    # By the (modelId, name) key its uniqueness constraint indexes, not by walking every
    # version of the model.
    return (
        "MATCH (m:RegisteredModel {name: key.model}) "
        "MATCH (n:ModelVersion {modelId: m.id, name: key.version}) "
        f"WHERE {in_scope('n')} "
    )


async def get_by_name(
    store: Store, model_name: str, version_name: str, columns: tuple[str, ...] | None = None
) -> ModelVersion | None:
    """A version by model and version name: all its properties, or only ``columns`` (a
    record for an answer that shows no others)."""
    found, _ = await get_with_lineage(
        store, (), model_name=model_name, version_name=version_name, columns=columns
    )
    return found


async def get_with_lineage(
    store: Store,
    specs: Sequence[LineageSpec],
    *,
    model_name: str,
    version_name: str,
    columns: tuple[str, ...] | None = None,
) -> tuple[ModelVersion | None, list[Lineage]]:
    """A version by model and version name (all its properties, or only ``columns``), and
    its lineage for each of ``specs``, in one round trip."""
    key = {"model": model_name, "version": version_name}
    for props, lineages in (await found_with_lineage(store, _by_name(), {}, [key], specs, columns))[
        0
    ]:
        return ModelVersion.from_props(props), lineages
    return None, []


async def get_many_with_lineage(
    store: Store, version_ids: list[str], specs: Sequence[LineageSpec]
) -> dict[str, tuple[ModelVersion, list[Lineage]]]:
    """Versions by id, each with its lineage for each of ``specs``, in one round trip;
    missing ids are absent."""
    match = f"MATCH (n:Node:ModelVersion {{id: key.id}}) WHERE {in_scope('n')}"
    keys = [{"id": version_id} for version_id in version_ids]
    return {
        props["id"]: (ModelVersion.from_props(props), lineages)
        for rows in await found_with_lineage(store, match, {}, keys, specs)
        for props, lineages in rows
    }

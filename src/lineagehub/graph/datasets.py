"""Dataset and CodeRef: inputs of runs, identified by their natural keys.

A dataset is the data at ``uri`` with content version ``digest``; a code ref is code at a
commit. Registering either again with the same key returns the stored node (descriptive
fields of an existing one are left alone), so pipelines can report inputs on every run.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, ClassVar

from pydantic import Field, JsonValue, StringConstraints, model_validator

from lineagehub.graph import ids
from lineagehub.graph.artifacts import ArtifactState, Digest, Uri, state_for
from lineagehub.graph.commands import Command
from lineagehub.graph.entities import EntityCreate, EntityUpdate, Name, ShortText, now
from lineagehub.graph.errors import NotFound
from lineagehub.graph.listing import ListSpec, Sort
from lineagehub.graph.properties import encode
from lineagehub.graph.records import CodeRef, Dataset
from lineagehub.graph.store import Store, Tx

GitRef = Annotated[str, StringConstraints(min_length=1, max_length=256)]


def _name_from(uri: str, fallback: str) -> str:
    tail = uri.rstrip("/").rsplit("/", 1)[-1].replace("@", "-").strip()
    return tail[:256] or fallback


def dataset_uri(namespace: str, name: str) -> str:
    """The registry URI of OpenLineage dataset (namespace, name): ``<namespace>/<name>``
    for a URI namespace, else ``<namespace>:<name>`` (see ``graph/openlineage.py``)."""
    if "://" in namespace:
        return f"{namespace.rstrip('/')}/{name.lstrip('/')}"
    return f"{namespace}:{name}"


def dataset_key(uri: str | None, digest: str | None) -> str:
    return json.dumps([uri, digest or ""])


class DatasetFields(EntityCreate):
    """A dataset; ``name`` defaults to the last segment of its URI."""

    name: Name | None = None  # type: ignore[assignment]
    # Without a uri a dataset has no natural key: each registration is a new dataset.
    uri: Uri | None = None
    digest: Digest | None = None
    source_type: ShortText | None = None
    source: ShortText | None = None
    schema_: JsonValue | None = Field(default=None, alias="schema")
    profile: JsonValue | None = None
    artifact_state: ArtifactState | None = None

    def stored(self) -> dict[str, Any]:
        props = self.node_properties()
        props.pop("schema", None)
        props.update(
            name=self.name or _name_from(self.uri or "", "dataset"),
            datasetKey=dataset_key(self.uri, self.digest) if self.uri else None,
            schemaJson=json.dumps(self.schema_) if self.schema_ is not None else None,
            profileJson=json.dumps(self.profile) if self.profile is not None else None,
            state=state_for(self.artifact_state).value,
        )
        return props


class DatasetRef(Command):
    """An existing dataset: by id, or by uri (+ digest)."""

    id: str | None = None
    uri: Uri | None = None
    digest: Digest | None = None

    @model_validator(mode="after")
    def _one_way(self) -> DatasetRef:
        if (self.id is None) == (self.uri is None):
            raise ValueError("give either id, or uri (and digest)")
        return self


class DatasetUpdate(EntityUpdate):
    uri: Uri | None = None
    digest: Digest | None = None
    source_type: ShortText | None = None
    source: ShortText | None = None
    schema_: JsonValue | None = Field(default=None, alias="schema")
    profile: JsonValue | None = None
    artifact_state: ArtifactState | None = None

    # uri + digest are the dataset's identity: a digest may be filled in once, never changed.
    IMMUTABLE_ONCE_SET: ClassVar[frozenset[str]] = frozenset({"uri", "digest"})
    REQUIRED: ClassVar[frozenset[str]] = frozenset({"name", "state", "uri"})

    def changes(self, current: dict[str, Any], path: str) -> dict[str, Any]:
        changes = super().changes(current, path)
        if "uri" in changes or "digest" in changes:
            changes["datasetKey"] = dataset_key(
                changes.get("uri", current.get("uri")),
                changes.get("digest", current.get("digest")),
            )
        if "artifactState" in changes and "state" not in changes:
            changes["state"] = state_for(self.artifact_state).value
        for name, stored in (("schema", "schemaJson"), ("profile", "profileJson")):
            if name in changes:
                value = changes.pop(name)
                changes[stored] = json.dumps(value) if value is not None else None
        return changes


class CodeRefFields(EntityCreate):
    """Code at a commit; ``name`` defaults to the repository's last path segment."""

    name: Name | None = None  # type: ignore[assignment]
    repository: Uri
    commit: GitRef | None = None
    path: ShortText | None = None
    notebook: ShortText | None = None
    entry_point: ShortText | None = None

    def stored(self) -> dict[str, Any]:
        props = self.node_properties()
        key = [self.repository, self.commit, self.path, self.notebook, self.entry_point]
        props.update(
            name=self.name or _name_from(self.repository.removesuffix(".git"), "code"),
            codeKey=json.dumps(key),
        )
        return props


DATASETS = ListSpec(
    label=Dataset.LABEL,
    match="MATCH (n:Dataset)",
    fields=Dataset.FIELDS,
    default_sort=(Sort("uri"),),
    indexed=frozenset({"createdAt"}),  # (not uri: a dataset may have none)
)


async def _ensure_many(
    tx: Tx, label: str, key_property: str, items: list[tuple[dict[str, Any], dict[str, Any]]]
) -> list[tuple[dict[str, Any], bool]]:
    """Each (props, custom properties) found by its key or created, in one query; with
    whether it was created, in order."""
    if not items:
        return []
    stamp = now()
    rows = []
    for props, custom in items:
        fresh = {k: v for k, v in props.items() if v is not None}
        fresh.update(custom)
        fresh.update(id=ids.new_id(label), state="LIVE", createdAt=stamp, updatedAt=stamp)
        rows.append({"key": fresh[key_property], "props": fresh})
    # MERGE on the uniquely constrained key: concurrent reporters create one node (and a
    # key given twice here, one). label and key_property are literals of this module.
    # In key order: two writers creating the same new keys lock them in the same order.
    order = sorted(range(len(rows)), key=lambda i: rows[i]["key"])
    found = await tx.single(
        "UNWIND $rows AS row "
        f"MERGE (n:`{label}` {{`{key_property}`: row.key}}) "
        "ON CREATE SET n = row.props, n:Node "
        "RETURN collect({n: n {.*}, created: n.id = row.props.id}) AS rows",
        {"rows": [rows[i] for i in order]},
    )
    assert found is not None
    in_order: list[dict[str, Any]] = [{}] * len(rows)
    for position, row in zip(order, found["rows"], strict=True):
        in_order[position] = row
    answers = []
    for row in in_order:
        if row["created"]:
            tx.touch(row["n"]["id"], None, row["n"])
        answers.append((row["n"], row["created"]))
    return answers


async def ensure_datasets(tx: Tx, many: list[DatasetFields]) -> list[tuple[Dataset, bool]]:
    """Datasets found by URI and digest or created (one query for all of them); one
    without a URI is always new."""
    return [
        (Dataset.from_props(props), created) for props, created in await ensure_stored(tx, many)
    ]


async def ensure_stored(tx: Tx, many: list[DatasetFields]) -> list[tuple[dict[str, Any], bool]]:
    """``ensure_datasets``, answering each dataset's stored properties."""
    keyed = [fields for fields in many if fields.uri is not None]
    ensured = iter(
        await _ensure_many(
            tx,
            Dataset.LABEL,
            "datasetKey",
            [(fields.stored(), encode(fields.custom_properties)) for fields in keyed],
        )
    )
    answers: list[tuple[dict[str, Any], bool]] = []
    for fields in many:
        if fields.uri is None:
            answers.append((await _create_unkeyed(tx, fields), True))
        else:
            answers.append(next(ensured))
    return answers


async def ensure_dataset(tx: Tx, fields: DatasetFields) -> tuple[Dataset, bool]:
    (answer,) = await ensure_datasets(tx, [fields])
    return answer


async def _create_unkeyed(tx: Tx, fields: DatasetFields) -> dict[str, Any]:
    stamp = now()
    props = {k: v for k, v in fields.stored().items() if v is not None}
    props.update(encode(fields.custom_properties))
    props.update(id=ids.new_id(Dataset.LABEL), createdAt=stamp, updatedAt=stamp)
    row = await tx.single(
        "CREATE (n:Node:Dataset) SET n = $props RETURN n {.*} AS n", {"props": props}
    )
    assert row is not None
    tx.touch(props["id"], None, props)
    stored: dict[str, Any] = row["n"]
    return stored


async def ensure_codes(tx: Tx, many: list[CodeRefFields]) -> list[tuple[CodeRef, bool]]:
    """Code refs found by their key or created, one query for all of them."""
    ensured = await _ensure_many(
        tx,
        CodeRef.LABEL,
        "codeKey",
        [(fields.stored(), encode(fields.custom_properties)) for fields in many],
    )
    return [(CodeRef.from_props(props), created) for props, created in ensured]


async def ensure_code(tx: Tx, fields: CodeRefFields) -> tuple[CodeRef, bool]:
    (answer,) = await ensure_codes(tx, [fields])
    return answer


async def resolve_datasets(tx: Tx, refs: list[DatasetRef], path: str | list[str]) -> list[str]:
    """Ids of the referenced datasets, in order; NOT_FOUND naming the first missing one
    (``path[i]``, or the i-th of a list of paths)."""
    rows = await tx.run(
        "UNWIND $refs AS ref "
        "OPTIONAL MATCH (byId:Node:Dataset {id: ref.id}) "
        "OPTIONAL MATCH (byKey:Dataset {datasetKey: ref.key}) "
        "RETURN coalesce(byId.id, byKey.id) AS id",
        {
            "refs": [
                {"id": r.id, "key": dataset_key(r.uri, r.digest) if r.uri else None} for r in refs
            ]
        },
    )
    found: list[str] = []
    for i, (ref, row) in enumerate(zip(refs, rows, strict=True)):
        if row["id"] is None:
            what = ref.id or f"{ref.uri} @ {ref.digest or '(no digest)'}"
            where = path[i] if isinstance(path, list) else f"{path}[{i}]"
            raise NotFound(f"no dataset {what}", field=where)
        found.append(row["id"])
    return found


async def register_dataset(
    store: Store, fields: DatasetFields, derived_from: list[DatasetRef]
) -> tuple[Dataset, bool]:
    from lineagehub.graph import links

    async def work(tx: Tx) -> tuple[Dataset, bool]:
        dataset, created = await ensure_dataset(tx, fields)
        parents = await resolve_datasets(tx, derived_from, "input.derivedFrom")
        await links.add(
            tx,
            [
                links.Link(dataset.id, "DERIVED_FROM", p, f"input.derivedFrom[{i}]")
                for i, p in enumerate(parents)
            ],
            now(),
        )
        return dataset, created

    return await store.write(work)


async def register_code(store: Store, fields: CodeRefFields) -> tuple[CodeRef, bool]:
    return await store.write(lambda tx: ensure_code(tx, fields))


async def get_dataset(store: Store, uri: str, digest: str | None) -> list[Dataset]:
    """The dataset at ``uri`` with ``digest``; without a digest, every version, newest first."""
    if digest is not None:
        rows = await store.read(
            "MATCH (n:Dataset {datasetKey: $key}) RETURN n {.*} AS n",
            {"key": dataset_key(uri, digest)},
        )
    else:
        rows = await store.read(
            "MATCH (n:Dataset {uri: $uri}) WHERE NOT n:Deleted "
            "RETURN n {.*} AS n ORDER BY n.createdAt DESC",
            {"uri": uri},
        )
    return [Dataset.from_props(r["n"]) for r in rows]

"""What every registry entity shares: common inputs, lookups, updates and archiving.

Labels in these queries come from the record classes (a fixed whitelist), values only
from parameters.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import AfterValidator, Field, StringConstraints, field_validator

from lineagehub.graph import ids
from lineagehub.graph.coalesce import KEY_INDEX, KEYED
from lineagehub.graph.commands import Command
from lineagehub.graph.errors import Conflict, NotFound, ValidationFailed
from lineagehub.graph.identity import in_scope, scope_params
from lineagehub.graph.properties import CustomPropertyIn, PropertyKey, encode
from lineagehub.graph.records import Entity, State
from lineagehub.graph.store import Store, Tx, decode_node, node_map

E = TypeVar("E", bound=Entity)

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0 and C1 control characters


def _check_name(value: str) -> str:
    if value != value.strip():
        raise ValueError("must not begin or end with whitespace")
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    if "@" in value:
        raise ValueError("must not contain '@' (it separates a model from an alias in refs)")
    return value


Name = Annotated[str, StringConstraints(min_length=1, max_length=256), AfterValidator(_check_name)]
ExternalId = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Text = Annotated[str, StringConstraints(max_length=20000)]
ShortText = Annotated[str, StringConstraints(max_length=1024)]
MAX_CUSTOM_PROPERTIES = 200


def _unique_keys(props: list[CustomPropertyIn]) -> list[CustomPropertyIn]:
    keys = [p.key for p in props]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ValueError(f"keys must be unique; repeated: {', '.join(duplicates)}")
    return props


class EntityCreate(Command):
    name: Name
    description: Text | None = None
    external_id: ExternalId | None = None
    custom_properties: list[CustomPropertyIn] = Field(
        default_factory=list, max_length=MAX_CUSTOM_PROPERTIES
    )
    # New entities are LIVE; an importer (the Kubeflow REST edge) may create one archived.
    state: State = State.LIVE

    _keys = field_validator("custom_properties")(_unique_keys)

    def node_properties(self) -> dict[str, Any]:
        """Stored properties for this input, without the custom ones."""
        return {prop: _stored(getattr(self, name)) for name, prop in _stored_fields(type(self))}

    @classmethod
    def relations(cls) -> set[str]:
        """Fields that name other nodes rather than properties of this one."""
        return set()


@functools.cache
def _stored_fields(command: type[EntityCreate]) -> tuple[tuple[str, str], ...]:
    """(field, stored property) of each field of ``command`` that is a property of its own."""
    skip = {"custom_properties"} | command.relations()
    return tuple(
        (name, field.alias or name)
        for name, field in command.model_fields.items()
        if name not in skip
    )


class EntityUpdate(Command):
    """A partial update: fields left out stay as they are, fields set to null are cleared."""

    name: Name | None = None
    description: Text | None = None
    external_id: ExternalId | None = None
    state: State | None = None
    custom_properties: list[CustomPropertyIn] = Field(
        default_factory=list, max_length=MAX_CUSTOM_PROPERTIES
    )
    remove_custom_properties: list[PropertyKey] = Field(default_factory=list)

    _keys = field_validator("custom_properties")(_unique_keys)

    # Fields that, once set, may not change (content-addressed facts like an artifact URI).
    IMMUTABLE_ONCE_SET: ClassVar[frozenset[str]] = frozenset()
    # Fields that may not be cleared.
    REQUIRED: ClassVar[frozenset[str]] = frozenset({"name", "state"})

    def changes(self, current: dict[str, Any], path: str) -> dict[str, Any]:
        """The property map to ``SET n += …``; CONFLICT/VALIDATION for forbidden changes."""
        changes: dict[str, Any] = {}
        for name in self.model_fields_set - {"custom_properties", "remove_custom_properties"}:
            prop = type(self).model_fields[name].alias or name
            value = _stored(getattr(self, name))
            if value is None and name in self.REQUIRED:
                raise ValidationFailed(f"{prop} cannot be cleared", field=f"{path}.{prop}")
            if (
                name in self.IMMUTABLE_ONCE_SET
                and current.get(prop) is not None
                and current.get(prop) != value
            ):
                raise Conflict(
                    f"{prop} is immutable once set (stored: {current.get(prop)!r})",
                    field=f"{path}.{prop}",
                )
            changes[prop] = value
        changes.update(encode(self.custom_properties, self.remove_custom_properties))
        return changes


def _stored(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return [_stored(v) for v in value]
    return value


_last_stamp = datetime.min.replace(tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def now() -> datetime:
    """The time to stamp a write with: whole milliseconds, strictly increasing in a process.

    REST clients read create/update times as epoch milliseconds and rely on a later write
    showing a later time, even when two writes fall in the same millisecond.
    """
    global _last_stamp
    stamp = datetime.now(UTC)
    stamp = stamp.replace(microsecond=stamp.microsecond - stamp.microsecond % 1000)
    if stamp <= _last_stamp:
        stamp = _last_stamp + _MS
    _last_stamp = stamp
    return stamp


def new_node(label: str, command: EntityCreate, stamp: datetime) -> dict[str, Any]:
    """Properties of a new node of ``label`` from ``command``."""
    props = command.node_properties()
    props.update(encode(command.custom_properties))
    props.update(id=ids.new_id(label), createdAt=stamp, updatedAt=stamp)
    props.setdefault("state", State.LIVE.value)
    return {k: v for k, v in props.items() if v is not None}


# --- lookups ---------------------------------------------------------------------------


async def get_many(store: Store, record: type[E], node_ids: list[str]) -> dict[str, E]:
    """Records by id, in one round trip; missing ids are absent from the answer."""
    found = await _by_ids(store, record.LABEL, node_ids)
    return {props["id"]: _as(record, {"labels": labels, "n": props}) for labels, props in found}


async def get_any(store: Store, node_ids: list[str]) -> dict[str, Entity]:
    """Records of any type by id, in one round trip; missing ids are absent."""
    from lineagehub.graph.records import record_from

    found = await _by_ids(store, None, node_ids)
    return {props["id"]: record_from(labels, props) for labels, props in found}


async def _by_ids(
    store: Store, label: str | None, node_ids: list[str]
) -> list[tuple[list[str], dict[str, Any]]]:
    """(labels, properties) of the nodes with these ids (and ``label``, a record type's,
    when given), in scope: a keyed read, shared with other requests' under load."""
    typed = f"n:`{label}` AND " if label else ""
    per_id = await store.read_keyed(
        f"{KEYED}MATCH (n:Node {{id: key.id}}) WHERE {typed}{in_scope('n')} "
        f"RETURN {KEY_INDEX}, {node_map('n')} AS n",
        scope_params(),
        [{"id": node_id} for node_id in dict.fromkeys(node_ids)],
        raw=True,
    )
    return [decode_node(row["n"]) for rows in per_id for row in rows]


async def get_by_external_id(store: Store, record: type[E], external_id: str) -> E | None:
    rows = await store.read(
        f"MATCH (n:`{record.LABEL}` {{externalId: $externalId}}) "
        f"WHERE {in_scope('n')} "
        "RETURN labels(n) AS labels, n {.*} AS n",
        {"externalId": external_id, **scope_params()},
    )
    return _as(record, rows[0]) if rows else None


def _as(record: type[E], row: dict[str, Any]) -> E:
    from lineagehub.graph.records import record_from

    found = record_from(row["labels"], row["n"])
    assert isinstance(found, record)
    return found


async def lock(tx: Tx, record: type[Entity], node_id: str, *, field: str) -> dict[str, Any]:
    """The current properties of a node, write-locked for the rest of the transaction."""
    ids.expect_label(node_id, record.LABEL, field=field)
    row = await tx.single(
        f"MATCH (n:Node:`{record.LABEL}` {{id: $id}}) "
        f"WHERE NOT n:Deleted AND {in_scope('n')} "
        "SET n._lock = true REMOVE n._lock "
        "RETURN n {.*} AS n",
        {"id": node_id, **scope_params()},
    )
    if row is None:
        raise NotFound(f"no {record.LABEL} with id {node_id!r} (or it was deleted)", field=field)
    props: dict[str, Any] = row["n"]
    return props


async def update(
    store: Store,
    record: type[E],
    node_id: str,
    command: EntityUpdate,
    *,
    path: str = "input",
    check: Any = None,
) -> E:
    """Apply a partial update in one transaction; ``check(tx, current)`` may veto it."""
    return await store.write(
        lambda tx: update_in(tx, record, node_id, command, path=path, check=check)
    )


async def update_in(
    tx: Tx,
    record: type[E],
    node_id: str,
    command: EntityUpdate,
    *,
    path: str = "input",
    check: Any = None,
) -> E:
    """:func:`update` inside ``tx`` (for an operation that also writes something else)."""
    current = await lock(tx, record, node_id, field="id")
    if check is not None:
        await check(tx, current)
    changes = command.changes(current, path)
    await check_unique(tx, unique_keys(record, current, changes, path))
    tx.touch(node_id, {k: current.get(k) for k in changes}, changes)
    row = await tx.single(
        f"MATCH (n:Node:`{record.LABEL}` {{id: $id}}) "
        "SET n += $changes, n.updatedAt = $now "
        "RETURN labels(n) AS labels, n {.*} AS n",
        {"id": node_id, "changes": changes, "now": now()},
    )
    assert row is not None
    return _as(record, row)


def unique_keys(
    record: type[Entity], current: dict[str, Any], changes: dict[str, Any], path: str
) -> list[UniqueKey]:
    """The unique keys an update changes (a key kept as it is cannot collide)."""
    merged = {**current, **changes}
    return [
        key
        for key in create_keys(record, merged, path)
        if any(changes.get(p, current.get(p)) != current.get(p) for p in key.props)
    ]


async def set_state(store: Store, record: type[E], node_id: str, state: State) -> E:
    return await update(store, record, node_id, EntityUpdate(state=state))


@dataclass(frozen=True)
class UniqueKey:
    """A value that must be unique: the input field it came from, the label, the properties."""

    path: str
    label: str
    props: dict[str, Any]


async def check_unique(tx: Tx, keys: list[UniqueKey]) -> None:
    """CONFLICT naming the field when another node already holds one of ``keys``.

    Labels and property names are written in code; keys with a null value are skipped
    (null is never a duplicate). The uniqueness constraints stay the last line of defence
    against concurrent writers.
    """
    checks = [k for k in keys if all(v is not None for v in k.props.values())]
    if not checks:
        return
    params: dict[str, Any] = {}
    terms = []
    for i, key in enumerate(checks):
        params[f"c{i}"] = key.props
        pattern = ", ".join(f"`{k}`: $c{i}.`{k}`" for k in key.props)
        terms.append(f"COUNT {{ MATCH (n:`{key.label}` {{{pattern}}}) }} > 0")
    row = await tx.single(f"RETURN [{', '.join(terms)}] AS taken", params)
    assert row is not None
    for key, taken in zip(checks, row["taken"], strict=True):
        if taken:
            raise taken_conflict(key)


def taken_conflict(key: UniqueKey) -> Conflict:
    """The CONFLICT for a unique key another node already holds (its scope, the id of the
    parent it is unique under, is said as "here")."""
    scoped = [k for k in key.props if k.endswith("Id") and k != "externalId"]
    shown = ", ".join(f"{k}={v!r}" for k, v in key.props.items() if k not in scoped)
    scope = " here" if scoped else ""
    return Conflict(f"a {key.label} with {shown} already exists{scope}", field=key.path)


def create_keys(record: type[Entity], props: dict[str, Any], path: str) -> list[UniqueKey]:
    """The unique keys a new node's properties must not collide on: its name (in its
    scope), then its externalId."""
    scoped = {record.NAME_SCOPE: props.get(record.NAME_SCOPE)} if record.NAME_SCOPE else {}
    return [
        UniqueKey(f"{path}.name", record.NAME_LABEL, {**scoped, "name": props.get("name")}),
        UniqueKey(f"{path}.externalId", record.LABEL, {"externalId": props.get("externalId")}),
    ]

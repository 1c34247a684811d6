"""Entity values completed straight from the properties Neo4j returned.

A lineage answer of 2,000 nodes would otherwise build 2,000 records and 2,000 GraphQL
objects (every field of each, decoded) to show three fields of each. When a node type's
selection has only plain fields, ``entity_completer`` reads each selected field from the
node's properties with the very decoder its record uses (``records.reading_plan``), then
the conversion its GraphQL object applies (``ADAPT``), and completes it with the
executor's completers; nothing else is built. A node type whose GraphQL object overrides
``from_record``, or a selection reaching beyond plain fields, is completed from the
objects as before.

The values are those ``from_record(record_from(labels, props))`` would carry: the same
decoder and conversion on the same properties. (One difference remains, on data the API
cannot write: a
property some *unselected* field fails to decode makes the object path fail, not this.)
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any, Protocol

from graphql import (
    GraphQLAbstractType,
    GraphQLObjectType,
    is_abstract_type,
    is_non_null_type,
    is_object_type,
)

from lineagehub.api.graphql.execution import Executor, GiveUp, filler, plain_attribute
from lineagehub.api.graphql.lineage import wrap
from lineagehub.api.graphql.nodes import GRAPHQL_TYPES
from lineagehub.api.graphql.types import RegistryEntity, copied_fields
from lineagehub.graph.records import RECORD_TYPES, Entity, reading_plan

Complete = Callable[[Any], Any]


class Row(Protocol):
    """A node as read: what ``graph.lineage.LineageNode`` offers."""

    labels: list[str]
    props: dict[str, Any]

    @property
    def record(self) -> Entity: ...


@lru_cache(maxsize=64)
def _label(labels: tuple[str, ...]) -> str:
    """The record type a node's labels make (as ``records.record_from`` picks it)."""
    for label in labels:
        if label in RECORD_TYPES:
            return label
    raise KeyError(f"no record type for labels {labels}")


_BASE_FROM_RECORD = getattr(RegistryEntity.from_record, "__func__", None)
Read = Callable[[dict[str, Any]], Any]


def _stored(name: str) -> Read:
    return lambda props: props.get(name)


def _adapted(adapt: Callable[[Any], Any], read: Read) -> Read:
    return lambda props: adapt(read(props))


def _from_objects(plan: Complete) -> Complete:
    return lambda row: plan(wrap(row.record))


def _row_plan(
    executor: Executor, object_type: GraphQLObjectType, fields: Any
) -> Callable[[Row], dict[str, Any]] | None:
    gql = GRAPHQL_TYPES.get(object_type.name)
    record_type = RECORD_TYPES.get(object_type.name)
    if gql is None or record_type is None:
        return None
    if getattr(gql.from_record, "__func__", None) is not _BASE_FROM_RECORD:
        return None  # the object is more than a copy of its record
    plan_of_record = reading_plan(record_type)  # type: ignore[arg-type]
    reading = {name: (stored, decoder) for name, stored, decoder in plan_of_record}
    copied = set(copied_fields(gql, record_type))  # type: ignore[arg-type]

    def field(name: str, group: Any) -> tuple[Read, Complete] | None:
        attribute = plain_attribute(object_type, name, group)
        complete = executor.completer(object_type.fields[name].type, group) if attribute else None
        if attribute is None or complete is None:
            return None
        if attribute not in copied or attribute not in reading:
            return None
        stored, decoder = reading[attribute]
        read = decoder if decoder is not None else _stored(stored)
        if attribute in gql.ADAPT:
            read = _adapted(gql.ADAPT[attribute], read)
        return read, complete

    slots = executor.slots(object_type, fields, field)
    if slots is None:
        return None
    filled = filler(slots)
    return lambda row: filled(row.props)


def entity_completer(executor: Executor, field_type: Any, fields: Any) -> Complete | None:
    """How to complete rows as values of the (non-null) entity type ``field_type``, or
    None when some possible type can be completed neither from rows nor from objects."""
    if not is_non_null_type(field_type):
        return None  # lineage entity fields are all non-null
    named = field_type.of_type
    if is_abstract_type(named):
        assert isinstance(named, GraphQLAbstractType)
        possible = list(executor.schema.get_possible_types(named))
    elif is_object_type(named):
        possible = [named]
    else:
        return None
    plans: dict[str, Complete] = {}
    for object_type in possible:
        row_plan = _row_plan(executor, object_type, fields)
        if row_plan is None:
            object_plan = executor.plan(object_type, fields)
            if object_plan is None:
                return None
            plans[object_type.name] = _from_objects(object_plan)
        else:
            plans[object_type.name] = row_plan

    def complete(row: Row) -> Any:
        plan = plans.get(_label(tuple(row.labels)))
        if plan is None:
            raise GiveUp
        return plan(row)

    return complete

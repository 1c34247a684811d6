"""Filter and order inputs, generated from each record's field whitelist.

One definition drives the GraphQL inputs and the Cypher compiler, so a field that can be
filtered in the schema is exactly a field the compiler accepts.
"""

from __future__ import annotations

import enum
import re
from datetime import datetime
from typing import Any

import strawberry
from strawberry.types.base import get_object_definition

from lineagehub.api.graphql.scalars import JSON, Long
from lineagehub.graph.listing import Condition, Filter, Kind, Sort
from lineagehub.graph.records import State

# Registered under GraphQL names; annotations use the Python enums themselves.
strawberry.enum(State, name="EntityState", description="Lifecycle state.")


@strawberry.enum(description="Sort direction.")
class SortDirection(enum.Enum):
    ASC = "ASC"
    DESC = "DESC"


@strawberry.input(description="Conditions on an ID; all given conditions must hold.")
class IDFilter:
    eq: strawberry.ID | None = strawberry.UNSET
    ne: strawberry.ID | None = strawberry.UNSET
    in_: list[strawberry.ID] | None = strawberry.field(name="in", default=strawberry.UNSET)
    not_in: list[strawberry.ID] | None = strawberry.UNSET


@strawberry.input(description="Conditions on a string; all given conditions must hold.")
class StringFilter:
    eq: str | None = strawberry.UNSET
    ne: str | None = strawberry.UNSET
    in_: list[str] | None = strawberry.field(name="in", default=strawberry.UNSET)
    not_in: list[str] | None = strawberry.UNSET
    contains: str | None = strawberry.UNSET
    starts_with: str | None = strawberry.UNSET
    ends_with: str | None = strawberry.UNSET
    exists: bool | None = strawberry.UNSET


@strawberry.input(description="Conditions on a lifecycle state.")
class StateFilter:
    eq: State | None = strawberry.UNSET
    ne: State | None = strawberry.UNSET
    in_: list[State] | None = strawberry.field(name="in", default=strawberry.UNSET)
    not_in: list[State] | None = strawberry.UNSET


@strawberry.input(description="A time range or instant; bounds may be combined.")
class DateTimeFilter:
    eq: datetime | None = strawberry.UNSET
    gt: datetime | None = strawberry.UNSET
    gte: datetime | None = strawberry.UNSET
    lt: datetime | None = strawberry.UNSET
    lte: datetime | None = strawberry.UNSET
    exists: bool | None = strawberry.UNSET


@strawberry.input(description="Conditions on a 64-bit integer.")
class LongFilter:
    eq: Long | None = strawberry.UNSET
    ne: Long | None = strawberry.UNSET
    gt: Long | None = strawberry.UNSET
    gte: Long | None = strawberry.UNSET
    lt: Long | None = strawberry.UNSET
    lte: Long | None = strawberry.UNSET
    in_: list[Long] | None = strawberry.field(name="in", default=strawberry.UNSET)
    exists: bool | None = strawberry.UNSET


@strawberry.input(description="Conditions on a list of strings.")
class StringListFilter:
    contains: str | None = strawberry.UNSET
    contains_any: list[str] | None = strawberry.UNSET
    contains_all: list[str] | None = strawberry.UNSET
    exists: bool | None = strawberry.UNSET


@strawberry.input(
    description=(
        "Conditions on one custom property. Comparisons take a JSON scalar (string, number "
        "or boolean) and compare with the stored value's own type; JSON-typed properties "
        "support only `exists`."
    )
)
class CustomPropertyFilter:
    key: str
    eq: JSON | None = strawberry.UNSET
    ne: JSON | None = strawberry.UNSET
    gt: JSON | None = strawberry.UNSET
    gte: JSON | None = strawberry.UNSET
    lt: JSON | None = strawberry.UNSET
    lte: JSON | None = strawberry.UNSET
    in_: list[JSON] | None = strawberry.field(name="in", default=strawberry.UNSET)
    contains: str | None = strawberry.UNSET
    starts_with: str | None = strawberry.UNSET
    exists: bool | None = strawberry.UNSET


_CONDITION_INPUTS: dict[Kind, type] = {
    Kind.ID: IDFilter,
    Kind.STRING: StringFilter,
    Kind.ENUM: StateFilter,
    Kind.TIME: DateTimeFilter,
    Kind.NUMBER: LongFilter,
    Kind.STRING_LIST: StringListFilter,
}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def filter_input(
    type_name: str, fields: dict[str, Kind], *, skip: frozenset[str] = frozenset()
) -> Any:
    """``<type_name>Filter``: AND/OR/NOT over the fields' conditions and custom properties."""
    cls: Any = type(f"{type_name}Filter", (), {"__doc__": None})
    annotations: dict[str, Any] = {
        "and_": list[cls] | None,
        "or_": list[cls] | None,
        "not_": cls | None,
    }
    namespace: dict[str, Any] = {
        "and_": strawberry.field(
            name="AND", default=strawberry.UNSET, description="All must hold."
        ),
        "or_": strawberry.field(name="OR", default=strawberry.UNSET, description="One must hold."),
        "not_": strawberry.field(
            name="NOT", default=strawberry.UNSET, description="Must not hold."
        ),
    }
    for prop, kind in fields.items():
        if prop in skip:
            continue
        name = _snake(prop)
        annotations[name] = _CONDITION_INPUTS[kind] | None
        namespace[name] = strawberry.field(name=prop, default=strawberry.UNSET)
    annotations["custom_properties"] = list[CustomPropertyFilter] | None
    namespace["custom_properties"] = strawberry.field(
        default=strawberry.UNSET, description="Every condition must hold."
    )
    for key, value in namespace.items():
        setattr(cls, key, value)
    cls.__annotations__ = annotations
    return strawberry.input(
        cls,
        description=f"Which {type_name}s to return; all given conditions must hold.",
    )


def sort_field_enum(type_name: str, fields: dict[str, Kind]) -> Any:
    members = {
        _snake(prop).upper(): prop for prop, kind in fields.items() if kind is not Kind.STRING_LIST
    }
    fields_enum: Any = enum.Enum(f"{type_name}SortField", members)  # type: ignore[misc]
    return strawberry.enum(fields_enum, description=f"Fields {type_name}s can be sorted on.")


def order_input(type_name: str, sort_enum: Any) -> Any:
    cls: Any = type(f"{type_name}Order", (), {})
    cls.__annotations__ = {
        "field": sort_enum | None,
        "custom_property": str | None,
        "direction": SortDirection,
    }
    cls.field = strawberry.field(default=strawberry.UNSET, description="A field to sort on.")
    cls.custom_property = strawberry.field(
        default=strawberry.UNSET, description="Or the key of a custom property to sort on."
    )
    cls.direction = strawberry.field(default=SortDirection.ASC)
    return strawberry.input(
        cls, description=f"One sort key for {type_name}s: give `field` or `customProperty`."
    )


# --- translation to the domain ----------------------------------------------------------


def _value(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list):
        return [_value(v) for v in value]
    return value


def graphql_name(f: Any) -> str:
    """A field's name in the schema (explicit, or the python name in camelCase)."""
    if f.graphql_name:
        name: str = f.graphql_name
        return name
    head, *rest = str(f.python_name).split("_")
    return head + "".join(part.title() for part in rest)


def set_fields(obj: Any) -> list[tuple[str, Any]]:
    """(schema name, value) of every field of an input object that the client gave."""
    definition = get_object_definition(obj, strict=True)
    found = []
    for f in definition.fields:
        value = getattr(obj, f.python_name)
        if value is not strawberry.UNSET:
            found.append((graphql_name(f), value))
    return found


def to_filter(flt: Any, path: str = "filter") -> Filter | None:
    """The domain filter for a generated filter input (None: no filter)."""
    if flt is None or flt is strawberry.UNSET:
        return None
    conditions: list[Condition] = []
    all_of: list[Filter] = []
    any_of: list[Filter] = []
    none_of: Filter | None = None
    for name, value in set_fields(flt):
        if value is None:
            continue
        if name == "AND":
            all_of += [f for i, v in enumerate(value) if (f := to_filter(v, f"{path}.AND[{i}]"))]
        elif name == "OR":
            any_of += [
                f or Filter()
                for i, v in enumerate(value)
                for f in [to_filter(v, f"{path}.OR[{i}]")]
            ]
        elif name == "NOT":
            none_of = to_filter(value, f"{path}.NOT")
        elif name == "customProperties":
            for i, cond in enumerate(value):
                for op, operand in set_fields(cond):
                    if op != "key" and operand is not None:
                        conditions.append(
                            Condition(
                                field="customProperties",
                                op=op,
                                value=_value(operand),
                                path=f"{path}.customProperties[{i}].{op}",
                                custom_key=cond.key,
                            )
                        )
        else:
            for op, operand in set_fields(value):
                if operand is not None:
                    conditions.append(
                        Condition(
                            field=name, op=op, value=_value(operand), path=f"{path}.{name}.{op}"
                        )
                    )
    return Filter(
        conditions=tuple(conditions),
        all_of=tuple(all_of),
        any_of=tuple(any_of),
        none_of=none_of,
    )


def to_sorts(order_by: Any) -> tuple[Sort, ...]:
    from lineagehub.graph.errors import ValidationFailed

    if order_by is None or order_by is strawberry.UNSET:
        return ()
    sorts = []
    for i, order in enumerate(order_by):
        has_field = order.field not in (None, strawberry.UNSET)
        has_custom = order.custom_property not in (None, strawberry.UNSET)
        if has_field == has_custom:
            raise ValidationFailed(
                "give exactly one of field or customProperty", field=f"orderBy[{i}]"
            )
        sorts.append(
            Sort(
                field=order.field.value if has_field else None,
                custom_key=order.custom_property if has_custom else None,
                descending=order.direction is SortDirection.DESC,
            )
        )
    return tuple(sorts)

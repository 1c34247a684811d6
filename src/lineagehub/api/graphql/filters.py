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
from lineagehub.graph.properties import METRIC_PREFIX, PARAM_PREFIX, SCALAR_PREFIX
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


# Filter fields that hold conditions on dynamic keys: name -> (namespace, via).
KEYED_FILTERS: dict[str, tuple[str, str | None]] = {
    "customProperties": (SCALAR_PREFIX, None),
    "params": (PARAM_PREFIX, None),
    "metrics": (METRIC_PREFIX, None),
    "trainingParams": (PARAM_PREFIX, "trainingRun"),
    "trainingMetrics": (METRIC_PREFIX, "trainingRun"),
}
KEYED_SORTS: dict[str, tuple[str, str | None]] = {
    "customProperty": (SCALAR_PREFIX, None),
    "param": (PARAM_PREFIX, None),
    "metric": (METRIC_PREFIX, None),
    "trainingParam": (PARAM_PREFIX, "trainingRun"),
    "trainingMetric": (METRIC_PREFIX, "trainingRun"),
}
_KEYED_DESCRIPTIONS = {
    "customProperties": "Conditions on custom properties; every one must hold.",
    "params": "Conditions on params; every one must hold.",
    "metrics": "Conditions on the latest value of metrics; every one must hold.",
    "trainingParams": "Conditions on params of the run that produced it.",
    "trainingMetrics": "Conditions on metrics of the run that produced it.",
    "customProperty": "Or the key of a custom property to sort on.",
    "param": "Or the key of a param to sort on.",
    "metric": "Or the key of a metric (latest value) to sort on.",
    "trainingParam": "Or a param of the run that produced it.",
    "trainingMetric": "Or a metric of the run that produced it.",
}


def filter_input(
    type_name: str,
    fields: dict[str, Kind],
    *,
    skip: frozenset[str] = frozenset(),
    keyed: tuple[str, ...] = ("customProperties",),
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
    for key in keyed:
        name = _snake(key)
        annotations[name] = list[CustomPropertyFilter] | None
        namespace[name] = strawberry.field(
            name=key, default=strawberry.UNSET, description=_KEYED_DESCRIPTIONS[key]
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


def order_input(
    type_name: str, sort_enum: Any, *, keyed: tuple[str, ...] = ("customProperty",)
) -> Any:
    cls: Any = type(f"{type_name}Order", (), {})
    annotations: dict[str, Any] = {"field": sort_enum | None}
    cls.field = strawberry.field(default=strawberry.UNSET, description="A field to sort on.")
    for key in keyed:
        annotations[_snake(key)] = str | None
        setattr(
            cls,
            _snake(key),
            strawberry.field(
                name=key, default=strawberry.UNSET, description=_KEYED_DESCRIPTIONS[key]
            ),
        )
    annotations["direction"] = SortDirection
    cls.direction = strawberry.field(default=SortDirection.ASC)
    cls.__annotations__ = annotations
    options = ", ".join(f"`{k}`" for k in ("field", *keyed))
    return strawberry.input(
        cls, description=f"One sort key for {type_name}s: give one of {options}."
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
        elif name in KEYED_FILTERS:
            namespace, via = KEYED_FILTERS[name]
            for i, cond in enumerate(value):
                for op, operand in set_fields(cond):
                    if op != "key" and operand is not None:
                        conditions.append(
                            Condition(
                                field=name,
                                op=op,
                                value=_value(operand),
                                path=f"{path}.{name}[{i}].{op}",
                                custom_key=cond.key,
                                namespace=namespace,
                                via=via,
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
        given = [(k, v) for k, v in set_fields(order) if k != "direction" and v is not None]
        if len(given) != 1:
            options = [k for k, _ in set_fields(order) if k != "direction"]
            raise ValidationFailed(
                f"give exactly one sort key ({', '.join(options) or 'field'})",
                field=f"orderBy[{i}]",
            )
        key, value = given[0]
        descending = order.direction is SortDirection.DESC
        if key == "field":
            sorts.append(Sort(field=value.value, descending=descending))
        else:
            namespace, via = KEYED_SORTS[key]
            sorts.append(Sort(None, descending, custom_key=value, namespace=namespace, via=via))
    return tuple(sorts)

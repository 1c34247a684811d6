"""Scalars beyond GraphQL's own, registered with the schema through ``SCALARS``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

JSON = NewType("JSON", object)
Long = NewType("Long", int)


def _parse_long(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("Long takes an integer (or its decimal string)")
    number = int(value)
    if not -(2**63) <= number < 2**63:
        raise ValueError("Long is a signed 64-bit integer")
    return number


def _parse_time(value: Any) -> datetime:
    """An ISO 8601 date and time; without an offset, UTC (so that every stored time is
    comparable with every other: Neo4j cannot compare a local time with a zoned one)."""
    if not isinstance(value, str):
        raise ValueError("DateTime takes an ISO 8601 string")
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


SCALARS: dict[object, ScalarDefinition] = {
    datetime: strawberry.scalar(
        name="DateTime",
        description="A date and time, ISO 8601; one given without an offset is UTC.",
        serialize=datetime.isoformat,
        parse_value=_parse_time,
    ),
    JSON: strawberry.scalar(
        name="JSON",
        description="Any JSON value: object, array, string, number, boolean or null.",
        serialize=lambda v: v,
        parse_value=lambda v: v,
    ),
    Long: strawberry.scalar(
        name="Long",
        description="A signed 64-bit integer (beyond GraphQL Int's 32 bits).",
        serialize=int,
        parse_value=_parse_long,
    ),
}

"""Scalars beyond GraphQL's own, registered with the schema through ``SCALARS``."""

from __future__ import annotations

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


SCALARS: dict[object, ScalarDefinition] = {
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

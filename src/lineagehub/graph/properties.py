"""Typed custom properties, stored as plain node properties so Cypher can filter on them.

A scalar (string, int, float, bool) is stored as ``cp.<key>`` with its native Neo4j type;
a JSON value is stored as ``cpj.<key>`` holding its JSON text. Keys are read back by
prefix, so no second structure has to be kept in step.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any

from pydantic import AfterValidator, Field, JsonValue, model_validator

from lineagehub.graph.commands import Command

SCALAR_PREFIX = "cp."
JSON_PREFIX = "cpj."
# Run parameters are typed values too, in their own namespace.
PARAM_PREFIX = "param."
PARAM_JSON_PREFIX = "paramj."
# A run's metrics: the latest value, and the history as parallel lists.
METRIC_PREFIX = "metric."
HISTORY_VALUES = "metricValues."
HISTORY_STEPS = "metricSteps."
HISTORY_TIMES = "metricTimes."
JSON_SLOT = {SCALAR_PREFIX: JSON_PREFIX, PARAM_PREFIX: PARAM_JSON_PREFIX}
# Any text of at most 128 characters: keys only ever reach Cypher as parameters
# (``n[$key]``, ``SET n += $map``), and Kubeflow clients send whatever keys they hold
# ("model card", "mlflow.source.type", even ""). Neo4j refuses one thing in a property
# name: the NUL character.
KEY_PATTERN = re.compile(r"^[^\x00]{0,128}$")
INT64 = (-(2**63), 2**63 - 1)


class PropertyType(Enum):
    STRING = "STRING"
    INT = "INT"
    FLOAT = "FLOAT"
    BOOL = "BOOL"
    JSON = "JSON"


@dataclass(frozen=True, slots=True)
class CustomProperty:
    key: str
    type: PropertyType
    value: Any


def _check_key(key: str) -> str:
    if not KEY_PATTERN.match(key):
        raise ValueError("a key holds at most 128 characters, none of them NUL")
    return key


PropertyKey = Annotated[str, AfterValidator(_check_key)]


class CustomPropertyIn(Command):
    """One typed value: exactly one of the value fields is given."""

    key: PropertyKey
    string_value: str | None = Field(default=None, max_length=65536)
    int_value: int | None = Field(default=None, ge=INT64[0], le=INT64[1])
    float_value: float | None = None
    bool_value: bool | None = None
    json_value: JsonValue | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> CustomPropertyIn:
        given = [
            name
            for name in ("string_value", "int_value", "float_value", "bool_value", "json_value")
            if getattr(self, name) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of stringValue, intValue, floatValue, boolValue, jsonValue"
            )
        return self

    def typed(self) -> CustomProperty:
        if self.string_value is not None:
            return CustomProperty(self.key, PropertyType.STRING, self.string_value)
        if self.int_value is not None:
            return CustomProperty(self.key, PropertyType.INT, self.int_value)
        if self.float_value is not None:
            return CustomProperty(self.key, PropertyType.FLOAT, self.float_value)
        if self.bool_value is not None:
            return CustomProperty(self.key, PropertyType.BOOL, self.bool_value)
        return CustomProperty(self.key, PropertyType.JSON, self.json_value)


def encode(
    properties: list[CustomPropertyIn],
    removed: list[str] | None = None,
    *,
    prefix: str = SCALAR_PREFIX,
) -> dict[str, Any]:
    """Node properties to ``SET n += $map``: each key set under exactly one slot.

    A key's other slot (scalar or JSON) is set to null so changing a value's type leaves
    no ghost.
    """
    json_prefix = JSON_SLOT[prefix]
    encoded: dict[str, Any] = {}
    for key in removed or []:
        encoded[prefix + key] = None
        encoded[json_prefix + key] = None
    for prop in properties:
        typed = prop.typed()
        if typed.type is PropertyType.JSON:
            encoded[json_prefix + typed.key] = json.dumps(typed.value, sort_keys=True)
            encoded[prefix + typed.key] = None
        else:
            encoded[prefix + typed.key] = typed.value
            encoded[json_prefix + typed.key] = None
    return encoded


def decode(props: dict[str, Any], *, prefix: str = SCALAR_PREFIX) -> list[CustomProperty]:
    """The typed values of one namespace held in a node's property map, sorted by key."""
    json_prefix = JSON_SLOT[prefix]
    found: list[CustomProperty] = []
    for name, value in props.items():
        if name.startswith(json_prefix):
            key = name[len(json_prefix) :]
            found.append(CustomProperty(key, PropertyType.JSON, json.loads(value)))
        elif name.startswith(prefix):
            found.append(CustomProperty(name[len(prefix) :], _scalar_type(value), value))
    return sorted(found, key=lambda p: p.key)


def _scalar_type(value: Any) -> PropertyType:
    if isinstance(value, bool):
        return PropertyType.BOOL
    if isinstance(value, int):
        return PropertyType.INT
    if isinstance(value, float):
        return PropertyType.FLOAT
    return PropertyType.STRING

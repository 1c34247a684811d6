"""Validated inputs of domain operations (pydantic), independent of any API edge.

Field names are snake_case in Python and camelCase on the wire; a validation failure is
reported with the camelCase path (``input.version.customProperties[0].key``) so a client
sees the name it sent.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from lineagehub.graph.errors import ValidationFailed

C = TypeVar("C", bound="Command")


class Command(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        strict=False,
    )


def empty_dict(value: Any) -> Any:
    """A ``BeforeValidator``: null as an empty object (producers send either)."""
    return {} if value is None else value


def empty_list(value: Any) -> Any:
    """A ``BeforeValidator``: null as an empty list (producers send either)."""
    return [] if value is None else value


def _path(prefix: str, loc: tuple[int | str, ...]) -> str:
    path = prefix
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def validate(command: type[C], data: dict[str, Any], *, path: str = "input") -> C:
    """Build ``command`` from wire data; VALIDATION naming every offending field."""
    try:
        return command.model_validate(data)
    except ValidationError as error:
        problems = [
            {
                "field": _path(
                    path, tuple(p for p in e["loc"] if not str(p).startswith("function-"))
                ),
                "message": e["msg"].removeprefix("Value error, "),
            }
            for e in error.errors()
        ]
        first = problems[0]
        summary = f"{first['field']}: {first['message']}"
        if len(problems) > 1:
            summary += f" (and {len(problems) - 1} more problem(s))"
        raise ValidationFailed(summary, field=first["field"], problems=problems) from None

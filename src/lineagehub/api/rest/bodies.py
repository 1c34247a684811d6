"""Request bodies checked against the OpenAPI document we serve: unknown fields are
rejected, required ones demanded, JSON types checked (400); domain rules come after (422)."""

from __future__ import annotations

import functools
import importlib.resources
import re
from typing import Any

import yaml

from lineagehub.api.rest.reads import BadRequest

SPEC_FILES = {
    "v1alpha3": "model-registry-v1alpha3.yaml",
    "v1": "model-registry-v1.yaml",
}

# An absolute URI: a scheme, then no whitespace or control characters (RFC 3986's shape).
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s\x00-\x1f\x7f<>\"{}|\\^`]*")

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


@functools.cache
def upstream_spec(version: str = "v1alpha3") -> dict[str, Any]:
    """The Kubeflow Model Registry OpenAPI document of ``version`` (shipped as data)."""
    text = (
        importlib.resources.files("lineagehub.api.rest")
        .joinpath("openapi", SPEC_FILES[version])
        .read_text()
    )
    spec: dict[str, Any] = yaml.safe_load(text)
    return spec


@functools.cache
def schema_fields(name: str) -> tuple[dict[str, dict[str, Any]], frozenset[str]]:
    """(properties, required) of a component schema, with ``allOf`` flattened."""
    schemas = upstream_spec()["components"]["schemas"]
    schema = schemas[name]
    props: dict[str, dict[str, Any]] = {}
    required: set[str] = set(schema.get("required", []))
    for part in schema.get("allOf", []):
        if "$ref" in part:
            inner, inner_required = schema_fields(part["$ref"].rsplit("/", 1)[-1])
            props.update(inner)
            required |= inner_required
        else:
            props.update(part.get("properties", {}))
            required |= set(part.get("required", []))
    props.update(schema.get("properties", {}))
    return props, frozenset(required)


def _type_of(prop: dict[str, Any]) -> str | None:
    if "$ref" in prop:
        target = upstream_spec()["components"]["schemas"][prop["$ref"].rsplit("/", 1)[-1]]
        if "enum" in target:
            return "enum:" + ",".join(target["enum"])
        kind = target.get("type")
        return kind if isinstance(kind, str) else None
    if "enum" in prop:
        return "enum:" + ",".join(prop["enum"])
    kind = prop.get("type")
    return kind if isinstance(kind, str) else None


def check_body(body: Any, schema: str) -> dict[str, Any]:
    """``body`` checked against component ``schema``: an object with known fields only."""
    if not isinstance(body, dict):
        raise BadRequest(f"the body must be a JSON object ({schema})", field="body")
    props, required = schema_fields(schema)
    unknown = sorted(set(body) - set(props))
    if unknown:
        raise BadRequest(
            f"unknown field(s) for {schema}: {', '.join(unknown)}", field=f"body.{unknown[0]}"
        )
    missing = sorted(k for k in required if body.get(k) is None)
    if missing:
        raise BadRequest(f"{schema} needs {', '.join(missing)}", field=f"body.{missing[0]}")
    for key, value in body.items():
        if value is None:
            raise BadRequest(f"{key} must not be null (leave it out instead)", field=f"body.{key}")
        if props[key].get("readOnly"):
            raise BadRequest(f"{key} is set by the server", field=f"body.{key}")
        kind = _type_of(props[key])
        if kind is None:
            continue
        if kind.startswith("enum:"):
            allowed = kind[5:].split(",")
            if value not in allowed:
                raise BadRequest(f"{key} must be one of {', '.join(allowed)}", field=f"body.{key}")
            continue
        expected = _JSON_TYPES.get(kind, ())
        is_bool = isinstance(value, bool)
        if not isinstance(value, expected) or (is_bool and kind in ("integer", "number")):
            raise BadRequest(f"{key} must be a JSON {kind}", field=f"body.{key}")
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            raise BadRequest(f"{key} must be a list of strings", field=f"body.{key}")
        if props[key].get("format") == "uri" and not _URI.fullmatch(str(value)):
            raise BadRequest(f"{key} must be an absolute URI", field=f"body.{key}")
    return body

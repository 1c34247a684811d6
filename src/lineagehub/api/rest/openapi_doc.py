"""The OpenAPI document we serve for each API version: the Kubeflow Model Registry's own,
with the limits lineagehub adds (name and key patterns, lengths) and bearer tokens, so a
client (or a fuzzer) generating schema-valid requests gets requests we accept."""

from __future__ import annotations

import copy
import functools
from typing import Any

from lineagehub.api.rest.bodies import upstream_spec
from lineagehub.api.rest.resources import MODEL_ARTIFACT_FIELDS
from lineagehub.graph.properties import KEY_PATTERN

# A name: no '@', no control characters, no surrounding whitespace.
NAME_PATTERN = r"^[^@\s\x00-\x1f\x7f-\x9f]([^@\x00-\x1f\x7f-\x9f]*[^@\s\x00-\x1f\x7f-\x9f])?$"
URI_PATTERN = r"^[^\s\x00-\x1f\x7f-\x9f]([^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"
_LIMITS: dict[str, dict[str, Any]] = {
    "name": {"pattern": NAME_PATTERN, "maxLength": 256},
    "externalId": {"minLength": 1, "maxLength": 256},
    "description": {"maxLength": 20000},
    "uri": {"pattern": URI_PATTERN, "maxLength": 4096},
    "storagePath": {"pattern": URI_PATTERN, "maxLength": 4096},
    "readme": {"maxLength": 20000},
    "logo": {"maxLength": 20000},
    "licenseLink": {"maxLength": 20000},
    "digest": {"minLength": 1, "maxLength": 256},
    "value": {"maxLength": 65536},  # a parameter's value
    "schema": {},  # a dataset's schema and profile: any text
    "profile": {},
}
# Fields lineagehub keeps to 1024 characters (short descriptive text).
_SHORT_FIELDS = (
    "owner",
    "author",
    "maturity",
    "provider",
    "license",
    "libraryName",
    # A model artifact's descriptive fields (its storagePath is a URI, above).
    *(name for name in MODEL_ARTIFACT_FIELDS if name != "storagePath"),
    "sourceType",
    "source",
    "runtime",
)
_LIMITS.update({name: {"maxLength": 1024} for name in _SHORT_FIELDS})
_LIMITS["string_value"] = {"maxLength": 65536}


# Epoch milliseconds we can hold as a date (up to the year 5138).
EPOCH_MS_PATTERN = r"^[0-9]{1,14}$"


def _flatten(schemas: dict[str, Any], name: str) -> tuple[dict[str, Any], list[str]]:
    """(properties, required) of schema ``name`` with its ``allOf`` parts merged."""
    schema = schemas[name]
    props: dict[str, Any] = {}
    required: list[str] = list(schema.get("required", []))
    for part in schema.get("allOf", []):
        if "$ref" in part:
            inner, inner_required = _flatten(schemas, part["$ref"].rsplit("/", 1)[-1])
        else:
            inner, inner_required = part.get("properties", {}), part.get("required", [])
        props.update(copy.deepcopy(inner))
        required += [r for r in inner_required if r not in required]
    props.update(copy.deepcopy(schema.get("properties", {})))
    return props, required


def _closed(schemas: dict[str, Any]) -> None:
    """Every object schema flattened and closed: unknown fields are refused here."""
    for name in list(schemas):
        schema = schemas[name]
        if "allOf" not in schema and "properties" not in schema:
            continue
        props, required = _flatten(schemas, name)
        closed: dict[str, Any] = {"type": "object", "properties": props}
        if required:
            closed["required"] = required
        if "description" in schema:
            closed["description"] = schema["description"]
        closed["additionalProperties"] = False
        schemas[name] = closed


def _tighten(schema: dict[str, Any]) -> None:
    for key, prop in schema.get("properties", {}).items():
        if "$ref" in prop:
            continue
        if prop.get("format") == "int64" and prop.get("type") == "string":
            if key.endswith("SinceEpoch") or key == "timestamp":
                prop["pattern"] = EPOCH_MS_PATTERN
            else:
                prop.setdefault("pattern", r"^[1-9][0-9]{0,8}$")
        elif key == "step":
            prop["minimum"] = 0
        elif key == "artifactType" and "default" in prop:
            prop["enum"] = [prop["default"]]  # each artifact schema is one type
        elif key == "customProperties":
            prop["propertyNames"] = {"pattern": KEY_PATTERN.pattern}
            prop["maxProperties"] = 200
        elif prop.get("type") == "string" and "format" not in prop and "enum" not in prop:
            prop.update(_LIMITS.get(key, {}))
        elif prop.get("type") == "array":
            prop["maxItems"] = 100
            prop.setdefault("items", {}).update({"minLength": 1, "maxLength": 128})


# The errors any operation may answer here, beyond those the upstream document lists.
_ERRORS = {
    "400": "BadRequest",
    "401": "Unauthorized",
    "403": "Forbidden",
    "404": "NotFound",
    "409": "Conflict",
    "422": "UnprocessableEntity",
    "500": "InternalServerError",
    "503": "ServiceUnavailable",
}


def _document_errors(spec: dict[str, Any]) -> None:
    responses = spec["components"].setdefault("responses", {})
    responses.setdefault(
        "Forbidden",
        {
            "description": "The token lacks the role this operation needs",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        },
    )
    for item in spec["paths"].values():
        for method, operation in item.items():
            if method not in ("get", "post", "patch", "put", "delete"):
                continue
            answers = operation.setdefault("responses", {})
            for status, name in _ERRORS.items():
                answers.setdefault(status, {"$ref": f"#/components/responses/{name}"})


@functools.cache
def served_spec(version: str) -> dict[str, Any]:
    spec = copy.deepcopy(upstream_spec(version))
    spec["servers"] = [{"url": "/"}]
    _document_errors(spec)
    schemas = spec["components"]["schemas"]
    _closed(schemas)
    for schema in schemas.values():
        _tighten(schema)
    spec["components"].setdefault("securitySchemes", {})["Bearer"] = {
        "type": "http",
        "scheme": "bearer",
    }
    spec["security"] = [{"Bearer": []}]
    info = spec.setdefault("info", {})
    info["description"] = (
        "The Kubeflow Model Registry REST API as served by lineagehub, over its lineage graph."
    )
    return spec

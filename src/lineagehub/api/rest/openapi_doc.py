"""The OpenAPI document we serve for each API version: the Kubeflow Model Registry's own,
with the limits lineagehub adds (name and key patterns, lengths) and bearer tokens, so a
client (or a fuzzer) generating schema-valid requests gets requests we accept."""

from __future__ import annotations

import copy
import functools
from typing import Any

from lineagehub.api.rest.bodies import upstream_spec
from lineagehub.graph.properties import KEY_PATTERN

# A name: no '@', no control characters, no surrounding whitespace.
NAME_PATTERN = r"^[^@\s\x00-\x1f\x7f]([^@\x00-\x1f\x7f]*[^@\s\x00-\x1f\x7f])?$"
URI_PATTERN = r"^[^\s\x00-\x1f\x7f]([^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$"
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
}
_SHORT = {"maxLength": 1024}


def _tighten(schema: dict[str, Any]) -> None:
    for part in schema.get("allOf", []):
        _tighten(part)
    for key, prop in schema.get("properties", {}).items():
        if "$ref" in prop:
            continue
        if key == "customProperties":
            prop["propertyNames"] = {"pattern": KEY_PATTERN.pattern}
            prop["maxProperties"] = 200
        elif prop.get("type") == "string" and "format" not in prop and "enum" not in prop:
            prop.update(_LIMITS.get(key, _SHORT))
        elif prop.get("type") == "array":
            prop["maxItems"] = 100
            prop.setdefault("items", {}).update({"minLength": 1, "maxLength": 128})


@functools.cache
def served_spec(version: str) -> dict[str, Any]:
    spec = copy.deepcopy(upstream_spec(version))
    spec["servers"] = [{"url": "/"}]
    for schema in spec["components"]["schemas"].values():
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

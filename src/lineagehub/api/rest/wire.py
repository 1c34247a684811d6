"""The Kubeflow REST wire format: epoch-millisecond strings, numeric string ids and
``customProperties`` as ``{key: {metadataType, <type>_value}}``, to and from our values."""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import UTC, datetime
from typing import Any

from lineagehub.graph.errors import ValidationFailed
from lineagehub.graph.properties import INT64, PropertyType, decode

REST_ID = re.compile(r"^[1-9][0-9]{0,8}$")
# JSON values standing for a MetadataProtoValue (lineagehub has no proto type of its own)
# and for a MetadataStructValue whose bytes are not JSON (kept as the base64 given).
_PROTO_MARK = "@protoValue"
_RAW_STRUCT_MARK = "@structBase64"


def epoch_ms(value: datetime | None) -> str | None:
    if value is None:
        return None
    return str(int(value.timestamp() * 1000))


def from_epoch_ms(value: Any, *, field: str) -> datetime:
    """An instant from epoch milliseconds given as a number or a decimal string."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValidationFailed("give epoch milliseconds as a decimal string", field=field)
    text = str(value).strip()
    if not text:
        raise ValidationFailed("epoch milliseconds cannot be empty", field=field)
    if not re.fullmatch(r"-?[0-9]{1,16}", text):
        raise ValidationFailed(f"{value!r} is not epoch milliseconds", field=field)
    try:
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        raise ValidationFailed(f"{value!r} is out of range", field=field) from None


def rest_id(value: Any, *, field: str) -> int:
    """A REST id (a decimal string of at most nine digits) as the integer we store."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not REST_ID.match(text):
        raise ValidationFailed(
            f"{value!r} is not an id (a number from 1 to 999999999)", field=field
        )
    return int(text)


# --- custom properties ---------------------------------------------------------------


def custom_properties_out(props: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A node's custom properties in the Kubeflow ``MetadataValue`` shape."""
    out: dict[str, dict[str, Any]] = {}
    for prop in decode(props):
        match prop.type:
            case PropertyType.STRING:
                out[prop.key] = {"metadataType": "MetadataStringValue", "string_value": prop.value}
            case PropertyType.BOOL:
                out[prop.key] = {"metadataType": "MetadataBoolValue", "bool_value": prop.value}
            case PropertyType.INT:
                out[prop.key] = {"metadataType": "MetadataIntValue", "int_value": str(prop.value)}
            case PropertyType.FLOAT:
                out[prop.key] = {"metadataType": "MetadataDoubleValue", "double_value": prop.value}
            case PropertyType.JSON:
                value = prop.value
                if isinstance(value, dict) and set(value) == {_RAW_STRUCT_MARK}:
                    out[prop.key] = {
                        "metadataType": "MetadataStructValue",
                        "struct_value": value[_RAW_STRUCT_MARK],
                    }
                elif isinstance(value, dict) and set(value) == {_PROTO_MARK}:
                    proto = value[_PROTO_MARK]
                    out[prop.key] = {
                        "metadataType": "MetadataProtoValue",
                        "type": proto.get("type", ""),
                        "proto_value": proto.get("value", ""),
                    }
                else:
                    encoded = base64.b64encode(json.dumps(value).encode()).decode()
                    out[prop.key] = {"metadataType": "MetadataStructValue", "struct_value": encoded}
    return out


_VALUE_FIELDS = {
    "MetadataIntValue": {"int_value"},
    "MetadataDoubleValue": {"double_value"},
    "MetadataStringValue": {"string_value"},
    "MetadataBoolValue": {"bool_value"},
    "MetadataStructValue": {"struct_value"},
    "MetadataProtoValue": {"type", "proto_value"},
}


def _base64_json(text: Any, field: str) -> Any:
    """A struct's JSON value; bytes that are not JSON are kept as the base64 text given."""
    if not isinstance(text, str):
        raise ValidationFailed("struct_value must be base64 text", field=field)
    try:
        raw = base64.b64decode(text.encode(), validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailed("struct_value must be base64", field=field) from None
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return {_RAW_STRUCT_MARK: text}


def _one_value(key: str, value: Any, field: str) -> dict[str, Any]:
    """One ``MetadataValue`` as the input of a typed custom property."""
    if not isinstance(value, dict):
        raise ValidationFailed("a custom property value is an object", field=field)
    kind = value.get("metadataType")
    if not isinstance(kind, str) or kind not in _VALUE_FIELDS:
        raise ValidationFailed(
            f"metadataType must be one of {', '.join(sorted(_VALUE_FIELDS))}",
            field=f"{field}.metadataType",
        )
    expected = _VALUE_FIELDS[kind]
    unknown = set(value) - expected - {"metadataType"}
    if unknown:
        raise ValidationFailed(
            f"unknown field(s) {', '.join(sorted(unknown))} for {kind}", field=field
        )
    missing = expected - set(value)
    if missing:
        raise ValidationFailed(f"{kind} needs {', '.join(sorted(missing))}", field=field)
    match kind:
        case "MetadataIntValue":
            text = value["int_value"]
            if not isinstance(text, str) or not re.fullmatch(r"-?[0-9]{1,19}", text):
                raise ValidationFailed(
                    'int_value must be an integer as a string, e.g. "42"', field=field
                )
            number = int(text)
            if not INT64[0] <= number <= INT64[1]:
                raise ValidationFailed("int_value is out of the 64-bit range", field=field)
            return {"key": key, "intValue": number}
        case "MetadataDoubleValue":
            raw = value["double_value"]
            if isinstance(raw, bool) or not isinstance(raw, int | float):
                raise ValidationFailed("double_value must be a number", field=field)
            return {"key": key, "floatValue": float(raw)}
        case "MetadataStringValue":
            if not isinstance(value["string_value"], str):
                raise ValidationFailed("string_value must be a string", field=field)
            return {"key": key, "stringValue": value["string_value"]}
        case "MetadataBoolValue":
            if not isinstance(value["bool_value"], bool):
                raise ValidationFailed("bool_value must be true or false", field=field)
            return {"key": key, "boolValue": value["bool_value"]}
        case "MetadataStructValue":
            return {"key": key, "jsonValue": _base64_json(value["struct_value"], field)}
    if not isinstance(value["type"], str) or not isinstance(value["proto_value"], str):
        raise ValidationFailed("type and proto_value must be strings", field=field)
    return {
        "key": key,
        "jsonValue": {_PROTO_MARK: {"type": value["type"], "value": value["proto_value"]}},
    }


def custom_properties_in(value: Any, *, field: str = "customProperties") -> list[dict[str, Any]]:
    """``customProperties`` of a request body as custom-property inputs of our commands."""
    if value is None:
        return []
    if not isinstance(value, dict):
        raise ValidationFailed("customProperties is an object of MetadataValues", field=field)
    return [_one_value(key, v, f"{field}.{key}") for key, v in value.items()]


def removed_keys(current: dict[str, Any], given: list[dict[str, Any]]) -> list[str]:
    """Keys a PATCH drops: Kubeflow replaces the whole ``customProperties`` map."""
    kept = {p["key"] for p in given}
    return [p.key for p in decode(current) if p.key not in kept]

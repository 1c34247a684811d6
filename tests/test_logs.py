"""The JSON log lines: one object per line, extras as given, the request id when set."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from lineagehub.logs import JsonFormatter, request_id


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord(
        "lineagehub.http", logging.INFO, __file__, 1, "%s %s %s", ("POST", "/graphql", 200), None
    )
    record.__dict__.update(extra)
    return record


def test_a_request_line_carries_its_id_and_extras_in_the_order_given() -> None:
    token = request_id.set("rid-1")
    try:
        line = JsonFormatter().format(_record(status=200, durationMs=1.25, boltRoundTrips=1))
    finally:
        request_id.reset(token)
    assert "\n" not in line
    entry = json.loads(line)
    assert list(entry) == [
        "time", "level", "logger", "message", "requestId", "status", "durationMs",
        "boltRoundTrips",
    ]  # fmt: skip
    assert entry["message"] == "POST /graphql 200"
    assert entry["requestId"] == "rid-1"
    assert (entry["status"], entry["durationMs"], entry["boltRoundTrips"]) == (200, 1.25, 1)
    assert datetime.fromisoformat(entry["time"]).tzinfo is not None


def test_values_json_cannot_hold_are_written_as_text() -> None:
    when = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    entry = json.loads(JsonFormatter().format(_record(at=when, big=2**70, who="Zoë", ids={1})))
    assert entry["at"] == str(when)  # as str() writes it, not re-formatted
    assert entry["big"] == 2**70  # beyond 64 bits: still the exact integer
    assert entry["who"] == "Zoë"
    assert entry["ids"] == "{1}"


def test_no_request_id_outside_a_request() -> None:
    assert "requestId" not in json.loads(JsonFormatter().format(_record()))

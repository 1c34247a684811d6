"""``POST /api/v1/lineage``: the OpenLineage HTTP endpoint (as Marquez serves it).

Point an OpenLineage client at this server (``transport: {type: http, url:
http://host:8000}``, its default endpoint ``api/v1/lineage``; ``auth: {type: api_key,
apiKey: <token>}`` sends the token as ``Authorization: Bearer``) and every event becomes
part of the graph (``graph/openlineage.py`` says how). The caller needs the ``writer``
role; ``?project=NAME`` puts a new job's experiment and runs in a project.

One event per request, as OpenLineage's HTTP transport sends them: a JSON object, plain or
``Content-Encoding: gzip`` (the transport's ``compression: gzip``), at most
``MAX_EVENT_BYTES`` once decompressed. Each is recorded in one transaction with its audit
event (action ``openlineage.RunEvent``, ``.JobEvent``, ``.DatasetEvent``). The answer is
201 with what the event became; errors are ``{code, message, field?, problems?}``: 400 for
a body that is not an OpenLineage event (``field`` names the offending part, as
``body.run.runId``), 401/403, 409 (two events naming one new run under two jobs at
once), 413, 415, 503 when Neo4j is away, 500 with a request id for anything unexpected.
"""

from __future__ import annotations

import json
import logging
import math
import zlib
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lineagehub.api.rest.routes import STATUS
from lineagehub.graph import openlineage
from lineagehub.graph.audit import action
from lineagehub.graph.commands import validate
from lineagehub.graph.errors import RegistryError, ValidationFailed
from lineagehub.graph.identity import actor
from lineagehub.graph.records import Dataset
from lineagehub.graph.store import Store, Tx
from lineagehub.logs import request_id

log = logging.getLogger("lineagehub.openlineage")

PATH = "/api/v1/lineage"
MAX_EVENT_BYTES = 16 * 1024 * 1024


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _error(status: int, code: str, message: str, **more: Any) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, **more}, status_code=status)


def _too_large() -> _Refused:
    return _Refused(413, "TOO_LARGE", f"an event may hold at most {MAX_EVENT_BYTES} bytes")


async def _body(request: Request) -> bytes:
    """The request body, decompressed; refused past ``MAX_EVENT_BYTES`` sent or inflated,
    and with anything after a gzip stream's end."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_EVENT_BYTES:
        raise _too_large()
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise _Refused(415, "UNSUPPORTED", f"Content-Encoding {encoding!r}: send identity or gzip")
    inflate = zlib.decompressobj(wbits=31) if encoding == "gzip" else None
    chunks: list[bytes] = []
    sent = size = 0
    try:
        async for chunk in request.stream():
            sent += len(chunk)
            if sent > MAX_EVENT_BYTES:
                raise _too_large()
            if inflate is not None:
                if inflate.eof and chunk:
                    raise _Refused(400, "BAD_REQUEST", "data after the end of the gzip stream")
                chunk = inflate.decompress(chunk, MAX_EVENT_BYTES + 1 - size)
                if inflate.unconsumed_tail:
                    raise _too_large()
                if inflate.unused_data:
                    raise _Refused(400, "BAD_REQUEST", "data after the end of the gzip stream")
            size += len(chunk)
            if size > MAX_EVENT_BYTES:
                raise _too_large()
            chunks.append(chunk)
        if inflate is not None and not inflate.eof:
            raise _Refused(400, "BAD_REQUEST", "the gzip body ends early")
    except zlib.error as error:
        raise _Refused(400, "BAD_REQUEST", f"the body is not valid gzip: {error}") from None
    return b"".join(chunks)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def _event(body: bytes, content_type: str) -> openlineage.Event:
    # JSON only (as OpenLineage's transports send it): a body of no type is what a web
    # page can post to a loopback server without asking first.
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise _Refused(
            415, "UNSUPPORTED", f"Content-Type {media or '(none)'!r}: send application/json"
        )
    try:
        data = json.loads(body, parse_constant=_no_constant, parse_float=_finite)
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        message = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        raise _Refused(400, "BAD_REQUEST", f"the body is not JSON: {message}") from None
    if not isinstance(data, dict):
        raise _Refused(400, "BAD_REQUEST", "an OpenLineage event is a JSON object")
    return validate(openlineage.Event, data, path="body")


def _dataset(dataset: Dataset) -> dict[str, Any]:
    return {"id": dataset.id, "uri": dataset.uri, "digest": dataset.digest}


def _answer(event: openlineage.Event, done: openlineage.Recorded) -> dict[str, Any]:
    answer: dict[str, Any] = {"eventType": event.kind}
    if done.experiment is not None:
        answer["job"] = {"experimentId": done.experiment["id"], "name": done.experiment["name"]}
    if done.run is not None:
        answer["run"] = {
            "id": done.run["id"],
            "runId": done.run["externalId"],
            "name": done.run["name"],
            "status": done.run["status"],
        }
        answer["code"] = done.code
    if event.run is not None or event.job is not None:
        answer["inputs"] = [_dataset(d) for d in done.inputs]
        answer["outputs"] = [_dataset(d) for d in done.outputs]
    if done.dataset is not None:
        answer["dataset"] = _dataset(done.dataset)
    if done.columns is not None:
        answer["columnLineage"] = {"edges": done.columns.edges, "removed": done.columns.removed}
        if done.columns_skipped:
            # A report not taken (or in part): the event is recorded without it.
            answer["columnLineage"]["skipped"] = done.columns_skipped
    return answer


async def lineage_endpoint(request: Request) -> Response:
    store: Store = request.app.state.store
    try:
        actor().require("writer", "recording OpenLineage events")
        project = request.query_params.get("project") or None
        event = _event(await _body(request), request.headers.get("content-type", ""))

        async def work(tx: Tx) -> openlineage.Recorded:
            return await openlineage.record(tx, event, project=project)

        with action(f"openlineage.{event.kind}"):
            done = await store.write(work)
        answer = _answer(event, done)
    except _Refused as refused:
        return _error(refused.status, refused.code, refused.message)
    except RegistryError as error:
        more = {k: v for k, v in error.extensions().items() if k != "code"}
        status = 400 if isinstance(error, ValidationFailed) else STATUS.get(error.code, 500)
        return _error(status, error.code, error.message, **more)
    except Exception:
        log.exception("unexpected error recording an OpenLineage event (%s)", request_id.get())
        return _error(500, "INTERNAL", f"internal error; quote request id {request_id.get()}")
    return JSONResponse(answer, status_code=201)


def route() -> Route:
    return Route(PATH, lineage_endpoint, methods=["POST"])

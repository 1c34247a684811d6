"""Every GraphQL error leaves with a stable ``extensions.code``, and never a stack trace."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from lineagehub.api.graphql.loaders import Loaders
from lineagehub.graph.errors import RegistryError
from lineagehub.graph.store import current_round_trips
from lineagehub.logs import request_id

log = logging.getLogger("lineagehub.graphql")

_LIMIT_MARKERS = ("exceeds maximum operation depth", "aliases found. Allowed", "more than")


def _code_for_document_error(error: GraphQLError) -> str:
    message = error.message
    if any(marker in message for marker in _LIMIT_MARKERS) and (
        "depth" in message or "aliases" in message or "tokens" in message
    ):
        return "LIMIT_EXCEEDED"
    if message.startswith("Syntax Error"):
        return "GRAPHQL_PARSE"
    return "GRAPHQL_VALIDATION"


def format_error(error: GraphQLError) -> GraphQLError:
    if error.original_error is None and "code" in (error.extensions or {}):
        return error  # formatted already (a streamed result, then its operation's end)
    original = error.original_error
    while isinstance(original, GraphQLError) and original.original_error is not None:
        original = original.original_error
    rid = request_id.get()
    if isinstance(original, RegistryError):
        message, extensions = original.message, original.extensions()
    elif original is None or (isinstance(original, GraphQLError) and error.path is None):
        # graphql-core's own, before execution: the document, or a variable its type
        # refuses. (One raised while completing a value has a path: a bug, below.)
        message = error.message
        extensions = {**(error.extensions or {}), "code": _code_for_document_error(error)}
    else:
        log.error(
            "unexpected error in %s",
            ".".join(str(p) for p in error.path or []) or "operation",
            exc_info=(type(original), original, original.__traceback__),
        )
        message = "Internal server error; quote the request id when reporting it."
        extensions = {"code": "INTERNAL"}
    if rid is not None:
        extensions["requestId"] = rid
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )


class ErrorCodes(SchemaExtension):
    """Rewrites errors to carry codes, and reports request id and Bolt round trips."""

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        if getattr(context, "websocket", False):
            # (Not about errors, but this hook runs anyway.) An operation over a WebSocket
            # shares the connection's context, which outlives it: it gets loaders of its
            # own, so that nothing it reads is an answer cached by an earlier operation.
            context.loaders = Loaders(context.store)
        yield
        result: Any = self.execution_context.result
        if result is not None and getattr(result, "errors", None):
            result.errors = [format_error(e) for e in result.errors]

    def on_stream_result(self, result: Any) -> Iterator[None]:
        # Each result of an operation over a WebSocket leaves before the operation ends.
        if getattr(result, "errors", None):
            result.errors = [format_error(e) for e in result.errors]
        yield

    def get_results(self) -> dict[str, Any]:
        return extension_results()


def extension_results() -> dict[str, Any]:
    """A response's ``extensions``: the request id and the Bolt queries it cost."""
    results: dict[str, Any] = {}
    rid = request_id.get()
    if rid is not None:
        results["requestId"] = rid
    trips = current_round_trips()
    if trips is not None:
        results["boltRoundTrips"] = trips
    return results

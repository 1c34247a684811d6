"""The warm lane: a POSTed JSON request for a document this process has already parsed
and validated goes straight to graphql-core.

Strawberry's HTTP view and its schema extension runner cost about 0.3 ms a request
(request adapters, per-request extension instances, their hooks around parsing,
validation and execution). For a document already known to be valid, those hooks do
nothing: the depth, alias and token limits and the document cache act only on parsing
and validation. What remains is done here, the same way:

- execution: graphql-core's ``execute`` with the schema's executor class, the
  ``Authorization`` field middleware and the arguments Strawberry passes;
- errors: ``format_error``, as ``ErrorCodes`` applies it;
- the response: ``{"data", "errors", "extensions"}`` as Strawberry's ``process_result``
  builds it, ``extensions`` holding what ``ErrorCodes`` reports, status 200.

Everything else declines to the view, which answers as before: GET, anything but a
JSON object with a string ``query`` (and optional ``variables``, ``operationName``),
operation ``extensions``, a document not cached yet (unseen or invalid), an operation
that cannot be picked or is not a query or mutation. The lane is on with the fast path
(``LINEAGEHUB_FAST_PATH``); ``tests/api/test_fast_path.py`` compares its answers, byte
for byte, with those of a server running without either.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    GraphQLSchema,
    MiddlewareManager,
    OperationType,
    execute,
    get_operation_ast,
)
from strawberry.execution import optimized_is_awaitable

from lineagehub.api.graphql.authorization import Authorization
from lineagehub.api.graphql.context import Context
from lineagehub.api.graphql.documents import Documents
from lineagehub.api.graphql.errors import extension_results, format_error

_REQUEST_KEYS = frozenset({"query", "variables", "operationName"})
_LANE_OPERATIONS = (OperationType.QUERY, OperationType.MUTATION)
# What Strawberry passes graphql-core (typed as a plain bool predicate there).
_IS_AWAITABLE: Any = optimized_is_awaitable


class Lane:
    def __init__(self, schema: GraphQLSchema, documents: Documents, executor: type[Any]) -> None:
        self.schema = schema
        self.documents = documents
        self.executor = executor
        # One for every request: ``Authorization`` keeps no state, and the manager caches
        # each field's resolver chain (made per request, it was a dozen objects in
        # reference cycles, freed only by the cycle collector).
        self.middleware = MiddlewareManager(Authorization())

    def request(self, body: bytes) -> tuple[DocumentNode, dict[str, Any] | None, str | None] | None:
        """(document, variables, operation name) of a request the lane takes, else None."""
        try:
            # The stdlib parser, as the view uses: orjson reads an integer beyond 64 bits
            # as a float, which would change a variable's value.
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(payload, dict) or not payload.keys() <= _REQUEST_KEYS:
            return None
        query, variables = payload.get("query"), payload.get("variables")
        name = payload.get("operationName")
        if not isinstance(query, str) or not isinstance(variables, dict | None):
            return None
        if not isinstance(name, str | None):
            return None
        document = self.documents.get(query)
        if document is None:
            return None
        operation = get_operation_ast(document, name)
        if operation is None or operation.operation not in _LANE_OPERATIONS:
            return None
        return document, variables, name

    async def answer(
        self,
        document: DocumentNode,
        variables: dict[str, Any] | None,
        name: str | None,
        context: Context,
    ) -> bytes:
        try:
            result: Any = execute(
                self.schema,
                document,
                root_value=None,
                middleware=self.middleware,
                variable_values=variables,
                operation_name=name,
                context_value=context,
                is_awaitable=_IS_AWAITABLE,
                executor_class=self.executor,
                operation_extensions=None,
            )
            if _IS_AWAITABLE(result):
                result = await result
        except Exception as error:
            # Nothing graphql-core lets escape is expected; if something does, it is
            # answered (and logged, by format_error) as the view would answer it.
            if not isinstance(error, GraphQLError):
                error = GraphQLError(str(error), original_error=error)
            result = ExecutionResult(data=None, errors=[error])
        finally:
            context.release()
        assert isinstance(result, ExecutionResult)
        response: dict[str, Any] = {"data": result.data}
        if result.errors:
            response["errors"] = [format_error(e).formatted for e in result.errors]
        extensions = extension_results()
        if extensions:
            response["extensions"] = extensions
        return encode_answer(response)


def encode_answer(data: object) -> bytes:
    """A GraphQL response as JSON (UTF-8, non-ASCII text as is). orjson is several times
    faster than json.dumps on large answers; what it refuses (an integer beyond 64 bits in
    a JSON scalar, say) json.dumps writes instead, the same way."""
    try:
        return orjson.dumps(data)
    except TypeError:
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()

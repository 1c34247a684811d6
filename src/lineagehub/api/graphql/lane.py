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

A query with a single root field (point lookups, a lineage question) goes one step
further: the lane runs that field itself, with graphql-core's own pieces, and skips the
operation machinery around them (building the executor from the document again, the
root's grouping and parallel gathering, three coroutines a field deep). Per request:
variables coerced by ``get_variable_values``; the executor constructed from what the lane
keeps of the document (operation, fragments); the root fields collected by
``collect_fields``; then for the one field, what ``execute_field`` does: the resolve info
the executor builds, ``get_argument_values``, the resolver through the middleware, its
value completed by the executor's ``complete_value``; an error handled by the executor's
``handle_field_error`` (located, null or propagated), one reaching the root nulling
``data`` as ``execute_operation`` does; the answer from the executor's
``build_response``. Anything else takes ``execute``: variables that do not coerce (it
reports them), mutations (serial, audited), several root fields, ``@defer``/``@stream``
anywhere in the document, fragments with variables.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

import orjson
from graphql import (
    DirectiveNode,
    DocumentNode,
    ExecutionResult,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    MiddlewareManager,
    OperationDefinitionNode,
    OperationType,
    Visitor,
    default_field_resolver,
    default_type_resolver,
    execute,
    get_argument_values,
    get_operation_ast,
    visit,
)
from graphql.execution.collect_fields import FieldDetailsList, FragmentDetails, collect_fields
from graphql.execution.values import get_variable_values
from graphql.pyutils import Path
from strawberry.execution import optimized_is_awaitable

from lineagehub.api.graphql.authorization import Authorization
from lineagehub.api.graphql.context import Context
from lineagehub.api.graphql.documents import Documents
from lineagehub.api.graphql.errors import extension_results, format_error

_REQUEST_KEYS = frozenset({"query", "variables", "operationName"})
_LANE_OPERATIONS = (OperationType.QUERY, OperationType.MUTATION)
# What Strawberry passes graphql-core (typed as a plain bool predicate there).
_IS_AWAITABLE: Any = optimized_is_awaitable
# graphql-core's defaults, as ``execute`` passes them.
_MAX_COERCION_ERRORS = 50
_INCREMENTAL = frozenset({"defer", "stream"})


class Fragments:
    """What the lane keeps of a document for running its queries' one root field: its
    fragments as graphql-core's executor takes them (``Executor.build`` makes the same two
    dicts from the document on every request)."""

    __slots__ = ("definitions", "details")

    def __init__(self, document: DocumentNode) -> None:
        self.definitions: dict[str, FragmentDefinitionNode] = {}
        self.details: dict[str, FragmentDetails] = {}
        for definition in document.definitions:
            if isinstance(definition, FragmentDefinitionNode):
                self.definitions[definition.name.value] = definition
                self.details[definition.name.value] = FragmentDetails(definition, None)

    @staticmethod
    def of(document: DocumentNode) -> Fragments | None:
        """The document's fragments, or None when the lane leaves its queries to
        ``execute``: a fragment with variables (which ``build`` checks and coerces), or
        ``@defer``/``@stream`` anywhere (incremental delivery)."""
        for definition in document.definitions:
            if isinstance(definition, FragmentDefinitionNode) and definition.variable_definitions:
                return None
        incremental = False

        class Directives(Visitor):
            def enter_directive(self, node: DirectiveNode, *_: Any) -> None:
                nonlocal incremental
                incremental = incremental or node.name.value in _INCREMENTAL

        visit(document, Directives())
        return None if incremental else Fragments(document)


class Lane:
    def __init__(self, schema: GraphQLSchema, documents: Documents, executor: type[Any]) -> None:
        self.schema = schema
        self.documents = documents
        self.executor = executor
        # One for every request: ``Authorization`` keeps no state, and the manager caches
        # each field's resolver chain (made per request, it was a dozen objects in
        # reference cycles, freed only by the cycle collector).
        self.middleware = MiddlewareManager(Authorization())
        # Per document (by identity: the document cache hands back the same one for the
        # same text; each entry keeps its document alive, so its id names no other).
        self._fragments: OrderedDict[int, tuple[DocumentNode, Fragments | None]] = OrderedDict()
        self._fragments_size = max(documents.size, 1)

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

    def fragments(self, document: DocumentNode) -> Fragments | None:
        found = self._fragments.get(id(document))
        if found is not None and found[0] is document:
            return found[1]
        fragments = Fragments.of(document)
        self._fragments[id(document)] = (document, fragments)
        while len(self._fragments) > self._fragments_size:
            self._fragments.popitem(last=False)
        return fragments

    async def answer(
        self,
        document: DocumentNode,
        variables: dict[str, Any] | None,
        name: str | None,
        context: Context,
    ) -> bytes:
        try:
            result: Any = None
            operation = get_operation_ast(document, name)
            if operation is not None and operation.operation is OperationType.QUERY:
                fragments = self.fragments(document)
                if fragments is not None:
                    result = await self.one_field(operation, fragments, variables, context)
            if result is None:
                result = await self.executed(document, variables, name, context)
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

    async def executed(
        self,
        document: DocumentNode,
        variables: dict[str, Any] | None,
        name: str | None,
        context: Context,
    ) -> Any:
        """graphql-core's ``execute``, called as Strawberry calls it."""
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
        return result

    async def one_field(
        self,
        operation: OperationDefinitionNode,
        fragments: Fragments,
        variables: dict[str, Any] | None,
        context: Context,
    ) -> ExecutionResult | None:
        """The answer to a query with one root field, as ``execute`` gives it (see the
        module's doc), or None when the query is not one the lane runs itself."""
        schema = self.schema
        coerced = get_variable_values(
            schema, operation.variable_definitions or (), variables or {}, _MAX_COERCION_ERRORS
        )
        if isinstance(coerced, list):
            return None  # execute reports them
        root_type = schema.query_type
        assert root_type is not None
        grouped, defers, forbidden = collect_fields(
            schema, fragments.details, coerced, root_type, operation
        )
        if len(grouped) != 1 or defers or forbidden:
            return None
        ((key, fields),) = grouped.items()
        node = fields[0].node
        field_def = schema.get_field(root_type, node.name.value)
        if field_def is None:
            return None
        executor = self.executor(
            schema=schema,
            fragment_definitions=fragments.definitions,
            fragments=fragments.details,
            root_value=None,
            context_value=context,
            operation=operation,
            variable_values=coerced,
            field_resolver=default_field_resolver,
            type_resolver=default_type_resolver,
            subscribe_field_resolver=default_field_resolver,
            middleware_manager=self.middleware,
            is_awaitable=_IS_AWAITABLE,
            operation_extensions=None,
        )
        try:
            data: dict[str, Any] | None = {
                key: await _field(executor, self.middleware, root_type, key, fields, field_def)
            }
        except GraphQLError as error:  # a non-null root field's error: no data
            executor.collected_errors.add(error, None)
            data = None
        response: ExecutionResult = executor.build_response(data)
        return response


async def _field(
    executor: Any,
    middleware: MiddlewareManager,
    parent_type: Any,
    key: str,
    fields: FieldDetailsList,
    field_def: Any,
) -> Any:
    """A root field's value, as graphql-core's ``execute_field`` (and, for a resolver
    that answers with an awaitable, ``complete_awaitable_value``) completes it."""
    node = fields[0].node
    return_type = field_def.type
    resolve = middleware.get_field_resolver(field_def.resolve or executor.field_resolver)
    path = Path(None, key, parent_type.name)
    info = executor.build_resolve_info(field_def, [f.node for f in fields], parent_type, path)
    try:
        args = (
            get_argument_values(
                field_def,
                node,
                executor.variable_values,
                fields[0].fragment_variable_values,
                executor.hide_suggestions,
            )
            if field_def.args or node.arguments
            else {}
        )
        result = resolve(None, info, **args)
        if _IS_AWAITABLE(result):
            result = await result
        completed = executor.complete_value(return_type, fields, info, path, result, None)
        if _IS_AWAITABLE(completed):
            completed = await completed
    except Exception as raw_error:
        executor.handle_field_error(raw_error, return_type, fields, path)  # or raises
        completed = None
    return completed


def encode_answer(data: object) -> bytes:
    """A GraphQL response as JSON (UTF-8, non-ASCII text as is). orjson is several times
    faster than json.dumps on large answers; what it refuses (an integer beyond 64 bits in
    a JSON scalar, say) json.dumps writes instead, the same way."""
    try:
        return orjson.dumps(data)
    except TypeError:
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()

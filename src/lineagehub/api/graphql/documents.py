"""Parsed and validated documents, reused when the same query text comes again.

Clients send a handful of documents over and over with new variables; parsing and
validating one costs about as much as executing a small query. Strawberry's own caches
do not fit: ``ValidationCache`` keys on the validation rules, and the depth and alias
limiters build new rule classes for every request, so it never hits; ``ParserCache``
parses inside the extension hook, where a syntax or token-limit error escapes the
handling that gives it its ``extensions.code``.

This cache keeps only documents that parsed *and* validated without errors (under this
process's limits, which do not change while it runs), keyed by the exact query text, in
a bounded LRU shared by every request of the process. A document with errors is never
cached: it goes through parsing and validation every time and reports exactly as before.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from threading import Lock

from graphql import DocumentNode
from strawberry.extensions import SchemaExtension


class Documents:
    """A bounded LRU of query text -> its parsed, valid document."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[str, DocumentNode] = OrderedDict()
        self._lock = Lock()  # the test server runs the app in a thread of its own

    def get(self, query: str) -> DocumentNode | None:
        with self._lock:
            document = self._entries.get(query)
            if document is not None:
                self._entries.move_to_end(query)
            return document

    def put(self, query: str, document: DocumentNode) -> None:
        with self._lock:
            self._entries[query] = document
            self._entries.move_to_end(query)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


class DocumentCache(SchemaExtension):
    """Skips parsing and validation of a query text already parsed and found valid."""

    def __init__(self, documents: Documents) -> None:
        super().__init__()
        self.documents = documents
        self.hit = False

    def on_parse(self) -> Iterator[None]:
        query = self.execution_context.query
        document = self.documents.get(query) if query else None
        if document is not None:
            # Strawberry parses only when no document is set yet.
            self.execution_context.graphql_document = document
            self.hit = True
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if self.hit:
            # Strawberry validates only when no verdict is set yet; this one was valid.
            context.pre_execution_errors = []
        yield
        if (
            not self.hit
            and context.query
            and context.graphql_document is not None
            and context.pre_execution_errors == []
        ):
            self.documents.put(context.query, context.graphql_document)

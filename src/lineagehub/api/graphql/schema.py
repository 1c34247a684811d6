"""The GraphQL schema, with its guards."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types.execution import ExecutionContext

from lineagehub.api.graphql import fanout, thin
from lineagehub.api.graphql.authorization import Authorization
from lineagehub.api.graphql.columns import ColumnMutation
from lineagehub.api.graphql.documents import DocumentCache, Documents
from lineagehub.api.graphql.errors import ErrorCodes
from lineagehub.api.graphql.events import EventsQuery, Subscription
from lineagehub.api.graphql.execution import Executor
from lineagehub.api.graphql.governance import AliasQuery, GovernanceMutation, GovernanceQuery
from lineagehub.api.graphql.lane import Lane
from lineagehub.api.graphql.lineage_fields import LineageMutation, LineageQuery
from lineagehub.api.graphql.mutation import Mutation
from lineagehub.api.graphql.nodes import GRAPHQL_TYPES
from lineagehub.api.graphql.query import Query
from lineagehub.api.graphql.scalars import SCALARS
from lineagehub.api.graphql.webhooks import WebhookMutation, WebhookQuery
from lineagehub.settings import Settings


class _Schema(strawberry.Schema):
    # The documents this schema has parsed and found valid (see ``DocumentCache``).
    documents: Documents

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # ErrorCodes logs what is unexpected; expected errors are answers, not log noise.
        return None


class _FastSharing(fanout.Sharing, Executor):
    """The fast path's executor, with subscription events executed once per key."""


def build_schema(settings: Settings | None = None) -> _Schema:
    settings = settings or Settings()
    documents = Documents(size=256)
    extensions: list[Any] = [
        lambda: QueryDepthLimiter(max_depth=settings.max_query_depth),
        lambda: MaxAliasesLimiter(max_alias_count=settings.max_aliases),
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        ErrorCodes,
        Authorization,
        # Clients send the same documents with new variables: parse and validate each once.
        lambda: DocumentCache(documents),
    ]
    schema = _Schema(
        query=merge_types(
            "Query", (Query, LineageQuery, GovernanceQuery, AliasQuery, EventsQuery, WebhookQuery)
        ),
        mutation=merge_types(
            "Mutation",
            (Mutation, LineageMutation, ColumnMutation, GovernanceMutation, WebhookMutation),
        ),
        subscription=Subscription,
        types=list(GRAPHQL_TYPES.values()),
        extensions=extensions,
        config=StrawberryConfig(scalar_map=SCALARS),
        execution_context_class=_FastSharing if settings.fast_path else fanout.Sharing,
    )
    schema.documents = documents
    if settings.fast_path and not schema.exception_handlers:
        # (Exception handlers, if the schema ever gets any, live in the wrapper.)
        thin.install(schema._schema, schema.config)
    return schema


def lane_for(schema: object, settings: Settings) -> Lane | None:
    """The warm lane for ``schema`` (``lane.py``), or None with the fast path off."""
    if not settings.fast_path or not isinstance(schema, _Schema):
        return None
    return Lane(schema._schema, schema.documents, Executor)


def sdl() -> str:
    """The schema as SDL, as committed in ``schema.graphql``."""
    return build_schema().as_str() + "\n"

"""The GraphQL schema, with its guards."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types.execution import ExecutionContext

from lineagehub.api.graphql.authorization import Authorization
from lineagehub.api.graphql.errors import ErrorCodes
from lineagehub.api.graphql.governance import AliasQuery, GovernanceMutation, GovernanceQuery
from lineagehub.api.graphql.lineage_fields import LineageMutation, LineageQuery
from lineagehub.api.graphql.mutation import Mutation
from lineagehub.api.graphql.nodes import GRAPHQL_TYPES
from lineagehub.api.graphql.query import Query
from lineagehub.api.graphql.scalars import SCALARS
from lineagehub.settings import Settings


class _Schema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # ErrorCodes logs what is unexpected; expected errors are answers, not log noise.
        return None


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    settings = settings or Settings()
    extensions: list[Any] = [
        lambda: QueryDepthLimiter(max_depth=settings.max_query_depth),
        lambda: MaxAliasesLimiter(max_alias_count=settings.max_aliases),
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        ErrorCodes,
        Authorization,
        # Clients send the same documents with new variables: validate each once (a bounded
        # LRU cache shared by every request of the process). Strawberry's ParserCache would
        # also skip parsing, but it drops the codes of parse and token-limit errors.
        lambda: ValidationCache(maxsize=256),
    ]
    return _Schema(
        query=merge_types("Query", (Query, LineageQuery, GovernanceQuery, AliasQuery)),
        mutation=merge_types("Mutation", (Mutation, LineageMutation, GovernanceMutation)),
        types=list(GRAPHQL_TYPES.values()),
        extensions=extensions,
        config=StrawberryConfig(scalar_map=SCALARS),
    )


def sdl() -> str:
    """The schema as SDL, as committed in ``schema.graphql``."""
    return build_schema().as_str() + "\n"

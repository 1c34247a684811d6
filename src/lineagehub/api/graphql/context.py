"""Per-request GraphQL context: the store, settings and this request's batch loaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strawberry.types import Info as _Info

from lineagehub.api.graphql.loaders import Loaders
from lineagehub.graph.store import Store
from lineagehub.settings import Settings


@dataclass
class Context:
    store: Store
    settings: Settings
    request_id: str | None
    loaders: Loaders = field(init=False)
    # Set by the fast executor when it runs this request: resolvers may then answer with
    # values only it completes (``execution.Prepared``).
    prepared_ok: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.store)


Info = _Info[Context, Any]

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
    # The executor running this request (set by it), for ``release``.
    executor: Any = field(init=False, default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.store)

    def release(self) -> None:
        """Once the request is answered: undo the reference cycles its executor and batch
        loaders made, so that what they hold is freed at once rather than by the cycle
        collector (which, under load, ran a full collection every half second, pausing
        every request in flight for 10-20 ms)."""
        executor, self.executor = self.executor, None
        if executor is not None:
            if getattr(executor, "background_futures", None):
                # A field failed beside others still running: graphql-core answered at
                # once and lets those settle in the background, where they may still use
                # the executor and the loaders. Leave this request to the collector.
                return
            executor.__dict__.clear()
        self.loaders.release()


Info = _Info[Context, Any]

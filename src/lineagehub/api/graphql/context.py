"""Per-request GraphQL context: the store, settings and this request's batch loaders."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from strawberry.types import Info as _Info

from lineagehub.api.graphql.loaders import Loaders
from lineagehub.graph.events import EventHub
from lineagehub.graph.store import Store
from lineagehub.settings import Settings


@dataclass
class Context:
    store: Store
    settings: Settings
    request_id: str | None
    # The process's registry event feed (subscriptions).
    events: EventHub | None = None
    # WebSocket connections: the Authorization header of the upgrade request, the
    # connection_init payload (set by Strawberry), and how a live subscription asks again
    # whether the connection's token still stands (UNAUTHENTICATED when not).
    websocket: bool = False
    upgrade_authorization: str | None = None
    connection_params: dict[str, Any] | None = None
    recheck: Callable[[], Awaitable[None]] | None = None
    # Wakes this process's webhook dispatcher (a webhook was created or changed).
    webhook_nudge: Callable[[], None] | None = None
    loaders: Loaders = field(init=False)
    # Set by the fast executor when it runs this request: resolvers may then answer with
    # values only it completes (``execution.Prepared``).
    prepared_ok: bool = field(init=False, default=False)
    # The executor running this request (set by it), for ``release``.
    executor: Any = field(init=False, default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.store)

    def nudge_webhooks(self) -> None:
        if self.webhook_nudge is not None:
            self.webhook_nudge()

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

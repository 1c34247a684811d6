"""One execution of an event for every subscriber that asked the same thing of it.

A subscription's document is executed once per event it yields (graphql-core's
``map_source_to_response_event``), with the event as the root value. Dashboards and
bots often open many subscriptions with the same document and variables under the same
kind of token; executing it once per subscriber made each event cost N executions (and,
for nested fields such as ``modelVersion { ... }``, N loads) in the writing process.

:class:`Sharing` keys each event's execution on what its answer can depend on: the
event (its id), the operation (the same parsed document object: ``DocumentCache`` hands
out one per query text), the coerced variable values, and what the caller may see (the
principal's roles and projects; nothing a subscription reads depends on anything else of
the caller). The first subscriber to execute an event under a key does so; the others
with that key get its result. An answer with errors is never shared (an error may name
its caller): each of those subscribers executes the event itself. A result is kept for
``SHARE_SECONDS`` after it was asked for, so a subscriber replaying the log later reads
the event as it is then, as before.

The execution runs in a task of its own (in the first subscriber's context), so that
one subscriber leaving does not cancel it for the others.
"""

from __future__ import annotations

import asyncio
import json
import time
import weakref
from dataclasses import dataclass
from typing import Any, cast

from graphql import ExecutionResult
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from lineagehub.graph import identity

SHARE_SECONDS = 2.0


@dataclass
class _Entry:
    operation: Any  # kept alive: keys hold only its id
    until: float
    result: ExecutionResult | None = None
    task: asyncio.Future[ExecutionResult] | None = None

    def ready(self) -> ExecutionResult | None:
        """The answer to share, once there is one without errors."""
        task = self.task
        if self.result is None and task is not None and task.done() and not task.cancelled():
            answer = task.result() if task.exception() is None else None
            if answer is not None and not answer.errors:
                self.result = answer
                self.task = None  # (a finished task holds its loop)
        return self.result


@dataclass
class _Counts:
    executed: int = 0  # events executed under a key
    shared: int = 0  # events served from another subscriber's execution


COUNTS = _Counts()


class _Memo:
    def __init__(self) -> None:
        self.entries: dict[tuple[Any, ...], _Entry] = {}

    def find(self, key: tuple[Any, ...], operation: Any) -> _Entry | None:
        entry = self.entries.get(key)
        if entry is None or entry.operation is not operation or entry.until < time.monotonic():
            return None
        return entry

    def keep(self, key: tuple[Any, ...], entry: _Entry) -> None:
        entries = self.entries
        # Entries are in the order they expire (each lives SHARE_SECONDS, and a replaced
        # one moves to the end): the expired ones are at the front.
        now = time.monotonic()
        while entries:
            oldest = next(iter(entries))
            if entries[oldest].until >= now:
                break
            del entries[oldest]
        entries.pop(key, None)
        entries[key] = entry


# One memo per event loop (a test process may run several servers, each on its own loop).
_MEMOS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Memo] = weakref.WeakKeyDictionary()


def forget() -> None:
    """Drop this loop's memo (the server is stopping)."""
    _MEMOS.pop(asyncio.get_running_loop(), None)


def memo() -> _Memo:
    loop = asyncio.get_running_loop()
    found = _MEMOS.get(loop)
    if found is None:
        found = _MEMOS[loop] = _Memo()
    return found


def share_id(payload: Any) -> str | None:
    """What identifies an event among subscription payloads (None: not shareable)."""
    value = getattr(payload, "share_id", None)
    return value if isinstance(value, str) else None


class Sharing(StrawberryGraphQLCoreExecutionContext):
    """An executor whose subscription events are executed once per key (see above)."""

    _share_key: tuple[Any, ...] | None = None
    # (operation, variables, roles, projects): the same for every event of a subscription.
    _share_base: tuple[Any, ...] | None = None

    def build_per_event_executor(self, payload: Any) -> Any:
        executor = cast("Sharing", super().build_per_event_executor(payload))  # a copy of self
        event = share_id(payload)
        if event is None:
            return executor
        base = self._share_base
        if base is None:
            try:
                variables = json.dumps(self.variable_values.coerced, sort_keys=True, default=repr)
            except (TypeError, ValueError):
                return executor
            principal = identity.actor()
            base = (id(self.operation), variables, principal.roles, principal.projects)
            self._share_base = base
        executor._share_key = (event, *base)
        return executor

    def execute_operation(self, *args: Any, **kwargs: Any) -> Any:
        key = self._share_key
        if key is None:
            return super().execute_operation(*args, **kwargs)
        shared = memo()
        entry = shared.find(key, self.operation)
        if entry is not None:
            done = entry.ready()
            if done is not None:
                COUNTS.shared += 1
                return done
            if entry.task is not None and not entry.task.done():
                return self._after(entry.task, args, kwargs)
        COUNTS.executed += 1
        result = super().execute_operation(*args, **kwargs)
        until = time.monotonic() + SHARE_SECONDS
        if self.is_awaitable(result):
            task: asyncio.Future[ExecutionResult] = asyncio.ensure_future(result)
            shared.keep(key, _Entry(self.operation, until, task=task))
            return asyncio.shield(task)
        if isinstance(result, ExecutionResult) and not result.errors:
            shared.keep(key, _Entry(self.operation, until, result=result))
        return result

    async def _after(
        self, task: asyncio.Future[ExecutionResult], args: Any, kwargs: Any
    ) -> ExecutionResult:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.cancelled():
                raise  # this subscriber is leaving
            result = None
        except Exception:
            result = None
        if result is not None and not result.errors:
            COUNTS.shared += 1
            return result
        # Its answer had errors (or it failed): this subscriber's own execution.
        own = super().execute_operation(*args, **kwargs)
        if self.is_awaitable(own):
            own = await own
        assert isinstance(own, ExecutionResult)
        return own


def counts() -> tuple[int, int]:
    """(events executed under a key, events served from another subscriber's execution),
    over every server of this process."""
    return COUNTS.executed, COUNTS.shared

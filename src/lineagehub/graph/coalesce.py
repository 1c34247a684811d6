"""Keyed reads from concurrent requests share Bolt queries.

Under load, many requests ask the same question of different keys at once: a version by
model and name, a service by environment and name. Each alone costs Neo4j and the driver
a query (about as much CPU as the rest of the request together); many keys in one
``UNWIND`` cost little more than one. So keyed reads go through a :class:`Coalescer`:

- while fewer than ``in_flight`` queries of the same text and parameters are running,
  a read is sent at once, on its caller's task: an idle or lightly loaded server adds
  nothing to a request;
- beyond that, reads wait in a batch (up to ``max_batch`` keys; fewer for reads that walk
  lineage per key) that is sent as one query as soon as one of the running queries of its
  kind finishes, in a context of its own (no request's id or principal).

Only point reads (one key) wait and share; a read of several keys (a page's worth, already
batched within its request) goes alone without taking a slot, so point reads never queue
behind it.

A batch is only joined before it is sent, and each read takes the process's bookmarks
when it is sent, so a request still reads after its own writes. Queries of other text or
other parameters (another principal's scope, another lineage shape) never share a batch.
A failed batch fails each of its reads (each with a copy of the error, caused by it); a
cancelled reader leaves the others' batch running; closing the store fails waiting reads
as UNAVAILABLE.

A keyed query starts ``UNWIND $coalesced AS key``, reads its key's fields as ``key.<name>``
and returns ``key._i AS _i`` beside its columns (:data:`KEYED`, :data:`KEY_INDEX`).
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lineagehub.graph.errors import Unavailable

Row = dict[str, Any]
Read = Callable[[str, dict[str, Any], bool], Awaitable[list[Row]]]

KEYED = "UNWIND $coalesced AS key "
KEY_INDEX = "key._i AS _i"
_KEYS = "coalesced"
_INDEX = "_i"


@dataclass
class _Batch:
    keys: list[Row] = field(default_factory=list)
    # (future, first index, count) per reader
    readers: list[tuple[asyncio.Future[list[list[Row]]], int, int]] = field(default_factory=list)

    def join(self, keys: Sequence[Mapping[str, Any]]) -> asyncio.Future[list[list[Row]]]:
        first = len(self.keys)
        self.keys.extend({**key, _INDEX: first + j} for j, key in enumerate(keys))
        future: asyncio.Future[list[list[Row]]] = asyncio.get_running_loop().create_future()
        self.readers.append((future, first, len(keys)))
        return future


@dataclass
class _Group:
    query: str
    params: dict[str, Any]
    raw: bool
    running: int = 0
    waiting: deque[_Batch] = field(default_factory=deque)


def _split(rows: list[Row], count: int) -> list[list[Row]]:
    """Rows per key index (the index column removed), in query order."""
    answer: list[list[Row]] = [[] for _ in range(count)]
    for row in rows:
        answer[row.pop(_INDEX)].append(row)
    return answer


class Coalescer:
    """Sends keyed reads (see the module) through ``read``: at most ``in_flight`` queries
    per kind at once, the rest batched. ``in_flight=0`` sends every read alone."""

    def __init__(self, read: Read, *, in_flight: int, max_batch: int = 64) -> None:
        self._read = read
        self.in_flight = in_flight
        self.max_batch = max_batch
        self._groups: dict[tuple[str, bool, str], _Group] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def idle(self) -> bool:
        """No read running or waiting."""
        return not self._groups and not self._tasks

    async def fetch(
        self,
        query: str,
        params: Mapping[str, Any],
        keys: Sequence[Mapping[str, Any]],
        *,
        raw: bool,
        max_batch: int | None = None,
    ) -> list[list[Row]]:
        """The rows of ``query`` for each of ``keys`` (one list per key, in order).

        Only point reads (one key) wait and share: a read of several keys (a page's
        worth, batched within its request already) goes alone, without taking a slot,
        so point reads never queue behind it. ``max_batch``: at most this many keys in
        one shared query (lower for reads that walk lineage per key)."""
        if not keys:
            return []
        if self.in_flight <= 0 or len(keys) > 1 or self._closed:
            return await self._alone(query, dict(params), keys, raw)
        # Parameters are built by our own code in a fixed order: repr is a faithful key.
        name = (query, raw, repr(params))
        group = self._groups.get(name)
        if group is None:
            group = self._groups[name] = _Group(query, dict(params), raw)
        if group.running < self.in_flight and not group.waiting:
            group.running += 1
            try:
                return await self._alone(query, group.params, keys, raw)
            finally:
                group.running -= 1
                self._next(name, group)
        waiting = group.waiting
        if not waiting or len(waiting[-1].keys) >= min(max_batch or self.max_batch, self.max_batch):
            waiting.append(_Batch())
        return await waiting[-1].join(keys)

    async def _alone(
        self, query: str, params: dict[str, Any], keys: Sequence[Mapping[str, Any]], raw: bool
    ) -> list[list[Row]]:
        batch = [{**key, _INDEX: j} for j, key in enumerate(keys)]
        return _split(await self._read(query, {**params, _KEYS: batch}, raw), len(keys))

    def _next(self, name: tuple[str, bool, str], group: _Group) -> None:
        """Send the oldest waiting batch if a slot is free; forget an idle group."""
        if group.waiting and group.running < max(self.in_flight, 1):
            group.running += 1
            batch = group.waiting.popleft()
            # A batch belongs to no request: it runs in a context of its own, not in the
            # one of whichever request freed the slot (its request id, its principal).
            task = asyncio.get_running_loop().create_task(
                self._send(name, group, batch), context=contextvars.Context()
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif not group.waiting and group.running == 0:
            self._groups.pop(name, None)

    async def _send(self, name: tuple[str, bool, str], group: _Group, batch: _Batch) -> None:
        try:
            rows = await self._read(group.query, {**group.params, _KEYS: batch.keys}, group.raw)
            per_key = _split(rows, len(batch.keys))
        except asyncio.CancelledError:
            # Only shutdown cancels a batch; its readers were not cancelled themselves.
            self._fail(batch, Unavailable("the server is shutting down"))
            raise
        except Exception as error:
            self._fail(batch, error)
        else:
            for future, first, count in batch.readers:
                if not future.done():
                    future.set_result(per_key[first : first + count])
        finally:
            group.running -= 1
            if not self._closed:
                self._next(name, group)

    @staticmethod
    def _fail(batch: _Batch, error: Exception) -> None:
        # Each reader raises an exception of its own (raising writes the reader's frames
        # into it), caused by the batch's, which keeps where the failure happened.
        for future, _, _ in batch.readers:
            if not future.done():
                future.set_exception(_own(error))

    async def close(self) -> None:
        """Send no more batches; fail those waiting and cancel those running (their
        readers get UNAVAILABLE)."""
        self._closed = True
        for group in self._groups.values():
            while group.waiting:
                self._fail(group.waiting.popleft(), Unavailable("the server is shutting down"))
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._groups.clear()


def _own(error: Exception) -> Exception:
    """A copy of a batch's exception (its arguments and attributes) caused by it, or the
    exception itself when its type cannot be rebuilt from its arguments."""
    try:
        copied = copy.copy(error)
    except Exception:
        return error
    if type(copied) is not type(error) or copied is error:
        return error
    copied.__cause__ = error
    return copied

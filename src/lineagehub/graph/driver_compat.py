"""Two changes to how the neo4j driver works, each falling back to the driver's own way when
the driver lacks what it relies on: cheaper socket waits, and BEGIN sent with a
transaction's first query (``pipelined_begin``).

Neo4j tells the driver a receive timeout when a connection opens (the
``connection.recv_timeout_seconds`` hint), so the driver bounds every socket read with
``wait_for``: three reads per Bolt message (a chunk's size, the chunk, the end marker),
one RECORD message per row. On Python 3.12+ that is ``asyncio.wait_for``, which awaits the
read under ``asyncio.timeout``: a timer started and cancelled per read. On 3.11 the driver
uses its own copy of the older ``asyncio.wait_for`` instead, which also wraps each read in
a new task, a waiter future and a callback, and costs extra turns of the event loop.

Yet most reads find their bytes already in the stream's buffer and finish without
waiting at all. :func:`install` gives the driver a ``wait_for`` that first runs the read
up to its first wait, in the calling task; a read that finishes there is answered with no
timer (nothing can time it out: it never yields to the event loop), and only a read that
does wait goes on under ``asyncio.timeout``. Measured (``execute_query``, CPU per query, 3.11): 32
rows 1.62-1.69 -> 1.26-1.28 ms, 1 row 0.65-0.67 -> 0.63-0.64 ms (the driver's own wait:
2.06-2.13 and 0.73-0.74 ms). Timeouts still end a read with the same ``TimeoutError`` the driver
turns into its own error; no timeout, one already expired, or something not a coroutine
goes to the driver's own function unchanged. If the driver no longer has the function we
replace (another version), nothing is changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Generator
from contextlib import AbstractContextManager, nullcontext
from typing import Any, cast

_installed = False


def install() -> bool:
    """Give the driver the cheaper wait; True if it now has it."""
    global _installed
    if _installed:
        return True
    try:
        from neo4j._async_compat.network import _bolt_socket
        from neo4j._async_compat.shims import wait_for as driver_wait_for
    except ImportError:
        return False
    if getattr(_bolt_socket, "wait_for", None) is not driver_wait_for:
        return False
    original: Callable[[Awaitable[Any], float | None], Awaitable[Any]] = driver_wait_for

    # The driver's signature, which takes the timeout as an argument.
    async def wait_for(awaitable: Awaitable[Any], timeout: float | None) -> Any:  # noqa: ASYNC109
        if timeout is None or timeout <= 0 or not isinstance(awaitable, Coroutine):
            return await original(awaitable, timeout)
        # Most reads find their bytes already buffered and finish without waiting: only a
        # read that waits needs a timer (and nothing can time out a step that never
        # yields to the event loop anyway).
        try:
            waiting_on = awaitable.send(None)
        except StopIteration as done:
            return done.value
        async with asyncio.timeout(timeout):
            return await Resumed(awaitable, waiting_on)

    setattr(_bolt_socket, "wait_for", wait_for)  # noqa: B010 - not exported by the driver
    _installed = True
    return True


class Resumed:
    """The rest of a coroutine that has already run up to its first wait (it yielded
    ``waiting_on``), to be awaited like the coroutine itself: what the awaiting task sends
    or throws goes to the coroutine, as ``await`` would pass it."""

    __slots__ = ("_coroutine", "_waiting_on")

    def __init__(self, coroutine: Coroutine[Any, Any, Any], waiting_on: Any) -> None:
        self._coroutine = coroutine
        self._waiting_on = waiting_on

    def __await__(self) -> Generator[Any, Any, Any]:
        coroutine, waiting_on = self._coroutine, self._waiting_on
        advance: Callable[[Any], Any]
        while True:
            try:
                sent = yield waiting_on
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as error:  # a cancellation, or the timeout's
                advance, given = coroutine.throw, error
            else:
                advance, given = coroutine.send, sent
            try:
                waiting_on = advance(given)
            except StopIteration as done:
                return done.value


def pipelined_begin(session: Any) -> AbstractContextManager[Any]:
    """Within it, ``session``'s transactions send BEGIN with their first query, not in a
    round trip of its own, as the driver's own ``execute_query`` does (with this same
    private switch). A transaction function runs unchanged: an error BEGIN meets is
    raised by the first query instead, and retried the same way. If the driver no longer
    has the switch (another version), BEGIN goes alone as before."""
    switch = getattr(session, "_pipelined_begin", None)
    if switch is None or not hasattr(switch, "__enter__"):
        return nullcontext()
    return cast(AbstractContextManager[Any], switch)

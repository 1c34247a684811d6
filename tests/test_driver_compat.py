"""The driver's socket waits and pipelined BEGIN (graph/driver_compat.py), against real Neo4j."""

from __future__ import annotations

import asyncio
import threading
import time
import types
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import neo4j
import pytest
from neo4j._async.io._bolt._base import AsyncBolt
from neo4j._async_compat.network import _bolt_socket
from neo4j._async_compat.shims import wait_for as driver_wait_for

from lineagehub.graph import driver_compat
from lineagehub.graph.store import Store, Tx
from lineagehub.settings import Settings
from tests.conftest import Neo4jServer, with_store


def test_the_driver_gets_the_cheaper_wait_once_a_store_exists() -> None:
    assert driver_compat.install() is True
    assert getattr(_bolt_socket, "wait_for") is not driver_wait_for  # noqa: B009
    assert driver_compat.install() is True  # idempotent


def test_the_wait_returns_times_out_and_cancels_as_the_drivers_own() -> None:
    driver_compat.install()
    wait_for = getattr(_bolt_socket, "wait_for")  # noqa: B009

    async def answer(delay: float) -> str:
        await asyncio.sleep(delay)
        return "answer"

    async def scenario() -> None:
        assert await wait_for(answer(0), 1.0) == "answer"
        assert await wait_for(answer(0), None) == "answer"
        began = time.monotonic()
        with pytest.raises(asyncio.TimeoutError):
            await wait_for(answer(5), 0.05)
        assert time.monotonic() - began < 1.0
        # An outer cancellation reaches the read and is not swallowed.
        task = asyncio.ensure_future(wait_for(answer(5), 10.0))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # An expired timeout goes to the driver's own function: it still times out.
        with pytest.raises(asyncio.TimeoutError):
            await wait_for(asyncio.ensure_future(answer(5)), 0)

    asyncio.run(scenario())


def test_a_read_that_does_not_wait_starts_no_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    driver_compat.install()
    wait_for = getattr(_bolt_socket, "wait_for")  # noqa: B009
    timers: list[float] = []
    real_timeout = asyncio.timeout

    mine = threading.get_ident()

    def counted(delay: float | None) -> Any:
        # Only this thread's: a server of the session may read in the background meanwhile.
        if threading.get_ident() == mine:
            timers.append(delay or 0.0)
        return real_timeout(delay)

    monkeypatch.setattr(asyncio, "timeout", counted)
    steps: list[str] = []

    async def buffered() -> str:
        steps.append("read")
        return "bytes"

    async def fails() -> str:
        raise ConnectionResetError("gone")

    async def waits_then_fails() -> str:
        await asyncio.sleep(0)
        raise ConnectionResetError("gone later")

    async def cleans_up() -> None:
        try:
            await asyncio.sleep(5)
        finally:
            steps.append("cleaned up")

    async def scenario() -> None:
        assert await wait_for(buffered(), 1.0) == "bytes"
        assert timers == [] and steps == ["read"]
        with pytest.raises(ConnectionResetError, match="gone"):
            await wait_for(fails(), 1.0)
        assert timers == []
        with pytest.raises(ConnectionResetError, match="gone later"):
            await wait_for(waits_then_fails(), 1.0)
        assert timers == [1.0]
        # A read that waits past its timeout is cancelled inside, and says TimeoutError.
        with pytest.raises(asyncio.TimeoutError):
            await wait_for(cleans_up(), 0.05)
        assert steps == ["read", "cleaned up"] and timers == [1.0, 0.05]
        # So is one cancelled from outside; the cancellation is not swallowed.
        task = asyncio.ensure_future(wait_for(cleans_up(), 10.0))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert steps[-1] == "cleaned up"

    asyncio.run(scenario())


async def _plain_timeout(awaitable: Any, timeout: float) -> Any:  # noqa: ASYNC109
    async with asyncio.timeout(timeout):
        return await awaitable


async def _outcome(
    wait: Any, read: Callable[[list[str]], Any], seconds: float, cancel_after: float | None
) -> tuple[Any, ...]:
    """How a read under ``wait`` ends, seen from outside: result or exception, the task's
    pending cancellations, and the read's own cleanup."""
    cleaned: list[str] = []
    task = asyncio.ensure_future(wait(read(cleaned), seconds))
    if cancel_after is not None:
        await asyncio.sleep(cancel_after)
        task.cancel()
    try:
        ended: tuple[Any, ...] = ("returned", await task)
    except BaseException as error:
        ended = (type(error).__name__, str(error))
    return (*ended, task.cancelling(), cleaned)


def _reads() -> dict[str, Callable[[list[str]], Any]]:
    """Reads by name, each a function of the list its cleanup writes to."""

    def sleeps(seconds: float) -> Callable[[list[str]], Any]:
        async def read(cleaned: list[str]) -> str:
            try:
                await asyncio.sleep(seconds)
                return "bytes"
            finally:
                cleaned.append("cleaned up")

        return read

    def swallows(then_wait: bool) -> Callable[[list[str]], Any]:
        async def read(cleaned: list[str]) -> str:
            try:
                await asyncio.sleep(5)
            except asyncio.CancelledError:
                cleaned.append("swallowed")
                if then_wait:
                    await asyncio.sleep(0.01)
            return "after cancel"

        return read

    async def converts(cleaned: list[str]) -> str:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            raise ValueError("converted") from None
        return "never"

    def bare_yields(cleaned: list[str]) -> Any:
        @types.coroutine
        def steps() -> Any:
            yield
            yield
            return "after two turns"

        return steps()

    return {
        "buffered": sleeps(0),
        "waits": sleeps(0.01),
        "waits too long": sleeps(5),
        "swallows the cancellation": swallows(False),
        "swallows it and waits again": swallows(True),
        "turns it into an error": converts,
        "yields bare": bare_yields,
    }


@pytest.mark.parametrize("cancel_after", [None, 0.005, 0.02], ids=["alone", "cancelled", "both"])
@pytest.mark.parametrize("read", list(_reads()))
def test_the_wait_ends_every_read_as_a_plain_timeout_would(
    read: str, cancel_after: float | None
) -> None:
    """Against ``async with asyncio.timeout(...)`` around the read: same result or error,
    same count of pending cancellations on the task, same cleanup."""
    driver_compat.install()
    wait_for = getattr(_bolt_socket, "wait_for")  # noqa: B009
    coroutine = _reads()[read]

    async def both() -> tuple[Any, Any]:
        ours = await _outcome(wait_for, coroutine, 0.02, cancel_after)
        plain = await _outcome(_plain_timeout, coroutine, 0.02, cancel_after)
        return ours, plain

    ours, plain = asyncio.run(both())
    assert ours == plain


def test_reads_under_the_servers_receive_timeout_still_work(neo4j_server: Neo4jServer) -> None:
    """Neo4j announces a receive timeout, so every read of a query goes through the wait."""
    driver_compat.install()
    calls = []
    installed = getattr(_bolt_socket, "wait_for")  # noqa: B009

    async def counting(awaitable: Any, timeout: float | None) -> Any:  # noqa: ASYNC109
        calls.append(timeout)
        return await installed(awaitable, timeout)

    async def scenario() -> None:
        auth = (neo4j_server.user, neo4j_server.password or "") if neo4j_server.user else None
        async with neo4j.AsyncGraphDatabase.driver(neo4j_server.uri, auth=auth) as driver:
            records, _, _ = await driver.execute_query(
                "UNWIND range(1, $n) AS i RETURN i", {"n": 20000}
            )
            assert [r["i"] for r in records] == list(range(1, 20001))

    setattr(_bolt_socket, "wait_for", counting)  # noqa: B010
    try:
        asyncio.run(scenario())
    finally:
        setattr(_bolt_socket, "wait_for", installed)  # noqa: B010
    assert calls, "the driver read through wait_for"
    assert any(t is not None and t > 0 for t in calls), "the server announced a timeout"


def test_a_write_sends_begin_with_its_first_query(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write transaction's BEGIN travels with its first query (driver_compat's
    pipelined_begin): a one-query write is two sends to Neo4j, the query and the commit."""
    sends: list[int] = []
    send_all: Any = AsyncBolt.send_all

    async def counted(self: Any) -> Any:
        sends.append(1)
        return await send_all(self)

    monkeypatch.setattr(AsyncBolt, "send_all", counted)

    async def work(store: Store) -> tuple[int, list[Any]]:
        async def one(tx: Tx) -> list[Any]:
            return await tx.run("RETURN 1 AS one")

        await store.write(one)  # the connection opens (its own messages) outside the count
        sends.clear()
        rows = await store.write(one)
        return len(sends), rows

    assert with_store(settings, work) == (2, [{"one": 1}])


def test_a_write_that_fails_early_fails_as_before(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With BEGIN sent late, what a write meets before its first query is reported as
    before: a unit that runs no query commits, a unit that raises before one raises its
    own error, and a database that does not exist fails the same way as with BEGIN
    sent alone (the driver's own way, a driver without the switch)."""

    async def nothing(tx: Tx) -> str:
        return "done"

    async def refuse(tx: Tx) -> None:
        raise ValueError("refused before any query")

    async def one(tx: Tx) -> list[Any]:
        return await tx.run("RETURN 1 AS one")

    def outcomes() -> tuple[str, str, str]:
        async def work(store: Store) -> tuple[str, str, str]:
            done = await store.write(nothing)
            try:
                await store.write(refuse)
            except ValueError as error:
                refused = str(error)
            elsewhere = Store(store.driver, "nosuchdatabase")
            try:
                await elsewhere.write(one)
                missing = "written"
            except Exception as error:  # the same type and code, either way
                missing = f"{type(error).__name__}: {getattr(error, 'code', '')}"
            return done, refused, missing

        return with_store(settings, work)

    pipelined = outcomes()
    monkeypatch.setattr(driver_compat, "pipelined_begin", lambda session: nullcontext())
    alone = outcomes()
    assert pipelined == alone
    assert pipelined[:2] == ("done", "refused before any query")
    assert pipelined[2] != "written"


def test_without_the_switch_begin_goes_alone() -> None:
    """Another driver without the private switch: BEGIN goes alone, nothing breaks."""
    assert isinstance(driver_compat.pipelined_begin(object()), nullcontext)

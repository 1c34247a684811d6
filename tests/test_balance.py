"""Workers even out their keep-alive connections (lineagehub.workers.Balance, and the
protocol acting on it in lineagehub.http_protocol)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState

from lineagehub.http_protocol import OneWriteProtocol
from lineagehub.workers import Balance
from tests.test_http_protocol import Sink, in_a_loop


def test_a_worker_within_its_share_keeps_its_connections() -> None:
    assert not Balance([50, 50], 0).over_share(50)
    assert not Balance([0, 49], 0).over_share(51)  # 51/49: within 1/40 of a share


def test_a_worker_over_its_share_closes_one() -> None:
    assert Balance([0, 48], 0).over_share(52)
    assert Balance([42, 0], 1).over_share(58)  # its own slot is read from its argument
    assert not Balance([58, 0], 1).over_share(42), "the worker under its share never acts"
    # Few connections: no tolerance; 2 against 0 is uneven, 2 against 1 is as even as 3 gets.
    assert Balance([0, 0], 0).over_share(2)
    assert not Balance([0, 1], 0).over_share(2)


def test_the_share_is_of_the_workers_serving() -> None:
    # Slot 2 has no worker (-1: dead, or not yet up): two workers share 60 connections.
    assert not Balance([0, 30, -1], 0).over_share(30)
    assert Balance([0, 20, -1], 0).over_share(40)
    # Alone, a worker has no one to hand a connection to.
    assert not Balance([0, -1], 0).over_share(100)
    assert not Balance([0], 0).over_share(100)


def test_connections_already_closing_are_not_counted_again() -> None:
    balance = Balance([0, 48], 0)
    assert balance.over_share(53)  # 53 of 101: the share is 51, plus 1 of tolerance
    balance.closing()  # one of the 53 closes after its answer: 52 stay
    assert not balance.over_share(53)
    balance.kept()  # it stays open after all (a pipelined request came)
    assert balance.over_share(53)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_clients_of_closed_connections_count_until_they_are_back() -> None:
    """A pool that reconnects only when it next sends: 40 connections on one worker, and
    the other just started. Closing one at a time, the worker stops at its share (20),
    not at 1, because the 20 it closed still count for a second."""
    clock = Clock()
    balance = Balance([0, 0], 0, clock)
    held = 40
    while balance.over_share(held):
        balance.closing()
        balance.closed()
        held -= 1
        clock.now += 0.01
    assert held == 20
    # A second on, none of them came back: they no longer count, and 20 on one worker
    # against none on the other is uneven again.
    clock.now += 1.0
    assert balance.over_share(held)
    assert not balance.departed, "forgotten once counted out"


def test_a_worker_shutting_down_leaves_the_balance() -> None:
    counts = [30, 30]
    balance = Balance(counts, 0)
    balance.leave()
    assert counts == [-1, 30], "the others stop counting it"
    balance.publish(12)  # its connections close one by one as it drains
    assert counts == [-1, 30]
    assert not Balance(counts, 1).over_share(30), "the other one is alone now"


def _protocol(balance: Balance, state: ServerState, sink: Sink) -> OneWriteProtocol:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        head = [(b"content-length", b"2")]
        await send({"type": "http.response.start", "status": 200, "headers": head})
        await send({"type": "http.response.body", "body": b"{}"})

    protocol_class = OneWriteProtocol.balanced(balance)
    config = uvicorn.Config(app, log_config=None, lifespan="off", http=protocol_class)
    config.load()
    protocol = protocol_class(config, state, {}, _loop=asyncio.get_running_loop())
    protocol.connection_made(sink)  # type: ignore[arg-type]
    return protocol


def _worker(counts: list[int], connections: int) -> tuple[Balance, list[Sink], list[Any]]:
    """The worker in slot 0 of ``counts``, with ``connections`` open: (its balance, each
    connection's transport, each connection's protocol)."""
    balance, state = Balance(counts, 0), ServerState()
    sinks = [Sink() for _ in range(connections)]
    return balance, sinks, [_protocol(balance, state, sink) for sink in sinks]


async def _answered(protocol: OneWriteProtocol, sink: Sink, request: bytes) -> list[bytes]:
    sink.writes.clear()
    protocol.data_received(request)
    await asyncio.sleep(0.05)
    return sink.writes


GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


@in_a_loop
async def test_the_worker_over_its_share_answers_then_closes_one_connection() -> None:
    counts = [-1, 0]  # this worker in slot 0; the other worker holds no connection
    balance, sinks, protocols = _worker(counts, 2)
    assert counts[0] == 2, "each new connection is published"

    first = await _answered(protocols[0], sinks[0], GET)
    assert first[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nconnection: close\r\n" in first[0]
    assert first[0].endswith(b"\r\n\r\n{}"), "the answer is whole"
    assert sinks[0].closed, "then the connection closes"
    protocols[0].connection_lost(None)  # as the event loop reports it
    assert counts[0] == 1 and balance.shedding == 0 and len(balance.departed) == 1

    # One connection each way (1 against 0) is as even as it gets: this one stays.
    second = await _answered(protocols[1], sinks[1], GET)
    assert b"connection: close" not in second[0] and not sinks[1].closed


@in_a_loop
async def test_a_worker_within_its_share_keeps_every_connection() -> None:
    counts = [-1, 2]
    _, sinks, protocols = _worker(counts, 2)
    for protocol, sink in zip(protocols, sinks, strict=True):
        for _ in range(3):
            answer = await _answered(protocol, sink, GET)
            assert b"connection: close" not in answer[0]
        assert not sink.closed


@in_a_loop
async def test_only_one_connection_is_told_to_close_at_a_time_for_each_surplus() -> None:
    counts = [-1, 2]  # 4 here against 2: share 3, one too many
    balance, sinks, protocols = _worker(counts, 4)
    for protocol in protocols:  # four requests at once, none answered yet
        protocol.data_received(GET)
    assert balance.shedding == 1
    await asyncio.sleep(0.05)
    assert [sink.closed for sink in sinks] == [True, False, False, False]


@in_a_loop
async def test_pipelined_requests_keep_the_connection_open() -> None:
    counts = [-1, 0]
    balance, sinks, protocols = _worker(counts, 2)
    # Two requests in one read: the first would be the one to close the connection, but
    # the second is already queued behind it, so both are answered on a connection that
    # stays open.
    writes = await _answered(protocols[0], sinks[0], GET + GET)
    assert len(writes) == 2 and all(b"connection: close" not in w for w in writes)
    assert not sinks[0].closed and balance.shedding == 0
    # The next lone request on it is the one that closes it.
    writes = await _answered(protocols[0], sinks[0], GET)
    assert b"connection: close" in writes[0] and sinks[0].closed


@in_a_loop
async def test_a_shutdown_is_not_undone_by_a_pipelined_request() -> None:
    counts = [-1, 0]
    balance, sinks, protocols = _worker(counts, 2)
    protocols[0].data_received(GET)  # shed: this worker holds 2 against 0
    assert balance.shedding == 1
    protocols[0].shutdown()  # the server stops: every connection closes after its answer
    protocols[0].data_received(GET)  # pipelined behind the first
    await asyncio.sleep(0.05)
    assert sinks[0].closed, "closed after its answer, as shutting down requires"
    assert counts[0] == -1


@in_a_loop
async def test_a_client_asking_to_close_is_not_counted_as_shed() -> None:
    counts = [-1, 0]
    balance, sinks, protocols = _worker(counts, 2)
    request = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    await _answered(protocols[0], sinks[0], request)
    assert sinks[0].closed and balance.shedding == 0


@pytest.mark.parametrize("balanced", [True, False])
def test_the_plain_protocol_knows_no_balance(balanced: bool) -> None:
    protocol = OneWriteProtocol.balanced(Balance([0], 0)) if balanced else OneWriteProtocol
    assert (protocol.balance is not None) is balanced
    assert OneWriteProtocol.balance is None, "balanced() leaves the base class alone"

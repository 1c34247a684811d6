"""A response's head and body leave in one write (lineagehub.http_protocol)."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import httpx
import pytest
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from lineagehub.http_protocol import MERGE_LIMIT, HeldHead, OneWriteProtocol
from lineagehub.settings import Settings
from tests.conftest import ThreadedServer


class Recorder:
    """A transport standing in front of the real one, keeping what each write sent."""

    def __init__(self, transport: asyncio.Transport, writes: list[bytes]) -> None:
        self.transport = transport
        self.writes = writes

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self.transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


def recording(protocol: type[HttpToolsProtocol], writes: list[bytes]) -> type[HttpToolsProtocol]:
    class Recording(protocol):  # type: ignore[valid-type, misc]
        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(Recorder(transport, writes))

    return Recording


@pytest.fixture(scope="module")
def recorded(settings: Settings) -> Iterator[tuple[ThreadedServer, list[bytes]]]:
    writes: list[bytes] = []
    # The recorder sits under HeldHead: it sees what reaches the socket.
    with ThreadedServer(settings, http=recording(OneWriteProtocol, writes)) as running:
        yield running, writes


def _one_write_each(writes: list[bytes], count: int) -> list[bytes]:
    assert len(writes) == count, [w[:40] for w in writes]
    for write in writes:
        head, _, body = write.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 ")
        length = int(
            next(
                v
                for k, _, v in (h.partition(b": ") for h in head.split(b"\r\n")[1:])
                if k == b"content-length"
            )
        )
        assert len(body) == length
    return writes


def test_every_kind_of_answer_is_one_write(recorded: tuple[ThreadedServer, list[bytes]]) -> None:
    server, writes = recorded
    query = {"query": "query One { __typename }"}
    with httpx.Client(base_url=server.url) as client:  # one keep-alive connection
        writes.clear()
        first = client.post("/graphql", json=query)  # Strawberry's view: not cached yet
        again = client.post("/graphql", json=query)  # the warm lane
        invalid = client.post("/graphql", json={"query": "{ nope }"})
        health = client.get("/healthz")
        page = client.get("/graphql", headers={"Accept": "text/html"})
        rest = client.get("/api/model_registry/v1alpha3/registered_models")
        missing = client.get("/nowhere")
    assert first.json()["data"] == again.json()["data"] == {"__typename": "Query"}
    assert invalid.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION"
    assert health.json()["status"] == "alive"
    assert "graphiql" in page.text.lower()
    assert rest.status_code == 200 and "items" in rest.json()
    assert missing.status_code == 404
    sent = _one_write_each(writes, 7)
    assert json.loads(sent[1].partition(b"\r\n\r\n")[2]) == again.json()


def test_uvicorns_own_protocol_writes_the_head_alone(settings: Settings) -> None:
    """Why OneWriteProtocol exists: if uvicorn ever writes a response at once by itself,
    this fails, and the class can go."""
    writes: list[bytes] = []
    with ThreadedServer(settings, http=recording(HttpToolsProtocol, writes)) as server:
        assert httpx.get(f"{server.url}/healthz").status_code == 200
    assert len(writes) == 2
    assert writes[0].startswith(b"HTTP/1.1 200 ") and writes[0].endswith(b"\r\n\r\n")
    assert json.loads(writes[1])["status"] == "alive"


class Sink:
    """The transport under HeldHead in the unit tests: a list of writes, and close."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return 7


def in_a_loop(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    @functools.wraps(test)
    def run() -> None:
        asyncio.run(test())

    return run


HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


async def _held() -> tuple[HeldHead, Sink]:
    sink = Sink()
    return HeldHead(sink, asyncio.get_running_loop()), sink  # type: ignore[arg-type]


@in_a_loop
async def test_a_head_goes_with_the_body_after_it() -> None:
    held, sink = await _held()
    held.write(HEAD)
    assert sink.writes == []
    held.write(b"{}")
    assert sink.writes == [HEAD + b"{}"]
    await asyncio.sleep(0)  # the turn that would have sent a head still held: nothing
    assert sink.writes == [HEAD + b"{}"]


@in_a_loop
async def test_a_head_alone_goes_on_the_next_turn_of_the_loop() -> None:
    held, sink = await _held()
    held.write(HEAD)
    await asyncio.sleep(0)
    assert sink.writes == [HEAD]
    held.write(b"{}")  # a streamed body, later
    assert sink.writes == [HEAD, b"{}"]


@in_a_loop
async def test_a_large_body_is_not_copied_behind_the_head() -> None:
    held, sink = await _held()
    body = b"x" * (MERGE_LIMIT + 1)
    held.write(HEAD)
    held.write(memoryview(body))
    assert [bytes(w) for w in sink.writes] == [HEAD, body]
    held.write(HEAD)
    held.write(bytearray(b"y" * MERGE_LIMIT))
    assert sink.writes[2:] == [HEAD + b"y" * MERGE_LIMIT]


@in_a_loop
async def test_closing_sends_what_is_held_first() -> None:
    held, sink = await _held()
    held.write(HEAD)
    held.close()
    assert sink.writes == [HEAD] and sink.closed
    await asyncio.sleep(0)
    assert sink.writes == [HEAD]


@in_a_loop
async def test_nothing_is_written_once_the_connection_closes() -> None:
    held, sink = await _held()
    held.write(HEAD)
    sink.closed = True  # the peer went away meanwhile
    await asyncio.sleep(0)
    assert sink.writes == []


@in_a_loop
async def test_other_writes_pass_straight_through() -> None:
    held, sink = await _held()
    held.write(b"0\r\n\r\n")
    assert sink.writes == [b"0\r\n\r\n"]
    assert held.get_write_buffer_size() == 7

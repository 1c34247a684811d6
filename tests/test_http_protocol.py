"""A response's head and body leave in one write (lineagehub.http_protocol)."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

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
        headers = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:])
        assert len(body) == int(headers[b"content-length"])
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
        self.eof = False

    def write(self, data: bytes) -> None:
        assert not self.closed and not self.eof
        self.writes.append(bytes(data))

    def writelines(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            self.write(chunk)

    def write_eof(self) -> None:
        self.eof = True

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return 7

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


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


@in_a_loop
async def test_other_ways_of_writing_or_closing_send_the_head_first() -> None:
    held, sink = await _held()
    held.write(HEAD)
    held.writelines([b"{", b"}"])
    assert sink.writes == [HEAD, b"{", b"}"]
    held.write(HEAD)
    held.write_eof()
    assert sink.writes[3:] == [HEAD] and sink.eof
    await asyncio.sleep(0)
    assert len(sink.writes) == 4


@in_a_loop
async def test_an_abort_drops_what_is_held() -> None:
    held, sink = await _held()
    held.write(HEAD)
    held.abort()
    await asyncio.sleep(0)
    assert sink.writes == [] and sink.closed


@in_a_loop
async def test_only_a_whole_short_head_is_held() -> None:
    held, sink = await _held()
    looks_like_a_head = b"HTTP/1.1 is what this text is about"
    held.write(looks_like_a_head)  # no blank line at its end
    long_head = b"HTTP/1.1 200 OK\r\nx-padding: " + b"x" * 20000 + b"\r\n\r\n"
    held.write(long_head)
    assert sink.writes == [looks_like_a_head, long_head]


async def _served(*requests: bytes) -> list[bytes]:
    """What OneWriteProtocol writes for these bytes, each as it arrives, from a small app."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        if scope["path"] == "/echo":
            body = (await receive())["body"]
            head = [(b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": head})
            await send({"type": "http.response.body", "body": body})
        elif scope["path"] == "/stream":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await asyncio.sleep(0)
            for part in (b"HTTP/1.1 is", b" a text"):
                await send({"type": "http.response.body", "body": part, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        else:
            head = [(b"content-length", b"2")]
            await send({"type": "http.response.start", "status": 200, "headers": head})
            await send({"type": "http.response.body", "body": b"{}"})

    config = uvicorn.Config(app, log_config=None, lifespan="off", http=OneWriteProtocol)
    config.load()
    loop = asyncio.get_running_loop()
    protocol = OneWriteProtocol(config, ServerState(), {}, _loop=loop)
    sink = Sink()
    protocol.connection_made(sink)  # type: ignore[arg-type]
    for request in requests:
        protocol.data_received(request)
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)
    return [_summary(w) for w in sink.writes]


def _summary(write: bytes) -> bytes:
    """A write as "<status line> | <body>", or as it is when it holds no head."""
    if not write.startswith(b"HTTP/1.1 "):
        return write
    status, _, rest = write.partition(b"\r\n")
    return status + b" | " + rest.partition(b"\r\n\r\n")[2]


@in_a_loop
async def test_pipelined_requests_are_answered_in_order() -> None:
    writes = await _served(
        b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
        b"HEAD /b HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /c HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    # The HEAD answer is a head alone: it goes on the next turn of the loop.
    assert writes == [b"HTTP/1.1 200 OK | {}", b"HTTP/1.1 200 OK | ", b"HTTP/1.1 200 OK | {}"]


@in_a_loop
async def test_100_continue_then_the_answer() -> None:
    writes = await _served(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
        b"abc",
    )
    assert writes == [b"HTTP/1.1 100 Continue | ", b"HTTP/1.1 200 OK | abc"]


@in_a_loop
async def test_a_streamed_answer_keeps_its_order() -> None:
    writes = await _served(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    assert writes[0] == b"HTTP/1.1 200 OK | "
    assert writes[1:] == [
        b"b\r\nHTTP/1.1 is\r\n",
        b"7\r\n a text\r\n",
        b"0\r\n\r\n",
    ]

"""The benches' HTTP client parses responses as their bytes arrive: whole, split anywhere,
chunked, several in a row, and a connection the server closed while idle."""

from __future__ import annotations

import asyncio

import pytest
from bench.common import GraphQLClient, HttpConnection, _parse_response

from tests.conftest import ThreadedServer

PLAIN = (
    b'HTTP/1.1 200 OK\r\ncontent-length: 11\r\ncontent-type: application/json\r\n\r\n{"data":{}}'
)
CHUNKED = (
    b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n"
)


def test_whole_responses() -> None:
    assert _parse_response(bytearray(PLAIN)) == (200, b'{"data":{}}', False, len(PLAIN))
    assert _parse_response(bytearray(CHUNKED)) == (400, b"hello world", True, len(CHUNKED))


def test_a_body_of_unknown_length_is_refused() -> None:
    with pytest.raises(ValueError):
        _parse_response(bytearray(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nhi"))
    assert _parse_response(bytearray(b"HTTP/1.1 204 No Content\r\n\r\n")) == (
        204,
        b"",
        False,
        len(b"HTTP/1.1 204 No Content\r\n\r\n"),
    )


def test_a_response_split_anywhere_is_complete_only_at_its_end() -> None:
    for response in (PLAIN, CHUNKED):
        for cut in range(len(response)):
            assert _parse_response(bytearray(response[:cut])) is None, cut


def test_the_next_response_is_left_in_the_buffer() -> None:
    buffer = bytearray(PLAIN + CHUNKED[:20])
    status, body, close, used = _parse_response(buffer)  # type: ignore[misc]
    assert (status, body, close) == (200, b'{"data":{}}', False)
    assert buffer[used:] == CHUNKED[:20]


def test_requests_on_one_connection(server: ThreadedServer) -> None:
    async def run() -> None:
        client = GraphQLClient(server.url)
        try:
            answers = [await client("{ __typename }") for _ in range(3)]
            assert all(a.ok and a.data == {"__typename": "Query"} for a in answers)
        finally:
            await client.close()

    asyncio.run(run())


def test_a_request_the_server_closed_on_unread_is_sent_again_once() -> None:
    """A server closing an idle keep-alive connection (uvicorn does after 5 s) as the next
    request arrives: nothing was answered, so the client sends it again on a new one."""

    async def run() -> None:
        connections = 0

        done = asyncio.Semaphore(0)  # released as each server-side connection ends

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal connections
            connections += 1
            answered = 0
            try:
                while await reader.readuntil(b"\r\n\r\n"):
                    await reader.readexactly(2)  # the body: {}
                    if connections == 1 and answered == 1:
                        return  # the second request on the first connection: dropped
                    writer.write(PLAIN)
                    answered += 1
            except asyncio.IncompleteReadError:
                return  # the client closed it
            finally:
                writer.close()
                await writer.wait_closed()
                done.release()

        listener = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        http = HttpConnection(f"http://127.0.0.1:{port}")
        try:
            assert await http.post("/graphql", b"{}") == (200, b'{"data":{}}')
            assert await http.post("/graphql", b"{}") == (200, b'{"data":{}}')
            assert connections == 2
        finally:
            await http.close()
            listener.close()
            for _ in range(connections):
                await asyncio.wait_for(done.acquire(), 5)

    asyncio.run(run())


def test_bytes_no_request_asked_for_fail_the_next_request() -> None:
    """A second answer to one request (or one arriving after its caller gave up) is never
    taken for the next request's answer."""

    async def run() -> None:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(2)
            writer.write(PLAIN + PLAIN)  # one answer too many
            await writer.drain()
            await reader.read()  # until the client closes
            writer.close()
            await writer.wait_closed()

        listener = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        http = HttpConnection(f"http://127.0.0.1:{port}")
        try:
            assert await http.post("/graphql", b"{}") == (200, b'{"data":{}}')
            await asyncio.sleep(0.05)
            with pytest.raises(ConnectionError):
                await http.post("/graphql", b"{}")
            assert http.protocol is None  # closed: the next request opens another
        finally:
            await http.close()
            listener.close()
            await asyncio.sleep(0.05)

    asyncio.run(run())

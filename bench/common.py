"""What every bench shares: Neo4j connections, the API server process, an HTTP client."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import neo4j

from lineagehub.graph import driver_compat
from lineagehub.graph.store import Store

DEFAULT_URI = "bolt://127.0.0.1:17687"
RESULTS = Path(__file__).resolve().parent / "results"


def add_neo4j_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--neo4j-uri",
        default=os.environ.get("LINEAGEHUB_NEO4J_URI") or DEFAULT_URI,
        help="Bolt URI of the Neo4j to use (default: $LINEAGEHUB_NEO4J_URI or %(default)s)",
    )
    parser.add_argument("--database", default="neo4j")


def _auth() -> tuple[str, str] | None:
    user = os.environ.get("LINEAGEHUB_NEO4J_USER")
    return (user, os.environ.get("LINEAGEHUB_NEO4J_PASSWORD", "")) if user else None


def neo4j_driver(uri: str, *, pool: int = 100) -> neo4j.AsyncDriver:
    """The raw async driver: what the baselines use, configured as lineagehub's Store
    (with the same socket waits: ``graph/driver_compat.py``)."""
    driver_compat.install()
    return neo4j.AsyncGraphDatabase.driver(
        uri, auth=_auth(), max_connection_pool_size=pool, notifications_min_severity="OFF"
    )


async def raw_read(
    driver: neo4j.AsyncDriver, query: str, params: dict[str, Any] | None = None
) -> list[neo4j.Record]:
    """A baseline's read, the fastest way the driver offers: one auto-commit query (one
    network round trip), as lineagehub's Store reads; ``execute_query`` adds a COMMIT
    round trip (~0.25 ms)."""
    async with driver.session(default_access_mode=neo4j.READ_ACCESS) as session:
        result = await session.run(query, params or {})
        return (await result.to_eager_result()).records


async def lane_timer(
    settings: Any, query: str, variables: dict[str, Any], context: Callable[[], Any]
) -> Callable[[dict[str, Any]], Awaitable[float]]:
    """Times, in-process, the path the server answers ``query`` by once it has seen it (the
    warm lane, api/graphql/lane.py): one request through Strawberry parses, validates and
    caches it; each call of the returned function then answers it with ``variables`` and
    returns the seconds taken (execution and JSON encoding)."""
    from lineagehub.api.graphql.schema import build_schema, lane_for

    schema = build_schema(settings)
    lane = lane_for(schema, settings)
    assert lane is not None
    first = await schema.execute(query, variable_values=variables, context_value=context())
    assert not first.errors, first.errors

    async def timed(given: dict[str, Any]) -> float:
        body = json.dumps({"query": query, "variables": given}).encode()
        began = time.perf_counter()
        taken = lane.request(body)
        assert taken is not None
        await lane.answer(*taken, context())
        return time.perf_counter() - began

    return timed


def store_for(uri: str, database: str = "neo4j") -> Store:
    auth = _auth()
    return Store.connect(
        uri, user=auth[0] if auth else None, password=auth[1] if auth else None, database=database
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def say(*parts: object) -> None:
    """Progress goes to stderr; tables go to stdout."""
    print(*parts, file=sys.stderr, flush=True)


# --- the API server -------------------------------------------------------------------


class ApiServer:
    """``python -m lineagehub.cli serve`` in its own process on a loopback port: the service
    as deployed (one uvicorn process, default settings, JSON request logs to a file)."""

    def __init__(
        self,
        neo4j_uri: str,
        workdir: Path,
        *,
        database: str = "neo4j",
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.workdir = workdir
        # The child runs in ``workdir``: keep relative import paths pointing where they did.
        paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(str(Path(p).resolve()) for p in paths if p),
            "LINEAGEHUB_NEO4J_URI": neo4j_uri,
            "LINEAGEHUB_NEO4J_DATABASE": database,
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ApiServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / "lineagehub-server.log", "ab")
        # cwd is the work dir so no stray .env file changes the settings.
        self.process = subprocess.Popen(  # noqa: S603 - fixed argv
            [
                sys.executable,
                "-m",
                "lineagehub.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            cwd=self.workdir,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        try:
            wait_ready(f"{self.url}/readyz", self.process, timeout=60)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def api_at(
    uri: str, api_url: str | None, *, database: str = "neo4j", workdir: Path | None = None
) -> Iterator[str]:
    """``api_url``, or the URL of a server started here (and stopped after)."""
    if api_url is not None:
        yield api_url
        return
    where = workdir or Path(tempfile.mkdtemp(prefix="bench-"))
    with ApiServer(uri, where, database=database) as server:
        yield server.url


def finish(tables: list[Any], json_path: Path | None) -> int:
    """A bench's end: its tables printed, and saved as JSON when asked."""
    from bench.report import save

    for table in tables:
        print(table.render())
    save(tables, json_path)
    return 0


def wait_ready(url: str, process: subprocess.Popen[bytes], *, timeout: float) -> None:
    """Poll ``url`` until it answers 200; fail early if ``process`` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before {url} answered")
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(url, timeout=2) as response,  # noqa: S310 - loopback
        ):
            if response.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer 200 within {timeout:.0f} s")


# --- a lean HTTP/1.1 client ----------------------------------------------------------


class _Response(asyncio.Protocol):
    """The reading side of one connection: bytes are parsed as they arrive, and the waiting
    request's future gets (status, body) once a whole response is in."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self.lost = False
        self.received = False  # any byte of the current response

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received = True
        self.buffer += data
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        try:
            parsed = _parse_response(self.buffer)
        except ValueError as error:
            waiter.set_exception(ConnectionError(f"bad response: {error}"))
            return
        if parsed is not None:
            status, body, close, used = parsed
            del self.buffer[:used]
            waiter.set_result((status, body, close))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("the server closed the connection"))


def _parse_response(buffer: bytearray) -> tuple[int, bytes, bool, int] | None:
    """(status, body, connection: close, bytes used) of the response at the start of
    ``buffer``, or None while it is incomplete."""
    head_end = buffer.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    lines = bytes(buffer[:head_end]).split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, has_length, chunked, close = 0, False, False, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length, has_length = int(value), True
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif name == b"connection" and b"close" in value.lower():
            close = True
    at = head_end + 4
    if not chunked:
        if not has_length and status >= 200 and status not in (204, 304):
            raise ValueError("a response body without Content-Length or chunks")
        if len(buffer) < at + length:
            return None
        return status, bytes(buffer[at : at + length]), close, at + length
    parts: list[bytes] = []
    while True:
        line_end = buffer.find(b"\r\n", at)
        if line_end < 0:
            return None
        size = int(bytes(buffer[at:line_end]).split(b";")[0], 16)
        at = line_end + 2
        if size == 0:
            while True:  # trailer lines, if any, then the empty line
                line_end = buffer.find(b"\r\n", at)
                if line_end < 0:
                    return None
                if line_end == at:
                    return status, b"".join(parts), close, at + 2
                at = line_end + 2
        if len(buffer) < at + size + 2:
            return None
        parts.append(bytes(buffer[at : at + size]))
        at += size + 2


class HttpConnection:
    """One keep-alive HTTP/1.1 connection posting JSON, over an asyncio protocol.

    Why not httpx: on two cores shared with Neo4j and the server, a client that costs a
    millisecond of CPU per request would be measured as server latency (and under 100
    concurrent clients it would be the bottleneck). Stream readers cost ~75 us a request
    (a coroutine step per header line); parsing the bytes as they arrive costs less.
    """

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        host_port = base_url.removeprefix("http://").rstrip("/")
        host, _, port = host_port.partition(":")
        self.host, self.port = host, int(port or 80)
        self.protocol: _Response | None = None

    async def _connect(self) -> tuple[_Response, bool]:
        """The open connection (reused: True), or a new one."""
        protocol = self.protocol
        if protocol is None or protocol.lost:
            loop = asyncio.get_running_loop()
            _, protocol = await loop.create_connection(_Response, self.host, self.port)
            self.protocol = protocol
            return protocol, False
        return protocol, True

    async def _exchange(self, protocol: _Response, request: bytes) -> tuple[int, bytes, bool]:
        assert protocol.transport is not None
        if protocol.buffer:  # bytes no request asked for: the connection can't be trusted
            raise ConnectionError("unexpected bytes from the server")
        protocol.received = False
        protocol.waiter = asyncio.get_running_loop().create_future()
        protocol.transport.write(request)
        try:
            return await protocol.waiter
        finally:
            protocol.waiter = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        request = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        return await self._send(request)

    async def get(self, path: str) -> tuple[int, bytes]:
        """``path`` with its query string, percent-encoded."""
        head = f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n"
        return await self._send(head.encode())

    async def _send(self, request: bytes) -> tuple[int, bytes]:
        protocol, reused = await self._connect()
        try:
            status, payload, close = await self._exchange(protocol, request)
        except asyncio.CancelledError:
            await self.close()  # its answer may still come: never read it as the next one's
            raise
        except ConnectionError:
            if not reused or protocol.received or protocol.buffer:
                await self.close()
                raise
            # The server closed the idle keep-alive connection before reading the request
            # (uvicorn does after 5 s): nothing was answered, so send it again, once. (A
            # server dying after running it, before answering, would run it twice: the
            # benches' writes are idempotent registrations.)
            await self.close()
            protocol, _ = await self._connect()
            status, payload, close = await self._exchange(protocol, request)
        if close:
            await self.close()
        return status, payload

    async def close(self) -> None:
        protocol, self.protocol = self.protocol, None
        if protocol is not None and protocol.transport is not None:
            protocol.transport.close()


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    seconds: float  # request sent .. response body received (before JSON parsing)

    @property
    def data(self) -> Any:
        return self.body.get("data")

    @property
    def errors(self) -> list[Any]:
        errors: list[Any] = self.body.get("errors") or []
        return errors

    @property
    def trips(self) -> int:
        trips: int = (self.body.get("extensions") or {}).get("boltRoundTrips", 0)
        return trips

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.errors


class GraphQLClient:
    """POSTs GraphQL documents to ``/graphql`` on one connection."""

    def __init__(self, base_url: str) -> None:
        self.http = HttpConnection(base_url)

    async def __call__(self, query: str, variables: dict[str, Any] | None = None) -> Answer:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        started = time.perf_counter()
        status, payload = await self.http.post("/graphql", body)
        seconds = time.perf_counter() - started
        return Answer(status, json.loads(payload), seconds)

    async def must(self, query: str, variables: dict[str, Any] | None = None) -> Answer:
        """The answer of a request that must succeed."""
        answer = await self(query, variables)
        if not answer.ok:
            raise RuntimeError(f"GraphQL request failed ({answer.status}): {answer.body}")
        return answer

    async def close(self) -> None:
        await self.http.close()


async def timed(work: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await work()
    return time.perf_counter() - started, result

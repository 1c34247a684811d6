"""Fixtures: one real Neo4j per test session, one real HTTP server, a clean graph per test.

Neo4j comes from, in order: ``LINEAGEHUB_NEO4J_URI`` if set; testcontainers' Neo4j 5.26
if a Docker engine answers; else the local launcher (``lineagehub.devdb``) on a free port.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import neo4j
import pytest
import uvicorn

from lineagehub.app import create_app
from lineagehub.graph import identity
from lineagehub.graph.store import Store
from lineagehub.http_protocol import OneWriteProtocol
from lineagehub.settings import Settings

NEO4J_IMAGE = "neo4j:5.26-community"
T = TypeVar("T")


def _docker_answers() -> bool:
    """Whether a Docker engine answers (checked without leaking the SDK's sockets)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if host.startswith("unix://"):
        path = host.removeprefix("unix://")
        if not os.path.exists(path):
            return False
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(3)
            try:
                probe.connect(path)
                probe.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
                return b" 200 " in probe.recv(64)
            except OSError:
                return False
    return True  # a remote engine: let testcontainers try it


@dataclass
class Neo4jServer:
    uri: str
    user: str | None = None
    password: str | None = None


@pytest.fixture(scope="session")
def neo4j_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Neo4jServer]:
    uri = os.environ.get("LINEAGEHUB_NEO4J_URI")
    if uri:
        yield Neo4jServer(
            uri,
            os.environ.get("LINEAGEHUB_NEO4J_USER"),
            os.environ.get("LINEAGEHUB_NEO4J_PASSWORD"),
        )
        return
    if _docker_answers():
        from testcontainers.neo4j import Neo4jContainer

        with Neo4jContainer(NEO4J_IMAGE) as container:
            yield Neo4jServer(container.get_connection_url(), "neo4j", container.password)
        return
    from lineagehub.devdb import LocalNeo4j, free_port

    local = LocalNeo4j(tmp_path_factory.mktemp("neo4j"), free_port())
    local.start(detach=False)
    try:
        yield Neo4jServer(local.uri)
    finally:
        local.stop()


@pytest.fixture(scope="session")
def settings(neo4j_server: Neo4jServer) -> Settings:
    return Settings(
        neo4j_uri=neo4j_server.uri,
        neo4j_user=neo4j_server.user,
        neo4j_password=neo4j_server.password,
        max_page_size=200,
        # Tests change tokens between requests; tests/api/test_auth_cache.py turns it on.
        auth_cache_seconds=0,
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture(scope="session")
def db(neo4j_server: Neo4jServer) -> Iterator[neo4j.Driver]:
    """A plain sync driver for arranging and inspecting the graph behind the API's back."""
    auth = (
        (neo4j_server.user, neo4j_server.password or "") if neo4j_server.user is not None else None
    )
    with neo4j.GraphDatabase.driver(
        neo4j_server.uri, auth=auth, notifications_min_severity="OFF"
    ) as driver:
        yield driver


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return not stat[stat.rindex(")") + 2 :].startswith("Z")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ThreadedServer:
    """The real app under uvicorn on a loopback port, in a thread of the test process."""

    def __init__(self, settings: Settings, http: type[asyncio.Protocol] = OneWriteProtocol) -> None:
        self.port = _free_port()
        config = uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            lifespan="on",
            http=http,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture(scope="session")
def server(settings: Settings) -> Iterator[ThreadedServer]:
    with ThreadedServer(settings) as running:
        yield running


@pytest.fixture(autouse=True)
def clean_graph(request: pytest.FixtureRequest) -> None:
    """Every test that touches the graph starts from an empty one (constraints stay)."""
    if "db" not in request.fixturenames and "api" not in request.fixturenames:
        return
    clean(request.getfixturevalue("db"))


def clean(driver: neo4j.Driver) -> None:
    """Empty the graph (constraints stay)."""
    with driver.session() as session:
        session.run(
            "MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS"
        ).consume()


class GraphQLError(AssertionError):
    pass


@dataclass
class Response:
    status: int
    body: dict[str, Any]

    @property
    def data(self) -> Any:
        return self.body.get("data")

    @property
    def errors(self) -> list[dict[str, Any]]:
        errors: list[dict[str, Any]] = self.body.get("errors") or []
        return errors

    @property
    def round_trips(self) -> int:
        trips: int = self.body["extensions"]["boltRoundTrips"]
        return trips

    def error(self) -> dict[str, Any]:
        """The one error of a failed request."""
        assert len(self.errors) == 1, self.body
        return self.errors[0]


class Api:
    """A GraphQL client of the running server: every call is a real HTTP request."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30)

    def post(self, query: str, variables: dict[str, Any] | None = None, **kw: Any) -> Response:
        r = self.http.post("/graphql", json={"query": query, "variables": variables or {}}, **kw)
        return Response(r.status_code, r.json())

    def __call__(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        """The data of a query that must succeed."""
        response = self.post(query, variables)
        if response.errors:
            raise GraphQLError(response.errors)
        return response.data

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def fails(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The single error of a query that must fail."""
        return self.post(query, variables).error()


@pytest.fixture
def api(server: ThreadedServer) -> Iterator[Api]:
    client = Api(server.url)
    yield client
    client.http.close()


REPO = Path(__file__).resolve().parent.parent


# --- identities ------------------------------------------------------------------------


def make_token(
    settings: Settings,
    name: str,
    roles: list[str],
    *,
    projects: list[str] | None = None,
    expires_at: datetime | None = None,
) -> tuple[str, str]:
    """(token id, secret), created through the same code the CLI uses."""

    async def create(store: Store) -> tuple[str, str]:
        info, secret = await identity.create_token(
            store, name, roles, projects=projects, expires_at=expires_at
        )
        return info.id, secret

    return with_store(settings, create)


def with_store(settings: Settings, work: Callable[[Store], Awaitable[T]]) -> T:
    """``work`` run on a Store of its own (opened and closed here), from sync test code."""

    async def go() -> T:
        assert settings.neo4j_uri is not None
        store = Store.connect(
            settings.neo4j_uri,
            user=settings.neo4j_user,
            password=settings.neo4j_password,
            database=settings.neo4j_database,
        )
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(go())


class Client(Api):
    """An API client that sends a bearer token."""

    def __init__(self, base_url: str, secret: str | None) -> None:
        super().__init__(base_url)
        if secret:
            self.http.headers["Authorization"] = f"Bearer {secret}"


@pytest.fixture
def as_role(server: ThreadedServer, settings: Settings, db: neo4j.Driver) -> Iterator[Any]:
    clients: list[Client] = []

    def client(*roles: str, name: str | None = None, **kw: Any) -> Client:
        _, secret = make_token(settings, name or "-".join(roles), list(roles), **kw)
        made = Client(server.url, secret)
        clients.append(made)
        return made

    yield client
    for made in clients:
        made.http.close()

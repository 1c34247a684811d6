"""The HTTP surface: health, readiness, GraphiQL, request ids, guards and error shapes."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx
import pytest
from graphql import GraphQLError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from lineagehub.api.graphql.errors import format_error
from lineagehub.app import GraphQLPosts, create_app
from lineagehub.auth import Authentication
from lineagehub.logs import JsonFormatter, request_id
from lineagehub.settings import Settings
from tests.conftest import Api, ThreadedServer


def test_healthz_and_readyz(server: ThreadedServer) -> None:
    health = httpx.get(f"{server.url}/healthz")
    assert health.status_code == 200
    assert health.json()["status"] == "alive"
    ready = httpx.get(f"{server.url}/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "neo4j": "reachable", "constraints": "present"}


def test_graphiql_is_served_to_browsers(server: ThreadedServer) -> None:
    page = httpx.get(f"{server.url}/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()


def test_request_id_is_echoed_and_reported(server: ThreadedServer) -> None:
    r = httpx.post(
        f"{server.url}/graphql",
        json={"query": "{ __typename }"},
        headers={"X-Request-ID": "trace-123"},
    )
    assert r.headers["x-request-id"] == "trace-123"
    assert r.json()["extensions"]["requestId"] == "trace-123"
    fresh = [
        httpx.post(f"{server.url}/graphql", json={"query": "{ __typename }"}).headers[
            "x-request-id"
        ]
        for _ in range(2)
    ]
    assert all(len(rid) == 32 and int(rid, 16) >= 0 for rid in fresh)
    assert fresh[0] != fresh[1]


async def _scope_at_endpoint(method: str, root_path: str = "") -> tuple[dict[str, Any], bool]:
    """The scope a /graphql endpoint sees behind the app's middleware order, and whether
    Starlette's router handed it over."""
    seen: dict[str, Any] = {}

    class Endpoint:  # an ASGI app, as the GraphQL view is
        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            seen.update(scope)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b""})

    route = Route("/graphql", Endpoint(), methods=["GET", "POST"])
    routed = False
    matches = route.matches

    def counting_matches(scope: Scope) -> Any:
        nonlocal routed
        routed = True
        return matches(scope)

    route.matches = counting_matches  # type: ignore[method-assign]
    app = Starlette(routes=[route], middleware=[Middleware(GraphQLPosts, route=route)])
    scope = {
        "type": "http",
        "method": method,
        "path": f"{root_path}/graphql",
        "root_path": root_path,
        "headers": [],
        "query_string": b"",
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        pass

    await app(scope, receive, send)
    return seen, routed


def test_graphql_posts_skip_the_router_with_the_scope_it_would_give(settings: Settings) -> None:
    # The app's innermost middleware: after authentication, in front of the router.
    middleware: list[Any] = [m.cls for m in create_app(settings).user_middleware]
    assert middleware[-2:] == [Authentication, GraphQLPosts]
    posted, routed = asyncio.run(_scope_at_endpoint("POST"))
    assert not routed
    got, routed = asyncio.run(_scope_at_endpoint("GET"))  # the router's way, to compare
    assert routed
    for key in ("router", "route", "endpoint", "path_params"):
        assert key in posted
        assert type(posted[key]).__name__ == type(got[key]).__name__
    assert posted["route"] is posted["router"].routes[0]
    assert posted["endpoint"] is posted["route"].endpoint
    assert posted["path_params"] == got["path_params"] == {}
    # Under a root path (behind a proxy), requests keep going through the router.
    _, routed = asyncio.run(_scope_at_endpoint("POST", root_path="/registry"))
    assert routed


def test_introspection_stays_on(api: Api) -> None:
    data = api("{ __schema { queryType { name } } }")
    assert data["__schema"]["queryType"]["name"] == "Query"


def test_query_depth_is_capped(api: Api) -> None:
    deep = (
        "{ registeredModels { nodes { versions { nodes { model { versions { nodes { model {"
        " versions { nodes { model { versions { nodes { name } } } } } } } } } } } } } }"
    )
    error = api.fails(deep)
    assert error["extensions"]["code"] == "LIMIT_EXCEEDED"
    assert "depth" in error["message"]


def test_aliases_are_capped(api: Api) -> None:
    query = "{ " + " ".join(f"a{i}: __typename" for i in range(40)) + " }"
    error = api.fails(query)
    assert error["extensions"]["code"] == "LIMIT_EXCEEDED"
    assert "aliases" in error["message"]


def test_tokens_are_capped(api: Api) -> None:
    query = "{ " + " ".join("__typename" for _ in range(6000)) + " }"
    error = api.fails(query)
    assert error["extensions"]["code"] == "LIMIT_EXCEEDED"


def test_document_errors_have_codes(api: Api) -> None:
    assert api.fails("{ nope }")["extensions"]["code"] == "GRAPHQL_VALIDATION"
    assert api.fails("{ registeredModels ")["extensions"]["code"] == "GRAPHQL_PARSE"
    bad_variable = api.fails(
        "query($n: Long) { registeredModels(filter: {createdAt: {exists: true}}) { totalCount } }",
        {"n": "x"},
    )
    assert bad_variable["extensions"]["code"] == "GRAPHQL_VALIDATION"


def test_unexpected_exceptions_become_internal_errors_logged_with_the_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = request_id.set("rid-7")
    try:
        with caplog.at_level(logging.ERROR, logger="lineagehub.graphql"):
            formatted = format_error(
                GraphQLError("boom", path=["registeredModels"], original_error=KeyError("secret"))
            )
        logged = JsonFormatter().format(caplog.records[0])
    finally:
        request_id.reset(token)
    assert formatted.message.startswith("Internal server error")
    assert "secret" not in formatted.message
    assert formatted.extensions == {"code": "INTERNAL", "requestId": "rid-7"}
    entry = json.loads(logged)
    assert entry["requestId"] == "rid-7"
    assert "KeyError" in entry["exception"]


def test_request_bodies_are_bounded(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    """A body over LINEAGEHUB_MAX_BODY_BYTES is a 413, whether it declares its length
    (refused before it is read) or streams in chunks (refused once past the limit), on
    every endpoint; a body under it is answered as usual, and nothing is logged as an
    unexpected error."""
    small = settings.model_copy(update={"max_body_bytes": 4096})
    query = {"query": "{ registeredModels(first: 1) { totalCount } }"}
    padded = json.dumps({**query, "variables": {"pad": "x" * 8000}}).encode()

    def chunks() -> Any:
        for i in range(0, len(padded), 1000):
            yield padded[i : i + 1000]

    with ThreadedServer(small) as running, httpx.Client(base_url=running.url, timeout=30) as http:
        fine = http.post("/graphql", json=query)
        assert fine.status_code == 200 and "errors" not in fine.json(), fine.text
        for path in (
            "/graphql",
            "/api/v1/lineage",
            "/api/model_registry/v1alpha3/registered_models",
        ):
            declared = http.post(path, content=padded, headers={"content-type": "application/json"})
            assert declared.status_code == 413, (path, declared.text)
            assert declared.json()["code"] == "TOO_LARGE"
            assert declared.headers["x-request-id"]
        with caplog.at_level(logging.ERROR):
            streamed = httpx.post(
                f"{running.url}/graphql",
                content=chunks(),
                headers={"content-type": "application/json"},
                timeout=30,
            )
        assert streamed.status_code == 413, streamed.text
        assert streamed.json()["code"] == "TOO_LARGE"
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        # the server still answers
        assert http.post("/graphql", json=query).status_code == 200

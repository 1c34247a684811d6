"""GraphiQL works with no network beyond the server, and opens when tokens are required."""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import logging
import re
from typing import Any, cast
from urllib.parse import urljoin

import httpx
import neo4j
import pytest
from starlette.requests import Request
from strawberry.asgi import GraphQL

from lineagehub.api import ide
from lineagehub.api.graphql.schema import build_schema
from lineagehub.app import create_app
from lineagehub.settings import Settings
from tests.conftest import Client, ThreadedServer, clean

HTML = {"Accept": "text/html"}
_LOADED = re.compile(r'(?:src|href)="(?P<url>[^"]+)"(?:\s+integrity="(?P<integrity>[^"]+)")?')


def _page(url: str, **headers: str) -> httpx.Response:
    return httpx.get(f"{url}/graphql", headers={**HTML, **headers})


def _loaded(page: str) -> list[tuple[str, str | None]]:
    """(address, integrity) of everything the page loads, the inline icon left out."""
    return [
        (m["url"], m["integrity"])
        for m in _LOADED.finditer(page)
        if not m["url"].startswith("data:")
    ]


def test_the_page_loads_every_file_from_this_server(server: ThreadedServer) -> None:
    page = _page(server.url)
    assert page.status_code == 200
    assert "<title>lineagehub GraphiQL</title>" in page.text
    loaded = _loaded(page.text)
    # Strawberry's page loads these seven from the CDN; ours loads the same files here.
    assert [url for url, _ in loaded] == [
        f"graphiql-assets/{asset.local}" for asset in ide.cdn_assets(ide.template())
    ]
    assert len(loaded) == 7
    assert "unpkg" not in page.text
    assert not [url for url, _ in loaded if "//" in url]


def test_every_file_is_served_as_the_page_expects_it(server: ThreadedServer) -> None:
    page_url = f"{server.url}/graphql"
    for url, integrity in _loaded(_page(server.url).text):
        assert integrity is not None  # the browser checks every file
        plain = httpx.get(urljoin(page_url, url), headers={"Accept-Encoding": "identity"})
        assert plain.status_code == 200, url
        assert "content-encoding" not in plain.headers
        algorithm, _, expected = integrity.partition("-")
        digest = base64.b64encode(hashlib.new(algorithm, plain.content).digest()).decode()
        assert digest == expected, url
        kind = "text/javascript" if url.endswith(".js") else "text/css"
        assert plain.headers["content-type"] == f"{kind}; charset=utf-8"
        assert plain.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert plain.headers["vary"] == "accept-encoding"

        with httpx.stream(
            "GET", urljoin(page_url, url), headers={"Accept-Encoding": "gzip"}
        ) as packed:
            raw = b"".join(packed.iter_raw())
        assert packed.headers["content-encoding"] == "gzip"
        assert gzip.decompress(raw) == plain.content
        assert len(raw) < len(plain.content)


@pytest.mark.parametrize(
    "name",
    [
        "graphiql@3.8.3/nope.js",
        "graphiql@3.8.3",
        "%2e%2e/%2e%2e/auth.py",
        "react@18.2.0/..%2F..%2Fide.py",
        "",
    ],
)
def test_only_vendored_files_are_served(server: ThreadedServer, name: str) -> None:
    answer = httpx.get(f"{server.url}/graphiql-assets/{name}")
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/json")


def test_the_vendored_files_are_exactly_what_strawberry_pins() -> None:
    assets = ide.cdn_assets(ide.template())
    vendored = {name for name in ide._files() if not name.endswith("/LICENSE")}
    assert {asset.local for asset in assets} == vendored  # scripts/vendor_graphiql.py
    for asset in assets:
        assert f"{asset.package}@{asset.version}/LICENSE" in ide._files()


def test_a_page_needing_a_file_not_vendored_falls_back_to_strawberrys(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    newer = ide.template().replace(
        "graphiql@3.8.3/graphiql.min.js", "graphiql@9.9.9/graphiql.min.js"
    )
    assert newer != ide.template()
    with pytest.raises(RuntimeError, match=r"graphiql@9\.9\.9/graphiql\.min\.js is not vendored"):
        ide.local_page(newer)
    unknown = '<script src="https://unpkg.com/x.js"></script>'
    with pytest.raises(RuntimeError, match="not recognised"):
        ide.local_page(unknown)
    # The server still starts: it logs the error and serves the page that needs the CDN.
    monkeypatch.setattr(ide, "template", lambda: newer)
    ide.page.cache_clear()
    try:
        with caplog.at_level(logging.ERROR, logger="lineagehub.http"):
            assert ide.page() == newer
        assert "graphiql@9.9.9/graphiql.min.js is not vendored" in caplog.text
        assert "https://unpkg.com/" in ide.page_headers(newer)["content-security-policy"]
    finally:
        ide.page.cache_clear()


def test_the_page_may_not_be_framed_or_load_from_elsewhere(server: ThreadedServer) -> None:
    page = _page(server.url)
    assert page.headers["x-frame-options"] == "DENY"
    policy = dict(
        part.strip().split(" ", 1) for part in page.headers["content-security-policy"].split(";")
    )
    assert policy["frame-ancestors"] == "'none'"
    assert policy["default-src"] == "'self'"
    assert policy["connect-src"] == "'self' ws: wss:"
    (inline,) = re.findall(r"<script>(.*?)</script>", page.text, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
    assert policy["script-src"] == f"'self' 'sha256-{digest}'"
    assert "unpkg" not in page.headers["content-security-policy"]


@pytest.mark.parametrize(
    ("accept_encoding", "gzipped"),
    [
        ("gzip", True),
        ("GZIP", True),
        ("gzip, deflate, br", True),
        ("br;q=1.0, gzip;q=0.5", True),
        ("x-gzip", True),
        ("*", True),
        ("gzip;q=0", False),
        ("gzip; q=0.000", False),
        ("gzip;q=nonsense", False),
        ("identity", False),
        ("deflate, br", False),
        ("", False),
    ],
)
def test_gzip_is_sent_to_who_takes_it(accept_encoding: str, gzipped: bool) -> None:
    assert ide.accepts_gzip(accept_encoding) is gzipped


def test_head_of_a_file(server: ThreadedServer) -> None:
    url = f"{server.url}/graphiql-assets/react@18.2.0/umd/react.production.min.js"
    head = httpx.head(url, headers={"Accept-Encoding": "identity"})
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(httpx.get(url).content))
    assert head.headers["x-content-type-options"] == "nosniff"


def test_under_a_proxys_path_prefix_graphiql_still_opens_without_a_token() -> None:
    """With ``root_path`` (uvicorn's ``--root-path``), paths keep the prefix; what is open
    is judged on the path the router matches. No request here reaches the database."""
    app = create_app(Settings(auth="required"), store=cast(Any, object()))
    app.state.store = object()  # what the lifespan, not run here, would set

    async def go() -> dict[str, httpx.Response]:
        transport = httpx.ASGITransport(app=app, root_path="/lh")
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return {
                "page": await client.get("/lh/graphql", headers=HTML),
                "file": await client.get(
                    "/lh/graphiql-assets/react@18.2.0/umd/react.production.min.js"
                ),
                "health": await client.get("/lh/healthz"),
                "query": await client.post("/lh/graphql", json={"query": "{ __typename }"}),
                "get query": await client.get(
                    "/lh/graphql", params={"query": "{ __typename }"}, headers=HTML
                ),
                "file by POST": await client.post(
                    "/lh/graphiql-assets/react@18.2.0/umd/react.production.min.js"
                ),
            }

    answers = asyncio.run(go())
    assert answers["page"].status_code == 200
    assert '"graphiql-assets/react@18.2.0/umd/react.production.min.js"' in answers["page"].text
    assert answers["file"].status_code == 200
    assert answers["health"].status_code == 200
    for refused in ("query", "get query", "file by POST"):
        assert answers[refused].status_code == 401, refused


def test_graphiql_opens_without_a_token_but_queries_need_one(
    server: ThreadedServer, as_role: Any, db: neo4j.Driver
) -> None:
    reader = as_role("reader")  # a token exists: every request with data needs one
    try:
        _opens_without_a_token(server, reader)
    finally:
        clean(db)  # back to local mode for the tests that follow


def _opens_without_a_token(server: ThreadedServer, reader: Client) -> None:
    page = _page(server.url)
    assert page.status_code == 200
    for url, _ in _loaded(page.text):
        assert httpx.get(urljoin(f"{server.url}/graphql", url)).status_code == 200

    query = {"query": "{ registeredModels { totalCount } }"}
    refused = [
        httpx.get(f"{server.url}/graphql", params=query, headers=HTML),
        httpx.get(f"{server.url}/graphql", params={"query": ""}, headers=HTML),
        httpx.get(f"{server.url}/graphql", headers={"Accept": "application/json"}),
        httpx.post(f"{server.url}/graphql", json=query, headers=HTML),
    ]
    for answer in refused:
        assert answer.status_code == 401
        assert answer.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    # With a trailing slash: a redirect to the page, nothing else.
    slash = httpx.get(f"{server.url}/graphql/", headers=HTML)
    assert slash.status_code == 307
    assert slash.headers["location"] == f"{server.url}/graphql"
    assert httpx.post(f"{server.url}/graphql/", json=query).status_code == 401
    # What GraphiQL sends once its Headers tab holds the token.
    sent = reader.http.post("/graphql", json=query)
    assert sent.json()["data"] == {"registeredModels": {"totalCount": 0}}
    with Client(server.url, None) as anonymous:
        assert anonymous.http.post("/graphql", json=query).status_code == 401


@pytest.fixture(scope="module")
def view() -> GraphQL[Any, None]:
    return GraphQL[Any, None](build_schema(Settings()))


def _scope(method: str, query_string: bytes, accept: list[bytes]) -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": "/graphql",
        "query_string": query_string,
        "headers": [(b"accept", value) for value in accept],
    }


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    "query_string",
    [
        b"",
        b"query=%7B__typename%7D",
        b"query=",
        b"query",
        b"q=x",
        b"a=1&query=x",
        b"Query=x",
        b"%71uery=x",
        b"query=x&query=",
        b"extensions=%7B%7D",
    ],
)
@pytest.mark.parametrize(
    "accept",
    [
        [],
        [b"text/html"],
        [b"*/*"],
        [b"application/json"],
        [b"text/html;q=0.9,application/json"],
        [b"application/json", b"text/html"],
        [b"TEXT/HTML"],
    ],
)
def test_what_opens_without_a_token_is_what_strawberry_renders_as_the_page(
    view: GraphQL[Any, None], method: str, query_string: bytes, accept: list[bytes]
) -> None:
    scope = _scope(method, query_string, accept)
    strawberry_says = view.should_render_graphql_ide(view.request_adapter_class(Request(scope)))
    assert ide.is_open(scope, ide.route_path(scope)) is strawberry_says

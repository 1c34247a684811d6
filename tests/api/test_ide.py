"""GraphiQL works with no network beyond the server, and opens when tokens are required."""

from __future__ import annotations

import base64
import gzip
import hashlib
import re
from typing import Any
from urllib.parse import urljoin

import httpx
import neo4j
import pytest
from starlette.requests import Request
from strawberry.asgi import GraphQL

from lineagehub.api import ide
from lineagehub.api.graphql.schema import build_schema
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
    pinned = {asset.local for asset in ide.cdn_assets(ide.template())}
    vendored = {name for name in ide._files() if not name.endswith("/LICENSE")}
    assert pinned == vendored  # scripts/vendor_graphiql.py brings them in line
    for package in {
        name.rsplit("@", 1)[0] + "@" + name.rsplit("@", 1)[1].split("/")[0] for name in vendored
    }:
        assert f"{package}/LICENSE" in ide._files()


def test_a_page_needing_a_file_not_vendored_is_refused() -> None:
    newer = ide.template().replace(
        "graphiql@3.8.3/graphiql.min.js", "graphiql@9.9.9/graphiql.min.js"
    )
    with pytest.raises(RuntimeError, match=r"graphiql@9\.9\.9/graphiql\.min\.js is not vendored"):
        ide.local_page(newer)


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
    # What GraphiQL sends once its Headers tab holds the token.
    sent = reader.http.post("/graphql", json=query)
    assert sent.json()["data"] == {"registeredModels": {"totalCount": 0}}
    with Client(server.url, None) as anonymous:
        assert anonymous.http.post("/graphql", json=query).status_code == 401


@pytest.fixture(scope="module")
def view(settings: Settings) -> GraphQL[Any, None]:
    return GraphQL[Any, None](build_schema(settings))


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
    "query_string", [b"", b"query=%7B__typename%7D", b"query=", b"q=x", b"a=1&query=x", b"Query=x"]
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
    assert ide.is_open(scope) is strawberry_says

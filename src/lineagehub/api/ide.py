"""GraphiQL served whole by lineagehub: its page and every file the page loads.

Strawberry's GraphiQL page loads React, GraphiQL and GraphiQL's explorer plugin from a
public CDN. Behind a firewall, on an air-gapped network or offline, that gives a page
that never leaves "Loading...". The files are vendored under ``graphiql_assets/``
(``scripts/vendor_graphiql.py`` takes them from the npm registry and checks each against
the page's Subresource Integrity hash). They are served here under :data:`PREFIX`, and
the page is rewritten to load them from there. The page keeps its integrity hashes, so
the browser still checks every file.

The page and its files hold no data: anyone may load them (``auth.py``). Queries sent
from the page need a token like any other request; GraphiQL's Headers tab sends it.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from starlette.datastructures import Headers, QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Scope
from strawberry.http.ides import get_graphql_ide_html

PREFIX = "/graphiql-assets/"
ASSET_DIR = Path(__file__).parent / "graphiql_assets"
_CDN_ASSET = re.compile(
    r'(?:src|href)="(?P<url>https://unpkg\.com/(?P<package>(?:@[^/"@]+/)?[^/"@]+)'
    r'@(?P<version>[^/"]+)/(?P<path>[^"]+))"\s+integrity="(?P<integrity>[^"]+)"'
)
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
# The files' names carry their package's version, so a name never changes content.
_CACHE_CONTROL = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class Asset:
    """A file the page loads from the CDN, with the integrity hash the page gives it."""

    url: str
    package: str
    version: str
    path: str
    integrity: str

    @property
    def local(self) -> str:
        """Where it lives under ``graphiql_assets/`` and under :data:`PREFIX`."""
        return f"{self.package}@{self.version}/{self.path}"


def template() -> str:
    """Strawberry's GraphiQL page, as Strawberry ships it."""
    return get_graphql_ide_html(graphql_ide="graphiql")


def cdn_assets(html: str) -> list[Asset]:
    """Every file ``html`` loads from the CDN, in page order."""
    return [Asset(**m.groupdict()) for m in _CDN_ASSET.finditer(html)]


def local_page(html: str) -> str:
    """``html`` loading every CDN file from this server. A file not vendored (Strawberry
    upgraded and the script not run again) is an error: the page would be half offline."""
    for asset in cdn_assets(html):
        if asset.local not in _files():
            raise RuntimeError(
                f"GraphiQL's {asset.url} is not vendored; run scripts/vendor_graphiql.py"
            )
        # Relative to the page (``/graphql``), so a proxy serving it under a path prefix
        # serves the files under the same prefix.
        html = html.replace(f'"{asset.url}"', f'"{PREFIX[1:]}{asset.local}"')
    return html.replace("<title>Strawberry GraphiQL</title>", "<title>lineagehub GraphiQL</title>")


@cache
def page() -> str:
    """The GraphiQL page lineagehub serves."""
    return local_page(template())


@cache
def _files() -> dict[str, Path]:
    """Vendored file name (``package@version/path``) -> its path: the only names served."""
    if not ASSET_DIR.is_dir():
        return {}
    return {
        path.relative_to(ASSET_DIR).as_posix(): path
        for path in ASSET_DIR.rglob("*")
        if path.is_file()
    }


@cache
def _body(name: str, gzipped: bool) -> bytes:
    data = _files()[name].read_bytes()
    return gzip.compress(data, compresslevel=9, mtime=0) if gzipped else data


async def _asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in _files():
        raise HTTPException(404)
    gzipped = "gzip" in request.headers.get("accept-encoding", "")
    headers = {"cache-control": _CACHE_CONTROL, "vary": "accept-encoding"}
    if gzipped:
        headers["content-encoding"] = "gzip"
    return Response(
        _body(name, gzipped),
        media_type=_TYPES.get(Path(name).suffix, "text/plain; charset=utf-8"),
        headers=headers,
    )


def asset_route() -> Route:
    return Route(PREFIX + "{name:path}", _asset, methods=["GET"])


def is_open(scope: Scope) -> bool:
    """Whether this request only fetches GraphiQL (its page or a file of it): no data.
    The page is what Strawberry's view renders for a GET without a ``query`` parameter
    that accepts HTML (its ``should_render_graphql_ide``, with the same parsing)."""
    path: str = scope["path"]
    if path.startswith(PREFIX):
        return True
    if path != "/graphql" or scope["method"] != "GET":
        return False
    if QueryParams(scope["query_string"]).get("query") is not None:
        return False
    accept = Headers(scope=scope).get("accept", "")
    return any(kind in accept for kind in ("text/html", "*/*"))

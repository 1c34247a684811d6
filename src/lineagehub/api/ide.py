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

import asyncio
import base64
import gzip
import hashlib
import logging
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

log = logging.getLogger("lineagehub.http")

PREFIX = "/graphiql-assets/"
_CDN = "https://unpkg.com/"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
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
    assets = cdn_assets(html)
    if not assets and _CDN in html:
        raise RuntimeError("GraphiQL's page loads from the CDN in a way not recognised")
    for asset in assets:
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
    """The GraphiQL page lineagehub serves. Should the vendored files not match the page
    (``tests/api/test_ide.py`` fails then), the error is logged and Strawberry's own page
    served: an IDE that needs the CDN rather than an API that does not start."""
    try:
        return local_page(template())
    except RuntimeError as error:
        log.error("serving GraphiQL from the public CDN: %s", error)
        return template()


def page_headers(html: str) -> dict[str, str]:
    """Headers of the page: no other site may frame it (GraphiQL keeps the headers typed
    into it, a token among them, in the browser's storage, and fills its editor from the
    address, so a framing site could get a mutation run with them), and it may load
    nothing but its own inline script and what this server serves."""
    inline = [m.group(1) for m in _INLINE_SCRIPT.finditer(html)]
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}'"
        for text in inline
    )
    sources = "'self'" if _CDN not in html else f"'self' {_CDN}"
    policy = (
        f"default-src 'self'; script-src {sources} {hashes}; style-src {sources} "
        "'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
        "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'none'; object-src 'none'"
    )
    return {"content-security-policy": policy, "x-frame-options": "DENY"}


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
    return gzip.compress(data, compresslevel=6, mtime=0) if gzipped else data


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` value takes gzip (by name or ``*``, at a q above 0)."""
    for item in accept_encoding.split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        if coding.lower() not in ("gzip", "x-gzip", "*"):
            continue
        weight = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if weight > 0:
            return True
    return False


async def _asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in _files():
        raise HTTPException(404)
    gzipped = accepts_gzip(request.headers.get("accept-encoding", ""))
    headers = {
        "cache-control": _CACHE_CONTROL,
        "vary": "accept-encoding",
        "x-content-type-options": "nosniff",
    }
    if gzipped:
        headers["content-encoding"] = "gzip"
    # Compressing graphiql.min.js takes ~0.1 s: once per process, off the event loop.
    body = await asyncio.to_thread(_body, name, gzipped)
    return Response(
        body,
        media_type=_TYPES.get(Path(name).suffix, "text/plain; charset=utf-8"),
        headers=headers,
    )


def asset_route() -> Route:
    return Route(PREFIX + "{name:path}", _asset, methods=["GET"])


def route_path(scope: Scope) -> str:
    """The path the router matches: ``path`` without the ``root_path`` a proxy's prefix
    puts in front (as Starlette's router takes it off)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        if path == root:
            return ""
        if path[len(root)] == "/":
            return path[len(root) :]
    return path


def is_open(scope: Scope, path: str) -> bool:
    """Whether this request, to ``path`` (its ``route_path``), only fetches GraphiQL (its
    page or a file of it): no data. The page is what Strawberry's view renders for a GET
    without a ``query`` parameter that accepts HTML (its ``should_render_graphql_ide``,
    with the same parsing); ``/graphql/`` only redirects there."""
    if scope["method"] not in ("GET", "HEAD"):
        return False
    if path.startswith(PREFIX):
        return True
    if path not in ("/graphql", "/graphql/") or scope["method"] != "GET":
        return False
    if QueryParams(scope["query_string"]).get("query") is not None:
        return False
    accept = Headers(scope=scope).get("accept", "")
    return any(kind in accept for kind in ("text/html", "*/*"))

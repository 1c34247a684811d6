"""The HTTP edge's authentication: bearer token -> principal, before any GraphQL runs.

Unknown, expired or revoked tokens get 401 with a clear message. With no token at all,
``auto`` mode lets a loopback-bound server act as the local admin while no token exists
(local mode, logged at start-up); once a token exists every request needs one.
"""

from __future__ import annotations

import json
import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from lineagehub.api import ide
from lineagehub.graph import identity
from lineagehub.graph.store import Store
from lineagehub.settings import Settings

log = logging.getLogger("lineagehub.auth")

# Paths anyone may reach: liveness and readiness probes. GraphiQL (its page and files,
# no data) is open too: ``ide.is_open``.
OPEN_PATHS = frozenset({"/healthz", "/readyz"})


async def _reject(send: Send, status: int, message: str, *, rest: bool = False) -> None:
    if rest:  # the Kubeflow REST edge answers errors as {code, message}
        body = json.dumps({"code": "UNAUTHENTICATED", "message": message}).encode()
    else:
        body = json.dumps(
            {"errors": [{"message": message, "extensions": {"code": "UNAUTHENTICATED"}}]}
        ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"www-authenticate", b'Bearer realm="lineagehub"'),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Authentication:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = ide.route_path(scope)
        if path in OPEN_PATHS or ide.is_open(scope, path):
            await self.app(scope, receive, send)
            return
        store: Store = scope["app"].state.store
        rest = path.startswith("/api/")
        header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        principal: identity.Principal | None
        if header:
            scheme, _, secret = header.partition(" ")
            if scheme.lower() != "bearer" or not secret.strip():
                await _reject(send, 401, "use 'Authorization: Bearer <token>'", rest=rest)
                return
            verdict = await identity.authenticate(store, secret.strip())
            if verdict.principal is None:
                await _reject(send, 401, f"not authenticated: {verdict.reason}", rest=rest)
                return
            principal = verdict.principal
        elif (
            self.settings.auth == "auto"
            and self.settings.loopback
            and not await identity.any_tokens(store)
        ):
            principal = identity.LOCAL
        else:
            await _reject(
                send,
                401,
                "authentication required: send 'Authorization: Bearer <token>'",
                rest=rest,
            )
            return
        token = identity.current_principal.set(principal)
        try:
            await self.app(scope, receive, send)
        finally:
            identity.current_principal.reset(token)


async def check_startup(store: Store, settings: Settings) -> None:
    """Refuse to serve beyond loopback without tokens; ensure the bootstrap token."""
    if settings.bootstrap_token:
        info, _ = await identity.create_token(
            store, "bootstrap", ["admin"], secret=settings.bootstrap_token
        )
        if info.revoked_at is not None:
            log.warning("the bootstrap token was revoked; it stays revoked")
    has_tokens = await identity.any_tokens(store)
    if not has_tokens and (not settings.loopback or settings.auth == "required"):
        raise RuntimeError(
            f"refusing to serve on {settings.host} without API tokens: create one with "
            "`lineagehub token create --name NAME --role admin`, or set "
            "LINEAGEHUB_BOOTSTRAP_TOKEN"
        )
    if not has_tokens:
        log.warning(
            "LOCAL MODE: no API tokens exist, so requests without one act as the local admin. "
            "This is only allowed on loopback; create a token to turn authentication on."
        )

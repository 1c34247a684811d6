"""The HTTP edge: Starlette app serving GraphQL (and GraphiQL), health and readiness."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import lru_cache
from typing import Any

from graphql import GraphQLError, OperationType, get_operation_ast, parse
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLRequestData
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.http.parse_content_type import parse_content_type
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET, UnsetType

from lineagehub import __version__
from lineagehub.api import ide, openlineage
from lineagehub.api.graphql import fanout
from lineagehub.api.graphql.context import Context
from lineagehub.api.graphql.documents import Documents
from lineagehub.api.graphql.lane import encode_answer
from lineagehub.api.graphql.schema import build_schema, lane_for
from lineagehub.api.rest.routes import error_response, rest_routes
from lineagehub.auth import Authentication, check_startup
from lineagehub.graph import identity, restids, webhooks
from lineagehub.graph.constraints import ensure_constraints, missing_constraints
from lineagehub.graph.errors import RegistryError, Unauthenticated
from lineagehub.graph.events import EventHub, Numberer
from lineagehub.graph.store import RoundTrips, Store, count_round_trips
from lineagehub.logs import request_id
from lineagehub.settings import Settings

log = logging.getLogger("lineagehub.http")

_REQUEST_ID_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")


class RequestContext:
    """Pure ASGI middleware: request id (from X-Request-ID or new), round-trip count, access log."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            # One id for the connection: what its operations write is audited under it.
            token = request_id.set(_request_id(scope))
            try:
                await self.app(scope, receive, send)
            finally:
                request_id.reset(token)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _request_id(scope)
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500

        trips = RoundTrips()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", rid.encode()),
                    # Bolt queries so far: all of them for answers built before they are sent.
                    (b"x-bolt-round-trips", str(trips.count).encode()),
                ]
            await send(message)

        try:
            with count_round_trips() as trips:
                await self.app(scope, receive, send_with_id)
        finally:
            log.info(
                "%s %s %s",
                scope.get("method"),
                scope.get("path"),
                status,
                extra={
                    "status": status,
                    "durationMs": round((time.perf_counter() - started) * 1000, 2),
                    "boltRoundTrips": trips.count,
                },
            )
            request_id.reset(token)


class BodyLimit:
    """Pure ASGI middleware: a request body over ``limit`` bytes is answered 413 (JSON,
    ``code: TOO_LARGE``), refused on its declared Content-Length before any of it is read,
    else as soon as what arrives passes the limit (the app then sees the client go away,
    and what it would answer is dropped). Without it a client could make the server hold
    any amount of memory, before its token is even checked."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        seen = 0
        over = started = False

        async def limited() -> Message:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def unless_over(message: Message) -> None:
            nonlocal started
            if over:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, unless_over)
        except Exception:
            if not over:
                raise
        if over and not started:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            {"code": "TOO_LARGE", "message": f"a request body may hold at most {self.limit} bytes"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _request_id(scope: Scope) -> str:
    """The client's X-Request-ID when it is a sane one, else a new id."""
    given = ""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            given = value.decode("latin-1")  # the last one, as a dict of them would keep
    return given if 0 < len(given) <= 128 and set(given) <= _REQUEST_ID_OK else _new_request_id()


def _new_request_id() -> str:
    """32 random hex digits, as ``uuid4().hex`` gave (a fifth of its cost). Unique, not
    secret: the module's generator is seeded from the OS, again in a forked child."""
    return f"{random.getrandbits(128):032x}"


class GraphQLPosts:
    """Innermost middleware: a POST to ``/graphql`` goes straight to the GraphQL app, with
    the scope the router gives it, past Starlette's exception middleware and router (they
    would pick that same route and hand it over unchanged: ~3% of a point lookup's CPU).
    Anything else, or a server under a root path, takes the usual way."""

    def __init__(self, app: ASGIApp, route: Route) -> None:
        self.app = app
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == self.route.path
            and not scope.get("root_path")
        ):
            if "router" not in scope:
                scope["router"] = scope["app"].router
            scope["route"] = self.route
            scope["endpoint"] = self.route.endpoint
            scope["path_params"] = {}
            await self.route.app(scope, receive, send)
            return
        await self.app(scope, receive, send)


UNSET_ACK: UnsetType = UNSET


def _is_subscription(
    query: str | None, operation_name: str | None, documents: Documents, max_tokens: int
) -> bool:
    if not query or "subscription" not in query:  # (most documents: no parse here)
        return False
    document = documents.get(query)  # (a document seen before: parsed already)
    if document is None:
        try:
            # (Within the token limit Strawberry's parse keeps: a huge one costs no more.)
            document = parse(query, max_tokens=max_tokens)
        except GraphQLError:
            return False  # Strawberry reports it
    operation = get_operation_ast(document, operation_name)
    return operation is not None and operation.operation is OperationType.SUBSCRIPTION


class _TextFrames(ASGIWebSocketAdapter):
    """graphql-transport-ws messages as text frames, as the protocol says: the view's
    encoder answers bytes (for HTTP), which Strawberry would send as binary frames, and a
    browser hands those to the client as Blobs that graphql-ws rejects ("Message is
    missing the 'type' property"): GraphiQL, Apollo and urql subscriptions failed."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        try:
            await self.ws.send_text(encode_answer(message).decode())
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc


class LineagehubGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI view, with the warm lane (``api/graphql/lane.py``) in front."""

    websocket_adapter_class = _TextFrames

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        schema = build_schema(settings)
        # (Its parsed documents: a subscription sent over HTTP is told apart by them.)
        self.documents = schema.documents
        super().__init__(
            schema,
            # graphql-ws's successor only; cross-origin handshakes are refused (Strawberry
            # checks Origin: a page elsewhere cannot subscribe with a browser's credentials).
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(seconds=10),
            max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
            **kwargs,
        )
        self.settings = settings
        if self.graphql_ide:
            self._ide_headers = ide.page_headers(ide.page())
        self.lane = lane_for(self.schema, settings)
        # Set at start-up when this process delivers webhooks.
        self.webhook_nudge: Callable[[], None] | None = None
        # (content-type, accept) -> whether the lane may take the request
        self._verdicts: dict[tuple[bytes | None, bytes | None], bool] = {}

    def encode_json(self, data: object) -> bytes:
        return encode_answer(data)

    @property
    def graphql_ide_html(self) -> str:
        """GraphiQL loading its files from this server, not a CDN (``api/ide.py``)."""
        return ide.page()

    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(self.graphql_ide_html, headers=self._ide_headers)

    def context(self, app: Starlette) -> Context:
        context = Context(
            store=app.state.store, settings=self.settings, request_id=request_id.get()
        )
        context.webhook_nudge = self.webhook_nudge
        return context

    async def execute_single(
        self,
        request: Request,
        request_adapter: Any,
        sub_response: Any,
        context: Context,
        root_value: Any,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        # Subscriptions are served over the WebSocket only (no HTTP streaming transport):
        # over HTTP, graphql-core would execute one as a query, with no event for its root,
        # and answer a server error.
        query, name = request_data.query, request_data.operation_name
        if _is_subscription(query, name, self.documents, self.settings.max_tokens):
            message = (
                "subscriptions are served over a WebSocket at /graphql (graphql-transport-ws),"
                " not over HTTP"
            )
            extensions: dict[str, Any] = {"code": "VALIDATION", "field": "query"}
            if (rid := request_id.get()) is not None:
                extensions["requestId"] = rid
            return ExecutionResult(data=None, errors=[GraphQLError(message, extensions=extensions)])
        return await super().execute_single(
            request, request_adapter, sub_response, context, root_value, request_data
        )

    async def get_context(self, request: Any, response: Any) -> Context:
        context = self.context(request.app)
        if request.scope["type"] == "websocket":
            context.websocket = True
            context.events = request.app.state.events
            context.upgrade_authorization = request.headers.get("authorization")
        return context

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Authenticate a WebSocket connection, once, at its connection_init: with the
        token in the payload's ``Authorization`` (browsers cannot set headers on a
        WebSocket) or the upgrade request's header; local mode as for HTTP. Refused: the
        socket closes with 4403. The principal holds for every operation of the connection;
        a live subscription checks now and then that the token still stands."""
        try:
            principal = await self._ws_principal(context)
        except RegistryError as error:  # Neo4j unreachable: refused, with the reason
            log.warning("could not authenticate a WebSocket connection: %s", error)
            raise ConnectionRejectionError({"message": error.message}) from error
        # Set in the connection's own task: each operation's task starts from a copy of it.
        identity.current_principal.set(principal)
        return UNSET_ACK

    async def _ws_principal(self, context: Context) -> identity.Principal:
        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        # Header names are case-insensitive; GraphiQL sends its Headers tab's as typed.
        given = next((v for k, v in params.items() if str(k).lower() == "authorization"), None)
        if given is None:
            given = context.upgrade_authorization
        store = context.store
        principal: identity.Principal
        if given is not None:
            scheme, _, secret = given.partition(" ") if isinstance(given, str) else ("", "", "")
            secret = secret.strip()
            if scheme.lower() != "bearer" or not secret:
                raise ConnectionRejectionError({"message": "use 'Authorization: Bearer <token>'"})
            verdict = await identity.authenticate(store, secret)
            if verdict.principal is None:
                raise ConnectionRejectionError({"message": f"not authenticated: {verdict.reason}"})
            principal = verdict.principal

            async def recheck() -> None:
                again = await identity.authenticate(store, secret)
                if again.principal is None:
                    raise Unauthenticated(f"not authenticated any more: {again.reason}")

            context.recheck = recheck
        elif (
            self.settings.auth == "auto"
            and self.settings.loopback
            and not await identity.any_tokens(store)
        ):
            principal = identity.LOCAL

            async def still_local() -> None:
                if await identity.any_tokens(store):
                    raise Unauthenticated(
                        "authentication is on now (a token exists): connect again with one"
                    )

            context.recheck = still_local
        else:
            raise ConnectionRejectionError(
                {"message": "authentication required: send Authorization in connection_init"}
            )
        return principal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.lane is None
            or scope["type"] != "http"
            or scope["method"] != "POST"
            or not self._lane_may_take(scope["headers"])
        ):
            await super().__call__(scope, receive, send)
            return
        body = await _body(receive)
        taken = self.lane.request(body)
        if taken is None:
            await super().__call__(scope, _replay(body, receive), send)
            return
        answer = await self.lane.answer(*taken, self.context(scope["app"]))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", str(len(answer)).encode()),
                    (b"content-type", b"application/json"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    def _lane_may_take(self, raw_headers: list[tuple[bytes, bytes]]) -> bool:
        """Whether the view would read this request as one JSON body, judged the way it
        judges (its content-type parsing, the first header of a name, no streaming
        transport asked for in Accept): the verdict for the two headers it reads is kept,
        as clients send the same few values."""
        content_type = accept = None
        for name, value in raw_headers:
            if name == b"content-type" and content_type is None:
                content_type = value
            elif name == b"accept" and accept is None:
                accept = value
        key = (content_type, accept)
        verdict = self._verdicts.get(key)
        if verdict is None:
            headers = {"accept": accept.decode("latin-1")} if accept is not None else {}
            verdict = _is_json(
                content_type.decode("latin-1") if content_type is not None else ""
            ) and (self._get_stream_transport_from_headers(headers) is None)
            if len(self._verdicts) < 64:
                self._verdicts[key] = verdict
        return verdict


@lru_cache(maxsize=64)
def _is_json(content_type: str) -> bool:
    """Whether the view reads a body of this content type as JSON (its own parser, which
    is slow enough to remember: clients send the same few values)."""
    mime, _ = parse_content_type(content_type)
    return "application/json" in mime


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # the client went away: the view reads the same
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` for the view, giving the body already read first."""
    given = False

    async def again() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


async def _prepare_schema(store: Store) -> bool:
    try:
        await ensure_constraints(store)
        numbered = await restids.backfill(store)
    except (RegistryError, OSError) as error:
        log.warning("could not create constraints yet: %s", error)
        return False
    if numbered:
        log.info("gave %d nodes their REST ids", numbered)
    log.info("constraints and indexes are in place")
    return True


def _nudger(app: Starlette) -> Callable[[], None]:
    """What newly numbered registry events wake: subscriptions, then webhooks."""
    hub: EventHub = app.state.events
    dispatcher: webhooks.Dispatcher | None = app.state.webhooks

    def nudge() -> None:
        hub.nudge()
        if dispatcher is not None:
            dispatcher.on_events()

    return nudge


async def _close(app: Starlette, own: bool) -> None:
    if own:
        await app.state.store.close()


async def _not_found(request: Request, exc: Exception) -> Response:
    return error_response(404, "NOT_FOUND", f"no such resource: {request.url.path}")


async def _not_allowed(request: Request, exc: Exception) -> Response:
    response = error_response(405, "METHOD_NOT_ALLOWED", f"{request.method} is not allowed here")
    allow = (getattr(exc, "headers", None) or {}).get("Allow")
    if allow:
        response.headers["Allow"] = allow
    return response


def create_app(settings: Settings | None = None, store: Store | None = None) -> Starlette:
    """The ASGI app. ``store`` is opened from settings (and closed) unless one is given."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own = store is None
        if store is None:
            if settings.neo4j_uri is None:
                raise RuntimeError("LINEAGEHUB_NEO4J_URI is not set (`lineagehub serve` sets it)")
            app.state.store = Store.connect(
                settings.neo4j_uri,
                user=settings.neo4j_user,
                password=settings.neo4j_password,
                database=settings.neo4j_database,
            )
            app.state.store.coalescer.in_flight = settings.coalesce_reads
        else:
            app.state.store = store
        identity.cache_authentication(settings.auth_cache_seconds)
        app.state.events = EventHub(app.state.store, poll_seconds=settings.event_poll_seconds)
        app.state.webhooks = None
        if settings.deliver_webhooks:
            app.state.webhooks = webhooks.Dispatcher(
                app.state.store,
                poll_seconds=settings.event_poll_seconds,
                timeout_seconds=settings.webhook_timeout_seconds,
                max_backoff_seconds=settings.webhook_max_backoff_seconds,
                reach=webhooks.Reach.of(
                    settings.webhook_deny_networks, settings.webhook_allow_private
                ),
            )
        retention = settings.event_retention_days
        app.state.numberer = Numberer(
            app.state.store, retention=timedelta(days=retention) if retention else None
        )
        app.state.numberer.on_numbered.append(_nudger(app))
        app.state.store.after_registry_events = app.state.numberer.after_commit
        if app.state.webhooks is not None:
            graphql_app.webhook_nudge = app.state.webhooks.nudge
        app.state.schema_ready = await _prepare_schema(app.state.store)
        try:
            await check_startup(app.state.store, settings)
        except RegistryError as error:
            if not settings.loopback:
                await _close(app, own)
                raise
            log.warning("could not check API tokens yet: %s", error)
        except RuntimeError:
            await _close(app, own)
            raise
        # What start-up made (schema, plans, modules, the driver) lives as long as the
        # process: keep it out of the cycle collector's full passes, which would otherwise
        # walk all of it each time, pausing every request in flight.
        gc.collect()
        gc.freeze()
        app.state.numberer.start()
        if app.state.webhooks is not None:
            app.state.webhooks.start()
        try:
            yield
        finally:
            gc.unfreeze()
            await app.state.numberer.close()
            await app.state.events.close()
            fanout.forget()
            if app.state.webhooks is not None:
                await app.state.webhooks.close()
            await _close(app, own)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "alive", "version": __version__})

    async def readyz(request: Request) -> Response:
        app_state = request.app.state
        try:
            if not app_state.schema_ready:
                app_state.schema_ready = await _prepare_schema(app_state.store)
            missing = await asyncio.wait_for(missing_constraints(app_state.store), timeout=5)
        except (RegistryError, OSError, TimeoutError) as error:
            return JSONResponse(
                {"status": "unavailable", "neo4j": "unreachable", "error": str(error)},
                status_code=503,
            )
        if missing:
            return JSONResponse(
                {"status": "unavailable", "neo4j": "reachable", "missingConstraints": missing},
                status_code=503,
            )
        return JSONResponse({"status": "ready", "neo4j": "reachable", "constraints": "present"})

    graphql_app = LineagehubGraphQL(settings, graphql_ide="graphiql")
    graphql_route = Route("/graphql", graphql_app, methods=["GET", "POST"])
    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            graphql_route,
            WebSocketRoute("/graphql", graphql_app),
            ide.asset_route(),
            openlineage.route(),
            *rest_routes(),
        ],
        exception_handlers={404: _not_found, 405: _not_allowed},
        middleware=[
            Middleware(RequestContext),
            Middleware(BodyLimit, limit=settings.max_body_bytes),
            Middleware(Authentication, settings=settings),
            Middleware(GraphQLPosts, route=graphql_route),
        ],
        lifespan=lifespan,
    )
    return app

"""``lineagehub``: serve the API, manage the local dev Neo4j, print the schema."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lineagehub.graph import identity
from lineagehub.graph.constraints import ensure_constraints
from lineagehub.graph.errors import RegistryError
from lineagehub.graph.store import Store
from lineagehub.settings import Settings

log = logging.getLogger("lineagehub")


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from lineagehub import logs, workers
    from lineagehub.app import create_app
    from lineagehub.http_protocol import OneWriteProtocol

    settings = Settings()
    if args.host:
        settings.host = args.host
    if args.port:
        settings.port = args.port
    logs.configure(settings.log_level, settings.log_format)
    local = None
    if settings.neo4j_uri is None:
        from lineagehub.devdb import DevDbError, LocalNeo4j, default_port, default_state_dir

        local = LocalNeo4j(default_state_dir(), default_port())
        status = local.status()
        try:
            if status.running and status.uri:
                log.info("using the local Neo4j already running at %s", status.uri)
                settings.neo4j_uri = status.uri
                local = None  # someone else started it; leave it running
            else:
                log.info(
                    "LINEAGEHUB_NEO4J_URI is unset: starting the local Neo4j (logs: %s)",
                    status.log_file,
                )
                local.start(detach=False)
                settings.neo4j_uri = local.uri
        except DevDbError as error:
            print(f"lineagehub: {error}", file=sys.stderr)
            return 1
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal to the
    # handler it found: make that a clean exit, so the local Neo4j is stopped below.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, workers.exit_cleanly)
    url = f"http://{settings.host}:{settings.port}/graphql"
    print(f"lineagehub {settings.neo4j_uri} -> GraphiQL at {url}", flush=True)
    try:
        if args.workers > 1:
            # Worker processes build their own app (one driver each) from the environment.
            os.environ.update(
                LINEAGEHUB_NEO4J_URI=settings.neo4j_uri or "",
                LINEAGEHUB_HOST=settings.host,
                LINEAGEHUB_PORT=str(settings.port),
            )
            if workers.supported():
                # A socket per worker: connections spread evenly (see lineagehub.workers).
                return workers.Supervisor(settings.host, settings.port, args.workers).run()
            uvicorn.run(
                "lineagehub.app:create_app",
                factory=True,
                workers=args.workers,
                host=settings.host,
                port=settings.port,
                log_config=None,
                access_log=False,
                http=OneWriteProtocol,
                timeout_graceful_shutdown=int(workers.GRACE_SECONDS),
            )
        else:
            uvicorn.run(
                create_app(settings),
                host=settings.host,
                port=settings.port,
                log_config=None,
                access_log=False,
                http=OneWriteProtocol,
                timeout_graceful_shutdown=int(workers.GRACE_SECONDS),
            )
    finally:
        if local is not None:
            local.stop()
    return 0


def _schema(args: argparse.Namespace) -> int:
    from lineagehub.api.graphql.schema import sdl

    text = sdl()
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def _store_uri(settings: Settings) -> str:
    """The configured Neo4j, else the local one if it is running."""
    if settings.neo4j_uri:
        return settings.neo4j_uri
    from lineagehub.devdb import LocalNeo4j, default_port, default_state_dir

    status = LocalNeo4j(default_state_dir(), default_port()).status()
    if not (status.running and status.uri):
        raise SystemExit(
            "lineagehub: no Neo4j to talk to: set LINEAGEHUB_NEO4J_URI or start the local one "
            "(`lineagehub neo4j start`)"
        )
    return status.uri


def _with_store(work: Callable[[Store], Awaitable[int]]) -> int:
    settings = Settings()

    async def run() -> int:
        store = Store.connect(
            _store_uri(settings),
            user=settings.neo4j_user,
            password=settings.neo4j_password,
            database=settings.neo4j_database,
        )
        try:
            await ensure_constraints(store)
            return await work(store)
        except RegistryError as error:
            print(f"lineagehub: {error.message}", file=sys.stderr)
            return 1
        finally:
            await store.close()

    return asyncio.run(run())


_DURATION = {"m": 60, "h": 3600, "d": 86400}


def _expiry(text: str | None) -> datetime | None:
    if text is None:
        return None
    unit = text[-1:]
    if unit not in _DURATION or not text[:-1].isdigit():
        raise SystemExit(f"lineagehub: --expires-in takes e.g. 90m, 12h or 30d, not {text!r}")
    return datetime.now(UTC) + timedelta(seconds=int(text[:-1]) * _DURATION[unit])


def _token_create(args: argparse.Namespace) -> int:
    async def work(store: Store) -> int:
        info, secret = await identity.create_token(
            store,
            args.name,
            args.role,
            projects=args.project or None,
            expires_at=_expiry(args.expires_in),
        )
        print(f"created token {info.id} ({info.name}; roles: {', '.join(info.roles)})")
        if info.projects is not None:
            print(f"limited to projects: {', '.join(info.projects)}")
        if info.expires_at:
            print(f"expires at {info.expires_at.isoformat()}")
        print("the token (shown only now; send it as 'Authorization: Bearer <token>'):")
        print(secret)
        return 0

    return _with_store(work)


def _token_list(args: argparse.Namespace) -> int:
    async def work(store: Store) -> int:
        for t in await identity.list_tokens(store):
            state = "revoked" if t.revoked_at else "active"
            if t.expires_at and not t.revoked_at and t.expires_at <= datetime.now(UTC):
                state = "expired"
            scope = ",".join(t.projects) if t.projects is not None else "*"
            print(f"{t.id}  {t.name:<20} {','.join(t.roles):<24} projects={scope:<12} {state}")
        return 0

    return _with_store(work)


def _token_revoke(args: argparse.Namespace) -> int:
    async def work(store: Store) -> int:
        info = await identity.revoke_token(store, args.id)
        print(f"revoked {info.id} ({info.name})")
        return 0

    return _with_store(work)


def parser() -> argparse.ArgumentParser:
    from lineagehub.devdb.cli import add_neo4j_commands

    top = argparse.ArgumentParser(prog="lineagehub", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve", help="serve the API (starts the local Neo4j when LINEAGEHUB_NEO4J_URI is unset)"
    )
    serve.add_argument("--host", help="bind address (default LINEAGEHUB_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default LINEAGEHUB_PORT or 8000)")
    serve.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("LINEAGEHUB_WORKERS", "1")),
        help="worker processes, stateless, sharing one Neo4j (default LINEAGEHUB_WORKERS or 1)",
    )
    serve.set_defaults(func=_serve)
    schema = commands.add_parser("schema", help="print the GraphQL schema (SDL)")
    schema.add_argument("-o", "--output", help="write to this file instead of stdout")
    schema.set_defaults(func=_schema)
    add_neo4j_commands(commands)
    token = commands.add_parser("token", help="manage API tokens").add_subparsers(
        dest="token_command", required=True
    )
    create = token.add_parser("create", help="create a token and print it once")
    create.add_argument("--name", required=True, help="who or what uses it (the audit actor)")
    create.add_argument(
        "--role", action="append", required=True, choices=identity.ROLES, help="repeatable"
    )
    create.add_argument("--project", action="append", help="limit to a project (repeatable)")
    create.add_argument("--expires-in", help="e.g. 90m, 12h, 30d (default: never)")
    create.set_defaults(func=_token_create)
    token.add_parser("list", help="list tokens (never their secrets)").set_defaults(
        func=_token_list
    )
    revoke = token.add_parser("revoke", help="revoke a token by id")
    revoke.add_argument("id")
    revoke.set_defaults(func=_token_revoke)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())

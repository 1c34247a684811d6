"""``lineagehub``: serve the API, manage the local dev Neo4j, print the schema."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from lineagehub.settings import Settings

log = logging.getLogger("lineagehub")


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from lineagehub import logs
    from lineagehub.app import create_app

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
        signal.signal(signum, _exit_cleanly)
    url = f"http://{settings.host}:{settings.port}/graphql"
    print(f"lineagehub {settings.neo4j_uri} -> GraphiQL at {url}", flush=True)
    try:
        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=10,
        )
    finally:
        if local is not None:
            local.stop()
    return 0


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _schema(args: argparse.Namespace) -> int:
    from lineagehub.api.graphql.schema import sdl

    text = sdl()
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def parser() -> argparse.ArgumentParser:
    from lineagehub.devdb.cli import add_neo4j_commands

    top = argparse.ArgumentParser(prog="lineagehub", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve", help="serve the API (starts the local Neo4j when LINEAGEHUB_NEO4J_URI is unset)"
    )
    serve.add_argument("--host", help="bind address (default LINEAGEHUB_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default LINEAGEHUB_PORT or 8000)")
    serve.set_defaults(func=_serve)
    schema = commands.add_parser("schema", help="print the GraphQL schema (SDL)")
    schema.add_argument("-o", "--output", help="write to this file instead of stdout")
    schema.set_defaults(func=_schema)
    add_neo4j_commands(commands)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())

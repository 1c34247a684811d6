"""``neo4j start|stop|status`` commands for a development Neo4j server.

Hook into a CLI with :func:`add_neo4j_commands`; each sub-command sets ``func``
(``Namespace -> int`` exit code). Standalone: ``python -m lineagehub.devdb.cli neo4j start``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from lineagehub.devdb._local import (
    DEFAULT_PORT,
    HOME_ENV,
    NEO4J_VERSION,
    PORT_ENV,
    DevDbError,
    LocalNeo4j,
    default_port,
    default_state_dir,
    jar_dir,
    jars_present,
)

__all__ = ["add_neo4j_commands", "main"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_NOT_RUNNING = 3

Handler = Callable[[argparse.Namespace], int]


def add_neo4j_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``neo4j`` with sub-commands ``start``, ``stop`` and ``status``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="directory for data, pid and log files "
        f"(default: ${HOME_ENV}/neo4j or ./.lineagehub/neo4j)",
    )
    common.add_argument(
        "--port",
        type=int,
        default=None,
        help=f"Bolt port on 127.0.0.1 (default: ${PORT_ENV} or {DEFAULT_PORT})",
    )

    neo4j = subparsers.add_parser(
        "neo4j",
        help="run a local development Neo4j server (no Docker needed)",
        description=f"Run Neo4j Community {NEO4J_VERSION} locally from its Maven jars "
        "(needs Java 17+, and Maven for the one-time download). Authentication is disabled.",
    )
    commands = neo4j.add_subparsers(dest="neo4j_command", metavar="COMMAND", required=True)

    start = commands.add_parser(
        "start", parents=[common], help="start the server in the background and wait until ready"
    )
    start.add_argument(
        "--heap", default=None, help="JVM heap, e.g. 1g (default: $LINEAGEHUB_NEO4J_HEAP or 1g)"
    )
    start.add_argument(
        "--pagecache",
        default=None,
        help="page cache size, e.g. 1g (default: $LINEAGEHUB_NEO4J_PAGECACHE or 1g)",
    )
    start.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for readiness (default 120)"
    )
    start.set_defaults(func=_guard(_cmd_start))

    stop = commands.add_parser("stop", parents=[common], help="stop the server cleanly")
    stop.add_argument(
        "--timeout", type=float, default=60.0, help="seconds before it is killed (default 60)"
    )
    stop.set_defaults(func=_guard(_cmd_stop))

    status = commands.add_parser(
        "status", parents=[common], help="show whether it runs (exit code 3 if not)"
    )
    status.set_defaults(func=_guard(_cmd_status))


def _guard(handler: Handler) -> Handler:
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except DevDbError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_ERROR

    run.__name__ = handler.__name__
    run.__doc__ = handler.__doc__
    return run


def _server(args: argparse.Namespace, **kwargs: str | None) -> LocalNeo4j:
    state_dir: Path = args.state_dir if args.state_dir is not None else default_state_dir()
    port: int = args.port if args.port is not None else default_port()
    return LocalNeo4j(state_dir, port, **kwargs)


def _cmd_start(args: argparse.Namespace) -> int:
    server = _server(args, heap=args.heap, pagecache=args.pagecache)
    before = server.status()
    if before.running:
        print(f"{before.message}; nothing to do.")
        _print_locations(server)
        return EXIT_OK
    if not jars_present():
        print(
            f"Downloading the Neo4j {NEO4J_VERSION} jars with Maven into {jar_dir()} "
            "(one-time, ~120 MB)...",
            file=sys.stderr,
            flush=True,
        )
    t0 = time.monotonic()
    server.start(detach=True, timeout=args.timeout)
    elapsed = time.monotonic() - t0
    status = server.status()
    print(f"Neo4j {NEO4J_VERSION} started in {elapsed:.1f} s (pid {status.pid}, no authentication)")
    print(f"  uri:      {server.uri}")
    _print_locations(server)
    return EXIT_OK


def _print_locations(server: LocalNeo4j) -> None:
    print(f"  data dir: {server.data_dir}")
    print(f"  log file: {server.log_file} (Neo4j's own: {server.data_dir / 'logs' / 'debug.log'})")


def _cmd_stop(args: argparse.Namespace) -> int:
    server = _server(args)
    pid = server.status().pid
    t0 = time.monotonic()
    if server.stop(timeout=args.timeout):
        print(f"Neo4j (pid {pid}) stopped in {time.monotonic() - t0:.1f} s")
    else:
        print("Neo4j is not running")
    return EXIT_OK


def _cmd_status(args: argparse.Namespace) -> int:
    server = _server(args)
    status = server.status()
    print(status.message)
    print(f"  data dir: {status.data_dir}")
    print(f"  log file: {status.log_file}")
    return EXIT_OK if status.running else EXIT_NOT_RUNNING


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry point: ``python -m lineagehub.devdb.cli neo4j {start,stop,status}``."""
    parser = argparse.ArgumentParser(prog="python -m lineagehub.devdb.cli")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_neo4j_commands(subparsers)
    args = parser.parse_args(argv)
    func: Handler = args.func
    return func(args)


if __name__ == "__main__":
    sys.exit(main())

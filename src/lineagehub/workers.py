"""Several server processes on one port, each accepting on a socket of its own.

uvicorn's ``--workers`` hands one listening socket to every process, and whichever process
wakes first accepts. A burst of new connections (a client's pool opening, a load balancer
reconnecting) can all land on one worker, and with keep-alive they stay there: under 100
clients we saw one worker at 99% CPU and the other idle for the whole run. Here every
worker binds its own socket to the same address with ``SO_REUSEPORT``, and Linux spreads
new connections across the workers' sockets by a hash of the connection.

The supervisor (the parent) serves nothing: it starts the workers, restarts one that dies
after it started, and stops them all, each gracefully, on SIGTERM or SIGINT. A worker that
fails to start (a bad setting, Neo4j unreachable) stops the whole server with an error, as
a single process would. Elsewhere than Linux (where ``SO_REUSEPORT`` does not balance), the
caller falls back to uvicorn's shared socket.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.process
import signal
import socket
import sys
import time
from types import FrameType

log = logging.getLogger("lineagehub")

BACKLOG = 2048  # uvicorn's default
STARTUP_FAILURE = 3  # uvicorn's exit code when the app's start-up fails
GRACE_SECONDS = 10.0  # for requests in flight when a worker is told to stop
_RESTART_PAUSE = 1.0  # between a worker dying and its replacement starting
_MAX_RESTARTS = 5  # in a minute: more means something is wrong with every worker


def supported() -> bool:
    """Whether the kernel balances connections across sockets bound with SO_REUSEPORT."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound (not yet listening) to ``host:port``, shareable with other workers."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def in_use(host: str, port: int) -> bool:
    """Whether something already accepts connections at ``host:port``.

    Binding with SO_REUSEPORT succeeds beside another server of the same user that did the
    same, which would then silently share the port with us: so look before binding.
    """
    # A wildcard address is reached through loopback.
    wildcard = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104
    target = wildcard.get(host, host)
    try:
        with socket.create_connection((target, port), timeout=1.0):
            return True
    except OSError:
        return False


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def _work(host: str, port: int) -> None:
    """One worker process: its own socket, its own app (and Neo4j driver) from the env."""
    import uvicorn

    from lineagehub import logs
    from lineagehub.settings import Settings

    settings = Settings()
    logs.configure(settings.log_level, settings.log_format)
    # uvicorn stops gracefully on SIGTERM/SIGINT, then re-raises the signal to the handler
    # it found: make that a clean exit.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _exit_cleanly)
    try:
        sock = listening_socket(host, port)
        # Listen before the app starts: the kernel counts a socket in the group only once
        # it listens, and a worker still starting would otherwise get no share of the
        # connections opened meanwhile (clients that see the first worker ready). Until
        # the app is up, connections routed here wait in the backlog.
        sock.listen(BACKLOG)
    except OSError as error:
        log.error("cannot listen on %s:%d: %s", host, port, error)
        sys.exit(STARTUP_FAILURE)
    config = uvicorn.Config(
        "lineagehub.app:create_app",
        factory=True,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(GRACE_SECONDS),
    )
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(STARTUP_FAILURE)


class Supervisor:
    """Runs ``workers`` processes of :func:`_work` until told to stop."""

    def __init__(self, host: str, port: int, workers: int) -> None:
        self.host, self.port, self.count = host, port, workers
        self.context = multiprocessing.get_context("spawn")
        self.workers: list[multiprocessing.process.BaseProcess] = []
        self.stopping = False
        self.restarts: list[float] = []

    def _start_one(self, index: int) -> multiprocessing.process.BaseProcess:
        worker = self.context.Process(
            target=_work, args=(self.host, self.port), name=f"lineagehub-worker-{index}"
        )
        worker.start()
        log.info("worker %d started (pid %s)", index, worker.pid)
        return worker

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT (0), or until a worker fails to start (1)."""
        if self.in_use():
            log.error("%s:%d is already in use", self.host, self.port)
            return 1
        previous = {s: signal.signal(s, self._stop) for s in (signal.SIGTERM, signal.SIGINT)}
        failed = False
        try:
            self.workers = [self._start_one(i) for i in range(self.count)]
            while not self.stopping and not failed:
                time.sleep(0.2)
                failed = self._replace_dead()
        finally:
            self._stop_all()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return 1 if failed else 0

    def in_use(self) -> bool:
        return in_use(self.host, self.port)

    def _replace_dead(self) -> bool:
        """Restart workers that died; True when one could not start (give up)."""
        for index, worker in enumerate(self.workers):
            if worker.is_alive() or self.stopping:
                continue
            if worker.exitcode == STARTUP_FAILURE:
                log.error("worker %d (pid %s) failed to start: stopping", index, worker.pid)
                return True
            log.warning(
                "worker %d (pid %s) exited with code %s: starting another",
                index,
                worker.pid,
                worker.exitcode,
            )
            now = time.monotonic()
            self.restarts = [t for t in self.restarts if now - t < 60.0] + [now]
            if len(self.restarts) > _MAX_RESTARTS:
                log.error("workers keep dying (%d restarts in a minute): stopping", _MAX_RESTARTS)
                return True
            time.sleep(_RESTART_PAUSE)
            if not self.stopping:
                self.workers[index] = self._start_one(index)
        return False

    def _stop_all(self) -> None:
        for worker in self.workers:
            if worker.is_alive() and worker.pid is not None:
                worker.terminate()  # SIGTERM: uvicorn finishes requests in flight
        deadline = time.monotonic() + GRACE_SECONDS + 5.0
        for worker in self.workers:
            worker.join(max(0.0, deadline - time.monotonic()))
            if worker.is_alive():
                log.warning("worker pid %s did not stop in time: killing it", worker.pid)
                worker.kill()
                worker.join()

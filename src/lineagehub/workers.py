"""Several server processes on one port, each accepting on a socket of its own.

uvicorn's ``--workers`` hands one listening socket to every process, and whichever process
wakes first accepts. A burst of new connections (a client's pool opening, a load balancer
reconnecting) can all land on one worker, and with keep-alive they stay there: under 100
clients we saw one worker at 99% CPU and the other idle for the whole run. Here every
worker binds its own socket to the same address with ``SO_REUSEPORT``, and Linux spreads
new connections across the workers' sockets by a hash of the connection.

The supervisor (the parent) serves nothing: it starts the workers, replaces one that dies
(after a pause that doubles, up to 30 s, while its replacements keep dying, e.g. failing
to start while Neo4j is down), and stops them all, each gracefully, on SIGTERM or SIGINT.
A worker that fails its first start (a bad setting, Neo4j unreachable, the port taken)
stops the whole server with uvicorn's start-up failure code, as a single process would.
Workers die with the supervisor, even when it is killed outright. Elsewhere than Linux
(where ``SO_REUSEPORT`` does not balance), the caller falls back to uvicorn's shared socket.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.process
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from types import FrameType

log = logging.getLogger("lineagehub")

BACKLOG = 2048  # uvicorn's default
STARTUP_FAILURE = 3  # uvicorn's exit code when the app's start-up fails
GRACE_SECONDS = 10.0  # for requests in flight when a worker is told to stop
# Between a worker dying and its replacement starting: doubled for each replacement of
# that slot that dies too (say, failing to start while Neo4j is down), up to the maximum;
# back to the first once one has lived a minute.
_RESTART_PAUSE = 1.0
_RESTART_PAUSE_MAX = 30.0
_SETTLED_SECONDS = 60.0


def supported() -> bool:
    """Whether the kernel balances connections across sockets bound with SO_REUSEPORT."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound (not yet listening) to ``host:port``, shareable with other workers.
    IPv6 when the host has a colon, else IPv4, as uvicorn decides (``localhost`` is then
    127.0.0.1 even where the resolver lists ::1 first)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
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


def exit_cleanly(signum: int, frame: FrameType | None) -> None:
    """A signal handler: exit with code 0 (uvicorn re-raises the signal that stopped it)."""
    raise SystemExit(0)


def _die_with_parent(parent: int) -> None:
    """SIGTERM this worker when the supervisor dies, even by SIGKILL (Linux)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # gone before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _work(host: str, port: int, parent: int) -> None:
    """One worker process: its own socket, its own app (and Neo4j driver) from the env."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, exit_cleanly)
    _die_with_parent(parent)
    import uvicorn

    from lineagehub import logs
    from lineagehub.http_protocol import OneWriteProtocol
    from lineagehub.settings import Settings

    settings = Settings()
    logs.configure(settings.log_level, settings.log_format)
    # (uvicorn stops gracefully on SIGTERM/SIGINT, then re-raises the signal to the
    # handler it found: the clean exit installed above.)
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
        http=OneWriteProtocol,
        timeout_graceful_shutdown=int(GRACE_SECONDS),
    )
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(STARTUP_FAILURE)


@dataclass
class _Slot:
    """One worker's place: the process in it, and when to start the next one."""

    index: int
    worker: multiprocessing.process.BaseProcess | None = None
    started_at: float = 0.0
    starts: int = 0
    pause: float = _RESTART_PAUSE
    due: float | None = 0.0  # when to start a worker here; None while one runs


class Supervisor:
    """Runs ``workers`` processes of :func:`_work` until told to stop."""

    def __init__(self, host: str, port: int, workers: int) -> None:
        self.host, self.port = host, port
        self.context = multiprocessing.get_context("spawn")
        self.slots = [_Slot(i) for i in range(workers)]
        self.stopping = False

    def _start(self, slot: _Slot) -> None:
        worker = self.context.Process(
            target=_work,
            args=(self.host, self.port, os.getpid()),
            name=f"lineagehub-worker-{slot.index}",
        )
        worker.start()
        slot.worker, slot.started_at, slot.due = worker, time.monotonic(), None
        slot.starts += 1
        log.info("worker %d started (pid %s)", slot.index, worker.pid)

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT (0); 3 when a worker cannot start the first time
        (a bad setting, Neo4j unreachable), as a single process would exit; 1 when the
        address is in use."""
        if in_use(self.host, self.port):
            log.error("%s:%d is already in use", self.host, self.port)
            return 1
        previous = {s: signal.signal(s, self._stop) for s in (signal.SIGTERM, signal.SIGINT)}
        failed = False
        try:
            while not self.stopping and not failed:
                failed = self._tend(time.monotonic())
                time.sleep(0.2)
        finally:
            self._stop_all()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return STARTUP_FAILURE if failed else 0

    def _tend(self, now: float) -> bool:
        """Start workers that are due, schedule replacements for those that died; True
        when one failed its first start (give up)."""
        for slot in self.slots:
            worker = slot.worker
            if worker is not None and not worker.is_alive():
                if worker.exitcode == STARTUP_FAILURE and slot.starts == 1:
                    log.error(
                        "worker %d (pid %s) failed to start: stopping", slot.index, worker.pid
                    )
                    return True
                if now - slot.started_at >= _SETTLED_SECONDS:
                    slot.pause = _RESTART_PAUSE
                log.warning(
                    "worker %d (pid %s) exited with code %s: starting another in %.0f s",
                    slot.index,
                    worker.pid,
                    worker.exitcode,
                    slot.pause,
                )
                slot.worker, slot.due = None, now + slot.pause
                slot.pause = min(slot.pause * 2, _RESTART_PAUSE_MAX)
            if slot.due is not None and now >= slot.due and not self.stopping:
                self._start(slot)
        return False

    def _stop_all(self) -> None:
        workers = [slot.worker for slot in self.slots if slot.worker is not None]
        for worker in workers:
            if worker.is_alive():
                worker.terminate()  # SIGTERM: uvicorn finishes requests in flight
        deadline = time.monotonic() + GRACE_SECONDS + 5.0
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
            if worker.is_alive():
                log.warning("worker pid %s did not stop in time: killing it", worker.pid)
                worker.kill()
                worker.join()

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
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

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


def _work(host: str, port: int, parent: int, counts: Any, slot: int) -> None:
    """One worker process: its own socket, its own app (and Neo4j driver) from the env;
    ``counts`` and ``slot`` are its place in the workers' ``Balance``."""
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
    balance = Balance(counts, slot)

    async def serving() -> None:
        # Every second once the app is up (uvicorn's notify hook): this worker counts
        # from then on, even while it holds no connection yet.
        balance.publish(len(server.server_state.connections))

    balanced = settings.balance_connections
    config = uvicorn.Config(
        "lineagehub.app:create_app",
        factory=True,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        http=OneWriteProtocol.balanced(balance) if balanced else OneWriteProtocol,
        timeout_graceful_shutdown=int(GRACE_SECONDS),
        callback_notify=serving if balanced else None,
        timeout_notify=0,
    )
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(STARTUP_FAILURE)


class Balance:
    """How many connections each worker holds, shared by all of them (``counts``, a
    shared-memory array of ints, one per worker slot; -1: no worker serving there).

    The kernel places a new connection by a hash of its addresses, so 100 keep-alive
    connections split between two workers 55/45 about as often as not, and stay that way.
    Both workers get about the same CPU and answer about as many requests a second, so
    the busier one's clients wait longer for every answer, and the run's p99 comes from
    them (measured at 53/47: p99 67 ms for the 53 clients against 58 ms for the 47).

    A worker that holds more than its share closes one of its keep-alive connections
    after that connection's current answer ("connection: close", as HTTP/1.1 lets a
    server do at any time). The client opens a new one, which the kernel places again.
    So a worker holds no more than its share (rounded up) plus ``1/TOLERANCE`` of the
    total for long, and a worker that starts late (a replacement) gets its share of the
    clients already connected, instead of only of new ones.

    Only the worker over its share acts, one connection per answer, as many as it holds
    over its share. A connection it has told to close (``shedding``) is no longer its
    own. The client of one it has closed is expected back within ``RETURN_SECONDS``, on
    some worker, and counts in the total until then: otherwise a client pool that
    reconnects only when it next sends (rather than at once) would see every closed
    connection lower the share, and all of them would be closed in turn.
    """

    TOLERANCE = 80  # 100 connections on 2 workers settle at 51/49 or better
    RETURN_SECONDS = 1.0

    def __init__(self, counts: Any, slot: int, clock: Callable[[], float] = time.monotonic):
        self.counts = counts
        self.slot = slot
        self.clock = clock
        self.shedding = 0  # told to close after their answers
        self.leaving = False
        self.departed: deque[float] = deque()  # when each closed, for RETURN_SECONDS

    def publish(self, connections: int) -> None:
        """This worker holds ``connections`` (unless it is shutting down)."""
        if not self.leaving:
            self.counts[self.slot] = connections

    def leave(self) -> None:
        """This worker is shutting down: it no longer listens, so it has no share (the
        others stop counting it), and it publishes nothing more."""
        self.leaving = True
        self.counts[self.slot] = -1

    def over_share(self, connections: int) -> bool:
        """Whether this worker, holding ``connections``, should close one."""
        departed = self.departed
        if departed:
            horizon = self.clock() - self.RETURN_SECONDS
            while departed and departed[0] < horizon:
                departed.popleft()
        mine, total = connections - self.shedding, connections + len(departed)
        serving = 1
        for slot, count in enumerate(self.counts):
            if slot != self.slot and count >= 0:
                total += count
                serving += 1
        share = -(-total // serving)  # rounded up
        return serving > 1 and mine > share + total // self.TOLERANCE

    def closing(self) -> None:
        """One of this worker's connections closes after its answer."""
        self.shedding += 1

    def kept(self) -> None:
        """... no: it stays open after all."""
        self.shedding -= 1

    def closed(self) -> None:
        """... it has closed."""
        self.shedding -= 1
        self.departed.append(self.clock())


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
        self.counts = self.context.RawArray("i", [-1] * workers)  # Balance's shared counts
        self.stopping = False

    def _start(self, slot: _Slot) -> None:
        worker = self.context.Process(
            target=_work,
            args=(self.host, self.port, os.getpid(), self.counts, slot.index),
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
                self.counts[slot.index] = -1  # its connections are gone
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

"""Run a real Neo4j Community server locally, without Docker.

Neo4j is started from its Maven artifacts: :func:`ensure_jars` downloads the jars
once (with ``mvn``, driven by the ``pom.xml`` shipped next to this module) into a
per-user cache, and :class:`LocalNeo4j` runs ``Launcher.java`` (also shipped here)
in Java source-file mode, which embeds Neo4j and opens a Bolt connector on
127.0.0.1 with authentication disabled.

The launcher prints ``LINEAGEHUB-NEO4J READY bolt://...`` once the ``neo4j``
database is available and Bolt accepts connections, ``LINEAGEHUB-NEO4J FAILED
<reason>`` on failure, and ``LINEAGEHUB-NEO4J STOPPED`` after a clean shutdown
(SIGTERM, or EOF on stdin when started with ``--watch-stdin``).

Environment variables:

``LINEAGEHUB_CACHE_DIR``
    Cache root (default ``${XDG_CACHE_HOME:-~/.cache}/lineagehub``); jars go to
    ``<root>/neo4j-<version>/lib``.
``LINEAGEHUB_NEO4J_HEAP`` / ``LINEAGEHUB_NEO4J_PAGECACHE``
    JVM heap (``-Xms`` = ``-Xmx``) and Neo4j page cache size, default ``1g`` each.
``JAVA_HOME``
    Java 17+ installation to use instead of ``java`` on ``PATH``.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import importlib.resources
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = [
    "NEO4J_VERSION",
    "DevDbError",
    "LocalNeo4j",
    "Status",
    "default_port",
    "default_state_dir",
    "ensure_jars",
    "find_java",
    "free_port",
    "jar_dir",
]

log = logging.getLogger("lineagehub.devdb")

NEO4J_VERSION = "5.26.21"
"""Neo4j Community version fetched by :func:`ensure_jars`; must match pom.xml."""

HOST = "127.0.0.1"
DEFAULT_PORT = 17687
MIN_JAVA = 17

# Sizing for a development/test box (reference: 2 cores, 24 GiB RAM). Neo4j's
# heap holds query state and transaction state; 1 GiB is plenty for development
# graphs. The page cache (off-heap, allocated lazily) caches the store files;
# 1 GiB covers a few million nodes/relationships. Together with JVM overhead a
# server stays well under 3 GiB even when busy, leaving room for the service,
# tests and a second instance. Override with the environment variables below.
DEFAULT_HEAP = "1g"
DEFAULT_PAGECACHE = "1g"
HEAP_ENV = "LINEAGEHUB_NEO4J_HEAP"
PAGECACHE_ENV = "LINEAGEHUB_NEO4J_PAGECACHE"
PORT_ENV = "LINEAGEHUB_NEO4J_PORT"
CACHE_ENV = "LINEAGEHUB_CACHE_DIR"
HOME_ENV = "LINEAGEHUB_HOME"

READY_MARK = "LINEAGEHUB-NEO4J READY "
FAILED_MARK = "LINEAGEHUB-NEO4J FAILED "
STOPPED_MARK = "LINEAGEHUB-NEO4J STOPPED"

_LAUNCHER = "Launcher.java"
_POM = "pom.xml"
_COMPLETE_MARKER = ".lineagehub-complete"
_MVN_TIMEOUT = 1800.0
_LOG_ROTATE_BYTES = 10 * 1024 * 1024
_SIZE_RE = re.compile(r"^[1-9][0-9]*[kKmMgG]$")

# JVM options (mostly as Neo4j's own launcher sets them): no warnings from Netty
# and Neo4j's native access on Java 17+, and die rather than limp on after OOM. One of
# ours: G1 aims at 20 ms pauses, not its default 200. With a 2g heap under 100 clients,
# young collections took ~49 ms every ~6 s, and every query in flight waited them out (the
# API's p99.9 80-100 ms); now ~19 ms every ~4 s (p99.9 64-68 ms), same throughput, and bulk
# registration no slower (3,203 versions/s after, 2,958 before; bench/README.md).
_JVM_OPTS = (
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:+ExitOnOutOfMemoryError",
    "-XX:+UnlockExperimentalVMOptions",
    "-XX:+TrustFinalNonStaticFields",
    "-XX:+DisableExplicitGC",
    "-Djdk.nio.maxCachedBufferSize=1024",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dlog4j2.disable.jmx=true",
    "-Dfile.encoding=UTF-8",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--enable-native-access=ALL-UNNAMED",
)


class DevDbError(Exception):
    """A development-database problem; the message says what to do about it."""


def port_in_use_message(port: int) -> str:
    return (
        f"port {port} on {HOST} is in use by another process; "
        f"choose another with --port or {PORT_ENV}"
    )


def default_state_dir() -> Path:
    """``$LINEAGEHUB_HOME/neo4j``, or ``./.lineagehub/neo4j`` (absolute)."""
    home = os.environ.get(HOME_ENV) or ".lineagehub"
    return (Path(home).expanduser() / "neo4j").absolute()


def default_port() -> int:
    """``$LINEAGEHUB_NEO4J_PORT`` or 17687."""
    raw = os.environ.get(PORT_ENV)
    if not raw:
        return DEFAULT_PORT
    try:
        port = int(raw)
    except ValueError:
        raise DevDbError(f"{PORT_ENV}={raw!r} is not a port number; set it to e.g. 17687") from None
    if not 1 <= port <= 65535:
        raise DevDbError(f"{PORT_ENV}={raw!r} is not between 1 and 65535")
    return port


# --------------------------------------------------------------------------- jars


def _cache_root() -> Path:
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser().absolute()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return (base / "lineagehub").absolute()


def jar_dir() -> Path:
    """Where the Neo4j jars live: ``<cache root>/neo4j-<version>/lib``.

    The cache root is ``$LINEAGEHUB_CACHE_DIR`` or
    ``${XDG_CACHE_HOME:-~/.cache}/lineagehub``.
    """
    return _cache_root() / f"neo4j-{NEO4J_VERSION}" / "lib"


def jars_present() -> bool:
    """True when :func:`ensure_jars` would not need to download anything."""
    return (jar_dir() / _COMPLETE_MARKER).is_file()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(path, "a+b")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise DevDbError(
            f"cannot create {path}: {exc}. Make the directory writable, or (for the jar cache) "
            f"point {CACHE_ENV} at a writable directory."
        ) from exc
    with fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _read_resource(name: str) -> str:
    return (importlib.resources.files(__package__ or "lineagehub.devdb") / name).read_text(
        encoding="utf-8"
    )


_ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _last_lines(text: str, n: int = 25) -> str:
    lines = [ln for ln in _ANSI_RE.sub("", text).splitlines() if ln.strip()]
    return "\n".join(lines[-n:])


def ensure_jars() -> Path:
    """Return :func:`jar_dir`, downloading Neo4j's jars with Maven the first time.

    The download goes to a temporary directory next to the final one, which is
    renamed into place (with a completion marker inside) only when Maven
    succeeded, so an interrupted download is never mistaken for a complete one.
    Concurrent callers (processes or threads) serialise on a file lock.
    """
    lib = jar_dir()
    if (lib / _COMPLETE_MARKER).is_file():
        return lib
    version_dir = lib.parent
    with _file_lock(version_dir / ".lock"):
        if (lib / _COMPLETE_MARKER).is_file():  # another caller finished meanwhile
            return lib
        mvn = shutil.which("mvn")
        if mvn is None:
            raise DevDbError(
                f"Maven ('mvn') was not found on PATH. It is needed once to download the "
                f"Neo4j {NEO4J_VERSION} jars (~120 MB) into {lib}. Install Maven 3.6+ "
                f"(e.g. 'apt-get install maven' or 'brew install maven') and retry."
            )
        if lib.exists():
            log.warning("removing incomplete Neo4j jar directory %s", lib)
            shutil.rmtree(lib)
        log.info("downloading Neo4j %s jars with Maven into %s (one-time)", NEO4J_VERSION, lib)
        work = Path(tempfile.mkdtemp(prefix="download-", dir=version_dir))
        try:
            pom = work / _POM
            pom.write_text(_read_resource(_POM), encoding="utf-8")
            out_dir = work / "lib"
            cmd = [
                mvn,
                "-B",
                "-q",
                "-Dstyle.color=never",
                "-f",
                str(pom),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={out_dir}",
            ]
            try:
                proc = subprocess.run(  # noqa: S603 - fixed argv, no shell
                    cmd,
                    cwd=work,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    errors="replace",
                    timeout=_MVN_TIMEOUT,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                out = exc.output if isinstance(exc.output, str) else ""
                raise DevDbError(
                    f"Maven did not finish downloading the Neo4j jars within {_MVN_TIMEOUT:.0f} s; "
                    f"check network access to the Maven repository and retry.\n"
                    f"{_last_lines(out)}"
                ) from None
            except OSError as exc:
                raise DevDbError(f"could not run Maven ({mvn}): {exc}") from exc
            jars = sorted(out_dir.glob("*.jar")) if out_dir.is_dir() else []
            core = out_dir / f"neo4j-{NEO4J_VERSION}.jar"
            if proc.returncode != 0 or not core.is_file():
                raise DevDbError(
                    f"downloading the Neo4j {NEO4J_VERSION} jars with Maven failed "
                    f"(exit code {proc.returncode}, {len(jars)} jars fetched). Check network "
                    f"access to the Maven repository (proxy settings go in ~/.m2/settings.xml) "
                    f"and retry. Last Maven output:\n{_last_lines(proc.stdout) or '(none)'}"
                )
            (out_dir / _COMPLETE_MARKER).write_text(
                json.dumps({"neo4j_version": NEO4J_VERSION, "jars": len(jars)}) + "\n",
                encoding="utf-8",
            )
            os.rename(out_dir, lib)
            log.info("downloaded %d Neo4j jars into %s", len(jars), lib)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return lib


def _launcher_source() -> Path:
    """A filesystem path to Launcher.java (copied into the cache if packaged in a zip)."""
    resource = importlib.resources.files(__package__ or "lineagehub.devdb") / _LAUNCHER
    if isinstance(resource, Path) and resource.is_file():
        return resource
    text = resource.read_text(encoding="utf-8")
    target = jar_dir().parent / _LAUNCHER
    if not target.is_file() or target.read_text(encoding="utf-8") != text:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{_LAUNCHER}.{os.getpid()}")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    return target


# --------------------------------------------------------------------------- java

_JAVA_VERSION_RE = re.compile(r'version "(\d+)(?:\.(\d+))?[^"]*"')


def find_java() -> str:
    """Path of a Java 17+ ``java``: ``$JAVA_HOME/bin/java``, else ``java`` on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    candidate: str | None = None
    if java_home:
        path = Path(java_home) / "bin" / "java"
        if path.is_file() and os.access(path, os.X_OK):
            candidate = str(path)
        else:
            log.warning("JAVA_HOME=%s has no bin/java; looking for java on PATH", java_home)
    if candidate is None:
        candidate = shutil.which("java")
    if candidate is None:
        raise DevDbError(
            f"Java {MIN_JAVA} or newer is needed to run the development Neo4j, but no 'java' "
            f"was found (JAVA_HOME unset or invalid, none on PATH). Install a JDK/JRE "
            f"{MIN_JAVA}+ (e.g. 'apt-get install openjdk-17-jre-headless') or set JAVA_HOME."
        )
    try:
        proc = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [candidate, "-version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DevDbError(f"could not run {candidate} -version: {exc}") from None
    match = _JAVA_VERSION_RE.search(proc.stderr + proc.stdout)
    if match is None:
        raise DevDbError(
            f"could not tell the version of {candidate} (output: "
            f"{_last_lines(proc.stderr + proc.stdout, 3)!r}); install Java {MIN_JAVA}+ "
            f"or point JAVA_HOME at one."
        )
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0_392" style
        major = int(match.group(2))
    if major < MIN_JAVA:
        raise DevDbError(
            f"{candidate} is Java {major}, but Neo4j {NEO4J_VERSION} needs Java {MIN_JAVA} "
            f"or newer; install one and put it first on PATH or set JAVA_HOME."
        )
    return candidate


# --------------------------------------------------------------------------- net


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
        return True


def _bolt_handshake(port: int, timeout: float = 5.0) -> bool:
    """True if something on 127.0.0.1:port completes a Bolt version handshake."""
    proposals = (
        b"\x60\x60\xb0\x17"  # Bolt magic preamble
        b"\x00\x08\x08\x05"  # 5.8 down to 5.0
        b"\x00\x00\x04\x04"  # 4.4
        b"\x00\x00\x00\x00"
        b"\x00\x00\x00\x00"
    )
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as s:
            s.sendall(proposals)
            reply = b""
            while len(reply) < 4:
                chunk = s.recv(4 - len(reply))
                if not chunk:
                    return False
                reply += chunk
    except OSError:
        return False
    return reply != b"\x00\x00\x00\x00"


# --------------------------------------------------------------------------- processes


def _read_cmdline(pid: int) -> list[str] | None:
    """The argv of a live, non-zombie process, or None if there is none."""
    proc = Path("/proc") / str(pid)
    if Path("/proc/self").exists():
        try:
            stat = (proc / "stat").read_text()
            if stat[stat.rindex(")") + 2 :].startswith("Z"):
                return None
            raw = (proc / "cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return [part.decode(errors="replace") for part in raw.split(b"\0") if part]
    # No procfs (macOS): ask ps.
    try:
        out = subprocess.run(  # noqa: S603 - fixed argv, no shell
            ["ps", "-p", str(pid), "-o", "stat=", "-o", "command="],  # noqa: S607
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        return None
    if not out or out.startswith("Z"):
        return None
    return out.split()[1:]


def _pid_alive(pid: int) -> bool:
    return _read_cmdline(pid) is not None


def _make_pdeathsig_preexec() -> Callable[[], None] | None:
    """preexec_fn sending SIGTERM to the child when this process dies (Linux only).

    PR_SET_PDEATHSIG fires when the *thread* that forked exits, so it is only used
    when starting from the main thread; --watch-stdin covers the other cases.
    """
    if (
        not sys.platform.startswith("linux")
        or threading.current_thread() is not threading.main_thread()
    ):
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # parent already gone before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


@dataclass
class Status:
    running: bool
    pid: int | None
    uri: str | None
    data_dir: Path
    log_file: Path
    message: str


class LocalNeo4j:
    """A Neo4j Community server for development and tests, run from Maven jars.

    ``state_dir`` holds ``data/`` (the Neo4j home: databases, transaction logs and
    Neo4j's own logs in ``data/logs/``), ``neo4j.pid`` (JSON: pid, port, uri, mode),
    ``neo4j.log`` (launcher stdout and stderr) and a lock file.
    """

    def __init__(
        self,
        state_dir: Path,
        port: int = DEFAULT_PORT,
        *,
        heap: str | None = None,
        pagecache: str | None = None,
    ) -> None:
        # resolved, so every caller names the same launcher process (see _is_our_launcher)
        self.state_dir = Path(state_dir).expanduser().resolve()
        if not 1 <= port <= 65535:
            raise DevDbError(f"port {port} is not between 1 and 65535")
        self.port = port
        self.heap = _check_size("heap", heap or os.environ.get(HEAP_ENV) or DEFAULT_HEAP, HEAP_ENV)
        self.pagecache = _check_size(
            "page cache",
            pagecache or os.environ.get(PAGECACHE_ENV) or DEFAULT_PAGECACHE,
            PAGECACHE_ENV,
        )
        self.data_dir = self.state_dir / "data"
        self.pid_file = self.state_dir / "neo4j.pid"
        self.log_file = self.state_dir / "neo4j.log"
        self._lock_file = self.state_dir / "neo4j.lock"
        self._proc: subprocess.Popen[bytes] | None = None
        self._child_mode = False
        self._atexit_registered = False

    def __repr__(self) -> str:
        return f"LocalNeo4j(state_dir={str(self.state_dir)!r}, port={self.port})"

    @property
    def uri(self) -> str:
        return f"bolt://{HOST}:{self.port}"

    def __enter__(self) -> LocalNeo4j:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ pid file

    def _read_pid_file(self) -> dict[str, Any] | None:
        try:
            raw = self.pid_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise DevDbError(f"cannot read {self.pid_file}: {exc}") from exc
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, int):
            data = {"pid": data}
        if not isinstance(data, dict) or not isinstance(data.get("pid"), int):
            return {"pid": None, "invalid": raw[:80]}
        return data

    def _write_pid_file(self, pid: int, mode: str) -> None:
        info = {
            "pid": pid,
            "port": self.port,
            "uri": self.uri,
            "mode": mode,
            "data_dir": str(self.data_dir),
            "log_file": str(self.log_file),
            "neo4j_version": NEO4J_VERSION,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        tmp = self.pid_file.with_name(f".{self.pid_file.name}.{os.getpid()}")
        tmp.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.pid_file)

    def _remove_pid_file(self, pid: int | None = None) -> None:
        """Remove the pid file (only if it still names ``pid``, when given)."""
        if pid is not None:
            info = self._read_pid_file()
            if info is not None and info.get("pid") not in (pid, None):
                return
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()

    def _is_our_launcher(self, pid: int) -> bool:
        argv = _read_cmdline(pid)
        if argv is None:
            return False
        return any(a.endswith(_LAUNCHER) for a in argv) and str(self.data_dir) in argv

    def _recorded_process(self) -> tuple[int | None, dict[str, Any] | None, str | None]:
        """(live launcher pid or None, pid-file info, why the pid file is stale or None)."""
        info = self._read_pid_file()
        if info is None:
            return None, None, None
        pid = info.get("pid")
        if not isinstance(pid, int):
            return None, info, f"pid file {self.pid_file} is unreadable ({info.get('invalid')!r})"
        if self._is_our_launcher(pid):
            return pid, info, None
        if _pid_alive(pid):
            return None, info, f"pid file names process {pid}, which is not this server's launcher"
        return None, info, f"pid file names process {pid}, which is gone"

    # ------------------------------------------------------------------ lifecycle

    def start(self, *, detach: bool = False, timeout: float = 120.0) -> None:
        """Start the server and block until it serves Bolt on :attr:`uri`.

        ``detach=False`` runs it as a child that shuts down cleanly when this
        process exits or dies (stdin EOF, PDEATHSIG, atexit). ``detach=True`` runs
        it as a daemon in its own session that outlives this process (for the CLI).
        If the pid file names a running server for this state dir, this is a no-op
        (and :attr:`port` is set to the port that server uses).
        """
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with _file_lock(self._lock_file):
            if self._proc is not None and self._proc.poll() is None:
                log.info(
                    "Neo4j already running as a child (pid %d) at %s", self._proc.pid, self.uri
                )
                return
            pid, info, stale = self._recorded_process()
            if pid is not None and info is not None:
                port = info.get("port")
                if isinstance(port, int):
                    self.port = port
                log.info("Neo4j already running (pid %d) at %s", pid, self.uri)
                return
            if stale is not None:
                log.warning("removing stale pid file: %s", stale)
                self._remove_pid_file()
            if not _port_is_free(self.port):
                raise DevDbError(port_in_use_message(self.port))
            java = find_java()
            lib = ensure_jars()
            self._launch(java, lib, detach=detach, timeout=timeout)

    def _launch(self, java: str, lib: Path, *, detach: bool, timeout: float) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.log_file.exists() and self.log_file.stat().st_size > _LOG_ROTATE_BYTES:
            os.replace(self.log_file, self.log_file.with_name(self.log_file.name + ".1"))
        cmd = [
            java,
            f"-Xms{self.heap}",
            f"-Xmx{self.heap}",
            *_JVM_OPTS,
            "-cp",
            str(lib / "*"),
            str(_launcher_source()),
            str(self.data_dir),
            str(self.port),
            "--pagecache",
            self.pagecache,
        ]
        if not detach:
            cmd.append("--watch-stdin")
        with open(self.log_file, "ab") as logf:
            logf.write(
                f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting Neo4j {NEO4J_VERSION} "
                f"on {self.uri} ({'detached' if detach else 'child'}) ===\n".encode()
            )
            logf.flush()
            offset = logf.tell()
            try:
                if detach:
                    proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                        cmd,
                        stdin=subprocess.DEVNULL,
                        stdout=logf,
                        stderr=subprocess.STDOUT,
                        cwd=self.state_dir,
                        start_new_session=True,
                    )
                else:
                    proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                        cmd,
                        stdin=subprocess.PIPE,
                        stdout=logf,
                        stderr=subprocess.STDOUT,
                        cwd=self.state_dir,
                        # own process group: a terminal's Ctrl-C reaches us, and we stop it
                        start_new_session=True,
                        preexec_fn=_make_pdeathsig_preexec(),
                    )
            except OSError as exc:
                raise DevDbError(f"could not start {java}: {exc}") from exc
        self._proc = proc
        self._child_mode = not detach
        self._write_pid_file(proc.pid, "detached" if detach else "child")
        if not detach and not self._atexit_registered:
            atexit.register(self._stop_at_exit)
            self._atexit_registered = True
        try:
            self._wait_ready(proc, offset, timeout)
        except BaseException:
            self._kill_failed(proc)
            raise

    def _wait_ready(self, proc: subprocess.Popen[bytes], offset: int, timeout: float) -> None:
        t0 = time.monotonic()
        deadline = t0 + timeout
        while True:
            output = self._log_since(offset)
            failed = _find_marker(output, FAILED_MARK)
            if failed is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(10)
                reason = failed.strip()
                if " is in use by another process" in reason:
                    raise DevDbError(port_in_use_message(self.port))
                raise DevDbError(f"Neo4j failed to start: {reason}\n{self._log_excerpt(offset)}")
            if _find_marker(output, READY_MARK) is not None:
                break
            code = proc.poll()
            if code is not None:
                raise DevDbError(
                    f"Neo4j exited with code {code} while starting.\n{self._log_excerpt(offset)}"
                )
            if time.monotonic() > deadline:
                raise DevDbError(
                    f"Neo4j did not become ready within {timeout:g} s; it was killed. "
                    f"Raise the timeout if the machine is slow.\n{self._log_excerpt(offset)}"
                )
            time.sleep(0.1)
        while not _bolt_handshake(self.port, timeout=5.0):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise DevDbError(
                    f"Neo4j reported ready but {self.uri} does not answer the Bolt handshake.\n"
                    f"{self._log_excerpt(offset)}"
                )
            time.sleep(0.2)
        log.info(
            "Neo4j ready at %s after %.1f s (pid %d)", self.uri, time.monotonic() - t0, proc.pid
        )

    def _kill_failed(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            self._signal_and_wait(proc.pid, proc, 10.0)
        self._close_stdin(proc)
        self._remove_pid_file(proc.pid)
        if self._proc is proc:
            self._proc = None

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.log_file, "rb") as fh:
                fh.seek(offset)
                return fh.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def _log_excerpt(self, offset: int, lines: int = 30) -> str:
        text = _last_lines(self._log_since(offset), lines) or "(no output)"
        debug_log = self.data_dir / "logs" / "debug.log"
        return f"--- last lines of {self.log_file} ---\n{text}\n--- Neo4j's own log: {debug_log}"

    def stop(self, timeout: float = 60.0) -> bool:
        """Stop the server (SIGTERM, clean shutdown; SIGKILL only after ``timeout``).

        Works for a child started by this object and for a server recorded in the
        pid file (e.g. started detached by another process). Returns whether a
        server was stopped.
        """
        proc = self._proc
        pid: int | None = None
        if proc is not None and proc.poll() is None:
            pid = proc.pid
        else:
            proc = None
            recorded, _info, stale = self._recorded_process()
            if recorded is not None:
                pid = recorded
            elif stale is not None:
                log.warning("removing stale pid file: %s", stale)
                self._remove_pid_file()
        if self._proc is not None and proc is None:
            self._close_stdin(self._proc)
            self._proc = None
        if pid is None:
            return False
        t0 = time.monotonic()
        clean = self._signal_and_wait(pid, proc, timeout)
        if proc is not None:
            self._close_stdin(proc)
            self._proc = None
        self._remove_pid_file(pid)
        if clean:
            log.info("Neo4j (pid %d) stopped in %.1f s", pid, time.monotonic() - t0)
        return True

    def _signal_and_wait(
        self, pid: int, proc: subprocess.Popen[bytes] | None, timeout: float
    ) -> bool:
        """SIGTERM, wait up to ``timeout``, then SIGKILL. True if it exited on SIGTERM."""
        if proc is None and not self._is_our_launcher(pid):
            return True
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if _wait_exit(pid, proc, timeout):
            return True
        log.warning(
            "Neo4j (pid %d) did not stop within %.0f s; killing it "
            "(the next start will run recovery)",
            pid,
            timeout,
        )
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _wait_exit(pid, proc, 30.0)
        return False

    @staticmethod
    def _close_stdin(proc: subprocess.Popen[bytes]) -> None:
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()

    def _stop_at_exit(self) -> None:
        if self._child_mode and self._proc is not None and self._proc.poll() is None:
            self.stop()

    def status(self) -> Status:
        """Whether the server of this state dir is running, and where."""
        pid: int | None = None
        info: dict[str, Any] | None = None
        stale: str | None = None
        if self._proc is not None and self._proc.poll() is None:
            pid = self._proc.pid
            info = {"port": self.port}
        else:
            pid, info, stale = self._recorded_process()
        if pid is None:
            msg = "Neo4j is not running"
            if stale is not None:
                msg += f" ({stale})"
            return Status(False, None, None, self.data_dir, self.log_file, msg)
        port = info.get("port") if info else None
        if not isinstance(port, int):
            port = self.port
        uri = f"bolt://{HOST}:{port}"
        if _bolt_handshake(port, timeout=2.0):
            msg = f"Neo4j {NEO4J_VERSION} is running at {uri} (pid {pid})"
        else:
            msg = (
                f"Neo4j process {pid} is running but {uri} does not answer yet "
                "(starting or stopping?)"
            )
        return Status(True, pid, uri, self.data_dir, self.log_file, msg)


def _wait_exit(pid: int, proc: subprocess.Popen[bytes] | None, timeout: float) -> bool:
    if proc is not None:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True
    deadline = time.monotonic() + timeout
    while _pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _find_marker(output: str, mark: str) -> str | None:
    for line in output.splitlines():
        if line.startswith(mark):
            return line[len(mark) :]
    return None


def _check_size(what: str, value: str, env: str) -> str:
    value = value.strip()
    if not _SIZE_RE.match(value):
        raise DevDbError(
            f"invalid {what} size {value!r} (from argument or {env}); use e.g. 512m or 2g"
        )
    return value

"""Real-process tests for the development Neo4j (lineagehub.devdb): real java, real Bolt."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import neo4j
import pytest

from lineagehub.devdb import (
    DevDbError,
    LocalNeo4j,
    ensure_jars,
    find_java,
    free_port,
    jar_dir,
)
from tests.conftest import process_alive

STOPPED_LINE = "LINEAGEHUB-NEO4J STOPPED"


def _launcher_pids_under(root: Path) -> list[int]:
    """Pids of live (non-zombie) launcher processes whose data dir is under ``root``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if stat[stat.rindex(")") + 2 :].startswith("Z"):
            continue
        if any(a.endswith("Launcher.java") for a in argv) and any(
            a.startswith(str(root)) for a in argv
        ):
            found.append(int(entry.name))
    return found


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while process_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture(autouse=True)
def no_java_left_behind(tmp_path: Path) -> Iterator[None]:
    yield
    leftovers = _launcher_pids_under(tmp_path)
    for pid in leftovers:  # do not leak servers even when the assertion fails
        os.kill(pid, signal.SIGKILL)
    assert leftovers == [], f"launcher processes left running: {leftovers}"


def _cli(*args: str, timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lineagehub.devdb.cli", "neo4j", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _names(uri: str) -> list[str]:
    with neo4j.GraphDatabase.driver(uri, auth=None) as driver:
        records, _, _ = driver.execute_query("MATCH (p:Probe) RETURN p.name AS name ORDER BY name")
    return [r["name"] for r in records]


def test_start_query_stop_restart_keeps_data_and_needs_no_recovery(tmp_path: Path) -> None:
    db = LocalNeo4j(tmp_path / "neo4j", free_port())
    try:
        db.start()
        status = db.status()
        assert status.running
        assert status.uri == db.uri == f"bolt://127.0.0.1:{db.port}"
        assert status.pid is not None
        pid = status.pid
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        assert {"-Xms1g", "-Xmx1g", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20"} <= set(argv)
        assert json.loads(db.pid_file.read_text())["pid"] == pid
        with neo4j.GraphDatabase.driver(db.uri, auth=None) as driver:
            driver.verify_connectivity()
            driver.execute_query("CREATE (:Probe {name: $name})", name="survivor")
        assert _names(db.uri) == ["survivor"]

        t0 = time.monotonic()
        assert db.stop() is True
        assert time.monotonic() - t0 < 15, "SIGTERM shutdown should be prompt"
        assert not process_alive(pid)
        assert db.log_file.read_text().rstrip().endswith(STOPPED_LINE)
        assert not db.pid_file.exists()
        assert not db.status().running

        debug_log = db.data_dir / "logs" / "debug.log"
        first_run = debug_log.read_text(errors="replace")
        assert 'Checkpoint triggered by "Database shutdown"' in first_run
        offset = debug_log.stat().st_size

        db.start()
        assert _names(db.uri) == ["survivor"]
        with debug_log.open("rb") as fh:
            fh.seek(offset)
            second_run = fh.read().decode(errors="replace")
        assert "DatabaseManagementServiceFactory" in second_run  # we read the restart's lines
        assert "recovery is required" not in second_run.lower()
        assert "Recovery required" not in second_run
        assert db.stop() is True
    finally:
        db.stop()
    assert db.stop() is False


def test_port_in_use_gives_actionable_error(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        db = LocalNeo4j(tmp_path / "neo4j", port)
        with pytest.raises(DevDbError) as err:
            db.start(timeout=60)
    assert str(err.value) == (
        f"port {port} on 127.0.0.1 is in use by another process; "
        "choose another with --port or LINEAGEHUB_NEO4J_PORT"
    )
    assert not db.pid_file.exists()
    assert not db.status().running


def test_launcher_itself_reports_port_in_use(tmp_path: Path) -> None:
    launcher = files("lineagehub.devdb") / "Launcher.java"
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        proc = subprocess.run(
            [
                find_java(),
                "-cp",
                str(ensure_jars() / "*"),
                str(launcher),
                str(tmp_path / "data"),
                str(port),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    assert proc.returncode != 0
    assert proc.stdout.strip() == (
        f"LINEAGEHUB-NEO4J FAILED port {port} on 127.0.0.1 is in use by another process"
    )


def test_status_when_never_started(tmp_path: Path) -> None:
    db = LocalNeo4j(tmp_path / "neo4j", free_port())
    status = db.status()
    assert status.running is False
    assert status.pid is None
    assert status.uri is None
    assert status.data_dir == (tmp_path / "neo4j" / "data").resolve()
    assert status.log_file == (tmp_path / "neo4j" / "neo4j.log").resolve()
    assert status.message == "Neo4j is not running"
    assert db.stop() is False


def test_stale_pid_files_are_reported_and_never_signalled(tmp_path: Path) -> None:
    db = LocalNeo4j(tmp_path / "neo4j", free_port())
    db.state_dir.mkdir(parents=True)

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    db.pid_file.write_text(json.dumps({"pid": dead_pid, "port": db.port}))
    status = db.status()
    assert not status.running
    assert f"process {dead_pid}, which is gone" in status.message
    assert db.stop() is False
    assert not db.pid_file.exists()

    # A live process that is not our launcher (pid reuse) must not be signalled.
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        db.pid_file.write_text(json.dumps({"pid": bystander.pid, "port": db.port}))
        status = db.status()
        assert not status.running
        assert "not this server's launcher" in status.message
        assert db.stop() is False
        assert bystander.poll() is None, "a foreign process must not be signalled"
        assert not db.pid_file.exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_cli_start_status_stop_round_trip(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    port = str(free_port())
    common = ["--state-dir", str(state_dir), "--port", port]
    state_dir.mkdir()
    # pid_max is at most 2**22 on Linux, so this process cannot exist
    (state_dir / "neo4j.pid").write_text(json.dumps({"pid": 2**22 + 12345, "port": int(port)}))
    try:
        status = _cli("status", *common)
        assert status.returncode == 3, status
        assert "not running" in status.stdout

        started = _cli("start", *common)
        assert started.returncode == 0, started.stderr
        assert f"bolt://127.0.0.1:{port}" in started.stdout
        assert f"data dir: {state_dir / 'data'}" in started.stdout
        assert f"log file: {state_dir / 'neo4j.log'}" in started.stdout
        assert "started in" in started.stdout
        assert "stale pid file" in started.stderr

        # The CLI process has exited; the server lives on in its own session.
        pid = json.loads((state_dir / "neo4j.pid").read_text())["pid"]
        assert process_alive(pid)
        assert os.getsid(pid) == pid
        with neo4j.GraphDatabase.driver(f"bolt://127.0.0.1:{port}", auth=None) as driver:
            records, _, _ = driver.execute_query("RETURN 40 + 2 AS answer")
        assert records[0]["answer"] == 42

        status = _cli("status", *common)
        assert status.returncode == 0, status
        assert f"running at bolt://127.0.0.1:{port} (pid {pid})" in status.stdout

        again = _cli("start", *common)
        assert again.returncode == 0, again.stderr
        assert "nothing to do" in again.stdout
        assert json.loads((state_dir / "neo4j.pid").read_text())["pid"] == pid

        stopped = _cli("stop", *common)
        assert stopped.returncode == 0, stopped.stderr
        assert f"Neo4j (pid {pid}) stopped in" in stopped.stdout
        assert _wait_gone(pid, 10)
        assert (state_dir / "neo4j.log").read_text().rstrip().endswith(STOPPED_LINE)

        status = _cli("status", *common)
        assert status.returncode == 3
        assert "Neo4j is not running" in status.stdout
        assert _cli("stop", *common).stdout.strip() == "Neo4j is not running"
    finally:
        LocalNeo4j(state_dir, int(port)).stop()


def test_cli_reports_errors_without_traceback(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        result = _cli("start", "--state-dir", str(tmp_path / "s"), "--port", str(port))
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: port {port} on 127.0.0.1 is in use")
    assert "Traceback" not in result.stderr


_CHILD_SCRIPT = """
import sys, time
from pathlib import Path
from lineagehub.devdb import LocalNeo4j
db = LocalNeo4j(Path(sys.argv[1]), int(sys.argv[2]))
db.start()
print(db.status().pid, flush=True)
time.sleep(600)
"""


def test_child_server_shuts_down_cleanly_when_parent_dies(tmp_path: Path) -> None:
    state_dir = tmp_path / "neo4j"
    parent = subprocess.Popen(
        [sys.executable, "-c", _CHILD_SCRIPT, str(state_dir), str(free_port())],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        assert line.strip().isdigit(), f"parent did not report a pid: {line!r}"
        java_pid = int(line)
        assert process_alive(java_pid)
        parent.kill()  # SIGKILL: no atexit, no cleanup in the parent
        parent.wait()
        assert _wait_gone(java_pid, 30), "server outlived its parent"
        assert (state_dir / "neo4j.log").read_text().rstrip().endswith(STOPPED_LINE)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
    # the stale pid file left by the dead parent is detected
    assert "which is gone" in LocalNeo4j(state_dir).status().message


def test_missing_tools_give_actionable_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("LINEAGEHUB_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(DevDbError, match=r"no 'java' was found.*set JAVA_HOME"):
        find_java()
    with pytest.raises(DevDbError, match=r"Maven \('mvn'\) was not found on PATH.*Install Maven"):
        ensure_jars()
    assert jar_dir() == tmp_path / "cache" / "neo4j-5.26.21" / "lib"
    assert not jar_dir().exists()


def test_ensure_jars_downloads_once_for_concurrent_callers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("LINEAGEHUB_CACHE_DIR", str(tmp_path / "cache"))
    caplog.set_level(logging.INFO, logger="lineagehub.devdb")
    results: list[Path] = []
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            results.append(ensure_jars())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert errors == []
    lib = tmp_path / "cache" / "neo4j-5.26.21" / "lib"
    assert results == [lib, lib, lib]
    assert (lib / "neo4j-5.26.21.jar").is_file()
    assert (lib / "neo4j-bolt-5.26.21.jar").is_file()
    assert len(list(lib.glob("*.jar"))) > 150
    downloads = [r for r in caplog.records if r.getMessage().startswith("downloading Neo4j")]
    assert len(downloads) == 1
    assert sorted(p.name for p in lib.parent.iterdir()) == [".lock", "lib"]
    assert ensure_jars() == lib

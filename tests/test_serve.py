"""`lineagehub serve` as a user runs it: a real process, real ports, clean shutdown."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.conftest import Neo4jServer, _free_port, process_alive


def _serve(env: dict[str, str], *args: str) -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    full = {**os.environ, **env, "LINEAGEHUB_PORT": str(port), "LINEAGEHUB_LOG_FORMAT": "json"}
    process = subprocess.Popen(
        [sys.executable, "-m", "lineagehub.cli", "serve", *args],
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return process, f"http://127.0.0.1:{port}"


def _wait_ready(process: subprocess.Popen[str], url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise AssertionError("lineagehub serve did not become ready")


def _messages(output: str) -> set[str]:
    """The messages of the JSON log lines in ``output``."""
    found = set()
    for line in output.splitlines():
        if line.startswith("{"):
            found.add(json.loads(line)["message"])
    return found


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    return output


def test_serve_against_a_configured_neo4j(neo4j_server: Neo4jServer) -> None:
    env = {"LINEAGEHUB_NEO4J_URI": neo4j_server.uri}
    if neo4j_server.user:
        env |= {
            "LINEAGEHUB_NEO4J_USER": neo4j_server.user,
            "LINEAGEHUB_NEO4J_PASSWORD": neo4j_server.password or "",
        }
    process, url = _serve(env)
    try:
        _wait_ready(process, url, timeout=60)
        answer = httpx.post(f"{url}/graphql", json={"query": "{ registeredModels { totalCount } }"})
        assert answer.status_code == 200
        assert "errors" not in answer.json()
    finally:
        output = _stop(process)
    assert f"GraphiQL at {url}/graphql" in output
    assert "POST /graphql 200" in _messages(output)


def test_serve_starts_and_stops_its_own_neo4j_when_no_uri_is_set(tmp_path: Path) -> None:
    env = {
        "LINEAGEHUB_HOME": str(tmp_path),
        "LINEAGEHUB_NEO4J_PORT": str(_free_port()),
        "LINEAGEHUB_NEO4J_URI": "",
    }
    process, url = _serve(env)
    try:
        _wait_ready(process, url, timeout=180)
    finally:
        output = _stop(process)
    assert "starting the local Neo4j" in output
    launchers = subprocess.run(
        ["pgrep", "-f", f"Launcher.java.*{tmp_path}"], capture_output=True, text=True
    )
    assert launchers.stdout == "", "serve left its Neo4j running"


def _neo4j_env(neo4j_server: Neo4jServer) -> dict[str, str]:
    env = {"LINEAGEHUB_NEO4J_URI": neo4j_server.uri}
    if neo4j_server.user:
        env |= {
            "LINEAGEHUB_NEO4J_USER": neo4j_server.user,
            "LINEAGEHUB_NEO4J_PASSWORD": neo4j_server.password or "",
        }
    return env


def _tcp_states(port: int) -> dict[str, str]:
    """Socket inode -> TCP state (hex, as the kernel writes it) of sockets on local ``port``."""
    states = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in rows.readlines()[1:]:
                fields = row.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port:
                    states[fields[9]] = fields[3]
    return states


def _sockets_by_worker(process: subprocess.Popen[str], port: int) -> dict[int, Counter[str]]:
    """For each child of ``serve`` listening on ``port``: its sockets there, by state."""
    children = subprocess.run(
        ["pgrep", "-P", str(process.pid)], capture_output=True, text=True
    ).stdout.split()
    states = _tcp_states(port)
    found: dict[int, Counter[str]] = {}
    for pid in map(int, children):
        held: Counter[str] = Counter()
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:  # gone since pgrep saw it (a worker just killed, say)
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            inode = target.removeprefix("socket:[").removesuffix("]")
            if inode in states:
                held["listen" if states[inode] == "0A" else "established"] += 1
        if held["listen"]:
            found[pid] = held
    return found


def _wait_workers(process: subprocess.Popen[str], port: int, count: int) -> dict[int, Counter[str]]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        workers = _sockets_by_worker(process, port)
        if len(workers) == count:
            return workers
        time.sleep(0.2)
    raise AssertionError(f"expected {count} listening workers, saw {workers}")


def _serve_workers(neo4j_server: Neo4jServer, **env: str) -> tuple[subprocess.Popen[str], str, int]:
    """``serve --workers 2``, ready, both workers listening: (process, url, port)."""
    process, url = _serve(_neo4j_env(neo4j_server) | env, "--workers", "2")
    port = int(url.rsplit(":", 1)[1])
    try:
        _wait_ready(process, url, timeout=90)
        _wait_workers(process, port, 2)
    except BaseException:
        process.kill()
        raise
    return process, url, port


linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="workers get a socket each on Linux only"
)


def test_serve_with_several_stateless_workers(neo4j_server: Neo4jServer) -> None:
    process, url = _serve(_neo4j_env(neo4j_server), "--workers", "2")
    try:
        _wait_ready(process, url, timeout=90)
        # A write through one worker is read through whichever answers next.
        for i in range(6):
            created = httpx.post(
                f"{url}/graphql",
                json={
                    "query": f'mutation {{ createExperiment(input: {{name: "w{i}"}}) {{ id }} }}'
                },
            )
            assert "errors" not in created.json(), created.json()
            seen = httpx.post(
                f"{url}/graphql", json={"query": f'{{ experiment(name: "w{i}") {{ name }} }}'}
            )
            assert seen.json()["data"]["experiment"] == {"name": f"w{i}"}
    finally:
        output = _stop(process)
    assert "POST /graphql 200" in _messages(output), "workers log as configured"


@linux_only
def test_workers_share_a_burst_of_new_connections(neo4j_server: Neo4jServer) -> None:
    """A client pool opening 40 keep-alive connections at once lands on both workers.

    With one listening socket shared by the workers (uvicorn's own ``--workers``), whichever
    worker woke first could take most of the burst (38 of 40 in one try), and kept it for as long as
    the connections lived: one worker busy, the other idle. (The workers' own balancing is
    off here: this is what the kernel does.)
    """
    process, _, port = _serve_workers(neo4j_server, LINEAGEHUB_BALANCE_CONNECTIONS="false")
    clients = [socket.socket() for _ in range(40)]
    try:
        for client in clients:  # all connect before any worker gets to accept
            client.setblocking(False)
            client.connect_ex(("127.0.0.1", port))
        for client in clients:
            client.setblocking(True)
            client.settimeout(10)
            client.sendall(b"GET /readyz HTTP/1.1\r\nHost: lineagehub\r\n\r\n")
        for client in clients:
            assert client.recv(65536).startswith(b"HTTP/1.1 200 "), "keep-alive answer"
        held = _sockets_by_worker(process, port)
        assert sum(c["established"] for c in held.values()) == 40, held
        # A fair split is 20 each; the kernel hashes connections, so allow a wide margin
        # (fewer than 5 on one happens by chance about once in 5 million runs).
        assert all(c["established"] >= 5 for c in held.values()), held
    finally:
        for client in clients:
            client.close()
        _stop(process)


@linux_only
def test_a_worker_that_dies_is_replaced(neo4j_server: Neo4jServer) -> None:
    process, url, port = _serve_workers(neo4j_server)
    try:
        before = _sockets_by_worker(process, port)
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            now = _sockets_by_worker(process, port)
            if len(now) == 2 and victim not in now:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"worker {victim} was not replaced: {now}")
        for _ in range(10):  # fresh connections reach both, the new worker ready or queued
            answer = httpx.post(
                f"{url}/graphql", json={"query": "{ registeredModels { totalCount } }"}
            )
            assert "errors" not in answer.json(), answer.json()
    finally:
        output = _stop(process)
    assert "exited with code -9: starting another" in output


def _ask(client: http.client.HTTPConnection) -> bool:
    """GET /readyz on ``client``'s keep-alive connection; whether the answer closed it."""
    client.request("GET", "/readyz")
    answer = client.getresponse()
    assert answer.status == 200 and json.loads(answer.read())["status"] == "ready"
    return answer.will_close  # http.client reconnects for the next request


@linux_only
def test_a_replacement_worker_gets_its_share_of_keep_alive_clients(
    neo4j_server: Neo4jServer,
) -> None:
    """Keep-alive clients left on one worker while the other is replaced spread out again.

    Without it, they would stay where they were for as long as their connections lived:
    one worker with every client, its replacement idle. The worker over its share closes
    connections after their answers; the clients reconnect wherever the kernel places them.
    """
    # (Logging every request would fill the pipe the test reads the server's output from.)
    process, _, port = _serve_workers(neo4j_server, LINEAGEHUB_LOG_LEVEL="warning")
    clients = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(40)]
    try:
        victim = min(_sockets_by_worker(process, port))
        os.kill(victim, signal.SIGKILL)
        # Its replacement starts a second after the supervisor notices: until then, one
        # worker listens, and every client connects to it. (Until the supervisor notices,
        # within 0.2 s, the survivor still counts the dead worker's connections as held,
        # and may close a few of its own; they come back to it.)
        deadline = time.monotonic() + 10
        while victim in _sockets_by_worker(process, port) and time.monotonic() < deadline:
            time.sleep(0.02)
        # The supervisor looks every 0.2 s: once it has seen the death, the survivor stops
        # counting the dead worker, and the replacement is still a second away.
        time.sleep(0.4)
        assert sum(_ask(client) for client in clients) == 0, "alone, the survivor keeps all"
        held = _sockets_by_worker(process, port)
        split = [c["established"] for c in held.values()]
        assert split == [40], f"{held}: all on the survivor"
        _wait_workers(process, port, 2)

        closed = 0
        deadline = time.monotonic() + 60
        while split != [20, 20] and time.monotonic() < deadline:
            closed += sum(_ask(client) for client in clients)
            split = sorted(c["established"] for c in _sockets_by_worker(process, port).values())
        assert split == [20, 20], f"{split} after {closed} connections closed"
        assert closed >= 20, "at least the 20 over the survivor's share moved"
        # Even, nobody closes anything.
        for _ in range(3):
            assert sum(_ask(client) for client in clients) == 0
    finally:
        for client in clients:
            client.close()
        _stop(process)


def _serve_until_exit(neo4j_server: Neo4jServer, port: int) -> subprocess.CompletedProcess[str]:
    """``serve --workers 2`` on ``port``, expected to give up by itself."""
    return subprocess.run(
        [sys.executable, "-m", "lineagehub.cli", "serve", "--workers", "2"],
        env={**os.environ, **_neo4j_env(neo4j_server), "LINEAGEHUB_PORT": str(port)},
        capture_output=True,
        text=True,
        timeout=60,
    )


@linux_only
def test_serve_refuses_a_port_something_already_listens_on(neo4j_server: Neo4jServer) -> None:
    port = _free_port()
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = _serve_until_exit(neo4j_server, port)
    assert result.returncode == 1
    assert f"127.0.0.1:{port} is already in use" in result.stdout + result.stderr


@linux_only
def test_serve_stops_when_a_worker_cannot_start(neo4j_server: Neo4jServer) -> None:
    """A socket bound to the port (not listening) lets the supervisor start, but no worker
    can bind: the server stops with uvicorn's start-up failure code rather than retrying."""
    port = _free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        result = _serve_until_exit(neo4j_server, port)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "failed to start: stopping" in result.stdout + result.stderr


@linux_only
def test_workers_die_with_a_killed_supervisor(neo4j_server: Neo4jServer) -> None:
    process, _, port = _serve_workers(neo4j_server)
    try:
        workers = _sockets_by_worker(process, port)
        process.kill()  # no chance to stop them itself
        process.wait(timeout=10)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and [p for p in workers if process_alive(p)]:
            time.sleep(0.2)
        assert not [p for p in workers if process_alive(p)], "workers outlived their supervisor"
    finally:
        if process.poll() is None:
            process.kill()
        if process.stdout:
            process.stdout.close()

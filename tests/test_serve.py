"""`lineagehub serve` as a user runs it: a real process, real ports, clean shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import Neo4jServer, _free_port


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
    assert '"message": "POST /graphql 200"' in output


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


def test_serve_with_several_stateless_workers(neo4j_server: Neo4jServer) -> None:
    env = {"LINEAGEHUB_NEO4J_URI": neo4j_server.uri}
    if neo4j_server.user:
        env |= {
            "LINEAGEHUB_NEO4J_USER": neo4j_server.user,
            "LINEAGEHUB_NEO4J_PASSWORD": neo4j_server.password or "",
        }
    process, url = _serve(env, "--workers", "2")
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
        _stop(process)

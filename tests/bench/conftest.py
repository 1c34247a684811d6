"""A tiny generated registry for the bench smoke tests, loaded once per module.

These fixtures never request ``db`` or ``api``: the suite's autouse fixture would wipe the
graph before each test that does.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest

from bench import generate, plan
from tests.conftest import Neo4jServer

NODES = 1000
SEED = 7


@pytest.fixture(scope="module")
def neo4j_uri(neo4j_server: Neo4jServer) -> Iterator[str]:
    """The session's Neo4j, with its credentials where the benches look for them."""
    saved = {k: os.environ.get(k) for k in ("LINEAGEHUB_NEO4J_USER", "LINEAGEHUB_NEO4J_PASSWORD")}
    if neo4j_server.user is not None:
        os.environ["LINEAGEHUB_NEO4J_USER"] = neo4j_server.user
        os.environ["LINEAGEHUB_NEO4J_PASSWORD"] = neo4j_server.password or ""
    yield neo4j_server.uri
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def tiny_graph(neo4j_uri: str) -> tuple[plan.Registry, generate.LoadStats]:
    """A 1,000-node registry, generated (and verified) into the session's Neo4j."""
    return asyncio.run(
        generate.generate(neo4j_uri, NODES, SEED, wipe_first=True, batch=300, quiet=True)
    )

"""Fixtures shared by the tests of what pipelines report (OpenLineage, column lineage)."""

from __future__ import annotations

from typing import Any

import neo4j
import pytest

from lineagehub.settings import Settings
from tests.conftest import Api, ThreadedServer, make_token


@pytest.fixture
def writer(server: ThreadedServer, settings: Settings, db: neo4j.Driver) -> str:
    """A writer token's secret, as a pipeline would send it."""
    _, secret = make_token(settings, "airflow", ["writer"])
    return secret


@pytest.fixture
def graph(as_role: Any) -> Api:
    """A reader's GraphQL client."""
    reader: Api = as_role("reader")
    return reader

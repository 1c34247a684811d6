"""Column lineage costs follow the answer, not the graph: the walk starts from its dataset
(an index seek), never from a scan of every column. Profiled on the real planner, with
3,000 columns of other datasets about."""

from __future__ import annotations

from typing import Any

import neo4j
import pytest

from lineagehub.graph import columns
from lineagehub.graph.lineage import Direction
from tests.graph.test_listing_plans import leaf_rows

# The server's start-up creates the constraints and indexes these plans rely on.
pytestmark = pytest.mark.usefixtures("server")


@pytest.fixture
def graph(db: neo4j.Driver) -> None:
    db.execute_query(
        # a small chain: ds_a.c0 <- ds_b.c0, ds_b.c1
        "CREATE (a:Node:Dataset {id: 'ds_a', name: 'a', state: 'LIVE'}), "
        "       (b:Node:Dataset {id: 'ds_b', name: 'b', state: 'LIVE'}) "
        "CREATE (a)-[:HAS_FIELD]->(a0:DatasetField {datasetId: 'ds_a', name: 'c0'}) "
        "CREATE (b)-[:HAS_FIELD]->(b0:DatasetField {datasetId: 'ds_b', name: 'c0'}) "
        "CREATE (b)-[:HAS_FIELD]->(b1:DatasetField {datasetId: 'ds_b', name: 'c1'}) "
        "CREATE (b0)-[:FEEDS {reporter: 'r', direct: true}]->(a0), "
        "       (b1)-[:FEEDS {reporter: 'r', direct: true}]->(a0) "
        # and many columns of other datasets, fed by each other
        "WITH 1 AS one UNWIND range(1, 1500) AS i "
        "CREATE (d:Node:Dataset {id: 'ds_o' + i, name: 'o' + i, state: 'LIVE'}) "
        "CREATE (d)-[:HAS_FIELD]->(x:DatasetField {datasetId: d.id, name: 'x'}) "
        "CREATE (d)-[:HAS_FIELD]->(y:DatasetField {datasetId: d.id, name: 'y'}) "
        "CREATE (x)-[:FEEDS {reporter: 'r', direct: true}]->(y)"
    )


@pytest.mark.parametrize("named", [None, ["c0"]])
def test_the_walk_starts_at_its_dataset(
    graph: None, db: neo4j.Driver, named: list[str] | None
) -> None:
    params: dict[str, Any] = {
        "starts": ["ds_a"],
        "columns": named,
        "limit": 200,
        "room": 201,
        "maxStarts": columns.MAX_COLUMNS,
        "indirect": True,
        "skipProps": [],
        "keepProps": None,
    }
    records, summary, _ = db.execute_query(
        "PROFILE " + columns._query(Direction.UPSTREAM, 5), params
    )
    (row,) = records
    assert sorted(name for _, name, degree in row["columns"] if degree == 1) == ["c0", "c1"]
    assert leaf_rows(summary.profile) < 30, summary.profile

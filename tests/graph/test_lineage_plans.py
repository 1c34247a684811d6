"""Lineage starts are index seeks and the walk expands directed edges level by level.

Checked on the real planner (EXPLAIN), so cost follows the answer, not the graph.
"""

from __future__ import annotations

from typing import Any

import neo4j
import pytest

from lineagehub.graph.lineage import Direction, _path_query, _subgraph_query
from lineagehub.graph.vocabulary import LINEAGE_EDGE_TYPES

# The server's start-up creates the constraints whose indexes these plans rely on.
pytestmark = pytest.mark.usefixtures("server")


def operators(plan: Any) -> set[str]:
    found = {plan.operator_type.split("@")[0]} if hasattr(plan, "operator_type") else set()
    if isinstance(plan, dict):
        found = {plan["operatorType"].split("@")[0]}
        children = plan.get("children", [])
    else:
        children = plan.children
    for child in children:
        found |= operators(child)
    return found


@pytest.mark.parametrize(
    "directions",
    [(Direction.UPSTREAM,), (Direction.DOWNSTREAM,), (Direction.UPSTREAM, Direction.DOWNSTREAM)],
)
def test_subgraph_query_seeks_its_start_and_walks_directed_edges(
    db: neo4j.Driver, directions: tuple[Direction, ...]
) -> None:
    query = _subgraph_query(directions, LINEAGE_EDGE_TYPES, 6, "r.until IS NULL", True, True)
    _, summary, _ = db.execute_query(
        "EXPLAIN " + query,
        {
            "starts": ["mv_x"],
            "limit": 10,
            "nodeTypes": [],
            "since": None,
            "until": None,
            "scope": ["a"],
            "withPaths": False,
        },
    )
    ops = operators(summary.plan)
    assert "NodeUniqueIndexSeek" in ops, ops
    # Level by level along directed, typed edges: no path enumeration, no undirected search.
    assert "Expand(All)" in ops, ops
    assert not {"VarLengthExpand(All)", "StatefulShortestPath(All)"} & ops, ops
    assert not {"AllNodesScan", "NodeByLabelScan"} & ops, ops


def test_path_query_seeks_both_ends(db: neo4j.Driver) -> None:
    _, summary, _ = db.execute_query(
        "EXPLAIN " + _path_query(LINEAGE_EDGE_TYPES, 6, True),
        {"from": "a", "to": "b", "scope": ["a"]},
    )
    ops = operators(summary.plan)
    assert "NodeUniqueIndexSeek" in ops, ops
    assert not {"AllNodesScan", "NodeByLabelScan"} & ops, ops

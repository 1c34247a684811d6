"""A page of a long top-level list, sorted on an indexed field, is read off the index
from where it starts and stops after a page: its cost follows the page, not the list.

Profiled on the real planner, on 3,000 versions."""

from __future__ import annotations

from typing import Any

import neo4j
import pytest

from lineagehub.graph.listing import Page, Sort, page_query
from lineagehub.graph.models import MODELS
from lineagehub.graph.versions import ALL_VERSIONS

# The server's start-up creates the indexes these plans rely on.
pytestmark = pytest.mark.usefixtures("server")

COUNT = 3000


def leaf_rows(plan: Any) -> int:
    """Rows the plan's leaves produced (what it read from the store)."""
    children = plan.get("children", [])
    if not children:
        return int(plan.get("rows", 0))
    return sum(leaf_rows(child) for child in children)


def profiled(db: neo4j.Driver, query: str, params: dict[str, Any]) -> tuple[list[Any], Any]:
    records, summary, _ = db.execute_query("PROFILE " + query, params)
    return records[0]["items"], summary.profile


@pytest.fixture
def many(db: neo4j.Driver) -> None:
    db.execute_query(
        "CREATE (m:Node:RegisteredModel {id: 'rm_x', name: 'm', createdAt: datetime()}) "
        "WITH m UNWIND range(1, $n) AS i "
        "CREATE (m)-[:HAS_VERSION]->(:Node:ModelVersion {id: 'mv_' + toString(100000 + i), "
        "name: toString(i), modelId: m.id, state: 'LIVE', "
        "createdAt: datetime('2026-01-01T00:00:00Z') + duration({seconds: i / 2})})",
        {"n": COUNT},
    )


@pytest.mark.parametrize("descending", [True, False])
def test_a_page_deep_in_a_long_list_reads_a_page(
    db: neo4j.Driver, many: None, descending: bool
) -> None:
    sorts = (Sort("createdAt", descending=descending),)
    query, params, _ = page_query(
        ALL_VERSIONS, flt=None, sorts=sorts, page=Page(first=20), with_total=False
    )
    first, plan = profiled(db, query, params.values)
    assert len(first) == 21 and leaf_rows(plan) <= 30, leaf_rows(plan)
    # Deep in: after the 1,500th (times tie in pairs: the id breaks them).
    records, _, _ = db.execute_query(
        "MATCH (n:ModelVersion) RETURN [toString(n.createdAt), n.id] AS key "
        f"ORDER BY n.createdAt {'DESC' if descending else 'ASC'}, n.id SKIP 1499 LIMIT 21"
    )
    expected = [r["key"] for r in records]
    page = Page(first=20, after=tuple(expected[0]))
    query, params, _ = page_query(ALL_VERSIONS, flt=None, sorts=sorts, page=page, with_total=False)
    items, plan = profiled(db, query, params.values)
    assert [k for _, k in items][:20] == expected[1:]
    assert leaf_rows(plan) <= 30, leaf_rows(plan)


def test_a_list_without_such_an_index_still_pages(db: neo4j.Driver, many: None) -> None:
    # Models by owner: no index keeps owners in order, so the whole list is sorted.
    query, params, _ = page_query(
        MODELS, flt=None, sorts=(Sort("owner"),), page=Page(first=5), with_total=False
    )
    items, _ = profiled(db, query, params.values)
    assert len(items) == 1

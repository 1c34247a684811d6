"""The registry event log is read and written by index seeks, never a scan of the log:
a write's cost, and a page's, must not grow with the number of events kept."""

from __future__ import annotations

from typing import Any

import neo4j
import pytest

from lineagehub.graph import events, webhooks
from tests.graph.test_lineage_plans import operators

pytestmark = pytest.mark.usefixtures("server")

SCANS = {"AllNodesScan", "NodeByLabelScan"}


def scanned_labels(plan: Any) -> set[str]:
    """Labels the plan scans (by label or all nodes)."""
    found = set()
    name = plan["operatorType"].split("@")[0]
    if name in SCANS:
        found.add(plan.get("args", {}).get("Details", name))
    for child in plan.get("children", []):
        found |= scanned_labels(child)
    return found


def test_writing_events_seeks(db: neo4j.Driver) -> None:
    _, summary, _ = db.execute_query(
        f"EXPLAIN MATCH (e:AuditEvent {{id: 'aud_x'}}) WITH e {events.WRITE_EVENTS} RETURN 1",
        {"registryEvents": [{"id": "evt_x", "type": "VERSION_REGISTERED", "versionId": "mv_x"}]},
    )
    ops = operators(summary.plan)
    assert not SCANS & ops, ops


def test_numbering_reads_only_what_waits(db: neo4j.Driver) -> None:
    _, summary, _ = db.execute_query("EXPLAIN " + events.NUMBER, {"batch": 10})
    ops = operators(summary.plan)
    assert "NodeUniqueIndexSeekByRange" in ops, ops  # the newest event, when the counter is new
    # The only scan is of the events waiting for a number (a handful), never of the log.
    assert {d.split(":")[-1].strip() for d in scanned_labels(summary.plan)} == {"Unnumbered"}


@pytest.mark.parametrize("filtered", [False, True])
def test_reading_a_page_seeks(db: neo4j.Driver, filtered: bool) -> None:
    where = " AND r.type IN $types AND r.modelName = $model" if filtered else ""
    _, summary, _ = db.execute_query(
        "EXPLAIN " + events._PAGE.replace("{where}", where),
        {"after": 0, "limit": 10, "types": ["VERSION_APPROVED"], "model": "m"},
    )
    ops = operators(summary.plan)
    assert "NodeUniqueIndexSeekByRange" in ops, ops
    assert not SCANS & ops, ops


def test_finding_due_webhooks_reads_webhooks_only(db: neo4j.Driver) -> None:
    _, summary, _ = db.execute_query(
        "EXPLAIN " + webhooks._DUE + "RETURN count(w)", {"now": None, "owner": "x"}
    )
    ops = operators(summary.plan)
    assert "AllNodesScan" not in ops, ops


def test_pruning_reads_the_oldest_events_by_the_seq_index(db: neo4j.Driver) -> None:
    _, summary, _ = db.execute_query(
        "EXPLAIN " + events.PRUNE, {"cutoff": None, "batch": events.PRUNE_BATCH}
    )
    ops = operators(summary.plan)
    # From the low end of the seq index, in its order: never a scan or a sort of the log.
    assert "NodeUniqueIndexSeekByRange" in ops, ops
    assert not SCANS & ops and not {"Sort", "PartialSort", "Top"} & ops, ops

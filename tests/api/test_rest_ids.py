"""REST ids: every node a registration creates is numbered when it commits, and ids that
something else took meanwhile (a bulk load numbering its own nodes) are skipped."""

from __future__ import annotations

import neo4j

from tests.api.fragments import REGISTER
from tests.api.test_register_model import BULK, _with_run, bulk_items
from tests.conftest import Api


def rest_ids(db: neo4j.Driver) -> list[int]:
    records, _, _ = db.execute_query("MATCH (n:Node) RETURN n.restId AS id")
    return [r["id"] for r in records]


def test_ids_taken_behind_the_process_back_are_skipped(api: Api, db: neo4j.Driver) -> None:
    api(BULK, {"inputs": bulk_items("a", 3)})
    numbered = rest_ids(db)
    assert (
        None not in numbered and len(set(numbered)) == len(numbered) == 9
    )  # 3 models, versions, artifacts
    top = max(numbered)
    # A loader numbers its own node with the next id, one of those the process holds.
    db.execute_query(
        "CREATE (:Node:RegisteredModel {id: 'rm_loaded', name: 'loaded', restId: $id})",
        {"id": top + 1},
    )
    api(BULK, {"inputs": bulk_items("b", 3)})
    again = rest_ids(db)
    assert None not in again and len(set(again)) == len(again) == 16
    assert min(set(again) - set(numbered) - {top + 1}) > top + 1


def test_run_log_ids_taken_behind_the_process_back_are_skipped(api: Api, db: neo4j.Driver) -> None:
    """A registration's run logs are numbered in the query that writes them; when the ids
    the process holds were taken meanwhile, that query writes nothing and they are
    allocated again."""
    api(REGISTER, {"input": _with_run("v1", datasets=1, code=0)})
    records, _, _ = db.execute_query(
        "MATCH (n) WHERE n:Node OR n:RunLog RETURN max(n.restId) AS top, count(n) AS n"
    )
    top = records[0]["top"]
    db.execute_query(
        "CREATE (:Node:RegisteredModel {id: 'rm_loaded', name: 'loaded', restId: $id})",
        {"id": top + 1},
    )
    answer = api.post(REGISTER, {"input": _with_run("v2", datasets=1, code=0)})
    assert not answer.errors, answer.errors
    records, _, _ = db.execute_query(
        "MATCH (r:ExperimentRun {name: 'run-v2'})-[:LOGGED]->(l:RunLog) "
        "RETURN collect(l.restId) AS logs"
    )
    logs = records[0]["logs"]
    assert len(logs) == 2 and None not in logs  # a param and a metric
    assert min(logs) > top + 1
    records, _, _ = db.execute_query(
        "MATCH (n) WHERE n:Node OR n:RunLog RETURN collect(n.restId) AS ids"
    )
    ids = records[0]["ids"]
    assert None not in ids and len(set(ids)) == len(ids)

"""Approvals and aliases with history, through HTTP with a token per role."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from typing import Any

import neo4j
import pytest

from tests.api.fragments import REGISTER
from tests.conftest import Api, Client

APPROVE = """mutation($v: ID!, $c: String) { approveModelVersion(versionId: $v, comment: $c) {
    version { approvalStatus } decision { status actor at comment } } }"""
REQUEST = """mutation($v: ID!) { requestApproval(versionId: $v, comment: "please") {
    version { approvalStatus } } }"""
REJECT = """mutation($v: ID!) { rejectModelVersion(versionId: $v, comment: "bias") {
    version { approvalStatus } } }"""
SET_ALIAS = """mutation($a: String!, $v: String!, $r: String) {
    setAlias(model: "churn-predictor", alias: $a, version: $v, reason: $r) {
      alias actor reason from { name } to { name } } }"""


def register(api: Api, version: str, author: str = "ana") -> str:
    data = api(
        REGISTER,
        {
            "input": {
                "model": {"name": "churn-predictor"},
                "version": {"name": version, "author": author},
                "artifact": {"uri": f"s3://m/{version}"},
            }
        },
    )
    version_id: str = data["registerModel"]["version"]["id"]
    return version_id


@pytest.fixture
def team(as_role: Any) -> dict[str, Client]:
    return {
        "ana": as_role("writer", name="ana"),
        "bo": as_role("approver", name="bo"),
        "carl": as_role("reader", name="carl"),
        "root": as_role("admin", name="root"),
    }


def test_approval_flow_and_its_history(team: dict[str, Client]) -> None:
    ana, bo = team["ana"], team["bo"]
    v1 = register(ana, "v1")
    assert ana(REQUEST, {"v": v1})["requestApproval"]["version"]["approvalStatus"] == "PENDING"
    approved = bo(APPROVE, {"v": v1, "c": "looks good"})["approveModelVersion"]
    assert approved["version"]["approvalStatus"] == "APPROVED"
    assert approved["decision"]["actor"] == "bo"
    assert approved["decision"]["comment"] == "looks good"
    history = bo(
        """query($v: ID!) { node(id: $v) { ... on ModelVersion {
              approvalStatus approval { status actor } approvalHistory { status actor comment } } } }""",
        {"v": v1},
    )["node"]
    assert history["approval"] == {"status": "APPROVED", "actor": "bo"}
    assert history["approvalHistory"] == [
        {"status": "APPROVED", "actor": "bo", "comment": "looks good"},
        {"status": "PENDING", "actor": "ana", "comment": "please"},
    ]
    again = ana.fails(REQUEST, {"v": v1})
    assert again["extensions"]["code"] == "CONFLICT"
    assert bo(REJECT, {"v": v1})["rejectModelVersion"]["version"]["approvalStatus"] == "REJECTED"
    audit = bo(
        '{ auditEvents(filter: {action: "approveModelVersion"}) { nodes { actor targetIds } } }'
    )
    assert audit["auditEvents"]["nodes"] == [{"actor": "bo", "targetIds": [v1]}]


def test_only_approvers_approve_and_not_their_own_work(
    team: dict[str, Client], as_role: Any
) -> None:
    ana, bo, carl = team["ana"], team["bo"], team["carl"]
    v1 = register(ana, "v1")
    by_writer = ana.fails(APPROVE, {"v": v1})
    assert by_writer["extensions"]["code"] == "FORBIDDEN"
    assert by_writer["extensions"]["missingRole"] == "approver"
    by_reader = carl.fails(REQUEST, {"v": v1})
    assert by_reader["extensions"]["missingRole"] == "writer"
    v2 = register(team["root"], "v2", author="bo")
    own = bo.fails(APPROVE, {"v": v2})
    assert own["extensions"]["code"] == "FORBIDDEN"
    assert "authored this version" in own["message"]
    status = carl(
        "query($v: ID!) { node(id: $v) { ... on ModelVersion { approvalStatus } } }", {"v": v2}
    )
    assert status["node"]["approvalStatus"] == "NONE"


def test_aliases_keep_their_history_and_answer_as_of(team: dict[str, Client]) -> None:
    ana = team["ana"]
    register(ana, "v1")
    register(ana, "v2")
    first = ana(SET_ALIAS, {"a": "champion", "v": "v1"})["setAlias"]
    assert first == {
        "alias": "champion",
        "actor": "ana",
        "reason": None,
        "from": None,
        "to": {"name": "v1"},
    }
    moved = ana(SET_ALIAS, {"a": "champion", "v": "v2", "r": "better AUC"})["setAlias"]
    assert moved["from"] == {"name": "v1"}
    assert moved["to"] == {"name": "v2"}
    data = ana(
        """{ modelVersion(ref: "churn-predictor@champion") { name aliases }
             registeredModel(name: "churn-predictor") { aliases { name version { name } updatedBy } }
             aliasHistory(model: "churn-predictor", alias: "champion") {
               at actor reason from { name } to { name } } }"""
    )
    assert data["modelVersion"] == {"name": "v2", "aliases": ["champion"]}
    assert data["registeredModel"]["aliases"] == [
        {"name": "champion", "version": {"name": "v2"}, "updatedBy": "ana"}
    ]
    history = data["aliasHistory"]
    assert [(h["from"], h["to"]) for h in history] == [
        ({"name": "v1"}, {"name": "v2"}),
        (None, {"name": "v1"}),
    ]
    between = ana(
        """query($at: DateTime!) { aliasAt(model: "churn-predictor", alias: "champion", at: $at) { name } }""",
        {"at": history[1]["at"]},
    )
    assert between["aliasAt"] == {"name": "v1"}
    before = ana(
        """{ aliasAt(model: "churn-predictor", alias: "champion", at: "2000-01-01T00:00:00Z") { name } }"""
    )
    assert before["aliasAt"] is None
    removed = ana(
        """mutation { removeAlias(model: "churn-predictor", alias: "champion", reason: "retired") {
              from { name } to { name } } }"""
    )["removeAlias"]
    assert removed == {"from": {"name": "v2"}, "to": None}
    assert ana('{ modelVersion(ref: "churn-predictor@champion") { name } }')["modelVersion"] is None
    assert len(ana('{ aliasHistory(model: "churn-predictor") { at } }')["aliasHistory"]) == 3


def test_protected_aliases_need_an_approver_and_an_approved_version(
    team: dict[str, Client],
) -> None:
    ana, bo = team["ana"], team["bo"]
    v1 = register(ana, "v1")
    by_writer = ana.fails(SET_ALIAS, {"a": "production", "v": "v1"})
    assert by_writer["extensions"]["code"] == "FORBIDDEN"
    assert by_writer["extensions"]["missingRole"] == "approver"
    ana(REQUEST, {"v": v1})
    pending = bo.fails(SET_ALIAS, {"a": "production", "v": "v1"})
    assert pending["extensions"]["code"] == "CONFLICT"
    assert pending["extensions"]["field"] == "version"
    assert "PENDING" in pending["message"]
    bo(APPROVE, {"v": v1})
    assert bo(SET_ALIAS, {"a": "production", "v": "v1"})["setAlias"]["to"] == {"name": "v1"}


def test_concurrent_moves_of_one_alias_serialise(team: dict[str, Client], db: neo4j.Driver) -> None:
    ana = team["ana"]
    for name in ("v1", "v2", "v3"):
        register(ana, name)
    targets = ["v1", "v2", "v3"] * 4
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda v: ana.post(SET_ALIAS, {"a": "champion", "v": v}), targets))
    assert all(not r.errors for r in results), [r.errors for r in results]
    history = ana(
        '{ aliasHistory(model: "churn-predictor", alias: "champion") { from { name } to { name } } }'
    )["aliasHistory"]
    assert len(history) == len(targets)
    # Newest first: each move starts where the one before it ended; none was lost.
    for newer, older in pairwise(history):
        assert newer["from"] == older["to"]
    assert history[-1]["from"] is None
    records, _, _ = db.execute_query("MATCH (a:Alias {name: 'champion'}) RETURN count(a) AS n")
    assert records[0]["n"] == 1


def test_unapproved_deployments(team: dict[str, Client]) -> None:
    root = team["root"]
    v1 = register(root, "v1", author="x")
    v2 = register(root, "v2", author="x")
    env = root('mutation { createServingEnvironment(input: {name: "prod"}) { id } }')[
        "createServingEnvironment"
    ]["id"]
    for name, version in (("a", v1), ("b", v2)):
        root(
            "mutation($e: ID!, $n: String!, $v: ID!) { createInferenceService(input: "
            "{environmentId: $e, name: $n, modelVersionId: $v}) { id } }",
            {"e": env, "n": name, "v": version},
        )
    root(APPROVE, {"v": v1})
    found = root("{ unapprovedDeployments { name modelVersion { name approvalStatus } } }")
    assert found["unapprovedDeployments"] == [
        {"name": "b", "modelVersion": {"name": "v2", "approvalStatus": "NONE"}}
    ]

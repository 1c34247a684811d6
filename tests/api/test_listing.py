"""Connections: filters (AND/OR/NOT, ranges, custom properties), sorting, cursors, counts."""

from __future__ import annotations

import base64
import json
from typing import Any

import neo4j
import pytest

from tests.conftest import Api

SEED = """
UNWIND range(1, $n) AS i
CREATE (m:Node:RegisteredModel {
  id: 'rm_' + right('00000000000000000000000000' + toString(i), 26),
  name: 'model-' + right('000' + toString(i), 3),
  owner: CASE WHEN i % 2 = 0 THEN 'ana' ELSE 'bo' END,
  state: CASE WHEN i % 5 = 0 THEN 'ARCHIVED' ELSE 'LIVE' END,
  tags: CASE WHEN i % 3 = 0 THEN ['nlp'] ELSE ['tabular'] END,
  createdAt: datetime('2026-01-01T00:00:00Z') + duration({days: i}),
  updatedAt: datetime('2026-01-01T00:00:00Z') + duration({days: i}),
  `cp.score`: toFloat(i) / $n,
  `cp.team`: CASE WHEN i <= 10 THEN 'red' ELSE 'blue' END
})
WITH m, i
UNWIND range(1, $versions) AS j
CREATE (m)-[:HAS_VERSION]->(v:Node:ModelVersion {
  id: 'mv_' + right('00000000000000000000000000' + toString(i * 100 + j), 26),
  name: 'v' + toString(j), modelId: m.id, state: 'LIVE',
  createdAt: m.createdAt + duration({hours: j}), updatedAt: m.createdAt + duration({hours: j}),
  `cp.accuracy`: 0.5 + j / 10.0
})
WITH v, j
UNWIND range(1, $artifacts) AS k
CREATE (v)-[:HAS_ARTIFACT]->(:Node:Artifact:ModelArtifact {
  id: 'ma_' + right(v.id, 24) + 'A' + toString(k),
  name: 'a' + toString(k), versionId: v.id, kind: 'ModelArtifact', state: 'LIVE',
  uri: 's3://x/' + v.id + '/' + toString(k),
  createdAt: v.createdAt, updatedAt: v.createdAt
})
"""


def seed(db: neo4j.Driver, n: int, versions: int = 0, artifacts: int = 0) -> None:
    db.execute_query(SEED, {"n": n, "versions": max(versions, 0), "artifacts": artifacts})
    if versions == 0:
        db.execute_query("MATCH (v:ModelVersion) DETACH DELETE v")


def names(api: Api, args: str, variables: dict[str, Any] | None = None) -> list[str]:
    declare = "($f: RegisteredModelFilter)" if "$f" in args else ""
    data = api(
        f"query{declare} {{ registeredModels({args}) {{ nodes {{ name }} }} }}", variables or {}
    )
    return [n["name"] for n in data["registeredModels"]["nodes"]]


def test_filters_combine_with_and_or_not(api: Api, db: neo4j.Driver) -> None:
    seed(db, 20)
    owned = names(api, 'filter: {owner: {eq: "ana"}, state: {eq: LIVE}}, first: 100')
    assert owned == [f"model-{i:03}" for i in range(1, 21) if i % 2 == 0 and i % 5 != 0]

    either = names(
        api,
        'filter: {OR: [{name: {endsWith: "01"}}, {name: {endsWith: "20"}}]}',
    )
    assert either == ["model-001", "model-020"]

    negated = names(
        api,
        'filter: {NOT: {OR: [{owner: {eq: "ana"}}, {tags: {contains: "nlp"}}]}}, first: 100',
    )
    assert negated == [f"model-{i:03}" for i in range(1, 21) if i % 2 == 1 and i % 3 != 0]

    nested = names(
        api,
        'filter: {AND: [{name: {in: ["model-002", "model-003", "model-004"]}},'
        ' {NOT: {name: {eq: "model-003"}}}]}',
    )
    assert nested == ["model-002", "model-004"]


def test_time_ranges_and_custom_properties(api: Api, db: neo4j.Driver) -> None:
    seed(db, 20)
    window = names(
        api,
        "filter: $f",
        {"f": {"createdAt": {"gte": "2026-01-05T00:00:00Z", "lt": "2026-01-08T00:00:00Z"}}},
    )
    assert window == ["model-004", "model-005", "model-006"]

    custom = names(
        api,
        "filter: $f, first: 100",
        {"f": {"customProperties": [{"key": "score", "gt": 0.8}, {"key": "team", "eq": "blue"}]}},
    )
    assert custom == ["model-017", "model-018", "model-019", "model-020"]

    missing = names(
        api, "filter: $f", {"f": {"customProperties": [{"key": "nope", "exists": True}]}}
    )
    assert missing == []


def test_sort_on_fields_and_custom_properties(api: Api, db: neo4j.Driver) -> None:
    seed(db, 6)
    by_owner = names(api, "orderBy: [{field: OWNER, direction: DESC}, {field: NAME}]")
    assert by_owner == [
        "model-001",
        "model-003",
        "model-005",
        "model-002",
        "model-004",
        "model-006",
    ]
    by_score = names(api, 'orderBy: [{customProperty: "score", direction: DESC}], first: 2')
    assert by_score == ["model-006", "model-005"]
    error = api.fails(
        '{ registeredModels(orderBy: [{field: NAME, customProperty: "x"}]) { totalCount } }'
    )
    assert error["extensions"]["code"] == "VALIDATION"


def test_cursor_pagination_walks_every_item_once(api: Api, db: neo4j.Driver) -> None:
    seed(db, 23)
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        data = api(
            """query($after: String) { registeredModels(first: 5, after: $after) {
                 totalCount edges { cursor node { name } }
                 pageInfo { hasNextPage hasPreviousPage endCursor } } }""",
            {"after": after},
        )["registeredModels"]
        pages += 1
        assert data["totalCount"] == 23
        assert data["pageInfo"]["hasPreviousPage"] is (pages > 1)
        seen += [e["node"]["name"] for e in data["edges"]]
        if not data["pageInfo"]["hasNextPage"]:
            break
        after = data["pageInfo"]["endCursor"]
    assert pages == 5
    assert seen == [f"model-{i:03}" for i in range(1, 24)]


def walk(api: Api, args: str, size: int, between: Any = None) -> list[str]:
    """Every name of registeredModels(args), page by page, calling ``between`` after the
    first page."""
    seen: list[str] = []
    after = None
    while True:
        data = api(
            f"""query($after: String) {{ registeredModels({args}, first: {size}, after: $after) {{
                 nodes {{ name }} pageInfo {{ hasNextPage endCursor }} }} }}""",
            {"after": after},
        )["registeredModels"]
        seen += [n["name"] for n in data["nodes"]]
        if between is not None and after is None:
            between()
        if not data["pageInfo"]["hasNextPage"]:
            return seen
        after = data["pageInfo"]["endCursor"]


def test_pages_neither_repeat_nor_skip_when_items_come_and_go(api: Api, db: neo4j.Driver) -> None:
    """A cursor is its item's place in the order (its sort key), not a count of items:
    items added before it or removed before it move nothing after it."""
    seed(db, 12)
    newest_first = "orderBy: [{field: CREATED_AT, direction: DESC}]"

    def meanwhile() -> None:
        # Two newer models (sorting before the cursor), and one of the first page deleted.
        db.execute_query(
            "CREATE (:Node:RegisteredModel {id: 'rm_new1', name: 'new-1', state: 'LIVE', "
            "createdAt: datetime('2027-01-01T00:00:00Z'), updatedAt: datetime()}), "
            "(:Node:RegisteredModel {id: 'rm_new2', name: 'new-2', state: 'LIVE', "
            "createdAt: datetime('2027-01-02T00:00:00Z'), updatedAt: datetime()})"
        )
        db.execute_query("MATCH (m:RegisteredModel {name: 'model-011'}) SET m:Deleted")

    seen = walk(api, newest_first, 4, meanwhile)
    assert seen == [f"model-{i:03}" for i in range(12, 0, -1)]
    # Counted without the deleted one (unfiltered: from Neo4j's counts, not a scan).
    count = "query($f: RegisteredModelFilter) { registeredModels(filter: $f) { totalCount } }"
    assert api(count)["registeredModels"]["totalCount"] == 13
    live = {"state": {"eq": "LIVE"}}
    assert api(count, {"f": live})["registeredModels"]["totalCount"] == 13 - 2  # 5, 10


@pytest.mark.parametrize("direction", ["ASC", "DESC"])
def test_pages_follow_nulls_ties_and_nanoseconds(
    api: Api, db: neo4j.Driver, direction: str
) -> None:
    """Walking with small pages gives exactly the one big page: through nulls (last going
    up, first going down), ties (broken by id) and times a nanosecond apart."""
    seed(db, 9)
    db.execute_query(
        "MATCH (m:RegisteredModel) WITH m, toInteger(right(m.name, 3)) AS i "
        "SET m.owner = CASE WHEN i % 3 = 0 THEN null ELSE 'o' + toString(i % 2) END, "
        "m.createdAt = datetime('2026-05-01T00:00:00.000000001Z') "
        "+ duration({nanoseconds: i % 4})"
    )
    for order in (
        f"orderBy: [{{field: OWNER, direction: {direction}}}]",
        f"orderBy: [{{field: CREATED_AT, direction: {direction}}}, {{field: OWNER}}]",
    ):
        whole = names(api, f"{order}, first: 100")
        assert len(whole) == 9
        assert walk(api, order, 2) == whole, order


def test_cursors_of_another_order_or_made_up_are_refused(api: Api, db: neo4j.Driver) -> None:
    seed(db, 5)
    query = """query($after: String) { registeredModels(%s first: 2, after: $after) {
                 nodes { name } pageInfo { endCursor } } }"""
    by_name = api(query % "", {"after": None})["registeredModels"]["pageInfo"]["endCursor"]
    error = api.fails(query % "orderBy: [{field: OWNER}],", {"after": by_name})
    assert (error["extensions"]["code"], error["extensions"]["field"]) == ("VALIDATION", "after")
    assert "another list or order" in error["message"]
    # One made up in the right shape, with a time Neo4j would choke on.
    by_time = "orderBy: [{field: CREATED_AT}],"
    real = api(query % by_time, {"after": None})["registeredModels"]["pageInfo"]["endCursor"]
    text = base64.urlsafe_b64decode(real).decode()
    order, _, key = text[len("key:") :].partition(":")
    forged = json.dumps(["not a time", *json.loads(key)[1:]])
    made_up = base64.urlsafe_b64encode(f"key:{order}:{forged}".encode()).decode()
    error = api.fails(query % by_time, {"after": made_up})
    assert (error["extensions"]["code"], error["extensions"]["field"]) == ("VALIDATION", "after")
    # Made up deeper: an impossible date, a nested list, a digit that is not ASCII.
    impossible = json.dumps(["2024-13-45T99:99:99Z", *json.loads(key)[1:]])
    for text in (f"key:{order}:{impossible}", f"key:{order}:" + "[" * 5000, "offset:\u00b2"):
        bad = base64.urlsafe_b64encode(text.encode()).decode()
        error = api.fails(query % by_time, {"after": bad})
        assert (error["extensions"]["code"], error["extensions"]["field"]) == (
            "VALIDATION",
            "after",
        ), text
    # Offset cursors (given out before, and for orders on custom properties) still work.
    old = base64.urlsafe_b64encode(b"offset:1").decode()
    rest = api(query % "", {"after": old})["registeredModels"]["nodes"]
    assert [n["name"] for n in rest] == ["model-003", "model-004"]
    by_score = 'orderBy: [{customProperty: "score", direction: DESC}]'
    assert walk(api, by_score, 2) == [f"model-{i:03}" for i in range(5, 0, -1)]


def test_a_bad_cursor_fails_its_own_list_only(api: Api, db: neo4j.Driver) -> None:
    """Cursors are checked before the lists are read (together, in one query): one bad
    cursor is an error on its own list, and the list beside it is answered."""
    seed(db, 2, versions=3)
    versions = """versions(first: 1, after: $after, orderBy: [{field: CREATED_AT}])
                  { nodes { name } pageInfo { endCursor } }"""
    query = f"""query($after: String, $bad: String) {{
        good: registeredModel(name: "model-001") {{ {versions} }}
        bad: registeredModel(name: "model-002") {{ {versions.replace("$after", "$bad")} }} }}"""
    found = api(query, {"after": None, "bad": None})["good"]["versions"]
    text = base64.urlsafe_b64decode(found["pageInfo"]["endCursor"]).decode()
    order, _, key = text[len("key:") :].partition(":")
    forged = json.dumps(["2024-02-30T00:00:00Z", *json.loads(key)[1:]])
    bad = base64.urlsafe_b64encode(f"key:{order}:{forged}".encode()).decode()
    answer = api.post(query, {"after": found["pageInfo"]["endCursor"], "bad": bad})
    (error,) = answer.body["errors"]
    assert (error["extensions"]["code"], error["path"]) == ("VALIDATION", ["bad", "versions"])
    assert answer.body["data"]["good"]["versions"]["nodes"] == [{"name": "v2"}]


def test_nested_pages_walk_by_key_for_each_parent(api: Api, db: neo4j.Driver) -> None:
    seed(db, 2, versions=5)
    query = """query($after: String) { registeredModels { nodes { name
                 versions(first: 2, after: $after, orderBy: [{field: CREATED_AT, direction: DESC}])
                 { nodes { name } pageInfo { endCursor hasNextPage } } } } }"""
    first = api(query, {"after": None})["registeredModels"]["nodes"]
    assert [[v["name"] for v in m["versions"]["nodes"]] for m in first] == [["v5", "v4"]] * 2
    cursor = first[0]["versions"]["pageInfo"]["endCursor"]
    after = api(query, {"after": cursor})["registeredModels"]["nodes"]
    # One cursor (model-001's v4) for both parents: each lists what sorts after its key,
    # and all of model-002's versions are newer (in one query still).
    assert [[v["name"] for v in m["versions"]["nodes"]] for m in after] == [["v3", "v2"], []]


def test_a_time_without_an_offset_is_utc(api: Api, db: neo4j.Driver) -> None:
    """Neo4j cannot compare a local time with a zoned one: input times are zoned, UTC when
    given without an offset (before, such a filter matched nothing)."""
    seed(db, 6)  # created on 2026-01-02 ... 2026-01-07, UTC
    later = 'filter: {createdAt: {gte: "2026-01-05T00:00:00"}}'
    assert names(api, later) == ["model-004", "model-005", "model-006"]
    assert names(api, 'filter: {createdAt: {gte: "2026-01-05T01:00:00+02:00"}}') == names(
        api, later
    )


def test_a_dataset_without_a_uri_is_listed(api: Api, db: neo4j.Driver) -> None:
    """Lists read off an index only by fields every node has: datasets (by uri by
    default) may lack one, and still come (last), and are counted."""
    db.execute_query(
        "CREATE (:Node:Dataset {id: 'ds_a', name: 'a', uri: 's3://a', state: 'LIVE', "
        "createdAt: datetime()}), (:Node:Dataset {id: 'ds_b', name: 'b', state: 'LIVE', "
        "createdAt: datetime()})"
    )
    data = api("{ datasets(first: 10) { totalCount nodes { name } } }")["datasets"]
    assert (data["totalCount"], [n["name"] for n in data["nodes"]]) == (2, ["a", "b"])


def test_bad_cursor_and_page_size_over_the_cap(api: Api) -> None:
    error = api.fails('{ registeredModels(after: "bogus") { totalCount } }')
    assert error["extensions"]["code"] == "VALIDATION"
    assert error["extensions"]["field"] == "after"
    error = api.fails("{ registeredModels(first: 100000) { totalCount } }")
    assert error["extensions"]["code"] == "LIMIT_EXCEEDED"
    assert error["extensions"]["maximum"] == 200


def test_filter_operators_are_checked(api: Api) -> None:
    error = api.fails(
        'query { registeredModels(filter: {customProperties: [{key: "%s", eq: 1}]}) '
        "{ totalCount } }" % ("k" * 129)
    )
    assert error["extensions"]["code"] == "VALIDATION"
    assert error["extensions"]["field"] == "filter.customProperties[0].eq"


def test_versions_of_a_model_latest_and_by_metric(api: Api, db: neo4j.Driver) -> None:
    seed(db, 2, versions=5)
    data = api(
        """{ registeredModel(name: "model-001") {
              versions(filter: {customProperties: [{key: "accuracy", gte: 0.8}]},
                       orderBy: [{customProperty: "accuracy", direction: DESC}]) {
                totalCount nodes { name } }
              latestVersion { name }
              version(name: "v2") { name }
           } }"""
    )["registeredModel"]
    assert data["versions"] == {
        "totalCount": 3,
        "nodes": [{"name": "v5"}, {"name": "v4"}, {"name": "v3"}],
    }
    assert data["latestVersion"] == {"name": "v5"}
    assert data["version"] == {"name": "v2"}


@pytest.mark.parametrize("models", [3, 100])
def test_nested_lists_cost_one_round_trip_per_level(
    api: Api, db: neo4j.Driver, models: int
) -> None:
    seed(db, models, versions=3, artifacts=2)
    response = api.post(
        """{ registeredModels(first: 200) { totalCount nodes { name
              versions { totalCount nodes { name model { name }
                artifacts { totalCount nodes { uri ... on ModelArtifact { version { name } } } } } }
              latestVersion { name } } } }"""
    )
    assert not response.errors
    models_data = response.data["registeredModels"]["nodes"]
    assert len(models_data) == models
    assert all(len(m["versions"]["nodes"]) == 3 for m in models_data)
    assert all(
        len(v["artifacts"]["nodes"]) == 2 for m in models_data for v in m["versions"]["nodes"]
    )
    # models; versions of all models; latestVersion of all; model of all versions;
    # artifacts of all versions; version of all artifacts — whatever the count of parents.
    assert response.round_trips == 6

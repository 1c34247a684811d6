"""A request answered through the warm lane leaves none of its own objects to the cycle
collector: under load, that garbage (about a hundred objects a request) made the collector
run a full collection every half second, pausing every request in flight for 10-20 ms."""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.api.lineage_scenario import Scenario, build
from tests.conftest import Api

# With trainingDatasets, the lookup reads ahead and the request makes batch loaders.
QUERY = """
query($id: ID!) {
  node(id: $id) { id ... on ModelVersion { name trainingDatasets { uri } } }
}
"""
# Objects a request makes that refer to each other: ours, and graphql-core's executor and
# middleware, which the lane releases once the answer is built.
PER_REQUEST = ("Context", "Loaders", "Executor", "MiddlewareManager", "Authorization")


@pytest.fixture
def scenario(api: Api) -> Scenario:
    return build(api)


@pytest.fixture
def cyclic_garbage() -> Iterator[list[object]]:
    """What the cycle collector finds unreachable during the test (kept, not freed)."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield gc.garbage
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


def test_a_warm_request_leaves_no_cycles_of_its_own(
    api: Api, scenario: Scenario, cyclic_garbage: list[object]
) -> None:
    # The first is parsed and validated through Strawberry's view (which leaves its cycles
    # to the collector); the lane takes the rest.
    first = api.post(QUERY, {"id": scenario.v1}, headers={"X-Request-ID": "view"})
    assert not first.errors, first.errors
    measured = {f"lane-{i}" for i in range(10)}
    for rid in sorted(measured):
        answer = api.post(QUERY, {"id": scenario.v1}, headers={"X-Request-ID": rid})
        assert answer.data == first.data
    gc.collect()
    contexts = [o for o in cyclic_garbage if type(o).__name__ == "Context"]
    assert not [c for c in contexts if getattr(c, "request_id", None) in measured]
    # Whatever else of those kinds is garbage came with the view's request, one each.
    kinds = Counter(type(o).__name__ for o in cyclic_garbage)
    assert all(kinds[kind] <= len(contexts) for kind in PER_REQUEST), kinds
    assert kinds["DataLoader"] <= 2 * len(contexts), kinds

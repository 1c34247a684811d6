"""Numeric REST ids: a small integer beside every node's own id, for the Kubeflow REST edge.

Kubeflow Model Registry clients expect ids that are decimal strings (``^[1-9][0-9]{0,8}$``)
and that grow with creation order. Every node gets one when the transaction that creates
it commits (a commit hook, so every creation path is covered), from a block of ids its
process reserved from the one counter node (``Store.reserve_rest_ids``); a uniqueness
constraint backs them. Nodes written by something else (a bulk load in Cypher, an older
version) get theirs at start-up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lineagehub.graph.store import Store, Tx

# A Cypher statement and its parameters.
Along = tuple[str, dict[str, Any]]

# The Kubeflow id pattern allows at most nine digits.
MAX_REST_ID = 999_999_999


# Whether any of the ids [$first, $first + $count) is in use already: two range seeks in
# the unique indexes, however many ids.
_TAKEN = (
    "(EXISTS { MATCH (n:Node) WHERE $first <= n.restId < $first + $count } "
    "OR EXISTS { MATCH (n:RunLog) WHERE $first <= n.restId < $first + $count })"
)
# Numbers the nodes whose ids are $ids with $first, $first + 1, ...
_NUMBER = (
    "UNWIND range(0, size($ids) - 1) AS i "
    "MATCH (n:Node {id: $ids[i]}) WHERE n.restId IS NULL "
    "SET n.restId = $first + i "
    "RETURN count(*) AS result"
)


async def numbered(
    tx: Tx, count: int, write: Callable[[int], Along], *, along: Along | None = None
) -> tuple[int, Any]:
    """Run ``write(first)`` (a subquery body that uses the ids ``$first`` to ``$first +
    count - 1`` and returns one column, ``result``) in one query with the check that
    those ids are free; returns (first, its result). ``along`` (updating clauses, no
    RETURN) runs first in that same query, once, whether or not the ids turn out free.

    A process's block can go stale when something else writes REST ids (a bulk load that
    numbers its own nodes, a wiped and reloaded database): ids found taken are skipped,
    nothing ``write`` would write is written, the block is dropped and the query runs
    again with a fresh one, which the counter puts above every id in use.
    """
    store = tx.store
    assert store is not None, "REST ids are allocated inside Store.write"
    for _ in range(3):
        first = await store.reserve_rest_ids(count)
        if first + count - 1 > MAX_REST_ID:
            raise RuntimeError("the REST id sequence is exhausted")
        body, params = write(first)
        params = {**params, "first": first, "count": count}
        before = ""
        if along is not None:
            assert not params.keys() & along[1].keys(), "along's parameters clash"
            before = f"CALL () {{ {along[0]} }} "
            params.update(along[1])
            along = None
        row = await tx.single(
            f"{before}WITH {_TAKEN} AS taken "
            f"OPTIONAL CALL (taken) {{ WITH taken WHERE NOT taken {body} }} "
            "RETURN taken, result",
            params,
        )
        assert row is not None
        if not row["taken"]:
            return first, row["result"]
        store.drop_rest_ids()
    raise RuntimeError("could not find free REST ids")


async def allocate(
    tx: Tx, count: int, *, numbering: list[str] | None = None, along: Along | None = None
) -> int:
    """Reserve ``count`` consecutive free ids; returns the first. With ``numbering`` (ids
    of nodes ``tx`` created), also give those nodes the ids, in the same query, after
    ``along`` (as ``numbered``)."""
    first, _ = await numbered(
        tx, count, lambda first: (_NUMBER, {"ids": numbering or []}), along=along
    )
    return first


async def assign_rest_ids(tx: Tx, *, along: Along | None = None) -> None:
    """Number the nodes ``tx`` created (in creation order), in one query with ``along``
    (which runs alone when nothing was created)."""
    created: list[str] = []
    seen: set[str] = set()
    for change in tx.changes:
        after = change.after
        is_new_node = change.before is None and after is not None and after.get("id") is not None
        if is_new_node and change.target_id not in seen:
            seen.add(change.target_id)
            created.append(change.target_id)
    if not created:
        if along is not None:
            await tx.run(*along)
        return
    await allocate(tx, len(created), numbering=created, along=along)


async def backfill(store: Store, batch: int = 10_000) -> int:
    """Give every node without a REST id one, oldest first; returns how many were numbered.
    Also makes sure the counter exists (above every id in use)."""
    await store.ensure_rest_counter()
    total = 0
    while True:

        async def work(tx: Tx) -> int:
            rows = await tx.run(
                "MATCH (n:Node) WHERE n.restId IS NULL "
                "RETURN n.id AS id ORDER BY n.createdAt, n.id LIMIT $batch",
                {"batch": batch},
            )
            if not rows:
                return 0
            ids = [r["id"] for r in rows]
            await allocate(tx, len(ids), numbering=ids)
            return len(ids)

        done = await store.write(work)
        total += done
        if done < batch:
            return total

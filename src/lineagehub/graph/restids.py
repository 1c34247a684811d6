"""Numeric REST ids: a small integer beside every node's own id, for the Kubeflow REST edge.

Kubeflow Model Registry clients expect ids that are decimal strings (``^[1-9][0-9]{0,8}$``)
and that grow with creation order. Every node gets one from a single counter when the
transaction that creates it commits (a commit hook, so every creation path is covered and
the numbers follow commit order), and a uniqueness constraint backs the counter. Nodes
written by something else (a bulk load in Cypher, an older version) get theirs at start-up.
"""

from __future__ import annotations

from lineagehub.graph.store import Store, Tx

SEQUENCE = "restId"
# The Kubeflow id pattern allows at most nine digits.
MAX_REST_ID = 999_999_999


async def allocate(tx: Tx, count: int) -> int:
    """Reserve ``count`` consecutive ids; returns the first. The counter's write lock is held
    until commit, so concurrent creators get disjoint, increasing ranges."""
    row = await tx.single(
        "MERGE (s:Sequence {name: $name}) "
        "ON CREATE SET s.value = 0 "
        "SET s.value = s.value + $count "
        "RETURN s.value - $count + 1 AS first",
        {"name": SEQUENCE, "count": count},
    )
    assert row is not None
    first: int = row["first"]
    if first + count - 1 > MAX_REST_ID:
        raise RuntimeError("the REST id sequence is exhausted")
    return first


async def assign_rest_ids(tx: Tx) -> None:
    """Commit hook: number the nodes this transaction created (in creation order)."""
    created: list[str] = []
    seen: set[str] = set()
    for change in tx.changes:
        after = change.after
        is_new_node = change.before is None and after is not None and after.get("id") is not None
        if is_new_node and change.target_id not in seen:
            seen.add(change.target_id)
            created.append(change.target_id)
    if not created:
        return
    first = await allocate(tx, len(created))
    await tx.run(
        "UNWIND range(0, size($ids) - 1) AS i "
        "MATCH (n:Node {id: $ids[i]}) WHERE n.restId IS NULL "
        "SET n.restId = $first + i",
        {"ids": created, "first": first},
    )


async def backfill(store: Store, batch: int = 10_000) -> int:
    """Give every node without a REST id one, oldest first; returns how many were numbered."""
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
            first = await allocate(tx, len(ids))
            await tx.run(
                "UNWIND range(0, size($ids) - 1) AS i "
                "MATCH (n:Node {id: $ids[i]}) SET n.restId = $first + i",
                {"ids": ids, "first": first},
            )
            return len(ids)

        done = await store.write(work)
        total += done
        if done < batch:
            return total

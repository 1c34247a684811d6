"""Lineage edges: created and removed only between the node types the vocabulary allows.

Every edge carries ``since`` (when it was recorded) and ``until`` (null while it holds);
moving a service to another version closes the old SERVES edge instead of deleting it, so
lineage can be asked "as it was" within a time window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lineagehub.graph import ids
from lineagehub.graph.errors import NotFound, ValidationFailed
from lineagehub.graph.identity import in_scope, scope_params
from lineagehub.graph.store import Tx
from lineagehub.graph.vocabulary import EDGE_TYPES, Flow


@dataclass(frozen=True)
class Link:
    """``(from)-[type]->(to)``, with the input path to blame when it is not allowed."""

    from_id: str
    type: str
    to_id: str
    path: str = "input"


def check(link: Link) -> None:
    edge = EDGE_TYPES.get(link.type)
    if edge is None:
        raise ValidationFailed(f"{link.type!r} is not an edge type", field=f"{link.path}.type")
    start = ids.label_of(link.from_id, field=f"{link.path}.from")
    end = ids.label_of(link.to_id, field=f"{link.path}.to")
    if (start, end) not in edge.ends:
        allowed = ", ".join(f"{a}->{b}" for a, b in edge.ends)
        raise ValidationFailed(
            f"{link.type} cannot join a {start} to a {end} (allowed: {allowed})",
            field=f"{link.path}.type",
        )
    if link.from_id == link.to_id:
        raise ValidationFailed("a node cannot be linked to itself", field=f"{link.path}.to")


async def add(tx: Tx, links: list[Link], at: datetime) -> int:
    """Create the edges that do not exist yet (one query, whatever their types); NOT_FOUND
    if an end is missing. Returns how many were new."""
    created = 0
    by_type: dict[str, list[Link]] = {}
    seen: set[tuple[str, str, str]] = set()
    for link in links:
        check(link)
        if (key := (link.from_id, link.type, link.to_id)) not in seen:
            seen.add(key)
            by_type.setdefault(link.type, []).append(link)
    if not by_type:
        return 0
    # One query for every type: a subquery per type (types in name order), each with its
    # type written in (a key of EDGE_TYPES, checked above, never input text).
    calls = []
    params: dict[str, Any] = {"at": at, **scope_params()}
    groups = sorted(by_type.items())
    for i, (edge_type, group) in enumerate(groups):
        # Two transactions adding the same edge would each see none and both create it:
        # the one that creates first write-locks the edge's downstream end (the newer,
        # less shared one: a run, not the dataset it read), and looks again under the
        # lock. Ends are locked in id order (types in name order), so transactions adding
        # overlapping edges in other orders do not deadlock.
        downstream = "b" if EDGE_TYPES[edge_type].flow is Flow.FORWARD else "a"
        ordered = sorted(group, key=lambda k: k.to_id if downstream == "b" else k.from_id)
        params[f"links{i}"] = [{"from": k.from_id, "to": k.to_id} for k in ordered]
        calls.append(
            "CALL () { "
            f"UNWIND $links{i} AS link "
            f"OPTIONAL MATCH (a:Node {{id: link.from}}) WHERE {in_scope('a')} "
            f"OPTIONAL MATCH (b:Node {{id: link.to}}) WHERE {in_scope('b')} "
            "CALL (a, b) { "
            "  WITH a, b WHERE a IS NOT NULL AND b IS NOT NULL "
            f"  OPTIONAL MATCH (a)-[old:`{edge_type}`]->(b) WHERE old.until IS NULL "
            "  WITH a, b, old "
            "  CALL (a, b, old) { "
            "    WITH a, b WHERE old IS NULL "
            f"    SET {downstream}._lock = true REMOVE {downstream}._lock "
            "    WITH a, b "
            f"    OPTIONAL MATCH (a)-[again:`{edge_type}`]->(b) WHERE again.until IS NULL "
            "    WITH a, b, again WHERE again IS NULL "
            f"    CREATE (a)-[r:`{edge_type}` {{since: $at}}]->(b) "
            "    RETURN 1 AS made "
            "  } "
            "  RETURN sum(made) AS made "
            "} "
            "RETURN collect({fromId: link.from, toId: link.to, fromFound: a IS NOT NULL, "
            f"toFound: b IS NOT NULL, made: made}}) AS rows{i} "
            "} "
        )
    row = await tx.single(
        "".join(calls) + f"RETURN [{', '.join(f'rows{i}' for i in range(len(groups)))}] AS rows",
        params,
        raw=True,
    )
    assert row is not None
    for (_, group), rows in zip(groups, row["rows"], strict=True):
        # Answers by pair (unique within a type), read in the order the links were given.
        answers = {(r["fromId"], r["toId"]): r for r in rows}
        for link in group:
            found = answers[link.from_id, link.to_id]
            if not found["fromFound"]:
                raise NotFound(f"no node with id {link.from_id!r}", field=f"{link.path}.from")
            if not found["toFound"]:
                raise NotFound(f"no node with id {link.to_id!r}", field=f"{link.path}.to")
            if found["made"]:
                created += found["made"]
                tx.touch(link.from_id, None, {"edge": f"+{link.type}", "to": link.to_id})
    return created


async def close(tx: Tx, link: Link, at: datetime) -> bool:
    """End a holding edge (it stays, for history). Whether there was one to end."""
    check(link)
    row = await tx.single(
        f"MATCH (:Node {{id: $from}})-[r:`{link.type}`]->(:Node {{id: $to}}) "
        "WHERE r.until IS NULL "
        "SET r.until = $at "
        "RETURN count(r) AS closed",
        {"from": link.from_id, "to": link.to_id, "at": at},
    )
    closed = bool(row and row["closed"])
    if closed:
        tx.touch(link.from_id, None, {"edge": f"-{link.type}", "to": link.to_id})
    return closed

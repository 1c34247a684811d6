"""Lineage edges: created and removed only between the node types the vocabulary allows.

Every edge carries ``since`` (when it was recorded) and ``until`` (null while it holds);
moving a service to another version closes the old SERVES edge instead of deleting it, so
lineage can be asked "as it was" within a time window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

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
    """Create the edges that do not exist yet (one query per edge type); NOT_FOUND if an end
    is missing. Returns how many were new."""
    created = 0
    by_type: dict[str, list[Link]] = {}
    seen: set[tuple[str, str, str]] = set()
    for link in links:
        check(link)
        if (key := (link.from_id, link.type, link.to_id)) not in seen:
            seen.add(key)
            by_type.setdefault(link.type, []).append(link)
    for edge_type, group in sorted(by_type.items()):
        # The type is a key of EDGE_TYPES (checked above), never input text. Two
        # transactions adding the same edge would each see none and both create it: the
        # one that creates first write-locks the edge's downstream end (the newer, less
        # shared one: a run, not the dataset it read), and looks again under the lock.
        # Ends are locked in id order (types in name order), so transactions adding
        # overlapping edges in other orders do not deadlock.
        downstream = "b" if EDGE_TYPES[edge_type].flow is Flow.FORWARD else "a"
        ordered = sorted(group, key=lambda k: k.to_id if downstream == "b" else k.from_id)
        rows = await tx.run(
            "UNWIND $links AS link "
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
            "RETURN link.from AS fromId, link.to AS toId, "
            "a IS NOT NULL AS fromFound, b IS NOT NULL AS toFound, made",
            {
                "links": [{"from": k.from_id, "to": k.to_id} for k in ordered],
                "at": at,
                **scope_params(),
            },
        )
        # Answers by pair (unique within a type), read in the order the links were given.
        answers = {(row["fromId"], row["toId"]): row for row in rows}
        for link in group:
            row = answers[link.from_id, link.to_id]
            if not row["fromFound"]:
                raise NotFound(f"no node with id {link.from_id!r}", field=f"{link.path}.from")
            if not row["toFound"]:
                raise NotFound(f"no node with id {link.to_id!r}", field=f"{link.path}.to")
            if row["made"]:
                created += row["made"]
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

"""The audit trail: one AuditEvent per mutation, written in the mutation's own transaction
(in one query with the REST ids of the nodes it created).

An event names the actor (and token), the action, the time, the request id, the nodes it
touched and each one's changed properties before -> after. Events are only ever created:
no operation updates or deletes them (purging a node keeps the events about it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lineagehub.graph import events, ids
from lineagehub.graph.entities import now
from lineagehub.graph.identity import actor
from lineagehub.graph.listing import Kind, ListSpec, Sort
from lineagehub.graph.restids import Along, assign_rest_ids
from lineagehub.graph.store import Change, Tx
from lineagehub.logs import request_id

current_action: ContextVar[str | None] = ContextVar("lineagehub_action", default=None)

_SKIP = frozenset({"updatedAt", "_lock"})


@contextmanager
def action(name: str) -> Iterator[None]:
    """Name the action that writes inside this block (e.g. the GraphQL mutation)."""
    token = current_action.set(name)
    try:
        yield
    finally:
        current_action.reset(token)


def _jsonable(props: dict[str, Any] | None) -> dict[str, Any] | None:
    if props is None:
        return None
    return {
        k: v.isoformat() if isinstance(v, datetime) else v
        for k, v in sorted(props.items())
        if k not in _SKIP
    }


def _entry(change: Change) -> dict[str, Any]:
    return {
        "target": change.target_id,
        "before": _jsonable(change.before),
        "after": _jsonable(change.after),
    }


async def finish(tx: Tx) -> None:
    """Commit hook: the transaction's AuditEvent (when it changed anything) and the REST
    ids of the nodes it created, in one query."""
    await assign_rest_ids(tx, along=audit_statement(tx))


def audit_statement(tx: Tx) -> Along | None:
    """The statement writing the transaction's AuditEvent; None when nothing changed."""
    if not tx.changes:
        return None
    principal = actor()
    targets = list(dict.fromkeys(c.target_id for c in tx.changes))
    stamp = now()
    props = {
        "id": ids.new_id("AuditEvent"),
        "action": current_action.get() or "unnamed",
        "actor": principal.name,
        "actorTokenId": principal.token_id,
        "at": stamp,
        "requestId": request_id.get(),
        "targetIds": targets,
        "changes": json.dumps([_entry(c) for c in tx.changes], default=str),
    }
    statement = (
        # createdAt is at: one datetime to send, not two (the driver converts each slowly).
        "CREATE (e:AuditEvent) SET e = $auditProps, e.createdAt = $auditProps.at "
        "WITH e "
        "UNWIND $auditTargets AS targetId "
        "MATCH (n:Node {id: targetId}) "
        "CREATE (e)-[:CONCERNS]->(n) "
        # An event belongs to the project of what it touched, so scoped tokens see their own.
        "WITH e, collect(n.project) AS projects "
        "SET e.project = head(projects)"
    )
    params: dict[str, Any] = {
        "auditProps": {k: v for k, v in props.items() if v is not None},
        "auditTargets": targets,
    }
    registry_events = events.derive(tx.changes)
    if registry_events:
        # Written unnumbered; numbered after the commit: see ``events``.
        statement += f" WITH e {events.WRITE_EVENTS}"
        params["registryEvents"] = registry_events
        tx.registry_events = len(registry_events)
    return statement, params


@dataclass(frozen=True)
class AuditEvent:
    id: str
    action: str
    actor: str
    actor_token_id: str | None
    at: datetime
    request_id: str | None
    target_ids: list[str]
    changes: list[dict[str, Any]]

    @classmethod
    def from_props(cls, props: dict[str, Any]) -> AuditEvent:
        return cls(
            id=props["id"],
            action=props["action"],
            actor=props["actor"],
            actor_token_id=props.get("actorTokenId"),
            at=props["at"],
            request_id=props.get("requestId"),
            target_ids=props.get("targetIds", []),
            changes=json.loads(props.get("changes", "[]")),
        )


AUDIT_FIELDS: dict[str, Kind] = {
    "id": Kind.ID,
    "action": Kind.STRING,
    "actor": Kind.STRING,
    "at": Kind.TIME,
    "requestId": Kind.STRING,
    "createdAt": Kind.TIME,
}
ALL_EVENTS = ListSpec(
    label="AuditEvent",
    match="MATCH (n:AuditEvent)",
    fields=AUDIT_FIELDS,
    default_sort=(Sort("at", descending=True),),
    indexed=frozenset({"at"}),
)
EVENTS_OF_NODE = ListSpec(
    label="AuditEvent",
    parent_label="Node",
    match="MATCH (n:AuditEvent)-[:CONCERNS]->(p)",
    fields=AUDIT_FIELDS,
    default_sort=(Sort("at", descending=True),),
)

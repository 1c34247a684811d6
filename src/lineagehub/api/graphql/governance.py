"""GraphQL types and root fields of governance: the audit trail (approvals, aliases next)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry

from lineagehub.api.graphql.context import Info
from lineagehub.api.graphql.scalars import JSON
from lineagehub.api.graphql.types import Connection, load_page
from lineagehub.graph import audit
from lineagehub.graph.listing import Condition


@strawberry.type(description="One node's change in an audit event: properties before -> after.")
class AuditChange:
    target: strawberry.ID
    before: JSON | None = strawberry.field(description="Null when the change created it.")
    after: JSON | None


@strawberry.type(description="What one mutation did: who, when, to what, and how.")
class AuditEvent:
    id: strawberry.ID
    action: str = strawberry.field(description="The mutation (e.g. registerModel).")
    actor: str = strawberry.field(description="The token's name (or 'local').")
    actor_token_id: strawberry.ID | None
    at: datetime
    request_id: str | None
    target_ids: list[strawberry.ID]
    changes: list[AuditChange]

    @classmethod
    def of(cls, props: dict[str, Any]) -> AuditEvent:
        event = audit.AuditEvent.from_props(props)
        return cls(
            id=strawberry.ID(event.id),
            action=event.action,
            actor=event.actor,
            actor_token_id=strawberry.ID(event.actor_token_id) if event.actor_token_id else None,
            at=event.at,
            request_id=event.request_id,
            target_ids=[strawberry.ID(t) for t in event.target_ids],
            changes=[
                AuditChange(target=strawberry.ID(c["target"]), before=c["before"], after=c["after"])
                for c in event.changes
            ],
        )


async def audit_page(
    info: Info,
    *,
    target: str | None,
    actor: str | None = None,
    action: str | None = None,
    from_: datetime | None = None,
    to: datetime | None = None,
    first: int | None,
    after: str | None,
) -> Connection[AuditEvent]:
    conditions = [
        Condition(field, op, value, path)
        for field, op, value, path in (
            ("actor", "eq", actor, "actor"),
            ("action", "eq", action, "action"),
            ("at", "gte", from_, "from"),
            ("at", "lte", to, "to"),
        )
        if value is not None
    ]
    return await load_page(
        info,
        audit.EVENTS_OF_NODE if target else audit.ALL_EVENTS,
        target,
        filter=None,
        order_by=None,
        first=first,
        after=after,
        wrap=AuditEvent.of,
        extra=tuple(conditions),
    )


@strawberry.type
class GovernanceQuery:
    @strawberry.field(
        description="Audit events, newest first; filter by target node, actor, action, time."
    )
    async def audit_events(
        self,
        info: Info,
        target: strawberry.ID | None = None,
        actor: str | None = None,
        action: str | None = None,
        from_: Annotated[datetime | None, strawberry.argument(name="from")] = None,
        to: datetime | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[AuditEvent]:
        return await audit_page(
            info,
            target=target,
            actor=actor,
            action=action,
            from_=from_,
            to=to,
            first=first,
            after=after,
        )

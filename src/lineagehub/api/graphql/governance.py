"""GraphQL types and root fields of governance: the audit trail (approvals, aliases next)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from lineagehub.api.graphql.context import Info
from lineagehub.api.graphql.scalars import JSON
from lineagehub.api.graphql.types import Connection, RegistryEntity, load_page
from lineagehub.graph import audit, governance, records, tombstones
from lineagehub.graph.identity import actor
from lineagehub.graph.listing import Condition

if TYPE_CHECKING:
    from lineagehub.api.graphql.serving import InferenceService
    from lineagehub.api.graphql.types import ModelVersion

_Version = Annotated["ModelVersion", strawberry.lazy("lineagehub.api.graphql.types")]
_Service = Annotated["InferenceService", strawberry.lazy("lineagehub.api.graphql.serving")]


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


@strawberry.input(description="Which audit events: all given conditions must hold.")
class AuditEventFilter:
    target: strawberry.ID | None = strawberry.field(
        default=None, description="Events that touched this node."
    )
    actor: str | None = strawberry.field(default=None, description="The token's name.")
    action: str | None = strawberry.field(default=None, description="The mutation's name.")
    from_: datetime | None = strawberry.field(default=None, name="from", description="At or after.")
    to: datetime | None = strawberry.field(default=None, description="At or before.")


@strawberry.type
class GovernanceQuery:
    @strawberry.field(description="Audit events, newest first; all given conditions must hold.")
    async def audit_events(
        self,
        info: Info,
        filter: AuditEventFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[AuditEvent]:
        given = filter or AuditEventFilter()
        return await audit_page(
            info,
            target=given.target,
            actor=given.actor,
            action=given.action,
            from_=given.from_,
            to=given.to,
            first=first,
            after=after,
        )


# --- approvals and aliases ------------------------------------------------------------------


@strawberry.type(description="One decision on a version's approval: who, when, what, why.")
class ApprovalDecision:
    status: governance.ApprovalStatus
    actor: str
    at: datetime
    comment: str | None

    @classmethod
    def of(cls, d: governance.ApprovalDecision) -> ApprovalDecision:
        return cls(status=d.status, actor=d.actor, at=d.at, comment=d.comment)


async def decisions(info: Info, version_id: str) -> list[ApprovalDecision]:
    found = await info.context.loaders.by(governance.decisions_of).load(version_id) or []
    return [ApprovalDecision.of(d) for d in found]


async def _version(info: Info, version_id: str | None) -> Any:
    from lineagehub.api.graphql.types import ModelVersion

    if version_id is None:
        return None
    record = await info.context.loaders.by_id(records.ModelVersion).load(version_id)
    return ModelVersion.from_record(record) if record else None


@strawberry.type(description="A named pointer from a model to one of its versions.")
class Alias:
    name: str
    updated_at: datetime
    updated_by: str
    version_id: strawberry.Private[str]

    @strawberry.field(description="The version it points at.")
    async def version(self, info: Info) -> _Version:
        found = await _version(info, self.version_id)
        assert found is not None
        return found  # type: ignore[no-any-return]


@strawberry.type(description="One move of an alias: from which version to which, who, when, why.")
class AliasMove:
    alias: str
    actor: str
    at: datetime
    reason: str | None
    from_version_id: strawberry.Private[str | None]
    to_version_id: strawberry.Private[str | None]

    @strawberry.field(name="from", description="The version it pointed at before (null: none).")
    async def from_(self, info: Info) -> _Version | None:
        return await _version(info, self.from_version_id)  # type: ignore[no-any-return]

    @strawberry.field(description="The version it points at after (null: removed).")
    async def to(self, info: Info) -> _Version | None:
        return await _version(info, self.to_version_id)  # type: ignore[no-any-return]

    @classmethod
    def of(cls, m: governance.AliasMove) -> AliasMove:
        return cls(
            alias=m.alias,
            actor=m.actor,
            at=m.at,
            reason=m.reason,
            from_version_id=m.from_version_id,
            to_version_id=m.to_version_id,
        )


@strawberry.type(description="A version and the decision just recorded on it.")
class ApprovalPayload:
    version: _Version
    decision: ApprovalDecision


def _settings(info: Info) -> Any:
    return info.context.settings


@strawberry.type
class GovernanceMutation:
    @strawberry.mutation(
        description=(
            "Delete a RegisteredModel (with its versions), ModelVersion, Dataset or "
            "InferenceService: it leaves lookups and listings and frees its names, but stays "
            "as a tombstone so lineage through it shows what it was."
        )
    )
    async def delete_node(self, info: Info, id: strawberry.ID) -> RegistryEntity:
        from lineagehub.api.graphql.lineage import wrap

        return wrap(await tombstones.delete(info.context.store, id, actor()))

    @strawberry.mutation(description="Remove a tombstone for good (admins; audited).")
    async def purge_node(self, info: Info, id: strawberry.ID) -> str:
        return await tombstones.purge(info.context.store, id)

    @strawberry.mutation(description="Ask for a version to be approved (status PENDING).")
    async def request_approval(
        self, info: Info, version_id: strawberry.ID, comment: str | None = None
    ) -> ApprovalPayload:
        return await _decide(info, version_id, governance.ApprovalStatus.PENDING, comment)

    @strawberry.mutation(
        description="Approve a version (approvers only; not its own author unless configured)."
    )
    async def approve_model_version(
        self, info: Info, version_id: strawberry.ID, comment: str | None = None
    ) -> ApprovalPayload:
        return await _decide(info, version_id, governance.ApprovalStatus.APPROVED, comment)

    @strawberry.mutation(description="Reject a version (approvers only).")
    async def reject_model_version(
        self, info: Info, version_id: strawberry.ID, comment: str | None = None
    ) -> ApprovalPayload:
        return await _decide(info, version_id, governance.ApprovalStatus.REJECTED, comment)

    @strawberry.mutation(
        description=(
            "Point model@alias at a version (by name), keeping the move in its history. "
            "Protected aliases (e.g. production) need an approver and an APPROVED version."
        )
    )
    async def set_alias(
        self, info: Info, model: str, alias: str, version: str, reason: str | None = None
    ) -> AliasMove:
        return await _move(info, model, alias, version, reason)

    @strawberry.mutation(description="Remove model@alias (the move is kept in its history).")
    async def remove_alias(
        self, info: Info, model: str, alias: str, reason: str | None = None
    ) -> AliasMove:
        return await _move(info, model, alias, None, reason)


async def _decide(
    info: Info, version_id: str, status: governance.ApprovalStatus, comment: str | None
) -> ApprovalPayload:
    from lineagehub.api.graphql.types import ModelVersion

    version, decision = await governance.decide(
        info.context.store,
        version_id,
        status,
        actor(),
        comment=comment,
        allow_self_approval=info.context.settings.allow_self_approval,
    )
    return ApprovalPayload(
        version=ModelVersion.from_record(version), decision=ApprovalDecision.of(decision)
    )


async def _move(
    info: Info, model: str, alias: str, version: str | None, reason: str | None
) -> AliasMove:
    move = await governance.move_alias(
        info.context.store,
        model,
        alias,
        version,
        actor(),
        reason=reason,
        protected=frozenset(info.context.settings.protected_aliases),
    )
    return AliasMove.of(move)


@strawberry.type
class AliasQuery:
    @strawberry.field(description="Moves of model@alias (all aliases without one), newest first.")
    async def alias_history(
        self, info: Info, model: str, alias: str | None = None
    ) -> list[AliasMove]:
        return [
            AliasMove.of(m)
            for m in await governance.alias_history(info.context.store, model, alias)
        ]

    @strawberry.field(
        description="Services DEPLOYED now whose version is not APPROVED (an audit finding)."
    )
    async def unapproved_deployments(self, info: Info) -> list[_Service]:
        from lineagehub.api.graphql.serving import InferenceService

        return [
            InferenceService.from_record(records.InferenceService.from_props(s))
            for s, _ in await governance.unapproved_deployments(info.context.store)
        ]

    @strawberry.field(description="The version model@alias pointed at at time `at`, or null.")
    async def alias_at(self, info: Info, model: str, alias: str, at: datetime) -> _Version | None:
        from lineagehub.api.graphql.types import ModelVersion

        found = await governance.alias_at(info.context.store, model, alias, at)
        return ModelVersion.from_record(found) if found else None

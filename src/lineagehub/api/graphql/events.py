"""Registry events in GraphQL: the log as pages (``registryEvents``), and live over a
WebSocket (``subscription { registryEvents }``, the graphql-transport-ws protocol).
What an event is and how it is numbered: ``graph/events.py``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from lineagehub.api.graphql.context import Context, Info
from lineagehub.api.graphql.loaders import Loaders
from lineagehub.api.graphql.scalars import Long
from lineagehub.graph import events, identity, records
from lineagehub.graph.errors import Forbidden, ValidationFailed
from lineagehub.graph.events import EventType

if TYPE_CHECKING:
    from lineagehub.api.graphql.serving import Deployment, InferenceService
    from lineagehub.api.graphql.types import ModelVersion, RegisteredModel

_TYPES = "lineagehub.api.graphql.types"
_SERVING = "lineagehub.api.graphql.serving"
_Model = Annotated["RegisteredModel", strawberry.lazy(_TYPES)]
_Version = Annotated["ModelVersion", strawberry.lazy(_TYPES)]
_Service = Annotated["InferenceService", strawberry.lazy(_SERVING)]
_Deployment = Annotated["Deployment", strawberry.lazy(_SERVING)]

strawberry.enum(
    EventType,
    name="RegistryEventType",
    description="What happened: to a model, a version, an alias or a service.",
)

# How often a live subscription asks again whether its token still stands (a revoked or
# expired token ends it).
RECHECK_SECONDS = 30.0


@strawberry.type(
    description=(
        "Something that happened in the registry, numbered in commit order (seq): a model or "
        "version registered, approved, archived, an alias moved, a version deployed. Names "
        "are as they were then; model, modelVersion, service and deployment are as they are now."
    )
)
class RegistryEvent:
    seq: Long = strawberry.field(description="Its place in the log: 1, 2, 3, ... with no gaps.")
    id: strawberry.ID = strawberry.field(description="Unique; the webhook-id of its deliveries.")
    type: EventType
    at: datetime
    actor: str = strawberry.field(description="Who did it (the token's name).")
    request_id: str | None
    audit_event_id: strawberry.ID = strawberry.field(description="The audit event it is part of.")
    project: str | None
    model_id: strawberry.ID | None
    model_name: str | None
    version_id: strawberry.ID | None = strawberry.field(
        description="The version registered, decided on, archived, deployed, or now aliased."
    )
    version_name: str | None
    service_id: strawberry.ID | None
    service_name: str | None
    deployment_id: strawberry.ID | None
    alias: str | None = strawberry.field(description="ALIAS_MOVED: which alias.")
    previous_version_id: strawberry.ID | None = strawberry.field(
        description="The version the alias or service pointed at before (null: none)."
    )
    previous_version_name: str | None
    from_state: str | None = strawberry.field(
        description="The state before: approval status, LIVE/ARCHIVED, or deployment state."
    )
    to_state: str | None = strawberry.field(description="The state after.")

    @property
    def share_id(self) -> str:
        """Which event this is, for executing it once for every subscriber that asked the
        same thing (``fanout``). Not a GraphQL field."""
        return str(self.id)

    @classmethod
    def of(cls, event: events.RegistryEvent) -> RegistryEvent:
        return cls(
            seq=Long(event.seq),
            id=strawberry.ID(event.id),
            type=event.type,
            at=event.at,
            actor=event.actor,
            request_id=event.request_id,
            audit_event_id=strawberry.ID(event.audit_event_id),
            project=event.project,
            model_id=_id(event.model_id),
            model_name=event.model_name,
            version_id=_id(event.version_id),
            version_name=event.version_name,
            service_id=_id(event.service_id),
            service_name=event.service_name,
            deployment_id=_id(event.deployment_id),
            alias=event.alias,
            previous_version_id=_id(event.previous_version_id),
            previous_version_name=event.previous_version_name,
            from_state=event.from_state,
            to_state=event.to_state,
        )

    @strawberry.field(description="The model, as it is now (null once purged).")
    async def model(self, info: Info) -> _Model | None:
        from lineagehub.api.graphql.types import RegisteredModel

        if self.model_id is None:
            return None
        record = await info.context.loaders.by_id(records.RegisteredModel).load(self.model_id)
        return RegisteredModel.from_record(record) if record is not None else None

    @strawberry.field(description="The version, as it is now (null once purged).")
    async def model_version(self, info: Info) -> _Version | None:
        from lineagehub.api.graphql.types import ModelVersion

        if self.version_id is None:
            return None
        record = await info.context.loaders.by_id(records.ModelVersion).load(self.version_id)
        return ModelVersion.from_record(record) if record is not None else None

    @strawberry.field(description="The service, as it is now.")
    async def service(self, info: Info) -> _Service | None:
        from lineagehub.api.graphql.serving import InferenceService

        if self.service_id is None:
            return None
        record = await info.context.loaders.by_id(records.InferenceService).load(self.service_id)
        return InferenceService.from_record(record) if record is not None else None

    @strawberry.field(description="The deployment, as it is now.")
    async def deployment(self, info: Info) -> _Deployment | None:
        from lineagehub.api.graphql.serving import Deployment

        if self.deployment_id is None:
            return None
        record = await info.context.loaders.by_id(records.Deployment).load(self.deployment_id)
        return Deployment.from_record(record) if record is not None else None


def _id(value: str | None) -> strawberry.ID | None:
    return strawberry.ID(value) if value is not None else None


@strawberry.type(description="A page of the registry event log, oldest first.")
class RegistryEventPage:
    events: list[RegistryEvent]
    end_seq: Long = strawberry.field(
        description=(
            "Pass as afterSeq to read on: the last event's seq while there are more, else "
            "the newest seq there was (events the filter left out are skipped for good)."
        )
    )
    has_more: bool
    pruned_seq: Long = strawberry.field(
        description=(
            "Events up to this seq were deleted, being older than the retention "
            "(LINEAGEHUB_EVENT_RETENTION_DAYS); 0: none was. Resuming after a smaller seq "
            "than this is an EXPIRED error."
        )
    )


_OLDEST = Long(0)  # afterSeq 0: from the oldest event kept


def _check(after_seq: int | None, model: str | None) -> None:
    if after_seq is not None and after_seq < 0:
        raise ValidationFailed("afterSeq is a seq already seen: 0 or more", field="afterSeq")
    if model is not None and not 0 < len(model) <= 256:
        raise ValidationFailed("model is a model's name", field="model")


@strawberry.type
class EventsQuery:
    @strawberry.field(
        description=(
            "The registry event log after afterSeq, oldest first: what a consumer that "
            "polls reads, and where a subscription or webhook resumes from."
        )
    )
    async def registry_events(
        self,
        info: Info,
        after_seq: Long = _OLDEST,
        first: int | None = None,
        types: list[EventType] | None = None,
        model: str | None = None,
    ) -> RegistryEventPage:
        _check(after_seq, model)
        settings = info.context.settings
        size = settings.default_page_size if first is None else first
        if not 1 <= size <= settings.max_page_size:
            raise ValidationFailed(
                f"first is between 1 and {settings.max_page_size}", field="first"
            )
        page = await events.page(
            info.context.store, after_seq, size, types=types or None, model=model
        )
        events.check_resume(after_seq, page.head, page.pruned)
        return RegistryEventPage(
            events=[RegistryEvent.of(e) for e in page.events],
            end_seq=Long(page.cursor(after_seq)),
            has_more=page.has_more,
            pruned_seq=Long(page.pruned),
        )


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description=(
            "Registry events as they commit, in seq order, over a WebSocket "
            "(graphql-transport-ws). With afterSeq, the log from there first (resume "
            "after a disconnect without missing one); without, from now on. Ends with "
            "EXPIRED when events it had yet to get were deleted (retention)."
        )
    )
    async def registry_events(
        self,
        info: Info,
        after_seq: Long | None = None,
        types: list[EventType] | None = None,
        model: str | None = None,
    ) -> AsyncGenerator[RegistryEvent, None]:
        principal = identity.actor()
        principal.require("reader", "registryEvents")
        _check(after_seq, model)
        context = info.context
        hub = context.events
        if hub is None:
            raise Forbidden("this server does not serve subscriptions", field="registryEvents")
        wanted = frozenset(types) if types else None
        projects = principal.projects

        def accept(event: events.RegistryEvent) -> bool:
            return (
                (wanted is None or event.type in wanted)
                and (model is None or event.model_name == model)
                and (projects is None or event.project is None or event.project in projects)
            )

        if context.recheck is not None:
            await context.recheck()
        newest, pruned = await events.bounds(context.store)
        events.check_resume(after_seq, newest, pruned)
        # Checked and started here, so that a refusal is the operation's error; the
        # events come from the generator this returns.
        return _follow(context, hub, after_seq if after_seq is not None else newest, accept)


async def _follow(
    context: Context,
    hub: events.EventHub,
    start: int,
    accept: Callable[[events.RegistryEvent], bool],
) -> AsyncGenerator[RegistryEvent, None]:
    # The token is asked about every RECHECK_SECONDS, events or not: a revoked or expired
    # one (or the first token made, for a local-mode connection) ends the subscription.
    listening = hub.listen(start, accept, tick=context.recheck, tick_seconds=RECHECK_SECONDS)
    async with contextlib.aclosing(listening):
        async for event in listening:
            # Each event goes out only while the token stands (a cached answer, briefly),
            # checked here for each subscriber: the event's execution may be another
            # subscriber's (``fanout``).
            if context.recheck is not None:
                await context.recheck()
            # Fresh loaders for each event: what the last one loaded may have changed.
            context.loaders = Loaders(context.store)
            yield RegistryEvent.of(event)

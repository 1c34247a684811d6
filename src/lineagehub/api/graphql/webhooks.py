"""Webhooks in GraphQL: admins create, change, rotate and delete them, and see how each
one's deliveries go. How delivery works: ``graph/webhooks.py``."""

from __future__ import annotations

from datetime import datetime

import strawberry

from lineagehub.api.graphql.context import Info
from lineagehub.api.graphql.scalars import Long
from lineagehub.graph import webhooks
from lineagehub.graph.errors import ValidationFailed
from lineagehub.graph.events import EventType


@strawberry.type(
    description=(
        "Registry events POSTed to a URL, signed (Standard Webhooks), in seq order, at "
        "least once; retried with backoff while the receiver fails."
    )
)
class Webhook:
    id: strawberry.ID
    name: str
    url: str
    types: list[EventType] | None = strawberry.field(description="Null: every type.")
    model: str | None = strawberry.field(description="Only events about this model.")
    project: str | None = strawberry.field(description="Only events of this project.")
    active: bool
    created_at: datetime
    created_by: str
    delivered_seq: Long = strawberry.field(
        description="Events up to this seq are delivered (or were not wanted)."
    )
    delivered: int = strawberry.field(description="Events delivered so far.")
    failures: int = strawberry.field(description="Failed attempts in a row.")
    last_attempt_at: datetime | None
    last_status: int | None = strawberry.field(description="The receiver's last HTTP status.")
    last_error: str | None
    last_success_at: datetime | None
    next_attempt_at: datetime | None = strawberry.field(
        description="When a failing delivery is tried again."
    )
    missed_through_seq: Long | None = strawberry.field(
        description=(
            "Events it had yet to be sent, up to this seq, were deleted first (older than "
            "the retention: it failed or was inactive that long) and never sent; null: none."
        )
    )

    @classmethod
    def of(cls, hook: webhooks.Webhook) -> Webhook:
        return cls(
            id=strawberry.ID(hook.id),
            name=hook.name,
            url=hook.url,
            types=hook.types,
            model=hook.model,
            project=hook.project,
            active=hook.active,
            created_at=hook.created_at,
            created_by=hook.created_by,
            delivered_seq=Long(hook.delivered_seq),
            delivered=hook.delivered,
            failures=hook.failures,
            last_attempt_at=hook.last_attempt_at,
            last_status=hook.last_status,
            last_error=hook.last_error,
            last_success_at=hook.last_success_at,
            next_attempt_at=hook.next_attempt_at,
            missed_through_seq=(
                None if hook.missed_through_seq is None else Long(hook.missed_through_seq)
            ),
        )


@strawberry.type(description="A webhook and its signing secret: shown this once, keep it.")
class WebhookSecret:
    webhook: Webhook
    secret: str = strawberry.field(
        description="whsec_ + base64 key: verify deliveries with any Standard Webhooks library."
    )


@strawberry.input(description="A new webhook.")
class WebhookInput:
    name: str
    url: str = strawberry.field(description="http(s); deliveries are POSTs of JSON.")
    types: list[EventType] | None = strawberry.field(default=None, description="Null: all.")
    model: str | None = None
    project: str | None = None
    after_seq: Long | None = strawberry.field(
        default=None,
        description="Send events after this seq (0: the whole log); default: from now on.",
    )


@strawberry.input(description="What to change; what is left out stays.")
class WebhookChanges:
    url: str | None = None
    types: list[EventType] | None = strawberry.field(
        default=strawberry.UNSET, description="Null: all types."
    )
    model: str | None = strawberry.field(default=strawberry.UNSET, description="Null: any.")
    active: bool | None = None
    after_seq: Long | None = strawberry.field(
        default=None, description="Move the cursor: send again (or skip) from after this seq."
    )


def _reach(info: Info) -> webhooks.Reach:
    settings = info.context.settings
    return webhooks.Reach.of(settings.webhook_deny_networks, settings.webhook_allow_private)


@strawberry.type
class WebhookQuery:
    @strawberry.field(description="Every webhook (admins).")
    async def webhooks(self, info: Info) -> list[Webhook]:
        return [Webhook.of(h) for h in await webhooks.list_all(info.context.store)]


@strawberry.type
class WebhookMutation:
    @strawberry.mutation(description="Create a webhook (admins); its secret is in the answer.")
    async def create_webhook(self, info: Info, input: WebhookInput) -> WebhookSecret:
        hook, secret = await webhooks.create(
            info.context.store,
            name=input.name,
            url=input.url,
            types=input.types,
            model=input.model,
            project=input.project,
            after_seq=input.after_seq,
            reach=_reach(info),
        )
        info.context.nudge_webhooks()
        return WebhookSecret(webhook=Webhook.of(hook), secret=secret)

    @strawberry.mutation(description="Change a webhook (admins).")
    async def update_webhook(self, info: Info, id: strawberry.ID, input: WebhookChanges) -> Webhook:
        changes: dict[str, object] = {}
        if input.url is not None:
            changes["url"] = input.url
        if input.types is not strawberry.UNSET:
            changes["types"] = input.types
        if input.model is not strawberry.UNSET:
            changes["model"] = input.model
        if input.active is not None:
            changes["active"] = input.active
        if input.after_seq is not None:
            changes["deliveredSeq"] = input.after_seq
        if not changes:
            raise ValidationFailed("nothing to change", field="input")
        hook = await webhooks.update(info.context.store, id, changes, _reach(info))
        info.context.nudge_webhooks()
        return Webhook.of(hook)

    @strawberry.mutation(
        description="A new secret for a webhook (admins): deliveries are signed with it at once."
    )
    async def rotate_webhook_secret(self, info: Info, id: strawberry.ID) -> WebhookSecret:
        hook, secret = await webhooks.rotate_secret(info.context.store, id)
        return WebhookSecret(webhook=Webhook.of(hook), secret=secret)

    @strawberry.mutation(description="Delete a webhook (admins); returns its id.")
    async def delete_webhook(self, info: Info, id: strawberry.ID) -> strawberry.ID:
        return strawberry.ID(await webhooks.delete(info.context.store, id))

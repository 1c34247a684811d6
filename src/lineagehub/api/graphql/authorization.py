"""Roles, enforced by the server before any root field runs (so a refusal writes nothing),
and each root mutation named as the audit action of what it writes."""

from __future__ import annotations

from collections.abc import Callable
from inspect import isawaitable
from typing import Any

from graphql import GraphQLResolveInfo, OperationType
from strawberry.extensions import SchemaExtension

from lineagehub.graph.audit import action
from lineagehub.graph.identity import actor

# Root mutations that need another role than writer (any one of those listed). Finer rules
# live with the operation: moving a protected alias needs an approver.
MUTATION_ROLES: dict[str, tuple[str, ...]] = {
    "approveModelVersion": ("approver",),
    "rejectModelVersion": ("approver",),
    "setAlias": ("writer", "approver"),
    "removeAlias": ("writer", "approver"),
    "purgeNode": ("admin",),
    # A webhook sends events (and a secret signs them) to where its maker says.
    "createWebhook": ("admin",),
    "updateWebhook": ("admin",),
    "rotateWebhookSecret": ("admin",),
    "deleteWebhook": ("admin",),
}
# Root queries that need more than reader.
QUERY_ROLES: dict[str, tuple[str, ...]] = {"webhooks": ("admin",)}


def required_roles(operation: OperationType, field: str) -> tuple[str, ...]:
    if field.startswith("__"):
        return ()  # introspection and __typename are for everyone
    if operation is OperationType.MUTATION:
        return MUTATION_ROLES.get(field, ("writer",))
    return QUERY_ROLES.get(field, ("reader",))


class Authorization(SchemaExtension):
    def resolve(
        self,
        _next: Callable[..., Any],
        root: Any,
        info: GraphQLResolveInfo[Any],
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        if info.path.prev is None:
            if getattr(info.context, "websocket", False):
                return _on_connection(info, _next, root, *args, **kwargs)
            return _authorized(info, _next, root, *args, **kwargs)
        return _next(root, info, *args, **kwargs)


def _authorized(
    info: GraphQLResolveInfo[Any], _next: Callable[..., Any], root: Any, *args: Any, **kwargs: Any
) -> Any:
    """A root field, once its roles are checked; a mutation named as its audit action."""
    roles = required_roles(info.operation.operation, info.field_name)
    principal = actor()
    if roles and not any(principal.has(r) for r in roles):
        principal.require(roles[0], info.field_name)
    if info.operation.operation is OperationType.MUTATION:
        return _audited(info.field_name, _next, root, info, *args, **kwargs)
    return _next(root, info, *args, **kwargs)


async def _on_connection(
    info: GraphQLResolveInfo[Any], _next: Callable[..., Any], root: Any, *args: Any, **kwargs: Any
) -> Any:
    """A root field of a query or mutation sent over a WebSocket: the connection's token is
    asked about again first (revoked, expired, or local mode ended: UNAUTHENTICATED)."""
    if info.context.recheck is not None:
        await info.context.recheck()
    result = _authorized(info, _next, root, *args, **kwargs)
    if isawaitable(result):
        result = await result
    return result


async def _audited(name: str, _next: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a root mutation with its name as the audit action of what it writes."""
    with action(name):
        result = _next(*args, **kwargs)
        if isawaitable(result):
            result = await result
        return result

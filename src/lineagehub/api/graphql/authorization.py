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
}


def required_roles(operation: OperationType, field: str) -> tuple[str, ...]:
    if field.startswith("__"):
        return ()  # introspection and __typename are for everyone
    if operation is OperationType.MUTATION:
        return MUTATION_ROLES.get(field, ("writer",))
    return ("reader",)


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
            roles = required_roles(info.operation.operation, info.field_name)
            principal = actor()
            if roles and not any(principal.has(r) for r in roles):
                principal.require(roles[0], info.field_name)
            if info.operation.operation is OperationType.MUTATION:
                return _audited(info.field_name, _next, root, info, *args, **kwargs)
        return _next(root, info, *args, **kwargs)


async def _audited(name: str, _next: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a root mutation with its name as the audit action of what it writes."""
    with action(name):
        result = _next(*args, **kwargs)
        if isawaitable(result):
            result = await result
        return result

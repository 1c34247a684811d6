"""The one error hierarchy of lineagehub.

Every failure the caller can act on is a :class:`RegistryError` with a stable ``code``;
the API edges map these to their own error shapes (GraphQL ``extensions.code``).
Anything else that escapes an operation is a bug and is reported as INTERNAL.
"""

from __future__ import annotations

from typing import Any, ClassVar


class RegistryError(Exception):
    """A failure with a stable machine-readable code and, where known, the offending field."""

    code: ClassVar[str] = "INTERNAL"

    def __init__(
        self, message: str, *, field: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details or {}

    def extensions(self) -> dict[str, Any]:
        ext: dict[str, Any] = {"code": self.code}
        if self.field is not None:
            ext["field"] = self.field
        ext.update(self.details)
        return ext


class ValidationFailed(RegistryError):
    """The input is malformed: a value out of range, a missing field, a bad combination."""

    code = "VALIDATION"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        problems: list[dict[str, str]] | None = None,
    ) -> None:
        details: dict[str, Any] = {}
        if problems:
            details["problems"] = problems
        super().__init__(message, field=field, details=details)


class NotFound(RegistryError):
    """The thing the input refers to does not exist."""

    code = "NOT_FOUND"


class Conflict(RegistryError):
    """The input contradicts what is stored: a taken name, a changed immutable fact."""

    code = "CONFLICT"


class Unavailable(RegistryError):
    """Neo4j cannot be reached or is not ready; retrying later may succeed."""

    code = "UNAVAILABLE"


class Unauthenticated(RegistryError):
    """No valid credentials: a missing, unknown, expired or revoked token."""

    code = "UNAUTHENTICATED"


class Forbidden(RegistryError):
    """The caller is known but may not do this (a missing role, another project)."""

    code = "FORBIDDEN"


class LimitExceeded(RegistryError):
    """The request asks for more than the server is configured to give in one go."""

    code = "LIMIT_EXCEEDED"


class Expired(RegistryError):
    """What the caller asks to resume from is no longer kept (registry events older than
    the retention were deleted): it must start again from what is."""

    code = "EXPIRED"

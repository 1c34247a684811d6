"""Who is asking: API tokens, the principals they stand for, and their roles.

A token is random (``lh_`` + 43 url-safe characters), shown once at creation and stored only
as its SHA-256 hash. Each names roles and, optionally, the projects it is limited to.
Roles imply others: ``admin`` everything, ``writer`` and ``approver`` each ``reader``.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lineagehub.graph import ids
from lineagehub.graph.errors import Forbidden, NotFound, ValidationFailed
from lineagehub.graph.store import Store, Tx

ROLES = ("reader", "writer", "approver", "admin")
_IMPLIES: dict[str, frozenset[str]] = {
    "reader": frozenset({"reader"}),
    "writer": frozenset({"reader", "writer"}),
    "approver": frozenset({"reader", "approver"}),
    "admin": frozenset(ROLES),
}
TOKEN_PREFIX = "lh_"  # noqa: S105 - the public prefix of generated tokens


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. ``projects`` None means every project."""

    name: str
    roles: frozenset[str]
    projects: frozenset[str] | None = None
    token_id: str | None = None

    def has(self, role: str) -> bool:
        return role in self.roles

    def require(self, role: str, what: str) -> None:
        """FORBIDDEN naming the missing role, unless this principal has it."""
        if not self.has(role):
            raise Forbidden(
                f"{what} needs the {role!r} role; {self.name!r} has "
                f"{', '.join(sorted(self.roles)) or 'none'}",
                details={"missingRole": role},
            )


def expand(roles: list[str] | tuple[str, ...] | frozenset[str]) -> frozenset[str]:
    granted: set[str] = set()
    for role in roles:
        if role not in _IMPLIES:
            raise ValidationFailed(f"{role!r} is not a role ({', '.join(ROLES)})", field="roles")
        granted |= _IMPLIES[role]
    return frozenset(granted)


LOCAL = Principal(name="local", roles=frozenset(ROLES))
"""The loopback newcomer's identity while no token exists (local mode)."""

current_principal: ContextVar[Principal | None] = ContextVar("lineagehub_principal", default=None)


def actor() -> Principal:
    """The principal of the current request (the local one outside requests, e.g. the CLI)."""
    return current_principal.get() or LOCAL


@dataclass(frozen=True)
class TokenInfo:
    id: str
    name: str
    roles: tuple[str, ...]
    projects: tuple[str, ...] | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, props: dict[str, Any]) -> TokenInfo:
        return cls(
            id=props["id"],
            name=props["name"],
            roles=tuple(props["roles"]),
            projects=tuple(props["projects"]) if props.get("projects") is not None else None,
            created_at=props["createdAt"],
            expires_at=props.get("expiresAt"),
            revoked_at=props.get("revokedAt"),
        )


def now() -> datetime:
    return datetime.now(UTC)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_token(
    store: Store,
    name: str,
    roles: list[str],
    *,
    projects: list[str] | None = None,
    expires_at: datetime | None = None,
    secret: str | None = None,
) -> tuple[TokenInfo, str]:
    """A new token and its secret (shown once; only the hash is kept)."""
    if not name.strip():
        raise ValidationFailed("a token needs a name", field="name")
    if not roles:
        raise ValidationFailed(f"give at least one role ({', '.join(ROLES)})", field="roles")
    expand(roles)
    if expires_at is not None and expires_at <= now():
        raise ValidationFailed("expiresAt is in the past", field="expiresAt")
    secret = secret or TOKEN_PREFIX + secrets.token_urlsafe(32)
    props = {
        "id": ids.new_id("ApiToken"),
        "name": name,
        "hash": _hash(secret),
        "roles": sorted(set(roles)),
        "projects": sorted(set(projects)) if projects is not None else None,
        "createdAt": now(),
        "expiresAt": expires_at,
    }

    async def work(tx: Tx) -> TokenInfo:
        row = await tx.single(
            "MERGE (t:ApiToken {hash: $props.hash}) "
            "ON CREATE SET t = $props "
            "RETURN properties(t) AS t",
            {"props": props},
        )
        assert row is not None
        return TokenInfo.of(row["t"])

    created = await store.write(work)
    auth_cache.clear()
    return created, secret


async def list_tokens(store: Store) -> list[TokenInfo]:
    rows = await store.read("MATCH (t:ApiToken) RETURN properties(t) AS t ORDER BY t.createdAt")
    return [TokenInfo.of(r["t"]) for r in rows]


async def revoke_token(store: Store, token_id: str) -> TokenInfo:
    async def work(tx: Tx) -> TokenInfo:
        row = await tx.single(
            "MATCH (t:ApiToken {id: $id}) "
            "SET t.revokedAt = coalesce(t.revokedAt, $at) "
            "RETURN properties(t) AS t",
            {"id": token_id, "at": now()},
        )
        if row is None:
            raise NotFound(f"no token with id {token_id!r}", field="id")
        return TokenInfo.of(row["t"])

    revoked = await store.write(work)
    auth_cache.clear()
    return revoked


@dataclass(frozen=True)
class Verdict:
    principal: Principal | None
    reason: str  # why there is no principal


class _AuthCache:
    """Recent answers about tokens, per process, for ``ttl`` seconds (0: no caching).

    What is kept: tokens found valid, and whether any token exists. Unknown tokens are
    never kept, so a new token works at once. A revocation (or the first token, which ends
    local mode) made by another process takes effect within ``ttl``; made by this one, at
    once. A token's expiry is checked on every hit.
    """

    def __init__(self) -> None:
        self.ttl = 0.0
        self.principals: dict[str, tuple[float, Principal, datetime | None]] = {}
        self.any_tokens: tuple[float, bool] | None = None

    def clear(self) -> None:
        self.principals.clear()
        self.any_tokens = None

    def principal(self, digest: str) -> Principal | None:
        hit = self.principals.get(digest)
        if hit is None:
            return None
        until, principal, expires_at = hit
        if time.monotonic() >= until or (expires_at is not None and expires_at <= now()):
            del self.principals[digest]
            return None
        return principal

    def keep(self, digest: str, principal: Principal, expires_at: datetime | None) -> None:
        if self.ttl > 0:
            if len(self.principals) >= 10_000:
                self.principals.clear()
            self.principals[digest] = (time.monotonic() + self.ttl, principal, expires_at)


auth_cache = _AuthCache()


def cache_authentication(seconds: float) -> None:
    """Keep token answers for ``seconds`` in this process (LINEAGEHUB_AUTH_CACHE_SECONDS)."""
    auth_cache.ttl = max(0.0, seconds)
    auth_cache.clear()


async def authenticate(store: Store, secret: str) -> Verdict:
    """The principal a token stands for, or why it stands for none."""
    digest = _hash(secret)
    cached = auth_cache.principal(digest)
    if cached is not None:
        return Verdict(cached, "")
    rows = await store.read(
        "MATCH (t:ApiToken {hash: $hash}) RETURN properties(t) AS t",
        {"hash": digest},
        counted=False,
    )
    if not rows:
        return Verdict(None, "unknown token")
    token = TokenInfo.of(rows[0]["t"])
    if token.revoked_at is not None:
        return Verdict(None, f"token {token.name!r} was revoked")
    if token.expires_at is not None and token.expires_at <= now():
        return Verdict(None, f"token {token.name!r} expired at {token.expires_at.isoformat()}")
    principal = Principal(
        name=token.name,
        roles=expand(token.roles),
        projects=frozenset(token.projects) if token.projects is not None else None,
        token_id=token.id,
    )
    auth_cache.keep(digest, principal, token.expires_at)
    return Verdict(principal, "")


async def any_tokens(store: Store) -> bool:
    """Whether any live token exists (while none does, loopback serves in local mode)."""
    cached = auth_cache.any_tokens
    if cached is not None and time.monotonic() < cached[0]:
        return cached[1]
    rows = await store.read(
        "RETURN EXISTS { MATCH (t:ApiToken) WHERE t.revokedAt IS NULL } AS any", counted=False
    )
    found = bool(rows and rows[0]["any"])
    if auth_cache.ttl > 0:
        auth_cache.any_tokens = (time.monotonic() + auth_cache.ttl, found)
    return found


# --- project scoping ---------------------------------------------------------------------
#
# A RegisteredModel belongs to one project, and its versions and artifacts with it (as do
# experiments and their runs, and services, when given one). Nodes without a project
# (datasets, code, environments) are shared. A principal limited to projects neither sees
# nor changes nodes of other projects: every read adds ``in_scope(var)`` to its WHERE with
# the ``$scope`` parameter from ``scope_params()``.

DEFAULT_PROJECT = "default"


def scope() -> list[str] | None:
    """The projects the current principal may reach; None for all."""
    projects = actor().projects
    return sorted(projects) if projects is not None else None


def in_scope(var: str) -> str:
    """A Cypher predicate: is node ``var`` in the current principal's projects?"""
    if scope() is None:
        return "true"
    return f"({var}.project IS NULL OR {var}.project IN $scope)"


def scope_params() -> dict[str, Any]:
    return {"scope": scope() or []}


def may_act_in(project: str | None) -> bool:
    """Whether the current principal may act in ``project`` (None: no project, always)."""
    allowed = scope()
    return project is None or allowed is None or project in allowed


def check_project(project: str | None, field: str) -> None:
    """FORBIDDEN when the current principal may not act in ``project``."""
    if not may_act_in(project):
        raise Forbidden(
            f"{actor().name!r} is limited to projects {', '.join(scope() or [])}; "
            f"{project!r} is not one of them",
            field=field,
            details={"project": project},
        )

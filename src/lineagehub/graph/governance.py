"""Approvals of model versions and aliases with history.

A version's approval status moves NONE -> PENDING -> APPROVED | REJECTED; every decision is
kept as an ApprovalDecision (who, when, comment). An alias (``champion``, ``production``) is a
named pointer from a model to one of its versions; every move is kept as an AliasMove (from
which version to which, who, when, why), so "who held the alias at time T" is answerable.
Both lock the node they change first, so concurrent decisions and moves serialise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from lineagehub.graph import ids
from lineagehub.graph.entities import lock, now
from lineagehub.graph.errors import Conflict, Forbidden, NotFound, ValidationFailed
from lineagehub.graph.identity import Principal, in_scope, scope_params
from lineagehub.graph.records import ModelVersion, State
from lineagehub.graph.store import Store, Tx

ALIAS_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


class ApprovalStatus(Enum):
    NONE = "NONE"
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


@dataclass(frozen=True)
class ApprovalDecision:
    id: str
    version_id: str
    status: ApprovalStatus
    actor: str
    at: datetime
    comment: str | None

    @classmethod
    def of(cls, props: dict[str, Any]) -> ApprovalDecision:
        return cls(
            id=props["id"],
            version_id=props["versionId"],
            status=ApprovalStatus(props["status"]),
            actor=props["actor"],
            at=props["at"],
            comment=props.get("comment"),
        )


# Which statuses each decision may start from.
_ALLOWED_FROM: dict[ApprovalStatus, frozenset[ApprovalStatus]] = {
    ApprovalStatus.PENDING: frozenset({ApprovalStatus.NONE, ApprovalStatus.REJECTED}),
    ApprovalStatus.APPROVED: frozenset(
        {ApprovalStatus.NONE, ApprovalStatus.PENDING, ApprovalStatus.REJECTED}
    ),
    ApprovalStatus.REJECTED: frozenset(
        {ApprovalStatus.NONE, ApprovalStatus.PENDING, ApprovalStatus.APPROVED}
    ),
}


def status_of(version: dict[str, Any]) -> ApprovalStatus:
    return ApprovalStatus(version.get("approvalStatus") or ApprovalStatus.NONE.value)


async def decide(
    store: Store,
    version_id: str,
    status: ApprovalStatus,
    principal: Principal,
    *,
    comment: str | None,
    allow_self_approval: bool,
) -> tuple[ModelVersion, ApprovalDecision]:
    """Record a decision on a version (request, approve or reject) in one transaction."""
    if comment is not None and len(comment) > 4000:
        raise ValidationFailed("a comment holds at most 4000 characters", field="comment")

    async def work(tx: Tx) -> tuple[ModelVersion, ApprovalDecision]:
        version = await lock(tx, ModelVersion, version_id, field="versionId")
        current = status_of(version)
        if version["state"] == State.ARCHIVED.value:
            raise Conflict(f"ModelVersion {version['name']!r} is archived", field="versionId")
        if (
            status is ApprovalStatus.APPROVED
            and not allow_self_approval
            and version.get("author") is not None
            and version.get("author") == principal.name
        ):
            raise Forbidden(
                f"{principal.name!r} authored this version and cannot approve it "
                "(LINEAGEHUB_ALLOW_SELF_APPROVAL is off)",
                field="versionId",
            )
        if current not in _ALLOWED_FROM[status]:
            raise Conflict(
                f"the version is {current.value}; it cannot become {status.value} from there",
                field="versionId",
            )
        stamp = now()
        decision = {
            "id": ids.new_id("ApprovalDecision"),
            "versionId": version_id,
            "status": status.value,
            "actor": principal.name,
            "at": stamp,
            "comment": comment,
        }
        tx.touch(version_id, {"approvalStatus": current.value}, {"approvalStatus": status.value})
        row = await tx.single(
            "MATCH (v:Node:ModelVersion {id: $id}) "
            "SET v.approvalStatus = $status, v.updatedAt = $at "
            "CREATE (v)-[:HAS_DECISION]->(d:ApprovalDecision) "
            "SET d = $decision "
            "RETURN v {.*} AS v, properties(d) AS d",
            {
                "id": version_id,
                "status": status.value,
                "at": stamp,
                "decision": {k: v for k, v in decision.items() if v is not None},
            },
        )
        assert row is not None
        return ModelVersion.from_props(row["v"]), ApprovalDecision.of(row["d"])

    return await store.write(work)


async def decisions_of(store: Store, version_ids: list[str]) -> dict[str, list[ApprovalDecision]]:
    """Each version's decisions, newest first, in one round trip."""
    rows = await store.read(
        "UNWIND $ids AS id "
        "OPTIONAL MATCH (:Node:ModelVersion {id: id})-[:HAS_DECISION]->(d:ApprovalDecision) "
        "WITH id, d ORDER BY d.at DESC "
        "RETURN id, collect(properties(d)) AS decisions",
        {"ids": version_ids},
    )
    return {r["id"]: [ApprovalDecision.of(d) for d in r["decisions"]] for r in rows}


# --- aliases ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Alias:
    model_id: str
    name: str
    version_id: str
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True)
class AliasMove:
    id: str
    model_id: str
    alias: str
    from_version_id: str | None
    to_version_id: str | None
    actor: str
    at: datetime
    reason: str | None

    @classmethod
    def of(cls, props: dict[str, Any]) -> AliasMove:
        return cls(
            id=props["id"],
            model_id=props["modelId"],
            alias=props["alias"],
            from_version_id=props.get("fromVersionId"),
            to_version_id=props.get("toVersionId"),
            actor=props["actor"],
            at=props["at"],
            reason=props.get("reason"),
        )


def check_alias(name: str, field: str = "alias") -> None:
    if not ALIAS_PATTERN.match(name):
        raise ValidationFailed(
            "an alias starts with a letter and holds at most 64 letters, digits or _ . -",
            field=field,
        )


async def _model_by_name(tx: Tx, model: str) -> dict[str, Any]:
    row = await tx.single(
        "MATCH (m:RegisteredModel {name: $name}) "
        f"WHERE {in_scope('m')} "
        "SET m._lock = true REMOVE m._lock "
        "RETURN m {.*} AS m",
        {"name": model, **scope_params()},
    )
    if row is None:
        raise NotFound(f"no RegisteredModel named {model!r}", field="model")
    found: dict[str, Any] = row["m"]
    return found


async def move_alias(
    store: Store,
    model: str,
    alias: str,
    version: str | None,
    principal: Principal,
    *,
    reason: str | None,
    protected: frozenset[str],
) -> AliasMove:
    """Point ``model@alias`` at version ``version`` (a name), or remove it (None)."""
    check_alias(alias)
    if reason is not None and len(reason) > 4000:
        raise ValidationFailed("a reason holds at most 4000 characters", field="reason")
    if alias in protected:
        principal.require("approver", f"moving the protected alias {alias!r}")

    async def work(tx: Tx) -> AliasMove:
        m = await _model_by_name(tx, model)  # the model's lock serialises moves of its aliases
        row = await tx.single(
            "OPTIONAL MATCH (a:Alias {modelId: $modelId, name: $alias}) "
            "OPTIONAL MATCH (:Node:RegisteredModel {id: $modelId})-[:HAS_VERSION]->"
            "(v:ModelVersion {name: $version}) "
            "RETURN a.versionId AS current, v {.*} AS target",
            {"modelId": m["id"], "alias": alias, "version": version},
        )
        assert row is not None
        current: str | None = row["current"]
        target: dict[str, Any] | None = row["target"]
        if version is not None:
            if target is None:
                raise NotFound(f"{model!r} has no version {version!r}", field="version")
            if target["state"] == State.ARCHIVED.value:
                raise Conflict(f"version {version!r} is archived", field="version")
            if alias in protected and status_of(target) is not ApprovalStatus.APPROVED:
                raise Conflict(
                    f"{alias!r} is protected: it may only point at an APPROVED version; "
                    f"{version!r} is {status_of(target).value}",
                    field="version",
                )
        elif current is None:
            raise NotFound(f"{model}@{alias} does not exist", field="alias")
        stamp = now()
        to_id = target["id"] if target is not None else None
        move = {
            "id": ids.new_id("AliasMove"),
            "modelId": m["id"],
            "alias": alias,
            "fromVersionId": current,
            "toVersionId": to_id,
            "actor": principal.name,
            "at": stamp,
            "reason": reason,
        }
        tx.touch(m["id"], {f"alias:{alias}": current}, {f"alias:{alias}": to_id})
        await tx.run(
            "MATCH (m:Node:RegisteredModel {id: $modelId}) "
            "MERGE (a:Alias {modelId: $modelId, name: $alias}) "
            "ON CREATE SET a.createdAt = $at "
            "SET a.versionId = $to, a.updatedAt = $at, a.updatedBy = $actor "
            "MERGE (m)-[:HAS_ALIAS]->(a) "
            "CREATE (a)-[:MOVED]->(mv:AliasMove) SET mv = $move "
            "WITH a WHERE $to IS NULL "
            "DETACH DELETE a",
            {
                "modelId": m["id"],
                "alias": alias,
                "to": to_id,
                "at": stamp,
                "actor": principal.name,
                "move": {k: v for k, v in move.items() if v is not None},
            },
        )
        return AliasMove.of({k: v for k, v in move.items() if v is not None})

    return await store.write(work)


async def resolve_alias(store: Store, model: str, alias: str) -> ModelVersion | None:
    rows = await store.read(
        "MATCH (m:RegisteredModel {name: $model})-[:HAS_ALIAS]->(a:Alias {name: $alias}) "
        f"WHERE {in_scope('m')} "
        "MATCH (v:Node:ModelVersion {id: a.versionId}) "
        "RETURN v {.*} AS v",
        {"model": model, "alias": alias, **scope_params()},
    )
    return ModelVersion.from_props(rows[0]["v"]) if rows else None


async def alias_history(store: Store, model: str, alias: str | None) -> list[AliasMove]:
    """Moves of one alias (or all of the model's), newest first."""
    rows = await store.read(
        "MATCH (m:RegisteredModel {name: $model}) "
        f"WHERE {in_scope('m')} "
        "MATCH (mv:AliasMove {modelId: m.id}) "
        "WHERE $alias IS NULL OR mv.alias = $alias "
        "RETURN properties(mv) AS mv ORDER BY mv.at DESC",
        {"model": model, "alias": alias, **scope_params()},
    )
    return [AliasMove.of(r["mv"]) for r in rows]


async def alias_at(store: Store, model: str, alias: str, at: datetime) -> ModelVersion | None:
    """The version ``model@alias`` pointed at, at time ``at`` (None: it pointed nowhere)."""
    rows = await store.read(
        "MATCH (m:RegisteredModel {name: $model}) "
        f"WHERE {in_scope('m')} "
        "MATCH (mv:AliasMove {modelId: m.id, alias: $alias}) "
        "WHERE mv.at <= $at "
        "WITH mv ORDER BY mv.at DESC LIMIT 1 "
        "MATCH (v:Node:ModelVersion {id: mv.toVersionId}) "
        "RETURN v {.*} AS v",
        {"model": model, "alias": alias, "at": at, **scope_params()},
    )
    return ModelVersion.from_props(rows[0]["v"]) if rows else None


async def aliases_of_models(store: Store, model_ids: list[str]) -> dict[str, list[Alias]]:
    rows = await store.read(
        "UNWIND $ids AS id "
        "OPTIONAL MATCH (:Node:RegisteredModel {id: id})-[:HAS_ALIAS]->(a:Alias) "
        "WITH id, a ORDER BY a.name "
        "RETURN id, collect(properties(a)) AS aliases",
        {"ids": model_ids},
    )
    return {
        r["id"]: [
            Alias(a["modelId"], a["name"], a["versionId"], a["updatedAt"], a["updatedBy"])
            for a in r["aliases"]
        ]
        for r in rows
    }


async def aliases_of_versions(store: Store, version_ids: list[str]) -> dict[str, list[str]]:
    rows = await store.read(
        "UNWIND $ids AS id "
        "OPTIONAL MATCH (a:Alias {versionId: id}) "
        "WITH id, a ORDER BY a.name "
        "RETURN id, collect(a.name) AS names",
        {"ids": version_ids},
    )
    return {r["id"]: r["names"] for r in rows}


async def unapproved_deployments(store: Store) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(service, version) for every DEPLOYED service serving a version that is not APPROVED."""
    rows = await store.read(
        "MATCH (s:InferenceService {desiredState: 'DEPLOYED'})-[r:SERVES]->(v:ModelVersion) "
        "WHERE r.until IS NULL AND coalesce(v.approvalStatus, 'NONE') <> 'APPROVED' "
        f"AND {in_scope('v')} AND {in_scope('s')} "
        "RETURN s {.*} AS s, v {.*} AS v ORDER BY s.name",
        scope_params(),
    )
    return [(r["s"], r["v"]) for r in rows]

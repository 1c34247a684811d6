"""Deletes that keep lineage: a deleted node becomes a tombstone, and only admins purge.

A tombstone keeps its label and edges, so lineage through it still shows "deleted
ModelVersion v2 of churn-predictor" rather than a hole; it gives up its unique keys (name,
externalId, natural key) so they can be used again, and it leaves lookups and listings.
Deleting a model deletes its versions and artifacts with it and removes its aliases; a
version that an alias points at or a service serves must be released first.
"""

from __future__ import annotations

from typing import Any

from lineagehub.graph import ids
from lineagehub.graph.entities import lock, now
from lineagehub.graph.errors import Conflict, NotFound, ValidationFailed
from lineagehub.graph.identity import Principal
from lineagehub.graph.records import RECORD_TYPES, Entity, record_from
from lineagehub.graph.store import Store, Tx
from lineagehub.graph.vocabulary import COLUMN_LABEL, HAS_FIELD

DELETABLE = ("RegisteredModel", "ModelVersion", "Dataset", "InferenceService")


def _describe(label: str, props: dict[str, Any], model_name: str | None) -> str:
    what = f"deleted {label} {props['name']}"
    return f"{what} of {model_name}" if model_name else what


async def _bury(tx: Tx, node: dict[str, Any], label: str, text: str, principal: Principal) -> None:
    stamp = now()
    tx.touch(node["id"], {"deleted": False}, {"deleted": True, "tombstone": text})
    # The label is one of DELETABLE (or an artifact label), never input.
    await tx.run(
        f"MATCH (n:Node:`{label}` {{id: $id}}) "
        "SET n:Deleted, n.deletedAt = $at, n.deletedBy = $actor, n.tombstone = $text, "
        "    n.deletedName = n.name, n.name = n.id, "
        "    n.deletedExternalId = n.externalId, n.externalId = null, "
        "    n.datasetKey = CASE WHEN n.datasetKey IS NULL THEN null ELSE 'deleted:' + n.id END",
        {"id": node["id"], "at": stamp, "actor": principal.name, "text": text},
    )


async def delete(store: Store, node_id: str, principal: Principal) -> Entity:
    label = ids.label_of(node_id)
    if label not in DELETABLE:
        raise ValidationFailed(f"a {label} cannot be deleted", field="id")

    async def work(tx: Tx) -> Entity:
        node = await lock(tx, RECORD_TYPES[label], node_id, field="id")
        row = await tx.single(
            "MATCH (n:Node {id: $id}) "
            "OPTIONAL MATCH (m:RegisteredModel)-[:HAS_VERSION]->(n) "
            "RETURN m.name AS model, "
            "  COUNT { MATCH (a:Alias {versionId: $id}) } AS aliases, "
            "  COUNT { MATCH (s:InferenceService {desiredState: 'DEPLOYED'})-[r:SERVES]->(n) "
            "          WHERE r.until IS NULL } AS serving",
            {"id": node_id},
        )
        assert row is not None
        if row["aliases"] or row["serving"]:
            raise Conflict(
                "an alias points at this version or a service serves it: move the alias / "
                "undeploy first",
                field="id",
            )
        stamp = now()
        if label == "InferenceService" and node.get("servedVersionId"):
            await tx.run(
                "MATCH (:Node:InferenceService {id: $id})-[r:SERVES]->() WHERE r.until IS NULL "
                "SET r.until = $at",
                {"id": node_id, "at": stamp},
            )
            await tx.run(
                "MATCH (s:Node:InferenceService {id: $id}) "
                "SET s.desiredState = 'UNDEPLOYED' REMOVE s.servedVersionId",
                {"id": node_id},
            )
        if label == "RegisteredModel":
            children = await tx.run(
                "MATCH (m:Node:RegisteredModel {id: $id})-[:HAS_VERSION]->(v:ModelVersion) "
                "WHERE NOT v:Deleted "
                "OPTIONAL MATCH (v)-[:HAS_ARTIFACT]->(a:Artifact) WHERE NOT a:Deleted "
                "RETURN v {.*} AS v, collect(a {.*, kind: a.kind}) AS artifacts",
                {"id": node_id},
            )
            serving = await tx.single(
                "MATCH (:Node:RegisteredModel {id: $id})-[:HAS_VERSION]->(v) "
                "RETURN COUNT { MATCH (:InferenceService {desiredState: 'DEPLOYED'})"
                "-[r:SERVES]->(v) WHERE r.until IS NULL } AS serving",
                {"id": node_id},
            )
            if serving and serving["serving"]:
                raise Conflict(
                    "a service serves a version of this model: undeploy first", field="id"
                )
            await tx.run(
                "MATCH (:Node:RegisteredModel {id: $id})-[:HAS_ALIAS]->(a:Alias) DETACH DELETE a",
                {"id": node_id},
            )
            for child in children:
                version = child["v"]
                await _bury(
                    tx,
                    version,
                    "ModelVersion",
                    _describe("ModelVersion", version, node["name"]),
                    principal,
                )
                for artifact in child["artifacts"]:
                    await _bury(
                        tx,
                        artifact,
                        artifact["kind"],
                        f"deleted artifact {artifact['name']}",
                        principal,
                    )
        if label == "ModelVersion":
            artifacts = await tx.run(
                "MATCH (:Node:ModelVersion {id: $id})-[:HAS_ARTIFACT]->(a:Artifact) "
                "WHERE NOT a:Deleted "
                "RETURN a {.*} AS a",
                {"id": node_id},
            )
            for a in artifacts:
                await _bury(
                    tx, a["a"], a["a"]["kind"], f"deleted artifact {a['a']['name']}", principal
                )
        await _bury(tx, node, label, _describe(label, node, row["model"]), principal)
        found = await tx.single(
            "MATCH (n:Node {id: $id}) RETURN labels(n) AS labels, n {.*} AS n", {"id": node_id}
        )
        assert found is not None
        return record_from(found["labels"], found["n"])

    return await store.write(work)


async def purge(store: Store, node_id: str) -> str:
    """Remove a tombstone for good (its audit events stay). Returns what it was."""
    ids.label_of(node_id)

    async def work(tx: Tx) -> str:
        row = await tx.single(
            "MATCH (n:Node {id: $id}) RETURN n:Deleted AS deleted, n {.*} AS n", {"id": node_id}
        )
        if row is None:
            raise NotFound(f"no node with id {node_id!r}", field="id")
        if not row["deleted"]:
            raise Conflict("only a deleted node (a tombstone) can be purged", field="id")
        text: str = row["n"].get("tombstone") or node_id
        tx.touch(node_id, {"tombstone": text}, None)
        # A dataset's columns (graph/columns.py) go with it, and their lineage edges.
        await tx.run(
            f"MATCH (n:Node {{id: $id}}) OPTIONAL MATCH (n)-[:{HAS_FIELD}]->(f:{COLUMN_LABEL}) "
            "DETACH DELETE f, n",
            {"id": node_id},
        )
        return text

    return await store.write(work)

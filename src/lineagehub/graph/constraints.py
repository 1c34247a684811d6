"""Uniqueness constraints and indexes, created idempotently at start-up.

Each statement is a literal: labels and properties come from this file, never from input.
"""

from __future__ import annotations

from lineagehub.graph.store import Store, Tx

# name -> statement. The names are what /readyz checks for.
CONSTRAINTS: dict[str, str] = {
    "node_id": "CREATE CONSTRAINT node_id IF NOT EXISTS FOR (n:Node) REQUIRE n.id IS UNIQUE",
    "registered_model_name": (
        "CREATE CONSTRAINT registered_model_name IF NOT EXISTS "
        "FOR (n:RegisteredModel) REQUIRE n.name IS UNIQUE"
    ),
    "model_version_name": (
        "CREATE CONSTRAINT model_version_name IF NOT EXISTS "
        "FOR (n:ModelVersion) REQUIRE (n.modelId, n.name) IS UNIQUE"
    ),
    "artifact_name": (
        "CREATE CONSTRAINT artifact_name IF NOT EXISTS "
        "FOR (n:Artifact) REQUIRE (n.versionId, n.name) IS UNIQUE"
    ),
    "registered_model_external_id": (
        "CREATE CONSTRAINT registered_model_external_id IF NOT EXISTS "
        "FOR (n:RegisteredModel) REQUIRE n.externalId IS UNIQUE"
    ),
    "model_version_external_id": (
        "CREATE CONSTRAINT model_version_external_id IF NOT EXISTS "
        "FOR (n:ModelVersion) REQUIRE n.externalId IS UNIQUE"
    ),
    "model_artifact_external_id": (
        "CREATE CONSTRAINT model_artifact_external_id IF NOT EXISTS "
        "FOR (n:ModelArtifact) REQUIRE n.externalId IS UNIQUE"
    ),
    "doc_artifact_external_id": (
        "CREATE CONSTRAINT doc_artifact_external_id IF NOT EXISTS "
        "FOR (n:DocArtifact) REQUIRE n.externalId IS UNIQUE"
    ),
}

# Range indexes for the common sort and filter keys of listings.
INDEXES: dict[str, str] = {
    "registered_model_created_at": (
        "CREATE INDEX registered_model_created_at IF NOT EXISTS "
        "FOR (n:RegisteredModel) ON (n.createdAt)"
    ),
    "model_version_created_at": (
        "CREATE INDEX model_version_created_at IF NOT EXISTS FOR (n:ModelVersion) ON (n.createdAt)"
    ),
}


async def ensure_constraints(store: Store) -> None:
    """Create every constraint and index that is missing; a no-op when all exist."""
    for statement in [*CONSTRAINTS.values(), *INDEXES.values()]:

        async def create(tx: Tx, statement: str = statement) -> None:
            await tx.run(statement)

        await store.write(create)


async def missing_constraints(store: Store) -> list[str]:
    rows = await store.read("SHOW CONSTRAINTS YIELD name RETURN collect(name) AS names")
    present = set(rows[0]["names"]) if rows else set()
    return sorted(set(CONSTRAINTS) - present)

"""Uniqueness constraints and indexes, created idempotently at start-up.

They are derived from the record types (labels and property names written in code, never
taken from input): every type's externalId is unique, every type's name is unique within
its scope, and datasets and code refs are unique by their natural keys.
"""

from __future__ import annotations

import re

from neo4j import exceptions as neo4j_errors

from lineagehub.graph.records import RECORD_TYPES
from lineagehub.graph.store import Store, Tx
from lineagehub.graph.vocabulary import COLUMN_LABEL


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _statements() -> tuple[dict[str, str], dict[str, str]]:
    constraints = {
        "node_id": "CREATE CONSTRAINT node_id IF NOT EXISTS FOR (n:Node) REQUIRE n.id IS UNIQUE",
        "dataset_key": (
            "CREATE CONSTRAINT dataset_key IF NOT EXISTS "
            "FOR (n:Dataset) REQUIRE n.datasetKey IS UNIQUE"
        ),
        "code_ref_key": (
            "CREATE CONSTRAINT code_ref_key IF NOT EXISTS "
            "FOR (n:CodeRef) REQUIRE n.codeKey IS UNIQUE"
        ),
    }
    # Numeric ids for the Kubeflow REST edge, from one counter (see restids.py).
    constraints["node_rest_id"] = (
        "CREATE CONSTRAINT node_rest_id IF NOT EXISTS FOR (n:Node) REQUIRE n.restId IS UNIQUE"
    )
    constraints["sequence_name"] = (
        "CREATE CONSTRAINT sequence_name IF NOT EXISTS FOR (s:Sequence) REQUIRE s.name IS UNIQUE"
    )
    # A column is its dataset's id and its name (graph/columns.py).
    constraints["dataset_field_key"] = (
        f"CREATE CONSTRAINT dataset_field_key IF NOT EXISTS FOR (f:{COLUMN_LABEL}) "
        "REQUIRE (f.datasetId, f.name) IS UNIQUE"
    )
    constraints["run_log_rest_id"] = (
        "CREATE CONSTRAINT run_log_rest_id IF NOT EXISTS FOR (n:RunLog) REQUIRE n.restId IS UNIQUE"
    )
    indexes: dict[str, str] = {}
    for label, record in RECORD_TYPES.items():
        name = f"{_snake(label)}_external_id"
        constraints[name] = (
            f"CREATE CONSTRAINT {name} IF NOT EXISTS FOR (n:{label}) REQUIRE n.externalId IS UNIQUE"
        )
        index = f"{_snake(label)}_created_at"
        indexes[index] = f"CREATE INDEX {index} IF NOT EXISTS FOR (n:{label}) ON (n.createdAt)"
        # (The REST edge lists by REST id: the unique index is across every label.)
        index = f"{_snake(label)}_rest_id"
        indexes[index] = f"CREATE INDEX {index} IF NOT EXISTS FOR (n:{label}) ON (n.restId)"
        scoped = record.NAME_LABEL
        if record.NAME_SCOPE in (None, "datasetKey", "codeKey"):
            if record.NAME_SCOPE is None:
                name = f"{_snake(scoped)}_name"
                constraints[name] = (
                    f"CREATE CONSTRAINT {name} IF NOT EXISTS "
                    f"FOR (n:{scoped}) REQUIRE n.name IS UNIQUE"
                )
            continue
        name = f"{_snake(scoped)}_name"
        constraints[name] = (
            f"CREATE CONSTRAINT {name} IF NOT EXISTS "
            f"FOR (n:{scoped}) REQUIRE (n.{record.NAME_SCOPE}, n.name) IS UNIQUE"
        )
    indexes["dataset_uri"] = "CREATE INDEX dataset_uri IF NOT EXISTS FOR (n:Dataset) ON (n.uri)"
    constraints["audit_event_id"] = (
        "CREATE CONSTRAINT audit_event_id IF NOT EXISTS FOR (e:AuditEvent) REQUIRE e.id IS UNIQUE"
    )
    for prop in ("at", "actor", "action"):
        indexes[f"audit_event_{prop}"] = (
            f"CREATE INDEX audit_event_{prop} IF NOT EXISTS FOR (e:AuditEvent) ON (e.{prop})"
        )
    constraints["alias_name"] = (
        "CREATE CONSTRAINT alias_name IF NOT EXISTS "
        "FOR (a:Alias) REQUIRE (a.modelId, a.name) IS UNIQUE"
    )
    indexes["alias_version"] = (
        "CREATE INDEX alias_version IF NOT EXISTS FOR (a:Alias) ON (a.versionId)"
    )
    indexes["alias_move"] = (
        "CREATE INDEX alias_move IF NOT EXISTS FOR (m:AliasMove) ON (m.modelId, m.alias, m.at)"
    )
    for prop in ("seq", "id"):  # registry events: read in seq order, from a given one
        constraints[f"registry_event_{prop}"] = (
            f"CREATE CONSTRAINT registry_event_{prop} IF NOT EXISTS "
            f"FOR (r:RegistryEvent) REQUIRE r.{prop} IS UNIQUE"
        )
    for prop in ("id", "name"):  # webhooks: found by id, named uniquely
        constraints[f"webhook_{prop}"] = (
            f"CREATE CONSTRAINT webhook_{prop} IF NOT EXISTS "
            f"FOR (w:Webhook) REQUIRE w.{prop} IS UNIQUE"
        )
    for prop in ("hash", "id"):  # API tokens: found by hash, managed by id
        constraints[f"api_token_{prop}"] = (
            f"CREATE CONSTRAINT api_token_{prop} IF NOT EXISTS "
            f"FOR (t:ApiToken) REQUIRE t.{prop} IS UNIQUE"
        )
    return constraints, indexes


CONSTRAINTS, INDEXES = _statements()
INDEX_WAIT_SECONDS = 600


# What Neo4j answers a CREATE ... IF NOT EXISTS racing another one for the same rule: the
# other process (a worker starting beside this one) created it.
_CREATED_MEANWHILE = frozenset(
    {
        "Neo.ClientError.Schema.EquivalentSchemaRuleAlreadyExists",
        "Neo.ClientError.Schema.IndexAlreadyExists",
        "Neo.ClientError.Schema.ConstraintAlreadyExists",
    }
)


async def ensure_constraints(store: Store) -> None:
    """Create every constraint and index that is missing; a no-op when all exist, and
    safe while other processes do the same (``serve --workers N`` on a new database)."""
    for statement in [*CONSTRAINTS.values(), *INDEXES.values()]:

        async def create(tx: Tx, statement: str = statement) -> None:
            await tx.run(statement)

        try:
            await store.write(create)
        except neo4j_errors.ClientError as error:
            if error.code not in _CREATED_MEANWHILE:
                raise
    # Lists name the index they read (a planner hint), which fails while that index is
    # still being built (a new one on a large database, after an upgrade): ready once all
    # are online.
    await store.read(
        "CALL db.awaitIndexes($seconds)", {"seconds": INDEX_WAIT_SECONDS}, counted=False
    )


async def missing_constraints(store: Store) -> list[str]:
    rows = await store.read("SHOW CONSTRAINTS YIELD name RETURN collect(name) AS names")
    present = set(rows[0]["names"]) if rows else set()
    return sorted(set(CONSTRAINTS) - present)

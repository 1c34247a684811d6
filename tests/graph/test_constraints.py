"""Constraints and indexes are ensured at start-up, by every worker at once on a new
database (``serve --workers N``), against real Neo4j."""

from __future__ import annotations

import asyncio

from lineagehub.graph.constraints import INDEXES, ensure_constraints
from lineagehub.graph.store import Store
from lineagehub.settings import Settings


def test_workers_ensuring_the_same_rules_at_once_all_succeed(settings: Settings) -> None:
    """Concurrent CREATE ... IF NOT EXISTS of one rule: Neo4j may tell the loser that an
    equivalent rule already exists; that is success, not a failed start."""
    names = list(INDEXES)[:3]

    async def scenario() -> None:
        stores = [
            Store.connect(
                settings.neo4j_uri or "",
                user=settings.neo4j_user,
                password=settings.neo4j_password,
                database=settings.neo4j_database,
            )
            for _ in range(4)
        ]
        try:
            for _ in range(5):
                for name in names:
                    await stores[0].driver.execute_query(f"DROP INDEX {name} IF EXISTS")
                await asyncio.gather(*(ensure_constraints(store) for store in stores))
                rows = await stores[0].read("SHOW INDEXES YIELD name RETURN collect(name) AS n")
                assert set(names) <= set(rows[0]["n"])
        finally:
            for store in stores:
                await store.close()

    asyncio.run(scenario())

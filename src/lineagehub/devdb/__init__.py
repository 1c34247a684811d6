"""Development Neo4j: a real Neo4j Community server run from its Maven jars.

No Docker needed, only Java 17+ and Maven (for the one-time jar download)::

    from lineagehub.devdb import LocalNeo4j, free_port

    db = LocalNeo4j(tmp_path / "neo4j", port=free_port())
    db.start()          # blocks until Bolt answers on db.uri (auth disabled)
    ...
    db.stop()           # clean shutdown

See :mod:`lineagehub.devdb._local` for the environment variables.
"""

from lineagehub.devdb._local import (
    NEO4J_VERSION,
    DevDbError,
    LocalNeo4j,
    Status,
    default_port,
    default_state_dir,
    ensure_jars,
    find_java,
    free_port,
    jar_dir,
)

__all__ = [
    "NEO4J_VERSION",
    "DevDbError",
    "LocalNeo4j",
    "Status",
    "default_port",
    "default_state_dir",
    "ensure_jars",
    "find_java",
    "free_port",
    "jar_dir",
]

"""Every lookup by id goes through an id index.

Of the lineage types only ``Node.id`` has a uniqueness constraint (one index for all
types); a pattern such as ``(v:ModelVersion {id: $id})`` would scan every ModelVersion
instead. This reads the Cypher in graph/ and fails on any id lookup that carries neither
the :Node label nor another label with an id constraint of its own (API tokens, webhooks).
"""

from __future__ import annotations

import re

from lineagehub.graph.constraints import CONSTRAINTS
from tests.conftest import REPO

ID_LOOKUP = re.compile(r"\((\w*)((?::`?[\w{}.]+`?)+) \{\{?id: ")
ID_CONSTRAINT = re.compile(r"FOR \(\w+:(\w+)\) REQUIRE \w+\.id IS UNIQUE")
INDEXED = {m.group(1) for c in CONSTRAINTS.values() if (m := ID_CONSTRAINT.search(c))}


def test_id_lookups_use_the_node_index() -> None:
    offenders = []
    for path in sorted((REPO / "src" / "lineagehub" / "graph").glob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            for match in ID_LOOKUP.finditer(line):
                labels = match.group(2).split(":")
                if not INDEXED & set(labels):
                    offenders.append(f"{path.name}:{number}: {line.strip()}")
    assert not offenders, "id lookups without :Node:\n" + "\n".join(offenders)
    assert {"Node", "ApiToken", "Webhook"} <= INDEXED
    assert ID_LOOKUP.search('"MATCH (n:Node:ModelVersion {id: $id}) "')  # the rule still sees

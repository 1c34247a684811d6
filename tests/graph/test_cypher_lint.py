"""Every lookup by id goes through the :Node id index.

Only ``Node.id`` has a uniqueness constraint (one index for all types); a pattern such as
``(v:ModelVersion {id: $id})`` would scan every ModelVersion instead. This reads the Cypher
in graph/ and fails on any id lookup that does not carry the :Node label.
"""

from __future__ import annotations

import re

from tests.conftest import REPO

ID_LOOKUP = re.compile(r"\((\w*)((?::`?[\w{}.]+`?)+) \{\{?id: ")


def test_id_lookups_use_the_node_index() -> None:
    offenders = []
    for path in sorted((REPO / "src" / "lineagehub" / "graph").glob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            for match in ID_LOOKUP.finditer(line):
                labels = match.group(2).split(":")
                if "Node" not in labels and "ApiToken" not in labels:
                    offenders.append(f"{path.name}:{number}: {line.strip()}")
    assert not offenders, "id lookups without :Node:\n" + "\n".join(offenders)
    assert ID_LOOKUP.search('"MATCH (n:Node:ModelVersion {id: $id}) "')  # the rule still sees

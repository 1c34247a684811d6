"""``names_below`` (what a lineage read must fetch for a selection) walks the document
itself and remembers its answer per document; it must find exactly the field names
Strawberry's ``selected_fields`` show, which is what it replaced."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace
from typing import Any

import pytest
from graphql import FieldNode, FragmentDefinitionNode, OperationDefinitionNode, parse
from strawberry.types.nodes import SelectedField, convert_selections

from lineagehub.api.graphql import lineage
from lineagehub.api.graphql.lineage import names_below
from tests.test_queries_dir import QUERIES

SYNTHETIC = [
    # fragments, nested fragments, inline fragments, directives, aliases, one field twice
    """
    query Q($deep: Boolean!) {
      lineage(start: "x") {
        nodes { ...N node { ... on ModelVersion { aliases } } }
        again: edges @include(if: $deep) { from to }
      }
      lineage(start: "x") { moreBeyondDepth nodes { degree } }
    }
    fragment N on LineageNode { degree node { id ...Named } }
    fragment Named on RegistryEntity { name ... @skip(if: true) { description } }
    """,
    '{ modelVersion(model: "m", name: "1") { id trainingDatasets { name uri } } }',
    "{ __typename }",
]


def strawberry_names(selections: list[Any]) -> set[str]:
    """The names below, as read from Strawberry's converted selections."""
    found: set[str] = set()
    for item in selections:
        if isinstance(item, SelectedField):
            found.add(item.name)
        found |= strawberry_names(item.selections)
    return found


def field_groups(document: Any) -> list[list[FieldNode]]:
    """Every field of the document alone, and each field name selected twice at one level
    together (graphql-core hands such a field all of its nodes)."""
    groups: list[list[FieldNode]] = []

    def walk(selection_set: Any) -> None:
        by_key: dict[str, list[FieldNode]] = defaultdict(list)
        for node in selection_set.selections if selection_set else ():
            if isinstance(node, FieldNode):
                groups.append([node])
                by_key[node.alias.value if node.alias else node.name.value].append(node)
            walk(getattr(node, "selection_set", None))
        groups.extend(nodes for nodes in by_key.values() if len(nodes) > 1)

    for definition in document.definitions:
        walk(definition.selection_set)
    return groups


@pytest.mark.parametrize(
    "text",
    [path.read_text() for path in QUERIES] + SYNTHETIC,
    ids=[path.stem for path in QUERIES] + [f"synthetic{i}" for i in range(len(SYNTHETIC))],
)
def test_names_below_match_strawberry(text: str) -> None:
    document = parse(text)
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    info: Any = SimpleNamespace(fragments=fragments, variable_values=defaultdict(lambda: None))
    groups = field_groups(document)
    assert groups
    for nodes in groups:
        expected = set().union(
            *(strawberry_names(f.selections) for f in convert_selections(info, nodes))
        )
        assert names_below(nodes, fragments) == expected
        assert names_below(nodes, fragments) == expected  # remembered: the same answer


def first_field(text: str) -> FieldNode:
    operation = parse(text).definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    node = operation.selection_set.selections[0]
    assert isinstance(node, FieldNode)
    return node


def test_remembered_names_belong_to_their_nodes() -> None:
    """An entry is found again only for the very same nodes, never for other nodes that
    happen to get the same ids after the first document is gone."""
    node = first_field('{ lineage(start: "x") { nodes { degree } } }')
    assert names_below([node], {}) == {"nodes", "degree"}
    key = (id(node),)
    other_node = first_field('{ lineage(start: "x") { edges { from } } }')
    # Pretend the other document's node got the first node's id.
    lineage._NAMES_BELOW[(id(other_node),)] = lineage._NAMES_BELOW[key]
    assert names_below([other_node], {}) == {"edges", "from"}

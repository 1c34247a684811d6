"""``names_below`` (what a lineage read must fetch for a selection) walks the document
itself and remembers its answer per document; it must find exactly the field names
Strawberry's ``selected_fields`` show, which is what it replaced."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

import pytest
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    GraphQLObjectType,
    OperationDefinitionNode,
    parse,
)
from strawberry.types.nodes import SelectedField, convert_selections

from lineagehub.api.graphql import lineage
from lineagehub.api.graphql.execution import plain_field
from lineagehub.api.graphql.lineage import names_below
from lineagehub.api.graphql.schema import build_schema
from lineagehub.graph.records import RECORD_TYPES, reading_plan
from lineagehub.settings import Settings
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


class _Reads(dict[str, Any]):
    """Properties that remember which names a decoder looked at (and hold none)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.seen.add(key)
        return default

    def __getitem__(self, key: str) -> Any:
        self.seen.add(key)
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        self.seen.add(str(key))
        return False

    def keys(self) -> Any:
        self.seen.add("*")
        return iter(())

    def items(self) -> Any:
        self.seen.add("*")
        return iter(())


@pytest.mark.parametrize("type_name", ["ModelVersion", "InferenceService"])
def test_a_plain_field_needs_no_property_beyond_its_lookup_columns(type_name: str) -> None:
    """A lookup with a plain selection reads only the properties ``_ENTITY_PROPS`` names for
    the fields selected (plus the core ones): every plain field's record value must come
    from those alone, whatever its decoder reads."""
    schema = build_schema(Settings())._schema
    graphql_type = schema.type_map[type_name]
    assert isinstance(graphql_type, GraphQLObjectType)
    record = RECORD_TYPES[type_name]
    plan = {
        name: (stored, decoder)
        for name, stored, decoder in reading_plan(record)  # type: ignore[arg-type]
    }
    checked = 0
    for name in graphql_type.fields:
        attribute = plain_field(graphql_type, name)
        if attribute is None or name not in lineage._ENTITY_PROPS:
            continue  # a lookup selecting it reads every property
        if any("." in prop for prop in lineage._ENTITY_PROPS[name]):
            continue  # a family of properties (custom properties): so does this one
        allowed = set(lineage._ENTITY_PROPS[name]) | set(lineage._LOOKUP_CORE)
        assert attribute in plan, f"{type_name}.{name} is not a field of its record"
        stored, decoder = plan[attribute]
        if decoder is None:
            needed = {stored}
        else:
            reads = _Reads()
            with contextlib.suppress(KeyError, ValueError, TypeError):
                decoder(reads)
            needed = reads.seen
        assert needed <= allowed, f"{type_name}.{name} reads {needed - allowed}"
        checked += 1
    assert checked >= 8

"""GraphQL shapes of lineage answers: subgraphs, their nodes and edges, and paths."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import fields, replace
from datetime import datetime
from functools import lru_cache
from operator import attrgetter
from typing import Any

import strawberry
from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    InlineFragmentNode,
    VariableNode,
    get_nullable_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
)
from strawberry.types.nodes import SelectedField

from lineagehub.api.graphql.context import Info
from lineagehub.api.graphql.enums import EdgeType
from lineagehub.api.graphql.execution import Executor, GiveUp, Prepared, filler, plain_field
from lineagehub.api.graphql.types import RegistryEntity
from lineagehub.graph import lineage as engine
from lineagehub.graph import records
from lineagehub.graph.errors import LimitExceeded
from lineagehub.graph.properties import (
    HISTORY_STEPS,
    HISTORY_TIMES,
    HISTORY_VALUES,
    JSON_PREFIX,
    PARAM_JSON_PREFIX,
    PARAM_PREFIX,
    SCALAR_PREFIX,
)
from lineagehub.graph.records import RECORD_TYPES, Entity
from lineagehub.settings import Settings


def wrap(record: Entity) -> RegistryEntity:
    """The GraphQL object for any record."""
    from lineagehub.api.graphql.nodes import GRAPHQL_TYPES

    wrapped: RegistryEntity = GRAPHQL_TYPES[record.LABEL].from_record(record)
    return wrapped


@strawberry.type(description="A node reached by a lineage query.")
class LineageNode:
    node: RegistryEntity
    degree: int = strawberry.field(description="Hops from the start node (shortest).")
    path: list[strawberry.ID] | None = strawberry.field(
        description="Ids from the start to this node along one shortest path (withPaths: true)."
    )


@strawberry.type(description="An edge between two nodes of a lineage answer, as stored.")
class LineageEdge:
    from_: strawberry.ID = strawberry.field(name="from")
    to: strawberry.ID
    type: EdgeType
    since: datetime | None = strawberry.field(description="When the edge was recorded.")
    until: datetime | None = strawberry.field(
        description="When it stopped holding (e.g. a service moved to another version)."
    )

    @classmethod
    def of(cls, edge: engine.LineageEdge) -> LineageEdge:
        return cls(
            from_=strawberry.ID(edge.from_id),
            to=strawberry.ID(edge.to_id),
            type=EdgeType[edge.type],
            since=edge.since,
            until=edge.until,
        )


@strawberry.type(
    description="An edge into a project the caller may not see: reported, not followed."
)
class CutEdge:
    from_: strawberry.ID = strawberry.field(name="from", description="The visible end.")
    type: EdgeType


def _cut(cut: engine.CutEdge) -> CutEdge:
    return CutEdge(from_=strawberry.ID(cut.from_id), type=EdgeType[cut.type])


@strawberry.type(description="A lineage subgraph around a start node.")
class Lineage:
    start: RegistryEntity
    nodes: list[LineageNode] = strawberry.field(description="Nearest first; the start excluded.")
    edges: list[LineageEdge] = strawberry.field(description="Edges among the start and nodes.")
    truncated: bool = strawberry.field(description="True when `limit` cut nodes off.")
    omitted_nodes: int = strawberry.field(description="How many reachable nodes were cut.")
    reachable_nodes: int = strawberry.field(description="Nodes reachable within maxDepth.")
    more_beyond_depth: bool = strawberry.field(
        description="True when lineage goes on past maxDepth."
    )
    cut: list[CutEdge] = strawberry.field(
        description="Edges into projects the caller's token may not see (never followed)."
    )

    @classmethod
    def of(cls, found: engine.Lineage) -> Lineage:
        return cls(
            start=wrap(found.start),
            nodes=[
                LineageNode(
                    node=wrap(n.record),
                    degree=n.degree,
                    path=[strawberry.ID(i) for i in n.path] if n.path is not None else None,
                )
                for n in found.nodes
            ],
            edges=[LineageEdge.of(e) for e in found.edges],
            truncated=found.truncated,
            omitted_nodes=found.omitted,
            reachable_nodes=found.reachable,
            more_beyond_depth=found.more_beyond_depth,
            cut=[_cut(c) for c in found.cut],
        )


@strawberry.enum(description="How the path runs from `from` to `to`.")
class PathDirection(enum.Enum):
    UPSTREAM = "UPSTREAM"
    DOWNSTREAM = "DOWNSTREAM"
    MIXED = "MIXED"


@strawberry.type(description="How two nodes relate: the shortest lineage path between them.")
class LineagePath:
    direction: PathDirection
    length: int
    nodes: list[RegistryEntity]
    edges: list[LineageEdge]

    @classmethod
    def of(cls, found: engine.LineagePath) -> LineagePath:
        return cls(
            direction=PathDirection(found.direction),
            length=len(found.edges),
            nodes=[wrap(n) for n in found.nodes],
            edges=[LineageEdge.of(e) for e in found.edges],
        )


# Big stored values and the fields that show them: left out of a lineage answer whose
# selection asks for none of those fields (metric histories are most of a run's bytes).
_HEAVY: tuple[tuple[tuple[str, ...], frozenset[str]], ...] = (
    ((HISTORY_VALUES, HISTORY_STEPS, HISTORY_TIMES), frozenset({"metrics", "metric"})),
    (("schemaJson",), frozenset({"schema", "columns"})),
    (("profileJson",), frozenset({"profile"})),
)
# Everything a selection showing none of those fields leaves out.
HEAVY_PROPS = tuple(prefix for prefixes, _ in _HEAVY for prefix in prefixes)


def _entity_props() -> dict[str, tuple[str, ...]]:
    """GraphQL scalar field of a lineage node -> the stored properties (or prefixes) it
    reads: a record field's camelCase name is its stored property, except these."""
    from pydantic.alias_generators import to_camel

    props: dict[str, tuple[str, ...]] = {}
    for record in RECORD_TYPES.values():
        for f in fields(record):
            name = to_camel(f.name)
            props[name] = (name,)
    props.update(
        name=("name", "deletedName"),
        externalId=("externalId", "deletedExternalId"),
        deleted=("deletedAt",),
        customProperties=(SCALAR_PREFIX, JSON_PREFIX),
        customProperty=(SCALAR_PREFIX, JSON_PREFIX),
        params=(PARAM_PREFIX, PARAM_JSON_PREFIX),
        param=(PARAM_PREFIX, PARAM_JSON_PREFIX),
        metrics=(HISTORY_VALUES, HISTORY_STEPS, HISTORY_TIMES),
        metric=(HISTORY_VALUES, HISTORY_STEPS, HISTORY_TIMES),
        schema=("schemaJson",),
        columns=("schemaJson",),  # a dataset's columns, from its schema
        profile=("profileJson",),
    )
    return props


_ENTITY_PROPS = _entity_props()
# Fields of the lineage answer's own types, and of the values nodes show (custom
# properties, metric points): they read no node property.
_STRUCTURAL = frozenset(
    {
        "__typename", "start", "nodes", "node", "degree", "edges", "from", "to", "type",
        "since", "until", "truncated", "omittedNodes", "reachableNodes", "moreBeyondDepth",
        "cut", "key", "value", "stringValue", "intValue", "floatValue", "boolValue",
        "jsonValue", "step", "timestamp", "history",
    }
)  # fmt: skip
# Read for every node whatever is selected: what a record needs to be built at all. A
# node's other properties are read when a selected field shows them, and only then.
_CORE = ("id", "name", "state")


def props_shown_by(names: AbstractSet[str]) -> tuple[str, ...] | None:
    """The stored properties (names or prefixes) a lineage selection of fields ``names``
    shows, or None when it reaches beyond plain fields (then every property is read)."""
    keep = set(_CORE)
    for name in names:
        if name in _ENTITY_PROPS:
            keep.update(_ENTITY_PROPS[name])
        elif name not in _STRUCTURAL:
            return None
    return tuple(sorted(keep))


def _names_in(selection_set: Any, fragments: Mapping[str, Any], found: set[str]) -> None:
    """Adds to ``found`` every field name in ``selection_set`` at any depth (through
    fragments, whatever their directives say), as Strawberry's ``selected_fields`` show
    them."""
    for node in selection_set.selections if selection_set else ():
        if isinstance(node, FieldNode):
            found.add(node.name.value)
            _names_in(node.selection_set, fragments, found)
        elif isinstance(node, InlineFragmentNode):
            _names_in(node.selection_set, fragments, found)
        elif isinstance(node, FragmentSpreadNode):
            fragment = fragments.get(node.name.value)
            if fragment is not None:
                _names_in(fragment.selection_set, fragments, found)


# Field names below field nodes, by the nodes' ids; each entry keeps its nodes (alive, so
# their ids name no others). They depend on the document alone: clients send the same few
# documents, and the document cache hands back the very same nodes for the same text.
_NAMES_BELOW: dict[tuple[int, ...], tuple[tuple[FieldNode, ...], frozenset[str]]] = {}
_NAMES_BELOW_SIZE = 512  # a few fields for each of the 256 documents the cache keeps


def names_below(nodes: Sequence[FieldNode], fragments: Mapping[str, Any]) -> frozenset[str]:
    """Every field name selected below any of ``nodes`` (one field, maybe selected more
    than once), remembered for the document's nodes."""
    key = tuple(map(id, nodes))
    known = _NAMES_BELOW.get(key)
    if known is not None and all(a is b for a, b in zip(known[0], nodes, strict=True)):
        return known[1]
    found: set[str] = set()
    for node in nodes:
        _names_in(node.selection_set, fragments, found)
    names = frozenset(found)
    if len(_NAMES_BELOW) >= _NAMES_BELOW_SIZE:
        _NAMES_BELOW.clear()
    _NAMES_BELOW[key] = (tuple(nodes), names)
    return names


def selected_below(info: Info) -> frozenset[str] | None:
    """Every field name selected below the resolved field, over *all* its field nodes
    (graphql-core merges a field selected twice under one key, e.g. from two fragments)."""
    raw = info._raw_info
    if not raw.field_nodes:
        return None
    return names_below(raw.field_nodes, raw.fragments)


def props_unshown_by(selected: AbstractSet[str]) -> tuple[str, ...]:
    """Big property prefixes a lineage selection of fields ``selected`` never shows."""
    skipped: list[str] = []
    for prefixes, shown_by in _HEAVY:
        if not selected & shown_by:
            skipped += prefixes
    return tuple(skipped)


def reads_for(selected: AbstractSet[str] | None) -> dict[str, Any]:
    """What a lineage query must read for a selection naming fields ``selected`` below the
    lineage field (None: unknown, read everything), as ``LineageSpec`` arguments.
    Properties no field shows, and parts no field names (edges, their times, whether
    lineage goes on past maxDepth), are left out; a name anywhere below keeps its part
    (a superset, never less)."""
    return {
        "skip_props": props_unshown_by(selected or frozenset()),
        "keep_props": props_shown_by(selected) if selected is not None else None,
        "edges": selected is None or "edges" in selected,
        "edge_times": selected is None or bool({"since", "until"} & selected),
        "more": selected is None or "moreBeyondDepth" in selected,
    }


def spec_of(
    info: Info,
    *,
    direction: engine.Direction,
    max_depth: int | None,
    node_types: list[Any] | None,
    edge_types: list[Any] | None,
    since: datetime | None,
    until: datetime | None,
    limit: int | None,
    with_paths: bool,
) -> engine.LineageSpec:
    """A checked lineage request from GraphQL arguments (defaults and caps from settings)."""
    settings = info.context.settings
    # The fields selected below the lineage field decide which properties Neo4j returns.
    selected = selected_below(info)
    spec = engine.LineageSpec(
        **reads_for(selected),
        direction=direction,
        max_depth=settings.default_lineage_depth if max_depth is None else max_depth,
        node_types=tuple(t.value for t in node_types) if node_types else None,
        edge_types=tuple(t.value for t in edge_types) if edge_types else None,
        since=since,
        until=until,
        limit=settings.default_lineage_limit if limit is None else limit,
        with_paths=with_paths,
    )
    engine.check_spec(
        spec, max_depth=settings.max_lineage_depth, max_nodes=settings.max_lineage_nodes
    )
    return spec


async def load_lineage(info: Info, start: str, spec: engine.LineageSpec) -> Lineage:
    found = await info.context.loaders.lineage.load((start, spec))
    if found is None:
        from lineagehub.graph.errors import NotFound

        raise NotFound(f"no node with id {start!r}", field="start")
    if info.context.prepared_ok:
        return LineageAnswer(found)  # type: ignore[return-value]  # the executor knows it
    return Lineage.of(found)


class LineageAnswer(Prepared):
    """A lineage answer the fast executor completes from the rows read: ``Lineage.of``'s
    mapping, with nodes completed from their properties (``rows.entity_completer``)."""

    __slots__ = ("found",)

    def __init__(self, found: engine.Lineage) -> None:
        self.found = found

    def fallback(self) -> Lineage:
        return Lineage.of(self.found)

    def render(self, executor: Executor, return_type: Any, fields: Any) -> Any:
        plan = executor.compiled(
            ("lineage:Lineage", id(fields)),
            fields,
            lambda: _parts_plan(executor, _object_type(return_type), fields, _LINEAGE_PARTS),
        )
        if plan is None:
            raise GiveUp
        return plan(self.found)


Get = Callable[[Any], Any]
# How to compile the completion of one field: (executor, field type, field group) -> a
# function completing the field's value, or None when it can't be done without objects.
How = Callable[[Executor, Any, Any], Get | None]


def _object_type(field_type: Any) -> Any:
    """The object type inside a non-null, or a non-null list of non-nulls, else None."""
    while is_non_null_type(field_type) or is_list_type(field_type):
        field_type = field_type.of_type
    return field_type if is_object_type(field_type) else None


def _leaf(executor: Executor, field_type: Any, group: Any) -> Get | None:
    complete: Get | None = executor.completer(field_type, group)
    return complete


def _entity(executor: Executor, field_type: Any, group: Any) -> Get | None:
    from lineagehub.api.graphql.rows import entity_completer

    return entity_completer(executor, field_type, group)


def _items(item: How) -> How:
    """A non-null list of non-null objects, each completed as ``item`` compiles it."""

    def how(executor: Executor, field_type: Any, group: Any) -> Get | None:
        complete = item(executor, _object_type(field_type), group)
        if complete is None:
            return None
        return lambda values: [complete(value) for value in values]

    return how


def _objects(executor: Executor, object_type: Any, group: Any) -> Get | None:
    plan: Get | None = executor.plan(object_type, group)
    return plan


def _nodes(executor: Executor, object_type: Any, group: Any) -> Get | None:
    return _parts_plan(executor, object_type, group, _NODE_PARTS)


def _edges(executor: Executor, object_type: Any, group: Any) -> Get | None:
    return _parts_plan(executor, object_type, group, _EDGE_PARTS)


# The fields of Lineage and LineageNode as ``Lineage.of`` fills them: how each compiles,
# and what it shows of the engine's answer.
_LINEAGE_PARTS: dict[str, tuple[How, Get]] = {
    "truncated": (_leaf, lambda f: f.truncated),
    "omittedNodes": (_leaf, lambda f: f.omitted),
    "reachableNodes": (_leaf, lambda f: f.reachable),
    "moreBeyondDepth": (_leaf, lambda f: f.more_beyond_depth),
    "start": (_entity, lambda f: f.origin),
    "nodes": (_items(_nodes), lambda f: f.nodes),
    "edges": (_items(_edges), lambda f: f.edges),
    "cut": (_items(_objects), lambda f: [_cut(c) for c in f.cut]),
}
# LineageEdge's fields as ``LineageEdge.of`` fills them.
# (strawberry.ID is a NewType: its value is the str itself. EdgeType[name] as a dict
# lookup: the enum's own __getitem__ costs a few microseconds an edge.)
_EDGE_TYPE: dict[str, EdgeType] = dict(EdgeType.__members__)
_EDGE_PARTS: dict[str, tuple[How, Get]] = {
    "from": (_leaf, attrgetter("from_id")),
    "to": (_leaf, attrgetter("to_id")),
    "type": (_leaf, lambda e: _EDGE_TYPE[e.type]),
    "since": (_leaf, attrgetter("since")),
    "until": (_leaf, attrgetter("until")),
}
_NODE_PARTS: dict[str, tuple[How, Get]] = {
    "degree": (_leaf, attrgetter("degree")),
    "path": (_leaf, lambda n: [strawberry.ID(i) for i in n.path] if n.path is not None else None),
    "node": (_entity, lambda n: n),
}


def _parts_plan(
    executor: Executor, object_type: Any, fields: Any, parts: dict[str, tuple[How, Get]]
) -> Get | None:
    """How to complete ``object_type`` from the engine's answer, field by field."""
    if object_type is None:
        return None

    def field(name: str, group: Any) -> tuple[Get, Get] | None:
        if name not in parts:
            return None
        how, get = parts[name]
        complete = how(executor, object_type.fields[name].type, group)
        return None if complete is None else (get, complete)

    slots = executor.slots(object_type, fields, field)
    if slots is None:
        return None
    return filler(slots)


def shortcut_spec(
    info: Info, spec: engine.LineageSpec, needs: tuple[str, ...] = ()
) -> engine.LineageSpec:
    """A shortcut's fixed request, reading what its field shows: the nodes only (no edges,
    no probe beyond depth), with the properties its selection shows plus ``needs`` (those
    the resolver itself reads)."""
    return _shortcut_request(selected_below(info), spec, needs)


@lru_cache(maxsize=1024)
def _shortcut_request(
    selected: frozenset[str] | None, spec: engine.LineageSpec, needs: tuple[str, ...]
) -> engine.LineageSpec:
    reads = reads_for(selected)
    if reads["keep_props"] is not None:
        reads["keep_props"] = tuple(sorted({*reads["keep_props"], *needs}))
    return replace(spec, **{**reads, "edges": False, "more": False})


def _included(node: Any, variables: Mapping[str, Any]) -> bool:
    """graphql-core's verdict on a selection's ``@skip`` and ``@include``."""
    for directive in node.directives or ():
        name = directive.name.value
        if name not in ("skip", "include"):
            continue
        value = next((a.value for a in directive.arguments if a.name.value == "if"), None)
        flag = (
            variables.get(value.name.value)
            if isinstance(value, VariableNode)
            else getattr(value, "value", None)
        )
        if (name == "skip") == bool(flag):  # skipped when true, not included when false
            return False
    return True


def _field_nodes_below(raw: Any, selection_sets: list[Any]) -> list[FieldNode]:
    """The field nodes graphql-core will execute directly below a field with these
    selection sets: through fragments, without those ``@skip``/``@include`` leave out,
    in document order (the order it collects them in)."""
    found: list[FieldNode] = []
    for selection_set in selection_sets:
        for node in selection_set.selections if selection_set else ():
            if not _included(node, raw.variable_values):
                continue
            if isinstance(node, FieldNode):
                found.append(node)
            elif isinstance(node, InlineFragmentNode):
                found += _field_nodes_below(raw, [node.selection_set])
            elif isinstance(node, FragmentSpreadNode):
                fragment = raw.fragments.get(node.name.value)
                if fragment is not None:
                    found += _field_nodes_below(raw, [fragment.selection_set])
    return found


def _below(info: Info) -> list[FieldNode]:
    raw = info._raw_info
    return _field_nodes_below(raw, [node.selection_set for node in raw.field_nodes])


# Read for a looked-up node whatever is selected on it: what its record needs to be built
# at all, and whether it is live.
_LOOKUP_CORE = ("deletedAt", *_CORE)


def lookup_columns(
    info: Info, answered: Mapping[str, tuple[str, ...]] | None = None
) -> tuple[str, ...] | None:
    """The stored properties a looked-up node must have for what is selected on it, when
    every field selected is plain (its value is the record's attribute, read from the
    properties ``_ENTITY_PROPS`` names) and none is a family of properties (custom
    properties): those, plus what any record needs. Fields named in ``answered`` are
    resolved otherwise (a shortcut the lookup's own query answers, the version a
    service serves): each needs only the properties given for it. None:
    read every property (a field with a resolver may read anything), as a server without
    the fast path always does (``tests/api/test_fast_path.py`` compares the two)."""
    parent = get_nullable_type(info._raw_info.return_type)
    if not info.context.settings.fast_path or not isinstance(parent, GraphQLObjectType):
        return None
    shown = tuple(sorted(answered.items())) if answered else ()
    columns: tuple[str, ...] | None = _kept_for_selection(
        info, ("lookup_columns", shown), lambda: _lookup_columns(info, parent, answered)
    )
    return columns


def _kept_for_selection(info: Info, name: Any, compute: Callable[[], Any]) -> Any:
    """``compute()``, for what depends only on the selection below this field (its field
    nodes, the document's fragments, the values of ``@skip``/``@include``): kept across
    requests as the executor keeps its plans (``Executor.memo``); computed every time
    without the fast executor."""
    raw = info._raw_info
    executor = info.context.executor
    if not isinstance(executor, Executor):
        return compute()
    return executor.memo((name, raw.parent_type.name, raw.field_name), raw.field_nodes, compute)


def _lookup_columns(
    info: Info, parent: GraphQLObjectType, answered: Mapping[str, tuple[str, ...]] | None
) -> tuple[str, ...] | None:
    keep = set(_LOOKUP_CORE)
    for node in _below(info):
        name = node.name.value
        if name == "__typename":
            continue
        if answered is not None and name in answered:
            keep.update(answered[name])
            continue
        if node.arguments or name not in _ENTITY_PROPS or plain_field(parent, name) is None:
            return None
        keep.update(_ENTITY_PROPS[name])
    return engine.named_columns(tuple(keep))


def lookahead(
    info: Info, shortcuts: Mapping[str, Callable[[Settings, dict[str, Any]], engine.LineageSpec]]
) -> list[engine.LineageSpec]:
    """The requests the shortcut fields selected right below this field will load (keyed
    exactly as ``shortcut`` keys them), so that the lookup resolving this field can answer
    them in its own query. Each field's nodes are those graphql-core will give its
    resolver (``@skip``/``@include`` applied); what is read below them is what the
    resolver's ``selected_below`` will see, and its arguments those it will receive."""
    raw = info._raw_info
    by_key: dict[str, list[SelectedField]] = {}
    nodes_by_key: dict[str, list[FieldNode]] = {}
    for node in _below(info):
        if node.name.value in shortcuts:
            key = node.alias.value if node.alias else node.name.value
            by_key.setdefault(key, []).append(SelectedField.from_node(raw, node))
            nodes_by_key.setdefault(key, []).append(node)
    requests: list[engine.LineageSpec] = []
    for key, merged in by_key.items():
        # graphql-core takes arguments from the first node; a variable left out reads as
        # None here, while the resolver gets the argument's default: leave it out too.
        given = {k: v for k, v in merged[0].arguments.items() if v is not None}
        spec = shortcuts[merged[0].name](info.context.settings, given)
        selected = names_below(nodes_by_key[key], raw.fragments)
        request = _shortcut_request(selected, spec, ())
        if request not in requests:
            requests.append(request)
    return requests


async def shortcut(
    info: Info, start: str, spec: engine.LineageSpec, label: str, needs: tuple[str, ...] = ()
) -> list[Any]:
    """The ``label`` nodes of a fixed lineage request, nearest first (batched): the full
    answer, or LIMIT_EXCEEDED, never a silently partial list. ``needs``: stored
    properties the caller reads beyond what its selection shows."""
    found = await info.context.loaders.lineage.load((start, shortcut_spec(info, spec, needs)))
    if found is None:
        return []
    if found.truncated:
        raise LimitExceeded(
            f"more than {spec.limit} nodes are involved; page through them with lineage()",
            details={"maximum": spec.limit},
        )
    # A record is built only for nodes that carry the label (its type is one of them).
    return [wrap(n.record) for n in found.nodes if label in n.labels and label == n.record.LABEL]


def serves_plainly(info: Info) -> bool:
    """Whether ``modelVersion`` is selected below this field with no shortcut field below
    it (the version, then, is best read with what selects it; with shortcuts,
    ``version_ahead`` reads it with their answers)."""
    from lineagehub.api.graphql.types import VERSION_SHORTCUTS

    raw = info._raw_info

    def plainly() -> bool:
        below = [node for node in _below(info) if node.name.value == "modelVersion"]
        return bool(below) and not any(
            node.name.value in VERSION_SHORTCUTS
            for node in _field_nodes_below(raw, [child.selection_set for child in below])
        )

    served: bool = _kept_for_selection(info, "serves_plainly", plainly)
    return served


def prime(
    info: Info, start: str, requests: Sequence[engine.LineageSpec], answers: list[engine.Lineage]
) -> None:
    """Hand the lineage loader answers a lookup read ahead, under the keys their shortcut
    fields will load."""
    for request, answer in zip(requests, answers, strict=True):
        info.context.loaders.lineage.prime((start, request), answer)


async def version_ahead(info: Info, version_id: str) -> records.ModelVersion | None:
    """A version by id (batched), with the shortcut fields selected on it answered in the
    same query (``lookahead``)."""
    from lineagehub.api.graphql.types import VERSION_SHORTCUTS

    ahead = tuple(lookahead(info, VERSION_SHORTCUTS))
    if not ahead:
        return await info.context.loaders.by_id(records.ModelVersion).load(version_id)
    found = await info.context.loaders.versions_ahead.load((version_id, ahead))
    if found is None:
        return None
    record, answers = found
    prime(info, record.id, ahead, answers)
    return record


async def hop(info: Info, start: str, step: engine.Hop) -> list[Any]:
    """The GraphQL objects one ``step`` from ``start`` (batched across parents)."""
    return [wrap(r) for r in await info.context.loaders.neighbours.load((start, step))]

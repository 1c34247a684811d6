"""The lineage engine: subgraphs upstream/downstream of nodes, and paths between two nodes.

One Cypher query answers a lineage request for any number of start nodes (so a list of
versions each asking for its lineage still costs one round trip). The walk is breadth-first,
one level per step, each step expanding only the previous level's new nodes along directed,
typed edges: each reachable node is found once, at its smallest distance (``degree``), and
the cost follows the size of the answer. (An undirected ``ANY SHORTEST`` search with the
direction as a predicate, the first version, let Neo4j 5.26 check direction only after
finding paths and spread through popular nodes: 100x slower on a 1M-node graph.) Edges
between the nodes kept are returned too, so the answer is a drawable subgraph.

Direction is lineage's, not storage's: see ``vocabulary.Flow``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from functools import cache, lru_cache
from typing import Any, NamedTuple

from lineagehub.graph.coalesce import KEY_INDEX, KEYED
from lineagehub.graph.errors import LimitExceeded, NotFound, ValidationFailed
from lineagehub.graph.identity import in_scope, scope, scope_params
from lineagehub.graph.records import TEMPORAL_PROPS, Entity, record_from
from lineagehub.graph.store import (
    Store,
    ValuesDecoder,
    decode_node,
    iso,
    node_map,
    node_projection,
    node_values,
    values_decoder,
)
from lineagehub.graph.vocabulary import EDGE_TYPES, LINEAGE_EDGE_TYPES, NODE_TYPES, Flow


class Direction(Enum):
    UPSTREAM = "UPSTREAM"
    DOWNSTREAM = "DOWNSTREAM"
    BOTH = "BOTH"


@dataclass(frozen=True)
class LineageSpec:
    direction: Direction = Direction.UPSTREAM
    max_depth: int = 5
    node_types: tuple[str, ...] | None = None  # only these may be visited (start excepted)
    edge_types: tuple[str, ...] | None = None  # default: every lineage edge type
    since: datetime | None = None  # with since/until: edges valid at some time in the window
    until: datetime | None = None  # without: edges valid now
    limit: int = 200
    with_paths: bool = False
    # Property name prefixes the answer may leave out (the caller shows none of them).
    skip_props: tuple[str, ...] = ()
    # When set: the only property names (or name prefixes) the caller shows.
    keep_props: tuple[str, ...] | None = None
    # Parts of the answer the caller may not show, left out of the query when False:
    # the edges among the nodes, their since/until, and whether lineage goes on past
    # maxDepth (one more level to expand).
    edges: bool = True
    edge_times: bool = True
    more: bool = True


class LineageNode:
    """A node of an answer: its labels and properties as read, how far it is from the
    start, and (``withPaths``) the ids along one shortest path to it. Its record is built
    on first use: a caller showing plain fields can read the properties directly."""

    __slots__ = ("_record", "degree", "labels", "path", "props")

    def __init__(
        self, labels: list[str], props: dict[str, Any], degree: int, path: list[str] | None
    ) -> None:
        self.labels = labels
        self.props = props
        self.degree = degree  # hops from the start
        self.path = path
        self._record: Entity | None = None

    @property
    def record(self) -> Entity:
        if self._record is None:
            self._record = record_from(self.labels, self.props)
        return self._record


class LineageEdge(NamedTuple):
    """An edge of an answer (a named tuple: a large answer makes thousands)."""

    from_id: str
    to_id: str
    type: str
    since: datetime | None
    until: datetime | None


@dataclass(frozen=True)
class CutEdge:
    """An edge from a node of the answer to a node the caller may not see."""

    from_id: str
    type: str


@dataclass(frozen=True)
class Lineage:
    origin: LineageNode  # the start node (degree 0)
    nodes: list[LineageNode]
    edges: list[LineageEdge]
    reachable: int  # nodes reachable within the depth (before the limit)
    more_beyond_depth: bool  # some node at maxDepth has further lineage
    cut: list[CutEdge]  # edges into other projects, reported rather than followed

    @property
    def start(self) -> Entity:
        return self.origin.record

    @property
    def truncated(self) -> bool:
        return self.reachable > len(self.nodes)

    @property
    def omitted(self) -> int:
        return self.reachable - len(self.nodes)


@dataclass(frozen=True)
class LineagePath:
    direction: str  # UPSTREAM, DOWNSTREAM, or MIXED (related through a common node)
    nodes: list[Entity]
    edges: list[LineageEdge]


def check_spec(spec: LineageSpec, *, max_depth: int, max_nodes: int) -> None:
    """VALIDATION / LIMIT_EXCEEDED naming the argument, before any query runs."""
    if spec.max_depth < 1:
        raise ValidationFailed("maxDepth must be at least 1", field="maxDepth")
    if spec.max_depth > max_depth:
        raise LimitExceeded(
            f"maxDepth={spec.max_depth} exceeds the cap of {max_depth}",
            field="maxDepth",
            details={"maximum": max_depth},
        )
    if spec.limit < 1:
        raise ValidationFailed("limit must be at least 1", field="limit")
    if spec.limit > max_nodes:
        raise LimitExceeded(
            f"limit={spec.limit} exceeds the cap of {max_nodes} nodes",
            field="limit",
            details={"maximum": max_nodes},
        )
    for label in spec.node_types or ():
        if label not in NODE_TYPES:
            raise ValidationFailed(f"{label!r} is not a node type", field="nodeTypes")
    for edge in spec.edge_types or ():
        if edge not in EDGE_TYPES:
            raise ValidationFailed(f"{edge!r} is not an edge type", field="edgeTypes")
    if spec.since and spec.until and spec.until < spec.since:
        raise ValidationFailed("until is before since", field="until")


def _step(direction: Direction, edge_types: tuple[str, ...]) -> str:
    """Predicate on one step ``(a)-[r]-(b)``: does it go ``direction`` from a to b?"""
    forward = [t for t in edge_types if EDGE_TYPES[t].flow is Flow.FORWARD]
    backward = [t for t in edge_types if EDGE_TYPES[t].flow is Flow.BACKWARD]
    if direction is Direction.DOWNSTREAM:
        forward, backward = backward, forward
    # Upstream: b is a cause of a. A FORWARD edge then runs b->a; a BACKWARD edge a->b.
    terms = []
    if forward:
        terms.append(f"(startNode(r) = b AND type(r) IN {forward!r})")
    if backward:
        terms.append(f"(startNode(r) = a AND type(r) IN {backward!r})")
    return "(" + (" OR ".join(terms) or "false") + ")"


def _window(spec: LineageSpec, r: str = "r") -> str:
    if spec.since is None and spec.until is None:
        return f"{r}.until IS NULL"
    terms = []
    if spec.since is not None:
        terms.append(f"({r}.until IS NULL OR {r}.until >= $since)")
    if spec.until is not None:
        terms.append(f"coalesce({r}.since <= $until, true)")
    return " AND ".join(terms)


def _types(spec: LineageSpec) -> tuple[str, ...]:
    return spec.edge_types or LINEAGE_EDGE_TYPES


def _expansions(direction: Direction, edge_types: tuple[str, ...], where: str) -> list[str]:
    """Directed one-hop patterns from ``a`` to ``b`` going ``direction`` (one per storage
    direction), each filtered by ``where``: the walk never tries an edge the wrong way."""
    forward = [t for t in edge_types if EDGE_TYPES[t].flow is Flow.FORWARD]
    backward = [t for t in edge_types if EDGE_TYPES[t].flow is Flow.BACKWARD]
    if direction is Direction.DOWNSTREAM:
        forward, backward = backward, forward
    # Upstream: b is a cause of a. A FORWARD edge then runs b->a; a BACKWARD edge a->b.
    patterns = []
    if forward:
        patterns.append(f"MATCH (a)<-[r:{'|'.join(forward)}]-(b) WHERE {where} RETURN b")
    if backward:
        patterns.append(f"MATCH (a)-[r:{'|'.join(backward)}]->(b) WHERE {where} RETURN b")
    return patterns or ["MATCH (b) WHERE false RETURN b"]


def _walk(
    direction: Direction,
    edge_types: tuple[str, ...],
    depth: int,
    where: str,
    more: bool,
    i: int,
    paths: bool = True,
) -> str:
    """A Cypher subquery that walks from ``s`` breadth-first, one level per step, and returns
    ``reached<i>`` ({n, degree, path} for each node, at its smallest degree) and
    ``more<i>`` (whether the last level has further lineage; false unless ``more``).
    Cost follows the answer: each level expands only the previous level's new nodes,
    along directed, typed edges. Without ``paths``, no path is carried along (null)."""
    step = " UNION ".join(_expansions(direction, edge_types, where))
    shape = _WITH_PATHS if paths else _NODES_ONLY
    level = (
        f"CALL (frontier, seen) {{   {shape.unwind}   CALL (a) {{ {step} }}   {shape.collect} }} "
    )
    query = f"CALL (s) {{ WITH s, [s] AS seen, {shape.start} AS frontier, [] AS reached "
    for degree in range(1, depth + 1):
        query += level + (
            f"WITH s, seen + {shape.new_nodes} AS seen, next AS frontier, "
            f"reached + [x IN next | {shape.reached.format(degree=degree)}] AS reached "
        )
    return query + _ending(step, more, i, shape.unwind_nodes)


@dataclass(frozen=True)
class _Frontier:
    """What a walk's frontier holds, as Cypher pieces: the start, how an entry becomes
    ``a`` (``unwind``; ``unwind_nodes`` for the nodes alone), how the step's new ``b``s
    become ``next``, the nodes of ``next``, and a reached entry at ``{degree}``."""

    start: str
    unwind: str
    unwind_nodes: str
    collect: str
    new_nodes: str
    reached: str


# Each entry a node and its path from the start (one shortest path each).
_WITH_PATHS = _Frontier(
    start="[{n: s, path: [s.id]}]",
    unwind="UNWIND frontier AS f WITH f.n AS a, f.path AS path",
    unwind_nodes="UNWIND frontier AS f WITH f.n AS a",
    collect=(
        "WITH b, path WHERE NOT b IN seen WITH b, head(collect(path)) AS path "
        "RETURN collect({n: b, path: path + b.id}) AS next"
    ),
    new_nodes="[x IN next | x.n]",
    reached="{{n: x.n, degree: {degree}, path: x.path}}",
)
# Each entry a node: the same levels, less to build at each.
_NODES_ONLY = _Frontier(
    start="[s]",
    unwind="UNWIND frontier AS a",
    unwind_nodes="UNWIND frontier AS a",
    collect="WITH DISTINCT b WHERE NOT b IN seen RETURN collect(b) AS next",
    new_nodes="next",
    reached="{{n: x, degree: {degree}}}",  # no path: k.path reads null
)


def _ending(step: str, more: bool, i: int, unwind: str) -> str:
    """A walk's end: ``reached<i>``, and ``more<i>``: does the last level (``unwind``
    makes its nodes ``a``) have further lineage (computed only when ``more``)."""
    if not more:
        return f"RETURN reached AS reached{i}, false AS more{i} }} "
    return (
        "CALL (frontier, seen) { "
        f"  {unwind} "
        f"  CALL (a) {{ {step} }} "
        "  WITH b WHERE NOT b IN seen "
        "  RETURN count(b) > 0 AS more "
        "} "
        f"RETURN reached AS reached{i}, more AS more{i} }} "
    )


@lru_cache(maxsize=512)
def _subgraph_parts(
    directions: tuple[Direction, ...],
    edge_types: tuple[str, ...],
    depth: int,
    window: str,
    filter_nodes: bool,
    scoped: bool,
    skip: bool = False,
    parts: tuple[bool, bool, bool] = (True, True, True),
    columns: tuple[str, ...] | None = None,
    paths: bool = True,
) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The Cypher for one shape of request, from start node ``s`` on: the clauses, and
    the (column, expression) pairs it returns. Every piece interpolated here is either an
    integer checked against the cap, a name from the vocabulary, or a stored property
    name of a record type (``columns``): no user text.

    ``scoped``: the caller is limited to projects; the walk never enters a node of another
    project, and every edge from the answer to such a node is reported as cut.
    ``parts``: (edges, their since/until, more beyond depth), each left out when False.
    ``columns``: nodes come back as ``node_values`` of these properties (else ``node_map``).
    ``paths``: carry each node's path from the start along the walk."""
    edges_wanted, times_wanted, more_wanted = parts
    rel = "|".join(edge_types)
    visible = "(b.project IS NULL OR b.project IN $scope)"
    where = window
    if filter_nodes:
        where += " AND any(l IN labels(b) WHERE l IN $nodeTypes)"
    if scoped:
        where += f" AND {visible}"
    walks = ""
    for i, direction in enumerate(directions):
        walks += _walk(direction, edge_types, depth, where, more_wanted, i, paths)
    # Each edge as [from, to, type] (+ since, until): lists decode faster than maps.
    times = ", toString(r.since), toString(r.until)" if times_wanted else ""
    edges = (
        "CALL (members) { "
        "  UNWIND members AS a "
        f"  MATCH (a)-[r:{rel}]->(b) "
        f"  WHERE b IN members AND {window} "
        f"  RETURN collect([a.id, b.id, type(r){times}]) AS edges "
        "} "
        if edges_wanted
        else "WITH *, [] AS edges "
    )

    def project(var: str) -> str:
        if columns is None:
            return node_map(var, skip=skip)
        return node_values(var, columns, TEMPORAL_PROPS)

    # Both directions may reach a node twice: keep it at its smaller degree.
    dedupe = (
        "WITH x ORDER BY x.degree WITH x.n AS n, head(collect(x)) AS x "
        if len(directions) > 1
        else "WITH x.n AS n, x "
    )
    everything = " + ".join(f"reached{i}" for i in range(len(directions)))
    more = " OR ".join(f"more{i}" for i in range(len(directions)))
    cut = (
        "CALL (members) { "
        "  UNWIND members AS a "
        f"  MATCH (a)-[r:{rel}]-(b) "
        f"  WHERE NOT {visible} AND {window} "
        "  RETURN collect({from: a.id, type: type(r)}) AS cut "
        "} "
        if scoped
        else "WITH *, [] AS cut "
    )
    clauses = (
        f"{walks}"
        f"WITH s, {everything} AS everything, {more} AS more "
        "CALL (everything) { "
        "  UNWIND everything AS x "
        f"{dedupe}"
        "  ORDER BY x.degree, n.id "
        "  RETURN collect(x) AS reached "
        "} "
        "WITH s, more, reached[0..$limit] AS kept, size(reached) AS reachable "
        "WITH s, more, kept, reachable, [s] + [k IN kept | k.n] AS members "
        f"{edges}"
        f"{cut}"
    )
    # Each node as [degree, path, projection]; a node_values projection is spliced in
    # (one flat list per node: lists decode faster than maps).
    node = project("k.n")
    node = f"[k.degree, k.path] + {node}" if columns is not None else f"[k.degree, k.path, {node}]"
    returns = (
        ("startId", "s.id"),
        ("start", project("s")),
        ("nodes", f"[k IN kept | {node}]"),
        ("edges", "edges"),
        ("cut", "cut"),
        ("reachable", "reachable"),
        ("more", "more"),
    )
    return clauses, returns


def _subgraph_query(*shape: Any) -> str:
    """The Cypher for one shape of request (``_subgraph_parts``'s arguments) from the ids
    in ``$starts``: one row per start found."""
    clauses, returns = _subgraph_parts(*shape)
    scoped = shape[5]
    return (
        "UNWIND $starts AS startId "
        "MATCH (s:Node {id: startId}) "
        f"WHERE {'s.project IS NULL OR s.project IN $scope' if scoped else 'true'} "
        f"{clauses}"
        "RETURN " + ", ".join(f"{expr} AS {name}" for name, expr in returns)
    )


# The parameters of one request's clauses, renamed when several share one query.
_PARAMETERS = ("skipProps", "keepProps", "limit", "nodeTypes", "since", "until")
_REQUEST_PARAMS = re.compile(rf"\$({'|'.join(_PARAMETERS)})\b")


@lru_cache(maxsize=512)
def _subgraph_call(i: int, only: bool, *shape: Any) -> str:
    """The clauses of one shape of request as a subquery from an already found ``n``
    (in scope), returning its answer as the map ``lineage<i>``; its parameters are
    prefixed ``l<i>_``. ``only``: for the ids in ``$l<i>_starts`` alone (an optional
    call: ``lineage<i>`` is null for the other nodes)."""
    clauses, returns = _subgraph_parts(*shape)
    renamed = rf"$l{i}_\1"
    clauses = _REQUEST_PARAMS.sub(renamed, clauses)
    answer = ", ".join(f"{name}: {_REQUEST_PARAMS.sub(renamed, expr)}" for name, expr in returns)
    head = (
        f"OPTIONAL CALL (n) {{ WITH n AS s WHERE s.id IN $l{i}_starts "
        if only
        else "CALL (n) { WITH n AS s "
    )
    return f"{head}{clauses}RETURN {{{answer}}} AS lineage{i} }} "


def _edge(row: dict[str, Any]) -> LineageEdge:
    """An edge read as a map (the path query's)."""
    return _listed_edge([row["from"], row["to"], row["type"], row["since"], row["until"]])


def _listed_edge(row: list[Any]) -> LineageEdge:
    """An edge read as [from, to, type] or [from, to, type, since, until]."""
    if len(row) == 3:
        return LineageEdge(row[0], row[1], row[2], None, None)
    since, until = row[3], row[4]
    return LineageEdge(
        row[0],
        row[1],
        row[2],
        None if since is None else iso(since),
        None if until is None else iso(until),
    )


def named_columns(keep: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """The stored properties to read as fixed columns, when the caller shows only named
    properties (no prefixed families such as custom properties): else None."""
    if keep is None or any("." in name for name in keep):
        return None
    return tuple(sorted(set(keep)))


def _node_decoders(
    columns: tuple[str, ...] | None,
) -> tuple[Callable[[list[Any]], LineageNode], Callable[[Any], tuple[list[str], dict[str, Any]]]]:
    """How a node of the answer ([degree, path, projection]) and the start (a projection)
    decode, for ``node_values`` of ``columns`` or (None) ``node_map``."""
    if columns is None:

        def mapped(n: list[Any]) -> LineageNode:
            return LineageNode(*decode_node(n[2]), n[0], n[1])

        return mapped, decode_node
    values: ValuesDecoder = values_decoder(columns, TEMPORAL_PROPS)

    def listed(n: list[Any]) -> LineageNode:
        return LineageNode(*values(n, 2), n[0], n[1])

    def start(row: list[Any]) -> tuple[list[str], dict[str, Any]]:
        return values(row, 0)

    return listed, start


@dataclass(frozen=True)
class _Request:
    """One lineage request as Cypher: its shape (``_subgraph_parts``'s arguments), its
    parameters, and how its nodes decode."""

    shape: tuple[Any, ...]
    params: dict[str, Any]
    node: Callable[[list[Any]], LineageNode]  # one of the nodes: [degree, path, projection]
    start: Callable[[Any], tuple[list[str], dict[str, Any]]]  # the start's projection

    @classmethod
    def of(cls, spec: LineageSpec) -> _Request:
        directions = (
            (Direction.UPSTREAM, Direction.DOWNSTREAM)
            if spec.direction is Direction.BOTH
            else (spec.direction,)
        )
        columns = named_columns(spec.keep_props)
        shape = (
            directions,
            _types(spec),
            spec.max_depth,
            _window(spec),
            spec.node_types is not None,
            scope() is not None,
            bool(spec.skip_props) or spec.keep_props is not None,
            (spec.edges, spec.edge_times, spec.more),
            columns,
            spec.with_paths,
        )
        params = {
            "skipProps": list(spec.skip_props),
            "keepProps": list(spec.keep_props) if spec.keep_props is not None else None,
            "limit": spec.limit,
            "nodeTypes": list(spec.node_types or ()),
            "since": spec.since,
            "until": spec.until,
        }
        # Embedded as a subquery, each of these is renamed (_subgraph_call).
        assert tuple(params) == _PARAMETERS
        return cls(shape, params, *_node_decoders(columns))

    def answer(self, row: dict[str, Any]) -> Lineage:
        node = self.node
        return Lineage(
            origin=LineageNode(*self.start(row["start"]), 0, None),
            nodes=[node(n) for n in row["nodes"]],
            edges=[_listed_edge(e) for e in row["edges"]],
            reachable=row["reachable"],
            more_beyond_depth=row["more"],
            cut=[CutEdge(c["from"], c["type"]) for c in row["cut"]],
        )


async def lineage_of(store: Store, starts: list[str], spec: LineageSpec) -> dict[str, Lineage]:
    """Lineage of each start node, in one round trip. Missing starts are absent."""
    request = _Request.of(spec)
    rows = await store.read(
        _subgraph_query(*request.shape),
        {**request.params, "starts": starts, **scope_params()},
        raw=True,
    )
    return {row["startId"]: request.answer(row) for row in rows}


def _calls(
    requests: list[_Request], starts: list[list[str]] | None = None
) -> tuple[str, dict[str, Any]]:
    """``requests`` as subqueries from a found ``n`` (``lineage<i>`` each), with their
    parameters (and the caller's scope). ``starts``: each request's own start ids (the
    others get null)."""
    query, params = "", scope_params()
    for i, request in enumerate(requests):
        query += _subgraph_call(i, starts is not None, *request.shape)
        params.update({f"l{i}_{name}": value for name, value in request.params.items()})
        if starts is not None:
            params[f"l{i}_starts"] = starts[i]
    return query, params


def _columns_of(requests: list[_Request]) -> str:
    return "".join(f", lineage{i}" for i in range(len(requests)))


async def lineages_of(
    store: Store, wanted: Mapping[LineageSpec, list[str]]
) -> dict[tuple[str, LineageSpec], Lineage]:
    """The lineage of each request's starts (``wanted``: request -> start ids), in one
    round trip however many requests: each walks its own starts in a subquery. Missing
    starts are absent."""
    if len(wanted) == 1:
        ((spec, starts),) = wanted.items()
        found = await lineage_of(store, starts, spec)
        return {(start, spec): answer for start, answer in found.items()}
    specs = list(wanted)
    requests = [_Request.of(spec) for spec in specs]
    ids = list(dict.fromkeys(start for spec in specs for start in wanted[spec]))
    calls, params = _calls(requests, [wanted[spec] for spec in specs])
    rows = await store.read(
        f"UNWIND $ids AS id MATCH (n:Node {{id: id}}) WHERE {in_scope('n')} "
        f"{calls}RETURN n.id AS id{_columns_of(requests)}",
        {**params, "ids": ids},
        raw=True,
    )
    answers: dict[tuple[str, LineageSpec], Lineage] = {}
    for row in rows:
        for i, (spec, request) in enumerate(zip(specs, requests, strict=True)):
            if row[f"lineage{i}"] is not None:
                answers[row["id"], spec] = request.answer(row[f"lineage{i}"])
    return answers


# At most this many lineage-walking point reads share one query (graph/coalesce.py).
LINEAGE_BATCH = 8


async def found_with_lineage(
    store: Store,
    match: str,
    params: dict[str, Any],
    keys: Sequence[Mapping[str, Any]],
    specs: Sequence[LineageSpec],
    columns: tuple[str, ...] | None = None,
) -> list[list[tuple[dict[str, Any], list[Lineage]]]]:
    """For each of ``keys``, each node ``match`` finds for it (Cypher binding ``n``, already
    limited to the caller's projects; the key is ``key``, as in ``coalesce.KEYED``) with
    all its properties (or, given ``columns``, only those), and its lineage for each of
    ``specs``, in one round trip: a lookup that knows what will be asked of its answer
    next. ``match`` and its ``params`` come from the caller's own code, never from user
    text. The read may share its query with other requests' (``Store.read_keyed``)."""
    requests = [_Request.of(spec) for spec in specs]
    calls, merged = _calls(requests)
    projection, props_of = node_projection("n", columns, TEMPORAL_PROPS)

    per_key = await store.read_keyed(
        f"{KEYED}{match} {calls}RETURN {KEY_INDEX}, {projection} AS n{_columns_of(requests)}",
        {**merged, **params},
        keys,
        raw=True,
        # Each key walks its own lineage: a handful per shared query.
        max_batch=LINEAGE_BATCH if requests else None,
    )
    return [
        [
            (
                props_of(row["n"]),
                [request.answer(row[f"lineage{i}"]) for i, request in enumerate(requests)],
            )
            for row in rows
        ]
        for rows in per_key
    ]


async def lineage(store: Store, start: str, spec: LineageSpec) -> Lineage:
    found = (await lineage_of(store, [start], spec)).get(start)
    if found is None:
        raise NotFound(f"no node with id {start!r}", field="start")
    return found


@cache
def _path_query(edge_types: tuple[str, ...], depth: int, scoped: bool) -> str:
    rel = "|".join(edge_types)
    visible = " AND (b.project IS NULL OR b.project IN $scope)" if scoped else ""
    branches = [
        f"MATCH p = ANY SHORTEST (x) ((a)-[r:{rel}]-(b) WHERE {_step(d, edge_types)} "
        f"AND r.until IS NULL{visible}){{1,{depth}}} (y) RETURN p, '{d.value}' AS direction"
        for d in (Direction.UPSTREAM, Direction.DOWNSTREAM)
    ]
    branches.append(
        f"MATCH p = ANY SHORTEST (x) ((a)-[r:{rel}]-(b) WHERE r.until IS NULL{visible})"
        f"{{1,{depth}}} (y) "
        "RETURN p, 'MIXED' AS direction"
    )
    return (
        "MATCH (x:Node {id: $from}), (y:Node {id: $to}) "
        f"WHERE {'(x.project IS NULL OR x.project IN $scope)' if scoped else 'true'} "
        f"CALL (x, y) {{ {' UNION '.join(branches)} }} "
        "WITH p, direction ORDER BY direction = 'MIXED', length(p) LIMIT 1 "
        "RETURN direction, "
        f"  [n IN nodes(p) | {node_map('n')}] AS nodes, "
        "  [r IN relationships(p) | {from: startNode(r).id, to: endNode(r).id, type: type(r), "
        "     since: toString(r.since), until: toString(r.until)}] AS edges"
    )


async def path(
    store: Store, from_id: str, to_id: str, *, max_depth: int, edge_types: tuple[str, ...] | None
) -> LineagePath | None:
    """How two nodes relate: the shortest upstream, else downstream, else mixed path."""
    rows = await store.read(
        _path_query(edge_types or LINEAGE_EDGE_TYPES, max_depth, scope() is not None),
        {"from": from_id, "to": to_id, **scope_params()},
        raw=True,
    )
    if not rows:
        return None
    row = rows[0]
    return LineagePath(
        direction=row["direction"],
        nodes=[record_from(*decode_node(n)) for n in row["nodes"]],
        edges=[_edge(e) for e in row["edges"]],
    )


@dataclass(frozen=True)
class Hop:
    """One edge type crossed in one stored direction to one label: a typed shortcut."""

    edge_type: str
    outward: bool  # True: (start)-[edge]->(n); False: (start)<-[edge]-(n)
    label: str


async def neighbours(store: Store, starts: list[str], hop: Hop) -> dict[str, list[Entity]]:
    """The nodes one current ``hop`` away from each start, in one round trip."""
    if hop.edge_type not in EDGE_TYPES or hop.label not in NODE_TYPES:
        raise ValidationFailed(f"{hop} is not in the vocabulary")
    arrow = f"-[r:{hop.edge_type}]->" if hop.outward else f"<-[r:{hop.edge_type}]-"
    rows = await store.read(
        "UNWIND $starts AS startId "
        "MATCH (s:Node {id: startId}) "
        f"OPTIONAL MATCH (s){arrow}(n:{hop.label}) WHERE r.until IS NULL AND {in_scope('n')} "
        "WITH startId, n ORDER BY n.createdAt "
        "RETURN startId, "
        "  collect(CASE WHEN n IS NOT NULL THEN {labels: labels(n), props: properties(n)} END)"
        "    AS found",
        {"starts": starts, **scope_params()},
    )
    return {
        row["startId"]: [record_from(f["labels"], f["props"]) for f in row["found"]] for row in rows
    }


# --- typed shortcuts: fixed requests with names users know ---------------------------

TRAINING_RUNS = Hop("PRODUCED", outward=False, label="ExperimentRun")
BASE_VERSION = Hop("DERIVED_FROM", outward=True, label="ModelVersion")
FINE_TUNES = Hop("DERIVED_FROM", outward=False, label="ModelVersion")
SERVED_BY = Hop("SERVES", outward=False, label="InferenceService")
MONITORED_BY = Hop("MONITORS", outward=False, label="MonitoringLink")
RUN_DATASETS = Hop("INPUT_TO", outward=False, label="Dataset")
RUN_CODE = Hop("INPUT_TO", outward=False, label="CodeRef")
RUN_VERSIONS = Hop("PRODUCED", outward=True, label="ModelVersion")
RUN_DATASET_OUTPUTS = Hop("PRODUCED", outward=True, label="Dataset")
PARENT_DATASETS = Hop("DERIVED_FROM", outward=True, label="Dataset")
PRODUCING_RUNS = Hop("PRODUCED", outward=False, label="ExperimentRun")


def training_datasets(*, transitive: bool, depth: int, limit: int) -> LineageSpec:
    """Datasets that fed the runs that produced a version (and, transitively, their sources)."""
    return LineageSpec(
        Direction.UPSTREAM,
        depth if transitive else 2,
        node_types=("ExperimentRun", "Dataset"),
        edge_types=("PRODUCED", "INPUT_TO", "DERIVED_FROM"),
        limit=limit,
    )


def training_code(*, limit: int) -> LineageSpec:
    return LineageSpec(
        Direction.UPSTREAM,
        2,
        node_types=("ExperimentRun", "CodeRef"),
        edge_types=("PRODUCED", "INPUT_TO"),
        limit=limit,
    )


def derived_datasets(*, transitive: bool, depth: int, limit: int) -> LineageSpec:
    return LineageSpec(
        Direction.DOWNSTREAM,
        depth if transitive else 1,
        node_types=("Dataset",),
        edge_types=("DERIVED_FROM",),
        limit=limit,
    )


def impact(*, services: bool, depth: int, limit: int) -> LineageSpec:
    """What a dataset feeds: derived data, runs, the versions they produced, fine-tunes of
    those, and (with ``services``) the services serving any of them now."""
    return LineageSpec(
        Direction.DOWNSTREAM,
        depth,
        node_types=("Dataset", "ExperimentRun", "ModelVersion")
        + (("InferenceService",) if services else ()),
        edge_types=("DERIVED_FROM", "INPUT_TO", "PRODUCED") + (("SERVES",) if services else ()),
        limit=limit,
    )

"""Column lineage: which columns of which datasets each column is computed from.

Pipelines report it in OpenLineage's ``columnLineage`` dataset facet (Spark, dbt, Flink and
SQL-parsing integrations send it on their outputs): for each output column, the input
columns (dataset namespace and name, column) it is computed from, and how (its
transformations: ``DIRECT`` / ``INDIRECT``, a subtype such as ``IDENTITY``,
``AGGREGATION``, ``FILTER`` or ``JOIN``, a description, whether it masks). Its ``dataset``
list names input columns that shape the whole output (a filter or join key): each becomes
an indirect input of every column the output is known to have (those its ``fields`` and
``schema`` facets name).

Stored as a graph of its own beside the registry's (``vocabulary.COLUMN_LABEL``): a column
is a ``DatasetField`` node keyed by its dataset's id and its name, ``HAS_FIELD`` from that
dataset; ``(input)-[:FEEDS]->(output)`` holds the transformations, whether any is direct,
the run that reported it and when. A dataset version (uri + digest) is a dataset of its
own, so its columns are too; an input column names its dataset by namespace and name only,
and is taken to be the column of that dataset among the event's own datasets (the version
the run read), else of the unversioned dataset at that URI (created if need be).

Each report replaces what the same reporter (the job's experiment; ``dataset`` for a
DatasetEvent) said before of those output columns: an input it no longer names is no
longer an input. An older report than the one stored (by event time) changes nothing, as
for every facet; replaying a report changes nothing.

Reading is ``column_lineage``: breadth-first from some columns of a dataset, upstream or
downstream or both, one level per step, each column once at its smallest distance, with
an honest ``truncated`` / ``more_beyond_depth``; one Bolt query for any number of starts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any

from pydantic import ConfigDict, Field, StringConstraints

from lineagehub.graph.commands import Command
from lineagehub.graph.lineage import Direction
from lineagehub.graph.records import Dataset
from lineagehub.graph.store import Store, Tx
from lineagehub.graph.vocabulary import COLUMN_LABEL, FEEDS, HAS_FIELD

FACET = "columnLineage"
# One event may report at most this many column-to-column edges (a 1,000-column table
# computed from two others is 2,000): past it the event is refused, not cut short.
MAX_EDGES = 50_000
MAX_COLUMN_NAME = 1024
MAX_COLUMNS = 20_000

ColumnName = Annotated[str, StringConstraints(min_length=1, max_length=MAX_COLUMN_NAME)]
_Short = Annotated[str, StringConstraints(max_length=256)]
_Text = Annotated[str, StringConstraints(max_length=20_000)]


class _Facet(Command):
    """Facet parts: camelCase, fields this server does not read ignored."""

    model_config = ConfigDict(extra="ignore")


class Transformation(_Facet):
    type: _Short = Field(min_length=1)
    subtype: _Short | None = None
    description: _Text | None = None
    masking: bool | None = None

    def stored(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class InputField(_Facet):
    namespace: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    name: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    field: ColumnName
    transformations: list[Transformation] = Field(default_factory=list, max_length=100)


class FieldLineage(_Facet):
    input_fields: list[InputField] = Field(default_factory=list)
    # Deprecated by the facet's 1-1-0 (per-input ``transformations``), still sent.
    transformation_description: _Text | None = None
    transformation_type: _Short | None = None


class ColumnLineageFacet(_Facet):
    fields: dict[ColumnName, FieldLineage] = Field(default_factory=dict, max_length=MAX_COLUMNS)
    dataset: list[InputField] = Field(default_factory=list)


@dataclass
class ColumnEdge:
    """One input column of one output column, to write."""

    source: tuple[str, str]  # (dataset id, column)
    target: tuple[str, str]
    transformations: list[dict[str, Any]] = field(default_factory=list)
    description: str | None = None

    @property
    def direct(self) -> bool:
        """Whether any transformation is direct (the value flows into the column); a report
        that names no transformation is taken as direct."""
        return {t.get("type") for t in self.transformations} != {"INDIRECT"}

    def merge(self, other: ColumnEdge) -> None:
        for t in other.transformations:
            if t not in self.transformations:
                self.transformations.append(t)
        self.description = self.description or other.description


def edges_of(
    facet: ColumnLineageFacet,
    target: str,
    dataset_of: Mapping[tuple[str, str], str],
    known_columns: Iterable[str] = (),
) -> list[ColumnEdge]:
    """The edges ``facet`` (on output dataset ``target``) reports; ``dataset_of`` maps an
    input's (namespace, name) to its dataset id. Dataset-wide inputs become indirect inputs
    of every column named in the facet or in ``known_columns`` (the output's schema)."""
    found: dict[tuple[tuple[str, str], str], ColumnEdge] = {}

    def add(column: str, given: InputField, stated: list[dict[str, Any]], note: Any) -> None:
        source = (dataset_of[given.namespace, given.name], given.field)
        edge = ColumnEdge(source, (target, column), stated, note)
        key = (source, column)
        if key in found:
            found[key].merge(edge)
        else:
            found[key] = edge

    for column, lineage in facet.fields.items():
        legacy = (
            [{"type": "DIRECT", "subtype": lineage.transformation_type}]
            if lineage.transformation_type
            else []
        )
        for given in lineage.input_fields:
            stated = [t.stored() for t in given.transformations]
            add(column, given, stated or list(legacy), lineage.transformation_description)
    columns = [*facet.fields, *(c for c in known_columns if c not in facet.fields)]
    for given in facet.dataset:
        stated = [t.stored() for t in given.transformations] or [{"type": "INDIRECT"}]
        for column in columns:
            add(column, given, [dict(t) for t in stated], None)
    if len(found) > MAX_EDGES:
        raise ValueError(f"reports {len(found)} column edges; at most {MAX_EDGES} are taken")
    return list(found.values())


def inputs_named(facet: ColumnLineageFacet) -> set[tuple[str, str]]:
    """The (namespace, name) of every dataset ``facet`` names as an input."""
    given = [f for lineage in facet.fields.values() for f in lineage.input_fields]
    return {(f.namespace, f.name) for f in [*given, *facet.dataset]}


def schema_columns(schema: Any) -> list[str]:
    """Column names in a dataset's ``schema`` (OpenLineage's schema facet fields: name,
    type, description, nested ``fields``; nested names are dotted)."""
    return [name for name, _ in schema_entries(schema)]


def schema_column(schema: Any, name: str) -> dict[str, Any] | None:
    """The schema entry of column ``name`` (dotted for nested), if the schema has it."""
    return next((entry for found, entry in schema_entries(schema) if found == name), None)


def schema_entries(schema: Any, prefix: str = "") -> Iterable[tuple[str, dict[str, Any]]]:
    """(dotted name, entry) for each column of ``schema``, nested ones after their parent."""
    if not isinstance(schema, list):
        return
    for entry in schema:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            continue
        name = prefix + entry["name"]
        yield name, entry
        yield from schema_entries(entry.get("fields"), name + ".")


# --- writing ----------------------------------------------------------------------------

_WRITE = (
    # What the reporter said before of these outputs' columns and no longer says.
    "CALL () { "
    "  UNWIND $targets AS t "
    f"  MATCH (:Node:Dataset {{id: t.id}})-[:{HAS_FIELD}]->(b:{COLUMN_LABEL})"
    f"        <-[r:{FEEDS} {{reporter: $reporter}}]-(a:{COLUMN_LABEL}) "
    "  WHERE NOT [a.datasetId, a.name, b.name] IN t.keep "
    "  DELETE r "
    "  RETURN count(*) AS removed "
    "} "
    "CALL () { "
    "  UNWIND $columns AS c "
    f"  MERGE (f:{COLUMN_LABEL} {{datasetId: c[0], name: c[1]}}) "
    "  ON CREATE SET f.createdAt = $now "
    "  WITH f, c MATCH (d:Node:Dataset {id: c[0]}) "
    f"  MERGE (d)-[:{HAS_FIELD}]->(f) "
    "  RETURN count(*) AS linked "
    "} "
    "CALL () { "
    "  UNWIND $edges AS e "
    f"  MATCH (a:{COLUMN_LABEL} {{datasetId: e.source[0], name: e.source[1]}}) "
    f"  MATCH (b:{COLUMN_LABEL} {{datasetId: e.target[0], name: e.target[1]}}) "
    f"  MERGE (a)-[r:{FEEDS} {{reporter: $reporter}}]->(b) "
    "  ON CREATE SET r.createdAt = $now "
    "  SET r.transformations = e.transformations, r.description = e.description, "
    "      r.direct = e.direct, r.runId = $runId, r.at = $at "
    "  RETURN count(*) AS written "
    "} "
    "RETURN removed, written"
)


@dataclass(frozen=True)
class Written:
    edges: int
    removed: int


async def replace(
    tx: Tx,
    *,
    targets: list[str],
    edges: list[ColumnEdge],
    reporter: str,
    run_id: str | None,
    at: datetime,
    now: datetime,
) -> Written:
    """Make ``edges`` what ``reporter`` says feeds the columns of datasets ``targets``
    (their inputs that it reported before and does not now are removed), in one query."""
    if not edges and not targets:
        return Written(0, 0)
    named = sorted({c for e in edges for c in (e.source, e.target)})
    keep: dict[str, list[list[str]]] = {t: [] for t in targets}
    for e in edges:
        keep.setdefault(e.target[0], []).append([*e.source, e.target[1]])
    answer = await tx.single(
        _WRITE,
        {
            "targets": [{"id": t, "keep": k} for t, k in keep.items()],
            "columns": [list(c) for c in named],
            "edges": [
                {
                    "source": list(e.source),
                    "target": list(e.target),
                    "transformations": json.dumps(e.transformations, sort_keys=True),
                    "description": e.description,
                    "direct": e.direct,
                }
                for e in edges
            ],
            "reporter": reporter,
            "runId": run_id,
            "at": at,
            "now": now,
        },
    )
    assert answer is not None
    return Written(answer["written"], answer["removed"])


# --- reading ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnSpec:
    direction: Direction = Direction.UPSTREAM
    max_depth: int = 5
    limit: int = 200
    columns: tuple[str, ...] | None = None  # the start columns (None: every column)
    include_indirect: bool = True


@dataclass(frozen=True)
class ColumnNode:
    dataset_id: str
    name: str
    degree: int


@dataclass(frozen=True)
class ColumnLink:
    source: tuple[str, str]
    target: tuple[str, str]
    transformations: list[dict[str, Any]]
    description: str | None
    direct: bool
    run_id: str | None
    reported_at: datetime | None
    reporter: str | None


@dataclass
class ColumnLineage:
    columns: list[ColumnNode]  # nearest first, the start columns (degree 0) included
    edges: list[ColumnLink]
    datasets: dict[str, Dataset]
    reachable: int
    more_beyond_depth: bool

    @property
    def truncated(self) -> bool:
        return self.reachable > len(self.columns)


def _step(direction: Direction) -> str:
    pattern = (
        f"(a)<-[r:{FEEDS}]-(b)" if direction is Direction.UPSTREAM else f"(a)-[r:{FEEDS}]->(b)"
    )
    return f"UNWIND frontier AS a MATCH {pattern} WHERE ($indirect OR r.direct) AND NOT b IN seen "


def _walk(direction: Direction, depth: int, i: int) -> str:
    """``reached<i>`` ([{n, degree}], the starts at 0) and ``more<i>`` going ``direction``."""
    step = _step(direction)
    query = (
        "CALL (starts) { WITH starts AS seen, starts AS frontier, "
        "[x IN starts | {n: x, degree: 0}] AS reached "
    )
    for degree in range(1, depth + 1):
        query += (
            f"CALL (frontier, seen) {{ {step} RETURN collect(DISTINCT b) AS next }} "
            "WITH seen + next AS seen, next AS frontier, "
            f"reached + [x IN next | {{n: x, degree: {degree}}}] AS reached "
        )
    return query + (
        f"CALL (frontier, seen) {{ {step} RETURN count(b) > 0 AS more }} "
        f"RETURN reached AS reached{i}, more AS more{i} }} "
    )


@lru_cache(maxsize=64)
def _query(direction: Direction, depth: int) -> str:
    directions = (
        [Direction.UPSTREAM, Direction.DOWNSTREAM] if direction is Direction.BOTH else [direction]
    )
    walks = "".join(_walk(d, depth, i) for i, d in enumerate(directions))
    names = [f"reached{i}" for i in range(len(directions))]
    reached = " + ".join(names)
    more = " OR ".join(f"more{i}" for i in range(len(directions)))
    return (
        "UNWIND $starts AS startId "
        "CALL (startId) { "
        f"  OPTIONAL MATCH (:Node:Dataset {{id: startId}})-[:{HAS_FIELD}]->(s:{COLUMN_LABEL}) "
        "  WHERE $columns IS NULL OR s.name IN $columns "
        "  WITH collect(s) AS starts "
        f"  {walks}"
        # Each column once, at its smallest degree, nearest first; then the first $limit.
        f"  CALL ({', '.join(names)}) {{ WITH {reached} AS reached "
        "    UNWIND reached AS x WITH x.n AS n, min(x.degree) AS degree "
        "    ORDER BY degree, n.datasetId, n.name "
        "    RETURN collect({n: n, degree: degree}) AS ordered "
        "  } "
        f"  WITH ordered[..$limit] AS kept, size(ordered) AS reachable, {more} AS more "
        "  WITH kept, reachable, more, [x IN kept | x.n] AS nodes "
        "  CALL (nodes) { "
        f"    UNWIND nodes AS a MATCH (a)-[r:{FEEDS}]->(b) "
        "    WHERE b IN nodes AND ($indirect OR r.direct) "
        "    RETURN collect([a.datasetId, a.name, b.datasetId, b.name, r.transformations, "
        "                    r.description, r.direct, r.runId, r.at, r.reporter]) AS edges "
        "  } "
        "  CALL (nodes) { "
        "    UNWIND nodes AS a WITH DISTINCT a.datasetId AS id "
        "    MATCH (d:Node:Dataset {id: id}) RETURN collect(d {.*}) AS datasets "
        "  } "
        "  RETURN [x IN kept | [x.n.datasetId, x.n.name, x.degree]] AS columns, "
        "         edges, datasets, reachable, more "
        "} "
        "RETURN startId, columns, edges, datasets, reachable, more"
    )


def _link(row: list[Any]) -> ColumnLink:
    at = row[8]
    return ColumnLink(
        source=(row[0], row[1]),
        target=(row[2], row[3]),
        transformations=json.loads(row[4]) if row[4] else [],
        description=row[5],
        direct=bool(row[6]),
        run_id=row[7],
        reported_at=at.to_native() if hasattr(at, "to_native") else at,
        reporter=row[9],
    )


async def column_lineage(
    store: Store, starts: list[str], spec: ColumnSpec
) -> dict[str, ColumnLineage]:
    """The column lineage of each dataset in ``starts`` (its columns ``spec.columns``, or
    all it has lineage for), in one query."""
    rows = await store.read(
        _query(spec.direction, spec.max_depth),
        {
            "starts": starts,
            "columns": list(spec.columns) if spec.columns is not None else None,
            "limit": spec.limit,
            "indirect": spec.include_indirect,
        },
    )
    answers: dict[str, ColumnLineage] = {}
    for row in rows:
        answers[row["startId"]] = ColumnLineage(
            columns=[ColumnNode(d, n, degree) for d, n, degree in row["columns"]],
            edges=sorted((_link(e) for e in row["edges"]), key=lambda e: (e.target, e.source)),
            datasets={p["id"]: Dataset.from_props(p) for p in row["datasets"]},
            reachable=row["reachable"],
            more_beyond_depth=row["more"],
        )
    return answers

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
the run read), else of the dataset already at that URI (the unversioned one, else the
newest version), else of a new unversioned one.

Each report replaces what the same reporter said before of those output columns (an
input it no longer names is no longer an input; so does another report of the same time):
reporters are an OpenLineage job (its experiment's id), a DatasetEvent's producer
(``producer:<url>``, version segments left out), and ``recordColumnLineage`` (``api``, or
``api:<experiment>`` with a run). An older report than the reporter's stored one (by its
time, kept per reporter on the dataset: ``COLUMN_TIMES``) changes nothing, as for every
facet; replaying a report changes nothing; a report not taken (too big) changes nothing,
its time included.

Reading is ``column_lineage``: breadth-first from some columns of a dataset, upstream or
downstream or both, one level per step, each column once at its smallest distance, with
an honest ``truncated`` / ``more_beyond_depth``; one Bolt query for any number of starts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, StringConstraints, field_validator

from lineagehub.graph.commands import Command, empty_dict, empty_list
from lineagehub.graph.datasets import DatasetRef, dataset_uri, resolve_datasets
from lineagehub.graph.entities import now
from lineagehub.graph.errors import LimitExceeded, NotFound
from lineagehub.graph.identity import check_project
from lineagehub.graph.lineage import Direction
from lineagehub.graph.records import Dataset
from lineagehub.graph.store import Store, Tx, decode_node, instant, node_map
from lineagehub.graph.vocabulary import COLUMN_LABEL, FEEDS, HAS_FIELD

FACET = "columnLineage"
# On a dataset: the event time of each reporter's latest report on it (JSON).
COLUMN_TIMES = "olColumnTimes"
# One report may make at most this many column-to-column edges (a 1,000-column table
# computed from two others is 2,000; dataset-wide inputs count once per column): past it,
# the report is skipped (and the event's answer says so), not cut short.
MAX_EDGES = 50_000
# ... and store at most this many bytes of transformations and descriptions.
MAX_TRANSFORMATION_BYTES = 16 * 1024 * 1024
MAX_COLUMN_NAME = 1024
MAX_COLUMNS = 20_000
# Datasets one event's reports may name that the event itself does not.
MAX_NAMED_DATASETS = 1000
SCHEMA_DEPTH = 16
_TEXT = 4096  # descriptions are kept up to this many characters


_List = BeforeValidator(empty_list)


class _Facet(Command):
    """Facet parts: camelCase; what this server does not read is ignored, null is as good
    as absent (producers send either), and no length is refused: a name that cannot be a
    column is skipped (and said so), a long description kept shortened."""

    model_config = ConfigDict(extra="ignore")


class Transformation(_Facet):
    type: str | None = None
    subtype: str | None = None
    description: str | None = None
    masking: bool | None = None

    def stored(self) -> dict[str, Any]:
        return _stored(self)


def _stored(transformation: Transformation | TransformationIn) -> dict[str, Any]:
    """A transformation as an edge keeps it: what it says, descriptions shortened."""
    kept = {k: v for k, v in transformation.model_dump().items() if v is not None and v != ""}
    if isinstance(kept.get("description"), str):
        kept["description"] = kept["description"][:_TEXT]
    return kept


class InputField(_Facet):
    namespace: str
    name: str
    field: str
    transformations: Annotated[list[Transformation], _List] = Field(default_factory=list)


class FieldLineage(_Facet):
    input_fields: Annotated[list[InputField], _List] = Field(default_factory=list)
    # The facet's 1-0 form (per-input ``transformations`` came with 1-1-0), still sent.
    transformation_description: str | None = None
    transformation_type: str | None = None

    def legacy(self) -> list[dict[str, Any]]:
        """The 1-0 transformation, as a 1-1 one (``MASKED``: a masking transformation)."""
        kind = (self.transformation_type or "").strip().upper()
        if not kind:
            return []
        if kind == "MASKED":
            return [{"type": "DIRECT", "subtype": "TRANSFORMATION", "masking": True}]
        return [{"type": "DIRECT", "subtype": kind[:256]}]


class ColumnLineageFacet(_Facet):
    fields: Annotated[dict[str, FieldLineage], BeforeValidator(empty_dict)] = Field(
        default_factory=dict
    )
    dataset: Annotated[list[InputField], _List] = Field(default_factory=list)


def usable(name: str) -> bool:
    return 0 < len(name) <= MAX_COLUMN_NAME


def names_a_dataset(given: InputField) -> bool:
    """Whether an input's namespace and name can name a dataset (as an event's can)."""
    return 0 < len(given.namespace) <= 1024 and 0 < len(given.name) <= 2048


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
        that names no transformation (or no type) is taken as direct."""
        return {t.get("type") for t in self.transformations} != {"INDIRECT"}

    def merge(self, other: ColumnEdge) -> None:
        for t in other.transformations:
            if t not in self.transformations:
                self.transformations.append(t)
        self.description = self.description or other.description


class Refused(ValueError):
    """A report that is not taken (the event is recorded without it)."""


@dataclass(frozen=True)
class Input:
    """One input column of a column (or of every column: a dataset-wide input)."""

    source: tuple[str, str]  # (dataset id, column)
    transformations: list[dict[str, Any]]
    note: str | None = None


def build(
    target: str, per_column: dict[str, list[Input]], wide: list[Input], columns: list[str]
) -> list[ColumnEdge]:
    """The edges into dataset ``target``'s columns: each column's inputs, and the
    dataset-wide inputs into each of ``columns`` (one edge for an input named both ways,
    its transformations merged). ``Refused`` past the limits, counted before anything is
    built."""
    _limits(per_column, wide, columns)
    found: dict[tuple[tuple[str, str], str], ColumnEdge] = {}
    given = [(c, i) for c, inputs in per_column.items() for i in inputs]
    for column, input in [*given, *((c, i) for i in wide for c in columns)]:
        edge = ColumnEdge(input.source, (target, column), list(input.transformations), input.note)
        key = (input.source, column)
        if key in found:
            found[key].merge(edge)
        else:
            found[key] = edge
    return list(found.values())


def _bytes(given: Input) -> int:
    """What an input stores on each of its edges beyond the keys."""
    return len(json.dumps(given.transformations)) + len(given.note or "")


def _limits(per_column: dict[str, list[Input]], wide: list[Input], columns: list[str]) -> None:
    count = sum(len(inputs) for inputs in per_column.values()) + len(wide) * len(columns)
    if count > MAX_EDGES:
        raise Refused(f"reports {count} column edges; at most {MAX_EDGES} are taken")
    size = sum(_bytes(i) for inputs in per_column.values() for i in inputs) + len(columns) * sum(
        _bytes(i) for i in wide
    )
    if size > MAX_TRANSFORMATION_BYTES:
        raise Refused(
            f"reports {size} bytes of transformations and descriptions; at most "
            f"{MAX_TRANSFORMATION_BYTES} are taken"
        )


def _inputs(
    facet: ColumnLineageFacet, resolve: Callable[[InputField], str | None]
) -> tuple[dict[str, list[Input]], list[Input], int]:
    """The facet's inputs per column and dataset-wide, each input's dataset id from
    ``resolve`` (None: left out), and how many references were left out."""
    skipped = 0

    def resolved(given: InputField, stated: list[dict[str, Any]], note: Any) -> list[Input]:
        nonlocal skipped
        dataset = resolve(given)
        if dataset is None or not usable(given.field):
            skipped += 1
            return []
        return [Input((dataset, given.field), stated, note)]

    per_column: dict[str, list[Input]] = {}
    for column, lineage in facet.fields.items():
        if not usable(column):
            skipped += 1
            continue
        note = (lineage.transformation_description or "")[:_TEXT] or None
        per_column[column] = [
            i
            for given in lineage.input_fields
            for i in resolved(
                given, [t.stored() for t in given.transformations] or lineage.legacy(), note
            )
        ]
    wide = [
        i
        for given in facet.dataset
        for i in resolved(
            given, [t.stored() for t in given.transformations] or [{"type": "INDIRECT"}], None
        )
    ]
    return per_column, wide, skipped


def _columns_with(per_column: dict[str, list[Input]], known: Iterable[str]) -> list[str]:
    return [*per_column, *(c for c in dict.fromkeys(known) if c not in per_column)]


def check_size(facet: ColumnLineageFacet, known_columns: Iterable[str]) -> None:
    """``Refused`` when ``facet`` would make too many edges or bytes, counted as ``build``
    counts them, before any dataset it names is looked up."""
    per_column, wide, _ = _inputs(facet, lambda _: "")
    _limits(per_column, wide, _columns_with(per_column, known_columns))


def edges_of(
    facet: ColumnLineageFacet,
    target: str,
    dataset_of: Mapping[str, str],
    known_columns: Iterable[str] = (),
) -> tuple[list[ColumnEdge], int]:
    """The edges ``facet`` (on output dataset ``target``) reports, and how many column
    references it left out (no usable column name, or a dataset that cannot be named:
    ``dataset_of``, which maps an input dataset's URI to its id, does not know it).
    Dataset-wide inputs become indirect inputs of every column named in the facet or in
    ``known_columns`` (the output's schema)."""
    per_column, wide, skipped = _inputs(
        facet, lambda given: dataset_of.get(dataset_uri(given.namespace, given.name))
    )
    return build(target, per_column, wide, _columns_with(per_column, known_columns)), skipped


def inputs_named(facet: ColumnLineageFacet) -> dict[str, InputField]:
    """Each dataset ``facet`` names as an input, by URI (its first mention)."""
    given = [f for lineage in facet.fields.values() for f in lineage.input_fields]
    named: dict[str, InputField] = {}
    for f in [*given, *facet.dataset]:
        if names_a_dataset(f):
            named.setdefault(dataset_uri(f.namespace, f.name), f)
    return named


def schema_columns(schema: Any) -> list[str]:
    """Column names in a dataset's ``schema`` (OpenLineage's schema facet fields: name,
    type, description, nested ``fields``; nested names are dotted)."""
    return [name for name, _ in schema_entries(schema)]


def schema_entries(schema: Any) -> list[tuple[str, dict[str, Any]]]:
    """(dotted name, entry) for each column of ``schema``, nested ones after their parent:
    at most ``MAX_COLUMNS``, ``SCHEMA_DEPTH`` deep, names of at most ``MAX_COLUMN_NAME``
    characters (longer ones, and what is below them, left out)."""
    found: list[tuple[str, dict[str, Any]]] = []

    def walk(entries: Any, prefix: str, depth: int) -> None:
        if not isinstance(entries, list) or depth > SCHEMA_DEPTH:
            return
        for entry in entries:
            if len(found) >= MAX_COLUMNS:
                return
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                continue
            name = prefix + entry["name"]
            if not usable(name):
                continue
            found.append((name, entry))
            walk(entry.get("fields"), name + ".", depth + 1)

    walk(schema, "", 1)
    return found


# --- writing ----------------------------------------------------------------------------

_WRITE = (
    # The columns (only of datasets that exist), then the reported edges, each marked
    # with this report's token (columns and edges sorted; a new input column also locks
    # its dataset, so two reports may still wait on each other: Neo4j detects a deadlock
    # and the driver retries the transaction).
    "CALL () { "
    "  UNWIND $columns AS c "
    "  MATCH (d:Node:Dataset {id: c[0]}) "
    f"  MERGE (f:{COLUMN_LABEL} {{datasetId: c[0], name: c[1]}}) "
    "  ON CREATE SET f.createdAt = $now "
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
    "      r.direct = e.direct, r.runId = $runId, r.at = $at, r.report = $token "
    "  RETURN count(*) AS written "
    "} "
    # What the reporter said before of these outputs' columns and no longer says. (A column
    # left with no edge stays: deleting it would race with a report adding one; answers
    # leave such columns out.)
    "CALL () { "
    "  UNWIND $targets AS t "
    f"  MATCH (:Node:Dataset {{id: t}})-[:{HAS_FIELD}]->(:{COLUMN_LABEL})"
    f"        <-[r:{FEEDS} {{reporter: $reporter}}]-(:{COLUMN_LABEL}) "
    "  WHERE r.report IS NULL OR r.report <> $token "
    "  DELETE r "
    "  RETURN count(*) AS removed "
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
    """Make ``edges`` what ``reporter`` says (at ``at``) feeds the columns of datasets
    ``targets``: its edges into them that it does not report now are removed (the caller
    has made sure no later report of its is stored). One query. Each edge is marked with
    a token of the report (reporter, time, content): a replay writes the same values, and
    another report of the same time replaces this one."""
    if not edges and not targets:
        return Written(0, 0)
    edges = sorted(edges, key=lambda e: (e.source, e.target))
    named = sorted({c for e in edges for c in (e.source, e.target)})
    rows = [
        {
            "source": list(e.source),
            "target": list(e.target),
            "transformations": json.dumps(e.transformations, sort_keys=True),
            "description": e.description,
            "direct": e.direct,
        }
        for e in edges
    ]
    mark = json.dumps([reporter, at.isoformat(), sorted(set(targets)), rows], sort_keys=True)
    token = hashlib.sha256(mark.encode()).hexdigest()[:32]
    answer = await tx.single(
        _WRITE,
        {
            "targets": sorted(set(targets)),
            "columns": [list(c) for c in named],
            "edges": rows,
            "token": token,
            "reporter": reporter,
            "runId": run_id,
            "at": at,
            "now": now,
        },
    )
    assert answer is not None
    return Written(answer["written"], answer["removed"])


# --- declared through the API ------------------------------------------------------------

ColumnName = Annotated[str, StringConstraints(min_length=1, max_length=MAX_COLUMN_NAME)]
API_REPORTER = "api"


class TransformationIn(Command):
    type: Literal["DIRECT", "INDIRECT"]
    subtype: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None
    description: Annotated[str, StringConstraints(max_length=_TEXT)] | None = None
    masking: bool | None = None

    def stored(self) -> dict[str, Any]:
        return _stored(self)


class ColumnInputIn(Command):
    dataset: DatasetRef
    column: ColumnName
    transformations: list[TransformationIn] = Field(default_factory=list, max_length=100)


class ColumnIn(Command):
    name: ColumnName
    inputs: list[ColumnInputIn] = Field(default_factory=list, max_length=10_000)


class ColumnLineageIn(Command):
    """What a dataset's columns are computed from, as a client declares it."""

    dataset: DatasetRef
    columns: list[ColumnIn] = Field(default_factory=list, max_length=MAX_COLUMNS)
    dataset_inputs: list[ColumnInputIn] = Field(default_factory=list, max_length=1000)
    run_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None

    @field_validator("columns")
    @classmethod
    def _once_each(cls, columns: list[ColumnIn]) -> list[ColumnIn]:
        seen: set[str] = set()
        for column in columns:
            if column.name in seen:
                raise ValueError(f"column {column.name!r} is given twice")
            seen.add(column.name)
        return columns


async def record_column_lineage(store: Store, given: ColumnLineageIn) -> tuple[Dataset, Written]:
    """Make ``given`` what its reporter says feeds the dataset's columns (as an OpenLineage
    report would): the run's job when a run is named, else the API. One transaction."""

    async def work(tx: Tx) -> tuple[Dataset, Written]:
        refs = [given.dataset]
        paths = ["input.dataset"]
        for i, column in enumerate(given.columns):
            for j, ref in enumerate(column.inputs):
                refs.append(ref.dataset)
                paths.append(f"input.columns[{i}].inputs[{j}].dataset")
        for j, ref in enumerate(given.dataset_inputs):
            refs.append(ref.dataset)
            paths.append(f"input.datasetInputs[{j}].dataset")
        found = iter(await resolve_datasets(tx, refs, paths))
        target = next(found)
        # The dataset, locked, and the run named (one query).
        row = await tx.single(
            "MATCH (d:Node:Dataset {id: $id}) SET d._lock = true REMOVE d._lock "
            "WITH d OPTIONAL MATCH (r:Node:ExperimentRun {id: $run}) "
            "RETURN d {.*} AS d, r.experimentId AS experiment, r.project AS project",
            {"id": target, "run": given.run_id},
        )
        if row is None:  # (purged meanwhile)
            raise NotFound("no such dataset", field="input.dataset")
        reporter = API_REPORTER
        if given.run_id is not None:
            if row["experiment"] is None:
                raise NotFound(f"no run {given.run_id!r}", field="input.runId")
            check_project(row["project"], "input.runId")
            # Not the job's own reporter: an OpenLineage report carries its producer's
            # clock, this one the server's, and the two are never compared.
            reporter = f"{API_REPORTER}:{row['experiment']}"
        props = row["d"]
        times = json.loads(props.get(COLUMN_TIMES) or "{}")
        at = now()
        # Never before the reporter's last report (another process's clock may run ahead).
        if times.get(reporter, "") > at.isoformat(timespec="microseconds"):
            at = datetime.fromisoformat(times[reporter])
        times[reporter] = at.isoformat(timespec="microseconds")
        per_column = {
            column.name: [
                Input((next(found), i.column), [t.stored() for t in i.transformations])
                for i in column.inputs
            ]
            for column in given.columns
        }
        wide = [
            Input(
                (next(found), i.column),
                [t.stored() for t in i.transformations] or [{"type": "INDIRECT"}],
            )
            for i in given.dataset_inputs
        ]
        record = Dataset.from_props(props)
        columns = _columns_with(per_column, schema_columns(record.schema))
        try:
            edges = build(target, per_column, wide, columns)
        except Refused as refused:
            raise LimitExceeded(
                f"the input {refused}", field="input", details={"maximum": MAX_EDGES}
            ) from None
        written = await replace(
            tx,
            targets=[target],
            edges=edges,
            reporter=reporter,
            run_id=given.run_id,
            at=at,
            now=at,
        )
        await tx.run(
            f"MATCH (d:Node:Dataset {{id: $id}}) SET d.{COLUMN_TIMES} = $times",
            {"id": target, "times": json.dumps(times, sort_keys=True)},
        )
        tx.touch(
            target,
            {"columnLineage": None},
            {
                "columnLineage": {
                    "reporter": reporter,
                    "edges": written.edges,
                    "removed": written.removed,
                }
            },
        )
        return record, written

    return await store.write(work)


# --- reading ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnSpec:
    direction: Direction = Direction.UPSTREAM
    max_depth: int = 5
    limit: int = 200  # columns besides the start columns
    columns: tuple[str, ...] | None = None  # the start columns (None: every column)
    include_indirect: bool = True
    # Dataset property name prefixes the answer may leave out (the caller shows none).
    skip_props: tuple[str, ...] = ()


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
    columns: list[ColumnNode]  # the start columns (degree 0), then the others nearest first
    edges: list[ColumnLink]
    datasets: dict[str, Dataset]
    # Columns found besides the starts: all within maxDepth, or, once more than the limit
    # were found, those found by then (the walk stops there: a lower bound).
    reachable: int
    more_beyond_depth: bool
    truncated: bool
    # Start columns there were: over MAX_COLUMNS, none is walked (the caller says so).
    start_count: int = 0


def _step(direction: Direction) -> str:
    pattern = (
        f"(a)<-[r:{FEEDS}]-(b)" if direction is Direction.UPSTREAM else f"(a)-[r:{FEEDS}]->(b)"
    )
    # No further level once more than $limit columns besides the starts are found: the
    # nearest $limit are known by then (they are kept by degree).
    return (
        "UNWIND CASE WHEN size(seen) - size(starts) > $limit THEN [] ELSE frontier END AS a "
        f"MATCH {pattern} WHERE ($indirect OR r.direct) AND NOT b IN seen "
    )


def _walk(direction: Direction, depth: int, i: int) -> str:
    """``reached<i>`` ([{n, degree}], the starts at 0) and ``more<i>`` going ``direction``."""
    step = _step(direction)
    query = (
        "CALL (starts) { WITH starts, starts AS seen, starts AS frontier, "
        "[x IN starts | {n: x, degree: 0}] AS reached "
    )
    for degree in range(1, depth + 1):
        query += (
            # (at most $limit + 1 new columns a level: past the limit the walk stops anyway)
            f"CALL (starts, frontier, seen) {{ {step} WITH DISTINCT b LIMIT $room "
            "RETURN collect(b) AS next } "
            "WITH starts, seen + next AS seen, next AS frontier, "
            f"reached + [x IN next | {{n: x, degree: {degree}}}] AS reached "
        )
    return query + (
        f"CALL (starts, frontier, seen) {{ {step} WITH b LIMIT 1 RETURN count(b) > 0 AS more }} "
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
        # The columns named, or every column of the dataset with an edge.
        # (anchored on the dataset: a label scan of every column in the graph otherwise)
        f"  OPTIONAL MATCH (:Node:Dataset {{id: startId}})-[:{HAS_FIELD}]->(s:{COLUMN_LABEL}) "
        "  WHERE CASE WHEN $columns IS NULL "
        f"    THEN EXISTS {{ (s)-[:{FEEDS}]-() }} ELSE s.name IN $columns END "
        "  WITH collect(s) AS found "
        "  WITH CASE WHEN size(found) > $maxStarts THEN [] ELSE found END AS starts, "
        "       size(found) AS startCount "
        f"  {walks}"
        # Each column once, at its smallest degree, nearest first (ties in a fixed order).
        f"  CALL ({', '.join(names)}) {{ WITH {reached} AS reached "
        "    UNWIND reached AS x WITH x.n AS n, min(x.degree) AS degree "
        "    ORDER BY degree, n.datasetId, n.name "
        "    RETURN collect({n: n, degree: degree}) AS ordered "
        "  } "
        "  WITH [x IN ordered WHERE x.degree = 0] AS first, "
        "       [x IN ordered WHERE x.degree > 0] AS found, "
        f"       {more} AS more, startCount "
        "  WITH first + found[..$limit] AS kept, size(found) AS reachable, more, startCount, "
        "       size(found) > $limit AS truncated "
        "  WITH kept, reachable, more, truncated, startCount, [x IN kept | x.n] AS nodes "
        # (from each column to its inputs: few, where a column can feed thousands)
        "  CALL (nodes) { "
        f"    UNWIND nodes AS b MATCH (b)<-[r:{FEEDS}]-(a) "
        "    WHERE a IN nodes AND ($indirect OR r.direct) "
        "    RETURN collect([a.datasetId, a.name, b.datasetId, b.name, r.transformations, "
        # (times as text: the driver decodes a zoned DateTime ~100x slower)
        "                    r.description, r.direct, r.runId, toString(r.at), r.reporter]) "
        "           AS edges "
        "  } "
        "  CALL (startId, nodes) { "
        "    UNWIND [startId] + [x IN nodes | x.datasetId] AS id WITH DISTINCT id "
        "    MATCH (d:Node:Dataset {id: id}) "
        f"    RETURN collect({node_map('d', skip=True)}) AS datasets "
        "  } "
        "  RETURN [x IN kept | [x.n.datasetId, x.n.name, x.degree]] AS columns, "
        "         edges, datasets, reachable, more AND NOT truncated AS more, truncated, "
        "         startCount "
        "} "
        "RETURN startId, columns, edges, datasets, reachable, more, truncated, startCount"
    )


def _links(rows: list[list[Any]]) -> list[ColumnLink]:
    parsed: dict[str, list[dict[str, Any]]] = {}  # most edges share a few transformations
    links = []
    for row in rows:
        text = row[4]
        if text and text not in parsed:
            parsed[text] = json.loads(text)
        links.append(
            ColumnLink(
                source=(row[0], row[1]),
                target=(row[2], row[3]),
                transformations=parsed[text] if text else [],
                description=row[5],
                direct=bool(row[6]),
                run_id=row[7],
                reported_at=instant(row[8]),
                reporter=row[9],
            )
        )
    return sorted(links, key=lambda e: (e.target, e.source))


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
            "skipProps": list(spec.skip_props),
            "room": spec.limit + 1,
            "maxStarts": MAX_COLUMNS,
            "keepProps": None,
        },
        raw=True,  # lists, maps and scalars only: no node or temporal values to convert
    )
    answers: dict[str, ColumnLineage] = {}
    for row in rows:
        answers[row["startId"]] = ColumnLineage(
            columns=[ColumnNode(d, n, degree) for d, n, degree in row["columns"]],
            edges=_links(row["edges"]),
            datasets={
                props["id"]: Dataset.from_props(props)
                for props in (decode_node(d)[1] for d in row["datasets"])
            },
            reachable=row["reachable"],
            more_beyond_depth=row["more"],
            truncated=row["truncated"],
            start_count=row["startCount"],
        )
    return answers

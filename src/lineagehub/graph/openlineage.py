"""OpenLineage events become jobs, runs and datasets in the same graph.

Pipelines (Airflow, Spark, dbt, Flink, Kubeflow Pipelines, ...) report what they run as
OpenLineage events (https://openlineage.io, spec 2-0-x). Each event is recorded in one
transaction, as the registry's own entities, so lineage questions cross the boundary
between pipelines and models: the tables an Airflow job wrote are the datasets a model
version was trained on, and ``lineage`` walks from the endpoint to the job's sources.

What each part of an event becomes:

- job (namespace, name): the ``Experiment`` named ``<namespace>/<name>``, found again by
  that name (a combination that is no valid name, over 256 characters or holding ``@``,
  is shortened and given a hash of the whole); its owner and description from the
  ``ownership`` and ``documentation`` facets when it is new.
- run (``runId``): the ``ExperimentRun`` whose ``externalId`` is the run id, ``PART_OF``
  the job's experiment, named ``run-N`` like any run. The run id is the run's identity: a
  later event naming another job moves the run to that job (Spark sends a run's first
  event as job ``unknown``), an earlier one does not.
- ``START`` and ``RUNNING``: status RUNNING, unless the run already ended. ``startTime`` is
  the earliest START's time; until a START comes, the earliest time of any event.
- ``COMPLETE``, ``FAIL``, ``ABORT``: status FINISHED, FAILED, KILLED and ``endTime``, unless
  a later end is already recorded (at the same time, a failure outranks an abort, which
  outranks success). ``OTHER`` (or no type) changes facets only, or makes a run it is the
  first to name, RUNNING.
- inputs: ``Dataset`` -INPUT_TO-> run; outputs: run -PRODUCED-> ``Dataset``. A dataset's
  ``uri`` comes from namespace and name (below), its ``digest`` from the ``version``
  facet (``datasetVersion``): each version of a dataset is a node of its own.
- the job facet ``sourceCodeLocation``: a ``CodeRef`` (``repoUrl`` or ``url``; ``version``
  or ``tag`` as the commit; ``path``) -INPUT_TO-> run.
- facets: JSON custom properties ``openlineage.facet.<name>`` of the experiment (job
  facets), the run (run facets) and the dataset (dataset facets). A facet replaces the
  stored one of that name unless that came from a later event (``olFacetTimes`` holds the
  event time behind each); a facet ``{"_deleted": true}`` removes it.
- input and output facets: on the run, as ``openlineage.inputFacets`` and
  ``openlineage.outputFacets``, each a map from dataset URI to its facets (at most
  ``PER_DATASET_LIMIT`` bytes each: past it, the URIs seen first are dropped).
- a ``JobEvent`` records the experiment and its facets, and its datasets (not linked: there
  is no run); a ``DatasetEvent`` records the dataset and its facets.

A dataset's URI is ``<namespace>/<name>`` when the namespace is a URI
(``postgres://db:5432`` + ``shop.public.orders`` -> ``postgres://db:5432/shop.public.orders``,
``s3://bucket`` + ``raw/2024.parquet`` -> ``s3://bucket/raw/2024.parquet``), else
``<namespace>:<name>`` (``bigquery:proj.ds.table``, ``file:/data/x.csv``); register a
model's training data under the same URI and the two meet. ``sourceType`` is the
namespace's scheme, ``source`` the ``dataSource`` facet's name (or the namespace), and a new
dataset takes its description and schema from the ``documentation`` and ``schema`` facets
(an existing one gets them when it has none). A facet larger than ``FACET_LIMIT`` bytes
(a Spark plan, say) is kept as a note of its size, not its content.

Replaying an event, at any point, changes nothing (no new nodes, edges or audit event).
The events of one run are recorded one at a time (the run is locked), and an event naming
a new run locks its job's experiment first, so a run's START and COMPLETE arriving together
make one run; the events of other runs of the job wait for each other only where they
change the job's own properties (the event time behind its facets, mostly). Not handled: two
events naming one new run under two different jobs at the same moment (one of them fails
on the run id's uniqueness and is answered 409; the client may send it again).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from lineagehub.graph import columns, ids, links
from lineagehub.graph.commands import Command, empty_dict, empty_list, validate
from lineagehub.graph.datasets import (
    CodeRefFields,
    DatasetFields,
    dataset_uri,
    ensure_codes,
    ensure_stored,
)
from lineagehub.graph.entities import Name, now
from lineagehub.graph.errors import ValidationFailed
from lineagehub.graph.experiments import (
    NEXT_RUN,
    RUN_NAME,
    ExperimentFields,
    ensure_experiment,
    next_run_name,
)
from lineagehub.graph.identity import check_project
from lineagehub.graph.properties import JSON_PREFIX, CustomPropertyIn, encode
from lineagehub.graph.records import Dataset, ExperimentRun, RunStatus
from lineagehub.graph.store import Tx

FACET_PREFIX = "openlineage.facet."
NAMESPACE_KEY = "openlineage.namespace"
NAME_KEY = "openlineage.name"
INPUT_FACETS_KEY = "openlineage.inputFacets"
OUTPUT_FACETS_KEY = "openlineage.outputFacets"
# Bookkeeping properties (not custom properties): the event time behind each stored facet,
# the time of the event that put a run in its job, and of its earliest START.
FACET_TIMES = "olFacetTimes"
JOB_AT = "olJobAt"
STARTED_AT = "olStartedAt"
# Facets bigger than this (serialized) are stored as a note of their size.
FACET_LIMIT = 64 * 1024
PER_DATASET_LIMIT = 256 * 1024
MAX_FACETS = 64
MAX_DATASETS = 1000
# Event times outside these years are refused: a mistyped year would fix a run's end for good.
YEARS = (1970, 2200)


def _iso_text(value: Any) -> Any:
    """Event times are ISO 8601 text with a time (not numbers), as the spec has them."""
    if not isinstance(value, str) or "t" not in value.lower():
        raise ValueError("must be an ISO 8601 date-time, e.g. 2026-03-01T06:00:00Z")
    return value


Text = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
LongText = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
FacetName = Annotated[str, StringConstraints(min_length=1, max_length=100)]
# null is as good as no facets: producers send either
Facets = Annotated[
    dict[FacetName, dict[str, JsonValue]],
    BeforeValidator(empty_dict),
    Field(max_length=MAX_FACETS),
]
_NAME: TypeAdapter[str] = TypeAdapter(Name)


class EventType(Enum):
    START = "START"
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    ABORT = "ABORT"
    FAIL = "FAIL"
    OTHER = "OTHER"


ENDS = {
    EventType.COMPLETE: RunStatus.FINISHED,
    EventType.ABORT: RunStatus.KILLED,
    EventType.FAIL: RunStatus.FAILED,
}
# Which end stands when two carry the same time.
_RANK = {status.value: rank for rank, status in enumerate(ENDS.values(), start=1)}


class _Open(Command):
    """Event parts: camelCase on the wire; fields this server does not use are ignored
    (producers add their own, and the spec grows)."""

    model_config = ConfigDict(extra="ignore")


class OLDataset(_Open):
    namespace: Text
    name: LongText
    facets: Facets = Field(default_factory=dict)
    input_facets: Facets = Field(default_factory=dict)
    output_facets: Facets = Field(default_factory=dict)

    @property
    def uri(self) -> str:
        return dataset_uri(self.namespace, self.name)


class OLJob(_Open):
    namespace: Text
    name: LongText
    facets: Facets = Field(default_factory=dict)

    @property
    def experiment_name(self) -> str:
        return experiment_name(self.namespace, self.name)


class OLRun(_Open):
    run_id: UUID
    facets: Facets = Field(default_factory=dict)


Datasets = Annotated[list[OLDataset], BeforeValidator(empty_list), Field(max_length=MAX_DATASETS)]


class Event(_Open):
    """A RunEvent (``run`` and ``job``), JobEvent (``job``) or DatasetEvent (``dataset``)."""

    event_time: Annotated[datetime, BeforeValidator(_iso_text)]
    producer: LongText
    schema_url: LongText | None = Field(default=None, alias="schemaURL")
    event_type: EventType | None = None
    run: OLRun | None = None
    job: OLJob | None = None
    dataset: OLDataset | None = None
    inputs: Datasets = Field(default_factory=list)
    outputs: Datasets = Field(default_factory=list)

    @field_validator("event_time")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if not YEARS[0] <= value.year <= YEARS[1]:
            raise ValueError(f"must fall in the years {YEARS[0]}-{YEARS[1]}")
        # A time without an offset is read as UTC: stored times all carry one.
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)

    @model_validator(mode="after")
    def _one_kind(self) -> Event:
        if self.run is not None and self.job is None:
            raise ValueError("a RunEvent needs both run and job")
        if self.run is None and self.job is None and self.dataset is None:
            raise ValueError(
                "an event needs run and job (RunEvent), job (JobEvent) or dataset (DatasetEvent)"
            )
        if self.dataset is not None and (self.run or self.job or self.inputs or self.outputs):
            raise ValueError("a DatasetEvent has a dataset and no run, job, inputs or outputs")
        return self

    @property
    def kind(self) -> str:
        if self.run is not None:
            return "RunEvent"
        return "JobEvent" if self.job is not None else "DatasetEvent"

    @property
    def stamp(self) -> str:
        """The event time as text that sorts as the times do."""
        return self.event_time.isoformat(timespec="microseconds")


def _valid_name(text: str) -> bool:
    try:
        _NAME.validate_python(text)
    except ValidationError:
        return False
    return True


def experiment_name(namespace: str, name: str) -> str:
    """``<namespace>/<name>``, or when that is no valid name, a valid one made from it: the
    same job always gets the same name, and two jobs different ones."""
    full = f"{namespace}/{name}"
    if _valid_name(full):
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:16]
    cleaned = "".join(c if c.isprintable() and c != "@" else "-" for c in full).strip()
    return f"{cleaned[:230].rstrip()}~{digest}"


# --- facets as custom properties --------------------------------------------------------


def _bounded(facet: dict[str, Any]) -> dict[str, Any]:
    size = len(json.dumps(facet, sort_keys=True))
    if size <= FACET_LIMIT:
        return facet
    note: dict[str, Any] = {"_omitted": f"{size} bytes, over the {FACET_LIMIT}-byte limit"}
    for kept in ("_producer", "_schemaURL"):
        if isinstance(facet.get(kept), str):
            note[kept] = facet[kept]
    return note


def _loaded(props: dict[str, Any], key: str) -> dict[str, Any]:
    stored = props.get(key)
    value = json.loads(stored) if isinstance(stored, str) else None
    return value if isinstance(value, dict) else {}


def facet_changes(
    current: dict[str, Any], facets: dict[str, dict[str, Any]], stamp: str
) -> dict[str, Any]:
    """Stored properties for ``facets`` given at ``stamp`` on a node holding ``current``:
    one JSON custom property each (null for a facet marked ``_deleted``), except where
    the stored facet came from a later event."""
    times = _loaded(current, FACET_TIMES)
    given: list[CustomPropertyIn] = []
    removed: list[str] = []
    for name, facet in sorted(facets.items()):
        if times.get(name, "") > stamp:
            continue
        times[name] = stamp
        if facet.get("_deleted") is True:
            removed.append(FACET_PREFIX + name)
        else:
            given.append(CustomPropertyIn(key=FACET_PREFIX + name, json_value=_bounded(facet)))
    changes = encode(given, removed)
    if times:
        changes[FACET_TIMES] = json.dumps(times, sort_keys=True)
    return changes


def _strings(**values: str) -> list[CustomPropertyIn]:
    return [CustomPropertyIn(key=k, string_value=v) for k, v in values.items()]


def _facet_text(facets: dict[str, dict[str, Any]], facet: str, *keys: str) -> str | None:
    """The first non-empty string among ``facets[facet][key]`` for ``keys``."""
    found = facets.get(facet) or {}
    if found.get("_deleted") is True:
        return None
    for key in keys:
        value = found.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _fits(text: str | None, limit: int) -> str | None:
    return text if text is not None and len(text) <= limit else None


# --- what an event names ----------------------------------------------------------------


def _digest(dataset: OLDataset) -> str | None:
    """The dataset's content version: its ``version`` facet's (when it fits a digest)."""
    return _fits(_facet_text(dataset.facets, "version", "datasetVersion"), 256)


def dataset_fields(dataset: OLDataset, path: str) -> DatasetFields:
    facets = dataset.facets
    scheme = dataset.namespace.split("://", 1)[0] if "://" in dataset.namespace else None
    schema = (facets.get("schema") or {}).get("fields")
    name = dataset.name.strip()
    return validate(
        DatasetFields,
        {
            "name": name if _valid_name(name) else None,
            "uri": dataset.uri,
            "digest": _digest(dataset),
            "description": _fits(_facet_text(facets, "documentation", "description"), 20_000),
            "source_type": _fits(scheme or dataset.namespace, 1024),
            "source": _fits(_facet_text(facets, "dataSource", "name", "uri"), 1024)
            or _fits(dataset.namespace, 1024),
            "schema": schema if isinstance(schema, list) and schema else None,
            "custom_properties": _strings(
                **{NAMESPACE_KEY: dataset.namespace, NAME_KEY: dataset.name}
            ),
        },
        path=path,
    )


def code_fields(job: OLJob) -> CodeRefFields | None:
    """The job's code, from its ``sourceCodeLocation`` facet, if it names a repository."""
    facets = job.facets
    repository = _facet_text(facets, "sourceCodeLocation", "repoUrl", "url")
    if repository is None:
        return None
    return validate(
        CodeRefFields,
        {
            "repository": repository,
            "commit": _fits(_facet_text(facets, "sourceCodeLocation", "version", "tag"), 256),
            "path": _fits(_facet_text(facets, "sourceCodeLocation", "path"), 1024),
        },
        path="body.job.facets.sourceCodeLocation",
    )


def _owner(job: OLJob) -> str | None:
    owners = (job.facets.get("ownership") or {}).get("owners")
    if isinstance(owners, list) and owners and isinstance(owners[0], dict):
        name = owners[0].get("name")
        if isinstance(name, str) and 0 < len(name) <= 1024:
            return name
    return None


# --- recording --------------------------------------------------------------------------


@dataclass
class Recorded:
    """What an event became: the stored properties of what it touched."""

    kind: str
    experiment: dict[str, Any] | None = None
    run: dict[str, Any] | None = None
    inputs: list[Dataset] = field(default_factory=list)
    outputs: list[Dataset] = field(default_factory=list)
    dataset: Dataset | None = None
    code: list[str] = field(default_factory=list)
    # The column lineage it reported (edges written, and those its reporter no longer names
    # and were removed), when it reported any; and what it reported that was not taken.
    columns: columns.Written | None = None
    columns_skipped: list[dict[str, Any]] = field(default_factory=list)


Wanted = Callable[[dict[str, Any]], dict[str, Any]]


def _diff(current: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``wanted`` that differ from ``current`` (an absent property is null)."""
    return {k: v for k, v in wanted.items() if current.get(k) != v}


class _Updates:
    """Property changes to nodes, written together in one query at the end.

    A change is worked out from a node's properties (``wanted(props)``: facets depend on
    the event times stored with them). Nodes read without a lock (found by MERGE) that
    would change are locked and read again first, and their changes worked out anew, so
    two events changing one dataset at once never undo each other's newer facets."""

    def __init__(self) -> None:
        self.pending: list[tuple[dict[str, Any], Wanted, bool]] = []
        self.fresh: dict[str, dict[str, Any]] = {}
        self.read: dict[str, dict[str, Any]] = {}
        # Read without a lock, locked whether or not they change (what is written beside
        # them depends on what they hold: a dataset's column lineage on its report times).
        self.to_lock: set[str] = set()
        # Datasets whose column lineage report was not taken: their report time stays.
        self.unreported: set[str] = set()

    def add(
        self, current: dict[str, Any], wanted: Wanted, *, locked: bool, lock: bool = False
    ) -> dict[str, Any]:
        """Note the change (``lock``: lock the node even if it does not change); the node's
        properties after it (as read)."""
        self.read.setdefault(current["id"], current)
        if lock and not locked:
            self.to_lock.add(current["id"])
        changes = _diff(current, wanted(current))
        if changes:
            self.pending.append((current, wanted, locked))
        after = {**current, **changes}
        return {k: v for k, v in after.items() if v is not None}

    async def lock(self, tx: Tx) -> None:
        """Lock and read again the nodes read without a lock that would change: the
        experiment first, then datasets by id. Every event locks in the same order (its
        run, its experiment, its datasets), so two events never wait on each other."""
        unlocked = sorted(
            {c["id"] for c, _, locked in self.pending if not locked} | self.to_lock,
            key=lambda node: (ids.label_of(node) != "Experiment", node),
        )
        if unlocked:
            rows = await tx.run(
                "UNWIND $ids AS id MATCH (n:Node {id: id}) "
                "SET n._lock = true REMOVE n._lock RETURN n {.*} AS n",
                {"ids": unlocked},
            )
            self.fresh = {row["n"]["id"]: row["n"] for row in rows}

    def before(self, node_id: str) -> dict[str, Any]:
        """A node's properties before this event (read again if locked since)."""
        return self.fresh.get(node_id) or self.read.get(node_id, {})

    async def write(self, tx: Tx, at: datetime) -> None:
        writes = []
        for current, wanted, _ in self.pending:
            props = self.fresh.get(current["id"], current)
            changes = _diff(props, wanted(props))
            if changes:
                tx.touch(props["id"], {k: props.get(k) for k in changes}, changes)
                writes.append({"id": props["id"], "changes": changes})
        if writes:
            await tx.run(
                "UNWIND $rows AS row MATCH (n:Node {id: row.id}) "
                "SET n += row.changes, n.updatedAt = $at",
                {"rows": writes, "at": at},
            )


def _dataset_changes(
    facets: dict[str, dict[str, Any]],
    described: dict[str, Any],
    stamp: str,
    reporter: str | None = None,
    unreported: set[str] | frozenset[str] = frozenset(),
) -> Wanted:
    """A dataset's changes: the event's facets, what it says of the dataset where the
    stored one says nothing, and (``reporter``: it reports the dataset's column lineage)
    the time of that reporter's latest report."""

    def wanted(props: dict[str, Any]) -> dict[str, Any]:
        changes = facet_changes(props, facets, stamp)
        for fill in ("description", "schemaJson", "source", "sourceType"):
            if props.get(fill) is None and described.get(fill) is not None:
                changes[fill] = described[fill]
        if reporter is not None and props.get("id") not in unreported:
            times = _loaded(props, columns.COLUMN_TIMES)
            if times.get(reporter, "") < stamp:
                times[reporter] = stamp
                changes[columns.COLUMN_TIMES] = json.dumps(times, sort_keys=True)
        return changes

    return wanted


async def _datasets(
    tx: Tx, event: Event, updates: _Updates, reports: list[Report], reporter: str
) -> tuple[list[Dataset], list[Dataset], Dataset | None]:
    """The event's datasets, found or created in one query; each gets the event's facets
    (a dataset named twice, those of both, the later mention's winning), and the
    description, schema and source it lacks. Those ``reports`` are on are locked, and
    note ``reporter``'s report time."""
    given: list[tuple[str, OLDataset]] = [
        *((f"body.inputs[{i}]", d) for i, d in enumerate(event.inputs)),
        *((f"body.outputs[{i}]", d) for i, d in enumerate(event.outputs)),
        *([("body.dataset", event.dataset)] if event.dataset is not None else []),
    ]
    # one entry per dataset (uri and version), its mentions' facets merged
    unique: dict[tuple[str, str | None], tuple[str, OLDataset]] = {}
    keys: list[tuple[str, str | None]] = []
    for path, dataset in given:
        key = (dataset.uri, _digest(dataset))
        if key in unique:
            first_path, first = unique[key]
            merged = {**first.facets, **dataset.facets}
            unique[key] = (first_path, first.model_copy(update={"facets": merged}))
        else:
            unique[key] = (path, dataset)
        keys.append(key)
    fields = [dataset_fields(dataset, path) for path, dataset in unique.values()]
    stored = await ensure_stored(tx, fields)
    targets = {(r.dataset.uri, _digest(r.dataset)) for r in reports if r.taken}
    current: dict[tuple[str, str | None], Dataset] = {}
    for key, wanted, (props, created) in zip(unique, fields, stored, strict=True):
        reported = key in targets
        changes = _dataset_changes(
            unique[key][1].facets,
            wanted.stored(),
            event.stamp,
            reporter if reported else None,
            updates.unreported,  # (filled in later: read when the changes are written)
        )
        after = updates.add(props, changes, locked=created, lock=reported)
        current[key] = Dataset.from_props(after)
    found = [current[key] for key in keys]
    inputs = found[: len(event.inputs)]
    outputs = found[len(event.inputs) : len(event.inputs) + len(event.outputs)]
    return inputs, outputs, found[-1] if event.dataset is not None else None


async def _experiment(
    tx: Tx, event: Event, job: OLJob, project: str | None, updates: _Updates
) -> dict[str, Any]:
    """The job's experiment, created or found; its facets brought up to date."""
    check_project(project, "query.project")
    fields = validate(
        ExperimentFields,
        {
            "name": job.experiment_name,
            "description": _fits(_facet_text(job.facets, "documentation", "description"), 20_000),
            "owner": _owner(job),
            "project": project,
            "custom_properties": _strings(**{NAMESPACE_KEY: job.namespace, NAME_KEY: job.name}),
        },
        path="body.job",
    )
    # Not locked: runs of one job are recorded side by side (a new run locks it below).
    experiment, created = await ensure_experiment(tx, fields, path="body.job", lock=False)
    return updates.add(
        experiment,
        lambda props: facet_changes(props, job.facets, event.stamp),
        locked=created,
    )


def _per_dataset(
    current: dict[str, Any], key: str, datasets: list[tuple[str, dict[str, dict[str, Any]]]]
) -> dict[str, Any]:
    """The run's facets per dataset URI (stored under ``key``), this event's merged in;
    within ``PER_DATASET_LIMIT`` bytes, dropping the URIs stored first."""
    merged = _loaded(current, JSON_PREFIX + key)
    for uri, facets in datasets:
        kept = {n: _bounded(f) for n, f in facets.items() if f.get("_deleted") is not True}
        if kept:
            merged[uri] = {**merged.get(uri, {}), **kept}
    while len(merged) > 1 and len(json.dumps(merged)) > PER_DATASET_LIMIT:
        del merged[next(iter(merged))]
    return merged


def run_state(
    event: Event,
    status: str | None,
    start: datetime | None,
    end: datetime | None,
    started: datetime | None,
) -> tuple[str, datetime, datetime | None, datetime | None]:
    """(status, startTime, endTime, earliest START) of a run after ``event``."""
    at, kind = event.event_time, event.event_type or EventType.OTHER
    if kind in ENDS:
        ended = ENDS[kind].value
        if end is None or at > end or (at == end and _RANK[ended] > _RANK.get(status or "", 0)):
            status, end = ended, at
    elif kind in (EventType.START, EventType.RUNNING) and status not in _RANK:
        status = RunStatus.RUNNING.value
    if kind is EventType.START and (started is None or at < started):
        started = at
    if started is not None:
        start = started
    elif start is None or at < start:
        start = at
    return status or RunStatus.RUNNING.value, start, end, started


async def _run(
    tx: Tx, event: Event, experiment: dict[str, Any], updates: _Updates
) -> dict[str, Any]:
    assert event.run is not None
    run_id = str(event.run.run_id)
    row = await _locked_run(tx, run_id)
    if row is None:
        # A new run: its job's experiment is locked first, so one event of all those naming
        # a new run at once creates it, and the others, let through in turn, find it.
        row = await _locked_run(tx, run_id, experiment["id"])
    current: dict[str, Any] = row["n"] if row is not None else {}
    if row is not None:
        check_project(current.get("project"), "body.run.runId")
    wanted = facet_changes(current, event.run.facets, event.stamp)
    for key, per_dataset in (
        (INPUT_FACETS_KEY, [(d.uri, d.input_facets) for d in event.inputs]),
        (OUTPUT_FACETS_KEY, [(d.uri, d.output_facets) for d in event.outputs]),
    ):
        merged = _per_dataset(current, key, per_dataset)
        if merged:
            wanted.update(encode([CustomPropertyIn(key=key, json_value=merged)]))
    status, start, end, started = run_state(
        event,
        current.get("status"),
        current.get("startTime"),
        current.get("endTime"),
        current.get(STARTED_AT),
    )
    wanted.update(status=status, startTime=start, endTime=end, **{STARTED_AT: started})
    if row is not None:
        if current.get("experimentId") != experiment["id"] and (
            current.get(JOB_AT) is None or event.event_time >= current[JOB_AT]
        ):
            wanted.update(await _move(tx, current["id"], experiment, event))
        return updates.add(current, lambda _: wanted, locked=True)
    stamp = now()
    props = {
        "id": ids.new_id(ExperimentRun.LABEL),
        "externalId": run_id,
        "experimentId": experiment["id"],
        "project": experiment.get("project"),
        "owner": experiment.get("owner"),
        "state": "LIVE",
        "createdAt": stamp,
        "updatedAt": stamp,
        JOB_AT: event.event_time,
        **wanted,
    }
    props = {k: v for k, v in props.items() if v is not None}
    # named run-N like any run of the experiment, in the query that creates it
    created = await tx.single(
        f"MATCH (e:Node:Experiment {{id: $experimentId}}) {NEXT_RUN}"
        "CREATE (n:Node:ExperimentRun)-[:PART_OF {since: $at}]->(e) "
        f"SET n = $props, n.name = {RUN_NAME} "
        "RETURN n.name AS name",
        {"experimentId": experiment["id"], "props": props, "at": stamp},
    )
    assert created is not None
    props["name"] = created["name"]
    tx.touch(props["id"], None, props)
    return props


async def _locked_run(tx: Tx, run_id: str, experiment: str | None = None) -> dict[str, Any] | None:
    """The run with OpenLineage id ``run_id``, write-locked, if there is one (the events of
    one run are recorded one at a time); with ``experiment``, that is locked first."""
    if experiment is None:
        return await tx.single(
            "MATCH (n:ExperimentRun {externalId: $runId}) SET n._lock = true REMOVE n._lock "
            "RETURN n {.*} AS n",
            {"runId": run_id},
        )
    row = await tx.single(
        "MATCH (e:Node:Experiment {id: $experiment}) SET e._lock = true REMOVE e._lock "
        "WITH e OPTIONAL MATCH (n:ExperimentRun {externalId: $runId}) "
        "SET n._lock = true REMOVE n._lock "
        "RETURN n {.*} AS n",
        {"runId": run_id, "experiment": experiment},
    )
    return row if row is not None and row["n"] is not None else None


async def _move(tx: Tx, run: str, experiment: dict[str, Any], event: Event) -> dict[str, Any]:
    """Move run ``run`` into ``experiment`` (a later event named another job); the
    properties that change with it."""
    name = await next_run_name(tx, experiment["id"])
    await tx.run(
        "MATCH (n:Node:ExperimentRun {id: $id})-[old:PART_OF]->() DELETE old "
        "WITH DISTINCT n MATCH (e:Node:Experiment {id: $experimentId}) "
        "CREATE (n)-[:PART_OF {since: $at}]->(e)",
        {"id": run, "experimentId": experiment["id"], "at": now()},
    )
    return {
        "experimentId": experiment["id"],
        "name": name,
        "project": experiment.get("project"),
        JOB_AT: event.event_time,
    }


# --- column lineage ---------------------------------------------------------------------


@dataclass
class Report:
    """A ``columnLineage`` facet on one of the event's outputs (or its dataset)."""

    path: str  # the dataset's place in the body
    dataset: OLDataset
    facet: columns.ColumnLineageFacet | None  # None: ``_deleted``, or skipped
    skipped: list[dict[str, Any]] = field(default_factory=list)  # what was not taken, why
    whole: bool = False  # skipped whole: changes nothing

    @property
    def taken(self) -> bool:
        return not self.whole

    @property
    def where(self) -> str:
        return f"{self.path}.facets.{columns.FACET}"

    def skip(self, message: str, where: str | None = None) -> None:
        self.facet, self.whole = None, True
        self.skipped.append({"field": where or self.where, "message": message})


def column_reports(event: Event) -> list[Report]:
    """The ``columnLineage`` facets on the event's outputs (or its dataset). One that does
    not parse is skipped, and the event recorded without it (a pipeline's run is not
    lost to a malformed optional facet; the answer says what was skipped)."""
    given = [(f"body.outputs[{i}]", d) for i, d in enumerate(event.outputs)]
    if event.dataset is not None:
        given.append(("body.dataset", event.dataset))
    reports: list[Report] = []
    for path, dataset in given:
        facet = dataset.facets.get(columns.FACET)
        if facet is None:
            continue
        report = Report(path, dataset, None)
        reports.append(report)
        if facet.get("_deleted") is True:
            continue
        try:
            report.facet = validate(columns.ColumnLineageFacet, facet, path=report.where)
        except ValidationFailed as error:
            report.skip(error.message, error.field)
    return reports


_VERSION_SEGMENT = re.compile(r"/v?\d+(\.\d+)+(?=/|$)")


def _reporter(event: Event, experiment: dict[str, Any] | None) -> str:
    """Who a column lineage report is from: the job (its experiment), or for a
    DatasetEvent, its producer, version segments left out (an upgraded integration is the
    same reporter: ``.../tree/1.26.0/integration/spark`` -> ``.../tree/integration/spark``)."""
    if experiment is not None:
        return str(experiment["id"])
    return "producer:" + _VERSION_SEGMENT.sub("", event.producer)


def _known_columns(reported: OLDataset, props: dict[str, Any], target: Dataset) -> list[str]:
    """The output's columns: the event's schema facet, else the stored one, else its
    schema."""
    for facet in (
        reported.facets.get("schema"),
        _loaded(props, JSON_PREFIX + FACET_PREFIX + "schema"),
    ):
        fields = (facet or {}).get("fields")
        if isinstance(fields, list):
            return columns.schema_columns(fields)
    return columns.schema_columns(target.schema)


async def _columns(
    tx: Tx, event: Event, reports: list[Report], answer: Recorded, updates: _Updates
) -> columns.Written:
    """Write the column lineage ``reports`` say (see ``graph/columns.py``), except where a
    later report of the same reporter on that dataset is stored (the dataset is locked).
    A report not taken leaves its dataset's report time as it was."""
    reporter = _reporter(event, answer.experiment)
    targets: dict[str, Dataset] = {f"body.outputs[{i}]": d for i, d in enumerate(answer.outputs)}
    if answer.dataset is not None:
        targets["body.dataset"] = answer.dataset
    # An input column's dataset: the version the run read (inputs first), else written.
    named: dict[str, str] = {}
    for mention, stored in [
        *zip(event.inputs, answer.inputs, strict=True),
        *zip(event.outputs, answer.outputs, strict=True),
        *([(event.dataset, answer.dataset)] if event.dataset and answer.dataset else []),
    ]:
        named.setdefault(mention.uri, stored.id)
    # One report a dataset: a dataset named twice, its later mention's (as for facets).
    last: dict[str, Report] = {}
    for report in reports:
        if report.taken:
            last[targets[report.path].id] = report
    current: list[Report] = []
    for report in reports:
        target = targets[report.path]
        times = _loaded(updates.before(target.id), columns.COLUMN_TIMES)
        if last.get(target.id) is report and times.get(reporter, "") <= event.stamp:
            current.append(report)
    # Too many edges or bytes: refused before anything is looked up or made.
    known: dict[str, list[str]] = {}
    for report in current:
        if report.facet is not None:
            target = targets[report.path]
            known[report.path] = _known_columns(report.dataset, updates.before(target.id), target)
            try:
                columns.check_size(report.facet, known[report.path])
            except columns.Refused as refused:
                report.skip(str(refused))
    # Datasets named only in a facet: the one at that URI (the unversioned one first),
    # else a new unversioned one.
    unknown: dict[str, columns.InputField] = {}
    for report in current:
        named_here = columns.inputs_named(report.facet) if report.facet else {}
        new = {u: f for u, f in named_here.items() if u not in named and u not in unknown}
        if len(unknown) + len(new) > columns.MAX_NAMED_DATASETS:
            report.skip(f"names more than {columns.MAX_NAMED_DATASETS} datasets the event does not")
            continue
        unknown.update(new)
    named.update(await _datasets_at(tx, unknown))
    edges: list[columns.ColumnEdge] = []
    for report in current:
        if report.facet is None:
            continue
        target = targets[report.path]
        found, skipped = columns.edges_of(report.facet, target.id, named, known[report.path])
        if skipped:
            report.skipped.append(
                {
                    "field": report.where,
                    "message": f"{skipped} column reference(s) left out: a column name has 1 "
                    f"to {columns.MAX_COLUMN_NAME} characters, and a dataset a namespace and "
                    "a name it can be registered under",
                }
            )
        edges += found
    taken = {targets[r.path].id for r in current if r.taken}
    # The report time stays as it was where the dataset's report was not taken.
    updates.unreported |= {targets[r.path].id for r in reports} - taken
    answer.columns_skipped = [s for r in reports for s in r.skipped]
    return await columns.replace(
        tx,
        # A report skipped whole changes nothing; a _deleted one removes what it said.
        targets=sorted(taken),
        edges=edges,
        reporter=reporter,
        run_id=answer.run["id"] if answer.run else None,
        at=event.event_time,
        now=now(),
    )


async def _datasets_at(tx: Tx, given: dict[str, columns.InputField]) -> dict[str, str]:
    """The id of a dataset at each URI of ``given``: the unversioned one, else the newest
    version; made (unversioned) where there is none."""
    if not given:
        return {}
    rows = await tx.run(
        "UNWIND $uris AS uri "
        "CALL (uri) { MATCH (d:Node:Dataset {uri: uri}) WHERE NOT d:Deleted "
        "  RETURN d.id AS id ORDER BY d.digest IS NULL DESC, d.createdAt DESC LIMIT 1 } "
        "RETURN uri, id",
        {"uris": sorted(given)},
    )
    found: dict[str, str] = {row["uri"]: row["id"] for row in rows}
    made: dict[str, DatasetFields] = {}
    for uri, ref in given.items():
        if uri in found:
            continue
        try:
            mention = {"namespace": ref.namespace, "name": ref.name}
            made[uri] = dataset_fields(validate(OLDataset, mention), "columnLineage")
        except ValidationFailed:
            continue  # not a dataset an event could name: its columns are left out
    stored = await ensure_stored(tx, list(made.values())) if made else []
    for uri, (props, _) in zip(made, stored, strict=True):
        found[uri] = props["id"]
    return found


async def record(tx: Tx, event: Event, *, project: str | None = None) -> Recorded:
    """Record ``event`` inside ``tx`` (see the module doc)."""
    reports = column_reports(event)  # parsed before anything is written
    updates = _Updates()
    answer = Recorded(event.kind)
    if event.job is not None:
        answer.experiment = await _experiment(tx, event, event.job, project, updates)
    reporter = _reporter(event, answer.experiment)
    found = await _datasets(tx, event, updates, reports, reporter)
    answer.inputs, answer.outputs, answer.dataset = found
    if event.run is not None:
        assert answer.experiment is not None
        assert event.job is not None
        answer.run = await _run(tx, event, answer.experiment, updates)
        await updates.lock(tx)  # before the edges, which lock their ends
        run_id = answer.run["id"]
        code = code_fields(event.job)
        if code is not None:
            answer.code = [c.id for c, _ in await ensure_codes(tx, [code])]
        edges = [
            *(links.Link(d.id, "INPUT_TO", run_id, "body.inputs") for d in answer.inputs),
            *(links.Link(c, "INPUT_TO", run_id, "body.job.facets") for c in answer.code),
            *(links.Link(run_id, "PRODUCED", d.id, "body.outputs") for d in answer.outputs),
        ]
        await links.add(tx, edges, now())
    else:
        await updates.lock(tx)
    if reports:
        answer.columns = await _columns(tx, event, reports, answer, updates)
    await updates.write(tx, now())
    return answer

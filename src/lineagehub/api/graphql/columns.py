"""GraphQL types of column lineage (``graph/columns.py``): a dataset's columns, and which
columns of which datasets each is computed from, as pipelines report it through
OpenLineage's ``columnLineage`` facet."""

from __future__ import annotations

import enum
from datetime import datetime

import strawberry
from strawberry import UNSET

from lineagehub.api.graphql.context import Info
from lineagehub.api.graphql.inputs import DatasetRefInput, wire
from lineagehub.api.graphql.lineage import _field_nodes_below, names_below
from lineagehub.api.graphql.provenance import Dataset, ExperimentRun
from lineagehub.graph import columns as engine
from lineagehub.graph import records
from lineagehub.graph.commands import validate
from lineagehub.graph.errors import LimitExceeded, ValidationFailed
from lineagehub.graph.lineage import Direction, LineageSpec, check_spec
from lineagehub.graph.properties import JSON_PREFIX, SCALAR_PREFIX


@strawberry.type(description="How a column is computed from one of its inputs.")
class ColumnTransformation:
    type: str = strawberry.field(
        description=(
            "DIRECT (the input's value flows into the column) or INDIRECT (the input shapes "
            "the result without flowing into it: a filter, join key, sort, grouping)."
        )
    )
    subtype: str | None = strawberry.field(
        description=(
            "As OpenLineage names them: IDENTITY, TRANSFORMATION, AGGREGATION (direct); "
            "FILTER, JOIN, GROUP_BY, SORT, WINDOW, CONDITIONAL (indirect)."
        )
    )
    description: str | None
    masking: bool | None = strawberry.field(
        description="Whether the transformation masks the input (a hash, a redaction)."
    )


@strawberry.type(description="A column (field) of a dataset; nested fields are dotted.")
class DatasetColumn:
    name: str
    type: str | None = strawberry.field(description="As the dataset's schema gives it.")
    description: str | None = strawberry.field(description="As the dataset's schema gives it.")
    dataset: Dataset


@strawberry.type(description="A column in a column lineage answer.")
class LineageColumn(DatasetColumn):
    degree: int = strawberry.field(description="Hops from the start columns (which are 0).")


@strawberry.type(description="Column `to` is computed from column `from`.")
class ColumnLineageEdge:
    from_: DatasetColumn = strawberry.field(name="from")
    to: DatasetColumn
    direct: bool = strawberry.field(
        description="Whether any transformation is DIRECT (false: the input only shapes it)."
    )
    transformations: list[ColumnTransformation]
    description: str | None = strawberry.field(
        description="The reporter's description of the transformation, if it gave one."
    )
    reported_at: datetime | None = strawberry.field(
        description=(
            "When it was reported: the OpenLineage event's time, or when recordColumnLineage "
            "was called."
        )
    )
    reporter: str | None = strawberry.field(
        description=(
            "Who reported it, each reporter's report replacing its own earlier one: an "
            "OpenLineage job (its experiment's id), `producer:<producer>` (a DatasetEvent, "
            "versions left out), `api` or `api:<experiment id>` (recordColumnLineage, "
            "without or with a run)."
        )
    )
    run_id: strawberry.Private[str | None]

    @strawberry.field(
        description=(
            "The run that reported it: null for a JobEvent or DatasetEvent, a declaration "
            "without a run, or a run since purged or outside the caller's projects."
        )
    )
    async def run(self, info: Info) -> ExperimentRun | None:
        if self.run_id is None:
            return None
        record = await info.context.loaders.by_id(records.ExperimentRun).load(self.run_id)
        return ExperimentRun.from_record(record) if record is not None else None


@strawberry.type(description="The columns a dataset's columns come from, or feed.")
class ColumnLineage:
    columns: list[LineageColumn] = strawberry.field(
        description="The start columns (degree 0), then the others, nearest first."
    )
    edges: list[ColumnLineageEdge] = strawberry.field(description="Edges among those columns.")
    truncated: bool = strawberry.field(
        description="True when more than `limit` columns besides the starts were found."
    )
    omitted_columns: int = strawberry.field(
        description="Columns found but cut by `limit` (when truncated, at least this many)."
    )
    reachable_columns: int = strawberry.field(
        description=(
            "Columns besides the starts within maxDepth; when truncated, at least this "
            "many (the walk stops once past the limit)."
        )
    )
    more_beyond_depth: bool = strawberry.field(
        description="True when column lineage goes on past maxDepth (not looked for when "
        "truncated)."
    )


def dataset_columns(dataset: Dataset) -> list[DatasetColumn]:
    """A dataset's columns, as its schema gives them."""
    return [_column(dataset, name, entry) for name, entry in engine.schema_entries(dataset.schema)]


def _column(dataset: Dataset, name: str, entry: dict[str, object] | None) -> DatasetColumn:
    entry = entry or {}
    kind, text = entry.get("type"), entry.get("description")
    return DatasetColumn(
        name=name,
        type=kind if isinstance(kind, str) else None,
        description=text if isinstance(text, str) else None,
        dataset=dataset,
    )


async def column_lineage(
    info: Info,
    dataset_id: str,
    *,
    columns: list[str] | None,
    direction: Direction,
    max_depth: int | None,
    limit: int | None,
    include_indirect: bool,
) -> ColumnLineage:
    settings = info.context.settings
    skipped, typed = _reads(info)
    spec = engine.ColumnSpec(
        skip_props=skipped,
        direction=direction,
        max_depth=settings.default_lineage_depth if max_depth is None else max_depth,
        limit=settings.default_lineage_limit if limit is None else limit,
        columns=tuple(columns) if columns is not None else None,
        include_indirect=include_indirect,
    )
    _check(spec, max_depth=settings.max_lineage_depth, max_columns=settings.max_lineage_nodes)
    found = await info.context.loaders.column_lineage.load((dataset_id, spec))
    if found is None:
        return ColumnLineage(
            columns=[],
            edges=[],
            truncated=False,
            omitted_columns=0,
            reachable_columns=0,
            more_beyond_depth=False,
        )
    datasets: dict[str, Dataset] = {
        node_id: Dataset.from_record(record) for node_id, record in found.datasets.items()
    }
    made: dict[tuple[str, str], DatasetColumn] = {}
    schemas: dict[str, dict[str, dict[str, object]]] = {}

    def column(key: tuple[str, str]) -> DatasetColumn:
        if key not in made:
            dataset = datasets[key[0]]
            if typed and key[0] not in schemas:
                schemas[key[0]] = dict(engine.schema_entries(dataset.schema))
            entry = schemas[key[0]].get(key[1]) if typed else None
            made[key] = _column(dataset, key[1], entry)
        return made[key]

    if found.start_count > engine.MAX_COLUMNS:
        raise LimitExceeded(
            f"the dataset has {found.start_count} columns with lineage; name at most "
            f"{engine.MAX_COLUMNS} to start from",
            field="columns",
            details={"maximum": engine.MAX_COLUMNS},
        )
    listed = []
    # A column named to start from is there even when no lineage reaches it.
    lone = [c for c in columns or () if all(n.name != c or n.degree for n in found.columns)]
    for name in dict.fromkeys(lone):
        if dataset_id in datasets:
            plain = column((dataset_id, name))
            listed.append(
                LineageColumn(
                    name=name,
                    type=plain.type,
                    description=plain.description,
                    dataset=plain.dataset,
                    degree=0,
                )
            )
    for node in found.columns:
        if node.dataset_id not in datasets:
            continue  # (a dataset purged meanwhile)
        plain = column((node.dataset_id, node.name))
        listed.append(
            LineageColumn(
                name=plain.name,
                type=plain.type,
                description=plain.description,
                dataset=plain.dataset,
                degree=node.degree,
            )
        )
    return ColumnLineage(
        columns=listed,
        edges=[
            ColumnLineageEdge(
                from_=column(e.source),
                to=column(e.target),
                direct=e.direct,
                transformations=[_transformation(t) for t in e.transformations],
                description=e.description,
                reported_at=e.reported_at,
                reporter=e.reporter,
                run_id=e.run_id,
            )
            for e in found.edges
            if e.source[0] in datasets and e.target[0] in datasets
        ],
        truncated=found.truncated,
        omitted_columns=found.reachable - sum(1 for c in found.columns if c.degree > 0),
        reachable_columns=found.reachable,
        more_beyond_depth=found.more_beyond_depth,
    )


def _reads(info: Info) -> tuple[tuple[str, ...], bool]:
    """What a column lineage selection shows: the dataset property prefixes it never shows
    (custom properties, which hold OpenLineage's facets; the profile; the schema, unless
    columns show their type or description, or the dataset its schema or columns;
    bookkeeping), and whether columns show their type or description."""
    raw = info._raw_info
    below = _field_nodes_below(raw, [node.selection_set for node in raw.field_nodes])
    on = [n for n in below if n.name.value == "columns"]
    for edges in (n for n in below if n.name.value == "edges"):
        on += [n for n in _field_nodes_below(raw, [edges.selection_set]) if n.name.value in _ENDS]
    shown = _field_nodes_below(raw, [node.selection_set for node in on])
    typed = any(node.name.value in ("type", "description") for node in shown)
    datasets = [node for node in shown if node.name.value == "dataset"]
    names = names_below(datasets, raw.fragments) if datasets else frozenset()
    skipped = ["ol"]  # olFacetTimes, olColumnTimes, ...
    if not names & {"customProperties", "customProperty"}:
        skipped += [SCALAR_PREFIX, JSON_PREFIX]
    if "profile" not in names:
        skipped.append("profileJson")
    if not typed and not names & {"schema", "columns"}:
        skipped.append("schemaJson")
    return tuple(skipped), typed


_ENDS = ("from", "to")


def _transformation(stored: dict[str, object]) -> ColumnTransformation:
    def text(key: str) -> str | None:
        value = stored.get(key)
        return value if isinstance(value, str) else None

    masking = stored.get("masking")
    return ColumnTransformation(
        type=text("type") or "DIRECT",
        subtype=text("subtype"),
        description=text("description"),
        masking=masking if isinstance(masking, bool) else None,
    )


def _check(spec: engine.ColumnSpec, *, max_depth: int, max_columns: int) -> None:
    """VALIDATION / LIMIT_EXCEEDED naming the argument, before any query runs."""
    as_lineage = LineageSpec(max_depth=spec.max_depth, limit=spec.limit)
    check_spec(as_lineage, max_depth=max_depth, max_nodes=max_columns)
    if spec.columns is not None:
        if len(spec.columns) > engine.MAX_COLUMNS:
            raise LimitExceeded(
                f"at most {engine.MAX_COLUMNS} columns may be named",
                field="columns",
                details={"maximum": engine.MAX_COLUMNS},
            )
        for i, name in enumerate(spec.columns):
            if not 0 < len(name) <= engine.MAX_COLUMN_NAME:
                raise ValidationFailed(
                    f"a column name has 1 to {engine.MAX_COLUMN_NAME} characters",
                    field=f"columns[{i}]",
                )


# --- declaring column lineage through GraphQL --------------------------------------------


@strawberry.enum(description="DIRECT: the input's value flows into the column; INDIRECT: not.")
class ColumnTransformationType(enum.Enum):
    DIRECT = "DIRECT"
    INDIRECT = "INDIRECT"


@strawberry.input(description="How a column is computed from one input.")
class ColumnTransformationInput:
    type: ColumnTransformationType
    subtype: str | None = strawberry.field(
        default=UNSET, description="IDENTITY, TRANSFORMATION, AGGREGATION, FILTER, JOIN, ..."
    )
    description: str | None = UNSET
    masking: bool | None = UNSET


@strawberry.input(description="An input column: a column of an existing dataset.")
class ColumnInputInput:
    dataset: DatasetRefInput
    column: str
    transformations: list[ColumnTransformationInput] | None = UNSET


@strawberry.input(description="A column of the dataset and the columns it is computed from.")
class ColumnLineageColumnInput:
    name: str
    inputs: list[ColumnInputInput]


@strawberry.input(
    description=(
        "What a dataset's columns are computed from. It replaces what the same reporter "
        "said before of this dataset's columns (`columns: []` withdraws it): `api` for "
        "every caller, or `api:<experiment id>` with a `runId` (the run is then on each "
        "edge). OpenLineage reports are other reporters, left as they are."
    )
)
class ColumnLineageInput:
    dataset: DatasetRefInput
    columns: list[ColumnLineageColumnInput]
    dataset_inputs: list[ColumnInputInput] | None = strawberry.field(
        default=UNSET,
        description="Inputs that shape every column (a filter, a join key): INDIRECT by default.",
    )
    run_id: strawberry.ID | None = strawberry.field(
        default=UNSET, description="The run that computes the dataset."
    )


@strawberry.type(description="The dataset, and what the declaration did to its column edges.")
class ColumnLineagePayload:
    dataset: Dataset
    edges: int = strawberry.field(description="How many column edges the declaration holds.")
    removed: int = strawberry.field(
        description="How many edges of the reporter's previous declaration it removed."
    )


@strawberry.type
class ColumnMutation:
    @strawberry.mutation(
        description=(
            "Declare what a dataset's columns are computed from (column lineage, as "
            "OpenLineage's columnLineage facet reports it), in one transaction."
        )
    )
    async def record_column_lineage(
        self, info: Info, input: ColumnLineageInput
    ) -> ColumnLineagePayload:
        given = validate(engine.ColumnLineageIn, wire(input))
        record, written = await engine.record_column_lineage(info.context.store, given)
        return ColumnLineagePayload(
            dataset=Dataset.from_record(record), edges=written.edges, removed=written.removed
        )

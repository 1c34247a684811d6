"""GraphQL types of where models come from: datasets, code, experiments and runs."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from lineagehub.api.graphql.context import Info
from lineagehub.api.graphql.filters import filter_input, order_input, sort_field_enum
from lineagehub.api.graphql.lineage import hop, shortcut, wrap
from lineagehub.api.graphql.scalars import JSON, Long
from lineagehub.api.graphql.types import (
    Connection,
    CustomProperty,
    RegistryEntity,
    load_page,
)
from lineagehub.graph import lineage as engine
from lineagehub.graph import records
from lineagehub.graph.experiments import RUNS_OF_EXPERIMENT
from lineagehub.graph.records import RunStatus

if TYPE_CHECKING:
    from lineagehub.api.graphql.columns import ColumnLineage, DatasetColumn
    from lineagehub.api.graphql.serving import InferenceService
    from lineagehub.api.graphql.types import ModelVersion

_Version = Annotated["ModelVersion", strawberry.lazy("lineagehub.api.graphql.types")]
_Service = Annotated["InferenceService", strawberry.lazy("lineagehub.api.graphql.serving")]
_Column = Annotated["DatasetColumn", strawberry.lazy("lineagehub.api.graphql.columns")]
_ColumnLineage = Annotated["ColumnLineage", strawberry.lazy("lineagehub.api.graphql.columns")]


def _cap(info: Info) -> tuple[int, int]:
    settings = info.context.settings
    return settings.max_lineage_depth, settings.max_lineage_nodes


@strawberry.type(description="Data at a URI; `digest` names its content version.")
class Dataset(RegistryEntity):
    uri: str | None = strawberry.field(
        description="Where the data is (its natural key, with digest)."
    )
    digest: str | None
    source_type: str | None
    source: str | None
    schema: JSON | None
    profile: JSON | None
    artifact_state: str | None

    @strawberry.field(description="Datasets this one was derived from (direct parents).")
    async def derived_from(self, info: Info) -> list[Dataset]:
        return await hop(info, self.id, engine.PARENT_DATASETS)

    @strawberry.field(description="Datasets derived from this one (transitively by default).")
    async def derived_datasets(self, info: Info, transitive: bool = True) -> list[Dataset]:
        depth, limit = _cap(info)
        spec = engine.derived_datasets(transitive=transitive, depth=depth, limit=limit)
        return await shortcut(info, self.id, spec, "Dataset")

    @strawberry.field(description="Model versions trained on this data, directly or not.")
    async def impacted_versions(self, info: Info) -> list[_Version]:
        depth, limit = _cap(info)
        spec = engine.impact(services=False, depth=depth, limit=limit)
        return await shortcut(info, self.id, spec, "ModelVersion")

    @strawberry.field(
        description=(
            "Services now serving a version this data fed; only DEPLOYED ones unless "
            "includeUndeployed."
        )
    )
    async def impacted_deployments(
        self, info: Info, include_undeployed: bool = False
    ) -> list[_Service]:
        depth, limit = _cap(info)
        spec = engine.impact(services=True, depth=depth, limit=limit)
        services = await shortcut(info, self.id, spec, "InferenceService", ("desiredState",))
        if include_undeployed:
            return services
        return [s for s in services if s.desired_state is records.DesiredState.DEPLOYED]

    @strawberry.field(description="Runs that produced this dataset.")
    async def produced_by(self, info: Info) -> list[ExperimentRun]:
        return await hop(info, self.id, engine.PRODUCING_RUNS)

    @strawberry.field(description="Its columns, as its schema gives them (nested ones dotted).")
    def columns(self) -> list[_Column]:
        from lineagehub.api.graphql.columns import dataset_columns

        return dataset_columns(self)

    @strawberry.field(
        description=(
            "Column-level lineage, as pipelines report it (OpenLineage's columnLineage "
            "facet): the columns `columns` of this dataset (default: every column it has "
            "lineage for) are computed from, going UPSTREAM, or feed, going DOWNSTREAM, "
            "across datasets, up to maxDepth hops; at most `limit` columns besides the "
            "starts, nearest first. includeIndirect: false follows only inputs whose value "
            "flows into a column (not filters, join keys, sorts)."
        )
    )
    async def column_lineage(
        self,
        info: Info,
        columns: list[str] | None = None,
        direction: engine.Direction = engine.Direction.UPSTREAM,
        max_depth: int | None = None,
        limit: int | None = None,
        include_indirect: bool = True,
    ) -> _ColumnLineage:
        from lineagehub.api.graphql.columns import column_lineage

        return await column_lineage(
            info,
            self.id,
            columns=columns,
            direction=direction,
            max_depth=max_depth,
            limit=limit,
            include_indirect=include_indirect,
        )


@strawberry.type(description="Code at a commit: repository, path or notebook, entry point.")
class CodeRef(RegistryEntity):
    repository: str
    commit: str | None
    path: str | None
    notebook: str | None
    entry_point: str | None


RunFilter = filter_input(
    "ExperimentRun",
    records.ExperimentRun.FIELDS,
    skip=frozenset({"experimentId"}),
    keyed=("customProperties", "params", "metrics"),
)
RunOrder = order_input(
    "ExperimentRun",
    sort_field_enum("ExperimentRun", records.ExperimentRun.FIELDS),
    keyed=("customProperty", "param", "metric"),
)


@strawberry.type(description="A group of runs.")
class Experiment(RegistryEntity):
    owner: str | None
    project: str | None

    @strawberry.field(
        description=(
            "Runs of this experiment. Filter and sort on params and metrics too, e.g. "
            'orderBy: [{metric: "val_auc", direction: DESC}], first: 1 for the best run.'
        )
    )
    async def runs(
        self,
        info: Info,
        filter: RunFilter | None = None,  # type: ignore[valid-type]
        order_by: list[RunOrder] | None = None,  # type: ignore[valid-type]
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[ExperimentRun]:
        page: Connection[ExperimentRun] = await load_page(
            info,
            RUNS_OF_EXPERIMENT,
            self.id,
            filter=filter,
            order_by=order_by,
            first=first,
            after=after,
            wrap=lambda row: ExperimentRun.from_record(records.ExperimentRun.from_props(row)),
        )
        return page


@strawberry.type(description="One logged value of a metric.")
class MetricPoint:
    value: float
    step: Long
    timestamp: datetime


@strawberry.type(description="A metric of a run: its latest value (highest step) and history.")
class Metric:
    key: str
    value: float = strawberry.field(description="The latest value.")
    step: Long
    timestamp: datetime
    history: list[MetricPoint]


@strawberry.type(description="One training or processing run.")
class ExperimentRun(RegistryEntity):
    status: RunStatus
    project: str | None
    start_time: datetime | None
    end_time: datetime | None
    params: list[CustomProperty]
    metrics: list[Metric]
    owner: str | None
    experiment_id: strawberry.Private[str]

    @strawberry.field(description="One param by key, or null.")
    def param(self, key: str) -> CustomProperty | None:
        return next((p for p in self.params if p.key == key), None)

    @strawberry.field(description="One metric by key, or null.")
    def metric(self, key: str) -> Metric | None:
        return next((m for m in self.metrics if m.key == key), None)

    @strawberry.field(description="The experiment this run belongs to.")
    async def experiment(self, info: Info) -> Experiment:
        record = await info.context.loaders.by_id(records.Experiment).load(self.experiment_id)
        assert record is not None
        return Experiment.from_record(record)

    @strawberry.field(description="Datasets this run consumed.")
    async def input_datasets(self, info: Info) -> list[Dataset]:
        return await hop(info, self.id, engine.RUN_DATASETS)

    @strawberry.field(description="Code this run executed.")
    async def code(self, info: Info) -> list[CodeRef]:
        return await hop(info, self.id, engine.RUN_CODE)

    @strawberry.field(description="Model versions this run produced.")
    async def produced_versions(self, info: Info) -> list[_Version]:
        return await hop(info, self.id, engine.RUN_VERSIONS)

    @strawberry.field(description="Datasets this run produced.")
    async def produced_datasets(self, info: Info) -> list[Dataset]:
        return await hop(info, self.id, engine.RUN_DATASET_OUTPUTS)

    ADAPT = {
        **RegistryEntity.ADAPT,
        "params": lambda params: [CustomProperty.of(p) for p in params],
        "metrics": lambda metrics: [_metric(m) for m in metrics],
    }


def _metric(m: records.Metric) -> Metric:
    return Metric(
        key=m.key,
        value=m.latest.value,
        step=Long(m.latest.step),
        timestamp=m.latest.timestamp,
        history=[
            MetricPoint(value=p.value, step=Long(p.step), timestamp=p.timestamp) for p in m.history
        ],
    )


__all__ = ["CodeRef", "Dataset", "Experiment", "ExperimentRun", "wrap"]

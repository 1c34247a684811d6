"""Root fields for the lineage half of the graph: provenance, serving, lineage queries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry

from lineagehub.api.graphql.context import Info
from lineagehub.api.graphql.enums import EdgeType, NodeType
from lineagehub.api.graphql.filters import filter_input, order_input, sort_field_enum
from lineagehub.api.graphql.inputs import (
    CodeRefInput,
    CreateExperimentRunInput,
    CustomPropertyInput,
    DatasetChanges,
    DatasetInput,
    DatasetRefInput,
    ExperimentChanges,
    ExperimentInput,
    ExperimentRunChanges,
    InferenceServiceChanges,
    InferenceServiceInput,
    MetricInput,
    MonitoringLinkInput,
    RunInputsInput,
    ServingEnvironmentInput,
    wire,
)
from lineagehub.api.graphql.lineage import (
    Lineage,
    LineagePath,
    load_lineage,
    lookup_columns,
    serves_plainly,
    spec_of,
    wrap,
)
from lineagehub.api.graphql.provenance import CodeRef, Dataset, Experiment, ExperimentRun
from lineagehub.api.graphql.query import live, one_of
from lineagehub.api.graphql.serving import (
    Deployment,
    InferenceService,
    MonitoringLink,
    ServingEnvironment,
)
from lineagehub.api.graphql.types import Connection, RegistryEntity, top_level
from lineagehub.graph import (
    datasets,
    entities,
    experiments,
    ids,
    links,
    records,
    serving,
)
from lineagehub.graph import lineage as engine
from lineagehub.graph.commands import Command, validate
from lineagehub.graph.entities import now
from lineagehub.graph.errors import ValidationFailed
from lineagehub.graph.properties import CustomPropertyIn

DatasetFilter = filter_input("Dataset", records.Dataset.FIELDS)
DatasetOrder = order_input("Dataset", sort_field_enum("Dataset", records.Dataset.FIELDS))
ServiceFilter = filter_input(
    "InferenceService",
    records.InferenceService.FIELDS,
    skip=frozenset({"environmentId", "servedVersionId"}),
)
ServiceOrder = order_input(
    "InferenceService", sort_field_enum("InferenceService", records.InferenceService.FIELDS)
)
ExperimentFilter = filter_input("Experiment", records.Experiment.FIELDS)
ExperimentOrder = order_input(
    "Experiment", sort_field_enum("Experiment", records.Experiment.FIELDS)
)


async def _by_id(info: Info, record_type: type[records.Entity], node_id: str) -> Any:
    ids.expect_label(node_id, record_type.LABEL)
    record = await info.context.loaders.by_id(record_type).load(node_id)
    return wrap(record) if live(record) else None


async def _by_external_id(info: Info, record_type: type[records.Entity], external_id: str) -> Any:
    record = await entities.get_by_external_id(info.context.store, record_type, external_id)
    return wrap(record) if record else None


@strawberry.type
class LineageQuery:
    @strawberry.field(
        description=(
            "The lineage subgraph around `start`: one Cypher round trip whatever its size. "
            "Without since/until it is the graph as it is now; with them, edges that held at "
            "some time in the window."
        )
    )
    async def lineage(
        self,
        info: Info,
        start: strawberry.ID,
        direction: engine.Direction = engine.Direction.UPSTREAM,
        max_depth: int | None = None,
        node_types: list[NodeType] | None = None,
        edge_types: list[EdgeType] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        with_paths: bool = False,
    ) -> Lineage:
        ids.label_of(start, field="start")
        spec = spec_of(
            info,
            direction=direction,
            max_depth=max_depth,
            node_types=node_types,
            edge_types=edge_types,
            since=since,
            until=until,
            limit=limit,
            with_paths=with_paths,
        )
        return await load_lineage(info, start, spec)

    @strawberry.field(
        description=(
            "How two nodes relate: the shortest lineage path from `from` to `to` (upstream, "
            "else downstream, else through a common node); null if none within maxDepth."
        )
    )
    async def path(
        self,
        info: Info,
        from_: Annotated[strawberry.ID, strawberry.argument(name="from")],
        to: strawberry.ID,
        max_depth: int | None = None,
        edge_types: list[EdgeType] | None = None,
    ) -> LineagePath | None:
        ids.label_of(from_, field="from")
        ids.label_of(to, field="to")
        settings = info.context.settings
        depth = settings.max_lineage_depth if max_depth is None else max_depth
        engine.check_spec(
            engine.LineageSpec(max_depth=depth, limit=1),
            max_depth=settings.max_lineage_depth,
            max_nodes=settings.max_lineage_nodes,
        )
        found = await engine.path(
            info.context.store,
            from_,
            to,
            max_depth=depth,
            edge_types=tuple(t.value for t in edge_types) if edge_types else None,
        )
        return LineagePath.of(found) if found else None

    @strawberry.field(
        description=(
            "A dataset by id, externalId, or uri + digest; with only a uri, its newest version."
        )
    )
    async def dataset(
        self,
        info: Info,
        id: strawberry.ID | None = None,
        external_id: str | None = None,
        uri: str | None = None,
        digest: str | None = None,
    ) -> Dataset | None:
        key = one_of(id=id, externalId=external_id, uri=uri)
        if key == "id":
            return await _by_id(info, records.Dataset, str(id))  # type: ignore[no-any-return]
        if key == "externalId":
            return await _by_external_id(info, records.Dataset, str(external_id))  # type: ignore[no-any-return]
        found = await datasets.get_dataset(info.context.store, str(uri), digest)
        return Dataset.from_record(found[0]) if found else None

    @strawberry.field(description="Every version (digest) of the dataset at `uri`, newest first.")
    async def dataset_versions(self, info: Info, uri: str) -> list[Dataset]:
        return [
            Dataset.from_record(d)
            for d in await datasets.get_dataset(info.context.store, uri, None)
        ]

    @strawberry.field(description="Datasets (default order: by uri).")
    async def datasets(
        self,
        info: Info,
        filter: DatasetFilter | None = None,  # type: ignore[valid-type]
        order_by: list[DatasetOrder] | None = None,  # type: ignore[valid-type]
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Dataset]:
        return await top_level(
            info, datasets.DATASETS, records.Dataset, Dataset, filter, order_by, first, after
        )

    @strawberry.field(description="A code ref by id or externalId.")
    async def code_ref(
        self, info: Info, id: strawberry.ID | None = None, external_id: str | None = None
    ) -> CodeRef | None:
        if one_of(id=id, externalId=external_id) == "id":
            return await _by_id(info, records.CodeRef, str(id))  # type: ignore[no-any-return]
        return await _by_external_id(info, records.CodeRef, str(external_id))  # type: ignore[no-any-return]

    @strawberry.field(description="An experiment by id, externalId or name.")
    async def experiment(
        self,
        info: Info,
        id: strawberry.ID | None = None,
        external_id: str | None = None,
        name: str | None = None,
    ) -> Experiment | None:
        key = one_of(id=id, externalId=external_id, name=name)
        if key == "id":
            return await _by_id(info, records.Experiment, str(id))  # type: ignore[no-any-return]
        if key == "externalId":
            return await _by_external_id(info, records.Experiment, str(external_id))  # type: ignore[no-any-return]
        found = await experiments.get_by_name(info.context.store, str(name))
        return Experiment.from_record(found) if found else None

    @strawberry.field(description="Experiments (default order: by name).")
    async def experiments(
        self,
        info: Info,
        filter: ExperimentFilter | None = None,  # type: ignore[valid-type]
        order_by: list[ExperimentOrder] | None = None,  # type: ignore[valid-type]
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Experiment]:
        return await top_level(
            info,
            experiments.EXPERIMENTS,
            records.Experiment,
            Experiment,
            filter,
            order_by,
            first,
            after,
        )

    @strawberry.field(description="A run by id or externalId.")
    async def experiment_run(
        self, info: Info, id: strawberry.ID | None = None, external_id: str | None = None
    ) -> ExperimentRun | None:
        if one_of(id=id, externalId=external_id) == "id":
            return await _by_id(info, records.ExperimentRun, str(id))  # type: ignore[no-any-return]
        return await _by_external_id(info, records.ExperimentRun, str(external_id))  # type: ignore[no-any-return]

    @strawberry.field(description="A serving environment by id or name.")
    async def serving_environment(
        self, info: Info, id: strawberry.ID | None = None, name: str | None = None
    ) -> ServingEnvironment | None:
        if one_of(id=id, name=name) == "id":
            return await _by_id(info, records.ServingEnvironment, str(id))  # type: ignore[no-any-return]
        rows = await info.context.store.read(
            "MATCH (n:ServingEnvironment {name: $name}) RETURN n {.*} AS n", {"name": name}
        )
        return (
            ServingEnvironment.from_record(records.ServingEnvironment.from_props(rows[0]["n"]))
            if rows
            else None
        )

    @strawberry.field(description="An inference service by id, or by environment + name.")
    async def inference_service(
        self,
        info: Info,
        id: strawberry.ID | None = None,
        environment: str | None = None,
        name: str | None = None,
    ) -> InferenceService | None:
        if (environment is None) != (name is None):
            raise ValidationFailed("environment and name go together", field="name")
        if one_of(id=id, environment=environment) == "id":
            return await _by_id(info, records.InferenceService, str(id))  # type: ignore[no-any-return]
        # Only the properties the selection shows when it is plain; the version it serves
        # is found through servedVersionId (and is read whole).
        columns = lookup_columns(info, {"modelVersion": ("servedVersionId",)})
        if serves_plainly(info):
            # The version it serves comes in the same query; its field finds it loaded.
            found, version = await serving.get_service_and_version(
                info.context.store, str(environment), str(name), columns
            )
            if version is not None:
                info.context.loaders.by_id(records.ModelVersion).prime(version.id, version)
        else:
            found = await serving.get_service(
                info.context.store, str(environment), str(name), columns
            )
        return InferenceService.from_record(found) if live(found) else None

    @strawberry.field(description="Inference services across environments.")
    async def inference_services(
        self,
        info: Info,
        filter: ServiceFilter | None = None,  # type: ignore[valid-type]
        order_by: list[ServiceOrder] | None = None,  # type: ignore[valid-type]
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[InferenceService]:
        return await top_level(
            info,
            serving.SERVICES,
            records.InferenceService,
            InferenceService,
            filter,
            order_by,
            first,
            after,
        )


# --- mutations ---------------------------------------------------------------------------


@strawberry.type(description="A dataset, and whether this call created it.")
class DatasetPayload:
    dataset: Dataset
    created: bool


@strawberry.type(description="A code ref, and whether this call created it.")
class CodeRefPayload:
    code_ref: CodeRef
    created: bool


@strawberry.type(description="A run, and whether this call created it.")
class ExperimentRunPayload:
    run: ExperimentRun
    created: bool


@strawberry.type(description="A service and the deployment just recorded.")
class DeployPayload:
    service: InferenceService
    deployment: Deployment


@strawberry.type(description="An edge between two nodes.")
class LinkPayload:
    from_: RegistryEntity = strawberry.field(name="from")
    to: RegistryEntity
    type: EdgeType
    changed: bool = strawberry.field(description="False when it already held (or did not).")


class _RunLog(Command):
    params: list[CustomPropertyIn] = []
    metrics: list[experiments.MetricIn] = []
    inputs: experiments.RunInputs = experiments.RunInputs()


async def _link(info: Info, from_: str, edge: Any, to: str, *, close: bool) -> LinkPayload:
    link = links.Link(from_, edge.value, to, path="")
    links.check(link)

    async def work(tx: Any) -> bool:
        if close:
            return await links.close(tx, link, now())
        return await links.add(tx, [link], now()) > 0

    changed = await info.context.store.write(work)
    nodes = await entities.get_any(info.context.store, [from_, to])
    return LinkPayload(from_=wrap(nodes[from_]), to=wrap(nodes[to]), type=edge, changed=changed)


@strawberry.type
class LineageMutation:
    @strawberry.mutation(
        description=(
            "Register a dataset (idempotent by uri + digest) and the datasets it was derived from."
        )
    )
    async def register_dataset(
        self,
        info: Info,
        input: DatasetInput,
        derived_from: list[DatasetRefInput] | None = None,
    ) -> DatasetPayload:
        fields = validate(datasets.DatasetFields, wire(input))
        parents = [
            validate(datasets.DatasetRef, wire(ref), path=f"derivedFrom[{i}]")
            for i, ref in enumerate(derived_from or [])
        ]
        dataset, created = await datasets.register_dataset(info.context.store, fields, parents)
        return DatasetPayload(dataset=Dataset.from_record(dataset), created=created)

    @strawberry.mutation(description="Change a dataset's descriptive fields.")
    async def update_dataset(self, info: Info, id: strawberry.ID, input: DatasetChanges) -> Dataset:
        command = validate(datasets.DatasetUpdate, wire(input))
        return Dataset.from_record(
            await entities.update(info.context.store, records.Dataset, id, command)
        )

    @strawberry.mutation(description="Register code at a commit (idempotent by its fields).")
    async def register_code_ref(self, info: Info, input: CodeRefInput) -> CodeRefPayload:
        command = validate(datasets.CodeRefFields, wire(input))
        code, created = await datasets.register_code(info.context.store, command)
        return CodeRefPayload(code_ref=CodeRef.from_record(code), created=created)

    @strawberry.mutation(description="Create an experiment; its name must be new.")
    async def create_experiment(self, info: Info, input: ExperimentInput) -> Experiment:
        command = validate(experiments.ExperimentFields, wire(input))
        return Experiment.from_record(
            await experiments.create_experiment(info.context.store, command)
        )

    @strawberry.mutation(description="Change an experiment.")
    async def update_experiment(
        self, info: Info, id: strawberry.ID, input: ExperimentChanges
    ) -> Experiment:
        command = validate(experiments.ExperimentUpdate, wire(input))
        return Experiment.from_record(
            await entities.update(info.context.store, records.Experiment, id, command)
        )

    @strawberry.mutation(
        description=(
            "Record a run with its params, metrics and inputs; idempotent by externalId (or "
            "name): calling again adds new params/metrics/inputs to the same run."
        )
    )
    async def record_experiment_run(
        self, info: Info, input: CreateExperimentRunInput
    ) -> ExperimentRunPayload:
        command = validate(experiments.RunCreate, wire(input))
        run, created = await experiments.create_run(info.context.store, command)
        return ExperimentRunPayload(run=ExperimentRun.from_record(run), created=created)

    @strawberry.mutation(
        description="Log to a run: append metric values, add params (immutable) and inputs."
    )
    async def log_experiment_run(
        self,
        info: Info,
        run_id: strawberry.ID,
        params: list[CustomPropertyInput] | None = None,
        metrics: list[MetricInput] | None = None,
        inputs: RunInputsInput | None = None,
    ) -> ExperimentRun:
        command = validate(
            _RunLog,
            {
                "params": wire(params or []),
                "metrics": wire(metrics or []),
                "inputs": wire(inputs) if inputs else {},
            },
        )
        run = await experiments.log_to_run(
            info.context.store,
            run_id,
            params=command.params,
            metrics=command.metrics,
            inputs=command.inputs,
        )
        return ExperimentRun.from_record(run)

    @strawberry.mutation(description="Change a run: status, end time, description, …")
    async def update_experiment_run(
        self, info: Info, id: strawberry.ID, input: ExperimentRunChanges
    ) -> ExperimentRun:
        command = validate(experiments.RunUpdate, wire(input))
        return ExperimentRun.from_record(
            await entities.update(info.context.store, records.ExperimentRun, id, command)
        )

    @strawberry.mutation(description="Record what a run produced: versions, datasets, artifacts.")
    async def add_run_outputs(
        self, info: Info, run_id: strawberry.ID, outputs: list[strawberry.ID]
    ) -> ExperimentRun:
        return ExperimentRun.from_record(
            await experiments.add_outputs(info.context.store, run_id, [str(o) for o in outputs])
        )

    @strawberry.mutation(description="Create a serving environment; its name must be new.")
    async def create_serving_environment(
        self, info: Info, input: ServingEnvironmentInput
    ) -> ServingEnvironment:
        command = validate(serving.EnvironmentFields, wire(input))
        return ServingEnvironment.from_record(
            await serving.create_environment(info.context.store, command)
        )

    @strawberry.mutation(
        description="Create an inference service (name unique in its environment)."
    )
    async def create_inference_service(
        self, info: Info, input: InferenceServiceInput
    ) -> InferenceService:
        command = validate(serving.ServiceCreate, wire(input))
        return InferenceService.from_record(
            await serving.create_service(info.context.store, command)
        )

    @strawberry.mutation(description="Change an inference service's descriptive fields.")
    async def update_inference_service(
        self, info: Info, id: strawberry.ID, input: InferenceServiceChanges
    ) -> InferenceService:
        command = validate(serving.ServiceUpdate, wire(input))
        return InferenceService.from_record(
            await entities.update(info.context.store, records.InferenceService, id, command)
        )

    @strawberry.mutation(
        description=(
            "Deploy a version to a service: the old SERVES edge is closed (kept as history), "
            "a new one opened and a Deployment recorded, in one transaction."
        )
    )
    async def deploy_model_version(
        self,
        info: Info,
        service_id: strawberry.ID,
        model_version_id: strawberry.ID,
        actor: str | None = None,
    ) -> DeployPayload:
        service, deployment = await serving.deploy(
            info.context.store, service_id, model_version_id, actor
        )
        return DeployPayload(
            service=InferenceService.from_record(service),
            deployment=Deployment.from_record(deployment),
        )

    @strawberry.mutation(description="Stop serving: UNDEPLOYED, its SERVES edge closed.")
    async def undeploy_inference_service(self, info: Info, id: strawberry.ID) -> InferenceService:
        return InferenceService.from_record(await serving.undeploy(info.context.store, id))

    @strawberry.mutation(description="Record the last known state of a deployment.")
    async def record_deployment_state(
        self, info: Info, deployment_id: strawberry.ID, state: records.DeploymentState
    ) -> Deployment:
        return Deployment.from_record(
            await serving.record_deployment_state(info.context.store, deployment_id, state)
        )

    @strawberry.mutation(description="Link a dashboard or drift baseline to a version/service.")
    async def create_monitoring_link(
        self, info: Info, input: MonitoringLinkInput
    ) -> MonitoringLink:
        command = validate(serving.MonitoringLinkCreate, wire(input))
        return MonitoringLink.from_record(
            await serving.create_monitoring_link(info.context.store, command)
        )

    @strawberry.mutation(
        description=(
            "Add a lineage edge between two existing nodes; only the node types the edge type "
            "allows (see EdgeType). Idempotent."
        )
    )
    async def link_nodes(
        self,
        info: Info,
        from_: Annotated[strawberry.ID, strawberry.argument(name="from")],
        type: EdgeType,
        to: strawberry.ID,
    ) -> LinkPayload:
        return await _link(info, from_, type, to, close=False)

    @strawberry.mutation(
        description="End a lineage edge; it is kept with `until` set, so history stays."
    )
    async def unlink_nodes(
        self,
        info: Info,
        from_: Annotated[strawberry.ID, strawberry.argument(name="from")],
        type: EdgeType,
        to: strawberry.ID,
    ) -> LinkPayload:
        return await _link(info, from_, type, to, close=True)

"""GraphQL types of where models run: environments, services, deployments, monitoring."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from lineagehub.api.graphql.context import Info
from lineagehub.api.graphql.lineage import hop
from lineagehub.api.graphql.types import Connection, RegistryEntity, load_page
from lineagehub.graph import lineage as engine
from lineagehub.graph import records
from lineagehub.graph.records import DeploymentState, DesiredState, MonitoringKind
from lineagehub.graph.serving import DEPLOYMENTS_OF_SERVICE

if TYPE_CHECKING:
    from lineagehub.api.graphql.types import ModelVersion

_Version = Annotated["ModelVersion", strawberry.lazy("lineagehub.api.graphql.types")]


@strawberry.type(description="A namespace or cluster that hosts inference services.")
class ServingEnvironment(RegistryEntity):
    pass


@strawberry.type(description="A named endpoint in an environment, serving one model version.")
class InferenceService(RegistryEntity):
    runtime: str | None
    desired_state: DesiredState
    url: str | None
    project: str | None
    environment_id: strawberry.Private[str]
    served_version_id: strawberry.Private[str | None]

    @strawberry.field(description="The environment the service runs in.")
    async def environment(self, info: Info) -> ServingEnvironment:
        record = await info.context.loaders.by_id(records.ServingEnvironment).load(
            self.environment_id
        )
        assert record is not None
        return ServingEnvironment.from_record(record)

    @strawberry.field(description="The version it serves now (null when undeployed).")
    async def model_version(self, info: Info) -> _Version | None:
        from lineagehub.api.graphql.lineage import version_ahead
        from lineagehub.api.graphql.types import ModelVersion

        if self.served_version_id is None:
            return None
        record = await version_ahead(info, self.served_version_id)
        return ModelVersion.from_record(record) if record else None

    @strawberry.field(description="Its deploy history, newest first.")
    async def deployments(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Deployment]:
        from lineagehub.graph.listing import Sort

        page: Connection[Deployment] = await load_page(
            info,
            DEPLOYMENTS_OF_SERVICE,
            self.id,
            filter=None,
            order_by=None,
            first=first,
            after=after,
            wrap=lambda row: Deployment.from_record(records.Deployment.from_props(row)),
            sorts=(Sort("createdAt", descending=True),),
        )
        return page

    @strawberry.field(description="Dashboards and drift baselines watching this service.")
    async def monitoring(self, info: Info) -> list[MonitoringLink]:
        return await hop(info, self.id, engine.MONITORED_BY)


@strawberry.type(description="One (re)deploy of a service: which version, when, in what state.")
class Deployment(RegistryEntity):
    deployment_state: DeploymentState
    state_at: datetime
    actor: str | None
    service_id: strawberry.Private[str]
    version_id: strawberry.Private[str]

    @strawberry.field(description="The service deployed.")
    async def service(self, info: Info) -> InferenceService:
        record = await info.context.loaders.by_id(records.InferenceService).load(self.service_id)
        assert record is not None
        return InferenceService.from_record(record)

    @strawberry.field(description="The version deployed.")
    async def model_version(self, info: Info) -> _Version:
        from lineagehub.api.graphql.lineage import version_ahead
        from lineagehub.api.graphql.types import ModelVersion

        record = await version_ahead(info, self.version_id)
        assert record is not None
        return ModelVersion.from_record(record)


@strawberry.type(description="A link to a dashboard or drift baseline for a version or service.")
class MonitoringLink(RegistryEntity):
    url: str
    tool: str | None
    kind: MonitoringKind
    target_id: strawberry.Private[str]

    @strawberry.field(description="What it watches.")
    async def target(self, info: Info) -> RegistryEntity:
        from lineagehub.api.graphql.lineage import wrap
        from lineagehub.graph import ids

        record_type = records.RECORD_TYPES[ids.label_of(self.target_id)]
        record = await info.context.loaders.by_id(record_type).load(self.target_id)
        assert record is not None
        return wrap(record)

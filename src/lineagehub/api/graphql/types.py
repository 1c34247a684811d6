"""GraphQL object types: registry records plus the connections that list them."""

from __future__ import annotations

import dataclasses
import enum
import functools
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Generic, Self, TypeVar

import strawberry
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField

from lineagehub.api.graphql.context import Info
from lineagehub.api.graphql.enums import EdgeType, NodeType
from lineagehub.api.graphql.filters import (
    filter_input,
    order_input,
    sort_field_enum,
    to_filter,
    to_sorts,
)
from lineagehub.api.graphql.loaders import PageRequest
from lineagehub.api.graphql.scalars import JSON, Long
from lineagehub.graph import lineage as engine
from lineagehub.graph import records
from lineagehub.graph.artifacts import ARTIFACTS_OF_VERSION, artifact_from
from lineagehub.graph.governance import ApprovalStatus
from lineagehub.graph.lineage import Direction
from lineagehub.graph.listing import (
    Condition,
    Filter,
    ListSpec,
    Page,
    Sort,
    page_of,
)
from lineagehub.graph.properties import CustomProperty as CustomPropertyRecord
from lineagehub.graph.properties import PropertyType as _PropertyType
from lineagehub.graph.records import State
from lineagehub.graph.versions import VERSIONS_OF_MODEL
from lineagehub.settings import Settings

T = TypeVar("T")

if TYPE_CHECKING:
    from lineagehub.api.graphql.governance import Alias, ApprovalDecision, AuditEvent
    from lineagehub.api.graphql.lineage import Lineage
    from lineagehub.api.graphql.provenance import CodeRef, Dataset, ExperimentRun
    from lineagehub.api.graphql.serving import InferenceService, MonitoringLink

_LINEAGE = "lineagehub.api.graphql.lineage"
_Lineage = Annotated["Lineage", strawberry.lazy(_LINEAGE)]
_PROVENANCE = "lineagehub.api.graphql.provenance"
_Run = Annotated["ExperimentRun", strawberry.lazy(_PROVENANCE)]
_Dataset = Annotated["Dataset", strawberry.lazy(_PROVENANCE)]
_CodeRef = Annotated["CodeRef", strawberry.lazy(_PROVENANCE)]
_GOVERNANCE = "lineagehub.api.graphql.governance"
_AuditEvent = Annotated["AuditEvent", strawberry.lazy(_GOVERNANCE)]
_ApprovalDecision = Annotated["ApprovalDecision", strawberry.lazy(_GOVERNANCE)]
_Alias = Annotated["Alias", strawberry.lazy(_GOVERNANCE)]
_SERVING = "lineagehub.api.graphql.serving"
_Service = Annotated["InferenceService", strawberry.lazy(_SERVING)]
_Monitoring = Annotated["MonitoringLink", strawberry.lazy(_SERVING)]

strawberry.enum(_PropertyType, name="PropertyType", description="A custom value's type.")


@strawberry.type(description="A typed custom property.")
class CustomProperty:
    key: str
    type: _PropertyType
    value: JSON = strawberry.field(description="The value, whatever its type.")
    string_value: str | None
    int_value: Long | None
    float_value: float | None
    bool_value: bool | None
    json_value: JSON | None

    @classmethod
    def of(cls, prop: CustomPropertyRecord) -> CustomProperty:
        t = prop.type
        return cls(
            key=prop.key,
            type=t,
            value=prop.value,
            string_value=prop.value if t is _PropertyType.STRING else None,
            int_value=prop.value if t is _PropertyType.INT else None,
            float_value=prop.value if t is _PropertyType.FLOAT else None,
            bool_value=prop.value if t is _PropertyType.BOOL else None,
            json_value=prop.value if t is _PropertyType.JSON else None,
        )


@strawberry.interface(description="An object with a global, opaque, type-prefixed id.")
class Node:
    id: strawberry.ID


@strawberry.interface(description="What every registry entity has.")
class RegistryEntity(Node):
    name: str
    description: str | None
    external_id: str | None
    state: State
    created_at: datetime
    updated_at: datetime
    custom_properties: list[CustomProperty]
    deleted_at: datetime | None = strawberry.field(description="Set on a tombstone.")
    deleted_by: str | None
    tombstone: str | None = strawberry.field(
        description='What a deleted node was, e.g. "deleted ModelVersion v2 of churn".'
    )
    rest_id: int | None = strawberry.field(
        description="The numeric id the Kubeflow Model Registry REST API knows this node by."
    )

    @strawberry.field(description="True for a tombstone: deleted, kept for lineage and audit.")
    def deleted(self) -> bool:
        return self.deleted_at is not None

    @strawberry.field(description="One custom property by key, or null.")
    def custom_property(self, key: str) -> CustomProperty | None:
        return next((p for p in self.custom_properties if p.key == key), None)

    @strawberry.field(description="Audit events that touched this node, newest first.")
    async def audit_trail(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[_AuditEvent]:
        from lineagehub.api.graphql.governance import audit_page

        return await audit_page(info, target=self.id, first=first, after=after)

    @strawberry.field(
        description=(
            "The lineage subgraph around this node (one round trip however large; batched "
            "across a list). Defaults: UPSTREAM, maxDepth and limit from the server settings."
        )
    )
    async def lineage(
        self,
        info: Info,
        direction: Direction = Direction.UPSTREAM,
        max_depth: int | None = None,
        node_types: list[NodeType] | None = None,
        edge_types: list[EdgeType] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        with_paths: bool = False,
    ) -> _Lineage:
        from lineagehub.api.graphql.lineage import load_lineage, spec_of

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
        return await load_lineage(info, self.id, spec)

    # How a record's value becomes this object's, for the fields not taken as they are
    # (the fast path reads ADAPT too: keep every conversion here, not in an override).
    ADAPT: ClassVar[dict[str, Callable[[Any], Any]]] = {
        "custom_properties": lambda props: [CustomProperty.of(p) for p in props],
    }

    @classmethod
    def from_record(cls, record: records.Entity) -> Self:
        adapt = cls.ADAPT
        values = {}
        for name in copied_fields(cls, type(record)):  # type: ignore[arg-type]
            value = getattr(record, name)
            values[name] = adapt[name](value) if name in adapt else value
        return cls(**values)


@functools.cache
def copied_fields(cls: type, record_type: type) -> tuple[str, ...]:
    """The fields of GraphQL type ``cls`` a record of ``record_type`` gives (``ADAPT``ed)."""
    names = {f.name for f in dataclasses.fields(record_type)} | set(dir(record_type))
    return tuple(f.name for f in dataclasses.fields(cls) if f.name in names)


# --- connections -----------------------------------------------------------------------


@strawberry.type(description="Where a page sits in its list.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    nodes: list[T]
    page_info: PageInfo
    total_count: int = strawberry.field(description="How many items match, across all pages.")


def _selects(fields: list[Any], name: str) -> bool:
    for f in fields:
        if isinstance(f, SelectedField) and f.name == name:
            return True
        if isinstance(f, FragmentSpread | InlineFragment) and _selects(f.selections, name):
            return True
    return False


async def load_page(
    info: Info,
    spec: ListSpec,
    parent_id: str | None,
    *,
    filter: Any,
    order_by: Any,
    first: int | None,
    after: str | None,
    wrap: Any,
    extra: tuple[Condition, ...] = (),
    sorts: tuple[Sort, ...] = (),
) -> Connection[Any]:
    """A page of ``spec`` for ``parent_id`` through the batch loader, as a Connection."""
    settings = info.context.settings
    flt = to_filter(filter)
    if extra:
        flt = Filter(conditions=extra, all_of=(flt,) if flt else ())
    sorts = to_sorts(order_by) or sorts
    page: Page = page_of(
        first,
        after,
        default_size=settings.default_page_size,
        max_size=settings.max_page_size,
        spec=spec,
        sorts=sorts,
    )
    wants_total = any(_selects(f.selections, "totalCount") for f in info.selected_fields)
    result = await info.context.loaders.pages.load(
        PageRequest(spec, parent_id, flt, sorts, page, wants_total)
    )
    nodes = [wrap(row) for row in result.rows]
    edges = [Edge(cursor=c, node=n) for c, n in zip(result.cursors, nodes, strict=True)]
    return Connection(
        edges=edges,
        nodes=nodes,
        page_info=PageInfo(
            has_next_page=result.has_next,
            has_previous_page=result.has_previous,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        total_count=result.total if result.total is not None else -1,
    )


async def top_level(
    info: Info,
    spec: ListSpec,
    record: type[records.Entity],
    gql: Any,
    filter: Any,
    order_by: Any,
    first: int | None,
    after: str | None,
) -> Connection[Any]:
    """A root listing: a page of ``spec`` as ``gql`` objects."""
    return await load_page(
        info,
        spec,
        None,
        filter=filter,
        order_by=order_by,
        first=first,
        after=after,
        wrap=lambda row: gql.from_record(record.from_props(row)),
    )


# --- registry types ------------------------------------------------------------------

ModelVersionFilter = filter_input(
    "ModelVersion",
    records.ModelVersion.FIELDS,
    skip=frozenset({"modelId"}),
    keyed=("customProperties", "trainingParams", "trainingMetrics"),
)
ModelVersionOrder = order_input(
    "ModelVersion",
    sort_field_enum("ModelVersion", records.ModelVersion.FIELDS),
    keyed=("customProperty", "trainingParam", "trainingMetric"),
)
RegisteredModelFilter = filter_input("RegisteredModel", records.RegisteredModel.FIELDS)
RegisteredModelOrder = order_input(
    "RegisteredModel", sort_field_enum("RegisteredModel", records.RegisteredModel.FIELDS)
)
ArtifactFilter = filter_input(
    "Artifact", ARTIFACTS_OF_VERSION.fields, skip=frozenset({"versionId", "kind"})
)
ArtifactOrder = order_input("Artifact", sort_field_enum("Artifact", ARTIFACTS_OF_VERSION.fields))


@strawberry.enum(description="The kinds of artifact a version can have.")
class ArtifactType(enum.Enum):
    MODEL_ARTIFACT = "ModelArtifact"
    DOC_ARTIFACT = "DocArtifact"


@strawberry.type(description="A model under registry: a name, an owner, and its versions.")
class RegisteredModel(RegistryEntity):
    project: str | None = strawberry.field(description="Its project (tokens may be limited).")
    owner: str | None
    task: str | None
    license: str | None
    tags: list[str]
    readme: str | None
    maturity: str | None
    language: list[str] | None
    tasks: list[str] | None
    provider: str | None
    logo: str | None
    license_link: str | None
    library_name: str | None

    ADAPT = {**RegistryEntity.ADAPT, "tags": lambda tags: tags or []}

    @strawberry.field(description="Aliases of this model (champion, production, ...).")
    async def aliases(self, info: Info) -> list[_Alias]:
        from lineagehub.api.graphql.governance import Alias
        from lineagehub.graph.governance import aliases_of_models

        found = await info.context.loaders.by(aliases_of_models).load(self.id) or []
        return [
            Alias(
                name=a.name,
                updated_at=a.updated_at,
                updated_by=a.updated_by,
                version_id=a.version_id,
            )
            for a in found
        ]

    @strawberry.field(description="Versions of this model (default order: oldest first).")
    async def versions(
        self,
        info: Info,
        filter: ModelVersionFilter | None = None,  # type: ignore[valid-type]
        order_by: list[ModelVersionOrder] | None = None,  # type: ignore[valid-type]
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[ModelVersion]:
        return await load_page(
            info,
            VERSIONS_OF_MODEL,
            self.id,
            filter=filter,
            order_by=order_by,
            first=first,
            after=after,
            wrap=lambda row: ModelVersion.from_record(records.ModelVersion.from_props(row)),
        )

    @strawberry.field(description="The newest version (by createdAt) matching the filter.")
    async def latest_version(
        self,
        info: Info,
        filter: ModelVersionFilter | None = None,  # type: ignore[valid-type]
    ) -> ModelVersion | None:
        flt = to_filter(filter)
        result = await info.context.loaders.pages.load(
            PageRequest(
                VERSIONS_OF_MODEL,
                self.id,
                flt,
                (Sort("createdAt", descending=True),),
                Page(1),
                False,
            )
        )
        if not result.rows:
            return None
        return ModelVersion.from_record(records.ModelVersion.from_props(result.rows[0]))

    @strawberry.field(description="The version with this name, or null.")
    async def version(self, info: Info, name: str) -> ModelVersion | None:
        result = await info.context.loaders.pages.load(
            PageRequest(
                VERSIONS_OF_MODEL,
                self.id,
                Filter(conditions=(Condition("name", "eq", name, "name"),)),
                (),
                Page(1),
                False,
            )
        )
        if not result.rows:
            return None
        return ModelVersion.from_record(records.ModelVersion.from_props(result.rows[0]))


# A version's shortcut fields, each with the lineage request its arguments make. A lookup
# of a version that sees one selected answers it in the lookup's own query (lookahead);
# the field's resolver then finds its answer already loaded.
VERSION_SHORTCUTS: dict[str, Callable[[Settings, dict[str, Any]], engine.LineageSpec]] = {
    "trainingDatasets": lambda settings, args: engine.training_datasets(
        transitive=args.get("transitive", True),
        depth=settings.max_lineage_depth,
        limit=settings.max_lineage_nodes,
    ),
    "code": lambda settings, args: engine.training_code(limit=settings.max_lineage_nodes),
}


@strawberry.type(description="One version of a registered model, with its artifacts.")
class ModelVersion(RegistryEntity):
    author: str | None
    approval_status: ApprovalStatus
    project: str | None
    model_id: strawberry.Private[str]

    ADAPT = {**RegistryEntity.ADAPT, "approval_status": ApprovalStatus}

    @strawberry.field(description="The latest approval decision, or null.")
    async def approval(self, info: Info) -> _ApprovalDecision | None:
        from lineagehub.api.graphql.governance import decisions

        found = await decisions(info, self.id)
        return found[0] if found else None

    @strawberry.field(description="Every approval decision on this version, newest first.")
    async def approval_history(self, info: Info) -> list[_ApprovalDecision]:
        from lineagehub.api.graphql.governance import decisions

        return await decisions(info, self.id)

    @strawberry.field(description="Names of the aliases pointing at this version.")
    async def aliases(self, info: Info) -> list[str]:
        from lineagehub.graph.governance import aliases_of_versions

        return await info.context.loaders.by(aliases_of_versions).load(self.id) or []

    @strawberry.field(description="The model this is a version of.")
    async def model(self, info: Info) -> RegisteredModel:
        record = await info.context.loaders.by_id(records.RegisteredModel).load(self.model_id)
        assert record is not None
        return RegisteredModel.from_record(record)

    @strawberry.field(description="The runs that produced this version.")
    async def training_runs(self, info: Info) -> list[_Run]:
        from lineagehub.api.graphql.lineage import hop

        return await hop(info, self.id, engine.TRAINING_RUNS)

    @strawberry.field(
        description=(
            "Datasets its training runs consumed and, when transitive (the default), the "
            "datasets those were derived or produced from."
        )
    )
    async def training_datasets(self, info: Info, transitive: bool = True) -> list[_Dataset]:
        from lineagehub.api.graphql.lineage import shortcut

        spec = VERSION_SHORTCUTS["trainingDatasets"](
            info.context.settings, {"transitive": transitive}
        )
        return await shortcut(info, self.id, spec, "Dataset")

    @strawberry.field(description="Code its training runs executed.")
    async def code(self, info: Info) -> list[_CodeRef]:
        from lineagehub.api.graphql.lineage import shortcut

        spec = VERSION_SHORTCUTS["code"](info.context.settings, {})
        return await shortcut(info, self.id, spec, "CodeRef")

    @strawberry.field(description="The version this one was fine-tuned from, or null.")
    async def base_model(self, info: Info) -> ModelVersion | None:
        from lineagehub.api.graphql.lineage import hop

        found = await hop(info, self.id, engine.BASE_VERSION)
        return found[0] if found else None

    @strawberry.field(description="Versions fine-tuned from this one.")
    async def fine_tunes(self, info: Info) -> list[ModelVersion]:
        from lineagehub.api.graphql.lineage import hop

        return await hop(info, self.id, engine.FINE_TUNES)

    @strawberry.field(description="Services serving this version now.")
    async def deployments(self, info: Info) -> list[_Service]:
        from lineagehub.api.graphql.lineage import hop

        return await hop(info, self.id, engine.SERVED_BY)

    @strawberry.field(description="Dashboards and drift baselines watching this version.")
    async def monitoring(self, info: Info) -> list[_Monitoring]:
        from lineagehub.api.graphql.lineage import hop

        return await hop(info, self.id, engine.MONITORED_BY)

    @strawberry.field(description="Model and doc artifacts of this version.")
    async def artifacts(
        self,
        info: Info,
        filter: ArtifactFilter | None = None,  # type: ignore[valid-type]
        order_by: list[ArtifactOrder] | None = None,  # type: ignore[valid-type]
        kind: list[ArtifactType] | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Artifact]:
        extra = (Condition("kind", "in", [k.value for k in kind], "kind"),) if kind else ()
        return await load_page(
            info,
            ARTIFACTS_OF_VERSION,
            self.id,
            filter=filter,
            order_by=order_by,
            first=first,
            after=after,
            wrap=lambda row: artifact_type(artifact_from(row)),
            extra=extra,
        )


@strawberry.interface(description="A file or document that belongs to a model version.")
class Artifact(RegistryEntity):
    uri: str | None = strawberry.field(description="Where its bytes are (null until uploaded).")
    artifact_state: str | None = strawberry.field(
        description="The Kubeflow artifact life cycle: UNKNOWN, PENDING, LIVE, ..., REFERENCE."
    )
    version_id: strawberry.Private[str | None]

    @strawberry.field(
        description="The version this artifact belongs to (null while it stands alone)."
    )
    async def version(self, info: Info) -> ModelVersion | None:
        if self.version_id is None:
            return None
        record = await info.context.loaders.by_id(records.ModelVersion).load(self.version_id)
        assert record is not None
        return ModelVersion.from_record(record)


@strawberry.type(description="The model's bytes: where they are, in what format, and their digest.")
class ModelArtifact(Artifact):
    model_format_name: str | None
    model_format_version: str | None
    storage_key: str | None
    storage_path: str | None
    digest: str | None
    size_bytes: Long | None
    service_account_name: str | None
    model_source_kind: str | None
    model_source_class: str | None
    model_source_group: str | None
    model_source_id: str | None
    model_source_name: str | None


@strawberry.type(description="A document about a version: model card, evaluation report.")
class DocArtifact(Artifact):
    pass


def artifact_type(record: records.Artifact) -> Artifact:
    if isinstance(record, records.ModelArtifact):
        return ModelArtifact.from_record(record)
    return DocArtifact.from_record(record)

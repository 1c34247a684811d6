"""Root query fields: lookups by id, external id and natural keys; listings."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from typing_extensions import TypeIs

from lineagehub.api.graphql.context import Info
from lineagehub.api.graphql.lineage import lookahead, lookup_columns, prime, version_ahead
from lineagehub.api.graphql.types import (
    VERSION_SHORTCUTS,
    Connection,
    DocArtifact,
    ModelArtifact,
    ModelVersion,
    ModelVersionFilter,
    ModelVersionOrder,
    Node,
    RegisteredModel,
    RegisteredModelFilter,
    RegisteredModelOrder,
    artifact_type,
    top_level,
)
from lineagehub.graph import entities, governance, ids, models, records, versions
from lineagehub.graph.errors import ValidationFailed
from lineagehub.graph.models import MODELS
from lineagehub.graph.versions import ALL_VERSIONS

# A version's shortcut fields, answered in its lookup's own query: they read no property
# of the version (beyond its id).
_SHORTCUTS_READ_NOTHING: dict[str, tuple[str, ...]] = dict.fromkeys(VERSION_SHORTCUTS, ())


def live(record: records.Entity | None) -> TypeIs[records.Entity]:
    """Lookups answer live nodes; tombstones are reached through node(id) and lineage."""
    return record is not None and record.deleted_at is None


def one_of(**given: Any) -> str:
    """The one lookup key given; VALIDATION when none or several are."""
    named = [k for k, v in given.items() if v is not None]
    if len(named) != 1:
        raise ValidationFailed(
            f"give exactly one of {', '.join(given)}", field=named[1] if len(named) > 1 else None
        )
    return named[0]


@strawberry.type
class Query:
    @strawberry.field(description="Any node by its global id, or null.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        from lineagehub.api.graphql.lineage import wrap

        record_type = records.RECORD_TYPES[ids.label_of(id)]
        record = await info.context.loaders.by_id(record_type).load(id)
        return wrap(record) if record is not None else None

    @strawberry.field(description="A registered model by id, externalId or name; null if none.")
    async def registered_model(
        self,
        info: Info,
        id: strawberry.ID | None = None,
        name: str | None = None,
        external_id: str | None = None,
    ) -> RegisteredModel | None:
        key = one_of(id=id, name=name, externalId=external_id)
        store = info.context.store
        record: records.RegisteredModel | None
        if key == "id":
            assert id is not None
            ids.expect_label(id, records.RegisteredModel.LABEL)
            record = await info.context.loaders.by_id(records.RegisteredModel).load(id)
        elif key == "name":
            assert name is not None
            record = await models.get_by_name(store, name)
        else:
            assert external_id is not None
            record = await entities.get_by_external_id(store, records.RegisteredModel, external_id)
        return RegisteredModel.from_record(record) if live(record) else None

    @strawberry.field(description="Registered models (default order: by name).")
    async def registered_models(
        self,
        info: Info,
        filter: RegisteredModelFilter | None = None,
        order_by: list[RegisteredModelOrder] | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[RegisteredModel]:
        return await top_level(
            info, MODELS, records.RegisteredModel, RegisteredModel, filter, order_by, first, after
        )

    @strawberry.field(
        description=(
            "A model version by id, by externalId, or by model name + version name; null if none."
        )
    )
    async def model_version(
        self,
        info: Info,
        id: strawberry.ID | None = None,
        external_id: str | None = None,
        model: Annotated[str | None, strawberry.argument(description="The model's name.")] = None,
        name: Annotated[str | None, strawberry.argument(description="The version's name.")] = None,
        ref: Annotated[
            str | None,
            strawberry.argument(description='An alias reference: "model@alias".'),
        ] = None,
    ) -> ModelVersion | None:
        if (model is None) != (name is None):
            raise ValidationFailed("model and name go together", field="name" if model else "model")
        key = one_of(id=id, externalId=external_id, model=model, ref=ref)
        if key == "ref":
            assert ref is not None
            model_name, sep, alias = ref.rpartition("@")
            if not sep or not model_name:
                raise ValidationFailed('a ref reads "model@alias"', field="ref")
            governance.check_alias(alias, field="ref")
            found = await governance.resolve_alias(info.context.store, model_name, alias)
            return ModelVersion.from_record(found) if found else None
        store = info.context.store
        record: records.ModelVersion | None
        if key == "id":
            assert id is not None
            ids.expect_label(id, records.ModelVersion.LABEL)
            record = await version_ahead(info, id)
        elif key == "externalId":
            assert external_id is not None
            record = await entities.get_by_external_id(store, records.ModelVersion, external_id)
        else:
            assert model is not None
            assert name is not None
            ahead = lookahead(info, VERSION_SHORTCUTS)
            # Only the properties the selection shows, when it is plain: the record is
            # this field's alone (no loader holds it for other fields to find).
            columns = lookup_columns(info, _SHORTCUTS_READ_NOTHING)
            if ahead:
                # One query finds the version and answers the shortcut fields selected on it.
                record, answers = await versions.get_with_lineage(
                    store, ahead, model_name=model, version_name=name, columns=columns
                )
                if record is not None:
                    prime(info, record.id, ahead, answers)
            else:
                record = await versions.get_by_name(store, model, name, columns)
        return ModelVersion.from_record(record) if live(record) else None

    @strawberry.field(description="Versions across all models (default order: oldest first).")
    async def model_versions(
        self,
        info: Info,
        filter: ModelVersionFilter | None = None,
        order_by: list[ModelVersionOrder] | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[ModelVersion]:
        return await top_level(
            info, ALL_VERSIONS, records.ModelVersion, ModelVersion, filter, order_by, first, after
        )

    @strawberry.field(description="A model artifact by id or externalId; null if none.")
    async def model_artifact(
        self, info: Info, id: strawberry.ID | None = None, external_id: str | None = None
    ) -> ModelArtifact | None:
        record = await _artifact(info, records.ModelArtifact, id, external_id)
        return ModelArtifact.from_record(record) if live(record) else None

    @strawberry.field(description="A doc artifact by id or externalId; null if none.")
    async def doc_artifact(
        self, info: Info, id: strawberry.ID | None = None, external_id: str | None = None
    ) -> DocArtifact | None:
        record = await _artifact(info, records.DocArtifact, id, external_id)
        return DocArtifact.from_record(record) if live(record) else None


async def _artifact(
    info: Info, record_type: type[records.Artifact], id: str | None, external_id: str | None
) -> records.Artifact | None:
    if one_of(id=id, externalId=external_id) == "id":
        assert id is not None
        ids.expect_label(id, record_type.LABEL)
        return await info.context.loaders.by_id(record_type).load(id)
    assert external_id is not None
    return await entities.get_by_external_id(info.context.store, record_type, external_id)


__all__ = ["Query", "artifact_type"]

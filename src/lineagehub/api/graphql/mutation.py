"""Root mutation fields. Each is one domain operation, hence one transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from lineagehub.api.graphql.context import Info
from lineagehub.api.graphql.inputs import (
    CreateDocArtifactInput,
    CreateModelArtifactInput,
    CreateModelVersionInput,
    DocArtifactChanges,
    ModelArtifactChanges,
    ModelVersionChanges,
    RegisteredModelChanges,
    RegisteredModelInput,
    RegisterModelInput,
    wire,
)
from lineagehub.api.graphql.types import (
    DocArtifact,
    ModelArtifact,
    ModelVersion,
    RegisteredModel,
)
from lineagehub.graph import artifacts, entities, models, records, registration, versions
from lineagehub.graph.commands import validate
from lineagehub.graph.errors import LimitExceeded
from lineagehub.graph.records import State

if TYPE_CHECKING:
    from lineagehub.api.graphql.provenance import ExperimentRun

_Run = Annotated["ExperimentRun", strawberry.lazy("lineagehub.api.graphql.provenance")]


@strawberry.type(description="What registerModel registered, and which parts it created.")
class RegisterModelPayload:
    """Built from the registration on demand: a bulk answer converts only what was asked."""

    done: strawberry.Private[registration.Registration]

    @strawberry.field
    def model(self) -> RegisteredModel:
        return RegisteredModel.from_record(self.done.model)

    @strawberry.field
    def version(self) -> ModelVersion:
        return ModelVersion.from_record(self.done.version)

    @strawberry.field
    def artifact(self) -> ModelArtifact | None:
        found = self.done.artifact
        return ModelArtifact.from_record(found) if found else None

    @strawberry.field
    def model_created(self) -> bool:
        return self.done.model_created

    @strawberry.field
    def version_created(self) -> bool:
        return self.done.version_created

    @strawberry.field
    def artifact_created(self) -> bool:
        return self.done.artifact_created

    @strawberry.field(description="The run, when one was given.")
    def training_run(self) -> _Run | None:
        from lineagehub.api.graphql.provenance import ExperimentRun

        found = self.done.training_run
        return ExperimentRun.from_record(found) if found else None

    @strawberry.field
    def training_run_created(self) -> bool:
        return self.done.training_run_created


MAX_BULK = 1000


async def _update(info: Info, record: type[Any], gql: type[Any], id: str, command: Any) -> Any:
    return gql.from_record(await entities.update(info.context.store, record, id, command))


async def _set_state(info: Info, record: type[Any], gql: type[Any], id: str, state: State) -> Any:
    return gql.from_record(await entities.set_state(info.context.store, record, id, state))


@strawberry.type
class Mutation:
    # --- registerModel ---------------------------------------------------------------

    @strawberry.mutation(
        description=(
            "Register model + version (+ model artifact) in one transaction. Idempotent: the "
            "same names return the same nodes; changing an immutable fact is a CONFLICT."
        )
    )
    async def register_model(self, info: Info, input: RegisterModelInput) -> RegisterModelPayload:
        command = validate(registration.RegisterModel, wire(input))
        return RegisterModelPayload(done=await registration.register(info.context.store, command))

    @strawberry.mutation(
        description=(
            "Bulk registerModel for imports: every item in ONE transaction (all or nothing); "
            "errors name the item (inputs[3].artifact.uri). At most 1000 items."
        )
    )
    async def register_models(
        self, info: Info, inputs: list[RegisterModelInput]
    ) -> list[RegisterModelPayload]:
        if len(inputs) > MAX_BULK:
            raise LimitExceeded(
                f"{len(inputs)} items exceed the bulk limit of {MAX_BULK}",
                field="inputs",
                details={"maximum": MAX_BULK},
            )
        commands = [
            validate(registration.RegisterModel, wire(item), path=f"inputs[{i}]")
            for i, item in enumerate(inputs)
        ]
        done = await registration.register_many(info.context.store, commands)
        return [RegisterModelPayload(done=d) for d in done]

    # --- RegisteredModel -------------------------------------------------------------

    @strawberry.mutation(description="Create a registered model; its name must be new.")
    async def create_registered_model(
        self, info: Info, input: RegisteredModelInput
    ) -> RegisteredModel:
        command = validate(models.RegisteredModelCreate, wire(input))
        return RegisteredModel.from_record(await models.create(info.context.store, command))

    @strawberry.mutation(description="Change a registered model.")
    async def update_registered_model(
        self, info: Info, id: strawberry.ID, input: RegisteredModelChanges
    ) -> RegisteredModel:
        command = validate(models.RegisteredModelUpdate, wire(input))
        result: RegisteredModel = await _update(
            info, records.RegisteredModel, RegisteredModel, id, command
        )
        return result

    @strawberry.mutation(description="Archive a registered model (its state becomes ARCHIVED).")
    async def archive_registered_model(self, info: Info, id: strawberry.ID) -> RegisteredModel:
        result: RegisteredModel = await _set_state(
            info, records.RegisteredModel, RegisteredModel, id, State.ARCHIVED
        )
        return result

    # --- ModelVersion ----------------------------------------------------------------

    @strawberry.mutation(description="Create a version of a model.")
    async def create_model_version(
        self, info: Info, input: CreateModelVersionInput
    ) -> ModelVersion:
        command = validate(versions.ModelVersionCreate, wire(input))
        return ModelVersion.from_record(await versions.create(info.context.store, command))

    @strawberry.mutation(description="Change a model version.")
    async def update_model_version(
        self, info: Info, id: strawberry.ID, input: ModelVersionChanges
    ) -> ModelVersion:
        command = validate(versions.ModelVersionUpdate, wire(input))
        result: ModelVersion = await _update(info, records.ModelVersion, ModelVersion, id, command)
        return result

    @strawberry.mutation(description="Archive a model version.")
    async def archive_model_version(self, info: Info, id: strawberry.ID) -> ModelVersion:
        result: ModelVersion = await _set_state(
            info, records.ModelVersion, ModelVersion, id, State.ARCHIVED
        )
        return result

    # --- artifacts -------------------------------------------------------------------

    @strawberry.mutation(description="Add a model artifact to a version.")
    async def create_model_artifact(
        self, info: Info, input: CreateModelArtifactInput
    ) -> ModelArtifact:
        command = validate(artifacts.ModelArtifactCreate, wire(input))
        return ModelArtifact.from_record(await artifacts.create(info.context.store, command))

    @strawberry.mutation(description="Change a model artifact.")
    async def update_model_artifact(
        self, info: Info, id: strawberry.ID, input: ModelArtifactChanges
    ) -> ModelArtifact:
        command = validate(artifacts.ModelArtifactUpdate, wire(input))
        result: ModelArtifact = await _update(
            info, records.ModelArtifact, ModelArtifact, id, command
        )
        return result

    @strawberry.mutation(description="Archive a model artifact.")
    async def archive_model_artifact(self, info: Info, id: strawberry.ID) -> ModelArtifact:
        result: ModelArtifact = await _set_state(
            info, records.ModelArtifact, ModelArtifact, id, State.ARCHIVED
        )
        return result

    @strawberry.mutation(description="Add a doc artifact (model card, report) to a version.")
    async def create_doc_artifact(self, info: Info, input: CreateDocArtifactInput) -> DocArtifact:
        command = validate(artifacts.DocArtifactCreate, wire(input))
        return DocArtifact.from_record(await artifacts.create(info.context.store, command))

    @strawberry.mutation(description="Change a doc artifact.")
    async def update_doc_artifact(
        self, info: Info, id: strawberry.ID, input: DocArtifactChanges
    ) -> DocArtifact:
        command = validate(artifacts.DocArtifactUpdate, wire(input))
        result: DocArtifact = await _update(info, records.DocArtifact, DocArtifact, id, command)
        return result

    @strawberry.mutation(description="Archive a doc artifact.")
    async def archive_doc_artifact(self, info: Info, id: strawberry.ID) -> DocArtifact:
        result: DocArtifact = await _set_state(
            info, records.DocArtifact, DocArtifact, id, State.ARCHIVED
        )
        return result

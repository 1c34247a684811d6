"""``registerModel``: model + version + artifact in one idempotent transaction.

Registering again with the same names returns the same nodes. Facts that identify what
was registered (who authored the version, what the artifact's bytes are and where they
live) must match what is stored, or the call fails with CONFLICT naming the field;
descriptive fields of existing nodes are left as they are (use the update mutations).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import model_validator

from lineagehub.graph import artifacts, experiments, links, versions
from lineagehub.graph.commands import Command
from lineagehub.graph.entities import Name, UniqueKey, check_unique, new_node, now
from lineagehub.graph.errors import Conflict, NotFound
from lineagehub.graph.identity import check_project, in_scope, scope_params
from lineagehub.graph.models import RegisteredModelCreate
from lineagehub.graph.records import ExperimentRun, ModelArtifact, ModelVersion, RegisteredModel
from lineagehub.graph.store import Store, Tx

# Facts of an existing version/artifact that a repeated registration must not change.
_VERSION_FACTS = ("author",)
_ARTIFACT_FACTS = (
    "uri",
    "modelFormatName",
    "modelFormatVersion",
    "storageKey",
    "storagePath",
    "digest",
    "sizeBytes",
)


class TrainingRun(experiments.RunFields):
    """The run that trained the version, in the experiment named ``experiment``."""

    experiment: Name

    @classmethod
    def relations(cls) -> set[str]:
        return experiments.RunFields.relations() | {"experiment"}


class VersionRef(Command):
    """An existing version: by id, or by model name + version name."""

    id: str | None = None
    model: str | None = None
    name: str | None = None

    @model_validator(mode="after")
    def _one_way(self) -> VersionRef:
        if (self.id is None) == (self.model is None or self.name is None):
            raise ValueError("give either id, or model and name")
        return self


class RegisterModel(Command):
    model: RegisteredModelCreate
    version: versions.ModelVersionFields
    artifact: artifacts.ModelArtifactFields | None = None
    training_run: TrainingRun | None = None
    base_version: VersionRef | None = None


@dataclass(frozen=True)
class Registration:
    model: RegisteredModel
    version: ModelVersion
    artifact: ModelArtifact | None
    model_created: bool
    version_created: bool
    artifact_created: bool
    training_run: ExperimentRun | None = None
    training_run_created: bool = False


async def resolve_version(tx: Tx, ref: VersionRef, *, field: str) -> str:
    row = await tx.single(
        "OPTIONAL MATCH (byId:ModelVersion {id: $id}) "
        "OPTIONAL MATCH (:RegisteredModel {name: $model})-[:HAS_VERSION]->"
        "(byName:ModelVersion {name: $name}) "
        "WITH coalesce(byId, byName) AS v "
        f"RETURN CASE WHEN {in_scope('v')} THEN v.id END AS id",
        {"id": ref.id, "model": ref.model, "name": ref.name, **scope_params()},
    )
    if row is None or row["id"] is None:
        what = ref.id or f"{ref.model}@{ref.name}"
        raise NotFound(f"no ModelVersion {what}", field=field)
    found: str = row["id"]
    return found


def _same_facts(
    stored: dict[str, Any], given: dict[str, Any], facts: tuple[str, ...], path: str
) -> None:
    for fact in facts:
        value = given.get(fact)
        if value is not None and stored.get(fact) != value:
            raise Conflict(
                f"{fact} of the registered {path.rsplit('.', 1)[-1]} is {stored.get(fact)!r}; "
                f"registering it again with {value!r} would change an immutable fact",
                field=f"{path}.{fact}",
            )


async def _model(tx: Tx, command: RegisteredModelCreate) -> tuple[dict[str, Any], bool]:
    """The model named by ``command``, created if new, write-locked either way."""
    row = await tx.single(
        "OPTIONAL MATCH (m:RegisteredModel {name: $name}) RETURN m.externalId AS externalId, "
        "m.project AS project, m IS NOT NULL AS found",
        {"name": command.name},
    )
    assert row is not None
    if row["found"]:
        check_project(row["project"], "input.model.name")
        if "project" in command.model_fields_set and row["project"] != command.project:
            raise Conflict(
                f"RegisteredModel {command.name!r} belongs to project {row['project']!r}",
                field="input.model.project",
            )
        if command.external_id is not None and row["externalId"] != command.external_id:
            raise Conflict(
                f"RegisteredModel {command.name!r} has externalId {row['externalId']!r}",
                field="input.model.externalId",
            )
    else:
        check_project(command.project, "input.model.project")
        await check_unique(
            tx,
            [
                UniqueKey(
                    "input.model.externalId",
                    RegisteredModel.LABEL,
                    {"externalId": command.external_id},
                )
            ],
        )
    props = new_node(RegisteredModel.LABEL, command, now())
    # MERGE on the uniquely constrained name: concurrent first registrations create one model.
    merged = await tx.single(
        "MERGE (m:RegisteredModel {name: $props.name}) "
        "ON CREATE SET m = $props, m:Node "
        "SET m._lock = true REMOVE m._lock "
        "RETURN m {.*} AS m, m.id = $props.id AS created",
        {"props": props},
    )
    assert merged is not None
    if merged["created"]:
        tx.touch(merged["m"]["id"], None, merged["m"])
    return merged["m"], merged["created"]


async def register(store: Store, command: RegisterModel) -> Registration:
    async def work(tx: Tx) -> Registration:
        model, model_created = await _model(tx, command.model)
        version_props: dict[str, Any] | None = None
        if command.version.name is not None:
            row = await tx.single(
                "OPTIONAL MATCH (:RegisteredModel {id: $modelId})-[:HAS_VERSION]->"
                "(v:ModelVersion {name: $name}) "
                "RETURN v {.*} AS v",
                {"modelId": model["id"], "name": command.version.name},
            )
            version_props = row["v"] if row else None
        if version_props is None:
            version = await versions.create_in(
                tx, command.version, model, path="input.version", model_field="input.model.name"
            )
            version_created = True
        else:
            _same_facts(
                version_props,
                command.version.node_properties(),
                _VERSION_FACTS,
                "input.version",
            )
            version = ModelVersion.from_props(version_props)
            version_created = False

        artifact: ModelArtifact | None = None
        artifact_created = False
        if command.artifact is not None:
            row = await tx.single(
                "MATCH (v:ModelVersion {id: $versionId}) "
                "SET v._lock = true REMOVE v._lock "
                "WITH v "
                "OPTIONAL MATCH (v)-[:HAS_ARTIFACT]->(a:Artifact {name: $name}) "
                "RETURN v {.*} AS v, a {.*} AS a",
                {"versionId": version.id, "name": command.artifact.name},
            )
            assert row is not None
            if row["a"] is None:
                created = await artifacts.create_in(
                    tx, command.artifact, row["v"], path="input.artifact"
                )
                artifact_created = True
            else:
                if row["a"].get("kind") != ModelArtifact.LABEL:
                    raise Conflict(
                        f"artifact {command.artifact.name!r} of this version is a doc artifact",
                        field="input.artifact.name",
                    )
                _same_facts(
                    row["a"],
                    command.artifact.node_properties(),
                    _ARTIFACT_FACTS,
                    "input.artifact",
                )
                created = ModelArtifact.from_props(row["a"])
            assert isinstance(created, ModelArtifact)
            artifact = created
        run: ExperimentRun | None = None
        run_created = False
        stamp = now()
        if command.training_run is not None:
            experiment, _ = await experiments.ensure_experiment(
                tx,
                experiments.ExperimentFields(
                    name=command.training_run.experiment, project=model.get("project")
                ),
                path="input.trainingRun",
            )
            run, run_created = await experiments.ensure_run(
                tx, command.training_run, experiment, path="input.trainingRun"
            )
            await links.add(
                tx, [links.Link(run.id, "PRODUCED", version.id, "input.trainingRun")], stamp
            )
        if command.base_version is not None:
            base = await resolve_version(tx, command.base_version, field="input.baseVersion")
            await links.add(
                tx, [links.Link(version.id, "DERIVED_FROM", base, "input.baseVersion")], stamp
            )
        return Registration(
            model=RegisteredModel.from_props(model),
            version=version,
            artifact=artifact,
            model_created=model_created,
            version_created=version_created,
            artifact_created=artifact_created,
            training_run=run,
            training_run_created=run_created,
        )

    return await store.write(work)

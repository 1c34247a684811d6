"""The reference for ``registration.in_one_query``: how a registration's model, version and
artifact were found or created before, one Bolt query per step (lookups, uniqueness checks,
MERGE, CREATE, each through the operation that does it alone). The one-query way must give
the same answers and errors (``test_registration_paths.py``); this is what it is held to,
not something the server runs."""

from __future__ import annotations

from typing import Any

from lineagehub.graph import artifacts, registration, versions
from lineagehub.graph.entities import check_unique, new_node, now
from lineagehub.graph.identity import check_project
from lineagehub.graph.models import RegisteredModelCreate
from lineagehub.graph.records import ModelArtifact, ModelVersion, RegisteredModel
from lineagehub.graph.registration import RegisterModel
from lineagehub.graph.store import Tx


async def model_step(
    tx: Tx, command: RegisteredModelCreate, path: str
) -> tuple[dict[str, Any], bool]:
    """The model named by ``command``, created if new, write-locked either way."""
    row = await tx.single(
        "OPTIONAL MATCH (m:RegisteredModel {name: $name}) RETURN m.externalId AS externalId, "
        "m.project AS project, m IS NOT NULL AS found",
        {"name": command.name},
    )
    assert row is not None
    if row["found"]:
        registration._existing_model(command, row["project"], row["externalId"], path)
    else:
        check_project(command.project, f"{path}.model.project")
        await check_unique(tx, [registration._model_external_id(command, path)])
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


async def stepwise(tx: Tx, command: RegisterModel, path: str) -> Any:
    """Model, version and artifact one query at a time."""
    model, model_created = await model_step(tx, command.model, path)
    version_props: dict[str, Any] | None = None
    if command.version.name is not None:
        # By the key the version's uniqueness constraint indexes, not through every version
        # of the model.
        row = await tx.single(
            "OPTIONAL MATCH (v:ModelVersion {modelId: $modelId, name: $name}) RETURN v {.*} AS v",
            {"modelId": model["id"], "name": command.version.name},
        )
        version_props = row["v"] if row else None
    if version_props is None:
        version = await versions.create_in(
            tx,
            command.version,
            model,
            path=f"{path}.version",
            model_field=f"{path}.model.name",
            # Looked up by that name just above, in this transaction.
            name_checked=command.version.name is not None,
        )
        version_created = True
    else:
        registration._same_facts(
            version_props,
            command.version.node_properties(),
            registration._VERSION_FACTS,
            f"{path}.version",
        )
        version = ModelVersion.from_props(version_props)
        version_created = False

    artifact: ModelArtifact | None = None
    artifact_created = False
    if command.artifact is not None:
        row = await tx.single(
            "MATCH (v:Node:ModelVersion {id: $versionId}) "
            "SET v._lock = true REMOVE v._lock "
            "WITH v "
            "OPTIONAL MATCH (v)-[:HAS_ARTIFACT]->(a:Artifact {name: $name}) "
            "RETURN v {.*} AS v, a {.*} AS a",
            {"versionId": version.id, "name": command.artifact.name},
        )
        assert row is not None
        if row["a"] is None:
            created = await artifacts.create_in(
                tx, command.artifact, row["v"], path=f"{path}.artifact"
            )
            artifact_created = True
        else:
            created = registration._existing_artifact(command.artifact, row["a"], path)
        assert isinstance(created, ModelArtifact)
        artifact = created
    return model, model_created, version, version_created, artifact, artifact_created

"""``registerModel``: model + version + artifact in one idempotent transaction.

Registering again with the same names returns the same nodes. Facts that identify what
was registered (who authored the version, what the artifact's bytes are and where they
live) must match what is stored, or the call fails with CONFLICT naming the field;
descriptive fields of existing nodes are left as they are (use the update mutations).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pydantic import model_validator

from lineagehub.graph import artifacts, experiments, links, versions
from lineagehub.graph.commands import Command
from lineagehub.graph.entities import (
    Name,
    UniqueKey,
    create_keys,
    new_node,
    now,
    taken_conflict,
)
from lineagehub.graph.errors import Conflict, NotFound
from lineagehub.graph.identity import (
    DEFAULT_PROJECT,
    check_project,
    in_scope,
    may_act_in,
    scope,
    scope_params,
)
from lineagehub.graph.models import RegisteredModelCreate
from lineagehub.graph.records import (
    ExperimentRun,
    ModelArtifact,
    ModelVersion,
    RegisteredModel,
    State,
)
from lineagehub.graph.store import Store, Tx, decode_node, node_map

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


class _StoredRegistration(Registration):
    """A registration of the set-based bulk path: its version and artifact records are made
    from the stored properties when first read (a bulk answer seldom shows every part)."""

    _version: dict[str, Any]
    _artifact: dict[str, Any] | None

    def __init__(
        self,
        model: RegisteredModel,
        version: dict[str, Any],
        artifact: dict[str, Any] | None,
        *,
        model_created: bool,
        version_created: bool,
        artifact_created: bool,
    ) -> None:
        for name, value in (
            ("model", model),
            ("_version", version),
            ("_artifact", artifact),
            ("model_created", model_created),
            ("version_created", version_created),
            ("artifact_created", artifact_created),
        ):
            object.__setattr__(self, name, value)

    @cached_property
    def version(self) -> ModelVersion:
        return ModelVersion.from_props(self._version)

    @cached_property
    def artifact(self) -> ModelArtifact | None:
        return ModelArtifact.from_props(self._artifact) if self._artifact else None


async def resolve_version(tx: Tx, ref: VersionRef, *, field: str) -> str:
    row = await tx.single(
        "OPTIONAL MATCH (byId:Node:ModelVersion {id: $id}) "
        "OPTIONAL MATCH (m:RegisteredModel {name: $model}) "
        "OPTIONAL MATCH (byName:ModelVersion {modelId: m.id, name: $name}) "
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


async def register(store: Store, command: RegisterModel) -> Registration:
    return await store.write(lambda tx: register_in(tx, command, "input"))


async def register_many(store: Store, commands: list[RegisterModel]) -> list[Registration]:
    """Many registrations in ONE transaction: all of them, or (on any error) none."""

    return await store.write(lambda tx: register_batch(tx, commands))


def _unstamped(props: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in props.items() if k not in ("createdAt", "updatedAt")}


def _projected(var: str) -> str:
    """Cypher for node ``var`` as a ``node_map``, or null when ``var`` is null."""
    return f"CASE WHEN {var} IS NULL THEN null ELSE {node_map(var)} END"


def _props(projected: dict[str, Any] | None) -> dict[str, Any] | None:
    return decode_node(projected)[1] if projected is not None else None


# A registration's model, version and artifact, found or created.
_Parts = tuple[dict[str, Any], bool, ModelVersion, bool, ModelArtifact | None, bool]

# A registration's model, version and artifact in one query: the steps that took a query
# each (the reference kept in tests/graph/stepwise.py, which the tests hold this to), in the
# same order and with the same locks (the model, then the version). Each creation happens
# only when nothing it depends on failed; the flags it returns are then checked in Python,
# in the steps' order, and the first failure raises, which rolls the transaction back.
_ONE_QUERY = (
    "OPTIONAL MATCH (old:RegisteredModel {name: $model.name}) "
    "WITH old IS NOT NULL AS modelFound, old.project AS oldProject, "
    "  old.externalId AS oldExternalId "
    "WITH *, NOT modelFound AND $model.externalId IS NOT NULL AND "
    "  COUNT { MATCH (x:RegisteredModel {externalId: $model.externalId}) } > 0 "
    "  AS modelExternalIdTaken "
    # MERGE on the uniquely constrained name: concurrent first registrations create one
    # model. Never one outside the caller's projects, not even to roll it back.
    "OPTIONAL CALL (modelFound, oldProject, modelExternalIdTaken) { "
    "  WITH modelFound, oldProject, modelExternalIdTaken "
    "  WHERE NOT modelExternalIdTaken AND CASE WHEN modelFound "
    "    THEN NOT $scoped OR oldProject IS NULL OR oldProject IN $scope "
    "    ELSE $newModelAllowed END "
    "  MERGE (m:RegisteredModel {name: $model.name}) "
    "  ON CREATE SET m = $model, m.createdAt = $at, m.updatedAt = $at, m:Node "
    "  SET m._lock = true REMOVE m._lock "
    "  RETURN m "
    "} "
    f"WITH *, {_projected('m')} AS modelProps, m.id = $model.id AS modelCreated "
    # By the key the version's uniqueness constraint indexes.
    "OPTIONAL MATCH (v0:ModelVersion {modelId: m.id, name: $version.name}) "
    "WITH *, v0 IS NULL AND $version.externalId IS NOT NULL AND "
    "  COUNT { MATCH (x:ModelVersion {externalId: $version.externalId}) } > 0 "
    "  AS versionExternalIdTaken "
    "OPTIONAL CALL (m, v0, versionExternalIdTaken) { "
    "  WITH m, v0, versionExternalIdTaken "
    "  WHERE v0 IS NULL AND m.state <> $archived AND NOT versionExternalIdTaken "
)
# Then the version's name as ``candidate``: the one given, or the model's next number (as
# versions.create_in numbers an unnamed version).
_GIVEN_NAME = "WITH *, $version.name AS candidate "
_ONE_QUERY_VERSION = (
    "  CREATE (m)-[:HAS_VERSION {since: $at}]->(n:Node:ModelVersion) "
    "  SET n = $version, n.name = candidate, n.createdAt = $at, n.updatedAt = $at, "
    "    n.modelId = m.id, n.project = coalesce(m.project, $defaultProject), "
    "    m.updatedAt = $at "
    "  RETURN n "
    "} "
    "WITH *, coalesce(v0, n) AS v "
    f"WITH *, {_projected('v')} AS versionProps "
)
_ONE_QUERY_ARTIFACT = (
    "CALL (v) { WITH v WHERE v IS NOT NULL SET v._lock = true REMOVE v._lock } "
    # The version as locked: what the artifact's checks read.
    f"WITH *, {_projected('v')} AS lockedVersion "
    "OPTIONAL MATCH (v)-[:HAS_ARTIFACT]->(a0:Artifact {name: $artifact.name}) "
    "WITH *, a0 IS NULL AND "
    "  COUNT { MATCH (x:Artifact {versionId: v.id, name: $artifact.name}) } > 0 "
    "  AS artifactNameTaken, "
    "  a0 IS NULL AND $artifact.externalId IS NOT NULL AND "
    "  COUNT { MATCH (x:ModelArtifact {externalId: $artifact.externalId}) } > 0 "
    "  AS artifactExternalIdTaken "
    "OPTIONAL CALL (v, a0, artifactNameTaken, artifactExternalIdTaken) { "
    "  WITH v, a0, artifactNameTaken, artifactExternalIdTaken "
    "  WHERE a0 IS NULL AND v.state <> $archived "
    "    AND NOT artifactNameTaken AND NOT artifactExternalIdTaken "
    "  CREATE (a:Node:Artifact:ModelArtifact) "
    "  SET a = $artifact, a.createdAt = $at, a.updatedAt = $at, a.versionId = v.id, "
    "    a.project = v.project "
    "  CREATE (v)-[:HAS_ARTIFACT {since: $at}]->(a) "
    "  SET v.updatedAt = $at "
    "  RETURN a "
    "} "
)
_ONE_QUERY_RETURN = (
    "RETURN modelFound, oldProject, oldExternalId, modelExternalIdTaken, modelProps, "
    "  modelCreated, v0 IS NOT NULL AS versionFound, versionExternalIdTaken, versionProps"
)
_ONE_QUERY_ARTIFACT_RETURN = (
    f", lockedVersion, {_projected('a0')} AS artifactFound, artifactNameTaken, "
    "artifactExternalIdTaken, "
    f"{_projected('a')} AS artifact"
)


async def in_one_query(tx: Tx, command: RegisterModel, path: str) -> _Parts:
    """Model, version and artifact in one query (``_ONE_QUERY``...), checked as the steps
    checked them: the same errors, in the same order."""
    model_in, version_in, artifact_in = command.model, command.version, command.artifact
    # What is created shares one stamp, sent once (the driver turns each Python datetime
    # into a Neo4j one slowly), as the bulk path does.
    stamp = now()
    allowed = scope()
    model_new = new_node(RegisteredModel.LABEL, model_in, stamp)
    version_new = new_node(ModelVersion.LABEL, version_in, stamp)
    version_new["approvalStatus"] = "NONE"
    params: dict[str, Any] = {
        "model": _unstamped(model_new),
        "version": _unstamped(version_new),
        "at": stamp,
        "archived": State.ARCHIVED.value,
        "defaultProject": DEFAULT_PROJECT,
        "scoped": allowed is not None,
        "scope": allowed or [],
        "newModelAllowed": may_act_in(model_in.project),
    }
    name = _GIVEN_NAME if version_in.name is not None else versions.NEXT_NUMBER
    query = _ONE_QUERY + name + _ONE_QUERY_VERSION
    if artifact_in is not None:
        artifact_new = new_node(ModelArtifact.LABEL, artifact_in, stamp)
        artifact_new.update(
            kind=ModelArtifact.LABEL, state=artifacts.state_for(artifact_in.artifact_state).value
        )
        params["artifact"] = _unstamped(artifact_new)
        query += _ONE_QUERY_ARTIFACT + _ONE_QUERY_RETURN + _ONE_QUERY_ARTIFACT_RETURN
    else:
        query += _ONE_QUERY_RETURN
    # Nodes come back as node_map projections (read raw): decoding the driver's DATETIMEs
    # costs more than the rest of the answer.
    row = await tx.single(query, params, raw=True)
    assert row is not None

    # The model.
    if row["modelFound"]:
        _existing_model(model_in, row["oldProject"], row["oldExternalId"], path)
    else:
        check_project(model_in.project, f"{path}.model.project")
        if row["modelExternalIdTaken"]:
            raise taken_conflict(_model_external_id(model_in, path))
    model = _props(row["modelProps"])
    assert model is not None
    model_created = bool(row["modelCreated"])
    if model_created:
        tx.touch(model["id"], None, model)

    # The version, as ``versions.create_in`` checks it.
    version_props = _props(row["versionProps"])
    version_created = not row["versionFound"]
    if not version_created:
        assert version_props is not None
        _same_facts(version_props, version_in.node_properties(), _VERSION_FACTS, f"{path}.version")
    else:
        versions.check_open(model, f"{path}.model.name")
        if row["versionExternalIdTaken"]:
            raise taken_conflict(create_keys(ModelVersion, version_new, f"{path}.version")[1])
        assert version_props is not None, "every check passed, so the version was created"
        version_new.update(
            name=version_props["name"],
            modelId=model["id"],
            project=model.get("project", DEFAULT_PROJECT),
        )
        tx.touch(version_new["id"], None, version_new)
    assert version_props is not None
    version = ModelVersion.from_props(version_props)

    # The artifact, as ``artifacts.create_in`` checks it.
    if artifact_in is None:
        return model, model_created, version, version_created, None, False
    stored = _props(row["artifactFound"])
    if stored is not None:
        artifact = _existing_artifact(artifact_in, stored, path)
        return model, model_created, version, version_created, artifact, False
    locked = _props(row["lockedVersion"])
    assert locked is not None
    artifacts.check_open(locked, f"{path}.artifact")
    artifact_new.update(versionId=locked["id"], project=locked.get("project"))
    artifact_new = {k: v for k, v in artifact_new.items() if v is not None}
    name_key, external_id_key = create_keys(ModelArtifact, artifact_new, f"{path}.artifact")
    if row["artifactNameTaken"]:
        raise taken_conflict(name_key)
    if row["artifactExternalIdTaken"]:
        raise taken_conflict(external_id_key)
    tx.touch(artifact_new["id"], None, artifact_new)
    created = _props(row["artifact"])
    assert created is not None, "every check passed, so the artifact was created"
    artifact = ModelArtifact.from_props(created)
    return model, model_created, version, version_created, artifact, True


def _existing_model(
    command: RegisteredModelCreate, project: str | None, external_id: str | None, path: str
) -> None:
    """What a registration may not change about a model that exists."""
    check_project(project, f"{path}.model.name")
    if "project" in command.model_fields_set and project != command.project:
        raise Conflict(
            f"RegisteredModel {command.name!r} belongs to project {project!r}",
            field=f"{path}.model.project",
        )
    if command.external_id is not None and external_id != command.external_id:
        raise Conflict(
            f"RegisteredModel {command.name!r} has externalId {external_id!r}",
            field=f"{path}.model.externalId",
        )


def _model_external_id(command: RegisteredModelCreate, path: str) -> UniqueKey:
    return UniqueKey(
        f"{path}.model.externalId", RegisteredModel.LABEL, {"externalId": command.external_id}
    )


def _existing_artifact(
    command: artifacts.ModelArtifactFields, stored: dict[str, Any], path: str
) -> ModelArtifact:
    """The version's artifact of that name, when a registration may name it again."""
    if stored.get("kind") != ModelArtifact.LABEL:
        raise Conflict(
            f"artifact {command.name!r} of this version is a doc artifact",
            field=f"{path}.artifact.name",
        )
    _same_facts(stored, command.node_properties(), _ARTIFACT_FACTS, f"{path}.artifact")
    return ModelArtifact.from_props(stored)


async def register_in(tx: Tx, command: RegisterModel, path: str) -> Registration:
    """Register inside ``tx``; errors name fields under ``path``."""
    parts = await in_one_query(tx, command, path)
    model, model_created, version, version_created, artifact, artifact_created = parts
    run: ExperimentRun | None = None
    run_created = False
    if command.training_run is not None:
        experiment, _ = await experiments.ensure_experiment(
            tx,
            experiments.ExperimentFields(
                name=command.training_run.experiment, project=model.get("project")
            ),
            path=f"{path}.trainingRun",
        )
        run, run_created = await experiments.ensure_run(
            tx,
            command.training_run,
            experiment,
            path=f"{path}.trainingRun",
            produced=[version.id],
        )
    if command.base_version is not None:
        base = await resolve_version(tx, command.base_version, field=f"{path}.baseVersion")
        await links.add(
            tx, [links.Link(version.id, "DERIVED_FROM", base, f"{path}.baseVersion")], now()
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


# --- bulk, set-based --------------------------------------------------------------------
#
# Plain registrations (model + named version + optional model artifact) in bulk run as a
# handful of UNWIND queries for the whole batch instead of several per item: the same
# checks (scope, externalId, archived model, immutable facts), made in Python on the rows.
#
# The async driver spends tens of microseconds on every record it receives, far more than
# on a value inside one, and decodes Neo4j DATETIMEs slowly: each lookup returns ONE
# record with its rows collected in a list, and nodes as ``node_map`` projections.


def _plain(command: RegisterModel) -> bool:
    return (
        command.training_run is None
        and command.base_version is None
        and command.version.name is not None
    )


async def _collected(tx: Tx, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The list ``query`` returns as ``rows`` in its one record (of maps, lists, scalars and
    ``node_map`` projections only: read raw, without ``plain``)."""
    found = await tx.single(query, params, raw=True)
    assert found is not None
    rows: list[dict[str, Any]] = found["rows"]
    return rows


async def register_batch(tx: Tx, commands: list[RegisterModel]) -> list[Registration]:
    """``commands`` registered inside ``tx``: set-based when all are plain, else one by one."""
    if not all(_plain(c) for c in commands):
        return [await register_in(tx, c, f"inputs[{i}]") for i, c in enumerate(commands)]
    stamp = now()

    # 1. Models: who exists, whose externalId is taken, then MERGE the rest.
    first_use: dict[str, int] = {}
    for i, c in enumerate(commands):
        first_use.setdefault(c.model.name, i)
    model_props = {
        name: new_node(RegisteredModel.LABEL, commands[i].model, stamp)
        for name, i in first_use.items()
    }
    rows = await _collected(
        tx,
        "UNWIND $models AS m "
        "OPTIONAL MATCH (n:RegisteredModel {name: m.name}) "
        "WITH m, n, m.externalId IS NOT NULL AND "
        "  COUNT { MATCH (x:RegisteredModel {externalId: m.externalId}) "
        "          WHERE x.name <> m.name } > 0 AS externalIdTaken "
        "RETURN collect({name: m.name, project: n.project, externalId: n.externalId, "
        "  found: n IS NOT NULL, externalIdTaken: externalIdTaken}) AS rows",
        {
            "models": [
                {"name": n, "externalId": p.get("externalId")} for n, p in model_props.items()
            ]
        },
    )
    for row in sorted(rows, key=lambda r: first_use[r["name"]]):
        i = first_use[row["name"]]
        model_in = commands[i].model
        where = f"inputs[{i}].model"
        if row["found"]:
            check_project(row["project"], f"{where}.name")
            if model_in.external_id is not None and row["externalId"] != model_in.external_id:
                raise Conflict(
                    f"RegisteredModel {model_in.name!r} has externalId {row['externalId']!r}",
                    field=f"{where}.externalId",
                )
        else:
            check_project(model_in.project, f"{where}.project")
            if row["externalIdTaken"]:
                raise Conflict(
                    f"a RegisteredModel with externalId {model_in.external_id!r} already exists",
                    field=f"{where}.externalId",
                )
    merged = await _collected(
        tx,
        "UNWIND $models AS props "
        "MERGE (m:RegisteredModel {name: props.name}) "
        "ON CREATE SET m = props, m.createdAt = $stamp, m.updatedAt = $stamp, m:Node "
        "SET m._lock = true REMOVE m._lock "
        "WITH m, m.id = props.id AS created "
        f"RETURN collect({{m: {node_map('m')}, created: created}}) AS rows",
        {"models": [_unstamped(p) for p in model_props.values()], "stamp": stamp},
    )
    models: dict[str, tuple[dict[str, Any], bool]] = {}
    for row in merged:
        model = decode_node(row["m"])[1]
        models[model["name"]] = (model, row["created"])
        if row["created"]:
            tx.touch(model["id"], None, model)

    # 2. Versions: existing ones must keep their facts; the rest are created. A version is
    # found by its model's id and its name, the key its uniqueness constraint indexes.
    version_key = {i: (c.model.name, c.version.name) for i, c in enumerate(commands)}
    first_version: dict[tuple[str, Any], int] = {}
    for i, key in version_key.items():
        first_version.setdefault(key, i)
    found = await _collected(
        tx,
        "UNWIND $versions AS v "
        "OPTIONAL MATCH (n:ModelVersion {modelId: v.modelId, name: v.name}) "
        "WITH v, n, n IS NULL AND v.externalId IS NOT NULL AND "
        "  COUNT { MATCH (x:ModelVersion {externalId: v.externalId}) } > 0 AS externalIdTaken "
        f"RETURN collect({{i: v.i, n: {_projected('n')}, externalIdTaken: externalIdTaken}}) "
        "AS rows",
        {
            "versions": [
                {
                    "i": i,
                    "modelId": models[key[0]][0]["id"],
                    "name": key[1],
                    "externalId": commands[i].version.external_id,
                }
                for key, i in first_version.items()
            ]
        },
    )
    versions_by_key: dict[tuple[str, Any], tuple[dict[str, Any], bool]] = {}
    fresh: list[dict[str, Any]] = []
    for row in sorted(found, key=lambda r: int(r["i"])):
        i = row["i"]
        where = f"inputs[{i}]"
        command = commands[i]
        model = models[command.model.name][0]
        stored = _props(row["n"])
        if stored is not None:
            versions_by_key[version_key[i]] = (stored, False)
            continue
        if model["state"] == State.ARCHIVED.value:
            raise Conflict(
                f"RegisteredModel {model['name']!r} is archived; unarchive it to add versions",
                field=f"{where}.model.name",
            )
        if row["externalIdTaken"]:
            raise Conflict(
                f"a ModelVersion with externalId {command.version.external_id!r} already exists",
                field=f"{where}.version.externalId",
            )
        props = new_node(ModelVersion.LABEL, command.version, stamp)
        props.update(modelId=model["id"], approvalStatus="NONE", project=model.get("project"))
        props = {k: v for k, v in props.items() if v is not None}
        fresh.append(props)
        versions_by_key[version_key[i]] = (props, True)
        tx.touch(props["id"], None, props)
    for i, command in enumerate(commands):
        stored, created = versions_by_key[version_key[i]]
        if not created or first_version[version_key[i]] != i:
            _same_facts(
                stored, command.version.node_properties(), _VERSION_FACTS, f"inputs[{i}].version"
            )
    if fresh:
        # Every new node shares the one stamp: sent once, not twice per node (the driver
        # turns each Python datetime into a Neo4j one in pure Python, slowly).
        await tx.run(
            "UNWIND $versions AS props "
            "MATCH (m:Node:RegisteredModel {id: props.modelId}) "
            "CREATE (m)-[:HAS_VERSION {since: $stamp}]->(n:Node:ModelVersion) "
            "SET n = props, n.createdAt = $stamp, n.updatedAt = $stamp, m.updatedAt = $stamp",
            {"versions": [_unstamped(p) for p in fresh], "stamp": stamp},
        )

    # 3. Model artifacts, the same way. A version created just now has no artifacts yet:
    # only the artifacts of versions that existed (and externalIds) are looked up.
    artifact_key = {
        i: (c.model.name, c.version.name, c.artifact.name)
        for i, c in enumerate(commands)
        if c.artifact is not None
    }
    first_artifact: dict[tuple[str, Any, str], int] = {}
    for i, akey in artifact_key.items():
        first_artifact.setdefault(akey, i)
    artifacts_by_key: dict[tuple[str, Any, str], tuple[dict[str, Any], bool]] = {}
    if artifact_key:
        lookups = [
            {
                "i": i,
                "versionId": versions_by_key[akey[:2]][0]["id"],
                "name": akey[2],
                "externalId": commands[i].artifact.external_id,  # type: ignore[union-attr]
            }
            for akey, i in first_artifact.items()
        ]
        lookups = [
            a
            for a in lookups
            if a["externalId"] is not None or not versions_by_key[version_key[a["i"]]][1]
        ]
        looked_up: dict[int, dict[str, Any]] = {}
        if lookups:
            found = await _collected(
                tx,
                "UNWIND $artifacts AS a "
                "OPTIONAL MATCH (n:Artifact {versionId: a.versionId, name: a.name}) "
                "WITH a, n, n IS NULL AND a.externalId IS NOT NULL AND "
                "  COUNT { MATCH (x:ModelArtifact {externalId: a.externalId}) } > 0 "
                "  AS externalIdTaken "
                f"RETURN collect({{i: a.i, n: {_projected('n')}, "
                "  externalIdTaken: externalIdTaken}) AS rows",
                {"artifacts": lookups},
            )
            looked_up = {row["i"]: row for row in found}
        new_artifacts: list[dict[str, Any]] = []
        for i in first_artifact.values():
            row = looked_up.get(i, {"n": None, "externalIdTaken": False})
            command = commands[i]
            assert command.artifact is not None
            version = versions_by_key[version_key[i]][0]
            stored = _props(row["n"])
            if stored is not None:
                if stored.get("kind") != ModelArtifact.LABEL:
                    raise Conflict(
                        f"artifact {command.artifact.name!r} of this version is a doc artifact",
                        field=f"inputs[{i}].artifact.name",
                    )
                artifacts_by_key[artifact_key[i]] = (stored, False)
                continue
            if version["state"] == State.ARCHIVED.value:
                raise Conflict(
                    f"ModelVersion {version['name']!r} is archived",
                    field=f"inputs[{i}].version.name",
                )
            if row["externalIdTaken"]:
                raise Conflict(
                    f"a ModelArtifact with externalId {command.artifact.external_id!r} exists",
                    field=f"inputs[{i}].artifact.externalId",
                )
            props = new_node(ModelArtifact.LABEL, command.artifact, stamp)
            props.update(
                versionId=version["id"], kind=ModelArtifact.LABEL, project=version.get("project")
            )
            props = {k: v for k, v in props.items() if v is not None}
            new_artifacts.append(props)
            artifacts_by_key[artifact_key[i]] = (props, True)
            tx.touch(props["id"], None, props)
        for i, akey in artifact_key.items():
            stored, created = artifacts_by_key[akey]
            artifact_fields = commands[i].artifact
            assert artifact_fields is not None
            if not created or first_artifact[akey] != i:
                _same_facts(
                    stored,
                    artifact_fields.node_properties(),
                    _ARTIFACT_FACTS,
                    f"inputs[{i}].artifact",
                )
        if new_artifacts:
            await tx.run(
                "UNWIND $artifacts AS props "
                "MATCH (v:Node:ModelVersion {id: props.versionId}) "
                "CREATE (v)-[:HAS_ARTIFACT {since: $stamp}]->"
                "(n:Node:Artifact:ModelArtifact) "
                "SET n = props, n.createdAt = $stamp, n.updatedAt = $stamp, v.updatedAt = $stamp",
                {"artifacts": [_unstamped(p) for p in new_artifacts], "stamp": stamp},
            )

    model_records = {name: RegisteredModel.from_props(m) for name, (m, _) in models.items()}
    results: list[Registration] = []
    for i, c in enumerate(commands):
        model_created = models[c.model.name][1]
        version, version_created = versions_by_key[version_key[i]]
        artifact = artifacts_by_key.get(artifact_key[i]) if i in artifact_key else None
        results.append(
            _StoredRegistration(
                model_records[c.model.name],
                version,
                artifact[0] if artifact else None,
                model_created=model_created and first_use[c.model.name] == i,
                version_created=version_created and first_version[version_key[i]] == i,
                artifact_created=bool(artifact and artifact[1])
                and first_artifact[artifact_key[i]] == i,
            )
        )
    return results

"""Writing REST resources: each request body becomes one of our domain commands and runs
as one transaction of the domain operations GraphQL uses; the answer is read back."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from lineagehub.api.rest import resources as res
from lineagehub.api.rest.bodies import check_body
from lineagehub.api.rest.reads import BadRequest, get_one, our_id, our_ids
from lineagehub.api.rest.wire import (
    custom_properties_in,
    from_epoch_ms,
    removed_keys,
    rest_id,
)
from lineagehub.graph import (
    artifacts,
    datasets,
    entities,
    experiments,
    links,
    models,
    runlogs,
    serving,
    versions,
)
from lineagehub.graph.commands import C, validate
from lineagehub.graph.entities import lock, now
from lineagehub.graph.errors import Conflict, NotFound, ValidationFailed
from lineagehub.graph.identity import actor
from lineagehub.graph.records import (
    Artifact,
    Dataset,
    DocArtifact,
    Entity,
    Experiment,
    ExperimentRun,
    InferenceService,
    ModelArtifact,
    ModelVersion,
    RegisteredModel,
    ServingEnvironment,
)
from lineagehub.graph.store import Store, Tx

# REST fields that are not a property of the same name, or not one at all.
_SPECIAL = frozenset({"customProperties", "artifactType", "state"})


def _command(command: type[C], body: dict[str, Any], *, extra: dict[str, Any] | None = None) -> C:
    """A domain command from a checked body: same-named fields, typed custom properties."""
    data = {k: v for k, v in body.items() if k not in _SPECIAL and v is not None}
    if "customProperties" in body:
        data["customProperties"] = custom_properties_in(body["customProperties"])
    data.update(extra or {})
    return validate(command, data, path="body")


def _update(command: type[C], body: dict[str, Any], current: dict[str, Any], **extra: Any) -> C:
    """A partial update; a given ``customProperties`` replaces the whole map."""
    data = {k: v for k, v in body.items() if k not in _SPECIAL}
    if body.get("customProperties") is not None:
        given = custom_properties_in(body["customProperties"])
        data["customProperties"] = given
        data["removeCustomProperties"] = removed_keys(current, given)
    data.update(extra)
    return validate(command, data, path="body")


def _state(body: dict[str, Any]) -> dict[str, Any]:
    return {"state": body["state"]} if body.get("state") is not None else {}


def _without_id(body: dict[str, Any]) -> dict[str, Any]:
    """A create body without ``id``: schemas that allow one get it from the server, as in
    Kubeflow (the read-only times are refused by ``check_body``)."""
    return {k: v for k, v in body.items() if k != "id"}


def _named(body: dict[str, Any], key: str, record: type[Entity]) -> tuple[str, int, str]:
    """The node the body's ``key`` names by REST id, as a reference for ``our_ids``."""
    return record.LABEL, rest_id(body[key], field=f"body.{key}"), f"body.{key}"


def _parent(
    body: dict[str, Any], key: str, record: type[Entity], path_rest: int | None
) -> tuple[str, int, str]:
    """The parent the body's ``key`` names; 409 when the path names another one."""
    ref = _named(body, key, record)
    if path_rest is not None and ref[1] != path_rest:
        raise Conflict(f"{key} differs from the path's {record.LABEL}", field=ref[2])
    return ref


async def _current(store: Store, record: type[Entity], rest: int) -> dict[str, Any]:
    return await our_id(store, record.LABEL, rest, field="id")


async def _patch(
    store: Store,
    rest: int,
    body: dict[str, Any],
    schema: str,
    record: type[Entity],
    command: type[entities.EntityUpdate],
    resource: res.Resource,
) -> dict[str, Any]:
    """PATCH of a resource whose fields map straight onto its update command."""
    body = check_body(body, schema)
    current = await _current(store, record, rest)
    changes = _update(command, body, current, **_state(body))
    await entities.update(store, record, current["id"], changes, path="body")
    return await get_one(store, resource, rest)


# --- registered models and versions ------------------------------------------------------


async def create_model(store: Store, body: dict[str, Any]) -> dict[str, Any]:
    body = check_body(body, "RegisteredModelCreate")
    command = _command(models.RegisteredModelCreate, body, extra=_state(body))
    model = await models.create(store, command)
    return await get_one(store, res.REGISTERED_MODEL, model.id, by="id")


def update_model(store: Store, rest: int, body: dict[str, Any]) -> Awaitable[dict[str, Any]]:
    return _patch(
        store,
        rest,
        body,
        "RegisteredModelUpdate",
        RegisteredModel,
        models.RegisteredModelUpdate,
        res.REGISTERED_MODEL,
    )


async def create_version(
    store: Store, body: dict[str, Any], *, model_rest: int | None = None
) -> dict[str, Any]:
    body = _without_id(
        check_body(body, "ModelVersionCreate" if model_rest is None else "ModelVersion")
    )
    [model_id] = await our_ids(
        store, _parent(body, "registeredModelId", RegisteredModel, model_rest)
    )
    fields = {k: v for k, v in body.items() if k != "registeredModelId"}
    command = _command(
        versions.ModelVersionCreate, fields, extra={"modelId": model_id, **_state(body)}
    )
    version = await versions.create(store, command)
    return await get_one(store, res.MODEL_VERSION, version.id, by="id")


def update_version(store: Store, rest: int, body: dict[str, Any]) -> Awaitable[dict[str, Any]]:
    return _patch(
        store,
        rest,
        body,
        "ModelVersionUpdate",
        ModelVersion,
        versions.ModelVersionUpdate,
        res.MODEL_VERSION,
    )


# --- artifacts -------------------------------------------------------------------------------

_ARTIFACT_SCHEMAS = {
    "model-artifact": "ModelArtifact",
    "doc-artifact": "DocArtifact",
    "dataset-artifact": "DataSet",
    "metric": "Metric",
    "parameter": "Parameter",
}


def _artifact_type(body: Any, default: str | None = None, suffix: str | None = None) -> str:
    """The artifact type a body names; without one, the first type whose schema (with
    ``suffix``, e.g. "Create") the body fits, else ``default``."""
    if isinstance(body, dict) and "artifactType" not in body and suffix is not None:
        for candidate, schema in _ARTIFACT_SCHEMAS.items():
            try:
                check_body(body, schema + suffix)
            except ValidationFailed:
                continue
            return candidate
    kind = body.get("artifactType", default) if isinstance(body, dict) else default
    if not isinstance(kind, str) or kind not in _ARTIFACT_SCHEMAS:
        raise ValidationFailed(
            f"artifactType must be one of {', '.join(_ARTIFACT_SCHEMAS)}",
            field="body.artifactType",
        )
    return kind


def _artifact_state(body: dict[str, Any]) -> dict[str, Any]:
    return {"artifactState": body["state"]} if body.get("state") is not None else {}


def _dataset_fields(body: dict[str, Any]) -> datasets.DatasetFields:
    return _command(datasets.DatasetFields, body, extra=_artifact_state(body))


def _file_command(kind: str, body: dict[str, Any]) -> artifacts.DocArtifactFields:
    command = (
        artifacts.ModelArtifactFields if kind == "model-artifact" else artifacts.DocArtifactFields
    )
    return _command(command, body, extra=_artifact_state(body))


async def _created_artifact(store: Store, node: dict[str, Any] | str) -> dict[str, Any]:
    if isinstance(node, str):
        return await get_one(store, res.ARTIFACT, node, by="id")
    return await get_one(store, res.ARTIFACT, node["restId"])


async def create_artifact(
    store: Store, body: dict[str, Any], *, only: str | None = None
) -> dict[str, Any]:
    """POST /artifacts (any kind) or /model_artifacts (``only`` = model-artifact)."""
    kind = only or _artifact_type(body, "model-artifact", "Create")
    if isinstance(body, dict) and "artifactType" in body:
        kind = _artifact_type(body)
    if only is not None and kind != only:
        raise ValidationFailed(f"artifactType must be {only}", field="body.artifactType")
    body = check_body(body, _ARTIFACT_SCHEMAS[kind] + "Create")
    if kind in ("metric", "parameter"):
        log = await _log(store, None, kind, body)
        return await get_one(store, res.ARTIFACT, log["restId"])
    if kind == "dataset-artifact":
        fields = _dataset_fields(body)
        dataset, _ = await store.write(lambda tx: datasets.ensure_dataset(tx, fields))
        return await _created_artifact(store, dataset.id)
    command = _file_command(kind, body)
    artifact = await store.write(lambda tx: artifacts.create_in(tx, command, None, path="body"))
    return await _created_artifact(store, artifact.id)


async def _artifact_node(store: Store, rest: int) -> dict[str, Any]:
    rows = await store.read(
        "CALL () { MATCH (n:Node {restId: $rest}) RETURN n "
        "UNION MATCH (n:RunLog {restId: $rest}) RETURN n } "
        "WITH n WHERE (n:Artifact OR n:Dataset OR n:RunLog) AND NOT n:Deleted "
        "RETURN n {.*} AS n, labels(n) AS labels",
        {"rest": rest},
    )
    if not rows:
        raise NotFound(f"no artifact with id {rest}", field="id")
    props: dict[str, Any] = rows[0]["n"]
    props["_labels"] = rows[0]["labels"]
    return props


def _fits(body: dict[str, Any], kind: str) -> bool:
    """Whether an update body without an artifactType reads as ``kind``'s, when it reads
    as another artifact type's (so it is a conflict with what is stored, not bad input)."""
    if "artifactType" in body:
        return True
    try:
        check_body(body, _ARTIFACT_SCHEMAS[kind] + "Update")
    except ValidationFailed:
        for other, schema in _ARTIFACT_SCHEMAS.items():
            if other == kind:
                continue
            try:
                check_body(body, schema + "Update")
            except ValidationFailed:
                continue
            return False
    return True


def _kind_of(labels: list[str]) -> str:
    for label, kind in (
        ("ModelArtifact", "model-artifact"),
        ("DocArtifact", "doc-artifact"),
        ("Dataset", "dataset-artifact"),
        ("MetricLog", "metric"),
        ("ParameterLog", "parameter"),
    ):
        if label in labels:
            return kind
    raise NotFound("not an artifact", field="id")


async def _checked_update(
    store: Store, rest: int, body: Any, *, only: str | None = None
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(kind, stored properties, checked body) of an update of artifact ``rest``."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object", field="body")
    current = await _artifact_node(store, rest)
    stored_kind = _kind_of(current.pop("_labels"))
    if only is not None and stored_kind != only:
        raise NotFound(f"no {only} with id {rest}", field="id")
    kind = _artifact_type(body, stored_kind)
    if kind != stored_kind or not _fits(body, stored_kind):
        shown = kind if kind != stored_kind else "another type's"
        raise Conflict(
            f"artifact {rest} is a {stored_kind}, not a {shown} artifact; its type cannot change",
            field="body.artifactType",
        )
    return kind, current, check_body(body, _ARTIFACT_SCHEMAS[kind] + "Update")


def _artifact_changes(
    kind: str, current: dict[str, Any], body: dict[str, Any]
) -> tuple[type[Entity], entities.EntityUpdate]:
    """The record type and update command of a checked model, doc or dataset update."""
    extra = _artifact_state(body)
    if kind == "dataset-artifact":
        return Dataset, _update(datasets.DatasetUpdate, body, current, **extra)
    if kind == "model-artifact":
        return ModelArtifact, _update(artifacts.ModelArtifactUpdate, body, current, **extra)
    return DocArtifact, _update(artifacts.DocArtifactUpdate, body, current, **extra)


async def update_artifact(
    store: Store, rest: int, body: dict[str, Any], *, only: str | None = None
) -> dict[str, Any]:
    kind, current, body = await _checked_update(store, rest, body, only=only)
    if kind in ("metric", "parameter"):
        merged = {
            "name": current["name"],
            **{
                k: current[k]
                for k in ("description", "externalId", "value", "step", "parameterType")
                if current.get(k) is not None
            },
            **{k: v for k, v in body.items() if v is not None},
        }
        await _log(store, current.get("runId"), kind, merged, rest=rest)
        return await get_one(store, res.ARTIFACT, rest)
    record, command = _artifact_changes(kind, current, body)
    await entities.update(store, record, current["id"], command, path="body")
    return await get_one(store, res.ARTIFACT, rest)


async def upsert_version_artifact(
    store: Store, version_rest: int, body: dict[str, Any]
) -> dict[str, Any]:
    """POST /model_versions/{id}/artifacts: attach the artifact ``id`` names, or create one."""
    version = await our_id(store, ModelVersion.LABEL, version_rest, field="id")
    kind = _artifact_type(body, "model-artifact", "")
    if kind not in ("model-artifact", "doc-artifact"):
        raise ValidationFailed(
            "a model version holds model and doc artifacts", field="body.artifactType"
        )
    body = check_body(body, _ARTIFACT_SCHEMAS[kind])
    if body.get("id") is not None:
        rest = rest_id(body["id"], field="body.id")
        fields = {k: v for k, v in body.items() if k not in _READ_ONLY}
        changed, current, fields = await _checked_update(store, rest, fields)
        change = (
            _artifact_changes(changed, current, fields) if set(fields) - {"artifactType"} else None
        )

        async def attach(tx: Tx) -> None:
            """Attach, and apply the body's other fields, in one transaction."""
            locked = await lock(tx, ModelVersion, version["id"], field="id")
            await artifacts.attach_in(tx, current["id"], locked, path="body")
            if change is not None:
                await entities.update_in(tx, change[0], current["id"], change[1], path="body")

        await store.write(attach)
        return await get_one(store, res.ARTIFACT, rest)
    fields = {k: v for k, v in body.items() if k not in _READ_ONLY}
    command = _file_command(kind, fields)

    async def create(tx: Tx) -> Artifact:
        locked = await lock(tx, ModelVersion, version["id"], field="id")
        return await artifacts.create_in(tx, command, locked, path="body")

    artifact = await store.write(create)
    return await _created_artifact(store, artifact.id)


_READ_ONLY = frozenset(
    {"id", "createTimeSinceEpoch", "lastUpdateTimeSinceEpoch", "experimentId", "experimentRunId"}
)


# --- experiments and runs ------------------------------------------------------------------


async def create_experiment(store: Store, body: dict[str, Any]) -> dict[str, Any]:
    body = check_body(body, "ExperimentCreate")
    command = _command(experiments.ExperimentFields, body, extra=_state(body))
    experiment = await experiments.create_experiment(store, command)
    return await get_one(store, res.EXPERIMENT, experiment.id, by="id")


def update_experiment(store: Store, rest: int, body: dict[str, Any]) -> Awaitable[dict[str, Any]]:
    return _patch(
        store,
        rest,
        body,
        "ExperimentUpdate",
        Experiment,
        experiments.ExperimentUpdate,
        res.EXPERIMENT,
    )


def _run_times(body: dict[str, Any]) -> dict[str, Any]:
    times: dict[str, Any] = {}
    for rest_name, ours in (("startTimeSinceEpoch", "startTime"), ("endTimeSinceEpoch", "endTime")):
        if body.get(rest_name) is not None:
            times[ours] = from_epoch_ms(body[rest_name], field=f"body.{rest_name}")
    return times


async def create_run(
    store: Store, body: dict[str, Any], *, experiment_rest: int | None = None
) -> dict[str, Any]:
    schema = "ExperimentRunCreate" if experiment_rest is None else "ExperimentRun"
    body = _without_id(check_body(body, schema))
    field = "body.experimentId"
    [experiment_id] = await our_ids(
        store, _parent(body, "experimentId", Experiment, experiment_rest)
    )
    fields = {
        k: v
        for k, v in body.items()
        if k not in ("experimentId", "startTimeSinceEpoch", "endTimeSinceEpoch")
    }
    command = _command(
        experiments.RunCreate,
        fields,
        extra={"experimentId": experiment_id, **_run_times(body), **_state(body)},
    )

    async def work(tx: Tx) -> ExperimentRun:
        locked = await lock(tx, Experiment, experiment_id, field=field)
        if command.name is not None:
            row = await tx.single(
                "MATCH (r:ExperimentRun {experimentId: $e, name: $n}) RETURN r.id AS id",
                {"e": experiment_id, "n": command.name},
            )
            if row is not None:
                raise Conflict(
                    f"experiment run {command.name!r} already exists in this experiment",
                    field="body.name",
                )
        run, _ = await experiments.ensure_run(tx, command, locked, path="body")
        return run

    run = await store.write(work)
    return await get_one(store, res.EXPERIMENT_RUN, run.id, by="id")


async def update_run(store: Store, rest: int, body: dict[str, Any]) -> dict[str, Any]:
    body = check_body(body, "ExperimentRunUpdate")
    current = await _current(store, ExperimentRun, rest)
    fields = {k: v for k, v in body.items() if k != "endTimeSinceEpoch"}
    times = _run_times(body)
    command = _update(experiments.RunUpdate, fields, current, **times, **_state(body))
    await entities.update(store, ExperimentRun, current["id"], command, path="body")
    return await get_one(store, res.EXPERIMENT_RUN, rest)


async def _log(
    store: Store, run_id: str | None, kind: str, body: dict[str, Any], *, rest: int | None = None
) -> dict[str, Any]:
    """Log a metric point or param on a run; without a run, record (or, given ``rest``,
    update) a standalone one."""
    data = {k: v for k, v in body.items() if k not in _SPECIAL | _READ_ONLY and v is not None}
    if "customProperties" in body:
        data["customProperties"] = custom_properties_in(body["customProperties"])
    data.update(_artifact_state(body))
    if kind == "metric":
        if data.get("timestamp") is not None:
            data["timestamp"] = from_epoch_ms(data["timestamp"], field="body.timestamp")
        fields: runlogs.MetricLog | runlogs.ParameterLog = validate(
            runlogs.MetricLog, data, path="body"
        )
    else:
        value = data.get("value")
        if value is not None and not isinstance(value, str):
            raise ValidationFailed("a parameter's value is a string", field="body.value")
        fields = validate(runlogs.ParameterLog, data, path="body")
    if run_id is not None:
        return await store.write(lambda tx: runlogs.log_in(tx, run_id, fields, path="body"))
    if rest is not None:
        return await store.write(lambda tx: runlogs.update_standalone(tx, rest, fields))
    return await store.write(lambda tx: runlogs.create_standalone(tx, fields))


async def upsert_run_artifact(store: Store, run_rest: int, body: dict[str, Any]) -> dict[str, Any]:
    """POST /experiment_runs/{id}/artifacts: log a metric or param, record a dataset the run
    read (INPUT_TO), or an artifact it produced (PRODUCED): all of it lineage."""
    run = await our_id(store, ExperimentRun.LABEL, run_rest, field="id")
    kind = _artifact_type(body, "model-artifact", "")
    body = check_body(body, _ARTIFACT_SCHEMAS[kind])
    if kind in ("metric", "parameter"):
        log = await _log(store, run["id"], kind, body)
        return await get_one(store, res.ARTIFACT, log["restId"])
    if body.get("id") is not None:
        existing = await _artifact_node(store, rest_id(body["id"], field="body.id"))
        node_id = existing["id"]

        async def link(tx: Tx) -> None:
            await lock(tx, ExperimentRun, run["id"], field="id")
            await _link_run(tx, run["id"], node_id, kind)

        await store.write(link)
        return await get_one(store, res.ARTIFACT, existing["restId"])
    fields = {k: v for k, v in body.items() if k not in _READ_ONLY}

    async def work(tx: Tx) -> str:
        await lock(tx, ExperimentRun, run["id"], field="id")
        if kind == "dataset-artifact":
            dataset, _ = await datasets.ensure_dataset(tx, _dataset_fields(fields))
            made = dataset.id
        else:
            artifact = await artifacts.create_in(tx, _file_command(kind, fields), None, path="body")
            made = artifact.id
        await _link_run(tx, run["id"], made, kind)
        return made

    made = await store.write(work)
    return await get_one(store, res.ARTIFACT, made, by="id")


async def _link_run(tx: Tx, run_id: str, node_id: str, kind: str) -> None:
    if kind == "dataset-artifact":
        link = links.Link(node_id, "INPUT_TO", run_id, "body")
    else:
        link = links.Link(run_id, "PRODUCED", node_id, "body")
    await links.add(tx, [link], now())


# --- serving -------------------------------------------------------------------------------


async def create_environment(store: Store, body: dict[str, Any]) -> dict[str, Any]:
    body = check_body(body, "ServingEnvironmentCreate")
    command = _command(serving.EnvironmentFields, body)
    env = await serving.create_environment(store, command)
    return await get_one(store, res.SERVING_ENVIRONMENT, env.id, by="id")


def update_environment(store: Store, rest: int, body: dict[str, Any]) -> Awaitable[dict[str, Any]]:
    return _patch(
        store,
        rest,
        body,
        "ServingEnvironmentUpdate",
        ServingEnvironment,
        entities.EntityUpdate,
        res.SERVING_ENVIRONMENT,
    )


async def create_service(
    store: Store, body: dict[str, Any], *, environment_rest: int | None = None
) -> dict[str, Any]:
    schema = "InferenceServiceCreate" if environment_rest is None else "InferenceService"
    body = _without_id(check_body(body, schema))
    refs = [
        _parent(body, "servingEnvironmentId", ServingEnvironment, environment_rest),
        _named(body, "registeredModelId", RegisteredModel),
    ]
    if body.get("modelVersionId") is not None:
        refs.append(_named(body, "modelVersionId", ModelVersion))
    found = await our_ids(store, *refs)
    extra: dict[str, Any] = {"environmentId": found[0], "modelId": found[1]}
    if len(found) > 2:
        extra["modelVersionId"] = found[2]
    fields = {
        k: v
        for k, v in body.items()
        if k not in ("servingEnvironmentId", "registeredModelId", "modelVersionId")
    }
    command = _command(serving.ServiceCreate, fields, extra=extra)
    service = await serving.create_service(store, command)
    return await get_one(store, res.INFERENCE_SERVICE, service.id, by="id")


async def update_service(store: Store, rest: int, body: dict[str, Any]) -> dict[str, Any]:
    body = check_body(body, "InferenceServiceUpdate")
    current = await _current(store, InferenceService, rest)
    version_id: str | None = None
    if body.get("modelVersionId") is not None:
        [version_id] = await our_ids(store, _named(body, "modelVersionId", ModelVersion))
    fields = {k: v for k, v in body.items() if k != "modelVersionId"}
    command = _update(serving.ServiceUpdate, fields, current)
    await serving.update_service(
        store, current["id"], command, version_id=version_id, actor=actor().name
    )
    return await get_one(store, res.INFERENCE_SERVICE, rest)


async def create_serve(store: Store, service_rest: int, body: dict[str, Any]) -> dict[str, Any]:
    body = _without_id(check_body(body, "ServeModel"))
    service_id, version_id = await our_ids(
        store,
        (InferenceService.LABEL, service_rest, "id"),
        _named(body, "modelVersionId", ModelVersion),
    )
    state = body.get("lastKnownState")
    fields = {k: v for k, v in body.items() if k not in ("modelVersionId", "lastKnownState")}
    extra: dict[str, Any] = {}
    if state is not None:
        extra = {"executionState": state, "deploymentState": res.DEPLOYMENT_STATE[state]}
    event = _command(serving.DeploymentEvent, fields, extra=extra)
    _, deployment = await serving.deploy(
        store, service_id, version_id, actor().name, event=event, field="body.modelVersionId"
    )
    return await get_one(store, res.SERVE_MODEL, deployment.id, by="id")

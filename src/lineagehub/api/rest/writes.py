"""Writing REST resources: each request body becomes one of our domain commands and runs
as one transaction of the domain operations GraphQL uses; the answer is read back."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from lineagehub.api.rest import resources as res
from lineagehub.api.rest.bodies import check_body
from lineagehub.api.rest.reads import BadRequest, get_one, our_id
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
    body = check_body(body, "ModelVersionCreate" if model_rest is None else "ModelVersion")
    body = {k: v for k, v in body.items() if k not in _SERVER_SET}
    given = body.get("registeredModelId")
    model_field = "body.registeredModelId"
    if model_rest is None:
        model_rest = rest_id(given, field=model_field)
    elif given is not None and rest_id(given, field=model_field) != model_rest:
        raise Conflict("registeredModelId differs from the path's model", field=model_field)
    model = await our_id(store, RegisteredModel.LABEL, model_rest, field=model_field)
    fields = {k: v for k, v in body.items() if k != "registeredModelId"}
    command = _command(
        versions.ModelVersionCreate, fields, extra={"modelId": model["id"], **_state(body)}
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


async def update_artifact(
    store: Store, rest: int, body: dict[str, Any], *, only: str | None = None
) -> dict[str, Any]:
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
    body = check_body(body, _ARTIFACT_SCHEMAS[kind] + "Update")
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
    extra = _artifact_state(body)
    if kind == "dataset-artifact":
        command: entities.EntityUpdate = _update(datasets.DatasetUpdate, body, current, **extra)
        record: type[Entity] = Dataset
    elif kind == "model-artifact":
        command = _update(artifacts.ModelArtifactUpdate, body, current, **extra)
        record = ModelArtifact
    else:
        command = _update(artifacts.DocArtifactUpdate, body, current, **extra)
        record = DocArtifact
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
        existing = await _artifact_node(store, rest_id(body["id"], field="body.id"))

        async def attach(tx: Tx) -> None:
            locked = await lock(tx, ModelVersion, version["id"], field="id")
            await artifacts.attach_in(tx, existing["id"], locked, path="body")

        await store.write(attach)
        if set(body) - {"id", "artifactType"}:
            fields = {k: v for k, v in body.items() if k not in _READ_ONLY}
            return await update_artifact(store, existing["restId"], fields)
        return await get_one(store, res.ARTIFACT, existing["restId"])
    fields = {k: v for k, v in body.items() if k not in _READ_ONLY}
    command = _file_command(kind, fields)

    async def create(tx: Tx) -> Artifact:
        locked = await lock(tx, ModelVersion, version["id"], field="id")
        return await artifacts.create_in(tx, command, locked, path="body")

    artifact = await store.write(create)
    return await _created_artifact(store, artifact.id)


# Set by the server: ignored in create bodies that allow them (as Kubeflow does).
_SERVER_SET = frozenset({"id", "createTimeSinceEpoch", "lastUpdateTimeSinceEpoch"})
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
    body = check_body(body, schema)
    body = {k: v for k, v in body.items() if k not in _SERVER_SET}
    field = "body.experimentId"
    wanted = rest_id(body["experimentId"], field=field)
    if experiment_rest is not None and wanted != experiment_rest:
        raise Conflict("experimentId differs from the path's experiment", field=field)
    experiment = await our_id(store, Experiment.LABEL, wanted, field=field)
    fields = {
        k: v
        for k, v in body.items()
        if k not in ("experimentId", "startTimeSinceEpoch", "endTimeSinceEpoch")
    }
    command = _command(
        experiments.RunCreate,
        fields,
        extra={"experimentId": experiment["id"], **_run_times(body), **_state(body)},
    )

    async def work(tx: Tx) -> ExperimentRun:
        locked = await lock(tx, Experiment, experiment["id"], field=field)
        if command.name is not None:
            row = await tx.single(
                "MATCH (r:ExperimentRun {experimentId: $e, name: $n}) RETURN r.id AS id",
                {"e": experiment["id"], "n": command.name},
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
    body = check_body(body, schema)
    body = {k: v for k, v in body.items() if k not in _SERVER_SET}
    env_field = "body.servingEnvironmentId"
    env_rest = rest_id(body["servingEnvironmentId"], field=env_field)
    if environment_rest is not None and env_rest != environment_rest:
        raise Conflict("servingEnvironmentId differs from the path's", field=env_field)
    env = await our_id(store, ServingEnvironment.LABEL, env_rest, field=env_field)
    model_field = "body.registeredModelId"
    model = await our_id(
        store,
        RegisteredModel.LABEL,
        rest_id(body["registeredModelId"], field=model_field),
        field=model_field,
    )
    extra: dict[str, Any] = {"environmentId": env["id"], "modelId": model["id"]}
    if body.get("modelVersionId") is not None:
        version_field = "body.modelVersionId"
        version = await our_id(
            store,
            ModelVersion.LABEL,
            rest_id(body["modelVersionId"], field=version_field),
            field=version_field,
        )
        extra["modelVersionId"] = version["id"]
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
        field = "body.modelVersionId"
        version = await our_id(
            store, ModelVersion.LABEL, rest_id(body["modelVersionId"], field=field), field=field
        )
        version_id = version["id"]
    fields = {k: v for k, v in body.items() if k != "modelVersionId"}
    command = _update(serving.ServiceUpdate, fields, current)
    await serving.update_service(
        store, current["id"], command, version_id=version_id, actor=actor().name
    )
    return await get_one(store, res.INFERENCE_SERVICE, rest)


async def create_serve(store: Store, service_rest: int, body: dict[str, Any]) -> dict[str, Any]:
    body = check_body(body, "ServeModel")
    body = {k: v for k, v in body.items() if k not in _SERVER_SET}
    service = await our_id(store, InferenceService.LABEL, service_rest, field="id")
    field = "body.modelVersionId"
    version = await our_id(
        store, ModelVersion.LABEL, rest_id(body["modelVersionId"], field=field), field=field
    )
    state = body.get("lastKnownState")
    fields = {k: v for k, v in body.items() if k not in ("modelVersionId", "lastKnownState")}
    extra: dict[str, Any] = {}
    if state is not None:
        extra = {"executionState": state, "deploymentState": res.DEPLOYMENT_STATE[state]}
    event = _command(serving.DeploymentEvent, fields, extra=extra)
    _, deployment = await serving.deploy(
        store, service["id"], version["id"], actor().name, event=event, field=field
    )
    return await get_one(store, res.SERVE_MODEL, deployment.id, by="id")

"""The Kubeflow Model Registry REST API, served under ``/api/model_registry/v1alpha3`` (with
experiments and runs) and ``/api/model_registry/v1`` (without), over the same graph.

Each operation checks the caller's role (reader for GET, writer otherwise) before it runs,
names itself as the audit action of what it writes, and answers errors as ``{code,
message}`` with the HTTP status Kubeflow clients expect: 400 for a request the API's
schema rejects, 404, 409, 422 for a domain rule, 401/403, 503 when Neo4j is away.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from lineagehub.api.rest import reads, writes
from lineagehub.api.rest import resources as res
from lineagehub.api.rest.bodies import upstream_spec
from lineagehub.api.rest.openapi_doc import served_spec
from lineagehub.api.rest.reads import BadRequest, ListQuery, Parent, get_one, list_page, list_query
from lineagehub.api.rest.wire import epoch_ms, rest_id
from lineagehub.graph.audit import action
from lineagehub.graph.errors import NotFound, RegistryError, ValidationFailed
from lineagehub.graph.identity import actor
from lineagehub.graph.listing import Condition
from lineagehub.graph.records import decode_metrics
from lineagehub.graph.store import Store
from lineagehub.logs import request_id

log = logging.getLogger("lineagehub.rest")

PREFIX = "/api/model_registry"
VERSIONS = ("v1alpha3", "v1")

STATUS = {
    "VALIDATION": 422,
    "NOT_FOUND": 404,
    "CONFLICT": 409,
    "UNAUTHENTICATED": 401,
    "FORBIDDEN": 403,
    "LIMIT_EXCEEDED": 400,
    "UNAVAILABLE": 503,
}

Handler = Callable[[Request, Store], Awaitable[tuple[int, Any]]]


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status)


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    handler: Handler
    experiments: bool = False  # only under v1alpha3


def _param_id(value: Any, name: str) -> int:
    """A REST id given in the path or the query: a malformed one is a bad request (400)."""
    try:
        return rest_id(value, field=name)
    except ValidationFailed as error:
        raise BadRequest(str(error), field=name) from None


def _path_id(request: Request, name: str = "id") -> int:
    return _param_id(request.path_params[name], name)


async def _body(request: Request) -> Any:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else None
        # JSON may escape a lone surrogate, which is no Unicode text: refuse it here.
        json.dumps(body, ensure_ascii=False).encode()
    except (ValueError, UnicodeError):
        raise BadRequest("the body is not valid JSON in UTF-8", field="body") from None
    return body


def _params(request: Request) -> dict[str, str]:
    return dict(request.query_params)


def _find_conditions(params: dict[str, str]) -> tuple[Condition, ...]:
    name, external = params.get("name"), params.get("externalId")
    if not name and not external:
        raise BadRequest("give name or externalId", field="name")
    found: list[Condition] = []
    if name:
        found.append(Condition("name", "eq", name, "name"))
    if external:
        found.append(Condition("externalId", "eq", external, "externalId"))
    return tuple(found)


# --- generic handlers ------------------------------------------------------------------------


def lister(
    resource: res.Resource, parent: Parent | None = None, *, artifact_types: bool = False
) -> Handler:
    async def handle(request: Request, store: Store) -> tuple[int, Any]:
        query = list_query(_params(request), artifact_types=artifact_types)
        parent_id = _path_id(request) if parent else None
        return 200, await list_page(store, resource, query, parent=parent, parent_id=parent_id)

    return handle


def getter(resource: res.Resource) -> Handler:
    async def handle(request: Request, store: Store) -> tuple[int, Any]:
        return 200, await get_one(store, resource, _path_id(request))

    return handle


def finder(resource: res.Resource, parent: Parent | None = None) -> Handler:
    """GET /<resource>?name=|externalId= (&parentResourceId= for scoped names): one or 404."""

    async def handle(request: Request, store: Store) -> tuple[int, Any]:
        params = _params(request)
        conditions = _find_conditions(params)
        parent_rest = params.get("parentResourceId")
        if parent is not None and parent_rest:
            parent_id = _param_id(parent_rest, "parentResourceId")
            page = await list_page(
                store,
                resource,
                ListQuery(page_size=1),
                parent=parent,
                parent_id=parent_id,
                conditions=conditions,
            )
        else:
            page = await list_page(store, resource, ListQuery(page_size=1), conditions=conditions)
        if not page["items"]:
            raise NotFound(f"no {resource.name} matches", field="name")
        return 200, page["items"][0]

    return handle


def creator(write: Callable[..., Awaitable[dict[str, Any]]], **kwargs: Any) -> Handler:
    async def handle(request: Request, store: Store) -> tuple[int, Any]:
        return 201, await write(store, await _body(request), **kwargs)

    return handle


def child_creator(write: Callable[..., Awaitable[dict[str, Any]]], keyword: str) -> Handler:
    async def handle(request: Request, store: Store) -> tuple[int, Any]:
        return 201, await write(store, await _body(request), **{keyword: _path_id(request)})

    return handle


def upserter(write: Callable[[Store, int, Any], Awaitable[dict[str, Any]]]) -> Handler:
    """POST under a parent: 201 when the body creates something, 200 when it names (by
    ``id``) something that exists."""

    async def handle(request: Request, store: Store) -> tuple[int, Any]:
        body = await _body(request)
        names_one = isinstance(body, dict) and body.get("id") is not None
        return (200 if names_one else 201), await write(store, _path_id(request), body)

    return handle


@functools.cache
def _success_status(version: str, operation_id: str) -> int | None:
    """The one success status the Kubeflow document of ``version`` gives an operation
    (None: several). The two documents differ (createInferenceService: 200 in v1alpha3,
    201 in v1), and clients generated from each expect their own."""
    for item in upstream_spec(version)["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict) and operation.get("operationId") == operation_id:
                codes = [c for c in operation.get("responses", {}) if str(c).startswith("2")]
                return int(codes[0]) if len(codes) == 1 else None
    return None


def updater(write: Callable[..., Awaitable[dict[str, Any]]], **kwargs: Any) -> Handler:
    async def handle(request: Request, store: Store) -> tuple[int, Any]:
        return 200, await write(store, _path_id(request), await _body(request), **kwargs)

    return handle


# --- special reads ---------------------------------------------------------------------------


async def _service_model(request: Request, store: Store) -> tuple[int, Any]:
    rows = await store.read(
        "MATCH (s:Node:InferenceService {restId: $id}) WHERE NOT s:Deleted "
        "OPTIONAL MATCH (m:Node:RegisteredModel {id: s.modelId}) "
        "RETURN m.restId AS model",
        {"id": _path_id(request)},
    )
    if not rows:
        raise NotFound(f"no InferenceService with id {_path_id(request)}", field="id")
    if rows[0]["model"] is None:
        raise NotFound("this InferenceService names no registered model", field="id")
    return 200, await get_one(store, res.REGISTERED_MODEL, rows[0]["model"])


async def _service_version(request: Request, store: Store) -> tuple[int, Any]:
    """The version a service serves; without one, its model's latest live version."""
    rows = await store.read(
        "MATCH (s:Node:InferenceService {restId: $id}) WHERE NOT s:Deleted "
        "OPTIONAL MATCH (served:Node:ModelVersion {id: s.servedVersionId}) "
        "RETURN coalesce(served.restId, head(COLLECT { "
        "  MATCH (:Node:RegisteredModel {id: s.modelId})-[:HAS_VERSION]->(v:ModelVersion) "
        "  WHERE v.state = 'LIVE' AND NOT v:Deleted "
        "  RETURN v.restId AS rid ORDER BY v.createdAt DESC, rid DESC })) AS version",
        {"id": _path_id(request)},
    )
    if not rows:
        raise NotFound(f"no InferenceService with id {_path_id(request)}", field="id")
    if rows[0]["version"] is None:
        raise NotFound("this InferenceService has no model version to serve", field="id")
    return 200, await get_one(store, res.MODEL_VERSION, rows[0]["version"])


async def _metric_history(request: Request, store: Store) -> tuple[int, Any]:
    """Every logged point of a run's metrics (or of the runs ``filterQuery`` picks)."""
    params = _params(request)
    query = list_query(params, keys=False)  # (an in-memory list: offsets)
    run_ids: list[int] | None = None
    if "id" in request.path_params:
        run_ids = [_path_id(request)]
        await get_one(store, res.EXPERIMENT_RUN, run_ids[0])
    else:
        runs = await list_page(
            store,
            res.EXPERIMENT_RUN,
            ListQuery(page_size=reads.MAX_PAGE_SIZE, filter_query=query.filter_query),
        )
        run_ids = [int(r["id"]) for r in runs["items"]]
    name = params.get("name") or None
    steps: set[int] | None = None
    if "stepIds" in params:
        if not re.fullmatch(r"[0-9]{1,9}(,[0-9]{1,9})*", params["stepIds"]):
            raise BadRequest("stepIds is a comma-separated list of numbers", field="stepIds")
        steps = {int(s) for s in params["stepIds"].split(",")}
    rows = await store.read(
        "UNWIND $runs AS rid MATCH (r:Node:ExperimentRun {restId: rid}) WHERE NOT r:Deleted "
        "OPTIONAL MATCH (r)-[:PART_OF]->(e:Experiment) "
        "RETURN r {.*} AS run, e.restId AS experiment",
        {"runs": run_ids},
    )
    points: list[dict[str, Any]] = []
    for row in rows:
        run = row["run"]
        for metric in decode_metrics(run):
            if name is not None and metric.key != name:
                continue
            for point in metric.history:
                if steps is not None and point.step not in steps:
                    continue
                points.append(
                    {
                        "artifactType": "metric",
                        "name": metric.key,
                        "value": point.value,
                        "step": point.step,
                        "timestamp": epoch_ms(point.timestamp),
                        "experimentRunId": str(run["restId"]),
                        "experimentId": None
                        if row["experiment"] is None
                        else str(row["experiment"]),
                        "state": "LIVE",
                        "customProperties": {},
                    }
                )
    key = {"restId": "experimentRunId", "createdAt": "timestamp", "updatedAt": "timestamp"}
    sort_key = key.get(query.order_by, "experimentRunId")
    points.sort(
        key=lambda p: (
            int(p[sort_key]) if p[sort_key] else 0,
            p["name"],
            p["step"],
            int(p["timestamp"]),
        ),
        reverse=query.descending,
    )
    window = points[query.offset : query.offset + query.page_size]
    items = [{k: v for k, v in p.items() if v is not None} for p in window]
    return 200, reads.page_answer(items, query, more=len(points) > query.offset + query.page_size)


# --- the operation table -----------------------------------------------------------------------

OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", "/registered_models", "getRegisteredModels", lister(res.REGISTERED_MODEL)),
    Operation("POST", "/registered_models", "createRegisteredModel", creator(writes.create_model)),
    Operation("GET", "/registered_model", "findRegisteredModel", finder(res.REGISTERED_MODEL)),
    Operation(
        "GET", "/registered_models/{id:int}", "getRegisteredModel", getter(res.REGISTERED_MODEL)
    ),
    Operation(
        "PATCH",
        "/registered_models/{id:int}",
        "updateRegisteredModel",
        updater(writes.update_model),
    ),
    Operation(
        "GET",
        "/registered_models/{id:int}/versions",
        "getRegisteredModelVersions",
        lister(res.MODEL_VERSION, reads.VERSIONS_OF_MODEL),
    ),
    Operation(
        "POST",
        "/registered_models/{id:int}/versions",
        "createRegisteredModelVersion",
        child_creator(writes.create_version, "model_rest"),
    ),
    Operation("GET", "/model_versions", "getModelVersions", lister(res.MODEL_VERSION)),
    Operation("POST", "/model_versions", "createModelVersion", creator(writes.create_version)),
    Operation(
        "GET",
        "/model_version",
        "findModelVersion",
        finder(res.MODEL_VERSION, reads.VERSIONS_OF_MODEL),
    ),
    Operation("GET", "/model_versions/{id:int}", "getModelVersion", getter(res.MODEL_VERSION)),
    Operation(
        "PATCH", "/model_versions/{id:int}", "updateModelVersion", updater(writes.update_version)
    ),
    Operation(
        "GET",
        "/model_versions/{id:int}/artifacts",
        "getModelVersionArtifacts",
        lister(res.ARTIFACT, reads.ARTIFACTS_OF_VERSION, artifact_types=True),
    ),
    Operation(
        "POST",
        "/model_versions/{id:int}/artifacts",
        "upsertModelVersionArtifact",
        upserter(writes.upsert_version_artifact),
    ),
    Operation("GET", "/model_artifacts", "getModelArtifacts", lister(res.MODEL_ARTIFACT)),
    Operation(
        "POST",
        "/model_artifacts",
        "createModelArtifact",
        creator(writes.create_artifact, only="model-artifact"),
    ),
    Operation(
        "GET",
        "/model_artifact",
        "findModelArtifact",
        finder(res.MODEL_ARTIFACT, reads.ARTIFACTS_OF_VERSION),
    ),
    Operation("GET", "/model_artifacts/{id:int}", "getModelArtifact", getter(res.MODEL_ARTIFACT)),
    Operation(
        "PATCH",
        "/model_artifacts/{id:int}",
        "updateModelArtifact",
        updater(writes.update_artifact, only="model-artifact"),
    ),
    Operation("GET", "/artifacts", "getArtifacts", lister(res.ARTIFACT, artifact_types=True)),
    Operation("POST", "/artifacts", "createArtifact", creator(writes.create_artifact)),
    Operation("GET", "/artifact", "findArtifact", finder(res.ARTIFACT, reads.ARTIFACTS_OF_VERSION)),
    Operation("GET", "/artifacts/{id:int}", "getArtifact", getter(res.ARTIFACT)),
    Operation("PATCH", "/artifacts/{id:int}", "updateArtifact", updater(writes.update_artifact)),
    Operation(
        "GET", "/serving_environments", "getServingEnvironments", lister(res.SERVING_ENVIRONMENT)
    ),
    Operation(
        "POST",
        "/serving_environments",
        "createServingEnvironment",
        creator(writes.create_environment),
    ),
    Operation(
        "GET", "/serving_environment", "findServingEnvironment", finder(res.SERVING_ENVIRONMENT)
    ),
    Operation(
        "GET",
        "/serving_environments/{id:int}",
        "getServingEnvironment",
        getter(res.SERVING_ENVIRONMENT),
    ),
    Operation(
        "PATCH",
        "/serving_environments/{id:int}",
        "updateServingEnvironment",
        updater(writes.update_environment),
    ),
    Operation(
        "GET",
        "/serving_environments/{id:int}/inference_services",
        "getEnvironmentInferenceServices",
        lister(res.INFERENCE_SERVICE, reads.SERVICES_IN_ENVIRONMENT),
    ),
    Operation(
        "POST",
        "/serving_environments/{id:int}/inference_services",
        "createEnvironmentInferenceService",
        child_creator(writes.create_service, "environment_rest"),
    ),
    Operation("GET", "/inference_services", "getInferenceServices", lister(res.INFERENCE_SERVICE)),
    Operation(
        "POST", "/inference_services", "createInferenceService", creator(writes.create_service)
    ),
    Operation(
        "GET",
        "/inference_service",
        "findInferenceService",
        finder(res.INFERENCE_SERVICE, reads.SERVICES_IN_ENVIRONMENT),
    ),
    Operation(
        "GET", "/inference_services/{id:int}", "getInferenceService", getter(res.INFERENCE_SERVICE)
    ),
    Operation(
        "PATCH",
        "/inference_services/{id:int}",
        "updateInferenceService",
        updater(writes.update_service),
    ),
    Operation(
        "GET", "/inference_services/{id:int}/model", "getInferenceServiceModel", _service_model
    ),
    Operation(
        "GET",
        "/inference_services/{id:int}/version",
        "getInferenceServiceVersion",
        _service_version,
    ),
    Operation(
        "GET",
        "/inference_services/{id:int}/serves",
        "getInferenceServiceServes",
        lister(res.SERVE_MODEL, reads.SERVES_OF_SERVICE),
    ),
    Operation(
        "POST",
        "/inference_services/{id:int}/serves",
        "createInferenceServiceServe",
        upserter(writes.create_serve),
    ),
    # Experiments and runs: v1alpha3 only.
    Operation("GET", "/experiments", "getExperiments", lister(res.EXPERIMENT), True),
    Operation("POST", "/experiments", "createExperiment", creator(writes.create_experiment), True),
    Operation("GET", "/experiment", "findExperiment", finder(res.EXPERIMENT), True),
    Operation("GET", "/experiments/{id:int}", "getExperiment", getter(res.EXPERIMENT), True),
    Operation(
        "PATCH",
        "/experiments/{id:int}",
        "updateExperiment",
        updater(writes.update_experiment),
        True,
    ),
    Operation(
        "GET",
        "/experiments/{id:int}/experiment_runs",
        "getExperimentExperimentRuns",
        lister(res.EXPERIMENT_RUN, reads.RUNS_OF_EXPERIMENT),
        True,
    ),
    Operation(
        "POST",
        "/experiments/{id:int}/experiment_runs",
        "createExperimentExperimentRun",
        child_creator(writes.create_run, "experiment_rest"),
        True,
    ),
    Operation("GET", "/experiment_runs", "getExperimentRuns", lister(res.EXPERIMENT_RUN), True),
    Operation("POST", "/experiment_runs", "createExperimentRun", creator(writes.create_run), True),
    Operation(
        "GET",
        "/experiment_run",
        "findExperimentRun",
        finder(res.EXPERIMENT_RUN, reads.RUNS_OF_EXPERIMENT),
        True,
    ),
    Operation(
        "GET",
        "/experiment_runs/metric_history",
        "getExperimentRunsMetricHistory",
        _metric_history,
        True,
    ),
    Operation(
        "GET", "/experiment_runs/{id:int}", "getExperimentRun", getter(res.EXPERIMENT_RUN), True
    ),
    Operation(
        "PATCH",
        "/experiment_runs/{id:int}",
        "updateExperimentRun",
        updater(writes.update_run),
        True,
    ),
    Operation(
        "GET",
        "/experiment_runs/{id:int}/artifacts",
        "getExperimentRunArtifacts",
        lister(res.ARTIFACT, reads.ARTIFACTS_OF_RUN, artifact_types=True),
        True,
    ),
    Operation(
        "POST",
        "/experiment_runs/{id:int}/artifacts",
        "upsertExperimentRunArtifact",
        upserter(writes.upsert_run_artifact),
        True,
    ),
    Operation(
        "GET",
        "/experiment_runs/{id:int}/metric_history",
        "getExperimentRunMetricHistory",
        _metric_history,
        True,
    ),
)


def _endpoint(operation: Operation, version: str) -> Callable[[Request], Awaitable[Response]]:
    role = "reader" if operation.method == "GET" else "writer"

    async def endpoint(request: Request) -> Response:
        store: Store = request.app.state.store
        try:
            actor().require(role, operation.operation_id)
            reads.check_query(dict(request.query_params))
            if operation.method == "GET":
                status, body = await operation.handler(request, store)
            else:
                with action(f"rest.{operation.operation_id}"):
                    status, body = await operation.handler(request, store)
            status = _success_status(version, operation.operation_id) or status
        except BadRequest as error:
            return error_response(400, "BAD_REQUEST", _message(error))
        except RegistryError as error:
            return error_response(STATUS.get(error.code, 500), error.code, _message(error))
        except Exception:
            log.exception(
                "unexpected error in %s (request %s)", operation.operation_id, request_id.get()
            )
            return error_response(
                500, "INTERNAL", f"internal error; quote request id {request_id.get()}"
            )
        return JSONResponse(body, status_code=status)

    return endpoint


def _message(error: RegistryError) -> str:
    field = error.field
    text = str(error)
    if isinstance(error, ValidationFailed) and field and not text.startswith(field):
        return f"{field}: {text}"
    return text


def _openapi(version: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return JSONResponse(served_spec(version))

    return endpoint


def _dispatch(
    by_method: dict[str, Callable[[Request], Awaitable[Response]]],
) -> Callable[[Request], Awaitable[Response]]:
    """One endpoint per path, so a 405 lists (in Allow) every method the path has."""

    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await by_method[method](request)

    return endpoint


def rest_routes() -> list[BaseRoute]:
    """Routes of both API versions, plus each one's OpenAPI document."""
    mounts: list[BaseRoute] = []
    for version in VERSIONS:
        paths: dict[str, dict[str, Callable[[Request], Awaitable[Response]]]] = {}
        for op in OPERATIONS:
            if op.experiments and version != "v1alpha3":
                continue
            paths.setdefault(op.path, {})[op.method] = _endpoint(op, version)
        routes: list[BaseRoute] = [Route("/openapi.json", _openapi(version), methods=["GET"])]
        routes += [
            Route(path, _dispatch(methods), methods=list(methods))
            for path, methods in paths.items()
        ]
        mounts.append(Mount(f"{PREFIX}/{version}", routes=routes))
    return mounts

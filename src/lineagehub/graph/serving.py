"""Serving: environments, inference services, their deployments, and monitoring links.

Deploying a version to a service closes the SERVES edge to the version it served before
(kept, with ``until``), opens a new one, and records a Deployment event, all in one
transaction; concurrent deploys to one service serialise on the service's lock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lineagehub.graph import ids, links
from lineagehub.graph.artifacts import Uri
from lineagehub.graph.coalesce import KEY_INDEX, KEYED
from lineagehub.graph.entities import (
    EntityCreate,
    EntityUpdate,
    Name,
    ShortText,
    check_unique,
    create_keys,
    lock,
    new_node,
    now,
)
from lineagehub.graph.errors import Conflict, ValidationFailed
from lineagehub.graph.identity import check_project, in_scope, scope_params
from lineagehub.graph.listing import ListSpec
from lineagehub.graph.models import Project
from lineagehub.graph.properties import encode
from lineagehub.graph.records import (
    TEMPORAL_PROPS,
    Deployment,
    DeploymentState,
    DesiredState,
    InferenceService,
    ModelVersion,
    MonitoringKind,
    MonitoringLink,
    RegisteredModel,
    ServingEnvironment,
    State,
)
from lineagehub.graph.store import Store, Tx, decode_node, node_map, node_projection


class EnvironmentFields(EntityCreate):
    pass


class ServiceFields(EntityCreate):
    project: Project | None = None
    runtime: ShortText | None = None
    url: Uri | None = None
    desired_state: DesiredState = DesiredState.DEPLOYED
    model_version_id: str | None = None
    # The registered model the service is for; defaults to the served version's model.
    model_id: str | None = None

    @classmethod
    def relations(cls) -> set[str]:
        return {"model_version_id", "desired_state", "model_id"}


class ServiceCreate(ServiceFields):
    environment_id: str

    @classmethod
    def relations(cls) -> set[str]:
        return ServiceFields.relations() | {"environment_id"}


class ServiceUpdate(EntityUpdate):
    runtime: ShortText | None = None
    url: Uri | None = None
    desired_state: DesiredState | None = None


class DeploymentEvent(EntityCreate):
    """How a deploy is described when the caller records it (Kubeflow's ServeModel)."""

    name: Name | None = None  # type: ignore[assignment]
    execution_state: ShortText | None = None
    deployment_state: DeploymentState | None = None

    @classmethod
    def relations(cls) -> set[str]:
        return {"deployment_state"}

    def stored(self) -> dict[str, Any]:
        props = {k: v for k, v in self.node_properties().items() if v is not None}
        props.update(encode(self.custom_properties))
        if self.deployment_state is not None:
            props["deploymentState"] = self.deployment_state.value
        return props


class MonitoringLinkCreate(EntityCreate):
    target_id: str
    url: Uri
    tool: ShortText | None = None
    kind: MonitoringKind = MonitoringKind.DASHBOARD

    @classmethod
    def relations(cls) -> set[str]:
        return {"target_id"}


SERVICES = ListSpec(
    label=InferenceService.LABEL,
    match="MATCH (n:InferenceService)",
    fields=InferenceService.FIELDS,
    indexed=frozenset({"createdAt"}),
)
DEPLOYMENTS_OF_SERVICE = ListSpec(
    label=Deployment.LABEL,
    parent_label=InferenceService.LABEL,
    match="MATCH (p)-[:HAS_DEPLOYMENT]->(n:Deployment)",
    fields=Deployment.FIELDS,
)


async def ensure_environment(tx: Tx, fields: EnvironmentFields) -> dict[str, Any]:
    props = new_node(ServingEnvironment.LABEL, fields, now())
    row = await tx.single(
        "MERGE (n:ServingEnvironment {name: $props.name}) "
        "ON CREATE SET n = $props, n:Node "
        "SET n._lock = true REMOVE n._lock "
        "RETURN n {.*} AS n",
        {"props": props},
    )
    assert row is not None
    env: dict[str, Any] = row["n"]
    if env["id"] == props["id"]:
        tx.touch(env["id"], None, env)
    return env


async def create_environment(store: Store, fields: EnvironmentFields) -> ServingEnvironment:
    async def work(tx: Tx) -> ServingEnvironment:
        props = new_node(ServingEnvironment.LABEL, fields, now())
        await check_unique(tx, create_keys(ServingEnvironment, props, "input"))
        row = await tx.single(
            "CREATE (n:Node:ServingEnvironment) SET n = $props RETURN n {.*} AS n",
            {"props": props},
        )
        tx.touch(props["id"], None, props)
        assert row is not None
        return ServingEnvironment.from_props(row["n"])

    return await store.write(work)


async def deploy_in(
    tx: Tx,
    service: dict[str, Any],
    version_id: str,
    *,
    actor: str | None,
    field: str,
    event: DeploymentEvent | None = None,
) -> Deployment:
    """Point ``service`` (locked) at ``version_id``: close the old SERVES, open a new one,
    record the Deployment (described by ``event`` when given: Kubeflow's ServeModel).
    Redeploying the served version records a new event only."""
    version = await lock(tx, ModelVersion, version_id, field=field)
    if version["state"] == State.ARCHIVED.value:
        raise Conflict(f"ModelVersion {version['name']!r} is archived", field=field)
    if service.get("modelId") not in (None, version["modelId"]):
        raise Conflict(
            f"ModelVersion {version['name']!r} is not a version of the model this service is for",
            field=field,
        )
    stamp = now()
    previous = service.get("servedVersionId")
    if previous is not None and previous != version_id:
        await links.close(tx, links.Link(service["id"], "SERVES", previous), stamp)
    await links.add(tx, [links.Link(service["id"], "SERVES", version_id)], stamp)
    seq_row = await tx.single(
        "MATCH (s:Node:InferenceService {id: $id}) "
        "SET s.servedVersionId = $versionId, s.updatedAt = $at, "
        # The version the service is set to serve: kept when it is undeployed (Kubeflow's
        # modelVersionId), while servedVersionId (and the SERVES edge) says what it serves.
        "    s.configuredVersionId = $versionId, "
        "    s.modelId = coalesce(s.modelId, $modelId), "
        "    s.deploySeq = coalesce(s.deploySeq, 0) + 1 "
        "RETURN s.deploySeq AS seq",
        {"id": service["id"], "versionId": version_id, "at": stamp, "modelId": version["modelId"]},
    )
    assert seq_row is not None
    props = {
        "id": ids.new_id(Deployment.LABEL),
        "name": f"deploy-{seq_row['seq']}",
        "state": State.LIVE.value,
        "createdAt": stamp,
        "updatedAt": stamp,
        "serviceId": service["id"],
        "versionId": version_id,
        "deploymentState": DeploymentState.PENDING.value,
        "stateAt": stamp,
    }
    if actor:
        props["actor"] = actor
    if event is not None:
        props.update(event.stored())
        await check_unique(tx, create_keys(Deployment, props, field.rsplit(".", 1)[0]))
    tx.touch(
        service["id"],
        {"servedVersionId": previous},
        {"servedVersionId": version_id},
    )
    tx.touch(props["id"], None, props)
    row = await tx.single(
        "MATCH (s:Node:InferenceService {id: $serviceId}) "
        "CREATE (s)-[:HAS_DEPLOYMENT {since: $at}]->(d:Node:Deployment) "
        "SET d = $props "
        "RETURN d {.*} AS d",
        {"serviceId": service["id"], "props": props, "at": stamp},
    )
    assert row is not None
    return Deployment.from_props(row["d"])


async def create_service(store: Store, command: ServiceCreate) -> InferenceService:
    check_project(command.project, "input.project")

    async def work(tx: Tx) -> InferenceService:
        env = await lock(
            tx, ServingEnvironment, command.environment_id, field="input.environmentId"
        )
        props = new_node(InferenceService.LABEL, command, now())
        props.update(environmentId=env["id"], desiredState=command.desired_state.value)
        if command.model_id is not None:
            model = await lock(tx, RegisteredModel, command.model_id, field="input.modelId")
            props["modelId"] = model["id"]
        await check_unique(tx, create_keys(InferenceService, props, "input"))
        tx.touch(props["id"], None, props)
        row = await tx.single(
            "MATCH (e:Node:ServingEnvironment {id: $envId}) "
            "CREATE (n:Node:InferenceService)-[:IN {since: $props.createdAt}]->(e) "
            "SET n = $props "
            "RETURN n {.*} AS n",
            {"envId": env["id"], "props": props},
        )
        assert row is not None
        if command.model_version_id is not None:
            await deploy_in(
                tx, row["n"], command.model_version_id, actor=None, field="input.modelVersionId"
            )
            row = await tx.single(
                "MATCH (n:Node:InferenceService {id: $id}) RETURN n {.*} AS n", {"id": props["id"]}
            )
            assert row is not None
        return InferenceService.from_props(row["n"])

    return await store.write(work)


async def deploy(
    store: Store,
    service_id: str,
    version_id: str,
    actor: str | None,
    *,
    event: DeploymentEvent | None = None,
    field: str = "versionId",
) -> tuple[InferenceService, Deployment]:
    async def work(tx: Tx) -> tuple[InferenceService, Deployment]:
        service = await lock(tx, InferenceService, service_id, field="serviceId")
        deployment = await deploy_in(tx, service, version_id, actor=actor, field=field, event=event)
        row = await tx.single(
            "MATCH (n:Node:InferenceService {id: $id}) "
            "SET n.desiredState = 'DEPLOYED' "
            "RETURN n {.*} AS n",
            {"id": service_id},
        )
        assert row is not None
        return InferenceService.from_props(row["n"]), deployment

    return await store.write(work)


async def undeploy(store: Store, service_id: str) -> InferenceService:
    """Stop serving: desired state UNDEPLOYED, the SERVES edge closed (history kept)."""

    async def work(tx: Tx) -> InferenceService:
        service = await lock(tx, InferenceService, service_id, field="serviceId")
        stamp = now()
        if service.get("servedVersionId"):
            await links.close(
                tx, links.Link(service_id, "SERVES", service["servedVersionId"]), stamp
            )
        tx.touch(
            service_id,
            {
                "desiredState": service.get("desiredState"),
                "servedVersionId": service.get("servedVersionId"),
            },
            {"desiredState": "UNDEPLOYED", "servedVersionId": None},
        )
        row = await tx.single(
            "MATCH (n:Node:InferenceService {id: $id}) "
            "SET n.desiredState = 'UNDEPLOYED', n.updatedAt = $at "
            "REMOVE n.servedVersionId "
            "RETURN n {.*} AS n",
            {"id": service_id, "at": stamp},
        )
        assert row is not None
        return InferenceService.from_props(row["n"])

    return await store.write(work)


async def record_deployment_state(
    store: Store, deployment_id: str, state: DeploymentState
) -> Deployment:
    async def work(tx: Tx) -> Deployment:
        current = await lock(tx, Deployment, deployment_id, field="deploymentId")
        stamp = now()
        tx.touch(
            deployment_id,
            {"deploymentState": current.get("deploymentState")},
            {"deploymentState": state.value},
        )
        row = await tx.single(
            "MATCH (d:Node:Deployment {id: $id}) "
            "SET d.deploymentState = $state, d.stateAt = $at, d.updatedAt = $at "
            "RETURN d {.*} AS d",
            {"id": deployment_id, "state": state.value, "at": stamp},
        )
        assert row is not None
        return Deployment.from_props(row["d"])

    return await store.write(work)


async def create_monitoring_link(store: Store, command: MonitoringLinkCreate) -> MonitoringLink:
    target_label = ids.label_of(command.target_id, field="input.targetId")
    if target_label not in ("ModelVersion", "InferenceService"):
        raise ValidationFailed(
            "a monitoring link watches a ModelVersion or an InferenceService",
            field="input.targetId",
        )

    async def work(tx: Tx) -> MonitoringLink:
        stamp = now()
        props = new_node(MonitoringLink.LABEL, command, stamp)
        props.update(targetId=command.target_id, kind=command.kind.value)
        await check_unique(tx, create_keys(MonitoringLink, props, "input"))
        tx.touch(props["id"], None, props)
        row = await tx.single(
            "CREATE (n:Node:MonitoringLink) SET n = $props RETURN n {.*} AS n", {"props": props}
        )
        assert row is not None
        await links.add(
            tx, [links.Link(props["id"], "MONITORS", command.target_id, "input")], stamp
        )
        return MonitoringLink.from_props(row["n"])

    return await store.write(work)


def _service_by_name() -> str:
    # By the (environmentId, name) key its uniqueness constraint indexes, not by walking
    # every service of the environment.
    return (
        f"{KEYED}MATCH (e:ServingEnvironment {{name: key.env}}) "
        "MATCH (n:InferenceService {environmentId: e.id, name: key.name}) "
        f"WHERE {in_scope('n')} "
    )


async def get_service(
    store: Store, environment: str, name: str, columns: tuple[str, ...] | None = None
) -> InferenceService | None:
    """A service by environment and name: all its properties, or only ``columns``."""
    rows, props_of = await _service_rows(store, environment, name, columns, with_version=False)
    return InferenceService.from_props(props_of(rows[0]["n"])) if rows else None


async def get_service_and_version(
    store: Store, environment: str, name: str, columns: tuple[str, ...] | None = None
) -> tuple[InferenceService | None, ModelVersion | None]:
    """A service (all its properties, or only ``columns``) and the version it serves
    (None when undeployed), in one round trip."""
    rows, props_of = await _service_rows(store, environment, name, columns, with_version=True)
    if not rows:
        return None, None
    served = rows[0]["v"]
    return (
        InferenceService.from_props(props_of(rows[0]["n"])),
        ModelVersion.from_props(decode_node(served)[1]) if served is not None else None,
    )


async def _service_rows(
    store: Store,
    environment: str,
    name: str,
    columns: tuple[str, ...] | None,
    *,
    with_version: bool,
) -> tuple[list[dict[str, Any]], Callable[[Any], dict[str, Any]]]:
    """The service ``environment``/``name`` (``n``: every property, or ``columns``), the
    version it serves (``v``: every property), and how to read ``n``'s properties."""
    service, props_of = node_projection("n", columns, TEMPORAL_PROPS)
    version = (
        "OPTIONAL MATCH (v:Node:ModelVersion {id: n.servedVersionId}) "
        f"WHERE {in_scope('v')} "
        f"RETURN {KEY_INDEX}, {service} AS n, "
        f"  CASE WHEN v IS NULL THEN null ELSE {node_map('v')} END AS v"
        if with_version
        else f"RETURN {KEY_INDEX}, {service} AS n"
    )
    (rows,) = await store.read_keyed(
        f"{_service_by_name()}{version}",
        scope_params(),
        [{"env": environment, "name": name}],
        raw=True,
    )
    return rows, props_of


async def update_service(
    store: Store,
    service_id: str,
    command: ServiceUpdate,
    *,
    version_id: str | None,
    actor: str | None,
) -> InferenceService:
    """Change a service in one transaction: its fields, the version it should serve (a
    deploy) and its desired state (UNDEPLOYED closes the SERVES edge, history kept)."""

    async def work(tx: Tx) -> InferenceService:
        current = await lock(tx, InferenceService, service_id, field="id")
        changes = command.changes(current, "body")
        stamp = now()
        if changes:
            tx.touch(service_id, {k: current.get(k) for k in changes}, changes)
            await tx.run(
                "MATCH (n:Node:InferenceService {id: $id}) SET n += $changes, n.updatedAt = $at",
                {"id": service_id, "changes": changes, "at": stamp},
            )
        undeploy = changes.get("desiredState") == DesiredState.UNDEPLOYED.value
        if version_id is not None and version_id != current.get("servedVersionId"):
            if undeploy:
                raise Conflict(
                    "a service cannot be undeployed and pointed at a new version at once",
                    field="body.desiredState",
                )
            await deploy_in(tx, current, version_id, actor=actor, field="body.modelVersionId")
        elif undeploy and current.get("servedVersionId"):
            await links.close(
                tx, links.Link(service_id, "SERVES", current["servedVersionId"]), stamp
            )
            tx.touch(service_id, {"servedVersionId": current["servedVersionId"]}, {})
            await tx.run(
                "MATCH (n:Node:InferenceService {id: $id}) REMOVE n.servedVersionId",
                {"id": service_id},
            )
        row = await tx.single(
            "MATCH (n:Node:InferenceService {id: $id}) RETURN n {.*} AS n", {"id": service_id}
        )
        assert row is not None
        return InferenceService.from_props(row["n"])

    return await store.write(work)

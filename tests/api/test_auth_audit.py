"""Identity, roles and the audit trail, enforced by the server and tested through HTTP."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import neo4j
import pytest

from lineagehub.app import create_app
from lineagehub.settings import Settings
from tests.api.fragments import REGISTER, registration
from tests.conftest import Api, Client, Neo4jServer, ThreadedServer, make_token


def test_local_mode_until_a_token_exists(server: ThreadedServer, as_role: Any) -> None:
    with Client(server.url, None) as anonymous:
        assert anonymous("{ registeredModels { totalCount } }") == {
            "registeredModels": {"totalCount": 0}
        }
        as_role("reader")
        refused = anonymous.http.post("/graphql", json={"query": "{ __typename }"})
    assert refused.status_code == 401
    assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert refused.headers["www-authenticate"].startswith("Bearer")
    assert httpx.get(f"{server.url}/healthz").status_code == 200  # probes stay open


def test_unknown_expired_and_revoked_tokens_are_401(
    server: ThreadedServer, settings: Settings, as_role: Any
) -> None:
    as_role("reader")
    with Client(server.url, "lh_not-a-token") as stranger:
        unknown = stranger.http.post("/graphql", json={"query": "{ __typename }"})
    assert unknown.status_code == 401
    assert "unknown token" in unknown.json()["errors"][0]["message"]

    _, secret = make_token(
        settings, "short-lived", ["reader"], expires_at=datetime.now(UTC) + timedelta(seconds=1)
    )
    with Client(server.url, secret) as client:
        assert client.http.post("/graphql", json={"query": "{ __typename }"}).status_code == 200
        time.sleep(1.5)
        expired = client.http.post("/graphql", json={"query": "{ __typename }"})
    assert expired.status_code == 401
    assert "expired" in expired.json()["errors"][0]["message"]

    revoked_id, revoked_secret = make_token(settings, "to-revoke", ["reader"])
    env = {**os.environ, "LINEAGEHUB_NEO4J_URI": settings.neo4j_uri or ""}
    subprocess.run(
        [sys.executable, "-m", "lineagehub.cli", "token", "revoke", revoked_id],
        env=env,
        check=True,
        capture_output=True,
    )
    with Client(server.url, revoked_secret) as client:
        revoked = client.http.post("/graphql", json={"query": "{ __typename }"})
    assert revoked.status_code == 401
    assert "revoked" in revoked.json()["errors"][0]["message"]


def test_roles_are_enforced_by_the_server(as_role: Any, db: neo4j.Driver) -> None:
    reader = as_role("reader")
    writer = as_role("writer")
    refused = reader.fails(REGISTER, registration())
    assert refused["extensions"]["code"] == "FORBIDDEN"
    assert refused["extensions"]["missingRole"] == "writer"
    assert "registerModel" in refused["message"]
    records, _, _ = db.execute_query("MATCH (n) WHERE NOT n:ApiToken RETURN count(n) AS n")
    assert records[0]["n"] == 0  # nothing was written, not even an audit event
    assert writer(REGISTER, registration())["registerModel"]["modelCreated"] is True
    assert reader("{ registeredModels { totalCount } }")["registeredModels"]["totalCount"] == 1
    admin = as_role("admin")
    assert admin("{ registeredModels { totalCount } }")["registeredModels"]["totalCount"] == 1


def test_every_mutation_leaves_an_audit_event(as_role: Any) -> None:
    writer = as_role("writer", name="ci-pipeline")
    created = writer(REGISTER, registration())["registerModel"]
    model_id = created["model"]["id"]
    writer(
        """mutation($id: ID!) { updateRegisteredModel(id: $id, input: {owner: "bo", description: "d"}) { id } }""",
        {"id": model_id},
    )
    trail = writer(
        """query($id: ID!) { node(id: $id) { ... on RegisteredModel {
              auditTrail { totalCount nodes { action actor actorTokenId requestId at
                           targetIds changes { target before after } } } } } }""",
        {"id": model_id},
    )["node"]["auditTrail"]
    assert trail["totalCount"] == 2
    update, register = trail["nodes"]  # newest first
    assert (update["action"], register["action"]) == ("updateRegisteredModel", "registerModel")
    assert update["actor"] == "ci-pipeline"
    assert update["actorTokenId"].startswith("tok_")
    assert update["requestId"]
    assert update["changes"] == [
        {
            "target": model_id,
            "before": {"description": None, "owner": "ana"},
            "after": {"description": "d", "owner": "bo"},
        }
    ]
    assert set(register["targetIds"]) == {
        model_id,
        created["version"]["id"],
        created["artifact"]["id"],
    }
    assert all(c["before"] is None for c in register["changes"])

    by_actor = writer(
        """query($from: DateTime!) { auditEvents(filter: {actor: "ci-pipeline", action: "registerModel", from: $from}) {
              totalCount } }""",
        {"from": register["at"]},
    )
    assert by_actor["auditEvents"]["totalCount"] == 1
    later = writer(
        """query($from: DateTime!) { auditEvents(filter: {from: $from}) { nodes { action } } }""",
        {"from": update["at"]},
    )
    assert later["auditEvents"]["nodes"] == [{"action": "updateRegisteredModel"}]


def test_a_failed_mutation_leaves_no_audit_event(api: Api, db: neo4j.Driver) -> None:
    api(REGISTER, registration())
    api.fails(REGISTER, registration(uri="s3://elsewhere"))
    records, _, _ = db.execute_query("MATCH (e:AuditEvent) RETURN collect(e.action) AS actions")
    assert records[0]["actions"] == ["registerModel"]


def test_no_api_changes_or_deletes_audit_events(api: Api) -> None:
    mutations = api("{ __schema { mutationType { fields { name } } } }")["__schema"]["mutationType"]
    assert not [f["name"] for f in mutations["fields"] if "audit" in f["name"].lower()]


def test_beyond_loopback_the_service_refuses_to_start_without_tokens(
    neo4j_server: Neo4jServer,
) -> None:
    settings = Settings(
        neo4j_uri=neo4j_server.uri,
        neo4j_user=neo4j_server.user,
        neo4j_password=neo4j_server.password,
        host="0.0.0.0",
        _env_file=None,  # type: ignore[call-arg]
    )
    app = create_app(settings)

    async def start() -> None:
        async with app.router.lifespan_context(app):
            pass

    with pytest.raises(RuntimeError, match=r"refusing to serve on 0\.0\.0\.0 without API tokens"):
        asyncio.run(start())


def test_token_cli_create_list_revoke(settings: Settings, db: neo4j.Driver) -> None:
    env = {**os.environ, "LINEAGEHUB_NEO4J_URI": settings.neo4j_uri or ""}

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "lineagehub.cli", "token", *args],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        return done.stdout

    created = cli("create", "--name", "nightly", "--role", "writer", "--expires-in", "30d")
    secret = created.strip().splitlines()[-1]
    assert secret.startswith("lh_")
    token_id = created.split()[2]
    listed = cli("list")
    assert token_id in listed
    assert "nightly" in listed
    assert secret not in listed
    records, _, _ = db.execute_query("MATCH (t:ApiToken) RETURN t.hash AS hash")
    assert secret not in str(records)  # only the hash is stored
    cli("revoke", token_id)
    assert "revoked" in cli("list")


def test_a_bootstrap_token_lets_a_container_start(
    neo4j_server: Neo4jServer, settings: Settings, db: neo4j.Driver
) -> None:
    secret = "bootstrap-secret-0123456789-abcdef"
    container = Settings(
        neo4j_uri=neo4j_server.uri,
        neo4j_user=neo4j_server.user,
        neo4j_password=neo4j_server.password,
        host="0.0.0.0",  # only the start-up check runs; nothing binds
        bootstrap_token=secret,
        _env_file=None,  # type: ignore[call-arg]
    )
    app = create_app(container)

    async def start() -> None:
        async with app.router.lifespan_context(app):
            pass

    asyncio.run(start())
    asyncio.run(start())  # idempotent: the token is ensured, not duplicated
    records, _, _ = db.execute_query("MATCH (t:ApiToken) RETURN t.name AS name, t.roles AS roles")
    assert [(r["name"], r["roles"]) for r in records] == [("bootstrap", ["admin"])]


def test_auth_required_refuses_local_mode(neo4j_server: Neo4jServer, db: neo4j.Driver) -> None:
    strict = Settings(
        neo4j_uri=neo4j_server.uri,
        neo4j_user=neo4j_server.user,
        neo4j_password=neo4j_server.password,
        auth="required",
        _env_file=None,  # type: ignore[call-arg]
    )
    app = create_app(strict)

    async def start() -> None:
        async with app.router.lifespan_context(app):
            pass

    with pytest.raises(RuntimeError, match="without API tokens"):
        asyncio.run(start())

"""registerModel's model, version and artifact against real Neo4j: the one-query way the
server takes (``registration.in_one_query``) and the query-per-step way it replaced
(``tests/graph/stepwise.py``, the reference) give
the same answer and error (code, field, message), and on success the same writes and the
same recorded changes, for every case a registration can meet: new and existing models, versions and artifacts,
every immutable fact, externalId and name taken, archived parents, project scopes."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import neo4j
import pytest

from lineagehub.graph import artifacts, ids, registration
from lineagehub.graph.constraints import ensure_constraints
from lineagehub.graph.errors import RegistryError
from lineagehub.graph.identity import Principal, current_principal, expand
from lineagehub.graph.registration import RegisterModel
from lineagehub.graph.store import Store, Tx, count_round_trips
from lineagehub.settings import Settings
from tests.conftest import with_store
from tests.graph.stepwise import stepwise

SCOPED = Principal(name="scoped", roles=expand(["writer"]), projects=frozenset({"p1"}))


def _input(
    model: str,
    version: str | None,
    artifact: dict[str, Any] | None = None,
    *,
    model_extra: dict[str, Any] | None = None,
    version_extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A registration; a version without a name is numbered."""
    named = {"name": version} if version is not None else {}
    data: dict[str, Any] = {
        "model": {"name": model, **(model_extra or {})},
        "version": {**named, "author": "ada", **(version_extra or {})},
    }
    if artifact is not None:
        data["artifact"] = artifact
    return data


ART = {"name": "art", "uri": "s3://b/art", "digest": "d1", "externalId": "xa1"}

# (case, principal, input)
CASES: list[tuple[str, Principal | None, dict[str, Any]]] = [
    ("all new", None, _input("new", "1", {"uri": "s3://b/new", "sizeBytes": 10})),
    ("all new, no artifact", None, _input("new", "1")),
    (
        "all new, every field",
        None,
        _input(
            "new",
            "1",
            {
                "name": "a",
                "uri": "s3://x",
                "modelFormatName": "onnx",
                "artifactState": "LIVE",
                "customProperties": [{"key": "k", "intValue": 3}],
            },
            model_extra={"externalId": "xm-new", "project": "p1", "owner": "o", "tags": ["t"]},
            version_extra={
                "externalId": "xv-new",
                "description": "d",
                "customProperties": [{"key": "acc", "floatValue": 0.9}],
            },
        ),
    ),
    ("new version", None, _input("m1", "v2", {"uri": "s3://b/v2"})),
    ("new version, no artifact", None, _input("m1", "v2")),
    ("everything again", None, _input("m1", "v1", ART, model_extra={"externalId": "xm1"})),
    ("version again, no artifact", None, _input("m1", "v1")),
    ("new artifact of a version", None, _input("m1", "v1", {"name": "art2", "uri": "s3://2"})),
    ("changed author", None, _input("m1", "v1", version_extra={"author": "bob"})),
    ("changed uri", None, _input("m1", "v1", {**ART, "uri": "s3://other"})),
    ("changed digest", None, _input("m1", "v1", {**ART, "digest": "d2"})),
    ("a doc artifact's name", None, _input("m1", "v1", {"name": "doc", "uri": "s3://d"})),
    ("artifact externalId taken", None, _input("m1", "v1", {"name": "a3", "externalId": "xa1"})),
    ("archived model", None, _input("arch", "9", {"uri": "s3://z"})),
    ("archived model's version", None, _input("arch", "1")),
    ("archived version, new artifact", None, _input("m1", "old", {"name": "x", "uri": "s3://x"})),
    ("archived version, again", None, _input("m1", "old")),
    ("model externalId differs", None, _input("m1", "v1", model_extra={"externalId": "other"})),
    ("model project differs", None, _input("m1", "v2", model_extra={"project": "p9"})),
    ("new model, externalId taken", None, _input("n2", "1", model_extra={"externalId": "xm1"})),
    (
        "new model, version externalId taken",
        None,
        _input("n3", "1", version_extra={"externalId": "xv1"}),
    ),
    (
        "new version, externalId taken",
        None,
        _input("m1", "v3", version_extra={"externalId": "xv1"}),
    ),
    ("scoped, another project's model", SCOPED, _input("pm", "1")),
    ("scoped, new model elsewhere", SCOPED, _input("n4", "1", model_extra={"project": "p2"})),
    (
        "scoped, new model in scope",
        SCOPED,
        _input("n5", "1", {"uri": "s3://5"}, model_extra={"project": "p1"}),
    ),
    ("scoped, own model", SCOPED, _input("pm1", "2", {"uri": "s3://6"})),
    # An artifact holding the name under the version without being linked to it.
    ("artifact name taken", None, _input("m1", "v1", {"name": "orphan", "uri": "s3://o"})),
    # Versions without a name: numbered past the numbers taken.
    ("numbered, new model", None, _input("new", None, {"uri": "s3://n"})),
    ("numbered, next free number", None, _input("num", None, {"uri": "s3://n"})),
    ("numbered, counter set, past a gap", None, _input("seq", None)),
    ("numbered, no artifact", None, _input("m1", None)),
    ("numbered, archived model", None, _input("arch", None)),
    ("numbered, externalId taken", None, _input("m1", None, version_extra={"externalId": "xv1"})),
    ("numbered, scoped elsewhere", SCOPED, _input("pm", None)),
]


class _Undo(Exception):
    """Raised once a case is recorded: its transaction rolls back."""

    def __init__(self, seen: Any) -> None:
        super().__init__("undo")
        self.seen = seen


def _normal(value: Any, ids: dict[str, str]) -> Any:
    """``value`` with new ids numbered in order of appearance and times made equal."""
    if isinstance(value, dict):
        return {k: _normal(v, ids) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normal(v, ids) for v in value]
    if isinstance(value, datetime) or type(value).__name__ == "DateTime":
        return "<time>"
    if isinstance(value, str) and value in ids:
        return ids[value]
    return value


def _record(parts: Any) -> dict[str, Any]:
    model, model_created, version, version_created, artifact, artifact_created = parts
    return {
        "model": model,
        "version": vars(version),
        "artifact": vars(artifact) if artifact else None,
        "created": (model_created, version_created, artifact_created),
    }


async def _seed(store: Store) -> None:
    async def register(data: dict[str, Any]) -> registration.Registration:
        return await registration.register(store, RegisterModel.model_validate(data))

    first = await register(
        _input(
            "m1",
            "v1",
            ART,
            model_extra={"externalId": "xm1"},
            version_extra={"externalId": "xv1"},
        )
    )
    await artifacts.create(
        store,
        artifacts.DocArtifactCreate.model_validate(
            {"versionId": first.version.id, "name": "doc", "uri": "s3://doc"}
        ),
    )
    old = await register(_input("m1", "old"))
    arch = await register(_input("arch", "1"))
    await register(_input("pm", "1", model_extra={"project": "p2"}))
    await register(_input("pm1", "1", model_extra={"project": "p1"}))
    for taken in ("1", "2", "4"):
        await register(_input("num", taken))
    # A model whose counter is set (two numbered versions), then a gap taken by name.
    for numbered in (None, None, "3"):
        await register(_input("seq", numbered))

    async def archive(tx: Tx) -> None:
        await tx.run(
            "MATCH (n:Node) WHERE n.id IN $ids SET n.state = 'ARCHIVED'",
            {"ids": [old.version.id, arch.model.id]},
        )

    await store.write(archive)

    async def orphan(tx: Tx) -> None:
        await tx.run(
            "CREATE (:Node:Artifact:ModelArtifact {id: $id, versionId: $version, "
            "name: 'orphan', kind: 'ModelArtifact', state: 'LIVE'})",
            {"id": ids.new_id("ModelArtifact"), "version": first.version.id},
        )

    await store.write(orphan)


async def _run(store: Store, way: Any, case: tuple[str, Principal | None, dict[str, Any]]) -> Any:
    _, principal, data = case
    command = RegisterModel.model_validate(data)

    async def work(tx: Tx) -> None:
        try:
            parts = await way(tx, command, "input")
        except RegistryError as error:
            outcome: Any = ("error", error.code, error.field, error.message, error.details)
        else:
            outcome = _record(parts)
        changes = [(c.target_id, c.before, c.after) for c in tx.changes]
        stored = await tx.run(
            "MATCH (n:Node) WHERE n:RegisteredModel OR n:ModelVersion OR n:Artifact "
            "OPTIONAL MATCH (n)-[r]->(o:Node) "
            "WITH n, collect([type(r), o.id]) AS out "
            "RETURN n {.*} AS n, labels(n) AS labels, out ORDER BY n.name, n.id"
        )
        raise _Undo((outcome, changes, stored))

    token = current_principal.set(principal)
    try:
        await store.write(work)
    except _Undo as undo:
        seen = undo.seen
    finally:
        current_principal.reset(token)
    # Ids made during the case are numbered as they appear; stored ones stay.
    fresh: dict[str, str] = {}
    for target, _, _ in seen[1]:
        fresh.setdefault(target, f"<new {len(fresh)}>")
    return _normal(seen, fresh)


def test_both_ways_agree_on_every_case(settings: Settings, db: neo4j.Driver) -> None:
    async def work(store: Store) -> list[tuple[str, Any, Any]]:
        await _seed(store)
        return [
            (
                case[0],
                await _run(store, registration.in_one_query, case),
                await _run(store, stepwise, case),
            )
            for case in CASES
        ]

    results = with_store(settings, work)
    for name, fused, steps in results:
        assert fused[0] == steps[0], name
        if isinstance(fused[0], dict):  # a registration, not an error
            # What was written and recorded for the audit trail (a failed case rolls back:
            # what it wrote before failing is never seen).
            assert fused[1:] == steps[1:], name
    outcomes = {name: fused[0] for name, fused, _ in results}
    # The cases reach what they are named after (so agreeing is not agreeing on nothing).
    assert outcomes["all new"]["created"] == [True, True, True]
    assert outcomes["everything again"]["created"] == [False, False, False]
    assert outcomes["new artifact of a version"]["created"] == [False, False, True]
    errors = {name: tuple(o[1:3]) for name, o in outcomes.items() if isinstance(o, list)}
    assert errors == {
        "changed author": ("CONFLICT", "input.version.author"),
        "changed uri": ("CONFLICT", "input.artifact.uri"),
        "changed digest": ("CONFLICT", "input.artifact.digest"),
        "a doc artifact's name": ("CONFLICT", "input.artifact.name"),
        "artifact externalId taken": ("CONFLICT", "input.artifact.externalId"),
        "archived model": ("CONFLICT", "input.model.name"),
        "archived version, new artifact": ("CONFLICT", "input.artifact.versionId"),
        "model externalId differs": ("CONFLICT", "input.model.externalId"),
        "model project differs": ("CONFLICT", "input.model.project"),
        "new model, externalId taken": ("CONFLICT", "input.model.externalId"),
        "new model, version externalId taken": ("CONFLICT", "input.version.externalId"),
        "new version, externalId taken": ("CONFLICT", "input.version.externalId"),
        "scoped, another project's model": ("FORBIDDEN", "input.model.name"),
        "scoped, new model elsewhere": ("FORBIDDEN", "input.model.project"),
        "artifact name taken": ("CONFLICT", "input.artifact.name"),
        "numbered, archived model": ("CONFLICT", "input.model.name"),
        "numbered, externalId taken": ("CONFLICT", "input.version.externalId"),
        "numbered, scoped elsewhere": ("FORBIDDEN", "input.model.name"),
    }
    assert outcomes["numbered, new model"]["version"]["name"] == "1"
    assert outcomes["numbered, next free number"]["version"]["name"] == "3"
    assert outcomes["numbered, counter set, past a gap"]["version"]["name"] == "4"
    taken = outcomes["new version, externalId taken"][3]
    assert taken == "a ModelVersion with externalId='xv1' already exists"


@pytest.mark.parametrize("artifact", [True, False])
@pytest.mark.parametrize("version", ["1", None])
def test_a_registration_is_one_query(
    settings: Settings, db: neo4j.Driver, artifact: bool, version: str | None
) -> None:
    data = _input("one", version, {"uri": "s3://one"} if artifact else None)

    async def work(store: Store) -> int:
        async def register(tx: Tx) -> int:
            with count_round_trips() as trips:
                await registration.register_in(tx, RegisterModel.model_validate(data), "input")
            return trips.count

        return await store.write(register)

    assert with_store(settings, work) == 1


def test_concurrent_named_registrations_of_one_new_model(
    settings: Settings, db: neo4j.Driver
) -> None:
    """Ten at once, each a new version of the same new model: one model, ten versions."""

    async def work(store: Store) -> list[bool]:
        await ensure_constraints(store)  # the server makes them; this test has none running
        done = await asyncio.gather(
            *(
                registration.register(
                    store, RegisterModel.model_validate(_input("race", str(i), {"uri": "s3://r"}))
                )
                for i in range(10)
            )
        )
        return [d.model_created for d in done]

    created = with_store(settings, work)
    assert sorted(created) == [False] * 9 + [True]
    [row] = db.execute_query(
        "MATCH (m:RegisteredModel {name: 'race'}) "
        "RETURN COUNT { (m)-[:HAS_VERSION]->() } AS versions, "
        "COUNT { (m)-[:HAS_VERSION]->()-[:HAS_ARTIFACT]->() } AS artifacts"
    ).records
    assert (row["versions"], row["artifacts"]) == (10, 10)


def test_what_a_named_registration_creates_shares_its_stamp(
    settings: Settings, db: neo4j.Driver
) -> None:
    """New nodes are created and updated at one stamp; a parent that gains a child is
    updated at that stamp too."""

    async def work(store: Store) -> None:
        for data in (
            _input("s", "1", {"uri": "s3://1"}),
            _input("s", "2"),
            _input("s", "2", {"name": "extra", "uri": "s3://e"}),
        ):
            await registration.register(store, RegisterModel.model_validate(data))

    with_store(settings, work)
    records, _, _ = db.execute_query(
        "MATCH (m:RegisteredModel {name: 's'})-[hv:HAS_VERSION]->(v) "
        "OPTIONAL MATCH (v)-[ha:HAS_ARTIFACT]->(a) "
        "RETURN m.createdAt AS mc, m.updatedAt AS mu, v.name AS v, v.createdAt AS vc, "
        "v.updatedAt AS vu, hv.since AS hv, a.name AS a, a.createdAt AS ac, "
        "a.updatedAt AS au, ha.since AS ha ORDER BY v, a"
    )
    first, second = (r.data() for r in records)
    # The first registration: model, version and artifact at one stamp.
    assert first["mc"] == first["vc"] == first["vu"] == first["hv"] == first["ac"]
    assert first["ac"] == first["au"] == first["ha"]
    # The second: a version, and the model updated when it was added.
    assert second["vc"] == second["hv"] == second["mu"] > second["mc"]
    # The third: an artifact of that version, which was updated when it was added.
    assert (second["a"], second["ac"]) == ("extra", second["au"])
    assert second["ac"] == second["ha"] == second["vu"] > second["vc"]


def test_a_scoped_registration_never_locks_another_project_s_model(
    settings: Settings, db: neo4j.Driver
) -> None:
    """While another transaction holds the model's lock, a registration by a token limited
    to other projects is refused at once: it does not wait for the lock to take it."""

    async def seed(store: Store) -> None:
        await registration.register(
            store,
            RegisterModel.model_validate(_input("theirs", "1", model_extra={"project": "p2"})),
        )

    with_store(settings, seed)

    async def attempt(store: Store) -> str:
        token = current_principal.set(SCOPED)
        try:
            await asyncio.wait_for(
                registration.register(
                    store, RegisterModel.model_validate(_input("theirs", "2", {"uri": "s3://x"}))
                ),
                timeout=10,
            )
        except RegistryError as error:
            return error.code
        finally:
            current_principal.reset(token)
        return "registered"

    with db.session() as session, session.begin_transaction() as held:
        held.run("MATCH (m:RegisteredModel {name: 'theirs'}) SET m._lock = true REMOVE m._lock")
        assert with_store(settings, attempt) == "FORBIDDEN"
        held.rollback()


def test_concurrent_numbered_registrations_of_one_model(
    settings: Settings, db: neo4j.Driver
) -> None:
    """Ten at once without a version name, against a new model and then an existing one:
    the model's lock numbers them 1-10 and 11-20, each once."""

    async def work(store: Store) -> list[str]:
        await ensure_constraints(store)
        names = []
        for _ in range(2):
            done = await asyncio.gather(
                *(
                    registration.register(
                        store, RegisterModel.model_validate(_input("counted", None))
                    )
                    for _ in range(10)
                )
            )
            names += [d.version.name for d in done]
        return names

    names = with_store(settings, work)
    assert sorted(names, key=int) == [str(i) for i in range(1, 21)]
    [row] = db.execute_query(
        "MATCH (m:RegisteredModel {name: 'counted'}) RETURN m.versionSeq AS seq"
    ).records
    assert row["seq"] == 20

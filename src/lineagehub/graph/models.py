"""RegisteredModel: create and look up by natural key."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from lineagehub.graph.commands import Command
from lineagehub.graph.entities import (
    EntityCreate,
    EntityUpdate,
    ShortText,
    Text,
    check_unique,
    create_keys,
    new_node,
    now,
)
from lineagehub.graph.identity import DEFAULT_PROJECT, check_project, in_scope, scope_params
from lineagehub.graph.listing import ListSpec, Sort
from lineagehub.graph.records import RegisteredModel
from lineagehub.graph.store import Store, Tx

Tag = Annotated[str, StringConstraints(min_length=1, max_length=128)]


Project = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class CatalogFields(Command):
    """What a model catalog shows about a model (the Kubeflow catalog's fields)."""

    readme: Text | None = None
    maturity: ShortText | None = None
    language: list[Tag] | None = Field(default=None, max_length=100)
    tasks: list[Tag] | None = Field(default=None, max_length=100)
    provider: ShortText | None = None
    logo: Text | None = None
    license_link: Text | None = None
    library_name: ShortText | None = None


class RegisteredModelCreate(EntityCreate, CatalogFields):
    project: Project = DEFAULT_PROJECT
    owner: ShortText | None = None
    task: ShortText | None = None
    license: ShortText | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=100)


class RegisteredModelUpdate(EntityUpdate, CatalogFields):
    owner: ShortText | None = None
    task: ShortText | None = None
    license: ShortText | None = None
    tags: list[Tag] | None = Field(default=None, max_length=100)


MODELS = ListSpec(
    label=RegisteredModel.LABEL,
    match="MATCH (n:RegisteredModel)",
    fields=RegisteredModel.FIELDS,
    default_sort=(Sort("name"),),
    indexed=frozenset({"createdAt", "name"}),
)


async def create_in(tx: Tx, command: RegisteredModelCreate, *, path: str) -> RegisteredModel:
    """Create a model inside ``tx``; CONFLICT naming the field when a unique key is taken."""
    check_project(command.project, f"{path}.project")
    props = new_node(RegisteredModel.LABEL, command, now())
    await check_unique(tx, create_keys(RegisteredModel, props, path))
    row = await tx.single(
        "CREATE (n:Node:RegisteredModel) SET n = $props RETURN n {.*} AS n", {"props": props}
    )
    tx.touch(props["id"], None, props)
    assert row is not None
    return RegisteredModel.from_props(row["n"])


async def create(store: Store, command: RegisteredModelCreate) -> RegisteredModel:
    return await store.write(lambda tx: create_in(tx, command, path="input"))


async def get_by_name(store: Store, name: str) -> RegisteredModel | None:
    rows = await store.read(
        f"MATCH (n:RegisteredModel {{name: $name}}) WHERE {in_scope('n')} RETURN n {{.*}} AS n",
        {"name": name, **scope_params()},
    )
    return RegisteredModel.from_props(rows[0]["n"]) if rows else None

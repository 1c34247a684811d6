"""Batch loaders: one Bolt query per nesting level, however many parents ask."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader

from lineagehub.graph import columns, entities, versions
from lineagehub.graph import lineage as graph_lineage
from lineagehub.graph.listing import (
    Filter,
    ListSpec,
    Page,
    PageResult,
    Sort,
    empty_page,
    fetch_pages,
)
from lineagehub.graph.records import Entity, ModelVersion
from lineagehub.graph.store import Store

E = TypeVar("E", bound=Entity)
V = TypeVar("V")


@dataclass(frozen=True)
class PageRequest:
    """One parent's page of one list, with the arguments that shape it."""

    spec: ListSpec
    parent_id: str | None
    flt: Filter | None
    sorts: tuple[Sort, ...]
    page: Page
    with_total: bool

    def group(self) -> str:
        # Requests that differ only by parent share one query.
        return repr(
            (self.spec.label, self.spec.match, self.flt, self.sorts, self.page, self.with_total)
        )


class Loaders:
    """This request's batch loaders, each made on first use: most requests need none or
    one, and a loader is a handful of objects referring to each other, which only the
    cycle collector frees."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._by_id: dict[type[Entity], DataLoader[str, Any]] = {}
        self._by_fn: dict[Any, DataLoader[str, Any]] = {}

    def release(self) -> None:
        """Drop every loader (each refers back to this object through its load function):
        for the end of the request, when none can be used any more."""
        self.__dict__.clear()

    @cached_property
    def pages(self) -> DataLoader[PageRequest, PageResult]:
        return DataLoader(self._load_pages, cache_key_fn=lambda r: (r.group(), r.parent_id))

    @cached_property
    def lineage(
        self,
    ) -> DataLoader[tuple[str, graph_lineage.LineageSpec], graph_lineage.Lineage | None]:
        return DataLoader(self._load_lineage)

    @cached_property
    def column_lineage(
        self,
    ) -> DataLoader[tuple[str, columns.ColumnSpec], columns.ColumnLineage | None]:
        return DataLoader(self._load_column_lineage)

    @cached_property
    def neighbours(self) -> DataLoader[tuple[str, graph_lineage.Hop], list[Entity]]:
        return DataLoader(self._load_neighbours)

    @cached_property
    def versions_ahead(
        self,
    ) -> DataLoader[
        tuple[str, tuple[graph_lineage.LineageSpec, ...]],
        tuple[ModelVersion, list[graph_lineage.Lineage]] | None,
    ]:
        """Versions by id with the lineage requests their selected shortcut fields make."""
        return DataLoader(self._load_versions_ahead)

    def by(
        self, fetch: Callable[[Store, list[str]], Awaitable[dict[str, V]]]
    ) -> DataLoader[str, V | None]:
        """A loader for a batch function ``fetch(store, ids) -> {id: value}`` (one per
        function per request); ids it does not answer load as None."""
        if fetch not in self._by_fn:

            async def load(keys: list[str]) -> list[V | None]:
                found = await fetch(self.store, keys)
                return [found.get(k) for k in keys]

            self._by_fn[fetch] = DataLoader(load)
        loader: DataLoader[str, V | None] = self._by_fn[fetch]
        return loader

    def by_id(self, record: type[E]) -> DataLoader[str, E | None]:
        if record not in self._by_id:

            async def load(node_ids: list[str]) -> list[E | None]:
                found = await entities.get_many(self.store, record, node_ids)
                return [found.get(i) for i in node_ids]

            self._by_id[record] = DataLoader(load)
        loader: DataLoader[str, E | None] = self._by_id[record]
        return loader

    async def _load_pages(self, requests: list[PageRequest]) -> list[PageResult]:
        groups: dict[str, list[PageRequest]] = defaultdict(list)
        for request in requests:
            groups[request.group()].append(request)
        answers: dict[tuple[str, str | None], PageResult] = {}
        for key, members in groups.items():
            first = members[0]
            parents = [m.parent_id for m in members if m.parent_id is not None]
            results = await fetch_pages(
                self.store,
                first.spec,
                parent_ids=parents if first.spec.parent_label else None,
                flt=first.flt,
                sorts=first.sorts,
                page=first.page,
                with_total=first.with_total,
            )
            for member in members:
                empty = empty_page(first.page)
                answers[key, member.parent_id] = results.get(member.parent_id, empty)
        return [answers[r.group(), r.parent_id] for r in requests]

    async def _load_lineage(
        self, keys: list[tuple[str, graph_lineage.LineageSpec]]
    ) -> list[graph_lineage.Lineage | None]:
        # Every request shape asked for at this level, in one query.
        found = await graph_lineage.lineages_of(self.store, _by_second(keys))
        return [found.get(key) for key in keys]

    async def _load_versions_ahead(
        self, keys: list[tuple[str, tuple[graph_lineage.LineageSpec, ...]]]
    ) -> list[tuple[ModelVersion, list[graph_lineage.Lineage]] | None]:
        found: dict[tuple[str, Any], tuple[ModelVersion, list[graph_lineage.Lineage]]] = {}
        for specs, version_ids in _by_second(keys).items():
            answers = await versions.get_many_with_lineage(self.store, version_ids, specs)
            for version_id, answer in answers.items():
                found[version_id, specs] = answer
        return [found.get(key) for key in keys]

    async def _load_column_lineage(
        self, keys: list[tuple[str, columns.ColumnSpec]]
    ) -> list[columns.ColumnLineage | None]:
        found: dict[tuple[str, columns.ColumnSpec], columns.ColumnLineage] = {}
        for spec, starts in _by_second(keys).items():
            for start, answer in (await columns.column_lineage(self.store, starts, spec)).items():
                found[start, spec] = answer
        return [found.get(key) for key in keys]

    async def _load_neighbours(
        self, keys: list[tuple[str, graph_lineage.Hop]]
    ) -> list[list[Entity]]:
        found: dict[tuple[str, graph_lineage.Hop], list[Entity]] = {}
        for hop, starts in _by_second(keys).items():
            for start, answer in (await graph_lineage.neighbours(self.store, starts, hop)).items():
                found[start, hop] = answer
        return [found.get(key, []) for key in keys]


K = TypeVar("K")


def _by_second(keys: list[tuple[str, K]]) -> dict[K, list[str]]:
    """Start ids grouped by the (hashable) shape of request they share: one query each."""
    groups: dict[K, list[str]] = defaultdict(list)
    for start, shape in keys:
        if start not in groups[shape]:
            groups[shape].append(start)
    return groups

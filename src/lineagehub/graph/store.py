"""The one transaction helper: every Cypher statement lineagehub runs goes through here.

It owns the process's single async driver, runs reads as one auto-commit query and each
mutation as one managed write transaction (both retried on transient failures),
maps driver failures to :mod:`lineagehub.graph.errors`, and counts Bolt queries per
request so tests can pin round trips the way Saleor pins SQL queries.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, TypeVar

import neo4j
from neo4j import AsyncGraphDatabase, AsyncManagedTransaction, RoutingControl
from neo4j import exceptions as neo4j_errors
from neo4j.time import Date, DateTime, Duration, Time

from lineagehub.graph import driver_compat
from lineagehub.graph.coalesce import Coalescer
from lineagehub.graph.errors import Conflict, RegistryError, Unavailable

T = TypeVar("T")
Row = dict[str, Any]


@dataclass
class RoundTrips:
    """Bolt queries sent on behalf of one request."""

    count: int = 0


_round_trips: ContextVar[RoundTrips | None] = ContextVar("lineagehub_round_trips", default=None)


class count_round_trips:  # noqa: N801 - used as a function: ``with count_round_trips() as n``
    """Count the Bolt queries run inside this block (and tasks started from it): the
    queries this request's reads and writes took part in. A keyed read that shared a
    query with other requests' counts one for each of them."""

    __slots__ = ("counter", "token")

    def __enter__(self) -> RoundTrips:
        self.counter = RoundTrips()
        self.token = _round_trips.set(self.counter)
        return self.counter

    def __exit__(self, *exc: object) -> None:
        _round_trips.reset(self.token)


def current_round_trips() -> int | None:
    """Bolt queries so far in the current counting block, or None outside one."""
    counter = _round_trips.get()
    return None if counter is None else counter.count


def _counted() -> None:
    counter = _round_trips.get()
    if counter is not None:
        counter.count += 1


def plain(value: Any) -> Any:
    """Driver values -> plain Python (temporal types become ``datetime`` & co.)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, DateTime | Date | Time):
        return value.to_native()
    if isinstance(value, Duration):
        return value
    return value


_CONSTRAINT_PROPERTY = re.compile(r"propert(?:y|ies) [`']?\(?`?([A-Za-z_.]+)")


def _translate(error: Exception) -> RegistryError:
    if isinstance(error, neo4j_errors.ConstraintError):
        match = _CONSTRAINT_PROPERTY.search(error.message or "")
        prop = match.group(1) if match else None
        what = f" of {prop!r}" if prop else ""
        return Conflict(f"this would duplicate a unique value{what}: {error.message}", field=prop)
    if isinstance(
        error,
        (
            neo4j_errors.ServiceUnavailable,
            neo4j_errors.SessionExpired,
            neo4j_errors.TransientError,
            neo4j_errors.ConnectionAcquisitionTimeoutError,
        ),
    ):
        return Unavailable(f"Neo4j is not available: {error}")
    raise error


# Reads retry what the driver calls retryable (a leader switch, a transient failure) for
# as long as its managed transactions would (max_transaction_retry_time), backing off
# exponentially with jitter: a read is safe to run again.
READ_RETRY_SECONDS = 15.0
READ_RETRY_DELAY = 0.05
READ_RETRY_MAX_DELAY = 1.0
# Keyed reads of one kind running at once per process before more wait to share one query
# (graph/coalesce.py; LINEAGEHUB_COALESCE_READS).
COALESCE_IN_FLIGHT = 1
REST_ID_BLOCK = 32
BULK_REST_ID_BLOCKS = 4
# The counter never hands out an id at or below one in use (a bulk load may number its own
# nodes); finding the highest costs two index lookups, once per block.
RESERVE_REST_IDS = (
    "CALL () { "
    "  MATCH (n:Node) WHERE n.restId IS NOT NULL "
    "  RETURN n.restId AS top ORDER BY top DESC LIMIT 1 "
    "  UNION "
    "  MATCH (n:RunLog) WHERE n.restId IS NOT NULL "
    "  RETURN n.restId AS top ORDER BY top DESC LIMIT 1 "
    "} "
    "WITH coalesce(max(top), 0) AS top "
    "MERGE (s:Sequence {name: 'restId'}) "
    "ON CREATE SET s.value = top "
    "SET s.value = CASE WHEN top > s.value THEN top ELSE s.value END + $count "
    "RETURN s.value - $count + 1 AS first"
)


@dataclass(frozen=True)
class Change:
    """What a write did to one node: properties before and after (None: created/deleted)."""

    target_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class Tx:
    """A write transaction: every ``run`` is one counted Bolt query in the same transaction.

    Operations ``touch`` what they change; the store's commit hooks (the audit trail) see
    those changes and write in the same transaction.
    """

    def __init__(self, tx: AsyncManagedTransaction, store: Store | None = None) -> None:
        self._tx = tx
        self.store = store
        self.changes: list[Change] = []
        # How many registry events the commit hook wrote (``events``).
        self.registry_events = 0

    def touch(
        self,
        target_id: str,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> None:
        self.changes.append(Change(target_id, before, after))

    async def run(
        self, query: str, params: Mapping[str, Any] | None = None, *, raw: bool = False
    ) -> list[Row]:
        """The rows of ``query``; ``raw`` as for ``Store.read`` (maps, lists, scalars only)."""
        _counted()
        result = await self._tx.run(query, dict(params or {}))
        records = [r async for r in result]
        if raw:
            return [dict(zip(record.keys(), record.values(), strict=True)) for record in records]
        return [plain(record.data()) for record in records]

    async def single(
        self, query: str, params: Mapping[str, Any] | None = None, *, raw: bool = False
    ) -> Row | None:
        rows = await self.run(query, params, raw=raw)
        return rows[0] if rows else None


def _default_hooks() -> list[Callable[[Tx], Awaitable[None]]]:
    # Every store audits its writes and numbers its new nodes (one query for both);
    # imported late because audit builds on this module.
    from lineagehub.graph.audit import finish

    return [finish]


class Store:
    """One driver per process, reads and writes against one database."""

    def __init__(
        self,
        driver: neo4j.AsyncDriver,
        database: str,
        before_commit: list[Callable[[Tx], Awaitable[None]]] | None = None,
    ) -> None:
        self.driver = driver
        self.database = database
        self.before_commit = before_commit if before_commit is not None else _default_hooks()
        self._rest_ids = (0, 0)  # the block of REST ids this process holds: [next, end)
        self.read_retry_seconds = READ_RETRY_SECONDS
        self._rest_lock = asyncio.Lock()
        self.coalescer = Coalescer(self._batch_read, in_flight=COALESCE_IN_FLIGHT)
        # Awaited after a write that added registry events commits (``events.Numberer``).
        self.after_registry_events: Callable[[], Awaitable[None]] | None = None

    @classmethod
    def connect(cls, uri: str, *, user: str | None, password: str | None, database: str) -> Store:
        driver_compat.install()  # socket reads that find their bytes buffered: no timer
        auth = (user, password) if user and password is not None else None
        driver = AsyncGraphDatabase.driver(
            uri,
            auth=auth,
            max_connection_pool_size=100,
            connection_acquisition_timeout=30.0,
            max_transaction_retry_time=READ_RETRY_SECONDS,
            # Our queries are reviewed; server hints (e.g. a label not created yet) are noise.
            notifications_min_severity="OFF",
        )
        return cls(driver, database)

    async def close(self) -> None:
        await self.coalescer.close()
        await self.driver.close()

    async def read(
        self,
        query: str,
        params: Mapping[str, Any] | None = None,
        *,
        counted: bool = True,
        raw: bool = False,
    ) -> list[Row]:
        """One read query, routed to a reader, causally after this process's writes.

        ``counted=False`` is for per-request overhead (authentication), which is not part of
        what a GraphQL operation costs. ``raw=True`` skips turning driver values into plain
        Python, for queries that return only maps, lists and scalars (``node_map``)."""
        if counted:
            _counted()
        params = dict(params or {})
        deadline = time.monotonic() + self.read_retry_seconds
        delay = READ_RETRY_DELAY
        while True:
            try:
                records = await self._auto_commit_read(query, params)
                break
            except (neo4j_errors.Neo4jError, neo4j_errors.DriverError) as error:
                if not error.is_retryable() or time.monotonic() + delay > deadline:
                    raise _translate(error) from error
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, READ_RETRY_MAX_DELAY)
        if raw:
            return [dict(zip(record.keys(), record.values(), strict=True)) for record in records]
        return [plain(record.data()) for record in records]

    async def read_keyed(
        self,
        query: str,
        params: Mapping[str, Any],
        keys: Sequence[Mapping[str, Any]],
        *,
        raw: bool = False,
        max_batch: int | None = None,
    ) -> list[list[Row]]:
        """The rows of a keyed ``query`` (``coalesce.KEYED``) for each of ``keys``, in
        order: one read, which may share its Bolt query with other requests' reads of the
        same kind (``graph/coalesce.py``; ``max_batch`` keys at most). Counted as one
        round trip of this request."""
        if keys:
            _counted()
        return await self.coalescer.fetch(query, params, keys, raw=raw, max_batch=max_batch)

    async def _batch_read(self, query: str, params: dict[str, Any], raw: bool) -> list[Row]:
        return await self.read(query, params, counted=False, raw=raw)

    async def _auto_commit_read(self, query: str, params: dict[str, Any]) -> list[neo4j.Record]:
        # An auto-commit query is one network round trip (RUN and PULL pipelined); the
        # driver's execute_query wraps it in BEGIN ... COMMIT, a second round trip that
        # costs ~0.25 ms a read. The shared bookmark manager keeps reads causally after
        # this process's writes, as execute_query does.
        async with self.driver.session(
            database=self.database,
            bookmark_manager=self.driver.execute_query_bookmark_manager,
            default_access_mode=neo4j.READ_ACCESS,
        ) as session:
            result = await session.run(query, params)
            return (await result.to_eager_result()).records

    async def write(self, work: Callable[[Tx], Awaitable[T]]) -> T:
        """Run ``work`` in one managed write transaction: all of it commits, or none of it."""

        attempt: list[Tx] = []

        async def unit(tx: AsyncManagedTransaction) -> T:
            wrapped = Tx(tx, self)
            attempt[:] = [wrapped]
            result = await work(wrapped)
            for hook in self.before_commit:
                await hook(wrapped)
            return result

        try:
            async with self.driver.session(
                database=self.database,
                bookmark_manager=self.driver.execute_query_bookmark_manager,
            ) as session:
                # BEGIN goes with the first query: one round trip less per write.
                with driver_compat.pipelined_begin(session):
                    result = await session.execute_write(unit)
        except (neo4j_errors.Neo4jError, neo4j_errors.DriverError) as error:
            raise _translate(error) from error
        if attempt and attempt[0].registry_events and self.after_registry_events is not None:
            await self.after_registry_events()  # committed: numbered before the answer
        return result

    async def reserve_rest_ids(self, count: int) -> int:
        """``count`` consecutive REST ids (the first returned) from this process's block.

        Blocks come from the one counter node in short transactions of their own, so no
        write transaction ever waits on the counter: ids grow with creation within a
        process, and by blocks across worker processes. Not counted as a round trip (one
        per ``REST_ID_BLOCK`` new nodes).
        """
        async with self._rest_lock:
            first, end = self._rest_ids
            if end - first < count:
                # A bulk write reserves for the next few of its size too: a counter
                # transaction of its own costs about as much as numbering the nodes.
                size = max(count * BULK_REST_ID_BLOCKS, REST_ID_BLOCK)
                first = await self._reserve_block(size)
                end = first + size
            self._rest_ids = (first + count, end)
            return first

    def drop_rest_ids(self) -> None:
        """Forget the current block (some of its ids were found in use)."""
        self._rest_ids = (0, 0)

    async def _reserve_block(self, size: int) -> int:
        """The first of ``size`` ids taken from the counter (created above all in use)."""
        try:
            records, _, _ = await self.driver.execute_query(
                RESERVE_REST_IDS,
                {"count": size},
                database_=self.database,
                routing_=RoutingControl.WRITE,
            )
        except (neo4j_errors.Neo4jError, neo4j_errors.DriverError) as error:
            raise _translate(error) from error
        first: int = records[0]["first"]
        return first

    async def ensure_rest_counter(self) -> None:
        """Create the REST id counter if it is missing (start-up: no racing creators later)."""
        await self._reserve_block(0)

    async def ping(self) -> None:
        await self.read("RETURN 1 AS ok")


# --- node projection -------------------------------------------------------------------
#
# The driver turns each Neo4j DATETIME into a neo4j.time.DateTime in pure Python, about ten
# times slower than reading the same instant as an ISO string and parsing it with
# datetime.fromisoformat. Large answers (lineage subgraphs, pages) therefore project nodes
# with temporal values as strings, and name which keys were temporal.


def node_map(var: str, *, skip: bool = False) -> str:
    """A Cypher map of node ``var``: labels, property keys and values, temporal keys.

    ``skip``: leave out the properties whose names start with one of ``$skipProps`` (big
    values the caller will not show, e.g. a run's metric histories), and, when
    ``$keepProps`` is not null, those that start with none of its names.

    Each property kept is read from the store once (all of them as one map, without
    ``skip``; with it, each kept one as a [name, value] pair, never a skipped one), and
    then looked at: reading ``var[prop]`` for each type test read the store again each
    time (~17 us of Neo4j's CPU per node)."""
    is_instant = "{v} IS :: ZONED DATETIME"
    is_instants = "{v} IS :: LIST<ZONED DATETIME NOT NULL>"
    value = (
        f"CASE WHEN {is_instant} THEN toString({{v}}) "
        f"WHEN {is_instants} THEN [t IN {{v}} | toString(t)] ELSE {{v}} END"
    )
    temporal = f"({is_instant} OR {is_instants})"
    bound = f"_p_{var.replace('.', '_')}"
    if not skip:
        at = f"{bound}[prop]"
        return (
            f"[{bound} IN [properties({var})] | "
            f"{{labels: labels({var}), keys: keys({bound}), "
            f"values: [prop IN keys({bound}) | {value.format(v=at)}], "
            f"temporal: [prop IN keys({bound}) WHERE {temporal.format(v=at)}]}}][0]"
        )
    kept = (
        f"[prop IN keys({var}) WHERE NOT any(s IN $skipProps WHERE prop STARTS WITH s) "
        "AND ($keepProps IS NULL OR any(k IN $keepProps WHERE prop STARTS WITH k)) "
        f"| [prop, {var}[prop]]]"
    )
    return (
        f"[{bound} IN [{kept}] | "
        f"{{labels: labels({var}), keys: [e IN {bound} | e[0]], "
        f"values: [e IN {bound} | {value.format(v='e[1]')}], "
        f"temporal: [e IN {bound} WHERE {temporal.format(v='e[1]')} | e[0]]}}][0]"
    )


_PROPERTY_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def node_values(var: str, columns: tuple[str, ...], temporal: frozenset[str]) -> str:
    """A Cypher list ``[labels, value of each column...]`` for node ``var``: the cheapest
    projection when the properties wanted are known names (the ``temporal`` ones as ISO
    text; absent ones as null). Column names come from code, and are checked anyway."""
    values = []
    for name in columns:
        if not _PROPERTY_NAME.fullmatch(name):
            raise ValueError(f"not a property name: {name!r}")
        value = f"{var}.`{name}`"
        values.append(f"toString({value})" if name in temporal else value)
    return f"[labels({var}), {', '.join(values)}]"


# Decodes a node_values projection found at ``row[at:]``: (labels, properties).
ValuesDecoder = Callable[[list[Any], int], tuple[list[str], dict[str, Any]]]


@lru_cache(maxsize=256)
def values_decoder(columns: tuple[str, ...], temporal: frozenset[str]) -> ValuesDecoder:
    """How a ``node_values(var, columns, temporal)`` projection reads back."""
    instants = [name for name in columns if name in temporal]

    def decoded(row: list[Any], at: int) -> tuple[list[str], dict[str, Any]]:
        props = dict(zip(columns, row[at + 1 :], strict=True))
        for name in instants:
            value = props[name]
            if value is not None:
                props[name] = iso(value)
        return row[at], props

    return decoded


def node_projection(
    var: str, columns: tuple[str, ...] | None, temporal: frozenset[str]
) -> tuple[str, Callable[[Any], dict[str, Any]]]:
    """Cypher projecting node ``var`` with every property (``node_map``) or, given
    ``columns``, only those (``node_values``), and how to read its properties back."""
    if columns is None:
        return node_map(var), _mapped_props
    values = values_decoder(columns, temporal)

    def listed_props(row: Any) -> dict[str, Any]:
        props: dict[str, Any] = values(row, 0)[1]
        return props

    return node_values(var, columns, temporal), listed_props


def _mapped_props(projected: Any) -> dict[str, Any]:
    return decode_node(projected)[1]


def iso(text: str) -> datetime:
    # A named zone prints as "...+01:00[Europe/Paris]"; the offset alone is the instant.
    if text.endswith("]"):
        text = text[: text.index("[")]
    return datetime.fromisoformat(text)


def _instant(value: Any) -> Any:
    if isinstance(value, list):
        return [iso(v) for v in value]
    return iso(value)


def decode_node(projected: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """(labels, properties) of a ``node_map`` projection, temporal values as datetimes."""
    props = dict(zip(projected["keys"], projected["values"], strict=True))
    for key in projected["temporal"]:
        props[key] = _instant(props[key])
    return projected["labels"], props


def instant(value: str | None) -> datetime | None:
    """A temporal value projected with ``toString`` back as a datetime."""
    return iso(value) if value is not None else None

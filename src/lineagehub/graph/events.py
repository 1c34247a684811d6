"""Registry events: a gap-free, ordered log of what happened to models, versions, aliases
and services, for subscriptions and webhooks.

Events are not emitted by hand at each write path: they are read off the changes a
transaction recorded for its audit event (``Tx.touch``), in the commit hook that writes
that audit event, so every path that changes the registry (GraphQL, the Kubeflow REST
edge, bulk registration, governance) produces them, and none can forget to.

Events are written unnumbered; a numbering transaction (``Numberer``) then gives every
event committed so far the next numbers from one counter node, holding the counter's lock
to its end. So numbers follow the order events became visible, and a reader that sees
event N has every event below N too: a consumer that asks for ``seq > last`` never misses
one, and can resume from the last number it handled. Writers do not queue on the counter:
the events of writers that commit meanwhile are numbered together by the next pass.

An event keeps the names of what it concerns as they were when it happened (model and
version names, the service's name) and the project it belongs to, so a scoped reader sees
only the events of their projects.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from lineagehub.graph import ids
from lineagehub.graph.errors import Expired, Unavailable, ValidationFailed
from lineagehub.graph.identity import in_scope, now, scope_params
from lineagehub.graph.store import Change, Store, _round_trips

log = logging.getLogger("lineagehub.events")


class EventType(Enum):
    MODEL_REGISTERED = "MODEL_REGISTERED"
    MODEL_ARCHIVED = "MODEL_ARCHIVED"
    MODEL_RESTORED = "MODEL_RESTORED"
    MODEL_DELETED = "MODEL_DELETED"
    VERSION_REGISTERED = "VERSION_REGISTERED"
    VERSION_APPROVAL_REQUESTED = "VERSION_APPROVAL_REQUESTED"
    VERSION_APPROVED = "VERSION_APPROVED"
    VERSION_REJECTED = "VERSION_REJECTED"
    VERSION_ARCHIVED = "VERSION_ARCHIVED"
    VERSION_RESTORED = "VERSION_RESTORED"
    VERSION_DELETED = "VERSION_DELETED"
    ALIAS_MOVED = "ALIAS_MOVED"
    VERSION_DEPLOYED = "VERSION_DEPLOYED"
    SERVICE_UNDEPLOYED = "SERVICE_UNDEPLOYED"
    DEPLOYMENT_STATE_CHANGED = "DEPLOYMENT_STATE_CHANGED"


_APPROVALS = {
    "PENDING": EventType.VERSION_APPROVAL_REQUESTED,
    "APPROVED": EventType.VERSION_APPROVED,
    "REJECTED": EventType.VERSION_REJECTED,
}
_ALIAS_KEY = "alias:"

# The properties an event node may carry (besides seq, id, type and what the audit event
# gives: at, actor, requestId, auditEventId).
SUBJECT_KEYS = (
    "modelId",
    "versionId",
    "serviceId",
    "deploymentId",
    "alias",
    "previousVersionId",
    "fromState",
    "toState",
)


@dataclass
class _Fold:
    """All of one transaction's changes to one node: created, and each property's first
    value before and last value after."""

    label: str
    created: dict[str, Any] | None = None
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)

    def add(self, change: Change) -> None:
        if change.before is None and change.after is not None:
            if change.after.get("id") == change.target_id and self.created is None:
                self.created = change.after
                return
            if "edge" in change.after:  # an edge added or closed: not a property
                return
        for key in (change.before or {}).keys() | (change.after or {}).keys():
            if key not in self.before:
                self.before[key] = (change.before or {}).get(key)
            self.after[key] = (change.after or {}).get(key)

    def moved(self, key: str) -> tuple[Any, Any] | None:
        """(before, after) of ``key`` when this transaction changed it."""
        if key not in self.after or self.before.get(key) == self.after[key]:
            return None
        return self.before.get(key), self.after[key]


def _folds(changes: list[Change]) -> dict[str, _Fold]:
    folds: dict[str, _Fold] = {}
    for change in changes:
        fold = folds.get(change.target_id)
        if fold is None:
            try:
                label = ids.label_of(change.target_id)
            except ValidationFailed:
                continue
            fold = folds[change.target_id] = _Fold(label)
        fold.add(change)
    return folds


def _event(kind: EventType, **subject: Any) -> dict[str, Any]:
    return {
        "id": ids.new_id("RegistryEvent"),
        "type": kind.value,
        **{k: v for k, v in subject.items() if v is not None},
    }


def _state_events(
    node_id: str, fold: _Fold, kinds: tuple[EventType, EventType, EventType], key: str
) -> list[dict[str, Any]]:
    archived, restored, deleted = kinds
    events = []
    state = fold.moved("state")
    if state is not None:
        kind = archived if state[1] == "ARCHIVED" else restored
        events.append(_event(kind, **{key: node_id}, fromState=state[0], toState=state[1]))
    gone = fold.moved("deleted")
    if gone is not None and gone[1]:
        events.append(_event(deleted, **{key: node_id}))
    return events


def derive(changes: list[Change]) -> list[dict[str, Any]]:
    """The registry events a transaction's changes amount to, in the order it made them."""
    folds = _folds(changes)
    events: list[dict[str, Any]] = []
    for node_id, fold in folds.items():
        if fold.label == "RegisteredModel":
            if fold.created is not None:
                events.append(_event(EventType.MODEL_REGISTERED, modelId=node_id))
                continue
            events += _state_events(
                node_id,
                fold,
                (EventType.MODEL_ARCHIVED, EventType.MODEL_RESTORED, EventType.MODEL_DELETED),
                "modelId",
            )
            for key in fold.after:
                moved = fold.moved(key) if key.startswith(_ALIAS_KEY) else None
                if moved is not None:
                    events.append(
                        _event(
                            EventType.ALIAS_MOVED,
                            modelId=node_id,
                            alias=key[len(_ALIAS_KEY) :],
                            versionId=moved[1],
                            previousVersionId=moved[0],
                        )
                    )
        elif fold.label == "ModelVersion":
            if fold.created is not None:
                events.append(
                    _event(
                        EventType.VERSION_REGISTERED,
                        versionId=node_id,
                        modelId=fold.created.get("modelId"),
                    )
                )
                continue
            approval = fold.moved("approvalStatus")
            if approval is not None and approval[1] in _APPROVALS:
                events.append(
                    _event(
                        _APPROVALS[approval[1]],
                        versionId=node_id,
                        fromState=approval[0] or "NONE",
                        toState=approval[1],
                    )
                )
            events += _state_events(
                node_id,
                fold,
                (EventType.VERSION_ARCHIVED, EventType.VERSION_RESTORED, EventType.VERSION_DELETED),
                "versionId",
            )
        elif fold.label == "Deployment":
            if fold.created is not None:
                service_id = fold.created.get("serviceId")
                service = folds.get(service_id) if service_id else None
                served = service.moved("servedVersionId") if service is not None else None
                events.append(
                    _event(
                        EventType.VERSION_DEPLOYED,
                        deploymentId=node_id,
                        serviceId=service_id,
                        versionId=fold.created.get("versionId"),
                        previousVersionId=served[0] if served is not None else None,
                        toState=fold.created.get("deploymentState"),
                    )
                )
                continue
            state = fold.moved("deploymentState")
            if state is not None:
                events.append(
                    _event(
                        EventType.DEPLOYMENT_STATE_CHANGED,
                        deploymentId=node_id,
                        fromState=state[0],
                        toState=state[1],
                    )
                )
        elif fold.label == "InferenceService" and fold.created is None:
            served = fold.moved("servedVersionId")
            if served is not None and served[0] is not None and served[1] is None:
                events.append(
                    _event(
                        EventType.SERVICE_UNDEPLOYED, serviceId=node_id, previousVersionId=served[0]
                    )
                )
    return events


# Runs inside the audit statement (``audit.audit_statement``), after its AuditEvent ``e``
# is written: numbers the events from the counter and fills in names and project from the
# nodes they concern.
WRITE_EVENTS = (
    "CALL (e) { "
    "UNWIND range(0, size($registryEvents) - 1) AS i "
    "WITH e, i, $registryEvents[i] AS ev "
    "OPTIONAL MATCH (d:Node:Deployment {id: ev.deploymentId}) "
    "WITH e, i, ev, d, coalesce(ev.serviceId, d.serviceId) AS serviceId, "
    "     coalesce(ev.versionId, d.versionId) AS versionId "
    "OPTIONAL MATCH (svc:Node:InferenceService {id: serviceId}) "
    "OPTIONAL MATCH (v:Node:ModelVersion {id: versionId}) "
    "WITH e, i, ev, serviceId, versionId, svc, v, "
    "     coalesce(ev.modelId, v.modelId, svc.modelId) AS modelId "
    "OPTIONAL MATCH (m:Node:RegisteredModel {id: modelId}) "
    "OPTIONAL MATCH (pv:Node:ModelVersion {id: ev.previousVersionId}) "
    # Unnumbered: the numbering transaction (``NUMBER``) gives it its seq.
    "CREATE (r:RegistryEvent:Unnumbered) "
    "SET r = ev, r.ord = i, r.at = e.at, r.actor = e.actor, r.auditEventId = e.id, "
    "    r.requestId = e.requestId, r.serviceId = serviceId, "
    "    r.serviceName = coalesce(svc.deletedName, svc.name), "
    # A tombstone's name is its id; what it was called is kept as deletedName.
    "    r.versionId = versionId, r.versionName = coalesce(v.deletedName, v.name), "
    "    r.modelId = modelId, r.modelName = coalesce(m.deletedName, m.name), "
    "    r.previousVersionName = coalesce(pv.deletedName, pv.name), "
    "    r.project = CASE WHEN serviceId IS NULL THEN m.project "
    "                     ELSE coalesce(svc.project, m.project) END "
    "}"
)

# Numbers the events committed so far, in one transaction that holds the counter's lock to
# its end: the next one numbers after it, so a reader that finds event N has every event
# below N (numbered by this transaction or an earlier one). Among the events found
# together, the order they were written in.
NUMBER = (
    # Should the counter be gone while events remain, it starts again above them.
    # (seq > 0: a seek at the end of the index, not a scan of every event.)
    "OPTIONAL CALL () { MATCH (old:RegistryEvent) WHERE old.seq > 0 "
    "  RETURN old.seq AS top ORDER BY old.seq DESC LIMIT 1 } "
    # (Or above the deleted ones, should every event kept have gone.)
    "OPTIONAL MATCH (gone:Sequence {name: 'registryEventPruned'}) "
    "WITH CASE WHEN coalesce(top, 0) > coalesce(gone.value, 0) THEN top "
    "     ELSE coalesce(gone.value, 0) END AS top "
    "MERGE (s:Sequence {name: 'registryEvent'}) "
    # A new counter is a new log (its id tells a wiped database from a restored one).
    "ON CREATE SET s.value = top, s.log = randomUUID() "
    # Locked first, then the events are looked for: none is numbered twice.
    "SET s._lock = true REMOVE s._lock "
    "WITH s "
    "OPTIONAL CALL (s) { "
    "  MATCH (r:Unnumbered) "
    "  RETURN r ORDER BY r.at, r.auditEventId, r.ord LIMIT $batch "
    "} "
    "WITH s, collect(r) AS found "
    "CALL (s, found) { "
    "  UNWIND range(0, size(found) - 1) AS i "
    "  WITH s, found[i] AS r, i "
    "  SET r.seq = s.value + i + 1 REMOVE r:Unnumbered "
    "} "
    "SET s.value = s.value + size(found) "
    "RETURN size(found) AS numbered"
)
_ANY_UNNUMBERED = "RETURN EXISTS { MATCH (:Unnumbered) } AS waiting"
NUMBER_BATCH = 1000
# How often a process deletes the events older than the retention (the first time about
# 10 s after it starts).
PRUNE_SECONDS = 300.0


class Numberer:
    """One per process: numbers committed events (``NUMBER``). A write that made events
    waits for a numbering pass that started after its commit (``after_commit``), so its
    writer reads its own events in the log at once; the writes that commit meanwhile are
    numbered together by the next pass, so concurrent writers share numbering
    transactions instead of queueing on the counter one commit at a time. Events a process
    left unnumbered (it died between its commit and the pass) are numbered by any process
    within ``poll_seconds``."""

    def __init__(
        self,
        store: Store,
        *,
        poll_seconds: float = 2.0,
        retention: timedelta | None = None,
        prune_seconds: float | None = None,
    ) -> None:
        self.store = store
        self.poll_seconds = poll_seconds
        # Events older than this are deleted, every prune_seconds (None: kept for good).
        self.retention = retention
        self.prune_seconds = PRUNE_SECONDS if prune_seconds is None else prune_seconds
        self._pruned_at = time.monotonic() - self.prune_seconds + min(self.prune_seconds, 10.0)
        self.on_numbered: list[Callable[[], None]] = []
        self._asked = 0  # passes asked for (one per commit with events)
        self._done = 0  # every commit up to this ask has been numbered
        self._running: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._poller = asyncio.create_task(self._poll(), name="registry-event-numbering")

    async def close(self) -> None:
        for task in (self._poller, self._running):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._poller = self._running = None

    async def after_commit(self) -> None:
        """Returns once the events of a transaction committed before this call are
        numbered (or numbering failed: they are numbered later, the write stands)."""
        self._asked += 1
        ticket = self._asked
        while self._done < ticket:
            running = self._running
            if running is None or running.done():
                running = self._running = asyncio.create_task(self._pass(self._asked))
            try:
                await asyncio.shield(running)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("could not number registry events yet", exc_info=True)
                return

    async def _pass(self, covers: int) -> None:
        # Shared work, not the round trips of whichever request started it.
        _round_trips.set(None)
        numbered = 0
        while True:
            row = await self.store.write(lambda tx: tx.single(NUMBER, {"batch": NUMBER_BATCH}))
            count = row["numbered"] if row else 0
            numbered += count
            if count < NUMBER_BATCH:
                break
        self._done = max(self._done, covers)
        if numbered:
            for wake in self.on_numbered:
                wake()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                rows = await self.store.read(_ANY_UNNUMBERED, counted=False)
                if rows[0]["waiting"]:
                    await self.after_commit()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("could not look for unnumbered registry events", exc_info=True)
            if self.retention is not None and (
                time.monotonic() - self._pruned_at >= self.prune_seconds
            ):
                self._pruned_at = time.monotonic()
                if await self._prune(self.retention) == PRUNE_BATCH:
                    # More to go: the next batch at the next poll, not all at once (a
                    # backlog must not hold up the numbering of left-over events).
                    self._pruned_at -= self.prune_seconds

    async def _prune(self, retention: timedelta) -> int:
        _round_trips.set(None)
        try:
            deleted = await prune_batch(self.store, now() - retention)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("could not delete old registry events", exc_info=True)
            return 0
        if deleted:
            log.info("deleted %d registry events older than %s", deleted, retention)
        return deleted


@dataclass(frozen=True)
class RegistryEvent:
    """One event, as stored."""

    seq: int
    id: str
    type: EventType
    at: datetime
    actor: str
    request_id: str | None
    audit_event_id: str
    project: str | None
    model_id: str | None
    model_name: str | None
    version_id: str | None
    version_name: str | None
    service_id: str | None
    service_name: str | None
    deployment_id: str | None
    alias: str | None
    previous_version_id: str | None
    previous_version_name: str | None
    from_state: str | None
    to_state: str | None

    @classmethod
    def of(cls, props: dict[str, Any]) -> RegistryEvent:
        return cls(
            seq=props["seq"],
            id=props["id"],
            type=EventType(props["type"]),
            at=props["at"],
            actor=props["actor"],
            request_id=props.get("requestId"),
            audit_event_id=props["auditEventId"],
            project=props.get("project"),
            model_id=props.get("modelId"),
            model_name=props.get("modelName"),
            version_id=props.get("versionId"),
            version_name=props.get("versionName"),
            service_id=props.get("serviceId"),
            service_name=props.get("serviceName"),
            deployment_id=props.get("deploymentId"),
            alias=props.get("alias"),
            previous_version_id=props.get("previousVersionId"),
            previous_version_name=props.get("previousVersionName"),
            from_state=props.get("fromState"),
            to_state=props.get("toState"),
        )

    def payload(self) -> dict[str, Any]:
        """The event as JSON (webhook bodies): camelCase keys, nulls left out."""
        body: dict[str, Any] = {
            "seq": self.seq,
            "id": self.id,
            "type": self.type.value,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "requestId": self.request_id,
            "auditEventId": self.audit_event_id,
            "project": self.project,
            "modelId": self.model_id,
            "modelName": self.model_name,
            "versionId": self.version_id,
            "versionName": self.version_name,
            "serviceId": self.service_id,
            "serviceName": self.service_name,
            "deploymentId": self.deployment_id,
            "alias": self.alias,
            "previousVersionId": self.previous_version_id,
            "previousVersionName": self.previous_version_name,
            "fromState": self.from_state,
            "toState": self.to_state,
        }
        return {k: v for k, v in body.items() if v is not None}


# --- reading the log -----------------------------------------------------------------------

# The counter first: every event numbered up to it has committed (see above), so a page
# read below it has no holes, and its end is a cursor that skips nothing.
# Neo4j does not promise that a reader sees all of a committing transaction at once: the
# counter may show N a moment before event N is found by its number. So the end of the
# log is the newest event found at or below the counter (N-1 found means every event
# below it is, as the transaction that wrote N-1 had finished before N was numbered).
_PAGE = (
    "OPTIONAL MATCH (s:Sequence {name: 'registryEvent'}) "
    "WITH coalesce(s.value, 0) AS head, s.log AS log "
    "OPTIONAL CALL (head) { "
    "  MATCH (last:RegistryEvent) WHERE last.seq <= head "
    "  RETURN last.seq AS visible ORDER BY last.seq DESC LIMIT 1 "
    "} "
    "OPTIONAL CALL (head) { "
    "  MATCH (r:RegistryEvent) WHERE $after < r.seq <= head {where} "
    "  RETURN r ORDER BY r.seq LIMIT $limit "
    "} "
    "WITH head, log, visible, collect(properties(r)) AS events "
    # Read after the events (behind the aggregation): a pruning that commits between the
    # two shows here, so events deleted before this read found them are never a silent
    # gap (at worst a page that had them is called expired).
    "OPTIONAL MATCH (gone:Sequence {name: 'registryEventPruned'}) "
    "RETURN head, log, coalesce(gone.value, 0) AS pruned, coalesce(visible, 0) AS visible, "
    "events"
)


def _seq(event: RegistryEvent) -> int:
    return event.seq


@dataclass(frozen=True)
class Page:
    """Events after a cursor, and the cursor to read on from."""

    events: list[RegistryEvent]
    head: int  # the counter: the newest number given
    end: int  # the newest event found at or below it
    has_more: bool
    log: str | None = None  # the counter's id: another one, another log
    pruned: int = 0  # every event up to this number was deleted (retention)

    def expired(self, after: int) -> bool:
        """Whether a reader resuming after ``after`` missed events (``missed``)."""
        return missed(after, self.pruned)

    def cursor(self, after: int) -> int:
        """Where the next read starts: past the last event given, or past everything
        there was (the filtered-out events included) when this page is the last."""
        if self.has_more:
            return self.events[-1].seq
        return max(after, self.end, self.events[-1].seq if self.events else 0)


def missed(after: int, pruned: int) -> bool:
    """Whether events right after ``after`` were deleted before they were read: a reader
    that has handled up to ``after`` (0: none yet, which reads from the oldest kept)
    missed some."""
    return 0 < after < pruned


def expired(after: int, pruned: int, field: str = "afterSeq") -> Expired:
    """EXPIRED: a reader resuming after ``after`` missed events up to ``pruned``."""
    return Expired(
        f"events {after + 1} to {pruned} were deleted before they were read (older than the "
        f"retention); start again from afterSeq {pruned} (or 0: the oldest kept), knowing "
        "that those were missed",
        field=field,
        details={"prunedSeq": pruned},
    )


def check_resume(after: int | None, head: int, pruned: int, field: str = "afterSeq") -> None:
    """Refuse to resume after ``after`` (None: from now on, always fine) when it is beyond
    the newest event ``head`` (VALIDATION) or events after it were deleted (EXPIRED)."""
    if after is None:
        return
    if after > head:
        raise ValidationFailed(
            f"afterSeq {after} is beyond the newest event, {head} (was the database restored?)",
            field=field,
        )
    if missed(after, pruned):
        raise expired(after, pruned, field)


async def page(
    store: Store,
    after: int,
    limit: int,
    *,
    types: list[EventType] | None = None,
    model: str | None = None,
    project: str | None = None,
    scoped: bool = True,
) -> Page:
    """Up to ``limit`` events numbered above ``after``, oldest first, that are of one of
    ``types``, about ``model``, in ``project`` (each when given) and in the caller's
    projects (unless not ``scoped``)."""
    where = ""
    params: dict[str, Any] = {"after": after, "limit": limit + 1}
    if types is not None:
        where += " AND r.type IN $types"
        params["types"] = [t.value for t in types]
    if model is not None:
        where += " AND r.modelName = $model"
        params["model"] = model
    if project is not None:
        where += " AND r.project = $project"
        params["project"] = project
    if scoped:
        where += f" AND {in_scope('r')}"
        params.update(scope_params())
    rows = await store.read(_PAGE.replace("{where}", where), params)
    row = rows[0]
    found = sorted((RegistryEvent.of(props) for props in row["events"]), key=_seq)
    # Every event up to the pruned one existed and was read or deleted: the log ends
    # there at least.
    end = max(row["visible"], min(row["pruned"], row["head"]))
    return Page(found[:limit], row["head"], end, len(found) > limit, row["log"], row["pruned"])


async def head(store: Store) -> int:
    """The number of the newest committed event (0 when there is none)."""
    return (await bounds(store))[0]


async def bounds(store: Store) -> tuple[int, int]:
    """(the newest committed event's number, the newest deleted one's); 0 for none."""
    rows = await store.read(
        "OPTIONAL MATCH (s:Sequence {name: 'registryEvent'}) "
        "OPTIONAL MATCH (gone:Sequence {name: 'registryEventPruned'}) "
        "RETURN coalesce(s.value, 0) AS head, coalesce(gone.value, 0) AS pruned"
    )
    return rows[0]["head"], rows[0]["pruned"]


# Deletes, oldest first, the events older than $cutoff: a run of the lowest numbers (the
# log stays one unbroken range), up to $batch of them, and records the newest deleted one.
# Locked first, so that two processes pruning at once delete one after the other.
PRUNE = (
    "MERGE (gone:Sequence {name: 'registryEventPruned'}) ON CREATE SET gone.value = 0 "
    "SET gone._lock = true REMOVE gone._lock "
    "WITH gone "
    "OPTIONAL CALL () { "
    "  MATCH (r:RegistryEvent) WHERE r.seq > 0 "
    "  RETURN r ORDER BY r.seq LIMIT $batch "
    "} "
    "WITH gone, collect(r) AS oldest "
    "WITH gone, oldest, [i IN range(0, size(oldest) - 1) WHERE oldest[i].at >= $cutoff] AS kept "
    "WITH gone, oldest[0..coalesce(head(kept), size(oldest))] AS old "
    "WITH gone, old, CASE WHEN size(old) > 0 THEN old[size(old) - 1].seq ELSE 0 END AS upto "
    "FOREACH (r IN old | DETACH DELETE r) "
    "SET gone.value = CASE WHEN upto > gone.value THEN upto ELSE gone.value END "
    "RETURN size(old) AS deleted, gone.value AS pruned"
)
PRUNE_BATCH = 5000


async def prune_batch(store: Store, cutoff: datetime) -> int:
    """Delete up to PRUNE_BATCH of the events that happened before ``cutoff``, oldest
    first; how many were."""
    row = await store.write(lambda tx: tx.single(PRUNE, {"cutoff": cutoff, "batch": PRUNE_BATCH}))
    return row["deleted"] if row else 0


async def prune(store: Store, cutoff: datetime) -> int:
    """Delete the events that happened before ``cutoff``; how many were."""
    deleted = 0
    while True:
        count = await prune_batch(store, cutoff)
        deleted += count
        if count < PRUNE_BATCH:
            return deleted


# --- the process's live feed ------------------------------------------------------------


class EventHub:
    """One per process: follows the log for this process's subscribers.

    While anyone listens, it reads new events every ``poll_seconds`` (other processes'
    writes), or at once when this process commits some (``nudge``), in one query for all
    listeners, and keeps the newest ``keep`` in memory. A listener reads from there; one
    that is further behind (it resumed from an old number, or was slow) reads the log
    itself until it has caught up. A counter that goes back (the database was emptied or
    restored) starts the feed again from there.
    """

    def __init__(self, store: Store, *, poll_seconds: float, keep: int = 2048) -> None:
        self.store = store
        self.poll_seconds = poll_seconds
        self.keep = keep
        self.recent: deque[RegistryEvent] = deque(maxlen=keep)
        self.last = 0  # every event up to this number has been read
        self.epoch = 0  # goes up when the log was replaced or went back
        self.resume_at = 0  # where listeners go on from then
        self.log_id: str | None = None
        self.listeners = 0
        self._arrived = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.failed: BaseException | None = None

    def nudge(self) -> None:
        self._wake.set()

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def listen(
        self,
        after: int,
        accept: Callable[[RegistryEvent], bool],
        *,
        tick: Callable[[], Awaitable[None]] | None = None,
        tick_seconds: float = 30.0,
    ) -> AsyncGenerator[RegistryEvent, None]:
        """Every event numbered above ``after`` that ``accept`` takes, in order, forever;
        ``tick`` is awaited every ``tick_seconds`` (events or not), and may end it."""
        ticked = time.monotonic()

        async def due() -> None:
            nonlocal ticked
            if tick is not None and time.monotonic() - ticked >= tick_seconds:
                await tick()
                ticked = time.monotonic()

        self._attach()
        try:
            cursor, epoch = after, self.epoch
            while True:
                if epoch != self.epoch:
                    cursor, epoch = min(cursor, self.resume_at), self.epoch
                batch = self._kept_after(cursor)
                if batch is None:  # behind what is kept: read the log
                    got = await page(self.store, cursor, 500, scoped=False)
                    if got.expired(cursor):
                        raise expired(cursor, got.pruned)
                    batch = got.events
                    if not batch and got.head < cursor:  # before the hub noticed a reset
                        await self._next_arrival(tick_seconds if tick else None)
                        await due()
                        continue
                if batch:
                    for event in batch:
                        cursor = event.seq
                        if accept(event):
                            await due()
                            yield event
                    continue
                await self._next_arrival(tick_seconds if tick else None)
                await due()
        finally:
            self._detach()

    def _kept_after(self, cursor: int) -> list[RegistryEvent] | None:
        """Kept events above ``cursor`` ([] when there is none yet), or None when the
        ones right after it are no longer (or not yet) kept."""
        if cursor >= self.last:
            return []
        if not self.recent or self.recent[0].seq > cursor + 1:
            return None
        start = cursor + 1 - self.recent[0].seq
        return list(itertools.islice(self.recent, start, None))

    async def _next_arrival(self, at_most: float | None = None) -> None:
        if self.failed is not None:
            raise Unavailable("the registry event feed stopped; subscribe again")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._arrived.wait(), at_most)

    def _attach(self) -> None:
        self.listeners += 1
        if self._task is None or self._task.done():
            # What was kept from an earlier run may be stale (the feed stops while nobody
            # listens): nothing is kept until the new run has read where the log ends.
            self.recent.clear()
            self.last = 0
            self.log_id = None
            self.failed = None
            self._task = asyncio.create_task(self._follow(), name="registry-event-feed")

    def _detach(self) -> None:
        self.listeners -= 1
        if self.listeners == 0 and self._task is not None:
            self._task.cancel()
            self._task = None

    def _announce(self) -> None:
        arrived, self._arrived = self._arrived, asyncio.Event()
        arrived.set()

    async def _follow(self) -> None:
        try:
            started = False
            failures = 0
            while True:
                self._wake.clear()
                try:
                    if not started:
                        # Listeners behind the newest event read the log until they reach it.
                        self.last = await head(self.store)
                        started = True
                        self._announce()
                    got = await page(self.store, self.last, 500, scoped=False)
                    failures = 0
                except Exception:  # Neo4j away or restarting: listeners wait, then go on
                    failures += 1
                    log.warning(
                        "could not read registry events (attempt %d)", failures, exc_info=True
                    )
                    await asyncio.sleep(min(self.poll_seconds * 2**failures, 30))
                    continue
                replaced = got.log is not None and self.log_id not in (None, got.log)
                if replaced or got.head < self.last:
                    # A new log (the database was emptied): listeners read it from its
                    # start. The same log, shorter (restored from a backup): they go on
                    # from its end, as they have had what it holds.
                    log.warning(
                        "the registry event log was %s (it ended at %d, now at %d)",
                        "replaced" if replaced else "restored to an older state",
                        self.last,
                        got.head,
                    )
                    self.resume_at = 0 if replaced or got.log is None else got.head
                    self.recent.clear()
                    self.last = self.resume_at
                    self.log_id = got.log
                    self.epoch += 1
                    self._announce()
                    continue
                if got.log is not None:
                    self.log_id = got.log
                if got.expired(self.last):
                    # Events it had not read yet were deleted (it was that far behind):
                    # it goes on from what is kept; its listeners find out (``listen``).
                    self.recent.clear()
                    self.last = got.pruned
                    self._announce()
                    continue
                if got.events:
                    self.recent.extend(got.events)
                    self.last = got.events[-1].seq
                    self._announce()
                if got.has_more:
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.exception("the registry event feed stopped")
            self.failed = error
            self._announce()
            raise

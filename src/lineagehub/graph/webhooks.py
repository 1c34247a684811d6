"""Webhooks: registry events POSTed to a URL, signed, in order, at least once.

A webhook names a URL and which events it wants (types, one model, one project). Every
process that delivers (``LINEAGEHUB_DELIVER_WEBHOOKS``) looks for webhooks with events to
send; one process at a time holds a webhook (a lease on its node, renewed as it goes, taken
over by another process when it lapses), so a webhook's events leave one by one in seq
order. An event counts as delivered when the receiver answers 2xx: the webhook's cursor
(``deliveredSeq``) then moves past it. A failure is retried with backoff (5 s doubling up
to ``LINEAGEHUB_WEBHOOK_MAX_BACKOFF_SECONDS``) for as long as the webhook stays active;
410 Gone deactivates it. A receiver may see an event twice (a process dying between the
answer and the cursor's write): each delivery carries the event's id to drop repeats.

Deliveries follow the Standard Webhooks signature scheme, so receivers can check them with
its libraries: headers ``webhook-id`` (the event's id), ``webhook-timestamp`` (Unix
seconds) and ``webhook-signature`` (``v1,`` + base64 HMAC-SHA256 of
``{id}.{timestamp}.{body}`` under the secret's bytes; the secret is ``whsec_`` + base64).
The body is ``{"type", "timestamp", "data"}`` with the event as ``data``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from lineagehub import __version__
from lineagehub.graph import events, ids
from lineagehub.graph.entities import now
from lineagehub.graph.errors import (
    Conflict,
    Forbidden,
    NotFound,
    RegistryError,
    ValidationFailed,
)
from lineagehub.graph.events import EventType
from lineagehub.graph.identity import actor, check_project
from lineagehub.graph.store import Store, Tx

log = logging.getLogger("lineagehub.webhooks")

SECRET_PREFIX = "whsec_"  # noqa: S105 (the scheme's prefix, not a secret)
LEASE_SECONDS = 60.0
BATCH = 20
FIRST_BACKOFF_SECONDS = 5.0
# How often a process with no active webhook at all looks again (one created elsewhere is
# delivered by the process that created it meanwhile).
IDLE_SECONDS = 5.0
_NAME_MAX = 128
_URL_MAX = 2048
_TIMEOUTS = ("connect", "read", "write", "pool")


@dataclass(frozen=True)
class Webhook:
    id: str
    name: str
    url: str
    types: list[EventType] | None
    model: str | None
    project: str | None
    active: bool
    created_at: datetime
    created_by: str
    delivered_seq: int
    delivered: int
    failures: int
    last_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    last_success_at: datetime | None
    next_attempt_at: datetime | None
    missed_through_seq: int | None = None

    @classmethod
    def of(cls, props: dict[str, Any]) -> Webhook:
        types = props.get("types")
        return cls(
            id=props["id"],
            name=props["name"],
            url=props["url"],
            types=[EventType(t) for t in types] if types is not None else None,
            model=props.get("model"),
            project=props.get("project"),
            active=props["active"],
            created_at=props["createdAt"],
            created_by=props["createdBy"],
            delivered_seq=props["deliveredSeq"],
            delivered=props.get("delivered", 0),
            failures=props.get("failures", 0),
            last_attempt_at=props.get("lastAttemptAt"),
            last_status=props.get("lastStatus"),
            last_error=props.get("lastError"),
            last_success_at=props.get("lastSuccessAt"),
            next_attempt_at=props.get("retryAt"),
            missed_through_seq=props.get("missedThroughSeq"),
        )


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Reach:
    """Where webhooks may send: never into ``deny``; into loopback and private networks
    only when ``allow_private``."""

    deny: tuple[Network, ...]
    allow_private: bool = True

    @classmethod
    def of(cls, networks: str, allow_private: bool) -> Reach:
        return cls(
            tuple(
                ipaddress.ip_network(n.strip(), strict=False)
                for n in networks.split(",")
                if n.strip()
            ),
            allow_private,
        )

    def refusal(self, address: str) -> str | None:
        """Why a webhook may not send to ``address`` (an IP), or None."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address):
            if ip.ipv4_mapped is not None:
                ip = ip.ipv4_mapped
            elif ip.sixtofour is not None:  # 6to4: the IPv4 address it tunnels to
                ip = ip.sixtofour
            elif ip in _NAT64 or (ip in _COMPATIBLE and ip != _LOOPBACK6):
                # An IPv4 address in its last 32 bits.
                ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        for network in self.deny:
            if ip.version == network.version and ip in network:
                return f"{ip} is in {network}, where webhooks may not send"
        if not self.allow_private and (
            ip.is_private
            or ip.is_loopback
            or ip.is_link_local
            or ip in _SHARED
            or ip in _LOCAL_NAT64
        ):
            return f"{ip} is a private or loopback address, where webhooks may not send"
        return None

    def check_url(self, url: str, field: str) -> str:
        """``url`` once it is a webhook's URL (see ``check_url``) whose host, when an IP
        address, may be sent to."""
        url = check_url(url, field)
        host = client_host(url, field)
        try:
            refused = self.refusal(host)
        except ValueError:  # a name: its addresses are checked at each connection
            return url
        if refused is not None:
            raise ValidationFailed(refused, field=field)
        return url


class Refused(Exception):
    """A delivery that may not be sent: its host does not resolve, or resolves to an
    address the webhook policy refuses. Its message says which."""


async def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, in the resolver's order (an IP literal is its
    own), each once."""
    found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(address[0]) for *_, address in found))


class Pinned(httpcore.AsyncNetworkBackend):
    """Connects only where the policy allows, to the very addresses it checked.

    The HTTP client hands over the host name of the URL; this resolves it once, refuses
    the connection if any address is refused, and connects to those addresses (one after
    the other until one answers). Nothing resolves the name again between the check and
    the connection, so a name that changes its answer (DNS rebinding) cannot slip a
    refused address in. TLS still checks the certificate against the name and sends it
    as SNI, and the request's Host header is the URL's: only the address is pinned."""

    def __init__(self, reach: Callable[[], Reach]) -> None:
        self._reach = reach
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await resolve(host, port)
        except (OSError, UnicodeError) as error:
            raise Refused(f"cannot resolve {host}: {error}") from error
        if not addresses:
            raise Refused(f"cannot resolve {host}: no address")
        reach = self._reach()
        for address in addresses:
            refused = reach.refusal(address)
            if refused is not None:
                raise Refused(f"{host} resolves to {refused}")
        last: Exception | None = None
        for n, address in enumerate(addresses):
            # Each address its share of what is left, so that one that never answers (a
            # firewall dropping IPv6, say) leaves time for the next.
            share = None if timeout is None else timeout / (len(addresses) - n)
            began = time.monotonic()
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=share,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                last = error
                if timeout is not None:
                    timeout -= time.monotonic() - began
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise Refused("webhooks send over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


# The well-known NAT64 prefix (its last 32 bits are an IPv4 address), and the local-use one.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")
# IPv4-compatible addresses (deprecated, ::a.b.c.d), but for ::1, IPv6's loopback.
_COMPATIBLE = ipaddress.IPv6Network("::/96")
_LOOPBACK6 = ipaddress.IPv6Address("::1")
# Carrier-grade NAT's shared space: private in use, though not ``is_private``.
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")


def client_host(url: str, field: str) -> str:
    """The host of ``url`` as the HTTP client sends and resolves it: ASCII, international
    names encoded as it encodes them (IDNA 2008, which Python's own codec does not
    follow: ``ß`` stays ``ß`` there, not ``ss``)."""
    try:
        return httpx.URL(url).raw_host.decode("ascii").strip("[]")
    except (httpx.InvalidURL, UnicodeError) as error:
        raise ValidationFailed(f"not a URL the server can send to: {error}", field=field) from error


ANYWHERE = Reach(())


def check_url(url: str, field: str) -> str:
    url = url.strip()
    if not 0 < len(url) <= _URL_MAX:
        raise ValidationFailed(f"a URL of at most {_URL_MAX} characters", field=field)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError as error:
        raise ValidationFailed(f"not a URL: {error}", field=field) from error
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationFailed("an http:// or https:// URL with a host", field=field)
    if parts.username or parts.password:
        raise ValidationFailed("no credentials in the URL: check the signature", field=field)
    return url


def _check_reach(project: str | None, field: str) -> None:
    """A principal limited to projects reaches only webhooks of one of them: one without a
    project sends every project's events."""
    allowed = actor().projects
    if allowed is not None and project is None:
        raise Forbidden(
            f"{actor().name!r} is limited to projects {', '.join(sorted(allowed))}: a webhook "
            "of theirs names its project",
            field=field,
        )
    check_project(project, field)


def _check_name(name: str) -> str:
    name = name.strip()
    if not 0 < len(name) <= _NAME_MAX:
        raise ValidationFailed(f"a name of 1 to {_NAME_MAX} characters", field="input.name")
    return name


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


_FIELDS = "w {.*, secret: null, leaseOwner: null, leaseUntil: null}"


async def create(
    store: Store,
    *,
    name: str,
    url: str,
    types: list[EventType] | None,
    model: str | None,
    project: str | None,
    after_seq: int | None,
    reach: Reach = ANYWHERE,
) -> tuple[Webhook, str]:
    """A new webhook and its secret (shown this once). It sends events numbered above
    ``after_seq`` (default: the newest now, so from now on), where ``reach`` allows."""
    name = _check_name(name)
    url = reach.check_url(url, "input.url")
    _check_reach(project, "input.project")
    if after_seq is not None and after_seq < 0:
        raise ValidationFailed("afterSeq is 0 or more", field="input.afterSeq")
    secret = new_secret()
    newest, pruned = await _check_cursor(store, after_seq)
    # 0: the whole log, i.e. from the oldest event kept.
    start = newest if after_seq is None else after_seq or pruned

    async def work(tx: Tx) -> Webhook:
        taken = await tx.single("MATCH (w:Webhook {name: $name}) RETURN w.id AS id", {"name": name})
        if taken is not None:
            raise Conflict(f"a webhook named {name!r} exists", field="input.name")
        webhook_id = ids.new_id("Webhook")
        props: dict[str, Any] = {
            "id": webhook_id,
            "name": name,
            "url": url,
            "types": [t.value for t in types] if types else None,
            "model": model,
            "project": project,
            "active": True,
            "secret": secret,
            "createdAt": now(),
            "createdBy": actor().name,
            "deliveredSeq": start,
            "delivered": 0,
            "failures": 0,
        }
        props = {k: v for k, v in props.items() if v is not None}
        tx.touch(webhook_id, None, _audited(props))
        row = await tx.single(
            f"CREATE (w:Webhook) SET w = $props RETURN {_FIELDS}", {"props": props}
        )
        assert row is not None
        return Webhook.of(row["w"])

    return await store.write(work), secret


async def _check_cursor(store: Store, after_seq: int | None) -> tuple[int, int]:
    """(the newest event's number, the newest deleted one's), once ``after_seq`` (when
    given) is one to send from."""
    newest, pruned = await events.bounds(store)
    events.check_resume(after_seq, newest, pruned, "input.afterSeq")
    return newest, pruned


_AUDITED = ("name", "types", "model", "project", "active", "deliveredSeq", "createdBy")


def _audited(props: dict[str, Any]) -> dict[str, Any]:
    """What the audit trail keeps of a webhook's change: never its secret, and of its URL
    only the host (a receiver's URL often is a credential, and audit events are for every
    reader); no ``id`` key: a webhook is not a lineage node."""
    kept = {f"webhook.{k}": v for k, v in props.items() if k in _AUDITED}
    if "url" in props:
        kept["webhook.urlHost"] = urlsplit(props["url"]).hostname if props["url"] else None
    return kept


async def _locked(tx: Tx, webhook_id: str) -> dict[str, Any]:
    row = await tx.single(
        "MATCH (w:Webhook {id: $id}) SET w._lock = true REMOVE w._lock RETURN w {.*} AS w",
        {"id": webhook_id},
    )
    if row is None:
        raise NotFound(f"no webhook {webhook_id!r}", field="id")
    found: dict[str, Any] = row["w"]
    _check_reach(found.get("project"), "id")
    return found


async def update(
    store: Store, webhook_id: str, changes: dict[str, Any], reach: Reach = ANYWHERE
) -> Webhook:
    """Change a webhook: url, types, model, active, or its cursor (``deliveredSeq``: send
    again from there, or skip ahead). Reactivating or moving the cursor clears failures."""
    if "url" in changes:
        changes["url"] = reach.check_url(changes["url"], "input.url")
    if "deliveredSeq" in changes and changes["deliveredSeq"] < 0:
        raise ValidationFailed("afterSeq is 0 or more", field="input.afterSeq")
    if "types" in changes and changes["types"] is not None:
        changes["types"] = [t.value for t in changes["types"]] or None

    if "deliveredSeq" in changes:
        _, pruned = await _check_cursor(store, changes["deliveredSeq"])
        # 0: the whole log, i.e. from the oldest event kept.
        changes["deliveredSeq"] = changes["deliveredSeq"] or pruned

    async def work(tx: Tx) -> Webhook:
        current = await _locked(tx, webhook_id)
        if changes.get("active") is True or "deliveredSeq" in changes:
            # A fresh start: what it failed at, or missed, before is behind it.
            changes.update(failures=0, retryAt=None, missedThroughSeq=None)
        # Whoever delivers it now lets go: what it does next follows the change (and its
        # cursor writes would not undo a moved cursor).
        changes.update(leaseOwner=None, leaseUntil=None)
        tx.touch(
            webhook_id,
            _audited({k: current.get(k) for k in changes}),
            _audited(changes),
        )
        row = await tx.single(
            f"MATCH (w:Webhook {{id: $id}}) SET w += $changes RETURN {_FIELDS}",
            {"id": webhook_id, "changes": changes},
        )
        assert row is not None
        return Webhook.of(row["w"])

    return await store.write(work)


async def rotate_secret(store: Store, webhook_id: str) -> tuple[Webhook, str]:
    secret = new_secret()

    async def work(tx: Tx) -> Webhook:
        await _locked(tx, webhook_id)
        tx.touch(webhook_id, {"webhook.secret": "(old)"}, {"webhook.secret": "(new)"})
        row = await tx.single(
            f"MATCH (w:Webhook {{id: $id}}) SET w.secret = $secret, "
            f"w.leaseOwner = null, w.leaseUntil = null RETURN {_FIELDS}",
            {"id": webhook_id, "secret": secret},
        )
        assert row is not None
        return Webhook.of(row["w"])

    return await store.write(work), secret


async def delete(store: Store, webhook_id: str) -> str:
    async def work(tx: Tx) -> str:
        current = await _locked(tx, webhook_id)
        tx.touch(webhook_id, _audited(current), None)
        await tx.run("MATCH (w:Webhook {id: $id}) DELETE w", {"id": webhook_id})
        return webhook_id

    return await store.write(work)


async def list_all(store: Store) -> list[Webhook]:
    from lineagehub.graph.identity import scope

    # A scoped admin sees the webhooks of its projects (not those of every project).
    rows = await store.read(
        f"MATCH (w:Webhook) WHERE $all OR w.project IN $scope RETURN {_FIELDS} ORDER BY w.name",
        {"all": scope() is None, "scope": scope() or []},
    )
    return [Webhook.of(row["w"]) for row in rows]


# --- signing -------------------------------------------------------------------------------


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header of a delivery (Standard Webhooks, v1)."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def delivery(secret: str, event: events.RegistryEvent) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one event's delivery."""
    body = json.dumps(
        {"type": event.type.value, "timestamp": event.at.isoformat(), "data": event.payload()},
        separators=(",", ":"),
    ).encode()
    stamp = int(time.time())
    return body, {
        "content-type": "application/json",
        "user-agent": f"lineagehub-webhooks/{__version__}",
        "webhook-id": event.id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(secret, event.id, stamp, body),
    }


# --- delivery --------------------------------------------------------------------------------

# Neither waiting to retry nor being delivered by another process.
_FREE_IF = (
    "(w.retryAt IS NULL OR w.retryAt <= $now) "
    "AND (w.leaseUntil IS NULL OR w.leaseUntil <= $now OR w.leaseOwner = $owner) "
)
_DUE_IF = "w.active AND w.deliveredSeq < head AND " + _FREE_IF
_DUE = (
    "OPTIONAL MATCH (s:Sequence {name: 'registryEvent'}) "
    "WITH coalesce(s.value, 0) AS head "
    f"MATCH (w:Webhook) WHERE {_DUE_IF}"
)


class Dispatcher:
    """One per delivering process: finds due webhooks and sends their events."""

    def __init__(
        self,
        store: Store,
        *,
        poll_seconds: float,
        timeout_seconds: float,
        max_backoff_seconds: float,
        reach: Reach = ANYWHERE,
    ) -> None:
        self.store = store
        self.reach = reach
        self.poll_seconds = poll_seconds
        self.timeout_seconds = timeout_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.owner = f"{os.getpid()}-{secrets.token_hex(6)}"
        # Renewed after each delivery: it outlasts the longest one by far.
        self.lease = timedelta(seconds=max(LEASE_SECONDS, 3 * timeout_seconds))
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pool: httpcore.AsyncConnectionPool | None = None
        self._any = True  # whether any active webhook existed at the last look
        # Whether any then was one that new events make due (not waiting to retry, not
        # being delivered by another process).
        self._listening = True

    def nudge(self) -> None:
        """A webhook was made or changed here: look at once."""
        self._wake.set()

    def on_events(self) -> None:
        """New events were numbered: look at once, unless no webhook was waiting for
        events at the last look (none at all, or all waiting to retry, or delivered by
        other processes), so that writes pay no query for webhooks they cannot concern.
        The regular look (``poll_seconds``; IDLE_SECONDS when there is no webhook) still
        finds one made by another process, or one whose retry comes due."""
        if self._listening:
            self._wake.set()

    def start(self) -> None:
        # No proxy from the environment, no redirect followed (a plain connection pool),
        # and every connection made through the policy's checked addresses.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=Pinned(lambda: self.reach),
        )
        self._task = asyncio.create_task(self._run(), name="webhook-dispatcher")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            idle = self.poll_seconds
            try:
                claimed = await self._claim()
                if claimed:
                    # All of them finish (or fail) before the next claim, which could
                    # otherwise take again one still being delivered.
                    done = await asyncio.gather(
                        *(self._deliver(w) for w in claimed), return_exceptions=True
                    )
                    for webhook, outcome in zip(claimed, done, strict=True):
                        if isinstance(outcome, Exception):
                            log.error(
                                "delivering webhook %s failed",
                                webhook["id"],
                                exc_info=(type(outcome), outcome, outcome.__traceback__),
                            )
                            # Backed off like any failure: not taken again at once.
                            await self._failed(
                                webhook["id"],
                                None,
                                f"delivery failed: {type(outcome).__name__}",
                                webhook.get("failures", 0) + 1,
                            )
                    continue  # more may be due: look again at once
                if not self._any:
                    # No webhook at all: look less often (a nudge still wakes it at once).
                    idle = max(self.poll_seconds, IDLE_SECONDS)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhook delivery failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), idle)

    async def _claim(self) -> list[dict[str, Any]]:
        stamp = now()
        # A read first: most of the time nothing is due, and a read costs no write.
        rows = await self.store.read(
            "OPTIONAL MATCH (s:Sequence {name: 'registryEvent'}) "
            "WITH coalesce(s.value, 0) AS head "
            "OPTIONAL MATCH (w:Webhook) WHERE w.active "
            f"WITH head, w, w IS NOT NULL AND {_FREE_IF} AS free "
            "RETURN count(w) AS active, count(CASE WHEN free THEN 1 END) AS free, "
            f"count(CASE WHEN {_DUE_IF} THEN 1 END) AS due",
            {"now": stamp, "owner": self.owner},
            counted=False,
        )
        self._any = rows[0]["active"] > 0
        self._listening = rows[0]["free"] > 0
        if not rows[0]["due"]:
            return []

        async def work(tx: Tx) -> list[dict[str, Any]]:
            return await tx.run(
                # Longest waiting first (none starves), in one order everywhere.
                _DUE + "WITH head, w ORDER BY coalesce(w.lastAttemptAt, w.createdAt), w.id "
                "LIMIT 16 "
                # Locked, then asked again: another process may have taken it meanwhile.
                "SET w._lock = true REMOVE w._lock "
                f"WITH head, w WHERE {_DUE_IF}"
                "SET w.leaseOwner = $owner, w.leaseUntil = $until "
                "RETURN w {.*} AS w",
                {"now": stamp, "owner": self.owner, "until": stamp + self.lease},
            )

        claimed = await self.store.write(work)
        return [row["w"] for row in claimed]

    async def _deliver(self, webhook: dict[str, Any]) -> None:
        types = [EventType(t) for t in webhook["types"]] if webhook.get("types") else None
        after = webhook["deliveredSeq"]
        page = await events.page(
            self.store,
            after,
            BATCH,
            types=types,
            model=webhook.get("model"),
            project=webhook.get("project"),
            scoped=False,
        )
        if after < page.pruned:  # (0 too: a webhook is owed every event after its cursor)
            # Deleted before they could be sent (it failed or was off for longer than the
            # retention): said in its status, and it goes on with what is kept.
            log.warning(
                "webhook %s missed events %d to %d: deleted before delivery",
                webhook["id"],
                after + 1,
                page.pruned,
            )
            # (Its lease let go in the same write.)
            await self._write(
                "SET w.missedThroughSeq = $pruned, w.deliveredSeq = CASE WHEN "
                "w.deliveredSeq < $pruned THEN $pruned ELSE w.deliveredSeq END, "
                "w.leaseOwner = null, w.leaseUntil = null",
                {"id": webhook["id"], "pruned": page.pruned},
            )
            return
        failures = webhook.get("failures", 0)
        for event in page.events:
            status, error = await self._post(webhook, event)
            if status is not None and 200 <= status < 300:
                if not await self._delivered(webhook["id"], event.seq, status):
                    return  # the lease was lost: another process goes on
                failures = 0
                continue
            failures += 1
            await self._failed(webhook["id"], status, error, failures)
            return
        if not page.has_more:
            # Past the events the filters left out too: never to be looked at again.
            await self._moved(webhook["id"], page.cursor(after))
        await self._release(webhook["id"])

    async def _post(
        self, webhook: dict[str, Any], event: events.RegistryEvent
    ) -> tuple[int | None, str | None]:
        assert self._pool is not None
        body, headers = delivery(webhook["secret"], event)
        timeout = self.timeout_seconds
        try:
            url = httpx.URL(webhook["url"])  # its host encoded as checked (IDNA 2008)
            # The whole exchange within the timeout (each step bounded too), and the
            # answer's body never read: a receiver cannot hold a delivery past its lease.
            async with (
                asyncio.timeout(timeout),
                self._pool.stream(
                    "POST",
                    httpcore.URL(
                        scheme=url.raw_scheme,
                        host=url.raw_host,
                        port=url.port,
                        target=url.raw_path,
                    ),
                    headers=[
                        (b"Host", url.netloc),
                        (b"Content-Length", str(len(body)).encode()),
                        *((k.encode(), v.encode()) for k, v in headers.items()),
                    ],
                    content=body,
                    extensions={"timeout": dict.fromkeys(_TIMEOUTS, timeout)},
                ) as response,
            ):
                status = response.status
        except Refused as error:
            return None, str(error)
        except TimeoutError:
            return None, f"no answer within {timeout:g} s"
        except Exception as error:  # any URL the client cannot reach is the receiver's failure
            return None, (f"{type(error).__name__}: {error}")[:500]
        if 200 <= status < 300:
            return status, None
        return status, f"the receiver answered {status}"

    async def _write(self, query: str, params: dict[str, Any]) -> bool:
        async def work(tx: Tx) -> bool:
            row = await tx.single(
                "MATCH (w:Webhook {id: $id}) SET w._lock = true REMOVE w._lock "
                "WITH w WHERE w.leaseOwner = $owner " + query + " RETURN true AS held",
                {**params, "owner": self.owner},
            )
            return row is not None

        try:
            return await self.store.write(work)
        except RegistryError:
            log.exception("could not record a webhook delivery")
            return False

    async def _delivered(self, webhook_id: str, seq: int, status: int) -> bool:
        stamp = now()
        return await self._write(
            "SET w.deliveredSeq = $seq, w.delivered = coalesce(w.delivered, 0) + 1, "
            "w.failures = 0, w.retryAt = null, w.lastStatus = $status, w.lastError = null, "
            "w.lastAttemptAt = $now, w.lastSuccessAt = $now, w.leaseUntil = $until",
            {
                "id": webhook_id,
                "seq": seq,
                "status": status,
                "now": stamp,
                "until": stamp + self.lease,
            },
        )

    async def _failed(
        self, webhook_id: str, status: int | None, error: str | None, failures: int
    ) -> None:
        stamp = now()
        if status == 410:
            log.warning("webhook %s answered 410 Gone: deactivated", webhook_id)
            await self._write(
                "SET w.active = false, w.lastStatus = 410, w.lastAttemptAt = $now, "
                "w.lastError = 'the receiver answered 410 Gone: deactivated', "
                "w.failures = $failures, w.leaseOwner = null, w.leaseUntil = null",
                {"id": webhook_id, "now": stamp, "failures": failures},
            )
            return
        wait = min(self.max_backoff_seconds, FIRST_BACKOFF_SECONDS * 2 ** (failures - 1))
        wait *= random.uniform(0.9, 1.1)
        log.warning("webhook %s failed (%s); again in %.0f s", webhook_id, error, wait)
        await self._write(
            "SET w.failures = $failures, w.lastStatus = $status, w.lastError = $error, "
            "w.lastAttemptAt = $now, w.retryAt = $retry, w.leaseOwner = null, w.leaseUntil = null",
            {
                "id": webhook_id,
                "failures": failures,
                "status": status,
                "error": error,
                "now": stamp,
                "retry": stamp + timedelta(seconds=wait),
            },
        )

    async def _moved(self, webhook_id: str, seq: int) -> None:
        await self._write(
            "SET w.deliveredSeq = CASE WHEN w.deliveredSeq < $seq THEN $seq "
            "ELSE w.deliveredSeq END",
            {"id": webhook_id, "seq": seq},
        )

    async def _release(self, webhook_id: str) -> None:
        await self._write("SET w.leaseOwner = null, w.leaseUntil = null", {"id": webhook_id})

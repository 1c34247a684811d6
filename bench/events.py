"""Registry events: how long after a write its subscribers and webhooks hear of it, and
what listening costs the writers.

    python -m bench.events --neo4j-uri bolt://127.0.0.1:17687 --single 100

Rows, each against the writer's own answer (the mutation's HTTP round trip, as the
writer's client sees it) as the baseline:

- a subscriber on the process that wrote (its commit wakes the feed at once);
- a subscriber on another process (it finds the event by polling the log, every
  ``LINEAGEHUB_EVENT_POLL_SECONDS``, 0.5 s by default: half of that on average);
- a webhook receiver on loopback (the writing process delivers; signed, one POST);
- then registration throughput from ``--concurrency`` writers with ``--subscribers``
  subscriptions open on the same process, against the same writers with none: once with
  subscriptions asking only the event's own fields, once with ones asking the version as
  it is now (``modelVersion { ... }``, a load per execution of an event; subscribers asking
  the same share one execution, ``api/graphql/fanout.py``).

Latency is from just before the mutation is sent to the event's arrival; each timed write
starts at a random moment (up to 0.5 s after the last). The writes are
``createModelVersion`` calls on one bench model (each a new version: one event).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from bench.common import ApiServer, GraphQLClient, add_neo4j_args, say
from bench.lookups import in_parallel
from bench.report import Latency, Rate, Row, Table, save

JITTER_SECONDS = 0.5

MODEL = """mutation($name: String!) { createRegisteredModel(input: {name: $name}) { id } }"""
VERSION = """mutation($model: ID!, $name: String!) {
  createModelVersion(input: {modelId: $model, name: $name}) { id } }"""
SUBSCRIBE = """subscription($model: String!) {
  registryEvents(types: [VERSION_REGISTERED], model: $model) { seq versionName } }"""
# What a dashboard asks: the version as it is now (a load per execution of an event).
SUBSCRIBE_NESTED = """subscription($model: String!) {
  registryEvents(types: [VERSION_REGISTERED], model: $model) {
    seq versionName modelVersion { id name author approvalStatus state createdAt } } }"""
DELETE_WEBHOOK = """mutation($id: ID!) { deleteWebhook(id: $id) }"""
WEBHOOK = """mutation($url: String!, $model: String!) { createWebhook(input:
  {name: $model, url: $url, types: [VERSION_REGISTERED], model: $model}) { webhook { id } } }"""


@contextlib.asynccontextmanager
async def subscribed(
    api_url: str, model: str, query: str = SUBSCRIBE
) -> AsyncIterator[ClientConnection]:
    url = api_url.replace("http://", "ws://") + "/graphql"
    async with connect(url, subprotocols=[Subprotocol("graphql-transport-ws")]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        ack = json.loads(await ws.recv())
        if ack["type"] != "connection_ack":
            raise RuntimeError(f"subscription refused: {ack}")
        message = {"query": query, "variables": {"model": model}}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": message}))
        await asyncio.sleep(0.3)  # the subscription is running
        yield ws


async def next_version(ws: ClientConnection) -> str:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if message["type"] == "next":
            name: str = message["payload"]["data"]["registryEvents"]["versionName"]
            return name
        if message["type"] == "ping":
            await ws.send(json.dumps({"type": "pong"}))
            continue
        raise RuntimeError(f"subscription ended: {message}")


class Receiver:
    """A minimal HTTP endpoint: records when each delivery's version name arrived."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                stamp = time.perf_counter()
                self.arrived[json.loads(body)["data"]["versionName"]] = stamp
                writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def until(self, name: str) -> float:
        deadline = time.monotonic() + 30
        while name not in self.arrived:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no delivery of {name}")
            await asyncio.sleep(0.001)
        return self.arrived[name]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def _latencies(
    client: GraphQLClient, model_id: str, tag: str, count: int, arrival: Any
) -> tuple[list[float], list[float]]:
    """(to arrival, writer's answer) seconds for ``count`` new versions, after 5 warm-ups."""
    heard, answered = [], []
    for i in range(count + 5):
        name = f"{tag}-{i}"
        # At a random moment: writing right after the last arrival would keep every write
        # in the same phase of another process's polling.
        await asyncio.sleep(random.uniform(0, JITTER_SECONDS))
        began = time.perf_counter()
        answer = await client.must(VERSION, {"model": model_id, "name": name})
        arrived = await arrival(name)
        if i >= 5:
            answered.append(answer.seconds)
            heard.append(arrived - began)
    return heard, answered


async def rows(
    api_url: str, other_url: str, *, single: int, writes: int, concurrency: int, subscribers: int
) -> list[Row]:
    out: list[Row] = []
    client = GraphQLClient(api_url)
    try:
        model = f"bench-events-{uuid.uuid4().hex[:8]}"
        model_id = (await client.must(MODEL, {"name": model})).body["data"][
            "createRegisteredModel"
        ]["id"]
        for label, where in (("same process", api_url), ("another process", other_url)):
            async with subscribed(where, model) as ws:

                async def heard(name: str, ws: ClientConnection = ws) -> float:
                    got = await next_version(ws)
                    if got != name:
                        raise RuntimeError(f"expected {name}, heard {got}")
                    return time.perf_counter()

                to_heard, answers = await _latencies(client, model_id, label[:4], single, heard)
            out.append(
                Row(
                    f"subscriber hears a new version ({label})",
                    "1 event",
                    Latency.of(to_heard),
                    Latency.of(answers),
                )
            )

        receiver = Receiver()
        await receiver.start()
        hook: str | None = None
        try:
            made = await client.must(
                WEBHOOK, {"url": f"http://127.0.0.1:{receiver.port}/hook", "model": model}
            )
            hook = made.body["data"]["createWebhook"]["webhook"]["id"]
            to_hook, answers = await _latencies(client, model_id, "hook", single, receiver.until)
        finally:
            if hook is not None:
                # Left behind, it would retry a dead receiver on this store for good.
                await client.must(DELETE_WEBHOOK, {"id": hook})
            await receiver.stop()
        out.append(
            Row(
                "webhook receiver gets a new version (signed POST)",
                "1 event",
                Latency.of(to_hook),
                Latency.of(answers),
            )
        )

        clients = [GraphQLClient(api_url) for _ in range(concurrency)]
        counter = iter(range(10**9))

        async def write(conn: GraphQLClient | None) -> None:
            assert conn is not None
            await conn.must(VERSION, {"model": model_id, "name": f"load-{next(counter)}"})

        busy: dict[str, float] = {}
        try:
            quiet = await in_parallel(concurrency, writes, write, clients)
            for kind, query in (
                ("", SUBSCRIBE),
                (", each with its modelVersion", SUBSCRIBE_NESTED),
            ):
                async with contextlib.AsyncExitStack() as stack:
                    for _ in range(subscribers):
                        await stack.enter_async_context(subscribed(api_url, model, query))
                    busy[kind] = await in_parallel(concurrency, writes, write, clients)
        finally:
            for conn in clients:
                await conn.close()
        for kind, seconds in busy.items():
            out.append(
                Row(
                    f"{writes} new versions, {concurrency} writers, {subscribers} subscribers "
                    f"open{kind} (vs none)",
                    f"{writes} writes",
                    Rate(writes, seconds, "writes/s"),
                    Rate(writes, quiet, "writes/s"),
                )
            )
    finally:
        await client.close()
    return out


async def run(
    uri: str,
    *,
    database: str = "neo4j",
    single: int = 100,
    writes: int = 400,
    concurrency: int = 8,
    subscribers: int = 50,
    workdir: Path | None = None,
) -> list[Table]:
    where = workdir or Path(tempfile.mkdtemp(prefix="bench-"))
    with (
        ApiServer(uri, where / "a", database=database) as server,
        ApiServer(
            uri, where / "b", database=database, env={"LINEAGEHUB_DELIVER_WEBHOOKS": "false"}
        ) as other,
    ):
        table = Table(
            "Registry events: subscribers and webhooks vs the writer's own answer",
            "writer's answer",
        )
        table.rows = await rows(
            server.url,
            other.url,
            single=single,
            writes=writes,
            concurrency=concurrency,
            subscribers=subscribers,
        )
        table.notes = [
            "Latency from just before the mutation is sent to the event's arrival; the "
            "baseline is the same mutation's HTTP round trip as its writer sees it.",
            "Another process finds events by polling the log every 0.5 s "
            "(LINEAGEHUB_EVENT_POLL_SECONDS).",
            "Throughput row: lineagehub = with the subscribers open, baseline = with none "
            "(ratio > 1: the subscribers cost the writers).",
        ]
        say("events done")
    return [table]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.events", description=__doc__)
    add_neo4j_args(parser)
    parser.add_argument("--single", type=int, default=100, help="timed writes per latency row")
    parser.add_argument("--writes", type=int, default=400, help="writes per throughput run")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent writers")
    parser.add_argument("--subscribers", type=int, default=50, help="open subscriptions")
    parser.add_argument("--json", type=Path, help="also write the tables as JSON here")
    args = parser.parse_args(argv)
    tables = asyncio.run(
        run(
            args.neo4j_uri,
            database=args.database,
            single=args.single,
            writes=args.writes,
            concurrency=args.concurrency,
            subscribers=args.subscribers,
        )
    )
    for table in tables:
        print(table.render())
    save(tables, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

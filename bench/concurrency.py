"""Many concurrent clients against one lineagehub server, and against raw Cypher.

    python -m bench.concurrency --neo4j-uri bolt://127.0.0.1:17687 --clients 100 --seconds 20

Two phases, each bounded by ``--seconds`` and ``--max-requests`` per client, loopback only:

- point lookups: ``modelVersion`` and ``inferenceService`` by natural key, alternating;
- mixed: 75% those lookups, 15% lineage (upstream of a service, maxDepth 3) and 10%
  ``registerModel`` writes.

Every client has its own keep-alive connection. The baseline runs the same mix with the
same number of concurrent tasks on the raw async driver (pool of 100 connections), one
query per request. Unless ``--api-url`` or ``--no-alone`` is given, the point lookups also
run against a second server whose keyed reads each go alone (``LINEAGEHUB_COALESCE_READS=0``),
to show what sharing queries between concurrent requests buys.

Each phase notes how clustered in time lineagehub's slowest requests were. With
``--watch NAME=PID`` (Neo4j, say), and always for a server the bench started, it also
samples those processes' threads every 100 ms (``bench/cpu.py``) and notes which of them
ran in the windows where the slowest requests started, against the others, and warns
when a watched JVM (Neo4j) was still busy compiling: a store warming up. Reading
``/proc`` costs the bench a little CPU (about 1,500 small reads a second for Neo4j's
~140 threads), on the same cores as the server.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import neo4j

from bench import lineage, lookups
from bench.common import RESULTS, ApiServer, GraphQLClient, add_neo4j_args, neo4j_driver, say
from bench.cpu import Sampler, Watch, slow_windows, still_compiling
from bench.report import Latency, Rate, Row, Table, save

LINEAGE = """
query Up($start: ID!) {
  lineage(start: $start, maxDepth: 3) { nodes { degree node { __typename id name } } }
}
"""
MIX = (("lookup", 75), ("lineage", 15), ("register", 10))


@dataclass
class Tally:
    seconds: list[float] = field(default_factory=list)
    started: list[float] = field(default_factory=list)  # since the phase began, per request
    errors: int = 0
    wall: float = 0.0
    zero: float = 0.0  # time.perf_counter() when the phase began

    @property
    def done(self) -> int:
        return len(self.seconds)

    def bursts(self, window: float = 0.1) -> str:
        """How clustered in time the slowest requests are: in how many of the run's
        ``window``-second windows (by start time) the requests at or above the p99
        started, against how many they would touch if they were spread at random. Few
        windows mean stalls that hold up every request in flight at once (a collection
        in Neo4j, say), rather than a uniformly slow server."""
        if self.done < 200:
            return "too few requests to tell"
        p99, hit = slow_windows(self.started, self.seconds, window)
        windows = int(self.wall / window) + 1
        slow = sum(1 for took in self.seconds if took >= p99)
        at_random = 1 - (1 - 1 / windows) ** slow
        return (
            f"the {slow} requests at or above p99 ({p99 * 1000:.1f} ms) started in "
            f"{len(hit) / windows:.0%} of the {window * 1000:.0f} ms windows "
            f"({at_random:.0%} if spread at random)"
        )


Op = Callable[[int, random.Random], Awaitable[bool]]


async def drive(clients: int, seconds: float, max_requests: int, op: Op) -> Tally:
    """``clients`` workers calling ``op`` until time or count runs out; errors counted."""
    tally = Tally()
    deadline = time.monotonic() + seconds
    zero = tally.zero = time.perf_counter()

    async def worker(w: int) -> None:
        rng = random.Random(w)
        for _ in range(max_requests):
            if time.monotonic() > deadline:
                return
            began = time.perf_counter()
            try:
                ok = await op(w, rng)
            except (OSError, ConnectionError, RuntimeError, neo4j.exceptions.Neo4jError):
                ok = False
            if ok:
                tally.seconds.append(time.perf_counter() - began)
                tally.started.append(began - zero)
            else:
                tally.errors += 1

    began = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(clients)))
    tally.wall = time.perf_counter() - began
    return tally


def _choose(rng: random.Random, mixed: bool) -> str:
    if not mixed:
        return "lookup"
    return rng.choices([k for k, _ in MIX], weights=[w for _, w in MIX])[0]


async def phase(
    name: str,
    mixed: bool,
    api_urls: list[tuple[str, str]],
    driver: neo4j.AsyncDriver,
    keys: lookups.Keys,
    services: list[str],
    *,
    clients: int,
    seconds: float,
    max_requests: int,
    tails: list[str],
    watch: Sequence[Watch] = (),
    own: Mapping[str, int] | None = None,
) -> list[Row]:
    """The phase's rows; a line on how clustered lineagehub's slowest requests were goes
    to ``tails``, and with processes to watch (``watch``, and the server this bench
    started for a URL: ``own``), one on what ran while they started."""
    reg = lookups.Registrations(keys.models)

    def api_for(conns: list[GraphQLClient]) -> Op:
        async def api(w: int, rng: random.Random) -> bool:
            client = conns[w]
            kind = _choose(rng, mixed)
            if kind == "lineage":
                answer = await client(LINEAGE, {"start": rng.choice(services)})
            elif kind == "register":
                answer = await client(lookups.REGISTER, {"input": reg.api_input()})
            elif rng.random() < 0.5:
                model, version = rng.choice(keys.versions)
                answer = await client(lookups.VERSION_QUERY, {"model": model, "name": version})
            else:
                env, svc = rng.choice(keys.services)
                answer = await client(lookups.SERVICE_QUERY, {"environment": env, "name": svc})
            return answer.ok

        return api

    async def raw(w: int, rng: random.Random) -> bool:
        kind = _choose(rng, mixed)
        if kind == "lineage":
            start = lineage.Start(rng.choice(services), "UPSTREAM", 3, 0, 0)
            await lineage.run_floor(driver, start)
        elif kind == "register":
            await lookups.raw_register(driver, [reg.raw_row()])
        elif rng.random() < 0.5:
            await lookups.raw_version(driver, rng.choice(keys.versions))
        else:
            await lookups.raw_service(driver, rng.choice(keys.services))
        return True

    tallies = []
    for label, url in api_urls:
        conns = [GraphQLClient(url) for _ in range(clients)]
        try:
            api = api_for(conns)
            await drive(clients, min(2.0, seconds), 5, api)  # open connections, warm up
            server = (own or {}).get(url)
            watched = [*watch, *([Watch("api", server)] if server is not None else [])]
            with Sampler(watched) as sampler:
                tally = await drive(clients, seconds, max_requests, api)
        finally:
            for c in conns:
                await c.close()
        say(f"  {name}{label}: {tally.done} requests, {tally.errors} errors")
        tallies.append((label, tally))
        if watched:
            found = sampler.in_slow_windows(tally.started, tally.seconds, tally.zero)
            tails.append(f"CPU, {name}{label}: {found}.")
            say(f"  {tails[-1]}")
            warming = still_compiling([used for _, used in sampler.samples])
            if warming is not None:
                tails.append(f"Warning, {name}{label}: {warming}.")
                say(f"  {tails[-1]}")
    raw_tally = await drive(clients, seconds, max_requests, raw)
    size = f"{clients} clients"
    rows = []
    for label, tally in [*tallies, (", raw Cypher", raw_tally)]:
        tails.append(f"Tail, {name}{label}: {tally.bursts()}.")
        say(f"  {tails[-1]}")
    for label, tally in tallies:
        rows += [
            Row(
                f"{name}{label}: latency",
                size,
                Latency.of(tally.seconds),
                Latency.of(raw_tally.seconds),
            ),
            Row(
                f"{name}{label}: throughput",
                size,
                Rate(tally.done, tally.wall, "req/s", tally.errors),
                Rate(raw_tally.done, raw_tally.wall, "req/s", raw_tally.errors),
            ),
        ]
    return rows


async def run(
    uri: str,
    *,
    database: str = "neo4j",
    api_url: str | None = None,
    clients: int = 100,
    seconds: float = 20.0,
    max_requests: int = 2000,
    workdir: Path | None = None,
    compare_alone: bool = True,
    watch: Sequence[Watch] = (),
) -> list[Table]:
    async with neo4j_driver(uri, pool=100) as driver:
        keys = await lookups.sample_keys(driver)
        records, _, _ = await driver.execute_query(
            "MATCH (s:InferenceService) WHERE s.servedVersionId IS NOT NULL "
            "RETURN s.id AS id ORDER BY s.id LIMIT 100"
        )
        services = [r["id"] for r in records]
        servers: list[ApiServer] = []
        where = workdir or Path(tempfile.mkdtemp(prefix="bench-"))
        alone_url = None
        if api_url is None:
            servers.append(ApiServer(uri, where, database=database).__enter__())
            api_url = servers[-1].url
            if compare_alone:
                # The same server with every keyed read sent alone (no coalescing).
                alone = ApiServer(
                    uri, where, database=database, env={"LINEAGEHUB_COALESCE_READS": "0"}
                )
                servers.append(alone.__enter__())
                alone_url = servers[-1].url
        try:
            table = Table(
                f"{clients} concurrent clients, {seconds:.0f} s per phase",
                "raw Cypher, same concurrency",
            )
            tails: list[str] = []
            for name, mixed in (("point lookups", False), ("mixed read/write", True)):
                urls = [("", api_url)]
                if alone_url is not None and not mixed:
                    urls.append((", reads alone", alone_url))
                table.rows += await phase(
                    name,
                    mixed,
                    urls,
                    driver,
                    keys,
                    services,
                    clients=clients,
                    seconds=seconds,
                    max_requests=max_requests,
                    tails=tails,
                    watch=watch,
                    own={s.url: s.process.pid for s in servers if s.process is not None},
                )
            table.notes = [
                "Mixed: 75% point lookups, 15% lineage (upstream of a service, maxDepth 3), "
                "10% registerModel.",
                "Latencies are per request as each client sees it, queueing included.",
                "Concurrent keyed reads share Bolt queries (LINEAGEHUB_COALESCE_READS, "
                "default 1 running per kind); 'reads alone' is a server with it set to 0. "
                "The raw baseline sends one query per request.",
                *tails,
            ]
        finally:
            for server in servers:
                server.stop()
    return [table]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.concurrency", description=__doc__)
    add_neo4j_args(parser)
    parser.add_argument("--api-url", help="a running lineagehub (default: start one)")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0, help="per phase and side")
    parser.add_argument("--max-requests", type=int, default=2000, help="per client and phase")
    parser.add_argument(
        "--no-alone",
        action="store_true",
        help="skip the point lookups against a second server whose keyed reads go alone",
    )
    parser.add_argument(
        "--watch",
        action="append",
        type=Watch.parse,
        default=[],
        metavar="NAME=PID",
        help="sample this process's threads (and its children's) during each phase, and say "
        "what they used while the slowest requests started (e.g. neo4j=$(pgrep -f "
        "'java.*neo4j' | head -1)); a server the bench starts is watched anyway",
    )
    parser.add_argument("--json", type=Path, help="also write the tables as JSON here")
    args = parser.parse_args(argv)
    tables = asyncio.run(
        run(
            args.neo4j_uri,
            database=args.database,
            api_url=args.api_url,
            clients=args.clients,
            seconds=args.seconds,
            max_requests=args.max_requests,
            workdir=RESULTS / "work",
            compare_alone=not args.no_alone,
            watch=args.watch,
        )
    )
    for table in tables:
        print(table.render())
    save(tables, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Every bench in sequence at one scale, on a Neo4j of its own (``make bench``).

    python -m bench.run_all --nodes 100000            # starts and stops its own Neo4j
    python -m bench.run_all --nodes 1000 --quick      # a few iterations of each
    python -m bench.run_all --neo4j-uri bolt://... --wipe   # an existing Neo4j, emptied first

Generates the registry, starts one ``lineagehub serve`` process, runs lineage, lookups,
concurrency and the MLflow comparison against it, prints every table (Markdown) and
writes them to ``bench/results/<nodes>/`` (tables.md and one JSON file per bench).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import platform
import shutil
import sys
import time
from pathlib import Path

from bench import (
    columns,
    concurrency,
    events,
    generate,
    lineage,
    lookups,
    mlflow_compare,
    openlineage,
)
from bench.common import RESULTS, ApiServer, say
from bench.report import Table, save
from lineagehub.devdb import LocalNeo4j, free_port


def machine(heap: str, pagecache: str) -> str:
    memory = "?"
    with open("/proc/meminfo") as info:
        for line in info:
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024**2:.0f} GiB"
    return (
        f"{os.cpu_count()} cores, {memory} RAM, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; Neo4j 5.26 heap {heap}, page cache {pagecache}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run_all", description=__doc__)
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--neo4j-uri", help="use this Neo4j instead of starting one")
    parser.add_argument("--database", default="neo4j")
    parser.add_argument("--wipe", action="store_true", help="allow emptying --neo4j-uri")
    parser.add_argument("--heap", default="2g", help="heap of the Neo4j started here")
    parser.add_argument("--pagecache", default="4g", help="page cache of the Neo4j started here")
    parser.add_argument("--batch", type=int, default=generate.DEFAULT_BATCH)
    parser.add_argument("--quick", action="store_true", help="few iterations (a smoke run)")
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=[
            "lineage",
            "lookups",
            "concurrency",
            "openlineage",
            "columns",
            "events",
            "mlflow",
        ],
    )
    args = parser.parse_args(argv)
    out = RESULTS / str(args.nodes)
    out.mkdir(parents=True, exist_ok=True)
    local = None
    uri = args.neo4j_uri
    if uri is None:
        data = RESULTS / f"neo4j-{args.nodes}"
        shutil.rmtree(data, ignore_errors=True)  # a fresh store: no wipe, no leftovers
        local = LocalNeo4j(data, free_port(), heap=args.heap, pagecache=args.pagecache)
        local.start(detach=False)
        uri = local.uri
    elif not args.wipe:
        parser.error("--neo4j-uri needs --wipe: the generator replaces what the database holds")
    tables: list[Table] = []
    try:
        began = time.perf_counter()
        _, stats = asyncio.run(
            generate.generate(
                uri,
                args.nodes,
                args.seed,
                database=args.database,
                wipe_first=True,
                batch=args.batch,
            )
        )
        header = (
            f"# lineagehub benchmarks: {args.nodes:,} nodes (seed {args.seed})\n\n"
            f"Machine: {machine(args.heap, args.pagecache)}.\n\n"
            f"Generation: {sum(stats.nodes.values()):,} nodes + {sum(stats.rels.values()):,} "
            f"relationships loaded in {stats.seconds:.1f} s ({stats.rate:,.0f} (nodes+rels)/s; "
            f"{time.perf_counter() - began:.1f} s with planning, constraints and checks).\n"
        )
        print(header, flush=True)
        quick = args.quick
        with ApiServer(uri, out / "work", database=args.database) as server:
            if "lineage" not in args.skip:
                new = asyncio.run(
                    lineage.run(
                        uri,
                        database=args.database,
                        api_url=server.url,
                        iterations=5 if quick else 50,
                        seconds=5 if quick else 30,
                        patience=20 if quick else 60,
                    )
                )
                tables += new
                _show(new, out / "lineage.json")
            if "lookups" not in args.skip:
                new = asyncio.run(
                    lookups.run(
                        uri,
                        database=args.database,
                        api_url=server.url,
                        iterations=50 if quick else 1000,
                        single=20 if quick else 300,
                        bulk=100 if quick else 2000,
                        batch=50 if quick else 500,
                    )
                )
                tables += new
                _show(new, out / "lookups.json")
            if "concurrency" not in args.skip:
                new = asyncio.run(
                    concurrency.run(
                        uri,
                        database=args.database,
                        api_url=server.url,
                        clients=20 if quick else 100,
                        seconds=3 if quick else 20,
                    )
                )
                tables += new
                _show(new, out / "concurrency.json")
            if "openlineage" not in args.skip:
                new = asyncio.run(
                    openlineage.run(
                        uri,
                        database=args.database,
                        api_url=server.url,
                        single=20 if quick else 100,
                        runs=50 if quick else 400,
                    )
                )
                tables += new
                _show(new, out / "openlineage.json")
            if "columns" not in args.skip:
                new = asyncio.run(
                    columns.run(
                        uri,
                        database=args.database,
                        api_url=server.url,
                        width=40 if quick else 200,
                        iterations=10 if quick else 100,
                        writes=5 if quick else 30,
                    )
                )
                tables += new
                _show(new, out / "columns.json")
            if "events" not in args.skip:
                new = asyncio.run(
                    events.run(
                        uri,
                        database=args.database,
                        single=20 if quick else 100,
                        writes=50 if quick else 400,
                        subscribers=10 if quick else 50,
                        workdir=out / "work",
                    )
                )
                tables += new
                _show(new, out / "events.json")
            if "mlflow" not in args.skip:
                if importlib.util.find_spec("mlflow") is None:
                    say("mlflow is not installed (pip install -e '.[bench]'): skipping")
                else:
                    new = mlflow_compare.run(
                        uri,
                        database=args.database,
                        api_url=server.url,
                        models=3 if quick else 10,
                        versions=5 if quick else 20,
                        iterations=30 if quick else 300,
                        workdir=out / "work",
                    )
                    tables += new
                    _show(new, out / "mlflow.json")
        (out / "tables.md").write_text(header + "\n" + "\n".join(_md(t) for t in tables))
        say(f"tables written to {out / 'tables.md'}")
    finally:
        if local is not None:
            local.stop()
    return 0


def _md(table: Table) -> str:
    return lineage.render(table)


def _show(tables: list[Table], path: Path) -> None:
    for table in tables:
        print(_md(table), flush=True)
    save(tables, path)


if __name__ == "__main__":
    sys.exit(main())

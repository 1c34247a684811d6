"""Latency summaries, throughput, and the side-by-side table every bench prints.

Each table row compares lineagehub with a baseline on one operation. ``ratio`` is always
"lineagehub time / baseline time" (p50 for latencies, inverse rates for throughput), so
1.00 means as fast as the baseline and 3.00 means three times slower.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks."""
    if not sorted_values:
        return math.nan
    rank = (len(sorted_values) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


@dataclass(frozen=True)
class Latency:
    """Latencies of one operation, in milliseconds, and the Bolt round trips it cost."""

    n: int
    p50: float
    p95: float
    p99: float
    mean: float
    trips: float | None = None  # Bolt round trips (or HTTP calls) per operation
    unit_trips: str = "bolt"

    @classmethod
    def of(
        cls, seconds: Sequence[float], trips: float | None = None, unit_trips: str = "bolt"
    ) -> Latency:
        ms = sorted(s * 1000 for s in seconds)
        mean = sum(ms) / len(ms) if ms else math.nan
        return cls(
            len(ms),
            percentile(ms, 50),
            percentile(ms, 95),
            percentile(ms, 99),
            mean,
            trips,
            unit_trips,
        )

    def cell(self) -> str:
        return f"{self.p50:.2f} / {self.p95:.2f} / {self.p99:.2f}"

    def trips_cell(self) -> str:
        if self.trips is None:
            return "-"
        shown = f"{self.trips:g}" if self.trips == int(self.trips) else f"{self.trips:.1f}"
        return shown if self.unit_trips == "bolt" else f"{shown} {self.unit_trips}"


@dataclass(frozen=True)
class Rate:
    """Throughput: ``count`` operations in ``seconds``."""

    count: int
    seconds: float
    unit: str = "ops/s"
    errors: int = 0

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else math.nan

    def cell(self) -> str:
        errors = f", {self.errors} errors" if self.errors else ""
        return f"{self.per_second:,.0f} {self.unit} (n={self.count}{errors})"


Measure = Latency | Rate | None


@dataclass
class Row:
    operation: str
    size: str
    lineagehub: Measure
    baseline: Measure
    note: str = ""

    @property
    def ratio(self) -> float | None:
        a, b = self.lineagehub, self.baseline
        if isinstance(a, Latency) and isinstance(b, Latency) and b.p50 > 0:
            return a.p50 / b.p50
        if isinstance(a, Rate) and isinstance(b, Rate) and a.per_second > 0:
            return b.per_second / a.per_second
        return None


def _cell(measure: Measure) -> str:
    return "n/a" if measure is None else measure.cell()


def _trips(measure: Measure) -> str:
    return measure.trips_cell() if isinstance(measure, Latency) else "-"


@dataclass
class Table:
    title: str
    baseline: str  # what the baseline is, in a few words
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def render(self) -> str:
        head = (
            "| operation | size | lineagehub p50 / p95 / p99 ms | trips "
            f"| {self.baseline} p50 / p95 / p99 ms | trips | ratio |"
        )
        lines = [f"### {self.title}", "", head, "|---|---|---|---|---|---|---|"]
        for row in self.rows:
            ratio = f"{row.ratio:.2f}" if row.ratio is not None else "-"
            lhub = row.note if row.lineagehub is None and row.note else _cell(row.lineagehub)
            lines.append(
                f"| {row.operation} | {row.size} | {lhub} "
                f"| {_trips(row.lineagehub)} | {_cell(row.baseline)} | {_trips(row.baseline)} "
                f"| {ratio} |"
            )
        lines += [""] + [f"- {note}" for note in self.notes]
        return "\n".join(lines).rstrip() + "\n"

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "baseline": self.baseline,
            "rows": [{**asdict(r), "ratio": r.ratio} for r in self.rows],
            "notes": self.notes,
        }


def save(tables: Sequence[Table], path: Path | None) -> None:
    """Write the tables as JSON (for later comparison), when a path is given."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([t.to_json() for t in tables], indent=2) + "\n")

"""What ran on the machine while the slowest requests started.

A closed-loop run's p99 is made by bursts: most of the slowest requests start in a few
100 ms windows (``Tally.bursts``). This samples the CPU time of every thread of the
processes it is told to watch (and of their child processes, so a server's workers
count under the server), every ``every`` seconds, from ``/proc`` (Linux only). It then
sets what each thread group used in the windows where requests at or above p99 started
against what it used in the other windows. A group that runs mostly in the slow windows
(Neo4j's collector threads, a JIT compiler) points at what makes the bursts.

Thread groups are a process's name and the thread's name with its number dropped
(``neo4j/GC Thread``, ``neo4j/neo4j.BoltWork``, ``api/lineagehub``). Linux truncates
thread names to 15 characters.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")
_NUMBERED = re.compile(r"[#\-_ ]?\d+$")


@dataclass(frozen=True)
class Watch:
    name: str
    pid: int

    @staticmethod
    def parse(text: str) -> Watch:
        """``NAME=PID`` (the command line's ``--watch``)."""
        name, _, pid = text.partition("=")
        if not name or not pid.isdigit():
            raise ValueError(f"--watch takes NAME=PID, not {text!r}")
        return Watch(name, int(pid))


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, ()))
    return found


def _threads(pid: int) -> dict[tuple[int, str], tuple[str, int]]:
    """(pid, tid) -> (thread name, user + system ticks) for every thread of ``pid``."""
    out: dict[tuple[int, str], tuple[str, int]] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        out[(pid, tid)] = (name, int(fields[11]) + int(fields[12]))
    return out


def slow_windows(
    started: list[float], seconds: list[float], window: float = 0.1
) -> tuple[float, set[int]]:
    """The p99 of ``seconds``, and the ``window``-second windows (numbered from 0 by
    ``started``, per request) in which requests at or above it started."""
    if not seconds:
        return 0.0, set()
    p99 = sorted(seconds)[int(len(seconds) * 0.99)]
    return p99, {
        int(began / window) for began, took in zip(started, seconds, strict=True) if took >= p99
    }


@dataclass
class Sampler:
    """CPU per thread group of the watched processes, every ``every`` seconds."""

    watches: list[Watch]
    every: float = 0.1
    # (time.perf_counter(), group -> cores used since the sample before)
    samples: list[tuple[float, dict[str, float]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Sampler:
        if self.watches:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _snapshot(self, pids: dict[int, str]) -> dict[tuple[int, str], tuple[str, int]]:
        ticks: dict[tuple[int, str], tuple[str, int]] = {}
        for pid, name in pids.items():
            for key, (thread, used) in _threads(pid).items():
                ticks[key] = (f"{name}/{_NUMBERED.sub('', thread)}", used)
        return ticks

    def _run(self) -> None:
        pids = {pid: w.name for w in self.watches for pid in _descendants(w.pid)}
        before, at = self._snapshot(pids), time.perf_counter()
        while not self._stop.wait(self.every):
            now_ticks, now = self._snapshot(pids), time.perf_counter()
            used: dict[str, float] = defaultdict(float)
            for key, (group, ticks) in now_ticks.items():
                previous = before.get(key)
                if previous is not None:
                    used[group] += (ticks - previous[1]) / _TICK / (now - at)
            self.samples.append((at, used))
            before, at = now_ticks, now

    def split(
        self, started: list[float], seconds: list[float], zero: float, window: float = 0.1
    ) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
        """The samples taken in the ``window``-second windows where requests at or above
        p99 started, and the others. ``started`` is per request, in seconds after
        ``zero`` (a ``time.perf_counter()`` value)."""
        _, slow = slow_windows(started, seconds, window)
        split: dict[bool, list[dict[str, float]]] = {True: [], False: []}
        for at, used in self.samples:
            split[int((at - zero) / window) in slow].append(used)
        return split[True], split[False]

    def in_slow_windows(
        self, started: list[float], seconds: list[float], zero: float, window: float = 0.1
    ) -> str:
        """What each group used, in cores, in the samples of the slow windows (``split``)
        against the others; the groups whose use differs most first."""
        if len(seconds) < 200:
            return "too few requests to tell"
        in_slow, others = self.split(started, seconds, zero, window)
        if not in_slow or not others:
            return "no sample fell in the slow windows, or none outside them"
        bad, good = mean(in_slow), mean(others)
        names = sorted(set(bad) | set(good), key=lambda k: -abs(bad[k] - good[k]))
        listed = ", ".join(f"{k} {bad[k]:.2f} vs {good[k]:.2f}" for k in names[:6])
        return (
            f"cores used in the {len(in_slow)} samples in windows where requests at or "
            f"above p99 started, against the other {len(others)}: {listed}"
        )


# A JVM's just-in-time compiler threads, as Linux shows their (truncated) names.
_JIT = re.compile(r"/C[12] Compiler")


def still_compiling(samples: list[dict[str, float]], limit: float = 0.1) -> str | None:
    """A warning when a watched JVM's compiler threads used more than ``limit`` cores on
    average over ``samples``: the JVM is still compiling its hot code, so the run measures a
    store warming up, not its steady state (a fresh Neo4j takes minutes of load)."""
    if not samples:
        return None
    used = mean(samples)
    busy = {k: v for k, v in used.items() if _JIT.search(k)}
    total = sum(busy.values())
    if total <= limit:
        return None
    names = ", ".join(sorted({k.split("/", 1)[0] for k in busy}))
    return (
        f"the JIT compilers of {names} used {total:.2f} cores on average: still warming up, "
        "so this is not a steady-state measurement"
    )


def mean(samples: list[dict[str, float]]) -> dict[str, float]:
    """Cores per group, averaged over ``samples``."""
    total: dict[str, float] = defaultdict(float)
    for used in samples:
        for group, cores in used.items():
            total[group] += cores
    return defaultdict(float, {k: v / len(samples) for k, v in total.items()})

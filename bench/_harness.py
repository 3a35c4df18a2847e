"""What every benchmark shares: servers in their own processes, ``wrk`` rounds, CPU per request,
interleaved A/B rounds, rows of ratios and the one markdown table.

The machine is small and shared, so no figure stands alone: each row puts edgesim beside a
baseline measured in the same run, in rounds that alternate the two sides (A B, B A, A B, ...),
and reports medians. A server under test runs in its own process (tree): its CPU time, read with
psutil before and after each round, is separable from the load generator's and the origin's.
A round with a non-2xx answer or a socket error makes its row "not a result".
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from _lab import (
    ADMIN_TOKEN,
    BENCH,
    BODY,
    BODY_SIZE,
    PYTHON,
    ROOT,
    CpuSnapshot,
    Lab,
    Server,
    admin_cache,
    expect,
    fetch,
    free_port,
    warm,
)

# Re-exported for the benchmark scripts (``h.Lab``, ``h.expect`` ...): the lab's servers and
# checks live in _lab.py. This module's own names are public as they are defined.
__all__ = [
    "ADMIN_TOKEN",
    "BENCH",
    "BODY",
    "BODY_SIZE",
    "PYTHON",
    "ROOT",
    "CpuSnapshot",
    "Lab",
    "Server",
    "admin_cache",
    "expect",
    "fetch",
    "free_port",
    "warm",
]

# --- options ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """How long to measure: ``rounds`` A/B rounds of ``seconds`` per side."""

    rounds: int = 5
    seconds: int = 2
    quick: bool = False


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--quick", action="store_true", help="a few seconds per row: for trying things out"
    )
    p.add_argument("--rounds", type=int, default=None, help="A/B rounds per row (default 5)")
    p.add_argument("--seconds", type=int, default=None, help="seconds per side per round (2)")
    return p


def options(args: argparse.Namespace) -> Options:
    quick = bool(args.quick)
    rounds = args.rounds if args.rounds is not None else (3 if quick else 5)
    seconds = args.seconds if args.seconds is not None else (1 if quick else 2)
    if rounds < 1 or seconds < 1:
        raise SystemExit("--rounds and --seconds must be at least 1")
    return Options(rounds=rounds, seconds=seconds, quick=quick)


# --- the machine -----------------------------------------------------------------------------


def _command_version(command: list[str]) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "?"


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def machine() -> str:
    """One line: the date, cores, CPU model, Python, Node.js and wrk versions."""
    node = _command_version(["node", "--version"])
    wrk = _command_version(["wrk", "-v"]).split(" [")[0] if shutil.which("wrk") else "not found"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{datetime.date.today().isoformat()}, {os.cpu_count()} cores ({cpu_model()}), "
        f"Linux {platform.release()}, Python {platform.python_version()}, Node.js {node}, "
        f"{wrk}; load average before the run {load}"
    )


# --- load ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """What one ``wrk`` run reports."""

    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


_DURATION = re.compile(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b")
_UNIT = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def parse_wrk(out: str) -> Load:
    """Read wrk's summary. wrk counts answers with a status of 400 or more as "Non-2xx or 3xx
    responses"; the rows check before measuring that their URL answers 200."""
    found = _DURATION.search(out)
    if found is None:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    return Load(
        requests=int(found.group(1)),
        seconds=float(found.group(2)) * _UNIT[found.group(3)],
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in sockets.groups()) if sockets else 0,
    )


def wrk_argv(url: str, seconds: float, connections: int, script: Path | None = None) -> list[str]:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (apt-get install wrk): the benchmarks need it")
    threads = 1 if connections < 2 else 2
    argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s"]
    if script is not None:
        argv += ["-s", str(script)]
    return [*argv, url]


def wrk(url: str, seconds: float, connections: int, script: Path | None = None) -> Load:
    argv = wrk_argv(url, seconds, connections, script)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr or out.stdout}")
    return parse_wrk(out.stdout)


# --- rounds ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    """One side of an A/B comparison: what to load, and which server's CPU to read."""

    label: str
    server: Server
    url: str
    connections: int = 32
    script: Path | None = None


@dataclass(frozen=True)
class Round:
    load: Load
    cpu_main: float
    cpu_tree: float

    @property
    def us_per_request(self) -> float:
        """CPU microseconds of the server's process tree per answered request."""
        return self.cpu_tree / self.load.requests * 1e6 if self.load.requests else float("nan")

    @property
    def main_us_per_request(self) -> float:
        return self.cpu_main / self.load.requests * 1e6 if self.load.requests else float("nan")


def measure(side: Side, seconds: float) -> Round:
    before = side.server.cpu()
    load = wrk(side.url, seconds, side.connections, side.script)
    main, tree = side.server.cpu().since(before)
    return Round(load, main, tree)


@dataclass
class Figures:
    """One side's rounds, summarised as medians."""

    label: str
    rounds: list[Round] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return statistics.median(r.load.rps for r in self.rounds)

    @property
    def us(self) -> float:
        return statistics.median(r.us_per_request for r in self.rounds)

    @property
    def main_us(self) -> float:
        return statistics.median(r.main_us_per_request for r in self.rounds)

    @property
    def non_2xx(self) -> int:
        return sum(r.load.non_2xx for r in self.rounds)

    @property
    def socket_errors(self) -> int:
        return sum(r.load.socket_errors for r in self.rounds)

    @property
    def errors(self) -> str:
        """Empty when every round was clean; otherwise what went wrong."""
        if not (self.non_2xx or self.socket_errors):
            return ""
        return f"{self.label}: {self.non_2xx} non-2xx, {self.socket_errors} socket errors"

    def text(self, *, main_only: bool = False) -> str:
        us = self.main_us if main_only else self.us
        return f"{_count(self.rps)} req/s, {_us(us)} CPU/req"


def interleave(sides: Sequence[Side], options: Options, *, warmup: float = 1.0) -> list[Figures]:
    """``options.rounds`` rounds over ``sides``, the order reversed every other round, after a
    warm-up run of each side. Returns one :class:`Figures` per side, in the given order."""
    for side in sides:
        wrk(side.url, warmup, side.connections, side.script)
    figures = [Figures(side.label) for side in sides]
    for number in range(options.rounds):
        order = list(range(len(sides)))
        if number % 2:
            order.reverse()
        for index in order:
            figures[index].rounds.append(measure(sides[index], options.seconds))
    return figures


def paired(a: Figures, b: Figures, value: Callable[[Round], float]) -> float:
    """The median over rounds of ``value(a's round) / value(b's round)``."""
    ratios = [value(x) / value(y) for x, y in zip(a.rounds, b.rounds, strict=True) if value(y)]
    return statistics.median(ratios) if ratios else float("nan")


def difference_ratio(a: Figures, b: Figures, c: Figures, d: Figures) -> float:
    """The median over rounds of ``(a - b) / (c - d)`` in CPU per request: what one extra costs
    against what another does, each read as the difference of two sides of the same round."""
    ratios = []
    for w, x, y, z in zip(a.rounds, b.rounds, c.rounds, d.rounds, strict=True):
        extra = y.us_per_request - z.us_per_request
        if extra > 0:
            ratios.append((w.us_per_request - x.us_per_request) / extra)
    return statistics.median(ratios) if ratios else float("nan")


def rps_ratio(a: Figures, b: Figures) -> float:
    return paired(a, b, lambda r: r.load.rps)


def cpu_ratio(a: Figures, b: Figures, *, main_only: bool = False) -> float:
    if main_only:
        return paired(a, b, lambda r: r.main_us_per_request)
    return paired(a, b, lambda r: r.us_per_request)


# --- rows and the table ----------------------------------------------------------------------

MET, NOT_MET, NO_TARGET = "met", "**not met**", "-"


@dataclass
class Row:
    """One line of the table: what edgesim did, the baseline in the same run, their ratio, the
    target and whether it is met."""

    name: str
    edgesim: str
    baseline: str
    ratio: str
    target: str = NO_TARGET
    verdict: str = NO_TARGET


def verdict(met: bool) -> str:
    return MET if met else NOT_MET


def not_a_result(name: str, target: str, *figures: Figures) -> Row | None:
    """A row saying the run had errors, when any side had one; ``None`` when all were clean."""
    problems = [f.errors for f in figures if f.errors]
    if not problems:
        return None
    text = "; ".join(problems)
    return Row(name, f"errors: {text}", "-", "-", target, "not a result (errors)")


def unmeasured(name: str, why: str, target: str = NO_TARGET) -> Row:
    return Row(name, f"not measured: {why}", "-", "-", target, "not measured")


def guarded(name: str, target: str, run: Callable[[], list[Row]]) -> list[Row]:
    """``run()``'s rows, or one row saying why they could not be measured."""
    try:
        return run()
    except Exception as error:  # one broken row must not lose the others
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"[bench] {name}: {type(error).__name__}: {error}", file=sys.stderr)
        return [unmeasured(name, first[:160], target)]


def table(rows: Sequence[Row]) -> str:
    lines = [
        "| row | edgesim | baseline (same run) | ratio | target | |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [r.name, r.edgesim, r.baseline, r.ratio, r.target, r.verdict]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def report(title: str, rows: Sequence[Row], started: float, options: Options) -> str:
    wall = time.perf_counter() - started
    mode = "quick" if options.quick else "full"
    return (
        f"## {title}\n\n"
        f"Machine: {machine()}.\n"
        f"Each row: {options.rounds} interleaved rounds of {options.seconds} s per side "
        f"({mode} mode), medians; wrk, 1 KB bodies; CPU/req is the server's process tree "
        f"(edgesim: the proxy and its function workers), read from /proc.\n\n"
        f"{table(rows)}\n\nWall time: {wall:.0f} s.\n"
    )


def _count(value: float) -> str:
    return f"{value / 1000:.1f}k" if value >= 10_000 else f"{value:,.0f}"


def _us(value: float) -> str:
    return f"{value / 1000:.2f} ms" if value >= 1000 else f"{value:.0f} us"


def fmt_count(value: float) -> str:
    return _count(value)


def fmt_us(value: float) -> str:
    return _us(value)


def fmt_ratio(value: float) -> str:
    return f"{value:.2f}x"


@contextlib.contextmanager
def section(name: str) -> Iterator[None]:
    """Say on stderr what is being measured, and how long it took."""
    started = time.perf_counter()
    print(f"[bench] {name} ...", file=sys.stderr, flush=True)
    yield
    print(f"[bench] {name}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)

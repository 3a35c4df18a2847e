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
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PYTHON = sys.executable
ADMIN_TOKEN = "bench-" + "0" * 32
BODY_SIZE = 1024
# Text, so a JavaScript peer that handles bodies as strings serves the very same bytes.
BODY = (b"edgesim benchmark body " * (BODY_SIZE // 23 + 1))[:BODY_SIZE]


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


# --- processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class CpuSnapshot:
    """CPU seconds (user + system) of a process and of its whole tree, per process."""

    main: float
    tree: dict[tuple[int, float], float]

    def since(self, before: CpuSnapshot) -> tuple[float, float]:
        """(main, tree) CPU seconds spent between ``before`` and this snapshot. A process that
        started in between counts from its start; one that ended in between is not counted."""
        tree = sum(seconds - before.tree.get(key, 0.0) for key, seconds in self.tree.items())
        return self.main - before.main, tree


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


class Server:
    """A server in its own process group (so a stop reaches whatever it started), its output
    in a log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        workdir: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.log_path = workdir / f"{re.sub(r'[^a-z0-9]+', '-', name.lower())}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
        self.process = psutil.Process(self.popen.pid)
        self.url = ""
        self.admin_url = ""

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def fail(self, why: str) -> RuntimeError:
        tail = "\n".join(self.log_text().splitlines()[-15:])
        return RuntimeError(f"{self.name}: {why}; its output ends with:\n{tail}")

    def wait_for_log(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """The first match of ``pattern`` in the log, waiting for it to be written."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.log_text())
            if found is not None:
                return found
            if self.popen.poll() is not None:
                raise self.fail(f"exited with status {self.popen.returncode}")
            time.sleep(0.05)
        raise self.fail(f"did not print {pattern!r} within {timeout:g} s")

    def wait_for_http(self, url: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise self.fail(f"exited with status {self.popen.returncode}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(url, timeout=2) as answer:
                    answer.read()
                    return
            time.sleep(0.1)
        raise self.fail(f"did not answer {url} within {timeout:g} s")

    def cpu(self) -> CpuSnapshot:
        main = _cpu(self.process)
        tree = {(self.pid, self.process.create_time()): main}
        for child in self.process.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                tree[(child.pid, child.create_time())] = _cpu(child)
        return CpuSnapshot(main, tree)

    def rss(self) -> int:
        """Resident memory of the main process, in bytes."""
        return int(self.process.memory_info().rss)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)  # the group this server started
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)
        self._log.close()


class Lab(contextlib.ExitStack):
    """A temporary folder and the servers started in it, all stopped on exit."""

    def __init__(self, prefix: str = "edgesim-bench-") -> None:
        super().__init__()
        self._tmp = tempfile.TemporaryDirectory(prefix=prefix)
        self.dir = Path(self._tmp.name)
        self.callback(self._tmp.cleanup)

    def start(self, server: Server) -> Server:
        self.callback(server.stop)
        return server

    def plain(
        self,
        name: str = "plain aiohttp",
        *,
        uvloop: bool = False,
        prefix: Sequence[str] = (),
        timeout: float = 30.0,
    ) -> Server:
        """An aiohttp server answering every GET with :data:`BODY` (the hit baseline, and the
        HTTP origin of the miss rows), on asyncio's loop or on uvloop; ``prefix`` is a command
        the interpreter runs under (a profiler), ``timeout`` how long it may take to start."""
        argv = [*prefix, PYTHON, str(BENCH / "_servers.py"), "plain"]
        argv += ["--uvloop"] if uvloop else []
        server = self.start(Server(name, argv, workdir=self.dir))
        port = server.wait_for_log(r"listening on (\d+)", timeout).group(1)
        server.url = f"http://127.0.0.1:{port}"
        return server

    def pools(self, name: str, config: Path, uri: str, *, timeout: float = 60.0) -> Server:
        """The bare round trips of the functions that ``GET uri`` runs under the distribution
        ``config`` (see ``_servers.py pools``); its URL ends in ``/invoke`` or ``/none``."""
        argv = [PYTHON, str(BENCH / "_servers.py"), "pools", str(config), uri]
        server = self.start(Server(name, argv, workdir=self.dir, cwd=config.parent))
        port = server.wait_for_log(r"listening on (\d+)", timeout).group(1)
        server.url = f"http://127.0.0.1:{port}"
        return server

    def edgesim(
        self,
        name: str,
        config: str,
        *,
        args: Sequence[str] = (),
        files: dict[str, bytes] | None = None,
        entry: Sequence[str] = ("-m", "edgesim"),
        prefix: Sequence[str] = (),
        timeout: float = 30.0,
    ) -> Server:
        """``edgesim serve`` on the distribution ``config`` (YAML, written to the lab's folder
        with ``files`` beside it), its access log in the server's log file; ``entry`` is what
        the interpreter runs (another script taking ``edgesim``'s arguments), ``prefix`` and
        ``timeout`` as for :meth:`plain`."""
        folder = self.dir / re.sub(r"[^a-z0-9]+", "-", name.lower())
        folder.mkdir()
        for relative, content in (files or {}).items():
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
            (folder / relative).write_bytes(content)
        (folder / "bench.yaml").write_text(config)
        argv = [*prefix, PYTHON, *entry, "serve", "--port", "0", "--admin-port", "0"]
        argv += ["--shutdown-grace", "1", *args, str(folder / "bench.yaml")]
        server = self.start(
            Server(name, argv, workdir=self.dir, env={"EDGESIM_ADMIN_TOKEN": ADMIN_TOKEN})
        )
        server.url = server.wait_for_log(r" on (http://[0-9.]+:\d+)/", timeout).group(1)
        admin = server.wait_for_log(r"admin API[^\n]* on (http://[0-9.]+:\d+)/", timeout).group(1)
        server.admin_url = admin
        return server


def admin_cache(server: Server) -> dict[str, object]:
    """``GET /cache`` of an edgesim's admin API: objects and the bytes its bound counts."""
    request = urllib.request.Request(
        server.admin_url + "/cache",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        data: dict[str, object] = json.loads(answer.read())
    return data


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    """One GET: status, headers, body (errors included)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, dict(answer.headers.items()), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers.items()), error.read()


def expect(url: str, *, x_cache: str | None = None) -> None:
    """Fail unless ``url`` answers 200 with :data:`BODY` (and the given ``X-Cache``)."""
    status, headers, body = fetch(url)
    seen = headers.get("X-Cache", "")
    if status != 200 or body != BODY or (x_cache is not None and not seen.startswith(x_cache)):
        raise RuntimeError(
            f"{url} answered {status}, X-Cache {seen!r}, {len(body)} bytes; "
            f"expected 200, {x_cache!r}, the {BODY_SIZE}-byte body"
        )


def warm(url: str, *, streak: int = 12, tries: int = 200) -> None:
    """Fetch ``url`` on fresh connections until ``streak`` answers in a row are cache Hits.

    With ``serve --workers N`` each connection lands on one of N processes, each with its own
    cache: a single Miss warms only the process that took it.
    """
    hits = 0
    for _ in range(tries):
        _, headers, _ = fetch(url)
        hits = hits + 1 if headers.get("X-Cache", "").startswith("Hit") else 0
        if hits >= streak:
            return
    expect(url, x_cache="Hit")


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

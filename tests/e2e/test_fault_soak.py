"""Fault soak: a real ``edgesim serve`` under load while functions and origins misbehave.

``make soak`` runs it (``pytest -m slow -s``); ``EDGESIM_SOAK_REQUESTS`` sets the number of
requests (default 50,000), sent over 100 kept-alive connections by the raw client of
``soak_load.py``. The mix: cache hits and misses; Python and Node.js functions at all four
triggers, well-behaved or raising, crashing the worker, timing out or returning what CloudFront
refuses; origins (``faulty_origins.py``) that frame their answers wrongly, cut them, reset them,
send bad or oversized headers, or never answer; and a few viewers that stall mid-request line or
never send a byte. Every class has the statuses, ``X-Cache`` labels and bodies it may get.

It fails on an unanswered request, a wrong status, label or body, a traceback in the server's
log (a defect of edgesim answers 502, as some faults do), more open descriptors or worker
processes in the server once its pools have settled than after the warm-up, a peak RSS of the
server over :data:`RSS_LIMIT_MB`, a stalled viewer the edge still holds after
:data:`STALL_LIMIT_S`, or a load that outlives its deadline. It prints a table either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest

from tests.e2e.conftest import FUNCTIONS
from tests.e2e.faulty_origins import FAULTS, RawOrigin, body_for
from tests.e2e.soak_load import Answer, Case, StalledViewer, Tally, run_load
from tests.e2e.soak_server import Counts, EdgeProcess, Peaks

REQUESTS = int(os.environ.get("EDGESIM_SOAK_REQUESTS", "50000"))
CONCURRENCY = 100
# The load must keep at least this pace, or the soak stops and fails as timed out.
MIN_RATE = 50
LOAD_DEADLINE_S = 60 + REQUESTS / MIN_RATE
WARM_UP_DEADLINE_S = 180
# Idle function workers and origin connections are given back within this long after the load.
IDLE_S = 2
SETTLE_S = 30.0
# Descriptors the server may hold beyond its warm-up count once settled (none leak per request).
FD_SLACK = 4
RSS_LIMIT_MB = 192
# A well-behaved invocation takes milliseconds; this leaves room for a loaded machine, and the
# `timeout` fault (a 3 s sleep) outlives it.
FUNCTION_TIMEOUT_S = 2
# An edge must not hold a connection whose request line never ends (or never starts) for long.
STALL_LIMIT_S = 60.0
HOST = "127.0.0.1"

DIST = """
origins:
  raw: {{url: "{raw}", read_timeout: 10, keepalive_timeout: {idle}}}
  silent: {{url: "{silent}", read_timeout: 1, connection_attempts: 2, keepalive_timeout: {idle}}}
functions:
  soak-py: {{runtime: python3.11, code: "{functions}/soak", handler: index.handler,
             timeout: {timeout}, idle_timeout: {idle}}}
  soak-node: {{runtime: nodejs20.x, code: "{functions}/soak", handler: index.handler,
               timeout: {timeout}, idle_timeout: {idle}}}
behaviors:
  - {{path_pattern: /cached/*, origin: raw, cache_policy: CachingOptimized}}
  - {{path_pattern: /silent/*, origin: silent, cache_policy: CachingDisabled}}
{function_behaviors}
  - {{path_pattern: "*", origin: raw, cache_policy: CachingDisabled}}
"""
FUNCTION_BEHAVIOR = """
  - path_pattern: /{prefix}/*
    origin: raw
    cache_policy: CachingDisabled
    origin_request_policy: AllViewer
    functions: {{viewer-request: {name}, origin-request: {name}, origin-response: {name},
                 viewer-response: {name}}}"""
RUNTIMES = {"py": "soak-py", "node": "soak-node"}
TRIGGERS = ("vreq", "oreq", "ores", "vres")
CACHED_OBJECTS = 50


# -- what each class of request may get ----------------------------------------------------------


def _whole_body(path: str, answer: Answer) -> str | None:
    if answer.status != 200:
        return None
    if not answer.whole:
        return f"body cut at {len(answer.body)} bytes"
    if answer.body != body_for(path):
        return f"wrong body ({len(answer.body)} bytes): {answer.body[:60]!r}"
    return None


def _marked(runtime: str, path: str, answer: Answer) -> str | None:
    marks = {
        "x-soak-seen": "vreq,oreq",
        "x-soak-ores": runtime,
        "x-soak-vres": runtime,
    }
    for name, value in marks.items():
        if answer.headers.get(name) != value:
            return f"{name}: {answer.headers.get(name)!r}, expected {value!r}"
    return _whole_body(path, answer)


def _cut_body(path: str, answer: Answer) -> str | None:
    if answer.status != 200:
        return None
    full = body_for(path)
    if answer.whole or not answer.closed:
        return "the body came whole over an open connection"
    if len(answer.body) >= len(full) or not full.startswith(answer.body):
        return f"the short body is not a prefix of the answer ({len(answer.body)} bytes)"
    return None


def _head_only(path: str, answer: Answer) -> str | None:
    length = answer.headers.get("content-length")
    if answer.body or length != str(len(body_for(path))):
        return f"HEAD answer with body {answer.body[:40]!r} and Content-Length {length!r}"
    return None


def _case(
    name: str,
    weight: int,
    path: Callable[[int], str],
    statuses: set[int],
    labels: set[str],
    check: Callable[[str, Answer], str | None] | None = _whole_body,
    method: str = "GET",
) -> Case:
    return Case(name, weight, path, frozenset(statuses), frozenset(labels), check, method)


def _at(template: str, n: int) -> str:
    return template.format(n=n, trigger=TRIGGERS[n % len(TRIGGERS)])


def _cases() -> list[Case]:
    """The mix, weights per 1,000 requests."""
    cases = [
        _case("cache-hit", 300, lambda n: f"/cached/{n % CACHED_OBJECTS}", {200}, {"Hit"}),
        _case("cache-miss", 254, partial(_at, "/miss/{n}"), {200}, {"Miss"}),
    ]
    failures = {
        "raise": (12, 503, "LambdaExecutionError"),
        "invalid": (12, 502, "LambdaValidationError"),
        "crash": (3, 503, "LambdaExecutionError"),
        "timeout": (2, 503, "LambdaLimitExceeded"),
    }
    for prefix in RUNTIMES:
        path = partial(_at, f"/{prefix}/ok/{{n}}")
        cases.append(_case(f"{prefix}-ok", 90, path, {200}, {"Miss"}, partial(_marked, prefix)))
        for fault, (weight, status, label) in failures.items():
            path = partial(_at, f"/{prefix}/{{trigger}}-{fault}/{{n}}")
            cases.append(_case(f"{prefix}-{fault}", weight, path, {status}, {label}, None))
    origin: dict[str, tuple[set[int], set[str], Callable[[str, Answer], str | None] | None]] = {
        "longer": ({200}, {"Miss"}, _whole_body),
        "crlf": ({200}, {"Miss"}, _whole_body),
        "headbody": ({200}, {"Miss"}, _head_only),
        "second": ({200}, {"Miss"}, _whole_body),
        "short": ({200}, {"Miss"}, _cut_body),
        # Reset before the edge has read the head (a loaded machine) is CloudFront's 502.
        "reset": ({200, 502}, {"Miss", "Error"}, _cut_body),
        "ctl": ({502}, {"Error"}, None),
        "bighead": ({502}, {"Error"}, None),
    }
    assert set(origin) == set(FAULTS)
    for fault, (statuses, labels, check) in origin.items():
        method = "HEAD" if fault == "headbody" else "GET"
        path = partial(_at, f"/o/{fault}/{{n}}")
        cases.append(_case(f"origin-{fault}", 25, path, statuses, labels, check, method))
    cases.append(_case("origin-silent", 8, partial(_at, "/silent/{n}"), {504}, {"Error"}, None))
    assert sum(case.weight for case in cases) == 1000
    return cases


# -- the soak --------------------------------------------------------------------------------------


def _plans(cases: list[Case]) -> tuple[list[tuple[Case, int]], list[tuple[Case, int]]]:
    """The warm-up (every cached object, then each other class twice) and the load."""
    fill = _case("cache-fill", 0, cases[0].path, {200}, {"Miss", "Hit"})
    warm = [(fill, n) for n in range(CACHED_OBJECTS)]
    warm += [(case, n) for case in cases[1:] for n in range(2)]
    rng = random.Random(20_260_509)
    chosen = rng.choices(cases, weights=[case.weight for case in cases], k=REQUESTS)
    return warm, [(case, n) for n, case in enumerate(chosen)]


def _distribution(path: Path, origins: dict[str, RawOrigin]) -> Path:
    behaviors = "".join(
        FUNCTION_BEHAVIOR.format(prefix=prefix, name=name) for prefix, name in RUNTIMES.items()
    )
    path.write_text(
        DIST.format(
            raw=origins["raw"].url,
            silent=origins["silent"].url,
            idle=IDLE_S,
            timeout=FUNCTION_TIMEOUT_S,
            functions=FUNCTIONS,
            function_behaviors=behaviors,
        )
    )
    return path


@dataclass
class Soak:
    """What one soak measured."""

    tallies: dict[str, Tally] = field(default_factory=dict)
    warm_tallies: dict[str, Tally] = field(default_factory=dict)
    stalled: list[StalledViewer] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    before: Counts | None = None
    after: Counts | None = None
    peaks: Peaks = field(default_factory=Peaks)
    peak_rss_mb: float = 0.0
    elapsed_s: float = 0.0
    client_cpu_s: float = 0.0
    # Origin connections open once settled, by their last exchange.
    held: dict[str, Counter[str]] = field(default_factory=dict)
    defects: list[str] = field(default_factory=list)  # tracebacks in edgesim's own log

    def table(self, origins: dict[str, RawOrigin]) -> str:
        tallies = self.tallies.values()
        sent = sum(t.sent for t in tallies)
        answered = sum(t.answered for t in tallies)
        statuses: Counter[int] = sum((t.statuses for t in tallies), Counter())
        rate = answered / max(self.elapsed_s, 1e-9)
        warm = sum(t.sent for t in self.warm_tallies.values())
        rows = [
            f"fault soak: {sent} requests sent, {answered} answered, {sent - answered} "
            f"unanswered, concurrency {CONCURRENCY}, {self.elapsed_s:.1f} s, {rate:.0f} req/s "
            f"(after a warm-up of {warm}); the soak's own CPU: {self.client_cpu_s:.1f} s",
            "by status: " + ", ".join(f"{s}: {c}" for s, c in sorted(statuses.items())),
            "",
            f"{'class':<18}{'sent':>7}{'answered':>10}{'short':>7}{'problems':>10}  statuses",
        ]
        for name, tally in sorted(self.tallies.items()):
            by_status = ", ".join(f"{s}: {c}" for s, c in sorted(tally.statuses.items()))
            rows.append(
                f"{name:<18}{tally.sent:>7}{tally.answered:>10}{tally.short:>7}"
                f"{tally.problems:>10}  {by_status}"
            )
        before, after = self.before, self.after
        rows += ["", f"tracebacks in edgesim's log: {len(self.defects)}"]
        if before is not None and after is not None:
            rows += [
                f"server fds: {before.fds} before, {after.fds} after (slack {FD_SLACK})",
                f"processes under the server (workers): {before.workers} before, "
                f"{after.workers} after, {self.peaks.workers} at the peak",
                f"server RSS: {before.rss_mb:.0f} MiB before, {after.rss_mb:.0f} MiB after, "
                f"peak {self.peak_rss_mb:.0f} MiB (limit {RSS_LIMIT_MB} MiB)",
            ]
        stalls = Counter((v.sent, v.state()) for v in self.stalled)
        rows += [f"{n} stalled viewer(s) {sent!r}: {state}" for (sent, state), n in stalls.items()]
        for name, origin in origins.items():
            held = self.held.get(name, Counter())
            rows.append(
                f"origin {name}: {origin.connections} connections, {held.total()} open when "
                f"settled {dict(held)}; requests {dict(sorted(origin.requests.items()))}"
            )
        return "\n".join(rows)

    def verdict(self) -> list[str]:
        """Every failure, the problems of each class included."""
        failures = list(self.failures)
        unanswered = sum(t.sent - t.answered for t in self.tallies.values())
        if unanswered:
            failures.append(f"{unanswered} requests got no answer")
        if self.defects:
            failures.append(f"edgesim logged {len(self.defects)} tracebacks, the first:")
            failures += self.defects[:5]
        for label, tallies in (("warm-up ", self.warm_tallies), ("", self.tallies)):
            for name, tally in sorted(tallies.items()):
                failures += [f"{label}{name}: {example}" for example in tally.examples]
                if tally.problems > len(tally.examples):
                    more = tally.problems - len(tally.examples)
                    failures.append(f"{label}{name}: ... {more} more problems")
        sent = sum(t.sent for t in self.tallies.values())
        if sent != REQUESTS:
            failures.append(f"{sent} of {REQUESTS} requests were sent")
        failures += [
            f"stalled viewer {v.sent!r}: {v.state()}, limit {STALL_LIMIT_S:g} s"
            for v in self.stalled
            if v.closed_after is None or v.closed_after > STALL_LIMIT_S
        ]
        before, after = self.before, self.after
        if before is not None and after is not None:
            if after.workers > before.workers:
                failures.append(f"worker processes grew from {before.workers} to {after.workers}")
            if after.fds > before.fds + FD_SLACK:
                failures.append(f"server descriptors grew from {before.fds} to {after.fds}")
        if self.peak_rss_mb > RSS_LIMIT_MB:
            failures.append(f"server peak RSS {self.peak_rss_mb:.0f} MiB > {RSS_LIMIT_MB} MiB")
        return failures


async def _run(edge: EdgeProcess, origins: dict[str, RawOrigin], soak: Soak) -> None:
    await edge.wait_listening()
    warm, plan = _plans(_cases())
    try:
        async with asyncio.timeout(WARM_UP_DEADLINE_S):
            await run_load(HOST, edge.port, warm, concurrency=20, tallies=soak.warm_tallies)
    except TimeoutError:
        soak.failures.append(f"the warm-up did not finish within {WARM_UP_DEADLINE_S} s")
    before = soak.before = await edge.settle(lambda counts: counts.workers == 0, SETTLE_S)

    soak.stalled = [StalledViewer(b"GET /miss/1 HT") for _ in range(4)]
    soak.stalled += [StalledViewer(b"") for _ in range(4)]
    async with asyncio.TaskGroup() as group:
        stalling = [group.create_task(v.run(HOST, edge.port)) for v in soak.stalled]
        sampler = group.create_task(edge.sample(soak.peaks))
        started, cpu = time.monotonic(), time.process_time()
        try:
            async with asyncio.timeout(LOAD_DEADLINE_S):
                await run_load(HOST, edge.port, plan, concurrency=CONCURRENCY, tallies=soak.tallies)
        except TimeoutError:
            soak.failures.append(f"the load did not finish within {LOAD_DEADLINE_S:.0f} s")
        soak.elapsed_s = time.monotonic() - started
        soak.client_cpu_s = time.process_time() - cpu
        sampler.cancel()
        # The edge has until STALL_LIMIT_S to let go of the stalled viewers; then they leave.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, STALL_LIMIT_S - soak.elapsed_s) + 1):
                await asyncio.gather(*stalling)
        for task in stalling:
            task.cancel()

    if not edge.alive:
        soak.failures.append(f"edgesim exited with {edge.process.returncode} during the soak")
        return
    soak.after = await edge.settle(
        lambda c: c.workers <= before.workers and c.fds <= before.fds + FD_SLACK, SETTLE_S
    )
    soak.peak_rss_mb = edge.memory_mb("VmHWM")
    soak.held = {name: origin.open_connections() for name, origin in origins.items()}


@pytest.mark.slow
@pytest.mark.timeout(WARM_UP_DEADLINE_S + LOAD_DEADLINE_S + STALL_LIMIT_S + 3 * SETTLE_S + 120)
async def test_edge_survives_faults_under_load(tmp_path: Path) -> None:
    origins = {"raw": RawOrigin(), "silent": RawOrigin(silent=True)}
    for origin in origins.values():
        await origin.start()
    edge = EdgeProcess(_distribution(tmp_path / "soak.yaml", origins), tmp_path / "edgesim.log")
    soak = Soak()
    try:
        await _run(edge, origins, soak)
    finally:
        edge.stop()
        for origin in origins.values():
            await origin.aclose()
        soak.defects = edge.defects()
        print("\n" + soak.table(origins), flush=True)
    failures = soak.verdict()
    if failures:
        print(f"edgesim's log ({edge.log}) ends with:\n{edge.tail()}", flush=True)
    assert not failures, "fault soak failed:\n" + "\n".join(failures)

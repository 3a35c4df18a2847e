"""Instructions per request, counted by Valgrind's callgrind: the hit, miss and function rows in
a measure the machine's noise does not move.

Run from the project root (needs ``valgrind``)::

    .venv/bin/python bench/bench_instructions.py [--quick]

CPU time on a shared VM drifts by a third over a day and depends on what the caches hold; the
number of instructions a request takes does not. Each server runs under callgrind in its own
process: ``edgesim serve`` with the miss row's distribution (``/miss/*`` under CachingDisabled
to an HTTP origin, ``*`` under CachingOptimized, so every request after the first is a hit) and
the plain aiohttp server of the hit row; then ``edgesim serve`` with the four-trigger
distribution of ``bench_functions.py`` (its Python workers run outside callgrind: the row counts
the proxy's share of an invocation). After warm-up requests the counters are zeroed
(``callgrind_control -z``), requests are sent one after another on one keep-alive connection,
and the counters are dumped (``-d``); a request under way when a command lands may count in
part, so the figures are within a request of a few hundred. The origin runs outside callgrind.

Only the server's own user-space instructions count: what the kernel does for its system calls
and wake-ups is left out. Set beside the CPU-time rows, this says how much of a ratio is
edgesim's code and how much is the operating system's cost of another round trip.
"""

from __future__ import annotations

import http.client
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import _harness as h
import bench_functions
import bench_miss
import bench_runtime

HIT_TARGET = 0.6
MISS_TARGET = bench_miss.MISS_TARGET


class Counted:
    """A server running under callgrind, whose counters can be zeroed and read."""

    def __init__(self, server: h.Server, out: Path) -> None:
        self.server = server
        self._out = out
        self._dumps = 0

    def _control(self, flag: str) -> None:
        done = subprocess.run(
            ["callgrind_control", flag, str(self.server.pid)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise self.server.fail(f"callgrind_control {flag} failed: {done.stderr.strip()}")

    def instructions(self, url: str, requests: int, warmup: int) -> float:
        """Instructions per request over ``requests`` GETs of ``url`` in a row."""
        parts = urlsplit(url)
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=120)
        try:
            _send(connection, parts.path, warmup)
            self._control("-z")
            _send(connection, parts.path, requests)
            self._control("-d")
        finally:
            connection.close()
        self._dumps += 1
        dump = Path(f"{self._out}.{self._dumps}")
        deadline = time.monotonic() + 60
        while not dump.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        for line in dump.read_text().splitlines():
            if line.startswith("summary:"):
                return int(line.split()[1]) / requests
        raise self.server.fail(f"no summary line in {dump}")


def _send(connection: http.client.HTTPConnection, path: str, count: int) -> None:
    for _ in range(count):
        connection.request("GET", path)
        answer = connection.getresponse()
        body = answer.read()
        if answer.status != 200 or body != h.BODY:
            raise RuntimeError(f"GET {path} answered {answer.status} with {len(body)} bytes")


def _callgrind(lab: h.Lab, name: str) -> tuple[list[str], Path]:
    out = lab.dir / f"{name}.callgrind"
    return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"], out


def instruction_rows(options: h.Options) -> list[h.Row]:
    requests, warmup = (60, 20) if options.quick else (300, 50)
    figures = f"{requests} requests in a row after {warmup}"
    with h.Lab() as lab:
        origin = lab.plain("origin")
        edge_prefix, edge_out = _callgrind(lab, "edgesim")
        edge = lab.edgesim(
            "edgesim under callgrind",
            bench_miss.config(origin.url),
            prefix=edge_prefix,
            timeout=300,
        )
        plain_prefix, plain_out = _callgrind(lab, "plain")
        plain = lab.plain("plain aiohttp under callgrind", prefix=plain_prefix, timeout=300)
        edge_counted, plain_counted = Counted(edge, edge_out), Counted(plain, plain_out)
        hit_url, miss_url = edge.url + "/page.html", edge.url + "/miss/page.html"
        h.fetch(hit_url)
        h.expect(hit_url, x_cache="Hit")
        h.expect(miss_url, x_cache="Miss")
        hit = edge_counted.instructions(hit_url, requests, warmup)
        miss = edge_counted.instructions(miss_url, requests, warmup)
        baseline = plain_counted.instructions(plain.url + "/page.html", requests, warmup)
        edge.stop()
        plain.stop()
        functions = _function_row(lab, origin.url, requests, warmup)
    return [
        h.Row(
            "cache hit, instructions per request (c1)",
            f"{h.fmt_count(hit)} instructions ({figures})",
            f"plain aiohttp: {h.fmt_count(baseline)} instructions",
            f"plain's instructions/req {h.fmt_ratio(baseline / hit)} edgesim's (the req/s ratio "
            "they would give at equal speed)",
            f"reference for the hit row's >= {HIT_TARGET:g}x",
            h.NO_TARGET,
        ),
        h.Row(
            "miss, no functions, instructions per request (c1)",
            f"{h.fmt_count(miss)} instructions ({figures})",
            f"hits of the same process: {h.fmt_count(hit)} instructions",
            f"instructions/req {h.fmt_ratio(miss / hit)}",
            f"reference for the miss rows' <= {MISS_TARGET:g}x",
            h.NO_TARGET,
        ),
        functions,
    ]


def _function_row(lab: h.Lab, origin: str, requests: int, warmup: int) -> h.Row:
    """The proxy's instructions for a miss with a Python function at each trigger, against the
    same process's miss without functions (its workers run outside callgrind)."""
    prefix, out = _callgrind(lab, "functions")
    edge = lab.edgesim(
        "edgesim python under callgrind",
        bench_functions.py_config(origin, bench_runtime.runtime_name()),
        files={"fn/fns.py": bench_functions.PY_FUNCTIONS.encode()},
        prefix=prefix,
        timeout=300,
    )
    counted = Counted(edge, out)
    with_fn, without = edge.url + "/fn/page.html", edge.url + "/page.html"
    h.expect(with_fn, x_cache="Miss")
    h.expect(without, x_cache="Miss")
    count = max(requests // 3, 20)
    ours = counted.instructions(with_fn, count, warmup // 3)
    base = counted.instructions(without, count, warmup // 3)
    per_invocation = (ours - base) / 4
    return h.Row(
        "miss, a Python function at each of the four triggers, instructions per request (c1)",
        f"{h.fmt_count(ours)} instructions in the proxy; per invocation "
        f"{h.fmt_count(per_invocation)} "
        f"({count} requests in a row after {warmup // 3})",
        f"the no-function miss of the same process: {h.fmt_count(base)} instructions",
        f"per invocation {h.fmt_ratio(per_invocation / base)} a no-function miss",
        "reference for the per-invocation row",
        h.NO_TARGET,
    )


def rows(options: h.Options) -> list[h.Row]:
    name = "instructions per request (callgrind)"
    with h.section("instructions"):
        if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
            return [h.unmeasured(name, "valgrind is not installed (apt-get install valgrind)")]
        return h.guarded(name, h.NO_TARGET, lambda: instruction_rows(options))


def main() -> None:
    options = h.options(h.parser(__doc__.splitlines()[0]).parse_args())
    started = time.perf_counter()
    print(h.report("edgesim instructions per request", rows(options), started, options))


if __name__ == "__main__":
    main()

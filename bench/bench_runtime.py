"""The function runtime: a warm invocation inside the pipeline against its bare round trip, and
cold starts against the bare start of the interpreter, for Python and Node.js, same run.

Run from the project root::

    .venv/bin/python bench/bench_runtime.py [--quick] [--cold N] [--warm N]

All in this process, with an echo function (it returns its event) in worker processes:

- warm invocation inside the pipeline: ``Edge.dispatch`` of a cache hit whose behavior has the
  function at viewer-request, minus ``Edge.dispatch`` of the same hit on a behavior without it
  (event built, invocation, result parsed, validated and applied). Its baseline is the bare
  round trip to a warm worker of the same function (``FunctionPool.invoke``: framing, JSON, log
  marks). The three are timed in turn, request after request; medians. Target: at most 2x.
  A bare echo of the same bytes through ``cat`` over pipes is given for reference.
- cold start: a new pool's first invocation (spawn, import, first result), against the bare
  start of the same interpreter (spawn to first output of ``python -I -S -c`` / ``node -e``),
  timed in turn. Targets: 100 ms (Python) and 150 ms (Node.js).

Without a usable ``node`` the Node.js rows say why.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _harness as h

from edgesim.config import load_distribution
from edgesim.exceptions import RuntimeUnavailableError
from edgesim.http import EdgeRequest, Headers
from edgesim.pipeline import Edge
from edgesim.runtime import FunctionPool, FunctionSpec
from edgesim.runtime.launch import PYTHON_RUNTIMES, WORKER_PATH, resolve_node, resolve_python
from edgesim.runtime.protocol import encode_message

INVOCATION_TARGET = 2.0
COLD_TARGET_MS = {"python": 100.0, "node": 150.0}
ECHO = """
def handler(event, context):
    return event["Records"][0]["cf"]["request"]
"""
ECHO_JS = """
exports.handler = async (event) => event.Records[0].cf.request;
"""
NODE_RUNTIME = "nodejs20.x"
EVENT: dict[str, object] = {
    "Records": [
        {
            "cf": {
                "config": {"eventType": "viewer-request", "requestId": "x" * 56},
                "request": {
                    "method": "GET",
                    "uri": "/index.html",
                    "querystring": "",
                    "headers": {
                        "host": [{"key": "Host", "value": "d111111abcdef8.cloudfront.net"}]
                    },
                },
            }
        }
    ]
}


def runtime_name() -> str:
    current = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return current if current in PYTHON_RUNTIMES else "python3.13"


def spec(code_dir: Path, runtime: str) -> FunctionSpec:
    return FunctionSpec(
        name="bench-echo",
        runtime=runtime,
        code_dir=code_dir,
        handler="index.handler",
        memory_mb=128,
        timeout_s=5.0,
    )


def write_echo(folder: Path) -> Path:
    (folder / "index.py").write_text(ECHO)
    (folder / "index.js").write_text(ECHO_JS)
    return folder


async def cold_start(code_dir: Path, runtime: str) -> float:
    pool = FunctionPool(spec(code_dir, runtime))
    started = time.perf_counter()
    await pool.invoke(EVENT)
    elapsed = time.perf_counter() - started
    await pool.aclose()
    return elapsed


async def bare_interpreter_start(command: list[str]) -> float:
    """Time from spawn to the interpreter's first output byte, in a worker's clean environment
    (a host variable such as NODE_EXTRA_CA_CERTS can double Node.js's start)."""
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, env={"PATH": WORKER_PATH}
    )
    assert process.stdout is not None
    await process.stdout.readexactly(1)
    elapsed = time.perf_counter() - started
    await process.wait()
    return elapsed


async def bare_trip_us(code_dir: Path, runtime: str, count: int) -> float:
    """Median warm round trip to a worker of the echo function (``FunctionPool.invoke``), us."""
    pool = FunctionPool(spec(code_dir, runtime))
    try:
        await pool.invoke(EVENT)
        times = []
        for _ in range(count):
            started = time.perf_counter()
            await pool.invoke(EVENT)
            times.append(time.perf_counter() - started)
        return statistics.median(times) * 1e6
    finally:
        await pool.aclose()


async def cat_trip_us(count: int) -> float:
    """Median round trip of the same frame through ``cat`` over pipes, us."""
    frame = encode_message({"type": "invoke", "requestId": "r", "event": EVENT})
    process = await asyncio.create_subprocess_exec(
        "cat", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdin is not None and process.stdout is not None
    times = []
    try:
        for _ in range(count + 1):
            started = time.perf_counter()
            process.stdin.write(frame)
            await process.stdin.drain()
            await process.stdout.readexactly(len(frame))
            times.append(time.perf_counter() - started)
    finally:
        process.stdin.close()
        await process.wait()
    return statistics.median(times[1:]) * 1e6


def pipeline_config(runtime: str) -> str:
    return (
        'origins: {site: {s3: "."}}\n'
        f"functions: {{echo: {{runtime: {runtime}, code: ., handler: index.handler}}}}\n"
        "behaviors:\n"
        '  - {path_pattern: "/fn/*", origin: site, cache_policy: CachingOptimized,\n'
        "     functions: {viewer-request: echo}}\n"
        '  - {path_pattern: "*", origin: site, cache_policy: CachingOptimized}\n'
    )


async def in_pipeline(folder: Path, runtime: str, count: int) -> tuple[float, float, float]:
    """Medians, in us, of ``Edge.dispatch`` with the function, without it, and of the bare
    round trip to a warm worker of the same function, timed in turn."""
    (folder / "fn").mkdir(exist_ok=True)
    for path in ("page.html", "fn/page.html"):
        (folder / path).write_bytes(h.BODY)
    (folder / "bench.yaml").write_text(pipeline_config(runtime))
    distribution = load_distribution(folder / "bench.yaml")
    edge = Edge(distribution)
    pool = FunctionPool(spec(folder, runtime))
    host = Headers([("Host", distribution.settings.domain_name)])
    with_fn: list[float] = []
    without: list[float] = []
    bare: list[float] = []
    try:
        for _ in range(20):  # cache the objects, start the workers
            for uri in ("/fn/page.html", "/page.html"):
                result = await edge.dispatch(EdgeRequest("GET", uri, headers=host.copy()))
            await pool.invoke(EVENT)
        if result.response.status != 200:
            raise RuntimeError(f"the pipeline answered {result.response.status}")
        for _ in range(count):
            started = time.perf_counter()
            await edge.dispatch(EdgeRequest("GET", "/fn/page.html", headers=host.copy()))
            with_fn.append(time.perf_counter() - started)
            started = time.perf_counter()
            await edge.dispatch(EdgeRequest("GET", "/page.html", headers=host.copy()))
            without.append(time.perf_counter() - started)
            started = time.perf_counter()
            await pool.invoke(EVENT)
            bare.append(time.perf_counter() - started)
    finally:
        await edge.aclose()
        await pool.aclose()
    return (
        statistics.median(with_fn) * 1e6,
        statistics.median(without) * 1e6,
        statistics.median(bare) * 1e6,
    )


async def runtime_rows(
    language: str, runtime: str, bare_start: list[str], args: Args
) -> list[h.Row]:
    rows: list[h.Row] = []
    with tempfile.TemporaryDirectory(prefix="edgesim-bench-") as tmp:
        folder = write_echo(Path(tmp))
        fn, no_fn, bare = await in_pipeline(folder, runtime, args.warm)
        invocation = fn - no_fn
        ratio = invocation / bare
        rows.append(
            h.Row(
                f"warm invocation in the pipeline, {runtime}",
                f"{h.fmt_us(invocation)} (dispatch of a hit with the function "
                f"{h.fmt_us(fn)} minus without {h.fmt_us(no_fn)})",
                f"bare round trip to a warm worker: {h.fmt_us(bare)}",
                h.fmt_ratio(ratio),
                f"<= {INVOCATION_TARGET:g}x",
                h.verdict(ratio <= INVOCATION_TARGET),
            )
        )
        await cold_start(folder, runtime)  # warm the OS caches and the interpreter lookup
        colds: list[float] = []
        bares: list[float] = []
        for _ in range(args.cold):
            colds.append(await cold_start(folder, runtime))
            bares.append(await bare_interpreter_start(bare_start))
        cold, base = statistics.median(colds) * 1000, statistics.median(bares) * 1000
        target = COLD_TARGET_MS[language]
        rows.append(
            h.Row(
                f"cold start, {runtime} worker",
                f"{cold:.0f} ms (spawn to first result)",
                f"bare interpreter start: {base:.0f} ms",
                h.fmt_ratio(cold / base),
                f"<= {target:.0f} ms",
                h.verdict(cold <= target),
            )
        )
    return rows


class Args:
    """Counts of timed invocations and cold starts."""

    def __init__(self, options: h.Options, warm: int | None = None, cold: int | None = None):
        self.warm = warm or (200 if options.quick else 600)
        self.cold = cold or (3 if options.quick else 10)


async def collect(args: Args) -> list[h.Row]:
    rows: list[h.Row] = []
    python_runtime = runtime_name()
    try:
        python = await resolve_python(python_runtime, function_name="bench-echo")
    except RuntimeUnavailableError as error:
        rows.append(h.unmeasured(f"runtime, {python_runtime}", str(error)))
    else:
        bare = [python, "-I", "-S", "-c", "print(end='.', flush=True)"]
        rows += await runtime_rows("python", python_runtime, bare, args)
    try:
        node = resolve_node(NODE_RUNTIME, function_name="bench-echo")
    except RuntimeUnavailableError as error:
        rows.append(h.unmeasured(f"runtime, {NODE_RUNTIME}", str(error)))
    else:
        bare = [node, "-e", "process.stdout.write('.')"]
        rows += await runtime_rows("node", NODE_RUNTIME, bare, args)
    cat = await cat_trip_us(args.warm)
    for row in rows:
        if row.name.startswith("warm invocation"):
            row.baseline += f" (the same bytes echoed by `cat`: {h.fmt_us(cat)})"
    return rows


def rows(options: h.Options, warm: int | None = None, cold: int | None = None) -> list[h.Row]:
    with h.section("runtime"):
        return h.guarded(
            "runtime", h.NO_TARGET, lambda: asyncio.run(collect(Args(options, warm, cold)))
        )


def main() -> None:
    parser = h.parser(__doc__.splitlines()[0])
    parser.add_argument("--cold", type=int, default=None, help="cold starts to time (10)")
    parser.add_argument("--warm", type=int, default=None, help="warm invocations to time (600)")
    args = parser.parse_args()
    options = h.options(args)
    started = time.perf_counter()
    result = rows(options, args.warm, args.cold)
    print(h.report("edgesim function runtime", result, started, options))


if __name__ == "__main__":
    main()

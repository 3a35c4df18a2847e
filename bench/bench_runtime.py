"""Benchmark the function runtime against baselines measured in the same run.

Run by hand from the project root::

    .venv/bin/python bench/bench_runtime.py [--cold N] [--warm N]

It prints, as medians, for a Python and a Node.js echo function side by side:

- cold start: a new pool's first invocation (spawn, import, first result), against the bare
  start of the same interpreter (spawn to first output of ``python -I -S -c`` / ``node -e``);
- warm invocation: a round trip to a warm worker (framing, JSON, the memory watch, log marks),
  against a bare round trip of the same bytes through ``cat`` over pipes.

The ratios are what to watch: absolute times depend on the machine. Without a usable ``node``
the Node.js rows say why and the Python ones are still measured.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from edgesim.exceptions import RuntimeUnavailableError
from edgesim.runtime import FunctionPool, FunctionSpec
from edgesim.runtime.launch import PYTHON_RUNTIMES, WORKER_PATH, resolve_node, resolve_python
from edgesim.runtime.protocol import encode_message

ECHO = """
def handler(event, context):
    return event
"""
ECHO_JS = """
exports.handler = async (event) => event;
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


async def cold_starts(code_dir: Path, runtime: str, count: int) -> list[float]:
    times = []
    for _ in range(count):
        pool = FunctionPool(spec(code_dir, runtime))
        started = time.perf_counter()
        await pool.invoke(EVENT)
        times.append(time.perf_counter() - started)
        await pool.aclose()
    return times


async def warm_round_trips(code_dir: Path, runtime: str, count: int) -> list[float]:
    pool = FunctionPool(spec(code_dir, runtime))
    try:
        await pool.invoke(EVENT)
        times = []
        for _ in range(count):
            started = time.perf_counter()
            await pool.invoke(EVENT)
            times.append(time.perf_counter() - started)
        return times
    finally:
        await pool.aclose()


async def bare_interpreter_starts(command: list[str], count: int) -> list[float]:
    """Time from spawn to the interpreter's first output byte, in a worker's clean environment
    (a host variable such as NODE_EXTRA_CA_CERTS can double Node.js's start)."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, env={"PATH": WORKER_PATH}
        )
        assert process.stdout is not None
        await process.stdout.readexactly(1)
        times.append(time.perf_counter() - started)
        await process.wait()
    return times


async def bare_pipe_round_trips(count: int) -> list[float]:
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
    return times[1:]


def ms(seconds: list[float]) -> float:
    return statistics.median(seconds) * 1000


async def measure(
    code_dir: Path, runtime: str, bare: list[str], cold_count: int, warm_count: int
) -> tuple[float, float, float]:
    """Cold start, its bare baseline and warm round trip (medians, ms) of one runtime."""
    await cold_starts(code_dir, runtime, 1)  # warm the OS caches and the interpreter lookup
    cold = ms(await cold_starts(code_dir, runtime, cold_count))
    bare_start = ms(await bare_interpreter_starts(bare, cold_count))
    warm = ms(await warm_round_trips(code_dir, runtime, warm_count))
    return cold, bare_start, warm


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", type=int, default=15, help="cold starts to time")
    parser.add_argument("--warm", type=int, default=200, help="warm invocations to time")
    args = parser.parse_args()
    python_runtime = runtime_name()
    rows: list[tuple[str, str, float, float, float] | tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="edgesim-bench-") as folder:
        code_dir = Path(folder)
        (code_dir / "index.py").write_text(ECHO)
        (code_dir / "index.js").write_text(ECHO_JS)
        python = await resolve_python(python_runtime, function_name="bench-echo")
        bare_python = [python, "-I", "-S", "-c", "print(end='.', flush=True)"]
        figures = await measure(code_dir, python_runtime, bare_python, args.cold, args.warm)
        rows.append((python_runtime, f"`{python} -I -S -c print(...)`", *figures))
        try:
            node = resolve_node(NODE_RUNTIME, function_name="bench-echo")
        except RuntimeUnavailableError as unavailable:
            rows.append((NODE_RUNTIME, str(unavailable)))
        else:
            bare_node = [node, "-e", "process.stdout.write('.')"]
            figures = await measure(code_dir, NODE_RUNTIME, bare_node, args.cold, args.warm)
            rows.append((NODE_RUNTIME, f"`{node} -e process.stdout.write(...)`", *figures))
        bare_trip = ms(await bare_pipe_round_trips(args.warm))
    print(f"{'':16}{'cold start':>12}{'bare start':>12}{'ratio':>8}{'warm trip':>12}{'ratio':>8}")
    for row in rows:
        if len(row) == 2:
            print(f"{row[0]:16}not measured: {row[1]}")
            continue
        runtime, bare, cold, bare_start, warm = row
        print(
            f"{runtime:16}{cold:9.2f} ms{bare_start:9.2f} ms{cold / bare_start:7.2f}x"
            f"{warm:9.3f} ms{warm / bare_trip:7.2f}x   (bare start: {bare})"
        )
    print(f"bare pipe echo via cat: {bare_trip:.3f} ms (the warm trips' baseline)")


if __name__ == "__main__":
    asyncio.run(main())

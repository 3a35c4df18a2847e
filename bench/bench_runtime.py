"""Benchmark the function runtime against baselines measured in the same run.

Run by hand from the project root::

    .venv/bin/python bench/bench_runtime.py [--cold N] [--warm N]

It prints, as medians:

- cold start: a new pool's first invocation of an echo function (spawn, import, first result),
  against the bare start of the same interpreter (``python -I -S -c pass``);
- warm invocation: a round trip to a warm worker (framing, JSON, the memory watch, log marks),
  against a bare round trip of the same bytes through ``cat`` over pipes.

The ratios are what to watch: absolute times depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from edgesim.runtime import FunctionPool, FunctionSpec
from edgesim.runtime.launch import PYTHON_RUNTIMES, resolve_python
from edgesim.runtime.protocol import encode_message

ECHO = """
def handler(event, context):
    return event
"""
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


def spec(code_dir: Path) -> FunctionSpec:
    return FunctionSpec(
        name="bench-echo",
        runtime=runtime_name(),
        code_dir=code_dir,
        handler="index.handler",
        memory_mb=128,
        timeout_s=5.0,
    )


async def cold_starts(code_dir: Path, count: int) -> list[float]:
    times = []
    for _ in range(count):
        pool = FunctionPool(spec(code_dir))
        started = time.perf_counter()
        await pool.invoke(EVENT)
        times.append(time.perf_counter() - started)
        await pool.aclose()
    return times


async def warm_round_trips(code_dir: Path, count: int) -> list[float]:
    pool = FunctionPool(spec(code_dir))
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


async def bare_interpreter_starts(python: str, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(python, "-I", "-S", "-c", "pass")
        await process.wait()
        times.append(time.perf_counter() - started)
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


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", type=int, default=15, help="cold starts to time")
    parser.add_argument("--warm", type=int, default=200, help="warm invocations to time")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgesim-bench-") as folder:
        code_dir = Path(folder)
        (code_dir / "index.py").write_text(ECHO)
        python = await resolve_python(runtime_name(), function_name="bench-echo")
        await cold_starts(code_dir, 1)  # warm the OS caches and the interpreter lookup
        cold = ms(await cold_starts(code_dir, args.cold))
        bare_start = ms(await bare_interpreter_starts(python, args.cold))
        warm = ms(await warm_round_trips(code_dir, args.warm))
        bare_trip = ms(await bare_pipe_round_trips(args.warm))
    print(f"interpreter: {python}")
    print(f"cold start      {cold:8.2f} ms   bare `python -I -S -c pass` {bare_start:8.2f} ms")
    print(f"                ratio {cold / bare_start:6.2f}x")
    print(f"warm invocation {warm:8.3f} ms   bare pipe echo via cat      {bare_trip:8.3f} ms")
    print(f"                ratio {warm / bare_trip:6.2f}x")


if __name__ == "__main__":
    asyncio.run(main())

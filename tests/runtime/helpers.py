"""Shared helpers of the runtime tests: fixture functions, specs, a log recorder, process waits."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from edgesim.runtime import FunctionPool, FunctionSpec
from edgesim.runtime.containment import Isolation, isolation
from edgesim.runtime.launch import PYTHON_RUNTIMES

FIXTURES = Path(__file__).parent.parent / "fixtures" / "functions"
CURRENT = f"python{sys.version_info.major}.{sys.version_info.minor}"
RUNTIME = CURRENT if CURRENT in PYTHON_RUNTIMES else "python3.13"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
MIB = 1024 * 1024

PoolFactory = Callable[..., FunctionPool]

# Workers in PID namespaces of their own see other pids than the tests do (their own is 1).
NAMESPACES = isolation() is Isolation.NAMESPACES


def descendants(pids: list[int]) -> list[int]:
    """Pids of every process below these (as the tests see pids), zombies left out."""
    found: list[int] = []
    for pid in pids:
        try:
            found += [
                child.pid
                for child in psutil.Process(pid).children(recursive=True)
                if child.status() != psutil.STATUS_ZOMBIE
            ]
        except psutil.Error:
            continue
    return found


def living(pids: list[int]) -> list[int]:
    """The pids of these that still run (a zombie has ended)."""
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.Error:
            continue
    return alive


class LogRecorder:
    """A log sink that keeps every frame."""

    def __init__(self) -> None:
        self.frames: list[tuple[str, list[str]]] = []

    def __call__(self, name: str, lines: list[str]) -> None:
        self.frames.append((name, list(lines)))

    @property
    def last(self) -> list[str]:
        return self.frames[-1][1]


def spec_for(fixture: str, **overrides: Any) -> FunctionSpec:
    """The spec of fixture function ``fixture`` (``tests/fixtures/functions/<fixture>``)."""
    values: dict[str, Any] = {
        "name": fixture,
        "runtime": RUNTIME,
        "code_dir": FIXTURES / fixture,
        "handler": "index.handler",
        "memory_mb": 128,
        "timeout_s": 2.0,
    }
    values.update(overrides)
    return FunctionSpec(**values)


def remaining_ms_window(timeout_s: float, started: float, ended: float) -> tuple[float, float]:
    """The least and most time a handler can have had left, run between two ``time.time()``s.

    The deadline is set after ``started`` and the handler reads the clock before ``ended``, so it
    is short of the timeout by at most the time between them, give or take 2 ms of rounding to
    whole milliseconds. However slow the machine, the bounds hold.
    """
    return timeout_s * 1000 - (ended - started) * 1000 - 2, timeout_s * 1000


async def exits(pid: int, timeout_s: float = 5.0) -> bool:
    """Wait for a process that is not our child to exit (a zombie has exited too)."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    loop = asyncio.get_running_loop()
    exited = loop.create_future()
    loop.add_reader(pidfd, exited.set_result, None)
    try:
        async with asyncio.timeout(timeout_s):
            await exited
        return True
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)


# Lambda's reserved variables: all a worker's environment holds (a Node.js worker adds NODE_PATH).
RESERVED_VARIABLES = frozenset(
    {
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_EXECUTION_ENV",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
        "LANG",
        "TZ",
        "PATH",
        "_HANDLER",
    }
)

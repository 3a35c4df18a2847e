"""What the runtime is given (a function's configuration) and what it hands back (a result and
its billing figures).

These are plain frozen dataclasses so that config loading, the pipeline and the trace can share
them without importing the process machinery.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from edgesim.types import LogSink

# Lambda's default: 1,000 concurrent executions per Region, shared by unreserved functions.
ACCOUNT_CONCURRENCY = 1000
# Workers one function may run on this machine at once; further invocations wait for one
# (Lambda would start more execution environments; a laptop has only so many cores).
DEFAULT_MAX_WORKERS = max(4, 4 * (os.cpu_count() or 1))
# Lambda keeps an idle execution environment for minutes, then reclaims it.
DEFAULT_IDLE_TIMEOUT_S = 300.0

__all__ = [
    "ACCOUNT_CONCURRENCY",
    "DEFAULT_IDLE_TIMEOUT_S",
    "DEFAULT_MAX_WORKERS",
    "FunctionSpec",
    "InvocationReport",
    "InvocationResult",
    "LogSink",
    "billed_duration_ms",
]


@dataclass(frozen=True)
class FunctionSpec:
    """One Lambda@Edge function as the runtime runs it.

    ``handler`` uses Lambda's ``module.function`` form; the module part may name a file in a
    sub-folder with slashes (``pkg/mod.fn``). ``code_dir`` is the unpacked deployment package;
    it becomes the worker's working directory and the first entry of its import path.

    Scaling follows Lambda: a function without ``reserved_concurrency`` is throttled only past
    the account's 1,000 concurrent executions; with it, past that number. ``max_workers`` is
    this machine's cap on the function's workers: invocations beyond it wait for a worker, and
    the wait counts toward neither the timeout nor Duration. A worker idle for
    ``idle_timeout_s`` is retired, so pools shrink when a load ends.

    With ``debug_port`` the worker lets a debugger attach on ``127.0.0.1:debug_port`` (the
    Node.js inspector, or debugpy for Python): the pool runs one worker at a time, since one
    port can be bound once, and an invocation's timeout does not run while a debugger is
    attached.
    """

    name: str
    runtime: str
    code_dir: Path
    handler: str
    memory_mb: int
    timeout_s: float
    reserved_concurrency: int | None = None
    max_workers: int = DEFAULT_MAX_WORKERS
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S
    region: str = "us-east-1"
    version: str = "1"
    debug_port: int | None = None


@dataclass(frozen=True)
class InvocationReport:
    """The figures of Lambda's ``REPORT`` line for one invocation.

    ``request_id`` is Lambda's own request id (a UUID), not CloudFront's ``X-Amz-Cf-Id``.
    ``init_duration_ms`` is set only when the invocation had to start a new worker.
    """

    request_id: str
    duration_ms: float
    billed_ms: int
    memory_size_mb: int
    max_memory_used_mb: int
    init_duration_ms: float | None


@dataclass(frozen=True)
class InvocationResult:
    """What a successful invocation returned.

    ``value`` is the handler's return value decoded from JSON, unchanged: checking that it is a
    valid request or response for the trigger is the caller's job.
    """

    value: object
    report: InvocationReport


def billed_duration_ms(duration_ms: float) -> int:
    """Lambda bills the duration rounded up to the next millisecond, at least 1 ms."""
    return max(1, math.ceil(duration_ms))

"""What the runtime is given (a function's configuration) and what it hands back (a result and
its billing figures).

These are plain frozen dataclasses so that config loading, the pipeline and the trace can share
them without importing the process machinery.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from edgesim.types import LogSink

__all__ = [
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
    """

    name: str
    runtime: str
    code_dir: Path
    handler: str
    memory_mb: int
    timeout_s: float
    max_concurrency: int = 10
    region: str = "us-east-1"
    version: str = "1"


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

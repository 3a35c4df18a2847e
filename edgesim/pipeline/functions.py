"""The runtime's view of a distribution's functions: what each worker pool is told."""

from __future__ import annotations

from edgesim.config import Distribution
from edgesim.runtime import FunctionSpec

__all__ = ["function_specs"]


def function_specs(distribution: Distribution) -> list[FunctionSpec]:
    """The runtime's view of a distribution's functions."""
    return [
        FunctionSpec(
            name=f.name,
            runtime=f.runtime,
            code_dir=f.code,
            handler=f.handler,
            memory_mb=f.memory,
            timeout_s=float(f.timeout),
            reserved_concurrency=f.reserved_concurrency,
            max_workers=f.workers,
            idle_timeout_s=float(f.idle_timeout),
        )
        for f in distribution.functions.values()
    ]

"""Shared by the Node.js worker tests: where the fixture functions live, the stamp that starts a
log line, and the fixture that makes pools of them (each logging into the frames it is given)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from edgesim.runtime import FunctionPool, FunctionSpec

NODE_FIXTURES = Path(__file__).parent.parent / "fixtures" / "node"
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"

Frames = list[list[str]]
NodePool = Callable[..., FunctionPool]


@pytest.fixture(name="node_pool")
async def node_pool_fixture() -> AsyncIterator[NodePool]:
    """Make pools of Node.js fixture functions; each logs into the ``frames`` it is given."""
    pools: list[FunctionPool] = []

    def make(fixture: str, frames: Frames | None = None, **overrides: Any) -> FunctionPool:
        values: dict[str, Any] = {
            "name": fixture,
            "runtime": "nodejs20.x",
            "code_dir": NODE_FIXTURES / fixture,
            "handler": "index.handler",
            "memory_mb": 128,
            "timeout_s": 2.0,
        }
        values.update(overrides)
        sink = None if frames is None else (lambda _name, lines: frames.append(lines))
        pool = FunctionPool(FunctionSpec(**values), log_sink=sink)
        pools.append(pool)
        return pool

    yield make
    pids = [pid for pool in pools for pid in pool.worker_pids]
    for pool in pools:
        await pool.aclose()
    assert not [pid for pid in pids if psutil.pid_exists(pid)]

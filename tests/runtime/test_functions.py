"""The functions of one process: pools by name, closed together."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psutil
import pytest

from edgesim.runtime import FunctionRuntime
from tests.runtime.helpers import spec_for


async def test_function_runtime_routes_by_name_and_closes_every_pool() -> None:
    runtime = FunctionRuntime([spec_for("echo"), spec_for("context")])
    try:
        assert runtime.names == ["echo", "context"]
        echoed = await runtime.invoke("echo", {"x": 1})
        assert isinstance(echoed.value, dict) and echoed.value["event"] == {"x": 1}
        context = await runtime.invoke("context", {})
        assert isinstance(context.value, dict) and context.value["function_name"] == "context"
        with pytest.raises(KeyError, match="no function named 'nope'"):
            runtime.pool("nope")
        pids = runtime.pool("echo").worker_pids + runtime.pool("context").worker_pids
        assert len(pids) == 2
    finally:
        await runtime.aclose()
    assert not [pid for pid in pids if psutil.pid_exists(pid)]


def test_function_runtime_refuses_two_functions_with_one_name() -> None:
    with pytest.raises(ValueError, match="two functions are named 'echo'"):
        FunctionRuntime([spec_for("echo"), spec_for("echo", handler="index.other")])


CODE = """import time
VERSION = {version!r}
def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return VERSION
"""


async def test_replace_gives_new_invocations_the_new_code_and_lets_running_ones_finish(
    tmp_path: Path,
) -> None:
    (tmp_path / "index.py").write_text(CODE.format(version="v1"))
    spec = spec_for("echo", name="versioned", code_dir=tmp_path)
    runtime = FunctionRuntime([spec, spec_for("echo")])
    try:
        first = await runtime.invoke("echo", {})
        assert (await runtime.invoke("versioned", {})).value == "v1"  # a warm worker holds v1
        old_pool = runtime.pool("versioned")
        running = asyncio.ensure_future(runtime.invoke("versioned", {"sleep": 0.3}))
        while not old_pool.in_flight:
            await asyncio.sleep(0.01)
        (tmp_path / "index.py").write_text(CODE.format(version="v2"))
        runtime.replace(spec)
        assert runtime.pool("versioned") is not old_pool
        assert (await runtime.invoke("versioned", {})).value == "v2"
        assert (await running).value == "v1"  # finished on the replaced pool's worker
        await old_pool.drained()
        while old_pool.worker_pids:  # which then closes
            await asyncio.sleep(0.01)
        again = await runtime.invoke("echo", {})
        assert isinstance(first.value, dict) and isinstance(again.value, dict)
        assert again.report.init_duration_ms is None  # other functions keep their workers
    finally:
        await runtime.aclose()


async def test_a_successor_keeps_unchanged_pools_and_each_closes_only_its_own() -> None:
    old = FunctionRuntime([spec_for("echo"), spec_for("context"), spec_for("slow")])
    try:
        warm = await old.invoke("echo", {})
        changed = spec_for("context", memory_mb=256)
        new = old.successor([spec_for("echo"), changed, spec_for("slow")], restart=["slow"])
        try:
            assert new.pool("echo") is old.pool("echo")
            assert new.pool("context") is not old.pool("context")
            assert new.pool("slow") is not old.pool("slow")
            old_context = old.pool("context")
            await old.aclose()  # the old edge finished its requests
            assert old_context.worker_pids == []
            kept = await new.invoke("echo", {})
            assert warm.report.init_duration_ms is not None
            assert kept.report.init_duration_ms is None  # a warm worker answered
        finally:
            await new.aclose()
        assert new.names == []
    finally:
        await old.aclose()
